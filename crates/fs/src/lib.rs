//! Read-only filesystem sources.
//!
//! Every cataloger reads a target through [`Root`], never through `std::fs` directly, so the same
//! catalogers work on a directory tree, the live host, a container image or a disk image.
//!
//! A source implements the small [`RawFs`] trait: non-following operations on absolute paths whose
//! intermediate components are already resolved. [`Root`] adds symlink resolution that treats the
//! source as a root filesystem: absolute link targets and `..` are resolved *inside* the root and can
//! never escape it, and link loops are an error.

pub mod dir;
pub mod image;
mod resolve;
pub mod walk;

use std::ffi::OsString;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use dir::DirFs;
pub use image::ImageFs;
pub use walk::{WalkEntry, WalkOptions};

/// Kind of a directory entry. Symlinks are reported as such (never followed) by [`RawFs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    /// Devices, fifos, sockets: never read.
    Other,
}

/// Metadata of one inode, as much as the source knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub file_type: FileType,
    pub size: u64,
    /// Permission bits and set-id/sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Inode number where the source has one (0 otherwise).
    pub ino: u64,
}

impl Metadata {
    pub fn is_file(&self) -> bool {
        self.file_type == FileType::File
    }
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Dir
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type == FileType::Symlink
    }
    /// Any execute bit set.
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    pub file_type: FileType,
}

/// A readable, seekable file handle.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Non-following operations on one read-only filesystem.
///
/// `path` is always absolute (starts with `/`), normalised (no `.`, `..` or empty components) and
/// every component but the last is a directory, not a symlink. Implementations never follow a
/// symlink in the last component; [`Root`] does all symlink resolution.
pub trait RawFs: Send + Sync {
    fn lstat(&self, path: &Path) -> io::Result<Metadata>;
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn ReadSeek>>;
    /// A short human description used in messages, e.g. `directory /srv/rootfs`.
    fn describe(&self) -> String;
    /// Counters of I/O done so far (bytes read from the underlying medium and so on), if tracked.
    fn stats(&self) -> Option<IoStats> {
        None
    }
}

/// I/O counters a source may expose (`--stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    pub bytes_read: u64,
    pub blocks_fetched: u64,
    pub files_opened: u64,
    /// What the files read from (disk images, their backing files and extents) allocate on the
    /// host's disk, each counted once; 0 when not known.
    pub allocated_bytes: u64,
}

/// Errors with the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, #[source] source: io::Error },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: PathBuf },
    #[error("{path}: file is larger than the {limit}-byte limit for this read")]
    TooLarge { path: PathBuf, limit: u64 },
}

impl FsError {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FsError::Io { path: path.into(), source }
    }
    /// True when the error means "no such file" (as opposed to unreadable or corrupt).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

pub type Result<T> = std::result::Result<T, FsError>;

/// A filesystem treated as a root filesystem: `/` is the root of the source, and symlinks resolve
/// inside it. Cheap to clone.
#[derive(Clone)]
pub struct Root {
    fs: Arc<dyn RawFs>,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Root({})", self.fs.describe())
    }
}

/// Maximum symlinks followed while resolving one path (Linux uses 40).
pub const MAX_SYMLINK_HOPS: usize = 40;

impl Root {
    pub fn new(fs: impl RawFs + 'static) -> Self {
        Root { fs: Arc::new(fs) }
    }

    pub fn from_arc(fs: Arc<dyn RawFs>) -> Self {
        Root { fs }
    }

    /// A directory on the host treated as a root filesystem.
    pub fn dir(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Root::new(DirFs::new(path)?))
    }

    /// The live host's root filesystem.
    pub fn host() -> Self {
        Root::new(DirFs::host())
    }

    pub fn raw(&self) -> &Arc<dyn RawFs> {
        &self.fs
    }

    pub fn describe(&self) -> String {
        self.fs.describe()
    }

    pub fn stats(&self) -> Option<IoStats> {
        self.fs.stats()
    }

    /// Resolves every symlink in `path` (including the last component) inside the root.
    pub fn canonicalize(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        resolve::resolve(&*self.fs, path.as_ref(), true)
    }

    /// Resolves symlinks in all components but the last.
    pub fn resolve_parent(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        resolve::resolve(&*self.fs, path.as_ref(), false)
    }

    /// Metadata, following symlinks.
    pub fn metadata(&self, path: impl AsRef<Path>) -> Result<Metadata> {
        let p = self.canonicalize(path)?;
        self.fs.lstat(&p).map_err(|e| FsError::io(&p, e))
    }

    /// Metadata of the path itself (a symlink is reported as a symlink).
    pub fn symlink_metadata(&self, path: impl AsRef<Path>) -> Result<Metadata> {
        let p = self.resolve_parent(path)?;
        self.fs.lstat(&p).map_err(|e| FsError::io(&p, e))
    }

    /// The target of a symlink, as stored.
    pub fn read_link(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let p = self.resolve_parent(path)?;
        self.fs.read_link(&p).map_err(|e| FsError::io(&p, e))
    }

    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        self.metadata(path).is_ok()
    }

    pub fn is_file(&self, path: impl AsRef<Path>) -> bool {
        self.metadata(path).map(|m| m.is_file()).unwrap_or(false)
    }

    pub fn is_dir(&self, path: impl AsRef<Path>) -> bool {
        self.metadata(path).map(|m| m.is_dir()).unwrap_or(false)
    }

    /// Lists a directory (following symlinks to reach it), sorted by name for stable output.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<DirEntry>> {
        let p = self.canonicalize(path)?;
        let mut entries = self.fs.read_dir(&p).map_err(|e| FsError::io(&p, e))?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Opens a regular file for reading (following symlinks).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Box<dyn ReadSeek>> {
        let p = self.canonicalize(path)?;
        let md = self.fs.lstat(&p).map_err(|e| FsError::io(&p, e))?;
        if md.file_type != FileType::File {
            return Err(FsError::io(&p, io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")));
        }
        self.fs.open_file(&p).map_err(|e| FsError::io(&p, e))
    }

    /// Reads a whole file, refusing files larger than `limit` bytes (memory stays bounded).
    pub fn read_limited(&self, path: impl AsRef<Path>, limit: u64) -> Result<Vec<u8>> {
        let p = self.canonicalize(path)?;
        let md = self.fs.lstat(&p).map_err(|e| FsError::io(&p, e))?;
        if md.file_type != FileType::File {
            return Err(FsError::io(&p, io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")));
        }
        if md.size > limit {
            return Err(FsError::TooLarge { path: p, limit });
        }
        let f = self.fs.open_file(&p).map_err(|e| FsError::io(&p, e))?;
        let mut buf = Vec::with_capacity(md.size as usize);
        // Read at most limit+1 bytes even if the size lied.
        f.take(limit + 1).read_to_end(&mut buf).map_err(|e| FsError::io(&p, e))?;
        if buf.len() as u64 > limit {
            return Err(FsError::TooLarge { path: p, limit });
        }
        Ok(buf)
    }

    /// Reads a whole file with the default limit of 256 MiB.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<u8>> {
        self.read_limited(path, DEFAULT_READ_LIMIT)
    }

    /// Reads a text file, replacing invalid UTF-8 (package metadata is not always clean).
    pub fn read_to_string_lossy(&self, path: impl AsRef<Path>) -> Result<String> {
        let bytes = self.read(path)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Walks the tree below `start` without following directory symlinks; see [`walk`].
    pub fn walk(&self, start: impl AsRef<Path>, opts: &WalkOptions, visit: impl FnMut(WalkEntry) -> walk::Visit) -> Vec<FsError> {
        walk::walk(self, start.as_ref(), opts, visit)
    }
}

/// Default cap for [`Root::read`].
pub const DEFAULT_READ_LIMIT: u64 = 256 << 20;

/// Joins a path under `/`, producing an absolute path string from components.
pub fn abs(path: impl AsRef<Path>) -> PathBuf {
    let p = path.as_ref();
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        Path::new("/").join(p)
    }
}
