//! A small, read-only zip reader for Java archives and Python eggs.
//!
//! Written here instead of using the `zip` crate: we need only the central directory and a handful
//! of entries (manifest, pom.properties, nested archives), with hard limits on every read so a
//! hostile archive (zip bomb, lying sizes, truncated file) costs bounded memory and time, and
//! nothing is ever extracted to disk. The `zip` crate reads eagerly into its own index types, has
//! changed its major version many times in short order, and gives no per-archive inflate budget.
//! Inflating is done by `flate2` (miniz_oxide backend).

use std::io::{self, Read, Seek, SeekFrom};

use flate2::read::DeflateDecoder;

/// Largest central directory we read (bytes). Real JARs with 100k entries stay far below.
pub const MAX_CENTRAL_DIRECTORY: u64 = 64 << 20;
/// Bytes at the end of an archive searched first for the end-of-central-directory record.
const FIRST_TAIL_READ: u64 = 4096;
/// Largest number of entries we index.
pub const MAX_ENTRIES: usize = 500_000;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;

/// One central-directory entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Name as stored (lossy UTF-8; `/` separated).
    pub name: String,
    pub method: u16,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Offset of the local file header, relative to the start of the zip data.
    local_header_offset: u64,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// Why a zip could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("not a zip archive (no end-of-central-directory record)")]
    NotZip,
    #[error("corrupt zip: {0}")]
    Corrupt(String),
    #[error("entry {name}: {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("archive inflates to more than {0} bytes in total (zip bomb?)")]
    BudgetExhausted(u64),
    #[error("entry {name}: unsupported compression method {method}")]
    Unsupported { name: String, method: u16 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Counts bytes inflated across one top-level archive and everything nested in it.
#[derive(Debug)]
pub struct InflateBudget {
    limit: u64,
    used: u64,
}

impl InflateBudget {
    pub fn new(limit: u64) -> Self {
        InflateBudget { limit, used: 0 }
    }
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
    /// Charges `n` bytes made available without inflating (a stored nested archive read in place).
    pub fn charge(&mut self, n: u64) -> Result<(), ZipError> {
        if n > self.remaining() {
            return Err(ZipError::BudgetExhausted(self.limit));
        }
        self.used += n;
        Ok(())
    }
}

/// An opened archive: the reader and its central directory.
pub struct ZipArchive<R> {
    reader: R,
    /// Bytes before the zip data (self-extracting stubs, launch scripts of executable JARs).
    base: u64,
    pub entries: Vec<Entry>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn corrupt(msg: impl Into<String>) -> ZipError {
    ZipError::Corrupt(msg.into())
}

impl<R: Read + Seek> ZipArchive<R> {
    /// Reads the central directory (only it: entries are read on demand).
    pub fn new(mut reader: R) -> Result<Self, ZipError> {
        let len = reader.seek(SeekFrom::End(0))?;
        if len < 22 {
            return Err(ZipError::NotZip);
        }
        // EOCD is 22 bytes plus a comment of at most 65535 bytes at the very end. Archives rarely
        // have a comment: look in the last block first, and read the whole 64 KiB window only
        // when the record is not there (on a disk image every byte read counts).
        let mut tail = Vec::new();
        let mut tail_start = len;
        let mut eocd_rel = None;
        for window in [FIRST_TAIL_READ, 22 + 65535] {
            let tail_len = len.min(window);
            if tail_len <= len - tail_start {
                break;
            }
            tail_start = len - tail_len;
            tail = vec![0u8; tail_len as usize];
            reader.seek(SeekFrom::Start(tail_start))?;
            reader.read_exact(&mut tail)?;
            eocd_rel = (0..=tail.len() - 22).rev().find(|&i| u32_at(&tail, i) == EOCD_SIG);
            if eocd_rel.is_some() {
                break;
            }
        }
        let eocd_rel = eocd_rel.ok_or(ZipError::NotZip)?;
        let eocd_pos = tail_start + eocd_rel as u64;
        let e = &tail[eocd_rel..];
        let mut total = u16_at(e, 10) as u64;
        let mut cd_size = u32_at(e, 12) as u64;
        let mut cd_offset = u32_at(e, 16) as u64;
        let mut cd_end = eocd_pos;
        if total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            // Zip64: the locator sits just before the EOCD.
            if eocd_pos >= 20 {
                let mut loc = [0u8; 20];
                reader.seek(SeekFrom::Start(eocd_pos - 20))?;
                reader.read_exact(&mut loc)?;
                if u32_at(&loc, 0) == ZIP64_LOCATOR_SIG {
                    let rec_off = u64_at(&loc, 8);
                    let mut rec = [0u8; 56];
                    // The record offset does not include prepended data; search near the locator.
                    let rec_pos = if eocd_pos >= 20 + 56 { eocd_pos - 20 - 56 } else { rec_off };
                    reader.seek(SeekFrom::Start(rec_pos))?;
                    reader.read_exact(&mut rec)?;
                    if u32_at(&rec, 0) != ZIP64_EOCD_SIG {
                        return Err(corrupt("zip64 end-of-central-directory record not found"));
                    }
                    total = u64_at(&rec, 32);
                    cd_size = u64_at(&rec, 40);
                    cd_offset = u64_at(&rec, 48);
                    cd_end = rec_pos;
                }
            }
        }
        if cd_size > MAX_CENTRAL_DIRECTORY {
            return Err(ZipError::TooLarge { name: "central directory".into(), size: cd_size, limit: MAX_CENTRAL_DIRECTORY });
        }
        if cd_size > cd_end {
            return Err(corrupt(format!("central directory of {cd_size} bytes does not fit before offset {cd_end}")));
        }
        let cd_start = cd_end - cd_size;
        let base = cd_start.checked_sub(cd_offset).ok_or_else(|| corrupt("central directory offset points past its own position"))?;
        let mut cd = vec![0u8; cd_size as usize];
        reader.seek(SeekFrom::Start(cd_start))?;
        reader.read_exact(&mut cd).map_err(|e| corrupt(format!("truncated central directory: {e}")))?;
        let mut entries = Vec::with_capacity((total as usize).min(MAX_ENTRIES).min(cd.len() / 46 + 1));
        let mut pos = 0usize;
        while pos + 46 <= cd.len() {
            if u32_at(&cd, pos) != CDH_SIG {
                return Err(corrupt(format!("bad central directory header at offset {}", cd_start + pos as u64)));
            }
            let h = &cd[pos..];
            let method = u16_at(h, 10);
            let mut compressed_size = u32_at(h, 20) as u64;
            let mut uncompressed_size = u32_at(h, 24) as u64;
            let name_len = u16_at(h, 28) as usize;
            let extra_len = u16_at(h, 30) as usize;
            let comment_len = u16_at(h, 32) as usize;
            let mut local_header_offset = u32_at(h, 42) as u64;
            let end = 46 + name_len + extra_len + comment_len;
            if pos + end > cd.len() {
                return Err(corrupt("central directory entry runs past its end"));
            }
            let name = String::from_utf8_lossy(&h[46..46 + name_len]).into_owned();
            // Zip64 extended information replaces the 0xFFFFFFFF fields, in order.
            let mut extra = &h[46 + name_len..46 + name_len + extra_len];
            while extra.len() >= 4 {
                let id = u16_at(extra, 0);
                let size = (u16_at(extra, 2) as usize).min(extra.len() - 4);
                if id == 0x0001 {
                    let mut f = &extra[4..4 + size];
                    let mut take = |v: &mut u64| {
                        if *v == 0xFFFF_FFFF && f.len() >= 8 {
                            *v = u64_at(f, 0);
                            f = &f[8..];
                        }
                    };
                    take(&mut uncompressed_size);
                    take(&mut compressed_size);
                    take(&mut local_header_offset);
                }
                extra = &extra[4 + size..];
            }
            entries.push(Entry { name, method, compressed_size, uncompressed_size, local_header_offset });
            if entries.len() > MAX_ENTRIES {
                return Err(corrupt(format!("more than {MAX_ENTRIES} entries")));
            }
            pos += end;
        }
        Ok(ZipArchive { reader, base, entries })
    }

    /// Reads one entry into memory, refusing more than `limit` bytes and charging `budget`.
    /// Declared sizes are not trusted: inflation stops at the limit whatever the header says.
    pub fn read(&mut self, index: usize, limit: u64, budget: &mut InflateBudget) -> Result<Vec<u8>, ZipError> {
        let e = &self.entries[index];
        if e.uncompressed_size > limit {
            return Err(ZipError::TooLarge { name: e.name.clone(), size: e.uncompressed_size, limit });
        }
        if e.uncompressed_size > budget.remaining() {
            return Err(ZipError::BudgetExhausted(budget.limit));
        }
        let (name, method, csize) = (e.name.clone(), e.method, e.compressed_size);
        let mut lfh = [0u8; 30];
        let start = self.base.checked_add(e.local_header_offset).ok_or_else(|| corrupt("entry offset overflows"))?;
        self.reader.seek(SeekFrom::Start(start))?;
        self.reader.read_exact(&mut lfh).map_err(|err| corrupt(format!("entry {name}: truncated local header: {err}")))?;
        if u32_at(&lfh, 0) != LFH_SIG {
            return Err(corrupt(format!("entry {name}: bad local header signature")));
        }
        let skip = 30 + u16_at(&lfh, 26) as u64 + u16_at(&lfh, 28) as u64;
        self.reader.seek(SeekFrom::Start(start + skip))?;
        let cap = limit.min(budget.remaining());
        let raw = (&mut self.reader).take(csize);
        let mut out = Vec::with_capacity(e_size_hint(self.entries[index].uncompressed_size, cap));
        let n = match method {
            0 => raw.take(cap + 1).read_to_end(&mut out),
            8 => DeflateDecoder::new(raw).take(cap + 1).read_to_end(&mut out),
            m => return Err(ZipError::Unsupported { name, method: m }),
        }
        .map_err(|err| corrupt(format!("entry {name}: {err}")))? as u64;
        budget.used += n.min(cap);
        if n > cap {
            return Err(if cap < limit {
                ZipError::BudgetExhausted(budget.limit)
            } else {
                ZipError::TooLarge { name, size: n, limit }
            });
        }
        if method == 0 && n < csize {
            return Err(corrupt(format!("entry {name}: truncated ({n} of {csize} bytes)")));
        }
        Ok(out)
    }

    /// Where a stored (uncompressed) entry's bytes lie in the reader: `(offset, length)`. Lets a
    /// nested archive stored as is (Spring Boot's `BOOT-INF/lib`) be read in place through a
    /// [`Window`] instead of being copied into memory. `None` for compressed entries.
    pub fn stored_range(&mut self, index: usize) -> Result<Option<(u64, u64)>, ZipError> {
        let e = &self.entries[index];
        if e.method != 0 || e.compressed_size != e.uncompressed_size {
            return Ok(None);
        }
        let (name, size) = (e.name.clone(), e.compressed_size);
        let start = self.base.checked_add(e.local_header_offset).ok_or_else(|| corrupt("entry offset overflows"))?;
        let mut lfh = [0u8; 30];
        self.reader.seek(SeekFrom::Start(start))?;
        self.reader.read_exact(&mut lfh).map_err(|err| corrupt(format!("entry {name}: truncated local header: {err}")))?;
        if u32_at(&lfh, 0) != LFH_SIG {
            return Err(corrupt(format!("entry {name}: bad local header signature")));
        }
        let data = start + 30 + u16_at(&lfh, 26) as u64 + u16_at(&lfh, 28) as u64;
        let end = self.reader.seek(SeekFrom::End(0))?;
        if !matches!(data.checked_add(size), Some(e) if e <= end) {
            return Err(corrupt(format!("entry {name}: runs past the end of the archive")));
        }
        Ok(Some((data, size)))
    }

    /// The underlying reader (to open a [`Window`] on a stored entry).
    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Index of the entry named exactly `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }
}

fn e_size_hint(declared: u64, cap: u64) -> usize {
    declared.min(cap).min(1 << 20) as usize
}

/// A read-only view of `len` bytes of `inner` starting at `start`, itself seekable: a stored
/// nested archive read in place.
pub struct Window<R> {
    inner: R,
    start: u64,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Window<R> {
    pub fn new(inner: R, start: u64, len: u64) -> Self {
        Window { inner, start, len, pos: 0 }
    }
}

impl<R: Read + Seek> Read for Window<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(left) as usize;
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Window<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) => {
                self.pos = t;
                Ok(t)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the window")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A zip of stored entries with an archive comment (CRCs are left zero: the reader does not
    /// check them).
    fn stored_zip(entries: &[(&str, &[u8])], comment: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let header = |sig: u32, central: bool| {
                let mut h = sig.to_le_bytes().to_vec();
                if central {
                    h.extend_from_slice(&20u16.to_le_bytes()); // made by
                }
                h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method 0, time, date, crc
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(name.len() as u16).to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes()); // extra
                if central {
                    h.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
                    h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                    h.extend_from_slice(&offset.to_le_bytes());
                }
                h.extend_from_slice(name.as_bytes());
                h
            };
            let local = header(LFH_SIG, false);
            cd.extend(header(CDH_SIG, true));
            out.extend(local);
            out.extend_from_slice(data);
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        out.extend_from_slice(comment);
        out
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }
    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn opening_reads_the_last_block_and_the_central_directory_only() {
        let big = vec![7u8; 1 << 20];
        let zip = stored_zip(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"), ("lib/big.bin", &big)], b"");
        let mut reader = Counting { inner: Cursor::new(zip), read: 0 };
        let mut archive = ZipArchive::new(&mut reader).unwrap();
        assert_eq!(archive.entries.len(), 2);
        let manifest = archive.read(0, 1 << 10, &mut InflateBudget::new(1 << 20)).unwrap();
        assert_eq!(manifest, b"Manifest-Version: 1.0\n");
        assert!(reader.read < FIRST_TAIL_READ + 200, "read {} bytes", reader.read);
    }

    #[test]
    fn a_long_archive_comment_is_searched_past_the_last_block() {
        let zip = stored_zip(&[("a.txt", b"hello")], &vec![b'x'; 10_000]);
        let mut archive = ZipArchive::new(Cursor::new(zip)).unwrap();
        assert_eq!(archive.entries[0].name, "a.txt");
        assert_eq!(archive.read(0, 100, &mut InflateBudget::new(100)).unwrap(), b"hello");
        let no_eocd = vec![0u8; 70_000];
        assert!(matches!(ZipArchive::new(Cursor::new(no_eocd)), Err(ZipError::NotZip)));
        assert!(matches!(ZipArchive::new(Cursor::new(vec![0u8; 30])), Err(ZipError::NotZip)));
    }
}
