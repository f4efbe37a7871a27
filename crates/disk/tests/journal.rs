//! ext4 journals that need recovery (a snapshot of a running machine) are replayed in memory.
//! The journals are written by e2fsprogs' own jbd2 code (`debugfs -w`: `jo`, `jw`, `jc`), and
//! e2fsck's replay of the same image is the oracle: kensa must read what e2fsck leaves.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use kensa_disk::{open_image, Limits};

const BS: usize = 4096;

fn tools() -> bool {
    ["mkfs.ext4", "debugfs", "e2fsck"].iter().all(|t| kensa_testdata::require_tool(t))
}

fn small_tree(root: &Path) {
    write(&root.join("etc/os-release"), "ID=debian\nVERSION_ID=12\n");
    write(&root.join("etc/hostname"), "hello\n");
    write(&root.join("etc/magic.bin"), vec![7u8; BS]);
    write(&root.join("var/lib/dpkg/status"), "Package: old\nStatus: install ok installed\nVersion: 1.0\n\n");
    for i in 0..20 {
        write(&root.join(format!("usr/share/doc/pkg{i}/copyright")), format!("License: MIT {i}\n"));
    }
}

fn mkfs(tree: &Path, img: &Path, features: &[&str]) {
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-b", "4096"]);
    if !features.is_empty() {
        cmd.arg("-O").arg(features.join(","));
    }
    run(cmd.arg("-d").arg(tree).arg(img).arg("32M")).unwrap();
}

/// `small_tree` as an ext4 image in `dir`.
fn small_image(dir: &Path) -> PathBuf {
    small_tree(&dir.join("tree"));
    let img = dir.join("j.ext4");
    mkfs(&dir.join("tree"), &img, &[]);
    img
}

/// The number a read-only debugfs request prints (`bmap FILE N`: the block holding its Nth block).
fn debugfs_number(img: &Path, request: &str) -> u64 {
    let out = Command::new("debugfs").arg("-R").arg(request).arg(img).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|e| panic!("debugfs -R '{request}': {e}"))
}

/// Runs debugfs commands against an image (writes go through e2fsprogs' journal code).
fn debugfs(img: &Path, commands: &str) {
    let script = img.with_extension("cmds");
    write(&script, commands);
    let out = Command::new("debugfs").arg("-w").arg("-f").arg(&script).arg(img).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("Error") && !err.contains("rror while"), "debugfs {commands}: {err}");
}

/// A copy of `img` recovered by e2fsck (the reference replay).
fn e2fsck_copy(img: &Path) -> PathBuf {
    let fixed = img.with_extension("e2fsck");
    std::fs::copy(img, &fixed).unwrap();
    let st = Command::new("e2fsck").arg("-fy").arg(&fixed).output().unwrap().status;
    assert!(matches!(st.code(), Some(0 | 1)), "e2fsck {}: {st}", fixed.display());
    fixed
}

fn tree_of(img: &Path) -> (std::collections::BTreeMap<PathBuf, Node>, Vec<String>) {
    let t = open_image(img, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    let mut tree = fs_tree(&**t.root.raw());
    tree.remove(Path::new("/lost+found"));
    (tree, t.notes.iter().map(|n| n.to_string()).collect())
}

fn blocks_of(img: &Path) -> Vec<Vec<u8>> {
    std::fs::read(img).unwrap().chunks(BS).map(|c| c.to_vec()).collect()
}

/// Images of `small_tree` with `features`: (before, after, journaled, changed blocks). `after` has
/// files and a directory created and the dpkg database rewritten; `journaled` is `before` with
/// the blocks those changes wrote logged in its journal (opened by the debugfs command `open`)
/// and not yet written home.
fn journaled(dir: &Path, features: &[&str], open: &str) -> (PathBuf, PathBuf, PathBuf, Vec<usize>) {
    small_tree(&dir.join("tree"));
    let before = dir.join("before.ext4");
    mkfs(&dir.join("tree"), &before, features);

    // The same changes made directly: what the image holds after the transaction.
    let after = dir.join("after.ext4");
    std::fs::copy(&before, &after).unwrap();
    let (status, app) = (dir.join("status"), dir.join("app.txt"));
    write(&status, "Package: new\nStatus: install ok installed\nVersion: 2.0\n\n");
    write(&app, "application\n".repeat(1000));
    debugfs(
        &after,
        &format!(
            "rm /var/lib/dpkg/status\nwrite {} /var/lib/dpkg/status\nmkdir /opt\nmkdir /opt/app\nwrite {} /opt/app/app.txt\nsymlink /opt/current /opt/app\n",
            status.display(),
            app.display()
        ),
    );
    let (old, new) = (blocks_of(&before), blocks_of(&after));
    let changed: Vec<usize> = (0..old.len()).filter(|&b| old[b] != new[b]).collect();
    assert!(changed.len() >= 5, "only blocks {changed:?} changed");

    let journaled = dir.join("journaled.ext4");
    std::fs::copy(&before, &journaled).unwrap();
    let data = dir.join("blocks");
    write(&data, changed.iter().flat_map(|&b| new[b].clone()).collect::<Vec<u8>>());
    let list = changed.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    debugfs(&journaled, &format!("{open}\njw -b {list} {}\njc\n", data.display()));
    let logged = blocks_of(&journaled);
    // Block 0 holds the superblock, which debugfs marks as needing recovery.
    let written: Vec<_> = changed.iter().filter(|&&b| b != 0 && logged[b] != old[b]).collect();
    assert!(written.is_empty(), "debugfs wrote logged blocks {written:?} home");
    (before, after, journaled, changed)
}

/// A transaction that creates files and a directory and rewrites the dpkg database, logged in the
/// journal of an image that never saw it: kensa reads the image as the transaction left it, as
/// e2fsck's replay does, for each journal tag format.
#[test]
fn committed_transactions_are_replayed_as_e2fsck_does() {
    if !tools() {
        return;
    }
    for (label, features, open) in [
        ("64bit journal", &[][..], "jo"),
        ("checksum v2", &[][..], "jo -c -v 2"),
        ("checksum v3", &[][..], "jo -c -v 3"),
        ("32-bit filesystem", &["^64bit"][..], "jo"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (_, after, journaled, changed) = journaled(dir.path(), features, open);
        let (expected, _) = tree_of(&after);
        let (got, notes) = tree_of(&journaled);
        assert_same_tree(label, &expected, &got);
        assert!(
            notes.iter().any(|n| n.contains("1 committed transaction (") && n.contains(&format!("({} blocks)", changed.len()))),
            "{label}: {notes:?}"
        );
        let (recovered, notes) = tree_of(&e2fsck_copy(&journaled));
        assert_same_tree(&format!("{label}, e2fsck"), &recovered, &got);
        assert!(notes.iter().all(|n| !n.contains("journal")), "{label}: {notes:?}");
    }
}

/// A log that wraps past the end of the journal back to its first block (as a busy machine's
/// does): the journaled image's log rotated so it starts two blocks before the end.
#[test]
fn a_log_wrapping_around_the_journal_is_replayed() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, after, img, changed) = journaled(dir.path(), &[], "jo");
    let out = Command::new("debugfs").arg("-R").arg("blocks <8>").arg(&img).output().unwrap();
    let journal: Vec<usize> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|b| b.parse().unwrap()).collect();
    let mut bytes = std::fs::read(&img).unwrap();
    let be = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let sb = journal[0] * BS;
    let (maxlen, first, start) = (be(&bytes, sb + 0x10), be(&bytes, sb + 0x14), be(&bytes, sb + 0x1C));
    assert_eq!((journal.len(), first, start), (maxlen, 1, 1), "a fresh journal logging from its first block");
    assert_eq!(be(&bytes, sb + 0x28) & 0x18, 0, "no superblock checksum to recompute");
    // Journal block j moves to first + (j - first + shift) % (maxlen - first).
    let span = maxlen - first;
    let shift = span - 2;
    let log: Vec<Vec<u8>> = (first..maxlen).map(|j| bytes[journal[j] * BS..][..BS].to_vec()).collect();
    for (i, block) in log.iter().enumerate() {
        let to = journal[first + (i + shift) % span] * BS;
        bytes[to..to + BS].copy_from_slice(block);
    }
    bytes[sb + 0x1C..sb + 0x20].copy_from_slice(&((first + shift) as u32).to_be_bytes());
    std::fs::write(&img, bytes).unwrap();
    assert!(changed.len() > 2, "the transaction's blocks run past the end");

    let (expected, _) = tree_of(&after);
    let (got, notes) = tree_of(&img);
    assert_same_tree("wrapped log", &expected, &got);
    assert!(notes.iter().any(|n| n.contains("1 committed transaction (")), "{notes:?}");
    let (recovered, _) = tree_of(&e2fsck_copy(&img));
    assert_same_tree("wrapped log, e2fsck", &recovered, &got);
}

/// Corrupted copies of a journaled image (byte flips in what opening and walking it read, the
/// journal's blocks included): a clean result or a clear error, never a panic or a hang.
#[test]
fn corrupted_journals_end_in_a_result_or_a_clear_error() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, _, journaled, _) = journaled(dir.path(), &[], "jo -c -v 3");
    let open = |d: std::sync::Arc<dyn kensa_disk::block::BlockDev>| {
        kensa_disk::ext4::Ext4Fs::open(d, Default::default()).map(kensa_fs::Root::new).map_err(|e| e.to_string())
    };
    hostile::flip_metadata(&journaled, open, hostile::locates, 0x10_6a1, 80, 6);
}

/// A revoked block keeps its home copy, a transaction without a commit block is dropped, and an
/// escaped block (one that began with the journal's magic) gets its first bytes back.
#[test]
fn revoked_uncommitted_and_escaped_blocks_read_as_e2fsck_leaves_them() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let bmap = |path: &str| debugfs_number(&img, &format!("bmap {path} 0"));
    let (hostname, magic, os_release) = (bmap("/etc/hostname"), bmap("/etc/magic.bin"), bmap("/etc/os-release"));
    let garbage = dir.path().join("garbage");
    write(&garbage, b"GARBAGE!".repeat(BS / 8));
    let escaped = dir.path().join("escaped");
    let mut block = vec![0xC0, 0x3B, 0x39, 0x98];
    block.extend(b"after the magic");
    block.resize(BS, 0);
    write(&escaped, &block);
    let g = garbage.display();
    debugfs(
        &img,
        &format!(
            "jo -c -v 3\njw -b {hostname} {g}\njc\njo -c -v 3\njw -r {hostname}\njc\njo -c -v 3\njw -b {magic} {}\njc\njo -c -v 3\njw -c -b {os_release} {g}\njc\n",
            escaped.display()
        ),
    );
    let t = open_image(&img, &Limits::default()).unwrap();
    let read = |p: &str| t.root.read(p).unwrap();
    assert_eq!(read("/etc/hostname"), b"hello\n", "the revoked write is not replayed");
    assert_eq!(read("/etc/os-release"), b"ID=debian\nVERSION_ID=12\n", "the uncommitted write is not replayed");
    assert_eq!(read("/etc/magic.bin"), block, "the escaped block starts with the magic again");
    assert!(t.notes.iter().any(|n| n.to_string().contains("3 committed transactions (1 block)")), "{:?}", t.notes);

    let fixed = open_image(&e2fsck_copy(&img), &Limits::default()).unwrap();
    for p in ["/etc/hostname", "/etc/os-release", "/etc/magic.bin"] {
        assert_eq!(fixed.root.read(p).unwrap(), read(p), "{p}: e2fsck's replay differs");
    }
}

/// A journal that cannot be replayed (a tag naming a block past the filesystem) is reported, and
/// the filesystem is still read as it is on disk.
#[test]
fn an_unreplayable_journal_is_reported_and_the_home_blocks_read() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let data = dir.path().join("blocks");
    write(&data, vec![0u8; BS]);
    debugfs(&img, &format!("jo\njw -b 100 {}\njc\n", data.display()));
    // Point the logged block past the end: the tag follows the 12-byte header of the descriptor,
    // the journal's first log block (debugfs logs from journal block 1).
    let journal_start = debugfs_number(&img, "bmap <8> 1");
    let mut bytes = std::fs::read(&img).unwrap();
    let tag = journal_start as usize * BS + 12;
    assert_eq!(&bytes[tag..tag + 4], &100u32.to_be_bytes());
    bytes[tag..tag + 4].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes());
    std::fs::write(&img, bytes).unwrap();
    let t = open_image(&img, &Limits::default()).unwrap();
    assert_eq!(t.root.read("/etc/hostname").unwrap(), b"hello\n");
    assert!(
        t.notes.iter().any(|n| n.to_string().contains("was not replayed") && n.to_string().contains("past the filesystem")),
        "{:?}",
        t.notes
    );
}
