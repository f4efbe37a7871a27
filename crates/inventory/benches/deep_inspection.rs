//! Deep inspection speed and memory against Syft on the Debian test tree.
//!
//! `cargo bench -p kensa-inventory --bench deep_inspection` prints, for the same tree and the same
//! scope (OS packages plus every language ecosystem), kensa's wall time and peak RSS and Syft's
//! (`syft dir:TREE --override-default-catalogers image`), and the ratios. Both run with a warm page
//! cache (kensa is run once before timing; Syft reads the tree after it). kensa's figures are for
//! this process (`VmHWM`), Syft's from `/usr/bin/time -v`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kensa_fs::Root;
use kensa_inventory::lang::DeepInspection;
use kensa_inventory::{scan, ScanOptions};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn syft(tree: &Path) -> Option<(Duration, u64, usize)> {
    let syft = kensa_testdata::venv_tool("syft")?;
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(syft)
        .arg(format!("dir:{}", tree.display()))
        .args(["--override-default-catalogers", "image", "-o", "syft-json", "-q"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .ok()?;
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr.lines().find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let n = doc["artifacts"].as_array().map(|a| a.len()).unwrap_or(0);
    Some((elapsed, rss, n))
}

fn main() {
    let Some(tree) = kensa_testdata::debian_rootfs() else { return };
    let root = Root::dir(&tree).unwrap();
    let opts = ScanOptions { deep_inspection: DeepInspection::all(), ..Default::default() };
    let warm = scan(&root, &opts);
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let inv = scan(&root, &opts);
        times.push(start.elapsed());
        assert_eq!(inv.packages.len(), warm.packages.len());
    }
    times.sort();
    let kensa_time = times[times.len() / 2];
    let kensa_rss = peak_rss_kib();
    let lang = warm.packages.iter().filter(|p| !p.package_type.is_os()).count();
    println!("kensa: {} packages ({lang} language), median {:.1} ms of 5 runs, peak RSS {:.1} MiB", warm.packages.len(), kensa_time.as_secs_f64() * 1e3, kensa_rss as f64 / 1024.0);
    let agent = ScanOptions { deep_inspection: DeepInspection::agent(), ..Default::default() };
    let start = Instant::now();
    let a = scan(&root, &agent);
    println!("kensa (agent paths): {} packages in {:.1} ms", a.packages.len(), start.elapsed().as_secs_f64() * 1e3);
    match syft(&tree) {
        Some((t, rss, n)) => {
            println!("syft:  {n} packages, {:.1} ms, peak RSS {:.1} MiB", t.as_secs_f64() * 1e3, rss as f64 / 1024.0);
            println!("ratio: kensa is {:.1}x faster, uses {:.1}x less memory", t.as_secs_f64() / kensa_time.as_secs_f64(), rss as f64 / kensa_rss.max(1) as f64);
        }
        None => println!("syft not available: no ratio"),
    }
}
