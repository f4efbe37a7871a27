//! CISA Known Exploited Vulnerabilities catalog JSON
//! (`known_exploited_vulnerabilities.json`: `{catalogVersion, dateReleased, count, vulnerabilities[]}`).
//! The catalog is published whole, so an import replaces the stored catalog. The CSV edition
//! (`known_exploited_vulnerabilities.csv`, same columns, `cwes` joined with ", ") is read too.

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

/// Splits RFC 4180 CSV text into records (quoted fields may hold commas, quotes and newlines).
fn csv_records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

pub fn import_csv(w: &mut Writer<'_>, name: &str, text: &str, report: &mut ImportReport) -> Result<()> {
    let rows = match csv_records(text) {
        Ok(r) => r,
        Err(e) => {
            report.skip(name, format!("malformed KEV CSV: {e}"));
            return Ok(());
        }
    };
    let Some((header, rows)) = rows.split_first() else { return Ok(()) };
    let col = |n: &str| header.iter().position(|h| h == n);
    let Some(cve_col) = col("cveID") else {
        report.skip(name, "KEV CSV without a cveID column");
        return Ok(());
    };
    w.clear_kev()?;
    for (i, row) in rows.iter().enumerate() {
        let get = |n: &str| col(n).and_then(|c| row.get(c)).cloned().unwrap_or_default();
        let cve = row.get(cve_col).cloned().unwrap_or_default();
        if !cve.starts_with("CVE-") || row.len() != header.len() {
            report.skip(&format!("{name}:{}", i + 2), format!("malformed KEV row (cveID {cve:?}, {} of {} fields)", row.len(), header.len()));
            continue;
        }
        let cwes = get("cwes");
        w.put_kev(&Kev {
            cve_id: cve,
            vendor_project: get("vendorProject"),
            product: get("product"),
            vulnerability_name: get("vulnerabilityName"),
            date_added: get("dateAdded"),
            short_description: get("shortDescription"),
            required_action: get("requiredAction"),
            due_date: get("dueDate"),
            known_ransomware_campaign_use: get("knownRansomwareCampaignUse"),
            notes: get("notes"),
            cwes: cwes.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
        })?;
        report.count("kev", 1);
    }
    Ok(())
}
