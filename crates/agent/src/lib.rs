//! `kensa agent`: enrolls once with a one-time token (which becomes a per-agent credential kept in
//! the state directory), then inventories its root — OS packages plus deep inspection with the
//! agent path policy and the server's custom paths — and sends it right away and every interval,
//! gzip-compressed, only when it changed or at least daily; a heartbeat otherwise. The interval
//! comes from the server (30 minutes by default; it can be longer, never shorter).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Agents never report more often than this, whatever a server says.
pub const MIN_INTERVAL_MINUTES: u64 = 30;
/// An unchanged inventory is still re-sent this often.
pub const RESEND_AFTER_SECS: i64 = 24 * 3600;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8443`.
    pub server: String,
    pub enroll_token: Option<String>,
    /// The root filesystem to inventory (`/`, or e.g. `/host` from a container).
    pub root: PathBuf,
    pub state_dir: PathBuf,
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// PEM file of CA certificates to trust for an HTTPS server (instead of the public roots).
    pub ca_cert: Option<PathBuf>,
}

/// What the agent remembers between runs (`STATE_DIR/agent.json`, mode 0600).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub server: String,
    pub machine_id: String,
    pub credential: String,
    #[serde(default)]
    pub last_sent_sha256: Option<String>,
    #[serde(default)]
    pub last_sent_at: Option<i64>,
}

/// The part of the server's answer the agent acts on.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteConfig {
    pub interval_minutes: u64,
    #[serde(default)]
    pub deep_inspection: RemoteDeepInspection,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteDeepInspection {
    pub enabled: bool,
    #[serde(default)]
    pub custom_paths: Vec<String>,
}

/// What one reporting cycle did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CycleOutcome {
    SentInventory { packages: usize },
    Heartbeat,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("agent.json")
}

fn load_state(dir: &Path) -> anyhow::Result<Option<AgentState>> {
    let p = state_path(dir);
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| format!("{} is not a valid agent state file", p.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

fn save_state(dir: &Path, state: &AgentState) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create state directory {}", dir.display()))?;
    let p = state_path(dir);
    let tmp = p.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(state)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

/// The machine's name: the configured one, else the root's hostname, else its machine-id.
pub fn machine_name(root: &kensa_fs::Root, configured: Option<&str>) -> anyhow::Result<String> {
    if let Some(n) = configured {
        return Ok(n.to_string());
    }
    for file in ["/etc/hostname", "/etc/machine-id"] {
        if let Ok(s) = root.read_limited(file, 4096) {
            let s = String::from_utf8_lossy(&s).trim().to_string();
            if !s.is_empty() {
                return Ok(s);
            }
        }
    }
    bail!("cannot name this machine: no /etc/hostname or /etc/machine-id under {}; pass --name", root.describe())
}

fn agent(ca_cert: Option<&Path>) -> anyhow::Result<ureq::Agent> {
    let mut b = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).http_status_as_error(false);
    if let Some(ca) = ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read CA certificates {}", ca.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} is not a PEM certificate file", ca.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", ca.display());
        }
        b = b.tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certs)).build());
    }
    Ok(b.build().into())
}

/// Reads a response: JSON on 2xx, the server's `{code, message}` as an error otherwise.
fn read_json(url: &str, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> anyhow::Result<serde_json::Value> {
    let mut resp = resp.with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or(body);
        bail!("{url}: HTTP {status}: {msg}");
    }
    serde_json::from_str(&body).with_context(|| format!("{url}: the answer is not JSON"))
}

pub struct Agent {
    cfg: AgentConfig,
    http: ureq::Agent,
    state: AgentState,
    remote: RemoteConfig,
}

impl Agent {
    /// Loads the saved credential, or enrolls with the one-time token.
    pub fn start(cfg: AgentConfig) -> anyhow::Result<Agent> {
        let http = agent(cfg.ca_cert.as_deref())?;
        let server = cfg.server.trim_end_matches('/').to_string();
        let state = match load_state(&cfg.state_dir)? {
            Some(s) if s.server == server => s,
            _ => {
                let token = cfg.enroll_token.clone().context("this agent is not enrolled yet: pass --enroll-token (an admin creates one with POST /api/v1/enrollment-tokens)")?;
                let root = kensa_fs::Root::dir(&cfg.root).with_context(|| format!("cannot open root {}", cfg.root.display()))?;
                let name = machine_name(&root, cfg.name.as_deref())?;
                let url = format!("{server}/api/v1/agents/enroll");
                let body = serde_json::json!({"name": name, "tags": cfg.tags});
                let v = read_json(&url, http.post(&url).header("Authorization", &format!("Bearer {token}")).header("Content-Type", "application/json").send(&serde_json::to_vec(&body)?[..]))?;
                let s = AgentState {
                    server: server.clone(),
                    machine_id: v["machineId"].as_str().context("enroll answer has no machineId")?.to_string(),
                    credential: v["credential"].as_str().context("enroll answer has no credential")?.to_string(),
                    ..Default::default()
                };
                save_state(&cfg.state_dir, &s)?;
                tracing::info!("enrolled as machine {}", s.machine_id);
                s
            }
        };
        let mut a = Agent { cfg, http, state, remote: RemoteConfig { interval_minutes: MIN_INTERVAL_MINUTES, ..Default::default() } };
        a.refresh_config()?;
        Ok(a)
    }

    pub fn machine_id(&self) -> &str {
        &self.state.machine_id
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.state.credential)
    }

    fn refresh_config(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/agents/config", self.state.server);
        let v = read_json(&url, self.http.get(&url).header("Authorization", &self.auth()).call())?;
        self.apply_config(&v);
        Ok(())
    }

    fn apply_config(&mut self, v: &serde_json::Value) {
        if let Ok(c) = serde_json::from_value::<RemoteConfig>(v.clone()) {
            self.remote = c;
        }
    }

    /// The interval until the next report: the server's, never under 30 minutes.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(60 * self.remote.interval_minutes.max(MIN_INTERVAL_MINUTES))
    }

    /// Inventories the root with the agent path policy and the server's custom paths.
    pub fn inventory(&self) -> anyhow::Result<kensa_inventory::Inventory> {
        use kensa_inventory::lang::{DeepInspection, DeepInspectionMode};
        let root = kensa_fs::Root::dir(&self.cfg.root).with_context(|| format!("cannot open root {}", self.cfg.root.display()))?;
        let deep = if self.remote.deep_inspection.enabled {
            DeepInspection::new(DeepInspectionMode::Agent, self.remote.deep_inspection.custom_paths.clone())
                .map_err(|e| anyhow::anyhow!("server sent invalid custom paths: {e}"))?
        } else {
            DeepInspection::off()
        };
        // One thread: the agent shares the host with its workload, and a scan every 30 minutes
        // has time; faster scans matter for the CLI and the server's agentless scans.
        let opts = kensa_inventory::ScanOptions { target_name: Some(self.state.machine_id.clone()), deep_inspection: deep, threads: 1, ..Default::default() };
        let mut inv = kensa_inventory::scan(&root, &opts);
        // File lists stay on the host: ownership was settled here and the server never needs them.
        for p in &mut inv.packages {
            p.files.clear();
        }
        Ok(inv)
    }

    /// One reporting cycle: send the inventory when it changed (or daily), else a heartbeat.
    pub fn cycle(&mut self) -> anyhow::Result<CycleOutcome> {
        let inv = self.inventory()?;
        let json = serde_json::to_vec(&inv)?;
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&json))
        };
        let fresh = self.state.last_sent_sha256.as_deref() == Some(sha.as_str()) && self.state.last_sent_at.is_some_and(|t| now() - t < RESEND_AFTER_SECS);
        if fresh {
            let url = format!("{}/api/v1/machines/{}/heartbeat", self.state.server, self.state.machine_id);
            let v = read_json(&url, self.http.post(&url).header("Authorization", &self.auth()).header("Content-Type", "application/json").send(&serde_json::to_vec(&serde_json::json!({"inventorySha256": sha}))?[..]))?;
            self.apply_config(&v["config"]);
            if !v["inventoryNeeded"].as_bool().unwrap_or(false) {
                return Ok(CycleOutcome::Heartbeat);
            }
        }
        let url = format!("{}/api/v1/machines/{}/inventory", self.state.server, self.state.machine_id);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&json)?;
        let body = enc.finish()?;
        let v = read_json(
            &url,
            self.http.put(&url).header("Authorization", &self.auth()).header("Content-Type", "application/json").header("Content-Encoding", "gzip").send(&body[..]),
        )?;
        self.apply_config(&v["config"]);
        self.state.last_sent_sha256 = Some(sha);
        self.state.last_sent_at = Some(now());
        save_state(&self.cfg.state_dir, &self.state)?;
        Ok(CycleOutcome::SentInventory { packages: inv.packages.len() })
    }

    /// Reports forever, one cycle per interval; a failed cycle is logged and retried next time.
    pub fn run(mut self) -> ! {
        loop {
            match self.cycle() {
                Ok(CycleOutcome::SentInventory { packages }) => tracing::info!("sent inventory ({packages} packages)"),
                Ok(CycleOutcome::Heartbeat) => tracing::info!("inventory unchanged; heartbeat sent"),
                Err(e) => tracing::warn!("report failed: {e:#}"),
            }
            std::thread::sleep(self.interval());
        }
    }
}
