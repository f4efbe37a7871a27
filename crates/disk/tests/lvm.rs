//! LVM2: a GPT disk whose partition is a physical volume made by the real tools (pvcreate,
//! vgcreate, lvcreate on a loop device; no device-mapper needed), with a root LV in two
//! non-adjacent segments. The filesystem is written into the LV's extents at the offsets
//! `lvs --segments` reports, and must read back as the source tree.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kensa_disk::{open_image, Limits};

const LVM_CONFIG: &str = "devices { use_devicesfile=0 } activation { udev_sync=0 udev_rules=0 }";

fn lvm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(["--driverloaded", "n", "--config", LVM_CONFIG])
        .args(&args[1..])
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// (LV extent, length in extents, PV device, PV extent)
type Segment = (u64, u64, String, u64);

/// The volume group's extent layout and its `root` LV's segments, as the LVM tools report them:
/// (first byte of extents on a PV, extent size, [(LV extent, length in extents, PV device, PV
/// extent)]).
fn root_segments(vg: &str, pv: &str) -> Result<(u64, u64, Vec<Segment>, String), String> {
    let out = lvm(&["pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start,vg_extent_size", pv])?;
    let nums: Vec<u64> = out.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let (pe_start, extent) = (nums[0], nums[1]);
    let segs = lvm(&["lvs", "--segments", "--noheadings", "-o", "lv_name,seg_start_pe,seg_size_pe,seg_pe_ranges", vg])?;
    let mut root = Vec::new();
    for line in segs.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&"root") {
            continue;
        }
        let (dev, range) = f[3].rsplit_once(':').ok_or_else(|| format!("no device in {line}"))?;
        let pe: u64 = range.split('-').next().unwrap().parse().unwrap();
        root.push((f[1].parse().unwrap(), f[2].parse().unwrap(), dev.to_string(), pe));
    }
    Ok((pe_start, extent, root, segs))
}

/// Copies `len` bytes of `from` at `skip` into `to` at `seek` (an LV segment's extents), sparse.
fn copy_range(from: &Path, skip: u64, len: u64, to: &Path, seek: u64) -> Result<(), String> {
    let st = Command::new("dd")
        .arg(format!("if={}", from.display()))
        .arg(format!("of={}", to.display()))
        .args(["bs=1M", "iflag=skip_bytes,count_bytes", "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"])
        .arg(format!("skip={skip}"))
        .arg(format!("count={len}"))
        .arg(format!("seek={seek}"))
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() {
        Ok(())
    } else {
        Err("dd failed".into())
    }
}

fn build(fs_image: &Path, out: &Path) -> Result<(), String> {
    let disk = out.join("lvm.raw");
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&disk);
    std::fs::File::create(&disk).and_then(|f| f.set_len(400 * MIB)).map_err(|e| e.to_string())?;
    let st = Command::new("sgdisk").args(["-n", "1:1M:+390M", "-t", "1:8E00"]).arg(&disk).output().map_err(|e| e.to_string())?;
    if !st.status.success() {
        return Err("sgdisk failed".into());
    }
    let lo = Command::new("losetup").args(["-f", "--show", "-o", "1048576", "--sizelimit", &(390 * MIB).to_string()]).arg(&disk).output().map_err(|e| e.to_string())?;
    if !lo.status.success() {
        return Err(format!("no loop device: {}", String::from_utf8_lossy(&lo.stderr)));
    }
    let loopdev = String::from_utf8_lossy(&lo.stdout).trim().to_string();
    let result = (|| -> Result<(), String> {
        lvm(&["pvcreate", "-ff", "-y", &loopdev])?;
        lvm(&["vgcreate", "kensavg", &loopdev])?;
        lvm(&["lvcreate", "--activate", "n", "--zero", "n", "-L", "100M", "-n", "root", "kensavg"])?;
        lvm(&["lvcreate", "--activate", "n", "--zero", "n", "-L", "8M", "-n", "pad", "kensavg"])?;
        lvm(&["lvextend", "-L", "+100M", "kensavg/root"])?;
        let (pe_start, extent, root, segs) = root_segments("kensavg", &loopdev)?;
        for (lv_start, len, _, pe) in &root {
            copy_range(fs_image, lv_start * extent, len * extent, &disk, MIB + pe_start + pe * extent)?;
        }
        let segments = root.len();
        if segments != 2 {
            return Err(format!("expected the root LV in 2 segments, lvs said: {segs}"));
        }
        lvm(&["vgchange", "-an", "kensavg"]).map(|_| ())
    })();
    let _ = Command::new("losetup").arg("-d").arg(&loopdev).status();
    result
}

/// The shared tree and an LVM fixture `build` made (cached as `name`) from its inline.ext4 image.
fn lvm_fixture(name: &str, build: fn(&Path, &Path) -> Result<(), String>) -> Option<(Fixture, std::path::PathBuf)> {
    let fx = fixture()?;
    for t in ["pvcreate", "losetup"] {
        if !kensa_testdata::require_tool(t) {
            return None;
        }
    }
    let fs_image = fx.image("inline.ext4");
    let dir = kensa_testdata::cached_fixture(name, |out| build(&fs_image, out))?;
    Some((fx, dir))
}

#[test]
fn linear_logical_volume_in_two_segments() {
    let Some((fx, dir)) = lvm_fixture("disk-lvm-v1", build) else { return };
    let t = open_image(&dir.join("lvm.raw"), &Limits::default()).unwrap();
    let pv = t.volumes.iter().find(|v| v.partition == Some(1)).unwrap();
    assert_eq!(pv.fs_type.as_deref(), Some("LVM2_member"));
    let root = t.volumes.iter().find(|v| v.name == "LV kensavg/root").expect("root LV");
    assert_eq!(root.size, 200 * MIB);
    assert_eq!(root.mount_point.as_deref(), Some(Path::new("/")));
    let pad = t.volumes.iter().find(|v| v.name == "LV kensavg/pad").expect("pad LV");
    assert_eq!(pad.size, 8 * MIB);
    let mut got = fs_tree(&**t.root.raw());
    got.remove(Path::new("/lost+found"));
    assert_same_tree("lvm.raw", &host_tree(&fx.tree), &got);
}

/// Flips in the LVM label, the metadata text and the filesystem inside the logical volume: a clean
/// result or an error saying where, never a panic or a hang.
#[test]
fn corrupted_lvm_metadata() {
    let Some((_fx, dir)) = lvm_fixture("disk-lvm-v1", build) else { return };
    hostile::flip_metadata(&dir.join("lvm.raw"), hostile::open_disk, hostile::explains_disk_error, 0x5eed_0003, 30, 64);
}

/// Two whole disks as physical volumes of one volume group, the root LV spanning both: one disk
/// alone has no complete root, the two together read back as the source tree.
fn build_spanning(fs_image: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let disks = [out.join("pv1.raw"), out.join("pv2.raw")];
    let mut loops = Vec::new();
    let result = (|| -> Result<(), String> {
        for d in &disks {
            let _ = std::fs::remove_file(d);
            std::fs::File::create(d).and_then(|f| f.set_len(120 * MIB)).map_err(|e| e.to_string())?;
            let lo = Command::new("losetup").args(["-f", "--show"]).arg(d).output().map_err(|e| e.to_string())?;
            if !lo.status.success() {
                return Err(format!("no loop device: {}", String::from_utf8_lossy(&lo.stderr)));
            }
            loops.push(String::from_utf8_lossy(&lo.stdout).trim().to_string());
        }
        for l in &loops {
            lvm(&["pvcreate", "-ff", "-y", l])?;
        }
        lvm(&["vgcreate", "kensaspan", &loops[0], &loops[1]])?;
        lvm(&["lvcreate", "--activate", "n", "--zero", "n", "-L", "200M", "-n", "root", "kensaspan"])?;
        let (pe_start, extent, root, segs) = root_segments("kensaspan", &loops[0])?;
        let mut on_disk = [0, 0];
        for (lv_start, len, dev, pe) in &root {
            let which = loops.iter().position(|l| l == dev).ok_or_else(|| format!("segment on unknown device {dev}"))?;
            on_disk[which] += 1;
            copy_range(fs_image, lv_start * extent, len * extent, &disks[which], pe_start + pe * extent)?;
        }
        if on_disk != [1, 1] {
            return Err(format!("expected the root LV on both disks, lvs said: {segs}"));
        }
        lvm(&["vgchange", "-an", "kensaspan"]).map(|_| ())
    })();
    for l in &loops {
        let _ = Command::new("losetup").arg("-d").arg(l).status();
    }
    result
}

#[test]
fn volume_group_spanning_two_disks() {
    let Some((fx, dir)) = lvm_fixture("disk-lvm-span-v1", build_spanning) else { return };
    let (pv1, pv2) = (dir.join("pv1.raw"), dir.join("pv2.raw"));
    let t = kensa_disk::open_images(&[pv1.clone(), pv2.clone()], &Limits::default()).unwrap();
    let root = t.volumes.iter().find(|v| v.name == "LV kensaspan/root").expect("root LV");
    assert_eq!((root.size, root.mount_point.as_deref()), (200 * MIB, Some(Path::new("/"))));
    assert_eq!(t.volumes.iter().filter(|v| v.fs_type.as_deref() == Some("LVM2_member")).count(), 2);
    let mut got = fs_tree(&**t.root.raw());
    got.remove(Path::new("/lost+found"));
    assert_same_tree("spanning VG", &host_tree(&fx.tree), &got);

    // One disk alone: the LV cannot be assembled, and the error says what is missing.
    let err = open_image(&pv1, &Limits::default()).unwrap_err().to_string();
    assert!(err.contains("no root filesystem") && err.contains("LV kensaspan/root not read"), "{err}");
}
