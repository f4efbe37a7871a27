//! CISA Known Exploited Vulnerabilities catalog JSON
//! (`known_exploited_vulnerabilities.json`: `{catalogVersion, dateReleased, count, vulnerabilities[]}`).
//! The catalog is published whole, so an import replaces the stored catalog.

use serde_json::Value;

use super::ImportReport;
use crate::model::Kev;
use crate::{Result, Writer};

pub fn import(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    let Some(entries) = value.get("vulnerabilities").and_then(Value::as_array) else {
        report.skip(name, "KEV catalog without a vulnerabilities list");
        return Ok(());
    };
    w.clear_kev()?;
    for (i, e) in entries.iter().enumerate() {
        match serde_json::from_value::<Kev>(e.clone()) {
            Ok(k) if k.cve_id.starts_with("CVE-") => {
                w.put_kev(&k)?;
                report.count("kev", 1);
            }
            Ok(k) => report.skip(&format!("{name}: vulnerabilities[{i}]"), format!("cveID {:?} is not a CVE id", k.cve_id)),
            Err(err) => report.skip(&format!("{name}: vulnerabilities[{i}]"), format!("malformed KEV entry: {err}")),
        }
    }
    if let Some(v) = value.get("catalogVersion").and_then(Value::as_str) {
        w.set_meta("kev_catalog_version", v)?;
    }
    Ok(())
}
