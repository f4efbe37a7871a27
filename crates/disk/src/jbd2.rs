//! Replays an ext3/ext4 journal (jbd2) in memory, as the kernel does when it mounts a filesystem
//! whose journal needs recovery. A snapshot of a running machine is crash-consistent: its newest
//! metadata (a package database just rewritten, a directory just created) may sit only in the
//! journal. Nothing is written: [`ReplayDev`] serves a block that a committed transaction logged
//! from the journal's copy, and every other block from the filesystem.
//!
//! As the kernel's three passes (recovery.c): find the last committed transaction, collect the
//! revoke records, then take each logged block of a committed transaction unless a revoke record
//! of the same or a later transaction cancels it. Checksums are not verified (a commit block is
//! written after its transaction's blocks unless the journal commits asynchronously); fast-commit
//! blocks (a logical log after the journal, off by default) are not replayed.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use crate::block::{be32, check_range, corrupt, read_with_copies, BlockDev};
use crate::extent_file::ExtentFile;

const MAGIC: u32 = 0xC03B_3998;
const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOKE: u32 = 5;

const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;

/// Tag flags: the logged block began with [`MAGIC`] (zeroed in the journal); no UUID follows
/// the tag; the last tag of the descriptor block.
const FLAG_ESCAPE: u32 = 0x1;
const FLAG_SAME_UUID: u32 = 0x2;
const FLAG_LAST_TAG: u32 = 0x8;

/// Blocks the replay found, and what it read to find them.
pub struct Replay {
    /// Filesystem block -> (device offset of the journal's copy, whether it was escaped).
    blocks: HashMap<u64, (u64, bool)>,
    /// Committed transactions replayed.
    pub transactions: u64,
}

impl Replay {
    /// Filesystem blocks taken from the journal.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }
}

/// A logged block of a transaction: filesystem block, journal block, escaped.
type Logged = (u64, u64, bool);

/// Reads the journal in `journal` (the journal inode's data on the filesystem's device) and
/// returns the blocks to replay, or `None` when the journal is clean. `fs_blocks` bounds the
/// block numbers tags may name.
pub fn replay(journal: &ExtentFile, fs_block_size: u64, fs_blocks: u64, what: &str) -> io::Result<Option<Replay>> {
    let err = |msg: String| corrupt(format!("{what}: {msg}"));
    let mut sb = [0u8; 1024];
    journal.read_once_exact_at(0, &mut sb).map_err(|e| io::Error::new(e.kind(), format!("{what}: journal superblock: {e}")))?;
    if be32(&sb, 0) != MAGIC || !matches!(be32(&sb, 4), SUPERBLOCK_V1 | SUPERBLOCK_V2) {
        return Err(err("no journal superblock magic at journal block 0".into()));
    }
    let bs = be32(&sb, 0xC) as u64;
    if bs != fs_block_size {
        return Err(err(format!("journal block size {bs} differs from the filesystem's {fs_block_size}")));
    }
    let (maxlen, first, sequence, start) = (be32(&sb, 0x10) as u64, be32(&sb, 0x14) as u64, be32(&sb, 0x18), be32(&sb, 0x1C) as u64);
    if start == 0 {
        return Ok(None);
    }
    if first == 0 || first >= maxlen || start < first || start >= maxlen || maxlen.checked_mul(bs).is_none_or(|n| n > journal.size()) {
        return Err(err(format!("journal superblock: first block {first}, start {start}, length {maxlen} do not fit a {}-byte journal", journal.size())));
    }
    let incompat = if be32(&sb, 4) == SUPERBLOCK_V2 { be32(&sb, 0x28) } else { 0 };
    let is64 = incompat & INCOMPAT_64BIT != 0;
    let csum = incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0;
    // journal_tag_bytes(): the v3 tag has room for everything; the older one grows by 2 bytes of
    // checksum with v2 and by the block number's high half with 64bit.
    let tag_len = if incompat & INCOMPAT_CSUM_V3 != 0 {
        16
    } else {
        8 + if incompat & INCOMPAT_CSUM_V2 != 0 { 2 } else { 0 } + if is64 { 4 } else { 0 }
    };
    // Descriptor and revoke blocks end with a 4-byte checksum tail when checksums are on.
    let tail = if csum { 4 } else { 0 };
    let bs_usize = bs as usize;
    let next = |b: u64| if b + 1 >= maxlen { first } else { b + 1 };

    // One walk from the start of the log: transactions are taken when their commit block is found;
    // the log ends at a block without the magic or with another transaction's sequence.
    let (mut writes, mut revoked): (Vec<(u32, Logged)>, HashMap<u64, u32>) = (Vec::new(), HashMap::new());
    let (mut pending, mut pending_revokes): (Vec<Logged>, Vec<u64>) = (Vec::new(), Vec::new());
    let mut block = vec![0u8; bs_usize];
    let (mut pos, mut seq, mut walked) = (start, sequence, 0u64);
    while walked < maxlen {
        journal.read_once_exact_at(pos * bs, &mut block).map_err(|e| io::Error::new(e.kind(), format!("{what}: journal block {pos}: {e}")))?;
        if be32(&block, 0) != MAGIC || be32(&block, 8) != seq {
            break;
        }
        match be32(&block, 4) {
            DESCRIPTOR => {
                let mut at = 12;
                let mut data = pos;
                while at + tag_len <= bs_usize - tail {
                    let mut target = be32(&block, at) as u64;
                    let flags = if tag_len == 16 { be32(&block, at + 4) } else { u16::from_be_bytes([block[at + 6], block[at + 7]]) as u32 };
                    if is64 {
                        target |= (be32(&block, at + 8) as u64) << 32;
                    }
                    if target >= fs_blocks {
                        return Err(err(format!("journal block {pos}: transaction {seq} logs block {target}, past the filesystem's {fs_blocks} blocks")));
                    }
                    data = next(data);
                    walked += 1;
                    pending.push((target, data, flags & FLAG_ESCAPE != 0));
                    at += tag_len + if flags & FLAG_SAME_UUID == 0 { 16 } else { 0 };
                    if flags & FLAG_LAST_TAG != 0 {
                        break;
                    }
                }
                pos = data;
            }
            COMMIT => {
                writes.extend(pending.drain(..).map(|w| (seq, w)));
                for b in pending_revokes.drain(..) {
                    let r = revoked.entry(b).or_insert(seq);
                    *r = (*r).max(seq);
                }
                seq = seq.wrapping_add(1);
            }
            REVOKE => {
                let used = (be32(&block, 12) as usize).min(bs_usize - tail);
                let rec = if is64 { 8 } else { 4 };
                let mut at = 16;
                while at + rec <= used {
                    let b = if is64 { (be32(&block, at) as u64) << 32 | be32(&block, at + 4) as u64 } else { be32(&block, at) as u64 };
                    pending_revokes.push(b);
                    at += rec;
                }
            }
            _ => break,
        }
        pos = next(pos);
        walked += 1;
    }

    let mut blocks = HashMap::new();
    for (tseq, (target, data, escaped)) in writes {
        // A revoke in this transaction or a later one cancels the write (sequence numbers wrap).
        if revoked.get(&target).is_some_and(|&r| r.wrapping_sub(tseq) as i32 >= 0) {
            continue;
        }
        let off = journal.physical(data * bs).ok_or_else(|| err(format!("journal block {data} is not mapped to the device")))?;
        blocks.insert(target, (off, escaped));
    }
    Ok(Some(Replay { blocks, transactions: seq.wrapping_sub(sequence) as u64 }))
}

/// A filesystem's device as the replayed journal leaves it.
pub struct ReplayDev {
    inner: Arc<dyn BlockDev>,
    block_size: u64,
    replay: Replay,
}

impl ReplayDev {
    pub fn new(inner: Arc<dyn BlockDev>, block_size: u64, replay: Replay) -> Self {
        ReplayDev { inner, block_size, replay }
    }

    /// Reads a logged block from the journal's copy, every other block from below.
    fn read(&self, off: u64, buf: &mut [u8], once: bool) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        let read = |from: u64, piece: &mut [u8]| if once { self.inner.read_once(from, piece) } else { self.inner.read_at(from, piece) };
        read_with_copies(
            off,
            buf,
            self.block_size,
            |block| self.replay.blocks.get(&block).copied(),
            |(journal_copy, escaped), within, piece| {
                read(journal_copy + within as u64, piece)?;
                // An escaped block began with the journal magic, which the journal copy zeroes.
                if escaped && within < 4 {
                    let magic = MAGIC.to_be_bytes();
                    for (i, b) in piece.iter_mut().take(4 - within).enumerate() {
                        *b = magic[within + i];
                    }
                }
                Ok(())
            },
            read,
        )
    }
}

impl BlockDev for ReplayDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read(off, buf, false)
    }
    fn read_once(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read(off, buf, true)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read across logged and unlogged blocks takes each from the right place, and an
    /// escaped block gets the magic back, wherever the read starts.
    #[test]
    fn replayed_reads_mix_journal_copies_and_home_blocks() {
        const BS: usize = 1024;
        // Blocks 0-5 hold their number in every byte; blocks 6 and 7 are the journal's copies.
        let mut disk: Vec<u8> = (0..6u8).flat_map(|b| vec![b; BS]).collect();
        disk.extend(vec![0xA6; BS]);
        let mut escaped = vec![0xA7; BS];
        escaped[..4].fill(0);
        disk.extend(escaped);
        let blocks = HashMap::from([(2, (6 * BS as u64, false)), (4, (7 * BS as u64, true))]);
        let dev = ReplayDev::new(Arc::new(disk), BS as u64, Replay { blocks, transactions: 1 });
        let mut want: Vec<u8> = [0u8, 1, 0xA6, 3, 0xA7, 5].iter().flat_map(|&b| vec![b; BS]).collect();
        want[4 * BS..4 * BS + 4].copy_from_slice(&MAGIC.to_be_bytes());
        for start in [0, 1, 1000, 2 * BS + 2, 4 * BS + 2] {
            let mut got = vec![0u8; 6 * BS - start];
            dev.read_at(start as u64, &mut got).unwrap();
            assert_eq!(got, want[start..], "read from {start}");
            dev.read_once(start as u64, &mut got).unwrap();
            assert_eq!(got, want[start..], "read_once from {start}");
        }
    }
}
