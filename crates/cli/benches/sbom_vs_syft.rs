//! `kensa sbom` against Syft on the same Debian test tree (../shared/tools/make-test-rootfs.sh).
//! Prints wall-time ratios and kensa's peak RSS; run with
//! `cargo bench -p kensa-cli --bench sbom_vs_syft`. Goals: >= 15x faster than Syft, <= 64 MiB.
//!
//! Two pairings: everything each tool finds by default (kensa's deep inspection vs Syft's
//! directory catalogers), and OS packages only (`--deep-inspection off` vs Syft's dpkg cataloger
//! alone). Both tools write CycloneDX JSON to /dev/null; each is run a few times and the best
//! time kept (the tree is in the page cache after the first run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss_kib: i64,
    rest: [i64; 13],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// Peak RSS of the largest child waited for so far, in MiB.
fn children_max_rss_mib() -> f64 {
    const RUSAGE_CHILDREN: i32 = -1;
    let mut r = Rusage { utime: [0; 2], stime: [0; 2], maxrss_kib: 0, rest: [0; 13] };
    // SAFETY: getrusage fills the struct, whose layout matches Linux's `struct rusage` on 64-bit.
    let rc = unsafe { getrusage(RUSAGE_CHILDREN, &mut r) };
    assert_eq!(rc, 0);
    r.maxrss_kib as f64 / 1024.0
}

fn best_of(runs: usize, program: &Path, args: &[&str]) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let st = Command::new(program).args(args).env("SYFT_CHECK_FOR_APP_UPDATE", "false").stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
            let t = start.elapsed();
            assert!(st.success() || st.code() == Some(3), "{} {args:?} failed: {st}", program.display());
            t
        })
        .min()
        .unwrap()
}

fn count_packages(kensa: &Path, root: &str, extra: &[&str]) -> usize {
    let out = Command::new(kensa).args(["sbom", root, "--format", "json"]).args(extra).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kensa json output");
    v["packages"].as_array().map(|a| a.len()).unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    let kensa = Path::new(env!("CARGO_BIN_EXE_kensa"));
    let root = rootfs.to_str().unwrap().to_string();
    let dir_arg = format!("dir:{root}");

    // kensa runs first, so the children's peak RSS below is kensa's alone.
    let kensa_all = best_of(5, kensa, &["sbom", &root, "--format", "cyclonedx-json"]);
    let kensa_os = best_of(5, kensa, &["sbom", &root, "--format", "cyclonedx-json", "--deep-inspection", "off"]);
    let rss = children_max_rss_mib();
    let n_all = count_packages(kensa, &root, &[]);
    let n_os = count_packages(kensa, &root, &["--deep-inspection", "off"]);
    println!("tree: {root}");
    println!("kensa sbom (default, deep inspection):  {n_all} packages, best of 5 {:.1} ms", ms(kensa_all));
    println!("kensa sbom --deep-inspection off:       {n_os} packages, best of 5 {:.1} ms", ms(kensa_os));
    println!("kensa peak RSS over all runs: {rss:.1} MiB (goal <= 64 MiB)");

    let Some(syft) = kensa_testdata::venv_tool("syft") else { return };
    let syft_all = best_of(3, &syft, &[&dir_arg, "-o", "cyclonedx-json", "-q"]);
    let syft_os = best_of(3, &syft, &[&dir_arg, "-o", "cyclonedx-json", "-q", "--override-default-catalogers", "dpkg-db-cataloger"]);
    println!("syft dir: (default catalogers):         best of 3 {:.1} ms", ms(syft_all));
    println!("syft dir: (dpkg-db-cataloger only):     best of 3 {:.1} ms", ms(syft_os));
    println!("ratio default:  kensa is {:.1}x faster than syft (goal >= 15x)", syft_all.as_secs_f64() / kensa_all.as_secs_f64());
    println!("ratio OS only:  kensa is {:.1}x faster than syft (goal >= 15x)", syft_os.as_secs_f64() / kensa_os.as_secs_f64());
}
