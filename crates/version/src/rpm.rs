//! rpm: `rpmvercmp()` and `[epoch:]version[-release]` (EVR) ordering, as rpm 4.18 does it.
//!
//! Any string is an rpm version (rpm orders whatever it is given); only the empty string is
//! rejected by [`Evr::parse`], since it names no version at all.

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

/// rpm's `rpmvercmp(a, b)`: the raw segment comparison used on epoch, version and release
/// strings separately. Alphanumeric segments; separators are ignored except that `~` sorts
/// before everything (even the end) and `^` sorts after the end but before anything else.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    vercmp_bytes(a.as_bytes(), b.as_bytes())
}

/// [`vercmp`] on bytes (C strings end at the first NUL, so do these).
pub fn vercmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let a = until_nul(a);
    let b = until_nul(b);
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0usize, 0usize);
    let at = |s: &[u8], k: usize| -> u8 { if k < s.len() { s[k] } else { 0 } };
    let is_sep = |c: u8| c != 0 && !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while is_sep(at(a, i)) {
            i += 1;
        }
        while is_sep(at(b, j)) {
            j += 1;
        }
        let (ca, cb) = (at(a, i), at(b, j));
        // Tilde sorts before everything else, including the end of the string.
        if ca == b'~' || cb == b'~' {
            if ca != b'~' {
                return Ordering::Greater;
            }
            if cb != b'~' {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret sorts after the end of the string but before any other segment.
        if ca == b'^' || cb == b'^' {
            if ca == 0 {
                return Ordering::Less;
            }
            if cb == 0 {
                return Ordering::Greater;
            }
            if ca != b'^' {
                return Ordering::Greater;
            }
            if cb != b'^' {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == 0 || cb == 0 {
            break;
        }
        let (si, sj) = (i, j);
        let isnum = ca.is_ascii_digit();
        if isnum {
            while at(a, i).is_ascii_digit() {
                i += 1;
            }
            while at(b, j).is_ascii_digit() {
                j += 1;
            }
        } else {
            while at(a, i).is_ascii_alphabetic() {
                i += 1;
            }
            while at(b, j).is_ascii_alphabetic() {
                j += 1;
            }
        }
        // `b` has a segment of the other kind (empty here): numeric beats alpha.
        if sj == j {
            return if isnum { Ordering::Greater } else { Ordering::Less };
        }
        let (mut sa, mut sb) = (&a[si..i], &b[sj..j]);
        if isnum {
            while let [b'0', rest @ ..] = sa {
                sa = rest;
            }
            while let [b'0', rest @ ..] = sb {
                sb = rest;
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    let (ea, eb) = (i >= a.len(), j >= b.len());
    if ea && eb {
        Ordering::Equal
    } else if ea {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

fn until_nul(s: &[u8]) -> &[u8] {
    match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    }
}

/// A borrowed, parsed `[epoch:]version[-release]`, split as rpm's `parseEVR()` splits it:
/// the epoch is the leading digits when a `:` follows them, the release is what follows the
/// last `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvrRef<'a> {
    /// `None` when absent (compares as `0`).
    pub epoch: Option<&'a str>,
    pub version: &'a str,
    /// `None` when absent: sorts before any release (see [`compare_to_bound`] for range checks).
    pub release: Option<&'a str>,
}

impl<'a> EvrRef<'a> {
    pub fn parse(s: &'a str) -> Result<EvrRef<'a>, VersionError> {
        if s.is_empty() {
            return Err(VersionError::new(Scheme::Rpm, s, "empty version"));
        }
        Ok(Self::split(s))
    }

    /// rpm's `parseEVR()`; never fails.
    pub fn split(s: &'a str) -> EvrRef<'a> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
            let e = &s[..digits];
            (Some(if e.is_empty() { "0" } else { e }), &s[digits + 1..])
        } else {
            (None, s)
        };
        // rpm searches the last '-' from the epoch terminator on, i.e. in the version part.
        match rest.rfind('-') {
            Some(n) => EvrRef { epoch, version: &rest[..n], release: Some(&rest[n + 1..]) },
            None => EvrRef { epoch, version: rest, release: None },
        }
    }
}

/// rpm's `rpmverCmp()` (what `rpm.ver` and `rpm.labelCompare` order by): epochs (missing =
/// 0), then versions, then releases, where a missing release sorts before any release.
pub fn compare_evr(a: &EvrRef<'_>, b: &EvrRef<'_>) -> Ordering {
    vercmp(a.epoch.unwrap_or("0"), b.epoch.unwrap_or("0"))
        .then_with(|| vercmp(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(ra), Some(rb)) => vercmp(ra, rb),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        })
}

/// How rpm checks a package against a dependency range bound (`rpmdsCompare`): when the
/// bound has no release (or an empty one), releases are not compared, so `1.0-5` satisfies
/// `= 1.0`. Use this to test an installed EVR against an advisory bound written without one.
pub fn compare_to_bound(installed: &EvrRef<'_>, bound: &EvrRef<'_>) -> Ordering {
    vercmp(installed.epoch.unwrap_or("0"), bound.epoch.unwrap_or("0"))
        .then_with(|| vercmp(installed.version, bound.version))
        .then_with(|| match (installed.release, bound.release) {
            (Some(ri), Some(rb)) if !ri.is_empty() && !rb.is_empty() => vercmp(ri, rb),
            _ => Ordering::Equal,
        })
}

/// An owned, parsed rpm EVR. `Ord` is rpm's `rpmverCmp()` ordering; equality is that ordering
/// (`0:1.0-1` equals `1.0-1`), not string equality.
/// Marks an empty epoch (`:1.0`), which rpm reads as `0`.
const EPOCH_ZERO: (u32, u32) = (u32::MAX, 0);

#[derive(Debug, Clone)]
pub struct Evr {
    text: Box<str>,
    epoch: Option<(u32, u32)>,
    version: (u32, u32),
    release: Option<(u32, u32)>,
}

impl Evr {
    pub fn parse(s: &str) -> Result<Evr, VersionError> {
        EvrRef::parse(s)?;
        if s.len() >= u32::MAX as usize {
            return Err(VersionError::new(Scheme::Rpm, s, "version longer than 4 GiB"));
        }
        // Same split as `EvrRef::split`, kept as offsets into one owned string.
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
            (Some(if digits == 0 { EPOCH_ZERO } else { (0, digits as u32) }), digits + 1)
        } else {
            (None, 0)
        };
        let (version, release) = match s[rest..].rfind('-') {
            Some(n) => ((rest as u32, (rest + n) as u32), Some(((rest + n + 1) as u32, s.len() as u32))),
            None => ((rest as u32, s.len() as u32), None),
        };
        Ok(Evr { text: s.into(), epoch, version, release })
    }

    fn part(&self, span: (u32, u32)) -> &str {
        if span.0 == u32::MAX {
            "0"
        } else {
            &self.text[span.0 as usize..span.1 as usize]
        }
    }

    pub fn as_ref(&self) -> EvrRef<'_> {
        EvrRef {
            epoch: self.epoch.map(|e| self.part(e)),
            version: self.part(self.version),
            release: self.release.map(|r| self.part(r)),
        }
    }

    pub fn epoch(&self) -> Option<&str> {
        self.epoch.map(|e| self.part(e))
    }
    pub fn version(&self) -> &str {
        self.part(self.version)
    }
    pub fn release(&self) -> Option<&str> {
        self.release.map(|r| self.part(r))
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Ord for Evr {
    fn cmp(&self, other: &Evr) -> Ordering {
        compare_evr(&self.as_ref(), &other.as_ref())
    }
}
impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Evr) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Evr {
    fn eq(&self, other: &Evr) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Evr {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evr_split_like_parse_evr() {
        let e = EvrRef::split("2:1.0-3.el9");
        assert_eq!((e.epoch, e.version, e.release), (Some("2"), "1.0", Some("3.el9")));
        let e = EvrRef::split(":1.0");
        assert_eq!((e.epoch, e.version, e.release), (Some("0"), "1.0", None));
        let e = EvrRef::split("a:1.0-1-2");
        assert_eq!((e.epoch, e.version, e.release), (None, "a:1.0-1", Some("2")));
        let owned = Evr::parse(":1.0-1").unwrap();
        assert_eq!((owned.epoch(), owned.version(), owned.release()), (Some("0"), "1.0", Some("1")));
    }

    #[test]
    fn missing_release_and_epoch() {
        let c = |a: &str, b: &str| compare_evr(&EvrRef::split(a), &EvrRef::split(b));
        assert_eq!(c("1.0", "1.0-5"), Ordering::Less);
        assert_eq!(compare_to_bound(&EvrRef::split("1.0-5"), &EvrRef::split("1.0")), Ordering::Equal);
        assert_eq!(c("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert_eq!(c("1:0.1", "2.0"), Ordering::Greater);
        assert!(Evr::parse("").is_err());
    }
}
