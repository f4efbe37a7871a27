//! Every image kind, made by the real tools from the same tree, reads back as that tree: names,
//! types, sizes, symlink targets and the sha256 of every file.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use kensa_disk::{open_image, ImageFormat, Limits, TableKind};

fn check_image(fx: &Fixture, name: &str, format: ImageFormat, table: TableKind, fs_type: &str) {
    let path = fx.image(name);
    let target = open_image(&path, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(target.format, format, "{name}");
    assert_eq!(target.table, table, "{name}");
    let root_vol = target.volumes.iter().find(|v| v.mount_point.as_deref() == Some(Path::new("/"))).expect("root volume");
    assert_eq!(root_vol.fs_type.as_deref(), Some(fs_type), "{name}");
    let mut got = fs_tree(&**target.root.raw());
    got.remove(Path::new("/lost+found"));
    let expected = host_tree(&fx.tree);
    assert_same_tree(name, &expected, &got);
    // Through Root, symlinks resolve inside the image.
    let os = target.root.read_to_string_lossy("/etc/os-release").unwrap();
    assert!(os.contains("ID=debian"), "{name}");
    assert_eq!(target.root.read_to_string_lossy("/usr/bin/abslink").unwrap(), "kensa-disk-test\n");
    let stats = target.stats();
    assert!(stats.bytes_read > 0 && stats.files_opened > 0 && stats.blocks_fetched > 0, "{name}: {stats:?}");
}

macro_rules! image_test {
    ($test:ident, $file:expr, $format:expr, $table:expr, $fs:expr) => {
        #[test]
        fn $test() {
            let Some(fx) = fixture() else { return };
            check_image(&fx, $file, $format, $table, $fs);
        }
    };
}

image_test!(bare_ext4, "root.ext4", ImageFormat::Raw, TableKind::None, "ext4");
image_test!(bare_xfs, "root.xfs", ImageFormat::Raw, TableKind::None, "xfs");
image_test!(gpt_ext4_raw, "disk-gpt-ext4.raw", ImageFormat::Raw, TableKind::Gpt, "ext4");
image_test!(gpt_xfs_raw, "disk-gpt-xfs.raw", ImageFormat::Raw, TableKind::Gpt, "xfs");
image_test!(mbr_ext4_raw, "disk-mbr-ext4.raw", ImageFormat::Raw, TableKind::Mbr, "ext4");
image_test!(gpt_ext4_qcow2, "disk-gpt-ext4.qcow2", ImageFormat::Qcow2, TableKind::Gpt, "ext4");
image_test!(gpt_xfs_qcow2, "disk-gpt-xfs.qcow2", ImageFormat::Qcow2, TableKind::Gpt, "xfs");
image_test!(gpt_ext4_vmdk_stream_optimized, "disk-gpt-ext4.vmdk", ImageFormat::VmdkSparse, TableKind::Gpt, "ext4");
image_test!(gpt_xfs_vmdk_monolithic_sparse, "disk-gpt-xfs.vmdk", ImageFormat::VmdkSparse, TableKind::Gpt, "xfs");
image_test!(ext4_inline_data, "inline.ext4", ImageFormat::Raw, TableKind::None, "ext4");
image_test!(ext4_htree_directories, "htree.ext4", ImageFormat::Raw, TableKind::None, "ext4");
image_test!(ext2, "plain.ext2", ImageFormat::Raw, TableKind::None, "ext2");
image_test!(ext3, "plain.ext3", ImageFormat::Raw, TableKind::None, "ext3");
image_test!(ext4_1k_blocks_meta_bg, "bigblock.ext4", ImageFormat::Raw, TableKind::None, "ext4");
image_test!(xfs_v4, "v4.xfs", ImageFormat::Raw, TableKind::None, "xfs");
image_test!(mbr_logical_partition, "mbr-logical.raw", ImageFormat::Raw, TableKind::Mbr, "ext4");
image_test!(qcow2_compressed, "compressed.qcow2", ImageFormat::Qcow2, TableKind::Mbr, "ext4");
image_test!(vhd_dynamic, "dynamic.vhd", ImageFormat::Vhd, TableKind::Mbr, "ext4");
image_test!(vhdx_dynamic, "dynamic.vhdx", ImageFormat::Vhdx, TableKind::Mbr, "ext4");
image_test!(vhdx_fixed, "fixed.vhdx", ImageFormat::Vhdx, TableKind::None, "ext4");
image_test!(vmdk_monolithic_flat, "flat.vmdk", ImageFormat::VmdkDescriptor, TableKind::Gpt, "xfs");
image_test!(vmdk_two_gb_extents_sparse, "split-sparse.vmdk", ImageFormat::VmdkDescriptor, TableKind::Mbr, "ext4");
image_test!(vmdk_descriptor_flat_and_zero_extents, "extents.vmdk", ImageFormat::VmdkDescriptor, TableKind::Gpt, "ext4");
image_test!(qcow2_v2, "v2.qcow2", ImageFormat::Qcow2, TableKind::Gpt, "xfs");
image_test!(qcow2_2m_clusters, "big-cluster.qcow2", ImageFormat::Qcow2, TableKind::Mbr, "ext4");
image_test!(qcow2_1k_clusters, "small-cluster.qcow2", ImageFormat::Qcow2, TableKind::Gpt, "xfs");
image_test!(disk_without_partition_table, "no-table.raw", ImageFormat::Raw, TableKind::None, "ext4");
image_test!(qcow2_backing_chain, "overlay.qcow2", ImageFormat::Qcow2, TableKind::Mbr, "ext4");

#[test]
fn htree_fixture_really_has_indexed_directories() {
    let Some(fx) = fixture() else { return };
    let out = std::process::Command::new("debugfs").args(["-R", "stat /srv/huge"]).arg(fx.image("htree.ext4")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let flags = text.split("Flags: 0x").nth(1).and_then(|t| u32::from_str_radix(t.split_whitespace().next()?, 16).ok()).unwrap();
    assert!(flags & 0x1000 != 0, "/srv/huge is not an htree directory: {text}");
}

#[test]
fn ext2_is_flagged_for_eligibility() {
    let Some(fx) = fixture() else { return };
    let t = open_image(&fx.image("plain.ext2"), &Limits::default()).unwrap();
    assert!(t.notes.iter().any(|n| n.message.contains("ext2") && n.message.contains("ext3, ext4 and xfs")), "{:?}", t.notes);
}

#[test]
fn volumes_are_listed_with_ids() {
    let Some(fx) = fixture() else { return };
    let t = open_image(&fx.image("disk-gpt-ext4.raw"), &Limits::default()).unwrap();
    let names: Vec<_> = t.volumes.iter().map(|v| (v.partition, v.fs_type.clone())).collect();
    assert_eq!(names, vec![(Some(1), Some("ext4".into())), (Some(14), None), (Some(15), Some("vfat".into()))]);
    let root = &t.volumes[0];
    assert_eq!(root.uuid.as_deref(), Some("6d1d2a9e-7b3c-4c43-9d7e-0e4a5d1f0001"));
    assert_eq!(root.label.as_deref(), Some("rootfs"));
    assert_eq!(root.part_uuid.as_deref(), Some("6d1d2a9e-0000-4000-8000-0000000000e3"));
    assert_eq!(root.part_label.as_deref(), Some("cloudimg-rootfs"));
    assert!(t.notes.iter().any(|n| n.message.contains("partition 15") && n.message.contains("vfat") && n.disk == Some(0)), "{:?}", t.notes);
    let mbr = open_image(&fx.image("mbr-logical.raw"), &Limits::default()).unwrap();
    let parts: Vec<_> = mbr.volumes.iter().map(|v| (v.partition, v.part_uuid.clone())).collect();
    assert_eq!(parts, vec![(Some(1), Some("0badcafe-01".into())), (Some(5), Some("0badcafe-05".into())), (Some(6), Some("0badcafe-06".into()))]);
}

#[test]
fn fstab_mounts_compose_the_tree() {
    let Some(fx) = fixture() else { return };
    let t = open_image(&fx.image("split.raw"), &Limits::default()).unwrap();
    let var = t.volumes.iter().find(|v| v.partition == Some(2)).unwrap();
    assert_eq!(var.fs_type.as_deref(), Some("xfs"));
    assert_eq!(var.mount_point.as_deref(), Some(Path::new("/var")));
    assert!(t.notes.iter().any(|n| n.message.contains("/home") && n.message.contains("no such volume") && n.disk.is_none()), "{:?}", t.notes);
    let mut got = fs_tree(&**t.root.raw());
    got.remove(Path::new("/lost+found"));
    let mut expected = host_tree(&fx.tree);
    // The only difference from the source tree: the fstab that mounts /var.
    let fstab = PathBuf::from("/etc/fstab");
    expected.remove(&fstab);
    got.remove(&fstab);
    assert_same_tree("split.raw", &expected, &got);
    assert!(t.root.read("/var/lib/dpkg/status").unwrap().starts_with(b"Package: base-files"));
    // Walking the composed tree does not mistake the mounted root for a directory cycle.
    let errors = t.root.walk("/", &kensa_fs::WalkOptions::default(), |_| kensa_fs::walk::Visit::Continue);
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn limits_refuse_with_the_reason() {
    let Some(fx) = fixture() else { return };
    let small = Limits { max_total_bytes: 100 << 20, ..Limits::default() };
    let e = open_image(&fx.image("disk-gpt-ext4.raw"), &small).unwrap_err().to_string();
    assert!(e.contains("not eligible") && e.contains("limit") && e.contains("(from its length)"), "{e}");
    // A converted image's size is what its header says, and the refusal names that field (a
    // corrupt header can claim terabytes).
    let e = open_image(&fx.image("disk-gpt-ext4.qcow2"), &small).unwrap_err().to_string();
    assert!(e.contains("(from the size field of its qcow2 header)"), "{e}");
    let e = open_image(&fx.image("disk-gpt-ext4.vmdk"), &small).unwrap_err().to_string();
    assert!(e.contains("(from the capacity field of its vmdk header)"), "{e}");
    let few = Limits { max_volumes: 2, ..Limits::default() };
    let e = open_image(&fx.image("disk-gpt-ext4.raw"), &few).unwrap_err().to_string();
    assert!(e.contains("3 volumes"), "{e}");
}

#[test]
fn content_detection_ignores_file_names() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let disguised = dir.path().join("disk.raw");
    std::fs::copy(fx.image("disk-gpt-xfs.qcow2"), &disguised).unwrap();
    assert_eq!(open_image(&disguised, &Limits::default()).unwrap().format, ImageFormat::Qcow2);
    assert!(kensa_disk::is_disk_image(&disguised));
    assert!(kensa_disk::is_disk_image(&fx.image("root.xfs")));
    assert!(!kensa_disk::is_disk_image(&fx.tree.join("etc/hostname")));
}

/// The same assembly over any block device (the entry point for cloud snapshot readers).
#[test]
fn block_device_entry_point() {
    let Some(fx) = fixture() else { return };
    let counters = std::sync::Arc::new(kensa_disk::block::Counters::default());
    let file = kensa_disk::block::FileDev::open(&fx.image("disk-gpt-xfs.raw"), counters.clone()).unwrap();
    let t = kensa_disk::open_block_device(std::sync::Arc::new(file), counters, Path::new("snapshot snap-123"), &Limits::default()).unwrap();
    assert!(t.root.read_to_string_lossy("/etc/os-release").unwrap().contains("ID=debian"));
    assert!(t.stats().bytes_read > 0);
}

/// Directory blocks and file heads cost the bytes used, not whole 4 KiB blocks: most directories
/// fill a few hundred bytes of their block, and catalogers read a file's first bytes.
#[test]
fn reads_cost_the_bytes_used_not_whole_blocks() {
    use std::io::Read;
    let Some(_fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for i in 0..300u32 {
        let d = tree.join(format!("d{i:03}"));
        std::fs::create_dir_all(&d).unwrap();
        write(&d.join("f"), vec![(i % 251) as u8; 16 << 10]);
    }
    let img = dir.path().join("small-dirs.ext4");
    run(std::process::Command::new("mkfs.ext4").args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"]).arg(&tree).arg(&img).arg("64M")).unwrap();
    let target = open_image(&img, &Limits::default()).unwrap();
    let fs = target.root.raw();
    let before = target.stats().bytes_read;
    let dirs: Vec<_> = fs.read_dir(Path::new("/")).unwrap().into_iter().filter(|e| e.name != "lost+found").collect();
    assert_eq!(dirs.len(), 300);
    for (i, d) in dirs.iter().enumerate() {
        let p = Path::new("/").join(&d.name);
        let names: Vec<_> = fs.read_dir(&p).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["f"], "{}", p.display());
        let mut head = [0u8; 64];
        fs.open_file(&p.join("f")).unwrap().read_exact(&mut head).unwrap();
        let n: u32 = d.name.to_str().unwrap()[1..].parse().unwrap();
        assert_eq!(head, [(n % 251) as u8; 64], "entry {i}");
    }
    let read = target.stats().bytes_read - before;
    // Whole blocks would be 2.4 MB (a block per directory and per file head), plus the inodes.
    assert!(read < 300 * 1536, "{read} bytes read to list 300 directories and read 300 file heads");
}

/// The state `xfs_logprint -t` reports for an xfs image: `<CLEAN>` or `<DIRTY>`.
fn logprint_state(image: &Path) -> String {
    let out = std::process::Command::new("xfs_logprint").arg("-t").arg(image).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split("state: ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("xfs_logprint -t {}: {text}", image.display())).to_string()
}

fn xfs_log_notes(image: &Path) -> Vec<String> {
    let t = open_image(image, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
    t.notes.iter().map(|n| n.to_string()).filter(|n| n.contains("xfs log")).collect()
}

/// Clean xfs logs are not reported; a log holding more than an unmount record is (replayed, see
/// tests/xfs_log.rs). `xfs_logprint -t` is the oracle: the fixtures are clean, and a copy whose
/// unmount record is turned into an ordinary commit is dirty. That record no longer matches its
/// checksum, so the replay reads the log up to it: nothing to replay, and the note says why.
#[test]
fn xfs_logs_holding_transactions_are_reported() {
    let Some(fx) = fixture() else { return };
    if !kensa_testdata::require_tool("xfs_logprint") {
        return;
    }
    for name in ["root.xfs", "v4.xfs", "disk-gpt-xfs.raw", "disk-gpt-xfs.qcow2", "disk-gpt-xfs.vmdk"] {
        if name.ends_with(".xfs") {
            assert_eq!(logprint_state(&fx.image(name)), "<CLEAN>", "{name}");
        }
        assert_eq!(xfs_log_notes(&fx.image(name)), Vec::<String>::new(), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let dirty = dir.path().join("dirty.xfs");
    std::fs::copy(fx.image("root.xfs"), &dirty).unwrap();
    let sb = |field: &str| -> u64 {
        let out = std::process::Command::new("xfs_db").args(["-r", "-c", "sb 0", "-c"]).arg(format!("p {field}")).arg(&dirty).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split(" = ").nth(1).unwrap().trim().parse().unwrap()
    };
    let (log_start, ag_blocks, ag_blk_log, block_size) = (sb("logstart"), sb("agblocks"), sb("agblklog"), sb("blocksize"));
    let log = ((log_start >> ag_blk_log) * ag_blocks + (log_start & ((1 << ag_blk_log) - 1))) * block_size;
    let mut bytes = std::fs::read(&dirty).unwrap();
    // mkfs logs one record: its header, then (one 512-byte block on) its single operation, whose
    // flags byte (offset 9) says unmount.
    let (header, flags) = (log as usize, log as usize + 512 + 9);
    assert_eq!(&bytes[header..header + 4], &0xFEED_BABEu32.to_be_bytes());
    assert_eq!(bytes[flags], 0x20, "an unmount record");
    bytes[flags] = 0x02;
    std::fs::write(&dirty, bytes).unwrap();
    assert_eq!(logprint_state(&dirty), "<DIRTY>");
    let notes = xfs_log_notes(&dirty);
    assert!(notes.len() == 1 && notes[0].contains("needed recovery") && notes[0].contains("0 committed transactions") && notes[0].contains("checksum mismatch"), "{notes:?}");
}

/// 64 KiB blocks (arm64 and ppc64 machines with 64 KiB pages): a directory entry spanning a whole
/// block cannot store its length in 16 bits, so ext4 writes 65535 (and would keep bits 16-17 of
/// a longer length in the low bits). Emptying a two-block directory of a filesystem without
/// metadata_csum (no checksum tail) leaves its second block one such entry.
#[test]
fn ext4_with_64k_blocks() {
    let Some(_fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write(&tree.join("etc/os-release"), "ID=debian\n");
    let names: Vec<String> = (0..3000).map(|i| format!("file-with-a-long-name-{i:05}")).collect();
    for n in &names {
        write(&tree.join("big").join(n), "x");
    }
    let img = dir.path().join("64k.ext4");
    run(std::process::Command::new("mkfs.ext4").args(["-q", "-F", "-b", "65536", "-O", "^metadata_csum", "-d"]).arg(&tree).arg(&img).arg("256M")).unwrap();
    let listed = |img: &Path| {
        let t = open_image(img, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut got = fs_tree(&**t.root.raw());
        got.remove(Path::new("/lost+found"));
        got
    };
    assert_same_tree("64k.ext4", &host_tree(&tree), &listed(&img));
    let script = dir.path().join("rm.cmds");
    write(&script, names.iter().map(|n| format!("rm /big/{n}\n")).collect::<String>());
    run(std::process::Command::new("debugfs").arg("-w").arg("-f").arg(&script).arg(&img)).unwrap();
    for n in &names {
        std::fs::remove_file(tree.join("big").join(n)).unwrap();
    }
    assert_same_tree("64k.ext4, emptied", &host_tree(&tree), &listed(&img));
}
