//! RustSec advisories in their own format (rustsec/advisory-db): Markdown with a TOML front
//! matter in a ```` ```toml ```` fence (`[advisory]`, `[versions] patched/unaffected`,
//! `[affected]`), then `# Title` and the description.
//!
//! `patched` and `unaffected` are lists of Cargo version requirements naming the versions that
//! are NOT affected; the affected SEMVER ranges are their complement, computed the way RustSec's
//! own OSV export does (`introduced` at the upper end of each unaffected span, `fixed` at the
//! start of the next). Advisories under `crates/` get ecosystem `crates.io`; those under `rust/`
//! (the toolchain: `std`, `rustdoc`, ...) get ecosystem `Rust`.

use std::cmp::Ordering;

use semver::{Comparator, Op, Version, VersionReq};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{put, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

pub const SOURCE: &str = "rustsec";

#[derive(Deserialize)]
struct Front {
    advisory: Advisory,
    #[serde(default)]
    versions: Versions,
    #[serde(default)]
    affected: Option<toml::Value>,
}

#[derive(Deserialize)]
struct Advisory {
    id: String,
    package: String,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    related: Vec<String>,
    #[serde(default)]
    cvss: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    informational: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    references: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Versions {
    #[serde(default)]
    patched: Vec<String>,
    #[serde(default)]
    unaffected: Vec<String>,
}

/// Splits the front matter and the Markdown body.
fn split(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix("```toml")?;
    let end = rest.find("\n```")?;
    Some((&rest[..end], &rest[end + 4..]))
}

pub fn import(w: &mut Writer<'_>, name: &str, text: &str, report: &mut ImportReport) -> Result<()> {
    match convert(name, text) {
        Ok(Ok(v)) => put(w, name, "rustsec", &v, report),
        Ok(Err(id)) => {
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

/// `Ok(Ok(record))`, `Ok(Err(id))` for a withdrawn advisory, `Err(reason)` when malformed.
pub fn convert(name: &str, text: &str) -> Result<Result<Vulnerability, String>, String> {
    let (front, body) = split(text).ok_or("no ```toml front matter")?;
    let front: Front = toml::from_str(front).map_err(|e| format!("invalid RustSec TOML: {}", e.message()))?;
    let a = front.advisory;
    if a.withdrawn.is_some() {
        return Ok(Err(a.id));
    }
    let ranges = affected_ranges(&front.versions.patched, &front.versions.unaffected)?;
    let body = body.trim();
    let (summary, details) = match body.strip_prefix("# ") {
        Some(rest) => {
            let (title, more) = rest.split_once('\n').unwrap_or((rest, ""));
            (Some(title.trim().to_string()), Some(more.trim().to_string()).filter(|d| !d.is_empty()))
        }
        None => (None, Some(body.to_string()).filter(|d| !d.is_empty())),
    };
    // Toolchain advisories live under rust/ and carry a CVE id instead of a RUSTSEC id.
    let toolchain = name.contains("/rust/") || name.contains("!rust/") || name.starts_with("rust/") || !a.id.starts_with("RUSTSEC-");
    let ecosystem = if toolchain { "Rust" } else { "crates.io" };
    let mut ecosystem_specific = serde_json::Map::new();
    if let Some(affected) = front.affected {
        ecosystem_specific.insert("affects".into(), serde_json::to_value(affected).map_err(|e| e.to_string())?);
    }
    let status = if a.informational.is_some() && front.versions.patched.is_empty() && front.versions.unaffected.is_empty() {
        Status::Affected
    } else {
        Status::from_ranges(&ranges)
    };
    let mut references: Vec<Reference> = Vec::new();
    if let Some(u) = &a.url {
        references.push(Reference { kind: Some("REPORT".into()), url: u.clone() });
    }
    references.extend(a.references.iter().map(|u| Reference { kind: Some("WEB".into()), url: u.clone() }));
    let severities = a.cvss.iter().map(|c| crate::cvss::severity(SOURCE, c, None)).collect();
    Ok(Ok(Vulnerability {
        source_url: Some(format!("https://rustsec.org/advisories/{}.html", a.id)),
        id: a.id.clone(),
        source: SOURCE.into(),
        aliases: a.aliases,
        related: a.related,
        summary,
        details,
        published: a.date.map(|d| format!("{d}T12:00:00Z")),
        references,
        severities,
        database_specific: Some(json!({
            "categories": a.categories,
            "keywords": a.keywords,
            "informational": a.informational,
            "patched": front.versions.patched,
            "unaffected": front.versions.unaffected,
        })),
        affected: vec![Affected {
            vuln_id: a.id,
            source: SOURCE.into(),
            ecosystem: ecosystem.into(),
            purl: (!toolchain).then(|| format!("pkg:cargo/{}", a.package)),
            name: a.package,
            ranges,
            status,
            ecosystem_specific: (!ecosystem_specific.is_empty()).then_some(Value::Object(ecosystem_specific)),
            ..Default::default()
        }],
        ..Default::default()
    }))
}

/// A version bound: the version and whether it is included.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bound {
    v: Version,
    inclusive: bool,
}

/// A span of versions, `None` meaning unbounded.
#[derive(Clone, Debug)]
struct Span {
    lo: Option<Bound>,
    hi: Option<Bound>,
}

fn full(c: &Comparator) -> Version {
    Version::new(c.major, c.minor.unwrap_or(0), c.patch.unwrap_or(0))
}

fn with_pre(mut v: Version, c: &Comparator) -> Version {
    v.pre = c.pre.clone();
    v
}

/// The versions one Cargo requirement (a conjunction of comparators) matches, as one span.
fn span_of(req: &VersionReq) -> Result<Span, String> {
    let mut lo: Option<Bound> = None;
    let mut hi: Option<Bound> = None;
    let tighten_lo = |lo: &mut Option<Bound>, b: Bound| {
        if lo.as_ref().is_none_or(|cur| cmp_lo(&b, cur) == Ordering::Greater) {
            *lo = Some(b);
        }
    };
    let tighten_hi = |hi: &mut Option<Bound>, b: Bound| {
        if hi.as_ref().is_none_or(|cur| cmp_hi(&b, cur) == Ordering::Less) {
            *hi = Some(b);
        }
    };
    for c in &req.comparators {
        let v = with_pre(full(c), c);
        match c.op {
            Op::GreaterEq => tighten_lo(&mut lo, Bound { v, inclusive: true }),
            Op::Greater => match (c.minor, c.patch) {
                (Some(_), Some(_)) => tighten_lo(&mut lo, Bound { v, inclusive: false }),
                (Some(m), None) => tighten_lo(&mut lo, Bound { v: Version::new(c.major, m + 1, 0), inclusive: true }),
                _ => tighten_lo(&mut lo, Bound { v: Version::new(c.major + 1, 0, 0), inclusive: true }),
            },
            Op::Less => tighten_hi(&mut hi, Bound { v, inclusive: false }),
            Op::LessEq => match (c.minor, c.patch) {
                (Some(_), Some(_)) => tighten_hi(&mut hi, Bound { v, inclusive: true }),
                (Some(m), None) => tighten_hi(&mut hi, Bound { v: Version::new(c.major, m + 1, 0), inclusive: false }),
                _ => tighten_hi(&mut hi, Bound { v: Version::new(c.major + 1, 0, 0), inclusive: false }),
            },
            Op::Exact | Op::Wildcard => match (c.minor, c.patch) {
                (Some(_), Some(_)) => {
                    tighten_lo(&mut lo, Bound { v: v.clone(), inclusive: true });
                    tighten_hi(&mut hi, Bound { v, inclusive: true });
                }
                (Some(m), None) => {
                    tighten_lo(&mut lo, Bound { v, inclusive: true });
                    tighten_hi(&mut hi, Bound { v: Version::new(c.major, m + 1, 0), inclusive: false });
                }
                _ => {
                    tighten_lo(&mut lo, Bound { v, inclusive: true });
                    tighten_hi(&mut hi, Bound { v: Version::new(c.major + 1, 0, 0), inclusive: false });
                }
            },
            Op::Tilde => {
                tighten_lo(&mut lo, Bound { v, inclusive: true });
                let upper = match c.minor {
                    Some(m) => Version::new(c.major, m + 1, 0),
                    None => Version::new(c.major + 1, 0, 0),
                };
                tighten_hi(&mut hi, Bound { v: upper, inclusive: false });
            }
            Op::Caret => {
                tighten_lo(&mut lo, Bound { v, inclusive: true });
                let upper = match (c.major, c.minor, c.patch) {
                    (0, Some(0), Some(p)) => Version::new(0, 0, p + 1),
                    (0, Some(m), _) => Version::new(0, m + 1, 0),
                    (0, None, _) => Version::new(1, 0, 0),
                    (maj, _, _) => Version::new(maj + 1, 0, 0),
                };
                tighten_hi(&mut hi, Bound { v: upper, inclusive: false });
            }
            _ => return Err(format!("unsupported version requirement operator in {req}")),
        }
    }
    Ok(Span { lo, hi })
}

/// Orders lower bounds: a smaller version first; at the same version an inclusive bound first.
fn cmp_lo(a: &Bound, b: &Bound) -> Ordering {
    a.v.cmp(&b.v).then_with(|| b.inclusive.cmp(&a.inclusive))
}

/// Orders upper bounds: a smaller version first; at the same version an exclusive bound first.
fn cmp_hi(a: &Bound, b: &Bound) -> Ordering {
    a.v.cmp(&b.v).then_with(|| a.inclusive.cmp(&b.inclusive))
}

/// Whether a span ending at `hi` touches or overlaps a span starting at `lo`.
fn touches(hi: &Option<Bound>, lo: &Option<Bound>) -> bool {
    match (hi, lo) {
        (None, _) | (_, None) => true,
        (Some(h), Some(l)) => match h.v.cmp(&l.v) {
            Ordering::Greater => true,
            Ordering::Equal => h.inclusive || l.inclusive,
            Ordering::Less => false,
        },
    }
}

/// SEMVER ranges of the affected versions: the complement of the patched and unaffected spans.
fn affected_ranges(patched: &[String], unaffected: &[String]) -> Result<Vec<Range>, String> {
    let mut spans = Vec::new();
    for r in patched.iter().chain(unaffected) {
        let req = VersionReq::parse(r.trim()).map_err(|e| format!("invalid version requirement {r:?}: {e}"))?;
        spans.push(span_of(&req)?);
    }
    spans.sort_by(|a, b| match (&a.lo, &b.lo) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_lo(x, y),
    });
    let mut merged: Vec<Span> = Vec::new();
    for s in spans {
        if let Some(last) = merged.last_mut() {
            if touches(&last.hi, &s.lo) {
                let extend = match (&last.hi, &s.hi) {
                    (None, _) => false,
                    (_, None) => true,
                    (Some(a), Some(b)) => cmp_hi(b, a) == Ordering::Greater,
                };
                if extend {
                    last.hi = s.hi;
                }
                continue;
            }
        }
        merged.push(s);
    }
    let mut events = Vec::new();
    let mut cursor: Option<Event> = Some(Event::Introduced("0.0.0-0".into()));
    for s in &merged {
        // The affected gap before this unaffected span.
        match &s.lo {
            None => {}
            Some(lo) if lo.v == Version::new(0, 0, 0) && lo.v.pre.is_empty() && lo.inclusive && cursor == Some(Event::Introduced("0.0.0-0".into())) => {
                // `>= 0.0.0` from the start: nothing below it matters.
            }
            Some(lo) => {
                if let Some(start) = cursor.take() {
                    events.push(start);
                    events.push(if lo.inclusive { Event::Fixed(lo.v.to_string()) } else { Event::LastAffected(lo.v.to_string()) });
                }
            }
        }
        cursor = match &s.hi {
            None => None,
            Some(hi) if hi.inclusive => Some(Event::Introduced(next_patch(&hi.v).to_string())),
            Some(hi) => Some(Event::Introduced(hi.v.to_string())),
        };
    }
    if let Some(start) = cursor {
        events.push(start);
    }
    if events.is_empty() {
        return Ok(vec![]);
    }
    // RustSec's OSV export writes the open start as "0.0.0-0".
    Ok(vec![Range { kind: RangeKind::Semver, repo: None, events }])
}

fn next_patch(v: &Version) -> Version {
    Version::new(v.major, v.minor, v.patch + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(patched: &[&str], unaffected: &[&str]) -> Vec<Event> {
        let p: Vec<String> = patched.iter().map(|s| s.to_string()).collect();
        let u: Vec<String> = unaffected.iter().map(|s| s.to_string()).collect();
        affected_ranges(&p, &u).unwrap().into_iter().flat_map(|r| r.events).collect()
    }

    #[test]
    fn complements_patched_and_unaffected() {
        use Event::*;
        assert_eq!(events(&[">= 1.2.0"], &["< 1.0.0"]), vec![Introduced("1.0.0".into()), Fixed("1.2.0".into())]);
        assert_eq!(events(&[], &[]), vec![Introduced("0.0.0-0".into())]);
        assert_eq!(
            events(&[">= 0.5.2, < 0.6.0", ">= 0.6.1"], &[]),
            vec![Introduced("0.0.0-0".into()), Fixed("0.5.2".into()), Introduced("0.6.0".into()), Fixed("0.6.1".into())]
        );
        assert_eq!(events(&["^1.2.3", ">= 2.0.1"], &[]), vec![
            Introduced("0.0.0-0".into()),
            Fixed("1.2.3".into()),
            Introduced("2.0.0".into()),
            Fixed("2.0.1".into())
        ]);
        // Cargo reads `> 0` as `>= 1.0.0`.
        assert_eq!(events(&[], &["> 0"]), vec![Introduced("0.0.0-0".into()), Fixed("1.0.0".into())]);
    }
}
