//! The records the database stores and the read API returns.
//!
//! The shape follows the OSV schema 1.x (every importer converts its feed to it), extended with
//! what OSV lacks: a per-package [`Status`], computed CVSS base scores per source, CISA KEV and
//! EPSS data.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One advisory or CVE record as one source publishes it. The same id can come from several
/// sources (e.g. `CVE-2023-1234` from NVD and from the Debian tracker); each is stored separately
/// and [`crate::VulnDb::vulnerability`] merges them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vulnerability {
    pub id: String,
    /// The feed the record came from: `osv`, `nvd`, `redhat-csaf`, `debian-tracker`, `debian-dsa`,
    /// `debian-dla`, `rustsec`, `nodejs-security-wg`, `victims`.
    pub source: String,
    /// Other ids of the same vulnerability (OSV `aliases`, CVEs fixed by an errata).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Ids of closely related but distinct vulnerabilities (OSV `related`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// RFC 3339 timestamps as published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// `CWE-79` style ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cwes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<Severity>,
    /// The publisher's own rating (`Important`, `HIGH`, `moderate`, Debian urgency ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_severity: Option<String>,
    /// Where a person can read the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<Affected>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// OSV reference type (`ADVISORY`, `FIX`, `WEB`, ...) when the source gives one.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub url: String,
}

/// A CVSS (or other) rating from one source, with the base score computed from the vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Severity {
    /// Who scored it: `nvd@nist.gov`, `secalert@redhat.com`, `osv`, `rustsec` ...
    pub source: String,
    pub kind: SeverityKind,
    /// The vector string as published (`CVSS:3.1/AV:N/...`, or `AV:N/AC:L/...` for v2).
    pub vector: String,
    /// Base score computed from the vector (the published score when the vector cannot be parsed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_score: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeverityKind {
    CvssV2,
    CvssV3,
    CvssV4,
    /// A non-CVSS rating (OSV `Ubuntu` priority and the like): `vector` holds the text.
    Other,
}

/// One package a vulnerability affects in one ecosystem.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affected {
    /// The vulnerability (record) id this entry belongs to; filled by the read API.
    #[serde(default)]
    pub vuln_id: String,
    /// The source of that record.
    #[serde(default)]
    pub source: String,
    /// OSV ecosystem including the release: `PyPI`, `npm`, `Maven`, `crates.io`, `AlmaLinux:9`,
    /// `Debian:12`, `Red Hat:enterprise_linux:9::appstream`.
    pub ecosystem: String,
    /// The package name exactly as the record spells it (see [`crate::normalize_name`] for the
    /// form used for lookups).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions (OSV `versions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<Value>,
}

impl Affected {
    /// Every `fixed` event of every range, in record order.
    pub fn fixed_versions(&self) -> Vec<&str> {
        self.ranges
            .iter()
            .flat_map(|r| r.events.iter())
            .filter_map(|e| match e {
                Event::Fixed(v) => Some(v.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Whether (and how) a package is affected, as the source states it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Affected in the given ranges; a fixed version exists.
    Fixed,
    /// Affected, no fix published (yet).
    #[default]
    Affected,
    /// Affected, and the vendor states it will not be fixed.
    WillNotFix,
    /// Explicitly not affected (VEX `known_not_affected`, Debian `<not-affected>`).
    NotAffected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fixed => "fixed",
            Status::Affected => "affected",
            Status::WillNotFix => "will_not_fix",
            Status::NotAffected => "not_affected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "fixed" => Status::Fixed,
            "affected" => Status::Affected,
            "will_not_fix" => Status::WillNotFix,
            "not_affected" => Status::NotAffected,
            _ => return None,
        })
    }

    /// `Fixed` when any range has a `fixed` event, `Affected` otherwise.
    pub fn from_ranges(ranges: &[Range]) -> Status {
        if ranges.iter().any(|r| r.events.iter().any(|e| matches!(e, Event::Fixed(_)))) {
            Status::Fixed
        } else {
            Status::Affected
        }
    }
}

/// An OSV range: ordered events over one version scheme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: RangeKind,
    /// The repository of a `GIT` range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    /// Versions ordered by the ecosystem's own scheme (rpm, dpkg, PEP 440, ...).
    Ecosystem,
    /// SemVer 2.0 precedence.
    Semver,
    /// Git commit hashes.
    Git,
}

/// An OSV range event. Serialises as OSV does: `{"introduced": "1.0"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Range {
    /// `introduced: 0`, then `fixed: version` when there is one: the common "all versions before
    /// the fix" range.
    pub fn before(kind: RangeKind, fixed: Option<&str>) -> Range {
        let mut events = vec![Event::Introduced("0".into())];
        if let Some(f) = fixed {
            events.push(Event::Fixed(f.to_string()));
        }
        Range { kind, repo: None, events }
    }
}

/// A CISA Known Exploited Vulnerabilities catalog entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kev {
    #[serde(rename = "cveID")]
    pub cve_id: String,
    #[serde(default)]
    pub vendor_project: String,
    #[serde(default)]
    pub product: String,
    #[serde(default)]
    pub vulnerability_name: String,
    /// `YYYY-MM-DD`
    pub date_added: String,
    #[serde(default)]
    pub short_description: String,
    #[serde(default)]
    pub required_action: String,
    /// `YYYY-MM-DD`
    #[serde(default)]
    pub due_date: String,
    /// `Known` or `Unknown`.
    #[serde(default)]
    pub known_ransomware_campaign_use: String,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub cwes: Vec<String>,
}

/// An EPSS score: the probability of exploitation activity in the next 30 days.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Epss {
    pub cve: String,
    pub score: f64,
    pub percentile: f64,
}

/// Per-feed bookkeeping shown by `kensa db status` and used for conditional requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedState {
    /// Feed name (`osv:PyPI`, `nvd:2024`, `kev`, `epss`, `debian-tracker`, or `import:<file>`).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// RFC 3339 UTC time of the last successful fetch or import.
    pub updated_at: String,
    pub records: u64,
}
