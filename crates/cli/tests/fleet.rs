//! End to end: a server on 127.0.0.1, two agents inventorying root filesystems made here, machines
//! without agents whose volumes are disk images made here (ext4, and vfat which agentless scanning
//! does not support), one machine excluded by tag. Checks coverage, findings that open when the
//! database gains an advisory (no agent re-sends anything) and close when the package goes, agents
//! going stale (and agentless taking over where a volume exists), and authentication.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ADMIN: &str = "test-admin-token-0123456789";

fn kensa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kensa"))
}

fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A small Debian 12 root: two dpkg packages and a pip-installed `requests` 2.25.0 in /usr/lib
/// (an agent deep-inspection path), which real PyPA advisories (PYSEC-2023-74) affect.
fn make_root(dir: &Path, hostname: &str, with_requests: bool) {
    write(&dir.join("etc/os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n");
    write(&dir.join("etc/hostname"), &format!("{hostname}\n"));
    write(
        &dir.join("var/lib/dpkg/status"),
        "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\nPackage: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n",
    );
    let dist = dir.join("usr/lib/python3/dist-packages/requests-2.25.0.dist-info");
    if with_requests {
        write(&dist.join("METADATA"), "Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\nSummary: Python HTTP for Humans.\n");
    } else if dist.exists() {
        std::fs::remove_dir_all(&dist).unwrap();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(out.status.success(), "{cmd:?} failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let agent = http();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let req = req.header("Content-Type", "application/json").body(body).unwrap();
    let mut resp = agent.run(req).expect("request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn coverage(s: &Server) -> std::collections::BTreeMap<String, Value> {
    let (st, v) = call("GET", &format!("{}/api/v1/coverage", s.url), Some(ADMIN), None);
    assert_eq!(st, 200, "{v}");
    v["coveredResources"].as_array().unwrap().iter().map(|r| (r["resourceId"].as_str().unwrap().to_string(), r.clone())).collect()
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if start.elapsed() > timeout => panic!("timed out waiting for {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn status_of(c: &std::collections::BTreeMap<String, Value>, id: &str) -> (String, String, String) {
    let r = c.get(id).cloned().unwrap_or(Value::Null);
    (
        r["scanType"].as_str().unwrap_or("null").to_string(),
        r["scanStatus"]["statusCode"].as_str().unwrap_or("?").to_string(),
        r["scanStatus"]["reason"].as_str().unwrap_or("?").to_string(),
    )
}

fn findings(s: &Server, query: &str) -> Vec<Value> {
    let (st, v) = call("GET", &format!("{}/api/v1/findings?{query}", s.url), Some(ADMIN), None);
    assert_eq!(st, 200, "{v}");
    v["findings"].as_array().unwrap().clone()
}

fn has_requests_finding(s: &Server, machine: &str, status: &str) -> bool {
    findings(s, &format!("machineId={machine}&status={status}&packageName=requests&maxResults=1000"))
        .iter()
        .any(|f| f["packageVulnerabilityDetails"]["vulnerabilityId"] == "PYSEC-2023-74")
}

fn mkfs_ext4(tree: &Path, image: &Path) {
    let f = std::fs::File::create(image).unwrap();
    f.set_len(32 << 20).unwrap();
    run_ok(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(tree).arg(image));
}

#[test]
fn fleet_end_to_end() {
    let Some(data) = kensa_testdata::shared_data() else { return };
    if !kensa_testdata::require_tool("mkfs.ext4") || !kensa_testdata::require_tool("mkfs.vfat") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (root_a, root_b, root_c) = (t.join("root-a"), t.join("root-b"), t.join("root-c"));
    make_root(&root_a, "host-a", true);
    make_root(&root_b, "host-b", true);
    make_root(&root_c, "vm-c", true);
    // Volumes of machines without agents.
    mkfs_ext4(&root_c, &t.join("vm-c.img"));
    mkfs_ext4(&root_c, &t.join("vm-excluded.img"));
    mkfs_ext4(&root_b, &t.join("host-b.img"));
    let vfat = t.join("vm-vfat.img");
    std::fs::File::create(&vfat).unwrap().set_len(32 << 20).unwrap();
    run_ok(Command::new("mkfs.vfat").arg(&vfat));

    // The database first holds only GitHub advisories (npm, Maven): nothing for `requests`.
    let db = t.join("vuln.db");
    run_ok(kensa().args(["db", "import", "--db"]).arg(&db).arg(data.join("advisories/ghsa")));

    let machines = t.join("machines.toml");
    let machines_v1 = r#"
[[machine]]
id = "vm-c"
tags = { env = "test" }
volumes = ["vm-c.img"]

[[machine]]
id = "vm-excluded"
tags = { InspectorEc2Exclusion = "" }
volumes = ["vm-excluded.img"]

[[machine]]
id = "vm-vfat"
volumes = ["vm-vfat.img"]

[[machine]]
id = "vm-managed"
managed = true
"#;
    write(&machines, machines_v1);
    let port = free_port();
    let child = kensa()
        .args(["server", "--data"])
        .arg(t.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--tick-seconds", "1", "--db"])
        .arg(&db)
        .arg("--machines")
        .arg(&machines)
        .env("KENSA_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let s = Server { child, url: format!("http://127.0.0.1:{port}") };
    wait_for("the server to answer", Duration::from_secs(30), || {
        let r = http().get(format!("{}/api/v1/coverage", s.url)).header("Authorization", format!("Bearer {ADMIN}")).call();
        r.map(|_| ()).map_err(|e| e.to_string())
    });

    // Auth: no token, a wrong token, an agent-only call with the admin token is fine, bad input is 4xx.
    assert_eq!(call("GET", &format!("{}/api/v1/coverage", s.url), None, None).0, 401);
    assert_eq!(call("GET", &format!("{}/api/v1/coverage", s.url), Some("wrong-token"), None).0, 401);
    assert_eq!(call("PUT", &format!("{}/api/v1/settings", s.url), Some(ADMIN), Some(json!({"scanMode": "SOMETIMES"}))).0, 400);
    let (st, v) = call("GET", &format!("{}/api/v1/findings?severity=SEVERE", s.url), Some(ADMIN), None);
    assert_eq!((st, v["code"].as_str()), (400, Some("ValidationException")), "{v}");

    // Settings: the agent interval can be made longer, never shorter; staleness short for the test.
    let (st, settings) = call("GET", &format!("{}/api/v1/settings", s.url), Some(ADMIN), None);
    assert_eq!(st, 200);
    assert_eq!(settings["agentIntervalMinutes"], 30);
    let mut shorter = settings.clone();
    shorter["agentIntervalMinutes"] = json!(10);
    assert_eq!(call("PUT", &format!("{}/api/v1/settings", s.url), Some(ADMIN), Some(shorter)).0, 400);
    let mut new_settings = settings.clone();
    new_settings["staleAfterSeconds"] = json!(8);
    new_settings["agentIntervalMinutes"] = json!(60);
    let (st, v) = call("PUT", &format!("{}/api/v1/settings", s.url), Some(ADMIN), Some(new_settings));
    assert_eq!(st, 200, "{v}");

    // Two agents enroll with one-time tokens and report.
    let enroll = || {
        let (st, v) = call("POST", &format!("{}/api/v1/enrollment-tokens", s.url), Some(ADMIN), None);
        assert_eq!(st, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    let (tok_a, tok_b) = (enroll(), enroll());
    let agent = |root: &Path, state: &str, token: Option<&str>| {
        let mut c = kensa();
        c.args(["agent", "--server", &s.url, "--once", "--tag", "team=blue", "--root"]).arg(root).arg("--state-dir").arg(t.join(state));
        if let Some(tok) = token {
            c.args(["--enroll-token", tok]);
        }
        c
    };
    run_ok(&mut agent(&root_a, "state-a", Some(&tok_a)));
    run_ok(&mut agent(&root_b, "state-b", Some(&tok_b)));
    // A used enrollment token does not enroll again.
    let out = agent(&root_c, "state-x", Some(&tok_a)).output().unwrap();
    assert!(!out.status.success(), "a one-time token was accepted twice");

    wait_for("coverage of all machines", Duration::from_secs(60), || {
        let c = coverage(&s);
        let got: Vec<_> = ["host-a", "host-b", "vm-c", "vm-excluded", "vm-vfat", "vm-managed"].iter().map(|id| status_of(&c, id)).collect();
        let want = vec![
            ("AGENT".into(), "ACTIVE".into(), "SUCCESSFUL".into()),
            ("AGENT".into(), "ACTIVE".into(), "SUCCESSFUL".into()),
            ("AGENTLESS".into(), "ACTIVE".into(), "SUCCESSFUL".into()),
            ("null".into(), "INACTIVE".into(), "EXCLUDED_BY_TAG".into()),
            ("null".into(), "INACTIVE".into(), "UNSUPPORTED_OS".into()),
            // Managed (an agent is expected) but none reported and no volumes: Inspector's NO_INVENTORY.
            ("null".into(), "INACTIVE".into(), "NO_INVENTORY".into()),
        ];
        if got == want { Ok(()) } else { Err(format!("{got:?}")) }
    });
    let c = coverage(&s);
    assert_eq!(c["host-a"]["tags"]["team"], "blue");
    assert!(c["vm-vfat"]["scanStatus"]["message"].as_str().unwrap_or("").contains("ext4"), "{}", c["vm-vfat"]);
    assert!(!has_requests_finding(&s, "host-a", "ACTIVE"), "no advisory for requests yet");

    // An agent may write only its own machine.
    let cred_a: Value = serde_json::from_slice(&std::fs::read(t.join("state-a/agent.json")).unwrap()).unwrap();
    let cred_a = cred_a["credential"].as_str().unwrap();
    let (st, _) = call("POST", &format!("{}/api/v1/machines/host-b/heartbeat", s.url), Some(cred_a), Some(json!({})));
    assert_eq!(st, 403);
    let (st, _) = call("PUT", &format!("{}/api/v1/machines/host-b/inventory", s.url), Some(cred_a), Some(json!({"target": "x", "packages": []})));
    assert_eq!(st, 403);
    let (st, _) = call("GET", &format!("{}/api/v1/coverage", s.url), Some(cred_a), None);
    assert_eq!(st, 403, "agent credentials cannot read the fleet");

    // A database update adds PyPA advisories: findings open without any agent re-sending.
    run_ok(kensa().args(["db", "import", "--db"]).arg(&db).arg(data.join("advisories/ghsa")).arg(data.join("advisories/pypa/pypa-advisory-database.tar.gz")));
    wait_for("findings after the database update", Duration::from_secs(60), || {
        let missing: Vec<_> = ["host-a", "host-b", "vm-c"].into_iter().filter(|m| !has_requests_finding(&s, m, "ACTIVE")).collect();
        if missing.is_empty() { Ok(()) } else { Err(format!("no PYSEC-2023-74 finding on {missing:?}")) }
    });
    assert!(findings(&s, "machineId=vm-excluded&status=ALL").is_empty(), "an excluded machine has findings");
    let f = findings(&s, "machineId=host-a&packageName=requests&maxResults=1000");
    let one = f.iter().find(|f| f["packageVulnerabilityDetails"]["vulnerabilityId"] == "PYSEC-2023-74").unwrap();
    assert_eq!(one["status"], "ACTIVE");
    assert!(one["firstObservedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(one["resources"][0]["id"], "host-a");

    // The package goes away on host-a: its next inventory closes the finding.
    make_root(&root_a, "host-a", false);
    run_ok(&mut agent(&root_a, "state-a", None));
    wait_for("the finding to close", Duration::from_secs(30), || {
        if has_requests_finding(&s, "host-a", "CLOSED") && !has_requests_finding(&s, "host-a", "ACTIVE") { Ok(()) } else { Err("still active".into()) }
    });

    // host-b gets a snapshot source and vm-vfat is removed (the machines file is re-read when it changes).
    let machines_v2 = machines_v1.replace("[[machine]]\nid = \"vm-vfat\"\nvolumes = [\"vm-vfat.img\"]\n", "");
    assert_ne!(machines_v2, machines_v1);
    write(&machines, &format!("{machines_v2}\n[[machine]]\nid = \"host-b\"\nvolumes = [\"host-b.img\"]\n"));
    // Both agents stop reporting: host-a (no volumes) goes stale, host-b is taken over agentless.
    wait_for("stale and agentless takeover", Duration::from_secs(60), || {
        let c = coverage(&s);
        let a = status_of(&c, "host-a");
        let b = status_of(&c, "host-b");
        let vfat = status_of(&c, "vm-vfat");
        if a.2 == "STALE_INVENTORY" && b == ("AGENTLESS".into(), "ACTIVE".into(), "SUCCESSFUL".into()) && vfat.2 == "RESOURCE_TERMINATED" {
            Ok(())
        } else {
            Err(format!("host-a {a:?}, host-b {b:?}, vm-vfat {vfat:?}"))
        }
    });
    assert!(has_requests_finding(&s, "host-b", "ACTIVE"), "host-b's agentless inventory still has requests");

    // Statistics group by status and reason.
    let (st, stats) = call("GET", &format!("{}/api/v1/coverage/statistics", s.url), Some(ADMIN), None);
    assert_eq!(st, 200);
    assert_eq!(stats["totalCounts"], 6);

    // SBOM export of a machine.
    let (st, sbom) = call("GET", &format!("{}/api/v1/machines/vm-c/sbom?format=cyclonedx-json", s.url), Some(ADMIN), None);
    assert_eq!(st, 200);
    assert_eq!(sbom["bomFormat"], "CycloneDX");

    // Database search: the same JSON as `kensa db search ID --format json`; 404 JSON when unknown.
    let (st, vuln) = call("GET", &format!("{}/api/v1/vulnerabilities/PYSEC-2023-74", s.url), Some(ADMIN), None);
    assert_eq!(st, 200, "{vuln}");
    let cli: Value = serde_json::from_str(&run_ok(kensa().args(["db", "search", "PYSEC-2023-74", "--format", "json", "--db"]).arg(&db))).unwrap();
    assert_eq!(vuln, cli);
    assert_eq!(vuln["id"], "PYSEC-2023-74");
    let (st, v) = call("GET", &format!("{}/api/v1/vulnerabilities/CVE-1999-99999999", s.url), Some(ADMIN), None);
    assert_eq!((st, v["code"].as_str()), (404, Some("ResourceNotFoundException")), "{v}");
}

/// The API over TLS: an agent that trusts the server's CA enrolls and reports; plain HTTP to the
/// TLS port fails.
#[test]
fn fleet_over_tls() {
    if !kensa_testdata::require_tool("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // A test CA and a server certificate it signs (webpki refuses a CA certificate as end entity).
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run_ok(Command::new("openssl").args(["req", "-x509"]).args(ec).args(["-days", "2", "-subj", "/CN=kensa test CA", "-keyout"]).arg(t.join("ca.key")).arg("-out").arg(t.join("ca.pem")));
    run_ok(Command::new("openssl").args(["req"]).args(ec).args(["-subj", "/CN=localhost", "-keyout"]).arg(t.join("key.pem")).arg("-out").arg(t.join("leaf.csr")));
    write(&t.join("leaf.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n");
    run_ok(Command::new("openssl").args(["x509", "-req", "-days", "2", "-in"]).arg(t.join("leaf.csr")).arg("-CA").arg(t.join("ca.pem")).arg("-CAkey").arg(t.join("ca.key")).arg("-CAcreateserial").arg("-extfile").arg(t.join("leaf.ext")).arg("-out").arg(t.join("cert.pem")));
    let root = t.join("root");
    make_root(&root, "tls-host", false);
    let port = free_port();
    let child = kensa()
        .args(["server", "--data"])
        .arg(t.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--tls-cert"])
        .arg(t.join("cert.pem"))
        .arg("--tls-key")
        .arg(t.join("key.pem"))
        .arg("--admin-token-file")
        .arg({
            write(&t.join("admin"), ADMIN);
            t.join("admin")
        })
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let s = Server { child, url: format!("https://127.0.0.1:{port}") };
    // Enroll through the agent, trusting the test CA; retry while the server starts.
    let pem = std::fs::read(t.join("ca.pem")).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let https: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[cert])).build())
        .build()
        .into();
    let mut token = String::new();
    wait_for("the TLS server", Duration::from_secs(30), || {
        let mut r = https.post(format!("{}/api/v1/enrollment-tokens", s.url)).header("Authorization", format!("Bearer {ADMIN}")).send_empty().map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).map_err(|e| e.to_string())?;
        token = v["token"].as_str().ok_or("no token")?.to_string();
        Ok(())
    });
    let out = run_ok(
        kensa()
            .args(["agent", "--server", &s.url, "--once", "--enroll-token", &token, "--ca-cert"])
            .arg(t.join("ca.pem"))
            .arg("--root")
            .arg(&root)
            .arg("--state-dir")
            .arg(t.join("state")),
    );
    let _ = out;
    // Without the CA the agent refuses the server's certificate.
    let out = kensa().args(["agent", "--server", &s.url, "--once", "--root"]).arg(&root).arg("--state-dir").arg(t.join("state2")).args(["--enroll-token", "x"]).output().unwrap();
    assert!(!out.status.success());
    // Plain HTTP on the TLS port gets no API answer.
    assert!(http().get(format!("http://127.0.0.1:{port}/api/v1/coverage")).call().map(|r| r.status() != 200).unwrap_or(true));
}
