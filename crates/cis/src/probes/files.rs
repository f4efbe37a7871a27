//! File probes: textfilecontent54, file (unix), symlink.
//!
//! Paths come from `filepath` or `path` + `filename` entities; `pattern match` paths are found by
//! walking the target below the pattern's literal prefix. Absolute symlinks resolve inside the
//! target root (kensa_fs::Root), unlike OpenSCAP's offline mode, which resolves them on the host.

use std::path::Path;

use kensa_fs::FileType;

use super::spec;
use crate::oval::{Collected, EntitySpec, Evaluator, Item};
use crate::value;
use crate::xml::Node;

/// Entries visited by one pattern walk at most (hostile or huge trees).
const MAX_WALK_ENTRIES: usize = 2_000_000;
/// Path depth at which walks stop descending (Linux PATH_MAX allows about this many short names).
const MAX_WALK_DEPTH: usize = 128;

/// The directory part of a regex that every match must start with (`^/etc/ssh/sshd_config\.d/.*`
/// -> `/etc/ssh/sshd_config.d`).
pub(crate) fn literal_prefix_dir(pattern: &str) -> String {
    let Some(p) = pattern.strip_prefix('^') else { return "/".into() };
    let mut lit = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d) if "./-_+*?()[]{}|^$\\ ".contains(d) => lit.push(d),
                _ => break,
            },
            '?' | '*' | '{' => {
                lit.pop();
                break;
            }
            '.' | '+' | '(' | ')' | '[' | ']' | '|' | '$' => {
                if c == '+' {
                    // x+ still needs one x: keep it.
                }
                break;
            }
            _ => lit.push(c),
        }
    }
    if has_top_level_alternation(p) {
        // `^/a|/b`: only the root is common to both branches.
        return "/".into();
    }
    match lit.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => lit[..i].to_string(),
    }
}

fn has_top_level_alternation(p: &str) -> bool {
    let (mut depth, mut in_class, mut esc) = (0i32, false, false);
    for c in p.chars() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth -= 1,
            '|' if !in_class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    None,
    Up,
    Down,
}

/// File object behaviors. `recurse_file_system` is not read: every filesystem of an offline
/// tree is local, and filesystem sources do not expose device ids for "defined"
/// (docs/cis-offline.md).
#[derive(Clone, Copy)]
struct Behaviors {
    max_depth: i64,
    direction: Direction,
    /// `recurse` includes directories: directories below the path are descended.
    recurse_dirs: bool,
    /// `recurse` includes symlinks: a symlink to a directory counts as a directory.
    recurse_symlinks: bool,
}

fn behaviors(obj: &Node) -> Behaviors {
    let b = obj.child("behaviors");
    let get = |k: &str| b.and_then(|b| b.attr(k));
    let recurse = get("recurse").unwrap_or("symlinks and directories");
    Behaviors {
        max_depth: get("max_depth").and_then(|v| v.trim().parse().ok()).unwrap_or(-1),
        direction: match get("recurse_direction") {
            Some("down") => Direction::Down,
            Some("up") => Direction::Up,
            _ => Direction::None,
        },
        recurse_dirs: recurse != "symlinks",
        recurse_symlinks: !matches!(recurse, "directories" | "files and directories"),
    }
}

struct Walker<'r> {
    root: &'r kensa_fs::Root,
    visited: usize,
}

impl Walker<'_> {
    /// Calls `f(path, type)` for everything below `dir` (not `dir` itself), depth first.
    fn walk(&mut self, dir: &str, depth_left: i64, follow_links: bool, f: &mut dyn FnMut(&str, FileType)) -> Result<(), String> {
        if depth_left == 0 {
            return Ok(());
        }
        // Unlimited recursion still stops at a sane depth: directory-symlink loops and hostile trees.
        if dir.matches('/').count() > MAX_WALK_DEPTH {
            return Ok(());
        }
        let entries = match self.root.read_dir(dir) {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        for e in entries {
            self.visited += 1;
            if self.visited > MAX_WALK_ENTRIES {
                return Err(format!("more than {MAX_WALK_ENTRIES} files below {dir}"));
            }
            let name = e.name.to_string_lossy();
            let path = if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") };
            if matches!(path.as_str(), "/proc" | "/sys" | "/dev" | "/run") {
                continue;
            }
            f(&path, e.file_type);
            let is_dir = match e.file_type {
                FileType::Dir => true,
                FileType::Symlink if follow_links => self.root.is_dir(&path),
                _ => false,
            };
            if is_dir {
                self.walk(&path, depth_left - 1, follow_links, f)?;
            }
        }
        Ok(())
    }
}

impl Walker<'_> {
    /// OpenSCAP's downward recursion (oval_fts.c) below `start` (level 0): a directory at level
    /// 1..=max_depth is collected when `want_dirs` (filename nil), and descended (its files
    /// listed) when `recurse` includes directories; a symlink to a directory is collected and
    /// descended only when `recurse` includes symlinks. A link back to a directory being
    /// descended (a cycle) is skipped, as fts(3) reports FTS_DC. Pushes the directories
    /// collected or descended.
    fn down(&mut self, start: &str, beh: &Behaviors, want_dirs: bool, out: &mut Vec<String>) -> Result<(), String> {
        let canonical = self.root.canonicalize(start).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| start.to_string());
        let mut ancestors = vec![canonical];
        self.down_from(start, 0, beh, want_dirs, &mut ancestors, out)
    }

    fn down_from(&mut self, dir: &str, level: i64, beh: &Behaviors, want_dirs: bool, ancestors: &mut Vec<String>, out: &mut Vec<String>) -> Result<(), String> {
        if (beh.max_depth >= 0 && level >= beh.max_depth) || ancestors.len() > MAX_WALK_DEPTH {
            return Ok(());
        }
        let Ok(entries) = self.root.read_dir(dir) else { return Ok(()) };
        for e in entries {
            self.visited += 1;
            if self.visited > MAX_WALK_ENTRIES {
                return Err(format!("more than {MAX_WALK_ENTRIES} files below {dir}"));
            }
            let name = e.name.to_string_lossy();
            let path = join(dir, &name);
            if matches!(path.as_str(), "/proc" | "/sys" | "/dev" | "/run") {
                continue;
            }
            let (canonical, descend) = match e.file_type {
                FileType::Dir => (join(ancestors.last().map(String::as_str).unwrap_or("/"), &name), beh.recurse_dirs),
                FileType::Symlink if beh.recurse_symlinks && self.root.is_dir(&path) => match self.root.canonicalize(&path) {
                    Ok(c) => (c.to_string_lossy().into_owned(), true),
                    Err(_) => continue,
                },
                _ => continue,
            };
            if ancestors.contains(&canonical) {
                continue;
            }
            if want_dirs || descend {
                out.push(path.clone());
            }
            if descend {
                ancestors.push(canonical);
                let r = self.down_from(&path, level + 1, beh, want_dirs, ancestors, out);
                ancestors.pop();
                r?;
            }
        }
        Ok(())
    }
}

fn split_path(p: &str) -> (String, String) {
    match p.rfind('/') {
        Some(0) => ("/".into(), p[1..].into()),
        Some(i) => (p[..i].into(), p[i + 1..].into()),
        None => ("/".into(), p.into()),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Resolves an object's `filepath` or `path`/`filename` entities to (directory, file name) pairs
/// that exist; `None` as file name means the directory itself (`filename xsi:nil`).
fn locations<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Vec<(String, Option<String>)>, String> {
    let root = ev.ctx.root.clone();
    let beh = behaviors(obj);
    let mut out = Vec::new();
    if let Some(fp) = spec(ev, obj, "filepath")? {
        if fp.is_equals() {
            for v in &fp.values {
                // A filepath names a file: OpenSCAP never collects a directory (nor a link to one).
                if root.symlink_metadata(v).is_ok() && !root.is_dir(v) {
                    let (d, n) = split_path(v);
                    out.push((d, Some(n)));
                }
            }
        } else {
            let prefixes = walk_starts(&fp);
            let mut w = Walker { root: &root, visited: 0 };
            for start in prefixes {
                let mut found = Vec::new();
                w.walk(&start, -1, true, &mut |p, t| {
                    if t != FileType::Dir {
                        found.push(p.to_string());
                    }
                })?;
                for p in found {
                    if fp.matches(&p)? {
                        let (d, n) = split_path(&p);
                        out.push((d, Some(n)));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        return Ok(out);
    }
    let path = spec(ev, obj, "path")?.ok_or("object has neither filepath nor path")?;
    let filename = spec(ev, obj, "filename")?;
    // 1. the directories named by `path`
    let mut dirs: Vec<String> = Vec::new();
    if path.is_equals() {
        for v in &path.values {
            if root.is_dir(v) {
                dirs.push(v.clone());
            }
        }
    } else {
        let mut w = Walker { root: &root, visited: 0 };
        for start in walk_starts(&path) {
            if root.is_dir(&start) && path.matches(&start)? {
                dirs.push(start.clone());
            }
            let mut found = Vec::new();
            w.walk(&start, -1, true, &mut |p, t| {
                if t == FileType::Dir || (t == FileType::Symlink) {
                    found.push(p.to_string());
                }
            })?;
            for p in found {
                if root.is_dir(&p) && path.matches(&p)? {
                    dirs.push(p);
                }
            }
        }
    }
    // 2. recursion from them: down into subdirectories, or up through the parents (max_depth
    // levels; -1: all the way), as OpenSCAP's oval_fts.c walks
    let want_dirs = filename.as_ref().is_none_or(|f| f.nil);
    let mut extra = Vec::new();
    match beh.direction {
        Direction::Down => {
            let mut w = Walker { root: &root, visited: 0 };
            for d in &dirs {
                w.down(d, &beh, want_dirs, &mut extra)?;
            }
        }
        Direction::Up => {
            for d in &dirs {
                let (mut cur, mut depth) = (d.clone(), 0);
                while cur != "/" && (beh.max_depth < 0 || depth < beh.max_depth) {
                    cur = split_path(&cur).0;
                    depth += 1;
                    extra.push(cur.clone());
                }
            }
        }
        Direction::None => {}
    }
    dirs.extend(extra);
    dirs.sort();
    dirs.dedup();
    // 3. the files in them; with a filename, directories are not items (OpenSCAP's oval_fts
    // collects only non-directory entries then; a symlink to a directory is an item).
    for d in dirs {
        match &filename {
            None => out.push((d, None)),
            Some(f) if f.nil => out.push((d, None)),
            Some(f) if f.is_equals() => {
                for v in &f.values {
                    if root.symlink_metadata(join(&d, v)).is_ok_and(|m| !m.is_dir()) {
                        out.push((d.clone(), Some(v.clone())));
                    }
                }
            }
            Some(f) => {
                if let Ok(entries) = root.read_dir(&d) {
                    for e in entries {
                        let name = e.name.to_string_lossy().into_owned();
                        if e.file_type != FileType::Dir && f.matches(&name)? {
                            out.push((d.clone(), Some(name)));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn walk_starts(spec: &EntitySpec) -> Vec<String> {
    let mut v: Vec<String> = if spec.operation == "pattern match" { spec.values.iter().map(|p| literal_prefix_dir(p)).collect() } else { vec!["/".into()] };
    v.sort();
    v.dedup();
    v
}

pub fn textfilecontent54<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let b = obj.child("behaviors");
    let multiline = b.and_then(|b| b.attr("multiline")) != Some("false");
    let singleline = b.and_then(|b| b.attr("singleline")) == Some("true");
    let flags = format!("{}{}", if multiline { "(?m)" } else { "" }, if singleline { "(?s)" } else { "" });
    let pattern = spec(ev, obj, "pattern")?.ok_or("textfilecontent54_object without pattern")?;
    let instance = spec(ev, obj, "instance")?;
    let locs = locations(ev, obj)?;
    let mut items = Vec::new();
    for (dir, name) in locs {
        let Some(name) = name else { continue };
        let fp = join(&dir, &name);
        if !ev.ctx.root.is_file(&fp) {
            continue;
        }
        let Some(text) = ev.ctx.read_text(&fp)? else { continue };
        for pat in &pattern.values {
            let re = value::regex(pat, &flags)?;
            let mut n = 0i64;
            for caps in re.captures_iter(&text) {
                let caps = caps.map_err(|e| format!("pattern {pat:?} on {fp}: {e}"))?;
                n += 1;
                if let Some(inst) = &instance {
                    if !inst.matches(&n.to_string())? {
                        continue;
                    }
                }
                let whole = caps.get(0).map(|m| m.as_str()).unwrap_or("");
                let subs: Vec<String> = (1..caps.len()).filter_map(|i| caps.get(i).map(|m| m.as_str().to_string())).collect();
                let mut it = Item::new();
                it.set("filepath", fp.clone()).set("path", dir.clone()).set("filename", name.clone()).set("pattern", pat.clone()).set("instance", n.to_string()).set("text", whole).set_many("subexpression", subs);
                items.push(it);
                if items.len() > 1_000_000 {
                    return Err(format!("{fp}: too many matches"));
                }
            }
        }
    }
    Ok(Collected::items(items))
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::File => "regular",
        FileType::Dir => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Other => "special",
    }
}

pub fn file<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let locs = locations(ev, obj)?;
    let mut items = Vec::new();
    for (dir, name) in locs {
        let fp = match &name {
            Some(n) => join(&dir, n),
            None => dir.clone(),
        };
        let md = match ev.ctx.root.symlink_metadata(&fp) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.to_string()),
        };
        let m = md.mode;
        let b = |bit: u32| if m & bit != 0 { "true" } else { "false" };
        let mut it = Item::new();
        if name.is_some() {
            it.set("filepath", fp.clone());
        }
        it.set("path", dir.clone());
        if let Some(n) = &name {
            it.set("filename", n.clone());
        }
        it.set("type", type_name(md.file_type))
            .set("group_id", md.gid.to_string())
            .set("user_id", md.uid.to_string())
            .set("m_time", md.mtime.to_string())
            .set("size", md.size.to_string())
            .set("suid", b(0o4000))
            .set("sgid", b(0o2000))
            .set("sticky", b(0o1000))
            .set("uread", b(0o400))
            .set("uwrite", b(0o200))
            .set("uexec", b(0o100))
            .set("gread", b(0o40))
            .set("gwrite", b(0o20))
            .set("gexec", b(0o10))
            .set("oread", b(0o4))
            .set("owrite", b(0o2))
            .set("oexec", b(0o1))
            .set("has_extended_acl", "false");
        items.push(it);
    }
    Ok(Collected::items(items))
}

pub fn symlink<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let fp = spec(ev, obj, "filepath")?.ok_or("symlink_object without filepath")?;
    let mut items = Vec::new();
    let root = ev.ctx.root.clone();
    for v in &fp.values {
        if !fp.is_equals() {
            return Err(format!("symlink_object: operation {:?} on filepath is not supported", fp.operation));
        }
        match root.symlink_metadata(v) {
            Ok(md) if md.is_symlink() => {
                // As OpenSCAP's realpath(3) inside the target: a dangling or circular link makes
                // the object an error (never a canonical path that does not exist).
                let canonical = match root.canonicalize(v) {
                    Ok(p) if root.symlink_metadata(&p).is_ok() => p.to_string_lossy().into_owned(),
                    Ok(_) => return Ok(Collected::error(format!("link target of symlink {v} does not exist"))),
                    Err(e) => return Ok(Collected::error(format!("symlink {v}: {e}"))),
                };
                let mut it = Item::new();
                it.set("filepath", v.clone()).set("canonical_path", canonical);
                items.push(it);
            }
            _ => {}
        }
    }
    let _ = Path::new("/");
    Ok(Collected::items(items))
}

/// One step of the XPath subset xmlfilecontent supports: `name` or `*`, with an optional
/// `[@attr='value']` predicate.
struct XStep {
    name: String,
    pred: Option<(String, String)>,
}

/// The final selection of an XPath: elements, an attribute, or text.
enum XTail {
    Elements,
    Attr(String),
    Text,
}

/// Parses absolute location paths like `/zone/service[@name='ssh']`, `/a/b/@port`, `/a/text()`.
fn parse_xpath(x: &str) -> Option<(Vec<XStep>, XTail)> {
    let x = x.trim();
    let body = x.strip_prefix('/')?;
    if body.starts_with('/') {
        return None;
    }
    let mut steps = Vec::new();
    let mut tail = XTail::Elements;
    let parts: Vec<&str> = body.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if last && part.starts_with('@') {
            tail = XTail::Attr(part[1..].to_string());
            break;
        }
        if last && *part == "text()" {
            tail = XTail::Text;
            break;
        }
        let (name, pred) = match part.split_once('[') {
            Some((n, p)) => {
                let p = p.strip_suffix(']')?.strip_prefix('@')?;
                let (k, v) = p.split_once('=')?;
                let v = v.trim().trim_matches(|c| c == '\'' || c == '"');
                (n, Some((k.trim().to_string(), v.to_string())))
            }
            None => (*part, None),
        };
        if name.is_empty() || name.contains(|c: char| "()[]@:".contains(c)) {
            return None;
        }
        steps.push(XStep { name: name.to_string(), pred });
    }
    Some((steps, tail))
}

fn xpath_values(root: &crate::xml::Node, steps: &[XStep], tail: &XTail) -> Vec<String> {
    let matches = |n: &crate::xml::Node, st: &XStep| (st.name == "*" || n.name == st.name) && st.pred.as_ref().map(|(k, v)| n.attr(k) == Some(v.as_str())).unwrap_or(true);
    let Some((first, rest)) = steps.split_first() else { return vec![] };
    if !matches(root, first) {
        return vec![];
    }
    let mut cur = vec![root];
    for st in rest {
        cur = cur.iter().flat_map(|n| n.children.iter().filter(|c| matches(c, st))).collect();
    }
    cur.iter()
        .filter_map(|n| match tail {
            XTail::Elements | XTail::Text => Some(n.text.trim().to_string()),
            XTail::Attr(a) => n.attr(a).map(str::to_string),
        })
        .collect()
}

/// xmlfilecontent with an XPath 1.0 subset (absolute child steps, `[@attr='v']` predicates,
/// a final `@attr` or `text()`); other expressions leave the object `not collected`.
pub fn xmlfilecontent<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let xpath = spec(ev, obj, "xpath")?.ok_or("xmlfilecontent_object without xpath")?;
    let mut parsed = Vec::new();
    for x in &xpath.values {
        match parse_xpath(x) {
            Some(p) => parsed.push((x.clone(), p)),
            None => return Ok(Collected::not_collected(format!("XPath {x:?} is outside the subset kensa evaluates"))),
        }
    }
    let mut items = Vec::new();
    for (dir, name) in locations(ev, obj)? {
        let Some(name) = name else { continue };
        let fp = join(&dir, &name);
        if !ev.ctx.root.is_file(&fp) {
            continue;
        }
        let data = ev.ctx.root.read_limited(&fp, 16 << 20).map_err(|e| e.to_string())?;
        let Ok(doc) = crate::xml::parse(&data, &[]) else { continue };
        for (x, (steps, tail)) in &parsed {
            let values = xpath_values(&doc, steps, tail);
            if values.is_empty() {
                continue;
            }
            let mut it = Item::new();
            it.set("filepath", fp.clone()).set("path", dir.clone()).set("filename", name.clone()).set("xpath", x.clone()).set_many("value_of", values);
            items.push(it);
        }
    }
    Ok(Collected::items(items))
}

/// SELinux file labels live in extended attributes, which filesystem sources do not expose yet:
/// objects that match no file are `does not exist` (exact), others are `not collected` (the
/// tests using them become `unknown`). Process labels under an offline tree's /proc: no processes.
pub fn selinuxsecuritycontext<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    if obj.child("pid").is_some() {
        return Ok(if ev.ctx.live { Collected::not_collected("process SELinux contexts are not read by kensa") } else { Collected::items(vec![]) });
    }
    let live = ev.ctx.live;
    let locs: Vec<_> = locations(ev, obj)?.into_iter().filter(|(d, _)| live || !(d == "/proc" || d.starts_with("/proc/"))).collect();
    if locs.is_empty() {
        return Ok(Collected::items(vec![]));
    }
    Ok(Collected::not_collected(format!("SELinux labels (security.selinux extended attributes) of {} file(s) cannot be read from this source", locs.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpath_subset() {
        let doc = crate::xml::parse(br#"<zone><service name="ssh"/><service name="dhcp"/><port port="22" protocol="tcp"/></zone>"#, &[]).unwrap();
        let (s, t) = parse_xpath("/zone/service[@name='ssh']").unwrap();
        assert_eq!(xpath_values(&doc, &s, &t).len(), 1);
        let (s, t) = parse_xpath("/zone/port/@port").unwrap();
        assert_eq!(xpath_values(&doc, &s, &t), vec!["22".to_string()]);
        let (s, t) = parse_xpath("/zone/service[@name='ftp']").unwrap();
        assert!(xpath_values(&doc, &s, &t).is_empty());
        assert!(parse_xpath("//service").is_none());
        assert!(parse_xpath("/zone/service[1]").is_none());
    }

    #[test]
    fn prefixes() {
        assert_eq!(literal_prefix_dir(r"^/etc/ssh/sshd_config\.d/.*\.conf$"), "/etc/ssh/sshd_config.d");
        assert_eq!(literal_prefix_dir(r"^/etc/sysctl.d/.*$"), "/etc");
        assert_eq!(literal_prefix_dir(r"/etc/foo"), "/");
        assert_eq!(literal_prefix_dir(r"^/etc/rsyslog\.d/[^/]+$"), "/etc/rsyslog.d");
        assert_eq!(literal_prefix_dir(r"^/var/log/audit(|/.*)$"), "/var/log");
    }
}
