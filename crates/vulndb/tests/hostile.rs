//! Truncated, garbled and hostile inputs: every import returns a result (records skipped with a
//! reason, or an error naming the file), never a panic.

use std::io::Read;

use kensa_vulndb::{import::import_path, VulnDb};

fn first_member(archive: &std::path::Path) -> Vec<u8> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap()));
    let mut e = ar.entries().unwrap().map(|e| e.unwrap()).find(|e| e.header().entry_type().is_file()).unwrap();
    let mut out = Vec::new();
    e.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn truncated_and_garbled_documents_never_panic() {
    let Some(adv) = kensa_testdata::shared_path("advisories") else { return };
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("kev.json", std::fs::read(adv.join("kev/known_exploited_vulnerabilities.json")).unwrap()[..200_000].to_vec()),
        ("kev.csv", std::fs::read(adv.join("kev/known_exploited_vulnerabilities.csv")).unwrap()[..50_000].to_vec()),
        ("PYSEC.yaml", first_member(&adv.join("pypa/pypa-advisory-database.tar.gz"))),
        ("RUSTSEC.md", first_member(&adv.join("rustsec/rustsec-advisory-db.tar.gz"))),
        ("victims.yaml", first_member(&adv.join("victims-cve-db/victims-cve-db.tar.gz"))),
        ("DSA-list", std::fs::read(adv.join("debian-security-tracker/DSA-list.txt")).unwrap()[..20_000].to_vec()),
        ("GHSA.json", std::fs::read(adv.join("ghsa/GHSA-jfh8-c2jp-5v3q.json")).unwrap()),
        ("alma.tar.gz", std::fs::read(adv.join("almalinux/almalinux9.tar.gz")).unwrap()[..300_000].to_vec()),
        ("nested.json", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        ("binary.json", (0..=255u8).cycle().take(5000).collect()),
        ("bom.json", b"\xef\xbb\xbf{\"id\":\"X-1\",\"modified\":\"2024-01-01T00:00:00Z\",\"affected\":[{\"package\":{\"ecosystem\":\"npm\",\"name\":\"\xc3\xa9\"},\"ranges\":[{\"type\":\"SEMVER\",\"events\":[{\"introduced\":\"0\",\"fixed\":\"1\"}]}]}]}".to_vec()),
        ("[1\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}.txt", "[1\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}] DSA-1".as_bytes().to_vec()),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let mut db = VulnDb::create(&tmp.path().join("vuln.db")).unwrap();
    for (name, full) in &samples {
        for cut in [full.len(), full.len() * 3 / 4, full.len() / 2, full.len() / 7, 3, 1] {
            let file = tmp.path().join(format!("{cut}-{}", name.replace('/', "_")));
            std::fs::write(&file, &full[..cut.min(full.len())]).unwrap();
            match import_path(&mut db, &file) {
                Ok(r) => {
                    for w in &r.warnings {
                        assert!(w.contains(&file.display().to_string()), "warning does not name the file: {w}");
                    }
                }
                Err(e) => assert!(e.to_string().contains(&file.display().to_string()), "error does not name the file: {e}"),
            }
        }
    }
    // The two-event object is malformed OSV: skipped with the reason.
    let file = tmp.path().join("bom.json");
    std::fs::write(&file, &samples[10].1).unwrap();
    let r = import_path(&mut db, &file).unwrap();
    assert_eq!(r.skipped, 1);
    assert!(r.warnings[0].contains("exactly one key"), "{:?}", r.warnings);
}
