//! go: Go module versions, a port of `golang.org/x/mod/semver`.
//!
//! Versions need the `v` prefix; `v1` and `v1.2` are shorthands for `v1.0.0` and `v1.2.0`;
//! build metadata (including `+incompatible`) is ignored when ordering; pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`) are ordinary pre-releases and sort as such.
//!
//! `semver.Compare` treats every invalid version as equal to every other and below all valid
//! ones: [`compare_lenient`] keeps that for callers that want upstream semantics, while
//! [`Version::parse`] and [`crate::compare`] reject an invalid version with the reason.

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

/// A parsed Go module version (all parts borrowed from one owned string).
#[derive(Debug, Clone)]
pub struct Version {
    text: Box<str>,
    major: (u32, u32),
    minor: Option<(u32, u32)>,
    patch: Option<(u32, u32)>,
    /// Including the leading `-`; empty span when absent.
    prerelease: (u32, u32),
    /// Including the leading `+`; empty span when absent.
    build: (u32, u32),
}

fn parse_int(s: &[u8], at: usize) -> Result<usize, &'static str> {
    if at >= s.len() || !s[at].is_ascii_digit() {
        return Err("expected a number");
    }
    let mut i = at + 1;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    if s[at] == b'0' && i != at + 1 {
        return Err("number has a leading zero");
    }
    Ok(i)
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn is_bad_num(v: &[u8]) -> bool {
    v.len() > 1 && v[0] == b'0' && v.iter().all(u8::is_ascii_digit)
}

fn parse_prerelease(s: &[u8], at: usize) -> Result<usize, &'static str> {
    let mut i = at + 1;
    let mut start = i;
    while i < s.len() && s[i] != b'+' {
        if !is_ident_char(s[i]) && s[i] != b'.' {
            return Err("pre-release has a character outside [0-9A-Za-z-.]");
        }
        if s[i] == b'.' {
            if start == i || is_bad_num(&s[start..i]) {
                return Err("pre-release has an empty identifier or a number with a leading zero");
            }
            start = i + 1;
        }
        i += 1;
    }
    if start == i || is_bad_num(&s[start..i]) {
        return Err("pre-release has an empty identifier or a number with a leading zero");
    }
    Ok(i)
}

fn parse_build(s: &[u8], at: usize) -> Result<usize, &'static str> {
    let mut i = at + 1;
    let mut start = i;
    while i < s.len() {
        if !is_ident_char(s[i]) && s[i] != b'.' {
            return Err("build metadata has a character outside [0-9A-Za-z-.]");
        }
        if s[i] == b'.' {
            if start == i {
                return Err("build metadata has an empty identifier");
            }
            start = i + 1;
        }
        i += 1;
    }
    if start == i {
        return Err("build metadata has an empty identifier");
    }
    Ok(i)
}

impl Version {
    pub fn parse(v: &str) -> Result<Version, VersionError> {
        Self::parse_inner(v).map_err(|why| VersionError::new(Scheme::Go, v, why))
    }

    fn parse_inner(v: &str) -> Result<Version, &'static str> {
        let s = v.as_bytes();
        if s.len() >= u32::MAX as usize {
            return Err("version too long");
        }
        if s.first() != Some(&b'v') {
            return Err("missing the v prefix");
        }
        let span = |a: usize, b: usize| (a as u32, b as u32);
        let end_major = parse_int(s, 1)?;
        let mut out = Version {
            text: v.into(),
            major: span(1, end_major),
            minor: None,
            patch: None,
            prerelease: (0, 0),
            build: (0, 0),
        };
        if end_major == s.len() {
            return Ok(out);
        }
        if s[end_major] != b'.' {
            return Err("expected . after the major version");
        }
        let end_minor = parse_int(s, end_major + 1)?;
        out.minor = Some(span(end_major + 1, end_minor));
        if end_minor == s.len() {
            return Ok(out);
        }
        if s[end_minor] != b'.' {
            return Err("expected . after the minor version (shorthands take no suffix)");
        }
        let mut i = parse_int(s, end_minor + 1)?;
        out.patch = Some(span(end_minor + 1, i));
        if i < s.len() && s[i] == b'-' {
            let e = parse_prerelease(s, i)?;
            out.prerelease = span(i, e);
            i = e;
        }
        if i < s.len() && s[i] == b'+' {
            let e = parse_build(s, i)?;
            out.build = span(i, e);
            i = e;
        }
        if i != s.len() {
            return Err("unexpected text after the version");
        }
        Ok(out)
    }

    fn get(&self, (a, b): (u32, u32)) -> &str {
        &self.text[a as usize..b as usize]
    }
    pub fn major(&self) -> &str {
        self.get(self.major)
    }
    pub fn minor(&self) -> &str {
        self.minor.map_or("0", |m| self.get(m))
    }
    pub fn patch(&self) -> &str {
        self.patch.map_or("0", |p| self.get(p))
    }
    /// With its leading `-`, or empty.
    pub fn prerelease(&self) -> &str {
        self.get(self.prerelease)
    }
    /// With its leading `+`, or empty.
    pub fn build(&self) -> &str {
        self.get(self.build)
    }
    /// `semver.Canonical()`: `vMAJOR.MINOR.PATCH[-PRERELEASE]`, build metadata dropped.
    pub fn canonical(&self) -> String {
        format!("v{}.{}.{}{}", self.major(), self.minor(), self.patch(), self.prerelease())
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn compare_int(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

fn is_num(v: &str) -> bool {
    v.bytes().all(|c| c.is_ascii_digit())
}

fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    // Skip the leading '-', then compare dot-separated identifiers.
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(dx), Some(dy)) => {
                if dx == dy {
                    continue;
                }
                let (ix, iy) = (is_num(dx), is_num(dy));
                if ix != iy {
                    return if ix { Ordering::Less } else { Ordering::Greater };
                }
                if ix {
                    match dx.len().cmp(&dy.len()) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                return dx.cmp(dy);
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        compare_int(self.major(), other.major())
            .then_with(|| compare_int(self.minor(), other.minor()))
            .then_with(|| compare_int(self.patch(), other.patch()))
            .then_with(|| compare_prerelease(self.prerelease(), other.prerelease()))
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

/// `semver.IsValid()`.
pub fn is_valid(v: &str) -> bool {
    Version::parse_inner(v).is_ok()
}

/// `semver.Compare()` exactly: invalid versions are equal to each other and below valid ones.
pub fn compare_lenient(a: &str, b: &str) -> Ordering {
    match (Version::parse_inner(a), Version::parse_inner(b)) {
        (Err(_), Err(_)) => Ordering::Equal,
        (Err(_), Ok(_)) => Ordering::Less,
        (Ok(_), Err(_)) => Ordering::Greater,
        (Ok(x), Ok(y)) => x.cmp(&y),
    }
}
