//! Focused matching policies on small, hand-written advisory sets imported with kensa's own
//! importers: module streams, the running kernel, unfixed vendor statuses, Debian source packages.


use kensa_inventory::{Inventory, OsInfo, Package, PackageType};
use kensa_matcher::{match_inventory, FixAvailable, MatchOptions, Severity};
use kensa_vulndb::VulnDb;
use serde_json::{json, Value};

fn db_with(docs: &[(&str, Value)]) -> (tempfile::TempDir, VulnDb) {
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    for (name, doc) in docs {
        std::fs::write(feeds.join(name), serde_json::to_vec(doc).unwrap()).unwrap();
    }
    let path = dir.path().join("vuln.db");
    let mut db = VulnDb::create(&path).unwrap();
    let r = kensa_vulndb::import::import_path(&mut db, &feeds).unwrap();
    assert_eq!(r.skipped, 0, "{:?}", r.warnings);
    drop(db);
    (dir, VulnDb::open(&path).unwrap())
}

fn alsa(id: &str, summary: &str, name: &str, fixed: &str) -> (String, Value) {
    (
        format!("{id}.json"),
        json!({
            "id": id, "summary": summary, "modified": "2024-01-01T00:00:00Z", "published": "2024-01-01T00:00:00Z",
            "related": ["CVE-2024-0001"],
            "affected": [{ "package": { "ecosystem": "AlmaLinux:9", "name": name },
                           "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": fixed }] }] }]
        }),
    )
}

fn rpm(name: &str, evr: &str, arch: &str, label: Option<&str>) -> Package {
    let mut p = Package::new(PackageType::Rpm, name, evr, format!("pkg:rpm/almalinux/{name}@{evr}"));
    p.arch = Some(arch.into());
    p.modularity_label = label.map(str::to_string);
    p.locations.push(kensa_inventory::Location { path: "/var/lib/rpm/rpmdb.sqlite".into() });
    p
}

fn inventory(os: (&str, &str), packages: Vec<Package>) -> Inventory {
    Inventory { target: "test".into(), os: Some(OsInfo { id: os.0.into(), version_id: os.1.into(), ..Default::default() }), packages, warnings: vec![] }
}

fn ids(r: &kensa_matcher::MatchResult, version: &str) -> Vec<String> {
    let mut v: Vec<String> = r.findings.iter().filter(|f| f.package().version == version).map(|f| f.vulnerability_id().to_string()).collect();
    v.sort();
    v
}

#[test]
fn module_streams_only_match_their_own_stream() {
    let docs: Vec<(String, Value)> = vec![
        alsa("ALSA-2024:0018", "Moderate: nodejs:18 security update", "nodejs", "1:18.20.0-1.module_el9.3.0+1+aaaaaaaa"),
        alsa("ALSA-2024:0020", "Important: nodejs:20 security update", "nodejs", "1:20.11.0-1.module_el9.3.0+2+bbbbbbbb"),
        alsa("ALSA-2024:0016", "Moderate: nodejs security update", "nodejs", "1:16.20.2-1.el9"),
    ];
    let docs: Vec<(&str, Value)> = docs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let (_d, db) = db_with(&docs);
    let inv = inventory(
        ("almalinux", "9.3"),
        vec![
            rpm("nodejs", "1:18.19.0-1.module_el9.2.0+5+cccccccc", "x86_64", Some("nodejs:18:9020020230510:rhel9")),
            rpm("nodejs", "1:20.10.0-1.module_el9.2.0+6+dddddddd", "x86_64", Some("nodejs:20:9020020230510:rhel9")),
            rpm("nodejs", "1:16.14.0-1.el9", "x86_64", None),
        ],
    );
    let r = match_inventory(&db, &inv, &MatchOptions::default(), &mut |_, _| {}).unwrap();
    // A plain version comparison would flag the nodejs:18 build with the nodejs:20 fix (18 < 20)
    // and with the non-modular one; the stream rules keep each to its own.
    assert_eq!(ids(&r, "1:18.19.0-1.module_el9.2.0+5+cccccccc"), ["ALSA-2024:0018"]);
    assert_eq!(ids(&r, "1:20.10.0-1.module_el9.2.0+6+dddddddd"), ["ALSA-2024:0020"]);
    assert_eq!(ids(&r, "1:16.14.0-1.el9"), ["ALSA-2024:0016"]);
    let f = r.findings.iter().find(|f| f.vulnerability_id() == "ALSA-2024:0020").unwrap();
    assert_eq!(f.package().fixed_in_version, "1:20.11.0-1.module_el9.3.0+2+bbbbbbbb");
    assert_eq!(f.package_vulnerability_details.vendor_severity.as_deref(), Some("Important"));
    assert_eq!(f.severity, Severity::High, "no CVSS: the vendor's Important");
    assert_eq!(f.package_vulnerability_details.related_vulnerabilities, ["CVE-2024-0001"]);
}

#[test]
fn only_the_running_kernel_is_reported_as_vulnerable() {
    let docs = [alsa("ALSA-2024:9999", "Important: kernel security update", "kernel-core", "5.14.0-500.el9")];
    let docs: Vec<(&str, Value)> = docs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let (_d, db) = db_with(&docs);
    let inv = inventory(("almalinux", "9.4"), vec![rpm("kernel-core", "5.14.0-427.el9", "x86_64", None), rpm("kernel-core", "5.14.0-362.el9", "x86_64", None)]);
    let live = MatchOptions { running_kernel: Some("5.14.0-427.el9.x86_64".into()), ..Default::default() };
    let r = match_inventory(&db, &inv, &live, &mut |_, _| {}).unwrap();
    assert_eq!(r.findings.len(), 2, "both installed kernels are listed");
    let running = r.findings.iter().find(|f| f.package().version == "5.14.0-427.el9").unwrap();
    let idle = r.findings.iter().find(|f| f.package().version == "5.14.0-362.el9").unwrap();
    assert_eq!(running.severity, Severity::High);
    assert!(running.note.is_none());
    assert_eq!(idle.severity, Severity::Informational);
    assert!(idle.note.as_deref().unwrap().contains("not running"));
    // Not a live host: every kernel counts.
    let r = match_inventory(&db, &inv, &MatchOptions::default(), &mut |_, _| {}).unwrap();
    assert!(r.findings.iter().all(|f| f.severity == Severity::High));
}

#[test]
fn unfixed_statuses_and_debian_source_packages() {
    let tracker = json!({
        "openssl": {
            "CVE-2024-1001": { "description": "fixed one", "releases": { "bookworm": { "status": "resolved", "fixed_version": "3.0.15-1~deb12u1", "urgency": "medium" } } },
            "CVE-2024-1002": { "description": "ignored one", "releases": { "bookworm": { "status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": "ignored" } } },
            "CVE-2024-1003": { "description": "open one", "releases": { "bookworm": { "status": "open", "urgency": "not yet assigned" } } },
            "CVE-2024-1004": { "description": "never affected", "releases": { "bookworm": { "status": "resolved", "fixed_version": "0", "urgency": "unimportant" } } }
        }
    });
    let (_d, db) = db_with(&[("debian-tracker.json", tracker)]);
    let mut libssl = Package::new(PackageType::Deb, "libssl3", "3.0.11-1~deb12u2+b1", "pkg:deb/debian/libssl3@3.0.11-1~deb12u2+b1");
    libssl.source_name = Some("openssl".into());
    libssl.source_version = Some("3.0.11-1~deb12u2".into());
    let r = match_inventory(&db, &inventory(("debian", "12"), vec![libssl]), &MatchOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(r.os_ecosystems, ["Debian:12"]);
    let by = |id: &str| r.findings.iter().find(|f| f.vulnerability_id() == id);
    let fixed = by("CVE-2024-1001").expect("matched through the source package");
    assert_eq!(fixed.fix_available, FixAvailable::Yes);
    assert_eq!(fixed.package().fixed_in_version, "3.0.15-1~deb12u1");
    assert_eq!(fixed.package().name, "libssl3");
    assert_eq!(fixed.package().source_package_name.as_deref(), Some("openssl"));
    assert_eq!(fixed.package().remediation, "apt-get install --only-upgrade libssl3");
    let wontfix = by("CVE-2024-1002").unwrap();
    assert_eq!((wontfix.fix_available, wontfix.vendor_status.as_str()), (FixAvailable::No, "will_not_fix"));
    assert_eq!(wontfix.package().fixed_in_version, "NotAvailable");
    let open = by("CVE-2024-1003").unwrap();
    assert_eq!((open.fix_available, open.vendor_status.as_str()), (FixAvailable::No, "affected"));
    assert!(by("CVE-2024-1004").is_none(), "not_affected statements never match");
    assert_eq!(r.findings.len(), 3);
}

#[test]
fn no_os_means_a_warning_not_a_silent_pass() {
    let (_d, db) = db_with(&[]);
    let inv = Inventory { target: "t".into(), os: None, packages: vec![rpm("bash", "5.1-1", "x86_64", None)], warnings: vec![] };
    let r = match_inventory(&db, &inv, &MatchOptions::default(), &mut |_, _| {}).unwrap();
    assert!(r.warnings.iter().any(|w| w.contains("not detected")), "{:?}", r.warnings);
    let r = match_inventory(&db, &inventory(("almalinux", "9.4"), vec![rpm("bash", "5.1-1", "x86_64", None)]), &MatchOptions::default(), &mut |_, _| {}).unwrap();
    assert!(r.warnings.iter().any(|w| w.contains("no advisories for almalinux 9.4 (ecosystems: AlmaLinux:9)")), "{:?}", r.warnings);
}

#[test]
fn go_modules_and_the_toolchain_match_without_their_prefixes() {
    let rec = json!({ "id": "GO-2024-0001", "modified": "2024-01-01T00:00:00Z", "affected": [
        { "package": { "ecosystem": "Go", "name": "stdlib" }, "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": "1.21.6" }] }] },
        { "package": { "ecosystem": "Go", "name": "golang.org/x/net" }, "ranges": [{ "type": "SEMVER", "events": [{ "introduced": "0" }, { "fixed": "0.17.0" }] }] }
    ]});
    let (_d, db) = db_with(&[("GO-2024-0001.json", rec)]);
    let go = |name: &str, v: &str| Package::new(PackageType::Golang, name, v, format!("pkg:golang/{name}@{v}"));
    let inv = Inventory {
        target: "t".into(),
        os: None,
        packages: vec![go("stdlib", "go1.21.5"), go("golang.org/x/net", "v0.15.0"), go("golang.org/x/net", "v0.17.0"), go("example.com/app", "(devel)")],
        warnings: vec![],
    };
    let r = match_inventory(&db, &inv, &MatchOptions::default(), &mut |_, _| {}).unwrap();
    let got: Vec<(&str, &str)> = r.findings.iter().map(|f| (f.package().name.as_str(), f.package().version.as_str())).collect();
    assert_eq!(got, [("stdlib", "go1.21.5"), ("golang.org/x/net", "v0.15.0")]);
    assert_eq!(r.findings[0].package().remediation, "Rebuild the binary with Go 1.21.6 or later.");
    assert_eq!(r.findings[1].package().remediation, "go get golang.org/x/net@v0.17.0");
    assert_eq!(r.warnings.len(), 1, "one warning for the (devel) build: {:?}", r.warnings);
}
