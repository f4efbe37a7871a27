//! xfs images of running machines, whose newest metadata sits only in the log: kensa's replay
//! must give the tree the Linux kernel's own log recovery gives. Only the kernel writes xfs
//! logs, so the images and the kernel's trees are committed fixtures
//! (tests/fixtures/make-xfs-running-snapshots.sh made them and says how).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::hostile::*;
use common::*;
use kensa_disk::block::{BlockDev, Counters, FileDev};
use kensa_disk::xfs::{LogState, XfsFs};
use kensa_disk::{open_image, Limits};
use kensa_fs::Root;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

/// Writes the image packed in `NAME.blocks.gz` (its size, then each non-zero 4 KiB block after
/// its offset) as a sparse file in `dir`.
fn unpack(name: &str, dir: &Path) -> PathBuf {
    let packed = gunzip(&fixture(&format!("{name}.blocks.gz")));
    let path = dir.join(format!("{name}.img"));
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(u64::from_le_bytes(packed[..8].try_into().unwrap())).unwrap();
    for rec in packed[8..].chunks(8 + 4096) {
        f.seek(SeekFrom::Start(u64::from_le_bytes(rec[..8].try_into().unwrap()))).unwrap();
        f.write_all(&rec[8..]).unwrap();
    }
    path
}

/// The kernel's tree of `NAME` (`NAME.tree` or `NAME.tree.gz`).
fn kernel_tree(name: &str) -> BTreeMap<PathBuf, Node> {
    let plain = fixture(&format!("{name}.tree"));
    let text = if plain.exists() { std::fs::read(plain).unwrap() } else { gunzip(&fixture(&format!("{name}.tree.gz"))) };
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let node = match f[1] {
                "dir" => Node::Dir,
                "file" => Node::File { size: f[2].parse().unwrap(), sha256: f[3].to_string() },
                "symlink" => Node::Symlink(PathBuf::from(f[2])),
                _ => Node::Other,
            };
            (PathBuf::from(f[0]), node)
        })
        .collect()
}

fn open(path: &Path) -> XfsFs {
    let dev: Arc<dyn BlockDev> = Arc::new(FileDev::open(path, Arc::new(Counters::default())).unwrap());
    XfsFs::open(dev, Arc::new(Counters::default())).unwrap()
}

/// Byte offset and length of the internal log, from the superblock.
fn log_range(path: &Path) -> (u64, u64) {
    let mut sb = [0u8; 512];
    std::fs::File::open(path).unwrap().read_exact(&mut sb).unwrap();
    let be32 = |o: usize| u32::from_be_bytes(sb[o..o + 4].try_into().unwrap()) as u64;
    let (block, ag_blocks, ag_blk_log) = (be32(4), be32(84), sb[124] as u32);
    let log_start = u64::from_be_bytes(sb[48..56].try_into().unwrap());
    let fsb = (log_start >> ag_blk_log) * ag_blocks + (log_start & ((1 << ag_blk_log) - 1));
    (fsb * block, be32(96) * block)
}

/// Written to, then shut down with nothing written home: the tree exists only in the log, in
/// directories of every form, an extent B+tree, symlinks, links, a rename, deletions and
/// reflinked copies written into.
#[test]
fn a_running_machines_log_replays_to_the_kernels_tree() {
    let dir = tempfile::tempdir().unwrap();
    let image = unpack("xfs-busy", dir.path());
    let fs = open(&image);
    let LogState::Replayed(s) = &fs.info().log else { panic!("{:?}", fs.info().log) };
    assert!(s.transactions > 0 && s.buffers > 0 && s.inodes > 0 && s.stopped.is_none(), "{s:?}");
    let want = kernel_tree("xfs-busy");
    assert_same_tree("xfs-busy", &want, &fs_tree(&fs));
    for p in ["/srv/many", "/srv/fragmented", "/srv/clone", "/srv/long-symlink", "/usr/lib/python3/dist-packages/renamed-1.1.dist-info/METADATA"] {
        assert!(want.contains_key(Path::new(p)), "the fixture lacks {p}");
    }
    assert!(!want.contains_key(Path::new("/srv/gone")));

    // Without the log the tree is not the kernel's: the fixture needs the replay. (A zeroed log
    // reads as never written.)
    let (log, len) = log_range(&image);
    let mut f = std::fs::OpenOptions::new().write(true).open(&image).unwrap();
    f.seek(SeekFrom::Start(log)).unwrap();
    f.write_all(&vec![0u8; len as usize]).unwrap();
    drop(f);
    let fs = open(&image);
    assert_eq!(fs.info().log, LogState::Clean);
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fs_tree(&fs)));
    assert!(got.map_or(true, |t| t != want), "the tree on disk already is the kernel's");
}

/// Copied after idling: everything is home and the log is covered (its last records log only
/// the superblock, older than the one on disk), not unmounted. Nothing needs replaying, and the
/// image says so without a warning about missing changes.
#[test]
fn an_idle_machines_covered_log_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = unpack("xfs-idle", dir.path());
    let fs = open(&image);
    let LogState::Replayed(s) = &fs.info().log else { panic!("{:?}", fs.info().log) };
    assert!(s.transactions > 0 && s.buffers == 0 && s.inodes == 0, "{s:?}");
    assert_same_tree("xfs-idle", &kernel_tree("xfs-idle"), &fs_tree(&fs));
    let t = open_image(&image, &Limits::default()).unwrap();
    let notes: Vec<String> = t.notes.iter().map(|n| n.to_string()).collect();
    assert!(notes.iter().any(|n| n.contains("holds nothing newer than the filesystem")) && !notes.iter().any(|n| n.contains("may be missing")), "{notes:?}");
}

/// The notes of a whole image say what the replay did.
#[test]
fn the_replay_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let image = unpack("xfs-busy", dir.path());
    let t = open_image(&image, &Limits::default()).unwrap();
    let notes: Vec<String> = t.notes.iter().map(|n| n.to_string()).collect();
    assert!(notes.iter().any(|n| n.contains("xfs log needed recovery") && n.contains("replayed in memory")), "{notes:?}");
}

/// Corrupted copies (the log records, the metadata replayed onto and walked): a replay stopped
/// at a damaged record, or not done, then the walk's clear errors; never a panic or a hang.
#[test]
fn corrupted_logs() {
    let dir = tempfile::tempdir().unwrap();
    let image = unpack("xfs-busy", dir.path());
    let base: Arc<dyn BlockDev> = Arc::new(FileDev::open(&image, Arc::new(Counters::default())).unwrap());
    // Where a clean open and walk read (the log's live part among them).
    let recording = Arc::new(Recording { inner: base.clone(), reads: Default::default() });
    exercise(&Root::new(XfsFs::open(recording.clone(), Arc::new(Counters::default())).unwrap()));
    let (log, len) = log_range(&image);
    let reads = recording.reads.lock().unwrap().clone();
    assert!(reads.iter().any(|&(off, _)| off >= log && off < log + len), "the log was not read");
    let mut rng = Rng::new(0x10c5_0001);
    let mut outcomes = BTreeMap::new();
    for round in 0..80 * campaign().0 {
        let changes = (0..1 + rng.below(4))
            .map(|_| {
                let (off, n) = reads[rng.below(reads.len() as u64) as usize];
                (off + rng.below(n as u64), rng.next() as u8)
            })
            .collect();
        let dev: Arc<dyn BlockDev> = Arc::new(Flipped { inner: base.clone(), changes });
        let outcome = bounded(format!("xfs-busy flip round {round}"), move || match XfsFs::open(dev, Arc::new(Counters::default())) {
            Ok(fs) => {
                let state = match &fs.info().log {
                    LogState::Replayed(s) if s.stopped.is_some() => "replayed up to a damaged record",
                    LogState::Replayed(_) => "replayed",
                    LogState::NotReplayed(_) => "not replayed",
                    // Damage can make a log look clean (block 0 unwritten, the last record an
                    // unmount record), as it would to the kernel.
                    LogState::Clean => "clean",
                    // A damaged superblock can put the log outside the filesystem.
                    LogState::Unknown(_) => "log not found",
                };
                for e in exercise(&Root::new(fs)) {
                    assert!(locates(&e), "error does not say where: {e}");
                }
                state
            }
            Err(e) => {
                assert!(locates(&e.to_string()) || e.to_string().contains("superblock"), "error does not say where: {e}");
                "not opened"
            }
        });
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    eprintln!("xfs-busy, corrupted: {outcomes:?}");
    assert!(outcomes.contains_key("replayed up to a damaged record"), "{outcomes:?}");
}

/// A log record's CRC-32C, as the kernel computes it: over its header (the CRC field zeroed), the
/// cycle data of its extended headers, then its data (`record`: header blocks, then data).
fn record_crc(record: &[u8], hblks: usize) -> u32 {
    use kensa_disk::block::crc32c_append;
    let data_len = u32::from_be_bytes(record[12..16].try_into().unwrap()) as usize;
    let mut crc = crc32c_append(crc32c_append(crc32c_append(!0, &record[..32]), &[0; 4]), &record[36..328]);
    for j in 1..hblks {
        crc = crc32c_append(crc, &record[j * 512..j * 512 + 260]);
    }
    !crc32c_append(crc, &record[hblks * 512..hblks * 512 + data_len])
}

/// Damage inside log records whose checksums are then made to match again (a hostile image
/// forges them as easily): the operations, items and regions themselves are bad, so the parsing
/// and replay must refuse them cleanly, not only the checksum.
#[test]
fn forged_log_records() {
    let dir = tempfile::tempdir().unwrap();
    let image = unpack("xfs-busy", dir.path());
    let bytes = std::fs::read(&image).unwrap();
    let (log, len) = log_range(&image);
    let be32 = |o: u64| u32::from_be_bytes(bytes[o as usize..o as usize + 4].try_into().unwrap()) as u64;
    // The records of the fixture's log: (header offset, header blocks, data length), and where
    // their structures are: each operation's header and the start of its region (an item's
    // format, a transaction header), as file offsets.
    let mut records = Vec::new();
    let mut structure = Vec::new();
    let mut at = log;
    while at < log + len && records.len() < 10_000 {
        if be32(at) != 0xFEED_BABE {
            at += 512;
            continue;
        }
        let hblks = if be32(at + 8) & 2 != 0 { be32(at + 320).div_ceil(32 << 10).max(1) } else { 1 };
        let (data_len, ops) = (be32(at + 12), be32(at + 40));
        let data = at + hblks * 512;
        // Each data block's first word holds the cycle; the header keeps the real one.
        let word = |p: u64| if p.is_multiple_of(512) { be32(at + 44 + 4 * (p / 512)) } else { be32(data + p) };
        let mut p = 0;
        for _ in 0..ops {
            if p + 12 > data_len {
                break;
            }
            structure.push((records.len(), p..p + 12));
            let body = word(p + 4);
            structure.push((records.len(), p + 12..(p + 12 + body.min(32))));
            p += 12 + body;
        }
        records.push((at, hblks, data_len));
        at += (hblks + data_len.div_ceil(512)) * 512;
    }
    assert!(records.len() > 3 && structure.len() > 100, "{} records, {} structures", records.len(), structure.len());
    let base: Arc<dyn BlockDev> = Arc::new(FileDev::open(&image, Arc::new(Counters::default())).unwrap());
    let mut rng = Rng::new(0x10c5_0003);
    let mut outcomes = BTreeMap::new();
    for round in 0..60 * campaign().0 {
        let (record, range) = structure[rng.below(structure.len() as u64) as usize].clone();
        let (hdr, hblks, data_len) = records[record];
        let data = hdr + hblks * 512;
        let mut changes = HashMap::new();
        for _ in 0..1 + rng.below(3) {
            // Not a block's first word: that is the cycle stamp, which places the head.
            let off = range.start + rng.below(range.end - range.start);
            if off % 512 >= 4 && off < data_len {
                changes.insert(data + off, if rng.below(3) == 0 { 0 } else { rng.next() as u8 });
            }
        }
        let record: Vec<u8> = (hdr..data + data_len).map(|o| changes.get(&o).copied().unwrap_or(bytes[o as usize])).collect();
        let crc = record_crc(&record, hblks as usize);
        for (i, b) in crc.to_le_bytes().into_iter().enumerate() {
            changes.insert(hdr + 32 + i as u64, b);
        }
        let dev: Arc<dyn BlockDev> = Arc::new(Flipped { inner: base.clone(), changes });
        let outcome = bounded(format!("forged record round {round}"), move || {
            let fs = XfsFs::open(dev, Arc::new(Counters::default())).unwrap();
            let state = match &fs.info().log {
                LogState::Replayed(s) if s.stopped.is_some() => "replayed up to a damaged record",
                LogState::Replayed(_) => "replayed",
                LogState::NotReplayed(_) => "not replayed",
                other => panic!("{other:?}"),
            };
            for e in exercise(&Root::new(fs)) {
                assert!(locates(&e), "error does not say where: {e}");
            }
            state
        });
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    eprintln!("xfs-busy, forged records: {outcomes:?}");
    assert!(outcomes.contains_key("not replayed"), "{outcomes:?}");
}

/// The busy fixture with its log moved so that its live part runs past the log's end and wraps
/// to the start, as a log does once it has gone around: every record rewritten as the kernel
/// writes one there (its cycle, LSN and tail LSN; the cycle stamped in each block one higher
/// past the wrap, within a record too; the checksum over that). Same transactions, same tree.
#[test]
fn a_log_that_wraps_past_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let image = unpack("xfs-busy", dir.path());
    let (log, len) = log_range(&image);
    let mut bytes = std::fs::read(&image).unwrap();
    let bbs = len / 512;
    let be32 = |b: &[u8], o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
    // The live records, from the fixture's tail (block 2) on.
    let old = bytes[log as usize..(log + len) as usize].to_vec();
    let mut records = Vec::new();
    let mut bb = 2usize;
    while be32(&old, bb * 512) == 0xFEED_BABE && be32(&old, bb * 512 + 4) == 1 {
        let h = &old[bb * 512..];
        let hblks = if be32(h, 8) & 2 != 0 { (be32(h, 320) as usize).div_ceil(32 << 10).max(1) } else { 1 };
        let blocks = hblks + (be32(h, 12) as usize).div_ceil(512);
        records.push((bb, hblks, blocks));
        bb += blocks;
    }
    let live = bb - 2;
    assert!(records.len() > 3, "{} records", records.len());
    // New tail: so that the log's end falls inside the largest record, which is then written in
    // two pieces (the second from block 0 on).
    let &(split, _, split_blocks) = records.iter().max_by_key(|r| r.2).unwrap();
    assert!(split_blocks >= 4, "no record of several blocks to split");
    let tail = bbs as usize - (split - 2 + split_blocks / 2);
    let mut new = vec![0u8; len as usize];
    for b in new.chunks_mut(512) {
        b[..4].copy_from_slice(&1u32.to_be_bytes()); // stale blocks of cycle 1
    }
    for &(start, hblks, blocks) in &records {
        let at = (tail + start - 2) % bbs as usize;
        let cycle: u32 = if at >= tail { 1 } else { 2 };
        let mut rec = old[start * 512..(start + blocks) * 512].to_vec();
        rec[4..8].copy_from_slice(&cycle.to_be_bytes());
        rec[16..24].copy_from_slice(&((cycle as u64) << 32 | at as u64).to_be_bytes());
        rec[24..32].copy_from_slice(&(1u64 << 32 | tail as u64).to_be_bytes());
        for j in 1..hblks {
            rec[j * 512..j * 512 + 4].copy_from_slice(&cycle.to_be_bytes());
        }
        for k in hblks..blocks {
            let wrapped = at + k >= bbs as usize;
            rec[k * 512..k * 512 + 4].copy_from_slice(&(cycle + u32::from(wrapped)).to_be_bytes());
        }
        let crc = record_crc(&rec, hblks);
        rec[32..36].copy_from_slice(&crc.to_le_bytes());
        for (k, block) in rec.chunks(512).enumerate() {
            let p = (at + k) % bbs as usize;
            new[p * 512..(p + 1) * 512].copy_from_slice(block);
        }
    }
    bytes[log as usize..(log + len) as usize].copy_from_slice(&new);
    let wrapped = dir.path().join("wrapped.img");
    std::fs::write(&wrapped, &bytes).unwrap();
    // xfs_logprint, where present, finds the same tail and head.
    if kensa_testdata::require_tool("xfs_logprint") {
        let out = std::process::Command::new("xfs_logprint").arg("-t").arg(&wrapped).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let head = (tail + live) % bbs as usize;
        assert!(text.contains(&format!("log tail: {tail} head: {head} state: <DIRTY>")), "{text}");
    }
    let (a, b) = (open(&image), open(&wrapped));
    let (LogState::Replayed(a), LogState::Replayed(b)) = (&a.info().log, &b.info().log) else { panic!("{:?} / {:?}", a.info().log, b.info().log) };
    assert_eq!((a.transactions, b.stopped.clone()), (b.transactions, None), "{a:?} / {b:?}");
    assert_same_tree("xfs-busy, log wrapped", &kernel_tree("xfs-busy"), &fs_tree(&open(&wrapped)));
}
