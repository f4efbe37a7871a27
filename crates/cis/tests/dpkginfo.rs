//! dpkginfo on the realistic Debian tree, against dpkg-query (the oracle) reading the same database.

use std::process::Command;

#[test]
fn dpkginfo_evr_matches_dpkg_query() {
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    if !kensa_testdata::require_tool("dpkg-query") {
        return;
    }
    let admindir = rootfs.join("var/lib/dpkg");
    let q = Command::new("dpkg-query").arg(format!("--admindir={}", admindir.display())).args(["-W", "-f", "${Version}", "coreutils"]).output().unwrap();
    assert!(q.status.success());
    let version = String::from_utf8(q.stdout).unwrap();
    let (epoch, rest) = version.split_once(':').unwrap_or(("0", &version));
    let evr = format!("{epoch}:{rest}");
    let oval = format!(
        r#"<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:linux="http://oval.mitre.org/XMLSchema/oval-definitions-5#linux">
 <definitions>
  <definition id="oval:t:def:1" class="inventory" version="1"><criteria><criterion test_ref="oval:t:tst:1"/></criteria></definition>
  <definition id="oval:t:def:2" class="inventory" version="1"><criteria><criterion test_ref="oval:t:tst:2"/></criteria></definition>
  <definition id="oval:t:def:3" class="inventory" version="1"><criteria><criterion test_ref="oval:t:tst:3"/></criteria></definition>
 </definitions>
 <tests>
  <linux:dpkginfo_test id="oval:t:tst:1" check="all" check_existence="at_least_one_exists" version="1"><linux:object object_ref="oval:t:obj:1"/><linux:state state_ref="oval:t:ste:1"/></linux:dpkginfo_test>
  <linux:dpkginfo_test id="oval:t:tst:2" check="all" check_existence="at_least_one_exists" version="1"><linux:object object_ref="oval:t:obj:1"/><linux:state state_ref="oval:t:ste:2"/></linux:dpkginfo_test>
  <linux:dpkginfo_test id="oval:t:tst:3" check="all" check_existence="none_exist" version="1"><linux:object object_ref="oval:t:obj:3"/></linux:dpkginfo_test>
 </tests>
 <objects>
  <linux:dpkginfo_object id="oval:t:obj:1" version="1"><linux:name>coreutils</linux:name></linux:dpkginfo_object>
  <linux:dpkginfo_object id="oval:t:obj:3" version="1"><linux:name>no-such-package-kensa</linux:name></linux:dpkginfo_object>
 </objects>
 <states>
  <linux:dpkginfo_state id="oval:t:ste:1" version="1"><linux:evr datatype="debian_evr_string" operation="equals">{evr}</linux:evr></linux:dpkginfo_state>
  <linux:dpkginfo_state id="oval:t:ste:2" version="1"><linux:evr datatype="debian_evr_string" operation="less than">{epoch}:{rest}+1</linux:evr></linux:dpkginfo_state>
 </states>
</oval_definitions>"#
    );
    let doc = kensa_cis::xml::parse(oval.as_bytes(), &[]).unwrap();
    let ctx = kensa_cis::probes::ProbeContext::new(kensa_fs::Root::dir(&rootfs).unwrap(), false);
    let mut ev = kensa_cis::oval::Evaluator::new(&doc, &ctx).unwrap();
    use kensa_cis::oval::OvalResult::True;
    assert_eq!(ev.definition("oval:t:def:1"), True, "coreutils evr {evr}");
    assert_eq!(ev.definition("oval:t:def:2"), True, "{evr} < {evr}+1 in dpkg order");
    assert_eq!(ev.definition("oval:t:def:3"), True, "an absent package has no item");
}
