//! Scan time and bytes read for disk images of the ~590 MiB Debian test tree against the
//! directory scan of the same tree (same process, warm page cache, best of 3). Goals: within 2x of
//! the directory scan, and at most 10% of each image's allocated bytes read.
//!
//! `cargo bench -p kensa-disk --bench disk_vs_dir`

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::{Duration, Instant};

use kensa_disk::{open_image, Limits};
use kensa_fs::Root;
use kensa_inventory::ScanOptions;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn main() {
    let Some(tree) = kensa_testdata::debian_rootfs() else { return };
    let Some(tools) = kensa_testdata::shared_tools() else { return };
    let Some(images) = kensa_testdata::cached_fixture("disk-bench-images-v2", |out| {
        let st = Command::new("bash").arg(tools.join("make-disk-images.sh")).arg(&tree).arg(out).status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("make-disk-images.sh: {st}"));
        }
        common::fix_gpt(out, 2048)
    }) else {
        return;
    };
    let opts = ScanOptions::default();
    let (dir_time, dir_inv) = best_of(3, || kensa_inventory::scan(&Root::dir(&tree).unwrap(), &opts));
    let dir_packages = serde_packages(&dir_inv);
    println!("directory scan of {}: {:.3} s, {} packages", tree.display(), dir_time.as_secs_f64(), dir_inv.packages.len());
    println!("| image | scan s | vs dir | bytes read | allocated | read/allocated | same packages |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for name in ["root.ext4", "root.xfs", "disk-gpt-ext4.raw", "disk-gpt-xfs.raw", "disk-mbr-ext4.raw", "disk-gpt-ext4.qcow2", "disk-gpt-xfs.qcow2", "disk-gpt-ext4.vmdk", "disk-gpt-xfs.vmdk"] {
        let path = images.join(name);
        let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
        let (time, (inv, stats)) = best_of(3, || {
            let target = open_image(&path, &Limits::default()).unwrap();
            let inv = kensa_inventory::scan(&target.root, &opts);
            (inv, target.stats())
        });
        println!(
            "| {name} | {:.3} | {:.2}x | {:.1} MiB | {:.1} MiB | {:.1}% | {} |",
            time.as_secs_f64(),
            time.as_secs_f64() / dir_time.as_secs_f64(),
            stats.bytes_read as f64 / (1 << 20) as f64,
            allocated as f64 / (1 << 20) as f64,
            100.0 * stats.bytes_read as f64 / allocated as f64,
            if serde_packages(&inv) == dir_packages { "yes" } else { "NO" }
        );
    }
}

/// Package identity for comparison (the target name differs by construction).
fn serde_packages(inv: &kensa_inventory::Inventory) -> Vec<String> {
    let mut v: Vec<String> = inv.packages.iter().map(|p| format!("{p:?}")).collect();
    v.sort();
    v
}
