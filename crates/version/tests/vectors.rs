//! Every row of the upstream test vectors in `../shared/data/versions/` (see its README.md for
//! provenance and columns). Values are used exactly as stored: no trimming.

use std::cmp::Ordering;

use kensa_version::{apk, deb, go, maven, npm, pypi, rpm, Scheme};

/// Data rows (header skipped) of a shared TSV file, split on TAB; `None` skips (no data).
fn rows(file: &str, columns: usize) -> Option<Vec<Vec<String>>> {
    let path = kensa_testdata::shared_path(&format!("versions/{file}"))?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    for (n, line) in text.split('\n').enumerate().skip(1) {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
        assert_eq!(fields.len(), columns, "{file} line {}: expected {columns} columns: {line:?}", n + 1);
        out.push(fields);
    }
    assert!(!out.is_empty(), "{file} has no rows");
    Some(out)
}

fn sign(s: &str) -> Ordering {
    match s {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        other => panic!("bad expected value {other:?}"),
    }
}

fn boolean(s: &str) -> bool {
    match s {
        "true" => true,
        "false" => false,
        other => panic!("bad boolean {other:?}"),
    }
}

/// Collects mismatches so one run reports them all.
struct Failures(Vec<String>, &'static str);

impl Failures {
    fn new(file: &'static str) -> Failures {
        Failures(Vec::new(), file)
    }
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    fn finish(self, total: usize) {
        assert!(self.0.is_empty(), "{}: {} of {total} rows fail:\n{}", self.1, self.0.len(), self.0.join("\n"));
    }
}

/// node-semver options from the JSON column, with JavaScript truthiness.
fn npm_options(json: &str) -> npm::Options {
    if json.is_empty() {
        return npm::Options::default();
    }
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("options {json:?}: {e}"));
    let truthy = |k: &str| match v.get(k) {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(serde_json::Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    npm::Options { loose: truthy("loose"), include_prerelease: truthy("includePrerelease") }
}

#[test]
fn rpm_vercmp() {
    let Some(rows) = rows("rpm.tsv", 3) else { return };
    let mut f = Failures::new("rpm.tsv");
    for r in &rows {
        let got = rpm::vercmp(&r[0], &r[1]);
        f.check(got == sign(&r[2]), || format!("vercmp({:?}, {:?}) = {got:?}, want {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn dpkg_compare() {
    let Some(rows) = rows("dpkg.tsv", 3) else { return };
    let mut f = Failures::new("dpkg.tsv");
    for r in &rows {
        let got = kensa_version::compare(Scheme::Deb, &r[0], &r[1]);
        f.check(got.as_ref().ok() == Some(&sign(&r[2])), || format!("{:?} vs {:?} = {got:?}, want {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn dpkg_parse() {
    let Some(rows) = rows("dpkg-parse.tsv", 4) else { return };
    let mut f = Failures::new("dpkg-parse.tsv");
    for r in &rows {
        let got = deb::Version::parse(&r[0]);
        let ok = got.as_ref().is_ok_and(|v| {
            v.epoch().to_string() == r[1] && v.upstream() == r[2] && v.revision() == r[3]
        });
        f.check(ok, || format!("parse({:?}) = {got:?}, want epoch {} upstream {:?} revision {:?}", r[0], r[1], r[2], r[3]));
    }
    f.finish(rows.len());
}

#[test]
fn dpkg_validity() {
    let Some(rows) = rows("dpkg-validity.tsv", 3) else { return };
    let mut f = Failures::new("dpkg-validity.tsv");
    for r in &rows {
        let got = deb::validate(&r[0]);
        let ok = if boolean(&r[1]) {
            got == deb::Validity::Valid
        } else if r[2].starts_with("parseversion:error") {
            matches!(got, deb::Validity::Error(_))
        } else if r[2].starts_with("parseversion:warn") {
            matches!(got, deb::Validity::Warning(_))
        } else {
            // Dpkg::Version::is_valid rejects warnings and errors alike.
            got != deb::Validity::Valid
        };
        f.check(ok, || format!("validate({:?}) = {got:?}, want valid={} ({})", r[0], r[1], r[2]));
        // A hard error is also an error value from compare(); a warning still compares.
        let cmp = kensa_version::compare(Scheme::Deb, &r[0], "1.0");
        f.check(cmp.is_err() == matches!(got, deb::Validity::Error(_)), || format!("compare({:?}) = {cmp:?}", r[0]));
    }
    f.finish(rows.len());
}

#[test]
fn apk_compare() {
    let Some(rows) = rows("apk.tsv", 3) else { return };
    let mut f = Failures::new("apk.tsv");
    for r in &rows {
        let got = kensa_version::compare(Scheme::Apk, &r[0], &r[1]);
        f.check(got.as_ref().ok() == Some(&sign(&r[2])), || format!("{:?} vs {:?} = {got:?}, want {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn apk_constraint() {
    let Some(rows) = rows("apk-constraint.tsv", 3) else { return };
    let mut f = Failures::new("apk-constraint.tsv");
    for r in &rows {
        let got = apk::Constraint::parse(&r[1]).map(|c| c.matches(&r[0]));
        f.check(got.as_ref().ok() == Some(&boolean(&r[2])), || format!("{:?} in {:?} = {got:?}, want {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn apk_validity() {
    let Some(rows) = rows("apk-validity.tsv", 3) else { return };
    let mut f = Failures::new("apk-validity.tsv");
    for r in &rows {
        let got = apk::validate(&r[0]);
        f.check(got == boolean(&r[1]), || format!("validate({:?}) = {got}, want {}", r[0], r[1]));
    }
    f.finish(rows.len());
}

#[test]
fn pep440_compare() {
    let Some(rows) = rows("pep440.tsv", 3) else { return };
    let mut f = Failures::new("pep440.tsv");
    for r in &rows {
        let got = kensa_version::compare(Scheme::Pypi, &r[0], &r[1]);
        f.check(got.as_ref().ok() == Some(&sign(&r[2])), || format!("{:?} vs {:?} = {got:?}, want {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn pep440_validity() {
    let Some(rows) = rows("pep440-validity.tsv", 3) else { return };
    let mut f = Failures::new("pep440-validity.tsv");
    for r in &rows {
        let got = pypi::Version::parse(&r[0]);
        f.check(got.is_ok() == boolean(&r[1]), || format!("parse({:?}) = {got:?}, want valid={}", r[0], r[1]));
    }
    f.finish(rows.len());
}

#[test]
fn pep440_specifier() {
    let Some(rows) = rows("pep440-specifier.tsv", 3) else { return };
    let mut f = Failures::new("pep440-specifier.tsv");
    for r in &rows {
        let got = pypi::Specifiers::parse(&r[1]).map(|s| s.contains_str(&r[0]));
        f.check(got.as_ref().ok() == Some(&boolean(&r[2])), || format!("{:?} in {:?} = {got:?}, want {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn semver_compare() {
    let Some(rows) = rows("semver.tsv", 4) else { return };
    let mut f = Failures::new("semver.tsv");
    for r in &rows {
        let opts = npm_options(&r[3]);
        let got = npm::Version::parse_with(&r[0], opts)
            .and_then(|a| npm::Version::parse_with(&r[1], opts).map(|b| a.cmp(&b)));
        f.check(got.as_ref().ok() == Some(&sign(&r[2])), || format!("{:?} vs {:?} ({}) = {got:?}, want {}", r[0], r[1], r[3], r[2]));
        // The CLI/`compare` entry point parses loosely; it must agree on every row.
        let loose = kensa_version::compare(Scheme::Npm, &r[0], &r[1]);
        f.check(loose.as_ref().ok() == Some(&sign(&r[2])), || format!("compare(npm, {:?}, {:?}) = {loose:?}", r[0], r[1]));
    }
    f.finish(rows.len());
}

#[test]
fn semver_range() {
    let Some(rows) = rows("semver-range.tsv", 4) else { return };
    let mut f = Failures::new("semver-range.tsv");
    for r in &rows {
        let got = npm::satisfies(&r[0], &r[1], npm_options(&r[3]));
        f.check(got == boolean(&r[2]), || format!("satisfies({:?}, {:?}, {}) = {got}, want {}", r[0], r[1], r[3], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn semver_validity() {
    let Some(rows) = rows("semver-validity.tsv", 4) else { return };
    let mut f = Failures::new("semver-validity.tsv");
    for r in &rows {
        let got = npm::is_valid(&r[0], npm_options(&r[3]));
        f.check(got == boolean(&r[1]), || format!("valid({:?}, {}) = {got}, want {} ({})", r[0], r[3], r[1], r[2]));
    }
    f.finish(rows.len());
}

#[test]
fn maven_compare() {
    let Some(rows) = rows("maven.tsv", 3) else { return };
    let mut f = Failures::new("maven.tsv");
    for r in &rows {
        let got = kensa_version::compare(Scheme::Maven, &r[0], &r[1]);
        f.check(got.as_ref().ok() == Some(&sign(&r[2])), || format!("{:?} vs {:?} = {got:?}, want {}", r[0], r[1], r[2]));
        let parsed = (maven::Version::parse(&r[0]), maven::Version::parse(&r[1]));
        f.check(parsed.0.is_ok() && parsed.1.is_ok(), || format!("parse {:?} / {:?}", r[0], r[1]));
    }
    f.finish(rows.len());
}

#[test]
fn go_semver_compare() {
    let Some(rows) = rows("go-semver.tsv", 3) else { return };
    let mut f = Failures::new("go-semver.tsv");
    for r in &rows {
        // Upstream semantics: semver.Compare, where invalid versions sort first.
        let got = go::compare_lenient(&r[0], &r[1]);
        f.check(got == sign(&r[2]), || format!("Compare({:?}, {:?}) = {got:?}, want {}", r[0], r[1], r[2]));
        // The checked entry point agrees on valid pairs and refuses invalid ones.
        let checked = kensa_version::compare(Scheme::Go, &r[0], &r[1]);
        let both_valid = go::is_valid(&r[0]) && go::is_valid(&r[1]);
        f.check(if both_valid { checked.as_ref().ok() == Some(&got) } else { checked.is_err() }, || {
            format!("compare(go, {:?}, {:?}) = {checked:?}", r[0], r[1])
        });
    }
    f.finish(rows.len());
}

#[test]
fn go_semver_validity() {
    let Some(rows) = rows("go-semver-validity.tsv", 3) else { return };
    let mut f = Failures::new("go-semver-validity.tsv");
    for r in &rows {
        let got = go::Version::parse(&r[0]);
        let ok = match (boolean(&r[1]), &got) {
            (true, Ok(v)) => r[2].strip_prefix("canonical=") == Some(v.canonical().as_str()),
            (false, Err(_)) => true,
            _ => false,
        };
        f.check(ok, || format!("parse({:?}) = {got:?}, want valid={} {}", r[0], r[1], r[2]));
    }
    f.finish(rows.len());
}
