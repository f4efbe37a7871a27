//! Tree walking for catalogers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::{FileType, FsError, Root};

/// What the visitor wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    Continue,
    /// Do not descend into this directory (only meaningful for directories).
    SkipDir,
    /// Stop the walk.
    Stop,
}

/// One entry found by the walk. `path` is absolute inside the root and canonical up to its parent;
/// symlinks are reported as [`FileType::Symlink`] and never followed.
#[derive(Clone, Debug)]
pub struct WalkEntry {
    pub path: PathBuf,
    pub file_type: FileType,
    pub depth: usize,
}

/// Walk options.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// Directories (absolute, inside the root) not descended into, with everything below them.
    pub skip: Vec<PathBuf>,
    /// Maximum depth below the start (the start's children have depth 1).
    pub max_depth: usize,
    /// Stop after this many entries (guards against hostile filesystems).
    pub max_entries: u64,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions { skip: Vec::new(), max_depth: 128, max_entries: 50_000_000 }
    }
}

impl WalkOptions {
    /// Skips the pseudo filesystems and container runtime data that no scan should read.
    pub fn standard() -> Self {
        WalkOptions { skip: STANDARD_SKIPS.iter().map(PathBuf::from).collect(), ..Default::default() }
    }

    pub fn is_skipped(&self, path: &Path) -> bool {
        self.skip.iter().any(|s| path.starts_with(s))
    }
}

/// Never walked: kernel pseudo filesystems and container runtime storage (as Inspector does).
pub const STANDARD_SKIPS: &[&str] =
    &["/proc", "/sys", "/dev", "/var/lib/docker", "/var/lib/containerd", "/var/lib/containers"];

/// Depth-first walk in name order. Errors (unreadable directories, loops) are collected and
/// returned; the walk goes on past them.
pub(crate) fn walk(root: &Root, start: &Path, opts: &WalkOptions, mut visit: impl FnMut(WalkEntry) -> Visit) -> Vec<FsError> {
    let mut errors = Vec::new();
    let start = match root.canonicalize(start) {
        Ok(p) => p,
        Err(e) => {
            if !e.is_not_found() {
                errors.push(e);
            }
            return errors;
        }
    };
    if opts.is_skipped(&start) {
        return errors;
    }
    let raw = root.raw();
    let mut seen_dirs: HashSet<u64> = HashSet::new();
    let mut count: u64 = 0;
    // Stack of directories still to list, in reverse order so names come out sorted.
    let mut stack: Vec<(PathBuf, usize)> = vec![(start, 0)];
    while let Some((dir, depth)) = stack.pop() {
        match raw.lstat(&dir) {
            Ok(md) => {
                if md.file_type != FileType::Dir {
                    continue;
                }
                if md.ino != 0 && !seen_dirs.insert(md.ino) {
                    errors.push(FsError::io(&dir, std::io::Error::other("directory cycle (inode already visited)")));
                    continue;
                }
            }
            Err(e) => {
                errors.push(FsError::io(&dir, e));
                continue;
            }
        }
        let mut entries = match raw.read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                errors.push(FsError::io(&dir, e));
                continue;
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut subdirs = Vec::new();
        for e in entries {
            if e.name == "." || e.name == ".." || e.name.is_empty() {
                continue;
            }
            count += 1;
            if count > opts.max_entries {
                errors.push(FsError::io(&dir, std::io::Error::other(format!("walk stopped after {} entries", opts.max_entries))));
                return errors;
            }
            let path = dir.join(&e.name);
            if e.file_type == FileType::Dir && opts.is_skipped(&path) {
                continue;
            }
            let entry = WalkEntry { path: path.clone(), file_type: e.file_type, depth: depth + 1 };
            match visit(entry) {
                Visit::Stop => return errors,
                Visit::SkipDir => continue,
                Visit::Continue => {}
            }
            if e.file_type == FileType::Dir && depth + 1 < opts.max_depth {
                subdirs.push((path, depth + 1));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    errors
}
