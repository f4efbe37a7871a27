//! The dpkg cataloger and OS detection on a real Debian 12 tree (debootstrap + apt, built by
//! ../shared/tools/make-test-rootfs.sh), against dpkg's own answer: `dpkg-query --admindir`.

use std::collections::BTreeSet;
use std::process::Command;

use kensa_fs::Root;
use kensa_inventory::{scan, PackageType, ScanOptions};

#[test]
fn dpkg_packages_equal_dpkg_query() {
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    if !kensa_testdata::require_tool("dpkg-query") {
        return;
    }
    let admindir = rootfs.join("var/lib/dpkg");
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args(["-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"])
        .output()
        .expect("run dpkg-query");
    assert!(out.status.success(), "dpkg-query failed: {}", String::from_utf8_lossy(&out.stderr));
    // Every row dpkg-query lists but `config-files` (removed packages whose conffiles remain:
    // no code left to be vulnerable; see the dpkg cataloger's docs).
    let expected: BTreeSet<(String, String, String, String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] != "config-files").then(|| (f[1].to_string(), f[2].to_string(), f[3].to_string(), f[4].to_string(), f[5].to_string()))
        })
        .collect();
    assert!(expected.len() > 100, "the test tree should hold a full Debian system, got {} packages", expected.len());

    let root = Root::dir(&rootfs).unwrap();
    let inv = scan(&root, &ScanOptions::default());
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let os = inv.os.as_ref().expect("OS detected");
    assert_eq!((os.id.as_str(), os.version_id.as_str(), os.codename.as_deref()), ("debian", "12", Some("bookworm")));
    let debs: Vec<_> = inv.packages.iter().filter(|p| p.package_type == PackageType::Deb).collect();
    let got: BTreeSet<(String, String, String, String, String)> = debs
        .iter()
        .map(|p| {
            let src = p.source_name.clone().unwrap();
            let src_version = p.source_version.clone().unwrap_or_else(|| p.version.clone());
            (p.name.clone(), p.version.clone(), p.arch.clone().unwrap(), src, src_version)
        })
        .collect();
    assert_eq!(got.len(), debs.len(), "duplicate packages");
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing (dpkg-query has, kensa not): {missing:#?}\nextra: {extra:#?}");

    // File lists: every package but a few metapackages owns files, and dpkg's own files are there.
    let libc = debs.iter().find(|p| p.name == "libc6").expect("libc6");
    assert!(libc.files.iter().any(|f| f.ends_with("/libc.so.6")), "libc6 files: {:?}", &libc.files[..libc.files.len().min(5)]);
    assert!(libc.purl.starts_with("pkg:deb/debian/libc6@") && libc.purl.contains("distro=debian-12") && libc.purl.contains("upstream=glibc"), "{}", libc.purl);
    // Licenses from /usr/share/doc/NAME/copyright.
    assert!(libc.license.as_deref().is_some_and(|l| l.contains("LGPL-2.1")), "libc6 license: {:?}", libc.license);
    let with_license = debs.iter().filter(|p| p.license.is_some()).count();
    assert!(with_license * 10 >= debs.len() * 9, "{with_license} of {} packages have a license", debs.len());
    let with_files = debs.iter().filter(|p| !p.files.is_empty()).count();
    assert!(with_files * 10 >= debs.len() * 9, "{with_files} of {} packages have files", debs.len());
}

/// A purl as a comparable value: percent-decoded base, qualifiers as a set (Syft and kensa order
/// qualifiers differently; both orders are valid purls).
fn normalized_purl(p: &str) -> (String, BTreeSet<String>) {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    let (base, quals) = p.split_once('?').unwrap_or((p, ""));
    (decode(base), quals.split('&').filter(|q| !q.is_empty()).map(decode).collect())
}

/// Syft (the reference SBOM tool) on the same tree: the same dpkg packages with the same purls.
#[test]
fn dpkg_purls_equal_syft() {
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    let Some(syft) = kensa_testdata::venv_tool("syft") else { return };
    let out = Command::new(syft)
        .arg(format!("dir:{}", rootfs.display()))
        .args(["-o", "json", "-q", "--override-default-catalogers", "dpkg-db-cataloger"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("run syft");
    assert!(out.status.success(), "syft failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let syft: BTreeSet<_> = doc["artifacts"].as_array().unwrap().iter().map(|a| normalized_purl(a["purl"].as_str().unwrap())).collect();
    let inv = scan(&Root::dir(&rootfs).unwrap(), &ScanOptions::default());
    let kensa: BTreeSet<_> = inv.packages.iter().filter(|p| p.package_type == PackageType::Deb).map(|p| normalized_purl(&p.purl)).collect();
    assert!(syft.len() > 100);
    let only_syft: Vec<_> = syft.difference(&kensa).collect();
    let only_kensa: Vec<_> = kensa.difference(&syft).collect();
    assert!(only_syft.is_empty() && only_kensa.is_empty(), "only Syft: {only_syft:#?}\nonly kensa: {only_kensa:#?}");
}
