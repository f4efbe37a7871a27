//! What a user keeps out of a report: severities, unfixed findings, ignore rules and VEX
//! statements.
//!
//! Like Trivy: `--severity` and `--ignore-unfixed` drop findings outright; ignore rules and VEX
//! `not_affected` statements *suppress* them: they stay in JSON output with `status: SUPPRESSED`
//! and a `note` saying why, are left out of the table, SARIF and CycloneDX, and never count for
//! `--exit-code`.
//!
//! # Ignore file (`.kensaignore`)
//!
//! Line format, one rule per line (`#` starts a comment):
//!
//! ```text
//! CVE-2023-1234                          # any package
//! GHSA-xxxx-yyyy-zzzz  lodash            # only this package
//! ALSA-2024:8793  thunderbird  exp:2026-12-31  # until that date (inclusive)
//! ```
//!
//! YAML format (a file ending in `.yaml`/`.yml`, or starting with `vulnerabilities:`):
//!
//! ```yaml
//! vulnerabilities:
//!   - id: CVE-2023-1234
//!     packages: [openssl, libssl3]   # optional; `package: openssl` also works
//!     expires: 2026-12-31            # optional, inclusive
//!     reason: not reachable: we never parse untrusted certificates
//! ```
//!
//! A rule's id matches a finding's advisory id or any of its related ids (CVE aliases).

use std::path::Path;

use kensa_matcher::{Finding, FindingStatus, Severity};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

/// One ignore rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreRule {
    pub id: String,
    /// Package names it is limited to (empty: any).
    pub packages: Vec<String>,
    /// `YYYY-MM-DD`: the rule applies up to and including this day.
    pub expires: Option<String>,
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct YamlFile {
    #[serde(default)]
    vulnerabilities: Vec<YamlRule>,
}

#[derive(Deserialize)]
struct YamlRule {
    id: String,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default, alias = "expired_at", alias = "expiry")]
    expires: Option<serde_yaml_ng::Value>,
    #[serde(default, alias = "statement")]
    reason: Option<String>,
}

const MAX_FILTER_FILE: u64 = 64 << 20;

fn read_text(path: &Path) -> Result<String, FilterError> {
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| FilterError::Io { path: p.clone(), source: e })?;
    if meta.len() > MAX_FILTER_FILE {
        return Err(FilterError::Format { path: p, reason: format!("file is {} bytes; the limit is {MAX_FILTER_FILE}", meta.len()) });
    }
    let bytes = std::fs::read(path).map_err(|e| FilterError::Io { path: p.clone(), source: e })?;
    String::from_utf8(bytes).map_err(|_| FilterError::Format { path: p, reason: "not UTF-8 text".into() })
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && s.chars().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Reads an ignore file (see the module docs).
pub fn read_ignore_file(path: &Path) -> Result<Vec<IgnoreRule>, FilterError> {
    let text = read_text(path)?;
    parse_ignore(&text, &path.display().to_string(), path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
}

/// Parses ignore-file text; `name` is used in errors.
pub fn parse_ignore(text: &str, name: &str, yaml: bool) -> Result<Vec<IgnoreRule>, FilterError> {
    let err = |line: Option<usize>, reason: String| FilterError::Format { path: match line { Some(l) => format!("{name}:{l}"), None => name.to_string() }, reason };
    let looks_yaml = yaml || text.lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).is_some_and(|l| l.trim_start().starts_with("vulnerabilities:"));
    if looks_yaml {
        let f: YamlFile = serde_yaml_ng::from_str(text).map_err(|e| err(None, format!("invalid ignore file YAML: {e}")))?;
        let mut out = Vec::new();
        for (i, r) in f.vulnerabilities.into_iter().enumerate() {
            let expires = match r.expires {
                None | Some(serde_yaml_ng::Value::Null) => None,
                Some(serde_yaml_ng::Value::String(s)) => Some(s),
                Some(other) => return Err(err(None, format!("vulnerabilities[{i}].expires: expected a YYYY-MM-DD date, got {other:?}"))),
            };
            if let Some(d) = &expires {
                if !valid_date(d) {
                    return Err(err(None, format!("vulnerabilities[{i}].expires: {d:?} is not a YYYY-MM-DD date")));
                }
            }
            if r.id.trim().is_empty() {
                return Err(err(None, format!("vulnerabilities[{i}]: empty id")));
            }
            let mut packages = r.packages;
            packages.extend(r.package);
            out.push(IgnoreRule { id: r.id.trim().to_string(), packages, expires, reason: r.reason });
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let (body, comment) = match raw.split_once('#') {
            Some((b, c)) => (b, Some(c.trim().to_string()).filter(|c| !c.is_empty())),
            None => (raw, None),
        };
        let mut words = body.split_whitespace();
        let Some(id) = words.next() else { continue };
        let mut rule = IgnoreRule { id: id.to_string(), packages: Vec::new(), expires: None, reason: comment };
        for w in words {
            if let Some(d) = w.strip_prefix("exp:") {
                if !valid_date(d) {
                    return Err(err(Some(n + 1), format!("{w:?}: expiry must be exp:YYYY-MM-DD")));
                }
                rule.expires = Some(d.to_string());
            } else {
                rule.packages.push(w.to_string());
            }
        }
        out.push(rule);
    }
    Ok(out)
}

/// A VEX statement that a vulnerability does not affect some products.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VexStatement {
    pub vulnerability: String,
    /// purls (or bom-refs); empty: every product.
    pub products: Vec<String>,
    /// `not_affected`, `fixed`, `false_positive`, `resolved`: all suppress.
    pub status: String,
    pub justification: Option<String>,
    pub document: String,
}

/// Reads an OpenVEX or CycloneDX VEX JSON document. Statements of other statuses
/// (`affected`, `under_investigation`, `exploitable`, `in_triage`) are ignored: they do not
/// suppress anything.
pub fn read_vex(path: &Path) -> Result<Vec<VexStatement>, FilterError> {
    let text = read_text(path)?;
    parse_vex(&text, &path.display().to_string())
}

pub fn parse_vex(text: &str, name: &str) -> Result<Vec<VexStatement>, FilterError> {
    let fmt = |reason: String| FilterError::Format { path: name.to_string(), reason };
    let doc: Value = serde_json::from_str(text).map_err(|e| fmt(format!("not JSON: {e}")))?;
    let mut out = Vec::new();
    let as_ids = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| match p {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(o) => o.get("@id").or_else(|| o.get("ref")).and_then(Value::as_str).map(str::to_string),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    if let Some(statements) = doc.get("statements").and_then(Value::as_array) {
        // OpenVEX.
        for (i, s) in statements.iter().enumerate() {
            let vuln = match s.get("vulnerability") {
                Some(Value::String(v)) => v.clone(),
                Some(Value::Object(o)) => o.get("name").or_else(|| o.get("@id")).and_then(Value::as_str).unwrap_or("").to_string(),
                _ => String::new(),
            };
            if vuln.is_empty() {
                return Err(fmt(format!("statements[{i}] has no vulnerability name")));
            }
            let status = s.get("status").and_then(Value::as_str).ok_or_else(|| fmt(format!("statements[{i}] has no status")))?;
            out.push(VexStatement {
                vulnerability: vuln,
                products: as_ids(s.get("products")),
                status: status.to_string(),
                justification: s.get("justification").or_else(|| s.get("impact_statement")).and_then(Value::as_str).map(str::to_string),
                document: name.to_string(),
            });
        }
    } else if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        for (i, v) in doc.get("vulnerabilities").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let id = v.get("id").and_then(Value::as_str).ok_or_else(|| fmt(format!("vulnerabilities[{i}] has no id")))?;
            let Some(state) = v.get("analysis").and_then(|a| a.get("state")).and_then(Value::as_str) else { continue };
            out.push(VexStatement {
                vulnerability: id.to_string(),
                products: as_ids(v.get("affects")),
                status: state.to_string(),
                justification: v.get("analysis").and_then(|a| a.get("justification").or_else(|| a.get("detail"))).and_then(Value::as_str).map(str::to_string),
                document: name.to_string(),
            });
        }
    } else {
        return Err(fmt("neither an OpenVEX document (`statements`) nor a CycloneDX VEX BOM (`bomFormat: CycloneDX`)".into()));
    }
    Ok(out)
}

/// A purl without its qualifiers and subpath (`pkg:deb/debian/openssl@3.0.11-1?arch=amd64` ->
/// `pkg:deb/debian/openssl@3.0.11-1`), and without its version.
fn purl_base(p: &str) -> (&str, &str) {
    let p = p.split(['?', '#']).next().unwrap_or(p);
    match p.rsplit_once('@') {
        Some((name, ver)) if !name.ends_with('/') => (name, ver),
        _ => (p, ""),
    }
}

/// Does a VEX product id name this package? Exact purl, purl without qualifiers, or a
/// version-less purl naming the package.
fn product_matches(product: &str, purl: &str) -> bool {
    if product == purl {
        return true;
    }
    let (pn, pv) = purl_base(product);
    let (n, v) = purl_base(purl);
    pn.eq_ignore_ascii_case(n) && (pv.is_empty() || pv == v)
}

/// The filters of one report.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Keep only these severities (empty: all).
    pub severities: Vec<Severity>,
    pub ignore_unfixed: bool,
    pub ignore_rules: Vec<IgnoreRule>,
    pub vex: Vec<VexStatement>,
    /// Today as `YYYY-MM-DD`, for rule expiry.
    pub today: String,
}

impl Filters {
    /// Drops and suppresses findings (see the module docs).
    pub fn apply(&self, findings: Vec<Finding>) -> Vec<Finding> {
        let mut out = Vec::with_capacity(findings.len());
        for mut f in findings {
            if !self.severities.is_empty() && !self.severities.contains(&f.severity) {
                continue;
            }
            if self.ignore_unfixed && f.fix_available == kensa_matcher::FixAvailable::No {
                continue;
            }
            if let Some(reason) = self.suppression(&f) {
                f.status = FindingStatus::Suppressed;
                f.note = Some(reason);
            }
            out.push(f);
        }
        out
    }

    fn suppression(&self, f: &Finding) -> Option<String> {
        let pkg = f.package();
        for r in &self.ignore_rules {
            if r.expires.as_deref().is_some_and(|d| d < self.today.as_str()) {
                continue;
            }
            if f.ids().any(|id| id.eq_ignore_ascii_case(&r.id)) && (r.packages.is_empty() || r.packages.contains(&pkg.name)) {
                return Some(match &r.reason {
                    Some(why) => format!("ignored by rule {}: {why}", r.id),
                    None => format!("ignored by rule {}", r.id),
                });
            }
        }
        // The last applicable statement wins (later statements update earlier ones).
        let mut verdict = None;
        for s in &self.vex {
            if f.ids().any(|id| id.eq_ignore_ascii_case(&s.vulnerability)) && (s.products.is_empty() || s.products.iter().any(|p| product_matches(p, &pkg.purl))) {
                verdict = Some(s);
            }
        }
        let s = verdict?;
        matches!(s.status.as_str(), "not_affected" | "fixed" | "false_positive" | "resolved" | "resolved_with_pedigree").then(|| {
            format!("VEX {} ({}): {}{}", s.status, s.document, s.vulnerability, s.justification.as_deref().map(|j| format!(", {j}")).unwrap_or_default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let rules = parse_ignore("# header\nCVE-1  \nGHSA-x lodash exp:2030-01-02 # reachable? no\n\n", "t", false).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1], IgnoreRule { id: "GHSA-x".into(), packages: vec!["lodash".into()], expires: Some("2030-01-02".into()), reason: Some("reachable? no".into()) });
        assert!(parse_ignore("CVE-1 exp:tomorrow", "t", false).unwrap_err().to_string().contains("t:1"));
    }

    #[test]
    fn yaml_format() {
        let rules = parse_ignore("vulnerabilities:\n  - id: CVE-2\n    package: openssl\n    expires: 2030-01-01\n    reason: why\n", "t", false).unwrap();
        assert_eq!(rules, vec![IgnoreRule { id: "CVE-2".into(), packages: vec!["openssl".into()], expires: Some("2030-01-01".into()), reason: Some("why".into()) }]);
        assert!(parse_ignore("vulnerabilities: [ {id: 3", "t", true).is_err());
    }

    #[test]
    fn purls() {
        assert!(product_matches("pkg:npm/lodash", "pkg:npm/lodash@4.17.20"));
        assert!(product_matches("pkg:npm/lodash@4.17.20", "pkg:npm/lodash@4.17.20"));
        assert!(!product_matches("pkg:npm/lodash@4.17.21", "pkg:npm/lodash@4.17.20"));
        assert!(product_matches("pkg:deb/debian/openssl@3.0.11-1", "pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12"));
        assert!(!product_matches("pkg:npm/lodash-es", "pkg:npm/lodash@4.17.20"));
        assert!(product_matches("pkg:npm/%40babel/core", "pkg:npm/%40babel/core@7.0.0"));
    }
}
