//! Reads rpm package databases in pure Rust: no rpm binary, no librpm.
//!
//! Three backends, as rpm itself has them (see rpm's `lib/backend/`):
//! - Berkeley DB hash `Packages` (rpm < 4.16: RHEL/CentOS <= 8, Amazon Linux 2, SLES < 15.3), read
//!   like rpm's `bdb_ro`: both byte orders, overflow pages, hash pages of every DB version;
//! - ndb `Packages.db` (SUSE), with its blob checks (magics, lengths, adler32);
//! - sqlite `rpmdb.sqlite` (rpm >= 4.16: Fedora, RHEL 9, Mariner, Amazon Linux 2023).
//!
//! The backend is detected from the file's content, not its name. [`PackageDb`] yields header
//! blobs in the order rpm lists them; [`header::parse_package`] reads the fields kensa needs.
//! Memory stays bounded: every backend is read page by page through `Read + Seek` (sqlite by our
//! own reader of its file format, without copying the file), and one header may be at most
//! [`MAX_BLOB`] bytes.

mod bdb;
pub mod header;
mod ndb;
mod sqlite;

use std::io::{Read, Seek, SeekFrom};

pub use header::{parse_package, HeaderError, RpmPackage};

/// Largest header blob accepted from any backend.
pub const MAX_BLOB: usize = header::MAX_HEADER_SIZE;

/// A readable, seekable database file.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// The database format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    BerkeleyDb,
    Ndb,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::BerkeleyDb => "Berkeley DB",
            Backend::Ndb => "ndb",
            Backend::Sqlite => "sqlite",
        }
    }

    /// The backend a file starts like (give it at least the first 16 bytes), or `None`.
    pub fn detect(prefix: &[u8]) -> Option<Backend> {
        if prefix.starts_with(b"SQLite format 3\0") {
            return Some(Backend::Sqlite);
        }
        if prefix.len() >= 4 && u32::from_le_bytes(prefix[..4].try_into().unwrap()) == ndb::DB_MAGIC {
            return Some(Backend::Ndb);
        }
        if prefix.len() >= 16 {
            let m: [u8; 4] = prefix[12..16].try_into().unwrap();
            // Hash or btree magic in either byte order (a btree is reported as unsupported on open).
            if [0x0006_1561, 0x0005_3162].contains(&u32::from_le_bytes(m)) || [0x0006_1561, 0x0005_3162].contains(&u32::from_be_bytes(m)) {
                return Some(Backend::BerkeleyDb);
            }
        }
        None
    }
}

/// One header blob and the record key it was stored under (header number / ndb package index /
/// sqlite hnum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub key: u32,
    pub data: Vec<u8>,
}

/// Why a database or one of its records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Corrupt(String),
    #[error("package record {key}: {source}")]
    Header { key: u32, source: HeaderError },
}

impl DbError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        DbError::Io { what: what.into(), source }
    }
    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        DbError::Corrupt(msg.into())
    }
    pub(crate) fn context(self, ctx: String) -> Self {
        match self {
            DbError::Corrupt(m) => DbError::Corrupt(format!("{ctx}: {m}")),
            DbError::Io { what, source } => DbError::Io { what: format!("{ctx}: {what}"), source },
            other => other,
        }
    }
}

enum Inner {
    Bdb(bdb::Bdb<Box<dyn ReadSeek>>),
    Ndb(ndb::Ndb<Box<dyn ReadSeek>>),
    Sqlite(sqlite::Sqlite),
}

/// An open package database. Iterating yields header blobs in rpm's order; an `Err` item is one
/// unreadable record (iteration goes on) — structural damage is reported by [`PackageDb::open`].
pub struct PackageDb {
    inner: Inner,
}

impl PackageDb {
    /// Opens a database, detecting its backend from the content. `wal` is the sqlite write-ahead
    /// log beside the file (`rpmdb.sqlite-wal`), if there is one; other backends ignore it.
    pub fn open(mut reader: Box<dyn ReadSeek>, wal: Option<Box<dyn ReadSeek>>) -> Result<Self, DbError> {
        let mut prefix = [0u8; 16];
        reader.seek(SeekFrom::Start(0)).map_err(|e| DbError::io("seeking", e))?;
        let n = read_up_to(&mut reader, &mut prefix).map_err(|e| DbError::io("reading the file's first bytes", e))?;
        let backend = Backend::detect(&prefix[..n]).ok_or_else(|| {
            DbError::corrupt(if n == 0 { "empty file, not an rpm database".to_string() } else { "not an rpm database (no Berkeley DB, ndb or sqlite signature)".to_string() })
        })?;
        reader.seek(SeekFrom::Start(0)).map_err(|e| DbError::io("seeking", e))?;
        let inner = match backend {
            Backend::BerkeleyDb => Inner::Bdb(bdb::Bdb::open(reader)?),
            Backend::Ndb => Inner::Ndb(ndb::Ndb::open(reader)?),
            Backend::Sqlite => Inner::Sqlite(sqlite::Sqlite::open(reader, wal)?),
        };
        Ok(PackageDb { inner })
    }

    /// Opens a database file on the host (tests, tools). Catalogers open through `kensa_fs::Root`.
    pub fn open_path(path: &std::path::Path) -> Result<Self, DbError> {
        let file = std::fs::File::open(path).map_err(|e| DbError::io(format!("opening {}", path.display()), e))?;
        let mut wal_name = path.as_os_str().to_owned();
        wal_name.push("-wal");
        let wal = std::fs::File::open(wal_name).ok();
        PackageDb::open(Box::new(file), wal.map(|f| Box::new(f) as Box<dyn ReadSeek>))
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Bdb(_) => Backend::BerkeleyDb,
            Inner::Ndb(_) => Backend::Ndb,
            Inner::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Parsed packages: like iterating blobs, with each blob read by [`parse_package`]. gpg-pubkey
    /// entries are included (callers drop them with [`RpmPackage::is_gpg_pubkey`]).
    pub fn packages(self) -> impl Iterator<Item = Result<(u32, RpmPackage), DbError>> {
        self.map(|blob| {
            let blob = blob?;
            parse_package(&blob.data).map(|p| (blob.key, p)).map_err(|source| DbError::Header { key: blob.key, source })
        })
    }
}

impl Iterator for PackageDb {
    type Item = Result<BlobRef, DbError>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Bdb(db) => db.next_blob(),
            Inner::Ndb(db) => db.next_blob(),
            Inner::Sqlite(db) => db.next_blob(),
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
