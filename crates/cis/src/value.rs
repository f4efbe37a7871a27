//! OVAL operations on typed values: equals, pattern match (PCRE via fancy-regex), ordering for
//! int / float / version / evr_string, bitwise and/or, boolean.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Result<fancy_regex::Regex, String>>> = RefCell::new(HashMap::new());
}

/// A compiled OVAL (PCRE) pattern, cached per thread. `flags` is prepended (e.g. `(?m)`).
pub fn regex(pattern: &str, flags: &str) -> Result<fancy_regex::Regex, String> {
    let key = format!("{flags}\u{0}{pattern}");
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(r) = c.get(&key) {
            return r.clone();
        }
        let translated = translate_pcre(pattern, flags.contains("(?m)"));
        let r = fancy_regex::RegexBuilder::new(&format!("{flags}{translated}"))
            .backtrack_limit(1_000_000)
            .build()
            .map_err(|e| format!("invalid pattern {pattern:?}: {e}"));
        if c.len() > 20_000 {
            c.clear();
        }
        c.insert(key, r.clone());
        r
    })
}

/// Rewrites PCRE syntax that fancy-regex reads differently:
/// - `$` without multiline mode also matches before a final newline in PCRE;
/// - `\Z` (end or before a final newline), `\N` (not a newline), `\h` (horizontal space);
/// - `[` inside a character class is a literal in PCRE (`[^[\s]`), a nested class here.
fn translate_pcre(p: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(p.len() + 16);
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    let mut multiline = multiline;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let n = chars.get(i + 1).copied();
            match n {
                Some('h') => out.push_str(if in_class { " \\t" } else { "[ \\t]" }),
                Some('N') if !in_class => out.push_str("[^\\n]"),
                Some('Z') => out.push_str("(?=\\n?\\z)"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            }
            i += 2;
            continue;
        }
        if in_class {
            if c == '[' {
                if chars.get(i + 1) == Some(&':') {
                    // POSIX class [:alpha:]: copy through the closing ":]".
                    if let Some(end) = (i + 2..chars.len().saturating_sub(1)).find(|&k| chars[k] == ':' && chars[k + 1] == ']') {
                        out.extend(&chars[i..end + 2]);
                        i = end + 2;
                        continue;
                    }
                }
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                // A leading `]` (or `^]`) is a literal.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                // Inline flags: track (?m) so `$` keeps its multiline meaning.
                let rest: String = chars[i + 2..].iter().take_while(|&&ch| ch != ')' && ch != ':').collect();
                if rest.chars().all(|ch| ch.is_ascii_alphabetic() || ch == '-') {
                    let (on, off) = rest.split_once('-').unwrap_or((&rest, ""));
                    if on.contains('m') {
                        multiline = true;
                    }
                    if off.contains('m') {
                        multiline = false;
                    }
                }
                out.push('(');
            }
            '$' if !multiline => out.push_str("(?=\\n?\\z)"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Whether `actual` (an item's value) satisfies `expected` under `op` for `datatype`.
pub fn compare(op: &str, datatype: &str, actual: &str, expected: &str) -> Result<bool, String> {
    let op = if op.is_empty() { "equals" } else { op };
    if op == "pattern match" {
        let re = regex(expected, "")?;
        return re.is_match(actual).map_err(|e| format!("pattern {expected:?}: {e}"));
    }
    match datatype {
        "int" => {
            let a = parse_int(actual)?;
            let e = parse_int(expected)?;
            match op {
                "bitwise and" => Ok(a & e == e),
                "bitwise or" => Ok(a | e == e),
                _ => ordering_op(op, a.cmp(&e)),
            }
        }
        "float" => {
            let a: f64 = actual.trim().parse().map_err(|_| format!("{actual:?} is not a float"))?;
            let e: f64 = expected.trim().parse().map_err(|_| format!("{expected:?} is not a float"))?;
            ordering_op(op, a.partial_cmp(&e).unwrap_or(Ordering::Less))
        }
        "boolean" => {
            let a = parse_bool(actual)?;
            let e = parse_bool(expected)?;
            ordering_op(op, a.cmp(&e))
        }
        "evr_string" => ordering_op(op, compare_evr(actual, expected)),
        "debian_evr_string" => {
            let ord = kensa_version::compare(kensa_version::Scheme::Deb, actual.trim(), expected.trim()).map_err(|e| e.to_string())?;
            ordering_op(op, ord)
        }
        "version" | "ios_version" => ordering_op(op, compare_version(actual, expected)),
        _ => match op {
            "equals" => Ok(actual == expected),
            "not equal" => Ok(actual != expected),
            "case insensitive equals" => Ok(actual.to_lowercase() == expected.to_lowercase()),
            "case insensitive not equal" => Ok(actual.to_lowercase() != expected.to_lowercase()),
            "greater than" | "less than" | "greater than or equal" | "less than or equal" => ordering_op(op, actual.cmp(expected)),
            "subset of" | "superset of" => Err(format!("operation {op:?} is not supported on strings")),
            other => Err(format!("unknown operation {other:?}")),
        },
    }
}

fn ordering_op(op: &str, ord: Ordering) -> Result<bool, String> {
    Ok(match op {
        "equals" | "case insensitive equals" => ord == Ordering::Equal,
        "not equal" | "case insensitive not equal" => ord != Ordering::Equal,
        "greater than" => ord == Ordering::Greater,
        "less than" => ord == Ordering::Less,
        "greater than or equal" => ord != Ordering::Less,
        "less than or equal" => ord != Ordering::Greater,
        other => return Err(format!("operation {other:?} is not valid for this datatype")),
    })
}

pub fn parse_int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).map_err(|_| format!("{s:?} is not an integer"));
    }
    t.parse::<i64>().map_err(|_| format!("{s:?} is not an integer"))
}

pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean")),
    }
}

/// rpm's `rpmvercmp` on one version or release string.
/// (Local copy until kensa-version's rpm scheme lands; same algorithm as rpm 4.x.)
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && !a[i].is_ascii_alphanumeric() && a[i] != b'~' && a[i] != b'^' {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() && b[j] != b'~' && b[j] != b'^' {
            j += 1;
        }
        // Tilde sorts before everything, even the end.
        let at = i < a.len() && a[i] == b'~';
        let bt = j < b.len() && b[j] == b'~';
        if at || bt {
            if !at {
                return Ordering::Greater;
            }
            if !bt {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret sorts after the end but before anything else.
        let ac = i < a.len() && a[i] == b'^';
        let bc = j < b.len() && b[j] == b'^';
        if ac || bc {
            if i >= a.len() {
                return Ordering::Less;
            }
            if j >= b.len() {
                return Ordering::Greater;
            }
            if !ac {
                return Ordering::Greater;
            }
            if !bc {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let (si, sj) = (i, j);
        if numeric {
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        } else {
            while i < a.len() && a[i].is_ascii_alphabetic() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_alphabetic() {
                j += 1;
            }
        }
        let (x, y) = (&a[si..i], &b[sj..j]);
        if y.is_empty() {
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        if numeric {
            let x = trim_zeros(x);
            let y = trim_zeros(y);
            match x.len().cmp(&y.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match x.cmp(y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    let ra = i < a.len();
    let rb = j < b.len();
    match (ra, rb) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        _ => Ordering::Less,
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

/// `[epoch:]version[-release]` ordering as rpm does it (missing epoch = 0).
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    fn split(s: &str) -> (i64, &str, &str) {
        let (e, rest) = match s.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, s),
        };
        let (v, r) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (e, v, r)
    }
    let (ea, va, ra) = split(a.trim());
    let (eb, vb, rb) = split(b.trim());
    ea.cmp(&eb).then_with(|| rpmvercmp(va, vb)).then_with(|| if ra.is_empty() || rb.is_empty() { Ordering::Equal } else { rpmvercmp(ra, rb) })
}

/// OVAL `version`: components separated by `.` (or other non-digits) compared numerically.
pub fn compare_version(a: &str, b: &str) -> Ordering {
    let pa: Vec<i64> = a.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(i64::MAX)).collect();
    let pb: Vec<i64> = b.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(i64::MAX)).collect();
    for k in 0..pa.len().max(pb.len()) {
        let x = pa.get(k).copied().unwrap_or(0);
        let y = pb.get(k).copied().unwrap_or(0);
        match x.cmp(&y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_ordering() {
        assert_eq!(rpmvercmp("1.0", "1.0"), Ordering::Equal);
        assert_eq!(rpmvercmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0^", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.0a", "1.0"), Ordering::Greater);
        assert_eq!(compare_evr("0:1.17-18", "1.17-17.el9"), Ordering::Greater);
        assert_eq!(compare_evr("1:0.1-1", "9.9-9"), Ordering::Greater);
    }

    #[test]
    fn pcre_translation() {
        assert!(regex(r"^[^[\s]+$", "").unwrap().is_match("abc").unwrap());
        assert!(regex(r"^auth\N+x$", "").unwrap().is_match("auth y x\n").unwrap());
        assert!(!regex(r"^a$", "").unwrap().is_match("a\nb").unwrap());
        assert!(regex(r"^a$", "(?m)").unwrap().is_match("a\nb").unwrap());
        assert!(regex(r"^[[:digit:]]+$", "").unwrap().is_match("12").unwrap());
        assert!(regex(r"^[]a]+$", "").unwrap().is_match("]a").unwrap());
    }

    #[test]
    fn operations() {
        assert!(compare("greater than or equal", "int", "15", "14").unwrap());
        assert!(compare("bitwise and", "int", "7", "5").unwrap());
        assert!(!compare("bitwise and", "int", "2", "5").unwrap());
        assert!(compare("pattern match", "string", "foo bar", r"^foo\s+(?!baz)").unwrap());
        assert!(compare("case insensitive equals", "string", "YES", "yes").unwrap());
        assert!(compare("equals", "boolean", "1", "true").unwrap());
        assert!(compare("equals", "int", "abc", "1").is_err());
        assert!(compare("less than", "version", "9.3", "9.10").unwrap());
    }
}
