//! `kensa sbom --deep-inspection MODE --path DIR`: the path policy end to end, validation errors
//! (exit 2), and language packages with their locations in all three output formats.

use std::path::Path;
use std::process::{Command, Output};

fn kensa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kensa")).args(args).output().expect("run kensa")
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n");
    write(d, "usr/local/lib/node_modules/semver/package.json", r#"{"name":"semver","version":"7.5.1"}"#);
    write(d, "opt/app/node_modules/@scope/lib/package.json", r#"{"name":"@scope/lib","version":"1.0.0"}"#);
    write(d, "srv/py/site-packages/requests-2.25.1.dist-info/METADATA", "Name: requests\nVersion: 2.25.1\n");
    dir
}

fn json_paths(out: &Output) -> Vec<(String, String)> {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<(String, String)> =
        v["packages"].as_array().unwrap().iter().map(|p| (p["purl"].as_str().unwrap().to_string(), p["locations"][0]["path"].as_str().unwrap().to_string())).collect();
    got.sort();
    got
}

#[test]
fn modes_and_custom_paths() {
    let dir = tree();
    let t = dir.path().to_str().unwrap();
    let all = json_paths(&kensa(&["sbom", t, "-f", "json"]));
    assert_eq!(
        all,
        [
            ("pkg:npm/%40scope/lib@1.0.0", "/opt/app/node_modules/@scope/lib/package.json"),
            ("pkg:npm/semver@7.5.1", "/usr/local/lib/node_modules/semver/package.json"),
            ("pkg:pypi/requests@2.25.1", "/srv/py/site-packages/requests-2.25.1.dist-info/METADATA"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let agent = json_paths(&kensa(&["sbom", t, "-f", "json", "--deep-inspection", "agent"]));
    assert_eq!(agent.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["pkg:npm/semver@7.5.1"]);
    let custom = json_paths(&kensa(&["sbom", t, "-f", "json", "--deep-inspection", "agent", "--path", "/opt/app", "--path", "/srv/py/"]));
    assert_eq!(custom, all);
    assert!(json_paths(&kensa(&["sbom", t, "-f", "json", "--deep-inspection", "off"])).is_empty());
}

#[test]
fn invalid_policy_is_exit_2_with_a_reason() {
    let dir = tree();
    let t = dir.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["--deep-inspection", "agent", "--path", "/opt/../etc"], "`..`"),
        (vec!["--deep-inspection", "agent", "--path", "relative/dir"], "absolute"),
        (vec!["--deep-inspection", "agent", "--path", "/a", "--path", "/b", "--path", "/c", "--path", "/d", "--path", "/e", "--path", "/f"], "at most 5"),
        (vec!["--path", "/opt/app"], "only applies to --deep-inspection agent"),
    ] {
        let mut all = vec!["sbom", t];
        all.extend(args.iter().copied());
        let out = kensa(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = kensa(&["sbom", t, "--deep-inspection", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn language_packages_in_every_format_with_their_paths() {
    let dir = tree();
    let t = dir.path().to_str().unwrap();
    let cdx = kensa(&["sbom", t, "-f", "cyclonedx-json"]);
    assert_eq!(cdx.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&cdx.stdout).unwrap();
    let c = v["components"].as_array().unwrap().iter().find(|c| c["purl"] == "pkg:pypi/requests@2.25.1").expect("requests in CycloneDX");
    assert!(c["properties"].as_array().unwrap().iter().any(|p| p["value"] == "/srv/py/site-packages/requests-2.25.1.dist-info/METADATA"), "{c}");
    let spdx = kensa(&["sbom", t, "-f", "spdx-json"]);
    assert_eq!(spdx.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&spdx.stdout).unwrap();
    let p = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["externalRefs"].as_array().is_some_and(|r| r.iter().any(|r| r["referenceLocator"] == "pkg:npm/%40scope/lib@1.0.0")))
        .expect("@scope/lib in SPDX");
    assert!(p["sourceInfo"].as_str().unwrap().contains("/opt/app/node_modules/@scope/lib/package.json"), "{p}");
}
