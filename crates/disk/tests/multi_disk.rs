//! A machine with several disks: the root filesystem is found on whichever disk holds it, and its
//! /etc/fstab mounts volumes from the other disks (by UUID, by LABEL), whatever their container
//! format. Images are made by the real tools (mkfs.ext4 -d, qemu-img), nothing is mounted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run, write};

use kensa_disk::{open_images, ImageFormat, Limits, TableKind};

const VAR_UUID: &str = "0b5e7a52-1d2c-4a7e-9a43-5c0ffee00002";

fn mkfs_ext4(tree: &Path, image: &Path, extra: &[&str]) {
    let f = std::fs::File::create(image).unwrap();
    f.set_len(64 << 20).unwrap();
    drop(f);
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-E", "root_owner=0:0"]).args(extra).arg("-d").arg(tree).arg(image)).unwrap();
}

struct Disks {
    _dir: tempfile::TempDir,
    root: PathBuf,
    var: PathBuf,
    opt: PathBuf,
}

fn make_disks() -> Option<Disks> {
    for tool in ["mkfs.ext4", "qemu-img"] {
        if !kensa_testdata::require_tool(tool) {
            return None;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let t = &dir.path().to_path_buf();
    write(&t.join("root/etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n");
    write(
        &t.join("root/etc/fstab"),
        format!(
            "# <fs> <mount point> <type> <options> <dump> <pass>\n/dev/sda / ext4 defaults 0 1\nUUID={VAR_UUID} /var ext4 defaults 0 2\nLABEL=opt-data /opt ext4 defaults 0 2\nUUID=00000000-0000-4000-8000-000000000000 /home ext4 defaults 0 2\n"
        ),
    );
    std::fs::create_dir_all(t.join("root/var")).unwrap();
    std::fs::create_dir_all(t.join("root/opt")).unwrap();
    write(&t.join("var/lib/dpkg/status"), "Package: kensa-multi\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: all\n\n");
    write(&t.join("opt/app/VERSION"), "opt on its own disk\n");
    let disks = Disks { root: t.join("root.ext4"), var: t.join("var.ext4"), opt: t.join("opt.qcow2"), _dir: dir };
    mkfs_ext4(&t.join("root"), &disks.root, &[]);
    mkfs_ext4(&t.join("var"), &disks.var, &["-U", VAR_UUID]);
    let opt_raw = t.join("opt.ext4");
    mkfs_ext4(&t.join("opt"), &opt_raw, &["-L", "opt-data"]);
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "qcow2"]).arg(&opt_raw).arg(&disks.opt)).unwrap();
    Some(disks)
}

#[test]
fn root_and_fstab_mounts_span_disks() {
    let Some(d) = make_disks() else { return };
    // The root is the second disk given; /opt comes from a qcow2 image.
    let target = open_images(&[d.var.clone(), d.root.clone(), d.opt.clone()], &Limits::default()).expect("open three disks");
    assert_eq!(target.root.read_to_string_lossy("/var/lib/dpkg/status").unwrap().lines().next(), Some("Package: kensa-multi"));
    assert_eq!(target.root.read_to_string_lossy("/opt/app/VERSION").unwrap(), "opt on its own disk\n");
    assert!(target.root.read_to_string_lossy("/etc/os-release").unwrap().contains("ID=debian"));
    let mounted: Vec<(usize, &str, Option<&Path>)> = target.volumes.iter().map(|v| (v.disk, v.name.as_str(), v.mount_point.as_deref())).collect();
    assert_eq!(
        mounted,
        vec![(0, "disk 1", Some(Path::new("/var"))), (1, "disk 2", Some(Path::new("/"))), (2, "disk 3", Some(Path::new("/opt")))],
        "{:?}",
        target.volumes
    );
    assert_eq!((target.format, target.table), (ImageFormat::Raw, TableKind::None), "the root disk's format");
    assert!(target.notes.iter().any(|n| n.message.contains("/home") && n.message.contains("no such volume") && n.disk.is_none()), "{:?}", target.notes);
    let stats = target.stats();
    assert!(stats.bytes_read > 0 && stats.files_opened >= 3, "{stats:?}");

    // The whole inventory sees the package on the /var disk.
    let inv = kensa_inventory::scan(&target.root, &kensa_inventory::ScanOptions::default());
    assert!(inv.packages.iter().any(|p| p.name == "kensa-multi" && p.version == "1.0-1"), "{:?}", inv.packages);
}

#[test]
fn limits_apply_to_all_disks_together() {
    let Some(d) = make_disks() else { return };
    let limits = Limits { max_total_bytes: 100 << 20, ..Limits::default() };
    // One 64 MiB disk is within 100 MiB; two are not.
    assert!(open_images(std::slice::from_ref(&d.root), &limits).is_ok());
    let err = open_images(&[d.root.clone(), d.var.clone()], &limits).unwrap_err().to_string();
    assert!(err.contains("the 2 disks hold") && err.contains("more than"), "{err}");
    assert!(err.contains(&format!("{}: 67108864 from its length", d.var.display())), "{err}");
    let limits = Limits { max_volumes: 2, ..Limits::default() };
    let err = open_images(&[d.root.clone(), d.var.clone(), d.opt.clone()], &limits).unwrap_err().to_string();
    assert!(err.contains("3 volumes"), "{err}");
    // A disk that is missing is named.
    let err = open_images(&[d.root.clone(), PathBuf::from("/nonexistent/disk.img")], &Limits::default()).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/disk.img"), "{err}");
}
