//! Agentless reading of disk images and snapshots, read-only and lazily, without mounting or
//! executing anything.
//!
//! Layers, bottom up (each reads the one below through [`block::BlockDev`]):
//! 1. the image file ([`block::FileDev`], counting bytes read) and its format ([`image`]: raw,
//!    qcow2, VMDK, VHD, VHDX), then a bounded LRU block cache ([`block::CachedDev`]);
//! 2. partitions ([`partition`]: GPT, MBR with logical partitions, none) and LVM2 linear logical
//!    volumes ([`lvm`]);
//! 3. filesystems ([`ext4`], [`xfs`]) implementing [`kensa_fs::RawFs`];
//! 4. assembly ([`open_image`], or [`open_images`] / [`open_block_devices`] for a machine with
//!    several disks): the root filesystem (the one with `etc/os-release`) with the volumes its
//!    `/etc/fstab` mounts composed below it ([`mount::MountFs`]), wrapped in a [`kensa_fs::Root`]
//!    so every cataloger reads it unchanged.

pub mod block;
pub mod ext4;
pub mod extent_file;
pub mod image;
mod jbd2;
mod inode_fs;
pub mod lvm;
pub mod mount;
pub mod partition;
pub mod xfs;
mod xfs_log;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kensa_fs::{IoStats, RawFs, Root};

use block::{BlockDev, CachedDev, Counters, SliceDev};
pub use image::ImageFormat;
pub use partition::TableKind;

/// Limits of agentless scanning (Amazon Inspector's defaults) and of memory use.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most volumes (partitions and logical volumes, not counting LVM physical volumes) scanned.
    pub max_volumes: usize,
    /// Largest total disk size scanned, in bytes.
    pub max_total_bytes: u64,
    /// Memory for the block cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_volumes: 7, max_total_bytes: 1200 * 1_000_000_000, cache_bytes: 64 << 20 }
    }
}

/// One volume found on the disk(s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// `disk`, `partition 1`, `LV vg0/root`; on a machine with several disks, prefixed with the
    /// disk's number (`disk 2 partition 1`).
    pub name: String,
    /// Which of the machine's disks holds it (0 for the first; logical volumes: their first
    /// physical volume's disk).
    pub disk: usize,
    pub partition: Option<u32>,
    /// Size in bytes.
    pub size: u64,
    /// `ext4`, `xfs`, `vfat`, `LVM2_member`, ... or `None` when nothing was recognised.
    pub fs_type: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub part_uuid: Option<String>,
    pub part_label: Option<String>,
    /// Where it is mounted in the composed tree (`/` for the root filesystem).
    pub mount_point: Option<PathBuf>,
    /// Whether its files are read (a supported filesystem that opened cleanly).
    pub scanned: bool,
}

/// An opened disk image: the composed root filesystem and what was found on the way.
pub struct DiskTarget {
    pub root: Root,
    /// Image format and partition table of the disk holding the root filesystem.
    pub format: ImageFormat,
    pub table: TableKind,
    pub volumes: Vec<Volume>,
    /// Eligibility and completeness notes, in plain words (unsupported filesystems, ext2, an
    /// unreplayed journal, fstab entries with no volume in the image, ...), each with the disk it
    /// concerns.
    pub notes: Vec<Note>,
    counters: Vec<Arc<Counters>>,
}

impl DiskTarget {
    /// Bytes read, blocks fetched and files opened, summed over the disks.
    pub fn stats(&self) -> IoStats {
        self.counters.iter().map(|c| c.snapshot()).fold(IoStats::default(), |a, b| IoStats {
            bytes_read: a.bytes_read + b.bytes_read,
            blocks_fetched: a.blocks_fetched + b.blocks_fetched,
            files_opened: a.files_opened + b.files_opened,
            allocated_bytes: a.allocated_bytes + b.allocated_bytes,
        })
    }
}

impl std::fmt::Debug for DiskTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTarget").field("root", &self.root).field("format", &self.format).field("volumes", &self.volumes).field("notes", &self.notes).finish()
    }
}

/// Why an image could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not eligible for agentless scanning: {reason}")]
    Ineligible { path: PathBuf, reason: String },
    #[error("{path}: no root filesystem found (no volume has etc/os-release); volumes: {volumes}")]
    NoRoot { path: PathBuf, volumes: String },
}

/// One of [`DiskTarget::notes`]: what it says, and which of the machine's disks it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The disk (0 for the first) the note is about; `None` for the machine as a whole.
    pub disk: Option<usize>,
    pub message: String,
}

impl Note {
    fn on(disk: usize, message: String) -> Self {
        Note { disk: Some(disk), message }
    }
    fn machine(message: String) -> Self {
        Note { disk: None, message }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) fn uuid_string(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Whether a file's content looks like a disk image (an image format, a partition table, or a
/// bare ext2/3/4 or xfs filesystem). Cheap: reads a few sectors.
pub fn is_disk_image(path: &Path) -> bool {
    let counters = Arc::new(Counters::default());
    let Ok(file) = block::FileDev::open(path, counters) else { return false };
    let file: Arc<dyn BlockDev> = Arc::new(file);
    match image::detect(&*file) {
        Ok(ImageFormat::Qcow2 | ImageFormat::VmdkSparse | ImageFormat::Vhd | ImageFormat::Vhdx | ImageFormat::VmdkDescriptor) => return true,
        Err(e) => return e.kind() == io::ErrorKind::Unsupported,
        Ok(ImageFormat::Raw) => {}
    }
    if matches!(partition::scan(&*file), Ok((TableKind::Gpt | TableKind::Mbr, _))) {
        return true;
    }
    ext4::probe(&*file) || xfs::probe(&*file) || matches!(lvm::probe(&file), Ok(Some(_))) || find_lost_filesystem(&*file).is_some()
}

enum Content {
    Ext4(ext4::Ext4Fs),
    Xfs(xfs::XfsFs),
    Pv,
    Other(Option<&'static str>),
    Failed(String),
}

fn probe_other(dev: &dyn BlockDev) -> Option<&'static str> {
    let mut b = vec![0u8; 4096.min(dev.size() as usize)];
    if dev.read_at(0, &mut b).is_err() {
        return None;
    }
    if b.len() >= 512 && b[510] == 0x55 && b[511] == 0xAA && (b.get(82..87) == Some(b"FAT32") || b.get(54..59) == Some(b"FAT16") || b.get(54..59) == Some(b"FAT12")) {
        return Some("vfat");
    }
    if b.len() >= 4096 && &b[4086..4096] == b"SWAPSPACE2" {
        return Some("swap");
    }
    let mut m = [0u8; 8];
    if dev.size() > 0x10048 && dev.read_at(0x10040, &mut m).is_ok() && &m == b"_BHRfS_M" {
        return Some("btrfs");
    }
    if dev.size() > 0x8006 && dev.read_at(0x8001, &mut m[..5]).is_ok() && &m[..5] == b"CD001" {
        return Some("iso9660");
    }
    None
}

fn probe(dev: &Arc<dyn BlockDev>, counters: &Arc<Counters>) -> Content {
    if ext4::probe(&**dev) {
        return match ext4::Ext4Fs::open(dev.clone(), counters.clone()) {
            Ok(fs) => Content::Ext4(fs),
            Err(e) => Content::Failed(e.to_string()),
        };
    }
    if xfs::probe(&**dev) {
        return match xfs::XfsFs::open(dev.clone(), counters.clone()) {
            Ok(fs) => Content::Xfs(fs),
            Err(e) => Content::Failed(e.to_string()),
        };
    }
    if matches!(lvm::probe(dev), Ok(Some(_))) {
        return Content::Pv;
    }
    Content::Other(probe_other(&**dev))
}

/// Opens a disk image: detects the format, reads the partition table and LVM, opens every
/// ext2/3/4 and xfs filesystem, finds the root filesystem and mounts the volumes its `/etc/fstab`
/// names below it. Refuses images beyond `limits` with the reason.
pub fn open_image(path: &Path, limits: &Limits) -> Result<DiskTarget, DiskError> {
    open_images(&[path.to_path_buf()], limits)
}

/// Like [`open_image`] for a machine whose volumes are several disk images (a second disk holding
/// /var, say, or an LVM volume group spanning disks): the root is looked for on every disk and
/// the root's `/etc/fstab` mounts volumes from any of them. The limits apply to all disks together.
pub fn open_images(paths: &[PathBuf], limits: &Limits) -> Result<DiskTarget, DiskError> {
    let mut disks = Vec::with_capacity(paths.len());
    for path in paths {
        let counters = Arc::new(Counters::default());
        let (dev, format) = image::open(path, counters.clone()).map_err(|source| DiskError::Io { path: path.clone(), source })?;
        disks.push(DiskInput { dev, format, counters, name: path.clone() });
    }
    open_block_devices(disks, limits)
}

/// One disk of a machine for [`open_block_devices`].
pub struct DiskInput {
    /// The guest disk's bytes (an image already decoded, or a snapshot's block API).
    pub dev: Arc<dyn BlockDev>,
    /// The container format the bytes came from, reported back in [`DiskTarget::format`].
    pub format: ImageFormat,
    /// The counters `dev` updates (bytes read).
    pub counters: Arc<Counters>,
    /// Used in messages.
    pub name: PathBuf,
}

/// Like [`open_image`] for a disk that is not a local image file: any [`BlockDev`] presenting the
/// guest disk (a cloud snapshot read through its block API, say). `counters` are the ones the
/// device updates (bytes read); `name` is used in messages.
pub fn open_block_device(disk: Arc<dyn BlockDev>, counters: Arc<Counters>, name: &Path, limits: &Limits) -> Result<DiskTarget, DiskError> {
    open_block_devices(vec![DiskInput { dev: disk, format: ImageFormat::Raw, counters, name: name.to_path_buf() }], limits)
}

/// [`open_block_device`] for a machine with several disks (see [`open_images`]).
pub fn open_block_devices(disks: Vec<DiskInput>, limits: &Limits) -> Result<DiskTarget, DiskError> {
    let Some(first) = disks.first() else {
        return Err(DiskError::Ineligible { path: PathBuf::new(), reason: "no disk given".into() });
    };
    // Messages about the machine as a whole name its first disk (and how many more there are).
    let path = if disks.len() == 1 { first.name.clone() } else { PathBuf::from(format!("{} (+{} more disks)", first.name.display(), disks.len() - 1)) };
    let path = path.as_path();
    // Saturating: hostile images may claim sizes near u64::MAX.
    let total = disks.iter().fold(0u64, |sum, d| sum.saturating_add(d.dev.size()));
    if total > limits.max_total_bytes {
        // Where each size comes from, so a header that lies can be told from a big disk.
        let reason = if disks.len() == 1 {
            format!("the disk holds {total} bytes (from {})", first.format.size_source())
        } else {
            let sizes: Vec<String> = disks.iter().map(|d| format!("{}: {} from {}", d.name.display(), d.dev.size(), d.format.size_source())).collect();
            format!("the {} disks hold {total} bytes ({})", disks.len(), sizes.join("; "))
        };
        return Err(DiskError::Ineligible { path: path.to_path_buf(), reason: format!("{reason}, more than the {}-byte limit", limits.max_total_bytes) });
    }
    let counters: Vec<Arc<Counters>> = disks.iter().map(|d| d.counters.clone()).collect();
    // Filesystems count files opened; with several disks they share the first disk's counters
    // (stats are summed over all of them anyway).
    let fs_counters = counters[0].clone();
    let multi = disks.len() > 1;
    let cache_share = limits.cache_bytes / disks.len() as u64;

    let mut notes = Vec::new();
    let mut tables = Vec::with_capacity(disks.len());
    let mut formats = Vec::with_capacity(disks.len());
    let mut found: Vec<(Volume, Arc<dyn BlockDev>)> = Vec::new();
    for (index, d) in disks.into_iter().enumerate() {
        let prefix = if multi { format!("disk {} ", index + 1) } else { String::new() };
        let before = found.len();
        let table = collect_disk_volumes(d.dev, d.counters, cache_share, &d.name, index, &prefix, &mut found, &mut notes)?;
        tables.push(table);
        formats.push(d.format);
        for (v, _) in &mut found[before..] {
            v.disk = index;
        }
    }
    assemble(found, tables, formats, counters, fs_counters, path, limits, notes)
}

/// Reads one disk's partition table (or finds a bare or lost filesystem) and appends its volumes
/// to `found`. Returns the table kind.
#[allow(clippy::too_many_arguments)]
fn collect_disk_volumes(
    disk: Arc<dyn BlockDev>,
    counters: Arc<Counters>,
    cache_bytes: u64,
    path: &Path,
    index: usize,
    prefix: &str,
    found: &mut Vec<(Volume, Arc<dyn BlockDev>)>,
    notes: &mut Vec<Note>,
) -> Result<TableKind, DiskError> {
    let io_err = |source: io::Error| DiskError::Io { path: path.to_path_buf(), source };
    let uncached = disk.clone();
    let disk: Arc<dyn BlockDev> = Arc::new(CachedDev::new(disk, cache_bytes, counters));
    let (table, parts) = partition::scan(&*disk).map_err(io_err)?;
    if parts.is_empty() {
        let whole = ext4::probe(&*disk) || xfs::probe(&*disk) || matches!(lvm::probe(&disk), Ok(Some(_))) || probe_other(&*disk).is_some();
        match (whole, if whole { None } else { find_lost_filesystem(&*uncached) }) {
            (false, Some(off)) => {
                notes.push(Note::on(index, format!("{prefix}no partition table; a filesystem was found by its signature at offset {off}")));
                let name = format!("{prefix}filesystem at offset {off}");
                let dev = SliceDev::new(disk.clone(), off, disk.size() - off, name.clone()).map_err(io_err)?;
                found.push((blank_volume(name, None, disk.size() - off), Arc::new(dev)));
            }
            _ => {
                let name = if prefix.is_empty() { "disk".to_string() } else { prefix.trim_end().to_string() };
                found.push((blank_volume(name, None, disk.size()), disk.clone()))
            }
        }
    }
    for p in &parts {
        let name = format!("{prefix}partition {}", p.number);
        let dev: Arc<dyn BlockDev> = match SliceDev::new(disk.clone(), p.start, p.size, name.clone()) {
            Ok(d) => Arc::new(d),
            Err(e) => {
                notes.push(Note::on(index, format!("{name} skipped: {e}")));
                continue;
            }
        };
        let mut v = blank_volume(name, Some(p.number), p.size);
        v.part_uuid = p.part_uuid.clone();
        v.part_label = p.part_label.clone().filter(|l| !l.is_empty());
        found.push((v, dev));
    }
    Ok(table)
}

/// `1 block`, `2 blocks`: a count for a note.
fn count(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Joins LVM logical volumes (a volume group may span disks), opens the filesystems, finds the
/// root and composes the mounts its `/etc/fstab` names.
#[allow(clippy::too_many_arguments)]
fn assemble(
    mut found: Vec<(Volume, Arc<dyn BlockDev>)>,
    tables: Vec<TableKind>,
    formats: Vec<ImageFormat>,
    counters: Vec<Arc<Counters>>,
    fs_counters: Arc<Counters>,
    path: &Path,
    limits: &Limits,
    mut notes: Vec<Note>,
) -> Result<DiskTarget, DiskError> {
    // LVM: physical volumes first, then their logical volumes join the list.
    let mut pvs = Vec::new();
    let mut pv_disk = std::collections::HashMap::new();
    for (v, dev) in &mut found {
        match lvm::probe(dev) {
            Ok(Some(pv)) => {
                v.fs_type = Some("LVM2_member".into());
                v.uuid = Some(pv.uuid.clone());
                pv_disk.entry(pv.uuid.clone()).or_insert(v.disk);
                pvs.push(pv);
            }
            Ok(None) => {}
            Err(e) => notes.push(Note::on(v.disk, format!("{}: LVM label unreadable: {e}", v.name))),
        }
    }
    if !pvs.is_empty() {
        match lvm::logical_volumes(&pvs) {
            Ok(lvs) => {
                for lv in lvs {
                    let name = format!("LV {}/{}", lv.vg, lv.name);
                    match lv.dev {
                        Ok(dev) => {
                            let mut v = blank_volume(name, None, dev.size());
                            v.disk = pv_disk.values().copied().min().unwrap_or(0);
                            v.part_label = Some(format!("{}/{}", lv.vg, lv.name));
                            found.push((v, dev));
                        }
                        Err(reason) => notes.push(Note::machine(format!("{name} not read: {reason}"))),
                    }
                }
            }
            Err(e) => notes.push(Note::machine(format!("LVM metadata unreadable: {e}"))),
        }
    }

    let volume_count = found.iter().filter(|(v, _)| v.fs_type.as_deref() != Some("LVM2_member")).count();
    if volume_count > limits.max_volumes {
        return Err(DiskError::Ineligible {
            path: path.to_path_buf(),
            reason: format!("{} {volume_count} volumes, more than the limit of {}", if tables.len() == 1 { "the disk holds" } else { "the disks hold" }, limits.max_volumes),
        });
    }

    let mut volumes = Vec::new();
    let mut filesystems: Vec<(usize, Arc<dyn RawFs>)> = Vec::new();
    for (mut v, dev) in found {
        if v.fs_type.as_deref() == Some("LVM2_member") {
            volumes.push(v);
            continue;
        }
        match probe(&dev, &fs_counters) {
            Content::Ext4(fs) => {
                let info = fs.info().clone();
                v.fs_type = Some(info.kind.into());
                v.uuid = Some(info.uuid);
                v.label = Some(info.label).filter(|l| !l.is_empty());
                v.scanned = true;
                if info.kind == "ext2" {
                    notes.push(Note::on(v.disk, format!("{}: ext2 is read, but agentless scanning supports ext3, ext4 and xfs only", v.name)));
                }
                match &info.journal {
                    ext4::JournalState::Clean => {}
                    ext4::JournalState::Replayed { transactions, blocks } => notes.push(Note::on(
                        v.disk,
                        format!("{}: the {} journal needed recovery (image of a running machine): {} ({}) replayed in memory, as a mount would", v.name, info.kind, count(*transactions, "committed transaction"), count(*blocks as u64, "block")),
                    )),
                    ext4::JournalState::NotReplayed(why) => notes.push(Note::on(
                        v.disk,
                        format!("{}: the {} journal needs recovery (image of a running machine) but was not replayed ({why}), so the newest writes may be missing", v.name, info.kind),
                    )),
                }
                filesystems.push((volumes.len(), Arc::new(fs)));
            }
            Content::Xfs(fs) => {
                let info = fs.info().clone();
                v.fs_type = Some("xfs".into());
                v.uuid = Some(info.uuid);
                v.label = Some(info.label).filter(|l| !l.is_empty());
                v.scanned = true;
                match &info.log {
                    xfs::LogState::Clean => {}
                    xfs::LogState::Replayed(s) => {
                        let mut note = if s.buffers + s.inodes == 0 && s.stopped.is_none() {
                            // A covered log (an idle machine): nothing newer than the filesystem.
                            format!("{}: the xfs log was not unmounted (image of a running machine) but holds nothing newer than the filesystem ({} checked, as a mount would)", v.name, count(s.transactions, "committed transaction"))
                        } else {
                            format!(
                                "{}: the xfs log needed recovery (image of a running machine): {} ({}, {}) replayed in memory, as a mount would",
                                v.name,
                                count(s.transactions, "committed transaction"),
                                count(s.buffers, "buffer"),
                                count(s.inodes, "inode")
                            )
                        };
                        if s.unfinished_intents > 0 {
                            note += &format!("; {} (reflink copy-on-write) left unfinished, so those files may read as before them", count(s.unfinished_intents, "file-mapping operation"));
                        }
                        if let Some(why) = &s.stopped {
                            note += &format!("; the log was read up to a damaged or torn record ({why})");
                        }
                        notes.push(Note::on(v.disk, note));
                    }
                    xfs::LogState::NotReplayed(why) => notes.push(Note::on(
                        v.disk,
                        format!("{}: the xfs log holds transactions not yet written home (image of a running machine) but was not replayed ({why}), so the newest changes (files created or rewritten just before the image was taken) may be missing", v.name),
                    )),
                    xfs::LogState::Unknown(why) => notes.push(Note::on(v.disk, format!("{}: whether the xfs log holds unwritten transactions is not known ({why})", v.name))),
                }
                filesystems.push((volumes.len(), Arc::new(fs)));
            }
            Content::Pv => v.fs_type = Some("LVM2_member".into()),
            Content::Other(kind) => {
                v.fs_type = kind.map(String::from);
                if let Some(k) = kind {
                    if k != "swap" {
                        notes.push(Note::on(v.disk, format!("{}: unsupported filesystem {k} (only ext3, ext4 and xfs are scanned)", v.name)));
                    }
                }
            }
            Content::Failed(e) => notes.push(Note::on(v.disk, format!("{}: filesystem unreadable: {e}", v.name))),
        }
        volumes.push(v);
    }

    // The root filesystem: the one with etc/os-release (or usr/lib/os-release).
    let root_index = filesystems
        .iter()
        .position(|(_, fs)| {
            let r = Root::from_arc(fs.clone());
            r.exists("/etc/os-release") || r.exists("/usr/lib/os-release")
        })
        .or_else(|| (filesystems.len() == 1).then_some(0));
    let Some(root_index) = root_index else {
        let list = volumes.iter().map(|v| format!("{} ({})", v.name, v.fs_type.as_deref().unwrap_or("unknown"))).collect::<Vec<_>>().join(", ");
        let mut volumes = if list.is_empty() { "none".to_string() } else { list };
        // Why a volume could not be read (an LV missing a physical volume, a corrupt superblock)
        // is usually the answer to "why no root".
        if !notes.is_empty() {
            volumes = format!("{volumes} ({})", notes.iter().map(|n| n.message.as_str()).collect::<Vec<_>>().join("; "));
        }
        return Err(DiskError::NoRoot { path: path.to_path_buf(), volumes });
    };
    let (root_vol, root_fs) = filesystems[root_index].clone();
    volumes[root_vol].mount_point = Some(PathBuf::from("/"));
    let root_only = Root::from_arc(root_fs.clone());
    if !root_only.exists("/etc/os-release") && !root_only.exists("/usr/lib/os-release") {
        notes.push(Note::on(volumes[root_vol].disk, format!("{}: no etc/os-release; scanned as the root filesystem because it is the only one", volumes[root_vol].name)));
    }

    let mut mounts: Vec<(PathBuf, Arc<dyn RawFs>)> = Vec::new();
    if let Ok(text) = root_only.read_to_string_lossy("/etc/fstab") {
        for entry in mount::parse_fstab(&text) {
            if entry.mount_point == Path::new("/") {
                continue;
            }
            let Some(vi) = volumes.iter().position(|v| matches_spec(v, &entry.spec)) else {
                let what = if tables.len() == 1 { "this image has" } else { "these disks have" };
                notes.push(Note::machine(format!("/etc/fstab mounts {} on {} but {what} no such volume", entry.spec, entry.mount_point.display())));
                continue;
            };
            match filesystems.iter().find(|(i, _)| *i == vi) {
                Some((_, fs)) if vi != root_vol => {
                    volumes[vi].mount_point = Some(entry.mount_point.clone());
                    mounts.push((entry.mount_point.clone(), fs.clone()));
                }
                Some(_) => {}
                None => {
                    volumes[vi].mount_point = Some(entry.mount_point.clone());
                    if !matches!(volumes[vi].fs_type.as_deref(), Some("vfat")) {
                        notes.push(Note::on(volumes[vi].disk, format!("{} ({}) on {} is not scanned", volumes[vi].name, volumes[vi].fs_type.as_deref().unwrap_or("unknown"), entry.mount_point.display())));
                    }
                }
            }
        }
    }
    for (i, v) in volumes.iter_mut().enumerate() {
        if v.scanned && v.mount_point.is_none() && i != root_vol {
            v.scanned = false;
            notes.push(Note::on(v.disk, format!("{} ({}) is not mounted by /etc/fstab and is not scanned", v.name, v.fs_type.as_deref().unwrap_or("unknown"))));
        }
    }
    let fs: Arc<dyn RawFs> = if mounts.is_empty() { root_fs } else { Arc::new(mount::MountFs::new(root_fs, mounts, fs_counters)) };
    let root_disk = volumes[root_vol].disk;
    Ok(DiskTarget { root: Root::from_arc(fs), format: formats[root_disk], table: tables[root_disk], volumes, notes, counters })
}

/// How far into a disk without a partition table we look for a filesystem (a lost or wiped table).
const LOST_FS_SEARCH: u64 = 1 << 30;

/// Looks for an ext2/3/4 or xfs superblock at each MiB boundary (where partitioning tools put
/// partitions) in the first GiB. Reads 1 KiB per MiB.
fn find_lost_filesystem(disk: &dyn BlockDev) -> Option<u64> {
    let mut off = 1 << 20;
    while off + (1 << 20) <= disk.size().min(LOST_FS_SEARCH) {
        let mut head = [0u8; 4];
        let mut magic = [0u8; 2];
        if disk.read_at(off, &mut head).is_ok() && &head == b"XFSB" {
            return Some(off);
        }
        if disk.read_at(off + 1024 + 0x38, &mut magic).is_ok() && u16::from_le_bytes(magic) == 0xEF53 {
            return Some(off);
        }
        off += 1 << 20;
    }
    None
}

fn blank_volume(name: String, partition: Option<u32>, size: u64) -> Volume {
    Volume { name, disk: 0, partition, size, fs_type: None, uuid: None, label: None, part_uuid: None, part_label: None, mount_point: None, scanned: false }
}

/// Whether an fstab device spec (`UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=`, `/dev/disk/by-*`,
/// `/dev/mapper/vg-lv`, `/dev/vg/lv`, `/dev/sda2`, `/dev/nvme0n1p2`) names this volume.
fn matches_spec(v: &Volume, spec: &str) -> bool {
    let eq = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
    if let Some(x) = spec.strip_prefix("UUID=").or_else(|| spec.strip_prefix("/dev/disk/by-uuid/")) {
        return eq(&v.uuid, x.trim_matches('"'));
    }
    if let Some(x) = spec.strip_prefix("LABEL=").or_else(|| spec.strip_prefix("/dev/disk/by-label/")) {
        return v.label.as_deref() == Some(x.trim_matches('"'));
    }
    if let Some(x) = spec.strip_prefix("PARTUUID=").or_else(|| spec.strip_prefix("/dev/disk/by-partuuid/")) {
        return eq(&v.part_uuid, x.trim_matches('"'));
    }
    if let Some(x) = spec.strip_prefix("PARTLABEL=").or_else(|| spec.strip_prefix("/dev/disk/by-partlabel/")) {
        return v.partition.is_some() && v.part_label.as_deref() == Some(x.trim_matches('"'));
    }
    if let Some(vglv) = v.name.strip_prefix("LV ") {
        let (vg, lv) = vglv.split_once('/').unwrap_or((vglv, ""));
        let mapper = format!("/dev/mapper/{}-{}", vg.replace('-', "--"), lv.replace('-', "--"));
        return spec == mapper || spec == format!("/dev/{vg}/{lv}");
    }
    if v.name.contains("filesystem at offset") {
        return false;
    }
    match spec.strip_prefix("/dev/").and_then(kernel_device_name) {
        Some((disk, partition)) => disk == v.disk && partition == v.partition,
        None => false,
    }
}

/// The disk number (by the order disks are attached) and partition of a kernel device name:
/// `sda2`, `vda2`, `xvda2`, `hda2` -> (0, 2); `sdb` -> (1, none); `nvme1n1p2`, `mmcblk0p2` -> (1, 2),
/// (0, 2).
fn kernel_device_name(dev: &str) -> Option<(usize, Option<u32>)> {
    let digits_at_end = |s: &str| s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    for prefix in ["nvme", "mmcblk"] {
        if let Some(rest) = dev.strip_prefix(prefix) {
            let n = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let disk = rest[..n].parse().ok()?;
            let rest = &rest[n..];
            // nvme namespaces: nvme0n1, nvme0n1p2
            let rest = if prefix == "nvme" { rest.strip_prefix('n')?.trim_start_matches(|c: char| c.is_ascii_digit()) } else { rest };
            return match rest.strip_prefix('p') {
                None if rest.is_empty() => Some((disk, None)),
                Some(p) => Some((disk, Some(p.parse().ok()?))),
                None => None,
            };
        }
    }
    let d = digits_at_end(dev);
    let (stem, part) = dev.split_at(dev.len() - d);
    let letter = ["xvd", "sd", "vd", "hd"].iter().find_map(|p| stem.strip_prefix(p)).filter(|l| l.len() == 1)?.as_bytes()[0];
    if !letter.is_ascii_lowercase() {
        return None;
    }
    Some(((letter - b'a') as usize, if part.is_empty() { None } else { Some(part.parse().ok()?) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_specs_match_volumes() {
        let mut v = blank_volume("partition 2".into(), Some(2), 1);
        v.uuid = Some("6d1d2a9e-7b3c-4c43-9d7e-0e4a5d1f0001".into());
        v.label = Some("var".into());
        v.part_uuid = Some("6d1d2a9e-02".into());
        assert!(matches_spec(&v, "UUID=6D1D2A9E-7B3C-4C43-9D7E-0E4A5D1F0001"));
        assert!(matches_spec(&v, "/dev/disk/by-label/var"));
        assert!(matches_spec(&v, "PARTUUID=6d1d2a9e-02"));
        assert!(matches_spec(&v, "/dev/sda2"));
        assert!(matches_spec(&v, "/dev/nvme0n1p2"));
        assert!(!matches_spec(&v, "/dev/sda12"));
        assert!(!matches_spec(&v, "/dev/sdb"));
        let lv = blank_volume("LV vg-data/var-log".into(), None, 1);
        assert!(matches_spec(&lv, "/dev/mapper/vg--data-var--log"));
        assert!(matches_spec(&lv, "/dev/vg-data/var-log"));
        // A machine's second disk: /dev/sdb1, /dev/xvdb1, /dev/nvme1n1p1; its bare filesystem: /dev/vdb.
        let mut second = blank_volume("disk 2 partition 1".into(), Some(1), 1);
        second.disk = 1;
        for spec in ["/dev/sdb1", "/dev/xvdb1", "/dev/nvme1n1p1"] {
            assert!(matches_spec(&second, spec), "{spec}");
        }
        for spec in ["/dev/sda1", "/dev/sdb2", "/dev/nvme0n1p1", "/dev/sdb"] {
            assert!(!matches_spec(&second, spec), "{spec}");
        }
        let mut bare = blank_volume("disk 2".into(), None, 1);
        bare.disk = 1;
        assert!(matches_spec(&bare, "/dev/vdb") && !matches_spec(&bare, "/dev/vdb1") && !matches_spec(&bare, "/dev/vda"));
        assert_eq!(kernel_device_name("mmcblk0p2"), Some((0, Some(2))));
        assert_eq!(kernel_device_name("nvme0n1"), Some((0, None)));
        assert_eq!(kernel_device_name("loop0"), None);
        assert_eq!(kernel_device_name("sdaa1"), None);
    }
}
