//! victims-cve-db YAML (`database/java/YYYY/N.yaml`, `database/python/YYYY/N.yaml`): one CVE per
//! file with `affected[{groupId, artifactId | name, version[], fixedin[]}]`.
//!
//! Version constraints are `OP VERSION[,SERIES]` (`<=10.5.3.0_1,10.5`: up to that version within
//! the 10.5 series). Each `version` entry becomes an ECOSYSTEM range starting at the series (or
//! 0); the lists are also kept verbatim in `ecosystem_specific`.

use serde_json::{json, Value};

use super::{put, str_field, str_list, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

pub const SOURCE: &str = "victims";

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn list(v: &Value, key: &str) -> Vec<String> {
    v.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(scalar).collect()).unwrap_or_default()
}

fn range_of(constraint: &str) -> Option<Range> {
    let (cond, series) = match constraint.split_once(',') {
        Some((c, s)) => (c.trim(), Some(s.trim())),
        None => (constraint.trim(), None),
    };
    let start = Event::Introduced(series.unwrap_or("0").to_string());
    let end = if let Some(v) = cond.strip_prefix("<=") {
        Event::LastAffected(v.trim().to_string())
    } else if let Some(v) = cond.strip_prefix('<') {
        Event::Fixed(v.trim().to_string())
    } else if let Some(v) = cond.strip_prefix("==").or_else(|| cond.strip_prefix('=')) {
        return Some(Range { kind: RangeKind::Ecosystem, repo: None, events: vec![Event::Introduced(v.trim().into()), Event::LastAffected(v.trim().into())] });
    } else if let Some(v) = cond.strip_prefix(">=") {
        return Some(Range { kind: RangeKind::Ecosystem, repo: None, events: vec![Event::Introduced(v.trim().into())] });
    } else {
        return None;
    };
    Some(Range { kind: RangeKind::Ecosystem, repo: None, events: vec![start, end] })
}

pub fn import(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    match convert(&value) {
        Ok(v) => put(w, name, "victims", &v, report),
        Err(reason) => {
            report.skip(name, reason);
            Ok(())
        }
    }
}

fn convert(e: &Value) -> Result<Vulnerability, String> {
    let cve = e.get("cve").and_then(scalar).ok_or("entry without cve")?;
    let id = if cve.starts_with("CVE-") { cve } else { format!("CVE-{cve}") };
    let mut affected = Vec::new();
    for (i, a) in e.get("affected").and_then(Value::as_array).ok_or("entry without an affected list")?.iter().enumerate() {
        let (ecosystem, pkg) = match (str_field(a, "groupId"), str_field(a, "artifactId"), str_field(a, "name")) {
            (Some(g), Some(art), _) => ("Maven", format!("{g}:{art}")),
            (_, _, Some(n)) => ("PyPI", n),
            _ => return Err(format!("affected[{i}] names no package")),
        };
        let versions = list(a, "version");
        let fixedin = list(a, "fixedin");
        let mut ranges = Vec::new();
        for c in &versions {
            ranges.push(range_of(c).ok_or_else(|| format!("affected[{i}]: unsupported version constraint {c:?}"))?);
        }
        affected.push(Affected {
            ecosystem: ecosystem.into(),
            name: pkg,
            ranges,
            status: if fixedin.is_empty() { Status::Affected } else { Status::Fixed },
            ecosystem_specific: Some(json!({ "version": versions, "fixedin": fixedin })),
            ..Default::default()
        });
    }
    let mut database_specific = serde_json::Map::new();
    for k in ["cvss_v2", "cvss_v3", "package_urls"] {
        if let Some(x) = e.get(k) {
            database_specific.insert(k.into(), x.clone());
        }
    }
    Ok(Vulnerability {
        id,
        source: SOURCE.into(),
        summary: str_field(e, "title"),
        details: str_field(e, "description"),
        references: str_list(e, "references").into_iter().map(|url| Reference { kind: None, url }).collect(),
        database_specific: (!database_specific.is_empty()).then_some(Value::Object(database_specific)),
        affected,
        ..Default::default()
    })
}
