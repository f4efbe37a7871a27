//! Reading and writing rows. The read API lives on [`VulnDb`]; writes go through a [`Writer`]
//! (one transaction).

use rusqlite::{params, OptionalExtension, Row};
use serde::de::DeserializeOwned;

use crate::model::*;
use crate::{normalize_name, Error, Result, VulnDb};

/// Record counts, for `kensa db status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub vulnerabilities: u64,
    pub affected: u64,
    pub kev: u64,
    pub epss: u64,
    /// Records per source.
    pub by_source: Vec<(String, u64)>,
}

fn json_col<T: DeserializeOwned + Default>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(T::default()),
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))),
    }
}

fn opt_json(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = row.get(idx)?;
    match text {
        None => Ok(None),
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))),
    }
}

macro_rules! affected_cols {
    () => {
        "v.id, v.source, a.ecosystem, a.original_name, a.purl, a.status, a.ranges, a.versions, a.ecosystem_specific, a.database_specific"
    };
}
const AFFECTED_COLS: &str = affected_cols!();
/// The matcher's hot query (a literal, so the statement cache lookup allocates nothing).
const AFFECTED_BY_PACKAGE: &str = concat!(
    "SELECT ",
    affected_cols!(),
    " FROM affected a JOIN vulnerabilities v ON v.pk = a.vuln_pk WHERE a.ecosystem = ?1 AND a.name = ?2 ORDER BY v.id, a.pk"
);

fn affected_from_row(row: &Row<'_>) -> rusqlite::Result<Affected> {
    let status: String = row.get(5)?;
    Ok(Affected {
        vuln_id: row.get(0)?,
        source: row.get(1)?,
        ecosystem: row.get(2)?,
        name: row.get(3)?,
        purl: row.get(4)?,
        status: Status::parse(&status).unwrap_or_default(),
        ranges: json_col(row, 6)?,
        versions: json_col(row, 7)?,
        ecosystem_specific: opt_json(row, 8)?,
        database_specific: opt_json(row, 9)?,
    })
}

const VULN_COLS: &str = "pk, id, source, summary, details, published, modified, vendor_severity, source_url, aliases, related, cwes, refs, severities, database_specific";

fn vuln_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Vulnerability)> {
    Ok((
        row.get(0)?,
        Vulnerability {
            id: row.get(1)?,
            source: row.get(2)?,
            summary: row.get(3)?,
            details: row.get(4)?,
            published: row.get(5)?,
            modified: row.get(6)?,
            vendor_severity: row.get(7)?,
            source_url: row.get(8)?,
            aliases: json_col(row, 9)?,
            related: json_col(row, 10)?,
            cwes: json_col(row, 11)?,
            references: json_col(row, 12)?,
            severities: json_col(row, 13)?,
            database_specific: opt_json(row, 14)?,
            affected: Vec::new(),
        },
    ))
}

/// Order in which sources fill the merged view's text fields: the CVE authority first, then
/// vendors, then everything else.
fn source_rank(source: &str) -> u8 {
    match source {
        "nvd" => 0,
        "osv" => 1,
        "redhat-csaf" => 2,
        "rustsec" => 3,
        _ => 4,
    }
}

impl VulnDb {
    /// Every affected-package entry for `name` in `ecosystem` (exact OSV ecosystem, e.g.
    /// `Debian:12`), each with its record id and source. The name is normalised first.
    pub fn affected(&self, ecosystem: &str, name: &str) -> Result<Vec<Affected>> {
        let mut stmt = self.conn.prepare_cached(AFFECTED_BY_PACKAGE)?;
        let rows = stmt.query_map(params![ecosystem, normalize_name(ecosystem, name)], affected_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The records stored under exactly this id, one per source, each with its affected packages.
    pub fn records(&self, id: &str) -> Result<Vec<Vulnerability>> {
        let mut stmt = self.conn.prepare_cached(&format!("SELECT {VULN_COLS} FROM vulnerabilities WHERE id = ?1"))?;
        let found: Vec<(i64, Vulnerability)> = stmt.query_map([id], vuln_from_row)?.collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(found.len());
        for (pk, mut v) in found {
            v.affected = self.affected_of(pk)?;
            out.push(v);
        }
        out.sort_by_key(|v| source_rank(&v.source));
        Ok(out)
    }

    fn affected_of(&self, pk: i64) -> Result<Vec<Affected>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {AFFECTED_COLS} FROM affected a JOIN vulnerabilities v ON v.pk = a.vuln_pk WHERE a.vuln_pk = ?1 ORDER BY a.pk"
        ))?;
        let rows = stmt.query_map([pk], affected_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ids of records that list `id` as an alias or related id (e.g. the GHSA and ALSA records
    /// of a CVE).
    pub fn referencing_ids(&self, id: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT v.id FROM aliases al JOIN vulnerabilities v ON v.pk = al.vuln_pk WHERE al.alias = ?1 ORDER BY v.id",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The vulnerability `id`, merged over every source that publishes it. When no record has
    /// this id, the records that list it as an alias are merged instead (so `CVE-2021-44228`
    /// finds `GHSA-jfh8-c2jp-5v3q` in a database without NVD). `aliases` of the result also
    /// lists the ids of records that refer to it.
    pub fn vulnerability(&self, id: &str) -> Result<Option<Vulnerability>> {
        let id = id.trim();
        let mut records = self.records(id)?;
        let referencing = self.referencing_ids(id)?;
        // With no record of its own, an id (typically a CVE) is shown through the advisories that
        // name it. Their own `related` lists hold the other CVEs fixed by the same update, which
        // are not related to this one, so only the advisories themselves are kept (as aliases).
        let through_advisories = records.is_empty();
        if through_advisories {
            for other in &referencing {
                records.extend(self.records(other)?);
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        records.sort_by_key(|v| source_rank(&v.source));
        let mut merged = records[0].clone();
        merged.id = id.to_string();
        for r in &records[1..] {
            merge_into(&mut merged, r);
        }
        if merged.id != records[0].id {
            push_unique(&mut merged.aliases, &records[0].id);
        }
        for other in referencing {
            if other != merged.id {
                push_unique(&mut merged.aliases, &other);
            }
        }
        merged.aliases.retain(|a| a != id);
        if through_advisories {
            merged.related.clear();
        }
        merged.related.retain(|r| r != id && !merged.aliases.contains(r));
        Ok(Some(merged))
    }

    /// The CISA KEV entry of a CVE.
    pub fn kev(&self, cve: &str) -> Result<Option<Kev>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT cve, vendor_project, product, vulnerability_name, date_added, short_description, required_action, \
             due_date, known_ransomware_campaign_use, notes, cwes FROM kev WHERE cve = ?1",
        )?;
        Ok(stmt
            .query_row([cve.trim()], |r| {
                Ok(Kev {
                    cve_id: r.get(0)?,
                    vendor_project: r.get(1)?,
                    product: r.get(2)?,
                    vulnerability_name: r.get(3)?,
                    date_added: r.get(4)?,
                    short_description: r.get(5)?,
                    required_action: r.get(6)?,
                    due_date: r.get(7)?,
                    known_ransomware_campaign_use: r.get(8)?,
                    notes: r.get(9)?,
                    cwes: json_col(r, 10)?,
                })
            })
            .optional()?)
    }

    /// The EPSS score of a CVE.
    pub fn epss(&self, cve: &str) -> Result<Option<Epss>> {
        let mut stmt = self.conn.prepare_cached("SELECT cve, score, percentile FROM epss WHERE cve = ?1")?;
        Ok(stmt
            .query_row([cve.trim()], |r| Ok(Epss { cve: r.get(0)?, score: r.get(1)?, percentile: r.get(2)? }))
            .optional()?)
    }

    /// Every ecosystem with the number of affected-package entries in it.
    pub fn ecosystems(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached("SELECT ecosystem, count(*) FROM affected GROUP BY ecosystem ORDER BY ecosystem")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Per-feed state (URL, ETag, last update, record count).
    pub fn feeds(&self) -> Result<Vec<FeedState>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, url, etag, last_modified, sha256, updated_at, records FROM feeds ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(FeedState {
                name: r.get(0)?,
                url: r.get(1)?,
                etag: r.get(2)?,
                last_modified: r.get(3)?,
                sha256: r.get(4)?,
                updated_at: r.get(5)?,
                records: r.get::<_, i64>(6)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn feed(&self, name: &str) -> Result<Option<FeedState>> {
        Ok(self.feeds()?.into_iter().find(|f| f.name == name))
    }

    pub fn counts(&self) -> Result<Counts> {
        let one = |sql: &str| -> Result<u64> { Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64) };
        let mut stmt = self.conn.prepare("SELECT source, count(*) FROM vulnerabilities GROUP BY source ORDER BY source")?;
        let by_source = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Counts {
            vulnerabilities: one("SELECT count(*) FROM vulnerabilities")?,
            affected: one("SELECT count(*) FROM affected")?,
            kev: one("SELECT count(*) FROM kev")?,
            epss: one("SELECT count(*) FROM epss")?,
            by_source,
        })
    }

    /// A metadata value (`last_update`, `epss_model_version`, `epss_score_date`, ...).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Starts a write transaction.
    pub fn writer(&mut self) -> Result<Writer<'_>> {
        Ok(Writer { tx: self.conn.transaction()? })
    }

    /// Checks the file's integrity (`PRAGMA quick_check`).
    pub fn verify(&self) -> Result<()> {
        let res: String = self.conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if res == "ok" {
            Ok(())
        } else {
            Err(Error::format(self.path().display().to_string(), format!("integrity check failed: {res}")))
        }
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

/// Adds what `other` knows to `base` (text fields only when `base` lacks them).
fn merge_into(base: &mut Vulnerability, other: &Vulnerability) {
    for a in other.aliases.iter().chain(std::iter::once(&other.id)) {
        push_unique(&mut base.aliases, a);
    }
    for r in &other.related {
        push_unique(&mut base.related, r);
    }
    for c in &other.cwes {
        push_unique(&mut base.cwes, c);
    }
    if base.summary.as_deref().unwrap_or("").is_empty() {
        base.summary = other.summary.clone();
    }
    if base.details.as_deref().unwrap_or("").is_empty() {
        base.details = other.details.clone();
    }
    if base.published.is_none() {
        base.published = other.published.clone();
    }
    if other.modified > base.modified {
        base.modified = other.modified.clone();
    }
    if base.vendor_severity.is_none() {
        base.vendor_severity = other.vendor_severity.clone();
    }
    if base.source_url.is_none() {
        base.source_url = other.source_url.clone();
    }
    for r in &other.references {
        if !base.references.iter().any(|x| x.url == r.url) {
            base.references.push(r.clone());
        }
    }
    for s in &other.severities {
        if !base.severities.iter().any(|x| x.source == s.source && x.vector == s.vector) {
            base.severities.push(s.clone());
        }
    }
    base.affected.extend(other.affected.iter().cloned());
    if base.source != other.source && !base.source.split(',').any(|s| s == other.source) {
        base.source = format!("{},{}", base.source, other.source);
    }
}

/// One write transaction. Dropping it without [`Writer::commit`] rolls everything back.
pub struct Writer<'a> {
    tx: rusqlite::Transaction<'a>,
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("model types serialise")
}

impl Writer<'_> {
    /// Stores a record, replacing an earlier one with the same (id, source).
    pub fn put(&mut self, v: &Vulnerability) -> Result<()> {
        self.remove(&v.id, &v.source)?;
        let tx = &self.tx;
        tx.prepare_cached(
            "INSERT INTO vulnerabilities (id, source, summary, details, published, modified, vendor_severity, source_url, \
             aliases, related, cwes, refs, severities, database_specific) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
        )?
        .execute(params![
            v.id,
            v.source,
            v.summary,
            v.details,
            v.published,
            v.modified,
            v.vendor_severity,
            v.source_url,
            to_json(&v.aliases),
            to_json(&v.related),
            to_json(&v.cwes),
            to_json(&v.references),
            to_json(&v.severities),
            v.database_specific.as_ref().map(to_json),
        ])?;
        let pk = tx.last_insert_rowid();
        {
            let mut alias_stmt = tx.prepare_cached("INSERT OR IGNORE INTO aliases (alias, vuln_pk) VALUES (?1, ?2)")?;
            for a in v.aliases.iter().chain(v.related.iter()) {
                if a != &v.id {
                    alias_stmt.execute(params![a, pk])?;
                }
            }
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO affected (vuln_pk, ecosystem, name, original_name, purl, status, ranges, versions, ecosystem_specific, database_specific) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
        )?;
        for a in &v.affected {
            stmt.execute(params![
                pk,
                a.ecosystem,
                normalize_name(&a.ecosystem, &a.name),
                a.name,
                a.purl,
                a.status.as_str(),
                to_json(&a.ranges),
                to_json(&a.versions),
                a.ecosystem_specific.as_ref().map(to_json),
                a.database_specific.as_ref().map(to_json),
            ])?;
        }
        Ok(())
    }

    /// Deletes the record (id, source) if present (a withdrawn advisory). Returns whether it existed.
    pub fn remove(&mut self, id: &str, source: &str) -> Result<bool> {
        let pk: Option<i64> = self
            .tx
            .prepare_cached("SELECT pk FROM vulnerabilities WHERE id = ?1 AND source = ?2")?
            .query_row(params![id, source], |r| r.get(0))
            .optional()?;
        let Some(pk) = pk else { return Ok(false) };
        self.tx.prepare_cached("DELETE FROM affected WHERE vuln_pk = ?1")?.execute([pk])?;
        self.tx.prepare_cached("DELETE FROM aliases WHERE vuln_pk = ?1")?.execute([pk])?;
        self.tx.prepare_cached("DELETE FROM vulnerabilities WHERE pk = ?1")?.execute([pk])?;
        Ok(true)
    }

    pub fn put_kev(&mut self, k: &Kev) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO kev (cve, vendor_project, product, vulnerability_name, date_added, short_description, \
                 required_action, due_date, known_ransomware_campaign_use, notes, cwes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
            )?
            .execute(params![
                k.cve_id,
                k.vendor_project,
                k.product,
                k.vulnerability_name,
                k.date_added,
                k.short_description,
                k.required_action,
                k.due_date,
                k.known_ransomware_campaign_use,
                k.notes,
                to_json(&k.cwes),
            ])?;
        Ok(())
    }

    /// Replaces the whole KEV table (the catalog is published whole).
    pub fn clear_kev(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM kev", [])?;
        Ok(())
    }

    pub fn put_epss(&mut self, e: &Epss) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO epss (cve, score, percentile) VALUES (?1, ?2, ?3)")?
            .execute(params![e.cve, e.score, e.percentile])?;
        Ok(())
    }

    /// Replaces the whole EPSS table (each file is a complete daily snapshot).
    pub fn clear_epss(&mut self) -> Result<()> {
        self.tx.execute("DELETE FROM epss", [])?;
        Ok(())
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(params![key, value])?;
        Ok(())
    }

    pub fn set_feed(&mut self, f: &FeedState) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO feeds (name, url, etag, last_modified, sha256, updated_at, records) VALUES (?1,?2,?3,?4,?5,?6,?7)",
            )?
            .execute(params![f.name, f.url, f.etag, f.last_modified, f.sha256, f.updated_at, f.records as i64])?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }
}
