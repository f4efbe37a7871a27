//! pypi: PEP 440 versions and specifiers as pypa/packaging 26 parses, normalizes, orders and
//! matches them.
//!
//! Parsing uses packaging's own regular expression (without its possessive quantifiers, which
//! packaging documents as equivalent); ordering uses packaging's comparison key; specifier
//! matching follows packaging 26's interval rules with `prereleases=True` (a scanner asks
//! "is this installed version inside the range", so pre-releases are never filtered out).

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::Regex;

use crate::{Scheme, VersionError};

const VERSION_PATTERN: &str = r"
    v?
    (?:
        (?:(?P<epoch>[0-9]+)!)?
        (?P<release>[0-9]+(?:\.[0-9]+)*)
        (?P<pre>
            [._-]?
            (?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)
            [._-]?
            (?P<pre_n>[0-9]+)?
        )?
        (?P<post>
            (?:-(?P<post_n1>[0-9]+))
            |
            (?:
                [._-]?
                (?P<post_l>post|rev|r)
                [._-]?
                (?P<post_n2>[0-9]+)?
            )
        )?
        (?P<dev>
            [._-]?
            (?P<dev_l>dev)
            [._-]?
            (?P<dev_n>[0-9]+)?
        )?
    )
    (?:\+
        (?P<local>
            [a-z0-9]+
            (?:[._-][a-z0-9]+)*
        )
    )?
";

fn version_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // (?-u): packaging matches these parts in ASCII mode; case-insensitive (re.IGNORECASE).
    RE.get_or_init(|| Regex::new(&format!(r"(?x)(?i-u)\A{VERSION_PATTERN}\z")).expect("valid PEP 440 regex"))
}

/// Python's `str.isspace()` for the characters `\s` and `strip()` remove.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// A non-negative integer of any size, as Python's `int` holds version numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Number {
    Small(u64),
    /// Decimal digits without leading zeros, only for values above `u64::MAX`.
    Big(Box<str>),
}

static ZERO: Number = Number::Small(0);

impl Number {
    /// Python's `int()` refuses more than 4300 digits; so do we.
    fn parse(s: &str) -> Result<Number, &'static str> {
        let digits = s.trim_start_matches('0');
        if digits.len() > 4300 {
            return Err("number has more than 4300 digits");
        }
        Ok(match digits.parse::<u64>() {
            Ok(n) => Number::Small(n),
            Err(_) if digits.is_empty() => Number::Small(0),
            Err(_) => Number::Big(digits.into()),
        })
    }

    pub fn is_zero(&self) -> bool {
        *self == Number::Small(0)
    }

    fn plus_one(&self) -> Number {
        match self {
            Number::Small(n) if *n < u64::MAX => Number::Small(n + 1),
            Number::Small(n) => Number::Big((u128::from(*n) + 1).to_string().into()),
            Number::Big(d) => {
                let mut digits = d.as_bytes().to_vec();
                let mut i = digits.len();
                loop {
                    if i == 0 {
                        digits.insert(0, b'1');
                        break;
                    }
                    i -= 1;
                    if digits[i] == b'9' {
                        digits[i] = b'0';
                    } else {
                        digits[i] += 1;
                        break;
                    }
                }
                Number::Big(String::from_utf8(digits).expect("ASCII digits").into())
            }
        }
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Number {
        Number::Small(n)
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self, other) {
            (Number::Small(a), Number::Small(b)) => a.cmp(b),
            (Number::Small(_), Number::Big(_)) => Ordering::Less,
            (Number::Big(_), Number::Small(_)) => Ordering::Greater,
            (Number::Big(a), Number::Big(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        }
    }
}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Small(n) => write!(f, "{n}"),
            Number::Big(d) => f.write_str(d),
        }
    }
}

/// One segment of a local version label: numbers sort above strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSegment {
    Str(Box<str>),
    Num(Number),
}

impl Ord for LocalSegment {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (LocalSegment::Num(a), LocalSegment::Num(b)) => a.cmp(b),
            (LocalSegment::Str(a), LocalSegment::Str(b)) => a.cmp(b),
            (LocalSegment::Num(_), LocalSegment::Str(_)) => Ordering::Greater,
            (LocalSegment::Str(_), LocalSegment::Num(_)) => Ordering::Less,
        }
    }
}
impl PartialOrd for LocalSegment {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pre-release kind, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreKind {
    Alpha,
    Beta,
    Rc,
}

/// A parsed, normalized PEP 440 version. Equality and order are PEP 440's (`1.0 == 1.0.0`).
#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: Number,
    /// As written (trailing zeros kept: `==1.0.*` needs them); ordering ignores them.
    pub release: Vec<Number>,
    pub pre: Option<(PreKind, Number)>,
    pub post: Option<Number>,
    pub dev: Option<Number>,
    pub local: Option<Vec<LocalSegment>>,
}

fn number(s: &str) -> Result<Number, &'static str> {
    Number::parse(s)
}

fn zero() -> Result<Number, &'static str> {
    Ok(Number::Small(0))
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        Self::parse_inner(s).map_err(|why| VersionError::new(Scheme::Pypi, s, why))
    }

    fn parse_inner(s: &str) -> Result<Version, &'static str> {
        // packaging's own fast path: only digits and dots is a bare release segment.
        if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            let release = s
                .split('.')
                .map(|p| if p.is_empty() { Err("not a PEP 440 version") } else { number(p) })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Version { epoch: Number::Small(0), release, pre: None, post: None, dev: None, local: None });
        }
        let trimmed = s.trim_matches(is_py_space);
        let caps = version_regex().captures(trimmed).ok_or("not a PEP 440 version")?;
        let epoch = caps.name("epoch").map_or_else(zero, |m| number(m.as_str()))?;
        let release =
            caps.name("release").expect("release is required").as_str().split('.').map(number).collect::<Result<Vec<_>, _>>()?;
        let pre = match caps.name("pre_l") {
            Some(l) => {
                let kind = match l.as_str().to_ascii_lowercase().as_str() {
                    "a" | "alpha" => PreKind::Alpha,
                    "b" | "beta" => PreKind::Beta,
                    _ => PreKind::Rc, // c, rc, pre, preview
                };
                Some((kind, caps.name("pre_n").map_or_else(zero, |m| number(m.as_str()))?))
            }
            None => None,
        };
        let post = if let Some(n) = caps.name("post_n1") {
            Some(number(n.as_str())?)
        } else if caps.name("post_l").is_some() {
            Some(caps.name("post_n2").map_or_else(zero, |m| number(m.as_str()))?)
        } else {
            None
        };
        let dev = match caps.name("dev_l") {
            Some(_) => Some(caps.name("dev_n").map_or_else(zero, |m| number(m.as_str()))?),
            None => None,
        };
        let local = match caps.name("local") {
            Some(m) => Some(
                m.as_str()
                    .split(['.', '_', '-'])
                    .map(|part| {
                        if part.bytes().all(|c| c.is_ascii_digit()) {
                            number(part).map(LocalSegment::Num)
                        } else {
                            Ok(LocalSegment::Str(part.to_ascii_lowercase().into()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        Ok(Version { epoch, release, pre, post, dev, local })
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn trimmed_release(&self) -> &[Number] {
        let mut n = self.release.len();
        while n > 0 && self.release[n - 1].is_zero() {
            n -= 1;
        }
        &self.release[..n]
    }

    /// packaging's `_cmpkey` suffix: (pre_rank, pre_n, post_rank, post_n, dev_rank, dev_n).
    fn suffix_key(&self) -> (i8, &Number, u8, &Number, u8, &Number) {
        let (pre_rank, pre_n) = match (&self.pre, &self.post, &self.dev) {
            (None, None, Some(_)) => (-1, &ZERO), // dev-only sorts before all pre-releases
            (None, _, _) => (3, &ZERO),
            (Some((k, n)), _, _) => (*k as i8, n),
        };
        let (post_rank, post_n) = self.post.as_ref().map_or((0, &ZERO), |n| (1, n));
        let (dev_rank, dev_n) = self.dev.as_ref().map_or((1, &ZERO), |n| (0, n));
        (pre_rank, pre_n, post_rank, post_n, dev_rank, dev_n)
    }

    /// Ordering without the local label.
    fn cmp_public(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.trimmed_release().cmp(other.trimmed_release()))
            .then_with(|| self.suffix_key().cmp(&other.suffix_key()))
    }

    fn same_family(&self, other: &Version) -> bool {
        self.epoch == other.epoch && self.trimmed_release() == other.trimmed_release()
    }

    fn without_local(&self) -> Version {
        Version { local: None, ..self.clone() }
    }

    fn dev0_of(epoch: Number, release: Vec<Number>) -> Version {
        Version { epoch, release, pre: None, post: None, dev: Some(Number::Small(0)), local: None }
    }

    /// `_next_prefix_dev0`: 1.2 -> 1.3.dev0.
    fn next_prefix_dev0(epoch: Number, release: &[Number]) -> Version {
        let mut r = release.to_vec();
        if let Some(last) = r.last_mut() {
            *last = last.plus_one();
        }
        Self::dev0_of(epoch, r)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.cmp_public(other).then_with(|| match (&self.local, &other.local) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        })
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

/// packaging's `Specifier` grammar (operators and the version forms each allows).
const SPECIFIER_PATTERN: &str = r"
    (?:
        (?:
            ===
            \s*
            [^\s;)]+
        )
        |
        (?:
            (?:==|!=)
            \s*
            (?i-u:
            v?
            (?:[0-9]+!)?
            [0-9]+(?:\.[0-9]+)*
            (?:
                \.\*
                |
                (?:
                    [-_\.]?
                    (?:alpha|beta|preview|pre|a|b|c|rc)
                    [-_\.]?
                    [0-9]*
                )?
                (?:
                    (?:-[0-9]+)|(?:[-_\.]?(?:post|rev|r)[-_\.]?[0-9]*)
                )?
                (?:[-_\.]?dev[-_\.]?[0-9]*)?
                (?:\+[a-z0-9]+(?:[-_\.][a-z0-9]+)*)?
            )?
            )
        )
        |
        (?:
            (?:~=)
            \s*
            (?i-u:
            v?
            (?:[0-9]+!)?
            [0-9]+(?:\.[0-9]+)+
            (?:
                [-_\.]?
                (?:alpha|beta|preview|pre|a|b|c|rc)
                [-_\.]?
                [0-9]*
            )?
            (?:
                (?:-[0-9]+)|(?:[-_\.]?(?:post|rev|r)[-_\.]?[0-9]*)
            )?
            (?:[-_\.]?dev[-_\.]?[0-9]*)?
            )
        )
        |
        (?:
            (?:<=|>=|<|>)
            \s*
            (?i-u:
            v?
            (?:[0-9]+!)?
            [0-9]+(?:\.[0-9]+)*
            (?:
                [-_\.]?
                (?:alpha|beta|preview|pre|a|b|c|rc)
                [-_\.]?
                [0-9]*
            )?
            (?:
                (?:-[0-9]+)|(?:[-_\.]?(?:post|rev|r)[-_\.]?[0-9]*)
            )?
            (?:[-_\.]?dev[-_\.]?[0-9]*)?
            )
        )
    )
";

fn specifier_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(&format!(r"(?x)\A\s*{SPECIFIER_PATTERN}\s*\z")).expect("valid specifier regex"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Compatible,
    Equal,
    NotEqual,
    LessEqual,
    GreaterEqual,
    Less,
    Greater,
    Arbitrary,
}

/// One PEP 440 specifier such as `>=1.0`, `==2.*`, `~=1.4.5` or `===foo`.
#[derive(Debug, Clone)]
pub struct Specifier {
    op: Operator,
    /// The version text as written (without the operator).
    text: String,
    /// The parsed version (without `.*`); `None` only for `===`.
    version: Option<Version>,
    wildcard: bool,
    has_local: bool,
}

impl Specifier {
    pub fn parse(spec: &str) -> Result<Specifier, VersionError> {
        let err = |why: &str| VersionError::new(Scheme::Pypi, spec, why.to_string());
        if !specifier_regex().is_match(spec) {
            return Err(err("not a PEP 440 specifier"));
        }
        let s = spec.trim_matches(is_py_space);
        let (op, rest) = if let Some(r) = s.strip_prefix("===") {
            (Operator::Arbitrary, r)
        } else if let Some(r) = s.strip_prefix("~=") {
            (Operator::Compatible, r)
        } else if let Some(r) = s.strip_prefix("==") {
            (Operator::Equal, r)
        } else if let Some(r) = s.strip_prefix("!=") {
            (Operator::NotEqual, r)
        } else if let Some(r) = s.strip_prefix("<=") {
            (Operator::LessEqual, r)
        } else if let Some(r) = s.strip_prefix(">=") {
            (Operator::GreaterEqual, r)
        } else if let Some(r) = s.strip_prefix('<') {
            (Operator::Less, r)
        } else if let Some(r) = s.strip_prefix('>') {
            (Operator::Greater, r)
        } else {
            return Err(err("no operator"));
        };
        let text = rest.trim_matches(is_py_space).to_string();
        if op == Operator::Arbitrary {
            return Ok(Specifier { op, text, version: None, wildcard: false, has_local: false });
        }
        let wildcard = text.ends_with(".*");
        let base = text.strip_suffix(".*").unwrap_or(&text);
        let version = Version::parse(base)?;
        let has_local = text.contains('+');
        Ok(Specifier { op, text, version: Some(version), wildcard, has_local })
    }

    pub fn operator(&self) -> Operator {
        self.op
    }

    /// Whether `v` satisfies this specifier (pre-releases allowed). `raw` is the version text
    /// as given, which only `===` looks at.
    pub fn contains(&self, v: &Version, raw: &str) -> bool {
        let Some(spec) = &self.version else {
            return raw.to_lowercase() == self.text.to_lowercase();
        };
        match self.op {
            Operator::Arbitrary => unreachable!("handled above"),
            Operator::GreaterEqual => v >= spec,
            Operator::LessEqual => v <= spec || v.without_local() == *spec,
            Operator::Greater => {
                if let Some(dev) = &spec.dev {
                    *v >= Version { dev: Some(dev.plus_one()), local: None, ..spec.clone() }
                } else if let Some(post) = &spec.post {
                    *v >= Version { post: Some(post.plus_one()), dev: Some(Number::Small(0)), local: None, ..spec.clone() }
                } else {
                    // Excludes V, V+local and every V.postN.
                    v > spec && !(v.same_family(spec) && v.pre == spec.pre)
                }
            }
            Operator::Less => {
                let bound = if spec.is_prerelease() {
                    spec.clone()
                } else {
                    Version { dev: Some(Number::Small(0)), local: None, ..spec.clone() }
                };
                *v < bound
            }
            Operator::Compatible => {
                let prefix = &spec.release[..spec.release.len() - 1];
                v >= spec && *v < Version::next_prefix_dev0(spec.epoch.clone(), prefix)
            }
            Operator::Equal | Operator::NotEqual => {
                let inside = if self.wildcard {
                    *v >= Version::dev0_of(spec.epoch.clone(), spec.release.clone())
                        && *v < Version::next_prefix_dev0(spec.epoch.clone(), &spec.release)
                } else if self.has_local {
                    v == spec
                } else {
                    v.without_local() == *spec
                };
                inside == (self.op == Operator::Equal)
            }
        }
    }
}

/// A comma-separated set of specifiers (`>=1.0,<2,!=1.5.*`); empty matches everything.
#[derive(Debug, Clone)]
pub struct Specifiers {
    specs: Vec<Specifier>,
}

impl Specifiers {
    pub fn parse(s: &str) -> Result<Specifiers, VersionError> {
        let specs = s
            .split(',')
            .map(|p| p.trim_matches(is_py_space))
            .filter(|p| !p.is_empty())
            .map(Specifier::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Specifiers { specs })
    }

    pub fn specifiers(&self) -> &[Specifier] {
        &self.specs
    }

    /// `SpecifierSet.contains(version, prereleases=True)` for a parsed version.
    pub fn contains(&self, v: &Version) -> bool {
        self.specs.iter().all(|s| s.contains(v, &v.to_string()))
    }

    /// Like [`Specifiers::contains`] for a version string: an unparsable version matches only
    /// `===` specifiers (packaging returns False for every other operator).
    pub fn contains_str(&self, version: &str) -> bool {
        match Version::parse(version) {
            Ok(v) => self.specs.iter().all(|s| s.contains(&v, version)),
            Err(_) => !self.specs.is_empty() && self.specs.iter().all(|s| s.op == Operator::Arbitrary && s.contains_raw(version)),
        }
    }
}

impl Specifier {
    fn contains_raw(&self, raw: &str) -> bool {
        self.op == Operator::Arbitrary && raw.to_lowercase() == self.text.to_lowercase()
    }
}

impl std::fmt::Display for Version {
    /// The normalized form (`str(Version)`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.epoch.is_zero() {
            write!(f, "{}!", self.epoch)?;
        }
        for (i, n) in self.release.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        if let Some((k, n)) = &self.pre {
            let l = match k {
                PreKind::Alpha => "a",
                PreKind::Beta => "b",
                PreKind::Rc => "rc",
            };
            write!(f, "{l}{n}")?;
        }
        if let Some(n) = &self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = &self.dev {
            write!(f, ".dev{n}")?;
        }
        if let Some(local) = &self.local {
            f.write_str("+")?;
            for (i, seg) in local.iter().enumerate() {
                if i > 0 {
                    f.write_str(".")?;
                }
                match seg {
                    LocalSegment::Num(n) => write!(f, "{n}")?,
                    LocalSegment::Str(s) => f.write_str(s)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_any_size() {
        let big = Number::parse("18446744073709551615").unwrap();
        assert_eq!(big, Number::Small(u64::MAX));
        assert_eq!(big.plus_one().to_string(), "18446744073709551616");
        assert_eq!(Number::parse("999").unwrap().plus_one().to_string(), "1000");
        assert_eq!(Number::parse("99999999999999999999999").unwrap().plus_one().to_string(), "100000000000000000000000");
        assert!(Number::parse("100000000000000000000").unwrap() > Number::Small(u64::MAX));
        assert_eq!(Number::parse("000").unwrap(), Number::Small(0));
    }

    #[test]
    fn normalized_form() {
        let v = Version::parse(" V1!01.0-ALPHA_2.POST-3-dev.4+UBUNTU-1.007 ").unwrap();
        assert_eq!(v.to_string(), "1!1.0a2.post3.dev4+ubuntu.1.7");
        let s = Specifiers::parse("~=99999999999999999999.1").unwrap();
        assert!(s.contains_str("99999999999999999999.5"));
        assert!(!s.contains_str("100000000000000000000.0"));
    }
}
