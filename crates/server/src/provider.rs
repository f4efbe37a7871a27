//! Machine providers: where machines that have no agent come from, and how their volumes are read.
//!
//! The interface is shaped for a cloud provider later (list machines with tags and managed status,
//! create a snapshot, read its blocks, delete it). Provider 1 is a TOML file (`--machines FILE`)
//! whose volumes are disk images or snapshot files on local disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::store::Volume;

/// A machine as a provider describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvidedMachine {
    pub id: String,
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub volumes: Vec<Volume>,
}

/// A snapshot taken for one agentless scan; released after the scan.
pub struct Snapshot {
    /// The snapshot's volumes, in the machine's volume order: image paths for the machines file;
    /// a cloud provider would put its snapshot ids here. Only the provider interprets them.
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
}

/// What the server needs from a source of machines.
pub trait MachineProvider: Send + Sync {
    /// A short name for logs (`machines file /etc/kensa/machines.toml`).
    fn describe(&self) -> String;
    /// The machines as the provider knows them now.
    fn list(&self) -> anyhow::Result<Vec<ProvidedMachine>>;
    /// Takes a point-in-time snapshot of the machine's volumes (a no-op for image files).
    fn create_snapshot(&self, machine: &ProvidedMachine) -> anyhow::Result<Snapshot>;
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
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VolumeEntry {
    Path(String),
    Table {
        path: String,
        key: Option<String>,
        #[serde(default)]
        key_tags: BTreeMap<String, String>,
    },
}

/// Provider 1: a TOML file of `[[machine]]` tables, re-read when it changes.
pub struct FileProvider {
    path: PathBuf,
}

impl FileProvider {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileProvider { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the file's text; relative volume paths are relative to the file's directory.
    pub fn parse(text: &str, base: &Path, origin: &str) -> anyhow::Result<Vec<ProvidedMachine>> {
        let file: MachinesFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, m) in file.machine.into_iter().enumerate() {
            if m.id.trim().is_empty() || m.id.len() > 256 || m.id.contains('/') {
                anyhow::bail!("{origin}: machine #{} has an invalid id {:?} (1-256 characters, no '/')", i + 1, m.id);
            }
            if !seen.insert(m.id.clone()) {
                anyhow::bail!("{origin}: machine id {:?} appears twice", m.id);
            }
            let volumes = m
                .volumes
                .into_iter()
                .map(|v| {
                    let (path, key, key_tags) = match v {
                        VolumeEntry::Path(p) => (p, None, BTreeMap::new()),
                        VolumeEntry::Table { path, key, key_tags } => (path, key, key_tags),
                    };
                    let p = Path::new(&path);
                    let abs = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
                    Volume { path: abs.to_string_lossy().into_owned(), key, key_tags }
                })
                .collect();
            out.push(ProvidedMachine { id: m.id, name: m.name, tags: m.tags, volumes });
        }
        Ok(out)
    }
}

impl MachineProvider for FileProvider {
    fn describe(&self) -> String {
        format!("machines file {}", self.path.display())
    }

    fn list(&self) -> anyhow::Result<Vec<ProvidedMachine>> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?;
        let base = self.path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, &self.path.display().to_string())
    }

    fn create_snapshot(&self, machine: &ProvidedMachine) -> anyhow::Result<Snapshot> {
        // Image files are already point-in-time copies: the snapshot is the list of files.
        Ok(Snapshot { volume_paths: machine.volumes.iter().map(|v| PathBuf::from(&v.path)).collect() })
    }

    fn read_blocks(&self, snapshot: &Snapshot, index: usize) -> anyhow::Result<VolumeBlocks> {
        let path = snapshot.volume_paths.get(index).ok_or_else(|| anyhow::anyhow!("snapshot has no volume {index}"))?;
        let counters = Arc::new(kensa_disk::block::Counters::default());
        // Raw, qcow2 or VMDK, detected from content; the device presents the guest disk.
        let (device, _format) = kensa_disk::image::open(path, counters.clone()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(VolumeBlocks { name: path.clone(), device, counters })
    }

    fn delete_snapshot(&self, _snapshot: Snapshot) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_machines_file() {
        let text = r#"
[[machine]]
id = "web-1"
name = "web one"
tags = { env = "prod" }
volumes = ["disks/web1.qcow2", { path = "/abs/data.img", key = "k1", key_tags = { InspectorEc2Exclusion = "" } }]

[[machine]]
id = "db-1"
"#;
        let m = FileProvider::parse(text, Path::new("/etc/kensa"), "machines.toml").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].volumes[0].path, "/etc/kensa/disks/web1.qcow2");
        assert_eq!(m[0].volumes[1].key.as_deref(), Some("k1"));
        assert!(m[0].volumes[1].key_tags.contains_key("InspectorEc2Exclusion"));
        assert_eq!(m[1].volumes.len(), 0);
    }

    #[test]
    fn rejects_bad_files_with_location() {
        let e = FileProvider::parse("[[machine]]\nid = \"a\"\n[[machine]]\nid = \"a\"\n", Path::new("/"), "m.toml").unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
        let e = FileProvider::parse("[[machine]]\nname = 3\n", Path::new("/"), "m.toml").unwrap_err();
        assert!(e.to_string().starts_with("m.toml:"), "{e}");
    }

    #[test]
    fn reads_snapshot_volumes_as_block_devices() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let provider = FileProvider::new(&dir.path().join("machines.toml"));
        let snapshot = Snapshot { volume_paths: vec![image.clone(), dir.path().join("missing.img")] };
        let blocks = provider.read_blocks(&snapshot, 0).unwrap();
        assert_eq!((blocks.device.size(), blocks.name), (1 << 20, image));
        let missing = provider.read_blocks(&snapshot, 1).err().unwrap().to_string();
        assert!(missing.contains("missing.img"), "{missing}");
        assert!(provider.read_blocks(&snapshot, 2).is_err());
    }
}
