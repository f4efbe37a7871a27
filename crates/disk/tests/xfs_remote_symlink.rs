//! XFS v5 remote symlinks (targets too long for the inode's literal area) read back exactly.
//!
//! mkfs.xfs 6.1 (Debian 12) writes a protofile's long symlink targets into their blocks without the
//! v5 block header (`xfs_repair -n` reports "bad symlink header"), so the test writes the headers the
//! kernel would have written (XSLM magic, offset, byte count, CRC32C, uuid, owner, daddr) into the
//! blocks mkfs allocated, and then lets `xfs_repair -n` — the independent oracle — confirm the image
//! is clean before kensa reads it. mkfs sizes the allocation by the bare target length, so only
//! one-block remote symlinks can be made this way: a 700-byte target, and a 968-byte one that fills
//! a 1 KiB block exactly (1024 minus the 56-byte header). Multi-block targets are read by the same
//! loop over the extent list.

use std::path::Path;
use std::process::Command;

use kensa_disk::{open_image, Limits};

const HEADER: usize = 56;

fn xfs_db(img: &Path, cmds: &[&str]) -> String {
    let mut c = Command::new("xfs_db");
    c.arg("-r");
    for cmd in cmds {
        c.args(["-c", cmd]);
    }
    let out = c.arg(img).output().expect("run xfs_db");
    assert!(out.status.success(), "xfs_db {cmds:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `(file offset in bytes, daddr)` of every block of the symlink inode's data fork.
fn symlink_blocks(img: &Path, ino: u64) -> Vec<(u64, u64)> {
    let bmap = xfs_db(img, &[&format!("inode {ino}"), "bmap"]);
    let mut blocks = Vec::new();
    for line in bmap.lines() {
        // "data offset 0 startblock 10 (0/10) count 1 flag 0"
        let words: Vec<&str> = line.split_whitespace().collect();
        let field = |name: &str| words.iter().position(|w| *w == name).map(|i| words[i + 1].parse::<u64>().unwrap());
        let (Some(start), Some(count)) = (field("startblock"), field("count")) else { continue };
        for fsb in start..start + count {
            let conv = xfs_db(img, &[&format!("convert fsb {fsb} daddr")]);
            let daddr = conv.split_whitespace().nth(1).unwrap().trim_matches(|c| c == '(' || c == ')').parse::<u64>().unwrap();
            blocks.push((daddr * 512, daddr));
        }
    }
    assert!(!blocks.is_empty(), "no blocks for inode {ino}: {bmap}");
    blocks
}

fn fix_remote_symlink(img: &Path, ino: u64, target: &[u8], block_size: u64, uuid: [u8; 16]) {
    let mut image = std::fs::read(img).unwrap();
    let per_block = block_size as usize - HEADER;
    for (i, (byte_off, daddr)) in symlink_blocks(img, ino).into_iter().enumerate() {
        let chunk = &target[(i * per_block).min(target.len())..((i + 1) * per_block).min(target.len())];
        let mut block = vec![0u8; block_size as usize];
        block[0..4].copy_from_slice(b"XSLM");
        block[4..8].copy_from_slice(&((i * per_block) as u32).to_be_bytes());
        block[8..12].copy_from_slice(&(chunk.len() as u32).to_be_bytes());
        block[16..32].copy_from_slice(&uuid);
        block[32..40].copy_from_slice(&ino.to_be_bytes());
        block[40..48].copy_from_slice(&daddr.to_be_bytes());
        block[HEADER..HEADER + chunk.len()].copy_from_slice(chunk);
        // XFS stores the CRC32C of the block (crc field zeroed) little-endian.
        let crc = kensa_disk::block::crc32c(&block);
        block[12..16].copy_from_slice(&crc.to_le_bytes());
        let off = byte_off as usize;
        image[off..off + block.len()].copy_from_slice(&block);
    }
    std::fs::write(img, image).unwrap();
}

fn parse_uuid(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn xfs_v5_remote_symlinks_read_back() {
    for tool in ["mkfs.xfs", "xfs_db", "xfs_repair"] {
        if !kensa_testdata::require_tool(tool) {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("links.xfs");
    let one: String = format!("/{}/{}", "a".repeat(300), "b".repeat(398));
    let two: String = format!("/usr/{}/{}", "c".repeat(500), "d".repeat(462));
    assert_eq!((one.len(), two.len()), (700, 968));
    let proto = dir.path().join("proto");
    std::fs::write(
        &proto,
        format!("/stand/diskboot\n1 1\nd--755 0 0\nshort l--777 0 0 /etc/os-release\none l--777 0 0 {one}\ntwo l--777 0 0 {two}\n$\n"),
    )
    .unwrap();
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(300 << 20).unwrap();
    drop(f);
    let out = Command::new("mkfs.xfs").args(["-q", "-b", "size=1024", "-p"]).arg(&proto).arg(&img).output().unwrap();
    assert!(out.status.success(), "mkfs.xfs: {}", String::from_utf8_lossy(&out.stderr));

    // Metadata blocks carry sb_meta_uuid when the META_UUID incompat feature (0x4) is set.
    let sb = xfs_db(&img, &["sb 0", "p uuid meta_uuid features_incompat"]);
    let field = |name: &str| sb.lines().find(|l| l.starts_with(name)).unwrap().split('=').nth(1).unwrap().trim().to_string();
    let incompat = u32::from_str_radix(field("features_incompat").trim_start_matches("0x"), 16).unwrap();
    let uuid = parse_uuid(&field(if incompat & 0x4 != 0 { "meta_uuid" } else { "uuid " }));
    let ls = xfs_db(&img, &["ls /"]);
    let ino_of = |name: &str| -> u64 {
        // "14  132  symlink  0x3d1bf973  5 short (good)": offset, inode, type, hash, namelen, name, state
        let words = ls.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|w| w.len() == 7 && w[5] == name);
        words.unwrap_or_else(|| panic!("{name} not in {ls}"))[1].parse().unwrap()
    };
    for (name, target) in [("one", &one), ("two", &two)] {
        let ino = ino_of(name);
        let core = xfs_db(&img, &[&format!("inode {ino}"), "p core.format"]);
        assert!(core.contains("2 (extents)"), "{name} should be a remote symlink: {core}");
        fix_remote_symlink(&img, ino, target.as_bytes(), 1024, uuid);
    }
    let repair = Command::new("xfs_repair").arg("-n").arg(&img).output().unwrap();
    assert!(
        repair.status.success(),
        "xfs_repair -n finds the test-written symlink blocks bad: {}",
        String::from_utf8_lossy(&repair.stderr)
    );

    let target = open_image(&img, &Limits::default()).expect("open xfs image");
    let raw = target.root.raw();
    assert_eq!(raw.read_link(Path::new("/one")).unwrap().as_os_str().len(), 700);
    assert_eq!(raw.read_link(Path::new("/one")).unwrap(), Path::new(&one));
    assert_eq!(raw.read_link(Path::new("/two")).unwrap(), Path::new(&two));
    assert_eq!(raw.read_link(Path::new("/short")).unwrap(), Path::new("/etc/os-release"));

    // A corrupted header is an error that names the structure, not a wrong target.
    let ino = ino_of("two");
    let (byte_off, _) = symlink_blocks(&img, ino)[0];
    let mut image = std::fs::read(&img).unwrap();
    image[byte_off as usize] = b'Z';
    std::fs::write(&img, image).unwrap();
    let target = open_image(&img, &Limits::default()).expect("open xfs image");
    let err = target.root.raw().read_link(Path::new("/two")).unwrap_err().to_string();
    assert!(err.contains("symlink") && err.contains("magic"), "{err}");
}
