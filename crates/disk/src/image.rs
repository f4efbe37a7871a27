//! Virtual-disk image formats, detected from content (never the file name): raw, qcow2 (v2/v3 with
//! backing chains, deflate-compressed and zero clusters), VMDK sparse extents (monolithicSparse,
//! streamOptimized, and descriptor files with flat or sparse extents), dynamic VHD and fixed or
//! dynamic VHDX. Each presents the guest disk as a
//! [`BlockDev`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::block::{be32, be64, check_range, corrupt, crc32c, get_or_load, le16, le32, le64, read_pieces, read_vec, BlockDev, Counters, FileDev, Lru};

/// Image formats we recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Qcow2,
    VmdkSparse,
    /// Dynamic VHD (a fixed VHD is a raw image with a footer and reads as raw).
    Vhd,
    /// Hyper-V's VHDX, fixed or dynamic.
    Vhdx,
    /// A VMDK descriptor file and the extent files it names (monolithicFlat, twoGbMaxExtent*,
    /// ESXi's vmfs): flat extents are raw, sparse ones hosted sparse extents.
    VmdkDescriptor,
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::VmdkSparse => "vmdk",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Vhdx => "vhdx",
            ImageFormat::VmdkDescriptor => "vmdk descriptor",
        })
    }
}

impl ImageFormat {
    /// Where a disk of this format states its size, for messages about that size (a corrupt
    /// header can claim terabytes). A raw image is as big as its file.
    pub fn size_source(&self) -> &'static str {
        match self {
            ImageFormat::Raw => "its length",
            ImageFormat::Qcow2 => "the size field of its qcow2 header",
            ImageFormat::VmdkSparse => "the capacity field of its vmdk header",
            ImageFormat::Vhd => "the current-size field of its vhd footer",
            ImageFormat::Vhdx => "the virtual disk size in its vhdx metadata",
            ImageFormat::VmdkDescriptor => "the extent sizes in its vmdk descriptor",
        }
    }
}

/// Longest qcow2 backing chain we follow.
const MAX_BACKING_DEPTH: usize = 16;
/// Memory for inflated compressed clusters/grains: 256 grains of the usual 64 KiB (plus a
/// decompressor each while half-read: about 27 MiB in all), fewer of larger ones (qcow2 clusters
/// may be 2 MiB, VMDK grains 1 MiB), never more than 256. Metadata reads scatter over the disk
/// and come in 4 KiB pieces: without this, one grain is inflated again for every piece.
const INFLATED_CACHE_BYTES: u64 = 16 << 20;
/// Memory for qcow2 L2 table slices: 1,024 slices of 4 KiB.
const L2_CACHE_BYTES: u64 = 4 << 20;
/// qcow2 L2 tables are read in slices of this size (qemu's `l2-cache-entry-size` does the same):
/// a whole table is a cluster (64 KiB maps 512 MiB of guest data), of which a scan needs a few
/// scattered entries. On a small tree whole tables were a quarter of the bytes read.
const L2_SLICE_BYTES: u64 = 4096;
/// Largest metadata table (qcow2 L1, VMDK grain directory) we load, in bytes.
const MAX_TABLE_BYTES: u64 = 64 << 20;

/// Detects the format of a file's content.
pub fn detect(dev: &dyn BlockDev) -> io::Result<ImageFormat> {
    let mut head = [0u8; 512];
    let n = (dev.size() as usize).min(512);
    dev.read_at(0, &mut head[..n])?;
    if head.starts_with(b"QFI\xfb") {
        return Ok(ImageFormat::Qcow2);
    }
    if head.starts_with(b"KDMV") {
        return Ok(ImageFormat::VmdkSparse);
    }
    if head.starts_with(b"# Disk DescriptorFile") {
        return Ok(ImageFormat::VmdkDescriptor);
    }
    if head.starts_with(b"vhdxfile") {
        return Ok(ImageFormat::Vhdx);
    }
    if head.starts_with(b"conectix") {
        return Ok(ImageFormat::Vhd);
    }
    Ok(ImageFormat::Raw)
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("unsupported image format: {what}"))
}

/// Opens an image file and returns its guest disk and format.
pub fn open(path: &Path, counters: Arc<Counters>) -> io::Result<(Arc<dyn BlockDev>, ImageFormat)> {
    let mut seen = HashSet::new();
    open_chain(path, counters, &mut seen, 0)
}

fn open_chain(path: &Path, counters: Arc<Counters>, seen: &mut HashSet<PathBuf>, depth: usize) -> io::Result<(Arc<dyn BlockDev>, ImageFormat)> {
    let canonical = path.canonicalize().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if !seen.insert(canonical.clone()) {
        return Err(corrupt(format!("{}: qcow2 backing chain loops back to this file", path.display())));
    }
    if depth > MAX_BACKING_DEPTH {
        return Err(corrupt(format!("{}: qcow2 backing chain is deeper than {MAX_BACKING_DEPTH}", path.display())));
    }
    let file: Arc<dyn BlockDev> = Arc::new(FileDev::open(&canonical, counters.clone())?);
    let format = detect(&*file)?;
    let dev: Arc<dyn BlockDev> = match format {
        ImageFormat::Raw => file,
        ImageFormat::Qcow2 => Arc::new(Qcow2::open(file, &canonical, counters, seen, depth)?),
        ImageFormat::VmdkSparse => Arc::new(VmdkSparse::open(file, &canonical)?),
        ImageFormat::Vhd => Arc::new(Vhd::open(file, &canonical)?),
        ImageFormat::Vhdx => Arc::new(Vhdx::open(file, &canonical)?),
        ImageFormat::VmdkDescriptor => vmdk_descriptor(&*file, &canonical, counters)?,
    };
    Ok((dev, format))
}

// ------------------------------------------------------------------------------------------ qcow2

const QCOW_OFLAG_COMPRESSED: u64 = 1 << 62;
const QCOW_OFLAG_ZERO: u64 = 1;
const QCOW_OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;

/// A qcow2 image (versions 2 and 3).
pub struct Qcow2 {
    file: Arc<dyn BlockDev>,
    name: String,
    cluster_bits: u32,
    size: u64,
    l1: Vec<u64>,
    l2_cache: Mutex<Lru<Arc<Vec<u64>>>>,
    /// Compressed clusters, inflated as far as reads need.
    inflater: Inflater,
    backing: Option<Arc<dyn BlockDev>>,
}

impl Qcow2 {
    fn open(file: Arc<dyn BlockDev>, path: &Path, counters: Arc<Counters>, seen: &mut HashSet<PathBuf>, depth: usize) -> io::Result<Self> {
        let name = format!("qcow2 {}", path.display());
        let h = read_vec(&*file, 0, 112.min(file.size()), 112, "qcow2 header")?;
        if h.len() < 72 {
            return Err(corrupt(format!("{name}: header truncated ({} bytes)", h.len())));
        }
        let version = be32(&h, 4);
        if version != 2 && version != 3 {
            return Err(corrupt(format!("{name}: unsupported qcow2 version {version} at offset 4")));
        }
        let cluster_bits = be32(&h, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(corrupt(format!("{name}: cluster_bits {cluster_bits} at offset 20 is out of range 9..=21")));
        }
        if be32(&h, 32) != 0 {
            return Err(unsupported("an encrypted qcow2 image"));
        }
        if version == 3 {
            if h.len() < 104 {
                return Err(corrupt(format!("{name}: v3 header truncated")));
            }
            let incompat = be64(&h, 72);
            if incompat & (1 << 2) != 0 {
                return Err(unsupported("qcow2 with an external data file"));
            }
            if incompat & (1 << 4) != 0 {
                return Err(unsupported("qcow2 with extended L2 entries (subclusters)"));
            }
            if incompat & (1 << 3) != 0 {
                let header_len = be32(&h, 100) as usize;
                if header_len > 104 && h.len() > 104 && h[104] != 0 {
                    return Err(unsupported("qcow2 with zstd compression"));
                }
            }
            if incompat & !0x1f != 0 {
                return Err(unsupported(&format!("qcow2 with unknown incompatible features {incompat:#x}")));
            }
        }
        let size = be64(&h, 24);
        let cluster_size = 1u64 << cluster_bits;
        let l2_entries = cluster_size / 8;
        let needed_l1 = size.div_ceil(cluster_size * l2_entries);
        let l1_size = be32(&h, 36) as u64;
        if l1_size < needed_l1 {
            return Err(corrupt(format!("{name}: L1 table has {l1_size} entries, a {size}-byte disk needs {needed_l1}")));
        }
        let l1_off = be64(&h, 40);
        let raw = read_vec(&*file, l1_off, l1_size * 8, MAX_TABLE_BYTES, &format!("{name}: L1 table"))?;
        let l1 = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();

        let backing_off = be64(&h, 8);
        let backing_len = be32(&h, 16) as u64;
        let backing = if backing_off != 0 && backing_len != 0 {
            let raw = read_vec(&*file, backing_off, backing_len, 4096, &format!("{name}: backing file name"))?;
            let rel = PathBuf::from(String::from_utf8_lossy(&raw).into_owned());
            let target = if rel.is_absolute() { rel } else { path.parent().unwrap_or(Path::new(".")).join(rel) };
            let (dev, _) = open_chain(&target, counters, seen, depth + 1)
                .map_err(|e| io::Error::new(e.kind(), format!("{name}: backing file {}: {e}", target.display())))?;
            Some(dev)
        } else {
            None
        };
        Ok(Qcow2 { file, name, cluster_bits, size, l1, l2_cache: Mutex::new(Lru::new((L2_CACHE_BYTES / L2_SLICE_BYTES.min(cluster_size)) as usize)), inflater: Inflater::new(false, cluster_size), backing })
    }

    /// The L2 entry of a guest cluster (0 when its table is unallocated), read through the cache
    /// of table slices.
    fn l2_entry(&self, cluster_index: u64) -> io::Result<u64> {
        let cluster = 1u64 << self.cluster_bits;
        let l2_entries = cluster / 8;
        let l1_index = (cluster_index / l2_entries) as usize;
        let table = self.l1[l1_index] & QCOW_OFFSET_MASK;
        if table == 0 {
            return Ok(0);
        }
        if table.checked_add(cluster).is_none_or(|e| e > self.file.size()) {
            return Err(corrupt(format!(
                "{}: L1 entry {l1_index} points to an L2 table at offset {table}, past the end of the file ({} bytes)",
                self.name,
                self.file.size()
            )));
        }
        let slice_bytes = L2_SLICE_BYTES.min(cluster);
        let per_slice = slice_bytes / 8;
        let in_table = cluster_index % l2_entries;
        let slice_off = table + in_table / per_slice * slice_bytes;
        let slice = get_or_load(&self.l2_cache, slice_off, || {
            let raw = read_vec(&*self.file, slice_off, slice_bytes, slice_bytes, "qcow2 L2 table")?;
            Ok(Arc::new(raw.chunks_exact(8).map(|c| be64(c, 0)).collect::<Vec<u64>>()))
        })?;
        Ok(slice[(in_table % per_slice) as usize])
    }

    /// Fills `buf` (inside one cluster) for guest offset `off`.
    fn read_cluster_part(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let cluster = 1u64 << self.cluster_bits;
        let within = off & (cluster - 1);
        let entry = self.l2_entry(off >> self.cluster_bits)?;
        if entry & QCOW_OFLAG_COMPRESSED != 0 {
            let x = 62 - (self.cluster_bits - 8);
            let host = entry & ((1u64 << x) - 1);
            let sectors = ((entry >> x) & ((1u64 << (self.cluster_bits - 8)) - 1)) + 1;
            let csize = (sectors * 512 - (host & 511)).min(self.file.size().saturating_sub(host));
            if host >= self.file.size() {
                return Err(corrupt(format!("{}: compressed cluster for guest offset {off} points past the end of the file (host offset {host})", self.name)));
            }
            // The length is sector-rounded: the stream may end before it.
            let ctx = || format!("{}: compressed cluster at host offset {host} (guest {off})", self.name);
            return self.inflater.read(&*self.file, host, cluster as usize, within as usize, buf, &ctx, || Ok(csize as usize));
        }
        let host = entry & QCOW_OFFSET_MASK;
        if entry & QCOW_OFLAG_ZERO != 0 {
            buf.fill(0);
            return Ok(());
        }
        if host == 0 {
            return self.read_backing(off, buf);
        }
        if (host + within).checked_add(buf.len() as u64).is_none_or(|e| e > self.file.size()) {
            return Err(corrupt(format!(
                "{}: L2 entry for guest offset {off} points to host offset {host}, past the end of the file ({} bytes)",
                self.name,
                self.file.size()
            )));
        }
        self.file.read_at(host + within, buf)
    }

    fn read_backing(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        if let Some(b) = &self.backing {
            let bsize = b.size();
            if off < bsize {
                let n = ((bsize - off) as usize).min(buf.len());
                b.read_at(off, &mut buf[..n])?;
            }
        }
        Ok(())
    }
}

impl BlockDev for Qcow2 {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        read_pieces(off, buf, 1u64 << self.cluster_bits, |off, piece| self.read_cluster_part(off, piece))
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

// ------------------------------------------------------------------------------------------- vmdk

const SECTOR: u64 = 512;
const VMDK_COMPRESSED: u32 = 1 << 16;
const GD_AT_END: u64 = u64::MAX;

/// A VMDK sparse extent (monolithicSparse or streamOptimized, one extent in one file).
pub struct VmdkSparse {
    file: Arc<dyn BlockDev>,
    name: String,
    capacity: u64,
    grain_bytes: u64,
    gtes_per_gt: u64,
    compressed: bool,
    gd: Vec<u32>,
    gt_cache: Mutex<Lru<Arc<Vec<u32>>>>,
    /// Recently decompressed grains (or their first part).
    inflater: Inflater,
}

impl VmdkSparse {
    fn open(file: Arc<dyn BlockDev>, path: &Path) -> io::Result<Self> {
        let name = format!("vmdk {}", path.display());
        let mut h = read_vec(&*file, 0, 512.min(file.size()), 512, "vmdk header")?;
        if h.len() < 80 {
            return Err(corrupt(format!("{name}: header truncated")));
        }
        let mut flags = le32(&h, 8);
        if le64(&h, 56) == GD_AT_END {
            // streamOptimized: the real header is the footer, 1024 bytes before the end.
            let size = file.size();
            if size < 1536 {
                return Err(corrupt(format!("{name}: streamOptimized image too short for a footer")));
            }
            h = read_vec(&*file, size - 1024, 512, 512, "vmdk footer")?;
            if !h.starts_with(b"KDMV") {
                return Err(corrupt(format!("{name}: no footer header at offset {}", size - 1024)));
            }
            flags = le32(&h, 8);
        }
        let capacity = le64(&h, 12).checked_mul(SECTOR).ok_or_else(|| corrupt(format!("{name}: capacity overflows")))?;
        let grain = le64(&h, 20);
        if !(1..=2048).contains(&grain) || !grain.is_power_of_two() {
            return Err(corrupt(format!("{name}: grain size {grain} sectors at offset 20 is invalid")));
        }
        let gtes = le32(&h, 44) as u64;
        if !(1..=65536).contains(&gtes) {
            return Err(corrupt(format!("{name}: {gtes} grain table entries per table (offset 44) is invalid")));
        }
        let compressed = flags & VMDK_COMPRESSED != 0;
        if compressed && le16(&h, 77) != 1 {
            return Err(unsupported(&format!("VMDK compression algorithm {}", le16(&h, 77))));
        }
        let grain_bytes = grain * SECTOR;
        let gd_entries = capacity.div_ceil(grain_bytes * gtes);
        let gd_off = le64(&h, 56).checked_mul(SECTOR).ok_or_else(|| corrupt(format!("{name}: grain directory offset overflows")))?;
        let raw = read_vec(&*file, gd_off, gd_entries * 4, MAX_TABLE_BYTES, &format!("{name}: grain directory"))?;
        let gd = raw.chunks_exact(4).map(|c| le32(c, 0)).collect();
        Ok(VmdkSparse { file, name, capacity, grain_bytes, gtes_per_gt: gtes, compressed, gd, gt_cache: Mutex::new(Lru::new(64)), inflater: Inflater::new(true, grain_bytes) })
    }

    fn grain_table(&self, gd_index: usize) -> io::Result<Option<Arc<Vec<u32>>>> {
        let sector = self.gd[gd_index] as u64;
        if sector == 0 {
            return Ok(None);
        }
        get_or_load(&self.gt_cache, sector, || {
            let off = sector * SECTOR;
            let len = self.gtes_per_gt * 4;
            if off.checked_add(len).is_none_or(|e| e > self.file.size()) {
                return Err(corrupt(format!("{}: grain directory entry {gd_index} points past the end of the file (offset {off})", self.name)));
            }
            let raw = read_vec(&*self.file, off, len, 1 << 20, "vmdk grain table")?;
            Ok(Arc::new(raw.chunks_exact(4).map(|c| le32(c, 0)).collect::<Vec<u32>>()))
        })
        .map(Some)
    }

    fn read_grain_part(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let grain_index = off / self.grain_bytes;
        let within = off % self.grain_bytes;
        let gd_index = (grain_index / self.gtes_per_gt) as usize;
        let sector = match self.grain_table(gd_index)? {
            Some(t) => t[(grain_index % self.gtes_per_gt) as usize] as u64,
            None => 0,
        };
        if sector <= 1 {
            // 0: never written; 1: explicitly zeroed.
            buf.fill(0);
            return Ok(());
        }
        let host = sector * SECTOR;
        if !self.compressed {
            if host.checked_add(self.grain_bytes).is_none_or(|e| e > self.file.size()) {
                return Err(corrupt(format!("{}: grain for guest offset {off} points past the end of the file (offset {host})", self.name)));
            }
            return self.file.read_at(host + within, buf);
        }
        // streamOptimized grain: lba u64, size u32, zlib data.
        let (file, grain) = (&*self.file, self.grain_bytes as usize);
        let ctx = || format!("{}: compressed grain at offset {host} (guest {off})", self.name);
        self.inflater.read(file, host + 12, grain, within as usize, buf, &ctx, || {
            if host.checked_add(12).is_none_or(|e| e > file.size()) {
                return Err(corrupt(format!("{}: compressed grain for guest offset {off} points past the end of the file (offset {host})", self.name)));
            }
            let mut head = [0u8; 12];
            file.read_at(host, &mut head)?;
            let clen = le32(&head, 8) as u64;
            if clen > 2 * grain as u64 + 4096 || (host + 12).checked_add(clen).is_none_or(|e| e > file.size()) {
                return Err(corrupt(format!("{} claims {clen} bytes", ctx())));
            }
            Ok(clen as usize)
        })
    }
}

/// Deflate streams of compressed qcow2 clusters and streamOptimized VMDK grains, inflated only as
/// far as reads need, with the caches that keep it cheap: recent grains (their decompressors
/// while half-read), the compressed bytes of half-read grains pushed out of that cache, and spare
/// decompressors.
struct Inflater {
    zlib_header: bool,
    grains: Mutex<Lru<Arc<Mutex<PartialGrain>>>>,
    spilled: Mutex<SpilledGrains>,
    /// Decompressors of completed grains, reset and reused (allocating and initialising one per
    /// grain showed in profiles).
    spare: Mutex<Vec<flate2::Decompress>>,
    /// Output buffers of grains pushed out of the cache.
    spare_buffers: Mutex<Vec<Vec<u8>>>,
}

impl Inflater {
    /// `grain`: the size of a cluster or grain inflated.
    fn new(zlib_header: bool, grain: u64) -> Self {
        // At most 256 grains however small: a half-read one also holds a decompressor (its 32 KiB
        // window included).
        let grains = Lru::new((INFLATED_CACHE_BYTES / grain.max(1)).clamp(8, 256) as usize);
        Inflater { zlib_header, grains: Mutex::new(grains), spilled: Mutex::default(), spare: Mutex::default(), spare_buffers: Mutex::default() }
    }

    /// A grain pushed out of the cache: if it was half-read, its compressed bytes are kept, so a
    /// later read further into it (a file next to a directory block) costs no read again; its
    /// buffer is reused (allocating and faulting in 64 KiB per grain showed in profiles).
    fn retire(&self, key: u64, old: Arc<Mutex<PartialGrain>>) {
        match Arc::try_unwrap(old) {
            Ok(old) => {
                let mut old = old.into_inner().unwrap_or_else(|e| e.into_inner());
                if old.dec.is_some() && !old.compressed.is_empty() {
                    let compressed = std::mem::take(&mut old.compressed);
                    self.spilled.lock().unwrap_or_else(|e| e.into_inner()).put(key, compressed, old.compressed_len, old.grain);
                }
                // Most grains are left half-read (a directory block, a file head): their
                // decompressors are reused too, or every new grain would allocate one.
                if let Some(dec) = old.dec.take() {
                    keep_spare(&self.spare, dec);
                }
                keep_spare(&self.spare_buffers, std::mem::take(&mut old.out));
            }
            // Another reader still holds it: leave its buffer to them.
            Err(old) => {
                let old = old.lock().unwrap_or_else(|e| e.into_inner());
                if old.dec.is_some() && !old.compressed.is_empty() {
                    self.spilled.lock().unwrap_or_else(|e| e.into_inner()).put(key, old.compressed.clone(), old.compressed_len, old.grain);
                }
            }
        }
    }

    fn decompressor(&self) -> flate2::Decompress {
        match self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            Some(mut d) => {
                d.reset(self.zlib_header);
                d
            }
            None => flate2::Decompress::new(self.zlib_header),
        }
    }

    /// Fills `buf` with the bytes at `within` of the `grain`-byte grain whose compressed stream
    /// starts at `data` in `file`. `compressed_len` reads and checks the stream's length when the
    /// grain is not cached; `ctx` names the grain in errors.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        file: &dyn BlockDev,
        data: u64,
        grain: usize,
        within: usize,
        buf: &mut [u8],
        ctx: &dyn Fn() -> String,
        compressed_len: impl FnOnce() -> io::Result<usize>,
    ) -> io::Result<()> {
        let end = within + buf.len();
        let cached = self.grains.lock().unwrap_or_else(|e| e.into_inner()).get(data);
        let g = match cached {
            Some(g) => g,
            None => {
                let spilled = self.spilled.lock().unwrap_or_else(|e| e.into_inner()).take(data, || self.decompressor());
                let mut g = match spilled {
                    Some(g) => g,
                    None => PartialGrain::new(compressed_len()?, grain, self.decompressor()),
                };
                if let Some(mut buffer) = self.spare_buffers.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                    buffer.clear();
                    g.out = buffer;
                }
                let g = Arc::new(Mutex::new(g));
                let evicted = self.grains.lock().unwrap_or_else(|e| e.into_inner()).put(data, g.clone());
                if let Some((key, old)) = evicted {
                    self.retire(key, old);
                }
                g
            }
        };
        let mut g = g.lock().unwrap_or_else(|e| e.into_inner());
        if g.out.len() < end {
            g.inflate_to(end, file, data, &self.spare).map_err(|e| corrupt(format!("{}: {e}", ctx())))?;
        }
        buf.copy_from_slice(&g.out[within..end]);
        Ok(())
    }
}

/// Smallest piece of a compressed grain's stream read at once.
const GRAIN_READ_STEP: usize = 256;
/// Decompressors (and grain buffers) kept for reuse.
const SPARE_DECOMPRESSORS: usize = 8;

/// Keeps `item` for reuse unless [`SPARE_DECOMPRESSORS`] are kept already.
fn keep_spare<T>(spare: &Mutex<Vec<T>>, item: T) {
    let mut spare = spare.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < SPARE_DECOMPRESSORS {
        spare.push(item);
    }
}
/// Memory for the compressed bytes of half-read grains evicted from the grain cache.
const SPILLED_BYTES: usize = 16 << 20;

/// A compressed grain or cluster inflated as far as reads have needed so far. Deflate is
/// sequential, so a read near the start of a grain never needs the rest of its compressed stream:
/// directory and inode blocks, file heads and archive tails usually need part of a grain only.
struct PartialGrain {
    /// Length of the whole compressed stream.
    compressed_len: usize,
    /// The compressed stream read so far (dropped once the grain is complete).
    compressed: Vec<u8>,
    /// How much of `compressed` the decompressor has taken.
    consumed: usize,
    /// `None` once the grain is complete (its state is not kept in the cache).
    dec: Option<flate2::Decompress>,
    /// The grain's bytes inflated so far.
    out: Vec<u8>,
    /// Size of the grain inflated.
    grain: usize,
}

impl PartialGrain {
    fn new(compressed_len: usize, grain: usize, dec: flate2::Decompress) -> Self {
        PartialGrain { compressed_len, compressed: Vec::new(), consumed: 0, dec: Some(dec), out: Vec::new(), grain }
    }

    /// Inflates until `out` holds at least `end` bytes, reading the compressed stream (which
    /// starts at `data` in `file`) in pieces sized by the ratio seen so far.
    /// The decompressor of a grain it completes goes to `spare`.
    fn inflate_to(&mut self, end: usize, file: &dyn BlockDev, data: u64, spare: &Mutex<Vec<flate2::Decompress>>) -> io::Result<()> {
        let grain = self.grain;
        // `decompress_vec` fills spare capacity only.
        self.out.reserve_exact(grain - self.out.len());
        let mut stalled = false;
        while self.out.len() < end {
            let Some(dec) = self.dec.as_mut() else { break };
            let have = self.out.len();
            let read = self.compressed.len();
            if self.consumed == read || stalled {
                // Everything read is inflated (or the decompressor wants more at once): read more.
                // A third of the compressed bytes still needed at the ratio seen so far (the
                // stream's average before any output): estimates overshoot where the data ahead
                // compresses better, and bytes read past the need are wasted, so converge on it
                // from below in a few steps.
                let still_needed = ((end - have) * read).checked_div(have).unwrap_or(self.compressed_len * end / grain);
                let want = (read + (still_needed / 3).max(GRAIN_READ_STEP)).min(self.compressed_len);
                if want > read {
                    self.compressed.resize(want, 0);
                    file.read_at(data + read as u64, &mut self.compressed[read..])?;
                }
            }
            let before_in = dec.total_in();
            let status = dec.decompress_vec(&self.compressed[self.consumed..], &mut self.out, flate2::FlushDecompress::None).map_err(|e| corrupt(e.to_string()))?;
            let took = (dec.total_in() - before_in) as usize;
            self.consumed += took;
            stalled = took == 0 && self.out.len() == have;
            if status == flate2::Status::StreamEnd || self.out.len() >= grain {
                // A stream that ends early reads as zeros past its end.
                self.out.resize(grain, 0);
                self.compressed = Vec::new();
                if let Some(dec) = self.dec.take() {
                    keep_spare(spare, dec);
                }
            } else if self.compressed.len() == self.compressed_len && self.out.len() == have && took == 0 {
                return Err(corrupt(format!("truncated: {} of {grain} bytes inflated from {} compressed bytes", self.out.len(), self.compressed.len())));
            }
        }
        if self.out.len() < end {
            return Err(corrupt(format!("inflates to {} bytes, short of {end}", self.out.len())));
        }
        Ok(())
    }
}

/// The compressed bytes read of half-read grains evicted from the grain cache, oldest dropped
/// first beyond [`SPILLED_BYTES`]. Cheap to keep (a few KiB each) and re-inflated on demand.
#[derive(Default)]
struct SpilledGrains {
    /// Offset of the stream in the image -> (compressed bytes read, whole compressed length,
    /// grain size).
    map: HashMap<u64, (Vec<u8>, usize, usize)>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl SpilledGrains {
    fn put(&mut self, host: u64, compressed: Vec<u8>, compressed_len: usize, grain: usize) {
        self.bytes += compressed.len();
        if let Some((old, _, _)) = self.map.insert(host, (compressed, compressed_len, grain)) {
            self.bytes -= old.len();
        } else {
            self.order.push_back(host);
        }
        while self.bytes > SPILLED_BYTES {
            let Some(h) = self.order.pop_front() else { break };
            if let Some((old, _, _)) = self.map.remove(&h) {
                self.bytes -= old.len();
            }
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            // Drop keys taken back since they were queued, and repeats.
            let mut seen = HashSet::new();
            let map = &self.map;
            self.order.retain(|h| map.contains_key(h) && seen.insert(*h));
        }
    }

    /// The grain rebuilt from its kept compressed bytes (inflated again on the next read).
    fn take(&mut self, host: u64, decompressor: impl FnOnce() -> flate2::Decompress) -> Option<PartialGrain> {
        let (compressed, compressed_len, grain) = self.map.remove(&host)?;
        self.bytes -= compressed.len();
        // `order` keeps a stale key; it is skipped when popped (no longer in `map`).
        Some(PartialGrain { compressed, ..PartialGrain::new(compressed_len, grain, decompressor()) })
    }
}

impl BlockDev for VmdkSparse {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        read_pieces(off, buf, self.grain_bytes, |off, piece| self.read_grain_part(off, piece))
    }
    fn size(&self) -> u64 {
        self.capacity
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

// -------------------------------------------------------------------------------------------- vhd

/// A dynamic VHD (Virtual PC / Azure page-blob export format): a block allocation table of
/// sector offsets, each block a sector bitmap followed by its data. Differencing VHDs (with a
/// parent) are refused.
pub struct Vhd {
    file: Arc<dyn BlockDev>,
    name: String,
    size: u64,
    block_size: u64,
    bitmap_bytes: u64,
    bat: Vec<u32>,
}

impl Vhd {
    fn open(file: Arc<dyn BlockDev>, path: &Path) -> io::Result<Self> {
        let name = format!("vhd {}", path.display());
        // The footer copy at offset 0 (a dynamic VHD keeps one at each end).
        let footer = read_vec(&*file, 0, 512.min(file.size()), 512, "vhd footer")?;
        if footer.len() < 512 {
            return Err(corrupt(format!("{name}: footer truncated")));
        }
        let disk_type = be32(&footer, 60);
        match disk_type {
            3 => {}
            4 => return Err(unsupported("a differencing VHD (it needs its parent); convert it with `qemu-img convert -O raw`")),
            t => return Err(corrupt(format!("{name}: disk type {t} at offset 60 is not a dynamic VHD"))),
        }
        let size = be64(&footer, 48);
        let dyn_off = be64(&footer, 16);
        let h = read_vec(&*file, dyn_off, 1024, 1024, &format!("{name}: dynamic header"))?;
        if &h[0..8] != b"cxsparse" {
            return Err(corrupt(format!("{name}: no dynamic disk header at offset {dyn_off}")));
        }
        let bat_off = be64(&h, 16);
        let entries = be32(&h, 28) as u64;
        let block_size = be32(&h, 32) as u64;
        if !(512..=(256 << 20)).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(corrupt(format!("{name}: block size {block_size} (offset {}) is invalid", dyn_off + 32)));
        }
        if entries < size.div_ceil(block_size) {
            return Err(corrupt(format!("{name}: {entries} BAT entries cannot map {size} bytes")));
        }
        let raw = read_vec(&*file, bat_off, entries * 4, MAX_TABLE_BYTES, &format!("{name}: block allocation table"))?;
        let bat = raw.chunks_exact(4).map(|c| be32(c, 0)).collect();
        let bitmap_bytes = (block_size / SECTOR).div_ceil(8).div_ceil(SECTOR) * SECTOR;
        Ok(Vhd { file, name, size, block_size, bitmap_bytes, bat })
    }
}

impl BlockDev for Vhd {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        read_pieces(off, buf, self.block_size, |off, piece| {
            let block = off / self.block_size;
            let within = off % self.block_size;
            let sector = self.bat.get(block as usize).copied().unwrap_or(u32::MAX);
            if sector == u32::MAX {
                piece.fill(0);
                return Ok(());
            }
            let host = sector as u64 * SECTOR + self.bitmap_bytes + within;
            if host + piece.len() as u64 > self.file.size() {
                return Err(corrupt(format!("{}: BAT entry {block} points past the end of the file (offset {host})", self.name)));
            }
            self.file.read_at(host, piece)
        })
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

// -------------------------------------------------------------------------------- vmdk descriptor

/// Largest VMDK descriptor read (they are a few hundred bytes).
const MAX_DESCRIPTOR: u64 = 64 << 10;
/// Most extents in one descriptor (a 2 TB twoGbMaxExtent disk has about 1,000).
const MAX_EXTENTS: usize = 8192;

/// Reads nothing: a VMDK `ZERO` extent.
struct ZeroDev(u64);

impl BlockDev for ZeroDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        buf.fill(0);
        Ok(())
    }
    fn size(&self) -> u64 {
        self.0
    }
    fn describe(&self) -> String {
        "vmdk zero extent".into()
    }
}

/// The disk a VMDK descriptor file describes: its extents laid end to end. Extent files must sit
/// beside the descriptor (a plain file name), so a descriptor cannot make kensa read other files
/// of the host; snapshots (a parent disk) are refused.
fn vmdk_descriptor(file: &dyn BlockDev, path: &Path, counters: Arc<Counters>) -> io::Result<Arc<dyn BlockDev>> {
    let name = format!("vmdk descriptor {}", path.display());
    if file.size() > MAX_DESCRIPTOR {
        return Err(corrupt(format!("{name}: {} bytes is too large for a descriptor file", file.size())));
    }
    let text = String::from_utf8_lossy(&read_vec(file, 0, file.size(), MAX_DESCRIPTOR, "vmdk descriptor")?).into_owned();
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut segments: Vec<(u64, u64, Arc<dyn BlockDev>, u64)> = Vec::new();
    let mut pos = 0u64;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = || format!("{name}, line {}", n + 1);
        if let Some(v) = line.strip_prefix("parentCID=") {
            if !v.trim().eq_ignore_ascii_case("ffffffff") {
                return Err(unsupported("a VMDK snapshot (a delta disk that needs its parent); convert it with `qemu-img convert -O raw`"));
            }
            continue;
        }
        let mut words = line.split_whitespace();
        if !matches!(words.next(), Some("RW" | "RDONLY" | "NOACCESS")) {
            continue; // comments, `key=value` lines, the disk database
        }
        let sectors: u64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(|| corrupt(format!("{}: extent size is not a number", at())))?;
        let kind = words.next().ok_or_else(|| corrupt(format!("{}: extent type missing", at())))?;
        let len = sectors.checked_mul(SECTOR).ok_or_else(|| corrupt(format!("{}: extent size overflows", at())))?;
        // The quoted file name, then (flat extents) the offset in sectors.
        let (extent, rest) = match line.split_once('"').and_then(|(_, r)| r.split_once('"')) {
            Some((f, rest)) => (Some(f), rest),
            None => (None, ""),
        };
        let open_extent = |f: &str| -> io::Result<FileDev> {
            if f.is_empty() || f.contains('/') || f.contains('\\') || f == "." || f == ".." {
                return Err(unsupported(&format!("a VMDK extent \"{f}\" outside the descriptor's directory ({})", at())));
            }
            FileDev::open(&dir.join(f), counters.clone())
        };
        let dev: Arc<dyn BlockDev> = match (kind, extent) {
            ("FLAT" | "VMFS", Some(f)) => Arc::new(open_extent(f)?),
            ("SPARSE", Some(f)) => {
                let extent_path = dir.join(f);
                let raw: Arc<dyn BlockDev> = Arc::new(open_extent(f)?);
                if detect(&*raw)? != ImageFormat::VmdkSparse {
                    return Err(corrupt(format!("{}: sparse extent {f} is not a hosted sparse extent", at())));
                }
                Arc::new(VmdkSparse::open(raw, &extent_path)?)
            }
            ("ZERO", _) => Arc::new(ZeroDev(len)),
            ("FLAT" | "VMFS" | "SPARSE", None) => return Err(corrupt(format!("{}: extent file name missing", at()))),
            (other, _) => return Err(unsupported(&format!("VMDK extent type {other} ({})", at()))),
        };
        let offset = match (kind, rest.split_whitespace().next()) {
            ("FLAT" | "VMFS", Some(o)) => o.parse::<u64>().ok().and_then(|o| o.checked_mul(SECTOR)).ok_or_else(|| corrupt(format!("{}: extent offset {o} is invalid", at())))?,
            _ => 0,
        };
        if segments.len() == MAX_EXTENTS {
            return Err(corrupt(format!("{name}: more than {MAX_EXTENTS} extents")));
        }
        segments.push((pos, len, dev, offset));
        pos = pos.checked_add(len).ok_or_else(|| corrupt(format!("{}: disk size overflows", at())))?;
    }
    if segments.is_empty() {
        return Err(corrupt(format!("{name}: no extents")));
    }
    Ok(Arc::new(crate::block::ConcatDev::new(segments, name)?))
}

// ------------------------------------------------------------------------------------------- vhdx

/// A GUID as VHDX stores it (the first three fields little-endian).
const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let (a, b, c) = (a.to_le_bytes(), b.to_le_bytes(), c.to_le_bytes());
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

const VHDX_BAT: [u8; 16] = guid(0x2DC2_7766, 0xF623, 0x4200, [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08]);
const VHDX_METADATA: [u8; 16] = guid(0x8B7C_A206, 0x4790, 0x4B9A, [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E]);
const VHDX_FILE_PARAMETERS: [u8; 16] = guid(0xCAA1_6737, 0xFA36, 0x4D43, [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B]);
const VHDX_DISK_SIZE: [u8; 16] = guid(0x2FA5_4224, 0xCD1B, 0x4876, [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8]);
const VHDX_DISK_ID: [u8; 16] = guid(0xBECA_12AB, 0xB2E6, 0x4523, [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46]);
const VHDX_LOGICAL_SECTOR: [u8; 16] = guid(0x8141_BF1D, 0xA96F, 0x4709, [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F]);
const VHDX_PHYSICAL_SECTOR: [u8; 16] = guid(0xCDA3_48C7, 0x445D, 0x4471, [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56]);
const VHDX_PARENT_LOCATOR: [u8; 16] = guid(0xA8D3_5F2D, 0xB30B, 0x454D, [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C]);
/// BAT entries per cached page (4 KiB of the table).
const VHDX_BAT_PAGE: u64 = 512;

/// Whether a VHDX structure's CRC-32C (at offset 4, computed with that field zeroed) holds.
fn vhdx_checksum_ok(mut block: Vec<u8>) -> bool {
    let want = le32(&block, 4);
    block[4..8].fill(0);
    crc32c(&block) == want
}

/// Hyper-V's VHDX (MS-VHDX), fixed or dynamic: two checksummed headers, a region table locating
/// the block allocation table and the metadata (block size, disk size, sector size), payload
/// blocks of 1-256 MiB at MiB offsets. Differencing disks and files with a log still to replay
/// are refused: reading them correctly needs the parent, or writing.
pub struct Vhdx {
    file: Arc<dyn BlockDev>,
    name: String,
    size: u64,
    block_size: u64,
    chunk_ratio: u64,
    bat_offset: u64,
    bat_entries: u64,
    bat_pages: Mutex<Lru<Arc<Vec<u64>>>>,
}

impl Vhdx {
    fn open(file: Arc<dyn BlockDev>, path: &Path) -> io::Result<Self> {
        let name = format!("vhdx {}", path.display());
        // The current header: the valid one (signature and checksum) with the higher sequence number.
        let mut header: Option<(u64, Vec<u8>)> = None;
        for off in [64u64 << 10, 128 << 10] {
            let Ok(h) = read_vec(&*file, off, 4096, 4096, "vhdx header") else { continue };
            if h.len() == 4096 && h.starts_with(b"head") && vhdx_checksum_ok(h.clone()) {
                let seq = le64(&h, 8);
                if header.as_ref().is_none_or(|(s, _)| seq > *s) {
                    header = Some((seq, h));
                }
            }
        }
        let Some((_, h)) = header else {
            return Err(corrupt(format!("{name}: no valid header at offset 65536 or 131072 (signature or CRC-32C wrong)")));
        };
        if le16(&h, 66) != 1 {
            return Err(unsupported(&format!("VHDX version {} (header field at offset 66)", le16(&h, 66))));
        }
        if h[48..64].iter().any(|&b| b != 0) {
            return Err(unsupported("a VHDX with a log still to replay (not closed cleanly); open it once in Hyper-V or `qemu-img check -r all` a copy"));
        }
        // The region table: either copy that validates.
        let mut regions = None;
        for off in [192u64 << 10, 256 << 10] {
            let Ok(t) = read_vec(&*file, off, 64 << 10, 64 << 10, "vhdx region table") else { continue };
            if t.len() == 64 << 10 && t.starts_with(b"regi") && vhdx_checksum_ok(t.clone()) {
                regions = Some((off, t));
                break;
            }
        }
        let Some((table_off, t)) = regions else {
            return Err(corrupt(format!("{name}: no valid region table at offset 196608 or 262144")));
        };
        let count = le32(&t, 8) as usize;
        if count > 2047 {
            return Err(corrupt(format!("{name}: region table at offset {table_off} claims {count} entries (at most 2047)")));
        }
        let (mut bat, mut metadata) = (None, None);
        for e in t[16..16 + count * 32].chunks_exact(32) {
            let (off, len) = (le64(e, 16), le32(e, 24) as u64);
            match <[u8; 16]>::try_from(&e[..16]).unwrap() {
                VHDX_BAT => bat = Some((off, len)),
                VHDX_METADATA => metadata = Some((off, len)),
                _ if le32(e, 28) & 1 != 0 => return Err(unsupported("a VHDX with a required region kensa does not know")),
                _ => {}
            }
        }
        let (Some((bat_offset, bat_len)), Some((meta_off, meta_len))) = (bat, metadata) else {
            return Err(corrupt(format!("{name}: region table at offset {table_off} lacks the BAT or the metadata region")));
        };
        if meta_len < 64 << 10 || meta_off.checked_add(meta_len).is_none_or(|e| e > file.size()) {
            return Err(corrupt(format!("{name}: metadata region ({meta_len} bytes at offset {meta_off}) does not fit the file")));
        }
        let m = read_vec(&*file, meta_off, 64 << 10, 64 << 10, &format!("{name}: metadata table"))?;
        if !m.starts_with(b"metadata") {
            return Err(corrupt(format!("{name}: no metadata table at offset {meta_off}")));
        }
        let items = le16(&m, 10) as usize;
        if items > 2047 {
            return Err(corrupt(format!("{name}: metadata table at offset {meta_off} claims {items} entries (at most 2047)")));
        }
        let item = |id: [u8; 16], len: usize| -> io::Result<Option<Vec<u8>>> {
            let Some(e) = m[32..32 + items * 32].chunks_exact(32).find(|e| e[..16] == id && le32(e, 24) & 1 == 0) else { return Ok(None) };
            let (off, have) = (le32(e, 16) as u64, le32(e, 20) as usize);
            if have < len || off.checked_add(len as u64).is_none_or(|end| end > meta_len) {
                return Err(corrupt(format!("{name}: metadata item ({have} bytes at offset {off} of the region at {meta_off}) is invalid")));
            }
            read_vec(&*file, meta_off + off, len as u64, len as u64, "vhdx metadata item").map(Some)
        };
        let params = item(VHDX_FILE_PARAMETERS, 8)?.ok_or_else(|| corrupt(format!("{name}: no file parameters in the metadata")))?;
        let size = item(VHDX_DISK_SIZE, 8)?.map(|b| le64(&b, 0)).ok_or_else(|| corrupt(format!("{name}: no virtual disk size in the metadata")))?;
        let sector = item(VHDX_LOGICAL_SECTOR, 4)?.map_or(512, |b| le32(&b, 0) as u64);
        if le32(&params, 4) & 2 != 0 || item(VHDX_PARENT_LOCATOR, 0)?.is_some() {
            return Err(unsupported("a differencing VHDX (it needs its parent); convert it with `qemu-img convert -O raw`"));
        }
        let known = [VHDX_FILE_PARAMETERS, VHDX_DISK_SIZE, VHDX_DISK_ID, VHDX_LOGICAL_SECTOR, VHDX_PHYSICAL_SECTOR, VHDX_PARENT_LOCATOR];
        if m[32..32 + items * 32].chunks_exact(32).any(|e| le32(e, 24) & 4 != 0 && !known.iter().any(|k| e[..16] == *k)) {
            return Err(unsupported("a VHDX with a required metadata item kensa does not know"));
        }
        let block_size = le32(&params, 0) as u64;
        if !((1 << 20)..=(256 << 20)).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(corrupt(format!("{name}: block size {block_size} in the file parameters is invalid")));
        }
        if sector != 512 && sector != 4096 {
            return Err(corrupt(format!("{name}: logical sector size {sector} is invalid")));
        }
        if size == 0 || size > 64 << 40 || size % sector != 0 {
            return Err(corrupt(format!("{name}: virtual disk size {size} is invalid")));
        }
        let chunk_ratio = ((1u64 << 23) * sector) / block_size;
        let data_blocks = size.div_ceil(block_size);
        let bat_entries = data_blocks + (data_blocks - 1) / chunk_ratio;
        if bat_entries * 8 > bat_len || bat_offset.checked_add(bat_entries * 8).is_none_or(|e| e > file.size()) {
            return Err(corrupt(format!("{name}: the BAT ({bat_len} bytes at offset {bat_offset}) cannot hold the {bat_entries} entries of a {size}-byte disk")));
        }
        Ok(Vhdx { file, name, size, block_size, chunk_ratio, bat_offset, bat_entries, bat_pages: Mutex::new(Lru::new(64)) })
    }

    /// The BAT entry of payload block `block` (sector bitmap entries interleave after every
    /// `chunk_ratio` payload entries).
    fn bat_entry(&self, block: u64) -> io::Result<u64> {
        let index = block + block / self.chunk_ratio;
        if index >= self.bat_entries {
            return Ok(0);
        }
        let page = index / VHDX_BAT_PAGE;
        let entries = get_or_load(&self.bat_pages, page, || {
            let first = page * VHDX_BAT_PAGE;
            let n = VHDX_BAT_PAGE.min(self.bat_entries - first);
            let raw = read_vec(&*self.file, self.bat_offset + first * 8, n * 8, VHDX_BAT_PAGE * 8, &format!("{}: BAT", self.name))?;
            Ok(Arc::new(raw.chunks_exact(8).map(|c| le64(c, 0)).collect::<Vec<u64>>()))
        })?;
        entries.get((index % VHDX_BAT_PAGE) as usize).copied().ok_or_else(|| corrupt(format!("{}: BAT truncated at entry {index}", self.name)))
    }
}

impl BlockDev for Vhdx {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self, off, buf.len())?;
        read_pieces(off, buf, self.block_size, |off, piece| {
            let block = off / self.block_size;
            let entry = self.bat_entry(block)?;
            match entry & 7 {
                // Not present, undefined, zero, unmapped: no data in the file; zeros.
                0..=3 => {
                    piece.fill(0);
                    Ok(())
                }
                6 => {
                    let host = (entry >> 20).checked_mul(1 << 20).and_then(|b| b.checked_add(off % self.block_size));
                    match host {
                        Some(host) if host >= 1 << 20 && host.checked_add(piece.len() as u64).is_some_and(|e| e <= self.file.size()) => self.file.read_at(host, piece),
                        _ => Err(corrupt(format!("{}: BAT entry of block {block} points outside the file ({:#x})", self.name, entry))),
                    }
                }
                state => Err(corrupt(format!("{}: BAT entry of block {block} has state {state}, invalid in a fixed or dynamic VHDX", self.name))),
            }
        })
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::Ordering;

    /// A 64 KiB grain of mixed content (text-like and pseudo-random) as a zlib stream in a
    /// counting in-memory device.
    fn grain_image() -> (Vec<u8>, Arc<Counters>, FileLike) {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let grain: Vec<u8> = (0..65536usize)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 4096) % 2 == 0 { b"directory entry "[i % 16] } else { x as u8 }
            })
            .collect();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&grain).unwrap();
        let counters = Arc::new(Counters::default());
        (grain, counters.clone(), FileLike { data: z.finish().unwrap(), counters })
    }

    fn fresh() -> flate2::Decompress {
        flate2::Decompress::new(true)
    }

    struct FileLike {
        data: Vec<u8>,
        counters: Arc<Counters>,
    }
    impl BlockDev for FileLike {
        fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
            self.data.read_at(off, buf)?;
            self.counters.bytes_read.fetch_add(buf.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn describe(&self) -> String {
            "grain".into()
        }
    }

    #[test]
    fn grains_are_inflated_only_as_far_as_reads_need() {
        let (grain, counters, file) = grain_image();
        let clen = file.data.len();
        let mut g = PartialGrain::new(clen, grain.len(), fresh());
        g.inflate_to(4096, &file, 0, &Mutex::default()).unwrap();
        assert_eq!(&g.out[..4096], &grain[..4096]);
        let first = counters.bytes_read.load(Ordering::Relaxed) as usize;
        assert!(first < clen / 4, "read {first} of {clen} compressed bytes for the first 4 KiB");
        // Further reads continue the stream: every compressed byte is read once at most.
        let spare = Mutex::default();
        g.inflate_to(20_000, &file, 0, &spare).unwrap();
        assert!(spare.lock().unwrap().is_empty());
        g.inflate_to(65_536, &file, 0, &spare).unwrap();
        assert_eq!(g.out, grain);
        assert!(g.dec.is_none() && spare.lock().unwrap().len() == 1, "a completed grain's decompressor is kept for reuse");
        assert_eq!(counters.bytes_read.load(Ordering::Relaxed) as usize, clen);
    }

    #[test]
    fn an_evicted_half_read_grain_is_not_read_again() {
        let (grain, counters, file) = grain_image();
        let mut g = PartialGrain::new(file.data.len(), grain.len(), fresh());
        g.inflate_to(8192, &file, 0, &Mutex::default()).unwrap();
        let read = counters.bytes_read.load(Ordering::Relaxed);
        let mut spilled = SpilledGrains::default();
        spilled.put(7, g.compressed.clone(), g.compressed_len, g.grain);
        let mut again = spilled.take(7, fresh).unwrap();
        assert!(spilled.take(7, fresh).is_none());
        again.inflate_to(8192, &file, 0, &Mutex::default()).unwrap();
        assert_eq!(&again.out[..8192], &grain[..8192]);
        assert_eq!(counters.bytes_read.load(Ordering::Relaxed), read);
        again.inflate_to(65_536, &file, 0, &Mutex::default()).unwrap();
        assert_eq!(again.out, grain);
        // The spill store stays within its byte budget, oldest first out.
        for host in 0..10_000u64 {
            spilled.put(host, vec![0; 4096], 5000, 65536);
        }
        assert!(spilled.bytes <= SPILLED_BYTES && spilled.take(0, fresh).is_none() && spilled.take(9_999, fresh).is_some());
        assert!(spilled.order.len() <= 2 * spilled.map.len() + 1024);
    }

    #[test]
    fn truncated_or_corrupt_grains_are_errors() {
        let (grain, _, mut file) = grain_image();
        file.data.truncate(file.data.len() / 2);
        let mut g = PartialGrain::new(file.data.len(), grain.len(), fresh());
        g.inflate_to(100, &file, 0, &Mutex::default()).unwrap();
        let e = g.inflate_to(65_536, &file, 0, &Mutex::default()).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let (grain, _, mut file) = grain_image();
        file.data[0] = 0x12; // not a zlib header
        let e = PartialGrain::new(file.data.len(), grain.len(), fresh()).inflate_to(100, &file, 0, &Mutex::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
