//! Background matching: a report is acknowledged once stored, matched later by the matcher thread.
//! An acknowledged report whose match never ran (the server stopped first) is matched after a
//! restart on the same data directory; a machine reported twice before its match is matched once,
//! with the inventory stored last; stored findings are exactly what kensa-matcher finds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kensa_inventory::{Inventory, Location, OsInfo, Package, PackageType};
use kensa_server::{AppState, ServerConfig};
use serde_json::{json, Value};

const ADMIN: &str = "matching-test-admin-token-0123456789";

/// A vulnerability database of the real PyPA advisories (None, with a message, without the data).
fn vuln_db(dir: &Path) -> Option<PathBuf> {
    let pypa = kensa_testdata::shared_path("advisories/pypa/pypa-advisory-database.tar.gz")?;
    let db = dir.join("vuln.db");
    kensa_vulndb::update::import_files(&db, &[pypa]).unwrap();
    Some(db)
}

fn config(dir: &Path, db: &Path) -> ServerConfig {
    ServerConfig {
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        vuln_db: Some(db.to_path_buf()),
        admin_token: Some(ADMIN.into()),
        machines_file: None,
        tls: None,
        tick: Duration::from_secs(3600),
        agentless_limits: kensa_disk::Limits::default(),
    }
}

/// The API router served on an ephemeral port until [`Running::stop`].
struct Running {
    url: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    fn start(state: Arc<AppState>) -> Running {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let router = kensa_server::api::router(state);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Running { url: format!("http://{addr}"), shutdown, thread }
    }

    fn stop(self) {
        let _ = self.shutdown.send(());
        self.thread.join().unwrap();
    }
}

fn call(method: &str, url: &str, token: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into();
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(body.unwrap_or_default())
        .unwrap();
    let mut resp = http.run(req).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Enrolls `name` and returns its agent credential.
fn enroll(s: &Running, name: &str) -> String {
    let (st, v) = call("POST", &format!("{}/api/v1/enrollment-tokens", s.url), ADMIN, None);
    assert_eq!(st, 201, "{v}");
    let (st, v) = call("POST", &format!("{}/api/v1/agents/enroll", s.url), v["token"].as_str().unwrap(), Some(serde_json::to_vec(&json!({"name": name})).unwrap()));
    assert_eq!(st, 200, "{v}");
    v["credential"].as_str().unwrap().to_string()
}

/// A Debian 12 machine with these Python packages.
fn inventory(name: &str, python: &[(&str, &str)]) -> Inventory {
    let os = OsInfo { id: "debian".into(), version_id: "12".into(), codename: Some("bookworm".into()), source_file: "/etc/os-release".into(), ..Default::default() };
    let packages = python
        .iter()
        .map(|(n, v)| {
            let mut p = Package::new(PackageType::Pypi, *n, *v, format!("pkg:pypi/{n}@{v}"));
            p.locations.push(Location { path: format!("/usr/lib/python3/dist-packages/{n}-{v}.dist-info/METADATA") });
            p
        })
        .collect();
    Inventory { target: name.into(), os: Some(os), packages, warnings: Vec::new() }
}

fn report(s: &Running, credential: &str, machine: &str, inv: &Inventory) {
    let (st, v) = call("PUT", &format!("{}/api/v1/machines/{machine}/inventory", s.url), credential, Some(serde_json::to_vec(inv).unwrap()));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["matchQueued"], true, "{v}");
}

fn findings(s: &Running, machine: &str, status: &str) -> Vec<Value> {
    let (st, v) = call("GET", &format!("{}/api/v1/findings?machineId={machine}&status={status}&maxResults=1000", s.url), ADMIN, None);
    assert_eq!(st, 200, "{v}");
    v["findings"].as_array().unwrap().clone()
}

fn coverage(s: &Running, machine: &str) -> Value {
    let (st, v) = call("GET", &format!("{}/api/v1/coverage", s.url), ADMIN, None);
    assert_eq!(st, 200, "{v}");
    v["coveredResources"].as_array().unwrap().iter().find(|r| r["resourceId"] == machine).cloned().unwrap_or(Value::Null)
}

/// Waits (polling, bounded) until the matcher has nothing left to do.
fn wait_drained(state: &AppState) {
    let start = Instant::now();
    while state.match_backlog() > 0 {
        assert!(start.elapsed() < Duration::from_secs(120), "the matcher did not drain: {} machines left", state.match_backlog());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// kensa-matcher's findings for `inv`, as JSON by (vulnerability id, package name).
fn expected(db: &Path, inv: &Inventory) -> std::collections::BTreeMap<(String, String), Value> {
    let db = kensa_vulndb::VulnDb::open(db).unwrap();
    let found = kensa_matcher::match_inventory(&db, inv, &kensa_matcher::MatchOptions::default(), &mut |_, _| {}).unwrap().findings;
    found.iter().map(|f| (id_of(&serde_json::to_value(f).unwrap()), serde_json::to_value(f).unwrap())).collect()
}

fn id_of(f: &Value) -> (String, String) {
    let d = &f["packageVulnerabilityDetails"];
    (d["vulnerabilityId"].as_str().unwrap().to_string(), d["vulnerablePackages"][0]["name"].as_str().unwrap().to_string())
}

/// The API's findings without the fields the server adds, by (vulnerability id, package name).
fn as_matched(found: &[Value]) -> std::collections::BTreeMap<(String, String), Value> {
    found
        .iter()
        .map(|f| {
            let mut f = f.clone();
            for k in ["firstObservedAt", "lastObservedAt", "updatedAt", "resources"] {
                f.as_object_mut().unwrap().remove(k).unwrap_or_else(|| panic!("finding without {k}"));
            }
            (id_of(&f), f)
        })
        .collect()
}

#[test]
fn acknowledged_report_is_matched_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = vuln_db(tmp.path()) else { return };
    let cfg = config(tmp.path(), &db);
    let inv = inventory("host-1", &[("requests", "2.25.0"), ("six", "1.16.0")]);
    let want = expected(&db, &inv);
    assert!(want.contains_key(&("PYSEC-2023-74".to_string(), "requests".to_string())), "the advisories affect requests 2.25.0: {:?}", want.keys());

    // First run: the matcher never starts, as if the server died right after acknowledging.
    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    let s = Running::start(state.clone());
    let agent = enroll(&s, "host-1");
    report(&s, &agent, "host-1", &inv);
    assert_eq!(state.match_backlog(), 1);
    assert!(findings(&s, "host-1", "ALL").is_empty());
    let c = coverage(&s, "host-1");
    assert_eq!((c["scanStatus"]["statusCode"].as_str(), c["scanStatus"]["reason"].as_str()), (Some("ACTIVE"), Some("PENDING_INITIAL_SCAN")), "{c}");
    assert!(c["lastScannedAt"].is_null(), "not scanned yet: {c}");
    s.stop();
    drop(state);

    // Second run on the same data directory: the stored report is matched without being re-sent.
    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    state.start_matcher().unwrap();
    let s = Running::start(state.clone());
    wait_drained(&state);
    assert_eq!(state.matches_done(), 1);
    let got = findings(&s, "host-1", "ACTIVE");
    // Stored split into a machine part and shared vulnerability details, served whole: exactly
    // what the matcher reports.
    assert_eq!(as_matched(&got), want);
    for f in &got {
        assert_eq!(f["resources"][0]["id"], "host-1");
        assert_eq!(f["firstObservedAt"], f["lastObservedAt"]);
    }
    let c = coverage(&s, "host-1");
    assert_eq!(c["scanStatus"]["reason"], "SUCCESSFUL", "{c}");
    assert!(c["lastScannedAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{c}");

    // The first look at the database queues every stored inventory (the findings were not
    // matched against this file yet as far as the store knows).
    assert_eq!(state.rematch_if_database_changed(), Some(1));
    wait_drained(&state);
    assert_eq!(state.matches_done(), 2);
    assert_eq!(as_matched(&findings(&s, "host-1", "ACTIVE")), want);
    s.stop();

    // A third start finds nothing pending and the same database: nothing is matched again.
    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    state.start_matcher().unwrap();
    assert_eq!(state.rematch_if_database_changed(), None);
    wait_drained(&state);
    assert_eq!(state.matches_done(), 0);
    // A new database file re-matches every stored inventory without the machine sending anything.
    std::fs::remove_file(&db).unwrap();
    assert_eq!(state.rematch_if_database_changed(), None, "no database, nothing to match against");
    vuln_db(tmp.path()).unwrap();
    assert_eq!(state.rematch_if_database_changed(), Some(1));
    wait_drained(&state);
    assert_eq!(state.matches_done(), 1);
}

#[test]
fn quick_reports_are_matched_once_with_the_latest_inventory() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(db) = vuln_db(tmp.path()) else { return };
    let cfg = config(tmp.path(), &db);
    let old = inventory("host-2", &[("requests", "2.25.0")]);
    let new = inventory("host-2", &[("urllib3", "1.26.4"), ("jinja2", "2.11.2")]);
    let (want_old, want_new) = (expected(&db, &old), expected(&db, &new));
    assert!(!want_old.is_empty() && !want_new.is_empty());
    assert!(want_old.keys().all(|k| !want_new.contains_key(k)));

    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    let s = Running::start(state.clone());
    let agent = enroll(&s, "host-2");
    report(&s, &agent, "host-2", &old);
    report(&s, &agent, "host-2", &new);
    assert_eq!(state.match_backlog(), 1, "one machine queued once");
    state.start_matcher().unwrap();
    wait_drained(&state);
    assert_eq!(state.matches_done(), 1, "matched once");
    // Only the latest inventory's findings; the first inventory was never matched, so nothing of
    // it opened (nor closed).
    assert_eq!(as_matched(&findings(&s, "host-2", "ACTIVE")), want_new);
    assert_eq!(findings(&s, "host-2", "ALL").len(), want_new.len());

    // The same inventory again: every finding unchanged, nothing rewritten.
    let before = findings(&s, "host-2", "ACTIVE");
    report(&s, &agent, "host-2", &new);
    wait_drained(&state);
    assert_eq!(state.matches_done(), 2);
    let after = findings(&s, "host-2", "ACTIVE");
    let updated = |v: &[Value]| v.iter().map(|f| (id_of(f), f["updatedAt"].clone(), f["firstObservedAt"].clone())).collect::<Vec<_>>();
    assert_eq!(updated(&before), updated(&after));

    // Back to the old inventory: its findings open, the others close.
    report(&s, &agent, "host-2", &old);
    wait_drained(&state);
    assert_eq!(as_matched(&findings(&s, "host-2", "ACTIVE")), want_old);
    let closed = findings(&s, "host-2", "CLOSED");
    assert_eq!(closed.iter().map(id_of).collect::<std::collections::BTreeSet<_>>(), want_new.keys().cloned().collect());

    // Tagging the machine excluded closes its findings; removing the tag re-opens them.
    let tags = |t: Value| {
        let (st, v) = call("PUT", &format!("{}/api/v1/machines/host-2/tags", s.url), ADMIN, Some(serde_json::to_vec(&json!({"tags": t})).unwrap()));
        assert_eq!(st, 200, "{v}");
        wait_drained(&state);
    };
    tags(json!({"InspectorEc2Exclusion": ""}));
    assert!(findings(&s, "host-2", "ACTIVE").is_empty());
    assert_eq!(findings(&s, "host-2", "CLOSED").len(), want_old.len() + want_new.len());
    tags(json!({"team": "blue"}));
    assert_eq!(as_matched(&findings(&s, "host-2", "ACTIVE")), want_old);
    let done = state.matches_done();
    tags(json!({"team": "red"}));
    assert_eq!(state.matches_done(), done, "other tag changes need no re-match");
    s.stop();
}
