//! Red Hat CSAF 2.0 documents: VEX files (one CVE each, `document.category = "csaf_vex"`,
//! `https://security.access.redhat.com/data/csaf/v2/vex/YYYY/cve-YYYY-NNNN.json`) and security
//! advisories (RHSA, `csaf_security_advisory`).
//!
//! Products are resolved through the product tree: a status entry such as
//! `AppStream-9.2.0.Z.MAIN:nodejs-1:16.20.2-1.el9_2.x86_64` is a `default_component_of`
//! relationship joining a platform (`AppStream-9.2.0.Z.MAIN`, whose CPE
//! `cpe:/a:redhat:enterprise_linux:9::appstream` gives the ecosystem
//! `Red Hat:enterprise_linux:9::appstream`, as OSV names it) and a component (an rpm whose purl
//! `pkg:rpm/redhat/nodejs@16.20.2-1.el9_2?arch=x86_64&epoch=1` gives name `nodejs` and fixed
//! version `1:16.20.2-1.el9_2`; or a bare name `nodejs` for unfixed products; module components
//! `nodejs:18/nodejs` keep the module stream in `ecosystem_specific.module`).
//!
//! Status: `fixed` -> fixed; `known_affected` -> affected, or will-not-fix when the product's
//! remediation is `no_fix_planned`, or `none_available` with details other than "Affected"
//! (Red Hat writes "Will not fix", "Out of support scope", "Fix deferred");
//! `known_not_affected` -> not affected; `under_investigation` -> affected.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::{put, str_field, ImportReport};
use crate::model::*;
use crate::{Result, Writer};

pub const SOURCE: &str = "redhat-csaf";

#[derive(Default)]
struct ProductInfo {
    name: String,
    cpe: Option<String>,
    purl: Option<String>,
}

struct Tree {
    products: HashMap<String, ProductInfo>,
    /// full product id -> (component product id, platform product id)
    relationships: HashMap<String, (String, String)>,
}

fn collect_branches(branches: &Value, out: &mut HashMap<String, ProductInfo>) {
    for b in branches.as_array().into_iter().flatten() {
        if let Some(p) = b.get("product") {
            if let Some(id) = str_field(p, "product_id") {
                let helper = p.get("product_identification_helper");
                out.insert(
                    id,
                    ProductInfo {
                        name: str_field(p, "name").unwrap_or_default(),
                        cpe: helper.and_then(|h| str_field(h, "cpe")),
                        purl: helper.and_then(|h| str_field(h, "purl")),
                    },
                );
            }
        }
        if let Some(sub) = b.get("branches") {
            collect_branches(sub, out);
        }
    }
}

fn tree(doc: &Value) -> Tree {
    let mut products = HashMap::new();
    let pt = doc.get("product_tree");
    if let Some(b) = pt.and_then(|p| p.get("branches")) {
        collect_branches(b, &mut products);
    }
    for fp in pt.and_then(|p| p.get("full_product_names")).and_then(Value::as_array).into_iter().flatten() {
        if let Some(id) = str_field(fp, "product_id") {
            products.entry(id).or_insert_with(|| ProductInfo { name: str_field(fp, "name").unwrap_or_default(), ..Default::default() });
        }
    }
    let mut relationships = HashMap::new();
    for r in pt.and_then(|p| p.get("relationships")).and_then(Value::as_array).into_iter().flatten() {
        let full = r.get("full_product_name").and_then(|f| str_field(f, "product_id"));
        if let (Some(full), Some(comp), Some(platform)) = (full, str_field(r, "product_reference"), str_field(r, "relates_to_product_reference")) {
            relationships.insert(full, (comp, platform));
        }
    }
    Tree { products, relationships }
}

/// `cpe:/a:redhat:enterprise_linux:9::appstream` -> `Red Hat:enterprise_linux:9::appstream`.
pub fn ecosystem_from_cpe(cpe: &str) -> Option<String> {
    let rest = cpe.strip_prefix("cpe:/")?;
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 3 || parts[1] != "redhat" {
        return None;
    }
    Some(format!("Red Hat:{}", parts[2..].join(":").trim_end_matches(':')))
}

/// Percent-decoding for purl components.
fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (name, `[epoch:]version-release`, arch) from `pkg:rpm/redhat/NAME@VER-REL?arch=A&epoch=E`.
fn from_purl(purl: &str) -> Option<(String, Option<String>, Option<String>)> {
    let rest = purl.strip_prefix("pkg:rpm/")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.split('#').next().unwrap_or(path);
    let (path, version) = match path.rsplit_once('@') {
        Some((p, v)) => (p, Some(pct_decode(v))),
        None => (path, None),
    };
    let name = pct_decode(path.rsplit('/').next()?);
    let mut arch = None;
    let mut epoch = None;
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("arch", a)) => arch = Some(a.to_string()),
            Some(("epoch", e)) => epoch = Some(e.to_string()),
            _ => {}
        }
    }
    let version = version.map(|v| match epoch.as_deref() {
        Some(e) if e != "0" || !v.contains(':') => format!("{e}:{v}"),
        _ => v,
    });
    Some((name, version, arch))
}

/// `name-[epoch:]version-release.arch` -> (name, evr), for components without a purl.
fn split_nevra(s: &str) -> Option<(String, String)> {
    let (nevr, arch) = s.rsplit_once('.')?;
    if !["src", "noarch", "x86_64", "aarch64", "ppc64le", "s390x", "i686", "i386", "ppc64", "s390"].contains(&arch) {
        return None;
    }
    let (nv, release) = nevr.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

struct Component {
    ecosystem: String,
    name: String,
    version: Option<String>,
    module: Option<String>,
}

fn resolve(tree: &Tree, product_id: &str) -> Option<Component> {
    let (comp_id, platform_id) = tree.relationships.get(product_id)?;
    let platform = tree.products.get(platform_id);
    let ecosystem = platform
        .and_then(|p| p.cpe.as_deref())
        .and_then(ecosystem_from_cpe)
        .unwrap_or_else(|| format!("Red Hat:{}", platform.map(|p| p.name.as_str()).filter(|n| !n.is_empty()).unwrap_or(platform_id)));
    // A module component: `nodejs:18/nodejs` is the nodejs package of the nodejs:18 stream.
    let (module, comp_name) = match comp_id.split_once('/') {
        Some((m, n)) if m.contains(':') && !comp_id.starts_with("pkg:") => (Some(m.to_string()), n.to_string()),
        _ => (None, comp_id.clone()),
    };
    let info = tree.products.get(comp_id);
    if let Some((name, version, _arch)) = info.and_then(|i| i.purl.as_deref()).and_then(from_purl) {
        return Some(Component { ecosystem, name, version, module });
    }
    if let Some((name, evr)) = split_nevra(&comp_name) {
        return Some(Component { ecosystem, name, version: Some(evr), module });
    }
    Some(Component { ecosystem, name: comp_name, version: None, module })
}

pub fn import(w: &mut Writer<'_>, name: &str, doc: Value, report: &mut ImportReport) -> Result<()> {
    let category = doc.get("document").and_then(|d| str_field(d, "category")).unwrap_or_default();
    let Some(vulns) = doc.get("vulnerabilities").and_then(Value::as_array) else {
        report.skip(name, "CSAF document without vulnerabilities");
        return Ok(());
    };
    let tree = tree(&doc);
    let document = doc.get("document").cloned().unwrap_or(Value::Null);
    let modified = document.get("tracking").and_then(|t| str_field(t, "current_release_date"));
    let aggregate = document.get("aggregate_severity").and_then(|a| str_field(a, "text"));
    let self_url = document
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|r| r.get("category").and_then(Value::as_str) == Some("self"))
        .and_then(|r| str_field(r, "url"));
    let mut records = Vec::new();
    for (i, v) in vulns.iter().enumerate() {
        match convert_vuln(&tree, v) {
            Ok(mut rec) => {
                rec.modified = modified.clone().or(rec.modified);
                rec.vendor_severity = rec.vendor_severity.or_else(|| aggregate.clone());
                rec.source_url = self_url.clone().or(rec.source_url);
                records.push(rec);
            }
            Err(reason) => report.skip(&format!("{name}: vulnerabilities[{i}]"), reason),
        }
    }
    if category == "csaf_vex" {
        for r in &records {
            put(w, name, "redhat-csaf", r, report)?;
        }
        return Ok(());
    }
    // A security advisory (RHSA): one record for the advisory, aliased to its CVEs.
    let Some(id) = document.get("tracking").and_then(|t| str_field(t, "id")) else {
        report.skip(name, "CSAF advisory without document.tracking.id");
        return Ok(());
    };
    let mut adv = Vulnerability {
        id: id.clone(),
        source: SOURCE.into(),
        summary: str_field(&document, "title"),
        published: document.get("tracking").and_then(|t| str_field(t, "initial_release_date")),
        modified,
        vendor_severity: aggregate,
        source_url: self_url,
        ..Default::default()
    };
    for r in records {
        adv.aliases.push(r.id);
        adv.cwes.extend(r.cwes);
        adv.severities.extend(r.severities);
        for a in r.affected {
            if !adv.affected.iter().any(|x| x.ecosystem == a.ecosystem && x.name == a.name && x.ranges == a.ranges) {
                adv.affected.push(a);
            }
        }
    }
    put(w, name, "redhat-csaf", &adv, report)
}

fn convert_vuln(tree: &Tree, v: &Value) -> Result<Vulnerability, String> {
    let id = str_field(v, "cve").or_else(|| {
        v.get("ids").and_then(Value::as_array).and_then(|ids| ids.first()).and_then(|i| str_field(i, "text"))
    });
    let id = id.ok_or("vulnerability without cve")?;
    let notes = v.get("notes").and_then(Value::as_array);
    let note = |cat: &str| notes.into_iter().flatten().find(|n| n.get("category").and_then(Value::as_str) == Some(cat)).and_then(|n| str_field(n, "text"));
    let mut severities = Vec::new();
    for s in v.get("scores").and_then(Value::as_array).into_iter().flatten() {
        for key in ["cvss_v4", "cvss_v3", "cvss_v2"] {
            if let Some(c) = s.get(key) {
                if let Some(vector) = str_field(c, "vectorString") {
                    let sev = crate::cvss::severity("secalert@redhat.com", &vector, c.get("baseScore").and_then(Value::as_f64));
                    if !severities.iter().any(|x: &Severity| x.vector == sev.vector) {
                        severities.push(sev);
                    }
                }
            }
        }
    }
    let impact = v
        .get("threats")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|t| t.get("category").and_then(Value::as_str) == Some("impact"))
        .and_then(|t| str_field(t, "details"));
    // Remediation per product id.
    let mut remediation: HashMap<&str, (String, String, Option<String>)> = HashMap::new();
    for r in v.get("remediations").and_then(Value::as_array).into_iter().flatten() {
        let cat = str_field(r, "category").unwrap_or_default();
        let details = str_field(r, "details").unwrap_or_default();
        let url = str_field(r, "url");
        for p in r.get("product_ids").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            remediation.insert(p, (cat.clone(), details.clone(), url.clone()));
        }
    }
    let status = v.get("product_status");
    let list = |key: &str| -> Vec<&str> {
        status.and_then(|s| s.get(key)).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    };
    // (ecosystem, name, module, fixed version) -> entry, so the per-architecture rows collapse.
    let mut affected: BTreeMap<(String, String, Option<String>, Option<String>), Affected> = BTreeMap::new();
    let mut add = |pid: &str, st: Status| {
        let Some(c) = resolve(tree, pid) else { return };
        let (ranges, version_key) = match st {
            Status::Fixed => match &c.version {
                Some(ver) => (vec![Range::before(RangeKind::Ecosystem, Some(ver))], Some(ver.clone())),
                None => (vec![], None),
            },
            Status::NotAffected => (vec![], None),
            _ => (vec![Range::before(RangeKind::Ecosystem, None)], None),
        };
        let st = if st == Status::Fixed && version_key.is_none() { Status::Affected } else { st };
        let key = (c.ecosystem.clone(), c.name.clone(), c.module.clone(), version_key);
        let advisory = remediation.get(pid).and_then(|(_, _, url)| url.as_deref()).and_then(|u| u.rsplit('/').next()).map(String::from);
        let entry = affected.entry(key).or_insert_with(|| Affected {
            ecosystem: c.ecosystem.clone(),
            name: c.name.clone(),
            status: st,
            ranges,
            ..Default::default()
        });
        let mut specific = serde_json::Map::new();
        if let Some(m) = &c.module {
            specific.insert("module".into(), json!(m));
        }
        if let Some(a) = advisory.filter(|a| a.starts_with("RH")) {
            specific.insert("advisory".into(), json!(a));
        }
        if let Some((cat, details, _)) = remediation.get(pid) {
            if st != Status::Fixed {
                specific.insert("remediation".into(), json!({ "category": cat, "details": details }));
            }
        }
        if !specific.is_empty() {
            entry.ecosystem_specific = Some(Value::Object(specific));
        }
    };
    for pid in list("fixed").into_iter().chain(list("first_fixed")) {
        add(pid, Status::Fixed);
    }
    for pid in list("known_affected").into_iter().chain(list("first_affected")).chain(list("last_affected")).chain(list("under_investigation")) {
        let st = match remediation.get(pid) {
            Some((cat, _, _)) if cat == "no_fix_planned" => Status::WillNotFix,
            Some((cat, details, _)) if cat == "none_available" && !details.eq_ignore_ascii_case("affected") => Status::WillNotFix,
            _ => Status::Affected,
        };
        add(pid, st);
    }
    for pid in list("known_not_affected") {
        add(pid, Status::NotAffected);
    }
    let mut aliases = Vec::new();
    for (_, (_, _, url)) in remediation.iter() {
        if let Some(a) = url.as_deref().and_then(|u| u.rsplit('/').next()).filter(|a| a.starts_with("RHSA-") || a.starts_with("RHBA-") || a.starts_with("RHEA-")) {
            if !aliases.iter().any(|x: &String| x == a) {
                aliases.push(a.to_string());
            }
        }
    }
    aliases.sort();
    Ok(Vulnerability {
        source_url: Some(format!("https://access.redhat.com/security/cve/{id}")),
        id,
        source: SOURCE.into(),
        aliases,
        summary: v.get("title").and_then(Value::as_str).map(String::from).or_else(|| note("summary")),
        details: note("description"),
        published: str_field(v, "release_date").or_else(|| str_field(v, "discovery_date")),
        cwes: v.get("cwe").and_then(|c| str_field(c, "id")).into_iter().collect(),
        references: v
            .get("references")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| str_field(r, "url").map(|url| Reference { kind: str_field(r, "category").map(|c| c.to_uppercase()), url }))
            .collect(),
        severities,
        vendor_severity: impact,
        affected: affected.into_values().collect(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_purls_and_cpes() {
        assert_eq!(ecosystem_from_cpe("cpe:/a:redhat:enterprise_linux:9::appstream").unwrap(), "Red Hat:enterprise_linux:9::appstream");
        assert_eq!(ecosystem_from_cpe("cpe:/o:redhat:enterprise_linux:8::baseos").unwrap(), "Red Hat:enterprise_linux:8::baseos");
        let (n, v, a) = from_purl("pkg:rpm/redhat/nodejs@16.20.2-1.el9_2?arch=x86_64&epoch=1").unwrap();
        assert_eq!((n.as_str(), v.as_deref(), a.as_deref()), ("nodejs", Some("1:16.20.2-1.el9_2"), Some("x86_64")));
        let (n, v, _) = from_purl("pkg:rpm/redhat/openssl@3.0.7-24.el9?arch=src").unwrap();
        assert_eq!((n.as_str(), v.as_deref()), ("openssl", Some("3.0.7-24.el9")));
        assert_eq!(split_nevra("mod_ssl-1:2.4.53-7.el9.ppc64le").unwrap(), ("mod_ssl".into(), "1:2.4.53-7.el9".into()));
        assert_eq!(pct_decode("a%2Bb%zz%é"), "a+b%zz%é");
    }
}
