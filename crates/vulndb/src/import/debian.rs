//! Debian security data:
//! - the security tracker's JSON (`https://security-tracker.debian.org/tracker/data/json`):
//!   `{source-package: {CVE-id: {description, scope, releases: {codename: {status, fixed_version,
//!   urgency, nodsa, nodsa_reason, repositories}}}}}`, one record per CVE (source `debian-tracker`);
//! - the tracker's DSA and DLA lists (`data/DSA/list`, `data/DLA/list`), one record per advisory
//!   (sources `debian-dsa`, `debian-dla`).
//!
//! Releases become OSV ecosystems by version number (`bookworm` -> `Debian:12`); names are
//! Debian *source* package names.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{put, str_field, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

/// `Debian:<version>` for a release codename (OSV's Debian ecosystem names).
pub fn ecosystem_for_codename(codename: &str) -> String {
    let v = match codename {
        "buzz" => "1.1",
        "rex" => "1.2",
        "bo" => "1.3",
        "hamm" => "2.0",
        "slink" => "2.1",
        "potato" => "2.2",
        "woody" => "3.0",
        "sarge" => "3.1",
        "etch" => "4.0",
        "lenny" => "5.0",
        "squeeze" => "6.0",
        "wheezy" => "7",
        "jessie" => "8",
        "stretch" => "9",
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "duke" => "15",
        other => other,
    };
    format!("Debian:{v}")
}

pub fn is_tracker_json(obj: &Map<String, Value>) -> bool {
    !obj.is_empty()
        && obj.values().take(20).all(|pkg| {
            pkg.as_object().is_some_and(|cves| {
                cves.iter().take(5).all(|(k, v)| (k.starts_with("CVE-") || k.starts_with("TEMP-")) && v.get("releases").is_some())
            })
        })
}

pub fn import_tracker(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    const SOURCE: &str = "debian-tracker";
    let Value::Object(packages) = value else { return Ok(()) };
    let mut by_cve: BTreeMap<String, Vulnerability> = BTreeMap::new();
    for (package, cves) in packages {
        let Value::Object(cves) = cves else {
            report.skip(&format!("{name}: {package}"), "package entry is not an object");
            continue;
        };
        for (cve, entry) in cves {
            let Some(releases) = entry.get("releases").and_then(Value::as_object) else {
                report.skip(&format!("{name}: {package}/{cve}"), "entry without releases");
                continue;
            };
            let v = by_cve.entry(cve.clone()).or_insert_with(|| Vulnerability {
                id: cve.clone(),
                source: SOURCE.into(),
                details: str_field(&entry, "description"),
                source_url: Some(format!("https://security-tracker.debian.org/tracker/{cve}")),
                ..Default::default()
            });
            for (codename, rel) in releases {
                let status_text = str_field(rel, "status").unwrap_or_default();
                let fixed = str_field(rel, "fixed_version");
                let urgency = str_field(rel, "urgency");
                let nodsa_reason = str_field(rel, "nodsa_reason");
                let (status, ranges) = match (status_text.as_str(), fixed.as_deref()) {
                    // "0" means the release never had the vulnerable code.
                    ("resolved", Some("0")) => (Status::NotAffected, vec![]),
                    ("resolved", Some(f)) => (Status::Fixed, vec![Range::before(RangeKind::Ecosystem, Some(f))]),
                    _ if urgency.as_deref() == Some("end-of-life") || nodsa_reason.as_deref() == Some("ignored") => {
                        (Status::WillNotFix, vec![Range::before(RangeKind::Ecosystem, None)])
                    }
                    _ => (Status::Affected, vec![Range::before(RangeKind::Ecosystem, None)]),
                };
                let mut specific = Map::new();
                for key in ["status", "urgency", "nodsa", "nodsa_reason"] {
                    if let Some(x) = rel.get(key) {
                        specific.insert(key.into(), x.clone());
                    }
                }
                v.affected.push(Affected {
                    ecosystem: ecosystem_for_codename(codename),
                    name: package.clone(),
                    status,
                    ranges,
                    ecosystem_specific: Some(Value::Object(specific)),
                    ..Default::default()
                });
            }
        }
    }
    for v in by_cve.values() {
        put(w, name, "debian-tracker", v, report)?;
    }
    Ok(())
}

/// `[DD Mon YYYY] DSA-...` / `DLA-...` at the start of the text.
pub fn looks_like_list(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() > 16 && b[0] == b'[' && b[1].is_ascii_digit() && parse_header(text.lines().next().unwrap_or("")).is_some()
}

struct Header<'a> {
    date: &'a str,
    id: &'a str,
    package: &'a str,
    summary: &'a str,
}

fn parse_header(line: &str) -> Option<Header<'_>> {
    let rest = line.strip_prefix('[')?;
    let (date, rest) = rest.split_once(']')?;
    let rest = rest.trim_start();
    let (id, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !(id.starts_with("DSA-") || id.starts_with("DLA-")) {
        return None;
    }
    let (package, summary) = rest.trim().split_once(" - ").unwrap_or((rest.trim(), ""));
    Some(Header { date, id, package: package.trim(), summary: summary.trim() })
}

/// `29 Mar 2023` -> `2023-03-29T00:00:00Z`.
fn list_date(d: &str) -> Option<String> {
    let mut it = d.split_whitespace();
    let day: u32 = it.next()?.parse().ok()?;
    let month_name = it.next()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| month_name.starts_with(m))?
        + 1;
    let year: u32 = it.next()?.parse().ok()?;
    Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"))
}

pub fn import_list(w: &mut Writer<'_>, name: &str, text: &str, report: &mut ImportReport) -> Result<()> {
    let mut current: Option<Vulnerability> = None;
    let mut notes: Vec<String> = Vec::new();
    let flush = |w: &mut Writer<'_>, cur: &mut Option<Vulnerability>, notes: &mut Vec<String>, report: &mut ImportReport| -> Result<()> {
        if let Some(mut v) = cur.take() {
            if !notes.is_empty() {
                v.database_specific = Some(json!({ "notes": std::mem::take(notes) }));
            }
            let format = v.source.clone();
            put(w, name, &format, &v, report)?;
        }
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            flush(w, &mut current, &mut notes, report)?;
            match parse_header(line) {
                Some(h) => {
                    let source = if h.id.starts_with("DSA-") { "debian-dsa" } else { "debian-dla" };
                    let kind = if h.id.starts_with("DSA-") { "dsa" } else { "dla" };
                    let base = h.id.rsplit_once('-').map(|(b, _)| b).unwrap_or(h.id);
                    current = Some(Vulnerability {
                        id: h.id.to_string(),
                        source: source.into(),
                        summary: Some(format!("{} - {}", h.package, h.summary)),
                        published: list_date(h.date),
                        source_url: Some(format!("https://security-tracker.debian.org/tracker/{}", if kind == "dsa" { h.id } else { base })),
                        ..Default::default()
                    });
                }
                None => report.skip(&format!("{name}:{}", n + 1), format!("malformed advisory header {line:?}")),
            }
            continue;
        }
        let Some(v) = current.as_mut() else { continue };
        let body = line.trim();
        if let Some(ids) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
            v.aliases.extend(ids.split_whitespace().map(String::from));
        } else if let Some(rest) = body.strip_prefix('[') {
            // [bullseye] - xorg-server 2:1.20.11-1+deb11u6   |   [buster] - foo <not-affected> (reason)
            let Some((codename, rest)) = rest.split_once(']') else {
                report.skip(&format!("{name}:{}", n + 1), format!("malformed release line {body:?}"));
                continue;
            };
            let rest = rest.trim().trim_start_matches('-').trim();
            let mut parts = rest.splitn(2, char::is_whitespace);
            let package = parts.next().unwrap_or("").to_string();
            let version = parts.next().unwrap_or("").trim();
            let (status, ranges) = if version.starts_with("<not-affected>") {
                (Status::NotAffected, vec![])
            } else if version.starts_with("<unfixed>") || version.is_empty() {
                (Status::Affected, vec![Range::before(RangeKind::Ecosystem, None)])
            } else if version.starts_with("<end-of-life>") || version.starts_with("<ignored>") {
                (Status::WillNotFix, vec![Range::before(RangeKind::Ecosystem, None)])
            } else if version.starts_with('<') {
                (Status::Affected, vec![Range::before(RangeKind::Ecosystem, None)])
            } else {
                let fixed = version.split_whitespace().next().unwrap_or(version);
                (Status::Fixed, vec![Range::before(RangeKind::Ecosystem, Some(fixed))])
            };
            if package.is_empty() {
                report.skip(&format!("{name}:{}", n + 1), format!("release line without a package {body:?}"));
                continue;
            }
            v.affected.push(Affected {
                ecosystem: ecosystem_for_codename(codename.trim()),
                name: package,
                status,
                ranges,
                ..Default::default()
            });
        } else if let Some(note) = body.strip_prefix("NOTE:") {
            notes.push(note.trim().to_string());
        }
    }
    flush(w, &mut current, &mut notes, report)?;
    Ok(())
}
