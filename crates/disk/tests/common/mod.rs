//! Shared fixtures: a small realistic tree made by the test, and disk images made from it with the
//! real tools (mkfs.ext4 -d, mkfs.xfs -p, sgdisk, sfdisk, qemu-img; no mounting), cached under
//! target/test-fixtures.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use kensa_fs::{FileType, RawFs};
use sha2::{Digest, Sha256};

pub mod hostile;

pub const MIB: u64 = 1 << 20;

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

pub fn write(path: &Path, data: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Rebuilds an ext4 image's directories as htree (dir_index) with `e2fsck -D`: `mkfs.ext4 -d`
/// writes linear ones. e2fsck exits 1 when it changed the filesystem, as -D does.
pub fn index_directories(image: &Path) -> Result<(), String> {
    let st = Command::new("e2fsck").args(["-f", "-y", "-D"]).arg(image).output().map_err(|e| e.to_string())?;
    if !matches!(st.status.code(), Some(0 | 1)) {
        return Err(format!("e2fsck -D: {}", String::from_utf8_lossy(&st.stdout)));
    }
    Ok(())
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The test tree: package databases, symlinks (fast, slow, absolute, dangling), a sparse file, a
/// deep directory, directories big enough for ext4 htree and xfs leaf/node forms, odd sizes.
pub fn make_tree(root: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    write(&root.join("usr/lib/os-release"), b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
    write(&root.join("etc/fstab"), b"# <file system> <mount point> <type> <options> <dump> <pass>\nLABEL=rootfs / ext4 defaults 0 1\n");
    write(&root.join("etc/hostname"), b"kensa-disk-test\n");
    let status = "Package: base-files\nStatus: install ok installed\nPriority: required\nSection: admin\nInstalled-Size: 340\nMaintainer: Santiago Vila <sanvila@debian.org>\nArchitecture: amd64\nVersion: 12.4+deb12u5\nDescription: Debian base system miscellaneous files\n\n\
Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 12986\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library: Shared libraries\n\n\
Package: openssl\nStatus: install ok installed\nPriority: optional\nSection: utils\nInstalled-Size: 2303\nMaintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\nDepends: libc6 (>= 2.34), libssl3 (>= 3.0.9)\nDescription: Secure Sockets Layer toolkit\n\n";
    write(&root.join("var/lib/dpkg/status"), status.as_bytes());
    for p in ["base-files", "libc6:amd64", "openssl"] {
        write(&root.join(format!("var/lib/dpkg/info/{p}.list")), format!("/usr/share/doc/{p}\n").as_bytes());
    }
    if let Some(rpmdb) = kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0/rpmdb.sqlite") {
        std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
        std::fs::copy(rpmdb, root.join("var/lib/rpm/rpmdb.sqlite")).map_err(|e| e.to_string())?;
    }
    let dist = root.join("usr/lib/python3/dist-packages/requests-2.31.0.dist-info");
    write(&dist.join("METADATA"), b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\n");
    write(&dist.join("RECORD"), b"requests/__init__.py,,\n");
    write(&root.join("usr/local/lib/python3.11/dist-packages/urllib3-1.26.5.dist-info/METADATA"), b"Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.5\n");
    write(&root.join("usr/bin/python3.11"), pseudo_random(300_000, 7));
    std::fs::set_permissions(root.join("usr/bin/python3.11"), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("python3.11", root.join("usr/bin/python3")).unwrap();
    symlink("/usr/lib/x86_64-linux-gnu/a/rather/long/directory/path/that/does/not/fit/in/sixty/bytes/libfoo.so.1.2.3", root.join("usr/bin/slowlink")).unwrap();
    symlink("/etc/hostname", root.join("usr/bin/abslink")).unwrap();
    symlink("nowhere/at/all", root.join("usr/bin/dangling")).unwrap();
    // No symlink longer than an xfs data fork (a remote symlink): mkfs.xfs 6.1 writes those from a
    // protofile with a bad block header, and make-disk-images.sh's xfs_repair check rejects them.
    // A 64 MiB sparse file with data at both ends.
    let sparse = root.join("opt/data/sparse.bin");
    std::fs::create_dir_all(sparse.parent().unwrap()).unwrap();
    {
        let mut f = std::fs::File::create(&sparse).unwrap();
        f.write_all(b"HEAD of a sparse file").unwrap();
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(64 * MIB - 100)).unwrap();
        f.write_all(&pseudo_random(100, 3)).unwrap();
    }
    write(&root.join("opt/data/random.bin"), pseudo_random(1_500_000, 11));
    for (i, n) in [0usize, 1, 59, 60, 61, 4095, 4096, 4097, 65536, 65537].iter().enumerate() {
        write(&root.join(format!("opt/sizes/f{n}")), pseudo_random(*n, 100 + i as u64));
    }
    std::fs::create_dir_all(root.join("opt/empty-dir")).unwrap();
    let mut deep = root.join("opt/deep");
    for i in 0..40 {
        deep = deep.join(format!("level{i:02}"));
    }
    write(&deep.join("bottom.txt"), b"deep\n");
    for i in 0..300 {
        write(&root.join(format!("srv/many/file-{i:04}.txt")), format!("file {i}\n").as_bytes());
    }
    for i in 0..3000 {
        let name = format!("srv/huge/entry-with-a-fairly-long-name-{i:05}");
        if i % 10 == 0 {
            std::fs::create_dir_all(root.join(&name)).unwrap();
        } else {
            write(&root.join(name), &[b'x'; 3][..(i % 4)]);
        }
    }
    Ok(())
}

pub struct Fixture {
    pub tree: PathBuf,
    pub images: PathBuf,
}

impl Fixture {
    pub fn image(&self, name: &str) -> PathBuf {
        self.images.join(name)
    }
}

/// The tree and every image kind, built once per workspace (a few seconds).
pub fn fixture() -> Option<Fixture> {
    for t in ["mkfs.ext4", "mkfs.xfs", "xfs_db", "sgdisk", "sfdisk", "qemu-img", "mkfs.vfat", "mcopy", "python3"] {
        if !kensa_testdata::require_tool(t) {
            return None;
        }
    }
    let tools = kensa_testdata::shared_tools()?;
    let dir = kensa_testdata::cached_fixture("disk-images-v11", |out| {
        let tree = out.join("tree");
        let images = out.join("images");
        make_tree(&tree)?;
        run(Command::new("bash").arg(tools.join("make-disk-images.sh")).arg(&tree).arg(&images).env("ROOT_SIZE", "320M"))?;
        fix_gpt(&images, 320)?;
        extra_images(&tree, &images, &tools)
    })?;
    Some(Fixture { tree: dir.join("tree"), images: dir.join("images") })
}

/// make-disk-images.sh runs `sgdisk -q`, which with gdisk 1.0.9 writes no table on a blank disk: its
/// GPT disks come out with the filesystem at 111 MiB / 12 MiB and no partition table. Keep one such
/// disk (kensa finds the filesystem by signature), then write the tables the script meant to and
/// redo its conversions.
pub fn fix_gpt(images: &Path, root_mib: u64) -> Result<(), String> {
    let out = Command::new("sgdisk").arg("-p").arg(images.join("disk-gpt-ext4.raw")).output().map_err(|e| e.to_string())?;
    if String::from_utf8_lossy(&out.stdout).contains("cloudimg-rootfs") {
        return Ok(());
    }
    run(Command::new("cp").arg("--sparse=always").arg(images.join("disk-gpt-ext4.raw")).arg(images.join("no-table.raw")))?;
    run(Command::new("sgdisk").args([
        "-U", "6D1D2A9E-0000-4000-8000-00000000E4D0",
        "-n", "14:1M:+4M", "-t", "14:EF02", "-c", "14:BIOS boot", "-u", "14:6D1D2A9E-0000-4000-8000-0000000000E1",
        "-n", "15:5M:+106M", "-t", "15:EF00", "-c", "15:EFI System", "-u", "15:6D1D2A9E-0000-4000-8000-0000000000E2",
        "-n", &format!("1:111M:+{root_mib}M"), "-t", "1:8304", "-c", "1:cloudimg-rootfs", "-u", "1:6D1D2A9E-0000-4000-8000-0000000000E3",
    ]).arg(images.join("disk-gpt-ext4.raw")))?;
    run(Command::new("sgdisk").args([
        "-U", "6D1D2A9E-0000-4000-8000-00000000F5D0",
        "-n", "127:1M:+1M", "-t", "127:EF02", "-c", "127:BIOS Boot Partition", "-u", "127:6D1D2A9E-0000-4000-8000-0000000000F1",
        "-n", "128:2M:+10M", "-t", "128:EF00", "-c", "128:EFI System Partition", "-u", "128:6D1D2A9E-0000-4000-8000-0000000000F2",
        "-n", &format!("1:12M:+{root_mib}M"), "-t", "1:8300", "-c", "1:Linux", "-u", "1:6D1D2A9E-0000-4000-8000-0000000000F3",
    ]).arg(images.join("disk-gpt-xfs.raw")))?;
    for (src, dst, opts) in [
        ("disk-gpt-ext4.raw", "disk-gpt-ext4.qcow2", vec!["-O", "qcow2"]),
        ("disk-gpt-xfs.raw", "disk-gpt-xfs.qcow2", vec!["-O", "qcow2"]),
        ("disk-gpt-ext4.raw", "disk-gpt-ext4.vmdk", vec!["-O", "vmdk", "-o", "subformat=streamOptimized"]),
        ("disk-gpt-xfs.raw", "disk-gpt-xfs.vmdk", vec!["-O", "vmdk", "-o", "subformat=monolithicSparse"]),
    ] {
        let _ = std::fs::remove_file(images.join(dst));
        run(Command::new("qemu-img").args(["convert", "-f", "raw"]).args(opts).arg(images.join(src)).arg(images.join(dst)))?;
    }
    Ok(())
}

/// Images beyond make-disk-images.sh: other ext variants, xfs v4, MBR logical partitions, qcow2
/// compressed / v2 / backing chain / 2 MiB and 1 KiB clusters, and a two-volume disk whose fstab mounts /var.
fn extra_images(tree: &Path, images: &Path, tools: &Path) -> Result<(), String> {
    let img = |n: &str| images.join(n);
    let mkfs_ext = |name: &str, args: &[&str]| -> Result<(), String> {
        let _ = std::fs::remove_file(img(name));
        run(Command::new("mke2fs").args(["-q", "-F"]).args(args).args(["-L", "rootfs", "-E", "root_owner=0:0", "-d"]).arg(tree).arg(img(name)).arg("200M"))
    };
    mkfs_ext("inline.ext4", &["-t", "ext4", "-O", "inline_data"])?;
    mkfs_ext("plain.ext2", &["-t", "ext2"])?;
    mkfs_ext("plain.ext3", &["-t", "ext3"])?;
    // mkfs.ext4 -d writes linear directories; e2fsck -D rebuilds them as htree (dir_index).
    run(Command::new("cp").arg("--sparse=always").arg(img("root.ext4")).arg(img("htree.ext4")))?;
    index_directories(&img("htree.ext4"))?;
    mkfs_ext("bigblock.ext4", &["-t", "ext4", "-b", "1024", "-O", "^flex_bg,meta_bg,^resize_inode"])?;
    // xfs v4 (no CRCs, no ftype) from the same protofile.
    let proto = images.join("v4.proto");
    let out = Command::new("python3").arg(tools.join("xfs-protofile.py")).arg(tree).output().map_err(|e| e.to_string())?;
    std::fs::write(&proto, &out.stdout).map_err(|e| e.to_string())?;
    let v4 = img("v4.xfs");
    let _ = std::fs::remove_file(&v4);
    std::fs::File::create(&v4).and_then(|f| f.set_len(320 * MIB)).map_err(|e| e.to_string())?;
    run(Command::new("mkfs.xfs").args(["-q", "-f", "-m", "crc=0", "-n", "ftype=0", "-p"]).arg(&proto).arg(&v4))?;
    // MBR: p1 primary (unformatted), p2 extended holding logical p5 (ext4 root) and p6 (empty).
    let mbr = img("mbr-logical.raw");
    let _ = std::fs::remove_file(&mbr);
    std::fs::File::create(&mbr).and_then(|f| f.set_len(260 * MIB)).map_err(|e| e.to_string())?;
    let layout = "label: dos\nlabel-id: 0x0badcafe\nstart=2048, size=4096, type=83\nstart=8192, size=522240, type=5\nstart=10240, size=409600, type=83\nstart=421888, size=8192, type=83\n";
    let mut child = Command::new("sfdisk").arg("-q").arg(&mbr).stdin(std::process::Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    child.stdin.take().unwrap().write_all(layout.as_bytes()).map_err(|e| e.to_string())?;
    if !child.wait().map_err(|e| e.to_string())?.success() {
        return Err("sfdisk failed".into());
    }
    run(Command::new("dd").arg(format!("if={}", img("inline.ext4").display())).arg(format!("of={}", mbr.display())).args(["bs=1M", "seek=5", "conv=notrunc,sparse", "status=none"]))?;
    // qcow2 variants.
    run(Command::new("qemu-img").args(["convert", "-c", "-f", "raw", "-O", "qcow2"]).arg(img("disk-mbr-ext4.raw")).arg(img("compressed.qcow2")))?;
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic"]).arg(img("disk-mbr-ext4.raw")).arg(img("dynamic.vhd")))?;
    // VHDX: dynamic with 1 MiB blocks (BAT interleaved with sector-bitmap entries every 4,096
    // payload entries), and fixed.
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic,block_size=1M"]).arg(img("disk-mbr-ext4.raw")).arg(img("dynamic.vhdx")))?;
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=fixed"]).arg(img("inline.ext4")).arg(img("fixed.vhdx")))?;
    // VMDK descriptors with extent files: qemu-img's monolithicFlat; twoGbMaxExtentSparse of a
    // disk grown past 4 GiB (three sparse extents); a hand-written descriptor splitting a raw
    // disk into two flat extents at an odd sector inside its root filesystem (which starts at
    // 111 MiB), then a ZERO extent.
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat"]).arg(img("disk-gpt-xfs.raw")).arg(img("flat.vmdk")))?;
    run(Command::new("cp").arg("--sparse=always").arg(img("disk-mbr-ext4.raw")).arg(img("grown.raw")))?;
    std::fs::OpenOptions::new().write(true).open(img("grown.raw")).and_then(|f| f.set_len(4600 * MIB)).map_err(|e| e.to_string())?;
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"]).arg(img("grown.raw")).arg(img("split-sparse.vmdk")))?;
    std::fs::remove_file(img("grown.raw")).map_err(|e| e.to_string())?;
    let sectors = std::fs::metadata(img("disk-gpt-ext4.raw")).map_err(|e| e.to_string())?.len() / 512;
    let first = 303_111;
    std::fs::write(
        img("extents.vmdk"),
        format!("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW {first} FLAT \"disk-gpt-ext4.raw\" 0\nRW {} FLAT \"disk-gpt-ext4.raw\" {first}\nRW 2048 ZERO\n\n# The Disk Data Base\n#DDB\nddb.adapterType = \"lsilogic\"\n", sectors - first),
    )
    .map_err(|e| e.to_string())?;
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10"]).arg(img("disk-gpt-xfs.raw")).arg(img("v2.qcow2")))?;
    // The largest and smallest clusters qcow2 allows but one: L2 tables of 262,144 entries (read
    // in 4 KiB slices) and of 128 (a slice is the whole table).
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=2M"]).arg(img("disk-mbr-ext4.raw")).arg(img("big-cluster.qcow2")))?;
    run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=1024"]).arg(img("disk-gpt-xfs.raw")).arg(img("small-cluster.qcow2")))?;
    let _ = std::fs::remove_file(img("overlay.qcow2"));
    run(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "compressed.qcow2"]).arg(img("overlay.qcow2")).current_dir(images))?;
    // Two volumes: an ext4 root without /var content, and an xfs /var that its fstab mounts.
    let split = images.join("split");
    let _ = std::fs::remove_dir_all(&split);
    std::fs::create_dir_all(&split).map_err(|e| e.to_string())?;
    run(Command::new("cp").arg("-a").arg(tree).arg(split.join("root")))?;
    std::fs::rename(split.join("root/var"), split.join("var")).map_err(|e| e.to_string())?;
    std::fs::create_dir(split.join("root/var")).map_err(|e| e.to_string())?;
    std::fs::write(split.join("root/etc/fstab"), "LABEL=rootfs / ext4 defaults 0 1\nUUID=6d1d2a9e-0000-4000-8000-00000000a001 /var xfs defaults 0 2\nUUID=6d1d2a9e-0000-4000-8000-00000000dead /home ext4 defaults,nofail 0 2\n/dev/vda15 /boot/efi vfat umask=0077 0 1\n").map_err(|e| e.to_string())?;
    let root_fs = images.join("split-root.ext4");
    let _ = std::fs::remove_file(&root_fs);
    run(Command::new("mke2fs").args(["-q", "-F", "-t", "ext4", "-L", "rootfs", "-E", "root_owner=0:0", "-d"]).arg(split.join("root")).arg(&root_fs).arg("100M"))?;
    let out = Command::new("python3").arg(tools.join("xfs-protofile.py")).arg(split.join("var")).output().map_err(|e| e.to_string())?;
    std::fs::write(&proto, &out.stdout).map_err(|e| e.to_string())?;
    let var_fs = images.join("split-var.xfs");
    let _ = std::fs::remove_file(&var_fs);
    std::fs::File::create(&var_fs).and_then(|f| f.set_len(320 * MIB)).map_err(|e| e.to_string())?;
    run(Command::new("mkfs.xfs").args(["-q", "-f", "-m", "uuid=6d1d2a9e-0000-4000-8000-00000000a001", "-p"]).arg(&proto).arg(&var_fs))?;
    let disk = img("split.raw");
    let _ = std::fs::remove_file(&disk);
    std::fs::File::create(&disk).and_then(|f| f.set_len(440 * MIB)).map_err(|e| e.to_string())?;
    run(Command::new("sgdisk").args(["-n", "1:1M:+100M", "-t", "1:8300", "-n", "2:101M:+320M", "-t", "2:8300", "-n", "15:421M:+10M", "-t", "15:EF00"]).arg(&disk))?;
    run(Command::new("dd").arg(format!("if={}", root_fs.display())).arg(format!("of={}", disk.display())).args(["bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"]))?;
    run(Command::new("dd").arg(format!("if={}", var_fs.display())).arg(format!("of={}", disk.display())).args(["bs=1M", "seek=101", "conv=notrunc,sparse", "status=none"]))?;
    std::fs::remove_dir_all(&split).map_err(|e| e.to_string())?;
    std::fs::remove_file(&proto).map_err(|e| e.to_string())?;
    Ok(())
}

/// What one tree entry looks like: type, size (files), link target (symlinks), sha256 (files).
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { size: u64, sha256: String },
    Symlink(PathBuf),
    Other,
}

fn sha(mut r: impl Read) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// Lists a host directory tree.
pub fn host_tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(rel) = stack.pop() {
        let dir = root.join(rel.strip_prefix("/").unwrap());
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = rel.join(e.file_name());
            let md = e.path().symlink_metadata().unwrap();
            let node = if md.is_dir() {
                stack.push(p.clone());
                Node::Dir
            } else if md.file_type().is_symlink() {
                Node::Symlink(std::fs::read_link(e.path()).unwrap())
            } else if md.is_file() {
                Node::File { size: md.len(), sha256: sha(std::fs::File::open(e.path()).unwrap()) }
            } else {
                Node::Other
            };
            out.insert(p, node);
        }
    }
    out
}

/// Lists a tree through kensa's reader.
pub fn fs_tree(fs: &dyn RawFs) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(dir) = stack.pop() {
        for e in fs.read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let p = dir.join(&e.name);
            let md = fs.lstat(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
            assert_eq!(md.file_type, e.file_type, "{}: directory entry type differs from the inode", p.display());
            let node = match md.file_type {
                FileType::Dir => {
                    stack.push(p.clone());
                    Node::Dir
                }
                FileType::Symlink => Node::Symlink(fs.read_link(&p).unwrap()),
                FileType::File => Node::File { size: md.size, sha256: sha(fs.open_file(&p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()))) },
                FileType::Other => Node::Other,
            };
            out.insert(p, node);
        }
    }
    out
}

/// Asserts two listings are equal, naming the first differences.
pub fn assert_same_tree(what: &str, expected: &BTreeMap<PathBuf, Node>, got: &BTreeMap<PathBuf, Node>) {
    let mut diffs = Vec::new();
    for (p, n) in expected {
        match got.get(p) {
            None => diffs.push(format!("missing {}", p.display())),
            Some(g) if g != n => diffs.push(format!("{}: expected {n:?}, got {g:?}", p.display())),
            _ => {}
        }
    }
    for p in got.keys() {
        if !expected.contains_key(p) {
            diffs.push(format!("unexpected {}", p.display()));
        }
    }
    assert!(diffs.is_empty(), "{what}: {} differences, first: {:#?}", diffs.len(), &diffs[..diffs.len().min(15)]);
}
