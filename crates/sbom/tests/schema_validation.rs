//! CycloneDX 1.6 and SPDX 2.3 output checked by a real validator (`check-jsonschema`) against
//! the official schemas, as shipped by the PyPI package `lib4sbom` (installed into the test venv by
//! scripts/install-test-deps.sh): for a real Debian tree, and for an inventory that uses every
//! field (licenses, vendors, duplicate purls, an OS with a CPE).

use std::path::{Path, PathBuf};
use std::process::Command;

use kensa_inventory::{Inventory, Location, OsInfo, Owner, Package, PackageType, Warning};
use kensa_sbom::{write, DocumentInfo, Format};

/// The schema directory inside the venv's lib4sbom, or `None` (skip) outside CI.
fn schema_dir() -> Option<PathBuf> {
    let python = kensa_testdata::venv_tool("python")?;
    let out = Command::new(python).args(["-c", "import lib4sbom, os; print(os.path.join(os.path.dirname(lib4sbom.__file__), 'schemas'))"]).output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && dir.join("cyclonedx/bom-1.6.schema.json").is_file() {
        return Some(dir);
    }
    if kensa_testdata::in_ci() {
        panic!("lib4sbom's schemas are missing from the test venv (scripts/install-test-deps.sh installs them)");
    }
    eprintln!("SKIP: lib4sbom's schemas are missing from the test venv (run scripts/install-test-deps.sh)");
    None
}

/// Runs check-jsonschema. `--base-uri` makes the CycloneDX schema's relative `$ref`s
/// (spdx.schema.json, jsf-0.82.schema.json) resolve to the files beside it, not to the web.
fn check(schema: &Path, doc: &Path) -> std::process::Output {
    let checker = kensa_testdata::venv_tool("check-jsonschema").unwrap();
    Command::new(checker).arg("--base-uri").arg(format!("file://{}", schema.display())).arg("--schemafile").arg(schema).arg(doc).output().expect("run check-jsonschema")
}

fn validate(schema: &Path, doc: &Path) {
    let out = check(schema, doc);
    assert!(
        out.status.success(),
        "{} does not validate against {}:\n{}{}",
        doc.display(),
        schema.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn doc_info() -> DocumentInfo {
    DocumentInfo { tool_name: "kensa".into(), tool_version: "0.1.0".into(), created: 1_704_164_645, uuid: "3e671687-395b-41f5-a30f-a58921a69b79".into() }
}

/// An inventory using every field, including awkward values.
fn rich_inventory() -> Inventory {
    let mut p = Package::new(PackageType::Rpm, "openssl-libs", "1:3.0.7-25.el9_3", "pkg:rpm/rocky/openssl-libs@3.0.7-25.el9_3?arch=x86_64&distro=rocky-9.3&epoch=1");
    p.epoch = Some(1);
    p.release = Some("25.el9_3".into());
    p.arch = Some("x86_64".into());
    p.source_name = Some("openssl".into());
    p.source_rpm = Some("openssl-3.0.7-25.el9_3.src.rpm".into());
    p.vendor = Some("Rocky Enterprise Software Foundation".into());
    p.license = Some("ASL 2.0 and (MIT or GPLv2+) — «odd» text".into());
    p.size = Some(6_000_000);
    p.install_time = Some(1_700_000_000);
    p.modularity_label = Some("nodejs:18:9030020231120110611:rhel9".into());
    p.locations = vec![Location { path: "/var/lib/rpm/rpmdb.sqlite".into() }];
    p.files = vec!["/usr/lib64/libssl.so.3".into()];
    let mut q = Package::new(PackageType::Pypi, "requests", "2.31.0", "pkg:pypi/requests@2.31.0");
    q.license = Some("Apache-2.0".into());
    q.owned_by = Some(Owner { package_type: PackageType::Rpm, name: "python3-requests".into(), version: "2.31.0-1".into() });
    q.metadata.insert("installer".into(), "pip".into());
    q.locations = vec![Location { path: "/usr/lib/python3.9/site-packages/requests-2.31.0.dist-info/METADATA".into() }];
    let mut dup = q.clone();
    dup.locations = vec![Location { path: "/opt/venv/lib/python3.9/site-packages/requests-2.31.0.dist-info/METADATA".into() }];
    Inventory {
        target: "/srv/images/rocky 9 (test)".into(),
        os: Some(OsInfo {
            id: "rocky".into(),
            id_like: vec!["rhel".into(), "centos".into(), "fedora".into()],
            version_id: "9.3".into(),
            codename: None,
            pretty_name: Some("Rocky Linux 9.3 (Blue Onyx)".into()),
            cpe_name: Some("cpe:/o:rocky:rocky:9::baseos".into()),
            source_file: "/etc/os-release".into(),
        }),
        packages: vec![p, q, dup],
        warnings: vec![Warning { cataloger: "python".into(), path: "/x".into(), message: "m".into(), partial: false }],
    }
}

fn check_all(inv: &Inventory, schemas: &Path, dir: &Path, tag: &str) {
    for (format, schema) in [(Format::CycloneDxJson, schemas.join("cyclonedx/bom-1.6.schema.json")), (Format::SpdxJson, schemas.join("spdx/2.3-schema.json"))] {
        let mut buf = Vec::new();
        write(format, inv, &doc_info(), &mut buf).unwrap();
        // Every package's purl is in the document.
        let text = String::from_utf8(buf.clone()).unwrap();
        for p in &inv.packages {
            assert!(text.contains(&serde_json::to_string(&p.purl).unwrap()), "{format}: purl {} missing", p.purl);
        }
        let path = dir.join(format!("{tag}.{format}.json"));
        std::fs::write(&path, &buf).unwrap();
        validate(&schema, &path);
        // Deterministic: the same input gives the same bytes.
        let mut again = Vec::new();
        write(format, inv, &doc_info(), &mut again).unwrap();
        assert_eq!(buf, again, "{format} output is not deterministic");
    }
}

#[test]
fn rich_inventory_validates() {
    let Some(schemas) = schema_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let inv = rich_inventory();
    check_all(&inv, &schemas, dir.path(), "rich");
    let cdx: serde_json::Value = {
        let mut buf = Vec::new();
        write(Format::CycloneDxJson, &inv, &doc_info(), &mut buf).unwrap();
        serde_json::from_slice(&buf).unwrap()
    };
    let comps = cdx["components"].as_array().unwrap();
    assert_eq!(comps[0]["type"], "operating-system");
    assert_eq!(comps[0]["cpe"], "cpe:/o:rocky:rocky:9::baseos");
    let refs: std::collections::BTreeSet<&str> = comps.iter().map(|c| c["bom-ref"].as_str().unwrap()).collect();
    assert_eq!(refs.len(), comps.len(), "bom-refs must be unique");
    let props = comps[1]["properties"].as_array().unwrap();
    assert!(props.iter().any(|p| p["name"] == "kensa:location:0:path" && p["value"] == "/var/lib/rpm/rpmdb.sqlite"));
    assert_eq!(cdx["serialNumber"], "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79");

    // The validator bites, also through the schema's references to its sibling files.
    let mut bad = cdx.clone();
    bad["components"][1]["licenses"] = serde_json::json!([{ "license": { "id": "NOT-AN-SPDX-ID" } }]);
    let bad_path = dir.path().join("bad.cdx.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = check(&schemas.join("cyclonedx/bom-1.6.schema.json"), &bad_path);
    assert!(!out.status.success(), "an invalid license id must not validate");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Unresolvable"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(cdx["metadata"]["timestamp"], "2024-01-02T03:04:05Z");
}

#[test]
fn debian_tree_validates() {
    let Some(schemas) = schema_dir() else { return };
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    let root = kensa_fs::Root::dir(&rootfs).unwrap();
    let inv = kensa_inventory::scan(&root, &kensa_inventory::ScanOptions::default());
    assert!(inv.packages.len() > 100);
    let dir = tempfile::tempdir().unwrap();
    check_all(&inv, &schemas, dir.path(), "debian");
    // The native JSON round-trips to the same inventory (nothing is lost).
    let mut buf = Vec::new();
    write(Format::Json, &inv, &doc_info(), &mut buf).unwrap();
    let back: Inventory = serde_json::from_slice(&buf).unwrap();
    assert_eq!(back, inv);
}
