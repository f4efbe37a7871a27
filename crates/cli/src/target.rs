//! Opening a scan target: `TARGET` on the command line becomes a [`kensa_fs::Root`].
//!
//! A target is a directory holding a root filesystem, `/` (the live host), or a container image
//! archive (`docker save` tarball, OCI layout directory or tar). The kind is detected from the
//! content; a `KIND:` prefix (`dir:`, `image:`) forces it. To add a kind: a [`TargetKind`]
//! variant, its prefix in [`TargetKind::from_prefix`], a test in [`detect_kind`] and an arm in
//! [`open_target`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use kensa_fs::image::{self, ImageFs};
use kensa_fs::Root;

/// The flags of a disk image target: further disks of the machine and the agentless limits.
#[derive(Args, Debug, Clone)]
pub struct DiskArgs {
    /// Another disk of the same machine, when TARGET is a disk image (repeatable): the root is
    /// found on any of them and its /etc/fstab mounts volumes across them (a separate /var disk).
    #[arg(long = "disk", value_name = "IMAGE")]
    pub disks: Vec<PathBuf>,
    /// Refuse a disk image target with more volumes than this (partitions and LVM logical
    /// volumes; Amazon Inspector's agentless limit is 7).
    #[arg(long, value_name = "N", default_value_t = kensa_disk::Limits::default().max_volumes)]
    pub max_volumes: usize,
    /// Refuse disk image targets whose disks hold more than this in all, in bytes or with a unit:
    /// 1200GB, 2TB, 500GiB (Amazon Inspector's agentless limit is 1,200 GB).
    #[arg(long, value_name = "SIZE", default_value_t = kensa_disk::Limits::default().max_total_bytes, value_parser = parse_size)]
    pub max_disk_size: u64,
}

impl DiskArgs {
    pub fn limits(&self) -> kensa_disk::Limits {
        kensa_disk::Limits { max_volumes: self.max_volumes, max_total_bytes: self.max_disk_size, ..kensa_disk::Limits::default() }
    }
}

/// A size in bytes: a number, or a number with a decimal (GB) or binary (GiB) unit.
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim().parse::<bytesize::ByteSize>().map(|b| b.as_u64()).map_err(|e| format!("{s:?} is not a size such as 1200GB, 2TB or 500GiB: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// The live host's root filesystem (`/`).
    Host,
    /// A directory holding a root filesystem (an extracted image, a chroot, a mounted snapshot).
    Dir,
    /// A container image archive or OCI layout.
    Image,
    /// A virtual machine disk image or snapshot (raw, qcow2, VMDK, VHD, VHDX), read without mounting.
    Disk,
}

impl TargetKind {
    /// The kind a `KIND:` prefix names.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "dir" => Some(TargetKind::Dir),
            "image" | "docker-archive" | "oci-archive" | "oci-dir" => Some(TargetKind::Image),
            "host" => Some(TargetKind::Host),
            "vm" | "disk" => Some(TargetKind::Disk),
            _ => None,
        }
    }
}

/// An opened target.
pub struct Target {
    pub root: Root,
    /// Shown in output (`Inventory::target`): the path as given, or the image's tag.
    pub name: String,
    pub kind: TargetKind,
    /// Problems met while opening it (e.g. unsafe entries skipped in an image layer).
    pub warnings: Vec<String>,
}

/// Splits `image:PATH` into the forced kind and the path; a plain path gives `None`.
pub fn parse_spec(spec: &str) -> (Option<TargetKind>, PathBuf) {
    if let Some((prefix, rest)) = spec.split_once(':') {
        if let Some(kind) = TargetKind::from_prefix(prefix) {
            return (Some(kind), PathBuf::from(if rest.is_empty() && kind == TargetKind::Host { "/" } else { rest }));
        }
    }
    (None, PathBuf::from(spec))
}

/// Detects the kind of `path` from its content.
pub fn detect_kind(path: &Path) -> anyhow::Result<TargetKind> {
    let md = std::fs::metadata(path).with_context(|| format!("cannot open target {}", path.display()))?;
    if md.is_dir() && path.canonicalize().map(|p| p == Path::new("/")).unwrap_or(false) {
        return Ok(TargetKind::Host);
    }
    if image::probe(path).with_context(|| format!("cannot read target {}", path.display()))?.is_some() {
        return Ok(TargetKind::Image);
    }
    if md.is_dir() {
        return Ok(TargetKind::Dir);
    }
    if kensa_disk::is_disk_image(path) {
        return Ok(TargetKind::Disk);
    }
    bail!("{}: not a directory, a container image archive (docker save, OCI layout) or a supported disk image", path.display())
}

/// Opens `spec` (see the module docs). `disk_args` gives further disks of the same machine and the
/// limits, for a disk image target only.
pub fn open_target(spec: &str, disk_args: &DiskArgs) -> anyhow::Result<Target> {
    let more_disks = &disk_args.disks;
    let (forced, path) = parse_spec(spec);
    let kind = match forced {
        Some(k) => k,
        None => detect_kind(&path)?,
    };
    if !more_disks.is_empty() && kind != TargetKind::Disk {
        bail!("--disk adds disks to a disk image target, but {} is not a disk image", path.display());
    }
    let name = path.display().to_string();
    match kind {
        TargetKind::Host => Ok(Target { root: Root::host(), name: "/".into(), kind, warnings: Vec::new() }),
        TargetKind::Dir => {
            let root = Root::dir(&path).with_context(|| format!("cannot open directory {}", path.display()))?;
            Ok(Target { root, name, kind, warnings: Vec::new() })
        }
        TargetKind::Image => {
            let img = ImageFs::open(&path)?;
            let warnings = img.warnings().to_vec();
            let name = img.reference().filter(|r| !r.starts_with("sha256:")).map(str::to_string).unwrap_or(name);
            Ok(Target { root: Root::new(img), name, kind, warnings })
        }
        TargetKind::Disk => {
            let disks: Vec<PathBuf> = std::iter::once(path).chain(more_disks.iter().cloned()).collect();
            let disk = kensa_disk::open_images(&disks, &disk_args.limits())?;
            Ok(Target { root: disk.root, name, kind, warnings: disk.notes.iter().map(|n| n.to_string()).collect() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1200GB"), Ok(1_200_000_000_000));
        assert_eq!(parse_size("500GiB"), Ok(500 << 30));
        assert_eq!(parse_size("1.5TB"), Ok(1_500_000_000_000));
        assert_eq!(parse_size("2 TiB"), Ok(2 << 40));
        assert_eq!(parse_size("123"), Ok(123));
        for bad in ["", "lots", "-1", "12 parsecs"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_spec("image:/tmp/a.tar"), (Some(TargetKind::Image), PathBuf::from("/tmp/a.tar")));
        assert_eq!(parse_spec("dir:/srv/root"), (Some(TargetKind::Dir), PathBuf::from("/srv/root")));
        assert_eq!(parse_spec("/srv/root"), (None, PathBuf::from("/srv/root")));
        // A colon that is not a known prefix is part of the path.
        assert_eq!(parse_spec("weird:name"), (None, PathBuf::from("weird:name")));
    }

    #[test]
    fn detection() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detect_kind(dir.path()).unwrap(), TargetKind::Dir);
        assert_eq!(detect_kind(Path::new("/")).unwrap(), TargetKind::Host);
        let f = dir.path().join("notes.txt");
        std::fs::write(&f, "hello").unwrap();
        let err = detect_kind(&f).unwrap_err().to_string();
        assert!(err.contains("not a directory, a container image"), "{err}");
        assert!(detect_kind(&dir.path().join("missing")).is_err());
    }
}
