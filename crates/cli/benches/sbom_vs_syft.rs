//! `kensa sbom` against Syft on the same Debian test tree (OS packages; deep inspection adds its
//! own catalogers later). Prints the wall-time ratio and kensa's peak RSS; run with
//! `cargo bench -p kensa-cli --bench sbom_vs_syft`. Goals: >= 15x faster than Syft, <= 64 MiB.
//!
//! Both tools write CycloneDX JSON to /dev/null; each is run a few times and the best time is
//! kept (the tree is in the page cache after the first run of either).

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

/// Peak RSS of the largest child waited for so far, in KiB.
fn children_max_rss_kib() -> i64 {
    const RUSAGE_CHILDREN: i32 = -1;
    let mut r = Rusage { utime: [0; 2], stime: [0; 2], maxrss_kib: 0, rest: [0; 13] };
    // SAFETY: getrusage fills the struct, whose layout matches Linux's `struct rusage` on 64-bit.
    let rc = unsafe { getrusage(RUSAGE_CHILDREN, &mut r) };
    assert_eq!(rc, 0);
    r.maxrss_kib
}

fn best_of(runs: usize, mut cmd: impl FnMut() -> Command) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let st = cmd().stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
            let t = start.elapsed();
            assert!(st.success() || st.code() == Some(3), "command failed: {st}");
            t
        })
        .min()
        .unwrap()
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test --benches` passes nothing: run either way.
    let Some(rootfs) = kensa_testdata::debian_rootfs() else { return };
    let kensa = env!("CARGO_BIN_EXE_kensa");
    let root = rootfs.to_str().unwrap().to_string();
    let kensa_cmd = || {
        let mut c = Command::new(kensa);
        c.args(["sbom", &root, "--format", "cyclonedx-json"]);
        c
    };
    let kensa_time = best_of(5, kensa_cmd);
    // Measured before Syft runs, so the children's peak is kensa's.
    let kensa_rss_mib = children_max_rss_kib() as f64 / 1024.0;
    let packages = {
        let out = kensa_cmd().args(["--format", "json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["packages"].as_array().map(|a| a.len()).unwrap_or(0)
    };
    println!("kensa sbom {}: {packages} packages, best of 5 {:.1} ms, peak RSS {kensa_rss_mib:.1} MiB", Path::new(&root).display(), kensa_time.as_secs_f64() * 1e3);

    let Some(syft) = kensa_testdata::venv_tool("syft") else { return };
    let syft_time = best_of(3, || {
        let mut c = Command::new(&syft);
        c.args([&format!("dir:{root}"), "-o", "cyclonedx-json", "-q"]).env("SYFT_CHECK_FOR_APP_UPDATE", "false");
        c
    });
    println!("syft dir:{}: best of 3 {:.1} ms", Path::new(&root).display(), syft_time.as_secs_f64() * 1e3);
    let ratio = syft_time.as_secs_f64() / kensa_time.as_secs_f64();
    println!("ratio: kensa is {ratio:.1}x faster than syft (goal >= 15x); kensa peak RSS {kensa_rss_mib:.1} MiB (goal <= 64 MiB)");
}
