//! Read-only XFS (v5, and v4) as a [`RawFs`].
//!
//! Written here: the young xfs crates on crates.io (`xfs-fuse`'s internals, `xfs_rs`) read whole
//! structures into memory, lack node/btree directories or are unmaintained. Supported: short-form,
//! block, leaf, node and btree directories (data blocks read linearly, the hash index is not
//! needed), extent lists and B+tree extent maps, local and remote symlinks, v3 and v2 inode cores,
//! ftype, bigtime and large extent counts. Reflink, rmap, finobt and sparse inodes only concern
//! allocation and need nothing here. A log holding transactions not written home (an image of a
//! running machine) is replayed in memory first (`xfs_log.rs`, [`LogState`]).

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kensa_fs::{FileType, Metadata};

use crate::block::{be16, be32, be64, corrupt, read_vec, BlockDev, Counters, DirCache};
use crate::extent_file::{validate, Extent, ExtentFile, MAX_EXTENTS};

const INCOMPAT_FTYPE: u32 = 0x1;
const INCOMPAT_SPINODES: u32 = 0x2;
const INCOMPAT_META_UUID: u32 = 0x4;
const INCOMPAT_BIGTIME: u32 = 0x8;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
const INCOMPAT_NREXT64: u32 = 0x20;
const INCOMPAT_EXCHRANGE: u32 = 0x40;
const INCOMPAT_PARENT: u32 = 0x80;
const INCOMPAT_SUPPORTED: u32 =
    INCOMPAT_FTYPE | INCOMPAT_SPINODES | INCOMPAT_META_UUID | INCOMPAT_BIGTIME | INCOMPAT_NEEDSREPAIR | INCOMPAT_NREXT64 | INCOMPAT_EXCHRANGE | INCOMPAT_PARENT;
const V4_FEATURES2_FTYPE: u32 = 0x200;

const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;

/// Directory data lives below this offset of a directory's address space; leaf and free-index
/// blocks live above it.
const DIR_LEAF_OFFSET: u64 = 32 << 30;
const MAX_DIR_BYTES: u64 = 32 << 20;
const MAX_LINK: u64 = 64 << 10;
const MAX_BTREE_DEPTH: u16 = 9;

/// Superblock facts other layers want.
#[derive(Clone, Debug)]
pub struct XfsInfo {
    pub version: u16,
    pub uuid: String,
    pub label: String,
    pub size: u64,
    pub log: LogState,
}

/// What the internal log says about the filesystem when it was imaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogState {
    /// Unmounted cleanly (the last log record is an unmount record), never written, or nothing
    /// left between the log's tail and head.
    Clean,
    /// Transactions after the last unmount (an image of a running machine), replayed in memory
    /// as a mount would.
    Replayed(LogReplay),
    /// Transactions after the last unmount that were not replayed, for this reason: the newest
    /// metadata changes are missing.
    NotReplayed(String),
    /// Not known, for this reason (an external log).
    Unknown(String),
}

/// What a replay of the log did.
pub use crate::xfs_log::Summary as LogReplay;

/// Where the internal log lies, and what its replay needs to know.
#[allow(clippy::too_many_arguments)]
fn log_geometry(sb: &[u8], block_size: u64, ag_blocks: u64, ag_count: u64, ag_blk_log: u32, inop_blog: u32, inode_size: u64, v5: bool, meta_uuid: &[u8], size: u64) -> Result<crate::xfs_log::Geometry, String> {
    let (log_start, log_blocks) = (be64(sb, 48), be32(sb, 96) as u64);
    if log_start == 0 {
        return Err("the log is on another device".into());
    }
    let (agno, agbno) = (log_start >> ag_blk_log, log_start & ((1u64 << ag_blk_log) - 1));
    let start = agno.checked_mul(ag_blocks).and_then(|b| b.checked_add(agbno)).and_then(|b| b.checked_mul(block_size));
    let log_bbs = log_blocks * block_size / crate::xfs_log::BB;
    match start {
        Some(log_start) if log_bbs >= 2 && log_start.checked_add(log_bbs * crate::xfs_log::BB).is_some_and(|e| e <= size) => Ok(crate::xfs_log::Geometry {
            log_start,
            log_bbs,
            block_size,
            ag_blocks,
            ag_count,
            ag_blk_log,
            inop_blog,
            inode_size,
            v5,
            meta_uuid: meta_uuid.try_into().unwrap(),
            size,
        }),
        _ => Err(format!("log at block {log_start}, {log_blocks} blocks (superblock offsets 48 and 96), lies outside the filesystem")),
    }
}

/// Whether `dev` holds an XFS superblock.
pub fn probe(dev: &dyn BlockDev) -> bool {
    let mut m = [0u8; 4];
    dev.size() >= 512 && dev.read_at(0, &mut m).is_ok() && &m == b"XFSB"
}

struct Inner {
    dev: Arc<dyn BlockDev>,
    counters: Arc<Counters>,
    name: String,
    block_size: u64,
    ag_blocks: u64,
    ag_count: u64,
    ag_blk_log: u32,
    inop_blog: u32,
    inode_size: u64,
    dir_block_size: u64,
    v5: bool,
    ftype: bool,
    root_ino: u64,
    dirs: Mutex<DirCache<u64>>,
    last_dir: crate::inode_fs::LastDir<u64>,
    info: XfsInfo,
}

/// An XFS filesystem.
#[derive(Clone)]
pub struct XfsFs {
    inner: Arc<Inner>,
}

type RawEntry = crate::inode_fs::RawEntry<u64>;
type DirListing = crate::inode_fs::DirListing<u64>;

struct Inode {
    ino: u64,
    raw: Vec<u8>,
    mode: u16,
    format: u8,
    size: u64,
    nextents: u64,
    fork_off: usize,
    fork_len: usize,
}

impl Inode {
    fn file_type(&self) -> FileType {
        match self.mode & 0xF000 {
            0x8000 => FileType::File,
            0x4000 => FileType::Dir,
            0xA000 => FileType::Symlink,
            _ => FileType::Other,
        }
    }
    fn fork(&self) -> &[u8] {
        &self.raw[self.fork_off..self.fork_off + self.fork_len]
    }
}

impl XfsFs {
    pub fn open(dev: Arc<dyn BlockDev>, counters: Arc<Counters>) -> io::Result<Self> {
        let name = format!("xfs on {}", dev.describe());
        let sb = read_vec(&*dev, 0, 512, 512, "xfs superblock")?;
        if &sb[0..4] != b"XFSB" {
            return Err(corrupt(format!("{name}: no XFS superblock magic at offset 0")));
        }
        let bad = |what: &str, off: usize, v: u64| corrupt(format!("{name}: superblock {what} = {v} (offset {off}) is invalid"));
        let block_size = be32(&sb, 4) as u64;
        if !(512..=65536).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(bad("sb_blocksize", 4, block_size));
        }
        let dblocks = be64(&sb, 8);
        let ag_blocks = be32(&sb, 84) as u64;
        let ag_count = be32(&sb, 88) as u64;
        let version = be16(&sb, 100) & 0xF;
        let inode_size = be16(&sb, 104) as u64;
        let inop_block = be16(&sb, 106) as u64;
        let block_log = sb[120] as u32;
        let inode_log = sb[122] as u32;
        let inop_blog = sb[123] as u32;
        let ag_blk_log = sb[124] as u32;
        let dir_blk_log = sb[192] as u32;
        if 1u64.checked_shl(block_log) != Some(block_size) {
            return Err(bad("sb_blocklog", 120, block_log as u64));
        }
        if !(256..=2048).contains(&inode_size) || 1u64.checked_shl(inode_log) != Some(inode_size) || inop_block != block_size / inode_size || 1u64.checked_shl(inop_blog) != Some(inop_block) {
            return Err(bad("sb_inodesize", 104, inode_size));
        }
        if ag_blocks == 0 || ag_blk_log > 31 || ag_blocks > 1u64 << ag_blk_log || ag_count == 0 {
            return Err(bad("sb_agblocks", 84, ag_blocks));
        }
        if dir_blk_log > 16 || block_size << dir_blk_log > 65536 {
            return Err(bad("sb_dirblklog", 192, dir_blk_log as u64));
        }
        if !(4..=5).contains(&version) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, format!("{name}: XFS version {version} (superblock sb_versionnum at offset 100) is not supported")));
        }
        let v5 = version == 5;
        let incompat = if v5 { be32(&sb, 216) } else { 0 };
        if incompat & !INCOMPAT_SUPPORTED != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{name}: unsupported incompatible features {:#x} (superblock sb_features_incompat at offset 216)", incompat & !INCOMPAT_SUPPORTED),
            ));
        }
        let ftype = if v5 { incompat & INCOMPAT_FTYPE != 0 } else { be32(&sb, 200) & V4_FEATURES2_FTYPE != 0 };
        let size = dblocks.checked_mul(block_size).ok_or_else(|| bad("sb_dblocks", 8, dblocks))?;
        if size > dev.size() {
            return Err(corrupt(format!("{name}: superblock says {size} bytes (sb_dblocks at offset 8) but the device holds {} (truncated image?)", dev.size())));
        }
        let label = String::from_utf8_lossy(&sb[108..120]).trim_end_matches('\0').to_string();
        let meta_uuid = if incompat & INCOMPAT_META_UUID != 0 { &sb[248..264] } else { &sb[32..48] };
        let (log, dev) = match log_geometry(&sb, block_size, ag_blocks, ag_count, ag_blk_log, inop_blog, inode_size, v5, meta_uuid, size) {
            Err(why) => (LogState::Unknown(why), dev),
            Ok(geo) => match crate::xfs_log::recover(&dev, &geo) {
                Ok(crate::xfs_log::Recovery::Clean) => (LogState::Clean, dev),
                Ok(crate::xfs_log::Recovery::Replayed { dev: replayed, summary }) => (LogState::Replayed(summary), replayed),
                Err(e) => (LogState::NotReplayed(e.to_string()), dev),
            },
        };
        let info = XfsInfo { version, uuid: crate::uuid_string(&sb[32..48]), label, size, log };
        Ok(XfsFs {
            inner: Arc::new(Inner {
                dev,
                counters,
                name,
                block_size,
                ag_blocks,
                ag_count,
                ag_blk_log,
                inop_blog,
                inode_size,
                dir_block_size: block_size << dir_blk_log,
                v5,
                ftype,
                root_ino: be64(&sb, 56),
                dirs: Mutex::new(DirCache::default()),
                last_dir: Default::default(),
                info,
            }),
        })
    }

    pub fn info(&self) -> &XfsInfo {
        &self.inner.info
    }
}

impl Inner {
    fn err(&self, msg: String) -> io::Error {
        corrupt(format!("{}: {msg}", self.name))
    }

    /// Byte offset of a filesystem block number (AG number in the high bits).
    fn fsb_to_byte(&self, fsb: u64) -> Option<u64> {
        let ag = fsb >> self.ag_blk_log;
        let agbno = fsb & ((1u64 << self.ag_blk_log) - 1);
        if ag >= self.ag_count || agbno >= self.ag_blocks {
            return None;
        }
        (ag * self.ag_blocks + agbno).checked_mul(self.block_size)
    }

    fn unpack_extent(&self, rec: &[u8], out: &mut Vec<Extent>, what: &str) -> io::Result<()> {
        let l0 = be64(rec, 0);
        let l1 = be64(rec, 8);
        let unwritten = l0 >> 63 != 0;
        let startoff = (l0 & ((1u64 << 63) - 1)) >> 9;
        let startblock = ((l0 & 0x1FF) << 43) | (l1 >> 21);
        let count = l1 & ((1u64 << 21) - 1);
        let bs = self.block_size;
        let phys = self
            .fsb_to_byte(startblock)
            .ok_or_else(|| self.err(format!("{what}: extent at file block {startoff} starts at block {startblock}, outside the filesystem")))?;
        let logical = startoff.checked_mul(bs).ok_or_else(|| self.err(format!("{what}: extent offset {startoff} overflows")))?;
        out.push(Extent { logical, len: count * bs, physical: if unwritten { None } else { Some(phys) } });
        if out.len() > MAX_EXTENTS {
            return Err(self.err(format!("{what}: more than {MAX_EXTENTS} extents")));
        }
        Ok(())
    }

    fn extents(&self, inode: &Inode) -> io::Result<Vec<Extent>> {
        let what = format!("inode {}", inode.ino);
        let fork = inode.fork();
        let mut out = Vec::new();
        match inode.format {
            2 => {
                let n = inode.nextents as usize;
                if n * 16 > fork.len() {
                    return Err(self.err(format!("{what}: {n} extents do not fit in the data fork ({} bytes)", fork.len())));
                }
                for i in 0..n {
                    self.unpack_extent(&fork[i * 16..i * 16 + 16], &mut out, &what)?;
                }
            }
            3 => {
                // Root of the B+tree in the inode: level, numrecs, keys[maxrecs], ptrs[maxrecs].
                let level = be16(fork, 0);
                let numrecs = be16(fork, 2) as usize;
                let maxrecs = (fork.len() - 4) / 16;
                if level == 0 || level > MAX_BTREE_DEPTH || numrecs > maxrecs {
                    return Err(self.err(format!("{what}: extent B+tree root (level {level}, {numrecs} records) is invalid")));
                }
                for i in 0..numrecs {
                    let ptr = be64(fork, 4 + maxrecs * 8 + i * 8);
                    self.walk_bmbt(ptr, level - 1, &mut out, &what)?;
                }
            }
            1 => return Err(self.err(format!("{what}: local-format data where extents were expected"))),
            f => return Err(self.err(format!("{what}: data fork format {f} is not supported"))),
        }
        validate(out, &*self.dev, &format!("{}: {what}", self.name))
    }

    fn walk_bmbt(&self, fsb: u64, level: u16, out: &mut Vec<Extent>, what: &str) -> io::Result<()> {
        let off = self.fsb_to_byte(fsb).ok_or_else(|| self.err(format!("{what}: extent B+tree block {fsb} is outside the filesystem")))?;
        let b = read_vec(&*self.dev, off, self.block_size, 65536, "xfs bmbt block")?;
        let (magic, hdr): (&[u8], usize) = if self.v5 { (b"BMA3", 72) } else { (b"BMAP", 24) };
        if &b[0..4] != magic {
            return Err(self.err(format!("{what}: extent B+tree block at offset {off} has bad magic")));
        }
        let blevel = be16(&b, 4);
        let numrecs = be16(&b, 6) as usize;
        if blevel != level {
            return Err(self.err(format!("{what}: extent B+tree block at offset {off} has level {blevel}, expected {level}")));
        }
        if level == 0 {
            if hdr + numrecs * 16 > b.len() {
                return Err(self.err(format!("{what}: extent B+tree leaf at offset {off} claims {numrecs} records")));
            }
            for i in 0..numrecs {
                self.unpack_extent(&b[hdr + i * 16..hdr + i * 16 + 16], out, what)?;
            }
        } else {
            let maxrecs = (b.len() - hdr) / 16;
            if numrecs > maxrecs {
                return Err(self.err(format!("{what}: extent B+tree node at offset {off} claims {numrecs} records")));
            }
            for i in 0..numrecs {
                let ptr = be64(&b, hdr + maxrecs * 8 + i * 8);
                self.walk_bmbt(ptr, level - 1, out, what)?;
            }
        }
        Ok(())
    }

    fn list_shortform(&self, inode: &Inode, out: &mut Vec<RawEntry>) -> io::Result<()> {
        let f = inode.fork();
        let bad = |p: usize| self.err(format!("short-form directory inode {}: entry at byte {p} runs past the fork", inode.ino));
        if f.len() < 2 {
            return Err(bad(0));
        }
        let count = f[0] as usize;
        let i8count = f[1] as usize;
        let ino_len = if i8count > 0 { 8 } else { 4 };
        let mut p = 2 + ino_len;
        for _ in 0..count.max(i8count) {
            if p + 3 > f.len() {
                return Err(bad(p));
            }
            let namelen = f[p] as usize;
            let name_at = p + 3;
            let after = name_at + namelen + usize::from(self.ftype);
            if after + ino_len > f.len() || namelen == 0 {
                return Err(bad(p));
            }
            let name = f[name_at..name_at + namelen].to_vec();
            let ftype = if self.ftype { f[name_at + namelen] } else { 0 };
            let ino = if ino_len == 8 { be64(f, after) } else { be32(f, after) as u64 };
            out.push(RawEntry { name, ino, ftype });
            p = after + ino_len;
        }
        Ok(())
    }

    fn list_blocks(&self, inode: &Inode, out: &mut Vec<RawEntry>) -> io::Result<()> {
        let extents = self.extents(inode)?;
        let dbs = self.dir_block_size;
        let mut total = 0u64;
        for e in extents.iter().filter(|e| e.logical < DIR_LEAF_OFFSET) {
            let Some(phys) = e.physical else { continue };
            let mut pos = 0;
            while pos < e.len && e.logical + pos < DIR_LEAF_OFFSET {
                total += dbs;
                if total > MAX_DIR_BYTES {
                    return Err(self.err(format!("directory inode {}: more than {MAX_DIR_BYTES} bytes of entries", inode.ino)));
                }
                let len = dbs.min(e.len - pos);
                let block = read_vec(&*self.dev, phys + pos, len, 65536, "xfs directory block")?;
                self.parse_data_block(&block, phys + pos, inode.ino, out)?;
                pos += dbs;
            }
        }
        Ok(())
    }

    fn parse_data_block(&self, b: &[u8], off: u64, dir: u64, out: &mut Vec<RawEntry>) -> io::Result<()> {
        let magic = &b[0..4];
        let (hdr, is_block) = match magic {
            b"XDB3" => (64, true),
            b"XDD3" => (64, false),
            b"XD2B" => (16, true),
            b"XD2D" => (16, false),
            _ => return Err(self.err(format!("directory inode {dir}: data block at offset {off} has bad magic {magic:02x?}"))),
        };
        let mut end = b.len();
        if is_block {
            // Block form: leaf entries and a tail (count, stale) at the end of the block.
            let count = be32(b, b.len() - 8) as usize;
            end = b.len().checked_sub(8 + count * 8).filter(|&e| e >= hdr).ok_or_else(|| {
                self.err(format!("directory inode {dir}: block at offset {off} claims {count} leaf entries"))
            })?;
        }
        let mut p = hdr;
        while p + 8 <= end {
            if be16(b, p) == 0xFFFF {
                let len = be16(b, p + 2) as usize;
                if len < 8 || !len.is_multiple_of(8) || p + len > end {
                    return Err(self.err(format!("directory inode {dir}: free entry of {len} bytes at offset {}", off + p as u64)));
                }
                p += len;
                continue;
            }
            let ino = be64(b, p);
            let namelen = b[p + 8] as usize;
            let size = (8 + 1 + namelen + usize::from(self.ftype) + 2 + 7) & !7;
            if namelen == 0 || p + size > end {
                return Err(self.err(format!("directory inode {dir}: bad entry (name length {namelen}) at offset {}", off + p as u64)));
            }
            let name = b[p + 9..p + 9 + namelen].to_vec();
            let ftype = if self.ftype { b[p + 9 + namelen] } else { 0 };
            if name != b"." && name != b".." {
                out.push(RawEntry { name, ino, ftype });
            }
            p += size;
        }
        Ok(())
    }
}

impl crate::inode_fs::InodeFs for Inner {
    type Ino = u64;
    type Inode = Inode;
    fn ino(inode: &Inode) -> u64 {
        inode.ino
    }

    fn fs_name(&self) -> &str {
        &self.name
    }

    fn io_counters(&self) -> &Counters {
        &self.counters
    }

    fn inode_type(inode: &Inode) -> FileType {
        inode.file_type()
    }

    fn read_inode(&self, ino: u64) -> io::Result<Inode> {
        let shift = self.ag_blk_log + self.inop_blog;
        let ag = ino >> shift;
        let agbno = (ino >> self.inop_blog) & ((1u64 << self.ag_blk_log) - 1);
        let index = ino & ((1u64 << self.inop_blog) - 1);
        if ag >= self.ag_count || agbno >= self.ag_blocks || shift >= 64 {
            return Err(self.err(format!("inode number {ino} is out of range")));
        }
        let off = (ag * self.ag_blocks + agbno) * self.block_size + index * self.inode_size;
        if off + self.inode_size > self.dev.size() {
            return Err(self.err(format!("inode {ino} at offset {off} lies outside the filesystem")));
        }
        let raw = read_vec(&*self.dev, off, self.inode_size, 2048, "xfs inode")?;
        if &raw[0..2] != b"IN" {
            return Err(self.err(format!("inode {ino} at offset {off}: bad magic {:02x}{:02x}", raw[0], raw[1])));
        }
        let version = raw[4];
        let core = if version >= 3 { 176 } else { 100 };
        let mode = be16(&raw, 2);
        let format = raw[5];
        let size = be64(&raw, 56);
        let flags2 = if version >= 3 { be64(&raw, 120) } else { 0 };
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 { be64(&raw, 24) } else { be32(&raw, 76) as u64 };
        let fork_off_raw = raw[82] as usize;
        let fork_len = if fork_off_raw != 0 { fork_off_raw * 8 } else { self.inode_size as usize - core };
        if core + fork_len > raw.len() {
            return Err(self.err(format!("inode {ino} at offset {off}: attribute fork offset {fork_off_raw} is past the inode")));
        }
        if size > i64::MAX as u64 {
            return Err(self.err(format!("inode {ino} at offset {off}: size {size} is absurd")));
        }
        Ok(Inode { ino, raw, mode, format, size, nextents, fork_off: core, fork_len })
    }

    fn inode_metadata(&self, inode: &Inode) -> Metadata {
        let r = &inode.raw;
        let bigtime = r[4] >= 3 && be64(r, 120) & DIFLAG2_BIGTIME != 0;
        let mtime = if bigtime { (be64(r, 40) / 1_000_000_000) as i64 - (1i64 << 31) } else { be32(r, 40) as i32 as i64 };
        let (uid, gid) = if r[4] == 1 { (be16(r, 8) as u32, be16(r, 12) as u32) } else { (be32(r, 8), be32(r, 12)) };
        Metadata { file_type: inode.file_type(), size: inode.size, mode: (inode.mode & 0o7777) as u32, uid, gid, mtime, ino: inode.ino }
    }

    fn open_inode(&self, inode: &Inode) -> io::Result<ExtentFile> {
        if inode.format == 1 {
            let fork = inode.fork();
            if inode.size > fork.len() as u64 {
                return Err(self.err(format!("inode {}: local data of {} bytes exceeds the fork", inode.ino, inode.size)));
            }
            return Ok(ExtentFile::inline(self.dev.clone(), fork[..inode.size as usize].to_vec()));
        }
        Ok(ExtentFile::new(self.dev.clone(), self.extents(inode)?, inode.size))
    }

    fn dir_entries(&self, inode: &Inode) -> io::Result<Arc<DirListing>> {
        if let Some(d) = self.dirs.lock().unwrap_or_else(|e| e.into_inner()).get(inode.ino) {
            return Ok(d);
        }
        let mut out = Vec::new();
        match inode.format {
            1 => self.list_shortform(inode, &mut out)?,
            2 | 3 => self.list_blocks(inode, &mut out)?,
            f => return Err(self.err(format!("directory inode {}: data fork format {f} is not supported", inode.ino))),
        }
        let out = Arc::new(DirListing::new(out));
        self.dirs.lock().unwrap_or_else(|e| e.into_inner()).put(inode.ino, out.clone());
        Ok(out)
    }

    fn lookup_path(&self, path: &Path) -> io::Result<Inode> {
        crate::inode_fs::lookup(self, self.root_ino, &self.last_dir, path)
    }

    fn link_target(&self, inode: &Inode) -> io::Result<Vec<u8>> {
        if inode.size > MAX_LINK {
            return Err(self.err(format!("symlink inode {}: target length {} is absurd", inode.ino, inode.size)));
        }
        if inode.format == 1 {
            return self.open_inode(inode)?.read_all(MAX_LINK, "symlink");
        }
        // Remote symlink: on v5 every block starts with a 56-byte header.
        let extents = self.extents(inode)?;
        let mut target = Vec::new();
        for e in extents {
            let Some(phys) = e.physical else { continue };
            let mut pos = 0;
            while pos < e.len && (target.len() as u64) < inode.size {
                let b = read_vec(&*self.dev, phys + pos, self.block_size.min(e.len - pos), 65536, "xfs symlink block")?;
                let data = if self.v5 {
                    if &b[0..4] != b"XSLM" {
                        return Err(self.err(format!("symlink inode {}: block at offset {} has bad magic", inode.ino, phys + pos)));
                    }
                    let n = be32(&b, 8) as usize;
                    &b[56..(56 + n).min(b.len())]
                } else {
                    &b[..]
                };
                target.extend_from_slice(data);
                pos += self.block_size;
            }
        }
        target.truncate(inode.size as usize);
        Ok(target)
    }
}

crate::inode_fs::impl_raw_fs!(XfsFs);
