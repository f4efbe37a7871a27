//! kensa's CIS scan against OpenSCAP on the same RHEL-9-like tree and profile.
//! `cargo bench -p kensa-cis`: prints both wall-clock times, the speed ratio and kensa's peak RSS.
//! Goal: >= 10x faster than `oscap xccdf eval` (without HTML report), <= 64 MB peak RSS.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const DS: &str = "/usr/share/xml/scap/ssg/content/ssg-rhel9-ds.xml";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

fn main() {
    let profile = std::env::var("KENSA_BENCH_PROFILE").unwrap_or_else(|_| "xccdf_org.ssgproject.content_profile_cis".into());
    let seed: u32 = std::env::var("KENSA_BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    if !PathBuf::from(DS).is_file() || !kensa_testdata::have_tool("oscap") {
        eprintln!("SKIP: needs {DS} and oscap (scripts/install-test-deps.sh)");
        return;
    }
    let Some(tools) = kensa_testdata::shared_tools() else { return };
    let Some(rootfs) = kensa_testdata::cached_fixture(&format!("cis-rhel9-seed{seed}"), |out| {
        let st = Command::new("bash").arg(tools.join("make-rhel9-rootfs.sh")).arg(out).arg(seed.to_string()).status().map_err(|e| e.to_string())?;
        if st.success() { Ok(()) } else { Err(format!("make-rhel9-rootfs.sh: {st}")) }
    }) else {
        return;
    };

    // kensa first (so the peak RSS reading is kensa's alone).
    let mut kensa_times = Vec::new();
    let mut rules = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let ds = kensa_cis::DataStream::load(DS.as_ref()).expect("datastream");
        let opts = kensa_cis::ScanOptions { profile: profile.clone(), ..Default::default() };
        let r = kensa_cis::scan(&ds, &opts, kensa_fs::Root::dir(&rootfs).unwrap(), false).expect("scan");
        let _json = kensa_cis::report::json(&r);
        kensa_times.push(t.elapsed().as_secs_f64());
        rules = r.rules.iter().filter(|r| r.result != "notselected").count();
    }
    let rss = peak_rss_mb();

    let out = tempfile::tempdir().unwrap();
    let o = Command::new("bash")
        .arg(tools.join("run-oscap-cis.sh"))
        .arg(&rootfs)
        .arg(out.path())
        .arg(&profile)
        .arg(DS)
        .env("NO_REPORT", "1")
        .env("TIMES", "3")
        .output()
        .expect("run-oscap-cis.sh");
    let text = String::from_utf8_lossy(&o.stdout);
    let oscap_times: Vec<f64> = text.lines().filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok()).collect();
    if oscap_times.is_empty() {
        eprintln!("oscap did not run: {text} {}", String::from_utf8_lossy(&o.stderr));
        return;
    }
    let (k, os) = (median(kensa_times), median(oscap_times));
    println!("CIS scan, profile {profile}, seed {seed} tree, {rules} rules evaluated (parse + evaluate + JSON report)");
    println!("  kensa    median {:.3} s  (5 runs, in-process)  peak RSS {:.1} MB", k, rss);
    println!("  OpenSCAP median {:.3} s  (3 runs, oscap xccdf eval --results, no HTML report)", os);
    println!("  speed ratio OpenSCAP/kensa: {:.1}x (goal >= 10x); memory goal <= 64 MB: {}", os / k, if rss <= 64.0 { "met" } else { "NOT met" });
}
