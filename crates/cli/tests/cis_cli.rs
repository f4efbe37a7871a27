//! `kensa cis profiles` and `kensa cis scan` end to end on the seed-0 RHEL-9-like tree.

use std::path::PathBuf;
use std::process::Command;

const DS: &str = "/usr/share/xml/scap/ssg/content/ssg-rhel9-ds.xml";

fn kensa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kensa"))
}

fn rootfs() -> Option<PathBuf> {
    if !PathBuf::from(DS).is_file() {
        assert!(!kensa_testdata::in_ci(), "{DS} missing (scripts/install-test-deps.sh installs ssg-nondebian)");
        eprintln!("SKIP: {DS} missing");
        return None;
    }
    let tools = kensa_testdata::shared_tools()?;
    if !kensa_testdata::require_tool("rpmbuild") {
        return None;
    }
    // Same fixture as crates/cis/tests/oscap_compare.rs.
    kensa_testdata::cached_fixture("cis-rhel9-seed0", |out| {
        let st = Command::new("bash").arg(tools.join("make-rhel9-rootfs.sh")).arg(out).arg("0").stdout(std::process::Stdio::null()).status().map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("make-rhel9-rootfs.sh: {st}"))
        }
    })
}

#[test]
fn profiles_lists_rule_counts() {
    if !PathBuf::from(DS).is_file() {
        return;
    }
    let o = kensa().args(["cis", "profiles", DS]).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("xccdf_org.ssgproject.content_profile_cis_server_l1") && text.contains("233 rules"), "{text}");
}

#[test]
fn scan_json_html_csv() {
    let Some(root) = rootfs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let o = kensa().args(["cis", "scan", "--content", DS, "--profile", "cis_server_l1", "--format", "json", "--output"]).arg(&json).arg(&root).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for k in ["benchmark", "profile", "target", "startedAt", "endedAt", "rules", "score"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let rules = v["rules"].as_array().unwrap();
    let sshd = rules.iter().find(|r| r["ruleId"] == "xccdf_org.ssgproject.content_rule_sshd_disable_root_login").unwrap();
    assert_eq!(sshd["result"], "pass");
    assert!(!sshd["checks"][0]["tests"].as_array().unwrap().is_empty(), "evidence recorded");
    assert!(rules.iter().all(|r| r["result"].is_string() && r["severity"].is_string() && r["title"].is_string()));

    let o = kensa().args(["cis", "scan", "--content", DS, "--profile", "cis_server_l1", "--format", "html"]).arg(&root).output().unwrap();
    let html = String::from_utf8_lossy(&o.stdout);
    assert!(html.contains("Rationale") && html.contains("Evidence") && html.contains("sshd_disable_root_login"));

    let o = kensa().args(["cis", "scan", "--content", DS, "--profile", "cis_server_l1", "--format", "csv"]).arg(&root).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("rule_id,title,severity,result\n"));
}

#[test]
fn bad_input_exits_2_with_a_message() {
    if !PathBuf::from(DS).is_file() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = kensa().args(["cis", "scan", "--content", DS, "--profile", "no_such_profile"]).arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no_such_profile"));
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<data-stream-collection><component>").unwrap();
    let o = kensa().args(["cis", "profiles"]).arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.xml"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The same tree as an ext4 disk image (made without mounting) gives the same per-rule results as
/// the directory: CIS scans read disk images through the agentless reader.
#[test]
fn scan_disk_image_equals_directory() {
    let Some(root) = rootfs() else { return };
    if !kensa_testdata::require_tool("mkfs.ext4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("rhel9.img");
    std::fs::File::create(&img).unwrap().set_len(256 << 20).unwrap();
    let st = Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&root).arg(&img).status().unwrap();
    assert!(st.success());
    let results = |target: &std::path::Path| -> std::collections::BTreeMap<String, String> {
        let o = kensa().args(["cis", "scan", "--content", DS, "--profile", "cis_server_l1", "--format", "json"]).arg(target).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["rules"].as_array().unwrap().iter().map(|r| (r["ruleId"].as_str().unwrap().to_string(), r["result"].as_str().unwrap().to_string())).collect()
    };
    let from_dir = results(&root);
    let from_img = results(&img);
    assert!(from_dir.values().filter(|r| *r == "pass").count() > 50 && from_dir.values().any(|r| r == "fail" || r == "pass"));
    assert_eq!(from_dir, from_img);
}
