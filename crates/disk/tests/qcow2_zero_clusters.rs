//! qcow2 (v3) zero clusters: the zero flag hides the backing file's data, and on an allocated
//! cluster also the stale data still in the host cluster. Checked against `qemu-img convert` of
//! the same image, after `qemu-img map` confirms the image holds both kinds.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kensa_disk::block::Counters;
use kensa_disk::ImageFormat;

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[test]
fn zero_clusters_hide_backing_data_and_stale_host_clusters() {
    if !kensa_testdata::require_tool("qemu-img") || !kensa_testdata::require_tool("qemu-io") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 4 MiB base with no zero byte, so zeros read later can only come from zero clusters.
    let base: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1).collect();
    std::fs::write(d.join("base.raw"), &base).unwrap();
    run(d, "qemu-img", &["convert", "-f", "raw", "-O", "qcow2", "base.raw", "base.qcow2"]);
    run(d, "qemu-img", &["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", "overlay.qcow2"]);
    run(
        d,
        "qemu-io",
        &[
            "-f", "qcow2",
            // An unallocated zero cluster over backing data.
            "-c", "write -z 0 128k",
            "-c", "write -P 0xab 1M 64k",
            // An allocated cluster zeroed afterwards: its host cluster still holds 0xcd.
            "-c", "write -P 0xcd 2M 128k",
            "-c", "write -z 2M 64k",
            // Zeroed with unmap: the host cluster is released.
            "-c", "write -z -u 3M 64k",
            "overlay.qcow2",
        ],
    );
    let map = run(d, "qemu-img", &["map", "--output=json", "overlay.qcow2"]);
    let entry = |start: u64| map.lines().find(|l| l.contains(&format!("\"start\": {start},"))).unwrap_or_else(|| panic!("no map entry at {start}: {map}"));
    assert!(entry(0).contains("\"zero\": true") && !entry(0).contains("\"offset\""), "{map}");
    assert!(entry(2 << 20).contains("\"zero\": true") && entry(2 << 20).contains("\"offset\""), "{map}");
    assert!(entry(3 << 20).contains("\"zero\": true"), "{map}");

    run(d, "qemu-img", &["convert", "-f", "qcow2", "-O", "raw", "overlay.qcow2", "expect.raw"]);
    let expect = std::fs::read(d.join("expect.raw")).unwrap();
    assert!(expect[..128 << 10].iter().all(|&b| b == 0) && expect[2 << 20..(2 << 20) + (64 << 10)].iter().all(|&b| b == 0));

    let (dev, format) = kensa_disk::image::open(&d.join("overlay.qcow2"), Arc::new(Counters::default())).unwrap();
    assert_eq!(format, ImageFormat::Qcow2);
    assert_eq!(dev.size(), expect.len() as u64);
    // One read of the whole disk, and 4 KiB reads (the cached path), both as qemu reads it.
    let mut whole = vec![0u8; expect.len()];
    dev.read_at(0, &mut whole).unwrap();
    assert_eq!(first_difference(&whole, &expect), None, "whole read differs from qemu-img convert");
    let mut block = vec![0u8; 4096];
    for off in (0..expect.len()).step_by(4096) {
        dev.read_at(off as u64, &mut block).unwrap();
        assert_eq!(first_difference(&block, &expect[off..off + 4096]).map(|i| off + i), None, "4 KiB read at {off}");
    }
}
