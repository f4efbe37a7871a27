//! kensa's fleet server.
//!
//! Machines come from agents (`kensa agent` enrolls with a one-time token, then reports its
//! inventory) and from providers (a machines file whose volumes are disk images). The server keeps
//! each machine's latest inventory, decides per machine whether its agent or an agentless scan of
//! its volumes covers it (hybrid mode), matches inventories against the vulnerability database and
//! keeps findings current — re-matching stored inventories when the database changes.
//!
//! A report is acknowledged once its inventory is durably stored together with a `pending_match`
//! row; a background matcher thread (`AppState::start_matcher`) matches queued machines and writes
//! their findings, and on start first drains whatever a crash left pending.

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
    /// Most volumes and bytes an agentless scan reads of one machine (Amazon Inspector's 7 volumes
    /// and 1,200 GB by default); machines over them are reported AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED.
    pub agentless_limits: kensa_disk::Limits,
}

/// Shared state of the running server.
pub struct AppState {
    pub db: Mutex<Connection>,
    /// Woken when settings, tags or machines change, so the scheduler re-evaluates at once.
    pub changed: tokio::sync::Notify,
    pub data_dir: PathBuf,
    pub vuln_db: PathBuf,
    pub provider: Option<Arc<dyn MachineProvider>>,
    /// See [`ServerConfig::agentless_limits`].
    pub agentless_limits: kensa_disk::Limits,
    /// Idle read-only connections to the vulnerability database, reused so their page caches stay
    /// warm (a fresh connection per report re-reads every index page from the file).
    vuln_pool: Mutex<VulnPool>,
    matcher: Matcher,
}

/// Connections are kept only while the database file keeps the stamp they were opened at.
#[derive(Default)]
struct VulnPool {
    stamp: Option<(std::time::SystemTime, u64)>,
    idle: Vec<kensa_vulndb::VulnDb>,
}

/// Setting naming the vulnerability database file (modification time, size) the stored findings
/// were matched against.
const VULN_DB_STAMP: &str = "vuln_db_stamp";

/// Matcher threads at most (one per core below that).
const MAX_MATCH_WORKERS: usize = 4;

/// Runs the calling thread at nice 10: background matching yields the CPU to API requests.
#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {
    // Elsewhere setpriority(PRIO_PROCESS, 0) would lower the whole process, API included.
}

/// Runs the calling thread at nice 10: background matching yields the CPU to API requests.
#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    // On Linux, setpriority(PRIO_PROCESS, 0) applies to the calling thread only.
    // SAFETY: plain system call on the calling thread, no memory is passed.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if rc != 0 {
        tracing::debug!("cannot lower the matcher thread's priority: {}", std::io::Error::last_os_error());
    }
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
    /// its findings; returns its number of active findings. Excluded machines get none. Only
    /// reading the inventory and writing the findings hold the store lock: decoding, matching and
    /// serializing findings run without it, so reports are not held up by matching.
    pub fn rematch_machine(&self, id: &str) -> anyhow::Result<usize> {
        let input = {
            let conn = self.db.lock().expect("store lock poisoned");
            store::match_input(&conn, id)?
        };
        let Some(input) = input else { anyhow::bail!("no machine {id}") };
        let current = match &input.inventory {
            Some(blob) if !coverage::is_excluded(&input.tags) => {
                if !self.vuln_db.exists() {
                    tracing::warn!("no vulnerability database at {}: findings cannot be computed (run `kensa db update --db {}`)", self.vuln_db.display(), self.vuln_db.display());
                    return Ok(0);
                }
                let inv = store::decode_inventory(blob).with_context(|| format!("machine {id}: stored inventory"))?;
                self.with_vuln_db(|db| Ok(kensa_matcher::match_inventory(db, &inv, &kensa_matcher::MatchOptions::default(), &mut |_, _| {})?.findings))?
            }
            _ => Vec::new(),
        };
        let prepared = findings::prepare(&current);
        let mut conn = self.db.lock().expect("store lock poisoned");
        match findings::store_match(&mut conn, id, input.generation, &prepared)? {
            Some(active) => Ok(active),
            None => {
                tracing::debug!("machine {id}: a newer inventory arrived during the match; its own match stores the findings");
                Ok(prepared.active())
            }
        }
    }

    /// Continuous scanning: when the vulnerability database file is not the one the stored
    /// findings were matched against, queues every stored inventory for re-matching (after fresh
    /// reports). The re-match is durable: `pending_match` rows and the database's stamp are written
    /// in one transaction, so a restart neither loses a re-match in progress nor repeats a finished
    /// one. Returns how many machines were queued, None when the database is unchanged or absent.
    pub fn rematch_if_database_changed(&self) -> Option<usize> {
        let (modified, len) = file_stamp(&self.vuln_db)?;
        let stamp = format!("{}:{len}", modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        let ids = {
            let mut conn = self.db.lock().expect("store lock poisoned");
            if store::get_setting(&conn, VULN_DB_STAMP).ok().flatten().as_deref() == Some(stamp.as_str()) {
                return None;
            }
            match store::queue_all_for_rematch(&mut conn, VULN_DB_STAMP, &stamp) {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!("cannot queue machines for re-matching: {e}");
                    return None;
                }
            }
        };
        let mut queue = self.matcher.queue.lock().expect("match queue lock poisoned");
        for id in &ids {
            queue.push(id, false);
        }
        queue.collect_garbage = true;
        self.matcher.wake.notify_all();
        Some(ids.len())
    }

    /// Queues a machine whose new inventory was just stored (its `pending_match` row is already
    /// durable, so the queue itself may be lost in a crash).
    pub fn enqueue_match(&self, id: &str) {
        self.matcher.queue.lock().expect("match queue lock poisoned").push(id, true);
        self.matcher.wake.notify_all();
    }

    /// Machines queued or being matched now.
    pub fn match_backlog(&self) -> usize {
        self.matcher.queue.lock().expect("match queue lock poisoned").len()
    }

    /// Matches completed since the server started.
    pub fn matches_done(&self) -> u64 {
        self.matcher.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts the background matcher (once): it first queues every stored inventory still waiting
    /// for a match (reports acknowledged before a crash), then matches queued machines, fresh
    /// reports before database re-matches, on one thread per core (at most 4; a machine is never
    /// matched by two at once). The threads run at a lower CPU priority than the API's, so
    /// matching a backlog does not slow down answers.
    pub fn start_matcher(self: &Arc<Self>) -> anyhow::Result<()> {
        if self.matcher.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let pending = store::pending_matches(&self.db.lock().expect("store lock poisoned"))?;
        if !pending.is_empty() {
            tracing::info!("{} stored inventories wait for matching", pending.len());
        }
        for id in &pending {
            self.enqueue_match(id);
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_MATCH_WORKERS);
        for i in 0..workers {
            let state = self.clone();
            std::thread::Builder::new()
                .name(format!("kensa-matcher-{i}"))
                .spawn(move || {
                    lower_thread_priority();
                    state.matcher_loop()
                })
                .context("cannot start the matcher threads")?;
        }
        Ok(())
    }

    fn matcher_loop(&self) {
        let m = &self.matcher;
        loop {
            let (id, gc) = {
                let mut q = m.queue.lock().expect("match queue lock poisoned");
                loop {
                    if let Some(id) = q.pop() {
                        break (Some(id), false);
                    }
                    if q.collect_garbage && q.busy.is_empty() {
                        q.collect_garbage = false;
                        break (None, true);
                    }
                    q = m.wake.wait(q).expect("match queue lock poisoned");
                }
            };
            if gc {
                // After a database re-match drained: drop vulnerability details no finding uses.
                let mut conn = self.db.lock().expect("store lock poisoned");
                match findings::collect_garbage(&mut conn) {
                    Ok(n) => tracing::info!("removed {n} unused finding details"),
                    Err(e) => tracing::error!("cannot remove unused finding details: {e}"),
                }
                continue;
            }
            let Some(id) = id else { continue };
            // A panic in matching must not stop the matcher: the machine stays pending in the store.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.rematch_machine(&id))) {
                Ok(Ok(n)) => tracing::debug!("machine {id}: matched ({n} active findings)"),
                Ok(Err(e)) => tracing::error!("machine {id}: matching failed: {e:#}"),
                Err(_) => tracing::error!("machine {id}: matching panicked"),
            }
            m.queue.lock().expect("match queue lock poisoned").busy.remove(&id);
            m.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Another worker may wait for this machine (reported again meanwhile).
            m.wake.notify_all();
        }
    }
}

/// The background matcher's state.
#[derive(Default)]
struct Matcher {
    queue: Mutex<MatchQueue>,
    wake: std::sync::Condvar,
    done: std::sync::atomic::AtomicU64,
    started: std::sync::atomic::AtomicBool,
}

/// Machines waiting for a match, each at most once: a machine reported again while queued is
/// matched once, with the inventory stored last (read when its turn comes). Fresh reports go
/// before database re-matches. A machine being matched is not handed to a second worker (its
/// older result could be stored last); it waits in the queue until the first is done.
#[derive(Default)]
struct MatchQueue {
    reports: std::collections::VecDeque<String>,
    rescans: std::collections::VecDeque<String>,
    /// Queued machines; the value says whether one of its entries is in `reports`.
    queued: std::collections::HashMap<String, bool>,
    /// Machines being matched now.
    busy: std::collections::HashSet<String>,
    collect_garbage: bool,
}

impl MatchQueue {
    fn push(&mut self, id: &str, report: bool) {
        match self.queued.get_mut(id) {
            Some(in_reports) => {
                if report && !*in_reports {
                    *in_reports = true;
                    self.reports.push_back(id.to_string());
                }
            }
            None => {
                self.queued.insert(id.to_string(), report);
                if report { &mut self.reports } else { &mut self.rescans }.push_back(id.to_string());
            }
        }
    }

    /// Takes the next machine that is not being matched and marks it busy.
    fn pop(&mut self) -> Option<String> {
        let MatchQueue { reports, rescans, queued, busy, .. } = self;
        for entries in [reports, rescans] {
            let mut i = 0;
            while i < entries.len() {
                if !queued.contains_key(&entries[i]) {
                    // Stale: the machine was already taken through its other entry.
                    entries.remove(i);
                } else if busy.contains(&entries[i]) {
                    i += 1;
                } else {
                    let id = entries.remove(i).expect("index checked");
                    queued.remove(&id);
                    busy.insert(id.clone());
                    return Some(id);
                }
            }
        }
        None
    }

    /// Machines queued or being matched.
    fn len(&self) -> usize {
        self.queued.len() + self.busy.len()
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
        agentless_limits: cfg.agentless_limits.clone(),
        vuln_pool: Mutex::new(VulnPool::default()),
        matcher: Matcher::default(),
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
                match store::sync_provider_machines(&mut conn, &list) {
                    Err(e) => tracing::error!("{}: cannot store machines: {e}", p.describe()),
                    Ok(rematch) => {
                        drop(conn);
                        for id in &rematch {
                            state.enqueue_match(id);
                        }
                        *last = Some(list);
                    }
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
    state.start_matcher()?;
    let sched_state = state.clone();
    let tick = cfg.tick;
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let s = sched_state.clone();
            let mut l = last.take();
            last = tokio::task::spawn_blocking(move || {
                sync_provider(&s, &mut l);
                if let Some(n) = s.rematch_if_database_changed() {
                    tracing::info!("vulnerability database changed: re-matching {n} machines in the background");
                }
                agentless::run_due(&s);
                l
            })
            .await
            .unwrap_or(None);
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

#[cfg(test)]
mod tests {
    use super::MatchQueue;

    #[test]
    fn match_queue_takes_each_machine_once_reports_first() {
        let mut q = MatchQueue::default();
        q.push("a", false);
        q.push("b", false);
        q.push("c", true);
        q.push("c", true);
        // A report for a machine already queued for a re-match moves it ahead, still once.
        q.push("b", true);
        assert_eq!(q.len(), 3);
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["c", "b", "a"]);
        assert_eq!(q.len(), 3, "all three are being matched");
        for id in ["a", "b", "c"] {
            q.busy.remove(id);
        }
        assert_eq!(q.len(), 0);
        // Taken machines can be queued again.
        q.push("a", true);
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_machine_being_matched_is_not_handed_out_twice() {
        let mut q = MatchQueue::default();
        q.push("a", true);
        assert_eq!(q.pop().as_deref(), Some("a"));
        // Reported again while being matched: queued, but held back until the first match ends.
        q.push("a", true);
        q.push("b", false);
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop(), None);
        q.busy.remove("a");
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop(), None);
    }
}
