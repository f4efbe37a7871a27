//! `kensa scan` output: a [`ScanReport`] (findings plus what was scanned with which database)
//! written as a table, kensa JSON, SARIF 2.1.0 or CycloneDX 1.6 with vulnerabilities; and the
//! [`filter`]s users apply to it.

pub mod filter;

use std::collections::BTreeMap;
use std::io::{self, Write};

use kensa_inventory::{Inventory, OsInfo};
use kensa_matcher::{Finding, FindingStatus, FixAvailable, Severity};
use serde::Serialize;
use serde_json::{json, Value};

/// The database a scan used.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseInfo {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update: Option<String>,
    /// Distribution ecosystems consulted for the OS packages.
    pub os_ecosystems: Vec<String>,
}

/// Everything a scan reports.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
    pub database: DatabaseInfo,
    /// Packages in the inventory, and how many were matched (OS-owned language packages are not).
    pub packages: usize,
    pub packages_matched: usize,
    pub findings: Vec<Finding>,
    /// Unreadable package databases, unevaluable advisory entries.
    pub warnings: Vec<String>,
    pub tool_version: String,
}

impl ScanReport {
    /// Active (not suppressed) findings.
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == FindingStatus::Active)
    }

    /// Counts of active findings per severity, most severe first.
    pub fn counts(&self) -> Vec<(Severity, usize)> {
        Severity::ALL.iter().map(|s| (*s, self.active().filter(|f| f.severity == *s).count())).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Sarif,
    CycloneDxJson,
}

/// Writes `report` in `format`. `color`: ANSI colours in the table. `inv` is needed for
/// CycloneDX (the components the vulnerabilities refer to).
pub fn write(format: Format, report: &ScanReport, inv: &Inventory, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => write_table(report, color, out),
        Format::Json => write_json(report, out),
        Format::Sarif => write_sarif(report, out),
        Format::CycloneDxJson => write_cyclonedx(report, inv, out),
    }
}

pub fn write_json(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    let mut v = serde_json::to_value(report).map_err(io::Error::other)?;
    if let Value::Object(m) = &mut v {
        m.insert("schemaVersion".into(), json!(1));
        let summary: BTreeMap<&str, usize> = report.counts().into_iter().map(|(s, n)| (s.as_str(), n)).collect();
        m.insert("summary".into(), json!(summary));
    }
    serde_json::to_writer_pretty(&mut *out, &v)?;
    out.write_all(b"\n")
}

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "\x1b[1;31m",
        Severity::High => "\x1b[31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[34m",
        Severity::Informational => "\x1b[36m",
        Severity::Untriaged => "\x1b[37m",
    }
}

fn truncate(s: &str, n: usize) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.chars().count() <= n {
        line.to_string()
    } else {
        let mut t: String = line.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The table: findings grouped by package (most severe first), then a summary line.
pub fn write_table(report: &ScanReport, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let os = report.os.as_ref().map(|o| o.pretty_name.clone().unwrap_or_else(|| format!("{} {}", o.id, o.version_id))).unwrap_or_else(|| "unknown OS".into());
    writeln!(out, "{} ({os}): {} packages, {} matched", report.target, report.packages, report.packages_matched)?;
    let mut groups: BTreeMap<(String, String, String), Vec<&Finding>> = BTreeMap::new();
    for f in report.active() {
        let p = f.package();
        groups.entry((p.name.clone(), p.version.clone(), p.file_path.clone().unwrap_or_default())).or_default().push(f);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by(|a, b| {
        let top = |g: &Vec<&Finding>| g.iter().map(|f| f.severity).max();
        top(&b.1).cmp(&top(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    let (bold, reset) = if color { ("\x1b[1m", "\x1b[0m") } else { ("", "") };
    for ((name, version, path), mut findings) in groups {
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.vulnerability_id().cmp(b.vulnerability_id())));
        let pm = &findings[0].package().package_manager;
        writeln!(out)?;
        writeln!(out, "{bold}{name} {version}{reset} ({pm}{}{})", if path.is_empty() { "" } else { ", " }, path)?;
        for f in findings {
            let p = f.package();
            let sev = f.severity.as_str();
            let sev = if color { format!("{}{sev:<13}{reset}", severity_color(f.severity)) } else { format!("{sev:<13}") };
            let fixed = match f.fix_available {
                FixAvailable::No => format!("no fix ({})", f.vendor_status.replace('_', " ")),
                _ => format!("fixed in {}", p.fixed_in_version),
            };
            // The first line of prose (descriptions are often Markdown with `# Summary` headings).
            let summary = f.description.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
            writeln!(out, "  {sev} {:<22} {:<32} {}", f.vulnerability_id(), truncate(&fixed, 32), truncate(summary, 60))?;
        }
    }
    let counts = report.counts();
    let total: usize = counts.iter().map(|c| c.1).sum();
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{}: {n}", s.as_str())).collect();
    let suppressed = report.findings.len() - total;
    writeln!(out)?;
    write!(out, "{bold}Total: {total}{reset} ({})", parts.join(", "))?;
    if suppressed > 0 {
        write!(out, "; {suppressed} suppressed")?;
    }
    writeln!(out)?;
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

/// A path as a relative URI reference: bytes outside RFC 3986's unreserved characters, `/` and
/// a few safe sub-delimiters are percent-encoded (spaces, `%`, `#`, `?`, non-ASCII).
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        _ => "note",
    }
}

/// SARIF 2.1.0: one rule per vulnerability id, one result per active finding, located at the
/// package's metadata file.
pub fn write_sarif(report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut results = Vec::new();
    for f in report.active() {
        let id = f.vulnerability_id().to_string();
        let idx = *rule_index.entry(id.clone()).or_insert_with(|| {
            let mut props = json!({ "tags": ["vulnerability", "security", f.severity.as_str()], "precision": "very-high" });
            if let Some(score) = f.inspector_score {
                props["security-severity"] = json!(format!("{score:.1}"));
            }
            let mut rule = json!({
                "id": id,
                "name": "PackageVulnerability",
                "shortDescription": { "text": truncate(&f.title, 200) },
                "fullDescription": { "text": f.description },
                "defaultConfiguration": { "level": sarif_level(f.severity) },
                "help": { "text": f.remediation.recommendation.text },
                "properties": props,
            });
            if let Some(url) = &f.package_vulnerability_details.source_url {
                rule["helpUri"] = json!(url);
            }
            rules.push(rule);
            rules.len() - 1
        });
        let p = f.package();
        let uri = uri_path(p.file_path.as_deref().unwrap_or(&report.target).trim_start_matches('/'));
        results.push(json!({
            "ruleId": id,
            "ruleIndex": idx,
            "level": sarif_level(f.severity),
            "message": { "text": format!(
                "{} {} {} is affected by {} ({}). {}",
                p.package_manager, p.name, p.version, id, f.severity.as_str(), f.remediation.recommendation.text) },
            "locations": [{
                "physicalLocation": { "artifactLocation": { "uri": uri } },
                "message": { "text": format!("{}@{}", p.name, p.version) }
            }],
            "properties": { "purl": p.purl, "fixedInVersion": p.fixed_in_version, "fixAvailable": f.fix_available },
        }));
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "kensa",
                "version": report.tool_version,
                "informationUri": "https://github.com/kensa-scanner/kensa",
                "rules": rules,
            }},
            "results": results,
            "properties": { "target": report.target },
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    out.write_all(b"\n")
}

fn cdx_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Informational => "info",
        Severity::Untriaged => "unknown",
    }
}

/// CycloneDX 1.6: kensa-sbom's BOM of the inventory plus `vulnerabilities`, one per id, each
/// with its ratings and the components it affects.
pub fn write_cyclonedx(report: &ScanReport, inv: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::new();
    kensa_sbom::write_cyclonedx(inv, &kensa_sbom::DocumentInfo::new(&report.tool_version), &mut buf)?;
    let mut bom: Value = serde_json::from_slice(&buf).map_err(io::Error::other)?;
    // The same bom-refs kensa-sbom gives: the purl, `purl|N` for the Nth duplicate.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refs: BTreeMap<(String, String), String> = BTreeMap::new();
    for p in &inv.packages {
        let n = seen.entry(p.purl.as_str()).or_insert(0);
        *n += 1;
        let r = if *n == 1 { p.purl.clone() } else { format!("{}|{}", p.purl, n) };
        refs.entry((p.purl.clone(), p.path().to_string())).or_insert(r);
    }
    let mut by_id: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in report.active() {
        by_id.entry(f.vulnerability_id().to_string()).or_default().push(f);
    }
    let mut vulns = Vec::new();
    for (id, fs) in by_id {
        let f = fs[0];
        let d = &f.package_vulnerability_details;
        let mut ratings: Vec<Value> = d
            .cvss
            .iter()
            .map(|c| {
                let method = match c.version.as_str() {
                    "2.0" => "CVSSv2",
                    "3.0" => "CVSSv3",
                    "4.0" => "CVSSv4",
                    _ => "CVSSv31",
                };
                json!({ "source": { "name": c.source }, "score": c.base_score, "severity": cdx_severity(Severity::from_cvss(c.base_score)), "method": method, "vector": c.scoring_vector })
            })
            .collect();
        if let Some(v) = &d.vendor_severity {
            if let Some(s) = Severity::from_vendor(v) {
                ratings.push(json!({ "source": { "name": d.source }, "severity": cdx_severity(s), "method": "other" }));
            }
        }
        if ratings.is_empty() {
            ratings.push(json!({ "severity": cdx_severity(f.severity) }));
        }
        let mut affects = Vec::new();
        for f in &fs {
            let p = f.package();
            let r = refs.get(&(p.purl.clone(), p.file_path.clone().unwrap_or_default())).cloned().unwrap_or_else(|| p.purl.clone());
            affects.push(json!({ "ref": r, "versions": [{ "version": p.version, "status": "affected" }] }));
        }
        let mut v = json!({
            "bom-ref": format!("vuln:{id}"),
            "id": id,
            "source": { "name": d.source },
            "ratings": ratings,
            "description": f.description,
            "recommendation": f.remediation.recommendation.text,
            "affects": affects,
        });
        if let Some(url) = &d.source_url {
            v["source"]["url"] = json!(url);
        }
        let refs_: Vec<Value> = d.related_vulnerabilities.iter().map(|r| json!({ "id": r, "source": { "name": if r.starts_with("CVE-") { "NVD" } else { "OSV" } } })).collect();
        if !refs_.is_empty() {
            v["references"] = json!(refs_);
        }
        let advisories: Vec<Value> = d.reference_urls.iter().filter(|u| u.starts_with("http")).map(|u| json!({ "url": u })).collect();
        if !advisories.is_empty() {
            v["advisories"] = json!(advisories);
        }
        vulns.push(v);
    }
    bom["vulnerabilities"] = Value::Array(vulns);
    serde_json::to_writer_pretty(&mut *out, &bom)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sarif_uris_are_percent_encoded() {
        assert_eq!(uri_path("opt/app/my app.war!WEB-INF/lib/a.jar"), "opt/app/my%20app.war!WEB-INF/lib/a.jar");
        assert_eq!(uri_path("srv/ü#1?x%"), "srv/%C3%BC%231%3Fx%25");
    }
}
