//! `kensa sbom` end to end: target detection (directory, image archive, prefixes), formats,
//! `--output`, and exit codes (0 ok, 2 unopenable target, 3 partial results).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn kensa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kensa")).args(args).output().expect("run kensa")
}

const STATUS: &str = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n\n\
Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.15-1~deb12u1\n";

fn debian_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("var/lib/dpkg")).unwrap();
    std::fs::write(dir.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n").unwrap();
    std::fs::write(dir.join("var/lib/dpkg/status"), STATUS).unwrap();
}

fn purls(json: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(json).expect("JSON output");
    v["packages"].as_array().unwrap().iter().map(|p| p["purl"].as_str().unwrap().to_string()).collect()
}

#[test]
fn directory_target_all_formats() {
    let dir = tempfile::tempdir().unwrap();
    debian_tree(dir.path());
    let target = dir.path().to_str().unwrap();
    let out = kensa(&["sbom", target, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(purls(&out.stdout), vec!["pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12", "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl"]);

    let cdx = dir.path().join("out.cdx.json");
    let out = kensa(&["sbom", &format!("dir:{target}"), "-o", cdx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    assert_eq!((v["bomFormat"].as_str(), v["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
    assert_eq!(v["components"][0]["type"], "operating-system");

    let out = kensa(&["sbom", target, "--format", "spdx-json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["spdxVersion"], "SPDX-2.3");
}

#[test]
fn corrupt_database_gives_output_warning_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    debian_tree(dir.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join("var/lib/dpkg/status")).unwrap();
    f.write_all(b"\n\x00\x01 binary junk that is not a field\nmore junk\n").unwrap();
    let out = kensa(&["sbom", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: dpkg: /var/lib/dpkg/status:12"), "{stderr}");
    assert_eq!(purls(&out.stdout).len(), 2, "the readable packages are still listed");
}

#[test]
fn image_archive_target() {
    let dir = tempfile::tempdir().unwrap();
    // A docker-save archive with two layers; the second replaces the dpkg database.
    let layer = |files: &[(&str, &str)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, data.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    };
    let l1 = layer(&[("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"), ("var/lib/dpkg/status", "Package: old\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n")]);
    let l2 = layer(&[("var/lib/dpkg/status", STATUS)]);
    let image = dir.path().join("app.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&image).unwrap());
    for (name, data) in [("a/layer.tar", &l1), ("b/layer.tar", &l2)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    let manifest = br#"[{"Config":"c.json","RepoTags":["example/app:1"],"Layers":["a/layer.tar","b/layer.tar"]}]"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    b.append_data(&mut h, "manifest.json", &manifest[..]).unwrap();
    b.into_inner().unwrap().flush().unwrap();

    for spec in [image.to_str().unwrap().to_string(), format!("image:{}", image.display())] {
        let out = kensa(&["sbom", &spec, "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(purls(&out.stdout).len(), 2);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["target"], "example/app:1");
    }
}

#[test]
fn unopenable_targets_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = kensa(&["sbom", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let f = dir.path().join("notes.txt");
    std::fs::write(&f, "not an image").unwrap();
    let out = kensa(&["sbom", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // Forcing the image kind on a directory that is not one names the problem.
    let out = kensa(&["sbom", &format!("image:{}", dir.path().display())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a container image"), "{}", String::from_utf8_lossy(&out.stderr));
}
