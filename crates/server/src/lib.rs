//! kensa's fleet server.
//!
//! Machines come from agents (`kensa agent` enrolls with a one-time token, then reports its
//! inventory) and from providers (a machines file whose volumes are disk images). The server keeps
//! each machine's latest inventory, decides per machine whether its agent or an agentless scan of
//! its volumes covers it (hybrid mode), matches inventories against the vulnerability database and
//! keeps findings current — re-matching stored inventories when the database changes.

pub mod agentless;
pub mod api;
pub mod coverage;
pub mod findings;
pub mod provider;
pub mod settings;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

use crate::provider::{FileProvider, MachineProvider};
use crate::settings::Settings;

/// How the server is started.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The vulnerability database (default: `DATA/vuln.db`).
    pub vuln_db: Option<PathBuf>,
    /// Admin token (from `KENSA_ADMIN_TOKEN` or `--admin-token-file`); generated when `None`.
    pub admin_token: Option<String>,
    pub machines_file: Option<PathBuf>,
    /// PEM certificate chain and key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How often the scheduler wakes up (provider sync, agentless scans, database changes).
    pub tick: Duration,
}

/// Shared state of the running server.
pub struct AppState {
    pub db: Mutex<Connection>,
    /// Woken when settings, tags or machines change, so the scheduler re-evaluates at once.
    pub changed: tokio::sync::Notify,
    pub data_dir: PathBuf,
    pub vuln_db: PathBuf,
    pub provider: Option<Arc<dyn MachineProvider>>,
    /// Idle read-only connections to the vulnerability database, reused so their page caches stay
    /// warm (a fresh connection per report re-reads every index page from the file).
    vuln_pool: Mutex<VulnPool>,
}

/// Connections are kept only while the database file keeps the stamp they were opened at.
#[derive(Default)]
struct VulnPool {
    stamp: Option<(std::time::SystemTime, u64)>,
    idle: Vec<kensa_vulndb::VulnDb>,
}

/// Idle connections kept: one per worker that matches concurrently is enough.
const VULN_POOL_SIZE: usize = 4;

/// The settings in force (defaults until an admin changes them).
pub fn load_settings(conn: &Connection) -> Settings {
    store::get_setting(conn, "settings").ok().flatten().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

impl AppState {
    /// Runs `f` with a read-only connection to the vulnerability database, from the pool when one
    /// is idle and the file has not been replaced since it was opened.
    pub fn with_vuln_db<T>(&self, f: impl FnOnce(&kensa_vulndb::VulnDb) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let stamp = file_stamp(&self.vuln_db);
        let pooled = {
            let mut pool = self.vuln_pool.lock().expect("vulnerability database pool lock poisoned");
            if pool.stamp != stamp {
                pool.idle.clear();
                pool.stamp = stamp;
            }
            pool.idle.pop()
        };
        let db = match pooled {
            Some(db) => db,
            None => kensa_vulndb::VulnDb::open(&self.vuln_db)?,
        };
        let out = f(&db);
        let mut pool = self.vuln_pool.lock().expect("vulnerability database pool lock poisoned");
        if pool.stamp == stamp && pool.idle.len() < VULN_POOL_SIZE {
            pool.idle.push(db);
        }
        out
    }

    /// Re-matches one machine's stored inventory against the vulnerability database and updates
    /// its findings; returns its number of active findings. Excluded machines get none.
    pub fn rematch_machine(&self, id: &str) -> anyhow::Result<usize> {
        let (machine, inventory) = {
            let conn = self.db.lock().expect("store lock poisoned");
            (store::machine(&conn, id)?, store::inventory(&conn, id)?)
        };
        let Some(machine) = machine else { anyhow::bail!("no machine {id}") };
        let current = match inventory {
            Some(inv) if !coverage::is_excluded(&machine.tags) => {
                if !self.vuln_db.exists() {
                    tracing::warn!("no vulnerability database at {}: findings cannot be computed (run `kensa db update --db {}`)", self.vuln_db.display(), self.vuln_db.display());
                    return Ok(0);
                }
                self.with_vuln_db(|db| Ok(kensa_matcher::match_inventory(db, &inv, &kensa_matcher::MatchOptions::default(), &mut |_, _| {})?.findings))?
            }
            _ => Vec::new(),
        };
        let mut conn = self.db.lock().expect("store lock poisoned");
        Ok(findings::apply(&mut conn, id, &current)?)
    }

    /// Re-matches every machine (after a database update). Returns how many were matched.
    pub fn rematch_all(&self) -> usize {
        let ids: Vec<String> = {
            let conn = self.db.lock().expect("store lock poisoned");
            store::machines(&conn).unwrap_or_default().into_iter().filter(|m| m.inventory_at.is_some()).map(|m| m.id).collect()
        };
        let mut n = 0;
        for id in ids {
            match self.rematch_machine(&id) {
                Ok(_) => n += 1,
                Err(e) => tracing::error!("machine {id}: re-match failed: {e:#}"),
            }
        }
        n
    }
}

/// Opens the store, makes sure an admin token exists, and returns the state plus a message saying
/// where a generated token was written.
pub fn prepare(cfg: &ServerConfig) -> anyhow::Result<(Arc<AppState>, Option<String>)> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let conn = store::open(&cfg.data_dir.join("server.db"))?;
    let mut note = None;
    match &cfg.admin_token {
        Some(t) => {
            if t.len() < 16 {
                anyhow::bail!("the admin token must be at least 16 characters");
            }
            conn.execute("DELETE FROM tokens WHERE kind = 'admin'", [])?;
            store::insert_token(&conn, t, "admin", None)?;
        }
        None => {
            let has_admin: i64 = conn.query_row("SELECT COUNT(*) FROM tokens WHERE kind = 'admin'", [], |r| r.get(0))?;
            if has_admin == 0 {
                let token = store::new_token("kensa_admin");
                let path = cfg.data_dir.join("admin-token");
                write_private(&path, &token)?;
                store::insert_token(&conn, &token, "admin", None)?;
                note = Some(format!("generated an admin token; it is in {}", path.display()));
            }
        }
    }
    let provider: Option<Arc<dyn MachineProvider>> = cfg.machines_file.as_ref().map(|p| Arc::new(FileProvider::new(p)) as Arc<dyn MachineProvider>);
    let state = Arc::new(AppState {
        db: Mutex::new(conn),
        changed: tokio::sync::Notify::new(),
        data_dir: cfg.data_dir.clone(),
        vuln_db: cfg.vuln_db.clone().unwrap_or_else(|| cfg.data_dir.join("vuln.db")),
        provider,
        vuln_pool: Mutex::new(VulnPool::default()),
    });
    Ok((state, note))
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{content}")?;
    Ok(())
}

/// Syncs provider machines when the provider's list changed. Errors are logged, not fatal: a
/// broken machines file keeps the last good list.
fn sync_provider(state: &AppState, last: &mut Option<Vec<provider::ProvidedMachine>>) {
    let Some(p) = &state.provider else { return };
    match p.list() {
        Ok(list) => {
            if last.as_ref() != Some(&list) {
                let mut conn = state.db.lock().expect("store lock poisoned");
                if let Err(e) = store::sync_provider_machines(&mut conn, &list) {
                    tracing::error!("{}: cannot store machines: {e}", p.describe());
                } else {
                    *last = Some(list);
                }
            }
        }
        Err(e) => tracing::warn!("{e:#} (keeping the last good machine list)"),
    }
}

/// Runs the server until Ctrl-C / SIGTERM.
pub async fn serve(cfg: ServerConfig, state: Arc<AppState>) -> anyhow::Result<()> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tls::load_config(cert, key)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("kensa server listening on {scheme}://{}", listener.local_addr()?);
    let sched_state = state.clone();
    let tick = cfg.tick;
    tokio::spawn(async move {
        let mut last = None;
        let mut db_stamp = None;
        loop {
            let s = sched_state.clone();
            let mut l = last.take();
            let mut stamp = db_stamp.take();
            (last, db_stamp) = tokio::task::spawn_blocking(move || {
                sync_provider(&s, &mut l);
                // Continuous scanning: a new database re-matches every stored inventory.
                let now_stamp = file_stamp(&s.vuln_db);
                if now_stamp.is_some() && now_stamp != stamp {
                    let n = s.rematch_all();
                    tracing::info!("vulnerability database changed: re-matched {n} machines");
                    stamp = now_stamp;
                }
                agentless::run_due(&s);
                (l, stamp)
            })
            .await
            .unwrap_or((None, None));
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = sched_state.changed.notified() => {}
            }
        }
    });
    let app = api::router(state);
    match tls {
        Some(tls) => axum::serve(tls::TlsListener::new(listener, tls)?, app).with_graceful_shutdown(shutdown_signal()).await?,
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?,
    }
    Ok(())
}

/// Modification time and size of a file, to notice a replaced database.
fn file_stamp(p: &Path) -> Option<(std::time::SystemTime, u64)> {
    let md = std::fs::metadata(p).ok()?;
    Some((md.modified().ok()?, md.len()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
