//! A file's data described as byte extents over a device, read lazily through `Read + Seek`.
//! Shared by the ext4 and xfs readers: holes and unwritten extents read as zeros.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use crate::block::{corrupt, BlockDev};

/// One mapped range of a file, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Offset in the file.
    pub logical: u64,
    pub len: u64,
    /// Offset on the device, or `None` for an unwritten (reads-as-zero) extent.
    pub physical: Option<u64>,
}

/// Most extents we keep for one file (24 bytes each): bounds memory on hostile extent trees.
pub const MAX_EXTENTS: usize = 1 << 20;

/// Sorts extents, checks they do not overlap and lie on the device.
pub fn validate(mut extents: Vec<Extent>, dev: &dyn BlockDev, what: &str) -> io::Result<Vec<Extent>> {
    extents.sort_by_key(|e| e.logical);
    let mut end = 0u64;
    for e in &extents {
        if e.logical < end {
            return Err(corrupt(format!("{what}: extent at file offset {} overlaps the previous one", e.logical)));
        }
        end = e.logical.checked_add(e.len).ok_or_else(|| corrupt(format!("{what}: extent length overflows")))?;
        if let Some(p) = e.physical {
            if p.checked_add(e.len).is_none_or(|x| x > dev.size()) {
                return Err(corrupt(format!(
                    "{what}: extent at file offset {} maps {} bytes at device offset {p}, past the end of the filesystem ({} bytes)",
                    e.logical,
                    e.len,
                    dev.size()
                )));
            }
        }
    }
    Ok(extents)
}

enum Data {
    Extents(Arc<Vec<Extent>>),
    Inline(Arc<Vec<u8>>),
}

/// A readable, seekable file over a device.
pub struct ExtentFile {
    dev: Arc<dyn BlockDev>,
    data: Data,
    size: u64,
    pos: u64,
}

impl ExtentFile {
    pub fn new(dev: Arc<dyn BlockDev>, extents: Vec<Extent>, size: u64) -> Self {
        ExtentFile { dev, data: Data::Extents(Arc::new(extents)), size, pos: 0 }
    }
    pub fn inline(dev: Arc<dyn BlockDev>, data: Vec<u8>) -> Self {
        let size = data.len() as u64;
        ExtentFile { dev, data: Data::Inline(Arc::new(data)), size, pos: 0 }
    }

    /// Reads at `pos` into `buf` without moving the cursor; returns bytes read (0 at the end).
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(pos, buf, false)
    }

    /// [`ExtentFile::read_at`] through [`BlockDev::read_once`]: for bytes not read again.
    pub fn read_once_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(pos, buf, true)
    }

    /// Fills `buf` from `pos` through [`BlockDev::read_once`] (a read may stop at an extent's
    /// end; this goes on to the next one). Reading past the end of the file is an error.
    pub fn read_once_exact_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.read_with(pos + got as u64, &mut buf[got..], true)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("read of {} bytes at offset {pos} passes the end of the file ({} bytes)", buf.len(), self.size),
                    ))
                }
                n => got += n,
            }
        }
        Ok(())
    }

    fn read_with(&self, pos: u64, buf: &mut [u8], once: bool) -> io::Result<usize> {
        if pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = ((self.size - pos) as usize).min(buf.len());
        let buf = &mut buf[..want];
        match &self.data {
            Data::Inline(d) => {
                let n = (d.len() - (pos as usize).min(d.len())).min(want);
                buf[..n].copy_from_slice(&d[pos as usize..pos as usize + n]);
                buf[n..].fill(0);
                Ok(want)
            }
            Data::Extents(ext) => {
                let i = ext.partition_point(|e| e.logical + e.len <= pos);
                match ext.get(i) {
                    Some(e) if e.logical <= pos => {
                        let within = pos - e.logical;
                        let n = ((e.len - within) as usize).min(want);
                        match e.physical {
                            Some(p) if once => self.dev.read_once(p + within, &mut buf[..n])?,
                            Some(p) => self.dev.read_at(p + within, &mut buf[..n])?,
                            None => buf[..n].fill(0),
                        }
                        Ok(n)
                    }
                    next => {
                        // A hole up to the next extent.
                        let hole_end = next.map_or(self.size, |e| e.logical);
                        let n = ((hole_end - pos) as usize).min(want);
                        buf[..n].fill(0);
                        Ok(n)
                    }
                }
            }
        }
    }

    /// The device offset holding the file's byte at `pos`, or `None` for a hole, an unwritten
    /// extent, inline data or a position past the end.
    pub fn physical(&self, pos: u64) -> Option<u64> {
        let Data::Extents(ext) = &self.data else { return None };
        let e = ext.get(ext.partition_point(|e| e.logical + e.len <= pos))?;
        (e.logical <= pos && pos < self.size).then_some(e.physical? + (pos - e.logical))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the whole content, refusing files above `cap` bytes.
    pub fn read_all(&self, cap: u64, what: &str) -> io::Result<Vec<u8>> {
        if self.size > cap {
            return Err(corrupt(format!("{what}: size {} exceeds the {cap}-byte limit", self.size)));
        }
        let mut out = vec![0u8; self.size as usize];
        let mut pos = 0;
        while pos < out.len() {
            let n = self.read_at(pos as u64, &mut out[pos..])?;
            if n == 0 {
                break;
            }
            pos += n;
        }
        Ok(out)
    }
}

impl Read for ExtentFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_once_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ExtentFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek to a negative or overflowing position")),
        }
    }
}
