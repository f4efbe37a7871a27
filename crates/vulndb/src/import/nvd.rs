//! NVD CVE API 2.0 responses and the NVD JSON 2.0 feed files (`nvdcve-2.0-YYYY.json.gz`), which
//! share one shape: `{format: "NVD_CVE", version: "2.0", vulnerabilities: [{cve: {...}}]}`.
//! Descriptions, CVSS v2 / v3.0 / v3.1 / v4.0 metrics, CWEs and references are kept; NVD's CPE
//! configurations name products, not packages, so they are not turned into affected packages.

use serde_json::Value;

use super::{put, str_field, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

pub const SOURCE: &str = "nvd";

pub fn import(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    let Some(items) = value.get("vulnerabilities").and_then(Value::as_array) else {
        report.skip(name, "NVD document without a vulnerabilities list");
        return Ok(());
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("{name}: vulnerabilities[{i}]");
        let Some(cve) = item.get("cve") else {
            report.skip(&at, "entry without `cve`");
            continue;
        };
        match convert(cve) {
            Ok(Some(v)) => put(w, &at, "nvd", &v, report)?,
            Ok(None) => {
                if let Some(id) = str_field(cve, "id") {
                    w.remove(&id, SOURCE)?;
                }
                report.withdrawn += 1;
            }
            Err(reason) => report.skip(&at, reason),
        }
    }
    Ok(())
}

/// Converts one `cve` object; `Ok(None)` for a rejected CVE.
pub fn convert(cve: &Value) -> Result<Option<Vulnerability>, String> {
    let id = str_field(cve, "id").ok_or("CVE without an id")?;
    if !id.starts_with("CVE-") {
        return Err(format!("id {id:?} is not a CVE id"));
    }
    if str_field(cve, "vulnStatus").as_deref() == Some("Rejected") {
        return Ok(None);
    }
    let english = |list: Option<&Value>| -> Option<String> {
        let arr = list?.as_array()?;
        arr.iter()
            .find(|d| d.get("lang").and_then(Value::as_str) == Some("en"))
            .or_else(|| arr.first())
            .and_then(|d| str_field(d, "value"))
    };
    let details = english(cve.get("descriptions"));
    let mut severities = Vec::new();
    let mut vendor_severity = None;
    if let Some(metrics) = cve.get("metrics").and_then(Value::as_object) {
        for key in ["cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"] {
            for m in metrics.get(key).and_then(Value::as_array).into_iter().flatten() {
                let data = m.get("cvssData").ok_or_else(|| format!("{key} entry without cvssData"))?;
                let vector = str_field(data, "vectorString").ok_or_else(|| format!("{key} entry without vectorString"))?;
                let published = data.get("baseScore").and_then(Value::as_f64);
                let source = str_field(m, "source").unwrap_or_else(|| SOURCE.into());
                if vendor_severity.is_none() && m.get("type").and_then(Value::as_str) == Some("Primary") {
                    vendor_severity = str_field(data, "baseSeverity").or_else(|| str_field(m, "baseSeverity"));
                }
                severities.push(crate::cvss::severity(&source, &vector, published));
            }
        }
    }
    let mut cwes: Vec<String> = Vec::new();
    for wk in cve.get("weaknesses").and_then(Value::as_array).into_iter().flatten() {
        for d in wk.get("description").and_then(Value::as_array).into_iter().flatten() {
            if let Some(c) = str_field(d, "value").filter(|c| c.starts_with("CWE-")) {
                if !cwes.contains(&c) {
                    cwes.push(c);
                }
            }
        }
    }
    let references = cve
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| str_field(r, "url").map(|url| Reference { kind: None, url }))
        .collect();
    Ok(Some(Vulnerability {
        source_url: Some(format!("https://nvd.nist.gov/vuln/detail/{id}")),
        id,
        source: SOURCE.into(),
        details,
        published: str_field(cve, "published"),
        modified: str_field(cve, "lastModified"),
        cwes,
        references,
        severities,
        vendor_severity,
        ..Default::default()
    }))
}
