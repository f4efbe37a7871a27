//! rpm's native "ndb" package database (`Packages.db`, SUSE since 2020), as rpm's
//! `lib/backend/ndb/rpmpkg.c` writes it. All integers are little-endian.
//!
//! The file starts with `slot_npages` pages of 4096 bytes holding 16-byte slots (`"Slot"`, package
//! index, block offset, block count); the first two slots' space is the file header (`"RpmP"`,
//! version 0, generation, slot page count, next package index). A slot points at a blob of 16-byte
//! blocks: a head (`"BlbS"`, package index, timestamp, length), the header blob, zero padding, and a
//! tail (adler32 of everything before the tail, length, `"BlbE"`). Packages are listed in block
//! order, as rpm lists them.

use std::io::{Read, Seek, SeekFrom};

use crate::{BlobRef, DbError, MAX_BLOB};

const PAGE_SIZE: u64 = 4096;
const SLOT_SIZE: usize = 16;
const BLK_SIZE: u64 = 16;
const HEADER_SLOTS: usize = 2; // the 32-byte file header occupies the first two slots
const BLOB_HEAD: usize = 16;
const BLOB_TAIL: usize = 12;
/// More slot pages than this (a million packages) is a corrupt header, not a database.
const MAX_SLOT_PAGES: u32 = 4096;

const fn magic(s: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*s)
}
pub(crate) const DB_MAGIC: u32 = magic(b"RpmP");
const SLOT_MAGIC: u32 = magic(b"Slot");
const BLOB_HEAD_MAGIC: u32 = magic(b"BlbS");
const BLOB_TAIL_MAGIC: u32 = magic(b"BlbE");

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

struct Slot {
    pkgidx: u32,
    blkoff: u32,
    blkcnt: u32,
}

pub(crate) struct Ndb<R> {
    reader: R,
    slots: std::vec::IntoIter<Slot>,
}

impl<R: Read + Seek> Ndb<R> {
    pub(crate) fn open(mut reader: R) -> Result<Self, DbError> {
        let file_len = reader.seek(SeekFrom::End(0)).map_err(|e| DbError::io("seeking", e))?;
        let mut header = [0u8; 32];
        reader.seek(SeekFrom::Start(0)).map_err(|e| DbError::io("seeking", e))?;
        reader.read_exact(&mut header).map_err(|e| DbError::io("reading the ndb header", e))?;
        if le32(&header, 0) != DB_MAGIC {
            return Err(DbError::corrupt("no ndb magic \"RpmP\""));
        }
        let version = le32(&header, 4);
        if version != 0 {
            return Err(DbError::corrupt(format!("unsupported ndb version {version}")));
        }
        let slot_npages = le32(&header, 12);
        if slot_npages == 0 || slot_npages > MAX_SLOT_PAGES {
            return Err(DbError::corrupt(format!("implausible slot page count {slot_npages}")));
        }
        if slot_npages as u64 * PAGE_SIZE > file_len {
            return Err(DbError::corrupt(format!("truncated: {slot_npages} slot pages do not fit in {file_len} bytes")));
        }
        let file_blocks = file_len / BLK_SIZE;
        let min_blkoff = slot_npages as u64 * (PAGE_SIZE / BLK_SIZE);
        let mut slots = Vec::new();
        let mut page = vec![0u8; PAGE_SIZE as usize];
        for p in 0..slot_npages as u64 {
            reader
                .seek(SeekFrom::Start(p * PAGE_SIZE))
                .and_then(|_| reader.read_exact(&mut page))
                .map_err(|e| DbError::io(format!("reading slot page {p}"), e))?;
            let first = if p == 0 { HEADER_SLOTS } else { 0 };
            for s in first..PAGE_SIZE as usize / SLOT_SIZE {
                let raw = &page[s * SLOT_SIZE..(s + 1) * SLOT_SIZE];
                let slotno = p as usize * (PAGE_SIZE as usize / SLOT_SIZE) + s;
                if le32(raw, 0) != SLOT_MAGIC {
                    return Err(DbError::corrupt(format!("slot {slotno} has no \"Slot\" magic")));
                }
                let slot = Slot { pkgidx: le32(raw, 4), blkoff: le32(raw, 8), blkcnt: le32(raw, 12) };
                if slot.blkoff == 0 {
                    continue; // free slot
                }
                if slot.pkgidx == 0 || slot.blkcnt == 0 || (slot.blkoff as u64) < min_blkoff {
                    return Err(DbError::corrupt(format!(
                        "slot {slotno} is invalid (package {}, block offset {}, {} blocks)",
                        slot.pkgidx, slot.blkoff, slot.blkcnt
                    )));
                }
                if slot.blkoff as u64 + slot.blkcnt as u64 > file_blocks {
                    return Err(DbError::corrupt(format!(
                        "truncated: package {} ends at block {} of a {file_blocks}-block file",
                        slot.pkgidx,
                        slot.blkoff as u64 + slot.blkcnt as u64
                    )));
                }
                slots.push(slot);
            }
        }
        slots.sort_by_key(|s| s.blkoff);
        Ok(Ndb { reader, slots: slots.into_iter() })
    }

    fn read_blob(&mut self, slot: &Slot) -> Result<Vec<u8>, DbError> {
        let idx = slot.pkgidx;
        let total = slot.blkcnt as u64 * BLK_SIZE;
        if total > (MAX_BLOB + BLOB_HEAD + BLOB_TAIL + BLK_SIZE as usize) as u64 {
            return Err(DbError::corrupt(format!("package {idx}: {total}-byte blob is over the header size limit")));
        }
        if total < (BLOB_HEAD + BLOB_TAIL) as u64 {
            return Err(DbError::corrupt(format!("package {idx}: blob of {} blocks is too small", slot.blkcnt)));
        }
        let mut buf = vec![0u8; total as usize];
        self.reader
            .seek(SeekFrom::Start(slot.blkoff as u64 * BLK_SIZE))
            .and_then(|_| self.reader.read_exact(&mut buf))
            .map_err(|e| DbError::io(format!("reading package {idx}"), e))?;
        if le32(&buf, 0) != BLOB_HEAD_MAGIC {
            return Err(DbError::corrupt(format!("package {idx}: blob has no \"BlbS\" head magic")));
        }
        if le32(&buf, 4) != idx {
            return Err(DbError::corrupt(format!("package {idx}: blob belongs to package {}", le32(&buf, 4))));
        }
        let len = le32(&buf, 12) as usize;
        let expected_blocks = (BLOB_HEAD + len + BLOB_TAIL).div_ceil(BLK_SIZE as usize);
        if expected_blocks != slot.blkcnt as usize {
            return Err(DbError::corrupt(format!("package {idx}: a {len}-byte blob cannot take {} blocks", slot.blkcnt)));
        }
        let tail = buf.len() - BLOB_TAIL;
        if le32(&buf, tail + 8) != BLOB_TAIL_MAGIC {
            return Err(DbError::corrupt(format!("package {idx}: blob has no \"BlbE\" tail magic")));
        }
        if le32(&buf, tail + 4) as usize != len {
            return Err(DbError::corrupt(format!("package {idx}: head length {len} differs from tail length {}", le32(&buf, tail + 4))));
        }
        let stored = le32(&buf, tail);
        let computed = adler32(&buf[..tail]);
        if stored != computed {
            return Err(DbError::corrupt(format!("package {idx}: adler32 checksum {computed:08x} does not match the stored {stored:08x}")));
        }
        buf.truncate(BLOB_HEAD + len);
        buf.drain(..BLOB_HEAD);
        Ok(buf)
    }

    pub(crate) fn next_blob(&mut self) -> Option<Result<BlobRef, DbError>> {
        let slot = self.slots.next()?;
        Some(self.read_blob(&slot).map(|data| BlobRef { key: slot.pkgidx, data }))
    }
}

/// Adler-32 (RFC 1950), which ndb uses for blob checksums; a few lines, so no crate.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 is the largest run before `b` can overflow a u32.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    #[test]
    fn adler32_known_value() {
        // RFC 1950 example value for "Wikipedia".
        assert_eq!(super::adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(super::adler32(b""), 1);
    }
}
