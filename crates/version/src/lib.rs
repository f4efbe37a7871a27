//! Version ordering exactly as each packaging system orders its versions.
//!
//! One module per scheme, each a port of the upstream algorithm (not an approximation), tested
//! against the upstream test vectors in `../shared/data/versions/`:
//!
//! | scheme | upstream | module |
//! | --- | --- | --- |
//! | rpm | `rpmvercmp()` + EVR parsing (rpm 4.18) | [`rpm`] |
//! | deb | dpkg `parseversion()` + `verrevcmp()` | [`deb`] |
//! | apk | apk-tools 3 `version.c` | [`apk`] |
//! | pypi | PEP 440 as pypa/packaging 26 implements it | [`pypi`] |
//! | npm | node-semver 7 | [`npm`] |
//! | maven | Maven `ComparableVersion` | [`maven`] |
//! | go | `golang.org/x/mod/semver` | [`go`] |
//!
//! [`compare`] parses and compares two strings. To compare one installed version against many
//! (the matcher's job), parse it once with [`Version::parse`] (or the scheme's own type) and
//! compare the parsed values: parsing is where the cost is.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

pub mod apk;
pub mod deb;
pub mod go;
pub mod maven;
pub mod npm;
pub mod pypi;
pub mod rpm;

/// A version ordering scheme (a packaging ecosystem).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Rpm,
    Deb,
    Apk,
    Pypi,
    Npm,
    Maven,
    Go,
}

impl Scheme {
    pub const ALL: [Scheme; 7] =
        [Scheme::Rpm, Scheme::Deb, Scheme::Apk, Scheme::Pypi, Scheme::Npm, Scheme::Maven, Scheme::Go];

    /// The canonical lower-case name (`rpm`, `deb`, ...), as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Rpm => "rpm",
            Scheme::Deb => "deb",
            Scheme::Apk => "apk",
            Scheme::Pypi => "pypi",
            Scheme::Npm => "npm",
            Scheme::Maven => "maven",
            Scheme::Go => "go",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Unknown scheme name given to [`Scheme::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown version scheme {0:?} (expected one of rpm, deb, apk, pypi, npm, maven, go)")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;

    /// Accepts the canonical names and the usual ecosystem aliases (OSV ecosystem names,
    /// purl types): `rpm`, `deb`/`dpkg`/`debian`, `apk`/`alpine`, `pypi`/`python`/`pep440`,
    /// `npm`/`semver`/`node`, `maven`/`java`, `go`/`golang`. Case-insensitive.
    fn from_str(s: &str) -> Result<Scheme, UnknownScheme> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "rpm" | "rhel" | "redhat" | "fedora" | "suse" => Scheme::Rpm,
            "deb" | "dpkg" | "debian" | "ubuntu" => Scheme::Deb,
            "apk" | "alpine" => Scheme::Apk,
            "pypi" | "python" | "pep440" | "pip" => Scheme::Pypi,
            "npm" | "semver" | "node" => Scheme::Npm,
            "maven" | "java" | "mvn" => Scheme::Maven,
            "go" | "golang" => Scheme::Go,
            _ => return Err(UnknownScheme(s.to_string())),
        })
    }
}

/// A version string that its scheme rejects, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version {version:?}: {reason}")]
pub struct VersionError {
    pub scheme: &'static str,
    pub version: String,
    pub reason: String,
}

impl VersionError {
    pub(crate) fn new(scheme: Scheme, version: &str, reason: impl Into<String>) -> VersionError {
        // Keep error values bounded even for hostile multi-megabyte inputs.
        let version = if version.len() > 200 {
            let mut end = 200;
            while !version.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &version[..end])
        } else {
            version.to_string()
        };
        VersionError { scheme: scheme.name(), version, reason: reason.into() }
    }
}

/// A parsed version of any scheme: parse once, compare many times.
#[derive(Debug, Clone)]
pub enum Version {
    Rpm(rpm::Evr),
    Deb(deb::Version),
    Apk(apk::Version),
    Pypi(pypi::Version),
    Npm(npm::Version),
    Maven(maven::Version),
    Go(go::Version),
}

impl Version {
    /// Parses `s` as `scheme` orders it. See each module for what is rejected.
    pub fn parse(scheme: Scheme, s: &str) -> Result<Version, VersionError> {
        Ok(match scheme {
            Scheme::Rpm => Version::Rpm(rpm::Evr::parse(s)?),
            Scheme::Deb => Version::Deb(deb::Version::parse(s)?),
            Scheme::Apk => Version::Apk(apk::Version::parse(s)?),
            Scheme::Pypi => Version::Pypi(pypi::Version::parse(s)?),
            Scheme::Npm => Version::Npm(npm::Version::parse_loose(s)?),
            Scheme::Maven => Version::Maven(maven::Version::parse(s)?),
            Scheme::Go => Version::Go(go::Version::parse(s)?),
        })
    }

    pub fn scheme(&self) -> Scheme {
        match self {
            Version::Rpm(_) => Scheme::Rpm,
            Version::Deb(_) => Scheme::Deb,
            Version::Apk(_) => Scheme::Apk,
            Version::Pypi(_) => Scheme::Pypi,
            Version::Npm(_) => Scheme::Npm,
            Version::Maven(_) => Scheme::Maven,
            Version::Go(_) => Scheme::Go,
        }
    }

    /// Orders two parsed versions; `None` when they belong to different schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        Some(match (self, other) {
            (Version::Rpm(a), Version::Rpm(b)) => a.cmp(b),
            (Version::Deb(a), Version::Deb(b)) => a.cmp(b),
            (Version::Apk(a), Version::Apk(b)) => a.cmp(b),
            (Version::Pypi(a), Version::Pypi(b)) => a.cmp(b),
            (Version::Npm(a), Version::Npm(b)) => a.cmp(b),
            (Version::Maven(a), Version::Maven(b)) => a.cmp(b),
            (Version::Go(a), Version::Go(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.compare(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        self.compare(other)
    }
}

/// Orders `a` against `b` as `scheme` does. An error names the version the scheme rejects.
///
/// Scheme notes: rpm and apk order any string (as rpm and apk do) and only reject the empty
/// string; rpm orders `[E:]V[-R]` like `rpmverCmp` (missing epoch = 0, a missing release sorts
/// first; [`rpm::compare_to_bound`] has rpm's range rule instead); deb rejects what dpkg treats as a hard parse error (bad characters only make dpkg
/// warn, so they compare); npm accepts node-semver's loose forms (`v1.2.3`, `=1.2.3`,
/// `1.2.3beta`); go rejects invalid versions here, while [`go::compare_lenient`] has
/// `semver.Compare`'s "invalid sorts first" semantics.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    match scheme {
        // Fast paths that do not build an owned parsed value.
        Scheme::Rpm => Ok(rpm::compare_evr(&rpm::EvrRef::parse(a)?, &rpm::EvrRef::parse(b)?)),
        Scheme::Deb => Ok(deb::VersionRef::parse(a)?.cmp(&deb::VersionRef::parse(b)?)),
        Scheme::Apk => {
            apk::check_nonempty(a)?;
            apk::check_nonempty(b)?;
            Ok(apk::compare(a, b))
        }
        _ => {
            let (a, b) = (Version::parse(scheme, a)?, Version::parse(scheme, b)?);
            Ok(a.compare(&b).expect("same scheme"))
        }
    }
}
