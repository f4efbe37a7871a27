//! Every real database in `../shared/data/rpmdb/` lists exactly its expected packages, in order,
//! with every field the expected JSON has.

use std::path::Path;

use kensa_rpmdb::{Backend, PackageDb, RpmPackage};
use serde_json::Value;

fn packages(db_file: &Path) -> Vec<RpmPackage> {
    let db = PackageDb::open_path(db_file).unwrap_or_else(|e| panic!("{}: {e}", db_file.display()));
    db.packages().map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", db_file.display())).1).collect()
}

fn as_json(p: &RpmPackage) -> Value {
    serde_json::json!({
        "epoch": p.epoch,
        "name": p.name,
        "version": p.version,
        "release": p.release,
        "arch": p.arch,
        "source_rpm": p.source_rpm,
        // The expected lists come from `rpm -qa --qf %{SIZE}` with "(none)" mapped to 0.
        "size": p.size.unwrap_or(0),
        "license": p.license,
        "vendor": p.vendor,
        "modularitylabel": p.modularity_label,
        "summary": p.summary,
        "sigmd5": p.sigmd5,
    })
}

fn check_fixture(fixture: &str, db_name: &str, expected_name: &str, backend: Backend) {
    let Some(dir) = kensa_testdata::shared_path(&format!("rpmdb/{fixture}")) else { return };
    let db_file = dir.join(db_name);
    assert_eq!(PackageDb::open_path(&db_file).unwrap().backend(), backend);
    let expected: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join(expected_name)).unwrap()).unwrap();
    let got = packages(&db_file);
    for (i, (want, have)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(&as_json(have), want, "{fixture}: package {i} differs");
        assert!(have.files_error.is_none(), "{fixture}: package {i}: {:?}", have.files_error);
    }
    assert_eq!(got.len(), expected.len(), "{fixture}: package count");
}

#[test]
fn centos7_plain_berkeley_db() {
    check_fixture("centos7-plain", "Packages", "expected_packages.json", Backend::BerkeleyDb);
}

#[test]
fn centos7_many_berkeley_db() {
    check_fixture("centos7-many", "Packages", "expected_packages.json", Backend::BerkeleyDb);
}

#[test]
fn sle15_bci_ndb() {
    check_fixture("sle15-bci", "Packages.db", "expected_packages.json", Backend::Ndb);
}

#[test]
fn cbl_mariner_sqlite() {
    check_fixture("cbl-mariner-2.0", "rpmdb.sqlite", "rpm_qa_generated.json", Backend::Sqlite);
}

/// Upstream's single-package expectation: install time and the installed file names.
#[test]
fn cbl_mariner_curl_files() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0") else { return };
    let want: Value = serde_json::from_slice(&std::fs::read(dir.join("expected_package_curl.json")).unwrap()).unwrap();
    let want = &want["expected"];
    let curl = packages(&dir.join("rpmdb.sqlite")).into_iter().find(|p| p.name == "curl").expect("curl is installed");
    assert_eq!(curl.install_time, want["install_time"].as_i64());
    let names: Vec<&str> = want["installed_file_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(curl.files, names);
}
