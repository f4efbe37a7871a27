//! The Node.js security working group's vulnerability DB (nodejs/security-wg `vuln/`):
//! - `vuln/npm/N.json`: npm package advisories (`module_name`, `vulnerable_versions`,
//!   `patched_versions` as node-semver ranges) -> id `NSWG-ECO-N`, ecosystem `npm`;
//! - `vuln/core/N.json`: Node.js itself (`vulnerable`/`patched` release-line ranges) -> id
//!   `NSWG-CORE-N`, ecosystem `Node.js`, package `node`;
//! - `vuln/deps/N.json`: statements that a CVE in a bundled dependency does not affect Node.js
//!   -> id `NSWG-DEPS-N`, status not affected;
//! - `index.json` in each folder: all entries of the folder keyed by N.
//!
//! The kind is read from the content (`module_name`, `reason`), so single files import alone.
//!
//! node-semver ranges that are a single `<V` / `<=V` become an OSV SEMVER range; every range is
//! also kept verbatim in `ecosystem_specific` for an exact node-semver check by the matcher.

use serde_json::{json, Map, Value};

use super::{put, str_field, str_list, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

pub const SOURCE: &str = "nodejs-security-wg";

/// `index.json` aggregate: numeric keys, entries with a `cve` list or a `module_name`.
pub fn is_index(obj: &Map<String, Value>) -> bool {
    !obj.is_empty()
        && obj.iter().all(|(k, v)| {
            k.chars().all(|c| c.is_ascii_digit()) && (v.get("cve").is_some_and(Value::is_array) || v.get("module_name").is_some())
        })
}

fn stem(name: &str) -> String {
    let file = name.rsplit(['/', '!']).next().unwrap_or(name);
    file.strip_suffix(".json").unwrap_or(file).to_string()
}

pub fn import_index(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    if let Value::Object(map) = value {
        for (key, entry) in map {
            let kind = if entry.get("module_name").is_some() {
                "ECO"
            } else if entry.get("reason").is_some() {
                "DEPS"
            } else {
                "CORE"
            };
            let at = format!("{name}#{key}");
            match convert(kind, &key, &entry) {
                Ok(v) => put(w, &at, "nodejs-security-wg", &v, report)?,
                Err(reason) => report.skip(&at, reason),
            }
        }
    }
    Ok(())
}

pub fn import(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    let (kind, key) = if value.get("module_name").is_some() {
        ("ECO", value.get("id").map(|i| i.to_string().trim_matches('"').to_string()).unwrap_or_else(|| stem(name)))
    } else if value.get("reason").is_some() {
        // deps/ entries are VEX statements with a `reason`; core/ entries have ranges.
        ("DEPS", stem(name))
    } else {
        ("CORE", stem(name))
    };
    match convert(kind, &key, &value) {
        Ok(v) => put(w, name, "nodejs-security-wg", &v, report),
        Err(reason) => {
            report.skip(name, reason);
            Ok(())
        }
    }
}

/// A single-comparator node-semver range as an OSV SEMVER range.
fn simple_range(vulnerable: &str) -> Option<Range> {
    let v = vulnerable.trim();
    if v.contains("||") || v.contains(' ') {
        return None;
    }
    let (event, ver) = if let Some(x) = v.strip_prefix("<=") {
        (Event::LastAffected(x.trim().to_string()), x)
    } else if let Some(x) = v.strip_prefix('<') {
        (Event::Fixed(x.trim().to_string()), x)
    } else {
        return None;
    };
    semver::Version::parse(ver.trim()).ok()?;
    Some(Range { kind: RangeKind::Semver, repo: None, events: vec![Event::Introduced("0".into()), event] })
}

fn convert(kind: &str, key: &str, e: &Value) -> Result<Vulnerability, String> {
    let id = format!("NSWG-{kind}-{key}");
    let mut refs: Vec<Reference> = str_list(e, "references").into_iter().map(|url| Reference { kind: None, url }).collect();
    if let Some(r) = str_field(e, "ref") {
        refs.push(Reference { kind: Some("ADVISORY".into()), url: r });
    }
    let mut v = Vulnerability {
        id: id.clone(),
        source: SOURCE.into(),
        references: refs,
        source_url: Some("https://github.com/nodejs/security-wg/tree/main/vuln".into()),
        ..Default::default()
    };
    match kind {
        "ECO" => {
            let module = str_field(e, "module_name").ok_or("npm entry without module_name")?;
            let vulnerable = str_field(e, "vulnerable_versions").ok_or("npm entry without vulnerable_versions")?;
            let patched = str_field(e, "patched_versions");
            v.aliases = str_list(e, "cves");
            v.summary = str_field(e, "title");
            v.details = str_field(e, "overview");
            v.published = str_field(e, "publish_date").or_else(|| str_field(e, "created_at"));
            v.modified = str_field(e, "updated_at");
            if let Some(vec) = str_field(e, "cvss_vector") {
                v.severities.push(crate::cvss::severity(SOURCE, &vec, e.get("cvss_score").and_then(Value::as_f64)));
            }
            let has_fix = patched.as_deref().is_some_and(|p| p != "<0.0.0" && !p.is_empty());
            v.affected.push(Affected {
                ecosystem: "npm".into(),
                name: module,
                ranges: simple_range(&vulnerable).into_iter().collect(),
                status: if has_fix { Status::Fixed } else { Status::Affected },
                ecosystem_specific: Some(json!({ "vulnerable_versions": vulnerable, "patched_versions": patched })),
                ..Default::default()
            });
        }
        _ => {
            let cves = str_list(e, "cve");
            v.aliases = cves;
            v.summary = str_field(e, "description");
            v.details = str_field(e, "overview");
            v.vendor_severity = str_field(e, "severity");
            let (status, specific) = if kind == "DEPS" {
                (Status::NotAffected, json!({ "reason": str_field(e, "reason") }))
            } else {
                let vulnerable = str_field(e, "vulnerable").ok_or("core entry without `vulnerable`")?;
                let patched = str_field(e, "patched");
                let status = if patched.is_some() { Status::Fixed } else { Status::Affected };
                (status, json!({ "vulnerable": vulnerable, "patched": patched, "affectedEnvironments": e.get("affectedEnvironments") }))
            };
            v.affected.push(Affected {
                ecosystem: "Node.js".into(),
                name: "node".into(),
                status,
                ecosystem_specific: Some(specific),
                ..Default::default()
            });
        }
    }
    Ok(v)
}
