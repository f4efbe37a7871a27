//! PyPI, npm and Maven matching on the realistic Debian test tree against the real PyPA and
//! GitHub advisories, with each ecosystem's upstream version implementation as the oracle:
//! pypa `packaging` (PyPI), node-semver (npm) and Maven's ComparableVersion (Maven), evaluating
//! the same OSV records independently of kensa (`tests/oracle/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kensa_inventory::{Inventory, PackageType};
use kensa_matcher::{match_inventory, MatchOptions};
use kensa_vulndb::VulnDb;
use serde_json::{json, Value};

type Triple = (String, String, String);

struct Fixture {
    _dir: tempfile::TempDir,
    db: VulnDb,
    inv: Inventory,
    pypa: PathBuf,
    ghsa: PathBuf,
}

fn fixture() -> Option<Fixture> {
    let pypa = kensa_testdata::shared_path("advisories/pypa/pypa-advisory-database.tar.gz")?;
    let ghsa = kensa_testdata::shared_path("advisories/ghsa")?;
    let rootfs = kensa_testdata::debian_rootfs()?;
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let db_path = dir.path().join("vuln.db");
    let mut db = VulnDb::create(&db_path).unwrap();
    for src in [&pypa, &ghsa] {
        let r = kensa_vulndb::import::import_path(&mut db, src).unwrap();
        assert!(r.total() > 0, "{} imported nothing", src.display());
    }
    drop(db);
    eprintln!("import: {:?}", t0.elapsed());
    let db = VulnDb::open(&db_path).unwrap();
    let root = kensa_fs::Root::dir(&rootfs).unwrap();
    let inv = kensa_inventory::scan(&root, &kensa_inventory::ScanOptions::default());
    eprintln!("inventory: {:?} ({} packages)", t0.elapsed(), inv.packages.len());
    Some(Fixture { _dir: dir, db, inv, pypa, ghsa })
}

fn run_json(cmd: &mut Command) -> Vec<Triple> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd:?}: bad output: {e}"))
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

#[test]
fn pypi_npm_maven_findings_equal_upstream_oracles() {
    let Some(fx) = fixture() else { return };
    let Some(python) = kensa_testdata::venv_tool("python") else { return };
    if !kensa_testdata::require_tool("node") || !kensa_testdata::require_tool("java") {
        return;
    }
    let jar = Path::new("/usr/share/java/maven-artifact-3.x.jar");
    if !jar.is_file() {
        assert!(!kensa_testdata::in_ci(), "{} is missing (scripts/install-test-deps.sh installs libmaven3-core-java)", jar.display());
        eprintln!("SKIP: {} is missing", jar.display());
        return;
    }
    let semver = kensa_testdata::test_npm_dir().join("node_modules/semver");
    assert!(semver.is_dir() || !kensa_testdata::in_ci(), "node-semver is missing");
    if !semver.is_dir() {
        eprintln!("SKIP: node-semver is missing");
        return;
    }

    let t0 = std::time::Instant::now();
    let result = match_inventory(&fx.db, &fx.inv, &MatchOptions::default(), &mut |_, _| {}).unwrap();
    eprintln!("match: {:?}", t0.elapsed());
    // The packages the oracles get: the language packages kensa matches (OS-owned ones are
    // matched through their OS package; see the os_owned test).
    let installed: Vec<Value> = fx
        .inv
        .packages
        .iter()
        .filter(|p| p.owned_by.is_none())
        .filter_map(|p| {
            let eco = match p.package_type {
                PackageType::Pypi => "PyPI",
                PackageType::Npm => "npm",
                PackageType::Maven => "Maven",
                _ => return None,
            };
            Some(json!({ "ecosystem": eco, "name": p.name, "version": p.version }))
        })
        .collect();
    for eco in ["PyPI", "npm", "Maven"] {
        assert!(installed.iter().any(|p| p["ecosystem"] == eco), "no {eco} package in the test tree");
    }
    let work = tempfile::tempdir().unwrap();
    let installed_path = work.path().join("installed.json");
    std::fs::write(&installed_path, serde_json::to_vec(&installed).unwrap()).unwrap();

    let mut expected: BTreeSet<Triple> =
        run_json(Command::new(&python).arg(oracle_dir().join("lang_oracle.py")).arg(&fx.pypa).arg(&fx.ghsa).arg(&installed_path).arg(jar)).into_iter().collect();
    expected.extend(run_json(Command::new("node").arg(oracle_dir().join("npm_oracle.js")).arg(&semver).arg(&fx.ghsa).arg(&installed_path)));

    let got: BTreeSet<Triple> = result
        .findings
        .iter()
        .filter(|f| f.package().package_manager != "OS")
        .map(|f| (f.vulnerability_id().to_string(), f.package().name.clone(), f.package().version.clone()))
        .collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing (oracle only): {missing:#?}\nextra (kensa only): {extra:#?}");
    for (eco, pm) in [("PyPI", "PYTHONPKG"), ("npm", "NODEPKG"), ("Maven", "JAR")] {
        assert!(result.findings.iter().any(|f| f.package().package_manager == pm), "no {eco} finding: the test would prove nothing");
    }
    // Remediation commands per package manager.
    for f in &result.findings {
        let p = f.package();
        if f.fix_available == kensa_matcher::FixAvailable::Yes {
            let want = match p.package_manager.as_str() {
                "PYTHONPKG" => format!("pip install '{}>={}'", p.name, p.fixed_in_version),
                "NODEPKG" => format!("npm install {}@{}", p.name, p.fixed_in_version),
                _ => format!("Update the dependency {} to version {} or later.", p.name, p.fixed_in_version),
            };
            assert_eq!(p.remediation, want);
        }
    }
}

#[test]
fn os_owned_python_packages_match_only_when_asked() {
    let Some(fx) = fixture() else { return };
    let owned: Vec<_> = fx.inv.packages.iter().filter(|p| p.owned_by.is_some() && p.package_type == PackageType::Pypi).collect();
    assert!(!owned.is_empty(), "the Debian tree has Python packages owned by Debian packages (python3-requests, ...)");
    let default = match_inventory(&fx.db, &fx.inv, &MatchOptions::default(), &mut |_, _| {}).unwrap();
    let owned_paths: BTreeSet<&str> = owned.iter().map(|p| p.path()).collect();
    assert!(
        !default.findings.iter().any(|f| f.package().file_path.as_deref().is_some_and(|fp| owned_paths.contains(fp))),
        "OS-owned packages are matched through their OS package only"
    );
    let all = match_inventory(&fx.db, &fx.inv, &MatchOptions { include_os_owned: true, ..Default::default() }, &mut |_, _| {}).unwrap();
    let owned_findings: Vec<_> = all.findings.iter().filter(|f| f.package().file_path.as_deref().is_some_and(|fp| owned_paths.contains(fp))).collect();
    assert!(!owned_findings.is_empty(), "--include-os-owned matches them (Debian 12's python3-requests 2.28.1 has PyPA advisories)");
    for f in &default.findings {
        assert!(all.findings.contains(f), "{}", f.title);
    }
    assert!(all.packages_matched > default.packages_matched);
}
