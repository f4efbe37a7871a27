//! Symlink resolution confined to a root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::{FileType, FsError, RawFs, Result, MAX_SYMLINK_HOPS};

fn push_components(queue: &mut VecDeque<OsString>, path: &Path, front: bool) {
    let comps: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    if front {
        for c in comps.into_iter().rev() {
            queue.push_front(c);
        }
    } else {
        queue.extend(comps);
    }
}

fn join(parts: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in parts {
        p.push(c);
    }
    p
}

/// Resolves `path` inside the root of `fs`. `..` at the root stays at the root, absolute symlink
/// targets restart at the root. With `follow_last` false the final component is not followed.
pub(crate) fn resolve(fs: &dyn RawFs, path: &Path, follow_last: bool) -> Result<PathBuf> {
    let mut queue = VecDeque::new();
    push_components(&mut queue, path, false);
    let mut out: Vec<OsString> = Vec::new();
    let mut hops = 0usize;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            out.pop();
            continue;
        }
        let is_last = queue.is_empty();
        out.push(name);
        if is_last && !follow_last {
            break;
        }
        let candidate = join(&out);
        let md = match fs.lstat(&candidate) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound && is_last => break,
            Err(e) => return Err(FsError::io(candidate, e)),
        };
        match md.file_type {
            FileType::Symlink => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(FsError::SymlinkLoop { path: path.to_path_buf() });
                }
                let target = fs.read_link(&candidate).map_err(|e| FsError::io(&candidate, e))?;
                out.pop();
                if target.is_absolute() {
                    out.clear();
                }
                push_components(&mut queue, &target, true);
            }
            FileType::Dir => {}
            _ if !is_last => {
                return Err(FsError::io(candidate, io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
            }
            _ => {}
        }
    }
    Ok(join(&out))
}
