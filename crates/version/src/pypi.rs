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

/// One segment of a local version label: numbers sort above strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSegment {
    Str(Box<str>),
    Num(u64),
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
    pub epoch: u64,
    /// As written (trailing zeros kept: `==1.0.*` needs them); ordering ignores them.
    pub release: Vec<u64>,
    pub pre: Option<(PreKind, u64)>,
    pub post: Option<u64>,
    pub dev: Option<u64>,
    pub local: Option<Vec<LocalSegment>>,
}

fn number(s: &str) -> Result<u64, &'static str> {
    s.parse::<u64>().map_err(|_| "number too large (more than 64 bits)")
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        Self::parse_inner(s).map_err(|why| VersionError::new(Scheme::Pypi, s, why))
    }

    fn parse_inner(s: &str) -> Result<Version, &'static str> {
        let trimmed = s.trim_matches(is_py_space);
        let caps = version_regex().captures(trimmed).ok_or("not a PEP 440 version")?;
        let epoch = caps.name("epoch").map_or(Ok(0), |m| number(m.as_str()))?;
        let release =
            caps.name("release").expect("release is required").as_str().split('.').map(number).collect::<Result<Vec<_>, _>>()?;
        let pre = match caps.name("pre_l") {
            Some(l) => {
                let kind = match l.as_str().to_ascii_lowercase().as_str() {
                    "a" | "alpha" => PreKind::Alpha,
                    "b" | "beta" => PreKind::Beta,
                    _ => PreKind::Rc, // c, rc, pre, preview
                };
                Some((kind, caps.name("pre_n").map_or(Ok(0), |m| number(m.as_str()))?))
            }
            None => None,
        };
        let post = if let Some(n) = caps.name("post_n1") {
            Some(number(n.as_str())?)
        } else if caps.name("post_l").is_some() {
            Some(caps.name("post_n2").map_or(Ok(0), |m| number(m.as_str()))?)
        } else {
            None
        };
        let dev = match caps.name("dev_l") {
            Some(_) => Some(caps.name("dev_n").map_or(Ok(0), |m| number(m.as_str()))?),
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

    fn trimmed_release(&self) -> &[u64] {
        let mut n = self.release.len();
        while n > 0 && self.release[n - 1] == 0 {
            n -= 1;
        }
        &self.release[..n]
    }

    /// packaging's `_cmpkey` suffix: (pre_rank, pre_n, post_rank, post_n, dev_rank, dev_n).
    fn suffix_key(&self) -> (i8, u64, u8, u64, u8, u64) {
        let (pre_rank, pre_n) = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0), // dev-only sorts before all pre-releases
            (None, _, _) => (3, 0),
            (Some((k, n)), _, _) => (k as i8, n),
        };
        let (post_rank, post_n) = self.post.map_or((0, 0), |n| (1, n));
        let (dev_rank, dev_n) = self.dev.map_or((1, 0), |n| (0, n));
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

    fn dev0_of(epoch: u64, release: Vec<u64>) -> Version {
        Version { epoch, release, pre: None, post: None, dev: Some(0), local: None }
    }

    /// `_next_prefix_dev0`: 1.2 -> 1.3.dev0.
    fn next_prefix_dev0(epoch: u64, release: &[u64]) -> Version {
        let mut r = release.to_vec();
        if let Some(last) = r.last_mut() {
            *last = last.saturating_add(1);
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
                if let Some(dev) = spec.dev {
                    *v >= Version { dev: Some(dev.saturating_add(1)), local: None, ..spec.clone() }
                } else if let Some(post) = spec.post {
                    *v >= Version { post: Some(post.saturating_add(1)), dev: Some(0), local: None, ..spec.clone() }
                } else {
                    // Excludes V, V+local and every V.postN.
                    v > spec && !(v.same_family(spec) && v.pre == spec.pre)
                }
            }
            Operator::Less => {
                let bound = if spec.is_prerelease() {
                    spec.clone()
                } else {
                    Version { dev: Some(0), local: None, ..spec.clone() }
                };
                *v < bound
            }
            Operator::Compatible => {
                let prefix = &spec.release[..spec.release.len() - 1];
                v >= spec && *v < Version::next_prefix_dev0(spec.epoch, prefix)
            }
            Operator::Equal | Operator::NotEqual => {
                let inside = if self.wildcard {
                    *v >= Version::dev0_of(spec.epoch, spec.release.clone())
                        && *v < Version::next_prefix_dev0(spec.epoch, &spec.release)
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
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        for (i, n) in self.release.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        if let Some((k, n)) = self.pre {
            let l = match k {
                PreKind::Alpha => "a",
                PreKind::Beta => "b",
                PreKind::Rc => "rc",
            };
            write!(f, "{l}{n}")?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = self.dev {
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
