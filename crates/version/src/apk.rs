//! apk: Alpine versions `digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}`, ordered and
//! validated as apk-tools 3 (`src/version.c`) does, including the fuzzy `~` constraints.
//!
//! Like apk, [`compare`] orders any string (an invalid tail compares by the tokens apk read
//! before it); [`validate`] says whether apk would accept the version in a package.

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

// Token kinds, in apk's order: the comparison of two versions that run out at different
// tokens depends on it.
const TOKEN_INITIAL_DIGIT: u8 = 0;
const TOKEN_DIGIT: u8 = 1;
const TOKEN_LETTER: u8 = 2;
const TOKEN_SUFFIX: u8 = 3;
const TOKEN_SUFFIX_NO: u8 = 4;
const TOKEN_COMMIT_HASH: u8 = 5;
const TOKEN_REVISION_NO: u8 = 6;
const TOKEN_END: u8 = 7;
const TOKEN_INVALID: u8 = 8;

// Suffix ranks: pre-release suffixes below NONE, post-release ones above.
const SUFFIX_INVALID: u8 = 0;
const SUFFIX_NONE: u8 = 5;
const SUFFIXES: [(&[u8], u8); 9] = [
    (b"alpha", 1),
    (b"beta", 2),
    (b"pre", 3),
    (b"rc", 4),
    (b"cvs", 6),
    (b"svn", 7),
    (b"git", 8),
    (b"hg", 9),
    (b"p", 10),
];

fn suffix_value(s: &[u8]) -> u8 {
    SUFFIXES.iter().find(|(name, _)| *name == s).map_or(SUFFIX_INVALID, |&(_, v)| v)
}

#[derive(Clone, Copy)]
struct Token {
    kind: u8,
    suffix: u8,
    number: u64,
    start: usize,
    end: usize,
}

/// A cursor over one version string.
struct Tokens<'a> {
    s: &'a [u8],
    pos: usize,
    t: Token,
}

impl<'a> Tokens<'a> {
    fn first(s: &'a [u8]) -> Tokens<'a> {
        let mut t =
            Tokens { s, pos: 0, t: Token { kind: TOKEN_INITIAL_DIGIT, suffix: 0, number: 0, start: 0, end: 0 } };
        t.parse_digits();
        t
    }

    fn value(&self) -> &'a [u8] {
        &self.s[self.t.start..self.t.end]
    }

    /// apk_blob_pull_uint(): decimal digits, wrapping like the C arithmetic.
    fn parse_digits(&mut self) {
        let start = self.pos;
        let mut n: u64 = 0;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            n = n.wrapping_mul(10).wrapping_add(u64::from(self.s[self.pos] - b'0'));
            self.pos += 1;
        }
        self.t.number = n;
        self.t.start = start;
        self.t.end = self.pos;
        if start == self.pos {
            self.t.kind = TOKEN_INVALID;
        }
    }

    /// apk_blob_spn(): bytes >= 0x80 count as members of every class, as in apk's table.
    fn span(&mut self, class: fn(u8) -> bool) {
        let start = self.pos;
        while self.pos < self.s.len() && (self.s[self.pos] >= 0x80 || class(self.s[self.pos])) {
            self.pos += 1;
        }
        self.t.start = start;
        self.t.end = self.pos;
    }

    fn next(&mut self) {
        if self.pos >= self.s.len() {
            self.t.kind = TOKEN_END;
            return;
        }
        let kind = self.t.kind;
        match self.s[self.pos] {
            b'a'..=b'z' => {
                if kind > TOKEN_DIGIT {
                    return self.invalid();
                }
                self.t.start = self.pos;
                self.t.end = self.pos + 1;
                self.t.kind = TOKEN_LETTER;
                self.pos += 1;
            }
            c @ (b'.' | b'0'..=b'9') => {
                if c == b'.' {
                    if kind > TOKEN_DIGIT {
                        return self.invalid();
                    }
                    self.pos += 1;
                }
                self.t.kind = match kind {
                    TOKEN_INITIAL_DIGIT | TOKEN_DIGIT => TOKEN_DIGIT,
                    TOKEN_SUFFIX => TOKEN_SUFFIX_NO,
                    _ => return self.invalid(),
                };
                self.parse_digits();
            }
            b'_' => {
                if kind > TOKEN_SUFFIX_NO {
                    return self.invalid();
                }
                self.pos += 1;
                self.span(|c| c.is_ascii_lowercase());
                self.t.suffix = suffix_value(self.value());
                if self.t.suffix == SUFFIX_INVALID {
                    return self.invalid();
                }
                self.t.kind = TOKEN_SUFFIX;
            }
            b'~' => {
                if kind >= TOKEN_COMMIT_HASH {
                    return self.invalid();
                }
                self.pos += 1;
                self.span(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                if self.t.start == self.t.end {
                    return self.invalid();
                }
                self.t.kind = TOKEN_COMMIT_HASH;
            }
            b'-' => {
                if kind >= TOKEN_REVISION_NO {
                    return self.invalid();
                }
                if self.s.get(self.pos + 1) != Some(&b'r') {
                    return self.invalid();
                }
                self.pos += 2;
                self.t.kind = TOKEN_REVISION_NO;
                self.parse_digits();
            }
            _ => self.invalid(),
        }
    }

    fn invalid(&mut self) {
        self.t.kind = TOKEN_INVALID;
    }
}

/// apk_blob_sort(): memcmp over the common length, then the shorter first.
fn blob_sort(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

fn token_cmp(a: &Tokens<'_>, b: &Tokens<'_>) -> Ordering {
    let (x, y) = match a.t.kind {
        TOKEN_DIGIT if a.value().first() == Some(&b'0') || b.value().first() == Some(&b'0') => {
            // A leading zero makes it a fraction-like string comparison (Gentoo rules).
            return blob_sort(a.value(), b.value());
        }
        TOKEN_DIGIT | TOKEN_INITIAL_DIGIT | TOKEN_SUFFIX_NO | TOKEN_REVISION_NO => (a.t.number, b.t.number),
        TOKEN_LETTER => (u64::from(a.value()[0]), u64::from(b.value()[0])),
        TOKEN_SUFFIX => (u64::from(a.t.suffix), u64::from(b.t.suffix)),
        _ => return blob_sort(a.value(), b.value()),
    };
    x.cmp(&y)
}

/// apk_version_compare_fuzzy(): with `fuzzy`, `a` matches when `b` is a prefix of it.
fn compare_fuzzy(a: &[u8], b: &[u8], fuzzy: bool) -> Ordering {
    let mut ta = Tokens::first(a);
    let mut tb = Tokens::first(b);
    while ta.t.kind == tb.t.kind && ta.t.kind < TOKEN_END {
        let r = token_cmp(&ta, &tb);
        if r != Ordering::Equal {
            return r;
        }
        ta.next();
        tb.next();
    }
    if ta.t.kind == tb.t.kind || (tb.t.kind == TOKEN_END && fuzzy) {
        return Ordering::Equal;
    }
    // Same leading tokens: the longer version is greater unless it continues with a
    // pre-release suffix.
    if ta.t.kind == TOKEN_SUFFIX && ta.t.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if tb.t.kind == TOKEN_SUFFIX && tb.t.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    tb.t.kind.cmp(&ta.t.kind)
}

/// apk's `apk_version_compare()`: orders any two strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_fuzzy(a.as_bytes(), b.as_bytes(), false)
}

/// apk's `apk_version_validate()`: whether a package may carry this version.
pub fn validate(s: &str) -> bool {
    let mut t = Tokens::first(s.as_bytes());
    while t.t.kind < TOKEN_END {
        t.next();
    }
    t.t.kind == TOKEN_END
}

pub(crate) fn check_nonempty(s: &str) -> Result<(), VersionError> {
    if s.is_empty() {
        Err(VersionError::new(Scheme::Apk, s, "empty version"))
    } else {
        Ok(())
    }
}

/// An apk dependency operator: `<`, `<=`, `=`, `>=`, `>`, `~` (fuzzy: same leading
/// components), `<~`, `>~`, and the `!` negation (conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    less: bool,
    equal: bool,
    greater: bool,
    fuzzy: bool,
    negate: bool,
}

/// A version constraint such as `>=1.2-r0`, `~3.6` or `!=2.0`: operator plus version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    op: Op,
    version: String,
}

impl Constraint {
    /// Parses `OPERATOR VERSION` (no space in between, as apk writes it).
    pub fn parse(s: &str) -> Result<Constraint, VersionError> {
        let err = |why: &str| VersionError::new(Scheme::Apk, s, why.to_string());
        let (negate, rest) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let ops = rest.bytes().take_while(|c| b"<>=~".contains(c)).count();
        let (ops_str, version) = rest.split_at(ops);
        if ops_str.is_empty() {
            return Err(err("constraint has no operator (<, <=, =, >=, >, ~, <~, >~)"));
        }
        let mut op = Op { less: false, equal: false, greater: false, fuzzy: false, negate };
        for c in ops_str.bytes() {
            match c {
                b'<' => op.less = true,
                b'>' => op.greater = true,
                b'=' => op.equal = true,
                _ => {
                    op.fuzzy = true;
                    op.equal = true;
                }
            }
        }
        if op.less && op.greater {
            return Err(err("constraint mixes < and >"));
        }
        if !validate(version) {
            return Err(err("constraint version is not a valid apk version"));
        }
        Ok(Constraint { op, version: version.to_string() })
    }

    /// apk_version_match(): whether package version `v` satisfies the constraint.
    pub fn matches(&self, v: &str) -> bool {
        let r = compare_fuzzy(v.as_bytes(), self.version.as_bytes(), self.op.fuzzy);
        let ok = match r {
            Ordering::Less => self.op.less,
            Ordering::Equal => self.op.equal,
            Ordering::Greater => self.op.greater,
        };
        ok != self.op.negate
    }
}

/// An owned apk version; `Ord` is apk's ordering.
#[derive(Debug, Clone)]
pub struct Version(Box<str>);

impl Version {
    /// Accepts any non-empty string, as apk orders any string; see [`validate`].
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        check_nonempty(s)?;
        Ok(Version(s.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_valid(&self) -> bool {
        validate(&self.0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        compare(&self.0, &other.0)
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
