//! Composing volumes into one tree the way the machine mounts them: a [`RawFs`] whose paths under
//! a mount point are served by that volume's filesystem, plus `/etc/fstab` parsing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kensa_fs::{DirEntry, FileType, IoStats, Metadata, RawFs, ReadSeek};

use crate::block::Counters;

/// A root filesystem with other filesystems mounted below it.
pub struct MountFs {
    /// (mount point, filesystem), longest mount point first; the last is `/`.
    mounts: Vec<(PathBuf, Arc<dyn RawFs>)>,
    counters: Arc<Counters>,
}

impl MountFs {
    pub fn new(root: Arc<dyn RawFs>, mut others: Vec<(PathBuf, Arc<dyn RawFs>)>, counters: Arc<Counters>) -> Self {
        others.retain(|(p, _)| p != Path::new("/"));
        others.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        others.push((PathBuf::from("/"), root));
        MountFs { mounts: others, counters }
    }

    /// The filesystem serving `path`, its index, and the path inside it.
    fn route<'a>(&'a self, path: &Path) -> (&'a dyn RawFs, usize, PathBuf) {
        for (i, (mp, fs)) in self.mounts.iter().enumerate() {
            if let Ok(rest) = path.strip_prefix(mp) {
                return (&**fs, self.mounts.len() - 1 - i, Path::new("/").join(rest));
            }
        }
        let (_, fs) = self.mounts.last().expect("root mount");
        (&**fs, 0, path.to_path_buf())
    }
}

impl RawFs for MountFs {
    fn lstat(&self, path: &Path) -> io::Result<Metadata> {
        let (fs, index, p) = self.route(path);
        // Inode numbers repeat across filesystems: tag them with the mount so tree walkers that
        // detect cycles by inode number do not mistake a mounted root for a loop.
        let mut md = fs.lstat(&p)?;
        if md.ino != 0 {
            md.ino |= (index as u64) << 56;
        }
        Ok(md)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let (fs, _, p) = self.route(path);
        let mut entries = fs.read_dir(&p)?;
        // A mount point missing from the parent filesystem still shows up.
        for (mp, _) in &self.mounts {
            if mp.parent() == Some(path) {
                if let Some(name) = mp.file_name() {
                    if !entries.iter().any(|e| e.name == name) {
                        entries.push(DirEntry { name: name.to_os_string(), file_type: FileType::Dir });
                    }
                }
            }
        }
        Ok(entries)
    }
    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let (fs, _, p) = self.route(path);
        fs.read_link(&p)
    }
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn ReadSeek>> {
        let (fs, _, p) = self.route(path);
        fs.open_file(&p)
    }
    fn describe(&self) -> String {
        let (_, root) = self.mounts.last().expect("root mount");
        if self.mounts.len() == 1 {
            root.describe()
        } else {
            format!("{} with {} more mounted volumes", root.describe(), self.mounts.len() - 1)
        }
    }
    fn stats(&self) -> Option<IoStats> {
        Some(self.counters.snapshot())
    }
}

/// One `/etc/fstab` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FstabEntry {
    pub spec: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// Parses `/etc/fstab`: skips comments, swap, pseudo filesystems and `noauto` entries.
pub fn parse_fstab(text: &str) -> Vec<FstabEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        let (spec, mp, ty) = (fields[0], fields[1], fields[2]);
        let opts = fields.get(3).copied().unwrap_or("");
        if !mp.starts_with('/') || ty == "swap" || opts.split(',').any(|o| o == "noauto" || o == "bind") {
            continue;
        }
        if matches!(ty, "proc" | "sysfs" | "tmpfs" | "devpts" | "devtmpfs" | "cgroup" | "cgroup2" | "nfs" | "nfs4" | "cifs" | "none") {
            continue;
        }
        out.push(FstabEntry { spec: unescape(spec), mount_point: PathBuf::from(unescape(mp)), fs_type: ty.to_string() });
    }
    out
}

/// fstab escapes spaces and such as `\040` (octal).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_lines() {
        let t = "# comment\nUUID=abc / ext4 defaults 0 1\nLABEL=var\\040x /var xfs defaults 0 2\n/dev/sda2 none swap sw 0 0\nproc /proc proc defaults 0 0\n/dev/sdb1 /mnt ext4 noauto 0 0\n";
        let e = parse_fstab(t);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].spec, "LABEL=var x");
        assert_eq!(e[1].mount_point, PathBuf::from("/var"));
    }
}
