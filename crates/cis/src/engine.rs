//! XCCDF evaluation: profile resolution, rule selection, CPE applicability, checks, scoring.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use kensa_fs::Root;
use serde::Serialize;

use crate::oval::{Evaluator, OvalResult, TestEvidence};
use crate::probes::ProbeContext;
use crate::xccdf::{self, Benchmark, CheckTree, CpeExpr, DataStream, Profile, ResolvedProfile, OCIL_SYSTEM, OVAL_SYSTEM};
use crate::xml::Node;
use crate::Error;

#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Profile id (full `xccdf_..._profile_X` or the short `X`).
    pub profile: String,
    /// Benchmark id when the datastream has several (default: the first).
    pub benchmark: Option<String>,
    /// XCCDF tailoring file content.
    pub tailoring: Option<Vec<u8>>,
    /// How many collected items to keep per test in the report.
    pub max_items_per_test: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchmarkInfo {
    pub id: String,
    pub title: String,
    pub profiles: Vec<ProfileInfo>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileInfo {
    pub id: String,
    pub title: String,
    pub rule_count: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub benchmark: IdTitle,
    pub profile: IdTitle,
    pub target: String,
    pub started_at: String,
    pub ended_at: String,
    pub rules: Vec<RuleReport>,
    /// The XCCDF default model's score (urn:xccdf:scoring:default), as `scores[0]`.
    pub score: f64,
    /// The score under each XCCDF 1.2 scoring model (§7.3): default, flat, flat-unweighted,
    /// absolute.
    pub scores: Vec<Score>,
    /// Count per result value.
    pub summary: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Scoring model URI, e.g. `urn:xccdf:scoring:flat`.
    pub system: String,
    pub score: f64,
    pub maximum: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdTitle {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleReport {
    pub rule_id: String,
    pub title: String,
    pub severity: String,
    pub result: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rationale: String,
    /// The rule's check has `multi-check="true"` without a definition name: `checks` holds one
    /// entry per OVAL definition of the referenced document (OpenSCAP writes one rule-result per
    /// definition), in OpenSCAP's order; `result` is the first one's, the result OpenSCAP scores.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multi_check: bool,
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub system: String,
    pub href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_title: Option<String>,
    pub result: String,
    /// External variables passed to the check (value id -> value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<(String, String)>,
    /// The OVAL tests evaluated for this definition, with what they collected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<Rc<TestEvidence>>,
}

/// Benchmarks and profiles of a datastream, with the number of rules each profile selects.
pub fn list_profiles(ds: &DataStream) -> Result<Vec<BenchmarkInfo>, Error> {
    let mut out = Vec::new();
    for b in ds.benchmarks() {
        let bm = Benchmark::from_node(b)?;
        let mut profiles = Vec::new();
        for p in &bm.profiles {
            let rp = xccdf::resolve_profile(&bm.profiles, &p.id)?;
            let sel = selection(&bm, &rp);
            profiles.push(ProfileInfo { id: p.id.clone(), title: p.title.clone(), rule_count: sel.iter().filter(|&&s| s).count() });
        }
        out.push(BenchmarkInfo { id: bm.id.clone(), title: bm.title.clone(), profiles });
    }
    Ok(out)
}

/// Which rules are selected: the profile's `select`s over the content defaults, a rule counting
/// only when every ancestor group is selected too, then `requires` / `conflicts`.
fn selection(bm: &Benchmark, p: &ResolvedProfile) -> Vec<bool> {
    let group_sel: Vec<bool> = bm.groups.iter().map(|g| *p.selects.get(&g.id).unwrap_or(&g.selected)).collect();
    let mut group_eff = vec![true; bm.groups.len()];
    for (i, g) in bm.groups.iter().enumerate() {
        let mut ok = group_sel[i];
        let mut cur = g.parent;
        while let Some(pi) = cur {
            ok &= group_sel[pi];
            cur = bm.groups[pi].parent;
        }
        group_eff[i] = ok;
    }
    let mut rule_sel: Vec<bool> = bm
        .rules
        .iter()
        .map(|r| *p.selects.get(&r.id).unwrap_or(&r.selected) && r.parent.map(|g| group_eff[g]).unwrap_or(true))
        .collect();
    // requires / conflicts (one pass: SSG uses them between rules and groups only shallowly).
    let selected_ids: HashSet<&str> = bm
        .rules
        .iter()
        .zip(&rule_sel)
        .filter(|(_, s)| **s)
        .map(|(r, _)| r.id.as_str())
        .chain(bm.groups.iter().zip(&group_eff).filter(|(_, s)| **s).map(|(g, _)| g.id.as_str()))
        .collect();
    for (i, r) in bm.rules.iter().enumerate() {
        if !rule_sel[i] {
            continue;
        }
        let mut reqs = r.requires.clone();
        let mut confs = r.conflicts.clone();
        let mut cur = r.parent;
        while let Some(g) = cur {
            reqs.extend(bm.groups[g].requires.iter().cloned());
            confs.extend(bm.groups[g].conflicts.iter().cloned());
            cur = bm.groups[g].parent;
        }
        let unmet = reqs.iter().any(|alts| !alts.is_empty() && !alts.iter().any(|a| selected_ids.contains(a.as_str())));
        let conflict = confs.iter().any(|c| selected_ids.contains(c.as_str()));
        if unmet || conflict {
            rule_sel[i] = false;
        }
    }
    rule_sel
}

/// Everything a scan needs while it runs.
struct Run<'a> {
    ds: &'a DataStream,
    ctx: &'a ProbeContext,
    /// One evaluator per OVAL component, keyed by the component node's address.
    evaluators: HashMap<usize, Evaluator<'a, 'a>>,
    cpe_cache: HashMap<String, bool>,
    cpe_items: HashMap<String, (String, String)>,
}

impl<'a> Run<'a> {
    fn evaluator(&mut self, href: &str) -> Result<&mut Evaluator<'a, 'a>, String> {
        let comp: &'a Node = self.ds.resolve_href(href).ok_or_else(|| format!("check content {href:?} is not in the datastream"))?;
        let key = comp as *const Node as usize;
        if !self.evaluators.contains_key(&key) {
            let ev = Evaluator::new(comp, self.ctx).map_err(|e| format!("{href}: {e}"))?;
            self.evaluators.insert(key, ev);
        }
        Ok(self.evaluators.get_mut(&key).unwrap())
    }

    /// Whether a CPE name applies to the target (its OVAL check in the CPE dictionary is true).
    fn cpe_name(&mut self, name: &str) -> bool {
        if let Some(&r) = self.cpe_cache.get(name) {
            return r;
        }
        let r = match self.cpe_items.get(name).cloned() {
            Some((href, def)) => match self.evaluator(&href) {
                Ok(ev) => ev.definition(&def) == OvalResult::True,
                Err(_) => false,
            },
            // A CPE name without a check cannot be shown to apply.
            None => false,
        };
        self.cpe_cache.insert(name.to_string(), r);
        r
    }

    fn cpe_expr(&mut self, e: &CpeExpr) -> bool {
        match e {
            CpeExpr::Fact(n) => self.cpe_name(n),
            CpeExpr::Logical { and, negate, children } => {
                let vals: Vec<bool> = children.iter().map(|c| self.cpe_expr(c)).collect();
                let v = if *and { vals.iter().all(|&b| b) } else { vals.iter().any(|&b| b) };
                v != *negate
            }
        }
    }

    /// A platform reference: `#id` of a CPE applicability-language platform, or a CPE name.
    fn platform(&mut self, bm: &Benchmark, idref: &str) -> bool {
        if let Some(id) = idref.strip_prefix('#') {
            match bm.cpe_platforms.get(id).cloned() {
                Some(expr) => self.cpe_expr(&expr),
                None => false,
            }
        } else {
            self.cpe_name(idref)
        }
    }

    fn platforms_ok(&mut self, bm: &Benchmark, platforms: &[String]) -> bool {
        platforms.is_empty() || platforms.iter().any(|p| self.platform(bm, p))
    }
}

fn xccdf_from_oval(r: OvalResult) -> &'static str {
    match r {
        OvalResult::True => "pass",
        OvalResult::False => "fail",
        OvalResult::Unknown => "unknown",
        OvalResult::Error => "error",
        OvalResult::NotEvaluated => "notchecked",
        OvalResult::NotApplicable => "notapplicable",
    }
}

fn negate_result(r: &'static str, negate: bool) -> &'static str {
    match (negate, r) {
        (true, "pass") => "fail",
        (true, "fail") => "pass",
        _ => r,
    }
}

/// The test ids under a definition in document order (following extend_definition), for evidence.
fn definition_tests<'a>(ev: &Evaluator<'a, '_>, def: &str, out: &mut Vec<String>, seen: &mut HashSet<String>) {
    if !seen.insert(def.to_string()) || seen.len() > 10_000 {
        return;
    }
    let Some(d) = ev.doc.get(def) else { return };
    fn walk<'a>(ev: &Evaluator<'a, '_>, c: &Node, out: &mut Vec<String>, seen: &mut HashSet<String>, depth: usize) {
        if depth > 64 {
            return;
        }
        for ch in &c.children {
            match ch.name {
                "criteria" => walk(ev, ch, out, seen, depth + 1),
                "criterion" => out.push(ch.attr("test_ref").unwrap_or("").to_string()),
                "extend_definition" => definition_tests(ev, ch.attr("definition_ref").unwrap_or(""), out, seen),
                _ => {}
            }
        }
    }
    for c in d.children_named("criteria") {
        walk(ev, c, out, seen, 0);
    }
}

/// Scans `root` with one profile of the datastream's benchmark.
pub fn scan(ds: &DataStream, opts: &ScanOptions, root: Root, live: bool) -> Result<Report, Error> {
    let ctx = ProbeContext::new(root, live);
    scan_with(ds, opts, &ctx)
}

/// [`scan`] with a prepared probe context (e.g. a different rpm database reader).
pub fn scan_with(ds: &DataStream, opts: &ScanOptions, ctx: &ProbeContext) -> Result<Report, Error> {
    let started_at = now_rfc3339();
    let nodes = ds.benchmarks();
    let bnode = match &opts.benchmark {
        Some(id) => nodes.into_iter().find(|b| b.attr("id") == Some(id.as_str())).ok_or_else(|| Error::Usage(format!("benchmark {id} is not in the datastream")))?,
        None => nodes.into_iter().next().ok_or_else(|| Error::Content("no benchmark".into()))?,
    };
    let bm = Benchmark::from_node(bnode)?;
    let mut all_profiles: Vec<Profile> = bm.profiles.clone();
    if let Some(t) = &opts.tailoring {
        all_profiles.extend(xccdf::parse_tailoring(t)?);
    }
    let pid = all_profiles
        .iter()
        .rev()
        .find(|p| p.id == opts.profile || p.id.ends_with(&format!("_profile_{}", opts.profile)))
        .map(|p| p.id.clone())
        .ok_or_else(|| Error::Usage(format!("profile {:?} is not in benchmark {} (see `kensa cis profiles`)", opts.profile, bm.id)))?;
    let profile = xccdf::resolve_profile(&all_profiles, &pid)?;
    let selected = selection(&bm, &profile);

    // Effective values: set-value, then refine-value's selector, then the default.
    let value_of = |id: &str| -> Option<String> {
        if let Some(v) = profile.set_values.get(id) {
            return Some(v.clone());
        }
        let v = bm.values.get(id)?;
        if let Some(sel) = profile.refine_values.get(id) {
            if let Some(x) = v.selected(sel) {
                return Some(x.to_string());
            }
        }
        v.default_value().map(str::to_string)
    };

    let mut cpe_items = HashMap::new();
    for dict in ds.cpe_dictionaries() {
        for item in dict.children_named("cpe-item") {
            if let (Some(name), Some(check)) = (item.attr("name"), item.children_named("check").find(|c| c.attr("system") == Some(OVAL_SYSTEM))) {
                cpe_items.insert(name.to_string(), (check.attr("href").unwrap_or("").to_string(), check.text.trim().to_string()));
            }
        }
    }
    let mut run = Run { ds, ctx, evaluators: HashMap::new(), cpe_cache: HashMap::new(), cpe_items };
    let benchmark_applies = run.platforms_ok(&bm, &bm.platforms);
    let max_items = opts.max_items_per_test.unwrap_or(50);

    let mut group_applies: HashMap<usize, bool> = HashMap::new();
    let mut rules = Vec::new();
    for (ri, rule) in bm.rules.iter().enumerate() {
        let refine = profile.refine_rules.get(&rule.id);
        let severity = refine.and_then(|r| r.severity.clone()).unwrap_or_else(|| rule.severity.clone());
        let role = refine.and_then(|r| r.role.clone()).unwrap_or_else(|| rule.role.clone());
        // Scores use the rule's own weight, not a refine-rule weight: OpenSCAP 1.3 does the same (it
        // writes the refined weight into rule-result but scores with the rule's), and a score
        // that differs from the reference scanner's for the same content would only confuse.
        let weight = rule.weight;
        let mut report = RuleReport { rule_id: rule.id.clone(), title: rule.title.clone(), severity, result: String::new(), rationale: rule.rationale.clone(), multi_check: false, checks: Vec::new() };
        if !selected[ri] {
            report.result = "notselected".into();
            report.rationale.clear();
            rules.push((report, weight, role));
            continue;
        }
        // Applicability: the benchmark, every ancestor group and the rule itself.
        let mut applies = benchmark_applies;
        let mut cur = rule.parent;
        while let (true, Some(g)) = (applies, cur) {
            let ok = match group_applies.get(&g) {
                Some(&v) => v,
                None => {
                    let v = run.platforms_ok(&bm, &bm.groups[g].platforms);
                    group_applies.insert(g, v);
                    v
                }
            };
            applies &= ok;
            cur = bm.groups[g].parent;
        }
        if applies {
            applies = run.platforms_ok(&bm, &rule.platforms);
        }
        if !applies {
            report.result = "notapplicable".into();
            rules.push((report, weight, role));
            continue;
        }
        if role == "unchecked" {
            report.result = "notchecked".into();
            rules.push((report, weight, role));
            continue;
        }
        let selector = refine.and_then(|r| r.selector.clone()).unwrap_or_default();
        let (result, multi) = eval_checks(&mut run, &rule.checks, &selector, &value_of, max_items, &mut report.checks);
        report.multi_check = multi;
        // An unscored rule reports its check as informational (XCCDF 1.2 role="unscored").
        let result = if role == "unscored" && matches!(result, "pass" | "fail") { "informational" } else { result };
        report.result = result.to_string();
        rules.push((report, weight, role));
    }

    let scores = scores(&bm, &rules);
    let score = scores[0].score;
    let mut summary = std::collections::BTreeMap::new();
    for (r, _, _) in &rules {
        *summary.entry(r.result.clone()).or_insert(0) += 1;
    }
    let ptitle = all_profiles.iter().rev().find(|p| p.id == pid).map(|p| p.title.clone()).unwrap_or_default();
    Ok(Report {
        benchmark: IdTitle { id: bm.id.clone(), title: bm.title.clone() },
        profile: IdTitle { id: pid, title: ptitle },
        target: ctx.root.describe(),
        started_at,
        ended_at: now_rfc3339(),
        rules: rules.into_iter().map(|(r, _, _)| r).collect(),
        score,
        scores,
        summary,
    })
}

/// Evaluates a rule's checks: the first OVAL check (honouring a refine-rule selector; a
/// complex-check when present), OCIL-only rules are `notchecked`. Also says whether the check
/// was a multi-check (one result per OVAL definition).
fn eval_checks(run: &mut Run, checks: &[CheckTree], selector: &str, value_of: &dyn Fn(&str) -> Option<String>, max_items: usize, out: &mut Vec<CheckReport>) -> (&'static str, bool) {
    if let Some(cx) = checks.iter().find(|c| matches!(c, CheckTree::Complex { .. })) {
        // multi-check is ignored inside a complex-check (XCCDF 1.2 §7.2.3.5.3).
        return (eval_tree(run, cx, value_of, max_items, out, false), false);
    }
    let candidates: Vec<&CheckTree> = checks.iter().filter(|c| matches!(c, CheckTree::Check(ch) if ch.selector == selector)).collect();
    let candidates = if candidates.is_empty() { checks.iter().filter(|c| matches!(c, CheckTree::Check(ch) if ch.selector.is_empty())).collect() } else { candidates };
    if let Some(c) = candidates.iter().find(|c| matches!(c, CheckTree::Check(ch) if ch.system == OVAL_SYSTEM)) {
        let multi = matches!(c, CheckTree::Check(ch) if ch.multi_check && ch.refs.iter().any(|r| r.name.is_none()));
        let before = out.len();
        let r = eval_tree(run, c, value_of, max_items, out, true);
        // A multi-check that resolved to its OVAL document yields one result per definition.
        let multi = multi && out[before..].iter().all(|c| c.definition.is_some()) && out.len() > before;
        return (r, multi);
    }
    if let Some(CheckTree::Check(c)) = candidates.iter().find(|c| matches!(c, CheckTree::Check(ch) if ch.system == OCIL_SYSTEM)) {
        out.push(CheckReport { system: c.system.clone(), href: c.refs.first().map(|r| r.href.clone()).unwrap_or_default(), definition: c.refs.first().and_then(|r| r.name.clone()), definition_title: None, result: "notchecked".into(), exports: vec![], tests: vec![] });
    }
    ("notchecked", false)
}

/// `top_level`: the check is the rule's own (not inside a complex-check), where multi-check applies.
fn eval_tree(run: &mut Run, t: &CheckTree, value_of: &dyn Fn(&str) -> Option<String>, max_items: usize, out: &mut Vec<CheckReport>, top_level: bool) -> &'static str {
    match t {
        CheckTree::Complex { operator_and, negate, children } => {
            let rs: Vec<&'static str> = children.iter().map(|c| eval_tree(run, c, value_of, max_items, out, false)).collect();
            negate_result(combine_xccdf(*operator_and, &rs), *negate)
        }
        CheckTree::Check(c) => {
            if c.system != OVAL_SYSTEM {
                return "notchecked";
            }
            let mut exports = Vec::new();
            let mut results = Vec::new();
            for cref in &c.refs {
                if run.ds.resolve_href(&cref.href).is_none() {
                    // Content outside the datastream (e.g. a remote OVAL feed): not checked,
                    // as OpenSCAP does without --fetch-remote-resources.
                    out.push(CheckReport { system: c.system.clone(), href: cref.href.clone(), definition: cref.name.clone(), definition_title: None, result: "notchecked".into(), exports: vec![], tests: vec![] });
                    results.push("notchecked");
                    continue;
                }
                let ev = match run.evaluator(&cref.href) {
                    Ok(ev) => ev,
                    Err(e) => {
                        out.push(CheckReport { system: c.system.clone(), href: cref.href.clone(), definition: cref.name.clone(), definition_title: None, result: "error".into(), exports: vec![], tests: vec![Rc::new(TestEvidence { test_id: String::new(), comment: e, result: OvalResult::Error, object_id: String::new(), flag: crate::oval::Flag::Error, items: vec![], messages: vec![] })] });
                        results.push("error");
                        continue;
                    }
                };
                for (value_id, var) in &c.exports {
                    if let Some(v) = value_of(value_id) {
                        ev.set_external(var, vec![v.clone()]);
                        exports.push((value_id.clone(), v));
                    }
                }
                let multi = top_level && c.multi_check && cref.name.is_none();
                let defs: Vec<String> = match &cref.name {
                    Some(n) => vec![n.clone()],
                    // No name: every definition of the component, ANDed (XCCDF 1.2 §7.2.3.5.3);
                    // with multi-check, one result each, in the order OpenSCAP reports them
                    // (definition ids descending, byte-wise).
                    None if multi => {
                        let mut d = ev.doc_definitions();
                        d.sort_unstable_by(|a, b| b.cmp(a));
                        d
                    }
                    None => ev.doc_definitions(),
                };
                let mut rs = Vec::new();
                for d in &defs {
                    let r = ev.definition(d);
                    let mut test_ids = Vec::new();
                    definition_tests(ev, d, &mut test_ids, &mut HashSet::new());
                    let tests = test_ids
                        .iter()
                        .filter_map(|t| ev.test_evidence(t))
                        .map(|e| {
                            if e.items.len() > max_items {
                                let mut e2 = (*e).clone();
                                e2.messages.push(format!("{} more items not shown", e.items.len() - max_items));
                                e2.items.truncate(max_items);
                                Rc::new(e2)
                            } else {
                                e
                            }
                        })
                        .collect();
                    let xr = negate_result(xccdf_from_oval(r), c.negate);
                    out.push(CheckReport { system: c.system.clone(), href: cref.href.clone(), definition: Some(d.clone()), definition_title: ev.definition_title(d), result: xr.to_string(), exports: exports.clone(), tests });
                    rs.push(xr);
                }
                // multi-check: the rule's result is the first rule-result OpenSCAP writes, which is
                // also the one its scoring reads.
                results.push(if multi { rs.first().copied().unwrap_or("unknown") } else { combine_xccdf(true, &rs) });
                // The first check-content-ref that resolves is the one used (XCCDF 1.2 §7.2.3.5).
                break;
            }
            results.last().copied().unwrap_or("error")
        }
    }
}

/// XCCDF's AND / OR over check results (Table 12 of the XCCDF 1.2 specification).
fn combine_xccdf(and: bool, rs: &[&'static str]) -> &'static str {
    if rs.is_empty() {
        return "unknown";
    }
    // AND is decided by a fail, OR by a pass; otherwise the same order of precedence applies.
    let (decisive, otherwise) = if and { ("fail", "pass") } else { ("pass", "fail") };
    if let Some(r) = [decisive, "error", "unknown", "notchecked"].into_iter().find(|r| rs.contains(r)) {
        return r;
    }
    if rs.iter().all(|r| *r == "notapplicable") {
        "notapplicable"
    } else {
        otherwise
    }
}

pub const SCORING_DEFAULT: &str = "urn:xccdf:scoring:default";
pub const SCORING_FLAT: &str = "urn:xccdf:scoring:flat";
pub const SCORING_FLAT_UNWEIGHTED: &str = "urn:xccdf:scoring:flat-unweighted";
pub const SCORING_ABSOLUTE: &str = "urn:xccdf:scoring:absolute";

/// Whether a rule result counts in scoring, and as a pass (XCCDF 1.2 §7.3: pass/fixed score;
/// fail/error/unknown count against; other results and unscored rules do not count).
fn scored(result: &str, role: &str) -> Option<bool> {
    if role == "unscored" {
        return None;
    }
    match result {
        "pass" | "fixed" => Some(true),
        "fail" | "error" | "unknown" => Some(false),
        _ => None,
    }
}

/// Scores under the four XCCDF 1.2 models (§7.3), rounded to 1/100 like the default score has
/// always been; `[0]` is the default model.
fn scores(bm: &Benchmark, rules: &[(RuleReport, f64, String)]) -> Vec<Score> {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let (mut flat, mut flat_max, mut unweighted, mut unweighted_max) = (0.0, 0.0, 0.0, 0.0);
    for (r, w, role) in rules {
        if let Some(pass) = scored(&r.result, role) {
            flat_max += w;
            unweighted_max += 1.0;
            if pass {
                flat += w;
                unweighted += 1.0;
            }
        }
    }
    let absolute = if flat == flat_max { 1.0 } else { 0.0 };
    vec![
        Score { system: SCORING_DEFAULT.into(), score: default_score(bm, rules), maximum: 100.0 },
        Score { system: SCORING_FLAT.into(), score: round(flat), maximum: round(flat_max) },
        Score { system: SCORING_FLAT_UNWEIGHTED.into(), score: unweighted, maximum: unweighted_max },
        // 1 when every counted rule passed; the maximum is the flat model's, as OpenSCAP writes it.
        Score { system: SCORING_ABSOLUTE.into(), score: absolute, maximum: round(flat_max) },
    ]
}

/// The XCCDF default scoring model (urn:xccdf:scoring:default): rules score 100 on pass/fixed and
/// 0 on fail/error/unknown; rules with other results do not count. A group's score is the
/// weighted mean of its counted children; the benchmark's likewise.
fn default_score(bm: &Benchmark, rules: &[(RuleReport, f64, String)]) -> f64 {
    fn node(bm: &Benchmark, rules: &[(RuleReport, f64, String)], items: &[(bool, usize)]) -> Option<f64> {
        let mut sum = 0.0;
        let mut wsum = 0.0;
        let mut counted = 0;
        for &(is_rule, i) in items {
            let (score, weight) = if is_rule {
                let (r, w, role) = &rules[i];
                match scored(&r.result, role) {
                    Some(true) => (100.0, *w),
                    Some(false) => (0.0, *w),
                    None => continue,
                }
            } else {
                match node(bm, rules, &bm.groups[i].items) {
                    Some(s) => (s, bm.groups[i].weight),
                    None => continue,
                }
            };
            counted += 1;
            sum += score * weight;
            wsum += weight;
        }
        if counted == 0 {
            None
        } else if wsum == 0.0 {
            Some(0.0)
        } else {
            Some(sum / wsum)
        }
    }
    let s = node(bm, rules, &bm.items).unwrap_or(0.0);
    (s * 100.0).round() / 100.0
}

/// Current UTC time as RFC 3339 (seconds).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
