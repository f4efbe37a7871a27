//! Findings per machine, kept current: each match of a machine's inventory opens new findings,
//! rewrites those whose content changed and closes those that are gone (package fixed or
//! removed), in one transaction per machine.
//!
//! Storage: a finding's JSON is split into its machine part (title, status, remediation,
//! vulnerable package, ...; in `findings.data`) and its vulnerability part (description, CVSS,
//! EPSS, references; in `finding_details`, once per distinct content, shared by every machine).
//! `GET /api/v1/findings` serves them merged, identical to what kensa-matcher produced.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::coverage::rfc3339;
use crate::store::now;

/// The identity of a finding on one machine: vulnerability and package instance (not its
/// version, so an upgrade that is still vulnerable keeps the same finding).
pub fn finding_key(f: &kensa_matcher::Finding) -> String {
    let d = &f.package_vulnerability_details;
    let p = d.vulnerable_packages.first();
    format!(
        "{}|{}|{}|{}|{}",
        d.vulnerability_id,
        p.map(|p| format!("{:?}", p.package_manager)).unwrap_or_default(),
        p.map(|p| p.name.as_str()).unwrap_or(""),
        p.and_then(|p| p.arch.as_deref()).unwrap_or(""),
        p.and_then(|p| p.file_path.as_deref()).unwrap_or("")
    )
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// Top-level fields of a finding's JSON that belong to the machine (its package instance), plus
/// `packageVulnerabilityDetails.vulnerablePackages`. Everything else (description, CVSS, EPSS,
/// references, ...) describes the vulnerability and is stored once in `finding_details`.
const MACHINE_FIELDS: &[&str] = &["title", "status", "fixAvailable", "remediation", "vendorStatus", "note"];
const DETAILS: &str = "packageVulnerabilityDetails";
const PACKAGES: &str = "vulnerablePackages";

/// Splits a finding's JSON into its machine part and its vulnerability part (lossless: [`merge`]
/// puts them back together).
fn split(mut finding: Value) -> (Value, Value) {
    let mut local = serde_json::Map::new();
    if let Value::Object(o) = &mut finding {
        for k in MACHINE_FIELDS {
            if let Some(v) = o.remove(*k) {
                local.insert((*k).to_string(), v);
            }
        }
        if let Some(Value::Object(d)) = o.get_mut(DETAILS) {
            if let Some(p) = d.remove(PACKAGES) {
                local.insert(DETAILS.to_string(), json!({ PACKAGES: p }));
            }
        }
    }
    (Value::Object(local), finding)
}

/// Puts `overlay` into `base`, merging objects key by key.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot @ Value::Object(_)) if v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// 128 bits of SHA-256: content addresses for vulnerability details and change detection.
fn digest(parts: &[&[u8]]) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()[..16].to_vec()
}

/// One finding ready for the store.
struct PreparedFinding {
    key: String,
    vulnerability_id: String,
    package_name: String,
    severity: String,
    fix_available: String,
    status: &'static str,
    inspector_score: Option<f64>,
    epss_score: Option<f64>,
    /// The machine part of its JSON.
    local: String,
    details_hash: Vec<u8>,
    /// Hash of everything stored for it: unchanged rows are not rewritten.
    content_hash: Vec<u8>,
}

/// A machine's findings serialized and hashed before the store lock is taken ([`prepare`]).
pub struct PreparedFindings {
    rows: Vec<PreparedFinding>,
    /// Vulnerability parts by hash.
    details: std::collections::HashMap<Vec<u8>, String>,
}

impl PreparedFindings {
    pub fn active(&self) -> usize {
        self.rows.iter().filter(|r| r.status == "ACTIVE").count()
    }
}

/// Serializes, splits and hashes a match's findings (the first of two findings with one key wins).
pub fn prepare(current: &[kensa_matcher::Finding]) -> PreparedFindings {
    let mut seen = std::collections::HashSet::new();
    let mut out = PreparedFindings { rows: Vec::with_capacity(current.len()), details: Default::default() };
    for f in current {
        let key = finding_key(f);
        if !seen.insert(key.clone()) {
            continue;
        }
        let d = &f.package_vulnerability_details;
        let (local, details) = split(serde_json::to_value(f).unwrap_or(Value::Null));
        let local = local.to_string();
        let details = details.to_string();
        let details_hash = digest(&[details.as_bytes()]);
        let content_hash = digest(&[local.as_bytes(), &details_hash]);
        out.details.entry(details_hash.clone()).or_insert(details);
        out.rows.push(PreparedFinding {
            key,
            vulnerability_id: d.vulnerability_id.clone(),
            package_name: d.vulnerable_packages.first().map(|p| p.name.clone()).unwrap_or_default(),
            severity: enum_str(&f.severity),
            fix_available: enum_str(&f.fix_available),
            status: match enum_str(&f.status).as_str() {
                "SUPPRESSED" => "SUPPRESSED",
                _ => "ACTIVE",
            },
            inspector_score: f.inspector_score,
            epss_score: f.epss.as_ref().map(|e| e.score),
            local,
            details_hash,
            content_hash,
        });
    }
    out
}

/// Stores the result of matching inventory `generation` of a machine, in one transaction: new
/// findings open, changed ones are rewritten, unchanged ones are left alone (an open finding was
/// last observed by the machine's latest match, `machines.matched_at`), vanished ones close, and
/// the machine's `pending_match` row goes. Returns the number of active findings, or None when
/// nothing was stored: the machine is gone, or a newer inventory was stored meanwhile (whose own
/// match is pending or done; an older result must not overwrite it).
pub fn store_match(conn: &mut Connection, machine_id: &str, generation: i64, current: &PreparedFindings) -> rusqlite::Result<Option<usize>> {
    let t = now();
    let tx = conn.transaction()?;
    let machine = tx
        .prepare_cached("SELECT matched_at, inventory_generation FROM machines WHERE id = ?1")?
        .query_row([machine_id], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    let previous_match = match machine {
        Some((previous_match, stored_generation)) if stored_generation <= generation => previous_match,
        _ => return Ok(None),
    };
    let mut stored: std::collections::HashMap<String, (String, Option<Vec<u8>>)> = std::collections::HashMap::new();
    {
        let mut st = tx.prepare_cached("SELECT finding_key, status, content_hash FROM findings WHERE machine_id = ?1")?;
        let rows = st.query_map([machine_id], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, String>(1)?, r.get::<_, Option<Vec<u8>>>(2)?))))?;
        for row in rows {
            let (k, v) = row?;
            stored.insert(k, v);
        }
    }
    {
        let mut add_details = tx.prepare_cached("INSERT OR IGNORE INTO finding_details(hash, data) VALUES (?1, ?2)")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO findings(machine_id, finding_key, vulnerability_id, package_name, severity, fix_available, status,
             first_observed, last_observed, updated, inspector_score, epss_score, data, details_hash, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut update = tx.prepare_cached(
            "UPDATE findings SET status = ?3, last_observed = ?4, updated = ?4, severity = ?5, fix_available = ?6, inspector_score = ?7,
             epss_score = ?8, data = ?9, details_hash = ?10, content_hash = ?11 WHERE machine_id = ?1 AND finding_key = ?2",
        )?;
        let mut details_written = std::collections::HashSet::new();
        for f in &current.rows {
            let existing = stored.get(&f.key);
            if let Some((status, Some(hash))) = existing {
                // `status` is part of the content, so only a CLOSED row can match and still differ.
                if hash == &f.content_hash && status != "CLOSED" {
                    continue;
                }
            }
            if details_written.insert(&f.details_hash) {
                add_details.execute(params![f.details_hash, current.details[&f.details_hash]])?;
            }
            if existing.is_some() {
                update.execute(params![
                    machine_id,
                    f.key,
                    f.status,
                    t,
                    f.severity,
                    f.fix_available,
                    f.inspector_score,
                    f.epss_score,
                    f.local,
                    f.details_hash,
                    f.content_hash
                ])?;
            } else {
                insert.execute(params![
                    machine_id,
                    f.key,
                    f.vulnerability_id,
                    f.package_name,
                    f.severity,
                    f.fix_available,
                    f.status,
                    t,
                    f.inspector_score,
                    f.epss_score,
                    f.local,
                    f.details_hash,
                    f.content_hash
                ])?;
            }
        }
    }
    // Close what this match no longer observes, in one statement; it was last observed by the
    // previous match.
    let keys = serde_json::to_string(&current.rows.iter().map(|f| f.key.as_str()).collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "UPDATE findings SET status = 'CLOSED', updated = ?2, last_observed = COALESCE(?3, last_observed)
         WHERE machine_id = ?1 AND status != 'CLOSED' AND finding_key NOT IN (SELECT value FROM json_each(?4))",
    )?
    .execute(params![machine_id, t, previous_match, keys])?;
    tx.prepare_cached("UPDATE machines SET matched_at = ?2 WHERE id = ?1")?.execute(params![machine_id, t])?;
    tx.prepare_cached("DELETE FROM pending_match WHERE machine_id = ?1 AND generation <= ?2")?.execute(params![machine_id, generation])?;
    tx.commit()?;
    Ok(Some(current.active()))
}

/// Removes vulnerability details no finding refers to any more (after database updates changed
/// them). Returns how many were removed.
pub fn collect_garbage(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let n = tx.execute("DELETE FROM finding_details WHERE hash NOT IN (SELECT details_hash FROM findings WHERE details_hash IS NOT NULL)", [])?;
    tx.commit()?;
    Ok(n)
}

/// Filter criteria of `GET /api/v1/findings` (each optional; lists are comma-separated).
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingQuery {
    pub machine_id: Option<String>,
    pub severity: Option<String>,
    pub vulnerability_id: Option<String>,
    pub package_name: Option<String>,
    pub fix_available: Option<String>,
    /// ACTIVE (default), SUPPRESSED, CLOSED or ALL.
    pub status: Option<String>,
    /// `KEY=VALUE` (or `KEY` for any value) on the machine's tags.
    pub tag: Option<String>,
    /// SEVERITY (default), INSPECTOR_SCORE, EPSS_SCORE, FIRST_OBSERVED_AT, LAST_OBSERVED_AT.
    pub sort_by: Option<String>,
    /// DESC (default) or ASC.
    pub sort_order: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub max_results: Option<u32>,
    /// From the previous page's `nextToken`.
    pub next_token: Option<String>,
}

fn list(s: &Option<String>) -> Option<Vec<String>> {
    s.as_ref().map(|v| v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
}

/// Runs a findings query. Errors are messages for a 400.
pub fn query(conn: &Connection, q: &FindingQuery) -> Result<Value, String> {
    let mut sql = String::from(
        "SELECT f.machine_id, f.status, f.first_observed, CASE WHEN f.status = 'CLOSED' THEN f.last_observed ELSE COALESCE(m.matched_at, f.last_observed) END,
         f.updated, f.data, m.tags, m.name, f.details_hash FROM findings f JOIN machines m ON m.id = f.machine_id WHERE 1=1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut add_in = |sql: &mut String, col: &str, vals: Vec<String>| {
        let marks: Vec<String> = vals.iter().map(|v| {
            args.push(rusqlite::types::Value::Text(v.clone()));
            format!("?{}", args.len())
        }).collect();
        sql.push_str(&format!(" AND {col} IN ({})", marks.join(",")));
    };
    if let Some(v) = list(&q.machine_id) {
        add_in(&mut sql, "f.machine_id", v);
    }
    if let Some(v) = list(&q.severity) {
        for s in &v {
            if !["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"].contains(&s.as_str()) {
                return Err(format!("severity {s:?} is not one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED"));
            }
        }
        add_in(&mut sql, "f.severity", v);
    }
    if let Some(v) = list(&q.vulnerability_id) {
        add_in(&mut sql, "f.vulnerability_id", v);
    }
    if let Some(v) = list(&q.package_name) {
        add_in(&mut sql, "f.package_name", v);
    }
    if let Some(v) = list(&q.fix_available) {
        for s in &v {
            if !["YES", "NO", "PARTIAL"].contains(&s.as_str()) {
                return Err(format!("fixAvailable {s:?} is not one of YES, NO, PARTIAL"));
            }
        }
        add_in(&mut sql, "f.fix_available", v);
    }
    match q.status.as_deref().unwrap_or("ACTIVE") {
        "ALL" => {}
        s @ ("ACTIVE" | "SUPPRESSED" | "CLOSED") => add_in(&mut sql, "f.status", vec![s.to_string()]),
        other => return Err(format!("status {other:?} is not one of ACTIVE, SUPPRESSED, CLOSED, ALL")),
    }
    let order_col = match q.sort_by.as_deref().unwrap_or("SEVERITY") {
        "SEVERITY" => "CASE f.severity WHEN 'CRITICAL' THEN 5 WHEN 'HIGH' THEN 4 WHEN 'MEDIUM' THEN 3 WHEN 'LOW' THEN 2 WHEN 'INFORMATIONAL' THEN 1 ELSE 0 END",
        "INSPECTOR_SCORE" => "COALESCE(f.inspector_score, -1)",
        "EPSS_SCORE" => "COALESCE(f.epss_score, -1)",
        "FIRST_OBSERVED_AT" => "f.first_observed",
        "LAST_OBSERVED_AT" => "CASE WHEN f.status = 'CLOSED' THEN f.last_observed ELSE COALESCE(m.matched_at, f.last_observed) END",
        other => return Err(format!("sortBy {other:?} is not one of SEVERITY, INSPECTOR_SCORE, EPSS_SCORE, FIRST_OBSERVED_AT, LAST_OBSERVED_AT")),
    };
    let dir = match q.sort_order.as_deref().unwrap_or("DESC") {
        "DESC" => "DESC",
        "ASC" => "ASC",
        other => return Err(format!("sortOrder {other:?} is not ASC or DESC")),
    };
    sql.push_str(&format!(" ORDER BY {order_col} {dir}, f.machine_id, f.finding_key"));
    let page = q.max_results.unwrap_or(100);
    if page == 0 || page > 1000 {
        return Err("maxResults must be between 1 and 1000".into());
    }
    let offset: usize = match &q.next_token {
        Some(t) => t.parse().map_err(|_| format!("nextToken {t:?} is not valid"))?,
        None => 0,
    };
    let tag_filter = q.tag.as_ref().map(|t| match t.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (t.clone(), None),
    });
    let mut st = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<Vec<u8>>>(8)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut details: std::collections::HashMap<Vec<u8>, Value> = std::collections::HashMap::new();
    let mut skipped = 0usize;
    let mut more = false;
    for row in rows {
        let (machine, status, first, last, updated, data, tags, name, details_hash) = row.map_err(|e| e.to_string())?;
        let tags: std::collections::BTreeMap<String, String> = serde_json::from_str(&tags).unwrap_or_default();
        if let Some((k, v)) = &tag_filter {
            match (tags.get(k), v) {
                (None, _) => continue,
                (Some(have), Some(want)) if have != want => continue,
                _ => {}
            }
        }
        if skipped < offset {
            skipped += 1;
            continue;
        }
        if out.len() == page as usize {
            more = true;
            break;
        }
        let local: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        // Rows stored before schema 3 hold the whole finding; later ones only the machine part.
        let mut f = match details_hash {
            Some(h) => {
                let mut base = match details.get(&h) {
                    Some(v) => v.clone(),
                    None => {
                        let text: Option<String> =
                            conn.query_row("SELECT data FROM finding_details WHERE hash = ?1", [&h], |r| r.get(0)).optional().map_err(|e| e.to_string())?;
                        let v = text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_else(|| json!({}));
                        details.insert(h, v.clone());
                        v
                    }
                };
                merge(&mut base, local);
                base
            }
            None => local,
        };
        if let Value::Object(o) = &mut f {
            o.insert("status".into(), json!(status));
            o.insert("firstObservedAt".into(), json!(rfc3339(first)));
            o.insert("lastObservedAt".into(), json!(rfc3339(last)));
            o.insert("updatedAt".into(), json!(rfc3339(updated)));
            o.insert("resources".into(), json!([{"type": "MACHINE", "id": machine, "name": name, "tags": tags}]));
        }
        out.push(f);
    }
    let mut v = json!({"findings": out});
    if more {
        v["nextToken"] = json!((offset + page as usize).to_string());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine_with_inventory(conn: &mut Connection, id: &str) -> i64 {
        crate::store::upsert_agent_machine(conn, id, id, &Default::default()).unwrap();
        let inv = kensa_inventory::Inventory { target: id.into(), os: None, packages: Vec::new(), warnings: Vec::new() };
        crate::store::put_inventory(conn, id, &inv, "sha", "AGENT").unwrap()
    }

    fn pending(conn: &Connection) -> Vec<String> {
        crate::store::pending_matches(conn).unwrap()
    }

    #[test]
    fn an_older_match_never_overwrites_a_newer_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::open(&dir.path().join("server.db")).unwrap();
        let first = machine_with_inventory(&mut conn, "m");
        let second = machine_with_inventory(&mut conn, "m");
        assert!(second > first);
        // The match of the first inventory ends after the second was stored: not stored.
        assert_eq!(store_match(&mut conn, "m", first, &prepare(&[])).unwrap(), None);
        assert_eq!(pending(&conn), ["m"]);
        assert_eq!(crate::store::machine(&conn, "m").unwrap().unwrap().matched_at, None);
        // The second one's is, and clears the pending row.
        assert_eq!(store_match(&mut conn, "m", second, &prepare(&[])).unwrap(), Some(0));
        assert!(pending(&conn).is_empty());
        assert!(crate::store::machine(&conn, "m").unwrap().unwrap().matched_at.is_some());
        // A machine that is gone gets nothing.
        assert_eq!(store_match(&mut conn, "gone", 1, &prepare(&[])).unwrap(), None);
    }

    #[test]
    fn split_findings_merge_back_whole() {
        let finding = json!({
            "type": "PACKAGE_VULNERABILITY", "title": "CVE-1 - a", "description": "d", "status": "ACTIVE", "fixAvailable": "YES",
            "remediation": {"recommendation": {"text": "upgrade"}}, "vendorStatus": "fixed",
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-1", "cvss": [], "vulnerablePackages": [{"name": "a", "version": "1"}]}
        });
        let (local, details) = split(finding.clone());
        assert_eq!(details["packageVulnerabilityDetails"], json!({"vulnerabilityId": "CVE-1", "cvss": []}));
        assert!(details.get("title").is_none() && details.get("remediation").is_none());
        assert_eq!(local["packageVulnerabilityDetails"], json!({"vulnerablePackages": [{"name": "a", "version": "1"}]}));
        let mut merged = details;
        merge(&mut merged, local);
        assert_eq!(merged, finding);
    }
}
