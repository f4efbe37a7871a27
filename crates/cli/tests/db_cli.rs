//! `kensa db import / search / status` end to end on the shared advisories.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn kensa(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kensa")).arg("db").args(args).env("KENSA_DB", db).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn import_then_search_matches_the_source_records() {
    let Some(ghsa) = kensa_testdata::shared_path("advisories/ghsa") else { return };
    let Some(alma) = kensa_testdata::shared_path("advisories/almalinux/almalinux9.tar.gz") else { return };
    let Some(kev) = kensa_testdata::shared_path("advisories/kev/known_exploited_vulnerabilities.json") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("cache/vuln.db");

    // No database yet: a clear error, exit 2.
    let (code, _, err) = kensa(&db, &["search", "CVE-2021-44228"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no vulnerability database"), "{err}");

    let (code, out, err) = kensa(&db, &["import", ghsa.to_str().unwrap(), alma.to_str().unwrap(), kev.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("osv 1657") && out.contains("kev 1264"), "{out}");

    // Every GHSA record: affected packages, ranges and fixed versions exactly as published.
    for e in std::fs::read_dir(&ghsa).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let src: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let id = src["id"].as_str().unwrap();
        let (code, out, err) = kensa(&db, &["search", id, "--format", "json"]);
        assert_eq!(code, 0, "{id}: {err}");
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["id"], src["id"]);
        let affected = got["affected"].as_array().unwrap();
        let src_affected = src["affected"].as_array().unwrap();
        assert_eq!(affected.len(), src_affected.len(), "{id}");
        for (a, s) in affected.iter().zip(src_affected) {
            assert_eq!(a["ecosystem"], s["package"]["ecosystem"], "{id}");
            assert_eq!(a["name"], s["package"]["name"], "{id}");
            assert_eq!(a["ranges"], s["ranges"], "{id}: ranges");
            let fixed: Vec<Value> = s["ranges"].as_array().unwrap().iter().flat_map(|r| r["events"].as_array().unwrap().iter().filter_map(|e| e.get("fixed").cloned())).collect();
            assert_eq!(a["fixedVersions"].as_array().unwrap(), &fixed, "{id}: fixed");
            assert_eq!(a["versions"].as_array().cloned().unwrap_or_default(), s["versions"].as_array().cloned().unwrap_or_default(), "{id}: versions");
        }
        let aliases: Vec<Value> = src["aliases"].as_array().cloned().unwrap_or_default();
        for a in aliases {
            assert!(got["relatedVulnerabilities"].as_array().unwrap().contains(&a), "{id}: alias {a}");
        }
    }

    // A CVE found through its GHSA alias, with CVSS, KEV and references.
    let (code, out, _) = kensa(&db, &["search", "CVE-2021-44228", "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cvss3"]["baseScore"], 10.0);
    assert_eq!(v["cisaData"]["dateAdded"], "2021-12-10");
    assert!(v["relatedVulnerabilities"].as_array().unwrap().iter().any(|x| x == "GHSA-jfh8-c2jp-5v3q"));
    let (code, table, _) = kensa(&db, &["search", "CVE-2021-44228"]);
    assert_eq!(code, 0);
    assert!(table.contains("org.apache.logging.log4j:log4j-core") && table.contains("2.15.0"), "{table}");

    // Unknown id: exit 1 with a message.
    let (code, _, err) = kensa(&db, &["search", "CVE-1900-0001"]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");

    let (code, out, _) = kensa(&db, &["status", "--format", "json"]);
    assert_eq!(code, 0);
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["counts"]["kev"], 1264);
    assert_eq!(st["stale"], false);

    // A malformed record is skipped with a warning naming the file; the rest is imported (exit 3).
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("GOOD-1.json"), r#"{"id":"GOOD-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}]}"#).unwrap();
    std::fs::write(bad.join("BAD-1.json"), r#"{"id":"BAD-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"WEIRD","events":[]}]}]}"#).unwrap();
    std::fs::write(bad.join("BAD-2.json"), "{\"id\": \"BAD-2\", ").unwrap();
    let (code, out, err) = kensa(&db, &["import", bad.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("BAD-1.json") && err.contains("unknown range type"), "{err}");
    assert!(err.contains("BAD-2.json") && err.contains("invalid JSON"), "{err}");
    assert!(out.contains("2 skipped"), "{out}");
    let (code, out, _) = kensa(&db, &["search", "GOOD-1", "--format", "json"]);
    assert_eq!(code, 0);
    assert!(out.contains("1.3.0"));
    // Earlier data survived the second import.
    assert_eq!(kensa(&db, &["search", "GHSA-jfh8-c2jp-5v3q"]).0, 0);
}

#[test]
fn a_record_without_cvss_shows_its_cves_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("vuln.db");
    let dir = tmp.path().join("osv");
    std::fs::create_dir_all(&dir).unwrap();
    let affected = r#""affected":[{"package":{"ecosystem":"PyPI","name":"foo"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2"}]}]}]"#;
    // A PYSEC record carries no score; the CVE it aliases does.
    std::fs::write(dir.join("PYSEC-2099-1.json"), format!(r#"{{"id":"PYSEC-2099-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2099-1234"],{affected}}}"#)).unwrap();
    std::fs::write(
        dir.join("CVE-2099-1234.json"),
        format!(r#"{{"id":"CVE-2099-1234","modified":"2024-01-01T00:00:00Z","severity":[{{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],{affected}}}"#),
    )
    .unwrap();
    let (code, out, err) = kensa(&db, &["import", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = kensa(&db, &["search", "PYSEC-2099-1", "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cvss3"]["baseScore"], 9.8, "{out}");
    assert_eq!(v["cvss"].as_array().unwrap().len(), 1, "{out}");
    let (code, table, _) = kensa(&db, &["search", "PYSEC-2099-1"]);
    assert_eq!(code, 0);
    assert!(table.contains("9.8") && table.contains("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "{table}");
}

/// Serves `responses` (status line, body) to successive connections on 127.0.0.1, then stops.
fn serve(responses: Vec<(&'static str, Vec<u8>)>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for (status, body) in responses {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).map(|n| n == 1).unwrap_or(false) {
                head.push(b[0]);
            }
            let _ = write!(conn, "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\nETag: \"x\"\r\n\r\n", body.len());
            let _ = conn.write_all(&body);
        }
    });
    (base, handle)
}

#[test]
fn update_from_a_mirror_and_failure_leaves_the_database() {
    let Some(kev) = kensa_testdata::shared_path("advisories/kev/known_exploited_vulnerabilities.json") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("vuln.db");
    let body = std::fs::read(&kev).unwrap();
    let (base, server) = serve(vec![("200 OK", body), ("404 Not Found", Vec::new())]);
    let url = format!("{base}/kev.json");
    let args = ["update", "--source", "kev", "--kev-url", url.as_str(), "--no-progress", "--retry-delay", "0"];
    let (code, _, err) = kensa(&db, &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1264 records imported"), "{err}");
    let (_, out, _) = kensa(&db, &["status"]);
    assert!(out.contains("kev") && out.contains("1264 KEV"), "{out}");
    let before = std::fs::read(&db).unwrap();
    // The mirror now answers 404: the update fails with exit 2 and the database is untouched.
    let (code, _, err) = kensa(&db, &args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HTTP 404") && err.contains("left unchanged"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    server.join().unwrap();
}
