//! Red Hat CSAF VEX: a document in Red Hat's published structure (vendor / product_family /
//! product_name / product_version branches, `default_component_of` relationships, purl and CPE
//! helpers, remediations), built here, imported and looked up.

use kensa_vulndb::{import::import_path, Status, VulnDb};
use serde_json::json;

fn rpm(id: &str, purl: &str) -> serde_json::Value {
    json!({"category": "product_version", "name": id, "product": {"name": id, "product_id": id, "product_identification_helper": {"purl": purl}}})
}

fn rel(component: &str, platform: &str) -> serde_json::Value {
    json!({"category": "default_component_of",
           "full_product_name": {"name": format!("{component} as a component of {platform}"), "product_id": format!("{platform}:{component}")},
           "product_reference": component, "relates_to_product_reference": platform})
}

#[test]
fn csaf_vex_statuses_and_products() {
    let doc = json!({
        "document": {
            "category": "csaf_vex", "csaf_version": "2.0", "title": "nodejs: example",
            "aggregate_severity": {"namespace": "https://access.redhat.com/security/updates/classification/", "text": "Important"},
            "references": [{"category": "self", "summary": "Canonical URL", "url": "https://security.access.redhat.com/data/csaf/v2/vex/2023/cve-2023-30581.json"}],
            "tracking": {"id": "CVE-2023-30581", "initial_release_date": "2023-06-20T00:00:00+00:00", "current_release_date": "2024-11-06T01:40:22+00:00", "status": "final", "version": "4"}
        },
        "product_tree": {"branches": [{"category": "vendor", "name": "Red Hat", "branches": [
            {"category": "product_family", "name": "Red Hat Enterprise Linux", "branches": [
                {"category": "product_name", "name": "Red Hat Enterprise Linux AppStream (v. 9)",
                 "product": {"name": "Red Hat Enterprise Linux AppStream (v. 9)", "product_id": "AppStream-9.2.0.Z.MAIN",
                             "product_identification_helper": {"cpe": "cpe:/a:redhat:enterprise_linux:9::appstream"}}},
                {"category": "product_name", "name": "Red Hat Enterprise Linux 8",
                 "product": {"name": "Red Hat Enterprise Linux 8", "product_id": "red_hat_enterprise_linux_8",
                             "product_identification_helper": {"cpe": "cpe:/o:redhat:enterprise_linux:8"}}},
                {"category": "product_name", "name": "Red Hat Enterprise Linux 7",
                 "product": {"name": "Red Hat Enterprise Linux 7", "product_id": "red_hat_enterprise_linux_7",
                             "product_identification_helper": {"cpe": "cpe:/o:redhat:enterprise_linux:7"}}}
            ]},
            {"category": "architecture", "name": "src", "branches": [
                rpm("nodejs-1:16.20.2-1.el9_2.src", "pkg:rpm/redhat/nodejs@16.20.2-1.el9_2?arch=src&epoch=1")]},
            {"category": "architecture", "name": "x86_64", "branches": [
                rpm("nodejs-1:16.20.2-1.el9_2.x86_64", "pkg:rpm/redhat/nodejs@16.20.2-1.el9_2?arch=x86_64&epoch=1"),
                rpm("nodejs-libs-1:16.20.2-1.el9_2.x86_64", "pkg:rpm/redhat/nodejs-libs@16.20.2-1.el9_2?arch=x86_64&epoch=1")]},
            {"category": "product_version", "name": "nodejs:18/nodejs",
             "product": {"name": "nodejs:18/nodejs", "product_id": "nodejs:18/nodejs",
                         "product_identification_helper": {"purl": "pkg:rpmmod/redhat/nodejs:18/nodejs"}}},
            {"category": "product_version", "name": "nodejs010-nodejs",
             "product": {"name": "nodejs010-nodejs", "product_id": "nodejs010-nodejs"}},
            {"category": "product_version", "name": "c-ares",
             "product": {"name": "c-ares", "product_id": "c-ares"}}
        ]}],
        "relationships": [
            rel("nodejs-1:16.20.2-1.el9_2.src", "AppStream-9.2.0.Z.MAIN"),
            rel("nodejs-1:16.20.2-1.el9_2.x86_64", "AppStream-9.2.0.Z.MAIN"),
            rel("nodejs-libs-1:16.20.2-1.el9_2.x86_64", "AppStream-9.2.0.Z.MAIN"),
            rel("nodejs:18/nodejs", "red_hat_enterprise_linux_8"),
            rel("nodejs010-nodejs", "red_hat_enterprise_linux_7"),
            rel("c-ares", "red_hat_enterprise_linux_8")
        ]},
        "vulnerabilities": [{
            "cve": "CVE-2023-30581",
            "cwe": {"id": "CWE-284", "name": "Improper Access Control"},
            "notes": [{"category": "description", "text": "The use of __proto__ in process.mainModule ...", "title": "Vulnerability description"},
                      {"category": "summary", "text": "nodejs: mainModule.proto bypass", "title": "Vulnerability summary"}],
            "release_date": "2023-06-20T00:00:00+00:00",
            "product_status": {
                "fixed": ["AppStream-9.2.0.Z.MAIN:nodejs-1:16.20.2-1.el9_2.src", "AppStream-9.2.0.Z.MAIN:nodejs-1:16.20.2-1.el9_2.x86_64", "AppStream-9.2.0.Z.MAIN:nodejs-libs-1:16.20.2-1.el9_2.x86_64"],
                "known_affected": ["red_hat_enterprise_linux_8:nodejs:18/nodejs", "red_hat_enterprise_linux_7:nodejs010-nodejs"],
                "known_not_affected": ["red_hat_enterprise_linux_8:c-ares"]
            },
            "references": [{"category": "self", "summary": "Canonical URL", "url": "https://access.redhat.com/security/cve/CVE-2023-30581"}],
            "remediations": [
                {"category": "vendor_fix", "details": "For details on how to apply this update ...", "product_ids": ["AppStream-9.2.0.Z.MAIN:nodejs-1:16.20.2-1.el9_2.src", "AppStream-9.2.0.Z.MAIN:nodejs-1:16.20.2-1.el9_2.x86_64", "AppStream-9.2.0.Z.MAIN:nodejs-libs-1:16.20.2-1.el9_2.x86_64"], "url": "https://access.redhat.com/errata/RHSA-2023:5362"},
                {"category": "none_available", "details": "Affected", "product_ids": ["red_hat_enterprise_linux_8:nodejs:18/nodejs"]},
                {"category": "no_fix_planned", "details": "Out of support scope", "product_ids": ["red_hat_enterprise_linux_7:nodejs010-nodejs"]}
            ],
            "scores": [{"cvss_v3": {"attackComplexity": "LOW", "attackVector": "NETWORK", "baseScore": 7.5, "baseSeverity": "HIGH", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N", "version": "3.1"},
                        "products": ["AppStream-9.2.0.Z.MAIN:nodejs-1:16.20.2-1.el9_2.x86_64"]}],
            "threats": [{"category": "impact", "details": "Important"}],
            "title": "nodejs: mainModule.__proto__ bypass experimental policy mechanism"
        }]
    });
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cve-2023-30581.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut db = VulnDb::create(&tmp.path().join("vuln.db")).unwrap();
    let r = import_path(&mut db, &file).unwrap();
    assert_eq!(r.imported["redhat-csaf"], 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    let fixed = db.affected("Red Hat:enterprise_linux:9::appstream", "nodejs").unwrap();
    assert_eq!(fixed.len(), 1, "src and x86_64 rows collapse: {fixed:?}");
    assert_eq!(fixed[0].status, Status::Fixed);
    assert_eq!(fixed[0].fixed_versions(), ["1:16.20.2-1.el9_2"]);
    assert_eq!(fixed[0].ecosystem_specific.as_ref().unwrap()["advisory"], "RHSA-2023:5362");
    assert_eq!(db.affected("Red Hat:enterprise_linux:9::appstream", "nodejs-libs").unwrap()[0].fixed_versions(), ["1:16.20.2-1.el9_2"]);

    let module = db.affected("Red Hat:enterprise_linux:8", "nodejs").unwrap();
    assert_eq!(module[0].status, Status::Affected);
    assert_eq!(module[0].ecosystem_specific.as_ref().unwrap()["module"], "nodejs:18");
    assert_eq!(db.affected("Red Hat:enterprise_linux:7", "nodejs010-nodejs").unwrap()[0].status, Status::WillNotFix);
    assert_eq!(db.affected("Red Hat:enterprise_linux:8", "c-ares").unwrap()[0].status, Status::NotAffected);

    let v = db.vulnerability("CVE-2023-30581").unwrap().unwrap();
    assert_eq!(v.cwes, ["CWE-284"]);
    assert_eq!(v.vendor_severity.as_deref(), Some("Important"));
    assert_eq!(v.severities[0].base_score, Some(7.5));
    assert_eq!(v.aliases, ["RHSA-2023:5362"]);
    assert_eq!(v.modified.as_deref(), Some("2024-11-06T01:40:22+00:00"));
    // The errata id finds the CVE record through its alias.
    assert!(db.vulnerability("RHSA-2023:5362").unwrap().is_some());
}
