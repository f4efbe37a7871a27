//! The SQLite schema and its migrations, versioned with `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema from version `i` to `i + 1`. Never edit a
//! published migration: append a new one.

use rusqlite::Connection;

use crate::{Error, Result};

/// Marks a file as a kensa database (`PRAGMA application_id`, "KNSA").
pub const APPLICATION_ID: i32 = 0x4b4e_5341;

pub const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    CREATE TABLE feeds (
        name TEXT PRIMARY KEY,
        url TEXT,
        etag TEXT,
        last_modified TEXT,
        sha256 TEXT,
        updated_at TEXT NOT NULL,
        records INTEGER NOT NULL
    ) WITHOUT ROWID;

    -- One row per (id, source). Nested lists are JSON text: they are only ever read whole.
    CREATE TABLE vulnerabilities (
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        source TEXT NOT NULL,
        summary TEXT,
        details TEXT,
        published TEXT,
        modified TEXT,
        vendor_severity TEXT,
        source_url TEXT,
        aliases TEXT NOT NULL,
        related TEXT NOT NULL,
        cwes TEXT NOT NULL,
        refs TEXT NOT NULL,
        severities TEXT NOT NULL,
        database_specific TEXT,
        UNIQUE (id, source)
    );

    -- Every alias (and related id) of a record, for id resolution in both directions.
    CREATE TABLE aliases (
        alias TEXT NOT NULL,
        vuln_pk INTEGER NOT NULL,
        PRIMARY KEY (alias, vuln_pk)
    ) WITHOUT ROWID;
    CREATE INDEX aliases_by_vuln ON aliases (vuln_pk);

    -- `name` is normalised per ecosystem (see normalize_name); `original_name` as published.
    CREATE TABLE affected (
        pk INTEGER PRIMARY KEY,
        vuln_pk INTEGER NOT NULL,
        ecosystem TEXT NOT NULL,
        name TEXT NOT NULL,
        original_name TEXT NOT NULL,
        purl TEXT,
        status TEXT NOT NULL,
        ranges TEXT NOT NULL,
        versions TEXT NOT NULL,
        ecosystem_specific TEXT,
        database_specific TEXT
    );
    CREATE INDEX affected_by_package ON affected (ecosystem, name);
    CREATE INDEX affected_by_vuln ON affected (vuln_pk);

    CREATE TABLE kev (
        cve TEXT PRIMARY KEY,
        vendor_project TEXT NOT NULL,
        product TEXT NOT NULL,
        vulnerability_name TEXT NOT NULL,
        date_added TEXT NOT NULL,
        short_description TEXT NOT NULL,
        required_action TEXT NOT NULL,
        due_date TEXT NOT NULL,
        known_ransomware_campaign_use TEXT NOT NULL,
        notes TEXT NOT NULL,
        cwes TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE epss (
        cve TEXT PRIMARY KEY,
        score REAL NOT NULL,
        percentile REAL NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes and reads.
pub fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Brings an open read-write database to the current schema (creating it when empty).
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if version > 0 && app_id != APPLICATION_ID {
        return Err(Error::NotKensaDb);
    }
    if version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables > 0 {
            return Err(Error::NotKensaDb);
        }
    }
    if version > current_version() {
        return Err(Error::SchemaTooNew { found: version, supported: current_version() });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}; PRAGMA application_id = {APPLICATION_ID};", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// Checks a database opened read-only: it must be a kensa database of a version we can read.
pub fn check(conn: &Connection) -> Result<()> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app_id != APPLICATION_ID || version == 0 {
        return Err(Error::NotKensaDb);
    }
    if version > current_version() {
        return Err(Error::SchemaTooNew { found: version, supported: current_version() });
    }
    if version < current_version() {
        return Err(Error::SchemaTooOld { found: version, supported: current_version() });
    }
    Ok(())
}
