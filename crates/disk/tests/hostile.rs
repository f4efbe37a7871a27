//! Hostile images: many corrupted copies (byte flips in the metadata a tree walk reads,
//! truncations) of each kind. Every one must end in a clean result or a clear error — never a
//! panic or a hang — and errors name where the damage is.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use common::hostile::*;
use common::*;
use kensa_disk::block::{BlockDev, Counters, FileDev};
use kensa_disk::{ext4::Ext4Fs, xfs::XfsFs, Limits};
use kensa_fs::Root;

fn open_ext4(d: Arc<dyn BlockDev>) -> Result<Root, String> {
    Ext4Fs::open(d, Arc::new(Counters::default())).map(Root::new).map_err(|e| e.to_string())
}
fn open_xfs(d: Arc<dyn BlockDev>) -> Result<Root, String> {
    XfsFs::open(d, Arc::new(Counters::default())).map(Root::new).map_err(|e| e.to_string())
}

#[test]
fn corrupted_ext4_metadata() {
    let Some(fx) = fixture() else { return };
    flip_metadata(&fx.image("root.ext4"), open_ext4, locates, 0x1234_5678, 50, 8);
    flip_metadata(&fx.image("inline.ext4"), open_ext4, locates, 0x9abc_def1, 15, 8);
    flip_metadata(&fx.image("plain.ext2"), open_ext4, locates, 0x2468_ace1, 15, 8);
}

#[test]
fn corrupted_xfs_metadata() {
    let Some(fx) = fixture() else { return };
    flip_metadata(&fx.image("root.xfs"), open_xfs, locates, 0x1357_9bdf, 50, 8);
    flip_metadata(&fx.image("v4.xfs"), open_xfs, locates, 0x1122_3345, 15, 8);
}

/// Whole disks opened as a snapshot is: flips in the partition tables (MBR and its chain of
/// extended boot records, GPT), the filesystems' superblocks and the metadata the walk reads, and
/// in the root's /etc/fstab that joins a second volume.
#[test]
fn corrupted_partition_tables_and_assembly() {
    let Some(fx) = fixture() else { return };
    flip_metadata(&fx.image("mbr-logical.raw"), open_disk, explains_disk_error, 0x5eed_0001, 30, 64);
    flip_metadata(&fx.image("split.raw"), open_disk, explains_disk_error, 0x5eed_0002, 30, 64);
}

/// Corrupted and truncated copies of whole image files (qcow2 tables, VMDK grain directories,
/// partition tables), opened through `open_image`.
#[test]
fn corrupted_and_truncated_image_files() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0xdead_beef);
    for name in ["disk-gpt-ext4.qcow2", "disk-gpt-xfs.vmdk", "disk-gpt-ext4.vmdk", "compressed.qcow2", "dynamic.vhd", "dynamic.vhdx"] {
        let original = std::fs::read(fx.image(name)).unwrap();
        let mut errors = 0;
        for round in 0..12 * campaign().0 {
            let mut data = original.clone();
            if round % 3 == 0 {
                // Truncate.
                data.truncate(rng.below(data.len() as u64) as usize);
            } else {
                // Flip bytes in the first 1 MiB (headers, L1/L2 tables, grain directory and
                // tables, the guest's partition table) or the last 64 KiB (VMDK footer).
                for _ in 0..1 + rng.below(6) {
                    let at = if rng.below(4) == 0 {
                        data.len() - 1 - rng.below(65536.min(data.len() as u64)) as usize
                    } else {
                        rng.below((1u64 << 20).min(data.len() as u64)) as usize
                    };
                    data[at] = rng.next() as u8;
                }
            }
            let path = dir.path().join(format!("{round}-{name}"));
            std::fs::write(&path, &data).unwrap();
            let what = format!("{name} round {round}");
            let p = path.clone();
            let errs = bounded(what, move || match kensa_disk::open_image(&p, &Limits::default()) {
                Ok(t) => exercise(&t.root),
                Err(e) => vec![e.to_string()],
            });
            errors += errs.len();
            for e in errs {
                assert!(locates(&e) || e.contains("no root filesystem") || e.contains("unsupported") || e.contains("past the end") || e.contains("bytes (from the"), "error does not say where: {e}");
            }
            std::fs::remove_file(&path).unwrap();
        }
        assert!(errors > 0, "{name}: corruption went unnoticed in every round");
    }
}

/// A qcow2 whose backing file is itself: a loop, refused.
#[test]
fn qcow2_backing_loop_is_refused() {
    if !kensa_testdata::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.qcow2");
    let b = dir.path().join("b.qcow2");
    let st = std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&b).arg("64M").status().unwrap();
    assert!(st.success());
    let st = std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "b.qcow2"]).arg(&a).current_dir(dir.path()).status().unwrap();
    assert!(st.success());
    // Point b back at a (same length as a name in the header area: rewrite with qemu-img rebase -u).
    let st = std::process::Command::new("qemu-img").args(["rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b", "a.qcow2"]).arg(&b).current_dir(dir.path()).status().unwrap();
    assert!(st.success());
    let e = kensa_disk::open_image(&a, &Limits::default()).unwrap_err().to_string();
    assert!(e.contains("loops"), "{e}");
}

/// An absurd inode size in the superblock and a superblock claiming more blocks than the image:
/// named errors.
#[test]
fn superblock_lies_are_named() {
    let Some(fx) = fixture() else { return };
    let dev: Arc<dyn BlockDev> = Arc::new(FileDev::open(&fx.image("root.ext4"), Arc::new(Counters::default())).unwrap());
    let mut changes = HashMap::new();
    changes.insert(1024 + 0x58, 0x13u8);
    let e = open_ext4(Arc::new(Flipped { inner: dev.clone(), changes })).err().unwrap().to_string();
    assert!(e.contains("s_inode_size") && e.contains("offset 1112"), "{e}");
    let mut changes = HashMap::new();
    changes.insert(1024 + 0x7, 0x7fu8);
    let e = open_ext4(Arc::new(Flipped { inner: dev, changes })).err().unwrap().to_string();
    assert!(e.contains("truncated"), "{e}");
}

/// qcow2 L1 entries and VMDK grain-directory entries pointing past the end of the file: the error
/// names the table entry and the offset.
#[test]
fn tables_pointing_past_the_end_are_named() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut q = std::fs::read(fx.image("disk-gpt-ext4.qcow2")).unwrap();
    let l1 = u64::from_be_bytes(q[40..48].try_into().unwrap()) as usize;
    // Every L1 entry: an L2 table far past the end (keeping the "copied" flag).
    let bogus = (1u64 << 63) | (1u64 << 40);
    let n = u32::from_be_bytes(q[36..40].try_into().unwrap()) as usize;
    for i in 0..n {
        q[l1 + i * 8..l1 + i * 8 + 8].copy_from_slice(&bogus.to_be_bytes());
    }
    let path = dir.path().join("bad-l1.qcow2");
    std::fs::write(&path, &q).unwrap();
    let e = format!("{}", kensa_disk::open_image(&path, &Limits::default()).unwrap_err());
    assert!(e.contains("L1 entry 0") && e.contains("past the end of the file"), "{e}");

    let mut v = std::fs::read(fx.image("disk-gpt-xfs.vmdk")).unwrap();
    let gd = u64::from_le_bytes(v[56..64].try_into().unwrap()) as usize * 512;
    v[gd..gd + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let path = dir.path().join("bad-gd.vmdk");
    std::fs::write(&path, &v).unwrap();
    let e = format!("{}", kensa_disk::open_image(&path, &Limits::default()).unwrap_err());
    assert!(e.contains("grain directory entry 0") && e.contains("past the end of the file"), "{e}");
}

/// VHDX keeps two checksummed headers: one damaged copy is survived, two are an error naming
/// their offsets; a header announcing a log to replay is refused rather than read stale.
#[test]
fn vhdx_header_copies_and_logs() {
    let Some(fx) = fixture() else { return };
    let original = std::fs::read(fx.image("dynamic.vhdx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        kensa_disk::open_image(&path, &Limits::default()).map(|t| t.root.read_to_string_lossy("/etc/hostname").unwrap())
    };
    // Rewrites header `i` (at 64 KiB or 128 KiB) with `edit` applied and a correct checksum.
    let rewrite = |data: &mut Vec<u8>, i: usize, edit: &dyn Fn(&mut [u8])| {
        let h = &mut data[(64 << 10) * (i + 1)..][..4096];
        edit(h);
        h[4..8].fill(0);
        let crc = kensa_disk::block::crc32c(h);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
    };
    assert_eq!(open("ok.vhdx", &original).unwrap(), "kensa-disk-test\n");
    let mut one_bad = original.clone();
    one_bad[(64 << 10) + 100] ^= 0xFF;
    assert_eq!(open("one-bad.vhdx", &one_bad).unwrap(), "kensa-disk-test\n", "the other header copy is used");
    let mut both_bad = one_bad.clone();
    both_bad[(128 << 10) + 100] ^= 0xFF;
    let e = open("both-bad.vhdx", &both_bad).unwrap_err().to_string();
    assert!(e.contains("no valid header at offset 65536 or 131072"), "{e}");
    let mut log = original.clone();
    for i in 0..2 {
        rewrite(&mut log, i, &|h| h[48] = 1);
    }
    let e = open("log.vhdx", &log).unwrap_err().to_string();
    assert!(e.contains("log still to replay"), "{e}");
    // A newer header (higher sequence number) wins over the other copy.
    let mut newer = log.clone();
    rewrite(&mut newer, 1, &|h| {
        h[48] = 0;
        let seq = u64::from_le_bytes(h[8..16].try_into().unwrap()) + 10;
        h[8..16].copy_from_slice(&seq.to_le_bytes());
    });
    assert_eq!(open("newer.vhdx", &newer).unwrap(), "kensa-disk-test\n");
}

/// A VMDK descriptor names extent files: only files beside it, never a snapshot's parent, never
/// a fifo (opening one would wait for a writer), and never more than the files hold.
#[test]
fn vmdk_descriptors_are_confined_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("data.raw"), vec![0u8; 1 << 20]).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/inner.raw"), vec![0u8; 1 << 20]).unwrap();
    assert!(Command::new("mkfifo").arg(d.join("pipe.raw")).status().unwrap().success());
    let open = |name: &str, extents: &str, parent: &str| {
        let path = d.join(name);
        std::fs::write(&path, format!("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID={parent}\ncreateType=\"monolithicFlat\"\n\n{extents}\n")).unwrap();
        let p = path.clone();
        bounded(name.to_string(), move || kensa_disk::open_image(&p, &Limits::default()).map(|_| ()).map_err(|e| e.to_string()))
    };
    let err = |name: &str, extents: &str, parent: &str| open(name, extents, parent).unwrap_err();
    for (name, extent, want) in [
        ("up.vmdk", r#"RW 2048 FLAT "../data.raw" 0"#, "outside the descriptor's directory"),
        ("sub.vmdk", r#"RW 2048 FLAT "sub/inner.raw" 0"#, "outside the descriptor's directory"),
        ("abs.vmdk", r#"RW 2048 FLAT "/etc/hostname" 0"#, "outside the descriptor's directory"),
        ("missing.vmdk", r#"RW 2048 FLAT "nothere.raw" 0"#, "nothere.raw"),
        ("fifo.vmdk", r#"RW 2048 FLAT "pipe.raw" 0"#, "not a regular file"),
        ("long.vmdk", r#"RW 4096 FLAT "data.raw" 0"#, "past the end"),
        ("offset.vmdk", r#"RW 2048 FLAT "data.raw" 1"#, "past the end"),
        ("size.vmdk", r#"RW lots FLAT "data.raw" 0"#, "line 7: extent size is not a number"),
        ("kind.vmdk", r#"RW 2048 VMFSSPARSE "data.raw""#, "extent type VMFSSPARSE"),
        ("none.vmdk", "", "no extents"),
    ] {
        let e = err(name, extent, "ffffffff");
        assert!(e.contains(want), "{name}: {e}");
    }
    assert!(err("snapshot.vmdk", r#"RW 2048 FLAT "data.raw" 0"#, "0badf00d").contains("snapshot"));
    // Within bounds it opens (no filesystem in zeros, which is the error then).
    let e = err("ok.vmdk", "RW 2048 FLAT \"data.raw\" 0\nRW 2048 ZERO", "ffffffff");
    assert!(e.contains("no root filesystem") || e.contains("no filesystem"), "{e}");
}
