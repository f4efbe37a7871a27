//! systemdunitproperty and systemdunitdependency read from unit files (no D-Bus).
//!
//! Offline semantics (docs/cis-offline.md): a unit is known when a unit file exists in the unit
//! search path; `LoadState` is `masked` when the file found first is a link to /dev/null or empty,
//! `loaded` otherwise; `ActiveState` is `active` when the unit is reachable from `default.target`
//! through `Wants=`/`Requires=` and `.wants/`/`.requires/` links (what starts at boot), `inactive`
//! otherwise; `UnitFileState` is `enabled`/`disabled`/`masked`/`static`. Dependencies are the
//! transitive `Wants`/`Requires` closure, as `systemctl list-dependencies` shows.

use std::collections::{BTreeSet, HashMap};

use super::spec;
use crate::oval::{Collected, Evaluator, Item};
use crate::xml::Node;

const UNIT_DIRS: &[&str] = &["/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

pub struct Units {
    /// unit name -> (path of the unit file found first, masked)
    files: HashMap<String, (String, bool)>,
    /// unit name -> direct Wants/Requires dependencies
    deps: HashMap<String, BTreeSet<String>>,
}

impl Units {
    fn load(ev: &Evaluator) -> Units {
        let root = &ev.ctx.root;
        let mut files: HashMap<String, (String, bool)> = HashMap::new();
        let mut deps: HashMap<String, BTreeSet<String>> = HashMap::new();
        for d in UNIT_DIRS {
            let Ok(entries) = root.read_dir(d) else { continue };
            for e in entries {
                let name = e.name.to_string_lossy().into_owned();
                let path = format!("{d}/{name}");
                if let Some(unit) = name.strip_suffix(".wants").or_else(|| name.strip_suffix(".requires")) {
                    if let Ok(links) = root.read_dir(&path) {
                        for l in links {
                            deps.entry(unit.to_string()).or_default().insert(l.name.to_string_lossy().into_owned());
                        }
                    }
                    continue;
                }
                if !is_unit_name(&name) || files.contains_key(&name) {
                    continue;
                }
                let masked = match root.read_link(&path) {
                    Ok(t) => t.as_os_str() == "/dev/null",
                    Err(_) => root.metadata(&path).map(|m| m.size == 0 && m.is_file()).unwrap_or(false),
                };
                files.insert(name, (path, masked));
            }
        }
        // Dependencies written in the unit files themselves (and their drop-ins).
        let names: Vec<String> = files.keys().cloned().collect();
        for n in names {
            let (path, masked) = files[&n].clone();
            if masked {
                continue;
            }
            let mut texts = vec![ev.ctx.read_text(&path).ok().flatten().unwrap_or_default()];
            for d in UNIT_DIRS {
                let dropins = format!("{d}/{n}.d");
                if let Ok(entries) = root.read_dir(&dropins) {
                    for e in entries {
                        let f = e.name.to_string_lossy().into_owned();
                        if f.ends_with(".conf") {
                            texts.push(ev.ctx.read_text(format!("{dropins}/{f}")).ok().flatten().unwrap_or_default());
                        }
                    }
                }
            }
            for t in texts {
                for line in t.lines() {
                    let l = line.trim();
                    if let Some((k, v)) = l.split_once('=') {
                        let k = k.trim();
                        if matches!(k, "Wants" | "Requires" | "Requisite" | "BindsTo") {
                            let set = deps.entry(n.clone()).or_default();
                            if v.trim().is_empty() {
                                set.clear();
                            }
                            set.extend(v.split_whitespace().map(str::to_string));
                        }
                    }
                }
            }
        }
        Units { files, deps }
    }

    fn closure(&self, unit: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![unit.to_string()];
        while let Some(u) = stack.pop() {
            if let Some(ds) = self.deps.get(&u) {
                for d in ds {
                    if out.insert(d.clone()) {
                        stack.push(d.clone());
                    }
                }
            }
        }
        out
    }

    fn default_target(&self, ev: &Evaluator) -> String {
        for d in ["/etc/systemd/system/default.target", "/usr/lib/systemd/system/default.target", "/lib/systemd/system/default.target"] {
            if let Ok(t) = ev.ctx.root.read_link(d) {
                if let Some(n) = t.file_name() {
                    return n.to_string_lossy().into_owned();
                }
            }
        }
        "multi-user.target".into()
    }

    fn property(&self, ev: &Evaluator, unit: &str, prop: &str) -> Option<String> {
        let (_, masked) = self.files.get(unit)?;
        let enabled = self.deps.values().any(|s| s.contains(unit));
        Some(match prop {
            "LoadState" => if *masked { "masked" } else { "loaded" }.to_string(),
            "ActiveState" | "SubState" => {
                let active = !*masked && self.closure(&self.default_target(ev)).contains(unit);
                match (prop, active) {
                    ("ActiveState", true) => "active",
                    ("ActiveState", false) => "inactive",
                    (_, true) => "running",
                    (_, false) => "dead",
                }
                .to_string()
            }
            "UnitFileState" => if *masked { "masked" } else if enabled { "enabled" } else { "disabled" }.to_string(),
            "Id" | "Names" => unit.to_string(),
            _ => return None,
        })
    }
}

fn is_unit_name(n: &str) -> bool {
    [".service", ".socket", ".target", ".timer", ".mount", ".path", ".slice", ".scope", ".swap", ".automount", ".device"].iter().any(|s| n.ends_with(s))
}

pub fn unit_property<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let unit = spec(ev, obj, "unit")?.ok_or("systemdunitproperty_object without unit")?;
    let prop = spec(ev, obj, "property")?.ok_or("systemdunitproperty_object without property")?;
    let units = Units::load(ev);
    let mut names: Vec<&String> = units.files.keys().collect();
    names.sort();
    let mut items = Vec::new();
    for u in names {
        if !unit.matches(u)? {
            continue;
        }
        for p in ["LoadState", "ActiveState", "SubState", "UnitFileState", "Id"] {
            if !prop.matches(p)? {
                continue;
            }
            if let Some(v) = units.property(ev, u, p) {
                let mut it = Item::new();
                it.set("unit", u.clone()).set("property", p).set("value", v);
                items.push(it);
            }
        }
    }
    Ok(Collected::items(items))
}

pub fn unit_dependency<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let unit = spec(ev, obj, "unit")?.ok_or("systemdunitdependency_object without unit")?;
    let units = Units::load(ev);
    let mut names: BTreeSet<&String> = units.files.keys().collect();
    names.extend(units.deps.keys());
    let mut items = Vec::new();
    for u in names {
        if !unit.matches(u)? {
            continue;
        }
        let deps: Vec<String> = units.closure(u).into_iter().collect();
        let mut it = Item::new();
        it.set("unit", u.clone()).set_many("dependency", deps);
        items.push(it);
    }
    Ok(Collected::items(items))
}
