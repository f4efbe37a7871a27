//! CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/).

use std::collections::HashMap;
use std::io::{self, Write};

use kensa_inventory::{Inventory, OsInfo, Package};
use serde_json::{json, Map, Value};

use crate::{package_properties, DocumentInfo};

/// Writes `inv` as a CycloneDX 1.6 JSON BOM: the OS as an `operating-system` component, every
/// package as a `library` component with its purl, properties for everything else.
pub fn write_cyclonedx(inv: &Inventory, doc: &DocumentInfo, mut out: impl Write) -> io::Result<()> {
    let refs = bom_refs(&inv.packages);
    let mut components: Vec<Value> = Vec::with_capacity(inv.packages.len() + 1);
    let os_ref = inv.os.as_ref().map(|os| {
        let r = format!("os:{}@{}", os.id, os.version_id);
        components.push(os_component(os, &r));
        r
    });
    for (p, r) in inv.packages.iter().zip(&refs) {
        components.push(package_component(p, r));
    }
    let root_ref = "kensa:target".to_string();
    let mut depends_on: Vec<Value> = os_ref.iter().map(|r| json!(r)).collect();
    depends_on.extend(refs.iter().map(|r| json!(r)));
    let bom = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", doc.uuid),
        "version": 1,
        "metadata": {
            "timestamp": doc.created_rfc3339(),
            "tools": {
                "components": [{ "type": "application", "author": "kensa", "name": doc.tool_name, "version": doc.tool_version }]
            },
            "component": { "bom-ref": root_ref, "type": "file", "name": inv.target }
        },
        "components": components,
        "dependencies": [{ "ref": root_ref, "dependsOn": depends_on }],
    });
    serde_json::to_writer_pretty(&mut out, &bom)?;
    out.write_all(b"\n")
}

/// One bom-ref per package: its purl, made unique with a counter when two packages share one
/// (the same package found in two places).
fn bom_refs(packages: &[Package]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    packages
        .iter()
        .map(|p| {
            let n = seen.entry(p.purl.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                p.purl.clone()
            } else {
                format!("{}|{}", p.purl, n)
            }
        })
        .collect()
}

fn properties(pairs: Vec<(String, String)>) -> Value {
    Value::Array(pairs.into_iter().map(|(name, value)| json!({ "name": name, "value": value })).collect())
}

fn os_component(os: &OsInfo, bom_ref: &str) -> Value {
    let mut c = Map::new();
    c.insert("bom-ref".into(), json!(bom_ref));
    c.insert("type".into(), json!("operating-system"));
    c.insert("name".into(), json!(os.id));
    c.insert("version".into(), json!(os.version_id));
    if let Some(p) = &os.pretty_name {
        c.insert("description".into(), json!(p));
    }
    if let Some(cpe) = &os.cpe_name {
        c.insert("cpe".into(), json!(cpe));
    }
    let mut props = Vec::new();
    if let Some(code) = &os.codename {
        props.push(("kensa:os:codename".to_string(), code.clone()));
    }
    if !os.id_like.is_empty() {
        props.push(("kensa:os:idLike".to_string(), os.id_like.join(" ")));
    }
    props.push(("kensa:os:sourceFile".to_string(), os.source_file.clone()));
    c.insert("properties".into(), properties(props));
    Value::Object(c)
}

fn package_component(p: &Package, bom_ref: &str) -> Value {
    let mut c = Map::new();
    c.insert("bom-ref".into(), json!(bom_ref));
    c.insert("type".into(), json!("library"));
    if let Some(v) = &p.vendor {
        c.insert("publisher".into(), json!(v));
    }
    c.insert("name".into(), json!(p.name));
    c.insert("version".into(), json!(p.version));
    if let Some(l) = &p.license {
        // `name`, not `id` or `expression`: package databases hold free text ("GPLv2+",
        // "MIT and BSD"), and only a name accepts any text.
        c.insert("licenses".into(), json!([{ "license": { "name": l } }]));
    }
    c.insert("purl".into(), json!(p.purl));
    c.insert("properties".into(), properties(package_properties(p)));
    Value::Object(c)
}
