//! XCCDF and OVAL semantics on a small hand-written datastream and a tree built by the test:
//! profile selection and extends, refine-value / set-value through check-export, requires /
//! conflicts, CPE platforms, OCIL-only rules, negated and complex checks, scoring, tailoring, and
//! hostile content (clear errors, a missing probe type only affects its rule).

use std::collections::BTreeMap;

const DS: &str = r##"<?xml version="1.0"?>
<ds:data-stream-collection xmlns:ds="http://scap.nist.gov/schema/scap/source/1.2" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:cat="urn:oasis:names:tc:entity:xmlns:xml:catalog">
 <ds:data-stream id="ds1">
  <ds:dictionaries><ds:component-ref id="cref-dict" xlink:href="#comp-dict"><cat:catalog><cat:uri name="cpe-oval.xml" uri="#cref-cpeoval"/></cat:catalog></ds:component-ref></ds:dictionaries>
  <ds:checklists><ds:component-ref id="cref-xccdf" xlink:href="#comp-xccdf"><cat:catalog><cat:uri name="oval.xml" uri="#cref-oval"/></cat:catalog></ds:component-ref></ds:checklists>
  <ds:checks><ds:component-ref id="cref-oval" xlink:href="#comp-oval"/><ds:component-ref id="cref-cpeoval" xlink:href="#comp-cpeoval"/></ds:checks>
 </ds:data-stream>
 <ds:component id="comp-dict">
  <cpe-list xmlns="http://cpe.mitre.org/dictionary/2.0">
   <cpe-item name="cpe:/o:test:os:1"><title>Test OS</title><check system="http://oval.mitre.org/XMLSchema/oval-definitions-5" href="cpe-oval.xml">oval:t:def:os</check></cpe-item>
   <cpe-item name="cpe:/a:nginx"><title>nginx</title><check system="http://oval.mitre.org/XMLSchema/oval-definitions-5" href="cpe-oval.xml">oval:t:def:nginx</check></cpe-item>
  </cpe-list>
 </ds:component>
 <ds:component id="comp-xccdf">
  <Benchmark xmlns="http://checklists.nist.gov/xccdf/1.2" id="xccdf_t_benchmark_T">
   <title>Test benchmark</title>
   <platform-specification xmlns="http://cpe.mitre.org/language/2.0">
    <platform id="nginx"><logical-test operator="AND" negate="false"><fact-ref name="cpe:/a:nginx"/></logical-test></platform>
    <platform id="not_nginx"><logical-test operator="AND" negate="true"><fact-ref name="cpe:/a:nginx"/></logical-test></platform>
   </platform-specification>
   <platform idref="cpe:/o:test:os:1"/>
   <Profile id="xccdf_t_profile_base"><title>Base</title>
    <select idref="xccdf_t_rule_umask" selected="true"/>
    <select idref="xccdf_t_rule_nginx" selected="true"/>
    <select idref="xccdf_t_rule_not_nginx" selected="true"/>
    <select idref="xccdf_t_rule_manual" selected="true"/>
    <refine-value idref="xccdf_t_value_umask" selector="strict"/>
   </Profile>
   <Profile id="xccdf_t_profile_strict" extends="xccdf_t_profile_base"><title>Strict</title>
    <select idref="xccdf_t_group_extra" selected="true"/>
    <select idref="xccdf_t_rule_negated" selected="true"/>
    <select idref="xccdf_t_rule_complex" selected="true"/>
    <select idref="xccdf_t_rule_needs" selected="true"/>
    <select idref="xccdf_t_rule_conflicting" selected="true"/>
    <select idref="xccdf_t_rule_unknown_probe" selected="true"/>
    <select idref="xccdf_t_rule_broken_ref" selected="true"/>
    <set-value idref="xccdf_t_value_umask">027</set-value>
   </Profile>
   <Value id="xccdf_t_value_umask" type="string"><value>022</value><value selector="strict">077</value></Value>
   <Group id="xccdf_t_group_main" selected="true"><title>Main</title>
    <Rule id="xccdf_t_rule_umask" selected="false" severity="medium"><title>umask</title><rationale>Restrictive <b>umask</b>.</rationale>
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-export value-id="xccdf_t_value_umask" export-name="oval:t:var:umask"/><check-content-ref href="oval.xml" name="oval:t:def:umask"/></check>
    </Rule>
    <Rule id="xccdf_t_rule_nginx" selected="false" severity="low"><title>nginx only</title><platform idref="#nginx"/>
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
    </Rule>
    <Rule id="xccdf_t_rule_not_nginx" selected="false" severity="low"><title>no nginx</title><platform idref="#not_nginx"/>
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
    </Rule>
    <Rule id="xccdf_t_rule_manual" selected="false" severity="low"><title>manual</title>
     <check system="http://scap.nist.gov/schema/ocil/2"><check-content-ref href="ocil.xml" name="ocil:q:1"/></check>
    </Rule>
    <Rule id="xccdf_t_rule_unselected" selected="false" severity="low"><title>never</title>
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
    </Rule>
   </Group>
   <Group id="xccdf_t_group_extra" selected="false"><title>Extra</title>
    <Rule id="xccdf_t_rule_in_group" selected="true" severity="low"><title>in group</title>
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
    </Rule>
   </Group>
   <Rule id="xccdf_t_rule_negated" selected="false" severity="high"><title>negated</title>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5" negate="true"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
   </Rule>
   <Rule id="xccdf_t_rule_complex" selected="false" severity="high"><title>complex</title>
    <complex-check operator="OR">
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:false"/></check>
     <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
    </complex-check>
   </Rule>
   <Rule id="xccdf_t_rule_needs" selected="false" severity="low"><title>requires unselected</title><requires idref="xccdf_t_rule_unselected"/>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
   </Rule>
   <Rule id="xccdf_t_rule_conflicting" selected="false" severity="low"><title>conflicts with umask</title><conflicts idref="xccdf_t_rule_umask"/>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:true"/></check>
   </Rule>
   <Rule id="xccdf_t_rule_unknown_probe" selected="false" severity="low"><title>unknown probe</title>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:alien"/></check>
   </Rule>
   <Rule id="xccdf_t_rule_broken_ref" selected="false" severity="low"><title>broken ref</title>
    <check system="http://oval.mitre.org/XMLSchema/oval-definitions-5"><check-content-ref href="oval.xml" name="oval:t:def:broken"/></check>
   </Rule>
  </Benchmark>
 </ds:component>
 <ds:component id="comp-oval">
  <oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:ind="http://oval.mitre.org/XMLSchema/oval-definitions-5#independent" xmlns:unix="http://oval.mitre.org/XMLSchema/oval-definitions-5#unix" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
   <definitions>
    <definition id="oval:t:def:umask" class="compliance" version="1"><metadata><title>umask set</title></metadata>
     <criteria operator="AND"><criterion test_ref="oval:t:tst:umask"/><criterion test_ref="oval:t:tst:umask_count"/></criteria></definition>
    <definition id="oval:t:def:true" class="compliance" version="1"><metadata><title>family</title></metadata><criteria><criterion test_ref="oval:t:tst:family"/></criteria></definition>
    <definition id="oval:t:def:false" class="compliance" version="1"><metadata><title>not family</title></metadata><criteria><criterion test_ref="oval:t:tst:family" negate="true"/></criteria></definition>
    <definition id="oval:t:def:alien" class="compliance" version="1"><metadata><title>alien</title></metadata><criteria><criterion test_ref="oval:t:tst:alien"/></criteria></definition>
    <definition id="oval:t:def:broken" class="compliance" version="1"><metadata><title>broken</title></metadata><criteria><criterion test_ref="oval:t:tst:missing"/></criteria></definition>
   </definitions>
   <tests>
    <ind:textfilecontent54_test id="oval:t:tst:umask" check="all" check_existence="at_least_one_exists" version="1"><ind:object object_ref="oval:t:obj:umask"/><ind:state state_ref="oval:t:ste:umask"/></ind:textfilecontent54_test>
    <ind:variable_test id="oval:t:tst:umask_count" check="all" version="1"><ind:object object_ref="oval:t:obj:count"/><ind:state state_ref="oval:t:ste:one"/></ind:variable_test>
    <ind:family_test id="oval:t:tst:family" check="all" version="1"><ind:object object_ref="oval:t:obj:family"/><ind:state state_ref="oval:t:ste:unix"/></ind:family_test>
    <ind:alien_test id="oval:t:tst:alien" check="all" version="1"><ind:object object_ref="oval:t:obj:alien"/></ind:alien_test>
   </tests>
   <objects>
    <ind:textfilecontent54_object id="oval:t:obj:umask" version="1"><ind:filepath>/etc/profile</ind:filepath><ind:pattern operation="pattern match">^\s*umask\s+(\d+)\s*$</ind:pattern><ind:instance datatype="int" operation="greater than or equal">1</ind:instance></ind:textfilecontent54_object>
    <ind:variable_object id="oval:t:obj:count" version="1"><ind:var_ref>oval:t:var:count</ind:var_ref></ind:variable_object>
    <ind:family_object id="oval:t:obj:family" version="1"/>
    <ind:alien_object id="oval:t:obj:alien" version="1"/>
   </objects>
   <states>
    <ind:textfilecontent54_state id="oval:t:ste:umask" version="1"><ind:subexpression var_ref="oval:t:var:umask"/></ind:textfilecontent54_state>
    <ind:variable_state id="oval:t:ste:one" version="1"><ind:value datatype="int">1</ind:value></ind:variable_state>
    <ind:family_state id="oval:t:ste:unix" version="1"><ind:family>unix</ind:family></ind:family_state>
   </states>
   <variables>
    <external_variable id="oval:t:var:umask" datatype="string" version="1"/>
    <local_variable id="oval:t:var:count" datatype="int" version="1"><count><object_component object_ref="oval:t:obj:umask" item_field="subexpression"/></count></local_variable>
   </variables>
  </oval_definitions>
 </ds:component>
 <ds:component id="comp-cpeoval">
  <oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5" xmlns:ind="http://oval.mitre.org/XMLSchema/oval-definitions-5#independent" xmlns:unix="http://oval.mitre.org/XMLSchema/oval-definitions-5#unix">
   <definitions>
    <definition id="oval:t:def:os" class="inventory" version="1"><criteria><criterion test_ref="oval:t:tst:osrel"/></criteria></definition>
    <definition id="oval:t:def:nginx" class="inventory" version="1"><criteria><criterion test_ref="oval:t:tst:nginx"/></criteria></definition>
   </definitions>
   <tests>
    <ind:textfilecontent54_test id="oval:t:tst:osrel" check="all" check_existence="at_least_one_exists" version="1"><ind:object object_ref="oval:t:obj:osrel"/></ind:textfilecontent54_test>
    <unix:file_test id="oval:t:tst:nginx" check="all" check_existence="at_least_one_exists" version="1"><unix:object object_ref="oval:t:obj:nginx"/></unix:file_test>
   </tests>
   <objects>
    <ind:textfilecontent54_object id="oval:t:obj:osrel" version="1"><ind:filepath>/etc/os-release</ind:filepath><ind:pattern operation="pattern match">^ID="?testos"?$</ind:pattern><ind:instance datatype="int">1</ind:instance></ind:textfilecontent54_object>
    <unix:file_object id="oval:t:obj:nginx" version="1"><unix:filepath>/usr/sbin/nginx</unix:filepath></unix:file_object>
   </objects>
  </oval_definitions>
 </ds:component>
</ds:data-stream-collection>
"##;

fn tree(umask: &str, nginx: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::create_dir_all(d.path().join("usr/sbin")).unwrap();
    std::fs::write(d.path().join("etc/os-release"), "NAME=Test\nID=testos\n").unwrap();
    std::fs::write(d.path().join("etc/profile"), format!("# profile\numask {umask}\n")).unwrap();
    if nginx {
        std::fs::write(d.path().join("usr/sbin/nginx"), "").unwrap();
    }
    d
}

fn results(profile: &str, umask: &str, nginx: bool, tailoring: Option<&str>) -> (BTreeMap<String, String>, kensa_cis::Report) {
    let ds = kensa_cis::DataStream::parse(DS.as_bytes()).unwrap();
    let t = tree(umask, nginx);
    let opts = kensa_cis::ScanOptions { profile: profile.into(), tailoring: tailoring.map(|s| s.as_bytes().to_vec()), ..Default::default() };
    let r = kensa_cis::scan(&ds, &opts, kensa_fs::Root::dir(t.path()).unwrap(), false).unwrap();
    (r.rules.iter().map(|x| (x.rule_id.trim_start_matches("xccdf_t_rule_").to_string(), x.result.clone())).collect(), r)
}

#[test]
fn base_profile_refine_value_and_platforms() {
    let (r, rep) = results("base", "077", false, None);
    assert_eq!(r["umask"], "pass", "refine-value selector strict = 077 is exported to OVAL");
    assert_eq!(r["nginx"], "notapplicable");
    assert_eq!(r["not_nginx"], "pass", "negated CPE logical test");
    assert_eq!(r["manual"], "notchecked", "OCIL-only rule");
    assert_eq!(r["unselected"], "notselected");
    assert_eq!(r["in_group"], "notselected", "rule in an unselected group");
    // Evidence: the umask test saw /etc/profile's line.
    let umask = rep.rules.iter().find(|x| x.rule_id.ends_with("umask")).unwrap();
    assert_eq!(umask.checks[0].exports, vec![("xccdf_t_value_umask".to_string(), "077".to_string())]);
    assert_eq!(umask.checks[0].tests[0].items.len(), 1);
    assert!(umask.rationale.contains("Restrictive umask"));
    // Scoring: umask, not_nginx pass (100), nothing failed.
    assert_eq!(rep.score, 100.0);

    let (r, _) = results("base", "022", true, None);
    assert_eq!(r["umask"], "fail");
    assert_eq!(r["nginx"], "pass");
    assert_eq!(r["not_nginx"], "notapplicable");
}

#[test]
fn extends_set_value_groups_checks_and_errors() {
    let (r, rep) = results("xccdf_t_profile_strict", "027", false, None);
    assert_eq!(r["umask"], "pass", "set-value 027 overrides the inherited refine-value");
    assert_eq!(r["in_group"], "pass", "group selected by the extending profile");
    assert_eq!(r["negated"], "fail");
    assert_eq!(r["complex"], "pass", "complex-check OR");
    assert_eq!(r["needs"], "notselected", "requires an unselected rule");
    assert_eq!(r["conflicting"], "notselected", "conflicts with a selected rule");
    assert_eq!(r["unknown_probe"], "unknown", "no probe for alien_object: this rule only");
    assert_eq!(r["broken_ref"], "error", "test reference to nothing");
    // default score: umask 100, in_group 100, not_nginx 100, negated 0, complex 100, unknown 0, error 0
    // -> main group (100, 100) = 100 ; extra = 100 ; top: main 100, extra 100, negated 0, complex 100, unknown 0, error 0
    assert!((rep.score - 50.0).abs() < 0.01, "score {}", rep.score);
}

#[test]
fn tailoring_extends_a_profile() {
    let tailoring = r#"<?xml version="1.0"?>
<xccdf:Tailoring xmlns:xccdf="http://checklists.nist.gov/xccdf/1.2" id="xccdf_t_tailoring_1">
 <xccdf:benchmark href="ds.xml"/>
 <xccdf:Profile id="xccdf_t_profile_mine" extends="xccdf_t_profile_base">
  <xccdf:title>Mine</xccdf:title>
  <xccdf:select idref="xccdf_t_rule_manual" selected="false"/>
  <xccdf:set-value idref="xccdf_t_value_umask">022</xccdf:set-value>
 </xccdf:Profile>
</xccdf:Tailoring>"#;
    let (r, rep) = results("xccdf_t_profile_mine", "022", false, Some(tailoring));
    assert_eq!(rep.profile.id, "xccdf_t_profile_mine");
    assert_eq!(r["umask"], "pass");
    assert_eq!(r["manual"], "notselected");
    assert_eq!(r["not_nginx"], "pass");
}

#[test]
fn profile_listing() {
    let ds = kensa_cis::DataStream::parse(DS.as_bytes()).unwrap();
    let l = kensa_cis::list_profiles(&ds).unwrap();
    let p: BTreeMap<_, _> = l[0].profiles.iter().map(|p| (p.id.as_str(), p.rule_count)).collect();
    assert_eq!(p["xccdf_t_profile_base"], 4);
    // + in_group, negated, complex, unknown_probe, broken_ref (needs and conflicting drop out)
    assert_eq!(p["xccdf_t_profile_strict"], 9);
}

#[test]
fn hostile_content_gives_clear_errors() {
    let e = kensa_cis::DataStream::parse(b"<data-stream-collection><component id='x'><Benchmark id='b'>").err().unwrap().to_string();
    assert!(e.contains("unclosed element <Benchmark>"), "{e}");
    let e = kensa_cis::DataStream::parse(b"<html><body/></html>").err().unwrap().to_string();
    assert!(e.contains("root element <html>"), "{e}");
    let e = kensa_cis::DataStream::parse(b"<a><b x='1' x='2'></a>").err().unwrap().to_string();
    assert!(e.contains("malformed XML at byte"), "{e}");
    let deep = "<a>".repeat(10_000);
    assert!(kensa_cis::DataStream::parse(deep.as_bytes()).is_err());
    let ds = kensa_cis::DataStream::parse(DS.as_bytes()).unwrap();
    let e = kensa_cis::scan(&ds, &kensa_cis::ScanOptions { profile: "nope".into(), ..Default::default() }, kensa_fs::Root::dir(tree("022", false).path()).unwrap(), false).err().unwrap().to_string();
    assert!(e.contains("profile \"nope\" is not in benchmark xccdf_t_benchmark_T"), "{e}");
    // A benchmark profile extending itself.
    let looped = DS.replace(r#"<Profile id="xccdf_t_profile_base">"#, r#"<Profile id="xccdf_t_profile_base" extends="xccdf_t_profile_strict">"#);
    let ds = kensa_cis::DataStream::parse(looped.as_bytes()).unwrap();
    let e = kensa_cis::scan(&ds, &kensa_cis::ScanOptions { profile: "base".into(), ..Default::default() }, kensa_fs::Root::dir(tree("022", false).path()).unwrap(), false).err().unwrap().to_string();
    assert!(e.contains("extends loop"), "{e}");
}

#[test]
fn pattern_walks_stop_in_symlink_loops_and_bad_patterns_only_fail_their_rule() {
    // /etc/loop -> /etc: a pattern walk below /etc must end (bounded depth), not hang.
    let looped = DS.replace("<ind:filepath>/etc/profile</ind:filepath>", r#"<ind:filepath operation="pattern match">^/etc/.*profile$</ind:filepath>"#);
    let ds = kensa_cis::DataStream::parse(looped.as_bytes()).unwrap();
    let t = tree("077", false);
    std::os::unix::fs::symlink("/etc", t.path().join("etc/loop")).unwrap();
    let opts = kensa_cis::ScanOptions { profile: "base".into(), ..Default::default() };
    let r = kensa_cis::scan(&ds, &opts, kensa_fs::Root::dir(t.path()).unwrap(), false).unwrap();
    let umask = r.rules.iter().find(|x| x.rule_id.ends_with("umask")).unwrap();
    let items = umask.checks[0].tests[0].items.len();
    assert!(items >= 2, "found /etc/profile and /etc/loop/profile: {items}");
    // Two or more matches: the count test (exactly one umask line) fails.
    assert_eq!(umask.result, "fail");

    // An invalid pattern is an error for its rule only.
    let bad = DS.replace(r"^\s*umask\s+(\d+)\s*$", r"^(umask");
    let ds = kensa_cis::DataStream::parse(bad.as_bytes()).unwrap();
    let r = kensa_cis::scan(&ds, &opts, kensa_fs::Root::dir(tree("077", false).path()).unwrap(), false).unwrap();
    let res: BTreeMap<_, _> = r.rules.iter().map(|x| (x.rule_id.trim_start_matches("xccdf_t_rule_"), x.result.as_str())).collect();
    assert_eq!(res["umask"], "error");
    assert_eq!(res["not_nginx"], "pass");
    let msg = &r.rules.iter().find(|x| x.rule_id.ends_with("umask")).unwrap().checks[0].tests[0].messages;
    assert!(msg.iter().any(|m| m.contains("oval:t:obj:umask") && m.contains("invalid pattern")), "{msg:?}");
}
