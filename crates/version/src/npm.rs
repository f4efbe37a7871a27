//! npm: SemVer 2.0 as node-semver 7 parses, orders and matches it, including `loose` parsing
//! (`v1.2.3`, `=1.2.3`, `1.2.3beta`, leading zeros) and ranges (`satisfies`: hyphen ranges,
//! `||`, `^`, `~`, x-ranges, comparators, the `loose` and `includePrerelease` options).
//!
//! This is a port of node-semver's `classes/semver.js`, `classes/range.js` and
//! `internal/re.js`: the same regular expressions (in their length-bounded "safe" form, with
//! JavaScript's `\s` and `\d` spelled out) and the same rewriting steps, so odd inputs behave
//! as they do in npm.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::{Captures, Regex};

use crate::{Scheme, VersionError};

const MAX_LENGTH: usize = 256;
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;
const MAX_SAFE_BUILD_LENGTH: usize = MAX_LENGTH - 6;

/// JavaScript's `\s` (WhiteSpace and LineTerminator).
const JS_SPACE: &str = r"[\t\n\x0B\x0C\r \u{A0}\u{1680}\u{2000}-\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}\u{FEFF}]";

fn is_js_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}'
        | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}')
}

fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// Options as node-semver reads them (`{"loose": true, "includePrerelease": true}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub loose: bool,
    pub include_prerelease: bool,
}

impl Options {
    pub const STRICT: Options = Options { loose: false, include_prerelease: false };
    pub const LOOSE: Options = Options { loose: true, include_prerelease: false };
}

/// The regular expressions of node-semver's `internal/re.js`.
struct Res {
    full: Regex,
    loose: Regex,
    build_strip: Regex,
    build: Regex,
    hyphen: Regex,
    hyphen_loose: Regex,
    comparator_trim: Regex,
    tilde_trim: Regex,
    caret_trim: Regex,
    tilde: Regex,
    tilde_loose: Regex,
    caret: Regex,
    caret_loose: Regex,
    xrange: Regex,
    xrange_loose: Regex,
    star: Regex,
    gte0: Regex,
    gte0_pre: Regex,
    comparator: Regex,
    comparator_loose: Regex,
    spaces: Regex,
}

/// node-semver's `makeSafeRegex`: bound the unbounded repetitions, then translate JavaScript
/// classes to Rust syntax.
fn safe(src: &str) -> String {
    let mut v = src.to_string();
    for (token, max) in [(r"\s", 1), (r"\d", MAX_LENGTH), ("[a-zA-Z0-9-]", MAX_SAFE_BUILD_LENGTH)] {
        v = v.replace(&format!("{token}*"), &format!("{token}{{0,{max}}}"));
        v = v.replace(&format!("{token}+"), &format!("{token}{{1,{max}}}"));
    }
    js(&v)
}

/// Translate the JavaScript-only classes (`\d` is ASCII in JS, `\s` a fixed set).
fn js(src: &str) -> String {
    src.replace(r"\d", "[0-9]").replace(r"\s", JS_SPACE)
}

fn compile(pattern: String) -> Regex {
    regex::RegexBuilder::new(&pattern).size_limit(64 << 20).build().expect("node-semver regex compiles")
}

fn res() -> &'static Res {
    static RES: OnceLock<Res> = OnceLock::new();
    RES.get_or_init(|| {
        let numid = r"0|[1-9]\d*";
        let numid_loose = r"\d+";
        let nonnumid = r"\d*[a-zA-Z-][a-zA-Z0-9-]*";
        let main = format!(r"({numid})\.({numid})\.({numid})");
        let main_loose = format!(r"({numid_loose})\.({numid_loose})\.({numid_loose})");
        let preid = format!("(?:{nonnumid}|{numid})");
        let preid_loose = format!("(?:{nonnumid}|{numid_loose})");
        let pre = format!(r"(?:-({preid}(?:\.{preid})*))");
        let pre_loose = format!(r"(?:-?({preid_loose}(?:\.{preid_loose})*))");
        let buildid = "[a-zA-Z0-9-]+";
        let build = format!(r"(?:\+({buildid}(?:\.{buildid})*))");
        let fullplain = format!("v?{main}{pre}?{build}?");
        let looseplain = format!(r"[v=\s]*{main_loose}{pre_loose}?{build}?");
        let gtlt = "((?:<|>)?=?)";
        let xrid_loose = format!("{numid_loose}|x|X|\\*");
        let xrid = format!("{numid}|x|X|\\*");
        let xrangeplain = format!(r"[v=\s]*({xrid})(?:\.({xrid})(?:\.({xrid})(?:{pre})?{build}?)?)?");
        let xrangeplain_loose =
            format!(r"[v=\s]*({xrid_loose})(?:\.({xrid_loose})(?:\.({xrid_loose})(?:{pre_loose})?{build}?)?)?");
        let lonetilde = "(?:~>?)";
        let lonecaret = r"(?:\^)";
        Res {
            // A SemVer string is at most MAX_LENGTH long, so the "safe" bounds can never bind
            // here; the unbounded forms are equivalent and much faster to run.
            full: compile(js(&format!("^{fullplain}$"))),
            loose: compile(js(&format!("^{looseplain}$"))),
            // BUILDSTRIPRE is built from the unbounded source.
            build_strip: compile(js(&build)),
            build: compile(safe(&build)),
            hyphen: compile(safe(&format!(r"^\s*({xrangeplain})\s+-\s+({xrangeplain})\s*$"))),
            hyphen_loose: compile(safe(&format!(r"^\s*({xrangeplain_loose})\s+-\s+({xrangeplain_loose})\s*$"))),
            comparator_trim: compile(safe(&format!(r"(\s*){gtlt}\s*({looseplain}|{xrangeplain})"))),
            tilde_trim: compile(safe(&format!(r"(\s*){lonetilde}\s+"))),
            caret_trim: compile(safe(&format!(r"(\s*){lonecaret}\s+"))),
            tilde: compile(safe(&format!("^{lonetilde}{xrangeplain}$"))),
            tilde_loose: compile(safe(&format!("^{lonetilde}{xrangeplain_loose}$"))),
            caret: compile(safe(&format!("^{lonecaret}{xrangeplain}$"))),
            caret_loose: compile(safe(&format!("^{lonecaret}{xrangeplain_loose}$"))),
            xrange: compile(safe(&format!(r"^{gtlt}\s*{xrangeplain}$"))),
            xrange_loose: compile(safe(&format!(r"^{gtlt}\s*{xrangeplain_loose}$"))),
            star: compile(safe(r"(<|>)?=?\s*\*")),
            gte0: compile(safe(r"^\s*>=\s*0\.0\.0\s*$")),
            gte0_pre: compile(safe(r"^\s*>=\s*0\.0\.0-0\s*$")),
            comparator: compile(safe(&format!(r"^{gtlt}\s*({fullplain})$|^$"))),
            comparator_loose: compile(safe(&format!(r"^{gtlt}\s*({looseplain})$|^$"))),
            spaces: compile(js(r"\s+")),
        }
    })
}

/// A pre-release identifier: a number below 2^53 or a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreId {
    Num(u64),
    Str(Box<str>),
}

impl PreId {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            PreId::Num(n) => n.to_string().into(),
            PreId::Str(s) => (&**s).into(),
        }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// node-semver's `compareIdentifiers`.
fn compare_identifiers(a: &PreId, b: &PreId) -> Ordering {
    if let (PreId::Num(x), PreId::Num(y)) = (a, b) {
        return x.cmp(y);
    }
    let (ta, tb) = (a.text(), b.text());
    let (anum, bnum) = (all_digits(&ta), all_digits(&tb));
    if anum && bnum {
        // JavaScript compares these as doubles.
        let (x, y): (f64, f64) = (ta.parse().unwrap_or(f64::INFINITY), tb.parse().unwrap_or(f64::INFINITY));
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if anum && !bnum {
        return Ordering::Less;
    }
    if bnum && !anum {
        return Ordering::Greater;
    }
    ta.encode_utf16().cmp(tb.encode_utf16())
}

/// A parsed SemVer version as node-semver holds it; `Ord` is `SemVer.compare` (build metadata
/// ignored).
#[derive(Debug, Clone)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub prerelease: Vec<PreId>,
    pub build: Vec<Box<str>>,
}

fn component(s: &str, which: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_SAFE_INTEGER => Ok(n),
        _ => Err(format!("invalid {which} version (larger than 2^53 - 1)")),
    }
}

impl Version {
    /// `new SemVer(s)`: strict SemVer 2.0 (a leading `v` and surrounding spaces allowed).
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        Self::parse_with(s, Options::STRICT)
    }

    /// `new SemVer(s, {loose: true})`: also `=1.2.3`, `v 1.2.3`, `1.2.3beta`, `01.2.3`.
    pub fn parse_loose(s: &str) -> Result<Version, VersionError> {
        Self::parse_with(s, Options::LOOSE)
    }

    pub fn parse_with(s: &str, options: Options) -> Result<Version, VersionError> {
        Self::parse_inner(s, options.loose).map_err(|why| VersionError::new(Scheme::Npm, s, why))
    }

    fn parse_inner(s: &str, loose: bool) -> Result<Version, String> {
        if s.encode_utf16().count() > MAX_LENGTH {
            return Err(format!("longer than {MAX_LENGTH} characters"));
        }
        let trimmed = js_trim(s);
        if let Some(v) = Self::parse_plain(trimmed, loose) {
            return v;
        }
        let re = if loose { &res().loose } else { &res().full };
        let m = re.captures(trimmed).ok_or_else(|| "not a SemVer version".to_string())?;
        let major = component(&m[1], "major")?;
        let minor = component(&m[2], "minor")?;
        let patch = component(&m[3], "patch")?;
        let prerelease = match m.get(4) {
            Some(p) if !p.as_str().is_empty() => p
                .as_str()
                .split('.')
                .map(|id| match id.parse::<u64>() {
                    Ok(n) if all_digits(id) && n < MAX_SAFE_INTEGER => PreId::Num(n),
                    _ => PreId::Str(id.into()),
                })
                .collect(),
            _ => Vec::new(),
        };
        let build = match m.get(5) {
            Some(b) if !b.as_str().is_empty() => b.as_str().split('.').map(Into::into).collect(),
            _ => Vec::new(),
        };
        Ok(Version { major, minor, patch, prerelease, build })
    }

    /// Fast path for the common `[v]MAJOR.MINOR.PATCH` form, where both node-semver regexes
    /// match trivially; `None` hands anything else to the regex.
    fn parse_plain(s: &str, loose: bool) -> Option<Result<Version, String>> {
        let body = s.strip_prefix('v').unwrap_or(s);
        let mut parts = body.split('.');
        let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        for p in [a, b, c] {
            if p.is_empty() || p.len() > 16 || !p.bytes().all(|d| d.is_ascii_digit()) || (!loose && p.len() > 1 && p.starts_with('0')) {
                return None;
            }
        }
        let num = |p: &str, which| component(p, which);
        Some((|| Ok(Version { major: num(a, "major")?, minor: num(b, "minor")?, patch: num(c, "patch")?, prerelease: Vec::new(), build: Vec::new() }))())
    }

    /// `SemVer.version`: `M.m.p[-pre]`.
    pub fn version_string(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.prerelease.is_empty() {
            s.push('-');
            let ids: Vec<_> = self.prerelease.iter().map(|p| p.text().into_owned()).collect();
            s.push_str(&ids.join("."));
        }
        s
    }

    fn compare_pre(&self, other: &Version) -> Ordering {
        match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
            (false, true) => return Ordering::Less,
            (true, false) => return Ordering::Greater,
            (true, true) => return Ordering::Equal,
            _ => {}
        }
        let mut i = 0;
        loop {
            match (self.prerelease.get(i), other.prerelease.get(i)) {
                (None, None) => return Ordering::Equal,
                (Some(_), None) => return Ordering::Greater,
                (None, Some(_)) => return Ordering::Less,
                (Some(a), Some(b)) if a == b => {}
                // Even an "equal" answer ends the comparison here, as in node-semver.
                (Some(a), Some(b)) => return compare_identifiers(a, b),
            }
            i += 1;
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| self.compare_pre(other))
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

/// `semver.valid(s, options)`.
pub fn is_valid(s: &str, options: Options) -> bool {
    Version::parse_inner(s, options.loose).is_ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone)]
struct Comparator {
    op: Op,
    /// `None` is `Comparator.ANY` (matches everything).
    semver: Option<Version>,
    /// `Comparator.value`, used to drop duplicates.
    value: String,
}

impl Comparator {
    fn parse(comp: &str, options: Options) -> Result<Comparator, String> {
        let spaces = &res().spaces;
        let comp = spaces.split(js_trim(comp)).collect::<Vec<_>>().join(" ");
        let re = if options.loose { &res().comparator_loose } else { &res().comparator };
        let m = re.captures(&comp).ok_or_else(|| format!("invalid comparator {comp:?}"))?;
        let op = match m.get(1).map_or("", |g| g.as_str()) {
            "" | "=" => Op::Eq,
            "<" => Op::Lt,
            ">" => Op::Gt,
            "<=" => Op::Le,
            ">=" => Op::Ge,
            other => return Err(format!("invalid operator {other:?}")),
        };
        let op_text = match m.get(1).map_or("", |g| g.as_str()) {
            "=" => "",
            o => o,
        };
        match m.get(2).map(|g| g.as_str()).filter(|s| !s.is_empty()) {
            None => Ok(Comparator { op, semver: None, value: String::new() }),
            Some(v) => {
                let semver = Version::parse_inner(v, options.loose)?;
                let value = format!("{op_text}{}", semver.version_string());
                Ok(Comparator { op, semver: Some(semver), value })
            }
        }
    }

    fn test(&self, v: &Version) -> bool {
        let Some(s) = &self.semver else { return true };
        let o = v.cmp(s);
        match self.op {
            Op::Eq => o == Ordering::Equal,
            Op::Lt => o == Ordering::Less,
            Op::Gt => o == Ordering::Greater,
            Op::Le => o != Ordering::Greater,
            Op::Ge => o != Ordering::Less,
        }
    }

    fn is_null_set(&self) -> bool {
        self.value == "<0.0.0-0"
    }
}

/// A node-semver range (`^1.2.3 || >=2.0.0 <3`), parsed once, tested many times.
#[derive(Debug, Clone)]
pub struct Range {
    set: Vec<Vec<Comparator>>,
    options: Options,
}

fn is_x(id: Option<&str>) -> bool {
    match id {
        None => true,
        Some(s) => s.is_empty() || s.eq_ignore_ascii_case("x") || s == "*",
    }
}

/// JavaScript's `+id + 1`, as text. Out-of-range numbers yield text the comparator parser
/// rejects, as node-semver's would.
fn plus_one(id: &str) -> String {
    match id.parse::<u64>() {
        Ok(n) if n < MAX_SAFE_INTEGER => (n + 1).to_string(),
        _ => "9007199254740992".into(),
    }
}

fn group<'h>(c: &Captures<'h>, i: usize) -> Option<&'h str> {
    c.get(i).map(|m| m.as_str())
}

fn replace_first(re: &Regex, s: &str, f: impl Fn(&Captures<'_>) -> String) -> String {
    match re.captures(s) {
        Some(c) => {
            let m = c.get(0).expect("whole match");
            format!("{}{}{}", &s[..m.start()], f(&c), &s[m.end()..])
        }
        None => s.to_string(),
    }
}

fn hyphen_replace(c: &Captures<'_>, inc_pr: bool) -> String {
    let (from, f_maj, f_min, f_pat, f_pr) = (group(c, 1).unwrap_or(""), group(c, 2), group(c, 3), group(c, 4), group(c, 5));
    let (to, t_maj, t_min, t_pat, t_pr) = (group(c, 7).unwrap_or(""), group(c, 8), group(c, 9), group(c, 10), group(c, 11));
    let z = if inc_pr { "-0" } else { "" };
    let from = if is_x(f_maj) {
        String::new()
    } else if is_x(f_min) {
        format!(">={}.0.0{z}", f_maj.unwrap_or(""))
    } else if is_x(f_pat) {
        format!(">={}.{}.0{z}", f_maj.unwrap_or(""), f_min.unwrap_or(""))
    } else if f_pr.is_some_and(|p| !p.is_empty()) {
        format!(">={from}")
    } else {
        format!(">={from}{z}")
    };
    let to = if is_x(t_maj) {
        String::new()
    } else if is_x(t_min) {
        format!("<{}.0.0-0", plus_one(t_maj.unwrap_or("")))
    } else if is_x(t_pat) {
        format!("<{}.{}.0-0", t_maj.unwrap_or(""), plus_one(t_min.unwrap_or("")))
    } else if let Some(pr) = t_pr.filter(|p| !p.is_empty()) {
        format!("<={}.{}.{}-{pr}", t_maj.unwrap_or(""), t_min.unwrap_or(""), t_pat.unwrap_or(""))
    } else if inc_pr {
        format!("<{}.{}.{}-0", t_maj.unwrap_or(""), t_min.unwrap_or(""), plus_one(t_pat.unwrap_or("")))
    } else {
        format!("<={to}")
    };
    js_trim(&format!("{from} {to}")).to_string()
}

fn replace_tilde(comp: &str, options: Options) -> String {
    let re = if options.loose { &res().tilde_loose } else { &res().tilde };
    let z = if options.include_prerelease { "-0" } else { "" };
    replace_first(re, comp, |c| {
        let (maj, min, pat, pr) = (group(c, 1), group(c, 2), group(c, 3), group(c, 4));
        let (mj, mn, pt) = (maj.unwrap_or(""), min.unwrap_or(""), pat.unwrap_or(""));
        if is_x(maj) {
            String::new()
        } else if is_x(min) {
            format!(">={mj}.0.0{z} <{}.0.0-0", plus_one(mj))
        } else if is_x(pat) {
            format!(">={mj}.{mn}.0{z} <{mj}.{}.0-0", plus_one(mn))
        } else if let Some(pr) = pr.filter(|p| !p.is_empty()) {
            format!(">={mj}.{mn}.{pt}-{pr} <{mj}.{}.0-0", plus_one(mn))
        } else {
            format!(">={mj}.{mn}.{pt} <{mj}.{}.0-0", plus_one(mn))
        }
    })
}

fn replace_caret(comp: &str, options: Options) -> String {
    let re = if options.loose { &res().caret_loose } else { &res().caret };
    let z = if options.include_prerelease { "-0" } else { "" };
    replace_first(re, comp, |c| {
        let (maj, min, pat, pr) = (group(c, 1), group(c, 2), group(c, 3), group(c, 4));
        let (mj, mn, pt) = (maj.unwrap_or(""), min.unwrap_or(""), pat.unwrap_or(""));
        if is_x(maj) {
            String::new()
        } else if is_x(min) {
            format!(">={mj}.0.0{z} <{}.0.0-0", plus_one(mj))
        } else if is_x(pat) {
            if mj == "0" {
                format!(">={mj}.{mn}.0{z} <{mj}.{}.0-0", plus_one(mn))
            } else {
                format!(">={mj}.{mn}.0{z} <{}.0.0-0", plus_one(mj))
            }
        } else if let Some(pr) = pr.filter(|p| !p.is_empty()) {
            if mj == "0" {
                if mn == "0" {
                    format!(">={mj}.{mn}.{pt}-{pr} <{mj}.{mn}.{}-0", plus_one(pt))
                } else {
                    format!(">={mj}.{mn}.{pt}-{pr} <{mj}.{}.0-0", plus_one(mn))
                }
            } else {
                format!(">={mj}.{mn}.{pt}-{pr} <{}.0.0-0", plus_one(mj))
            }
        } else if mj == "0" {
            if mn == "0" {
                format!(">={mj}.{mn}.{pt} <{mj}.{mn}.{}-0", plus_one(pt))
            } else {
                format!(">={mj}.{mn}.{pt} <{mj}.{}.0-0", plus_one(mn))
            }
        } else {
            format!(">={mj}.{mn}.{pt} <{}.0.0-0", plus_one(mj))
        }
    })
}

fn replace_xrange(comp: &str, options: Options) -> String {
    let comp = js_trim(comp);
    let re = if options.loose { &res().xrange_loose } else { &res().xrange };
    replace_first(re, comp, |c| {
        let whole = group(c, 0).unwrap_or("");
        let mut gtlt = group(c, 1).unwrap_or("").to_string();
        let (maj, min, pat) = (group(c, 2), group(c, 3), group(c, 4));
        if (is_x(maj) && !is_x(min)) || (is_x(min) && pat.is_some_and(|p| !p.is_empty()) && !is_x(pat)) {
            return comp.to_string();
        }
        let x_maj = is_x(maj);
        let x_min = x_maj || is_x(min);
        let x_pat = x_min || is_x(pat);
        let any_x = x_pat;
        if gtlt == "=" && any_x {
            gtlt.clear();
        }
        let mut pr = if options.include_prerelease { "-0" } else { "" };
        if x_maj {
            if gtlt == ">" || gtlt == "<" { "<0.0.0-0".to_string() } else { "*".to_string() }
        } else if !gtlt.is_empty() && any_x {
            let mut mj = maj.unwrap_or("").to_string();
            let mut mn = if x_min { "0".to_string() } else { min.unwrap_or("").to_string() };
            let pt = "0".to_string();
            if gtlt == ">" {
                gtlt = ">=".into();
                if x_min {
                    mj = plus_one(&mj);
                    mn = "0".into();
                } else {
                    mn = plus_one(&mn);
                }
            } else if gtlt == "<=" {
                gtlt = "<".into();
                if x_min {
                    mj = plus_one(&mj);
                } else {
                    mn = plus_one(&mn);
                }
            }
            if gtlt == "<" {
                pr = "-0";
            }
            format!("{gtlt}{mj}.{mn}.{pt}{pr}")
        } else if x_min {
            let mj = maj.unwrap_or("");
            format!(">={mj}.0.0{pr} <{}.0.0-0", plus_one(mj))
        } else if x_pat {
            let (mj, mn) = (maj.unwrap_or(""), min.unwrap_or(""));
            format!(">={mj}.{mn}.0{pr} <{mj}.{}.0-0", plus_one(mn))
        } else {
            whole.to_string()
        }
    })
}

fn split_spaces(s: &str) -> Vec<&str> {
    res().spaces.split(s).collect()
}

fn parse_comparator(comp: &str, options: Options) -> String {
    let r = res();
    let comp = r.build.replace(comp, "").into_owned();
    let comp = split_spaces(js_trim(&comp)).iter().map(|c| replace_caret(c, options)).collect::<Vec<_>>().join(" ");
    let comp = split_spaces(js_trim(&comp)).iter().map(|c| replace_tilde(c, options)).collect::<Vec<_>>().join(" ");
    let comp = split_spaces(&comp).iter().map(|c| replace_xrange(c, options)).collect::<Vec<_>>().join(" ");
    r.star.replace(js_trim(&comp), "").into_owned()
}

impl Range {
    pub fn parse(range: &str, options: Options) -> Result<Range, VersionError> {
        Self::parse_inner(range, options).map_err(|why| VersionError::new(Scheme::Npm, range, why))
    }

    fn parse_inner(range: &str, options: Options) -> Result<Range, String> {
        let r = res();
        let raw = r.spaces.replace_all(js_trim(range), " ").into_owned();
        let mut set = Vec::new();
        for part in raw.split("||") {
            let comps = Self::parse_range(js_trim(part), options)?;
            if !comps.is_empty() {
                set.push(comps);
            }
        }
        if set.is_empty() {
            return Err(format!("invalid SemVer range {raw:?}"));
        }
        if set.len() > 1 {
            let first = set[0].clone();
            set.retain(|c| !c[0].is_null_set());
            if set.is_empty() {
                set = vec![first];
            } else if set.len() > 1 {
                if let Some(any) = set.iter().find(|c| c.len() == 1 && c[0].value.is_empty()) {
                    set = vec![any.clone()];
                }
            }
        }
        Ok(Range { set, options })
    }

    fn parse_range(range: &str, options: Options) -> Result<Vec<Comparator>, String> {
        let r = res();
        let range = r.build_strip.replace_all(range, "").into_owned();
        let hr = if options.loose { &r.hyphen_loose } else { &r.hyphen };
        let range = replace_first(hr, &range, |c| hyphen_replace(c, options.include_prerelease));
        let range = r.comparator_trim.replace_all(&range, "${1}${2}${3}").into_owned();
        let range = r.tilde_trim.replace_all(&range, "${1}~").into_owned();
        let range = r.caret_trim.replace_all(&range, "${1}^").into_owned();
        let joined = range.split(' ').map(|c| parse_comparator(c, options)).collect::<Vec<_>>().join(" ");
        let gte0 = if options.include_prerelease { &r.gte0_pre } else { &r.gte0 };
        let mut list: Vec<String> = split_spaces(&joined).iter().map(|c| gte0.replace(js_trim(c), "").into_owned()).collect();
        if options.loose {
            list.retain(|c| r.comparator_loose.is_match(c));
        }
        let mut out: Vec<Comparator> = Vec::new();
        for comp in &list {
            let c = Comparator::parse(comp, options)?;
            if c.is_null_set() {
                return Ok(vec![c]);
            }
            if let Some(existing) = out.iter_mut().find(|e| e.value == c.value) {
                *existing = c;
            } else {
                out.push(c);
            }
        }
        if out.len() > 1 {
            out.retain(|c| !c.value.is_empty());
        }
        Ok(out)
    }

    /// `Range.test(version)`.
    pub fn test(&self, v: &Version) -> bool {
        self.set.iter().any(|set| test_set(set, v, self.options))
    }

    /// `semver.satisfies(version, range, options)` for a version string (parsed with the
    /// range's options; an invalid version satisfies nothing).
    pub fn test_str(&self, version: &str) -> bool {
        match Version::parse_inner(version, self.options.loose) {
            Ok(v) => self.test(&v),
            Err(_) => false,
        }
    }
}

fn test_set(set: &[Comparator], v: &Version, options: Options) -> bool {
    if !set.iter().all(|c| c.test(v)) {
        return false;
    }
    if !v.prerelease.is_empty() && !options.include_prerelease {
        // A pre-release only matches when some comparator names a pre-release of the same
        // [major, minor, patch] tuple.
        return set.iter().any(|c| match &c.semver {
            Some(s) => !s.prerelease.is_empty() && (s.major, s.minor, s.patch) == (v.major, v.minor, v.patch),
            None => false,
        });
    }
    true
}

/// `semver.satisfies(version, range, options)`: false when either does not parse.
pub fn satisfies(version: &str, range: &str, options: Options) -> bool {
    match Range::parse_inner(range, options) {
        Ok(r) => r.test_str(version),
        Err(_) => false,
    }
}
