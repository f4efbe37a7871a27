//! `update` against a real HTTP server on 127.0.0.1 serving feeds in the official layouts (built
//! here from the shared data): 200, 304 on a conditional request, 500 then success, a truncated
//! body, a bad checksum and a corrupt archive. After each failure the old database must be
//! byte-identical and still searchable.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kensa_vulndb::update::{update, Feed, UpdateConfig};
use kensa_vulndb::VulnDb;
use sha2::{Digest, Sha256};

/// How a path answers.
#[derive(Clone)]
struct Route {
    body: Vec<u8>,
    etag: String,
    /// Answer 500 this many times first.
    fail_first: u32,
    /// Announce the full length but send only this many bytes, then close.
    truncate_at: Option<usize>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    /// (path, If-None-Match) of every request.
    log: Vec<(String, Option<String>)>,
}

struct Server {
    base: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: stops when the test drops the server (or after 5 minutes at most).
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            while !sp.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => handle(conn, &st),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(_) => break,
                }
            }
        });
        Server { base, state, stop, thread: Some(thread) }
    }

    fn route(&self, path: &str, body: Vec<u8>, etag: &str) {
        self.state.lock().unwrap().routes.insert(path.into(), Route { body, etag: etag.into(), fail_first: 0, truncate_at: None });
    }

    fn edit(&self, path: &str, f: impl FnOnce(&mut Route)) {
        f(self.state.lock().unwrap().routes.get_mut(path).unwrap());
    }

    fn take_log(&self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut conn: TcpStream, state: &Mutex<State>) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let path = lines.next().unwrap_or("").split_whitespace().nth(1).unwrap_or("/").to_string();
    let inm = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("if-none-match").then(|| v.trim().to_string())
    });
    let mut st = state.lock().unwrap();
    st.log.push((path.clone(), inm.clone()));
    let reply = |conn: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let _ = write!(conn, "HTTP/1.1 {status}\r\nConnection: close\r\n{headers}\r\n");
        let _ = conn.write_all(body);
        let _ = conn.flush();
    };
    let route_key = path.split('?').next().unwrap_or("").to_string();
    let Some(route) = st.routes.get_mut(&route_key) else {
        reply(&mut conn, "404 Not Found", "Content-Length: 0\r\n", b"");
        return;
    };
    if route.fail_first > 0 {
        route.fail_first -= 1;
        reply(&mut conn, "500 Internal Server Error", "Content-Length: 5\r\n", b"oops\n");
        return;
    }
    if inm.as_deref() == Some(route.etag.as_str()) {
        reply(&mut conn, "304 Not Modified", &format!("ETag: {}\r\n", route.etag), b"");
        return;
    }
    let headers = format!("Content-Length: {}\r\nETag: {}\r\n", route.body.len(), route.etag);
    match route.truncate_at {
        Some(n) => reply(&mut conn, "200 OK", &headers, &route.body[..n.min(route.body.len())]),
        None => reply(&mut conn, "200 OK", &headers, &route.body),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// osv.dev's `<ecosystem>/all.zip` layout: one `<ID>.json` per record at the top level.
fn osv_zip(tarball: &Path) -> (Vec<u8>, Vec<String>) {
    let mut ids = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tarball).unwrap()));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        ids.push(name.trim_end_matches(".json").to_string());
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&body).unwrap();
    }
    (zip.finish().unwrap().into_inner(), ids)
}

/// An NVD JSON 2.0 feed file for two CVEs, with the vectors GitHub published for them.
fn nvd_feed() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "resultsPerPage": 2, "startIndex": 0, "totalResults": 2, "format": "NVD_CVE", "version": "2.0",
        "timestamp": "2026-01-01T00:00:00.000",
        "vulnerabilities": [
            {"cve": {
                "id": "CVE-2021-44228", "sourceIdentifier": "security@apache.org", "published": "2021-12-10T10:15:09.143",
                "lastModified": "2025-02-04T15:15:13.773", "vulnStatus": "Analyzed",
                "descriptions": [{"lang": "en", "value": "Apache Log4j2 JNDI features do not protect against attacker controlled LDAP endpoints."}],
                "metrics": {
                    "cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "baseScore": 10.0, "baseSeverity": "CRITICAL"}}],
                    "cvssMetricV2": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:M/Au:N/C:C/I:C/A:C", "baseScore": 9.3}, "baseSeverity": "HIGH"}]
                },
                "weaknesses": [{"source": "nvd@nist.gov", "type": "Primary", "description": [{"lang": "en", "value": "CWE-917"}]}],
                "references": [{"url": "https://logging.apache.org/log4j/2.x/security.html", "source": "security@apache.org"}]
            }},
            {"cve": {"id": "CVE-1999-9999", "vulnStatus": "Rejected", "descriptions": [{"lang": "en", "value": "Rejected reason: test"}]}}
        ]
    }))
    .unwrap()
}

fn nvd_meta(json: &[u8]) -> Vec<u8> {
    format!(
        "lastModifiedDate:2026-01-01T00:00:00-05:00\r\nsize:{}\r\nzipSize:0\r\ngzSize:0\r\nsha256:{}\r\n",
        json.len(),
        hex::encode(Sha256::digest(json)).to_uppercase()
    )
    .into_bytes()
}

fn file_hash(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n != "vuln.db").collect()
}

#[test]
fn update_conditional_retry_and_failures_keep_the_old_database() {
    let Some(alma) = kensa_testdata::shared_path("advisories/almalinux/almalinux9.tar.gz") else { return };
    let Some(kev) = kensa_testdata::shared_path("advisories/kev/known_exploited_vulnerabilities.json") else { return };
    let (zip_body, ids) = osv_zip(&alma);
    let kev_body = std::fs::read(&kev).unwrap();
    let kev_json: serde_json::Value = serde_json::from_slice(&kev_body).unwrap();
    let kev_cves: Vec<String> = kev_json["vulnerabilities"].as_array().unwrap().iter().map(|v| v["cveID"].as_str().unwrap().to_string()).collect();
    let mut epss = String::from("#model_version:v2025.03.14,score_date:2026-01-01T12:55:00Z\ncve,epss,percentile\n");
    for (i, c) in kev_cves.iter().enumerate() {
        epss.push_str(&format!("{c},{:.5},{:.5}\n", (i % 97) as f64 / 100.0, (i % 89) as f64 / 100.0));
    }
    let nvd = nvd_feed();
    let debian = serde_json::to_vec(&serde_json::json!({
        "xorg-server": {"CVE-2023-1393": {"description": "use-after-free in compositing", "scope": "local",
            "releases": {
                "bullseye": {"status": "resolved", "repositories": {"bullseye": "2:1.20.11-1+deb11u6"}, "fixed_version": "2:1.20.11-1+deb11u6", "urgency": "not yet assigned"},
                "bookworm": {"status": "resolved", "repositories": {"bookworm": "2:21.1.7-1"}, "fixed_version": "2:21.1.7-1", "urgency": "not yet assigned"},
                "buster": {"status": "open", "repositories": {"buster": "2:1.20.4-1+deb10u9"}, "urgency": "end-of-life", "nodsa": "EOL", "nodsa_reason": "ignored"}
            }}}
    }))
    .unwrap();

    let server = Server::start();
    server.route("/osv/AlmaLinux/all.zip", zip_body, "\"osv-1\"");
    server.route("/kev.json", kev_body.clone(), "\"kev-1\"");
    server.route("/epss.csv.gz", gzip(epss.as_bytes()), "\"epss-1\"");
    server.route("/nvd/nvdcve-2.0-2021.json.gz", gzip(&nvd), "\"nvd-1\"");
    server.route("/nvd/nvdcve-2.0-2021.meta", nvd_meta(&nvd), "\"meta-1\"");
    server.route("/nvd/nvdcve-2.0-modified.json.gz", gzip(&nvd), "\"nvdm-1\"");
    server.route("/nvd/nvdcve-2.0-modified.meta", nvd_meta(&nvd), "\"metam-1\"");
    server.route("/debian.json", debian, "\"deb-1\"");

    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("vuln.db");
    let mut cfg = UpdateConfig::new(db_path.clone());
    cfg.feeds = vec![Feed::Osv, Feed::Nvd, Feed::Kev, Feed::Epss, Feed::Debian];
    cfg.osv_base = format!("{}/osv", server.base);
    cfg.osv_ecosystems = vec!["AlmaLinux".into()];
    cfg.nvd_base = format!("{}/nvd", server.base);
    cfg.nvd_years = vec![2021];
    cfg.kev_url = format!("{}/kev.json", server.base);
    cfg.epss_url = format!("{}/epss.csv.gz", server.base);
    cfg.debian_url = format!("{}/debian.json", server.base);
    cfg.attempts = 3;
    cfg.backoff = Duration::from_millis(20);
    cfg.progress = false;

    // 1. Everything 200.
    let r = update(&cfg).unwrap();
    assert_eq!(r.updated.len(), 6, "{r:?}");
    assert_eq!(r.import.imported["osv"], ids.len() as u64);
    assert_eq!(r.import.imported["kev"], kev_cves.len() as u64);
    assert_eq!(r.import.imported["epss"], kev_cves.len() as u64);
    assert_eq!(r.import.withdrawn, 2, "the rejected CVE, once per NVD file");
    let check = |db: &VulnDb| {
        assert!(db.vulnerability(&ids[0]).unwrap().is_some());
        let log4j = db.vulnerability("CVE-2021-44228").unwrap().unwrap();
        assert!(log4j.severities.iter().any(|s| s.base_score == Some(10.0)));
        assert_eq!(log4j.cwes, ["CWE-917"]);
        assert!(db.kev(&kev_cves[0]).unwrap().is_some());
        assert!(db.epss(&kev_cves[1]).unwrap().is_some());
        let deb = db.affected("Debian:12", "xorg-server").unwrap();
        assert_eq!(deb[0].fixed_versions(), ["2:21.1.7-1"]);
        let eol = db.affected("Debian:10", "xorg-server").unwrap();
        assert_eq!(eol[0].status, kensa_vulndb::Status::WillNotFix);
    };
    check(&VulnDb::open(&db_path).unwrap());
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
    server.take_log();

    // 2. Nothing changed: every request is conditional and answered 304; nothing downloaded.
    let r = update(&cfg).unwrap();
    assert!(r.updated.is_empty(), "{r:?}");
    assert_eq!(r.unchanged.len(), 6);
    let log = server.take_log();
    assert_eq!(log.len(), 6, "{log:?}");
    assert!(log.iter().all(|(_, inm)| inm.is_some()), "{log:?}");
    check(&VulnDb::open(&db_path).unwrap());

    // 3. KEV changed, and the server fails twice before answering: retried, then imported.
    let mut kev2: serde_json::Value = kev_json.clone();
    kev2["vulnerabilities"].as_array_mut().unwrap().truncate(100);
    server.edit("/kev.json", |r| {
        r.body = serde_json::to_vec(&kev2).unwrap();
        r.etag = "\"kev-2\"".into();
        r.fail_first = 2;
    });
    let r = update(&cfg).unwrap();
    assert_eq!(r.updated, ["kev"]);
    assert_eq!(server.take_log().iter().filter(|(p, _)| p == "/kev.json").count(), 3);
    let db = VulnDb::open(&db_path).unwrap();
    assert_eq!(db.counts().unwrap().kev, 100);
    check(&db);
    drop(db);

    let good = file_hash(&db_path);
    let expect_failure = |what: &str| {
        let err = update(&cfg).expect_err(what);
        eprintln!("{what}: {err}");
        assert_eq!(file_hash(&db_path), good, "{what}: the database changed");
        assert!(leftovers(tmp.path()).is_empty(), "{what}: {:?}", leftovers(tmp.path()));
        check(&VulnDb::open(&db_path).unwrap());
    };

    // 4. A truncated EPSS download (on every attempt).
    server.edit("/epss.csv.gz", |r| {
        r.etag = "\"epss-2\"".into();
        r.truncate_at = Some(r.body.len() / 2);
    });
    expect_failure("truncated body");
    server.edit("/epss.csv.gz", |r| {
        r.etag = "\"epss-1\"".into();
        r.truncate_at = None;
    });

    // 5. A new NVD file whose .meta checksum does not match.
    server.edit("/nvd/nvdcve-2.0-2021.json.gz", |r| {
        let mut changed = nvd_feed();
        changed.extend_from_slice(b" ");
        r.body = gzip(&changed);
        r.etag = "\"nvd-2\"".into();
    });
    expect_failure("bad checksum");
    server.edit("/nvd/nvdcve-2.0-2021.json.gz", |r| {
        r.body = gzip(&nvd_feed());
        r.etag = "\"nvd-1\"".into();
    });

    // 6. A corrupt OSV archive.
    server.edit("/osv/AlmaLinux/all.zip", |r| {
        r.body.truncate(r.body.len() / 3);
        r.etag = "\"osv-2\"".into();
    });
    expect_failure("corrupt zip");
    server.edit("/osv/AlmaLinux/all.zip", |r| {
        r.body = osv_zip(&alma).0;
        r.etag = "\"osv-1\"".into();
    });

    // 7. A server that keeps failing.
    server.edit("/kev.json", |r| {
        r.etag = "\"kev-3\"".into();
        r.fail_first = 100;
    });
    expect_failure("persistent 500");
}

#[test]
fn nvd_api_pages_then_asks_only_for_changes() {
    let server = Server::start();
    let mut page: serde_json::Value = serde_json::from_slice(&nvd_feed()).unwrap();
    page["totalResults"] = 4.into();
    server.route("/rest/json/cves/2.0", serde_json::to_vec(&page).unwrap(), "\"p\"");
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = UpdateConfig::new(tmp.path().join("vuln.db"));
    cfg.feeds = vec![Feed::NvdApi];
    cfg.nvd_api_url = format!("{}/rest/json/cves/2.0", server.base);
    cfg.nvd_api_key = Some("test-key".into());
    cfg.nvd_api_delay = Duration::from_millis(1);
    cfg.progress = false;
    let r = update(&cfg).unwrap();
    assert_eq!(r.updated, ["nvd-api"]);
    let log = server.take_log();
    let paths: Vec<&str> = log.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/rest/json/cves/2.0?resultsPerPage=2000&startIndex=0", "/rest/json/cves/2.0?resultsPerPage=2000&startIndex=2"]);
    let db = VulnDb::open(&cfg.db_path).unwrap();
    assert_eq!(db.vulnerability("CVE-2021-44228").unwrap().unwrap().cwes, ["CWE-917"]);
    drop(db);
    // The next run asks only for what changed since the first one.
    update(&cfg).unwrap();
    let log = server.take_log();
    assert!(log.iter().all(|(p, _)| p.contains("&lastModStartDate=") && p.contains("&lastModEndDate=")), "{log:?}");
}

#[test]
fn redhat_vex_files_from_changes_csv_with_checksums() {
    let doc = serde_json::json!({
        "document": {"category": "csaf_vex", "csaf_version": "2.0", "title": "openssl: example",
                     "tracking": {"id": "CVE-2023-0286", "current_release_date": "2024-01-01T00:00:00+00:00"}},
        "product_tree": {"branches": [{"category": "vendor", "name": "Red Hat", "branches": [
            {"category": "product_name", "name": "Red Hat Enterprise Linux BaseOS (v. 9)",
             "product": {"name": "Red Hat Enterprise Linux BaseOS (v. 9)", "product_id": "BaseOS-9.1.0.Z.MAIN",
                         "product_identification_helper": {"cpe": "cpe:/o:redhat:enterprise_linux:9::baseos"}}},
            {"category": "product_version", "name": "openssl-1:3.0.1-47.el9_1.x86_64",
             "product": {"name": "openssl-1:3.0.1-47.el9_1.x86_64", "product_id": "openssl-1:3.0.1-47.el9_1.x86_64",
                         "product_identification_helper": {"purl": "pkg:rpm/redhat/openssl@3.0.1-47.el9_1?arch=x86_64&epoch=1"}}}]}],
            "relationships": [{"category": "default_component_of",
                "full_product_name": {"name": "openssl on BaseOS", "product_id": "BaseOS-9.1.0.Z.MAIN:openssl-1:3.0.1-47.el9_1.x86_64"},
                "product_reference": "openssl-1:3.0.1-47.el9_1.x86_64", "relates_to_product_reference": "BaseOS-9.1.0.Z.MAIN"}]},
        "vulnerabilities": [{"cve": "CVE-2023-0286", "product_status": {"fixed": ["BaseOS-9.1.0.Z.MAIN:openssl-1:3.0.1-47.el9_1.x86_64"]}}]
    });
    let body = serde_json::to_vec(&doc).unwrap();
    let sum = format!("{}  cve-2023-0286.json\n", hex::encode(Sha256::digest(&body)));
    let server = Server::start();
    server.route("/vex/changes.csv", b"\"2023/cve-2023-0286.json\",\"2024-01-01T00:00:00+00:00\"\n".to_vec(), "\"c1\"");
    server.route("/vex/2023/cve-2023-0286.json", body.clone(), "\"v1\"");
    server.route("/vex/2023/cve-2023-0286.json.sha256", sum.into_bytes(), "\"s1\"");
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = UpdateConfig::new(tmp.path().join("vuln.db"));
    cfg.feeds = vec![Feed::Redhat];
    cfg.redhat_base = format!("{}/vex", server.base);
    cfg.progress = false;
    cfg.attempts = 1;
    update(&cfg).unwrap();
    let db = VulnDb::open(&cfg.db_path).unwrap();
    let hits = db.affected("Red Hat:enterprise_linux:9::baseos", "openssl").unwrap();
    assert_eq!(hits[0].fixed_versions(), ["1:3.0.1-47.el9_1"]);
    drop(db);
    let good = file_hash(&cfg.db_path);
    // A newer file whose .sha256 does not match: the update fails and changes nothing.
    server.route("/vex/changes.csv", b"\"2023/cve-2023-0286.json\",\"2024-02-01T00:00:00+00:00\"\n".to_vec(), "\"c2\"");
    server.edit("/vex/2023/cve-2023-0286.json", |r| {
        r.body.extend_from_slice(b" ");
        r.etag = "\"v2\"".into();
    });
    let err = update(&cfg).expect_err("bad checksum");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(file_hash(&cfg.db_path), good);
}
