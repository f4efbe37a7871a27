//! OVAL 5.11 evaluation: definitions, tests, objects (with sets and filters), states, variables.
//!
//! Evaluation is lazy and memoised: only definitions a selected rule (or a CPE check) names are
//! evaluated, each object is collected once. Results follow the OVAL truth tables; a missing probe
//! or an error inside one object gives `unknown`/`error` for the tests that use it, never a crash.

use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use crate::datetime;
use crate::probes::{self, ProbeContext};
use crate::value;
use crate::xml::Node;

/// OVAL result values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OvalResult {
    True,
    False,
    Unknown,
    Error,
    NotEvaluated,
    NotApplicable,
}

impl OvalResult {
    pub fn negate(self, negate: bool) -> Self {
        match (negate, self) {
            (true, OvalResult::True) => OvalResult::False,
            (true, OvalResult::False) => OvalResult::True,
            _ => self,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OvalResult::True => "true",
            OvalResult::False => "false",
            OvalResult::Unknown => "unknown",
            OvalResult::Error => "error",
            OvalResult::NotEvaluated => "not evaluated",
            OvalResult::NotApplicable => "not applicable",
        }
    }
}

/// The OVAL truth tables' shared tail: when no result decides, an error, then an unknown, then a
/// not-evaluated result wins over `otherwise`.
fn undecided(e: usize, u: usize, ne: usize, otherwise: OvalResult) -> OvalResult {
    if e > 0 {
        OvalResult::Error
    } else if u > 0 {
        OvalResult::Unknown
    } else if ne > 0 {
        OvalResult::NotEvaluated
    } else {
        otherwise
    }
}

/// Combines results with an OVAL operator (AND, OR, ONE, XOR).
pub fn combine(op: &str, results: &[OvalResult]) -> OvalResult {
    use OvalResult::*;
    let count = |r: OvalResult| results.iter().filter(|&&x| x == r).count();
    let (t, f, e, u, ne, na) = (count(True), count(False), count(Error), count(Unknown), count(NotEvaluated), count(NotApplicable));
    if results.is_empty() || na == results.len() {
        return NotApplicable;
    }
    match op.to_ascii_uppercase().as_str() {
        "OR" if t > 0 => True,
        "OR" => undecided(e, u, ne, False),
        "ONE" if t > 1 => False,
        "ONE" if t == 1 && e + u + ne == 0 => True,
        "ONE" => undecided(e, u, ne, False),
        "XOR" => undecided(e, u, ne, if t % 2 == 1 { True } else { False }),
        _ if f > 0 => False,
        _ => undecided(e, u, ne, True),
    }
}

/// Result of `check` (all / at least one / only one / none satisfy) over per-item results.
pub fn check_over(check: &str, results: &[OvalResult]) -> OvalResult {
    use OvalResult::*;
    let count = |r: OvalResult| results.iter().filter(|&&x| x == r).count();
    let (t, f, e, u, ne) = (count(True), count(False), count(Error), count(Unknown), count(NotEvaluated));
    match check {
        "at least one" if t > 0 => True,
        "at least one" => undecided(e, u, ne, False),
        "only one" if t > 1 => False,
        "only one" if t == 1 && e + u + ne == 0 => True,
        "only one" => undecided(e, u, ne, False),
        "none satisfy" | "none exist" if t > 0 => False,
        "none satisfy" | "none exist" => undecided(e, u, ne, True),
        _ if f > 0 => False,
        _ => undecided(e, u, ne, True),
    }
}

/// One collected item: named fields, each possibly multi-valued.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Item {
    pub fields: Vec<(&'static str, Vec<String>)>,
}

impl Item {
    pub fn new() -> Self {
        Item::default()
    }
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.fields.push((name, vec![value.into()]));
        self
    }
    pub fn set_many(&mut self, name: &'static str, values: Vec<String>) -> &mut Self {
        self.fields.push((name, values));
        self
    }
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_slice())
    }
}

/// The flag of a collected object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Complete,
    DoesNotExist,
    Error,
    NotCollected,
    Incomplete,
    /// The object cannot exist on this kind of target (e.g. the running kernel of an offline tree).
    NotApplicable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Collected {
    pub flag: Flag,
    pub items: Vec<Rc<Item>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

impl Collected {
    pub fn items(items: Vec<Item>) -> Self {
        let flag = if items.is_empty() { Flag::DoesNotExist } else { Flag::Complete };
        Collected { flag, items: items.into_iter().map(Rc::new).collect(), messages: Vec::new() }
    }
    pub fn error(msg: impl Into<String>) -> Self {
        Collected { flag: Flag::Error, items: Vec::new(), messages: vec![msg.into()] }
    }
    pub fn not_applicable(msg: impl Into<String>) -> Self {
        Collected { flag: Flag::NotApplicable, items: Vec::new(), messages: vec![msg.into()] }
    }
    pub fn not_collected(msg: impl Into<String>) -> Self {
        Collected { flag: Flag::NotCollected, items: Vec::new(), messages: vec![msg.into()] }
    }
}

/// The values of an object entity (literal or from a variable) with its operation.
#[derive(Debug, Clone)]
pub struct EntitySpec {
    pub operation: String,
    pub datatype: String,
    pub values: Vec<String>,
    pub var_check: String,
    pub nil: bool,
}

impl EntitySpec {
    /// Whether `candidate` matches. Multiple values (from a variable): var_check decides (OVAL
    /// default `all`; for object entities any matching value selects the item).
    pub fn matches(&self, candidate: &str) -> Result<bool, String> {
        if self.values.is_empty() {
            return Ok(false);
        }
        let mut hits = 0;
        for v in &self.values {
            if value::compare(&self.operation, &self.datatype, candidate, v)? {
                hits += 1;
            }
        }
        Ok(match self.var_check.as_str() {
            "all" if self.operation == "not equal" => hits == self.values.len(),
            "none satisfy" => hits == 0,
            "only one" => hits == 1,
            _ => hits > 0,
        })
    }

    pub fn is_equals(&self) -> bool {
        self.operation == "equals" || self.operation.is_empty()
    }
}

/// Evidence recorded for a definition: the tests it ran and what they saw.
#[derive(Debug, Clone, Serialize)]
pub struct TestEvidence {
    pub test_id: String,
    pub comment: String,
    pub result: OvalResult,
    pub object_id: String,
    pub flag: Flag,
    pub items: Vec<Rc<Item>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

/// One OVAL definitions document with its id index.
pub struct OvalDoc<'a> {
    by_id: HashMap<&'a str, &'a Node>,
    definitions: Vec<&'a str>,
}

impl<'a> OvalDoc<'a> {
    pub fn new(root: &'a Node) -> Result<Self, String> {
        if root.name != "oval_definitions" {
            return Err(format!("expected <oval_definitions>, found <{}>", root.name));
        }
        let mut by_id = HashMap::new();
        let mut definitions = Vec::new();
        for section in &root.children {
            if matches!(section.name, "definitions" | "tests" | "objects" | "states" | "variables") {
                for n in &section.children {
                    if let Some(id) = n.attr("id") {
                        by_id.insert(id, n);
                        if n.name == "definition" {
                            definitions.push(id);
                        }
                    }
                }
            }
        }
        Ok(OvalDoc { by_id, definitions })
    }
    pub fn get(&self, id: &str) -> Option<&'a Node> {
        self.by_id.get(id).copied()
    }
}

/// Evaluates one OVAL document against a target.
pub struct Evaluator<'a, 'c> {
    pub doc: OvalDoc<'a>,
    pub ctx: &'c ProbeContext,
    /// External variable values (from XCCDF check-export).
    pub external: HashMap<String, Vec<String>>,
    defs: HashMap<String, OvalResult>,
    tests: HashMap<String, (OvalResult, Rc<TestEvidence>)>,
    objects: HashMap<String, Rc<Collected>>,
    vars: HashMap<String, Result<Rc<Vec<String>>, String>>,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl<'a, 'c> Evaluator<'a, 'c> {
    pub fn new(root: &'a Node, ctx: &'c ProbeContext) -> Result<Self, String> {
        Ok(Evaluator { doc: OvalDoc::new(root)?, ctx, external: HashMap::new(), defs: HashMap::new(), tests: HashMap::new(), objects: HashMap::new(), vars: HashMap::new(), depth: 0 })
    }

    /// Sets external variables; clears cached results that may depend on them when they change.
    pub fn set_external(&mut self, id: &str, values: Vec<String>) {
        if self.external.get(id) != Some(&values) {
            if self.external.contains_key(id) {
                // A different binding of the same variable: results computed so far may differ.
                self.defs.clear();
                self.tests.clear();
                self.objects.clear();
                self.vars.clear();
            }
            self.external.insert(id.to_string(), values);
        }
    }

    /// Ids of every definition in the document.
    pub fn doc_definitions(&self) -> Vec<String> {
        self.doc.definitions.iter().map(|s| s.to_string()).collect()
    }

    pub fn definition_title(&self, id: &str) -> Option<String> {
        let d = self.doc.get(id)?;
        d.child("metadata").and_then(|m| m.child_text("title")).map(str::to_string)
    }

    /// Evaluates a definition by id.
    pub fn definition(&mut self, id: &str) -> OvalResult {
        if let Some(r) = self.defs.get(id) {
            return *r;
        }
        let r = match self.doc.get(id) {
            None => OvalResult::Error,
            Some(d) if d.name != "definition" => OvalResult::Error,
            Some(d) => {
                if self.depth > MAX_DEPTH {
                    return OvalResult::Error;
                }
                self.depth += 1;
                let r = match d.child("criteria") {
                    Some(c) => self.criteria(c),
                    None => OvalResult::Unknown,
                };
                self.depth -= 1;
                r
            }
        };
        self.defs.insert(id.to_string(), r);
        r
    }

    fn criteria(&mut self, c: &'a Node) -> OvalResult {
        let mut results = Vec::new();
        for ch in &c.children {
            let r = match ch.name {
                "criteria" => self.criteria(ch),
                "criterion" => {
                    let r = self.test(ch.attr("test_ref").unwrap_or("")).0;
                    r.negate(ch.attr("negate") == Some("true"))
                }
                "extend_definition" => {
                    let r = self.definition(ch.attr("definition_ref").unwrap_or(""));
                    r.negate(ch.attr("negate") == Some("true"))
                }
                _ => continue,
            };
            results.push(r);
        }
        combine(c.attr("operator").unwrap_or("AND"), &results).negate(c.attr("negate") == Some("true"))
    }

    /// Evaluates a test, returning its result and evidence.
    pub fn test(&mut self, id: &str) -> (OvalResult, Rc<TestEvidence>) {
        if let Some((r, ev)) = self.tests.get(id) {
            return (*r, ev.clone());
        }
        let out = self.test_uncached(id);
        self.tests.insert(id.to_string(), out.clone());
        out
    }

    pub fn test_evidence(&self, id: &str) -> Option<Rc<TestEvidence>> {
        self.tests.get(id).map(|(_, e)| e.clone())
    }

    fn test_uncached(&mut self, id: &str) -> (OvalResult, Rc<TestEvidence>) {
        let mut ev = TestEvidence { test_id: id.to_string(), comment: String::new(), result: OvalResult::Error, object_id: String::new(), flag: Flag::Error, items: Vec::new(), messages: Vec::new() };
        let Some(t) = self.doc.get(id) else {
            ev.messages.push(format!("test {id} is not defined"));
            return (OvalResult::Error, Rc::new(ev));
        };
        ev.comment = t.attr("comment").unwrap_or("").to_string();
        if t.name == "unknown_test" {
            ev.result = OvalResult::Unknown;
            return (OvalResult::Unknown, Rc::new(ev));
        }
        let Some(obj_ref) = t.child("object").and_then(|o| o.attr("object_ref")) else {
            ev.messages.push(format!("<{}> {id} has no object", t.name));
            return (OvalResult::Error, Rc::new(ev));
        };
        ev.object_id = obj_ref.to_string();
        let collected = self.object(obj_ref);
        ev.flag = collected.flag;
        ev.items = collected.items.clone();
        ev.messages.extend(collected.messages.iter().cloned());
        let result = match collected.flag {
            Flag::Error => OvalResult::Error,
            Flag::NotCollected => OvalResult::Unknown,
            Flag::NotApplicable => OvalResult::NotApplicable,
            _ => {
                let states: Vec<&str> = t.children_named("state").filter_map(|s| s.attr("state_ref")).collect();
                let n = collected.items.len();
                let existence = match t.attr("check_existence").unwrap_or("at_least_one_exists") {
                    "all_exist" => {
                        if n > 0 {
                            OvalResult::True
                        } else {
                            OvalResult::False
                        }
                    }
                    "any_exist" => OvalResult::True,
                    "none_exist" => {
                        if n == 0 {
                            OvalResult::True
                        } else {
                            OvalResult::False
                        }
                    }
                    "only_one_exists" => {
                        if n == 1 {
                            OvalResult::True
                        } else {
                            OvalResult::False
                        }
                    }
                    _ => {
                        if n > 0 {
                            OvalResult::True
                        } else {
                            OvalResult::False
                        }
                    }
                };
                let existence = if existence == OvalResult::False && collected.flag == Flag::Incomplete { OvalResult::Unknown } else { existence };
                if existence != OvalResult::True || states.is_empty() || n == 0 {
                    existence
                } else {
                    let state_op = t.attr("state_operator").unwrap_or("AND");
                    let mut per_item = Vec::with_capacity(n);
                    for item in &collected.items {
                        let mut rs = Vec::new();
                        for s in &states {
                            let r = match self.doc.get(s) {
                                Some(sn) => self.state_matches(sn, item),
                                None => {
                                    ev.messages.push(format!("state {s} is not defined"));
                                    OvalResult::Error
                                }
                            };
                            rs.push(r);
                        }
                        per_item.push(combine(state_op, &rs));
                    }
                    check_over(t.attr("check").unwrap_or("all"), &per_item)
                }
            }
        };
        ev.result = result;
        (result, Rc::new(ev))
    }

    /// Whether an item satisfies a state: every entity of the state must match (state `operator`).
    pub fn state_matches(&mut self, state: &'a Node, item: &Item) -> OvalResult {
        let mut rs = Vec::new();
        for ent in &state.children {
            if matches!(ent.name, "notes" | "signature") {
                continue;
            }
            let r = self.entity_matches(ent, item).unwrap_or(OvalResult::Error);
            rs.push(r);
        }
        combine(state.attr("operator").unwrap_or("AND"), &rs)
    }

    fn entity_matches(&mut self, ent: &'a Node, item: &Item) -> Result<OvalResult, String> {
        let spec = match self.entity_spec(ent) {
            Ok(s) => s,
            Err(_) => return Ok(OvalResult::Error),
        };
        let Some(actual) = item.get(ent.name) else {
            // The item lacks this entity (e.g. a subexpression that did not match).
            return Ok(OvalResult::False);
        };
        if actual.is_empty() {
            return Ok(OvalResult::False);
        }
        let mut per_value = Vec::new();
        for a in actual {
            // Each actual value is compared to every expected value; var_check combines those.
            let mut hits = Vec::new();
            for e in &spec.values {
                hits.push(match value::compare(&spec.operation, &spec.datatype, a, e) {
                    Ok(true) => OvalResult::True,
                    Ok(false) => OvalResult::False,
                    Err(_) => OvalResult::Error,
                });
            }
            per_value.push(check_over(if spec.var_check.is_empty() { "all" } else { &spec.var_check }, &hits));
        }
        Ok(check_over(ent.attr("entity_check").unwrap_or("all"), &per_value))
    }

    /// The operation, datatype and expected values of an object or state entity.
    pub fn entity_spec(&mut self, ent: &'a Node) -> Result<EntitySpec, String> {
        let values = match ent.attr("var_ref") {
            Some(v) => (*self.variable(v)?).clone(),
            None => vec![ent.text.to_string()],
        };
        Ok(EntitySpec {
            operation: ent.attr("operation").unwrap_or("equals").to_string(),
            datatype: ent.attr("datatype").unwrap_or("string").to_string(),
            values,
            var_check: ent.attr("var_check").unwrap_or("all").to_string(),
            nil: ent.is_nil(),
        })
    }

    /// Collects an object (memoised).
    pub fn object(&mut self, id: &str) -> Rc<Collected> {
        if let Some(c) = self.objects.get(id) {
            return c.clone();
        }
        let c = Rc::new(match self.doc.get(id) {
            None => Collected::error(format!("object {id} is not defined")),
            Some(_) if self.depth > MAX_DEPTH => Collected::error(format!("object {id}: references nest too deep")),
            Some(o) => {
                self.depth += 1;
                let c = self.collect(o);
                self.depth -= 1;
                c
            }
        });
        self.objects.insert(id.to_string(), c.clone());
        c
    }

    fn collect(&mut self, obj: &'a Node) -> Collected {
        if let Some(set) = obj.child("set") {
            return self.collect_set(set);
        }
        let mut c = probes::collect(self, obj);
        let filters: Vec<&'a Node> = obj.children_named("filter").collect();
        if !filters.is_empty() && matches!(c.flag, Flag::Complete) {
            c = self.apply_filters(c, &filters);
        }
        c
    }

    fn apply_filters(&mut self, mut c: Collected, filters: &[&'a Node]) -> Collected {
        for f in filters {
            let Some(state) = self.doc.get(f.text.trim()) else {
                return Collected::error(format!("filter state {} is not defined", f.text.trim()));
            };
            let include = f.attr("action") == Some("include") || f.attr("filter_action") == Some("include");
            let mut kept = Vec::new();
            for it in c.items.drain(..) {
                let m = self.state_matches(state, &it) == OvalResult::True;
                if m == include {
                    kept.push(it);
                }
            }
            c.items = kept;
        }
        if c.items.is_empty() && c.flag == Flag::Complete {
            c.flag = Flag::DoesNotExist;
        }
        c
    }

    fn collect_set(&mut self, set: &'a Node) -> Collected {
        let mut parts: Vec<Collected> = Vec::new();
        for ch in &set.children {
            match ch.name {
                "object_reference" => {
                    let c = self.object(ch.text.trim());
                    parts.push((*c).clone());
                }
                "set" => parts.push(self.collect_set(ch)),
                _ => {}
            }
        }
        let filters: Vec<&'a Node> = set.children_named("filter").collect();
        for p in parts.iter_mut() {
            if !filters.is_empty() && p.flag == Flag::Complete {
                *p = self.apply_filters(std::mem::replace(p, Collected::items(vec![])), &filters);
            }
        }
        if let Some(p) = parts.iter().find(|p| p.flag == Flag::Error) {
            return p.clone();
        }
        let key = |i: &Item| serde_json::to_string(&i.fields).unwrap_or_default();
        let op = set.attr("set_operator").unwrap_or("UNION");
        let items: Vec<Rc<Item>> = match (op, parts.as_slice()) {
            (_, []) => Vec::new(),
            ("INTERSECTION", [first, rest @ ..]) => first.items.iter().filter(|i| rest.iter().all(|p| p.items.iter().any(|j| key(j) == key(i)))).cloned().collect(),
            ("COMPLEMENT", [first, rest @ ..]) => first.items.iter().filter(|i| !rest.iter().any(|p| p.items.iter().any(|j| key(j) == key(i)))).cloned().collect(),
            _ => {
                let mut seen = std::collections::HashSet::new();
                parts.iter().flat_map(|p| p.items.iter()).filter(|i| seen.insert(key(i))).cloned().collect()
            }
        };
        let flag = if parts.iter().any(|p| p.flag == Flag::NotCollected) {
            Flag::NotCollected
        } else if items.is_empty() {
            Flag::DoesNotExist
        } else {
            Flag::Complete
        };
        Collected { flag, items, messages: parts.iter().flat_map(|p| p.messages.iter().cloned()).collect() }
    }

    /// The values of a variable (memoised).
    pub fn variable(&mut self, id: &str) -> Result<Rc<Vec<String>>, String> {
        if let Some(v) = self.vars.get(id) {
            return v.clone();
        }
        let r = if self.depth > MAX_DEPTH {
            Err(format!("variable {id}: references nest too deep"))
        } else {
            self.depth += 1;
            let r = self.variable_uncached(id).map(Rc::new);
            self.depth -= 1;
            r
        };
        self.vars.insert(id.to_string(), r.clone());
        r
    }

    fn variable_uncached(&mut self, id: &str) -> Result<Vec<String>, String> {
        let Some(v) = self.doc.get(id) else { return Err(format!("variable {id} is not defined")) };
        match v.name {
            "external_variable" => self.external.get(id).cloned().ok_or_else(|| format!("external variable {id} has no value (no XCCDF check-export binds it)")),
            "constant_variable" => Ok(v.children_named("value").map(|c| c.text.to_string()).collect()),
            "local_variable" => {
                let comp = v.children.iter().find(|c| !matches!(c.name, "notes" | "signature")).ok_or_else(|| format!("local_variable {id} has no component"))?;
                self.component(comp)
            }
            other => Err(format!("{id}: <{other}> is not a variable")),
        }
    }

    fn component(&mut self, c: &'a Node) -> Result<Vec<String>, String> {
        let subs = |this: &mut Self| -> Result<Vec<Vec<String>>, String> { c.children.iter().map(|ch| this.component(ch)).collect() };
        Ok(match c.name {
            "literal_component" => vec![c.text.to_string()],
            "variable_component" => (*self.variable(c.attr("var_ref").unwrap_or(""))?).clone(),
            "object_component" => {
                let obj = self.object(c.attr("object_ref").unwrap_or(""));
                if obj.flag == Flag::Error {
                    return Err(format!("object_component: {}", obj.messages.join("; ")));
                }
                let field = c.attr("item_field").unwrap_or("");
                obj.items.iter().flat_map(|i| i.get(field).map(|v| v.to_vec()).unwrap_or_default()).collect()
            }
            "concat" => {
                let parts = subs(self)?;
                let mut acc = vec![String::new()];
                for p in parts {
                    let mut next = Vec::new();
                    for a in &acc {
                        for v in &p {
                            next.push(format!("{a}{v}"));
                        }
                    }
                    acc = next;
                    if acc.len() > 100_000 {
                        return Err("concat: too many values".into());
                    }
                }
                acc
            }
            "arithmetic" => {
                let op = c.attr("arithmetic_operation").unwrap_or("add");
                let parts = subs(self)?;
                let mut acc: Vec<f64> = Vec::new();
                for (k, p) in parts.iter().enumerate() {
                    let nums: Vec<f64> = p.iter().map(|s| s.trim().parse::<f64>().map_err(|_| format!("arithmetic: {s:?} is not a number"))).collect::<Result<_, _>>()?;
                    if k == 0 {
                        acc = nums;
                        continue;
                    }
                    let mut next = Vec::new();
                    for a in &acc {
                        for n in &nums {
                            next.push(match op {
                                "multiply" => a * n,
                                "subtract" => a - n,
                                "divide" => a / n,
                                _ => a + n,
                            });
                        }
                    }
                    acc = next;
                }
                acc.into_iter().map(|f| if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { f.to_string() }).collect()
            }
            "count" => {
                let parts = subs(self)?;
                vec![parts.iter().map(|p| p.len()).sum::<usize>().to_string()]
            }
            "unique" => {
                let mut seen = std::collections::HashSet::new();
                subs(self)?.into_iter().flatten().filter(|v| seen.insert(v.clone())).collect()
            }
            "split" => {
                let d = c.attr("delimiter").unwrap_or("");
                subs(self)?.into_iter().flatten().flat_map(|v| if d.is_empty() { vec![v] } else { v.split(d).map(str::to_string).collect() }).collect()
            }
            "substring" => {
                let start: i64 = c.attr("substring_start").and_then(|s| s.parse().ok()).unwrap_or(1);
                let len: i64 = c.attr("substring_length").and_then(|s| s.parse().ok()).unwrap_or(-1);
                subs(self)?
                    .into_iter()
                    .flatten()
                    .map(|v| {
                        let chars: Vec<char> = v.chars().collect();
                        let s = (start.max(1) - 1) as usize;
                        if s >= chars.len() {
                            return String::new();
                        }
                        let e = if len < 0 { chars.len() } else { (s + len as usize).min(chars.len()) };
                        chars[s..e].iter().collect()
                    })
                    .collect()
            }
            "begin" => {
                let ch = c.attr("character").unwrap_or("");
                subs(self)?.into_iter().flatten().map(|v| if v.starts_with(ch) { v } else { format!("{ch}{v}") }).collect()
            }
            "end" => {
                let ch = c.attr("character").unwrap_or("");
                subs(self)?.into_iter().flatten().map(|v| if v.ends_with(ch) { v } else { format!("{v}{ch}") }).collect()
            }
            "escape_regex" => subs(self)?.into_iter().flatten().map(|v| escape_regex(&v)).collect(),
            "regex_capture" => {
                let pat = c.attr("pattern").unwrap_or("");
                let re = value::regex(pat, "")?;
                let mut out = Vec::new();
                for v in subs(self)?.into_iter().flatten() {
                    // No match or no group: OpenSCAP adds nothing for that value.
                    if let Ok(Some(caps)) = re.captures(&v) {
                        if let Some(m) = caps.get(1) {
                            out.push(m.as_str().to_string());
                        }
                    }
                }
                out
            }
            "glob_to_regex" => {
                let glob_noescape = c.attr("glob_noescape") == Some("true");
                subs(self)?.into_iter().flatten().map(|v| glob_to_regex(&v, glob_noescape)).collect()
            }
            "time_difference" => {
                // Seconds between two date-times: first minus second, or now minus the one
                // given (OVAL 5.11; formats and OpenSCAP's differences in crate::datetime).
                let f1 = c.attr("format_1").unwrap_or("year_month_day");
                let f2 = c.attr("format_2").unwrap_or("year_month_day");
                let parts = subs(self)?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
                let mut out = Vec::new();
                match parts.as_slice() {
                    [one] => {
                        for v in one {
                            out.push((now - datetime::parse(f2, v)?).to_string());
                        }
                    }
                    [a, b] => {
                        for x in a {
                            for y in b {
                                out.push((datetime::parse(f1, x)? - datetime::parse(f2, y)?).to_string());
                                if out.len() > 100_000 {
                                    return Err("time_difference: too many values".into());
                                }
                            }
                        }
                    }
                    _ => return Err("time_difference takes one or two components".into()),
                }
                out
            }
            other => return Err(format!("unknown variable component <{other}>")),
        })
    }
}

/// Escapes the characters that are special in a PCRE pattern.
pub fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for ch in s.chars() {
        if "\\^$.|?*+()[]{}".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Converts a shell glob to an anchored regex as OpenSCAP does (`*` and `?` do not match `/`,
/// leading-dot names are not matched by wildcards).
pub fn glob_to_regex(glob: &str, noescape: bool) -> String {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    let mut at_name_start = true;
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if at_name_start { "(?=[^.])[^/]*" } else { "[^/]*" }),
            '?' => out.push_str(if at_name_start { "[^./]" } else { "[^/]" }),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    out.push('^');
                }
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '\\' if !noescape => {
                if let Some(d) = chars.next() {
                    out.push_str(&escape_regex(&d.to_string()));
                }
            }
            _ => out.push_str(&escape_regex(&c.to_string())),
        }
        at_name_start = c == '/';
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use OvalResult::*;

    #[test]
    fn truth_tables() {
        assert_eq!(combine("AND", &[True, True]), True);
        assert_eq!(combine("AND", &[True, False, Error]), False);
        assert_eq!(combine("AND", &[True, Error]), Error);
        assert_eq!(combine("OR", &[False, Unknown]), Unknown);
        assert_eq!(combine("OR", &[False, True, Error]), True);
        assert_eq!(combine("ONE", &[True, False]), True);
        assert_eq!(combine("ONE", &[True, True]), False);
        assert_eq!(combine("XOR", &[True, True, True]), True);
        assert_eq!(combine("AND", &[NotApplicable, True]), True);
        assert_eq!(check_over("none satisfy", &[False, False]), True);
        assert_eq!(check_over("only one", &[True, True]), False);
    }

    #[test]
    fn globs() {
        assert_eq!(glob_to_regex("/etc/*.conf", false), r"^/etc/(?=[^.])[^/]*\.conf$");
        assert_eq!(escape_regex("a.b*"), r"a\.b\*");
    }
}
