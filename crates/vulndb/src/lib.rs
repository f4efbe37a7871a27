//! kensa's local vulnerability database.
//!
//! One SQLite file (default [`default_path`]) holds vulnerability records from every feed kensa
//! imports — OSV (all ecosystems), NVD CVE API 2.0, Red Hat CSAF VEX, the Debian security tracker,
//! RustSec, CISA KEV and EPSS — converted to one OSV-shaped model ([`model`]).
//!
//! # Read API (for the matcher and the server)
//!
//! ```no_run
//! let db = kensa_vulndb::VulnDb::open(&kensa_vulndb::default_path())?;
//! for a in db.affected("PyPI", "Django")? {           // names are normalised on lookup
//!     let fixed = a.fixed_versions();                 // ranges, versions, status per package
//!     let vuln = db.vulnerability(&a.vuln_id)?;        // full record, aliases resolved
//!     let kev = db.kev("CVE-2021-44228")?;
//!     let epss = db.epss("CVE-2021-44228")?;
//! }
//! # Ok::<(), kensa_vulndb::Error>(())
//! ```
//!
//! A [`VulnDb`] is one SQLite connection: cheap to open, `Send` but not `Sync`; open one per
//! thread. Lookups by (ecosystem, name) use the `affected_by_package` index.
//!
//! # Package name normalisation ([`normalize_name`])
//!
//! Applied at import and at lookup, so callers pass names as they found them:
//! - `PyPI`: PEP 503 (lower case, runs of `-`, `_`, `.` become one `-`).
//! - `NuGet`: lower case (NuGet ids are case-insensitive).
//! - `Maven`: `groupId:artifactId`, as is.
//! - `npm`, `crates.io`, `Go`, distributions: as is (Debian and Ubuntu records name *source*
//!   packages; rpm distributions name binary packages).
//!
//! Ecosystems are OSV names including the release (`Debian:12`, `AlmaLinux:9`,
//! `Red Hat:enterprise_linux:9::appstream`) and are compared exactly.

pub mod cvss;
pub mod import;
pub mod model;
pub mod schema;
pub mod search;
pub mod update;
mod store;

use std::path::{Path, PathBuf};

pub use model::*;
pub use store::{Counts, Writer};

/// Errors of the database and its importers. Each names what failed and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
    #[error("not a kensa vulnerability database (run `kensa db update` or `kensa db import`)")]
    NotKensaDb,
    #[error("database schema version {found} is newer than this kensa supports ({supported}); upgrade kensa")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("database schema version {found} is older than this kensa reads ({supported}); run `kensa db update` or `kensa db import` to rebuild it")]
    SchemaTooOld { found: u32, supported: u32 },
    #[error("no vulnerability database at {0} (run `kensa db update`, or `kensa db import` for offline use)")]
    Missing(String),
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }
    pub(crate) fn format(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Format { path: path.into(), reason: reason.into() }
    }
}

/// `$KENSA_DB`, else `$XDG_CACHE_HOME/kensa/vuln.db`, else `~/.cache/kensa/vuln.db`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KENSA_DB").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache"));
    cache.join("kensa").join("vuln.db")
}

/// The form of a package name used for lookups in `ecosystem` (see the crate docs).
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    match base {
        "PyPI" => {
            // PEP 503: re.sub(r"[-_.]+", "-", name).lower()
            let mut out = String::with_capacity(name.len());
            let mut in_sep = false;
            for c in name.trim().chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !in_sep {
                        out.push('-');
                    }
                    in_sep = true;
                } else {
                    out.extend(c.to_lowercase());
                    in_sep = false;
                }
            }
            out
        }
        "NuGet" => name.trim().to_lowercase(),
        _ => name.trim().to_string(),
    }
}

/// The vulnerability database: one SQLite connection.
pub struct VulnDb {
    pub(crate) conn: rusqlite::Connection,
    path: PathBuf,
}

impl VulnDb {
    /// Opens an existing database read-only. Fails with [`Error::Missing`] when there is none and
    /// with a clear error when the file is not a kensa database or has another schema version.
    pub fn open(path: &Path) -> Result<VulnDb> {
        if !path.is_file() {
            return Err(Error::Missing(path.display().to_string()));
        }
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        schema::check(&conn).map_err(|e| match e {
            Error::Sqlite(s) => Error::format(path.display().to_string(), format!("not a readable SQLite database: {s}")),
            other => other,
        })?;
        Ok(VulnDb { conn, path: path.to_path_buf() })
    }

    /// Opens (creating or migrating) a database for writing.
    pub fn create(path: &Path) -> Result<VulnDb> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut conn = rusqlite::Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = NORMAL;")?;
        schema::migrate(&mut conn)?;
        Ok(VulnDb { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of this file.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Holds one read transaction until the guard is dropped, so that many lookups (matching one
    /// inventory) see one consistent state of the file and take SQLite's shared lock once
    /// instead of once per statement (a fifth of a server match's time without it). Inside an
    /// open transaction it does nothing.
    pub fn read_snapshot(&self) -> Result<ReadSnapshot<'_>> {
        if !self.conn.is_autocommit() {
            return Ok(ReadSnapshot { db: None });
        }
        self.conn.execute_batch("BEGIN DEFERRED")?;
        Ok(ReadSnapshot { db: Some(self) })
    }
}

/// See [`VulnDb::read_snapshot`].
pub struct ReadSnapshot<'a> {
    db: Option<&'a VulnDb>,
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        if let Some(db) = self.db {
            // A read transaction has nothing to lose; ending it cannot fail in a way that matters.
            let _ = db.conn.execute_batch("COMMIT");
        }
    }
}

/// Current UTC time as RFC 3339 (`2026-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339_from_unix(secs as i64)
}

pub(crate) fn rfc3339_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 -> (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses the date part of an RFC 3339 timestamp to days since 1970-01-01.
pub fn days_from_rfc3339(s: &str) -> Option<i64> {
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: i64 = s.get(5..7)?.parse().ok()?;
    let d: i64 = s.get(8..10)?.parse().ok()?;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_normalisation() {
        assert_eq!(normalize_name("PyPI", "Foo.Bar__baz-"), "foo-bar-baz-");
        assert_eq!(normalize_name("PyPI", "zope.interface"), "zope-interface");
        assert_eq!(normalize_name("npm", "Axios"), "Axios");
        assert_eq!(normalize_name("NuGet", "Moment.js"), "moment.js");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(days_from_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000 / 86_400));
        assert_eq!(days_from_rfc3339("2024-03-01"), Some(19_783));
    }

    #[test]
    fn read_snapshot_holds_one_transaction_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        drop(VulnDb::create(&path).unwrap());
        let db = VulnDb::open(&path).unwrap();
        {
            let _outer = db.read_snapshot().unwrap();
            assert!(!db.conn.is_autocommit());
            {
                let _inner = db.read_snapshot().unwrap();
            }
            assert!(!db.conn.is_autocommit(), "a nested guard leaves the outer transaction open");
            assert_eq!(db.schema_version().unwrap() as usize, schema::MIGRATIONS.len());
        }
        assert!(db.conn.is_autocommit());
    }
}
