//! rpm's sqlite backend (`rpmdb.sqlite`, rpm >= 4.16): table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`.
//!
//! sqlite needs a real file, but the database may come from a container layer or a disk image, so
//! the bytes are streamed into a private temporary directory (bounded by [`MAX_SQLITE_FILE`]) rather
//! than deserialised into memory: sqlite then pages through the copy and memory stays small however
//! large the database is. A `-wal` file beside the database holds committed transactions not yet
//! checkpointed; it is copied too so sqlite replays it, exactly as rpm would see the database.

use std::io::{Read, Write};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{BlobRef, DbError};

/// Largest rpmdb.sqlite (or -wal) copied. A RHEL host with 3000 packages has a ~150 MiB database.
pub const MAX_SQLITE_FILE: u64 = 4 << 30;

pub(crate) struct Sqlite {
    conn: Connection,
    hnums: std::vec::IntoIter<i64>,
    // Dropped after `conn` (fields drop in declaration order): removes the copy.
    _dir: tempfile::TempDir,
}

fn copy_bounded(mut from: impl Read, to: &std::path::Path, what: &str) -> Result<(), DbError> {
    let mut file = std::fs::File::create(to).map_err(|e| DbError::io(format!("creating a temporary copy of the {what}"), e))?;
    let copied = std::io::copy(&mut (&mut from).take(MAX_SQLITE_FILE + 1), &mut file)
        .map_err(|e| DbError::io(format!("copying the {what} to a temporary file"), e))?;
    if copied > MAX_SQLITE_FILE {
        return Err(DbError::corrupt(format!("the {what} is larger than the {MAX_SQLITE_FILE}-byte limit")));
    }
    file.flush().map_err(|e| DbError::io("writing the temporary copy", e))?;
    Ok(())
}

fn sql_err(what: &str, e: rusqlite::Error) -> DbError {
    DbError::corrupt(format!("sqlite: {what}: {e}"))
}

impl Sqlite {
    pub(crate) fn open(main: impl Read, wal: Option<&mut dyn Read>) -> Result<Self, DbError> {
        let dir = tempfile::Builder::new().prefix("kensa-rpmdb-").tempdir().map_err(|e| DbError::io("creating a temporary directory", e))?;
        let path = dir.path().join("rpmdb.sqlite");
        copy_bounded(main, &path, "database")?;
        if let Some(wal) = wal {
            copy_bounded(wal, &dir.path().join("rpmdb.sqlite-wal"), "write-ahead log")?;
        }
        // Read-write on our private copy so sqlite can replay the WAL; the target is never written.
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| sql_err("opening", e))?;
        let has_table: Option<i64> = conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'Packages'", [], |r| r.get(0))
            .optional()
            .map_err(|e| sql_err("reading the schema", e))?;
        if has_table.is_none() {
            return Err(DbError::corrupt("sqlite database has no Packages table"));
        }
        // rpm iterates `SELECT hnum, blob FROM Packages`, i.e. in rowid (= hnum) order.
        let hnums = {
            let mut stmt = conn.prepare("SELECT hnum FROM Packages ORDER BY rowid").map_err(|e| sql_err("listing packages", e))?;
            let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(|e| sql_err("listing packages", e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| sql_err("listing packages", e))?
        };
        Ok(Sqlite { conn, hnums: hnums.into_iter(), _dir: dir })
    }

    pub(crate) fn next_blob(&mut self) -> Option<Result<BlobRef, DbError>> {
        let hnum = self.hnums.next()?;
        let key = u32::try_from(hnum).unwrap_or(u32::MAX);
        let blob: Result<Vec<u8>, _> = self.conn.query_row("SELECT blob FROM Packages WHERE hnum = ?1", [hnum], |r| r.get(0));
        Some(match blob {
            Ok(data) if data.len() > crate::MAX_BLOB => {
                Err(DbError::corrupt(format!("package {hnum}: {}-byte header is over the {}-byte limit", data.len(), crate::MAX_BLOB)))
            }
            Ok(data) => Ok(BlobRef { key, data }),
            Err(e) => Err(sql_err(&format!("reading package {hnum}"), e)),
        })
    }
}
