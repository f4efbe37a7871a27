//! rpm's sqlite backend (`rpmdb.sqlite`, rpm >= 4.16): table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`.
//!
//! Read by our own reader of the SQLite file format (<https://www.sqlite.org/fileformat2.html>),
//! limited to what listing one rowid table needs: the header, the schema table, table b-tree pages,
//! overflow chains and the write-ahead log. SQLite itself needs a file it can open, so a database
//! inside a disk image or a container layer had to be copied out whole to a temporary file: every
//! page of every index (Basenames, Dirnames, Providename, ...: 30-60% of the file) was read and
//! written though only the Packages table is wanted. The format is stable and documented; tests
//! compare this reader with SQLite (rusqlite) on databases written by SQLite and by rpm.
//!
//! A `-wal` file beside the database holds committed transactions not yet checkpointed; its valid
//! committed frames replace the pages they carry, as SQLite's recovery would (salts and cumulative
//! checksums checked, frames after the last commit ignored).
//!
//! Damage inside the Packages b-tree costs the records below the damaged page (each an `Err`
//! item); a page reached twice, an absurd depth or an overflow chain that runs on is an error,
//! never a loop.

use std::collections::{HashMap, HashSet};
use std::io::SeekFrom;

use crate::header::be32;
use crate::{BlobRef, DbError, ReadSeek};

/// Most frames indexed from a write-ahead log (4 GiB of 4 KiB pages; the index costs ~24 bytes a
/// frame). SQLite checkpoints at 1,000 frames by default, rpm when it closes the database.
const MAX_WAL_FRAMES: u64 = 1 << 20;
/// SQLite's own limit on b-tree depth (BTCURSOR_MAX_DEPTH).
const MAX_DEPTH: usize = 20;
const HEADER_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const WAL_HEADER: usize = 32;
const WAL_FRAME_HEADER: usize = 24;

const PAGE_INTERIOR_TABLE: u8 = 5;
const PAGE_LEAF_TABLE: u8 = 13;

/// Pages of the main file, with committed write-ahead-log frames laid over them.
struct Pager {
    file: Box<dyn ReadSeek>,
    file_len: u64,
    page_size: usize,
    /// Page size minus the bytes reserved at each page's end (for extensions).
    usable: usize,
    /// Pages in the database (as of the last commit in the log, if any).
    pages: u32,
    /// Page number -> offset of its newest committed frame's data in the log.
    wal_frames: HashMap<u32, u64>,
    wal: Option<Box<dyn ReadSeek>>,
    text_encoding: u32,
}

fn be16(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes([b[at], b[at + 1]]) as usize
}

fn read_exact_at(r: &mut dyn ReadSeek, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
    r.seek(SeekFrom::Start(off))?;
    r.read_exact(buf)
}

impl Pager {
    fn open(mut file: Box<dyn ReadSeek>, wal: Option<Box<dyn ReadSeek>>) -> Result<Self, DbError> {
        let file_len = file.seek(SeekFrom::End(0)).map_err(|e| DbError::io("sizing the database", e))?;
        let mut h = [0u8; 100];
        if file_len < 100 {
            return Err(DbError::corrupt(format!("sqlite: {file_len}-byte file is shorter than the 100-byte database header")));
        }
        read_exact_at(&mut *file, 0, &mut h).map_err(|e| DbError::io("reading the sqlite header", e))?;
        if &h[..16] != HEADER_MAGIC {
            return Err(DbError::corrupt("sqlite: no \"SQLite format 3\" signature at offset 0"));
        }
        let page_size = match be16(&h, 16) {
            1 => 65536,
            n if (512..=32768).contains(&n) && n.is_power_of_two() => n,
            n => return Err(DbError::corrupt(format!("sqlite: page size {n} at offset 16 is not a power of two from 512 to 65536"))),
        };
        if h[18] > 2 || h[19] > 2 {
            return Err(DbError::corrupt(format!("sqlite: file format versions {}/{} at offset 18 are not 1 (rollback journal) or 2 (WAL)", h[18], h[19])));
        }
        let reserved = h[20] as usize;
        let usable = page_size - reserved;
        if usable < 480 {
            return Err(DbError::corrupt(format!("sqlite: {reserved} reserved bytes per page (offset 20) leave {usable} of a {page_size}-byte page; at least 480 are needed")));
        }
        // The header's page count is trusted only when written by a version that maintains it
        // (its change counter at 24 matches the one at 92), as SQLite does; else the file's size.
        let from_header = be32(&h, 28);
        let from_size = (file_len / page_size as u64).min(u32::MAX as u64) as u32;
        let pages = if from_header != 0 && be32(&h, 24) == be32(&h, 92) { from_header } else { from_size };
        let text_encoding = be32(&h, 56);
        let mut pager = Pager { file, file_len, page_size, usable, pages, wal_frames: HashMap::new(), wal: None, text_encoding };
        if let Some(wal) = wal {
            pager.load_wal(wal)?;
        }
        Ok(pager)
    }

    /// Indexes the log's committed frames. An invalid log header means an empty log (as to SQLite).
    fn load_wal(&mut self, mut wal: Box<dyn ReadSeek>) -> Result<(), DbError> {
        let io = |e| DbError::io("reading the sqlite write-ahead log", e);
        let len = wal.seek(SeekFrom::End(0)).map_err(io)?;
        if len < WAL_HEADER as u64 {
            return Ok(());
        }
        let mut h = [0u8; WAL_HEADER];
        read_exact_at(&mut *wal, 0, &mut h).map_err(io)?;
        let magic = be32(&h, 0);
        if magic & !1 != 0x377f_0682 || be32(&h, 8) as usize != self.page_size {
            return Ok(());
        }
        let big_endian = magic & 1 == 1;
        let mut sum = wal_checksum(big_endian, (0, 0), &h[..24]);
        if sum != (be32(&h, 24), be32(&h, 28)) {
            return Ok(());
        }
        let salts = &h[16..24];
        let frame_len = (WAL_FRAME_HEADER + self.page_size) as u64;
        if (len - WAL_HEADER as u64) / frame_len > MAX_WAL_FRAMES {
            return Err(DbError::corrupt(format!("sqlite: the {len}-byte write-ahead log holds more than {MAX_WAL_FRAMES} frames of {} bytes", self.page_size)));
        }
        let mut frame = vec![0u8; frame_len as usize];
        let mut pending: Vec<(u32, u64)> = Vec::new();
        let mut off = WAL_HEADER as u64;
        wal.seek(SeekFrom::Start(off)).map_err(io)?;
        while off + frame_len <= len {
            wal.read_exact(&mut frame).map_err(io)?;
            if &frame[8..16] != salts {
                break;
            }
            sum = wal_checksum(big_endian, sum, &frame[..8]);
            sum = wal_checksum(big_endian, sum, &frame[WAL_FRAME_HEADER..]);
            if sum != (be32(&frame, 16), be32(&frame, 20)) {
                break;
            }
            let pgno = be32(&frame, 0);
            if pgno == 0 {
                break;
            }
            pending.push((pgno, off + WAL_FRAME_HEADER as u64));
            let commit_size = be32(&frame, 4);
            if commit_size != 0 {
                // A commit frame: everything up to here is part of the database.
                self.wal_frames.extend(pending.drain(..));
                self.pages = commit_size;
            }
            off += frame_len;
        }
        if !self.wal_frames.is_empty() {
            self.wal = Some(wal);
        }
        Ok(())
    }

    fn page(&mut self, pgno: u32) -> Result<Vec<u8>, DbError> {
        if pgno == 0 || pgno > self.pages {
            return Err(DbError::corrupt(format!("sqlite: page {pgno} is outside the database's {} pages", self.pages)));
        }
        let mut buf = vec![0u8; self.page_size];
        if let (Some(&at), Some(wal)) = (self.wal_frames.get(&pgno), self.wal.as_mut()) {
            read_exact_at(&mut **wal, at, &mut buf).map_err(|e| DbError::io(format!("reading page {pgno} from the sqlite write-ahead log"), e))?;
            return Ok(buf);
        }
        let at = (pgno as u64 - 1) * self.page_size as u64;
        if at + self.page_size as u64 > self.file_len {
            return Err(DbError::corrupt(format!("sqlite: page {pgno} (offset {at}) is past the end of the {}-byte file", self.file_len)));
        }
        read_exact_at(&mut *self.file, at, &mut buf).map_err(|e| DbError::io(format!("reading sqlite page {pgno} at offset {at}"), e))?;
        Ok(buf)
    }
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing from `s`.
fn wal_checksum(big_endian: bool, (mut s0, mut s1): (u32, u32), data: &[u8]) -> (u32, u32) {
    for w in data.chunks_exact(8) {
        let (a, b) = if big_endian {
            (u32::from_be_bytes(w[..4].try_into().unwrap()), u32::from_be_bytes(w[4..].try_into().unwrap()))
        } else {
            (u32::from_le_bytes(w[..4].try_into().unwrap()), u32::from_le_bytes(w[4..].try_into().unwrap()))
        };
        s0 = s0.wrapping_add(a).wrapping_add(s1);
        s1 = s1.wrapping_add(b).wrapping_add(s0);
    }
    (s0, s1)
}

/// A varint (1-9 bytes, big-endian, 7 bits per byte but 8 in the ninth) at `b[at..]`.
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | byte as u64, 9));
        }
        v = (v << 7) | (byte & 0x7f) as u64;
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A parsed b-tree page: its type, cell offsets and right-most child.
struct BtreePage {
    number: u32,
    data: Vec<u8>,
    kind: u8,
    cells: Vec<usize>,
    right_child: u32,
}

impl BtreePage {
    fn parse(number: u32, data: Vec<u8>, usable: usize) -> Result<Self, String> {
        // Page 1 starts with the 100-byte database header.
        let start = if number == 1 { 100 } else { 0 };
        let kind = data[start];
        let header = match kind {
            PAGE_INTERIOR_TABLE => 12,
            PAGE_LEAF_TABLE => 8,
            2 | 10 => return Err(format!("page {number} is an index page inside a table b-tree")),
            k => return Err(format!("page {number} has b-tree page type {k} at its offset {start}, not a table page (5 or 13)")),
        };
        let n = be16(&data, start + 3);
        let array = start + header;
        if array + 2 * n > usable {
            return Err(format!("page {number}: {n} cells do not fit the page"));
        }
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            let at = be16(&data, array + 2 * i);
            if at < array + 2 * n || at >= usable {
                return Err(format!("page {number}: cell {i} at offset {at} is outside the cell content area"));
            }
            cells.push(at);
        }
        let right_child = if kind == PAGE_INTERIOR_TABLE { be32(&data, start + 8) } else { 0 };
        Ok(BtreePage { number, data, kind, cells, right_child })
    }
}

/// In-order iteration over a table b-tree's leaf cells, one page at a time.
struct TableCursor {
    /// (page, next cell to visit); an interior page's cells are visited before its right child.
    stack: Vec<(BtreePage, usize)>,
    visited: HashSet<u32>,
    pending_root: Option<u32>,
}

/// One row of a table: its rowid and whole payload (the record).
struct Row {
    rowid: i64,
    payload: Vec<u8>,
}

impl TableCursor {
    fn new(root: u32) -> Self {
        TableCursor { stack: Vec::new(), visited: HashSet::new(), pending_root: Some(root) }
    }

    /// Descends into `pgno`; an error costs that subtree only.
    fn push(&mut self, pager: &mut Pager, pgno: u32) -> Result<(), DbError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(DbError::corrupt(format!("sqlite: table b-tree deeper than {MAX_DEPTH} levels at page {pgno}")));
        }
        if !self.visited.insert(pgno) {
            return Err(DbError::corrupt(format!("sqlite: page {pgno} is reached twice in one table b-tree (a cycle)")));
        }
        let data = pager.page(pgno)?;
        let page = BtreePage::parse(pgno, data, pager.usable).map_err(|m| DbError::corrupt(format!("sqlite: {m}")))?;
        self.stack.push((page, 0));
        Ok(())
    }

    /// The next row, `Err` for a row or subtree that cannot be read (iteration goes on), `None` at the end.
    fn next(&mut self, pager: &mut Pager, max_payload: u64) -> Option<Result<Row, DbError>> {
        if let Some(root) = self.pending_root.take() {
            if let Err(e) = self.push(pager, root) {
                return Some(Err(e));
            }
        }
        loop {
            let (page, idx) = self.stack.last_mut()?;
            if page.kind == PAGE_LEAF_TABLE {
                if *idx >= page.cells.len() {
                    self.stack.pop();
                    continue;
                }
                let at = page.cells[*idx];
                *idx += 1;
                return Some(leaf_row(pager, page.number, &page.data, at, max_payload));
            }
            // Interior page: cells 0..n give left children in order, then the right-most child.
            let child = if *idx < page.cells.len() {
                let at = page.cells[*idx];
                if at + 4 > page.data.len() {
                    let number = page.number;
                    *idx += 1;
                    return Some(Err(DbError::corrupt(format!("sqlite: page {number}: truncated cell at offset {at}"))));
                }
                be32(&page.data, at)
            } else if *idx == page.cells.len() {
                page.right_child
            } else {
                self.stack.pop();
                continue;
            };
            *idx += 1;
            if let Err(e) = self.push(pager, child) {
                return Some(Err(e));
            }
        }
    }
}

/// The row in the leaf cell at `at` of page `number`, with its overflow chain followed.
fn leaf_row(pager: &mut Pager, number: u32, page: &[u8], at: usize, max_payload: u64) -> Result<Row, DbError> {
    let bad = |m: String| DbError::corrupt(format!("sqlite: page {number}, cell at offset {at}: {m}"));
    let (size, n1) = varint(page, at).ok_or_else(|| bad("truncated payload size".into()))?;
    let (rowid, n2) = varint(page, at + n1).ok_or_else(|| bad("truncated rowid".into()))?;
    let rowid = rowid as i64;
    if size > max_payload {
        return Err(bad(format!("row {rowid}: {size}-byte record is over the {max_payload}-byte limit")));
    }
    let size = size as usize;
    let u = pager.usable;
    // How much of the payload the page itself holds (fileformat2 §1.6, table leaf cells).
    let max_local = u - 35;
    let local = if size <= max_local {
        size
    } else {
        let min_local = (u - 12) * 32 / 255 - 23;
        let k = min_local + (size - min_local) % (u - 4);
        if k <= max_local {
            k
        } else {
            min_local
        }
    };
    let start = at + n1 + n2;
    let end = start + local;
    if end > u || (local < size && end + 4 > u) {
        return Err(bad(format!("row {rowid}: {local} local payload bytes run past the page")));
    }
    // Grown as the chain is read: a damaged size field must not reserve memory up front.
    let mut payload = Vec::with_capacity(size.min(1 << 20));
    payload.extend_from_slice(&page[start..end]);
    if local < size {
        let mut next = be32(page, end);
        let mut seen = HashSet::new();
        while payload.len() < size {
            if next == 0 {
                return Err(bad(format!("row {rowid}: overflow chain ends after {} of {size} bytes", payload.len())));
            }
            if !seen.insert(next) {
                return Err(bad(format!("row {rowid}: overflow page {next} appears twice in its chain")));
            }
            let over = pager.page(next).map_err(|e| bad(format!("row {rowid}: overflow page {next}: {e}")))?;
            let take = (size - payload.len()).min(u - 4);
            payload.extend_from_slice(&over[4..4 + take]);
            next = be32(&over, 0);
        }
    }
    Ok(Row { rowid, payload })
}

/// A record's column values, as byte ranges of the payload with their serial types.
fn record_columns(payload: &[u8]) -> Result<Vec<(u64, std::ops::Range<usize>)>, String> {
    let (header_len, mut pos) = varint(payload, 0).ok_or("truncated record header")?;
    let header_len = usize::try_from(header_len).ok().filter(|&h| h <= payload.len()).ok_or("record header longer than the record")?;
    let mut body = header_len;
    let mut cols = Vec::new();
    while pos < header_len {
        let (t, n) = varint(payload, pos).ok_or("truncated record header")?;
        pos += n;
        let len = match t {
            0 | 8 | 9 => 0,
            1..=4 => t as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err(format!("reserved serial type {t}")),
            _ => ((t - 12) / 2) as usize,
        };
        let end = body.checked_add(len).filter(|&e| e <= payload.len()).ok_or("column runs past the end of the record")?;
        cols.push((t, body..end));
        body = end;
    }
    Ok(cols)
}

fn column_int(payload: &[u8], (t, r): &(u64, std::ops::Range<usize>)) -> Option<i64> {
    match t {
        8 => Some(0),
        9 => Some(1),
        1..=6 => {
            let b = &payload[r.clone()];
            let mut v = if b[0] & 0x80 != 0 { -1i64 } else { 0 };
            for &x in b {
                v = (v << 8) | x as i64;
            }
            Some(v)
        }
        _ => None,
    }
}

fn column_text(pager: &Pager, payload: &[u8], (t, r): &(u64, std::ops::Range<usize>)) -> Option<String> {
    if *t < 13 || t % 2 == 0 {
        return None;
    }
    let b = &payload[r.clone()];
    match pager.text_encoding {
        2 | 3 => {
            let units = b.chunks_exact(2).map(|c| if pager.text_encoding == 2 { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) });
            Some(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
        }
        _ => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

pub(crate) struct Sqlite {
    pager: Pager,
    packages: TableCursor,
}

/// The schema's largest row we read (SQL text of a table definition).
const MAX_SCHEMA_ROW: u64 = 1 << 20;

impl Sqlite {
    pub(crate) fn open(main: Box<dyn ReadSeek>, wal: Option<Box<dyn ReadSeek>>) -> Result<Self, DbError> {
        let mut pager = Pager::open(main, wal)?;
        // sqlite_schema (page 1): rows (type, name, tbl_name, rootpage, sql).
        let mut schema = TableCursor::new(1);
        let mut root = None;
        while let Some(row) = schema.next(&mut pager, MAX_SCHEMA_ROW) {
            let row = row.map_err(|e| e.context("reading the schema".into()))?;
            let cols = record_columns(&row.payload).map_err(|m| DbError::corrupt(format!("sqlite: schema row {}: {m}", row.rowid)))?;
            if cols.len() < 4 {
                continue;
            }
            let is_table = column_text(&pager, &row.payload, &cols[0]).as_deref() == Some("table");
            let name = column_text(&pager, &row.payload, &cols[1]).unwrap_or_default();
            if is_table && name.eq_ignore_ascii_case("Packages") {
                let page = column_int(&row.payload, &cols[3]).filter(|&p| p > 0 && p <= u32::MAX as i64);
                root = Some(page.ok_or_else(|| DbError::corrupt(format!("sqlite: the Packages table's root page ({:?}) is not a page number", column_int(&row.payload, &cols[3]))))? as u32);
                break;
            }
        }
        let root = root.ok_or_else(|| DbError::corrupt("sqlite database has no Packages table"))?;
        Ok(Sqlite { pager, packages: TableCursor::new(root) })
    }

    /// Rows come in rowid (= hnum) order, as rpm's `SELECT hnum, blob FROM Packages` lists them.
    pub(crate) fn next_blob(&mut self) -> Option<Result<BlobRef, DbError>> {
        // A record is the blob plus a few header bytes.
        let row = match self.packages.next(&mut self.pager, crate::MAX_BLOB as u64 + 64)? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let hnum = row.rowid;
        let key = u32::try_from(hnum).unwrap_or(u32::MAX);
        let cols = match record_columns(&row.payload) {
            Ok(c) => c,
            Err(m) => return Some(Err(DbError::corrupt(format!("sqlite: package {hnum}: {m}")))),
        };
        // Column 0 is hnum (the rowid, stored as NULL), column 1 the header blob.
        Some(match cols.get(1) {
            Some((t, r)) if *t >= 12 && t % 2 == 0 => {
                if r.len() > crate::MAX_BLOB {
                    Err(DbError::corrupt(format!("package {hnum}: {}-byte header is over the {}-byte limit", r.len(), crate::MAX_BLOB)))
                } else {
                    let mut data = row.payload;
                    data.truncate(r.end);
                    data.drain(..r.start);
                    Ok(BlobRef { key, data })
                }
            }
            Some((t, _)) => Err(DbError::corrupt(format!("sqlite: package {hnum}: the blob column has serial type {t}, not a blob"))),
            None => Err(DbError::corrupt(format!("sqlite: package {hnum}: the record has {} columns, not 2", cols.len()))),
        })
    }
}
