//! rpm's sqlite database in WAL mode: committed packages that are still only in `rpmdb.sqlite-wal`
//! (not yet checkpointed, as in a snapshot of a running host) are listed too.

use kensa_rpmdb::PackageDb;

#[test]
fn packages_only_in_the_write_ahead_log_are_read() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0") else { return };
    let blobs: Vec<Vec<u8>> = PackageDb::open_path(&dir.join("rpmdb.sqlite")).unwrap().take(5).map(|b| b.unwrap().data).collect();

    let live = tempfile::tempdir().unwrap();
    let db = live.path().join("rpmdb.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);").unwrap();
    for b in &blobs[..2] {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b]).unwrap();
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    for b in &blobs[2..] {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [b]).unwrap();
    }
    // Snapshot the files while the writer still has them open (nothing checkpointed since).
    let snap = tempfile::tempdir().unwrap();
    std::fs::copy(&db, snap.path().join("rpmdb.sqlite")).unwrap();
    std::fs::copy(live.path().join("rpmdb.sqlite-wal"), snap.path().join("rpmdb.sqlite-wal")).unwrap();
    drop(conn);

    let names = |db: PackageDb| db.packages().map(|r| r.unwrap().1.name).collect::<Vec<_>>();
    let with_wal = names(PackageDb::open_path(&snap.path().join("rpmdb.sqlite")).unwrap());
    assert_eq!(with_wal.len(), 5, "{with_wal:?}");
    let main_only = std::fs::File::open(snap.path().join("rpmdb.sqlite")).unwrap();
    let without_wal = names(PackageDb::open(Box::new(main_only), None).unwrap());
    assert_eq!(without_wal, with_wal[..2]);
    // The snapshot itself is never modified by reading it.
    assert!(!snap.path().join("rpmdb.sqlite-shm").exists());
}
