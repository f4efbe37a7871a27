//! Read-only Berkeley DB hash database (`Packages`, rpm < 4.16), as rpm's `bdb_ro` backend reads it.
//!
//! Page 0 is the hash meta page (magic 0x061561 at byte 12, in the byte order of the machine that
//! wrote it: both orders are accepted). Buckets `0..=max_bucket` map to pages through the `spares`
//! table; each bucket is a chain of hash pages (`next_pgno`) holding key/value item pairs. A key is
//! the 4-byte header number; a value is either inline (`H_KEYDATA`) or, for every real header, an
//! `H_OFFPAGE` reference to a chain of overflow pages. Records are returned in bucket order, the
//! order rpm itself lists them.

use std::io::{Read, Seek, SeekFrom};

use crate::{BlobRef, DbError, MAX_BLOB};

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2; // hash pages of Berkeley DB < 4.6 (hash version 8)
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

/// One record found by the bucket scan: its key and where its value is, or why it is unreadable.
type Record = Result<(u32, Value), DbError>;

/// Where a record's value is.
#[derive(Debug)]
enum Value {
    /// On the hash page itself; kept as a position so memory does not grow with the database.
    Inline { pgno: u32, offset: u32, len: u32 },
    Overflow { pgno: u32, len: u32 },
}

pub(crate) struct Bdb<R> {
    reader: R,
    big_endian: bool,
    page_size: usize,
    last_pgno: u32,
    records: std::vec::IntoIter<Record>,
}

impl<R: Read + Seek> Bdb<R> {
    pub(crate) fn open(mut reader: R) -> Result<Self, DbError> {
        let file_len = reader.seek(SeekFrom::End(0)).map_err(|e| DbError::io("seeking", e))?;
        let mut meta = [0u8; 512];
        reader.seek(SeekFrom::Start(0)).map_err(|e| DbError::io("seeking", e))?;
        reader.read_exact(&mut meta).map_err(|e| DbError::io("reading the Berkeley DB meta page", e))?;
        let magic_le = u32::from_le_bytes(meta[12..16].try_into().unwrap());
        let magic_be = u32::from_be_bytes(meta[12..16].try_into().unwrap());
        let big_endian = match (magic_le, magic_be) {
            (HASH_MAGIC, _) => false,
            (_, HASH_MAGIC) => true,
            (BTREE_MAGIC, _) | (_, BTREE_MAGIC) => {
                return Err(DbError::corrupt("Berkeley DB btree database: rpm's Packages is a hash database"))
            }
            _ => return Err(DbError::corrupt("no Berkeley DB hash magic on the meta page")),
        };
        let u32_at = |off: usize| {
            let b: [u8; 4] = meta[off..off + 4].try_into().unwrap();
            if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        let version = u32_at(16);
        if !(8..=10).contains(&version) {
            return Err(DbError::corrupt(format!("unsupported Berkeley DB hash version {version}")));
        }
        let page_size = u32_at(20) as usize;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(DbError::corrupt(format!("invalid page size {page_size} in the meta page")));
        }
        if meta[25] != P_HASHMETA {
            return Err(DbError::corrupt(format!("meta page has type {} instead of {P_HASHMETA} (hash meta)", meta[25])));
        }
        if meta[24] != 0 {
            return Err(DbError::corrupt("encrypted Berkeley DB databases are not supported"));
        }
        let last_pgno = u32_at(32);
        if (last_pgno as u64 + 1) * page_size as u64 > file_len {
            return Err(DbError::corrupt(format!(
                "truncated: the meta page says {} pages of {page_size} bytes, the file has {file_len} bytes",
                last_pgno as u64 + 1
            )));
        }
        let max_bucket = u32_at(72);
        let spares: Vec<u32> = (0..32).map(|i| u32_at(96 + 4 * i)).collect();
        if max_bucket > last_pgno {
            return Err(DbError::corrupt(format!("max bucket {max_bucket} is beyond the last page {last_pgno}")));
        }
        let mut db = Bdb { reader, big_endian, page_size, last_pgno, records: Vec::new().into_iter() };
        let records = db.scan_buckets(max_bucket, &spares)?;
        db.records = records.into_iter();
        Ok(db)
    }

    fn u16_at(&self, page: &[u8], off: usize) -> u16 {
        let b = [page[off], page[off + 1]];
        if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    }

    fn u32_at(&self, page: &[u8], off: usize) -> u32 {
        let b: [u8; 4] = page[off..off + 4].try_into().unwrap();
        if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    fn read_page(&mut self, pgno: u32, buf: &mut [u8]) -> Result<(), DbError> {
        if pgno == 0 || pgno > self.last_pgno {
            return Err(DbError::corrupt(format!("reference to page {pgno}, outside pages 1..={}", self.last_pgno)));
        }
        self.reader
            .seek(SeekFrom::Start(pgno as u64 * self.page_size as u64))
            .and_then(|_| self.reader.read_exact(buf))
            .map_err(|e| DbError::io(format!("reading page {pgno}"), e))?;
        let stored = self.u32_at(buf, 8);
        if stored != pgno {
            return Err(DbError::corrupt(format!("page {pgno} says it is page {stored}")));
        }
        Ok(())
    }

    /// Walks every bucket chain and collects the records (small: keys and overflow references).
    fn scan_buckets(&mut self, max_bucket: u32, spares: &[u32]) -> Result<Vec<Record>, DbError> {
        let mut records = Vec::new();
        let mut page = vec![0u8; self.page_size];
        // Every page belongs to at most one chain: more steps than pages means a loop.
        let mut budget = self.last_pgno as u64 + 1;
        for bucket in 0..=max_bucket {
            let bits = 32 - bucket.leading_zeros() as usize;
            let spare = *spares.get(bits).ok_or_else(|| DbError::corrupt(format!("bucket {bucket} is beyond the spares table")))?;
            let mut pgno = bucket.checked_add(spare).ok_or_else(|| DbError::corrupt(format!("bucket {bucket} maps past page 2^32")))?;
            loop {
                if budget == 0 {
                    return Err(DbError::corrupt("hash bucket chains loop"));
                }
                budget -= 1;
                self.read_page(pgno, &mut page)?;
                let ty = page[25];
                if ty != P_HASH && ty != P_HASH_UNSORTED {
                    return Err(DbError::corrupt(format!("bucket {bucket}: page {pgno} has type {ty}, not a hash page")));
                }
                self.page_items(pgno, &page, &mut records)?;
                pgno = self.u32_at(&page, 16);
                if pgno == 0 {
                    break;
                }
            }
        }
        Ok(records)
    }

    /// The key/value pairs of one hash page.
    fn page_items(&self, pgno: u32, page: &[u8], out: &mut Vec<Record>) -> Result<(), DbError> {
        let n = self.u16_at(page, 20) as usize;
        if PAGE_HEADER + 2 * n > self.page_size {
            return Err(DbError::corrupt(format!("page {pgno}: {n} entries do not fit the page")));
        }
        let offset = |i: usize| self.u16_at(page, PAGE_HEADER + 2 * i) as usize;
        for i in (0..n.saturating_sub(1)).step_by(2) {
            let koff = offset(i);
            let voff = offset(i + 1);
            let kend = if i == 0 { self.page_size } else { offset(i - 1) };
            let item = |off: usize, end: usize, what: &str| -> Result<&[u8], DbError> {
                if off < PAGE_HEADER + 2 * n || off >= end || end > self.page_size {
                    return Err(DbError::corrupt(format!("page {pgno}: {what} of entry {} has bad bounds {off}..{end}", i / 2)));
                }
                Ok(&page[off..end])
            };
            let key = item(koff, kend, "key")?;
            let val = item(voff, koff, "value")?;
            let key = match key[0] {
                H_KEYDATA if key.len() == 5 => self.u32_at(key, 1),
                t => {
                    out.push(Err(DbError::corrupt(format!("page {pgno}: entry {} has a key of type {t} and {} bytes, not a 4-byte header number", i / 2, key.len() - 1))));
                    continue;
                }
            };
            let value = match val[0] {
                // `item` checked voff + 1 + len <= page size.
                H_KEYDATA => Ok((key, Value::Inline { pgno, offset: voff as u32 + 1, len: (val.len() - 1) as u32 })),
                H_OFFPAGE if val.len() == 12 => Ok((key, Value::Overflow { pgno: self.u32_at(val, 4), len: self.u32_at(val, 8) })),
                t => Err(DbError::corrupt(format!("page {pgno}: record {key} has an unsupported value item of type {t}"))),
            };
            out.push(value);
        }
        Ok(())
    }

    fn read_overflow(&mut self, key: u32, mut pgno: u32, len: u32) -> Result<Vec<u8>, DbError> {
        if len as usize > MAX_BLOB {
            return Err(DbError::corrupt(format!("record {key}: {len}-byte value is over the {MAX_BLOB}-byte header limit")));
        }
        let mut out = Vec::with_capacity(len as usize);
        let mut page = vec![0u8; self.page_size];
        let mut steps = 0u64;
        while out.len() < len as usize {
            steps += 1;
            if steps > self.last_pgno as u64 {
                return Err(DbError::corrupt(format!("record {key}: overflow chain loops")));
            }
            self.read_page(pgno, &mut page).map_err(|e| e.context(format!("record {key}")))?;
            if page[25] != P_OVERFLOW {
                return Err(DbError::corrupt(format!("record {key}: overflow chain reaches page {pgno} of type {}", page[25])));
            }
            let plen = self.u16_at(&page, 22) as usize;
            if plen == 0 || PAGE_HEADER + plen > self.page_size || out.len() + plen > len as usize {
                return Err(DbError::corrupt(format!("record {key}: overflow page {pgno} holds a bad length {plen}")));
            }
            out.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + plen]);
            pgno = self.u32_at(&page, 16);
            if out.len() < len as usize && pgno == 0 {
                return Err(DbError::corrupt(format!("record {key}: overflow chain ends after {} of {len} bytes", out.len())));
            }
        }
        Ok(out)
    }

    fn read_inline(&mut self, pgno: u32, offset: usize, len: usize) -> Result<Vec<u8>, DbError> {
        let mut page = vec![0u8; self.page_size];
        self.read_page(pgno, &mut page)?;
        Ok(page[offset..offset + len].to_vec())
    }

    pub(crate) fn next_blob(&mut self) -> Option<Result<BlobRef, DbError>> {
        loop {
            let (key, value) = match self.records.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            // Record 0 holds rpm's next-header-number counter, not a header.
            if key == 0 {
                continue;
            }
            let data = match value {
                Value::Inline { pgno, offset, len } => self.read_inline(pgno, offset as usize, len as usize),
                Value::Overflow { pgno, len } => self.read_overflow(key, pgno, len),
            };
            return Some(data.map(|data| BlobRef { key, data }));
        }
    }
}
