//! `kensa sbom IMAGE` on disk images of every kind lists exactly the packages of the directory
//! scan of the same tree, and `--stats` reports the bytes read.

#[path = "../../disk/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

fn sbom(target: &Path, stats: bool) -> (serde_json::Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kensa"));
    cmd.arg("sbom").arg(target).args(["--format", "json"]);
    if stats {
        cmd.arg("--stats");
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kensa sbom {}: {stderr}", target.display());
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn disk_images_list_the_packages_of_the_directory_scan() {
    let Some(fx) = common::fixture() else { return };
    let (dir, _) = sbom(&fx.tree, false);
    let packages = &dir["packages"];
    assert!(packages.as_array().unwrap().len() > 100, "the tree has dpkg, rpm and python packages");
    for image in [
        "root.ext4",
        "root.xfs",
        "disk-gpt-ext4.raw",
        "disk-gpt-xfs.raw",
        "disk-mbr-ext4.raw",
        "disk-gpt-ext4.qcow2",
        "disk-gpt-xfs.qcow2",
        "disk-gpt-ext4.vmdk",
        "disk-gpt-xfs.vmdk",
        "mbr-logical.raw",
        "overlay.qcow2",
        "split.raw",
        "no-table.raw",
        "extents.vmdk",
    ] {
        let (doc, stderr) = sbom(&fx.image(image), true);
        assert_eq!(&doc["packages"], packages, "{image}: packages differ from the directory scan");
        assert_eq!(doc["os"], dir["os"], "{image}");
        let stats = stderr.lines().find(|l| l.contains("bytes read")).unwrap_or_else(|| panic!("{image}: no stats line in {stderr}"));
        let bytes: u64 = stats.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(bytes > 0 && bytes < 64 << 20, "{image}: {stats}");
        // The share is of what the image files allocate: an overlay's backing file included, a
        // descriptor's extent file once though two extents name it.
        let mut files = vec![fx.image(image)];
        match image {
            "overlay.qcow2" => files.push(fx.image("compressed.qcow2")),
            "extents.vmdk" => files.push(fx.image("disk-gpt-ext4.raw")),
            _ => {}
        }
        let allocated: u64 = files.iter().map(|f| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(f).unwrap()) * 512).sum();
        let expected = format!("{:.1}% of the {:.1} MiB the image files allocate", 100.0 * bytes as f64 / allocated as f64, allocated as f64 / (1 << 20) as f64);
        assert!(stats.contains(&expected), "{image}: {stats} (expected \"{expected}\")");
    }
}

#[test]
fn vm_prefix_forces_the_disk_reader() {
    let Some(fx) = common::fixture() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_kensa")).arg("sbom").arg(format!("vm:{}", fx.tree.join("etc/hostname").display())).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no root filesystem"), "{err}");
}
