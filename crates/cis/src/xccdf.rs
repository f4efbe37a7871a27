//! SCAP 1.3 source datastreams and the XCCDF 1.2 benchmark inside them.
//!
//! A datastream collection holds components (the XCCDF benchmark, OVAL definitions, the CPE
//! dictionary and its OVAL checks, OCIL questionnaires) and data streams whose component
//! references carry catalogs mapping the `href`s used by checks to components.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::xml::{self, Node};
use crate::Error;

pub const OVAL_SYSTEM: &str = "http://oval.mitre.org/XMLSchema/oval-definitions-5";
pub const OCIL_SYSTEM: &str = "http://scap.nist.gov/schema/ocil/2";

/// Subtrees never read: fixes, references, front matter, OCIL questionnaires, signatures.
const SKIP: &[&str] = &[
    "fix", "fixtext", "reference", "ident", "front-matter", "rear-matter", "notice", "affected", "ocil", "Signature",
    "status", "dc-status", "model", "generator", "contributor", "metadata-dc",
    // Long prose kensa does not report (rules keep title and rationale).
    "description", "warning",
];

/// A loaded datastream (or a bare XCCDF benchmark file).
pub struct DataStream {
    root: Node,
    /// component id -> index path in `root.children`
    components: HashMap<String, usize>,
    /// component-ref id -> component id
    crefs: HashMap<String, String>,
    /// `href` name used by checks -> component id, from the catalogs of all component-refs
    catalog: HashMap<String, String>,
    /// Components holding a benchmark, in document order.
    benchmarks: Vec<String>,
    /// The `cpe-list` dictionaries (component ids).
    dictionaries: Vec<String>,
}

impl DataStream {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = std::fs::File::open(path).map_err(|e| Error::Content(format!("{}: {e}", path.display())))?;
        let root = xml::parse_reader(std::io::BufReader::with_capacity(1 << 16, file), SKIP).map_err(|e| Error::Content(format!("{}: {e}", path.display())))?;
        Self::from_root(root).map_err(|e| match e {
            Error::Content(m) => Error::Content(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let root = xml::parse(data, SKIP).map_err(|e| Error::Content(e.to_string()))?;
        Self::from_root(root)
    }

    fn from_root(root: Node) -> Result<Self, Error> {
        let mut ds = DataStream { root, components: HashMap::new(), crefs: HashMap::new(), catalog: HashMap::new(), benchmarks: Vec::new(), dictionaries: Vec::new() };
        match ds.root.name {
            "data-stream-collection" => {
                for (i, c) in ds.root.children.iter().enumerate() {
                    match c.name {
                        "component" => {
                            let id = c.attr("id").ok_or_else(|| Error::Content("<component> without id".into()))?;
                            ds.components.insert(id.to_string(), i);
                            if let Some(inner) = c.children.first() {
                                match inner.name {
                                    "Benchmark" => ds.benchmarks.push(id.to_string()),
                                    "cpe-list" => ds.dictionaries.push(id.to_string()),
                                    _ => {}
                                }
                            }
                        }
                        "data-stream" => {
                            let mut refs = Vec::new();
                            c.descendants("component-ref", &mut refs);
                            for r in refs {
                                let (Some(id), Some(href)) = (r.attr("id"), r.attr("href")) else { continue };
                                ds.crefs.insert(id.to_string(), href.trim_start_matches('#').to_string());
                                let mut uris = Vec::new();
                                r.descendants("uri", &mut uris);
                                for u in uris {
                                    if let (Some(name), Some(uri)) = (u.attr("name"), u.attr("uri")) {
                                        ds.catalog.insert(name.to_string(), uri.trim_start_matches('#').to_string());
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                // Catalog entries point at component-refs: resolve them to components.
                let crefs = ds.crefs.clone();
                for v in ds.catalog.values_mut() {
                    if let Some(comp) = crefs.get(v.as_str()) {
                        *v = comp.clone();
                    }
                }
            }
            "Benchmark" => {}
            other => return Err(Error::Content(format!("not a SCAP source datastream or XCCDF benchmark: root element <{other}>"))),
        }
        if ds.root.name != "Benchmark" && ds.benchmarks.is_empty() {
            return Err(Error::Content("the datastream holds no XCCDF <Benchmark>".into()));
        }
        Ok(ds)
    }

    fn component(&self, id: &str) -> Option<&Node> {
        self.components.get(id).and_then(|&i| self.root.children[i].children.first())
    }

    /// Benchmarks: (component id, node).
    pub fn benchmarks(&self) -> Vec<&Node> {
        if self.root.name == "Benchmark" {
            return vec![&self.root];
        }
        self.benchmarks.iter().filter_map(|id| self.component(id)).collect()
    }

    /// The component an `href` of a check or CPE check names (catalog name, `#component-id`,
    /// `#cref-id`).
    pub fn resolve_href(&self, href: &str) -> Option<&Node> {
        let h = href.trim_start_matches('#');
        if let Some(c) = self.catalog.get(h).and_then(|id| self.component(id)) {
            return Some(c);
        }
        if let Some(c) = self.crefs.get(h).and_then(|id| self.component(id)) {
            return Some(c);
        }
        if let Some(c) = self.component(h) {
            return Some(c);
        }
        // Last resort: a component whose id ends with the file name (e.g. `..._comp_ssg-rhel9-oval.xml`).
        self.components.keys().find(|k| k.ends_with(h) && k.len() > h.len() && !h.is_empty()).and_then(|k| self.component(k))
    }

    pub fn cpe_dictionaries(&self) -> Vec<&Node> {
        self.dictionaries.iter().filter_map(|id| self.component(id)).collect()
    }
}

/// One XCCDF Value with its selectable instances.
#[derive(Debug, Clone)]
pub struct Value {
    pub id: String,
    pub value_type: String,
    /// selector ("" for the default) -> value
    pub values: Vec<(String, String)>,
}

impl Value {
    pub fn default_value(&self) -> Option<&str> {
        self.values.iter().find(|(s, _)| s.is_empty()).or(self.values.first()).map(|(_, v)| v.as_str())
    }
    pub fn selected(&self, selector: &str) -> Option<&str> {
        self.values.iter().find(|(s, _)| s == selector).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct CheckRef {
    pub href: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub system: String,
    pub selector: String,
    pub negate: bool,
    pub multi_check: bool,
    /// (value id, OVAL external variable id)
    pub exports: Vec<(String, String)>,
    pub refs: Vec<CheckRef>,
}

/// A `complex-check`: checks combined with AND / OR.
#[derive(Debug, Clone)]
pub enum CheckTree {
    Check(Check),
    Complex { operator_and: bool, negate: bool, children: Vec<CheckTree> },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub rationale: String,
    pub severity: String,
    pub role: String,
    pub weight: f64,
    pub selected: bool,
    pub platforms: Vec<String>,
    pub requires: Vec<Vec<String>>,
    pub conflicts: Vec<String>,
    pub checks: Vec<CheckTree>,
    /// Index of the parent group in `Benchmark::groups` (None at benchmark level).
    pub parent: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub title: String,
    pub selected: bool,
    pub weight: f64,
    pub platforms: Vec<String>,
    pub requires: Vec<Vec<String>>,
    pub conflicts: Vec<String>,
    pub parent: Option<usize>,
    /// Children in document order: (is_rule, index).
    pub items: Vec<(bool, usize)>,
}

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub id: String,
    pub title: String,
    pub description: String,
    pub extends: Option<String>,
    /// (idref, selected) in document order
    pub selects: Vec<(String, bool)>,
    /// value id -> selector
    pub refine_values: Vec<(String, String)>,
    /// value id -> literal value
    pub set_values: Vec<(String, String)>,
    /// (idref, weight, severity, role, selector)
    pub refine_rules: Vec<RefineRule>,
}

#[derive(Debug, Clone, Default)]
pub struct RefineRule {
    pub idref: String,
    pub weight: Option<f64>,
    pub severity: Option<String>,
    pub role: Option<String>,
    pub selector: Option<String>,
}

/// A parsed XCCDF 1.2 benchmark.
#[derive(Debug)]
pub struct Benchmark {
    pub id: String,
    pub title: String,
    pub platforms: Vec<String>,
    pub values: HashMap<String, Value>,
    pub rules: Vec<Rule>,
    pub groups: Vec<Group>,
    /// Top-level items.
    pub items: Vec<(bool, usize)>,
    pub profiles: Vec<Profile>,
    /// CPE applicability language platforms declared in the benchmark (`platform-specification`).
    pub cpe_platforms: HashMap<String, Arc<CpeExpr>>,
}

/// A CPE applicability language expression.
#[derive(Debug)]
pub enum CpeExpr {
    Fact(String),
    Logical { and: bool, negate: bool, children: Vec<CpeExpr> },
}

fn parse_cpe_test(n: &Node) -> CpeExpr {
    match n.name {
        "fact-ref" => CpeExpr::Fact(n.attr("name").unwrap_or("").to_string()),
        _ => CpeExpr::Logical {
            and: !n.attr("operator").unwrap_or("AND").eq_ignore_ascii_case("OR"),
            negate: n.attr("negate") == Some("true"),
            children: n.children.iter().filter(|c| matches!(c.name, "logical-test" | "fact-ref")).map(parse_cpe_test).collect(),
        },
    }
}

fn truthy(s: Option<&str>, default: bool) -> bool {
    match s {
        Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        _ => default,
    }
}

fn text_of(n: &Node, name: &str) -> String {
    n.child(name).map(|c| c.text.trim().to_string()).unwrap_or_default()
}

fn parse_check(n: &Node) -> Check {
    Check {
        system: n.attr("system").unwrap_or("").to_string(),
        selector: n.attr("selector").unwrap_or("").to_string(),
        negate: truthy(n.attr("negate"), false),
        multi_check: truthy(n.attr("multi-check"), false),
        exports: n
            .children_named("check-export")
            .filter_map(|e| Some((e.attr("value-id")?.to_string(), e.attr("export-name")?.to_string())))
            .collect(),
        refs: n.children_named("check-content-ref").map(|r| CheckRef { href: r.attr("href").unwrap_or("").to_string(), name: r.attr("name").map(str::to_string) }).collect(),
    }
}

fn parse_check_tree(n: &Node) -> Option<CheckTree> {
    match n.name {
        "check" => Some(CheckTree::Check(parse_check(n))),
        "complex-check" => Some(CheckTree::Complex {
            operator_and: !n.attr("operator").unwrap_or("AND").eq_ignore_ascii_case("OR"),
            negate: truthy(n.attr("negate"), false),
            children: n.children.iter().filter_map(parse_check_tree).collect(),
        }),
        _ => None,
    }
}

fn idrefs(n: &Node, name: &str) -> Vec<String> {
    n.children_named(name).filter_map(|c| c.attr("idref").map(str::to_string)).collect()
}

fn requires(n: &Node) -> Vec<Vec<String>> {
    n.children_named("requires").map(|c| c.attr("idref").unwrap_or("").split_whitespace().map(str::to_string).collect()).collect()
}

impl Benchmark {
    pub fn from_node(n: &Node) -> Result<Self, Error> {
        let id = n.attr("id").ok_or_else(|| Error::Content("<Benchmark> without id".into()))?.to_string();
        let mut b = Benchmark {
            id,
            title: text_of(n, "title"),
            platforms: idrefs(n, "platform"),
            values: HashMap::new(),
            rules: Vec::new(),
            groups: Vec::new(),
            items: Vec::new(),
            profiles: Vec::new(),
            cpe_platforms: HashMap::new(),
        };
        if let Some(spec) = n.child("platform-specification") {
            for p in spec.children_named("platform") {
                if let (Some(pid), Some(test)) = (p.attr("id"), p.child("logical-test")) {
                    b.cpe_platforms.insert(pid.to_string(), Arc::new(parse_cpe_test(test)));
                }
            }
        }
        for p in n.children_named("Profile") {
            b.profiles.push(parse_profile(p)?);
        }
        let mut items = Vec::new();
        b.walk_items(n, None, &mut items)?;
        b.items = items;
        b.apply_extends(n)?;
        Ok(b)
    }

    fn walk_items(&mut self, n: &Node, parent: Option<usize>, out: &mut Vec<(bool, usize)>) -> Result<(), Error> {
        for c in &n.children {
            match c.name {
                "Value" => {
                    let id = c.attr("id").ok_or_else(|| Error::Content("<Value> without id".into()))?;
                    let values = c.children_named("value").map(|v| (v.attr("selector").unwrap_or("").to_string(), v.text.to_string())).collect();
                    self.values.insert(id.to_string(), Value { id: id.to_string(), value_type: c.attr("type").unwrap_or("string").to_string(), values });
                }
                "Group" => {
                    let id = c.attr("id").ok_or_else(|| Error::Content("<Group> without id".into()))?;
                    let gi = self.groups.len();
                    self.groups.push(Group {
                        id: id.to_string(),
                        title: text_of(c, "title"),
                        selected: truthy(c.attr("selected"), true),
                        weight: c.attr("weight").and_then(|w| w.parse().ok()).unwrap_or(1.0),
                        platforms: idrefs(c, "platform"),
                        requires: requires(c),
                        conflicts: idrefs(c, "conflicts"),
                        parent,
                        items: Vec::new(),
                    });
                    out.push((false, gi));
                    let mut sub = Vec::new();
                    self.walk_items(c, Some(gi), &mut sub)?;
                    self.groups[gi].items = sub;
                }
                "Rule" => {
                    let id = c.attr("id").ok_or_else(|| Error::Content("<Rule> without id".into()))?;
                    let ri = self.rules.len();
                    self.rules.push(Rule {
                        id: id.to_string(),
                        title: text_of(c, "title"),
                        description: text_of(c, "description"),
                        rationale: text_of(c, "rationale"),
                        severity: c.attr("severity").unwrap_or("unknown").to_string(),
                        role: c.attr("role").unwrap_or("full").to_string(),
                        weight: c.attr("weight").and_then(|w| w.parse().ok()).unwrap_or(1.0),
                        selected: truthy(c.attr("selected"), true),
                        platforms: idrefs(c, "platform"),
                        requires: requires(c),
                        conflicts: idrefs(c, "conflicts"),
                        checks: c.children.iter().filter_map(parse_check_tree).collect(),
                        parent,
                    });
                    out.push((true, ri));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// XCCDF `extends` on rules: an extending rule inherits what it does not set itself
    /// (SSG content is resolved, but hand-written content uses it).
    fn apply_extends(&mut self, n: &Node) -> Result<(), Error> {
        let mut extends = Vec::new();
        let mut all = Vec::new();
        n.descendants("Rule", &mut all);
        for r in all {
            if let (Some(id), Some(base)) = (r.attr("id"), r.attr("extends")) {
                extends.push((id.to_string(), base.to_string()));
            }
        }
        for (id, base) in extends {
            let Some(bi) = self.rules.iter().position(|r| r.id == base) else {
                return Err(Error::Content(format!("<Rule id=\"{id}\"> extends unknown rule {base}")));
            };
            let base_rule = self.rules[bi].clone();
            let r = self.rules.iter_mut().find(|r| r.id == id).unwrap();
            if r.checks.is_empty() {
                r.checks = base_rule.checks;
            }
            if r.title.is_empty() {
                r.title = base_rule.title;
            }
            if r.rationale.is_empty() {
                r.rationale = base_rule.rationale;
            }
            if r.platforms.is_empty() {
                r.platforms = base_rule.platforms;
            }
        }
        Ok(())
    }

    pub fn profile(&self, id: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id || p.id.ends_with(&format!("_profile_{id}")))
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn parse_profile(p: &Node) -> Result<Profile, Error> {
    let id = p.attr("id").ok_or_else(|| Error::Content("<Profile> without id".into()))?;
    let mut prof = Profile { id: id.to_string(), title: text_of(p, "title"), description: text_of(p, "description"), extends: p.attr("extends").map(str::to_string), ..Default::default() };
    for c in &p.children {
        match c.name {
            "select" => {
                let idref = c.attr("idref").ok_or_else(|| Error::Content(format!("<select> without idref in profile {id}")))?;
                prof.selects.push((idref.to_string(), truthy(c.attr("selected"), true)));
            }
            "refine-value" => {
                let idref = c.attr("idref").ok_or_else(|| Error::Content(format!("<refine-value> without idref in profile {id}")))?;
                prof.refine_values.push((idref.to_string(), c.attr("selector").unwrap_or("").to_string()));
            }
            "set-value" => {
                let idref = c.attr("idref").ok_or_else(|| Error::Content(format!("<set-value> without idref in profile {id}")))?;
                prof.set_values.push((idref.to_string(), c.text.to_string()));
            }
            "refine-rule" => {
                let idref = c.attr("idref").ok_or_else(|| Error::Content(format!("<refine-rule> without idref in profile {id}")))?;
                prof.refine_rules.push(RefineRule {
                    idref: idref.to_string(),
                    weight: c.attr("weight").and_then(|w| w.parse().ok()),
                    severity: c.attr("severity").map(str::to_string),
                    role: c.attr("role").map(str::to_string),
                    selector: c.attr("selector").map(str::to_string),
                });
            }
            _ => {}
        }
    }
    Ok(prof)
}

/// Parses a tailoring file: its profiles (which usually `extends` a benchmark profile).
pub fn parse_tailoring(data: &[u8]) -> Result<Vec<Profile>, Error> {
    let root = xml::parse(data, SKIP).map_err(|e| Error::Content(format!("tailoring: {e}")))?;
    let tailoring = if root.name == "Tailoring" {
        &root
    } else {
        let mut v = Vec::new();
        root.descendants("Tailoring", &mut v);
        v.into_iter().next().ok_or_else(|| Error::Content(format!("tailoring: no <Tailoring> element (root is <{}>)", root.name)))?
    };
    tailoring.children_named("Profile").map(parse_profile).collect()
}

/// A profile with `extends` chains flattened: later definitions override earlier ones.
#[derive(Debug, Clone, Default)]
pub struct ResolvedProfile {
    pub id: String,
    pub title: String,
    pub selects: HashMap<String, bool>,
    pub refine_values: HashMap<String, String>,
    pub set_values: HashMap<String, String>,
    pub refine_rules: HashMap<String, RefineRule>,
}

pub fn resolve_profile(all: &[Profile], id: &str) -> Result<ResolvedProfile, Error> {
    let mut chain = Vec::new();
    let mut cur = Some(id.to_string());
    while let Some(pid) = cur {
        let p = all.iter().rev().find(|p| p.id == pid).ok_or_else(|| Error::Content(format!("profile {pid} not found")))?;
        if chain.iter().any(|q: &&Profile| q.id == p.id) || chain.len() > 64 {
            return Err(Error::Content(format!("profile {id}: extends loop at {pid}")));
        }
        chain.push(p);
        cur = p.extends.clone();
    }
    let mut r = ResolvedProfile { id: chain[0].id.clone(), title: chain[0].title.clone(), ..Default::default() };
    for p in chain.iter().rev() {
        for (k, v) in &p.selects {
            r.selects.insert(k.clone(), *v);
        }
        for (k, v) in &p.refine_values {
            r.refine_values.insert(k.clone(), v.clone());
        }
        for (k, v) in &p.set_values {
            r.set_values.insert(k.clone(), v.clone());
        }
        for rr in &p.refine_rules {
            r.refine_rules.insert(rr.idref.clone(), rr.clone());
        }
    }
    Ok(r)
}
