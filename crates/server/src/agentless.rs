//! Agentless scans: snapshot a machine's volumes through its provider, read them with the
//! disk-image reader (all paths), store the inventory, release the snapshot.

use crate::coverage::{is_excluded, EXCLUSION_TAG};
use crate::provider::{MachineProvider, ProvidedMachine, Snapshot};
use crate::store::{self, AgentlessError, MachineRow};
use crate::AppState;

fn err(reason: &str, message: impl Into<String>) -> AgentlessError {
    AgentlessError { reason: reason.to_string(), message: message.into() }
}

/// Scans one machine agentless. The outcome (inventory or reason) is stored; the returned error
/// is the reason when the scan could not be done.
pub fn scan_machine(state: &AppState, m: &MachineRow) -> Result<usize, AgentlessError> {
    let Some(provider) = &state.provider else {
        return Err(err("UNMANAGED_EC2_INSTANCE", "no provider can snapshot this machine"));
    };
    let result = (|| {
        let pm = ProvidedMachine { id: m.id.clone(), name: m.name.clone(), tags: m.tags.clone(), volumes: m.volumes.clone() };
        let volumes: Vec<_> = pm.volumes.iter().filter(|v| !is_excluded(&v.key_tags)).collect();
        let skipped = pm.volumes.len() - volumes.len();
        let limits = kensa_disk::Limits::default();
        if volumes.is_empty() {
            return Err(err("EXCLUDED_BY_TAG", format!("every volume's key is tagged {EXCLUSION_TAG}")));
        }
        let snapshot = provider.create_snapshot(&pm).map_err(|e| err("INTERNAL_ERROR", format!("cannot snapshot: {e:#}")))?;
        let outcome = scan_volumes(state, m, provider.as_ref(), &snapshot, &pm, skipped, &limits);
        if let Err(e) = provider.delete_snapshot(snapshot) {
            tracing::warn!("machine {}: cannot release snapshot: {e:#}", m.id);
        }
        outcome
    })();
    let conn = state.db.lock().expect("store lock poisoned");
    let _ = store::set_agentless_result(&conn, &m.id, result.as_ref().err());
    drop(conn);
    result
}

fn scan_volumes(
    state: &AppState,
    m: &MachineRow,
    provider: &dyn MachineProvider,
    snapshot: &Snapshot,
    pm: &ProvidedMachine,
    _skipped: usize,
    limits: &kensa_disk::Limits,
) -> Result<usize, AgentlessError> {
    // Volumes whose key carries the exclusion tag are not read at all.
    let excluded: std::collections::HashSet<&str> = pm.volumes.iter().filter(|v| is_excluded(&v.key_tags)).map(|v| v.path.as_str()).collect();
    let mut total: u64 = 0;
    let mut count = 0usize;
    let mut root_target = None;
    let mut problems = Vec::new();
    for (index, p) in snapshot.volume_paths.iter().enumerate().filter(|(_, p)| !excluded.contains(p.to_string_lossy().as_ref())) {
        let blocks = provider.read_blocks(snapshot, index).map_err(|e| err("INTERNAL_ERROR", format!("cannot read volume {}: {e:#}", p.display())))?;
        match kensa_disk::open_block_device(blocks.device, blocks.counters, &blocks.name, limits) {
            Ok(t) => {
                count += t.volumes.iter().filter(|v| v.fs_type.as_deref() != Some("LVM2_member")).count();
                total += t.volumes.iter().map(|v| v.size).sum::<u64>();
                if root_target.is_none() {
                    root_target = Some(t);
                }
            }
            Err(kensa_disk::DiskError::Ineligible { reason, .. }) => return Err(err("AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED", reason)),
            Err(e @ kensa_disk::DiskError::NoRoot { .. }) => problems.push(e.to_string()),
            Err(e) => return Err(err("INTERNAL_ERROR", e.to_string())),
        }
    }
    if count > limits.max_volumes {
        return Err(err("AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED", format!("{count} volumes; agentless scanning reads at most {}", limits.max_volumes)));
    }
    if total > limits.max_total_bytes {
        return Err(err("AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED", format!("{total} bytes in all; agentless scanning reads at most {}", limits.max_total_bytes)));
    }
    let Some(target) = root_target else {
        // Nothing readable: say which filesystems were found.
        return Err(err("UNSUPPORTED_OS", format!("no supported root filesystem (ext3, ext4, xfs) found: {}", problems.join("; "))));
    };
    let opts = kensa_inventory::ScanOptions {
        target_name: Some(m.id.clone()),
        deep_inspection: kensa_inventory::lang::DeepInspection::all(),
        ..Default::default()
    };
    let mut inv = kensa_inventory::scan(&target.root, &opts);
    for p in &mut inv.packages {
        p.files.clear();
    }
    for note in &target.notes {
        inv.warnings.push(kensa_inventory::Warning { cataloger: "disk".into(), path: display(&snapshot.volume_paths), message: note.clone(), partial: false });
    }
    let json = serde_json::to_vec(&inv).map_err(|e| err("INTERNAL_ERROR", e.to_string()))?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&json))
    };
    {
        let mut conn = state.db.lock().expect("store lock poisoned");
        store::put_inventory(&mut conn, &m.id, &inv, &sha, "AGENTLESS").map_err(|e| err("INTERNAL_ERROR", format!("{e:#}")))?;
    }
    state.rematch_machine(&m.id).map_err(|e| err("INTERNAL_ERROR", format!("{e:#}")))
}

fn display(paths: &[std::path::PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Runs every agentless scan that is due. Returns how many machines were scanned.
pub fn run_due(state: &AppState) -> usize {
    let (machines, settings) = {
        let conn = state.db.lock().expect("store lock poisoned");
        (store::machines(&conn).unwrap_or_default(), crate::load_settings(&conn))
    };
    let now = store::now();
    let mut n = 0;
    for m in machines.iter().filter(|m| crate::coverage::agentless_due(m, &settings, now)) {
        match scan_machine(state, m) {
            Ok(f) => tracing::info!("machine {}: agentless scan done ({f} active findings)", m.id),
            Err(e) => tracing::warn!("machine {}: agentless scan: {} ({})", m.id, e.reason, e.message),
        }
        n += 1;
    }
    n
}

