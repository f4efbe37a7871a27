//! The finding model: Amazon Inspector's `Finding` shape (type `PACKAGE_VULNERABILITY`), in
//! camelCase JSON, one finding per vulnerability record and affected package instance. Fields
//! kensa adds beyond Inspector's are marked.

use serde::{Deserialize, Serialize};

/// Inspector severities, most severe first (the `Ord` order is the reverse: `Untriaged` lowest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Untriaged,
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 6] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Informational, Severity::Untriaged];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
            Severity::Untriaged => "UNTRIAGED",
        }
    }

    /// Case-insensitive; accepts `UNKNOWN` for `UNTRIAGED` and `INFO`/`NONE` for `INFORMATIONAL`.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Severity::Critical,
            "HIGH" => Severity::High,
            "MEDIUM" => Severity::Medium,
            "LOW" => Severity::Low,
            "INFORMATIONAL" | "INFO" | "NONE" => Severity::Informational,
            "UNTRIAGED" | "UNKNOWN" => Severity::Untriaged,
            _ => return None,
        })
    }

    /// The CVSS v3.1 qualitative band of a base score (Inspector maps NONE to INFORMATIONAL).
    pub fn from_cvss(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score >= 0.1 {
            Severity::Low
        } else {
            Severity::Informational
        }
    }

    /// A vendor's own rating (`Important`, `moderate`, `HIGH`, Debian urgency `low**`, ...).
    pub fn from_vendor(s: &str) -> Option<Severity> {
        let s = s.trim().trim_end_matches('*').to_ascii_lowercase();
        Some(match s.as_str() {
            "critical" => Severity::Critical,
            "important" | "high" => Severity::High,
            "moderate" | "medium" => Severity::Medium,
            "low" | "negligible" | "unimportant" => Severity::Low,
            "none" | "informational" => Severity::Informational,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FixAvailable {
    Yes,
    No,
    Partial,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingStatus {
    Active,
    /// Suppressed by an ignore rule or a VEX statement (see `suppression`).
    Suppressed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Always `PACKAGE_VULNERABILITY`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `CVE-2024-1234 - openssl`.
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub status: FindingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspector_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspector_score_details: Option<InspectorScoreDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<EpssScore>,
    /// `YES` when the vulnerability (or a CVE alias) is in CISA KEV.
    pub exploit_available: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploitability_details: Option<ExploitabilityDetails>,
    pub fix_available: FixAvailable,
    pub remediation: Remediation,
    pub package_vulnerability_details: PackageVulnerabilityDetails,
    /// kensa: the publisher's statement for this package: `fixed`, `affected` (no fix yet),
    /// `will_not_fix`.
    pub vendor_status: String,
    /// kensa: why the finding is suppressed or downgraded (ignore rule, VEX statement, kernel
    /// that is installed but not running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectorScoreDetails {
    pub adjusted_cvss: AdjustedCvss,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdjustedCvss {
    pub score: f64,
    pub score_source: String,
    pub scoring_vector: String,
    pub version: String,
    #[serde(default)]
    pub adjustments: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_source: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpssScore {
    pub score: f64,
    /// kensa: EPSS percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExploitabilityDetails {
    /// The date CISA added the CVE to KEV.
    pub last_known_exploit_at: String,
    /// kensa: the KEV entry's CVE, required action and due date.
    pub kev_cve: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub required_action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub due_date: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub known_ransomware_campaign_use: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remediation {
    pub recommendation: Recommendation,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cvss {
    pub base_score: f64,
    pub scoring_vector: String,
    pub source: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageVulnerabilityDetails {
    /// The advisory id (`ALSA-2024:8793`, `GHSA-...`, `PYSEC-...`, `CVE-...`).
    pub vulnerability_id: String,
    /// CVE (and other) ids of the same vulnerability.
    #[serde(default)]
    pub related_vulnerabilities: Vec<String>,
    /// The feed (`osv`, `redhat-csaf`, `debian-tracker`, ...).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_updated_at: Option<String>,
    #[serde(default)]
    pub reference_urls: Vec<String>,
    #[serde(default)]
    pub cvss: Vec<Cvss>,
    pub vulnerable_packages: Vec<VulnerablePackage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VulnerablePackage {
    pub name: String,
    pub version: String,
    /// rpm/deb epoch (0 when none, as Inspector writes it).
    pub epoch: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// `OS`, `PYTHONPKG`, `NODEPKG`, `JAR`, `POM`, `GOBINARY`, `CARGOLOCK`.
    pub package_manager: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// The first fixed version above the installed one, or `NotAvailable`.
    pub fixed_in_version: String,
    /// The command or action that fixes it.
    pub remediation: String,
    pub purl: String,
    /// kensa: the source package the advisory names (Debian, Ubuntu, Alpine), when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_package_name: Option<String>,
    /// kensa: the OSV ecosystem of the matching advisory entry.
    pub ecosystem: String,
}

impl Finding {
    /// The (only) vulnerable package of this finding.
    pub fn package(&self) -> &VulnerablePackage {
        &self.package_vulnerability_details.vulnerable_packages[0]
    }

    pub fn vulnerability_id(&self) -> &str {
        &self.package_vulnerability_details.vulnerability_id
    }

    /// Every id the finding answers to: the advisory id and its related ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.vulnerability_id()).chain(self.package_vulnerability_details.related_vulnerabilities.iter().map(String::as_str))
    }
}
