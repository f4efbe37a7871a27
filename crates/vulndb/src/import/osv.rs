//! OSV schema 1.x records (JSON or YAML), any ecosystem: what osv.dev publishes per ecosystem
//! (`<ecosystem>/all.zip`), GitHub's advisory database, PyPA, AlmaLinux, RustSec's OSV export, ...

use serde::Deserialize;
use serde_json::Value;

use super::{put, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

pub const SOURCE: &str = "osv";

#[derive(Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<OsvSeverity>>,
    #[serde(default)]
    affected: Option<Vec<OsvAffected>>,
    #[serde(default)]
    references: Option<Vec<OsvReference>>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct OsvReference {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    url: String,
}

#[derive(Deserialize)]
struct OsvAffected {
    #[serde(default)]
    package: Option<OsvPackage>,
    #[serde(default)]
    severity: Option<Vec<OsvSeverity>>,
    #[serde(default)]
    ranges: Option<Vec<OsvRange>>,
    #[serde(default)]
    versions: Option<Vec<Value>>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
    #[serde(default)]
    purl: Option<String>,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    repo: Option<String>,
    events: Vec<serde_json::Map<String, Value>>,
}

/// A YAML scalar version (`1.10` parses as a number in YAML) as the text it was written as.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn convert_range(r: OsvRange) -> Result<Range, String> {
    let kind = match r.kind.as_str() {
        "ECOSYSTEM" => RangeKind::Ecosystem,
        "SEMVER" => RangeKind::Semver,
        "GIT" => RangeKind::Git,
        other => return Err(format!("unknown range type {other:?}")),
    };
    let mut events = Vec::with_capacity(r.events.len());
    for e in r.events {
        let mut it = e.iter();
        let (Some((k, v)), None) = (it.next(), it.next()) else {
            return Err(format!("range event must have exactly one key: {}", Value::Object(e.clone())));
        };
        let Some(v) = scalar_text(v) else {
            return Err(format!("range event {k:?} has no version"));
        };
        events.push(match k.as_str() {
            "introduced" => Event::Introduced(v),
            "fixed" => Event::Fixed(v),
            "last_affected" => Event::LastAffected(v),
            "limit" => Event::Limit(v),
            other => return Err(format!("unknown range event {other:?}")),
        });
    }
    if kind == RangeKind::Git && r.repo.is_none() {
        return Err("GIT range without repo".into());
    }
    Ok(Range { kind, repo: r.repo, events })
}

fn convert_severity(s: &OsvSeverity, source: &str) -> Severity {
    match s.kind.as_str() {
        "CVSS_V2" | "CVSS_V3" | "CVSS_V4" => crate::cvss::severity(source, &s.score, None),
        _ => Severity { source: source.to_string(), kind: SeverityKind::Other, vector: format!("{}:{}", s.kind, s.score), base_score: None },
    }
}

/// Converts one OSV document. `Ok(None)` for a withdrawn record.
pub fn convert(value: Value) -> Result<Option<Vulnerability>, String> {
    let rec: OsvRecord = serde_json::from_value(value).map_err(|e| format!("not a valid OSV record: {e}"))?;
    if rec.withdrawn.is_some() {
        return Ok(None);
    }
    let id = rec.id.trim().to_string();
    let mut severities: Vec<Severity> = rec.severity.iter().flatten().map(|s| convert_severity(s, SOURCE)).collect();
    let mut affected = Vec::new();
    for (i, a) in rec.affected.into_iter().flatten().enumerate() {
        let ranges = a
            .ranges
            .into_iter()
            .flatten()
            .map(convert_range)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("affected[{i}]: {e}"))?;
        let (ecosystem, name, purl) = match a.package {
            Some(p) => (p.ecosystem.trim().to_string(), p.name.trim().to_string(), p.purl),
            None => match ranges.iter().find_map(|r| r.repo.clone()) {
                // A record that affects a repository rather than a package.
                Some(repo) => ("GIT".to_string(), repo, None),
                None => return Err(format!("affected[{i}] has neither a package nor a GIT range")),
            },
        };
        if ecosystem.is_empty() || name.is_empty() {
            return Err(format!("affected[{i}]: empty package ecosystem or name"));
        }
        for s in a.severity.iter().flatten() {
            let sev = convert_severity(s, SOURCE);
            if !severities.iter().any(|x| x.vector == sev.vector) {
                severities.push(sev);
            }
        }
        let versions: Vec<String> = a.versions.iter().flatten().filter_map(scalar_text).collect();
        let status = Status::from_ranges(&ranges);
        affected.push(Affected {
            vuln_id: id.clone(),
            source: SOURCE.into(),
            ecosystem,
            name,
            purl,
            ranges,
            versions,
            status,
            ecosystem_specific: a.ecosystem_specific,
            database_specific: a.database_specific,
        });
    }
    let ds = rec.database_specific;
    let cwes = ds
        .as_ref()
        .and_then(|d| d.get("cwe_ids"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    let vendor_severity = ds.as_ref().and_then(|d| d.get("severity")).and_then(Value::as_str).map(String::from);
    let mut aliases = rec.aliases.unwrap_or_default();
    for u in rec.upstream.unwrap_or_default() {
        if !aliases.contains(&u) {
            aliases.push(u);
        }
    }
    Ok(Some(Vulnerability {
        source_url: Some(format!("https://osv.dev/vulnerability/{id}")),
        id,
        source: SOURCE.into(),
        aliases,
        related: rec.related.unwrap_or_default(),
        summary: rec.summary.filter(|s| !s.trim().is_empty()),
        details: rec.details.filter(|s| !s.trim().is_empty()),
        published: rec.published,
        modified: rec.modified,
        cwes,
        references: rec.references.into_iter().flatten().map(|r| Reference { kind: r.kind, url: r.url }).collect(),
        severities,
        vendor_severity,
        database_specific: ds,
        affected,
    }))
}

pub fn import(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    let id = value.get("id").and_then(Value::as_str).unwrap_or("").to_string();
    match convert(value) {
        Ok(Some(v)) => put(w, name, "osv", &v, report),
        Ok(None) => {
            w.remove(&id, SOURCE)?;
            report.withdrawn += 1;
            Ok(())
        }
        Err(reason) => {
            report.skip(name, reason);
            Ok(())
        }
    }
}
