//! The real Debian test tree packed as a container image (`docker save` layout, with an upper
//! layer that makes /usr/share/doc opaque-empty and deletes a dpkg file list): `kensa sbom` on
//! the image lists exactly what `kensa sbom` on the directory lists (which the inventory tests
//! check against dpkg-query and Syft), minus what the upper layer removed.

use std::io::Write;
use std::process::Command;

fn packages(target: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_kensa")).args(["sbom", target, "--format", "json", "--deep-inspection", "off"]).output().expect("run kensa");
    assert_eq!(out.status.code(), Some(0), "kensa sbom {target}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["packages"].as_array().unwrap().clone()
}

fn entry(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, name, data).unwrap();
}

#[test]
fn image_of_debian_tree_equals_directory_scan() {
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Layer 1: the whole tree, symlinks kept as symlinks.
    let base = dir.path().join("base.tar");
    let mut b = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(&base).unwrap()));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    for top in std::fs::read_dir(&rootfs).unwrap() {
        let top = top.unwrap();
        let name = top.file_name();
        // Pseudo-filesystem mount points of the chroot build are empty; skip them like an image build would.
        if ["proc", "sys", "dev"].contains(&name.to_str().unwrap()) {
            continue;
        }
        let ft = top.file_type().unwrap();
        if ft.is_dir() {
            b.append_dir_all(&name, top.path()).unwrap();
        } else {
            b.append_path_with_name(top.path(), &name).unwrap();
        }
    }
    b.into_inner().unwrap().flush().unwrap();
    // Layer 2: /usr/share/doc emptied (opaque) and one dpkg file list deleted.
    let mut upper = tar::Builder::new(Vec::new());
    entry(&mut upper, "usr/share/doc/.wh..wh..opq", b"");
    entry(&mut upper, "var/lib/dpkg/info/.wh.bash.list", b"");
    let upper = upper.into_inner().unwrap();

    let image = dir.path().join("debian.tar");
    let mut img = tar::Builder::new(std::fs::File::create(&image).unwrap());
    img.append_path_with_name(&base, "base/layer.tar").unwrap();
    entry(&mut img, "upper/layer.tar", &upper);
    entry(&mut img, "manifest.json", br#"[{"Config":"config.json","RepoTags":["kensa-test/debian:12"],"Layers":["base/layer.tar","upper/layer.tar"]}]"#);
    img.into_inner().unwrap().flush().unwrap();
    std::fs::remove_file(&base).unwrap();

    let from_dir = packages(rootfs.to_str().unwrap());
    let from_image = packages(image.to_str().unwrap());
    assert!(from_dir.len() > 100);
    assert_eq!(from_dir.len(), from_image.len());
    for (d, i) in from_dir.iter().zip(&from_image) {
        assert_eq!(d["purl"], i["purl"]);
        // The opaque /usr/share/doc took the copyright files, hence the licenses.
        assert!(i.get("license").is_none(), "{}: license from a deleted copyright file", i["name"]);
        if i["name"] == "bash" {
            assert!(i.get("files").is_none(), "bash's file list was deleted");
        } else {
            assert_eq!(d["files"], i["files"], "{}", i["name"]);
        }
    }
}
