//! SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/).

use std::collections::BTreeMap;
use std::io::{self, Write};

use kensa_inventory::{Inventory, Package};
use serde_json::{json, Map, Value};

use crate::{package_properties, DocumentInfo};

/// Writes `inv` as an SPDX 2.3 JSON document: a package for the target that DESCRIBES the whole,
/// CONTAINS the OS (purpose `OPERATING_SYSTEM`) and every package (purl as a `PACKAGE-MANAGER`
/// external reference). Licenses from package databases are free text, so they are written as
/// `LicenseRef-` identifiers with the original text in `hasExtractedLicensingInfos` (lossless and
/// valid; a verbatim "GPLv2+" would not be a valid SPDX expression).
pub fn write_spdx(inv: &Inventory, doc: &DocumentInfo, mut out: impl Write) -> io::Result<()> {
    let root_id = "SPDXRef-DocumentRoot".to_string();
    let mut packages = vec![json!({
        "SPDXID": root_id,
        "name": inv.target,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "FILE",
    })];
    let mut relationships = vec![json!({ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id })];
    if let Some(os) = &inv.os {
        let id = "SPDXRef-OperatingSystem";
        let mut p = json!({
            "SPDXID": id,
            "name": os.id,
            "versionInfo": os.version_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "OPERATING_SYSTEM",
            "sourceInfo": format!("from {}", os.source_file),
        });
        if let Some(pretty) = &os.pretty_name {
            p["description"] = json!(pretty);
        }
        if let Some(cpe) = &os.cpe_name {
            let t = if cpe.starts_with("cpe:2.3:") { "cpe23Type" } else { "cpe22Type" };
            p["externalRefs"] = json!([{ "referenceCategory": "SECURITY", "referenceType": t, "referenceLocator": cpe }]);
        }
        packages.push(p);
        relationships.push(json!({ "spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id }));
    }
    let mut license_refs: BTreeMap<String, String> = BTreeMap::new();
    for (i, p) in inv.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{}-{}", p.package_type.as_str(), spdx_id_part(&p.name), i + 1);
        packages.push(package(p, &id, &mut license_refs));
        relationships.push(json!({ "spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id }));
    }
    let mut d = Map::new();
    d.insert("spdxVersion".into(), json!("SPDX-2.3"));
    d.insert("dataLicense".into(), json!("CC0-1.0"));
    d.insert("SPDXID".into(), json!("SPDXRef-DOCUMENT"));
    d.insert("name".into(), json!(inv.target));
    d.insert("documentNamespace".into(), json!(format!("https://kensa-scanner.github.io/spdx/{}-{}", spdx_id_part(&inv.target), doc.uuid)));
    d.insert("creationInfo".into(), json!({ "created": doc.created_rfc3339(), "creators": [format!("Tool: {}-{}", doc.tool_name, doc.tool_version)] }));
    d.insert("packages".into(), Value::Array(packages));
    if !license_refs.is_empty() {
        let infos: Vec<Value> = license_refs.into_iter().map(|(id, text)| json!({ "licenseId": id, "extractedText": text, "name": text })).collect();
        d.insert("hasExtractedLicensingInfos".into(), Value::Array(infos));
    }
    d.insert("relationships".into(), Value::Array(relationships));
    serde_json::to_writer_pretty(&mut out, &Value::Object(d))?;
    out.write_all(b"\n")
}

/// SPDX ids allow `[A-Za-z0-9.-]`; everything else becomes `-`.
fn spdx_id_part(s: &str) -> String {
    let out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    if out.is_empty() {
        "unnamed".into()
    } else {
        out
    }
}

fn package(p: &Package, id: &str, license_refs: &mut BTreeMap<String, String>) -> Value {
    let declared = match &p.license {
        Some(text) if !text.trim().is_empty() => {
            let id = format!("LicenseRef-{}", spdx_id_part(text.trim()));
            license_refs.insert(id.clone(), text.trim().to_string());
            id
        }
        _ => "NOASSERTION".to_string(),
    };
    let mut v = json!({
        "SPDXID": id,
        "name": p.name,
        "versionInfo": p.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": declared,
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("acquired package info from {}", p.locations.iter().map(|l| l.path.as_str()).collect::<Vec<_>>().join(", ")),
        "externalRefs": [{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl }],
        "primaryPackagePurpose": if p.package_type.is_os() { "INSTALL" } else { "LIBRARY" },
    });
    if let Some(vendor) = &p.vendor {
        v["supplier"] = json!(format!("Organization: {vendor}"));
    }
    let props = package_properties(p);
    if !props.is_empty() {
        // SPDX 2.3 has no generic properties; annotations would need a date per entry, so the
        // extra fields go in the package comment, one `name: value` per line.
        v["comment"] = json!(props.iter().map(|(k, val)| format!("{k}: {val}")).collect::<Vec<_>>().join("\n"));
    }
    v
}
