//! The database search result for one vulnerability (Inspector's `SearchVulnerabilities` shape,
//! camelCase, plus `affected`). Shared by `kensa db search --format json` and the fleet server's
//! `GET /api/v1/vulnerabilities/{id}`, so both give the same JSON.

use serde_json::{json, Value};

use crate::{Result, Severity, SeverityKind, VulnDb, Vulnerability};

/// The score of `kind` to show: NVD's when present, else the first source's.
pub fn pick_severity(scores: &[Severity], kind: SeverityKind) -> Option<&Severity> {
    let of_kind = || scores.iter().filter(move |s| s.kind == kind);
    of_kind().find(|s| s.source == "nvd@nist.gov").or_else(|| of_kind().next())
}

/// The CVSS scores of `v`: its own, else those of its CVEs (a PYSEC or GHSA record often carries
/// none while NVD scores the CVE). Each keeps its source.
pub fn scores(db: &VulnDb, v: &Vulnerability) -> Result<Vec<Severity>> {
    let cves = v.aliases.iter().chain(v.related.iter()).map(String::as_str).filter(|a| a.starts_with("CVE-") && *a != v.id);
    scores_with(&v.severities, cves, |cve| db.vulnerability(cve))
}

/// `own` scores when they include CVSS v3 or v4, else with those of the records `lookup` finds
/// for `cves` (the first 20) added, each vector once. `db search` and findings both score this way;
/// the matcher looks records up through its per-scan cache.
pub fn scores_with<'a, E>(
    own: &[Severity],
    cves: impl IntoIterator<Item = &'a str>,
    mut lookup: impl FnMut(&str) -> std::result::Result<Option<Vulnerability>, E>,
) -> std::result::Result<Vec<Severity>, E> {
    let mut out = own.to_vec();
    if out.iter().any(|s| matches!(s.kind, SeverityKind::CvssV3 | SeverityKind::CvssV4)) {
        return Ok(out);
    }
    for cve in cves.into_iter().take(20) {
        if let Some(c) = lookup(cve)? {
            for s in c.severities {
                if !out.iter().any(|x| x.vector == s.vector) {
                    out.push(s);
                }
            }
        }
    }
    Ok(out)
}

/// The search result of `v`, with its EPSS score and CISA KEV entry (looked up by CVE id).
pub fn search_json(db: &VulnDb, v: &Vulnerability) -> Result<Value> {
    let cve = std::iter::once(&v.id).chain(v.aliases.iter()).find(|i| i.starts_with("CVE-")).cloned();
    let epss = match &cve {
        Some(c) => db.epss(c)?,
        None => None,
    };
    let kev = match &cve {
        Some(c) => db.kev(c)?,
        None => None,
    };
    let scores = scores(db, v)?;
    let cvss = |k| pick_severity(&scores, k).map(|s| json!({ "baseScore": s.base_score, "scoringVector": s.vector, "source": s.source }));
    let affected: Vec<Value> = v
        .affected
        .iter()
        .map(|a| {
            json!({
                "ecosystem": a.ecosystem,
                "name": a.name,
                "purl": a.purl,
                "ranges": a.ranges,
                "versions": a.versions,
                "fixedVersions": a.fixed_versions(),
                "status": a.status,
                "source": a.source,
                "recordId": a.vuln_id,
                "ecosystemSpecific": a.ecosystem_specific,
                "databaseSpecific": a.database_specific,
            })
        })
        .collect();
    let description = match (&v.summary, &v.details) {
        (Some(s), Some(d)) if !d.starts_with(s.as_str()) => format!("{s}\n\n{d}"),
        (_, Some(d)) => d.clone(),
        (Some(s), None) => s.clone(),
        (None, None) => String::new(),
    };
    Ok(json!({
        "id": v.id,
        "title": v.summary,
        "description": description,
        "cwes": v.cwes,
        "cvss2": cvss(SeverityKind::CvssV2),
        "cvss3": cvss(SeverityKind::CvssV3),
        "cvss4": cvss(SeverityKind::CvssV4),
        "cvss": scores,
        "epss": epss.map(|e| json!({ "score": e.score, "percentile": e.percentile })),
        "cisaData": kev.as_ref().map(|k| json!({
            "dateAdded": k.date_added,
            "dateDue": k.due_date,
            "action": k.required_action,
            "knownRansomwareCampaignUse": k.known_ransomware_campaign_use,
            "vulnerabilityName": k.vulnerability_name,
        })),
        "exploitObserved": kev.as_ref().map(|k| json!({ "firstSeen": k.date_added })),
        "referenceUrls": v.references.iter().map(|r| r.url.clone()).collect::<Vec<_>>(),
        "relatedVulnerabilities": v.aliases.iter().chain(v.related.iter()).collect::<Vec<_>>(),
        "vendorSeverity": v.vendor_severity,
        "source": v.source.to_uppercase(),
        "sourceUrl": v.source_url,
        "createdAt": v.published,
        "updatedAt": v.modified,
        "vendorCreatedAt": v.published,
        "vendorUpdatedAt": v.modified,
        "affected": affected,
    }))
}
