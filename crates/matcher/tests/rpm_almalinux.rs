//! rpm matching against real AlmaLinux 9 OSV advisories, with rpm itself as the oracle.
//!
//! The test builds stub packages with `rpmbuild` whose versions sit just below, at and above
//! fixed versions taken from the advisories (plain, with epochs, modular with their stream's
//! modularity label, the same modular versions labelled with another stream, and non-modular
//! builds of modular package names), installs them into an rpm database written by Debian's
//! `rpm`, and compares kensa's findings with those `tests/oracle/rpm_oracle.py` computes from the
//! same records with `rpm.labelCompare`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn python_rpm_available() -> bool {
    let ok = Command::new("/usr/bin/python3").args(["-c", "import rpm"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        assert!(!kensa_testdata::in_ci(), "/usr/bin/python3 with python3-rpm is missing (scripts/install-test-deps.sh installs it)");
        eprintln!("SKIP: /usr/bin/python3 with python3-rpm is missing");
    }
    ok
}

fn build_rpms(packages: &[Value], work: &Path) -> Vec<std::path::PathBuf> {
    let mut tiers: Vec<&str> = packages.iter().map(|p| p["tier"].as_str().unwrap()).collect();
    tiers.sort();
    tiers.dedup();
    for tier in tiers {
        let mut spec = format!("Name: kensa-stubs-{tier}\nVersion: 1\nRelease: 1\nSummary: stubs\nLicense: MIT\nBuildArch: noarch\n%description\nstubs\n");
        let mut files = String::new();
        for p in packages.iter().filter(|p| p["tier"] == tier) {
            let name = p["name"].as_str().unwrap();
            spec.push_str(&format!("\n%package -n {name}\nVersion: {}\nRelease: {}\nSummary: stub\n", p["version"].as_str().unwrap(), p["release"].as_str().unwrap()));
            if let Some(e) = p["epoch"].as_u64() {
                spec.push_str(&format!("Epoch: {e}\n"));
            }
            if let Some(l) = p["modularity_label"].as_str() {
                spec.push_str(&format!("ModularityLabel: {l}\n"));
            }
            spec.push_str(&format!("%description -n {name}\nstub\n"));
            files.push_str(&format!("%files -n {name}\n"));
        }
        spec.push('\n');
        spec.push_str(&files);
        let path = work.join(format!("{tier}.spec"));
        std::fs::write(&path, spec).unwrap();
        run(Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", work.join("top").display()))
            .args(["--define", "_build_id_links none", "--quiet"])
            .arg(&path));
    }
    let dir = work.join("top/RPMS/noarch");
    let mut rpms: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    rpms.sort();
    rpms
}

#[test]
fn almalinux9_findings_equal_rpm_oracle() {
    let Some(advisories) = kensa_testdata::shared_path("advisories/almalinux/almalinux9.tar.gz") else { return };
    if !kensa_testdata::require_tool("rpmbuild") || !kensa_testdata::require_tool("rpm") || !python_rpm_available() {
        return;
    }
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/rpm_oracle.py");
    let work = tempfile::tempdir().unwrap();
    let sample: Vec<Value> = serde_json::from_slice(&run(Command::new("/usr/bin/python3").arg(&oracle).arg("sample").arg(&advisories).arg("AlmaLinux:9"))).unwrap();
    assert!(sample.len() >= 60, "sample too small: {}", sample.len());

    // The target: os-release of AlmaLinux 9.4 and an rpm database written by rpm.
    let root = work.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    std::fs::write(root.join("etc/os-release"), "NAME=\"AlmaLinux\"\nVERSION=\"9.4 (Seafoam Ocelot)\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n").unwrap();
    let rpms = build_rpms(&sample, work.path());
    assert_eq!(rpms.len(), sample.len(), "one rpm per sampled package");
    let dbpath = root.join("var/lib/rpm");
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(&dbpath)
        .args(["--define", "_db_backend sqlite", "-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos"])
        .args(&rpms));
    // What rpm itself says is installed is the oracle's input.
    let qa = run(Command::new("rpm").arg("--dbpath").arg(&dbpath).args([
        "--define",
        "_db_backend sqlite",
        "-qa",
        "--qf",
        "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{MODULARITYLABEL}\\n",
    ]));
    let none = |s: &str| if s == "(none)" { Value::Null } else { Value::String(s.to_string()) };
    let installed: Vec<Value> = String::from_utf8(qa)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let epoch = f[1].parse::<u64>().map(Value::from).unwrap_or(Value::Null);
            serde_json::json!({ "name": f[0], "epoch": epoch, "version": f[2], "release": f[3], "modularity_label": none(f[4]) })
        })
        .collect();
    assert_eq!(installed.len(), sample.len());
    let installed_path = work.path().join("installed.json");
    std::fs::write(&installed_path, serde_json::to_vec(&installed).unwrap()).unwrap();
    let expected: Vec<(String, String, String)> = serde_json::from_slice(&run(Command::new("/usr/bin/python3")
        .arg(&oracle)
        .arg("expect")
        .arg(&advisories)
        .arg("AlmaLinux:9")
        .arg(&installed_path)))
    .unwrap();
    let expected: BTreeSet<_> = expected.into_iter().collect();

    // kensa: import the same advisories, inventory the tree, match.
    let db_path = work.path().join("vuln.db");
    let mut db = kensa_vulndb::VulnDb::create(&db_path).unwrap();
    let report = kensa_vulndb::import::import_path(&mut db, &advisories).unwrap();
    assert_eq!(report.skipped, 0, "{:?}", report.warnings);
    drop(db);
    let db = kensa_vulndb::VulnDb::open(&db_path).unwrap();
    let fs = kensa_fs::Root::dir(&root).unwrap();
    let inv = kensa_inventory::scan(&fs, &kensa_inventory::ScanOptions::default());
    assert_eq!(inv.packages.len(), sample.len(), "{:?}", inv.warnings);
    let result = kensa_matcher::match_inventory(&db, &inv, &Default::default(), &mut |_, _| {}).unwrap();
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
    assert_eq!(result.os_ecosystems, ["AlmaLinux:9"]);
    let got: BTreeSet<(String, String, String)> = result
        .findings
        .iter()
        .map(|f| (f.vulnerability_id().to_string(), f.package().name.clone(), f.package().version.clone()))
        .collect();
    assert_eq!(got.len(), result.findings.len(), "one finding per advisory and package instance");

    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing (oracle only): {missing:#?}\nextra (kensa only): {extra:#?}");
    // The sample exercises what it is meant to.
    let has = |pred: &dyn Fn(&(String, String, String)) -> bool| expected.iter().any(pred);
    assert!(has(&|t| t.2.starts_with("1:") || t.2.starts_with("2:") || t.2.starts_with("9:")), "an epoch-bearing finding");
    assert!(has(&|t| t.2.contains(".module_el")), "a modular finding");
    assert!(expected.len() >= 30, "{} expected findings", expected.len());
    for f in &result.findings {
        let p = f.package();
        assert_eq!(p.package_manager, "OS");
        if f.vulnerability_id().starts_with("ALSA-") && f.fix_available == kensa_matcher::FixAvailable::Yes {
            assert_eq!(p.remediation, format!("dnf upgrade --advisory={}", f.vulnerability_id()));
        }
        assert!(f.title.starts_with(f.vulnerability_id()));
    }
}
