//! deb: Debian versions `[epoch:]upstream[-revision]`, parsed like dpkg's `parseversion()` and
//! ordered like its `verrevcmp()` (dpkg 1.21).
//!
//! dpkg distinguishes hard parse errors (empty, embedded spaces, bad epoch, empty revision ...)
//! from warnings (upstream not starting with a digit, characters outside the allowed sets):
//! `dpkg --compare-versions` refuses the first and still compares the second. [`Version::parse`]
//! and [`crate::compare`] do the same; [`validate`] reports both kinds.

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

/// What dpkg thinks of a version string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    Valid,
    /// dpkg parses and compares it but warns (`version has bad syntax: ...`).
    Warning(&'static str),
    /// dpkg refuses it.
    Error(&'static str),
}

/// A borrowed, parsed Debian version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRef<'a> {
    pub epoch: u32,
    pub upstream: &'a str,
    /// Empty when absent.
    pub revision: &'a str,
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// dpkg's `parseversion()`: the parsed version and the warning dpkg would print, or the hard
/// error.
pub fn parse_version(s: &str) -> Result<(VersionRef<'_>, Option<&'static str>), &'static str> {
    let parsed = split(s)?;
    let (upstream, revision) = (parsed.upstream, parsed.revision);
    let warning = if !upstream.as_bytes()[0].is_ascii_digit() {
        Some("version number does not start with digit")
    } else if upstream.bytes().any(|c| !c.is_ascii_alphanumeric() && !b".-+~:".contains(&c)) {
        Some("invalid character in version number")
    } else if revision.bytes().any(|c| !c.is_ascii_alphanumeric() && !b".+~".contains(&c)) {
        Some("invalid character in revision number")
    } else {
        None
    };
    Ok((parsed, warning))
}

/// The hard-error part of `parseversion()` (what `dpkg --compare-versions` refuses), in one
/// pass over the common case.
fn split(s: &str) -> Result<VersionRef<'_>, &'static str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() && is_blank(bytes[start]) {
        start += 1;
    }
    if start == bytes.len() {
        return Err("version string is empty");
    }
    // One scan: the end of the first word, the first ':' and the last '-' in it.
    let (mut end, mut colon, mut hyphen) = (start, None, None);
    while end < bytes.len() {
        match bytes[end] {
            b' ' | b'\t' => break,
            0 => return Err("version string contains a NUL byte"),
            b':' if colon.is_none() => colon = Some(end),
            b'-' => hyphen = Some(end),
            _ => {}
        }
        end += 1;
    }
    if bytes[end..].iter().any(|&c| !is_blank(c)) {
        if bytes[end..].contains(&0) {
            return Err("version string contains a NUL byte");
        }
        return Err("version string has embedded spaces");
    }
    let mut epoch = 0u32;
    let mut body = start;
    if let Some(colon) = colon {
        epoch = parse_epoch(bytes, start, colon)?;
        if colon + 1 >= bytes.len() {
            return Err("nothing after colon in version number");
        }
        body = colon + 1;
    }
    let body_end = end.max(body);
    let (upstream, revision) = match hyphen.filter(|&h| h >= body) {
        Some(h) => {
            if h + 1 == body_end {
                return Err("revision number is empty");
            }
            (&s[body..h], &s[h + 1..body_end])
        }
        None => (&s[body..body_end], ""),
    };
    if upstream.is_empty() {
        return Err("upstream version is empty");
    }
    Ok(VersionRef { epoch, upstream, revision })
}

/// The epoch as dpkg reads it with `strtol()`: whitespace, an optional sign, digits, which
/// must end exactly at the colon.
fn parse_epoch(bytes: &[u8], start: usize, colon: usize) -> Result<u32, &'static str> {
    let mut p = start;
    while p < bytes.len() && matches!(bytes[p], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        p += 1;
    }
    let negative = match bytes.get(p) {
        Some(b'-') => {
            p += 1;
            true
        }
        Some(b'+') => {
            p += 1;
            false
        }
        _ => false,
    };
    let digits_start = p;
    let mut value: u64 = 0;
    let mut overflow = false;
    while p < bytes.len() && bytes[p].is_ascii_digit() {
        value = match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(bytes[p] - b'0'))) {
            Some(v) => v,
            None => {
                overflow = true;
                u64::MAX
            }
        };
        p += 1;
    }
    if p == digits_start {
        return Err("epoch in version is empty");
    }
    if p != colon {
        return Err("epoch in version is not number");
    }
    if negative && value != 0 {
        return Err("epoch in version is negative");
    }
    if overflow || value > i32::MAX as u64 {
        return Err("epoch in version is too big");
    }
    Ok(value as u32)
}

/// Whether dpkg accepts `s` cleanly, with a warning, or not at all.
pub fn validate(s: &str) -> Validity {
    match parse_version(s) {
        Ok((_, None)) => Validity::Valid,
        Ok((_, Some(w))) => Validity::Warning(w),
        Err(e) => Validity::Error(e),
    }
}

impl<'a> VersionRef<'a> {
    /// Parses as `dpkg --compare-versions` does: hard errors fail, warnings are accepted.
    pub fn parse(s: &'a str) -> Result<VersionRef<'a>, VersionError> {
        split(s).map_err(|e| VersionError::new(Scheme::Deb, s, e))
    }
}

impl Ord for VersionRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}
impl PartialOrd for VersionRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// dpkg's character weight: digits 0 (handled separately), letters their ASCII code, `~`
/// before everything (even the end), anything else after all letters. dpkg reads `char` as
/// signed, so bytes >= 0x80 land between letters and the other punctuation.
#[inline]
fn order(c: u8) -> i32 {
    if c.is_ascii_digit() {
        0
    } else if c.is_ascii_alphabetic() {
        i32::from(c)
    } else if c == b'~' {
        -1
    } else if c != 0 {
        i32::from(c as i8) + 256
    } else {
        0
    }
}

/// dpkg's `verrevcmp()` on an upstream version or a revision.
pub fn verrevcmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], k: usize| -> u8 { if k < s.len() { s[k] } else { 0 } };
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        let mut first_diff: i32 = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(at(a, i));
            let bc = order(at(b, j));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == b'0' {
            i += 1;
        }
        while at(b, j) == b'0' {
            j += 1;
        }
        while at(a, i).is_ascii_digit() && at(b, j).is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if at(a, i).is_ascii_digit() {
            return Ordering::Greater;
        }
        if at(b, j).is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// An owned, parsed Debian version; `Ord` is dpkg's ordering.
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u32,
    /// `upstream` then `revision`, split at `split`.
    text: Box<str>,
    split: usize,
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let v = VersionRef::parse(s)?;
        let mut text = String::with_capacity(v.upstream.len() + v.revision.len());
        text.push_str(v.upstream);
        text.push_str(v.revision);
        Ok(Version { epoch: v.epoch, text: text.into(), split: v.upstream.len() })
    }

    pub fn as_ref(&self) -> VersionRef<'_> {
        VersionRef { epoch: self.epoch, upstream: &self.text[..self.split], revision: &self.text[self.split..] }
    }
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    pub fn upstream(&self) -> &str {
        &self.text[..self.split]
    }
    pub fn revision(&self) -> &str {
        &self.text[self.split..]
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.as_ref().cmp(&other.as_ref())
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
