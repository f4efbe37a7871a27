//! Load benchmark: 2,000 simulated agents enroll and report 1,000-package inventories to one server
//! on this machine, then send heartbeats. Reports are acknowledged once stored and matched by the
//! server's background matcher, so the benchmark measures both: how fast reports are answered
//! (reports/s, latency percentiles) and how fast the matcher drains them (machines matched/s).
//!
//! Phases: (1) burst: every agent reports once, back to back from CLIENTS clients, then the
//! matcher drains; (2) sustained: changed inventories sent on a fixed schedule at RATE reports/s
//! (default 10,000 agents / 30 minutes = 5.6/s) for SECONDS seconds, latency measured from each
//! report's scheduled time, the matcher's backlog sampled throughout; (3) heartbeats.
//!
//! `cargo bench -p kensa-server --bench fleet_load` (env AGENTS, PACKAGES, CLIENTS, RATE, SECONDS).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kensa_inventory::{Inventory, Location, OsInfo, Package, PackageType};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A realistic inventory: Debian packages plus Python and npm packages (some of which the shared
/// advisories affect, so matching does real work). Each `round` after the first changes every deb
/// version and upgrades one Python package in five (some findings close, most stay).
fn inventory(agent: usize, packages: usize, round: usize) -> Inventory {
    let os = OsInfo { id: "debian".into(), version_id: "12".into(), codename: Some("bookworm".into()), source_file: "/etc/os-release".into(), ..Default::default() };
    let mut pkgs = Vec::with_capacity(packages);
    let lang = [("requests", "2.25.0"), ("urllib3", "1.26.4"), ("jinja2", "2.11.2"), ("django", "3.2.1"), ("pyyaml", "5.3")];
    let upgraded = ["2.32.0", "2.2.2", "3.1.4", "4.2.16", "6.0.1"];
    let npm = [("lodash", "4.17.15"), ("minimist", "1.2.0"), ("axios", "0.21.0"), ("express", "4.17.1"), ("moment", "2.29.1")];
    for i in 0..packages {
        let p = match i % 10 {
            0 => {
                let (n, mut v) = lang[i / 10 % lang.len()];
                if round > 0 && i / 10 % 5 == agent % 5 {
                    v = upgraded[i / 10 % upgraded.len()];
                }
                let mut p = Package::new(PackageType::Pypi, n, v, format!("pkg:pypi/{n}@{v}"));
                p.locations.push(Location { path: format!("/usr/lib/python3/dist-packages/{n}-{v}-{i}.dist-info/METADATA") });
                p
            }
            1 => {
                let (n, v) = npm[i / 10 % npm.len()];
                let mut p = Package::new(PackageType::Npm, n, v, format!("pkg:npm/{n}@{v}"));
                p.locations.push(Location { path: format!("/srv/app{i}/node_modules/{n}/package.json") });
                p
            }
            _ => {
                let name = format!("lib-pkg{i}");
                let v = format!("1.{}.{}-{}", i % 7, agent % 3, i % 5 + round);
                let mut p = Package::new(PackageType::Deb, &name, &v, format!("pkg:deb/debian/{name}@{v}?arch=amd64&distro=debian-12"));
                p.arch = Some("amd64".into());
                p.locations.push(Location { path: "/var/lib/dpkg/status".into() });
                p
            }
        };
        pkgs.push(p);
    }
    Inventory { target: format!("agent-{agent}"), os: Some(os), packages: pkgs, warnings: Vec::new() }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut lat: Vec<Duration>, elapsed: Duration) {
    lat.sort();
    let rate = lat.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{name}: {} requests in {:.1} s = {:.0}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        elapsed.as_secs_f64(),
        rate,
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

/// The machine's load average: the figures mean little if other work competed for the cores.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "unknown".into())
}

/// Waits until the background matcher has nothing queued; returns when that was.
fn wait_drained(state: &kensa_server::AppState) -> Instant {
    while state.match_backlog() > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    Instant::now()
}

fn main() {
    let agents = env_usize("AGENTS", 2000);
    let packages = env_usize("PACKAGES", 1000);
    let clients = env_usize("CLIENTS", 8);
    let needed = 10_000.0 / 1800.0;
    let rate = env_f64("RATE", needed);
    let seconds = env_f64("SECONDS", 60.0);
    println!("load average at start (1, 5, 15 min): {}", load_average());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let vuln_db = tmp.path().join("vuln.db");
    // Real advisories so matching does real work (PyPA and GitHub advisories from shared data).
    let shared = kensa_testdata::shared_data();
    if let Some(d) = &shared {
        let paths = vec![d.join("advisories/ghsa"), d.join("advisories/pypa/pypa-advisory-database.tar.gz")];
        kensa_vulndb::update::import_files(&vuln_db, &paths).expect("import advisories");
    } else {
        println!("shared data missing: benchmarking without a vulnerability database");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let admin = "bench-admin-token-0123456789".to_string();
    let cfg = kensa_server::ServerConfig {
        data_dir: data.clone(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        vuln_db: Some(vuln_db),
        admin_token: Some(admin.clone()),
        machines_file: None,
        tls: None,
        tick: Duration::from_secs(3600),
        agentless_limits: kensa_disk::Limits::default(),
    };
    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    let server_state = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(kensa_server::serve(cfg, server_state)).unwrap();
    });
    let base = format!("http://127.0.0.1:{port}");
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let start = Instant::now();
    while http.get(format!("{base}/api/v1/coverage")).header("Authorization", &format!("Bearer {admin}")).call().is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Enroll every agent (one-time token each).
    let t0 = Instant::now();
    let mut creds = Vec::with_capacity(agents);
    for i in 0..agents {
        let mut r = http.post(format!("{base}/api/v1/enrollment-tokens")).header("Authorization", &format!("Bearer {admin}")).send_empty().unwrap();
        let tok: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        let body = serde_json::to_vec(&serde_json::json!({"name": format!("agent-{i}")})).unwrap();
        let mut r = http
            .post(format!("{base}/api/v1/agents/enroll"))
            .header("Authorization", &format!("Bearer {}", tok["token"].as_str().unwrap()))
            .header("Content-Type", "application/json")
            .send(&body[..])
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        creds.push(v["credential"].as_str().unwrap().to_string());
    }
    println!("enrolled {agents} agents in {:.1} s", t0.elapsed().as_secs_f64());

    // Prepare bodies up front so the clients measure the server, not JSON encoding.
    let encode = |round: usize| -> Arc<Vec<Vec<u8>>> { Arc::new((0..agents).map(|i| gzip(&serde_json::to_vec(&inventory(i, packages, round)).unwrap())).collect()) };
    let (first, changed) = (encode(0), encode(1));
    println!("inventory: {packages} packages, {} bytes gzip-compressed", first[0].len());
    let creds = Arc::new(creds);

    // One request: an inventory report (`Some(body)`) or a heartbeat.
    let send = {
        let (creds, base) = (creds.clone(), base.clone());
        move |http: &ureq::Agent, i: usize, body: Option<&[u8]>| {
            let auth = format!("Bearer {}", creds[i]);
            let status = match body {
                None => http
                    .post(format!("{base}/api/v1/machines/agent-{i}/heartbeat"))
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .send(&b"{}"[..])
                    .unwrap()
                    .status(),
                Some(b) => http
                    .put(format!("{base}/api/v1/machines/agent-{i}/inventory"))
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .header("Content-Encoding", "gzip")
                    .send(b)
                    .unwrap()
                    .status(),
            };
            assert!(status.is_success(), "agent-{i}: HTTP {status}");
        }
    };

    // Closed loop: every agent once, `clients` requests in flight.
    let burst = |name: &str, bodies: Option<Arc<Vec<Vec<u8>>>>| {
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (next, bodies, send) = (next.clone(), bodies.clone(), send.clone());
                std::thread::spawn(move || {
                    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= agents {
                            return lat;
                        }
                        let s = Instant::now();
                        send(&http, i, bodies.as_ref().map(|b| &b[i][..]));
                        lat.push(s.elapsed());
                    }
                })
            })
            .collect();
        let lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let elapsed = t.elapsed();
        report(name, lat, elapsed);
        (t, elapsed)
    };

    // 1. Burst: the first report of every agent, then the matcher drains.
    let done_before = state.matches_done();
    let (t, elapsed) = burst(&format!("1. burst: first inventory reports ({clients} concurrent clients)"), Some(first.clone()));
    let backlog = state.match_backlog();
    let drained = wait_drained(&state);
    let matched = state.matches_done() - done_before;
    let drain_rate = matched as f64 / (drained - t).as_secs_f64();
    println!(
        "   background matching: {matched} machines matched in {:.1} s from the first report = {drain_rate:.1} machines/s ({backlog} still queued when the last report was answered)",
        (drained - t).as_secs_f64(),
    );
    let _ = elapsed;

    // 2. Sustained: changed inventories on a fixed schedule (open loop), matcher running alongside.
    let total = ((rate * seconds).round() as usize).clamp(1, agents);
    let done_before = state.matches_done();
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let max_backlog = Arc::new(AtomicUsize::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (state, max_backlog, sampling) = (state.clone(), max_backlog.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                max_backlog.fetch_max(state.match_backlog(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (next, bodies, send) = (next.clone(), changed.clone(), send.clone());
            std::thread::spawn(move || {
                let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return lat;
                    }
                    // Latency counts from the scheduled time, so a server that falls behind the
                    // schedule shows it (no coordinated omission).
                    let due = t + Duration::from_secs_f64(i as f64 / rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    send(&http, i, Some(&bodies[i][..]));
                    lat.push(due.elapsed());
                }
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let elapsed = t.elapsed();
    let backlog_at_end = state.match_backlog();
    let drained = wait_drained(&state);
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    report(&format!("2. sustained: changed inventories at {rate:.1}/s for {seconds:.0} s ({clients} clients, open loop)"), lat.clone(), elapsed);
    let matched = state.matches_done() - done_before;
    println!(
        "   background matching: {matched} machines matched, backlog at most {} (at the last answer {backlog_at_end}), drained {:.1} s after the last answer",
        max_backlog.load(Ordering::Relaxed),
        (drained - t - elapsed).as_secs_f64()
    );
    lat.sort();
    let sustained_p99 = percentile(&lat, 0.99);
    let sustained_rate = lat.len() as f64 / elapsed.as_secs_f64();

    // 3. Heartbeats (what agents send between reports when nothing changed).
    let (_, _) = burst(&format!("3. heartbeats ({clients} concurrent clients)"), None);

    println!("load average (1, 5, 15 min; 2 cores shared with other work): {}", load_average());
    let store_bytes: u64 = ["server.db", "server.db-wal"].iter().filter_map(|f| std::fs::metadata(data.join(f)).ok()).map(|m| m.len()).sum();
    let conn = rusqlite::Connection::open(data.join("server.db")).unwrap();
    let (findings, local, whole): (i64, f64, f64) = conn
        .query_row(
            "SELECT COUNT(*), AVG(LENGTH(f.data)), AVG(LENGTH(f.data) + LENGTH(d.data)) FROM findings f JOIN finding_details d ON d.hash = f.details_hash",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let (details, details_bytes): (i64, i64) = conn.query_row("SELECT COUNT(*), SUM(LENGTH(data)) FROM finding_details", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    println!(
        "store: {findings} findings rows, {:.0} MB (server.db + WAL); per row {local:.0} bytes of machine JSON instead of the whole finding's {whole:.0}; {details} shared vulnerability details, {:.1} MB",
        store_bytes as f64 / 1e6,
        details_bytes as f64 / 1e6
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal (10,000 agents every 30 minutes = {needed:.1} reports/s): sustained {sustained_rate:.1} reports/s with p99 {:.1} ms < 100 ms: {}; matcher {drain_rate:.1} machines/s >= {needed:.1}: {}",
        sustained_p99.as_secs_f64() * 1e3,
        verdict(sustained_rate >= needed * 0.99 && sustained_p99 < Duration::from_millis(100)),
        verdict(drain_rate >= needed)
    );
}
