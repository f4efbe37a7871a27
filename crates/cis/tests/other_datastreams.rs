//! kensa's per-rule results against OpenSCAP's (the oracle) beyond oscap_compare.rs's RHEL 9 CIS
//! profiles: a non-CIS profile (STIG) on a RHEL-9-like tree and on the Debian tree of
//! make-test-rootfs.sh relabelled RHEL 9 (real Debian configuration files), SUSE's CIS content on
//! a RHEL-9-like tree relabelled SLE 15, Ubuntu 22.04's CIS content on the Debian tree, and
//! content whose platform the tree does not satisfy (every rule `notapplicable`, in both).
//!
//! Every rule must have OpenSCAP's result except where OpenSCAP's probe cannot see an offline
//! tree (docs/cis-offline.md): its systemd probes need D-Bus (`unknown`), its shadow probe reads
//! the host (`notapplicable`), its uname is not applicable offline where kensa reads the tree's
//! newest kernel. Those rules are pinned here with kensa's result and the reason.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{datastream, rhel9_rootfs, run, RULE_PREFIX};

const SYSTEMD: &str = "OpenSCAP's systemd probe needs D-Bus (unknown); kensa reads unit files and wants/ links";
const SHADOW: &str = "OpenSCAP's shadow probe reads the host (notapplicable); kensa reads the tree's /etc/shadow";
/// OpenSCAP's uname is not applicable offline, so a rule built on it gets a result from its other
/// branches; kensa's uname is the tree's newest installed kernel (docs/cis-offline.md).
const UNAME: &str = "kensa reads /boot/config-<newest kernel in /lib/modules>; OpenSCAP's offline uname is not applicable";

/// `src` copied to the fixture `name` with stub packages added to its rpm database
/// (tests/support/add-release-rpm.sh: `NAME:VERSION:RELEASE`, a same-named package replaced), so
/// another distribution's content applies to it; a non-empty `cpe` replaces
/// /etc/system-release-cpe. `link`: hard links instead of a copy (the large Debian tree).
fn relabelled(name: &str, src: &Path, cpe: &str, packages: &[&str], link: bool) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/add-release-rpm.sh");
    kensa_testdata::cached_fixture(name, |out| {
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(src).arg(out).arg(cpe).args(packages);
        if link {
            cmd.env("LINK", "1");
        }
        run(&mut cmd, "add-release-rpm.sh")
    })
}

/// The RHEL-9-like tree of `seed` relabelled (see [`relabelled`]).
fn relabelled_rootfs(name: &str, seed: u32, cpe: &str, packages: &[&str]) -> Option<PathBuf> {
    let src = rhel9_rootfs(seed)?;
    relabelled(&format!("cis-{name}-seed{seed}"), &src, cpe, packages, false)
}

/// make-test-rootfs.sh's Debian 12 tree with an Ubuntu 22.04 /etc/lsb-release (what SSG's
/// ubuntu2204 platform check reads); files are hard links to the Debian fixture's. OpenSCAP only
/// ever scans this copy, never the shared fixture: its librpm creates var/lib/rpm/rpmdb.sqlite in
/// a tree that has none (a new file in the copy, so the fixture stays as built).
fn jammy_rootfs() -> Option<PathBuf> {
    let debian = kensa_testdata::debian_rootfs()?;
    kensa_testdata::cached_fixture("cis-jammy-on-debian", |out| {
        if out.exists() {
            std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        run(Command::new("cp").arg("-al").arg(&debian).arg(out), "cp -al")?;
        // Never share an rpm database file with the fixture (librpm would write to it).
        let rpmdb = out.join("var/lib/rpm");
        if rpmdb.exists() {
            std::fs::remove_dir_all(&rpmdb).map_err(|e| format!("{}: {e}", rpmdb.display()))?;
        }
        let lsb = out.join("etc/lsb-release");
        let _ = std::fs::remove_file(&lsb);
        std::fs::write(&lsb, "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION=\"Ubuntu 22.04.4 LTS\"\n").map_err(|e| format!("{}: {e}", lsb.display()))
    })
}

/// OpenSCAP's results (rule id without prefix -> result), cached per tree, datastream and profile.
fn oscap_results(tree: &str, rootfs: &Path, ds: &Path, profile: &str) -> Option<BTreeMap<String, String>> {
    let ds_name = ds.file_name().unwrap().to_string_lossy().trim_start_matches("ssg-").trim_end_matches("-ds.xml").to_string();
    let full = format!("xccdf_org.ssgproject.content_profile_{profile}");
    support::oscap_results(&format!("cis-oscap-{tree}-{ds_name}-{profile}"), rootfs, ds, &full)
}

fn kensa_report(ds: &Path, profile: &str, rootfs: &Path) -> kensa_cis::Report {
    let ds = kensa_cis::DataStream::load(ds).unwrap();
    let opts = kensa_cis::ScanOptions { profile: profile.into(), ..Default::default() };
    kensa_cis::scan(&ds, &opts, kensa_fs::Root::dir(rootfs).unwrap(), false).unwrap()
}

fn results(report: &kensa_cis::Report) -> BTreeMap<String, String> {
    report.rules.iter().map(|r| (r.rule_id.trim_start_matches(RULE_PREFIX).to_string(), r.result.clone())).collect()
}

/// Compares rule by rule; `pinned` lists (rule, kensa's result, why OpenSCAP has none). Returns
/// kensa's results for further checks.
fn compare(tree: &str, rootfs: &Path, ds_file: &str, profile: &str, pinned: &[(&str, &str, &str)]) -> Option<BTreeMap<String, String>> {
    let ds = datastream(ds_file)?;
    let oscap = oscap_results(tree, rootfs, &ds, profile)?;
    let kensa = results(&kensa_report(&ds, profile, rootfs));
    assert_eq!(kensa.len(), oscap.len(), "{ds_file} {profile}: rule count");
    let mut problems = Vec::new();
    for (rule, o) in &oscap {
        let k = &kensa[rule];
        match pinned.iter().find(|(r, _, _)| r == rule) {
            Some((_, expected, why)) => {
                if k != expected {
                    problems.push(format!("{rule}: kensa {k}, pinned {expected} ({why})"));
                }
                // Only where OpenSCAP's probe could not see the tree (a rule combining uname
                // with other tests still gets a result from those).
                if !matches!(o.as_str(), "unknown" | "notapplicable") && *why != UNAME {
                    problems.push(format!("{rule}: pinned, but OpenSCAP gives a real result {o}"));
                }
            }
            None if k != o => problems.push(format!("{rule}: kensa {k}, OpenSCAP {o}")),
            None => {}
        }
    }
    for (rule, _, _) in pinned {
        if !oscap.contains_key(*rule) {
            problems.push(format!("{rule}: pinned but not in the benchmark"));
        }
    }
    assert!(problems.is_empty(), "{tree} {ds_file} {profile}: {} differences:\n{}", problems.len(), problems.join("\n"));
    Some(kensa)
}

fn evaluated(results: &BTreeMap<String, String>) -> usize {
    results.values().filter(|r| matches!(r.as_str(), "pass" | "fail")).count()
}

/// RHEL 9 STIG: 496 rules, probes the CIS profiles do not use (symlink, more rpminfo / file
/// checks). The tree's /etc/systemd/system/default.target links to a unit file the tree does not
/// have: OpenSCAP's symlink probe (realpath inside the tree) makes xwindows_runlevel_target an
/// error, and so must kensa.
#[test]
fn rhel9_stig_seed3_matches_openscap() {
    let Some(rootfs) = rhel9_rootfs(3) else { return };
    let pinned = [
        ("accounts_password_all_shadowed_sha512", "fail", SHADOW),
        ("accounts_password_set_max_life_existing", "fail", SHADOW),
        ("accounts_password_set_min_life_existing", "fail", SHADOW),
        ("service_auditd_enabled", "fail", SYSTEMD),
        ("service_chronyd_enabled", "pass", SYSTEMD),
        ("service_debug-shell_disabled", "pass", SYSTEMD),
        ("service_firewalld_enabled", "pass", SYSTEMD),
        ("service_rsyslog_enabled", "fail", SYSTEMD),
        ("service_sshd_enabled", "pass", SYSTEMD),
        ("service_systemd-coredump_disabled", "pass", SYSTEMD),
        ("service_systemd-journald_enabled", "pass", SYSTEMD),
    ];
    let Some(kensa) = compare("rhel9-seed3", &rootfs, "ssg-rhel9-ds.xml", "stig", &pinned) else { return };
    assert_eq!(kensa["xwindows_runlevel_target"], "error");
    assert!(evaluated(&kensa) > 400, "only {} rules evaluated", evaluated(&kensa));
}

/// SUSE's CIS content on the tree relabelled SLE 15 (sles-release 15.5). permissions_local_var_log
/// checks the files under /var/log: the directories there (audit/) are not items when the object
/// has a filename, as in OpenSCAP.
#[test]
fn sle15_cis_on_relabelled_tree_matches_openscap() {
    let Some(rootfs) = relabelled_rootfs("sle15", 3, "", &["sles-release:15.5:150500.1"]) else { return };
    let pinned = [
        ("accounts_password_all_shadowed_sha512", "fail", SHADOW),
        ("postfix_network_listening_disabled", "pass", SYSTEMD),
        ("service_auditd_enabled", "fail", SYSTEMD),
        ("service_chronyd_enabled", "pass", SYSTEMD),
        ("service_firewalld_enabled", "pass", SYSTEMD),
        ("service_rpcbind_disabled", "pass", SYSTEMD),
        ("service_rsyslog_enabled", "fail", SYSTEMD),
    ];
    let Some(kensa) = compare("sle15-seed3", &rootfs, "ssg-sle15-ds.xml", "cis", &pinned) else { return };
    assert_eq!(kensa["permissions_local_var_log"], "pass");
    assert!(evaluated(&kensa) > 230, "only {} rules evaluated", evaluated(&kensa));
}

/// Ubuntu 22.04's CIS Level 2 server content on a Debian tree: dpkginfo, Debian file layouts.
#[test]
fn ubuntu2204_cis_level2_server_on_debian_tree_matches_openscap() {
    let Some(rootfs) = jammy_rootfs() else { return };
    let pinned = [
        ("accounts_password_all_shadowed_sha512", "pass", SHADOW),
        ("accounts_password_set_max_life_existing", "fail", SHADOW),
        ("accounts_password_set_min_life_existing", "fail", SHADOW),
    ];
    let Some(kensa) = compare("jammy-on-debian", &rootfs, "ssg-ubuntu2204-ds.xml", "cis_level2_server", &pinned) else { return };
    assert!(evaluated(&kensa) > 150, "only {} rules evaluated", evaluated(&kensa));
}

/// RHEL 9 STIG on the Debian tree with an rpm database saying RHEL 9.4 (redhat-release and the
/// packages whose platforms gate rules): the RHEL rules read real Debian configuration files. The
/// tree has a kernel (6.1.0-*-amd64): kensa's uname is x86_64 (sysctl_kernel_exec_shield), where
/// OpenSCAP's offline uname is not applicable.
#[test]
fn rhel9_stig_on_debian_tree_matches_openscap() {
    let Some(debian) = kensa_testdata::debian_rootfs() else { return };
    let packages = [
        "redhat-release:9.4:0.5.el9", "systemd:252:32.el9_4", "pam:1.5.1:19.el9", "openssh-server:8.7p1:38.el9", "sudo:1.9.5p2:10.el9_3", "audit:3.1.2:2.el9",
        "grub2-common:2.06:77.el9", "chrony:4.5:1.el9", "rsyslog:8.2310.0:4.el9", "shadow-utils:4.9:8.el9", "libselinux:3.6:1.el9", "firewalld:1.3.4:1.el9",
        "cronie:1.5.7:11.el9", "yum:4.14.0:9.el9", "polkit:0.117:11.el9",
    ];
    let Some(rootfs) = relabelled("cis-rhel9-on-debian", &debian, "", &packages, true) else { return };
    // The Debian tree has no systemd units but udev's: no service is enabled.
    let pinned = [
        ("accounts_password_all_shadowed_sha512", "pass", SHADOW),
        ("accounts_password_set_max_life_existing", "fail", SHADOW),
        ("accounts_password_set_min_life_existing", "fail", SHADOW),
        ("grub2_kernel_trust_cpu_rng", "pass", UNAME),
        ("service_auditd_enabled", "fail", SYSTEMD),
        ("service_chronyd_enabled", "fail", SYSTEMD),
        ("service_debug-shell_disabled", "pass", SYSTEMD),
        ("service_firewalld_enabled", "fail", SYSTEMD),
        ("service_rsyslog_enabled", "fail", SYSTEMD),
        ("service_sshd_enabled", "fail", SYSTEMD),
        ("service_systemd-coredump_disabled", "pass", SYSTEMD),
        ("service_systemd-journald_enabled", "fail", SYSTEMD),
    ];
    let Some(kensa) = compare("rhel9-on-debian", &rootfs, "ssg-rhel9-ds.xml", "stig", &pinned) else { return };
    assert_eq!(kensa["sysctl_kernel_exec_shield"], "pass");
    assert!(evaluated(&kensa) > 400, "only {} rules evaluated", evaluated(&kensa));
}

/// Content for another platform: every selected rule is notapplicable, in both.
#[test]
fn foreign_content_is_notapplicable_like_openscap() {
    type Case = (&'static str, fn() -> Option<PathBuf>, &'static str, &'static str);
    let cases: [Case; 2] = [
        // The Debian tree (its copy: see jammy_rootfs).
        ("jammy-on-debian", jammy_rootfs, "ssg-rhel9-ds.xml", "cis"),
        ("rhel9-seed3", || rhel9_rootfs(3), "ssg-sle15-ds.xml", "cis"),
    ];
    for (tree, rootfs, ds, profile) in cases {
        let Some(rootfs) = rootfs() else { return };
        let Some(kensa) = compare(tree, &rootfs, ds, profile, &[]) else { return };
        let selected: Vec<&String> = kensa.values().filter(|r| *r != "notselected").collect();
        assert!(selected.len() > 200 && selected.iter().all(|r| *r == "notapplicable"), "{tree} {ds}: {selected:?}");
    }
}

/// The symlink probe as OpenSCAP's realpath(3) inside the tree, without the oracle: a dangling or
/// circular default.target link is an error, a link to an existing unit file is collected.
#[test]
fn default_target_link_dangling_circular_or_resolved() {
    let Some(ds) = datastream("ssg-rhel9-ds.xml") else { return };
    let Some(seed3) = rhel9_rootfs(3) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("root");
    run(Command::new("cp").arg("-a").arg(&seed3).arg(&tree), "cp -a").unwrap();
    let link = tree.join("etc/systemd/system/default.target");
    // A tailoring profile with only this rule keeps the four scans short.
    let tailoring = br#"<Tailoring xmlns="http://checklists.nist.gov/xccdf/1.2" id="xccdf_kensa_tailoring_runlevel">
 <version time="2026-01-01T00:00:00">1</version>
 <Profile id="xccdf_kensa_profile_runlevel"><title>default.target only</title>
  <select idref="xccdf_org.ssgproject.content_rule_xwindows_runlevel_target" selected="true"/>
 </Profile>
</Tailoring>"#;
    let ds = kensa_cis::DataStream::load(&ds).unwrap();
    let opts = kensa_cis::ScanOptions { profile: "xccdf_kensa_profile_runlevel".into(), tailoring: Some(tailoring.to_vec()), ..Default::default() };
    let result = |tree: &Path| {
        let report = kensa_cis::scan(&ds, &opts, kensa_fs::Root::dir(tree).unwrap(), false).unwrap();
        assert_eq!(report.rules.iter().filter(|r| r.result != "notselected").count(), 1);
        let rule = report.rules.iter().find(|r| r.rule_id.ends_with("_rule_xwindows_runlevel_target")).unwrap();
        let messages: Vec<String> = rule.checks.iter().flat_map(|c| c.tests.iter().flat_map(|t| t.messages.clone())).collect();
        (rule.result.clone(), messages.join("; "))
    };
    // As built: /usr/lib/systemd/system/multi-user.target is not in the tree.
    let (r, msg) = result(&tree);
    assert_eq!(r, "error");
    assert!(msg.contains("does not exist"), "{msg}");
    // Circular.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("default.target", &link).unwrap();
    assert_eq!(result(&tree).0, "error");
    // Resolved inside the tree (the absolute target is the tree's, not the host's).
    std::fs::remove_file(&link).unwrap();
    std::fs::write(tree.join("usr/lib/systemd/system/multi-user.target"), "[Unit]\nDescription=Multi-User System\n").unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system/multi-user.target", &link).unwrap();
    assert_eq!(result(&tree).0, "pass");
    // To another target: collected, and the state does not match.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system/rescue.target", &link).unwrap();
    assert_eq!(result(&tree).0, "fail");
}
