//! Comparisons per second per scheme over realistic version strings.
//!
//! `cargo bench -p kensa-version` prints, per scheme, the rate of `kensa_version::compare` on
//! strings (parse both sides + compare, what `kensa version compare --batch` does) and of
//! comparing already-parsed versions (what the matcher does: parse the installed version
//! once, compare it against many range bounds). Hand-written harness: no heavy bench crate.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kensa_version::{Scheme, Version};

fn corpus(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::Rpm => &[
            "2.34-125.el9_5.1", "2.34-100.el9", "1:2.34-125.el9_5.8", "4.18.0-553.el9", "1.1.1k-12.el8_9",
            "3.0.7-27.el9", "1:3.0.7-28.el9_4", "252-46.el9_5.2", "0.9.1-3.el9~rc1", "5.1.8-9.el9",
        ],
        Scheme::Deb => &[
            "2.36-9+deb12u4", "2.36-9+deb12u10", "1:2.38.1-5+deb12u1", "3.0.11-1~deb12u2", "3.0.15-1~deb12u1",
            "252.30-1~deb12u2", "7.88.1-10+deb12u8", "1.2.13.dfsg-1", "2:8.2.3995-1ubuntu2.21", "5.2.15-2+b7",
        ],
        Scheme::Apk => &[
            "1.36.1-r29", "1.36.1-r31", "3.3.2-r0", "3.3.2_rc1-r0", "8.11.1-r0", "2.40.1-r1", "1.2.5-r0",
            "0.5.0_git20230411-r2", "6.4_p20231125-r0", "1.3.1-r2",
        ],
        Scheme::Pypi => &[
            "2.31.0", "2.32.3", "1.26.18", "2.0.0rc1", "24.0", "3.1.4.post1", "1!2.0", "0.41.2.dev3", "2.2.2+cpu",
            "68.2.0",
        ],
        Scheme::Npm => &[
            "4.17.21", "4.17.20", "1.6.8", "1.7.0-beta.2", "18.3.1", "0.0.0-experimental-7f8c501f6-20240208",
            "5.0.0-rc.1", "2.8.1", "7.5.4", "10.2.0",
        ],
        Scheme::Maven => &[
            "2.17.1", "2.15.0", "5.3.31", "6.1.0-M1", "3.2.0-SNAPSHOT", "1.2.3.Final", "2.0.0-rc2", "9.4.53.v20231009",
            "31.1-jre", "1.0-alpha-2",
        ],
        Scheme::Go => &[
            "v1.21.5", "v0.17.0", "v0.0.0-20231006140011-7918f672742d", "v2.4.0+incompatible", "v1.59.0",
            "v0.15.0", "v1.6.0-rc.1", "v0.18.0", "v1.3.1", "v0.0.0-20240213143201-ec583247a57a",
        ],
    }
}

/// Runs `f` over all ordered pairs repeatedly for about `budget`; returns comparisons/second.
fn rate(pairs: usize, budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    // Warm up (also builds the lazily compiled regexes).
    f();
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < budget {
        for _ in 0..64 {
            done += f();
        }
    }
    let _ = pairs;
    done as f64 / start.elapsed().as_secs_f64()
}

/// A peer implementation timed in its own interpreter over the same pairs: (label, program,
/// args). The script reads `A<TAB>B` lines on stdin, compares for ~0.4 s and prints the rate.
fn peer(scheme: Scheme) -> Option<(&'static str, String, Vec<String>)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let venv_python = std::env::var("KENSA_TEST_VENV").unwrap_or(format!("{home}/.cache/kensa-test-venv")) + "/bin/python";
    let npm_dir = std::env::var("KENSA_TEST_NPM").unwrap_or(format!("{home}/.cache/kensa-test-npm"));
    let py_loop = |setup: &str, cmp: &str| {
        format!(
            "import sys, time\n{setup}\npairs=[l.split('\\t') for l in sys.stdin.read().split('\\n') if l]\n\
             n=0\nt=time.perf_counter()\nwhile time.perf_counter()-t<0.4:\n    for a,b in pairs:\n        {cmp}\n    n+=len(pairs)\n\
             print(n/(time.perf_counter()-t))"
        )
    };
    match scheme {
        Scheme::Rpm => Some((
            "python3-rpm labelCompare",
            "/usr/bin/python3".into(),
            vec!["-c".into(), py_loop("import rpm", "rpm.labelCompare(('0',a,'1'),('0',b,'1'))")],
        )),
        Scheme::Pypi => Some((
            "packaging Version(a) < Version(b)",
            venv_python,
            vec!["-c".into(), py_loop("from packaging.version import Version", "Version(a) < Version(b)")],
        )),
        Scheme::Npm => Some((
            "node-semver compare(a, b)",
            "node".into(),
            vec![
                "-e".into(),
                format!(
                    "const s=require('{npm_dir}/node_modules/semver');const p=require('fs').readFileSync(0,'utf8').split('\\n').filter(Boolean).map(l=>l.split('\\t'));\
                     let n=0;const t=process.hrtime.bigint();const el=()=>Number(process.hrtime.bigint()-t)/1e9;\
                     while(el()<0.4){{for(const [a,b] of p)s.compare(a,b,true);n+=p.length}}console.log(n/el())"
                ),
            ],
        )),
        _ => None,
    }
}

fn run_peer(scheme: Scheme, strs: &[&str]) -> Option<(&'static str, f64)> {
    use std::io::Write;
    let (label, program, args) = peer(scheme)?;
    let input: String = strs.iter().flat_map(|a| strs.iter().map(move |b| format!("{a}\t{b}\n"))).collect();
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let rate: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((label, rate))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects schemes by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let budget = Duration::from_millis(400);
    println!("{:<6} {:>22} {:>22}", "scheme", "compare(str,str)/s", "parsed cmp/s");
    let mut peers = Vec::new();
    for scheme in Scheme::ALL {
        if filter.as_deref().is_some_and(|f| !scheme.name().contains(f)) {
            continue;
        }
        let strs = corpus(scheme);
        let n = strs.len() * strs.len();
        let from_strings = rate(n, budget, || {
            let mut k = 0;
            for a in strs {
                for b in strs {
                    black_box(kensa_version::compare(scheme, black_box(a), black_box(b)).unwrap());
                    k += 1;
                }
            }
            k
        });
        let parsed: Vec<Version> = strs.iter().map(|s| Version::parse(scheme, s).unwrap()).collect();
        let pre_parsed = rate(n, budget, || {
            let mut k = 0;
            for a in &parsed {
                for b in &parsed {
                    black_box(black_box(a).compare(black_box(b)));
                    k += 1;
                }
            }
            k
        });
        println!("{:<6} {:>20.2}M {:>20.2}M", scheme.name(), from_strings / 1e6, pre_parsed / 1e6);
        peers.extend(run_peer(scheme, strs).map(|(label, rate)| (scheme, label, from_strings, rate)));
    }
    if !peers.is_empty() {
        println!("\npeers (same pairs, from strings, timed inside the peer's own interpreter):");
        for (scheme, label, ours, theirs) in peers {
            println!("{:<6} {label:<36} {:>8.3}M/s  kensa {:>7.1}x faster", scheme.name(), theirs / 1e6, ours / theirs);
        }
    }
}
