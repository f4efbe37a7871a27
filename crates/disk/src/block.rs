//! The block-device layer: one small read trait ([`BlockDev`]) under every image format, partition
//! table and filesystem, so the same code reads a local file today and a cloud snapshot API later.
//!
//! [`FileDev`] reads a local file and counts the bytes it reads; [`CachedDev`] keeps a bounded LRU
//! of fixed-size chunks of a (virtual) disk; [`SliceDev`] is a partition; [`ConcatDev`] is an LVM
//! logical volume made of segments.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::inode_fs::DirListing;

/// Random-access, read-only storage: an image file, a virtual disk, a partition, a volume.
pub trait BlockDev: Send + Sync {
    /// Fills `buf` with the bytes at `off`. Reading past [`BlockDev::size`] is an error.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Like [`BlockDev::read_at`], for bytes read once (the used part of a directory block, the
    /// parts of a file a cataloger asks for): a cache serves them if it holds them, else passes
    /// the read through without keeping a chunk, so 200 bytes of directory cost 200 bytes, not a
    /// 4 KiB block.
    fn read_once(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(off, buf)
    }
    /// Size in bytes.
    fn size(&self) -> u64;
    /// A short description for messages, e.g. `qcow2 disk.qcow2`.
    fn describe(&self) -> String;
}

/// Reads `len` bytes at `off` into a new buffer, refusing lengths above `cap` (a size taken from
/// on-disk metadata must never drive an unbounded allocation).
pub fn read_vec(dev: &dyn BlockDev, off: u64, len: u64, cap: u64, what: &str) -> io::Result<Vec<u8>> {
    if len > cap {
        return Err(corrupt(format!("{what} at offset {off}: length {len} exceeds the {cap}-byte limit")));
    }
    let mut buf = vec![0u8; len as usize];
    dev.read_at(off, &mut buf)?;
    Ok(buf)
}

/// Reads `buf` at `off` where some `unit`-byte units have a copy elsewhere (a replayed log's:
/// ext4's journal, xfs's log; the chunk cache's): `copy(unit index)` says where, and
/// `serve(that, offset within the unit, piece)` fills a piece from it; runs of the other units go
/// to `below(offset, piece)` in one read, so large reads stay large.
pub(crate) fn read_with_copies<T>(
    mut off: u64,
    mut buf: &mut [u8],
    unit: u64,
    copy: impl Fn(u64) -> Option<T>,
    serve: impl Fn(T, usize, &mut [u8]) -> io::Result<()>,
    below: impl Fn(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<()> {
    while !buf.is_empty() {
        let mut n = ((unit - off % unit) as usize).min(buf.len());
        if let Some(c) = copy(off / unit) {
            serve(c, (off % unit) as usize, &mut buf[..n])?;
        } else {
            while n < buf.len() && copy((off + n as u64) / unit).is_none() {
                n = (n + unit as usize).min(buf.len());
            }
            below(off, &mut buf[..n])?;
        }
        off += n as u64;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// An `InvalidData` error: corrupt or hostile on-disk structures.
pub fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Splits a read at `off` into pieces that do not cross a multiple of `piece` (a cluster, grain,
/// block or cache chunk) and hands each to `read(offset, piece_of_buf)`.
pub(crate) fn read_pieces(mut off: u64, mut buf: &mut [u8], piece: u64, mut read: impl FnMut(u64, &mut [u8]) -> io::Result<()>) -> io::Result<()> {
    while !buf.is_empty() {
        let n = ((piece - off % piece) as usize).min(buf.len());
        read(off, &mut buf[..n])?;
        off += n as u64;
        buf = &mut buf[n..];
    }
    Ok(())
}

pub(crate) fn check_range(dev: &dyn BlockDev, off: u64, len: usize) -> io::Result<()> {
    match off.checked_add(len as u64) {
        Some(end) if end <= dev.size() => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{}: read of {len} bytes at offset {off} is past the end ({} bytes)", dev.describe(), dev.size()),
        )),
    }
}

/// I/O counters shared by every layer reading one image (the `--stats` line).
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_read: AtomicU64,
    pub blocks_fetched: AtomicU64,
    pub files_opened: AtomicU64,
    /// Host files opened as devices: (st_dev, st_ino) -> bytes allocated. Keyed so a file opened
    /// twice (two extents of one VMDK descriptor) counts once.
    image_files: Mutex<HashMap<(u64, u64), u64>>,
}

impl Counters {
    pub fn snapshot(&self) -> kensa_fs::IoStats {
        kensa_fs::IoStats {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            blocks_fetched: self.blocks_fetched.load(Ordering::Relaxed),
            files_opened: self.files_opened.load(Ordering::Relaxed),
            allocated_bytes: self.image_files.lock().unwrap_or_else(|e| e.into_inner()).values().sum(),
        }
    }
}

/// A local file, read with positioned reads (no shared cursor), counting bytes read.
pub struct FileDev {
    file: File,
    path: PathBuf,
    size: u64,
    counters: Arc<Counters>,
}

impl FileDev {
    pub fn open(path: &Path, counters: Arc<Counters>) -> io::Result<Self> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let readable = |md: &std::fs::Metadata| {
            if md.is_file() || std::os::unix::fs::FileTypeExt::is_block_device(&md.file_type()) {
                Ok(())
            } else {
                Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a regular file or block device", path.display())))
            }
        };
        // Checked before opening (opening a fifo for reading would wait for a writer) and again
        // on what was opened (the path may have changed in between).
        readable(&std::fs::metadata(path).map_err(named)?)?;
        let file = File::open(path).map_err(named)?;
        let md = file.metadata()?;
        readable(&md)?;
        let size = if md.is_file() { md.len() } else { block_device_size(&file)? };
        let allocated = if md.is_file() { md.blocks() * 512 } else { size };
        counters.image_files.lock().unwrap_or_else(|e| e.into_inner()).insert((md.dev(), md.ino()), allocated);
        Ok(FileDev { file, path: path.to_path_buf(), size, counters })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn block_device_size(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::End(0))
}

impl BlockDev for FileDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: read of {} bytes at offset {off}: {e}", self.path.display(), buf.len())))?;
        self.counters.bytes_read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A byte range of another device (a partition, a physical volume's data area).
pub struct SliceDev {
    inner: Arc<dyn BlockDev>,
    start: u64,
    len: u64,
    name: String,
}

impl SliceDev {
    /// Fails when the range does not lie inside `inner`.
    pub fn new(inner: Arc<dyn BlockDev>, start: u64, len: u64, name: String) -> io::Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(SliceDev { inner, start, len, name }),
            _ => Err(corrupt(format!(
                "{name}: range {start}+{len} lies outside {} ({} bytes)",
                inner.describe(),
                inner.size()
            ))),
        }
    }
}

impl BlockDev for SliceDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        self.inner.read_at(self.start + off, buf)
    }
    fn read_once(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        self.inner.read_once(self.start + off, buf)
    }
    fn size(&self) -> u64 {
        self.len
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// Segments of other devices laid end to end (an LVM logical volume).
pub struct ConcatDev {
    /// (offset in this device, length, device, offset in that device), sorted and contiguous.
    segments: Vec<(u64, u64, Arc<dyn BlockDev>, u64)>,
    size: u64,
    name: String,
}

impl ConcatDev {
    pub fn new(segments: Vec<(u64, u64, Arc<dyn BlockDev>, u64)>, name: String) -> io::Result<Self> {
        let mut pos = 0u64;
        for (off, len, dev, dev_off) in &segments {
            if *off != pos {
                return Err(corrupt(format!("{name}: segment at {off} leaves a gap or overlaps (expected {pos})")));
            }
            if dev_off.checked_add(*len).is_none_or(|e| e > dev.size()) {
                return Err(corrupt(format!("{name}: segment {off}+{len} maps past the end of {}", dev.describe())));
            }
            pos = pos.checked_add(*len).ok_or_else(|| corrupt(format!("{name}: size overflows")))?;
        }
        Ok(ConcatDev { segments, size: pos, name })
    }
}

impl ConcatDev {
    /// Hands each segment's part of a read to `read(device, offset there, piece)`.
    fn split(&self, mut off: u64, mut buf: &mut [u8], read: impl Fn(&dyn BlockDev, u64, &mut [u8]) -> io::Result<()>) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        while !buf.is_empty() {
            let i = self.segments.partition_point(|s| s.0 + s.1 <= off);
            let (soff, slen, dev, doff) = &self.segments[i];
            let within = off - soff;
            let n = ((slen - within) as usize).min(buf.len());
            read(&**dev, doff + within, &mut buf[..n])?;
            off += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

impl BlockDev for ConcatDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.split(off, buf, |dev, off, piece| dev.read_at(off, piece))
    }
    fn read_once(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.split(off, buf, |dev, off, piece| dev.read_once(off, piece))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

/// The value `cache` holds for `key`, else the one `load` gives, then kept. The lock is not held
/// while loading (loads read the device): two readers may load one key once each.
pub(crate) fn get_or_load<V: Clone>(cache: &Mutex<Lru<V>>, key: u64, load: impl FnOnce() -> io::Result<V>) -> io::Result<V> {
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
        return Ok(v);
    }
    let v = load()?;
    cache.lock().unwrap_or_else(|e| e.into_inner()).put(key, v.clone());
    Ok(v)
}

/// A bounded least-recently-used map (small and dependency-free). A hash map from key to slot and
/// a doubly linked recency list threaded through a slab of slots, so a hit costs one hash lookup
/// and a few index updates (the block cache is hit for every 4 KiB of metadata read).
pub(crate) struct Lru<V> {
    map: HashMap<u64, usize>,
    slots: Vec<Slot<V>>,
    /// Most and least recently used slots (`NIL` when empty).
    head: usize,
    tail: usize,
    cap: usize,
}

struct Slot<V> {
    key: u64,
    value: V,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

impl<V: Clone> Lru<V> {
    pub fn new(cap: usize) -> Self {
        Lru { map: HashMap::new(), slots: Vec::new(), head: NIL, tail: NIL, cap: cap.max(1) }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n].prev = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].prev = NIL;
        self.slots[i].next = self.head;
        if self.head != NIL {
            self.slots[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    pub fn get(&mut self, key: u64) -> Option<V> {
        let i = *self.map.get(&key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(self.slots[i].value.clone())
    }

    /// Removes and returns the least recently used entry.
    pub fn pop_lru(&mut self) -> Option<(u64, V)> {
        let i = self.tail;
        if i == NIL {
            return None;
        }
        self.unlink(i);
        self.map.remove(&self.slots[i].key);
        // Move the last slot into the freed one, and repoint its neighbours and key.
        let last = self.slots.len() - 1;
        self.slots.swap(i, last);
        if i != last {
            let (prev, next) = (self.slots[i].prev, self.slots[i].next);
            match prev {
                NIL => self.head = i,
                p => self.slots[p].next = i,
            }
            match next {
                NIL => self.tail = i,
                n => self.slots[n].prev = i,
            }
            self.map.insert(self.slots[i].key, i);
        }
        self.slots.pop().map(|s| (s.key, s.value))
    }

    /// Inserts or replaces; returns the entry evicted to make room, if any.
    pub fn put(&mut self, key: u64, value: V) -> Option<(u64, V)> {
        if let Some(&i) = self.map.get(&key) {
            self.slots[i].value = value;
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return None;
        }
        let (i, evicted) = if self.slots.len() < self.cap {
            self.slots.push(Slot { key, value, prev: NIL, next: NIL });
            (self.slots.len() - 1, None)
        } else {
            // Reuse the least recently used slot.
            let i = self.tail;
            self.unlink(i);
            let old_key = std::mem::replace(&mut self.slots[i].key, key);
            self.map.remove(&old_key);
            let old_value = std::mem::replace(&mut self.slots[i].value, value);
            (i, Some((old_key, old_value)))
        };
        self.map.insert(key, i);
        self.push_front(i);
        evicted
    }
}

/// CRC-32C (Castagnoli), the checksum of VHDX headers and region tables, XFS log records (and of
/// the XFS v5 metadata a test writes).
/// crc32fast computes the IEEE polynomial only, and the few MiB checked at open time do not
/// justify another crate.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_append(!0, data)
}

/// Continues a CRC-32C over `data` from `state` (start with `!0`, finish with `!state`).
pub fn crc32c_append(mut state: u32, data: &[u8]) -> u32 {
    for &b in data {
        state = CRC32C_TABLE[((state ^ b as u32) & 0xFF) as usize] ^ (state >> 8);
    }
    state
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Parsed directory listings by inode: ordinary ones up to [`SMALL_LISTINGS_BYTES`] in all (at
/// most 4096 entries and 256 KiB each), and big ones up to [`BIG_LISTINGS_BYTES`] in all (always
/// the most recent one), so memory stays bounded however large a hostile directory is or long its
/// names are, while a walk through a big directory does not re-read it for every child, nor a big
/// directory inside a big one both for every grandchild (with room for one big listing, a lookup
/// below them re-parsed both: 6.3 s for three 5,000-file directories inside a 5,000-file one).
/// Ordinary listings are many and small (a few hundred bytes), and the catalogers' lookups come
/// back to directories the walk listed earlier: with 128 kept, about 5% of a Debian root's
/// directories were read twice.
pub(crate) struct DirCache<I> {
    small: Lru<Arc<DirListing<I>>>,
    small_bytes: usize,
    /// Most recently used last.
    big: Vec<(u64, Arc<DirListing<I>>)>,
}

/// Memory of the big listings kept: about 2M entries with typical names (60 bytes an entry).
const BIG_LISTINGS_BYTES: usize = 128 << 20;
/// Memory of the ordinary listings kept, and how many at most.
const SMALL_LISTINGS_BYTES: usize = 32 << 20;
const SMALL_LISTINGS: usize = 16 << 10;
/// A listing with more entries or bytes than these is a big one.
const SMALL_LISTING_ENTRIES: usize = 4096;
const SMALL_LISTING_BYTES: usize = 256 << 10;

impl<I> Default for DirCache<I> {
    fn default() -> Self {
        DirCache { small: Lru::new(SMALL_LISTINGS), small_bytes: 0, big: Vec::new() }
    }
}

impl<I> DirCache<I> {
    pub fn get(&mut self, ino: u64) -> Option<Arc<DirListing<I>>> {
        if let Some(i) = self.big.iter().position(|(n, _)| *n == ino) {
            let hit = self.big.remove(i);
            let listing = hit.1.clone();
            self.big.push(hit);
            return Some(listing);
        }
        self.small.get(ino)
    }
    pub fn put(&mut self, ino: u64, listing: Arc<DirListing<I>>) {
        if listing.len() > SMALL_LISTING_ENTRIES || listing.bytes() > SMALL_LISTING_BYTES {
            self.big.retain(|(n, _)| *n != ino);
            self.big.push((ino, listing));
            let mut total: usize = self.big.iter().map(|(_, l)| l.bytes()).sum();
            while total > BIG_LISTINGS_BYTES && self.big.len() > 1 {
                total -= self.big.remove(0).1.bytes();
            }
        } else {
            if let Some(old) = self.small.get(ino) {
                self.small_bytes -= old.bytes();
            }
            self.small_bytes += listing.bytes();
            if let Some((_, old)) = self.small.put(ino, listing) {
                self.small_bytes -= old.bytes();
            }
            while self.small_bytes > SMALL_LISTINGS_BYTES {
                let Some((_, old)) = self.small.pop_lru() else { break };
                self.small_bytes -= old.bytes();
            }
        }
    }
}

/// Chunk size of [`CachedDev`]: a filesystem block, so scattered metadata reads (inodes,
/// directory blocks) pull in no more than they need. Reads of [`CACHE_BYPASS`] bytes or more (file
/// contents) go straight to the device instead.
pub const CACHE_CHUNK: u64 = 4 << 10;
/// Reads at least this large bypass the cache.
pub const CACHE_BYPASS: usize = 64 << 10;

/// A bounded LRU cache of fixed-size chunks over another device. Counts chunks fetched.
pub struct CachedDev {
    inner: Arc<dyn BlockDev>,
    cache: Mutex<Lru<Arc<Vec<u8>>>>,
    counters: Arc<Counters>,
}

impl CachedDev {
    /// `capacity_bytes` bounds the memory held by the cache.
    pub fn new(inner: Arc<dyn BlockDev>, capacity_bytes: u64, counters: Arc<Counters>) -> Self {
        let chunks = (capacity_bytes / CACHE_CHUNK).max(4) as usize;
        CachedDev { inner, cache: Mutex::new(Lru::new(chunks)), counters }
    }

    fn chunk(&self, index: u64) -> io::Result<Arc<Vec<u8>>> {
        get_or_load(&self.cache, index, || {
            let start = index * CACHE_CHUNK;
            let len = CACHE_CHUNK.min(self.inner.size() - start) as usize;
            let mut buf = vec![0u8; len];
            self.inner.read_at(start, &mut buf)?;
            self.counters.blocks_fetched.fetch_add(1, Ordering::Relaxed);
            // Arc<Vec> rather than Arc<[u8]>: the conversion would copy every chunk once more.
            Ok(Arc::new(buf))
        })
    }
}

impl BlockDev for CachedDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        if buf.len() >= CACHE_BYPASS {
            self.counters.blocks_fetched.fetch_add(1, Ordering::Relaxed);
            return self.inner.read_at(off, buf);
        }
        read_pieces(off, buf, CACHE_CHUNK, |off, piece| {
            let within = (off % CACHE_CHUNK) as usize;
            let chunk = self.chunk(off / CACHE_CHUNK)?;
            piece.copy_from_slice(&chunk[within..within + piece.len()]);
            Ok(())
        })
    }
    fn read_once(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        read_with_copies(
            off,
            buf,
            CACHE_CHUNK,
            |chunk| self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(chunk),
            |chunk, within, piece| {
                piece.copy_from_slice(&chunk[within..within + piece.len()]);
                Ok(())
            },
            |off, run| {
                self.counters.blocks_fetched.fetch_add(1, Ordering::Relaxed);
                self.inner.read_at(off, run)
            },
        )
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// In-memory device (tests and tiny synthetic structures).
impl BlockDev for Vec<u8> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        buf.copy_from_slice(&self[off as usize..off as usize + buf.len()]);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn describe(&self) -> String {
        format!("memory ({} bytes)", self.len())
    }
}

pub(crate) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub(crate) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
pub(crate) fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
pub(crate) fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}
pub(crate) fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}
pub(crate) fn be64(b: &[u8], o: usize) -> u64 {
    u64::from_be_bytes(b[o..o + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut l = Lru::new(2);
        l.put(1, 'a');
        l.put(2, 'b');
        assert_eq!(l.get(1), Some('a'));
        l.put(3, 'c');
        assert_eq!(l.get(2), None);
        assert_eq!(l.get(1), Some('a'));
        assert_eq!(l.get(3), Some('c'));
        l.put(3, 'C');
        l.put(4, 'd');
        assert_eq!((l.get(1), l.get(3), l.get(4)), (None, Some('C'), Some('d')));
    }

    /// Against a plain list kept in recency order, over a long pseudo-random sequence.
    #[test]
    fn lru_matches_a_reference_model() {
        let mut l = Lru::new(5);
        let mut model: Vec<(u64, u32)> = Vec::new(); // most recent first
        let mut x = 12345u64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 9;
            if x.is_multiple_of(11) {
                assert_eq!(l.pop_lru(), model.pop(), "step {step}");
            } else if x.is_multiple_of(3) {
                l.put(key, step);
                model.retain(|e| e.0 != key);
                model.insert(0, (key, step));
                model.truncate(5);
            } else {
                let want = model.iter().position(|e| e.0 == key).map(|p| {
                    let e = model.remove(p);
                    model.insert(0, e);
                    e.1
                });
                assert_eq!(l.get(key), want, "step {step}");
            }
        }
    }

    #[test]
    fn cached_reads_span_chunks_and_count_fetches() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let counters = Arc::new(Counters::default());
        let dev = CachedDev::new(Arc::new(data.clone()), 1 << 20, counters.clone());
        let mut buf = vec![0u8; 30_000];
        dev.read_at(30_000, &mut buf).unwrap();
        assert_eq!(&buf[..], &data[30_000..60_000]);
        let mut buf = vec![0u8; 70_000];
        dev.read_at(30_000, &mut buf).unwrap();
        assert_eq!(&buf[..], &data[30_000..100_000]);
        let mut buf = vec![0u8; 30_000];
        let fetched = counters.blocks_fetched.load(Ordering::Relaxed);
        dev.read_at(30_000, &mut buf).unwrap();
        assert_eq!(counters.blocks_fetched.load(Ordering::Relaxed), fetched);
        assert!(dev.read_at(199_999, &mut [0u8; 2]).is_err());
    }

    #[test]
    fn concat_maps_segments() {
        let a: Arc<dyn BlockDev> = Arc::new(vec![1u8; 100]);
        let b: Arc<dyn BlockDev> = Arc::new(vec![2u8; 100]);
        let c = ConcatDev::new(vec![(0, 50, a.clone(), 10), (50, 30, b, 0)], "lv".into()).unwrap();
        let mut buf = [0u8; 20];
        c.read_at(40, &mut buf).unwrap();
        assert_eq!(&buf[..10], &[1; 10]);
        assert_eq!(&buf[10..], &[2; 10]);
        assert!(ConcatDev::new(vec![(0, 200, a, 0)], "bad".into()).is_err());
    }
}

#[cfg(test)]
mod dir_cache_tests {
    use super::*;
    use crate::inode_fs::RawEntry;

    fn listing(n: usize) -> Arc<DirListing<u32>> {
        Arc::new(DirListing::new((0..n).map(|i| RawEntry { name: format!("f{i}").into_bytes(), ino: i as u32, ftype: 1 }).collect()))
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn big_listings_nested_in_each_other_stay_cached_within_the_budget() {
        let mut c = DirCache::default();
        c.put(1, listing(5000));
        c.put(2, listing(5000));
        assert!(c.get(1).is_some() && c.get(2).is_some(), "a big directory inside a big one keeps both");
        // Past the budget the least recently used go, never the newest.
        let huge = listing(5000);
        c.put(3, listing(BIG_LISTINGS_BYTES / huge.bytes() * 5000));
        assert!(c.get(3).is_some());
        assert!(c.get(1).is_none() && c.get(2).is_none());
        c.put(4, listing(10));
        assert!(c.get(4).is_some() && c.get(3).is_some());
    }

    /// Ordinary listings are kept by the thousand when small, within a byte budget when not.
    #[test]
    fn small_listings_are_kept_within_their_budget() {
        let mut c = DirCache::default();
        for ino in 0..5000 {
            c.put(ino, listing(3));
        }
        assert!((0..5000).all(|ino| c.get(ino).is_some()), "5,000 small directories stay cached");
        let per = listing(SMALL_LISTING_ENTRIES).bytes();
        assert!(per <= SMALL_LISTING_BYTES);
        for ino in 10_000..10_000 + (SMALL_LISTINGS_BYTES / per + 50) as u64 {
            c.put(ino, listing(SMALL_LISTING_ENTRIES));
            c.put(ino, listing(SMALL_LISTING_ENTRIES)); // replacing one counts it once
        }
        let held: usize = (0..20_000).filter_map(|ino| c.get(ino)).map(|l| l.bytes()).sum();
        assert!(held <= SMALL_LISTINGS_BYTES && held > SMALL_LISTINGS_BYTES - 2 * per, "{held} bytes held");
        assert_eq!(held, c.small_bytes);
        assert!(c.get(0).is_none(), "the oldest went first");
        assert!(c.get(10_000 + (SMALL_LISTINGS_BYTES / per + 49) as u64).is_some(), "the newest stays");
    }

    /// Few entries with the longest names a directory may hold still count as big: the budget is
    /// in bytes, so a hostile directory of 255-byte names cannot pin more memory than short ones.
    #[test]
    fn listings_are_budgeted_by_their_bytes() {
        let long = |n: usize| Arc::new(DirListing::new((0..n).map(|i| RawEntry { name: format!("{i:0>255}").into_bytes(), ino: i as u32, ftype: 1 }).collect()));
        let mut c = DirCache::default();
        let one = long(2000);
        assert!(one.len() <= SMALL_LISTING_ENTRIES && one.bytes() > SMALL_LISTING_BYTES);
        let per = one.bytes();
        for ino in 0..(BIG_LISTINGS_BYTES / per + 8) as u64 {
            c.put(ino, long(2000));
        }
        let held: usize = c.big.iter().map(|(_, l)| l.bytes()).sum();
        assert!(held <= BIG_LISTINGS_BYTES, "{held} bytes held");
        assert!(c.small.get(0).is_none());
    }
}
