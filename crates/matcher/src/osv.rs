//! OSV range evaluation exactly as the OSV schema's "Evaluation" section specifies it
//! (https://ossf.github.io/osv-schema/#evaluation):
//!
//! - a version is affected when it is listed in `versions`, or when any range includes it;
//! - a range's events are sorted by version (`introduced: "0"` first; equal versions keep their
//!   record order, as Python's stable sort does), then walked: `introduced` (v >= it) turns
//!   "affected" on, `fixed` (v >= it) and `last_affected` (v > it) turn it off;
//! - `limit` events bound the range: a version not below some limit is outside it;
//! - ECOSYSTEM ranges compare with the ecosystem's own order, SEMVER ranges with SemVer 2.0
//!   precedence (node-semver's order); GIT ranges name commits and are not evaluated.

use std::cmp::Ordering;

use kensa_version::{Scheme, Version};
use kensa_vulndb::{Affected, Event, Range, RangeKind};

/// The outcome of evaluating one affected entry against one installed version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeMatch {
    /// The first `fixed` version above the installed one in the range that includes it
    /// (`None`: no fix in that range, or matched through the `versions` list only).
    pub fixed_in: Option<String>,
}

/// A version an advisory gives that its scheme rejects; the range it is in is not evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadVersion {
    pub version: String,
    pub reason: String,
}

/// Parses `s` with `scheme`, caching nothing: advisories' versions are parsed per comparison.
fn parse(scheme: Scheme, s: &str) -> Result<Version, BadVersion> {
    Version::parse(scheme, s).or_else(|e| {
        // GitHub's npm advisories sometimes write `introduced: "1.0"`; node-semver rejects it,
        // osv-scanner reads it as 1.0.0, which is what the advisory means. Pad, then retry.
        match (scheme, pad_semver(s)) {
            (Scheme::Npm, Some(padded)) => Version::parse(scheme, &padded).map_err(|_| BadVersion { version: s.to_string(), reason: e.to_string() }),
            _ => Err(BadVersion { version: s.to_string(), reason: e.to_string() }),
        }
    })
}

/// `1` -> `1.0.0`, `1.2` -> `1.2.0`, `1.2-beta` -> `1.2.0-beta`; `None` when `s` is not a
/// short numeric core.
pub fn pad_semver(s: &str) -> Option<String> {
    let s = s.trim();
    let split = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() >= 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut padded = parts.join(".");
    for _ in parts.len()..3 {
        padded.push_str(".0");
    }
    Some(padded + rest)
}

/// The scheme a range is compared with: SEMVER ranges use SemVer precedence (node-semver), the
/// others the ecosystem's scheme.
pub fn range_scheme(kind: RangeKind, ecosystem_scheme: Scheme) -> Option<Scheme> {
    match kind {
        RangeKind::Semver => Some(Scheme::Npm),
        RangeKind::Ecosystem => Some(ecosystem_scheme),
        RangeKind::Git => None,
    }
}

/// Whether `installed` (the raw string, parsed once per scheme by the caller's closure) is
/// affected by `affected`. `Ok(None)`: not affected.
pub fn evaluate(affected: &Affected, scheme: Scheme, installed: &str) -> Result<Option<RangeMatch>, BadVersion> {
    let mut parsed: [Option<Version>; 2] = [None, None];
    let mut get = |s: Scheme| -> Result<Version, BadVersion> {
        let slot = if s == scheme { 0 } else { 1 };
        if parsed[slot].is_none() {
            parsed[slot] = Some(parse(s, installed)?);
        }
        Ok(parsed[slot].clone().expect("set above"))
    };
    let mut first_error = None;
    for r in &affected.ranges {
        let Some(s) = range_scheme(r.kind, scheme) else { continue };
        let v = match get(s) {
            Ok(v) => v,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        match range_includes(r, s, &v) {
            Ok(Some(m)) => return Ok(Some(m)),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !affected.versions.is_empty() {
        if affected.versions.iter().any(|x| x == installed) {
            return Ok(Some(RangeMatch { fixed_in: None }));
        }
        // Listed versions equal under the ecosystem's order (PEP 440 `1.0` == `1.0.0`).
        if let Ok(v) = get(scheme) {
            for x in &affected.versions {
                if let Ok(xv) = Version::parse(scheme, x) {
                    if v.compare(&xv) == Some(Ordering::Equal) {
                        return Ok(Some(RangeMatch { fixed_in: None }));
                    }
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// One range (see the module docs). `Ok(None)`: outside the range.
pub fn range_includes(range: &Range, scheme: Scheme, v: &Version) -> Result<Option<RangeMatch>, BadVersion> {
    // (version, event); `None` version = introduced "0", below everything.
    let mut events: Vec<(Option<Version>, &Event)> = Vec::with_capacity(range.events.len());
    let mut limits = Vec::new();
    for e in &range.events {
        match e {
            Event::Introduced(x) if x == "0" => events.push((None, e)),
            Event::Introduced(x) | Event::Fixed(x) | Event::LastAffected(x) => events.push((Some(parse(scheme, x)?), e)),
            Event::Limit(x) if x == "*" => {}
            Event::Limit(x) => limits.push(parse(scheme, x)?),
        }
    }
    if !limits.is_empty() && !limits.iter().any(|l| cmp(v, l) == Ordering::Less) {
        return Ok(None);
    }
    events.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp(x, y),
    });
    let mut affected = false;
    for (ev, e) in &events {
        match (e, ev) {
            (Event::Introduced(_), None) => affected = true,
            (Event::Introduced(_), Some(x)) if cmp(v, x) != Ordering::Less => affected = true,
            (Event::Fixed(_), Some(x)) if cmp(v, x) != Ordering::Less => affected = false,
            (Event::LastAffected(_), Some(x)) if cmp(v, x) == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    if !affected {
        return Ok(None);
    }
    let fixed_in = events.iter().find_map(|(ev, e)| match (e, ev) {
        (Event::Fixed(s), Some(x)) if cmp(v, x) == Ordering::Less => Some(s.clone()),
        _ => None,
    });
    Ok(Some(RangeMatch { fixed_in }))
}

fn cmp(a: &Version, b: &Version) -> Ordering {
    a.compare(b).unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kensa_vulndb::Status;

    fn affected(ranges: Vec<(RangeKind, Vec<Event>)>, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: "PyPI".into(),
            name: "x".into(),
            ranges: ranges.into_iter().map(|(kind, events)| Range { kind, repo: None, events }).collect(),
            versions: versions.iter().map(|s| s.to_string()).collect(),
            status: Status::Fixed,
            ..Default::default()
        }
    }

    fn hit(a: &Affected, scheme: Scheme, v: &str) -> Option<Option<String>> {
        evaluate(a, scheme, v).unwrap().map(|m| m.fixed_in)
    }

    use Event::*;
    use RangeKind::*;

    #[test]
    fn introduced_fixed_and_multiple_ranges() {
        let a = affected(
            vec![(Ecosystem, vec![Introduced("0".into()), Fixed("1.2".into()), Introduced("2.0".into()), Fixed("2.0.5".into())])],
            &[],
        );
        assert_eq!(hit(&a, Scheme::Pypi, "1.1"), Some(Some("1.2".into())));
        assert_eq!(hit(&a, Scheme::Pypi, "1.2"), None);
        assert_eq!(hit(&a, Scheme::Pypi, "1.9"), None);
        assert_eq!(hit(&a, Scheme::Pypi, "2.0"), Some(Some("2.0.5".into())));
        assert_eq!(hit(&a, Scheme::Pypi, "2.0.5"), None);
        // Events out of order are sorted first.
        let b = affected(vec![(Ecosystem, vec![Fixed("2.0.5".into()), Introduced("2.0".into())])], &[]);
        assert_eq!(hit(&b, Scheme::Pypi, "2.0.1"), Some(Some("2.0.5".into())));
        assert_eq!(hit(&b, Scheme::Pypi, "1.0"), None);
    }

    #[test]
    fn last_affected_includes_its_version() {
        let a = affected(vec![(Ecosystem, vec![Introduced("1.0".into()), LastAffected("1.4".into())])], &[]);
        assert_eq!(hit(&a, Scheme::Pypi, "0.9"), None);
        assert_eq!(hit(&a, Scheme::Pypi, "1.4"), Some(None));
        assert_eq!(hit(&a, Scheme::Pypi, "1.4.post1"), None);
    }

    #[test]
    fn semver_ranges_and_limits_and_lists() {
        let a = affected(vec![(Semver, vec![Introduced("0".into()), Fixed("4.17.21".into())])], &[]);
        assert_eq!(hit(&a, Scheme::Npm, "4.17.20"), Some(Some("4.17.21".into())));
        assert_eq!(hit(&a, Scheme::Npm, "4.17.21-rc.1"), Some(Some("4.17.21".into())));
        let l = affected(vec![(Ecosystem, vec![Introduced("0".into()), Limit("2.0".into())])], &[]);
        assert_eq!(hit(&l, Scheme::Pypi, "1.0"), Some(None));
        assert_eq!(hit(&l, Scheme::Pypi, "2.0"), None);
        let v = affected(vec![], &["1.0", "1.1"]);
        assert_eq!(hit(&v, Scheme::Pypi, "1.1"), Some(None));
        assert_eq!(hit(&v, Scheme::Pypi, "1.0.0"), Some(None));
        assert_eq!(hit(&v, Scheme::Pypi, "1.2"), None);
    }

    #[test]
    fn rpm_epochs_are_honoured() {
        let a = affected(vec![(Ecosystem, vec![Introduced("0".into()), Fixed("1:2.06-27.el9".into())])], &[]);
        assert!(hit(&a, Scheme::Rpm, "2.06-99.el9").is_some(), "epoch 0 < epoch 1");
        assert!(hit(&a, Scheme::Rpm, "1:2.06-26.el9").is_some());
        assert!(hit(&a, Scheme::Rpm, "1:2.06-27.el9").is_none());
        assert!(hit(&a, Scheme::Rpm, "2:1.0-1").is_none());
    }

    #[test]
    fn short_semver_versions_are_padded() {
        assert_eq!(pad_semver("1.0").as_deref(), Some("1.0.0"));
        assert_eq!(pad_semver("2").as_deref(), Some("2.0.0"));
        assert_eq!(pad_semver("1.2-beta.1").as_deref(), Some("1.2.0-beta.1"));
        assert_eq!(pad_semver("1.2.3"), None);
        assert_eq!(pad_semver("x.1"), None);
        let a = affected(vec![(Ecosystem, vec![Introduced("1.0".into()), Fixed("3.1.1".into())])], &[]);
        assert_eq!(hit(&a, Scheme::Npm, "3.0.0"), Some(Some("3.1.1".into())));
        assert_eq!(hit(&a, Scheme::Npm, "0.9.0"), None);
    }

    #[test]
    fn bad_versions_are_errors_not_matches() {
        let a = affected(vec![(Ecosystem, vec![Introduced("0".into()), Fixed("not a version!".into())])], &[]);
        assert!(evaluate(&a, Scheme::Pypi, "1.0").is_err());
    }
}
