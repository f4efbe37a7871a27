//! What the OpenSCAP comparison tests share: the SSG datastreams, the RHEL-9-like trees of
//! make-rhel9-rootfs.sh (one builder, so a cached tree is the same whichever test builds it
//! first), and reading OpenSCAP's results.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const CONTENT: &str = "/usr/share/xml/scap/ssg/content";
pub const RULE_PREFIX: &str = "xccdf_org.ssgproject.content_rule_";
/// This seed's tree looks like a disk snapshot: no proc/, absolute /etc/pam.d symlinks.
pub const SNAPSHOT_SEED: u32 = 5;

/// A SSG datastream by file name; `None` (skip) or a panic under CI when it is not installed.
pub fn datastream(file: &str) -> Option<PathBuf> {
    let p = Path::new(CONTENT).join(file);
    if p.is_file() {
        return Some(p);
    }
    if kensa_testdata::in_ci() {
        panic!("{} is missing (scripts/install-test-deps.sh installs ssg-nondebian and ssg-debderived)", p.display());
    }
    eprintln!("SKIP: {} is missing (run scripts/install-test-deps.sh)", p.display());
    None
}

/// Runs `cmd` (stdout discarded); the error names `what` and the exit status.
pub fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let st = cmd.stdout(Stdio::null()).status().map_err(|e| format!("{what}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what} exited with {st}"))
    }
}

/// The RHEL-9-like tree for `seed`, built once into target/test-fixtures.
pub fn rhel9_rootfs(seed: u32) -> Option<PathBuf> {
    let tools = kensa_testdata::shared_tools()?;
    if !kensa_testdata::require_tool("rpmbuild") {
        return None;
    }
    kensa_testdata::cached_fixture(&format!("cis-rhel9-seed{seed}"), |out| {
        let mut cmd = Command::new("bash");
        cmd.arg(tools.join("make-rhel9-rootfs.sh")).arg(out).arg(seed.to_string());
        if seed == SNAPSHOT_SEED {
            cmd.env("NO_PROC", "1").env("ABS_SYMLINKS", "1");
        }
        run(&mut cmd, "make-rhel9-rootfs.sh")
    })
}

/// OpenSCAP's results of `profile` (full id) on `rootfs` (rule id without prefix -> result),
/// from run-oscap-cis.sh, cached as the fixture `name`.
pub fn oscap_results(name: &str, rootfs: &Path, ds: &Path, profile: &str) -> Option<BTreeMap<String, String>> {
    let tools = kensa_testdata::shared_tools()?;
    if !kensa_testdata::require_tool("oscap") {
        return None;
    }
    let dir = kensa_testdata::cached_fixture(name, |out| {
        run(Command::new("bash").arg(tools.join("run-oscap-cis.sh")).arg(rootfs).arg(out).arg(profile).arg(ds).env("NO_REPORT", "1"), "run-oscap-cis.sh")
    })?;
    let xml = std::fs::read(dir.join("res.xml")).expect("oscap res.xml");
    let root = kensa_cis::xml::parse(&xml, &[]).expect("parse res.xml");
    let mut rr = Vec::new();
    root.descendants("rule-result", &mut rr);
    Some(rr.iter().map(|r| (r.attr("idref").unwrap().trim_start_matches(RULE_PREFIX).to_string(), r.child_text("result").unwrap().to_string())).collect())
}
