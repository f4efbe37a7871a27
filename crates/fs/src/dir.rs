//! A directory on the host (or the host's `/`) as a filesystem source.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{DirEntry, FileType, Metadata, RawFs, ReadSeek};

/// A host directory treated as a root filesystem. Paths given to it are resolved by [`crate::Root`],
/// so a symlink inside the tree can never make it read outside `base`.
#[derive(Debug, Clone)]
pub struct DirFs {
    base: PathBuf,
}

impl DirFs {
    pub fn new(base: impl AsRef<Path>) -> io::Result<Self> {
        let base = base.as_ref();
        let md = fs::metadata(base)?;
        if !md.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{} is not a directory", base.display())));
        }
        Ok(DirFs { base: fs::canonicalize(base)? })
    }

    /// The live host (`/`).
    pub fn host() -> Self {
        DirFs { base: PathBuf::from("/") }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    fn host_path(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap_or(path);
        if rel.as_os_str().is_empty() {
            self.base.clone()
        } else {
            self.base.join(rel)
        }
    }
}

pub(crate) fn file_type_of(ft: fs::FileType) -> FileType {
    if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_dir() {
        FileType::Dir
    } else if ft.is_file() {
        FileType::File
    } else {
        FileType::Other
    }
}

impl RawFs for DirFs {
    fn lstat(&self, path: &Path) -> io::Result<Metadata> {
        let md = fs::symlink_metadata(self.host_path(path))?;
        Ok(Metadata {
            file_type: file_type_of(md.file_type()),
            size: md.len(),
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            ino: md.ino(),
        })
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.host_path(path))? {
            let e = e?;
            out.push(DirEntry { name: e.file_name(), file_type: file_type_of(e.file_type()?) });
        }
        Ok(out)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(self.host_path(path))
    }

    fn open_file(&self, path: &Path) -> io::Result<Box<dyn ReadSeek>> {
        let hp = self.host_path(path);
        // Refuse to open through a symlink in the last component: Root resolved it already, and a
        // link appearing now (a race) must not lead outside the root.
        let f = fs::OpenOptions::new().read(true).custom_flags_nofollow().open(&hp)?;
        Ok(Box::new(io::BufReader::with_capacity(64 * 1024, f)))
    }

    fn describe(&self) -> String {
        if self.base == Path::new("/") {
            "host /".to_string()
        } else {
            format!("directory {}", self.base.display())
        }
    }
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW (Linux value); no libc dependency for one constant.
        const O_NOFOLLOW: i32 = 0o400000;
        self.custom_flags(O_NOFOLLOW)
    }
}
