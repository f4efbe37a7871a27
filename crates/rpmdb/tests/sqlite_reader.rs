//! kensa's own sqlite reader against SQLite itself (rusqlite, bundled): databases written by
//! SQLite with every page size, blobs inline and on overflow chains, deleted and rewritten rows,
//! an index table beside the Packages table, and write-ahead logs cut mid-transaction. SQLite
//! reading a copy of the same files is the oracle; neither side's input is built from the other.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kensa_rpmdb::{PackageDb, ReadSeek};
use rusqlite::Connection;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn blob(rng: &mut Rng, max: u64) -> Vec<u8> {
    // Sizes from empty to many overflow pages, biased towards the small ones rpm headers are.
    let len = match rng.below(4) {
        0 => rng.below(64),
        1 => rng.below(4_000),
        2 => rng.below(40_000),
        _ => rng.below(max),
    };
    (0..len).map(|_| rng.next() as u8).collect()
}

const SCHEMA: &str = "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
    CREATE TABLE Basenames (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES Packages(hnum));
    CREATE INDEX Basenames_key_idx ON Basenames(key);";

/// What SQLite lists: (hnum, blob) in hnum order. Reads a private copy (recovery may write).
fn oracle(db: &Path, wal: Option<&Path>) -> Vec<(u32, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(db, dir.path().join("rpmdb.sqlite")).unwrap();
    if let Some(w) = wal {
        std::fs::copy(w, dir.path().join("rpmdb.sqlite-wal")).unwrap();
    }
    let conn = Connection::open(dir.path().join("rpmdb.sqlite")).unwrap();
    let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages ORDER BY hnum").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, Vec<u8>>(1)?))).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn ours(db: &Path, wal: Option<&Path>) -> Vec<(u32, Vec<u8>)> {
    let main = std::fs::File::open(db).unwrap();
    let wal = wal.map(|w| Box::new(std::fs::File::open(w).unwrap()) as Box<dyn ReadSeek>);
    PackageDb::open(Box::new(main), wal).unwrap().map(|b| b.map(|b| (b.key, b.data)).unwrap()).collect()
}

fn assert_same(what: &str, ours: &[(u32, Vec<u8>)], oracle: &[(u32, Vec<u8>)]) {
    let keys = |v: &[(u32, Vec<u8>)]| v.iter().map(|(k, d)| (*k, d.len())).collect::<Vec<_>>();
    assert_eq!(keys(ours), keys(oracle), "{what}: (hnum, blob length) differ");
    for ((k, a), (_, b)) in ours.iter().zip(oracle) {
        assert!(a == b, "{what}: blob of package {k} differs");
    }
}

/// Inserts, rewrites and deletes rows, filling the index table in between (so Packages pages are
/// spread among index pages), in `transactions` transactions.
fn populate(conn: &Connection, rng: &mut Rng, rows: usize, transactions: usize, max_blob: u64) {
    for t in 0..transactions {
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..rows / transactions {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob(rng, max_blob)]).unwrap();
            let hnum = conn.last_insert_rowid();
            for f in 0..rng.below(30) {
                conn.execute("INSERT INTO Basenames VALUES (?1, ?2, ?3)", rusqlite::params![format!("/usr/lib/file-{t}-{i}-{f}.so"), hnum, f as i64]).unwrap();
            }
            match rng.below(10) {
                0 => {
                    let victim = 1 + rng.below(hnum as u64) as i64;
                    // As rpm erases a package: its index rows first (they reference it).
                    conn.execute("DELETE FROM Basenames WHERE hnum = ?1", [victim]).unwrap();
                    conn.execute("DELETE FROM Packages WHERE hnum = ?1", [victim]).unwrap();
                }
                1 => {
                    let victim = 1 + rng.below(hnum as u64) as i64;
                    conn.execute("UPDATE Packages SET blob = ?1 WHERE hnum = ?2", rusqlite::params![blob(rng, max_blob), victim]).unwrap();
                }
                _ => {}
            }
        }
        tx.commit().unwrap();
    }
}

#[test]
fn every_page_size_with_overflow_chains_and_rewritten_rows() {
    for (seed, page_size) in [(1u64, 512u32), (2, 1024), (3, 4096), (4, 8192), (5, 65536)] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!("PRAGMA page_size = {page_size}; PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; {SCHEMA}")).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        populate(&conn, &mut rng, 150, 3, 300_000);
        drop(conn);
        let expected = oracle(&db, None);
        assert!(expected.len() > 100, "page size {page_size}: {} rows", expected.len());
        assert!(expected.iter().any(|(_, b)| b.len() > page_size as usize * 3), "page size {page_size}: no overflow chain");
        assert_same(&format!("page size {page_size}"), &ours(&db, None), &expected);
    }
}

/// Layouts rpm does not make but SQLite allows: bytes reserved at each page's end (as checksum
/// or encryption extensions use them), UTF-16 text in the schema, and auto-vacuum's pointer-map
/// pages between the table's pages.
#[test]
fn reserved_bytes_utf16_and_auto_vacuum() {
    for (what, page_size, reserved, pragmas) in [
        ("40 reserved bytes", 1024u32, 40u8, ""),
        ("255 reserved bytes", 4096, 255, ""),
        ("UTF-16le", 4096, 0, "PRAGMA encoding = 'UTF-16le';"),
        ("UTF-16be, auto-vacuum", 512, 0, "PRAGMA encoding = 'UTF-16be'; PRAGMA auto_vacuum = FULL;"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rpmdb.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!("PRAGMA page_size = {page_size}; {pragmas} PRAGMA user_version = 1;")).unwrap();
        drop(conn);
        if reserved > 0 {
            // SQLite keeps the reserved size of the file it opens: set it in the header of the
            // still empty database, and move page 1's (empty) cell content area below it.
            let mut bytes = std::fs::read(&db).unwrap();
            bytes[20] = reserved;
            bytes[105..107].copy_from_slice(&(page_size as u16 - reserved as u16).to_be_bytes());
            std::fs::write(&db, bytes).unwrap();
        }
        // Auto-vacuum is fixed when the file is made, the encoding with the first table.
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!("{pragmas} {SCHEMA}")).unwrap();
        populate(&conn, &mut Rng(page_size as u64 + reserved as u64), 90, 3, 100_000);
        let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok", "{what}");
        drop(conn);
        let header = std::fs::read(&db).unwrap();
        assert_eq!(header[20], reserved, "{what}");
        let encoding = u32::from_be_bytes(header[56..60].try_into().unwrap());
        assert_eq!(encoding, if what.contains("16le") { 2 } else if what.contains("16be") { 3 } else { 1 }, "{what}");
        assert_eq!(header[52..56] != [0; 4], what.contains("auto-vacuum"), "{what}: largest root page (auto-vacuum)");
        let expected = oracle(&db, None);
        assert!(expected.len() > 50, "{what}: {} rows", expected.len());
        assert_same(what, &ours(&db, None), &expected);
    }
}

/// Committed transactions only in the log are read; a transaction whose frames are cut off
/// before its commit frame is not, exactly as SQLite's recovery decides.
#[test]
fn write_ahead_log_committed_frames_only() {
    let live = tempfile::tempdir().unwrap();
    let db = live.path().join("rpmdb.sqlite");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(&format!("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; {SCHEMA}")).unwrap();
    let mut rng = Rng(0x5eed);
    populate(&conn, &mut rng, 60, 2, 50_000);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    // Four more transactions that stay in the log.
    populate(&conn, &mut rng, 80, 4, 50_000);
    let snap = tempfile::tempdir().unwrap();
    let (sdb, swal) = (snap.path().join("rpmdb.sqlite"), snap.path().join("rpmdb.sqlite-wal"));
    std::fs::copy(&db, &sdb).unwrap();
    std::fs::copy(live.path().join("rpmdb.sqlite-wal"), &swal).unwrap();
    drop(conn);

    let checkpointed = oracle(&sdb, None);
    let full = oracle(&sdb, Some(&swal));
    assert!(full.len() > checkpointed.len() + 40, "{} vs {}", full.len(), checkpointed.len());
    assert_same("main file only", &ours(&sdb, None), &checkpointed);
    assert_same("with the log", &ours(&sdb, Some(&swal)), &full);

    // Cut the log at several frame boundaries and mid-frame: each cut keeps the transactions
    // committed before it.
    let wal = std::fs::read(&swal).unwrap();
    let frame = 24 + 4096;
    let frames = (wal.len() - 32) / frame;
    let mut distinct = std::collections::BTreeSet::new();
    for cut in [32 + frame, 32 + frames / 3 * frame + 100, 32 + frames / 2 * frame, 32 + (frames - 1) * frame, wal.len() - 1] {
        let cut_wal = snap.path().join(format!("cut-{cut}.wal"));
        std::fs::write(&cut_wal, &wal[..cut]).unwrap();
        let expected = oracle(&sdb, Some(&cut_wal));
        distinct.insert(expected.len());
        assert_same(&format!("log cut at {cut}"), &ours(&sdb, Some(&cut_wal)), &expected);
    }
    assert!(distinct.len() >= 3, "the cuts should land in different transactions: {distinct:?}");

    // A damaged frame ends the log there (its checksum chain breaks).
    let mut damaged = wal.clone();
    let at = 32 + frames / 2 * frame + 24 + 1000;
    damaged[at] ^= 0xff;
    let bad_wal = snap.path().join("damaged.wal");
    std::fs::write(&bad_wal, &damaged).unwrap();
    assert_same("damaged log", &ours(&sdb, Some(&bad_wal)), &oracle(&sdb, Some(&bad_wal)));
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Only the schema and the Packages table are read, not the indexes beside them (which on real
/// rpm databases are 30-60% of the file).
#[test]
fn only_the_packages_table_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rpmdb.sqlite");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(&format!("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; {SCHEMA}")).unwrap();
    let mut rng = Rng(7);
    for _ in 0..100 {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob(&mut rng, 20_000)]).unwrap();
    }
    let packages_pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..30_000 {
        conn.execute("INSERT INTO Basenames VALUES (?1, ?2, ?3)", rusqlite::params![format!("/usr/share/doc/package-{}/file-{i}", i % 100), 1 + i % 100, i]).unwrap();
    }
    tx.commit().unwrap();
    let all_pages: u64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    drop(conn);
    assert!(all_pages > 3 * packages_pages, "{all_pages} pages, {packages_pages} before the index");

    let read = Arc::new(AtomicU64::new(0));
    let file = Counting { inner: std::fs::File::open(&db).unwrap(), read: read.clone() };
    let got: Vec<(u32, Vec<u8>)> = PackageDb::open(Box::new(file), None).unwrap().map(|b| b.map(|b| (b.key, b.data)).unwrap()).collect();
    assert_same("with an index", &got, &oracle(&db, None));
    let read = read.load(Ordering::Relaxed);
    assert!(read <= 100 + packages_pages * 4096, "{read} bytes read; the schema and Packages table are {} pages of {all_pages}", packages_pages);
}
