//! `kensa version compare`: single comparisons, exit codes, and `--batch` over shared vectors.

use std::process::Command;

fn kensa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kensa")).args(args).output().expect("run kensa")
}

fn compare(eco: &str, a: &str, b: &str) -> (Option<i32>, String) {
    let out = kensa(&["version", "compare", "--ecosystem", eco, a, b]);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

#[test]
fn single_comparisons() {
    assert_eq!(compare("deb", "1:1.0-1", "1.1-1"), (Some(0), ">".into()));
    assert_eq!(compare("rpm", "1.0~rc1", "1.0"), (Some(0), "<".into()));
    assert_eq!(compare("rpm", "2:1.0-1.el9", "2:1.0-1.el9"), (Some(0), "=".into()));
    assert_eq!(compare("apk", "1.2.3_rc1-r0", "1.2.3-r0"), (Some(0), "<".into()));
    assert_eq!(compare("pypi", "1.0.post1", "1.0"), (Some(0), ">".into()));
    assert_eq!(compare("npm", "v1.2.3", "1.2.3"), (Some(0), "=".into()));
    assert_eq!(compare("maven", "1.0-SNAPSHOT", "1.0"), (Some(0), "<".into()));
    assert_eq!(compare("go", "v1.2.3+incompatible", "v1.2.3"), (Some(0), "=".into()));
    // A version that starts with '-' is a value, not an option.
    assert_eq!(compare("maven", "-1", "1").0, Some(0));
}

#[test]
fn invalid_version_exits_2_with_reason() {
    let out = kensa(&["version", "compare", "--ecosystem", "go", "1.2.3", "v1.2.3"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid go version") && err.contains("v prefix"), "{err}");
    let out = kensa(&["version", "compare", "--ecosystem", "pypi", "french toast", "1.0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = kensa(&["version", "compare", "--ecosystem", "deb", "1.0 1", "1.0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_arguments_exit_2() {
    let out = kensa(&["version", "compare", "--ecosystem", "cargo", "1", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let out = kensa(&["version", "compare", "--ecosystem", "deb", "1"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Runs `--batch` over a shared comparison file and checks one line per data row, each the
/// expected sign.
fn batch(eco: &str, file: &str) {
    let Some(path) = kensa_testdata::shared_path(&format!("versions/{file}")) else { return };
    let out = kensa(&["version", "compare", "--ecosystem", eco, "--batch", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).filter(|l| !l.is_empty()).collect();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), rows.len(), "{file}: one output line per row");
    for (row, got) in rows.iter().zip(&lines) {
        let want = match row.split('\t').nth(2) {
            Some("-1") => "<",
            Some("0") => "=",
            Some("1") => ">",
            other => panic!("{file}: bad expected {other:?}"),
        };
        assert_eq!(*got, want, "{file}: row {row:?}");
    }
}

#[test]
fn batch_over_shared_vectors() {
    batch("deb", "dpkg.tsv");
    batch("apk", "apk.tsv");
    batch("maven", "maven.tsv");
    batch("npm", "semver.tsv");
    batch("pypi", "pep440.tsv");
}

#[test]
fn batch_reports_errors_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pairs.tsv");
    std::fs::write(&file, "a\tb\tnote\nv1.0.0\tv1.1.0\tx\nbad\tv1.0.0\t\nno-tab-here\n").unwrap();
    let out = kensa(&["version", "compare", "--ecosystem", "go", "--batch", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0], "<");
    assert!(lines[1].starts_with("error: invalid go version \"bad\""), "{}", lines[1]);
    assert!(lines[2].starts_with("error: row 4"), "{}", lines[2]);
}
