//! Agentless scans: snapshot a machine's volumes through its provider, read them with the
//! disk-image reader (all paths), store the inventory, release the snapshot.
//!
//! Eligibility follows Inspector: volumes whose key carries the exclusion tag are neither
//! snapshotted nor read; fewer than 8 volumes and at most 1,200 GB in all (checked before any
//! filesystem is read); an ext3, ext4 or xfs root filesystem; reading a machine's volumes takes at
//! most [`COLLECTION_TIME_LIMIT`]. The snapshot is released as soon as the volumes are read,
//! whatever happened (errors and panics included).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::coverage::{is_excluded, EXCLUSION_TAG};
use crate::provider::{MachineProvider, ProvidedMachine, Snapshot, VolumeBlocks};
use crate::store::{self, AgentlessError, MachineRow, Volume};
use crate::AppState;

fn err(reason: &str, message: impl Into<String>) -> AgentlessError {
    AgentlessError { reason: reason.to_string(), message: message.into() }
}

/// Scans one machine agentless. The outcome (inventory or reason) is stored; the returned error
/// is the reason when the scan could not be done.
pub fn scan_machine(state: &AppState, m: &MachineRow) -> Result<usize, AgentlessError> {
    let result = match &state.provider {
        // A panic (a reader bug on a hostile image) is this machine's INTERNAL_ERROR, recorded so
        // the scheduler retries later instead of on every tick; the snapshot guard has run.
        Some(provider) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scan_with(state, provider.as_ref(), m))).unwrap_or_else(|panic| {
            let what = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("unknown cause");
            Err(err("INTERNAL_ERROR", format!("the agentless scan failed unexpectedly ({what}); please report this")))
        }),
        None => Err(err("UNMANAGED_EC2_INSTANCE", "no provider can snapshot this machine (start the server with --machines)")),
    };
    let conn = state.db.lock().expect("store lock poisoned");
    if let Err(e) = store::set_agentless_result(&conn, &m.id, result.as_ref().err()) {
        tracing::error!("machine {}: cannot record the agentless scan's outcome: {e}", m.id);
    }
    result
}

/// Releases the snapshot when dropped, so that no return path or panic leaks it.
struct SnapshotGuard<'a> {
    provider: &'a dyn MachineProvider,
    snapshot: Option<Snapshot>,
    machine_id: &'a str,
    scan_id: String,
}

impl Drop for SnapshotGuard<'_> {
    fn drop(&mut self) {
        if let Some(snapshot) = self.snapshot.take() {
            if let Err(e) = self.provider.delete_snapshot(snapshot) {
                tracing::warn!("machine {}: cannot release snapshot {}: {e:#}", self.machine_id, self.scan_id);
            }
        }
    }
}

/// The longest an agentless scan may read one machine's volumes (a huge or hostile volume must not
/// hold up the scheduler): past it the scan stops with AGENTLESS_INSTANCE_COLLECTION_TIME_LIMIT_EXCEEDED.
pub const COLLECTION_TIME_LIMIT: Duration = Duration::from_secs(30 * 60);

fn scan_with(state: &AppState, provider: &dyn MachineProvider, m: &MachineRow) -> Result<usize, AgentlessError> {
    scan_until(state, provider, m, Instant::now() + COLLECTION_TIME_LIMIT)
}

fn scan_until(state: &AppState, provider: &dyn MachineProvider, m: &MachineRow, deadline: Instant) -> Result<usize, AgentlessError> {
    let limits = state.agentless_limits.clone();
    let pm = ProvidedMachine { id: m.id.clone(), name: m.name.clone(), tags: m.tags.clone(), volumes: m.volumes.clone() };
    let (excluded, volumes): (Vec<Volume>, Vec<Volume>) = m.volumes.iter().cloned().partition(|v| is_excluded(&v.key_tags));
    if volumes.is_empty() {
        return Err(match excluded.is_empty() {
            true => err("UNMANAGED_EC2_INSTANCE", "the machine has no volumes to scan"),
            false => err("EXCLUDED_BY_TAG", format!("every volume's key is tagged {EXCLUSION_TAG}")),
        });
    }
    // Inspector: fewer than 8 volumes. Checked before anything is snapshotted.
    if volumes.len() > limits.max_volumes {
        return Err(err(
            "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED",
            format!("{} volumes; agentless scanning reads at most {}", volumes.len(), limits.max_volumes),
        ));
    }
    let scan_id = new_scan_id();
    tracing::info!("machine {}: agentless scan {scan_id} of {} volumes", m.id, volumes.len());
    let snapshot = provider.create_snapshot(&pm, &volumes, &scan_id).map_err(|e| err("INTERNAL_ERROR", format!("cannot snapshot the volumes: {e:#}")))?;
    let guard = SnapshotGuard { provider, snapshot: Some(snapshot), machine_id: &m.id, scan_id };
    let snapshot = guard.snapshot.as_ref().expect("set just above");
    let timer = Deadline { at: deadline, passed: Arc::new(AtomicBool::new(false)) };
    let read = read_snapshot(provider, snapshot, &volumes, m, &limits, &timer);
    drop(guard);
    // Reads past the deadline fail, whatever error they caused along the way: report the cause.
    if timer.passed.load(Ordering::Relaxed) {
        return Err(err(
            "AGENTLESS_INSTANCE_COLLECTION_TIME_LIMIT_EXCEEDED",
            format!("reading the volumes took longer than {} minutes", COLLECTION_TIME_LIMIT.as_secs() / 60),
        ));
    }
    let mut inv = read?;
    for v in &excluded {
        inv.warnings.push(kensa_inventory::Warning {
            cataloger: "disk".into(),
            path: v.path.clone(),
            message: format!("not scanned: its key {} is tagged {EXCLUSION_TAG}", v.key.as_deref().unwrap_or("?")),
            partial: false,
        });
    }
    let json = serde_json::to_vec(&inv).map_err(|e| err("INTERNAL_ERROR", e.to_string()))?;
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&json))
    };
    {
        let mut conn = state.db.lock().expect("store lock poisoned");
        store::put_inventory(&mut conn, &m.id, &inv, &sha, "AGENTLESS").map_err(|e| err("INTERNAL_ERROR", format!("cannot store the inventory: {e:#}")))?;
    }
    state.rematch_machine(&m.id).map_err(|e| err("INTERNAL_ERROR", format!("cannot match the inventory: {e:#}")))
}

/// The time limit of one scan's reads, shared by the devices of all its volumes.
#[derive(Clone)]
struct Deadline {
    at: Instant,
    passed: Arc<AtomicBool>,
}

/// A volume's blocks that stop reading at the deadline. It sits below the block cache, so only
/// reads that reach the snapshot check the clock.
struct DeadlineDev {
    inner: Arc<dyn kensa_disk::block::BlockDev>,
    deadline: Deadline,
}

impl kensa_disk::block::BlockDev for DeadlineDev {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if self.deadline.passed.load(Ordering::Relaxed) || Instant::now() >= self.deadline.at {
            self.deadline.passed.store(true, Ordering::Relaxed);
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "agentless collection time limit exceeded"));
        }
        self.inner.read_at(off, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A random id naming one agentless scan (and the snapshots taken for it).
fn new_scan_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random number generator failed");
    format!("scan-{}", hex::encode(b))
}

/// Opens one snapshot volume: partitions, LVM and filesystems read from its blocks, the target's
/// `format` being the container the provider decoded (qcow2, VMDK, ...), not the raw guest disk
/// `open_block_device` sees.
pub fn open_volume(blocks: VolumeBlocks, limits: &kensa_disk::Limits) -> Result<kensa_disk::DiskTarget, kensa_disk::DiskError> {
    kensa_disk::open_block_devices(vec![kensa_disk::DiskInput { dev: blocks.device, format: blocks.format, counters: blocks.counters, name: blocks.name }], limits)
}

/// Reads a snapshot's volumes (all paths) into an inventory.
fn read_snapshot(
    provider: &dyn MachineProvider,
    snapshot: &Snapshot,
    volumes: &[Volume],
    m: &MachineRow,
    limits: &kensa_disk::Limits,
    deadline: &Deadline,
) -> Result<kensa_inventory::Inventory, AgentlessError> {
    // Block access to every volume first (a cloud provider's block device fetches nothing until
    // read), so the combined size is known before any filesystem is read.
    let mut blocks = Vec::with_capacity(volumes.len());
    for (index, v) in volumes.iter().enumerate() {
        let mut b = provider.read_blocks(snapshot, index).map_err(|e| err("INTERNAL_ERROR", format!("cannot read volume {}: {e:#}", v.path)))?;
        b.device = Arc::new(DeadlineDev { inner: b.device, deadline: deadline.clone() });
        blocks.push(b);
    }
    // All volumes form one machine: the root is found on whichever holds it, and its /etc/fstab
    // mounts the others (a /var or /srv disk) by UUID, LABEL or device name. The combined size is
    // checked there before any filesystem is read.
    let paths: Vec<PathBuf> = blocks.iter().map(|b| b.name.clone()).collect();
    let disks = blocks.into_iter().map(|b| kensa_disk::DiskInput { dev: b.device, format: b.format, counters: b.counters, name: b.name }).collect();
    let target = match kensa_disk::open_block_devices(disks, limits) {
        Ok(t) => t,
        Err(kensa_disk::DiskError::Ineligible { reason, .. }) => return Err(err("AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED", reason)),
        Err(e @ kensa_disk::DiskError::NoRoot { .. }) => {
            return Err(err("UNSUPPORTED_OS", format!("no supported root filesystem (ext3, ext4, xfs) found: {e}")))
        }
        Err(e) => return Err(err("INTERNAL_ERROR", e.to_string())),
    };
    let root_disk = target.volumes.iter().find(|v| v.mount_point.as_deref() == Some(std::path::Path::new("/"))).map_or(0, |v| v.disk);
    tracing::info!("machine {}: root filesystem on {} ({} image)", m.id, paths[root_disk].display(), target.format);
    // A note about one disk is filed under that volume's path; one about the machine, under the
    // root's.
    let notes: Vec<(PathBuf, String)> = target.notes.iter().map(|n| (paths[n.disk.unwrap_or(root_disk)].clone(), n.message.clone())).collect();
    let opts = kensa_inventory::ScanOptions {
        target_name: Some(m.id.clone()),
        deep_inspection: kensa_inventory::lang::DeepInspection::all(),
        ..Default::default()
    };
    let mut inv = kensa_inventory::scan(&target.root, &opts);
    for p in &mut inv.packages {
        p.files.clear();
    }
    for (path, message) in notes {
        inv.warnings.push(kensa_inventory::Warning { cataloger: "disk".into(), path: path.display().to_string(), message, partial: false });
    }
    Ok(inv)
}

/// Runs every agentless scan that is due. Returns how many machines were scanned.
pub fn run_due(state: &AppState) -> usize {
    let (machines, settings) = {
        let conn = state.db.lock().expect("store lock poisoned");
        let machines = store::machines(&conn).unwrap_or_else(|e| {
            tracing::error!("cannot list machines for agentless scans: {e}");
            Vec::new()
        });
        (machines, crate::load_settings(&conn))
    };
    let now = store::now();
    let listings = crate::coverage::listings(state.provider.as_deref(), &machines);
    let mut n = 0;
    for (m, _) in machines.iter().zip(listings).filter(|(m, l)| crate::coverage::agentless_due(m, *l, &settings, now)) {
        match scan_machine(state, m) {
            Ok(f) => tracing::info!("machine {}: agentless scan done ({f} active findings)", m.id),
            Err(e) => tracing::warn!("machine {}: agentless scan: {} ({})", m.id, e.reason, e.message),
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::provider::{FileProvider, ManagedStatus};

    /// The machines-file provider, counting the snapshots it creates and releases.
    struct Counted {
        inner: FileProvider,
        created: AtomicUsize,
        deleted: AtomicUsize,
        /// Fault injection: reading blocks panics, as a reader bug would.
        panic_on_read: std::sync::atomic::AtomicBool,
    }

    impl MachineProvider for Counted {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn list(&self) -> anyhow::Result<Vec<ProvidedMachine>> {
            self.inner.list()
        }
        fn managed_status(&self, id: &str) -> anyhow::Result<Option<ManagedStatus>> {
            self.inner.managed_status(id)
        }
        fn create_snapshot(&self, m: &ProvidedMachine, volumes: &[Volume], scan_id: &str) -> anyhow::Result<Snapshot> {
            self.created.fetch_add(1, Ordering::SeqCst);
            self.inner.create_snapshot(m, volumes, scan_id)
        }
        fn read_blocks(&self, snapshot: &Snapshot, index: usize) -> anyhow::Result<VolumeBlocks> {
            assert!(!self.panic_on_read.load(Ordering::SeqCst), "injected reader panic");
            self.inner.read_blocks(snapshot, index)
        }
        fn delete_snapshot(&self, snapshot: Snapshot) -> anyhow::Result<()> {
            self.deleted.fetch_add(1, Ordering::SeqCst);
            self.inner.delete_snapshot(snapshot)
        }
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The filesystem UUID the fixture root's /etc/fstab mounts on /srv.
    const DATA_UUID: &str = "5e1f0d2c-8a3b-4c6d-9e7f-0a1b2c3d4e5f";

    /// A Debian root with one dpkg package, as an ext4 image (`mkfs.ext4 -d`) converted to qcow2.
    fn debian_qcow2(dir: &Path) -> PathBuf {
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::create_dir_all(tree.join("var/lib/dpkg")).unwrap();
        std::fs::write(tree.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n").unwrap();
        std::fs::write(tree.join("etc/fstab"), format!("UUID={DATA_UUID} /srv ext4 defaults 0 2\n")).unwrap();
        std::fs::create_dir_all(tree.join("srv")).unwrap();
        std::fs::write(
            tree.join("var/lib/dpkg/status"),
            "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n\n",
        )
        .unwrap();
        let raw = dir.join("root.img");
        std::fs::File::create(&raw).unwrap().set_len(32 << 20).unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&tree).arg(&raw));
        let qcow2 = dir.join("root.qcow2");
        run(Command::new("qemu-img").args(["convert", "-q", "-O", "qcow2"]).arg(&raw).arg(&qcow2));
        qcow2
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        state: Arc<AppState>,
        provider: Arc<Counted>,
        qcow2: PathBuf,
        machines_file: PathBuf,
    }

    fn fixture() -> Option<Fixture> {
        fixture_with(kensa_disk::Limits::default())
    }

    fn fixture_with(agentless_limits: kensa_disk::Limits) -> Option<Fixture> {
        if !kensa_testdata::require_tool("mkfs.ext4") || !kensa_testdata::require_tool("qemu-img") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let qcow2 = debian_qcow2(dir.path());
        let machines_file = dir.path().join("machines.toml");
        let cfg = crate::ServerConfig {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            vuln_db: Some(dir.path().join("no-vuln.db")),
            admin_token: Some("admin-token-for-tests".into()),
            machines_file: Some(machines_file.clone()),
            tls: None,
            tick: std::time::Duration::from_secs(1),
            agentless_limits,
        };
        let (mut state, _) = crate::prepare(&cfg).unwrap();
        let provider = Arc::new(Counted {
            inner: FileProvider::new(&machines_file),
            created: AtomicUsize::new(0),
            deleted: AtomicUsize::new(0),
            panic_on_read: Default::default(),
        });
        Arc::get_mut(&mut state).unwrap().provider = Some(provider.clone());
        Some(Fixture { _dir: dir, state, provider, qcow2, machines_file })
    }

    impl Fixture {
        /// Writes the machines file, syncs it into the store and scans machine `id`.
        fn scan(&self, machines: &str, id: &str) -> (MachineRow, Result<usize, AgentlessError>) {
            std::fs::write(&self.machines_file, machines).unwrap();
            let list = self.provider.list().unwrap();
            let m = {
                let mut conn = self.state.db.lock().unwrap();
                store::sync_provider_machines(&mut conn, &list).unwrap();
                store::machine(&conn, id).unwrap().unwrap()
            };
            let r = scan_machine(&self.state, &m);
            let after = store::machine(&self.state.db.lock().unwrap(), id).unwrap().unwrap();
            (after, r)
        }

        fn snapshots(&self) -> (usize, usize) {
            (self.provider.created.load(Ordering::SeqCst), self.provider.deleted.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn qcow2_volume_reports_its_container_format() {
        let Some(f) = fixture() else { return };
        let blocks = f.provider.read_blocks(&Snapshot { scan_id: "s".into(), volume_paths: vec![f.qcow2.clone()] }, 0).unwrap();
        let target = open_volume(blocks, &kensa_disk::Limits::default()).unwrap();
        assert_eq!(target.format, kensa_disk::ImageFormat::Qcow2);
        assert!(target.volumes.iter().any(|v| v.fs_type.as_deref() == Some("ext4") && v.scanned), "{:?}", target.volumes);
    }

    #[test]
    fn scans_a_qcow2_volume_and_skips_key_excluded_ones() {
        let Some(f) = fixture() else { return };
        // The excluded volume does not exist: reading it would fail the scan.
        let machines = format!(
            "[[machine]]\nid = \"vm\"\nvolumes = [{:?}, {{ path = \"gone.img\", key = \"k-excluded\", key_tags = {{ {EXCLUSION_TAG} = \"\" }} }}]\n",
            f.qcow2.display().to_string()
        );
        let (m, r) = f.scan(&machines, "vm");
        assert_eq!(r, Ok(0), "no vulnerability database: no findings");
        assert_eq!((m.inventory_scan_type.as_deref(), m.os.as_ref().map(|o| o.id.as_str())), (Some("AGENTLESS"), Some("debian")));
        assert_eq!(m.agentless_error, None);
        assert_eq!(f.snapshots(), (1, 1));
        let inv = store::inventory(&f.state.db.lock().unwrap(), "vm").unwrap().unwrap();
        assert!(inv.packages.iter().any(|p| p.name == "zlib1g"), "{:?}", inv.packages);
        let skipped = inv.warnings.iter().find(|w| w.path.ends_with("gone.img")).expect("a warning for the excluded volume");
        assert!(skipped.message.contains("k-excluded"), "{}", skipped.message);

        // A data volume listed first (one ext4 filesystem, no os-release) does not pass for the
        // root; the root's /etc/fstab mounts it on /srv, where deep inspection finds its package.
        let data_tree = f.machines_file.with_file_name("data-tree");
        let dist_info = data_tree.join("app/lib/python3.11/site-packages/requests-2.31.0.dist-info");
        std::fs::create_dir_all(&dist_info).unwrap();
        std::fs::write(dist_info.join("METADATA"), "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n").unwrap();
        let data = f.machines_file.with_file_name("data.img");
        std::fs::File::create(&data).unwrap().set_len(16 << 20).unwrap();
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-U", DATA_UUID, "-d"]).arg(&data_tree).arg(&data));
        let (m, r) = f.scan(&format!("[[machine]]\nid = \"vm3\"\nvolumes = [\"data.img\", {:?}]\n", f.qcow2.display().to_string()), "vm3");
        assert_eq!(r, Ok(0));
        assert_eq!(m.os.map(|o| o.id), Some("debian".to_string()));
        let inv = store::inventory(&f.state.db.lock().unwrap(), "vm3").unwrap().unwrap();
        assert!(inv.packages.iter().any(|p| p.name == "zlib1g"), "{:?}", inv.packages);
        let requests = inv.packages.iter().find(|p| p.name == "requests").expect("the /srv disk's Python package");
        assert_eq!(requests.version, "2.31.0");
        assert!(inv.warnings.iter().all(|w| !w.message.contains("no such volume")), "{:?}", inv.warnings);

        // Without the data disk the fstab entry is reported, filed under the root volume.
        let (_, r) = f.scan(&format!("[[machine]]\nid = \"vm4\"\nvolumes = [{:?}]\n", f.qcow2.display().to_string()), "vm4");
        assert_eq!(r, Ok(0));
        let inv = store::inventory(&f.state.db.lock().unwrap(), "vm4").unwrap().unwrap();
        let note = inv.warnings.iter().find(|w| w.message.contains(DATA_UUID)).expect("a warning for the missing /srv volume");
        assert!(note.path.ends_with("root.qcow2") && note.message.contains("no such volume"), "{note:?}");

        // Every volume excluded: nothing is snapshotted.
        let machines = format!("[[machine]]\nid = \"vm2\"\nvolumes = [{{ path = \"gone.img\", key = \"k\", key_tags = {{ {EXCLUSION_TAG} = \"\" }} }}]\n");
        let (m, r) = f.scan(&machines, "vm2");
        assert_eq!(r.unwrap_err().reason, "EXCLUDED_BY_TAG");
        assert_eq!(m.agentless_error.unwrap().reason, "EXCLUDED_BY_TAG");
        assert_eq!(f.snapshots(), (3, 3), "vm, vm3 and vm4 snapshotted and released; vm2 not snapshotted");
    }

    #[test]
    fn limits_and_errors_give_their_reasons_and_release_the_snapshot() {
        let Some(f) = fixture() else { return };
        let q = format!("{:?}", f.qcow2.display().to_string());

        // 8 volumes: refused before anything is snapshotted.
        let eight = [q.as_str(); 8].join(", ");
        let (m, r) = f.scan(&format!("[[machine]]\nid = \"many\"\nvolumes = [{eight}]\n"), "many");
        let e = r.unwrap_err();
        assert_eq!((e.reason.as_str(), e.message.as_str()), ("AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED", "8 volumes; agentless scanning reads at most 7"));
        assert_eq!(m.agentless_error, Some(e));
        assert_eq!(f.snapshots(), (0, 0));

        // Over 1,200 GB in all (a sparse raw file): refused before any filesystem is read.
        let big = f.machines_file.with_file_name("big.img");
        std::fs::File::create(&big).unwrap().set_len(1_200_000_000_000 - (32 << 20) + 1).unwrap();
        let (_, r) = f.scan(&format!("[[machine]]\nid = \"big\"\nvolumes = [{q}, \"big.img\"]\n"), "big");
        let e = r.unwrap_err();
        assert_eq!(e.reason, "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED");
        assert!(e.message.contains("1200000000001 bytes"), "{}", e.message);
        assert_eq!(f.snapshots(), (1, 1));

        // A volume that cannot be read: INTERNAL_ERROR naming it; the snapshot is still released.
        let (_, r) = f.scan(&format!("[[machine]]\nid = \"broken\"\nvolumes = [{q}, \"missing.img\"]\n"), "broken");
        let e = r.unwrap_err();
        assert_eq!(e.reason, "INTERNAL_ERROR");
        assert!(e.message.starts_with("cannot read volume ") && e.message.contains("missing.img"), "{}", e.message);
        assert_eq!(f.snapshots(), (2, 2));

        // No root filesystem anywhere: UNSUPPORTED_OS saying what was found.
        let blank = f.machines_file.with_file_name("blank.img");
        std::fs::File::create(&blank).unwrap().set_len(8 << 20).unwrap();
        let (_, r) = f.scan("[[machine]]\nid = \"blank\"\nvolumes = [\"blank.img\"]\n", "blank");
        let e = r.unwrap_err();
        assert_eq!(e.reason, "UNSUPPORTED_OS");
        assert!(e.message.contains("blank.img"), "{}", e.message);
        assert_eq!(f.snapshots(), (3, 3));

        // A panic while reading is recorded as INTERNAL_ERROR and the snapshot is released.
        f.provider.panic_on_read.store(true, Ordering::SeqCst);
        let (m, r) = f.scan(&format!("[[machine]]\nid = \"vm\"\nvolumes = [{q}]\n"), "vm");
        let e = r.unwrap_err();
        assert_eq!(e.reason, "INTERNAL_ERROR");
        assert!(e.message.contains("injected reader panic"), "{}", e.message);
        assert_eq!(m.agentless_error, Some(e));
        assert_eq!(f.snapshots(), (4, 4));
        f.provider.panic_on_read.store(false, Ordering::SeqCst);

        // Past the collection time limit, reads stop and the scan says why.
        let m = store::machine(&f.state.db.lock().unwrap(), "vm").unwrap().unwrap();
        let e = scan_until(&f.state, f.provider.as_ref(), &m, Instant::now()).unwrap_err();
        assert_eq!(e.reason, "AGENTLESS_INSTANCE_COLLECTION_TIME_LIMIT_EXCEEDED");
        assert_eq!(f.snapshots(), (5, 5));
        assert_eq!(scan_until(&f.state, f.provider.as_ref(), &m, Instant::now() + Duration::from_secs(600)), Ok(0));
    }

    #[test]
    fn configured_limits_replace_inspectors() {
        let Some(f) = fixture_with(kensa_disk::Limits { max_volumes: 1, max_total_bytes: 16 << 20, ..kensa_disk::Limits::default() }) else { return };
        let q = format!("{:?}", f.qcow2.display().to_string());
        // Two volumes over a limit of one: refused before anything is snapshotted.
        let (m, r) = f.scan(&format!("[[machine]]\nid = \"two\"\nvolumes = [{q}, {q}]\n"), "two");
        let e = r.unwrap_err();
        assert_eq!((e.reason.as_str(), e.message.as_str()), ("AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED", "2 volumes; agentless scanning reads at most 1"));
        assert_eq!(m.agentless_error, Some(e));
        assert_eq!(f.snapshots(), (0, 0));
        // One 32 MiB volume over 16 MiB: refused, saying where the size comes from.
        let (_, r) = f.scan(&format!("[[machine]]\nid = \"one\"\nvolumes = [{q}]\n"), "one");
        let e = r.unwrap_err();
        assert_eq!(e.reason, "AGENTLESS_INSTANCE_STORAGE_LIMIT_EXCEEDED");
        assert!(e.message.ends_with("the disk holds 33554432 bytes (from the size field of its qcow2 header), more than the 16777216-byte limit"), "{}", e.message);
        assert_eq!(f.snapshots(), (1, 1));
    }
}
