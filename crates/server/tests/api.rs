//! The API in process on 127.0.0.1: every error is JSON `{"code", "message"}` with a 4xx for bad
//! input (axum's own rejections included), the OpenAPI document describes exactly the routes the
//! router serves and is valid OpenAPI 3.1 (checked by `openapi-spec-validator`), and the
//! vulnerability search answers from the database.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

const ADMIN: &str = "api-test-admin-token-0123456789";

struct TestServer {
    url: String,
    _dir: tempfile::TempDir,
}

/// Starts the router on an ephemeral port in a runtime of its own (it ends with the test process).
fn start(vuln_db: Option<&Path>) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = kensa_server::ServerConfig {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        vuln_db: vuln_db.map(Path::to_path_buf),
        admin_token: Some(ADMIN.into()),
        machines_file: None,
        tls: None,
        tick: Duration::from_secs(3600),
        agentless_limits: kensa_disk::Limits::default(),
    };
    let (state, _) = kensa_server::prepare(&cfg).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    let router = kensa_server::api::router(state);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    TestServer { url: format!("http://{addr}"), _dir: dir }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into()
}

/// Sends a request; returns the status, the Content-Type and the body parsed as JSON (or the text).
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String, Value) {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = http().run(req.body(body).unwrap()).expect("request");
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = resp.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
    (status, ctype, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn admin(method: &str, url: &str, body: &[u8]) -> (u16, String, Value) {
    let auth = format!("Bearer {ADMIN}");
    send(method, url, &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_vec())
}

/// Asserts a JSON error `{"code", "message"}` with this status and code.
#[track_caller]
fn assert_error(got: (u16, String, Value), status: u16, code: &str) {
    let (st, ctype, v) = got;
    assert_eq!(st, status, "{v}");
    assert!(ctype.starts_with("application/json"), "status {st}: Content-Type {ctype:?}, body {v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Enrolls machine `name` through the API; returns its agent credential.
fn enroll(s: &TestServer, name: &str) -> String {
    let (st, _, v) = admin("POST", &format!("{}/api/v1/enrollment-tokens", s.url), b"");
    assert_eq!(st, 201, "{v}");
    let auth = format!("Bearer {}", v["token"].as_str().unwrap());
    let (st, _, v) = send("POST", &format!("{}/api/v1/agents/enroll", s.url), &[("Authorization", &auth)], serde_json::to_vec(&json!({"name": name})).unwrap());
    assert_eq!(st, 200, "{v}");
    v["credential"].as_str().unwrap().to_string()
}

#[test]
fn bad_input_is_a_json_4xx() {
    let s = start(None);
    let u = &s.url;
    enroll(&s, "m1");

    // Authentication.
    assert_error(send("GET", &format!("{u}/api/v1/machines"), &[], vec![]), 401, "UnauthorizedException");
    assert_error(send("GET", &format!("{u}/api/v1/machines"), &[("Authorization", "Basic abc")], vec![]), 401, "UnauthorizedException");
    // Routing: unknown routes, wrong methods (405 keeps Allow).
    assert_error(admin("GET", &format!("{u}/api/v1/nothing-here"), b""), 404, "ResourceNotFoundException");
    assert_error(admin("GET", &format!("{u}/"), b""), 404, "ResourceNotFoundException");
    assert_error(admin("DELETE", &format!("{u}/api/v1/settings"), b""), 405, "MethodNotAllowedException");
    assert_error(admin("POST", &format!("{u}/api/v1/findings"), b"{}"), 405, "MethodNotAllowedException");
    assert_error(admin("GET", &format!("{u}/api/v1/agents/enroll"), b""), 405, "MethodNotAllowedException");
    // Bodies: malformed JSON, wrong shapes, unknown fields, wrong media type.
    let settings = format!("{u}/api/v1/settings");
    assert_error(admin("PUT", &settings, b"{not json"), 400, "ValidationException");
    assert_error(admin("PUT", &settings, b""), 400, "ValidationException");
    assert_error(admin("PUT", &settings, b"[1,2,3]"), 400, "ValidationException");
    assert_error(admin("PUT", &format!("{u}/api/v1/machines/m1/tags"), br#"{"tags": {"a": "b"}, "extra": 1}"#), 400, "ValidationException");
    assert_error(admin("PUT", &format!("{u}/api/v1/machines/m1/tags"), br#"{"tags": ["a"]}"#), 400, "ValidationException");
    let auth = format!("Bearer {ADMIN}");
    assert_error(send("PUT", &settings, &[("Authorization", &auth), ("Content-Type", "text/plain")], b"{}".to_vec()), 415, "UnsupportedMediaTypeException");
    // Query strings: unknown parameters, wrong types, bad values.
    assert_error(admin("GET", &format!("{u}/api/v1/findings?colour=red"), b""), 400, "ValidationException");
    assert_error(admin("GET", &format!("{u}/api/v1/findings?maxResults=many"), b""), 400, "ValidationException");
    assert_error(admin("GET", &format!("{u}/api/v1/coverage?reason=X&bogus=1"), b""), 400, "ValidationException");
    assert_error(admin("GET", &format!("{u}/api/v1/machines/m1/sbom?format=pdf"), b""), 400, "ValidationException");
    // Path parameters that are not UTF-8 are axum rejections, still JSON.
    assert_error(admin("GET", &format!("{u}/api/v1/machines/%ff%fe"), b""), 400, "ValidationException");
    assert_error(admin("GET", &format!("{u}/api/v1/machines/no-such-machine"), b""), 404, "ResourceNotFoundException");

    // Inventories: a wrong shape, invalid gzip, a gzip bomb, a body over the limit.
    let inv = format!("{u}/api/v1/machines/m1/inventory");
    assert_error(admin("PUT", &inv, br#"{"packages": "not a list"}"#), 400, "ValidationException");
    assert_error(admin("PUT", &inv, br#"{"hello": "world"}"#), 400, "ValidationException");
    let gz = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Content-Encoding", "gzip")];
    assert_error(send("PUT", &inv, &gz, b"definitely not gzip".to_vec()), 400, "ValidationException");
    let mut truncated = gzip(br#"{"packages": []}"#);
    truncated.truncate(truncated.len() - 6);
    assert_error(send("PUT", &inv, &gz, truncated), 400, "ValidationException");
    let bomb = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..(kensa_server::api::MAX_INVENTORY >> 20) + 1 {
            e.write_all(&chunk).unwrap();
        }
        e.finish().unwrap()
    };
    assert!(bomb.len() < kensa_server::api::MAX_BODY, "the bomb itself fits the body limit");
    assert_error(send("PUT", &inv, &gz, bomb), 413, "PayloadTooLargeException");
    assert_error(admin("PUT", &inv, &vec![b' '; kensa_server::api::MAX_BODY + 1]), 413, "PayloadTooLargeException");
    // Heartbeats: malformed bodies.
    assert_error(admin("POST", &format!("{u}/api/v1/machines/m1/heartbeat"), b"{\"inventorySha256\": 5}"), 400, "ValidationException");

    // The vulnerability search without a database is a 503 that says what to do, not a crash.
    let (st, _, v) = admin("GET", &format!("{u}/api/v1/vulnerabilities/CVE-2021-44228"), b"");
    assert_eq!((st, v["code"].as_str()), (503, Some("ServiceUnavailableException")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("kensa db update"), "{v}");

    // After all that, the server still works.
    let (st, _, v) = admin("GET", &format!("{u}/api/v1/machines"), b"");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["machines"].as_array().unwrap().len(), 1);
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

#[test]
fn openapi_document_describes_every_route() {
    let s = start(None);
    // Needs a token, like every call.
    assert_error(send("GET", &format!("{}/api/v1/openapi.json", s.url), &[], vec![]), 401, "UnauthorizedException");
    let (st, _, doc) = admin("GET", &format!("{}/api/v1/openapi.json", s.url), b"");
    assert_eq!(st, 200, "{doc}");
    assert_eq!(doc, serde_json::to_value(kensa_server::api::openapi()).unwrap());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // The same paths as the router's route list ...
    let documented: std::collections::BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: std::collections::BTreeSet<String> = kensa_server::api::routes().into_iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(documented, routed);
    // ... and the same methods: a documented method is routed, any other is a 405.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = format!("{}{}", s.url, path.replace("{id}", "some-id"));
        for m in METHODS {
            let op = &item[m.to_ascii_lowercase()];
            let (st, _, v) = admin(m, &url, b"{}");
            if op.is_object() {
                // Whatever it answers (here: with an admin token, an `{}` body and an unknown id) is
                // one of its documented responses.
                assert!(st != 405 && op["responses"].get(st.to_string()).is_some(), "{m} {path} answers {st}, which is not documented: {v}");
            } else {
                assert_eq!(st, 405, "{m} {path} is not documented but answers {st}: {v}");
            }
        }
    }

    // Valid OpenAPI 3.1, by the reference validator.
    let Some(validator) = kensa_testdata::venv_tool("openapi-spec-validator") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(&validator).arg(&file).output().unwrap();
    assert!(out.status.success(), "openapi-spec-validator: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // And it really validates: a broken document fails.
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/findings"]["get"]["responses"] = json!("none");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    assert!(!std::process::Command::new(&validator).arg(&file).output().unwrap().status.success());
}

#[test]
fn vulnerability_search_answers_from_the_database() {
    let Some(ghsa) = kensa_testdata::shared_path("advisories/ghsa") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("vuln.db");
    let mut db = kensa_vulndb::VulnDb::create(&db_path).unwrap();
    kensa_vulndb::import::import_path(&mut db, &ghsa).unwrap();
    drop(db);
    let db = kensa_vulndb::VulnDb::open(&db_path).unwrap();
    let s = start(Some(&db_path));
    let agent = enroll(&s, "m1");

    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let ids: Vec<String> = conn.prepare("SELECT id FROM vulnerabilities ORDER BY id LIMIT 3").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(!ids.is_empty());
    for id in &ids {
        let (st, _, v) = admin("GET", &format!("{}/api/v1/vulnerabilities/{id}", s.url), b"");
        assert_eq!(st, 200, "{v}");
        let expected = kensa_vulndb::search::search_json(&db, &db.vulnerability(id).unwrap().unwrap()).unwrap();
        assert_eq!(v, expected);
        assert_eq!(v["id"], id.as_str());
    }
    // Agents may search too (any valid token); unknown ids are a JSON 404.
    let auth = format!("Bearer {agent}");
    let (st, _, _) = send("GET", &format!("{}/api/v1/vulnerabilities/{}", s.url, ids[0]), &[("Authorization", &auth)], vec![]);
    assert_eq!(st, 200);
    assert_error(admin("GET", &format!("{}/api/v1/vulnerabilities/GHSA-0000-0000-0000", s.url), b""), 404, "ResourceNotFoundException");
}
