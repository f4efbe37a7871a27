//! The rpm cataloger on real databases laid out as in real root filesystems.

use std::path::Path;

use kensa_fs::Root;
use kensa_inventory::{os::rpm, CatalogContext, Inventory, OsInfo};
use serde_json::Value;

fn os(id: &str, version_id: &str) -> OsInfo {
    OsInfo { id: id.into(), version_id: version_id.into(), source_file: "/etc/os-release".into(), ..Default::default() }
}

/// A root filesystem with `db` copied to `rel` (a temporary copy: tests never modify shared data).
fn rootfs_with(db: &Path, rel: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(rel);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(db, &dest).unwrap();
    dir
}

fn catalog(dir: &Path, os: Option<&OsInfo>) -> Inventory {
    let root = Root::dir(dir).unwrap();
    let mut inv = Inventory::default();
    rpm::catalog(&CatalogContext { root: &root, os }, &mut inv);
    inv
}

/// What the cataloger must produce for each expected entry (gpg-pubkey entries are not packages).
fn expected_purls(expected: &Path, namespace: &str, distro: &str) -> Vec<(String, String, String)> {
    let list: Vec<Value> = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
    list.iter()
        .filter(|p| p["name"] != "gpg-pubkey")
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            let epoch = p["epoch"].as_u64().filter(|&e| e > 0);
            let vr = format!("{}-{}", s("version"), s("release"));
            let version = epoch.map(|e| format!("{e}:{vr}")).unwrap_or(vr.clone());
            let epoch_q = epoch.map(|e| format!("&epoch={e}")).unwrap_or_default();
            let purl = format!("pkg:rpm/{namespace}/{}@{}?arch={}&distro={distro}{epoch_q}", s("name").replace('+', "%2B"), vr.replace('+', "%2B"), s("arch"));
            (s("name"), version, purl)
        })
        .collect()
}

fn assert_same(got: &[(String, String, String)], want: &[(String, String, String)]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "package {i}");
    }
    assert_eq!(got.len(), want.len());
}

fn got_purls(inv: &Inventory) -> Vec<(String, String, String)> {
    inv.packages.iter().map(|p| (p.name.clone(), p.version.clone(), p.purl.clone())).collect()
}

#[test]
fn sqlite_database_in_var_lib_rpm() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0") else { return };
    let root = rootfs_with(&dir.join("rpmdb.sqlite"), "var/lib/rpm/rpmdb.sqlite");
    let inv = catalog(root.path(), Some(&os("mariner", "2.0")));
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_same(&got_purls(&inv), &expected_purls(&dir.join("rpm_qa_generated.json"), "mariner", "mariner-2.0"));
    let curl = inv.packages.iter().find(|p| p.name == "curl").unwrap();
    assert_eq!(curl.source_name.as_deref(), Some("curl"));
    assert_eq!(curl.source_rpm.as_deref(), Some("curl-7.76.0-6.cm2.src.rpm"));
    assert_eq!(curl.vendor.as_deref(), Some("Microsoft Corporation"));
    assert_eq!(curl.license.as_deref(), Some("MIT"));
    assert_eq!(curl.size, Some(326023));
    assert_eq!(curl.install_time, Some(1643279454));
    assert_eq!(curl.path(), "/var/lib/rpm/rpmdb.sqlite");
    assert!(curl.files.contains(&"/usr/bin/curl".to_string()), "{:?}", curl.files);
}

#[test]
fn ndb_database_behind_the_var_lib_rpm_symlink() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/sle15-bci") else { return };
    let root = rootfs_with(&dir.join("Packages.db"), "usr/lib/sysimage/rpm/Packages.db");
    std::fs::create_dir_all(root.path().join("var/lib")).unwrap();
    std::os::unix::fs::symlink("../../usr/lib/sysimage/rpm", root.path().join("var/lib/rpm")).unwrap();
    let inv = catalog(root.path(), Some(&os("sles", "15.3")));
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_same(&got_purls(&inv), &expected_purls(&dir.join("expected_packages.json"), "sles", "sles-15.3"));
    assert!(inv.packages.iter().all(|p| p.path() == "/usr/lib/sysimage/rpm/Packages.db"));
}

#[test]
fn berkeley_db_without_gpg_pubkeys_and_rhel_namespace() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/centos7-many") else { return };
    let root = rootfs_with(&dir.join("Packages"), "var/lib/rpm/Packages");
    let inv = catalog(root.path(), Some(&os("rhel", "7.9")));
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert_same(&got_purls(&inv), &expected_purls(&dir.join("expected_packages.json"), "redhat", "rhel-7.9"));
    assert!(inv.packages.iter().all(|p| p.name != "gpg-pubkey"));
    assert_eq!(inv.packages.len(), 396 - 1);
}

#[test]
fn no_os_release_means_no_namespace_or_distro() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/sle15-bci") else { return };
    let root = rootfs_with(&dir.join("Packages.db"), "var/lib/rpm/Packages.db");
    let inv = catalog(root.path(), None);
    assert_eq!(inv.packages.len(), 35);
    assert!(inv.packages.iter().all(|p| p.purl.strip_prefix("pkg:rpm/").unwrap().split('@').next().unwrap().find('/').is_none() && !p.purl.contains("distro=")));
}

#[test]
fn corrupt_or_missing_databases_are_warnings() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/sle15-bci") else { return };
    // No database at all: nothing, silently.
    let empty = tempfile::tempdir().unwrap();
    let inv = catalog(empty.path(), None);
    assert!(inv.packages.is_empty() && inv.warnings.is_empty());

    // Garbage where the database should be: one partial warning naming the file.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/rpm")).unwrap();
    std::fs::write(root.path().join("var/lib/rpm/Packages"), b"this is not a database").unwrap();
    let inv = catalog(root.path(), None);
    assert!(inv.packages.is_empty());
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert!(inv.warnings[0].partial && inv.warnings[0].path == "/var/lib/rpm/Packages", "{:?}", inv.warnings);
    assert!(inv.warnings[0].message.contains("not an rpm database"), "{:?}", inv.warnings);

    // A damaged blob in the middle: the other packages are still listed, the result is partial.
    let mut bytes = std::fs::read(dir.join("Packages.db")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].fill(0xA5);
    std::fs::write(root.path().join("var/lib/rpm/Packages"), &bytes).unwrap();
    let inv = catalog(root.path(), None);
    assert!(inv.is_partial(), "{:?}", inv.warnings);
    assert!(!inv.packages.is_empty() && inv.packages.len() < 35, "{}", inv.packages.len());
    assert!(inv.warnings.iter().all(|w| w.path == "/var/lib/rpm/Packages" && w.message.contains("package")), "{:?}", inv.warnings);
}

/// The RHEL-9.4-like tree of ../shared/tools/make-rhel9-rootfs.sh (its rpmdb.sqlite written by
/// Debian's rpm, its os-release as RHEL ships it), scanned end to end: the packages are exactly
/// what `rpm -qa` lists, with Red Hat purls. Same fixture (name and build) as the CIS tests, so it
/// is built once per workspace.
#[test]
fn rhel9_tree_matches_rpm_qa() {
    let Some(tools) = kensa_testdata::shared_tools() else { return };
    if !kensa_testdata::require_tool("rpmbuild") || !kensa_testdata::require_tool("rpm") {
        return;
    }
    let Some(tree) = kensa_testdata::cached_fixture("cis-rhel9-seed0", |out| {
        let st = std::process::Command::new("bash")
            .arg(tools.join("make-rhel9-rootfs.sh"))
            .arg(out)
            .arg("0")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("make-rhel9-rootfs.sh: {e}"))?;
        if st.success() { Ok(()) } else { Err(format!("make-rhel9-rootfs.sh exited with {st}")) }
    }) else {
        return;
    };
    let out = std::process::Command::new("rpm")
        .arg("--dbpath")
        .arg(tree.join("var/lib/rpm"))
        .args(["-qa", "--qf", "%{NAME}|%{EPOCHNUM}|%{VERSION}|%{RELEASE}|%{ARCH}\n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let enc = |s: &str| kensa_inventory::purl::encode(s, true);
    let mut want: Vec<(String, String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("gpg-pubkey|"))
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let vr = format!("{}-{}", f[2], f[3]);
            let (version, epoch_q) = if f[1] == "0" { (vr.clone(), String::new()) } else { (format!("{}:{vr}", f[1]), format!("&epoch={}", f[1])) };
            (f[0].to_string(), version, format!("pkg:rpm/redhat/{}@{}?arch={}&distro=rhel-9.4{epoch_q}", enc(f[0]), enc(&vr), f[4]))
        })
        .collect();
    assert!(want.len() > 40, "{want:?}");

    let root = Root::dir(&tree).unwrap();
    let inv = kensa_inventory::scan(&root, &Default::default());
    assert_eq!(inv.os.as_ref().map(|o| (o.id.as_str(), o.version_id.as_str())), Some(("rhel", "9.4")));
    let rpm_warnings: Vec<_> = inv.warnings.iter().filter(|w| w.cataloger == "rpm").collect();
    assert!(rpm_warnings.is_empty(), "{rpm_warnings:?}");
    let mut got: Vec<_> = inv.packages.iter().filter(|p| p.package_type == kensa_inventory::PackageType::Rpm).map(|p| (p.name.clone(), p.version.clone(), p.purl.clone())).collect();
    got.sort();
    want.sort();
    assert_same(&got, &want);
}

/// Two databases in one target: the target's rpm macros (`%_dbpath`, `%_db_backend`) decide, as
/// they decide for rpm; without them, /var/lib/rpm and the newest format win.
#[test]
fn several_databases_follow_the_targets_rpm_macros() {
    let (Some(bdb), Some(ndb), Some(sqlite)) = (
        kensa_testdata::shared_path("rpmdb/centos7-plain/Packages"),
        kensa_testdata::shared_path("rpmdb/sle15-bci/Packages.db"),
        kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0/rpmdb.sqlite"),
    ) else {
        return;
    };
    let put = |root: &Path, rel: &str, from: &Path| {
        let dest = root.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, dest).unwrap();
    };
    let write = |root: &Path, rel: &str, text: &str| {
        let dest = root.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, text).unwrap();
    };
    let chosen = |root: &Path| rpm::find_database(&Root::dir(root).unwrap()).map(|p| p.to_string_lossy().into_owned());

    // Two directories.
    let t = tempfile::tempdir().unwrap();
    put(t.path(), "var/lib/rpm/Packages", &bdb);
    put(t.path(), "usr/lib/sysimage/rpm/Packages.db", &ndb);
    assert_eq!(chosen(t.path()).as_deref(), Some("/var/lib/rpm/Packages"));
    write(t.path(), "usr/lib/rpm/macros", "%_var\t\t/var\n%_dbpath\t\t%{_usr}/lib/sysimage/rpm\n%_dbpath_rebuild\t%{_dbpath}\n");
    assert_eq!(chosen(t.path()).as_deref(), Some("/usr/lib/sysimage/rpm/Packages.db"));
    // /etc/rpm/macros.* is read after /usr/lib/rpm/macros.
    write(t.path(), "etc/rpm/macros.dbpath", "%_dbpath %{_var}/lib/rpm\n");
    assert_eq!(chosen(t.path()).as_deref(), Some("/var/lib/rpm/Packages"));
    assert_eq!(catalog(t.path(), None).packages.len(), 144);

    // Two formats in one directory.
    let t = tempfile::tempdir().unwrap();
    put(t.path(), "var/lib/rpm/Packages", &bdb);
    put(t.path(), "var/lib/rpm/rpmdb.sqlite", &sqlite);
    assert_eq!(chosen(t.path()).as_deref(), Some("/var/lib/rpm/rpmdb.sqlite"));
    write(t.path(), "usr/lib/rpm/macros.d/macros.db", "%_db_backend bdb\n");
    assert_eq!(chosen(t.path()).as_deref(), Some("/var/lib/rpm/Packages"));
    // A configured backend without its file: rpm uses the database that exists.
    write(t.path(), "usr/lib/rpm/macros.d/macros.db", "%_db_backend ndb\n");
    assert_eq!(chosen(t.path()).as_deref(), Some("/var/lib/rpm/rpmdb.sqlite"));
}
