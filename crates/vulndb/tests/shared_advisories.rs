//! Imports every advisory set of the shared data and checks counts against the READMEs, then
//! compares a sample of records with the source files parsed independently here.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use kensa_vulndb::import::{import_path, ImportReport};
use kensa_vulndb::{Event, VulnDb};
use serde_json::Value;

fn fresh_db(dir: &tempfile::TempDir) -> VulnDb {
    VulnDb::create(&dir.path().join("vuln.db")).unwrap()
}

fn import(db: &mut VulnDb, path: &Path) -> ImportReport {
    let report = import_path(db, path).unwrap_or_else(|e| panic!("import {}: {e}", path.display()));
    assert!(report.warnings.is_empty(), "{}: unexpected warnings: {:#?}", path.display(), report.warnings);
    report
}

/// (member path, text) of every file in a tar.gz, read independently of the importer.
fn tar_members(path: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
    let mut ar = tar::Archive::new(gz);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        out.push((name, s));
    }
    out
}

/// Checks one stored OSV record against its source document.
fn assert_osv_round_trip(db: &VulnDb, src: &Value) {
    let id = src["id"].as_str().unwrap();
    let recs = db.records(id).unwrap();
    let rec = recs.iter().find(|r| r.source == "osv").unwrap_or_else(|| panic!("{id} not stored"));
    let strs = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string())).collect()).unwrap_or_default()
    };
    assert_eq!(rec.aliases, strs(&src["aliases"]), "{id}: aliases");
    assert_eq!(rec.summary.as_deref(), src["summary"].as_str().filter(|s| !s.trim().is_empty()), "{id}: summary");
    assert_eq!(rec.modified.as_deref(), src["modified"].as_str(), "{id}: modified");
    let src_affected = src["affected"].as_array().cloned().unwrap_or_default();
    assert_eq!(rec.affected.len(), src_affected.len(), "{id}: affected count");
    for (a, s) in rec.affected.iter().zip(&src_affected) {
        assert_eq!(a.ecosystem, s["package"]["ecosystem"].as_str().unwrap(), "{id}: ecosystem");
        assert_eq!(a.name, s["package"]["name"].as_str().unwrap(), "{id}: name");
        assert_eq!(a.versions, strs(&s["versions"]), "{id}: versions");
        let src_ranges = s["ranges"].as_array().cloned().unwrap_or_default();
        assert_eq!(a.ranges.len(), src_ranges.len(), "{id}: ranges");
        for (r, sr) in a.ranges.iter().zip(&src_ranges) {
            assert_eq!(serde_json::to_value(r.kind).unwrap(), sr["type"], "{id}: range type");
            let events: Vec<(String, String)> = r
                .events
                .iter()
                .map(|e| match e {
                    Event::Introduced(v) => ("introduced".into(), v.clone()),
                    Event::Fixed(v) => ("fixed".into(), v.clone()),
                    Event::LastAffected(v) => ("last_affected".into(), v.clone()),
                    Event::Limit(v) => ("limit".into(), v.clone()),
                })
                .collect();
            let src_events: Vec<(String, String)> = sr["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let (k, v) = e.as_object().unwrap().iter().next().unwrap();
                    (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
                })
                .collect();
            assert_eq!(events, src_events, "{id}: events");
        }
        let src_fixed: Vec<String> = src_ranges
            .iter()
            .flat_map(|r| r["events"].as_array().unwrap().iter().filter_map(|e| e.get("fixed")).map(|v| v.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(a.fixed_versions(), src_fixed.iter().map(String::as_str).collect::<Vec<_>>(), "{id}: fixed versions");
    }
    let src_vectors: Vec<String> = src["severity"].as_array().into_iter().flatten().map(|s| s["score"].as_str().unwrap().to_string()).collect();
    for v in &src_vectors {
        let sev = rec.severities.iter().find(|s| &s.vector == v).unwrap_or_else(|| panic!("{id}: severity {v} missing"));
        if v.starts_with("CVSS:") {
            let score = sev.base_score.unwrap_or_else(|| panic!("{id}: {v} not scored"));
            assert!((0.0..=10.0).contains(&score), "{id}: score {score}");
        }
    }
}

#[test]
fn almalinux_osv_tarballs() {
    let Some(dir) = kensa_testdata::shared_path("advisories/almalinux") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let r8 = import(&mut db, &dir.join("almalinux8.tar.gz"));
    let r9 = import(&mut db, &dir.join("almalinux9.tar.gz"));
    assert_eq!(r8.imported["osv"] + r8.withdrawn, 2913);
    assert_eq!(r9.imported["osv"] + r9.withdrawn, 1605);
    let ecos: BTreeMap<String, u64> = db.ecosystems().unwrap().into_iter().collect();
    assert!(ecos.contains_key("AlmaLinux:8") && ecos.contains_key("AlmaLinux:9"), "{ecos:?}");
    for file in ["almalinux8.tar.gz", "almalinux9.tar.gz"] {
        for (i, (_, text)) in tar_members(&dir.join(file)).iter().enumerate() {
            if i % 40 == 0 {
                assert_osv_round_trip(&db, &serde_json::from_str(text).unwrap());
            }
        }
    }
    // A CVE with no record of its own is shown through the advisories that name it: those are
    // its related ids, and the other CVEs the same updates fix are not (ALSA-2023:7034 fixes
    // CVE-2007-4559 as well).
    let cve = "CVE-2023-32681";
    let mut naming = std::collections::BTreeSet::new();
    for file in ["almalinux8.tar.gz", "almalinux9.tar.gz"] {
        for (_, text) in tar_members(&dir.join(file)) {
            let v: Value = serde_json::from_str(&text).unwrap();
            let names = |k: &str| v[k].as_array().is_some_and(|a| a.iter().any(|x| x == cve));
            if names("aliases") || names("related") {
                naming.insert(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(naming.contains("ALSA-2023:7034"), "{naming:?}");
    let v = db.vulnerability(cve).unwrap().unwrap();
    let shown: std::collections::BTreeSet<String> = v.aliases.iter().chain(v.related.iter()).cloned().collect();
    assert_eq!(shown, naming);
    // Lookup by package finds the record with its fixed version.
    let hits = db.affected("AlmaLinux:9", "qatzip").unwrap();
    assert!(hits.iter().any(|a| a.vuln_id == "ALBA-2022:8256" && a.fixed_versions() == ["1.0.9-1.el9"]), "{hits:?}");
}

#[test]
fn pypa_osv_yaml() {
    let Some(dir) = kensa_testdata::shared_path("advisories/pypa") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let archive = dir.join("pypa-advisory-database.tar.gz");
    let r = import(&mut db, &archive);
    assert_eq!(r.imported["osv"] + r.withdrawn, 2395, "{r:?}");
    let members = tar_members(&archive);
    let withdrawn = members.iter().filter(|(_, t)| t.contains("\nwithdrawn:") || t.starts_with("withdrawn:")).count() as u64;
    assert_eq!(r.withdrawn, withdrawn);
    for (i, (_, text)) in members.iter().enumerate() {
        let v: Value = serde_yaml_ng::from_str(text).unwrap();
        if i % 25 == 0 && v.get("withdrawn").is_none() {
            assert_osv_round_trip(&db, &v);
        }
    }
    // PEP 503: the lookup name is normalised.
    let hits = db.affected("PyPI", "ZSTD").unwrap();
    assert!(hits.iter().any(|a| a.vuln_id == "PYSEC-2023-121"), "{hits:?}");
}

#[test]
fn ghsa_osv_directory() {
    let Some(dir) = kensa_testdata::shared_path("advisories/ghsa") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let r = import(&mut db, &dir);
    assert_eq!(r.imported["osv"] + r.withdrawn, 52);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            assert_osv_round_trip(&db, &serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap());
        }
    }
    // Alias resolution: the CVE finds the GHSA record.
    let v = db.vulnerability("CVE-2021-44228").unwrap().expect("log4shell via alias");
    assert!(v.aliases.iter().any(|a| a == "GHSA-jfh8-c2jp-5v3q"), "{:?}", v.aliases);
    assert!(v.severities.iter().any(|s| s.base_score == Some(10.0)), "{:?}", v.severities);
    let maven = db.affected("Maven", "org.apache.logging.log4j:log4j-core").unwrap();
    assert!(maven.iter().any(|a| a.vuln_id == "GHSA-jfh8-c2jp-5v3q" && a.fixed_versions().contains(&"2.15.0")), "{maven:?}");
}

#[test]
fn rustsec_markdown() {
    let Some(dir) = kensa_testdata::shared_path("advisories/rustsec") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let archive = dir.join("rustsec-advisory-db.tar.gz");
    let r = import(&mut db, &archive);
    assert_eq!(r.imported["rustsec"] + r.withdrawn, 1103, "{r:?}");
    let members = tar_members(&archive);
    let withdrawn = members.iter().filter(|(_, t)| t.lines().any(|l| l.starts_with("withdrawn = "))).count() as u64;
    assert_eq!(r.withdrawn, withdrawn);
    // Independent check of ids, packages, aliases and CVSS for a sample.
    for (i, (path, text)) in members.iter().enumerate() {
        if i % 20 != 0 || text.lines().any(|l| l.starts_with("withdrawn = ")) {
            continue;
        }
        let front = text.trim_start().strip_prefix("```toml").unwrap();
        let front = &front[..front.find("\n```").unwrap()];
        let t: toml::Value = toml::from_str(front).unwrap();
        let id = t["advisory"]["id"].as_str().unwrap();
        let rec = &db.records(id).unwrap()[0];
        assert_eq!(rec.affected[0].name, t["advisory"]["package"].as_str().unwrap(), "{path}");
        let eco = if path.starts_with("rust/") { "Rust" } else { "crates.io" };
        assert_eq!(rec.affected[0].ecosystem, eco, "{path}");
        let aliases: Vec<&str> = t["advisory"].get("aliases").and_then(|a| a.as_array()).map(|a| a.iter().map(|x| x.as_str().unwrap()).collect()).unwrap_or_default();
        assert_eq!(rec.aliases, aliases, "{path}");
        if let Some(c) = t["advisory"].get("cvss").and_then(|c| c.as_str()) {
            assert!(rec.severities.iter().any(|s| s.vector == c && s.base_score.is_some()), "{path}");
        }
        // Every `patched` lower bound appears as a fixed version.
        for p in t.get("versions").and_then(|v| v.get("patched")).and_then(|p| p.as_array()).into_iter().flatten() {
            let p = p.as_str().unwrap().trim();
            if let Some(v) = p.strip_prefix(">=").filter(|v| !v.contains(',')) {
                // Cargo reads a partial version `111.16` as `111.16.0`.
                let mut v = v.trim().to_string();
                while !v.contains('-') && v.matches('.').count() < 2 {
                    v.push_str(".0");
                }
                let fixed = rec.affected[0].fixed_versions();
                assert!(fixed.contains(&v.as_str()), "{path}: {p} -> {fixed:?}");
            }
        }
    }
}

#[test]
fn kev_catalog() {
    let Some(dir) = kensa_testdata::shared_path("advisories/kev") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let path = dir.join("known_exploited_vulnerabilities.json");
    let r = import(&mut db, &path);
    assert_eq!(r.imported["kev"], 1264);
    let src: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for e in src["vulnerabilities"].as_array().unwrap().iter().step_by(50) {
        let k = db.kev(e["cveID"].as_str().unwrap()).unwrap().unwrap();
        assert_eq!(k.date_added, e["dateAdded"].as_str().unwrap());
        assert_eq!(k.due_date, e["dueDate"].as_str().unwrap());
        assert_eq!(k.known_ransomware_campaign_use, e["knownRansomwareCampaignUse"].as_str().unwrap());
        assert_eq!(k.required_action, e["requiredAction"].as_str().unwrap());
    }
    assert_eq!(db.counts().unwrap().kev, 1264);

    // The CSV edition gives the same entries.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut db2 = fresh_db(&tmp2);
    let r = import(&mut db2, &dir.join("known_exploited_vulnerabilities.csv"));
    assert_eq!(r.imported["kev"], 1264);
    for e in src["vulnerabilities"].as_array().unwrap() {
        let cve = e["cveID"].as_str().unwrap();
        assert_eq!(db2.kev(cve).unwrap(), db.kev(cve).unwrap(), "{cve}");
    }
}

#[test]
fn whole_advisories_folder() {
    let Some(dir) = kensa_testdata::shared_path("advisories") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let r = import(&mut db, &dir);
    // OSV (AlmaLinux 8 + 9, PyPA, GHSA) and RustSec records, withdrawn ones counted apart.
    assert_eq!(r.imported["osv"] + r.imported["rustsec"] + r.withdrawn, 2913 + 1605 + 2395 + 52 + 1103);
    assert_eq!(r.imported["debian-dsa"], 4865);
    assert_eq!(r.imported["kev"], 2 * 1264, "JSON and CSV editions");
    let by_source: BTreeMap<String, u64> = db.counts().unwrap().by_source.into_iter().collect();
    assert_eq!(by_source["victims"], 196);
}

#[test]
fn debian_dsa_dla_lists() {
    let Some(dir) = kensa_testdata::shared_path("advisories/debian-security-tracker") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let dsa = import(&mut db, &dir.join("DSA-list.txt"));
    let dla = import(&mut db, &dir.join("DLA-list.txt"));
    let distinct = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap();
        text.lines().filter(|l| l.starts_with('[')).map(|l| l.split_whitespace().nth(3).unwrap().to_string()).collect::<std::collections::BTreeSet<_>>().len() as u64
    };
    assert_eq!(dsa.imported["debian-dsa"], 4865);
    assert_eq!(dla.imported["debian-dla"], 3181);
    let counts: BTreeMap<String, u64> = db.counts().unwrap().by_source.into_iter().collect();
    assert_eq!(counts["debian-dsa"], distinct(&dir.join("DSA-list.txt")));
    assert_eq!(counts["debian-dla"], distinct(&dir.join("DLA-list.txt")));
    let rec = &db.records("DSA-5380-1").unwrap()[0];
    assert_eq!(rec.aliases, ["CVE-2023-1393"]);
    assert_eq!(rec.affected[0].ecosystem, "Debian:11");
    assert_eq!(rec.affected[0].name, "xorg-server");
    assert_eq!(rec.affected[0].fixed_versions(), ["2:1.20.11-1+deb11u6"]);
    assert_eq!(rec.published.as_deref(), Some("2023-03-29T00:00:00Z"));
}

#[test]
fn nodejs_security_wg() {
    let Some(dir) = kensa_testdata::shared_path("advisories/nodejs-security-wg") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let archive = dir.join("nodejs-security-wg-vuln.tar.gz");
    import(&mut db, &archive);
    let members = tar_members(&archive);
    assert_eq!(members.len(), 582);
    // Each folder's index.json aggregates entries keyed by number (upstream's whole folder, so
    // it may hold more than the files shipped here): records are the union of both.
    let mut ids = std::collections::BTreeSet::new();
    for (p, text) in &members {
        let kind = if p.contains("/npm/") { "ECO" } else if p.contains("/core/") { "CORE" } else { "DEPS" };
        if p.ends_with("index.json") {
            let v: Value = serde_json::from_str(text).unwrap();
            ids.extend(v.as_object().unwrap().keys().map(|k| format!("NSWG-{kind}-{k}")));
        } else {
            let stem = p.rsplit('/').next().unwrap().trim_end_matches(".json");
            ids.insert(format!("NSWG-{kind}-{stem}"));
        }
    }
    let counts: BTreeMap<String, u64> = db.counts().unwrap().by_source.into_iter().collect();
    assert_eq!(counts["nodejs-security-wg"], ids.len() as u64);
    let (_, text) = members.iter().find(|(p, _)| p == "vuln/npm/1.json").unwrap();
    let src: Value = serde_json::from_str(text).unwrap();
    let hits = db.affected("npm", src["module_name"].as_str().unwrap()).unwrap();
    let hit = hits.iter().find(|a| a.vuln_id == "NSWG-ECO-1").unwrap();
    assert_eq!(hit.ecosystem_specific.as_ref().unwrap()["vulnerable_versions"], src["vulnerable_versions"]);
    assert_eq!(hit.ranges[0].events, [Event::Introduced("0".into()), Event::LastAffected("1.5.1".into())]);
}

#[test]
fn victims_yaml() {
    let Some(dir) = kensa_testdata::shared_path("advisories/victims-cve-db") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let r = import(&mut db, &dir.join("victims-cve-db.tar.gz"));
    assert_eq!(r.imported["victims"], 196);
    let hits = db.affected("Maven", "commons-beanutils:commons-beanutils").unwrap();
    assert!(hits.iter().any(|a| a.vuln_id == "CVE-2019-10086" && a.ranges[0].events == [Event::Introduced("0".into()), Event::LastAffected("1.9.3".into())]), "{hits:?}");
    assert!(!db.affected("PyPI", "Requests").unwrap().is_empty());
}

/// Held-back records arrive as lone files: each must import without its folder's context.
#[test]
fn lone_files_import_alone() {
    let Some(adv) = kensa_testdata::shared_path("advisories") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut db = fresh_db(&tmp);
    let pick = |archive: &str, member: &str| -> String {
        tar_members(&adv.join(archive)).into_iter().find(|(p, _)| p == member).unwrap_or_else(|| panic!("{member}")).1
    };
    let cases = [
        ("rustsec/rustsec-advisory-db.tar.gz", "rust/std/CVE-2015-20001.md", "CVE-2015-20001", "Rust", "std"),
        ("nodejs-security-wg/nodejs-security-wg-vuln.tar.gz", "vuln/core/1.json", "NSWG-CORE-1", "Node.js", "node"),
        ("nodejs-security-wg/nodejs-security-wg-vuln.tar.gz", "vuln/deps/1.json", "NSWG-DEPS-1", "Node.js", "node"),
        ("almalinux/almalinux9.tar.gz", "almalinux9/ALBA-2022:8256.json", "ALBA-2022:8256", "AlmaLinux:9", "qatzip"),
    ];
    for (archive, member, id, eco, pkg) in cases {
        let file = tmp.path().join(member.rsplit('/').next().unwrap());
        std::fs::write(&file, pick(archive, member)).unwrap();
        import(&mut db, &file);
        let rec = db.records(id).unwrap();
        assert_eq!(rec.len(), 1, "{member}");
        assert_eq!((rec[0].affected[0].ecosystem.as_str(), rec[0].affected[0].name.as_str()), (eco, pkg), "{member}");
    }
    // One DSA record cut from the list.
    let list = std::fs::read_to_string(adv.join("debian-security-tracker/DSA-list.txt")).unwrap();
    let record: String = list.lines().take_while(|l| !l.starts_with("[27 Mar 2023]")).map(|l| format!("{l}\n")).collect();
    let file = tmp.path().join("DSA-5380-1");
    std::fs::write(&file, record).unwrap();
    let r = import(&mut db, &file);
    assert_eq!(r.imported["debian-dsa"], 1);
    assert_eq!(db.records("DSA-5380-1").unwrap()[0].affected[0].fixed_versions(), ["2:1.20.11-1+deb11u6"]);
}
