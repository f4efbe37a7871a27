//! Machine providers: where machines that have no agent come from, and how their volumes are read.
//!
//! The interface is shaped for a cloud provider later (list machines with tags, managed status,
//! create a snapshot, read its blocks, delete it). Provider 1 is a TOML file (`--machines FILE`)
//! whose volumes are disk images or snapshot files on local disk.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::Volume;

/// A machine as a provider describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvidedMachine {
    pub id: String,
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub volumes: Vec<Volume>,
}

/// Whether a machine is set up to run an agent, as Inspector asks Systems Manager whether an
/// instance is SSM-managed. It decides the reason a machine nobody scans gets: a managed machine
/// whose agent has not reported yet has `NO_INVENTORY`, an unmanaged one `UNMANAGED_EC2_INSTANCE`.
/// An agent that reports makes a machine managed whatever the provider says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManagedStatus {
    /// An agent is installed (or being rolled out) and expected to report.
    Managed,
    /// No agent: only an agentless scan can cover the machine.
    Unmanaged,
}

/// A snapshot taken for one agentless scan; released after the scan.
#[derive(Debug)]
pub struct Snapshot {
    /// The scan it was taken for. A cloud provider tags its snapshots with it (as Inspector tags
    /// `InspectorScan=<scanId>`), so that snapshots a crash left behind can be found and deleted.
    pub scan_id: String,
    /// The snapshot's volumes, in the order of the volumes passed to `create_snapshot`: image paths
    /// for the machines file; a cloud provider would put its snapshot ids here. Only the provider
    /// interprets them.
    pub volume_paths: Vec<PathBuf>,
}

/// Block-level read access to one snapshot volume: the guest disk as a `kensa_disk` block device
/// (partition table, LVM and filesystems are read from it by `kensa_disk::open_block_device`;
/// nothing is mounted), plus the I/O counters the device updates.
pub struct VolumeBlocks {
    /// Names the volume in messages.
    pub name: PathBuf,
    pub device: Arc<dyn kensa_disk::block::BlockDev>,
    pub counters: Arc<kensa_disk::block::Counters>,
    /// The container the guest disk was decoded from (qcow2, VMDK, VHD, VHDX; `Raw` when the blocks are
    /// the disk itself, as a cloud snapshot block API serves them). `device` already presents the
    /// guest disk: this is for reporting.
    pub format: kensa_disk::ImageFormat,
}

/// What the server needs from a source of machines.
pub trait MachineProvider: Send + Sync {
    /// A short name for logs (`machines file /etc/kensa/machines.toml`).
    fn describe(&self) -> String;
    /// The machines as the provider knows them now.
    fn list(&self) -> anyhow::Result<Vec<ProvidedMachine>>;
    /// Whether `machine_id` is set up for an agent (a cloud provider asks its fleet manager, e.g.
    /// SSM DescribeInstanceInformation). `None` when the provider does not list the machine (it
    /// was removed, or it is known only from its agent). Called for every machine on each coverage
    /// request: implementations answer from a cache.
    fn managed_status(&self, machine_id: &str) -> anyhow::Result<Option<ManagedStatus>>;
    /// Takes a point-in-time snapshot of `volumes`, some or all of the machine's (a no-op for
    /// image files), for the agentless scan `scan_id`. Volumes excluded from scanning are never
    /// passed.
    fn create_snapshot(&self, machine: &ProvidedMachine, volumes: &[Volume], scan_id: &str) -> anyhow::Result<Snapshot>;
    /// Reads volume `index` of `snapshot` block by block (a cloud provider serves this from its
    /// snapshot block API, e.g. EBS direct APIs' ListSnapshotBlocks / GetSnapshotBlock, behind a
    /// `BlockDev` that fetches and caches blocks on demand).
    fn read_blocks(&self, snapshot: &Snapshot, index: usize) -> anyhow::Result<VolumeBlocks>;
    /// Releases a snapshot made by `create_snapshot`.
    fn delete_snapshot(&self, snapshot: Snapshot) -> anyhow::Result<()>;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MachinesFile {
    #[serde(default)]
    machine: Vec<MachineEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineEntry {
    id: String,
    name: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    volumes: Vec<VolumeEntry>,
    /// Absent: unmanaged (no agent is known to be installed).
    managed: Option<bool>,
}

/// A volume: a path string, or a table with the key that encrypts it and the key's tags.
struct VolumeEntry {
    path: String,
    key: Option<String>,
    key_tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolumeTable {
    path: String,
    key: Option<String>,
    #[serde(default)]
    key_tags: BTreeMap<String, String>,
}

// Written out rather than `#[serde(untagged)]`, whose error ("did not match any variant") names
// neither the accepted shapes nor the misspelt field.
impl<'de> Deserialize<'de> for VolumeEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(path) => Ok(VolumeEntry { path, key: None, key_tags: BTreeMap::new() }),
            table @ toml::Value::Table(_) => {
                let t = VolumeTable::deserialize(table).map_err(|e| D::Error::custom(format!("volume table: {}", e.message())))?;
                Ok(VolumeEntry { path: t.path, key: t.key, key_tags: t.key_tags })
            }
            other => Err(D::Error::custom(format!("a volume is a path string or a table {{ path, key, key_tags }}, not a {}", other.type_str()))),
        }
    }
}

/// When the machines file was last changed, as far as `stat` tells: a new stamp means re-read.
/// The inode catches editors that save by renaming a new file over the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path)?;
        Ok(FileStamp { modified: md.modified().ok(), len: md.len(), inode: md.ino(), ctime: (md.ctime(), md.ctime_nsec()) })
    }
}

/// The last good parse of the machines file.
struct Loaded {
    stamp: FileStamp,
    machines: Arc<Vec<ProvidedMachine>>,
    managed: Arc<HashMap<String, ManagedStatus>>,
}

/// Provider 1: a TOML file of `[[machine]]` tables, re-read when it changes (size, modification
/// time or inode), parsed once per change.
pub struct FileProvider {
    path: PathBuf,
    loaded: Mutex<Option<Loaded>>,
}

type Parsed = (Arc<Vec<ProvidedMachine>>, Arc<HashMap<String, ManagedStatus>>);

impl FileProvider {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileProvider { path: path.into(), loaded: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the file's text; relative volume paths are relative to the file's directory.
    /// Errors start with `origin` and name the machine.
    pub fn parse(text: &str, base: &Path, origin: &str) -> anyhow::Result<Vec<(ProvidedMachine, ManagedStatus)>> {
        let file: MachinesFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, m) in file.machine.into_iter().enumerate() {
            if m.id.trim().is_empty() || m.id.len() > 256 || m.id.contains('/') {
                anyhow::bail!("{origin}: machine #{} has an invalid id {:?} (1-256 characters, no '/')", i + 1, m.id);
            }
            if !seen.insert(m.id.clone()) {
                anyhow::bail!("{origin}: machine id {:?} appears twice", m.id);
            }
            // The limits the API puts on tags.
            if m.tags.len() > 50 {
                anyhow::bail!("{origin}: machine {:?} has {} tags; at most 50", m.id, m.tags.len());
            }
            if let Some((k, _)) = m.tags.iter().find(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 256) {
                anyhow::bail!("{origin}: machine {:?}: invalid tag {k:?} (keys 1-128 characters, values at most 256)", m.id);
            }
            let mut volumes = Vec::new();
            for (j, v) in m.volumes.into_iter().enumerate() {
                let which = || format!("{origin}: machine {:?}, volume #{}", m.id, j + 1);
                if v.path.trim().is_empty() {
                    anyhow::bail!("{}: empty path", which());
                }
                if v.key.is_none() && !v.key_tags.is_empty() {
                    anyhow::bail!("{}: key_tags are the tags of the volume's key; give the key too (key = \"...\")", which());
                }
                let p = Path::new(&v.path);
                let abs = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
                volumes.push(Volume { path: abs.to_string_lossy().into_owned(), key: v.key, key_tags: v.key_tags });
            }
            let managed = if m.managed == Some(true) { ManagedStatus::Managed } else { ManagedStatus::Unmanaged };
            out.push((ProvidedMachine { id: m.id, name: m.name, tags: m.tags, volumes }, managed));
        }
        Ok(out)
    }

    /// The file's machines, re-read only when its stamp changed. A file that cannot be read or
    /// parsed is an error; the last good version stays cached.
    fn load(&self) -> anyhow::Result<Parsed> {
        let origin = self.path.display().to_string();
        let stamp = FileStamp::of(&self.path).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if let Some(l) = &*self.loaded.lock().expect("machines file cache lock poisoned") {
            if l.stamp == stamp {
                return Ok((l.machines.clone(), l.managed.clone()));
            }
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let base = self.path.parent().unwrap_or(Path::new("."));
        let parsed = Self::parse(&text, base, &origin)?;
        let managed: HashMap<_, _> = parsed.iter().map(|(m, s)| (m.id.clone(), *s)).collect();
        let machines: Vec<_> = parsed.into_iter().map(|(m, _)| m).collect();
        let (machines, managed) = (Arc::new(machines), Arc::new(managed));
        *self.loaded.lock().expect("machines file cache lock poisoned") = Some(Loaded { stamp, machines: machines.clone(), managed: managed.clone() });
        Ok((machines, managed))
    }

    fn last_good(&self) -> Option<Parsed> {
        self.loaded.lock().expect("machines file cache lock poisoned").as_ref().map(|l| (l.machines.clone(), l.managed.clone()))
    }
}

impl MachineProvider for FileProvider {
    fn describe(&self) -> String {
        format!("machines file {}", self.path.display())
    }

    fn list(&self) -> anyhow::Result<Vec<ProvidedMachine>> {
        Ok(self.load()?.0.as_ref().clone())
    }

    fn managed_status(&self, machine_id: &str) -> anyhow::Result<Option<ManagedStatus>> {
        // A broken file keeps answering from its last good version, as `list` callers keep the
        // last good machine list.
        let (_, managed) = match self.load() {
            Ok(p) => p,
            Err(e) => self.last_good().ok_or(e)?,
        };
        Ok(managed.get(machine_id).copied())
    }

    fn create_snapshot(&self, _machine: &ProvidedMachine, volumes: &[Volume], scan_id: &str) -> anyhow::Result<Snapshot> {
        // Image files are already point-in-time copies: the snapshot is the list of files.
        Ok(Snapshot { scan_id: scan_id.to_string(), volume_paths: volumes.iter().map(|v| PathBuf::from(&v.path)).collect() })
    }

    fn read_blocks(&self, snapshot: &Snapshot, index: usize) -> anyhow::Result<VolumeBlocks> {
        let path = snapshot.volume_paths.get(index).ok_or_else(|| anyhow::anyhow!("snapshot has no volume {index}"))?;
        let counters = Arc::new(kensa_disk::block::Counters::default());
        // Raw, qcow2, VMDK, VHD or VHDX, detected from content; the device presents the guest disk.
        let (device, format) = kensa_disk::image::open(path, counters.clone()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(VolumeBlocks { name: path.clone(), device, counters, format })
    }

    fn delete_snapshot(&self, _snapshot: Snapshot) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machines(parsed: Vec<(ProvidedMachine, ManagedStatus)>) -> Vec<ProvidedMachine> {
        parsed.into_iter().map(|(m, _)| m).collect()
    }

    #[test]
    fn parses_machines_file() {
        let text = r#"
[[machine]]
id = "web-1"
name = "web one"
tags = { env = "prod" }
managed = true
volumes = ["disks/web1.qcow2", { path = "/abs/data.img", key = "k1", key_tags = { InspectorEc2Exclusion = "" } }]

[[machine]]
id = "db-1"
managed = false

[[machine]]
id = "cache-1"
"#;
        let parsed = FileProvider::parse(text, Path::new("/etc/kensa"), "machines.toml").unwrap();
        let status: Vec<_> = parsed.iter().map(|(m, s)| (m.id.as_str(), *s)).collect();
        assert_eq!(status, [("web-1", ManagedStatus::Managed), ("db-1", ManagedStatus::Unmanaged), ("cache-1", ManagedStatus::Unmanaged)]);
        let m = machines(parsed);
        assert_eq!(m[0].volumes[0].path, "/etc/kensa/disks/web1.qcow2");
        assert_eq!(m[0].volumes[1].key.as_deref(), Some("k1"));
        assert!(m[0].volumes[1].key_tags.contains_key("InspectorEc2Exclusion"));
        assert_eq!(m[1].volumes.len(), 0);
    }

    #[test]
    fn rejects_bad_files_with_location() {
        let cases = [
            ("[[machine]]\nid = \"a\"\n[[machine]]\nid = \"a\"\n", "appears twice"),
            ("[[machine]]\nname = 3\n", "m.toml:"),
            ("[[machine]]\nid = \"a\"\nmanaged = \"yes\"\n", "managed"),
            ("[[machine]]\nid = \"a\"\nvolumes = [{ path = \"x.img\", kye_tags = {} }]\n", "unknown field `kye_tags`"),
            ("[[machine]]\nid = \"a\"\nvolumes = [3]\n", "a volume is a path string or a table"),
            ("[[machine]]\nid = \"a\"\nvolumes = [\"\"]\n", "machine \"a\", volume #1: empty path"),
            ("[[machine]]\nid = \"a\"\nvolumes = [{ path = \"x.img\", key_tags = { t = \"\" } }]\n", "give the key too"),
            ("[[machine]]\nid = \"a/b\"\n", "invalid id"),
            ("[[machine]]\nid = \"a\"\ntags = { \"\" = \"x\" }\n", "invalid tag \"\""),
        ];
        for (text, want) in cases {
            let e = FileProvider::parse(text, Path::new("/"), "m.toml").unwrap_err().to_string();
            assert!(e.starts_with("m.toml:") && e.contains(want), "{text:?}: {e}");
        }
    }

    /// The file is re-read when it changes; a broken edit keeps the last good answers for managed
    /// status while `list` reports the error.
    #[test]
    fn rereads_the_file_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machines.toml");
        std::fs::write(&path, "[[machine]]\nid = \"a\"\nmanaged = true\n").unwrap();
        let provider = FileProvider::new(&path);
        assert_eq!(provider.list().unwrap().len(), 1);
        assert_eq!(provider.managed_status("a").unwrap(), Some(ManagedStatus::Managed));
        assert_eq!(provider.managed_status("b").unwrap(), None, "not listed");

        // Saved by renaming a new file over the old one, as many editors do.
        let new = dir.path().join("machines.toml.new");
        std::fs::write(&new, "[[machine]]\nid = \"a\"\n[[machine]]\nid = \"b\"\nmanaged = true\n").unwrap();
        std::fs::rename(&new, &path).unwrap();
        assert_eq!(provider.list().unwrap().iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(provider.managed_status("a").unwrap(), Some(ManagedStatus::Unmanaged));
        assert_eq!(provider.managed_status("b").unwrap(), Some(ManagedStatus::Managed));

        std::fs::write(&path, "[[machine]]\nid = \n").unwrap();
        let e = provider.list().unwrap_err().to_string();
        assert!(e.contains("machines.toml"), "{e}");
        assert_eq!(provider.managed_status("b").unwrap(), Some(ManagedStatus::Managed), "last good version");

        std::fs::remove_file(&path).unwrap();
        assert!(provider.list().is_err());
        let fresh = FileProvider::new(&path);
        assert!(fresh.managed_status("a").is_err(), "no good version to fall back on");
    }

    #[test]
    fn reads_snapshot_volumes_as_block_devices() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let provider = FileProvider::new(dir.path().join("machines.toml"));
        let snapshot = Snapshot { scan_id: "s".into(), volume_paths: vec![image.clone(), dir.path().join("missing.img")] };
        let blocks = provider.read_blocks(&snapshot, 0).unwrap();
        assert_eq!((blocks.device.size(), blocks.name, blocks.format), (1 << 20, image, kensa_disk::ImageFormat::Raw));
        let missing = provider.read_blocks(&snapshot, 1).err().unwrap().to_string();
        assert!(missing.contains("missing.img"), "{missing}");
        assert!(provider.read_blocks(&snapshot, 2).is_err());
    }

    /// A qcow2 volume is read as the guest disk it holds and reported as qcow2.
    #[test]
    fn reports_the_container_format_of_a_qcow2_volume() {
        if !kensa_testdata::require_tool("qemu-img") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let qcow2 = dir.path().join("disk.qcow2");
        let out = std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&qcow2).arg("64M").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let provider = FileProvider::new(dir.path().join("machines.toml"));
        let blocks = provider.read_blocks(&Snapshot { scan_id: "s".into(), volume_paths: vec![qcow2] }, 0).unwrap();
        assert_eq!((blocks.format, blocks.device.size()), (kensa_disk::ImageFormat::Qcow2, 64 << 20));
    }
}
