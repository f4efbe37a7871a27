//! Findings per machine, kept current: each match of a machine's inventory opens new findings,
//! refreshes those still present and closes those that are gone (package fixed or removed).

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

/// Replaces the machine's open findings with `current`. Returns the number of active findings.
pub fn apply(conn: &mut Connection, machine_id: &str, current: &[kensa_matcher::Finding]) -> rusqlite::Result<usize> {
    let t = now();
    let tx = conn.transaction()?;
    let mut seen = std::collections::HashSet::new();
    for f in current {
        let key = finding_key(f);
        if !seen.insert(key.clone()) {
            continue;
        }
        let d = &f.package_vulnerability_details;
        let pkg = d.vulnerable_packages.first().map(|p| p.name.clone()).unwrap_or_default();
        let data = serde_json::to_string(f).unwrap_or_default();
        let status = match enum_str(&f.status).as_str() {
            "SUPPRESSED" => "SUPPRESSED",
            _ => "ACTIVE",
        };
        let existing: Option<(String, String)> =
            tx.query_row("SELECT status, data FROM findings WHERE machine_id = ?1 AND finding_key = ?2", params![machine_id, key], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        match existing {
            Some((old_status, old_data)) => {
                let changed = old_status != status || old_data != data;
                tx.execute(
                    "UPDATE findings SET status = ?3, last_observed = ?4, updated = CASE WHEN ?5 THEN ?4 ELSE updated END, data = ?6,
                     severity = ?7, fix_available = ?8, inspector_score = ?9, epss_score = ?10 WHERE machine_id = ?1 AND finding_key = ?2",
                    params![machine_id, key, status, t, changed, data, enum_str(&f.severity), enum_str(&f.fix_available), f.inspector_score, f.epss.as_ref().map(|e| e.score)],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO findings(machine_id, finding_key, vulnerability_id, package_name, severity, fix_available, status,
                     first_observed, last_observed, updated, inspector_score, epss_score, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8, ?9, ?10, ?11)",
                    params![
                        machine_id,
                        key,
                        d.vulnerability_id,
                        pkg,
                        enum_str(&f.severity),
                        enum_str(&f.fix_available),
                        status,
                        t,
                        f.inspector_score,
                        f.epss.as_ref().map(|e| e.score),
                        data
                    ],
                )?;
            }
        }
    }
    // Close what is no longer observed.
    let mut open_keys = Vec::new();
    {
        let mut st = tx.prepare("SELECT finding_key FROM findings WHERE machine_id = ?1 AND status != 'CLOSED'")?;
        for k in st.query_map([machine_id], |r| r.get::<_, String>(0))? {
            open_keys.push(k?);
        }
    }
    for k in open_keys.into_iter().filter(|k| !seen.contains(k)) {
        tx.execute("UPDATE findings SET status = 'CLOSED', updated = ?3 WHERE machine_id = ?1 AND finding_key = ?2", params![machine_id, k, t])?;
    }
    let active: i64 = tx.query_row("SELECT COUNT(*) FROM findings WHERE machine_id = ?1 AND status = 'ACTIVE'", [machine_id], |r| r.get(0))?;
    tx.commit()?;
    Ok(active as usize)
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
        "SELECT f.machine_id, f.status, f.first_observed, f.last_observed, f.updated, f.data, m.tags, m.name FROM findings f JOIN machines m ON m.id = f.machine_id WHERE 1=1",
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
        "LAST_OBSERVED_AT" => "f.last_observed",
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
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?, r.get::<_, String>(5)?, r.get::<_, String>(6)?, r.get::<_, Option<String>>(7)?))
        })
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut skipped = 0usize;
    let mut more = false;
    for row in rows {
        let (machine, status, first, last, updated, data, tags, name) = row.map_err(|e| e.to_string())?;
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
        let mut f: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
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
