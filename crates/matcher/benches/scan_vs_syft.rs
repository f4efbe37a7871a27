//! End-to-end vulnerability scan of the Debian test tree (open the database, inventory with deep
//! inspection, match every package, serialise the findings as JSON) against Syft's inventory alone
//! on the same tree. `cargo bench -p kensa-matcher --bench scan_vs_syft`. Prints the ratio.
//!
//! The database holds the shared PyPA, GitHub, AlmaLinux 8/9 and KEV data (imported once, not
//! timed). kensa runs in-process, best of 5; Syft as a child process, best of 3.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    let sources = [
        "advisories/pypa/pypa-advisory-database.tar.gz",
        "advisories/ghsa",
        "advisories/almalinux/almalinux8.tar.gz",
        "advisories/almalinux/almalinux9.tar.gz",
        "advisories/kev/known_exploited_vulnerabilities.json",
    ];
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("vuln.db");
    {
        let mut db = kensa_vulndb::VulnDb::create(&db_path).unwrap();
        for s in sources {
            let Some(p) = kensa_testdata::shared_path(s) else { return };
            kensa_vulndb::import::import_path(&mut db, &p).unwrap();
        }
    }
    let scan = || {
        let db = kensa_vulndb::VulnDb::open(&db_path).unwrap();
        let root = kensa_fs::Root::dir(&rootfs).unwrap();
        let inv = kensa_inventory::scan(&root, &kensa_inventory::ScanOptions::default());
        let r = kensa_matcher::match_inventory(&db, &inv, &Default::default(), &mut |_, _| {}).unwrap();
        let json = serde_json::to_vec(&r.findings).unwrap();
        (inv.packages.len(), r.findings.len(), json.len())
    };
    let mut best = Duration::MAX;
    let mut stats = (0, 0, 0);
    for _ in 0..5 {
        let t = Instant::now();
        stats = scan();
        best = best.min(t.elapsed());
    }
    println!("kensa scan (inventory + match + JSON) {}: {} packages, {} findings, best of 5 {:.1} ms", rootfs.display(), stats.0, stats.1, best.as_secs_f64() * 1e3);
    let Some(syft) = kensa_testdata::venv_tool("syft") else { return };
    let mut syft_best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let st = Command::new(&syft)
            .args([&format!("dir:{}", rootfs.display()), "-o", "cyclonedx-json", "-q"])
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        syft_best = syft_best.min(t.elapsed());
    }
    println!("syft dir: (inventory only): best of 3 {:.1} ms", syft_best.as_secs_f64() * 1e3);
    println!("ratio: kensa's full scan is {:.1}x faster than Syft's inventory alone", syft_best.as_secs_f64() / best.as_secs_f64());
}
