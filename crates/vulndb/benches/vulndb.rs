//! `cargo bench -p kensa-vulndb`: import of every shared advisory set (time, file size) and
//! lookups per second by (ecosystem, package), the matcher's hot path.

use std::time::Instant;

use kensa_vulndb::{import::import_path, VulnDb};

fn main() {
    let Some(dir) = kensa_testdata::shared_path("advisories") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vuln.db");

    let start = Instant::now();
    let mut db = VulnDb::create(&path).unwrap();
    let report = import_path(&mut db, &dir).unwrap();
    drop(db);
    let import_time = start.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "import {}: {} records ({} withdrawn, {} skipped) in {:.2} s = {:.0} records/s; database {:.1} MiB",
        dir.display(),
        report.total(),
        report.withdrawn,
        report.skipped,
        import_time.as_secs_f64(),
        report.total() as f64 / import_time.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );

    let db = VulnDb::open(&path).unwrap();
    // Every (ecosystem, package) pair in the database, plus as many misses (the common case for
    // a scanned package).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn.prepare("SELECT DISTINCT ecosystem, original_name FROM affected ORDER BY ecosystem, original_name").unwrap();
    let pairs: Vec<(String, String)> = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
    let misses: Vec<(String, String)> = pairs.iter().map(|(e, n)| (e.clone(), format!("{n}-not-a-package"))).collect();
    for (label, set) in [("hits", &pairs), ("misses", &misses)] {
        let rounds = 3;
        let start = Instant::now();
        let mut found = 0usize;
        for _ in 0..rounds {
            for (e, n) in set.iter() {
                found += db.affected(e, n).unwrap().len();
            }
        }
        let t = start.elapsed().as_secs_f64();
        let n = (set.len() * rounds) as f64;
        println!("lookup by (ecosystem, name), {label}: {n} lookups in {t:.2} s = {:.0} lookups/s ({found} entries returned)", n / t);
    }
    let ids: Vec<String> = conn.prepare("SELECT id FROM vulnerabilities").unwrap().query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    let start = Instant::now();
    for id in &ids {
        assert!(db.vulnerability(id).unwrap().is_some());
    }
    let t = start.elapsed().as_secs_f64();
    println!("vulnerability(id) with alias resolution: {} lookups in {t:.2} s = {:.0} lookups/s", ids.len(), ids.len() as f64 / t);
}
