//! Replays an XFS log in memory, as the kernel does when it mounts a filesystem whose log holds
//! transactions not yet written home. A snapshot of a running machine is crash-consistent: the
//! newest metadata changes (a file just created, a package database just rewritten, a directory
//! just grown) may sit only in the log. Nothing is written: [`Overlay`] serves the replayed
//! metadata, and every other byte comes from the filesystem.
//!
//! As the kernel (xfs_log_recover.c and the items' recovery code): find the head (where the cycle
//! number stamped in each 512-byte block drops) and, from the last record's header, the tail;
//! read the records from tail to head, checking each one's header and CRC (a torn write at the
//! head ends the log there); rebuild the transactions from their operations (regions split across
//! records included); then two passes over the committed ones: collect the buffer cancellations,
//! then replay buffers (the logged 128-byte chunks), inode cores and forks (logged in the writing
//! CPU's byte order, converted to the on-disk one), and inode chunk creations, skipping cancelled
//! buffers and, on v5, metadata whose on-disk LSN is already newer.
//!
//! Not replayed, as they do not change what a tree walk reads: the unlinked-list pointers of
//! inode buffers, quota, and the free-space, reverse-map, refcount and attribute intents. The bmap
//! and mapping-exchange intents a mount would finish (reflink copy-on-write) are counted instead.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;

use crate::block::{be16, be32, be64, check_range, corrupt, crc32c_append, read_with_copies, BlockDev};

/// The log's unit: every 512-byte block of a log record starts with the record's cycle number.
pub(crate) const BB: u64 = 512;
const RECORD_MAGIC: u32 = 0xFEED_BABE;
/// Cycle words kept in one record header (and in each extended header): 32 KiB of data.
const CYCLE_WORDS: usize = 64;
const HEADER_CYCLE_SIZE: u64 = 32 << 10;
const MAX_RECORD_BYTES: u64 = 256 << 10;
/// How far back from the head a record header is looked for: a record is at most 256 KiB.
const MAX_RECORD_BBS: u64 = MAX_RECORD_BYTES / BB + 8;
/// Most bytes of the log's live part replayed in memory, and of metadata the replay holds.
const MAX_LIVE_BYTES: u64 = 256 << 20;
const MAX_OVERLAY_BYTES: usize = 512 << 20;
/// Largest metadata buffer (a 64 KiB directory block): all a buffer item's bitmap can map.
const MAX_BUFFER_BYTES: u64 = 64 << 10;
/// Inodes in a chunk, all an inode creation initialises.
const INODES_PER_CHUNK: u64 = 64;

const OP_START: u8 = 0x01;
const OP_COMMIT: u8 = 0x02;
const OP_CONTINUE: u8 = 0x04;
const OP_WAS_CONT: u8 = 0x08;
const OP_END: u8 = 0x10;
const OP_UNMOUNT: u8 = 0x20;
const CLIENT_TRANSACTION: u8 = 0x69;
const CLIENT_LOG: u8 = 0xAA;

const LI_EFI: u16 = 0x1236;
const LI_INODE: u16 = 0x123b;
const LI_BUF: u16 = 0x123c;
const LI_ICREATE: u16 = 0x123f;
const LI_BUI: u16 = 0x1244;
const LI_BUD: u16 = 0x1245;
const LI_XMI: u16 = 0x1248;
const LI_XMD: u16 = 0x1249;
const LI_LAST: u16 = 0x124f;
/// Most regions of one log item (`XLOG_MAX_REGIONS_IN_ITEM`).
const MAX_REGIONS: usize = 257;

const BLF_INODE_BUF: u16 = 0x1;
const BLF_CANCEL: u16 = 0x2;
const BLF_DQUOT_BUF: u16 = 0x4 | 0x8 | 0x10;
const BLF_CHUNK: usize = 128;
const BLF_MAP_WORDS: usize = 17;

const ILOG_DDATA: u32 = 0x2;
const ILOG_DEXT: u32 = 0x4;
const ILOG_DBROOT: u32 = 0x8;
const ILOG_DEV: u32 = 0x10;
const ILOG_ADATA: u32 = 0x40;
const ILOG_AEXT: u32 = 0x80;
const ILOG_ABROOT: u32 = 0x100;
const ILOG_DFORK: u32 = ILOG_DDATA | ILOG_DEXT | ILOG_DBROOT;
const ILOG_AFORK: u32 = ILOG_ADATA | ILOG_AEXT | ILOG_ABROOT;

const DINODE_MAGIC: u16 = 0x494e;
const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;

/// Where the log lies and what the replay needs of the filesystem's geometry.
pub(crate) struct Geometry {
    /// Byte offset of the log on the device, and its length in 512-byte blocks.
    pub log_start: u64,
    pub log_bbs: u64,
    pub block_size: u64,
    pub ag_blocks: u64,
    pub ag_count: u64,
    pub ag_blk_log: u32,
    pub inop_blog: u32,
    pub inode_size: u64,
    pub v5: bool,
    /// The UUID v5 metadata is stamped with (`sb_meta_uuid`, else `sb_uuid`).
    pub meta_uuid: [u8; 16],
    /// Bytes of the filesystem.
    pub size: u64,
}

/// What recovery found.
pub(crate) enum Recovery {
    /// Unmounted cleanly (the last record is an unmount record), never written, or nothing
    /// between tail and head.
    Clean,
    Replayed { dev: Arc<dyn BlockDev>, summary: Summary },
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Committed transactions replayed.
    pub transactions: u64,
    /// Buffers and inodes written (in memory) by them.
    pub buffers: u64,
    pub inodes: u64,
    /// File-mapping intents (bmap, mapping exchange) a mount would finish; not replayed.
    pub unfinished_intents: u64,
    /// Why the log was read only up to some record (a torn write or damage before the head).
    pub stopped: Option<String>,
}

/// Reads 512-byte log blocks, wrapping at the end of the log.
struct Log<'a> {
    dev: &'a dyn BlockDev,
    start: u64,
    bbs: u64,
}

impl Log<'_> {
    fn read(&self, bb: u64, n: u64) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; (n * BB) as usize];
        let mut done = 0u64;
        while done < n {
            let at = (bb + done) % self.bbs;
            let run = (self.bbs - at).min(n - done);
            self.dev.read_at(self.start + at * BB, &mut out[(done * BB) as usize..((done + run) * BB) as usize])?;
            done += run;
        }
        Ok(out)
    }

    fn word(&self, bb: u64, at: u64) -> io::Result<u32> {
        let mut w = [0u8; 4];
        self.dev.read_once(self.start + bb % self.bbs * BB + at, &mut w)?;
        Ok(u32::from_be_bytes(w))
    }

    /// A record header carries its cycle in its second word; other blocks in their first.
    fn cycle(&self, bb: u64) -> io::Result<u32> {
        if self.word(bb, 0)? == RECORD_MAGIC {
            self.word(bb, 4)
        } else {
            self.word(bb, 0)
        }
    }

    /// The head (the block the next record would go to), as the kernel finds it: where the
    /// cycle number drops. `None`: the log was never written.
    fn head(&self) -> io::Result<Option<u64>> {
        let (first, last) = (self.cycle(0)?, self.cycle(self.bbs - 1)?);
        if first == 0 {
            return Ok(None);
        }
        if first == last {
            // One cycle throughout: the head is where the log wraps.
            return Ok(Some(0));
        }
        let (mut lo, mut hi) = (0, self.bbs - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.cycle(mid)? == first {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(Some(hi))
    }

    /// The block of the last record header before `head`.
    fn last_record(&self, head: u64) -> io::Result<u64> {
        let mut bb = head;
        for _ in 0..MAX_RECORD_BBS.min(self.bbs) {
            bb = (bb + self.bbs - 1) % self.bbs;
            if self.word(bb, 0)? == RECORD_MAGIC {
                return Ok(bb);
            }
        }
        Err(corrupt(format!("no log record header within {MAX_RECORD_BBS} blocks before the log's head (log block {head})")))
    }

    /// Header blocks of the record whose header is `hdr` (version 2 records over 32 KiB carry
    /// extended headers, one block per 32 KiB).
    fn header_bbs(hdr: &[u8]) -> u64 {
        if be32(hdr, 8) & 2 != 0 {
            (be32(hdr, 320) as u64).div_ceil(HEADER_CYCLE_SIZE).max(1)
        } else {
            1
        }
    }
}

/// Whether the log needs recovery, and if it does, the device as the replayed log leaves it.
pub(crate) fn recover(dev: &Arc<dyn BlockDev>, geo: &Geometry) -> io::Result<Recovery> {
    let log = Log { dev: &**dev, start: geo.log_start, bbs: geo.log_bbs };
    let Some(head) = log.head()? else { return Ok(Recovery::Clean) };
    let last = log.last_record(head)?;
    let hdr = log.read(last, 1)?;
    let ops = be32(&hdr, 40);
    let hblks = Log::header_bbs(&hdr);
    if ops == 1 {
        let op = log.read(last + hblks, 1)?;
        if op[9] & OP_UNMOUNT != 0 {
            return Ok(Recovery::Clean);
        }
    }
    let tail_lsn = be64(&hdr, 24);
    let (tail_cycle, tail) = ((tail_lsn >> 32) as u32, tail_lsn & 0xFFFF_FFFF);
    if tail >= geo.log_bbs {
        return Err(corrupt(format!("the last log record (log block {last}) names tail block {tail}, outside the {}-block log", geo.log_bbs)));
    }
    if tail == head {
        return Ok(Recovery::Clean);
    }
    let live = (head + geo.log_bbs - tail) % geo.log_bbs;
    if live * BB > MAX_LIVE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the log's live part is {} MiB, more than the {} MiB replayed in memory", (live * BB) >> 20, MAX_LIVE_BYTES >> 20),
        ));
    }
    let mut summary = Summary::default();
    let committed = read_transactions(&log, tail, tail_cycle, live, geo.v5, &mut summary)?;
    let mut overlay = Overlay { inner: dev.clone(), sectors: HashMap::new() };
    replay(&committed, geo, &mut overlay, &mut summary)?;
    Ok(Recovery::Replayed { dev: Arc::new(overlay), summary })
}

/// A log item: its regions (the first is its format structure).
#[derive(Default)]
struct Item {
    total: usize,
    regions: Vec<Vec<u8>>,
}

impl Item {
    fn kind(&self, e: Endian) -> u16 {
        self.regions.first().map_or(0, |r| e.u16(r, 0).unwrap_or(0))
    }
}

struct Transaction {
    lsn: u64,
    endian: Endian,
    /// The transaction header (16 bytes), possibly split across records.
    header: Vec<u8>,
    items: Vec<Item>,
}

/// Log item structures are written in the writing CPU's byte order; the transaction header's
/// magic tells which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Endian {
    little: bool,
}

impl Endian {
    fn u16(self, b: &[u8], o: usize) -> Option<u16> {
        let v: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(v) } else { u16::from_be_bytes(v) })
    }
    fn u32(self, b: &[u8], o: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
    }
    fn u64(self, b: &[u8], o: usize) -> Option<u64> {
        let v: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if self.little { u64::from_le_bytes(v) } else { u64::from_be_bytes(v) })
    }
}

const TRANS_MAGIC: u32 = 0x5452_414e;
const TRANS_HEADER_LEN: usize = 16;

/// Reads the records from `tail` over `live` blocks and returns the committed transactions in
/// commit order. A record that fails its checks ends the log there (as a torn write at the head
/// does for the kernel); `summary.stopped` says why.
fn read_transactions(log: &Log, tail: u64, tail_cycle: u32, live: u64, v5: bool, summary: &mut Summary) -> io::Result<Vec<Transaction>> {
    let mut open: HashMap<u32, Transaction> = HashMap::new();
    let mut committed = Vec::new();
    let (mut bb, mut cycle, mut walked) = (tail, tail_cycle, 0u64);
    let mut bytes = 0usize;
    while walked < live {
        let stop = |why: String| format!("log record at log block {bb}: {why}");
        let hdr = log.read(bb, 1)?;
        let want_lsn = (cycle as u64) << 32 | bb;
        if be32(&hdr, 0) != RECORD_MAGIC || be64(&hdr, 16) != want_lsn {
            summary.stopped = Some(stop(format!("no record header of cycle {cycle} (magic {:#x}, lsn {:#x})", be32(&hdr, 0), be64(&hdr, 16))));
            break;
        }
        let (version, len) = (be32(&hdr, 8), be32(&hdr, 12) as u64);
        let hblks = Log::header_bbs(&hdr);
        if !(1..=2).contains(&version) || len == 0 || len > MAX_RECORD_BYTES || hblks > MAX_RECORD_BYTES / HEADER_CYCLE_SIZE {
            summary.stopped = Some(stop(format!("invalid header (version {version}, {len} bytes)")));
            break;
        }
        let data_bbs = len.div_ceil(BB);
        if data_bbs > hblks * CYCLE_WORDS as u64 {
            summary.stopped = Some(stop(format!("{len} bytes of data but cycle words for {} blocks", hblks * CYCLE_WORDS as u64)));
            break;
        }
        if walked + hblks + data_bbs > live {
            summary.stopped = Some(stop("the record runs past the log's head".into()));
            break;
        }
        let headers = if hblks > 1 { [hdr.clone(), log.read(bb + 1, hblks - 1)?].concat() } else { hdr.clone() };
        let mut data = log.read(bb + hblks, data_bbs)?;
        data.truncate(len as usize);
        let crc = u32::from_le_bytes(hdr[32..36].try_into().unwrap());
        if (v5 || crc != 0) && !record_crc_matches(&headers, hblks, &data, crc) {
            summary.stopped = Some(stop("checksum mismatch (a torn write)".into()));
            break;
        }
        // Each data block's first word was replaced by the cycle number; the headers keep it.
        for i in 0..data_bbs as usize {
            let (j, k) = (i / CYCLE_WORDS, i % CYCLE_WORDS);
            let saved = if j == 0 { 44 + 4 * k } else { j * BB as usize + 4 + 4 * k };
            let at = i * BB as usize;
            let n = 4.min(data.len() - at);
            data[at..at + n].copy_from_slice(&headers[saved..saved + n]);
        }
        let lsn = be64(&hdr, 16);
        let ops = be32(&hdr, 40);
        let mut p = 0usize;
        for op in 0..ops {
            let bad = |why: String| corrupt(format!("log record at log block {bb}, operation {op}: {why}"));
            if p + 12 > data.len() {
                return Err(bad(format!("header at byte {p} runs past the record's {} bytes", data.len())));
            }
            let (tid, len, client, flags) = (be32(&data, p), be32(&data, p + 4) as usize, data[p + 8], data[p + 9]);
            p += 12;
            if client != CLIENT_TRANSACTION && client != CLIENT_LOG {
                return Err(bad(format!("unknown client id {client:#x}")));
            }
            if len > data.len() - p {
                return Err(bad(format!("{len} bytes at byte {p} run past the record's {} bytes", data.len())));
            }
            let body = &data[p..p + len];
            p += len;
            bytes += len;
            if bytes as u64 > MAX_LIVE_BYTES {
                return Err(bad(format!("more than {} MiB of logged changes", MAX_LIVE_BYTES >> 20)));
            }
            let Some(trans) = open.get_mut(&tid) else {
                // Operations of transactions that began before the tail are skipped.
                if flags & OP_START != 0 {
                    open.insert(tid, Transaction { lsn, endian: Endian { little: true }, header: Vec::new(), items: Vec::new() });
                }
                continue;
            };
            let mut kind = flags & !OP_END;
            if kind & OP_WAS_CONT != 0 {
                kind &= !OP_CONTINUE;
            }
            match kind {
                0 | OP_CONTINUE => add_region(trans, body).map_err(bad)?,
                OP_WAS_CONT => continue_region(trans, body).map_err(bad)?,
                OP_COMMIT => committed.extend(open.remove(&tid)),
                OP_UNMOUNT => {
                    open.remove(&tid);
                }
                _ => return Err(bad(format!("unexpected flags {flags:#x} for transaction {tid:#x}"))),
            }
        }
        bb = (bb + hblks + data_bbs) % log.bbs;
        if bb < hblks + data_bbs {
            cycle = cycle.wrapping_add(1);
        }
        walked += hblks + data_bbs;
    }
    Ok(committed)
}

/// The CRC-32C of a record: its header (with the CRC field zeroed; 328 bytes, or 324 as i386
/// kernels wrote it), the cycle data of its extended headers, then its data as written.
fn record_crc_matches(headers: &[u8], hblks: u64, data: &[u8], want: u32) -> bool {
    [328usize, 324].iter().any(|&hlen| {
        let mut crc = crc32c_append(!0, &headers[..32]);
        crc = crc32c_append(crc, &[0; 4]);
        crc = crc32c_append(crc, &headers[36..hlen]);
        for j in 1..hblks as usize {
            crc = crc32c_append(crc, &headers[j * BB as usize..j * BB as usize + 4 + 4 * CYCLE_WORDS]);
        }
        !crc32c_append(crc, data) == want
    })
}

/// A region of a transaction: its header first, then items region by region.
fn add_region(trans: &mut Transaction, body: &[u8]) -> Result<(), String> {
    if body.is_empty() {
        return Ok(());
    }
    if trans.items.is_empty() {
        let magic = body.get(..4).ok_or("transaction header shorter than its magic")?;
        trans.endian = match magic {
            m if m == TRANS_MAGIC.to_le_bytes() => Endian { little: true },
            m if m == TRANS_MAGIC.to_be_bytes() => Endian { little: false },
            m => return Err(format!("transaction header magic {m:02x?} is not TRAN")),
        };
        if body.len() > TRANS_HEADER_LEN {
            return Err(format!("transaction header of {} bytes", body.len()));
        }
        trans.header = body.to_vec();
        if body.len() == TRANS_HEADER_LEN {
            trans.items.push(Item::default());
        }
        return Ok(());
    }
    let e = trans.endian;
    if trans.items.last().is_some_and(|i| i.total != 0 && i.total == i.regions.len()) {
        trans.items.push(Item::default());
    }
    let item = trans.items.last_mut().unwrap();
    if item.total == 0 {
        let total = e.u16(body, 2).ok_or("item format shorter than 4 bytes")? as usize;
        if total == 0 || total > MAX_REGIONS {
            return Err(format!("item of {total} regions"));
        }
        item.total = total;
    }
    if item.regions.len() >= item.total {
        return Err(format!("item with more than its {} regions", item.total));
    }
    item.regions.push(body.to_vec());
    Ok(())
}

/// The rest of a region split across records.
fn continue_region(trans: &mut Transaction, body: &[u8]) -> Result<(), String> {
    if trans.items.is_empty() {
        if trans.header.len() + body.len() > TRANS_HEADER_LEN {
            return Err("transaction header continued past 16 bytes".into());
        }
        trans.header.extend_from_slice(body);
        if trans.header.len() == TRANS_HEADER_LEN {
            trans.items.push(Item::default());
        }
        return Ok(());
    }
    let region = trans.items.last_mut().and_then(|i| i.regions.last_mut()).ok_or("continuation of no region")?;
    region.extend_from_slice(body);
    Ok(())
}

/// The kernel's order within a transaction: buffers, then the other items (inode creations and
/// inodes), then inode buffers, then cancellations.
fn replay_order(trans: &Transaction) -> Vec<&Item> {
    let e = trans.endian;
    let buf_flags = |i: &Item| e.u16(&i.regions[0], 4).unwrap_or(0);
    let items = trans.items.iter().filter(|i| !i.regions.is_empty());
    let mut order: Vec<&Item> = items.clone().filter(|i| i.kind(e) == LI_BUF && buf_flags(i) & (BLF_CANCEL | BLF_INODE_BUF) == 0).collect();
    order.extend(items.clone().filter(|i| i.kind(e) != LI_BUF));
    order.extend(items.clone().filter(|i| i.kind(e) == LI_BUF && buf_flags(i) & (BLF_CANCEL | BLF_INODE_BUF) == BLF_INODE_BUF));
    order.extend(items.filter(|i| i.kind(e) == LI_BUF && buf_flags(i) & BLF_CANCEL != 0));
    order
}

/// A buffer log format: (flags, length in 512-byte blocks, first block, dirty chunk bitmap).
fn buf_format(e: Endian, r: &[u8]) -> Result<(u16, u64, u64, Vec<u32>), String> {
    let short = || format!("buffer log format of {} bytes", r.len());
    let flags = e.u16(r, 4).ok_or_else(short)?;
    let len = e.u16(r, 6).ok_or_else(short)? as u64;
    let blkno = e.u64(r, 8).ok_or_else(short)?;
    let words = e.u32(r, 16).ok_or_else(short)? as usize;
    if words > BLF_MAP_WORDS {
        return Err(format!("buffer log format with a {words}-word bitmap"));
    }
    let map = (0..words).map(|w| e.u32(r, 20 + 4 * w).ok_or_else(short)).collect::<Result<_, _>>()?;
    Ok((flags, len, blkno, map))
}

fn replay(committed: &[Transaction], geo: &Geometry, overlay: &mut Overlay, summary: &mut Summary) -> io::Result<()> {
    // Pass 1: buffers freed (cancelled) by some transaction, counted.
    let mut cancelled: HashMap<(u64, u64), u32> = HashMap::new();
    let (mut intents, mut done) = (HashSet::new(), HashSet::new());
    for t in committed {
        let e = t.endian;
        for item in t.items.iter().filter(|i| !i.regions.is_empty()) {
            let r = &item.regions[0];
            match item.kind(e) {
                LI_BUF => {
                    let (flags, len, blkno, _) = buf_format(e, r).map_err(|m| corrupt(format!("xfs log transaction at lsn {:#x}: {m}", t.lsn)))?;
                    if flags & BLF_CANCEL != 0 {
                        *cancelled.entry((blkno, len)).or_default() += 1;
                    }
                }
                kind @ (LI_BUI | LI_XMI) => {
                    intents.extend(e.u64(r, 8).map(|id| (kind, id)));
                }
                LI_BUD => done.extend(e.u64(r, 8).map(|id| (LI_BUI, id))),
                LI_XMD => done.extend(e.u64(r, 8).map(|id| (LI_XMI, id))),
                _ => {}
            }
        }
    }
    summary.unfinished_intents = intents.difference(&done).count() as u64;
    // Pass 2: replay, in log order.
    for t in committed {
        let ctx = |m: String| corrupt(format!("xfs log transaction at lsn {:#x}: {m}", t.lsn));
        let e = t.endian;
        for item in replay_order(t) {
            match item.kind(e) {
                LI_BUF => {
                    let (flags, len, blkno, map) = buf_format(e, &item.regions[0]).map_err(ctx)?;
                    if flags & BLF_CANCEL != 0 {
                        if let Some(n) = cancelled.get_mut(&(blkno, len)) {
                            *n -= 1;
                            if *n == 0 {
                                cancelled.remove(&(blkno, len));
                            }
                        }
                        continue;
                    }
                    if cancelled.contains_key(&(blkno, len)) || flags & (BLF_INODE_BUF | BLF_DQUOT_BUF) != 0 {
                        continue;
                    }
                    if replay_buffer(overlay, geo, t.lsn, blkno, len, &map, &item.regions[1..]).map_err(ctx)? {
                        summary.buffers += 1;
                    }
                }
                LI_INODE => {
                    if replay_inode(overlay, geo, t.lsn, e, item, &cancelled).map_err(ctx)? {
                        summary.inodes += 1;
                    }
                }
                LI_ICREATE => replay_icreate(overlay, geo, &item.regions[0], &cancelled).map_err(ctx)?,
                LI_EFI..=LI_LAST => {}
                kind => return Err(ctx(format!("unknown log item type {kind:#x}"))),
            }
        }
        summary.transactions += 1;
    }
    Ok(())
}

/// Whether an LSN stamped in metadata is a real one (0 and -1 mean none).
fn real_lsn(lsn: u64) -> Option<u64> {
    (lsn != 0 && lsn != u64::MAX).then_some(lsn)
}

/// The LSN a v5 metadata block was last written at, found by its magic number, if it has one.
fn buffer_lsn(b: &[u8]) -> Option<u64> {
    let at = |o: usize| (b.len() >= o + 8).then(|| be64(b, o));
    if b.len() < 12 {
        return None;
    }
    let lsn = match &b[0..4] {
        // Short-form btree blocks: free space, inodes, reverse map, refcount.
        b"AB3B" | b"AB3C" | b"IAB3" | b"FIB3" | b"RMB3" | b"R3FC" => at(16),
        // Long-form (bmap) btree blocks, remote attribute values and symlinks.
        b"BMA3" | b"XARM" | b"XSLM" => at(32),
        b"XAGF" => at(208),
        b"XAGI" => at(320),
        b"XAFL" => at(24),
        b"XFSB" => at(240),
        // Directory data, block and free-index blocks.
        b"XDB3" | b"XDD3" | b"XDF3" => at(16),
        [b'I', b'N', ..] => at(112),
        _ => match be16(b, 8) {
            // Directory leaf and node blocks, attribute leaves.
            0x3df1 | 0x3dff | 0x3ebe | 0x3bee => at(24),
            _ => None,
        },
    };
    lsn.and_then(real_lsn)
}

/// Replays the logged chunks of one buffer; false if the buffer on disk is already newer. Only
/// the chunks are written to the overlay, so its memory follows what the log holds.
fn replay_buffer(overlay: &mut Overlay, geo: &Geometry, lsn: u64, blkno: u64, len: u64, map: &[u32], regions: &[Vec<u8>]) -> Result<bool, String> {
    if len == 0 || len * BB > MAX_BUFFER_BYTES {
        return Err(format!("buffer at block {blkno} of {len} 512-byte blocks"));
    }
    let off = blkno.checked_mul(BB).filter(|o| o.checked_add(len * BB).is_some_and(|e| e <= geo.size));
    let off = off.ok_or_else(|| format!("buffer at block {blkno} ({len} blocks) lies outside the filesystem"))?;
    if geo.v5 {
        // Every header's LSN lies in its first 512 bytes.
        let head = overlay.read(off, BB as usize).map_err(|e| e.to_string())?;
        if buffer_lsn(&head).is_some_and(|on_disk| on_disk >= lsn) {
            return Ok(false);
        }
    }
    let bits = map.len() * 32;
    let set = |bit: usize| map[bit / 32] & (1 << (bit % 32)) != 0;
    let (mut bit, mut region) = (0usize, 0usize);
    loop {
        while bit < bits && !set(bit) {
            bit += 1;
        }
        if bit >= bits {
            break;
        }
        let mut n = 0;
        while bit + n < bits && set(bit + n) {
            n += 1;
        }
        let data = regions.get(region).ok_or_else(|| format!("buffer at block {blkno}: the bitmap names more regions than the {} logged", regions.len()))?;
        // A run of chunks may be logged as several regions (a buffer of discontiguous blocks).
        let n = n.min(data.len() / BLF_CHUNK);
        let (from, to) = (bit * BLF_CHUNK, (bit + n) * BLF_CHUNK);
        if n == 0 || to as u64 > len * BB {
            return Err(format!("buffer at block {blkno}: chunk run {bit}..{} of {} bytes does not fit its {} bytes", bit + n, data.len(), len * BB));
        }
        overlay.write(off + from as u64, &data[..to - from]).map_err(|e| e.to_string())?;
        bit += n;
        region += 1;
    }
    Ok(true)
}

/// Replays an inode's logged core (converted to the on-disk byte order) and forks; false if
/// skipped (its buffer cancelled, or the inode on disk already newer).
fn replay_inode(overlay: &mut Overlay, geo: &Geometry, lsn: u64, e: Endian, item: &Item, cancelled: &HashMap<(u64, u64), u32>) -> Result<bool, String> {
    let f = &item.regions[0];
    // The 56-byte format, or the packed 52-byte one of 32-bit kernels.
    let (ino_at, rdev_at, blk_at) = match f.len() {
        56 => (16, 24, 40),
        52 => (12, 20, 36),
        n => return Err(format!("inode log format of {n} bytes")),
    };
    let (fields, ino) = (e.u32(f, 4).unwrap(), e.u64(f, ino_at).unwrap());
    let (blkno, len, boffset) = (e.u64(f, blk_at).unwrap(), e.u32(f, blk_at + 8).unwrap() as u64, e.u32(f, blk_at + 12).unwrap() as u64);
    if cancelled.contains_key(&(blkno, len)) {
        return Ok(false);
    }
    let isize = geo.inode_size;
    let off = blkno.checked_mul(BB).and_then(|o| o.checked_add(boffset)).filter(|o| boffset + isize <= len * BB && o + isize <= geo.size);
    let off = off.ok_or_else(|| format!("inode {ino} at block {blkno} + {boffset} lies outside its buffer or the filesystem"))?;
    let mut dip = overlay.read(off, isize as usize).map_err(|e| e.to_string())?;
    if be16(&dip, 0) != DINODE_MAGIC {
        return Err(format!("inode {ino} (offset {off}): no inode magic on disk to replay onto"));
    }
    let ld = item.regions.get(1).ok_or_else(|| format!("inode {ino}: no logged core"))?;
    if e.u16(ld, 0) != Some(DINODE_MAGIC) {
        return Err(format!("inode {ino}: logged core without the inode magic"));
    }
    let v3 = ld.get(4).is_some_and(|&v| v >= 3);
    let core = if v3 { 176 } else { 100 };
    if ld.len() < if v3 { 176 } else { 96 } || isize < core as u64 {
        return Err(format!("inode {ino}: logged core of {} bytes", ld.len()));
    }
    if dip[4] >= 3 {
        if real_lsn(be64(&dip, 112)).is_some_and(|on_disk| on_disk > lsn) {
            return Ok(false);
        }
    } else {
        // v2 inodes order flushes by a 16-bit counter instead of an LSN.
        let (logged, on_disk) = (e.u16(ld, 30).unwrap(), be16(&dip, 30));
        if logged < on_disk && !(on_disk == 0xFFFF && logged < 0x7FFF) {
            return Ok(false);
        }
    }
    log_dinode_to_disk(e, ld, &mut dip, lsn);
    if fields & ILOG_DEV != 0 {
        dip[core..core + 4].copy_from_slice(&e.u32(f, rdev_at).unwrap().to_be_bytes());
    }
    let forkoff = dip[82] as usize * 8;
    let dsize = if forkoff != 0 { forkoff } else { isize as usize - core };
    if core + dsize > isize as usize {
        return Err(format!("inode {ino}: attribute fork offset {forkoff} past the inode's {isize} bytes"));
    }
    let mut next = 2;
    for (mask, at, size) in [(ILOG_DFORK, core, dsize), (ILOG_AFORK, core + dsize, isize as usize - core - dsize)] {
        let which = fields & mask;
        if which == 0 {
            continue;
        }
        let Some(src) = item.regions.get(next) else { break };
        next += 1;
        let dest = &mut dip[at..at + size];
        if which == ILOG_DBROOT || which == ILOG_ABROOT {
            bmbt_to_bmdr(src, dest, geo.v5).map_err(|m| format!("inode {ino}: {m}"))?;
        } else {
            if src.len() > size {
                return Err(format!("inode {ino}: logged fork of {} bytes does not fit its {size}", src.len()));
            }
            dest[..src.len()].copy_from_slice(src);
        }
    }
    overlay.write(off, &dip).map_err(|e| e.to_string())?;
    Ok(true)
}

/// `xfs_log_dinode_to_disk`: the logged core, in the writer's byte order, as the big-endian
/// on-disk core. The unlinked-list pointer and checksum stay as on disk; the LSN is the
/// transaction's.
fn log_dinode_to_disk(e: Endian, ld: &[u8], dip: &mut [u8], lsn: u64) {
    let v3 = ld[4] >= 3;
    let flags2 = if v3 { e.u64(ld, 120).unwrap() } else { 0 };
    let put16 = |d: &mut [u8], o: usize| d[o..o + 2].copy_from_slice(&e.u16(ld, o).unwrap().to_be_bytes());
    let put32 = |d: &mut [u8], o: usize| d[o..o + 4].copy_from_slice(&e.u32(ld, o).unwrap().to_be_bytes());
    let put64 = |d: &mut [u8], o: usize| d[o..o + 8].copy_from_slice(&e.u64(ld, o).unwrap().to_be_bytes());
    let put_time = |d: &mut [u8], o: usize| {
        if flags2 & DIFLAG2_BIGTIME != 0 {
            put64(d, o);
        } else {
            // Legacy timestamps: seconds and nanoseconds, each 32 bits.
            put32(d, o);
            put32(d, o + 4);
        }
    };
    for o in [0, 2, 6, 20, 22, 88, 90] {
        put16(dip, o);
    }
    dip[4] = ld[4];
    dip[5] = ld[5];
    for o in [8, 12, 16, 72, 76, 84, 92] {
        put32(dip, o);
    }
    put16(dip, 80);
    dip[82] = ld[82];
    dip[83] = ld[83];
    for o in [32, 40, 48] {
        put_time(dip, o);
    }
    put64(dip, 56);
    put64(dip, 64);
    if v3 {
        if flags2 & DIFLAG2_NREXT64 != 0 {
            put64(dip, 24);
        } else {
            dip[24..32].fill(0);
        }
        put64(dip, 104);
        dip[112..120].copy_from_slice(&lsn.to_be_bytes());
        put64(dip, 120);
        put32(dip, 128);
        dip[132..144].fill(0);
        put_time(dip, 144);
        put64(dip, 152);
        dip[160..176].copy_from_slice(&ld[160..176]);
    } else {
        // Recovery restarts the flush counter.
        dip[24..32].fill(0);
    }
}

/// A bmap btree root as logged (a long-form btree block header, then keys and pointers sized
/// for the logged length) into the inode fork's compact form (level, count, keys and pointers
/// sized for the fork).
fn bmbt_to_bmdr(src: &[u8], dest: &mut [u8], v5: bool) -> Result<(), String> {
    let hdr = if v5 { 72 } else { 24 };
    if src.len() < hdr || dest.len() < 4 {
        return Err(format!("logged btree root of {} bytes", src.len()));
    }
    let numrecs = be16(src, 6) as usize;
    let (src_max, dest_max) = ((src.len() - hdr) / 16, (dest.len() - 4) / 16);
    if numrecs > src_max || numrecs > dest_max {
        return Err(format!("btree root of {numrecs} records does not fit (logged room {src_max}, fork room {dest_max})"));
    }
    dest[0..4].copy_from_slice(&src[4..8]);
    dest[4..4 + numrecs * 8].copy_from_slice(&src[hdr..hdr + numrecs * 8]);
    let (sp, dp) = (hdr + src_max * 8, 4 + dest_max * 8);
    dest[dp..dp + numrecs * 8].copy_from_slice(&src[sp..sp + numrecs * 8]);
    Ok(())
}

/// Replays an inode chunk's creation: every inode of the range blank and free, as
/// `xfs_ialloc_inode_init` writes them (the inodes since created are logged after it).
fn replay_icreate(overlay: &mut Overlay, geo: &Geometry, f: &[u8], cancelled: &HashMap<(u64, u64), u32>) -> Result<(), String> {
    if f.len() < 28 {
        return Err(format!("inode create item of {} bytes", f.len()));
    }
    let (agno, agbno, count, isize, length, gen) = (be32(f, 4) as u64, be32(f, 8) as u64, be32(f, 12) as u64, be32(f, 16) as u64, be32(f, 20) as u64, be32(f, 24));
    let inopb = geo.block_size / geo.inode_size;
    if agno >= geo.ag_count || isize != geo.inode_size || length == 0 || length * geo.block_size > (INODES_PER_CHUNK * isize).max(geo.block_size) || agbno + length > geo.ag_blocks || count > length * inopb {
        return Err(format!("inode create item (AG {agno}, block {agbno}, {length} blocks, {count} inodes of {isize} bytes) does not fit the filesystem"));
    }
    let off = (agno * geo.ag_blocks + agbno) * geo.block_size;
    let (first_bb, bbs) = (off / BB, length * geo.block_size / BB);
    // Inode buffers freed later in the log are not initialised (the kernel checks each cluster).
    if cancelled.keys().any(|&(b, l)| b < first_bb + bbs && first_bb < b + l) {
        return Ok(());
    }
    let mut chunk = vec![0u8; (length * geo.block_size) as usize];
    for (i, dip) in chunk.chunks_mut(isize as usize).enumerate() {
        dip[0..2].copy_from_slice(&DINODE_MAGIC.to_be_bytes());
        dip[4] = if geo.v5 { 3 } else { 2 };
        dip[92..96].copy_from_slice(&gen.to_be_bytes());
        dip[96..100].copy_from_slice(&u32::MAX.to_be_bytes());
        if geo.v5 {
            let ino = (agno << (geo.ag_blk_log + geo.inop_blog)) | ((agbno << geo.inop_blog) + i as u64);
            dip[152..160].copy_from_slice(&ino.to_be_bytes());
            dip[160..176].copy_from_slice(&geo.meta_uuid);
        }
    }
    overlay.write(off, &chunk).map_err(|e| e.to_string())

}

/// The filesystem's device as the replayed log leaves it: replayed 512-byte sectors from
/// memory, every other byte from below.
pub(crate) struct Overlay {
    inner: Arc<dyn BlockDev>,
    sectors: HashMap<u64, Box<[u8]>>,
}

impl Overlay {
    fn read(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_into(off, &mut buf, false)?;
        Ok(buf)
    }

    fn write(&mut self, mut off: u64, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let (sector, within) = (off / BB, (off % BB) as usize);
            let n = (BB as usize - within).min(data.len());
            if !self.sectors.contains_key(&sector) {
                if self.sectors.len() * BB as usize >= MAX_OVERLAY_BYTES {
                    return Err(corrupt(format!("the replay would hold more than {} MiB of metadata", MAX_OVERLAY_BYTES >> 20)));
                }
                let mut s = vec![0u8; BB as usize].into_boxed_slice();
                if n < BB as usize {
                    // A partial sector (a 256-byte inode): the rest as it is below.
                    self.inner.read_at(sector * BB, &mut s)?;
                }
                self.sectors.insert(sector, s);
            }
            self.sectors.get_mut(&sector).unwrap()[within..within + n].copy_from_slice(&data[..n]);
            off += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Replayed sectors from memory, every other byte from below.
    fn read_into(&self, off: u64, buf: &mut [u8], once: bool) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        read_with_copies(
            off,
            buf,
            BB,
            |sector| self.sectors.get(&sector),
            |copy, within, piece| {
                piece.copy_from_slice(&copy[within..within + piece.len()]);
                Ok(())
            },
            |from, run| if once { self.inner.read_once(from, run) } else { self.inner.read_at(from, run) },
        )
    }
}

impl BlockDev for Overlay {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_into(off, buf, false)
    }
    fn read_once(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_into(off, buf, true)
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

    fn geometry(size: u64) -> Geometry {
        Geometry { log_start: 0, log_bbs: 0, block_size: 4096, ag_blocks: size / 4096, ag_count: 1, ag_blk_log: 16, inop_blog: 3, inode_size: 512, v5: true, meta_uuid: [0; 16], size }
    }

    fn transaction(items: Vec<Vec<Vec<u8>>>) -> Transaction {
        let items = items.into_iter().map(|regions| Item { total: regions.len(), regions }).collect();
        Transaction { lsn: 1 << 32 | 100, endian: Endian { little: true }, header: Vec::new(), items }
    }

    /// A buffer log format (little-endian, as x86 writes it) of `len` 512-byte blocks at `blkno`
    /// whose bitmap marks `chunks` 128-byte chunks from the start.
    fn buf_item(blkno: u64, len: u16, chunks: usize) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(LI_BUF.to_le_bytes());
        f.extend(2u16.to_le_bytes());
        f.extend(0u16.to_le_bytes());
        f.extend(len.to_le_bytes());
        f.extend(blkno.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        f.extend((((1u64 << chunks) - 1) as u32).to_le_bytes());
        f
    }

    /// A logged chunk lands where its bitmap says, and only the chunks are held.
    #[test]
    fn buffer_chunks_are_replayed_in_place() {
        let dev: Arc<dyn BlockDev> = Arc::new(vec![0x11u8; 1 << 20]);
        let mut overlay = Overlay { inner: dev.clone(), sectors: HashMap::new() };
        let mut summary = Summary::default();
        let t = transaction(vec![vec![buf_item(8, 8, 2), vec![0xAB; 256]]]);
        replay(&[t], &geometry(1 << 20), &mut overlay, &mut summary).unwrap();
        assert_eq!(summary.buffers, 1);
        assert_eq!(overlay.sectors.len(), 1);
        let got = overlay.read(8 * 512 - 1, 258).unwrap();
        assert_eq!((got[0], &got[1..257], got[257]), (0x11, &[0xAB; 256][..], 0x11));
    }

    /// Items a few bytes long that would make the replay hold far more than the log (a buffer of
    /// 32 MiB, an inode chunk of 4 GiB) are refused.
    #[test]
    fn items_that_would_amplify_memory_are_refused() {
        // The filesystem says 1 GiB, so only the caps stand in the way.
        let dev: Arc<dyn BlockDev> = Arc::new(vec![0u8; 1 << 20]);
        let geo = geometry(1 << 30);
        for (what, item) in [
            ("buffer", vec![buf_item(0, u16::MAX, 1), vec![0; 128]]),
            ("inode create", {
                let mut f = LI_ICREATE.to_le_bytes().to_vec();
                f.extend(1u16.to_le_bytes());
                for v in [0u32, 0, 64, 512, 1 << 16, 7] {
                    f.extend(v.to_be_bytes());
                }
                vec![f]
            }),
        ] {
            let mut overlay = Overlay { inner: dev.clone(), sectors: HashMap::new() };
            let err = replay(&[transaction(vec![item])], &geo, &mut overlay, &mut Summary::default()).unwrap_err();
            assert!(overlay.sectors.is_empty(), "{what}: {err}");
        }
    }
}
