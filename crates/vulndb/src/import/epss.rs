//! EPSS daily scores CSV as FIRST publishes it (`epss_scores-YYYY-MM-DD.csv.gz`):
//!
//! ```text
//! #model_version:v2025.03.14,score_date:2025-03-20T12:55:00Z
//! cve,epss,percentile
//! CVE-1999-0001,0.01025,0.76487
//! ```
//! Each file is a complete snapshot, so an import replaces the stored scores.

use super::ImportReport;
use crate::model::Epss;
use crate::{Result, Writer};

pub fn import(w: &mut Writer<'_>, name: &str, text: &str, report: &mut ImportReport) -> Result<()> {
    let mut lines = text.lines().enumerate().peekable();
    let mut model_version = None;
    let mut score_date = None;
    if let Some((_, first)) = lines.peek() {
        if let Some(comment) = first.strip_prefix('#') {
            for part in comment.split(',') {
                if let Some((k, v)) = part.split_once(':') {
                    match k.trim() {
                        "model_version" => model_version = Some(v.trim().to_string()),
                        "score_date" => score_date = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            lines.next();
        }
    }
    let header = lines.next().map(|(_, l)| l.trim().to_ascii_lowercase());
    let cols: Vec<String> = header.as_deref().unwrap_or("").split(',').map(|s| s.trim().to_string()).collect();
    let (Some(ci), Some(si), Some(pi)) = (
        cols.iter().position(|c| c == "cve"),
        cols.iter().position(|c| c == "epss"),
        cols.iter().position(|c| c == "percentile"),
    ) else {
        report.skip(name, "EPSS CSV without the header cve,epss,percentile");
        return Ok(());
    };
    w.clear_epss()?;
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let get = |i: usize| fields.get(i).map(|s| s.trim());
        let parsed = (|| {
            let cve = get(ci).filter(|c| c.starts_with("CVE-"))?;
            let score: f64 = get(si)?.parse().ok().filter(|s: &f64| (0.0..=1.0).contains(s))?;
            let percentile: f64 = get(pi)?.parse().ok().filter(|s: &f64| (0.0..=1.0).contains(s))?;
            Some(Epss { cve: cve.to_string(), score, percentile })
        })();
        match parsed {
            Some(e) => {
                w.put_epss(&e)?;
                report.count("epss", 1);
            }
            None => report.skip(&format!("{name}:{}", n + 1), format!("malformed EPSS row {line:?}")),
        }
    }
    if let Some(v) = model_version {
        w.set_meta("epss_model_version", &v)?;
    }
    if let Some(v) = score_date {
        w.set_meta("epss_score_date", &v)?;
    }
    Ok(())
}
