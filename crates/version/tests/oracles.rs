//! Differential tests: seeded random (often odd) versions, specifiers and ranges, each judged
//! by the upstream implementation itself and by this crate. The oracles are the ones
//! `scripts/install-test-deps.sh` installs: rpm's Python bindings, dpkg, pypa/packaging and
//! node-semver. Missing oracles skip (and fail under CI, where the script has run).

use std::cmp::Ordering;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use kensa_version::{deb, go, npm, pypi, rpm, Scheme};

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

/// Runs `program args`, feeds `input` on stdin, returns stdout lines.
fn run(program: &Path, args: &[&str], input: &str) -> Vec<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{} failed", program.display());
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn sign(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "-1",
        Ordering::Equal => "0",
        Ordering::Greater => "1",
    }
}

/// Guards against a vacuous sample: every expected answer must occur often enough.
fn assert_varied(what: &str, answers: &[String], expected: &[&str]) {
    for e in expected {
        let n = answers.iter().filter(|a| a == e).count();
        assert!(n * 50 >= answers.len(), "{what}: answer {e:?} occurs only {n} times in {}", answers.len());
    }
}

fn assert_no_mismatch(what: &str, mismatches: Vec<String>, total: usize) {
    assert!(mismatches.is_empty(), "{what}: {} of {total} differ from upstream:\n{}", mismatches.len(), mismatches.join("\n"));
}

fn rpm_string(rng: &mut fastrand::Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.usize(1..7) {
        s += pick(rng, &["1", "0", "2", "10", "007", "a", "B", "rc", ".", "~", "^", "_", "+", "-", ":", "", "é"]);
    }
    if s.is_empty() {
        s.push('1');
    }
    s
}

#[test]
fn rpm_against_python_rpm() {
    let python = Path::new("/usr/bin/python3");
    let probe = Command::new(python).args(["-c", "import rpm"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(!kensa_testdata::in_ci(), "python3-rpm is missing (scripts/install-test-deps.sh installs it)");
        eprintln!("SKIP: python3-rpm not installed");
        return;
    }
    let mut rng = fastrand::Rng::with_seed(20261125);
    let pairs: Vec<(String, String)> = (0..1500)
        .map(|_| {
            let a = rpm_string(&mut rng);
            let b = if rng.u8(..4) == 0 { a.clone() } else { rpm_string(&mut rng) };
            (a, b)
        })
        .collect();
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let script = r#"
import sys, rpm
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    a, b = line.split("\t")
    raw = rpm.labelCompare(("0", a, "0"), ("0", b, "0"))
    va, vb = rpm.ver(a), rpm.ver(b)
    print(raw, (va > vb) - (va < vb))
"#;
    let lines = run(python, &["-c", script], &input);
    assert_eq!(lines.len(), pairs.len());
    assert_varied("rpm", &lines, &["-1 -1", "0 0", "1 1"]);
    let mut bad = Vec::new();
    for ((a, b), line) in pairs.iter().zip(&lines) {
        let (raw, evr) = line.split_once(' ').unwrap();
        let ours_raw = sign(rpm::vercmp(a, b));
        let ours_evr = sign(rpm::compare_evr(&rpm::EvrRef::split(a), &rpm::EvrRef::split(b)));
        if ours_raw != raw || ours_evr != evr {
            bad.push(format!("{a:?} vs {b:?}: rpm vercmp {raw} evr {evr}, ours {ours_raw} {ours_evr}"));
        }
    }
    assert_no_mismatch("rpm", bad, pairs.len());
}

fn deb_string(rng: &mut fastrand::Rng) -> String {
    let mut s = String::new();
    if rng.u8(..5) == 0 {
        s += pick(rng, &["1:", "0:", "2:", "a:", ":", "-1:"]);
    }
    s += pick(rng, &["1", "0", "2", "10", "01", "1a", "a"]);
    for _ in 0..rng.usize(0..4) {
        s += pick(rng, &[".", "+", "~", "", ".", ":", "-"]);
        s += pick(rng, &["1", "0", "2", "10", "a", "b", "Z", "dfsg", "~", "rc"]);
    }
    if rng.bool() {
        s += pick(rng, &["-1", "-0ubuntu1", "-2", "-1+b1", "-1~bpo1", "-", "-1_2", "-a"]);
    }
    if rng.u8(..20) == 0 {
        s += pick(rng, &[" ", "@", "!"]);
    }
    s
}

#[test]
fn deb_against_dpkg() {
    if !kensa_testdata::require_tool("dpkg") {
        return;
    }
    let mut rng = fastrand::Rng::with_seed(20261125);
    let dpkg = |a: &str, op: &str, b: &str| -> Option<bool> {
        let st = Command::new("dpkg").args(["--compare-versions", a, op, b]).stderr(Stdio::null()).status().unwrap();
        match st.code() {
            Some(0) => Some(true),
            Some(1) => Some(false),
            _ => None,
        }
    };
    let mut bad = Vec::new();
    let mut answers = Vec::new();
    let n = 150;
    for _ in 0..n {
        let a = deb_string(&mut rng);
        let b = if rng.u8(..5) == 0 { a.clone() } else { deb_string(&mut rng) };
        let upstream = match (dpkg(&a, "lt", &b), dpkg(&a, "eq", &b)) {
            (Some(true), _) => Some(Ordering::Less),
            (Some(false), Some(true)) => Some(Ordering::Equal),
            (Some(false), Some(false)) => Some(Ordering::Greater),
            _ => None,
        };
        let ours = kensa_version::compare(Scheme::Deb, &a, &b).ok();
        answers.push(format!("{upstream:?}"));
        if ours != upstream {
            bad.push(format!("{a:?} vs {b:?}: dpkg {upstream:?}, ours {ours:?}"));
        }
    }
    assert_varied("dpkg", &answers, &["Some(Less)", "Some(Equal)", "Some(Greater)", "None"]);
    assert_no_mismatch("dpkg", bad, n);

    // Validity: dpkg refuses hard errors (exit status 2) and prints a warning otherwise.
    let mut bad = Vec::new();
    let mut kinds = Vec::new();
    for _ in 0..n {
        let v = deb_string(&mut rng);
        let out = Command::new("dpkg").args(["--compare-versions", &v, "eq", &v]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let upstream = match out.status.code() {
            Some(0) | Some(1) if stderr.contains("warning") => "warning",
            Some(0) | Some(1) => "valid",
            _ => "error",
        };
        let ours = match deb::validate(&v) {
            deb::Validity::Valid => "valid",
            deb::Validity::Warning(_) => "warning",
            deb::Validity::Error(_) => "error",
        };
        kinds.push(upstream.to_string());
        if ours != upstream {
            bad.push(format!("{v:?}: dpkg {upstream} ({}), ours {ours}", stderr.trim()));
        }
    }
    assert_varied("dpkg validity", &kinds, &["valid", "warning", "error"]);
    assert_no_mismatch("dpkg validity", bad, n);
}

fn pep440_string(rng: &mut fastrand::Rng) -> String {
    let mut s = String::new();
    s += pick(rng, &["", "", "", "v", "V", " ", "1!", "0!"]);
    s += pick(
        rng,
        &["1", "0", "2", "01", "1.0", "1.0.0", "2.1", "1.2.3.4", "1..0", ".1", "18446744073709551615", "18446744073709551616.9", "1.99999999999999999999999"],
    );
    if rng.u8(..3) == 0 {
        s += pick(rng, &["", ".", "-", "_"]);
        s += pick(rng, &["a", "b", "c", "rc", "alpha", "beta", "pre", "preview", "RC", "A"]);
        s += pick(rng, &["", "1", "0", "-1", ".2"]);
    }
    if rng.u8(..3) == 0 {
        s += pick(rng, &[".post1", "-1", "post", "-post-2", "_r3", ".rev", "-r", "post0"]);
    }
    if rng.u8(..3) == 0 {
        s += pick(rng, &[".dev", ".dev1", "dev2", "-dev", "_dev_3", ".DEV4"]);
    }
    if rng.u8(..4) == 0 {
        s += pick(rng, &["+abc", "+1.2", "+ubuntu-1", "+a_b.c", "+", "+a..b", "+ABC.01", "+123456789012345678901234"]);
    }
    if rng.u8(..10) == 0 {
        s += pick(rng, &[" ", "\u{a0}", "x", ".*"]);
    }
    s
}

fn pep440_specifier(rng: &mut fastrand::Rng) -> String {
    let n = rng.usize(1..3);
    (0..n)
        .map(|_| {
            let op = pick(rng, &["==", "!=", "<=", ">=", "<", ">", "~=", "===", "== ", " >= "]);
            let mut v = pep440_string(rng).trim().to_string();
            if op.starts_with("==") && rng.u8(..3) == 0 || op == "!=" && rng.bool() {
                v = v.split('+').next().unwrap().to_string() + ".*";
            }
            format!("{op}{v}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn pep440_against_packaging() {
    let Some(python) = kensa_testdata::venv_tool("python") else { return };
    let mut rng = fastrand::Rng::with_seed(20261125);
    let mut cases = Vec::new();
    for _ in 0..1500 {
        let a = pep440_string(&mut rng);
        if rng.bool() {
            let b = if rng.u8(..4) == 0 { a.clone() } else { pep440_string(&mut rng) };
            cases.push(("cmp", a, b));
        } else {
            cases.push(("spec", a, pep440_specifier(&mut rng)));
        }
    }
    let input: String = cases.iter().map(|(k, a, b)| format!("{k}\t{a}\t{b}\n")).collect();
    let script = r#"
import sys
from packaging.version import Version, InvalidVersion
from packaging.specifiers import SpecifierSet, InvalidSpecifier
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    kind, a, b = line.split("\t")
    if kind == "cmp":
        try:
            va, vb = Version(a), Version(b)
        except InvalidVersion:
            print("err")
            continue
        print((va > vb) - (va < vb), str(va))
    else:
        try:
            s = SpecifierSet(b)
        except InvalidSpecifier:
            print("err")
            continue
        print("true" if s.contains(a, prereleases=True) else "false")
"#;
    let lines = run(&python, &["-c", script], &input);
    assert_eq!(lines.len(), cases.len());
    let kinds: Vec<String> = lines.iter().map(|l| l.split(' ').next().unwrap().to_string()).collect();
    assert_varied("packaging", &kinds, &["-1", "0", "1", "true", "false", "err"]);
    let mut bad = Vec::new();
    for ((kind, a, b), want) in cases.iter().zip(&lines) {
        let ours = if *kind == "cmp" {
            // The sign, then the normalized form (`str(Version)`).
            match (kensa_version::compare(Scheme::Pypi, a, b), pypi::Version::parse(a)) {
                (Ok(o), Ok(v)) => format!("{} {v}", sign(o)),
                _ => "err".into(),
            }
        } else {
            match pypi::Specifiers::parse(b) {
                Ok(s) => s.contains_str(a).to_string(),
                Err(_) => "err".into(),
            }
        };
        if &ours != want {
            bad.push(format!("{kind} {a:?} {b:?}: packaging {want}, ours {ours}"));
        }
    }
    assert_no_mismatch("packaging", bad, cases.len());
}

fn semver_string(rng: &mut fastrand::Rng) -> String {
    let mut s = String::new();
    s += pick(rng, &["", "", "", "v", "=", " ", "v ", "= "]);
    s += pick(rng, &["1.2.3", "0.0.1", "1.2.0", "2.0.0", "01.2.3", "1.02.3", "1.2", "1", "0.1.0", "1.3.0", "10.0.0"]);
    if rng.u8(..3) == 0 {
        s += pick(rng, &["-", "", "-"]);
        s += pick(rng, &["beta", "alpha.1", "0", "rc.1", "01", "1", "beta.2", "x-y", "-"]);
    }
    if rng.u8(..5) == 0 {
        s += pick(rng, &["+build", "+1.2", "+", "+b.01"]);
    }
    s
}

fn semver_range(rng: &mut fastrand::Rng) -> String {
    let comparator = |rng: &mut fastrand::Rng| {
        let op = pick(rng, &["", "=", "<", ">", "<=", ">=", "~", "^", "~>", "> ", "^ ", "~ "]);
        let v = pick(
            rng,
            &["1", "1.2", "1.2.3", "1.x", "*", "x", "1.2.3-beta", "0.0.1", "0.1.x", "1.2.*", "0", "0.0", "2.0.0-rc.1", "v1.2.3", "1.2.3beta", "X.1"],
        );
        format!("{op}{v}")
    };
    let mut parts = Vec::new();
    for _ in 0..rng.usize(1..3) {
        let set = if rng.u8(..4) == 0 {
            format!("{} - {}", comparator(rng).trim_start_matches(['<', '>', '=', '~', '^', ' ']), comparator(rng).trim_start_matches(['<', '>', '=', '~', '^', ' ']))
        } else {
            (0..rng.usize(1..3)).map(|_| comparator(rng)).collect::<Vec<_>>().join(" ")
        };
        parts.push(set);
    }
    parts.join(pick(rng, &[" || ", "||", " ||"]))
}

#[test]
fn semver_against_node_semver() {
    let module = kensa_testdata::test_npm_dir().join("node_modules/semver");
    if !module.join("package.json").is_file() || !kensa_testdata::have_tool("node") {
        assert!(!kensa_testdata::in_ci(), "node or node-semver missing at {} (scripts/install-test-deps.sh)", module.display());
        eprintln!("SKIP: node or node-semver missing at {}", module.display());
        return;
    }
    let mut rng = fastrand::Rng::with_seed(20261125);
    let mut cases = Vec::new();
    for _ in 0..2000 {
        let opts = pick(&mut rng, &["{}", "{\"loose\":true}", "{\"includePrerelease\":true}", "{\"loose\":true,\"includePrerelease\":true}"]);
        let a = semver_string(&mut rng);
        if rng.u8(..3) == 0 {
            let b = if rng.u8(..4) == 0 { a.clone() } else { semver_string(&mut rng) };
            cases.push(("cmp", a, b, opts));
        } else {
            cases.push(("range", a, semver_range(&mut rng), opts));
        }
    }
    let input: String = cases.iter().map(|(k, a, b, o)| format!("{k}\t{a}\t{b}\t{o}\n")).collect();
    let script = format!(
        r#"
const semver = require({module:?});
const lines = require("fs").readFileSync(0, "utf8").split("\n");
for (const line of lines) {{
  if (!line) continue;
  const [kind, a, b, opts] = line.split("\t");
  const o = JSON.parse(opts);
  if (kind === "cmp") {{
    let r;
    try {{ r = String(semver.compare(a, b, o)); }} catch (e) {{ r = "err"; }}
    console.log(r);
  }} else {{
    console.log(String(semver.satisfies(a, b, o)));
  }}
}}
"#,
        module = module.to_str().unwrap()
    );
    let lines = run(Path::new("node"), &["-e", &script], &input);
    assert_eq!(lines.len(), cases.len());
    assert_varied("node-semver", &lines, &["-1", "0", "1", "true", "false", "err"]);
    let mut bad = Vec::new();
    for ((kind, a, b, opts), want) in cases.iter().zip(&lines) {
        let o = npm::Options { loose: opts.contains("loose"), include_prerelease: opts.contains("include") };
        let ours = if *kind == "cmp" {
            match (npm::Version::parse_with(a, o), npm::Version::parse_with(b, o)) {
                (Ok(x), Ok(y)) => sign(x.cmp(&y)).to_string(),
                _ => "err".into(),
            }
        } else {
            npm::satisfies(a, b, o).to_string()
        };
        if &ours != want {
            bad.push(format!("{kind} {a:?} {b:?} {opts}: node-semver {want}, ours {ours}"));
        }
    }
    assert_no_mismatch("node-semver", bad, cases.len());
}

fn go_string(rng: &mut fastrand::Rng) -> String {
    let mut s = String::new();
    s += pick(rng, &["v", "v", "v", "v", "", "V"]);
    s += pick(rng, &["1", "0", "2", "01", "10", ""]);
    if rng.u8(..5) != 0 {
        s += pick(rng, &[".0", ".2", ".10", ".01", "."]);
        if rng.u8(..4) != 0 {
            s += pick(rng, &[".0", ".3", ".11", ".00", ""]);
        }
    }
    if rng.u8(..3) == 0 {
        s += pick(rng, &["-alpha", "-beta.2", "-0", "-01", "-rc.1", "-0.20191109021931-daa7c04131f5", "-", "-a..b", "-x-y", "-1.2"]);
    }
    if rng.u8(..4) == 0 {
        s += pick(rng, &["+incompatible", "+meta", "+", "+a.b", "+a..b", "+0x"]);
    }
    s
}

#[test]
fn go_against_x_mod_semver() {
    // The Go toolchain vendors golang.org/x/mod/semver; build it with a small driver.
    if !kensa_testdata::require_tool("go") {
        return;
    }
    let goroot = Command::new("go").args(["env", "GOROOT"]).output().unwrap();
    let goroot = String::from_utf8(goroot.stdout).unwrap().trim().to_string();
    let semver_go = Path::new(&goroot).join("src/cmd/vendor/golang.org/x/mod/semver/semver.go");
    let Ok(source) = std::fs::read_to_string(&semver_go) else {
        assert!(!kensa_testdata::in_ci(), "{} is missing", semver_go.display());
        eprintln!("SKIP: {} is missing", semver_go.display());
        return;
    };
    let dir = std::env::temp_dir().join(format!("kensa-go-semver-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("semver.go"), source.replacen("package semver", "package main", 1)).unwrap();
    std::fs::write(
        dir.join("main.go"),
        r#"package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		f := strings.Split(in.Text(), "\t")
		fmt.Fprintf(out, "%d %v %q\n", Compare(f[0], f[1]), IsValid(f[0]), Canonical(f[0]))
	}
}
"#,
    )
    .unwrap();
    std::fs::write(dir.join("go.mod"), "module oracle\n\ngo 1.17\n").unwrap();
    let bin = dir.join("oracle");
    let built = Command::new("go")
        .args(["build", "-o", bin.to_str().unwrap(), "."])
        .current_dir(&dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", dir.join("cache"))
        .status()
        .unwrap();
    assert!(built.success(), "go build of the x/mod/semver oracle failed");
    let mut rng = fastrand::Rng::with_seed(20261125);
    let pairs: Vec<(String, String)> = (0..1500)
        .map(|_| {
            let a = go_string(&mut rng);
            let b = if rng.u8(..4) == 0 { a.clone() } else { go_string(&mut rng) };
            (a, b)
        })
        .collect();
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let lines = run(&bin, &[], &input);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(lines.len(), pairs.len());
    let mut bad = Vec::new();
    let mut answers = Vec::new();
    for ((a, b), line) in pairs.iter().zip(&lines) {
        let parsed = go::Version::parse(a);
        let canonical = parsed.as_ref().map(|v| v.canonical()).unwrap_or_default();
        let ours = format!("{} {} {canonical:?}", sign(go::compare_lenient(a, b)), parsed.is_ok());
        answers.push(line.split(' ').next().unwrap().to_string());
        if &ours != line {
            bad.push(format!("{a:?} vs {b:?}: x/mod/semver {line}, ours {ours}"));
        }
    }
    assert_varied("go", &answers, &["-1", "0", "1"]);
    assert_no_mismatch("go", bad, pairs.len());
}
