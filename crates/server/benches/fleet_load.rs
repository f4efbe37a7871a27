//! Load benchmark: 2,000 simulated agents enroll and report 1,000-package inventories to one server
//! on this machine, then send heartbeats. Prints reports/s and latency percentiles, and compares
//! with what 10,000 agents on the default 30-minute interval need (5.6 reports/s, p99 < 100 ms).
//!
//! `cargo bench -p kensa-server --bench fleet_load` (env AGENTS, PACKAGES, CLIENTS override).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kensa_inventory::{Inventory, Location, OsInfo, Package, PackageType};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A realistic inventory: Debian packages plus Python and npm packages (some of which the shared
/// advisories affect, so matching does real work).
fn inventory(agent: usize, packages: usize) -> Inventory {
    let os = OsInfo { id: "debian".into(), version_id: "12".into(), codename: Some("bookworm".into()), source_file: "/etc/os-release".into(), ..Default::default() };
    let mut pkgs = Vec::with_capacity(packages);
    let lang = [("requests", "2.25.0"), ("urllib3", "1.26.4"), ("jinja2", "2.11.2"), ("django", "3.2.1"), ("pyyaml", "5.3")];
    let npm = [("lodash", "4.17.15"), ("minimist", "1.2.0"), ("axios", "0.21.0"), ("express", "4.17.1"), ("moment", "2.29.1")];
    for i in 0..packages {
        let p = match i % 10 {
            0 => {
                let (n, v) = lang[i / 10 % lang.len()];
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
                let v = format!("1.{}.{}-{}", i % 7, agent % 3, i % 5);
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

fn main() {
    let agents = env_usize("AGENTS", 2000);
    let packages = env_usize("PACKAGES", 1000);
    let clients = env_usize("CLIENTS", 8);
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
        data_dir: data,
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        vuln_db: Some(vuln_db),
        admin_token: Some(admin.clone()),
        machines_file: None,
        tls: None,
        tick: Duration::from_secs(3600),
    };
    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(kensa_server::serve(cfg, state)).unwrap();
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
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..agents).map(|i| gzip(&serde_json::to_vec(&inventory(i, packages)).unwrap())).collect());
    println!("inventory: {packages} packages, {} bytes gzip-compressed", bodies[0].len());
    let creds = Arc::new(creds);

    let phase = |name: &str, heartbeat: bool| {
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (next, bodies, creds, base) = (next.clone(), bodies.clone(), creds.clone(), base.clone());
                std::thread::spawn(move || {
                    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= bodies.len() {
                            return lat;
                        }
                        let auth = format!("Bearer {}", creds[i]);
                        let s = Instant::now();
                        let status = if heartbeat {
                            http.post(format!("{base}/api/v1/machines/agent-{i}/heartbeat"))
                                .header("Authorization", &auth)
                                .header("Content-Type", "application/json")
                                .send(&b"{}"[..])
                                .unwrap()
                                .status()
                        } else {
                            http.put(format!("{base}/api/v1/machines/agent-{i}/inventory"))
                                .header("Authorization", &auth)
                                .header("Content-Type", "application/json")
                                .header("Content-Encoding", "gzip")
                                .send(&bodies[i][..])
                                .unwrap()
                                .status()
                        };
                        assert!(status.is_success(), "agent-{i}: HTTP {status}");
                        lat.push(s.elapsed());
                    }
                })
            })
            .collect();
        let lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let elapsed = t.elapsed();
        report(name, lat.clone(), elapsed);
        lat.len() as f64 / elapsed.as_secs_f64()
    };
    let inv_rate = phase(&format!("inventory reports ({clients} concurrent clients)"), false);
    let hb_rate = phase(&format!("heartbeats ({clients} concurrent clients)"), true);
    let needed = 10_000.0 / 1800.0;
    println!(
        "10,000 agents every 30 minutes need {needed:.1} reports/s: inventory capacity is {:.0}x that, heartbeat capacity {:.0}x",
        inv_rate / needed,
        hb_rate / needed
    );
}
