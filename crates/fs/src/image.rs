//! Container image archives as a filesystem: `docker save` tarballs and OCI image layouts
//! (a directory or a tar of one), with the layers applied in order.
//!
//! Opening an image reads every layer's tar headers once and builds an index of the final tree
//! (whiteouts applied, hard links resolved, symlinks kept as symlinks for [`crate::Root`] to
//! resolve). File contents are never held in memory: an uncompressed layer is read in place (its
//! offset inside the archive), a compressed one (gzip or zstd, whatever the media type claims) is
//! decompressed once into an unlinked temporary file, and reads are served by offset from there. Memory is the index (about 150 bytes per
//! entry of the final tree) plus buffers.
//!
//! Hostile archives: entries with absolute paths or `..` components are skipped with a warning;
//! blob names from manifests must be plain digests/relative names; the number of entries and the
//! size of manifests are capped.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;

use crate::{DirEntry, FileType, IoStats, Metadata, RawFs, ReadSeek};

/// Most entries (files, dirs, links) an image may have across all its layers.
pub const MAX_ENTRIES: usize = 5_000_000;
/// Deepest path accepted (Linux's PATH_MAX of 4096 allows at most 2048 components); deeper
/// entries are skipped, which also bounds the recursion over the tree.
pub const MAX_DEPTH: usize = 1024;
/// Largest uncompressed layer (a decompression bomb stops here instead of filling the disk).
pub const MAX_LAYER_BYTES: u64 = 64 << 30;
/// Largest manifest / index / config JSON read into memory.
const MAX_JSON: u64 = 16 << 20;

/// How the image is packaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// `docker save` output: `manifest.json` + layer tars (also written by podman and skopeo).
    DockerArchive,
    /// An OCI image layout (`oci-layout`, `index.json`, `blobs/`) in a directory.
    OciDir,
    /// An OCI image layout packed in a tar.
    OciArchive,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::DockerArchive => "docker-archive",
            ImageFormat::OciDir => "oci-dir",
            ImageFormat::OciArchive => "oci-archive",
        }
    }
}

/// Errors opening an image, with the part of the image they concern.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: String, #[source] source: io::Error },
    #[error("{path}: not a container image archive ({reason})")]
    NotAnImage { path: String, reason: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ImageError {
    ImageError::Invalid { path: path.into(), message: message.into() }
}

/// Tells whether `path` is a container image and which kind, from its content (not its name).
/// `Ok(None)`: readable but not an image.
pub fn probe(path: &Path) -> io::Result<Option<ImageFormat>> {
    let md = std::fs::metadata(path)?;
    if md.is_dir() {
        let is_oci = path.join("index.json").is_file() && (path.join("oci-layout").is_file() || path.join("blobs").is_dir());
        return Ok(if is_oci { Some(ImageFormat::OciDir) } else { None });
    }
    if !md.is_file() {
        return Ok(None);
    }
    let mut file = File::open(path)?;
    match Compression::sniff(&mut file)? {
        Compression::None => {}
        // A compressed tar: decide on the first few members after inflating.
        Compression::Gzip => {
            let gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            let mut archive = tar::Archive::new(gz);
            return Ok(classify_members(top_level_names(archive.entries().ok())));
        }
        Compression::Zstd => return Ok(None),
    }
    let mut header = [0u8; 512];
    if file.read_exact_at(&mut header, 0).is_err() || &header[257..262] != b"ustar" {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0))?;
    let len = file.metadata()?.len();
    let mut archive = tar::Archive::new(Section::new(Arc::new(file), 0, len));
    Ok(classify_members(top_level_names(archive.entries_with_seek().ok())))
}

/// Member names of the outer tar (headers only; member data is skipped).
fn top_level_names<R: Read>(entries: Option<tar::Entries<'_, R>>) -> Vec<String> {
    let mut names = Vec::new();
    let Some(entries) = entries else { return names };
    for entry in entries.take(100_000) {
        let Ok(entry) = entry else { break };
        if let Ok(p) = entry.path() {
            names.push(normalize_member(&p.to_string_lossy()));
        }
    }
    names
}

fn classify_members(names: Vec<String>) -> Option<ImageFormat> {
    if names.iter().any(|n| n == "manifest.json") {
        Some(ImageFormat::DockerArchive)
    } else if names.iter().any(|n| n == "index.json") && names.iter().any(|n| n == "oci-layout" || n.starts_with("blobs/")) {
        Some(ImageFormat::OciArchive)
    } else {
        None
    }
}

/// `./a/b` -> `a/b`.
fn normalize_member(name: &str) -> String {
    name.trim_start_matches("./").trim_end_matches('/').to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the first bytes (media types lie often enough: Docker writes `tar` media types for
    /// gzipped layers and vice versa). Leaves the reader where it was.
    fn sniff(r: &mut (impl Read + Seek)) -> io::Result<Self> {
        let pos = r.stream_position()?;
        let mut magic = [0u8; 4];
        let mut n = 0;
        while n < magic.len() {
            match r.read(&mut magic[n..])? {
                0 => break,
                k => n += k,
            }
        }
        r.seek(SeekFrom::Start(pos))?;
        Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            Compression::Gzip
        } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Compression::Zstd
        } else {
            Compression::None
        })
    }
}

/// A byte range of a file, read with `pread` (handles share the file without sharing a cursor).
#[derive(Clone)]
struct Section {
    file: Arc<File>,
    start: u64,
    len: u64,
    pos: u64,
    /// Bytes read through file handles given out by [`ImageFs`] (`--stats`).
    counter: Option<Arc<AtomicU64>>,
}

impl Section {
    fn new(file: Arc<File>, start: u64, len: u64) -> Self {
        Section { file, start, len, pos: 0, counter: None }
    }
}

impl Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        let read = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += read as u64;
        if let Some(c) = &self.counter {
            c.fetch_add(read as u64, Ordering::Relaxed);
        }
        Ok(read)
    }
}

impl Seek for Section {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the file"));
        }
        self.pos = new as u64;
        Ok(self.pos)
    }
}

/// Where the image's blobs live: files of a directory, or members of a tar.
enum Blobs {
    Dir(PathBuf),
    Tar { file: Arc<File>, members: HashMap<String, (u64, u64)> },
}

impl Blobs {
    fn open_tar(file: File) -> io::Result<Self> {
        let file = Arc::new(file);
        let mut members = HashMap::new();
        let mut archive = tar::Archive::new(Section::new(file.clone(), 0, file.metadata()?.len()));
        for entry in archive.entries_with_seek()? {
            let entry = entry?;
            if entry.header().entry_type().is_file() {
                let name = normalize_member(&entry.path()?.to_string_lossy());
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(Blobs::Tar { file, members })
    }

    fn open(&self, name: &str) -> io::Result<Section> {
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|c| c == "..") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("refusing blob name {name:?}")));
        }
        match self {
            Blobs::Dir(dir) => {
                let f = File::open(dir.join(name))?;
                let len = f.metadata()?.len();
                Ok(Section::new(Arc::new(f), 0, len))
            }
            Blobs::Tar { file, members } => {
                let &(start, len) = members.get(name).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name}: not in the archive")))?;
                Ok(Section::new(file.clone(), start, len))
            }
        }
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, ImageError> {
        let mut s = self.open(name).map_err(|e| ImageError::Io { path: name.into(), source: e })?;
        if s.len > MAX_JSON {
            return Err(invalid(name, format!("{} bytes is too large for image metadata", s.len)));
        }
        let mut buf = Vec::with_capacity(s.len as usize);
        s.read_to_end(&mut buf).map_err(|e| ImageError::Io { path: name.into(), source: e })?;
        serde_json::from_slice(&buf).map_err(|e| invalid(name, format!("invalid JSON: {e}")))
    }
}

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Layers")]
    layers: Vec<String>,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
    /// Present when the "manifest" is really a nested index.
    #[serde(default)]
    manifests: Option<Vec<OciDescriptor>>,
}

#[derive(Deserialize)]
struct OciDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<OciPlatform>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct OciPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// `sha256:abc...` -> `blobs/sha256/abc...`, refusing anything but a plain digest.
fn blob_path(digest: &str) -> Result<String, ImageError> {
    let (alg, hex) = digest.split_once(':').ok_or_else(|| invalid("index.json", format!("malformed digest {digest:?}")))?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'));
    if !ok(alg) || !ok(hex) || alg.starts_with('.') || hex.starts_with('.') {
        return Err(invalid("index.json", format!("malformed digest {digest:?}")));
    }
    Ok(format!("blobs/{alg}/{hex}"))
}

fn host_oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Picks the image manifest of a (possibly nested) index: the host's architecture when several
/// platforms are present, else the first real image (attestations skipped).
fn resolve_oci_layers(blobs: &Blobs, index: OciIndex, depth: usize) -> Result<(Vec<String>, String), ImageError> {
    if depth > 4 {
        return Err(invalid("index.json", "image indexes nested too deeply"));
    }
    let candidates: Vec<&OciDescriptor> = index
        .manifests
        .iter()
        .filter(|d| d.annotations.as_ref().and_then(|a| a.get("vnd.docker.reference.type")).map(|t| t != "attestation-manifest").unwrap_or(true))
        .filter(|d| d.platform.as_ref().map(|p| p.os != "unknown").unwrap_or(true))
        .collect();
    let chosen = candidates
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.architecture == host_oci_arch() && (p.os == "linux" || p.os.is_empty())))
        .or_else(|| candidates.first())
        .ok_or_else(|| invalid("index.json", "the index lists no image manifest"))?;
    let path = blob_path(&chosen.digest)?;
    let manifest: OciManifest = blobs.read_json(&path)?;
    let is_index = chosen.media_type.contains("index") || chosen.media_type.contains("manifest.list") || manifest.media_type.as_deref().is_some_and(|m| m.contains("index") || m.contains("manifest.list"));
    if let (true, Some(manifests)) = (is_index || manifest.layers.is_empty(), manifest.manifests) {
        return resolve_oci_layers(blobs, OciIndex { manifests }, depth + 1);
    }
    let layers = manifest.layers.iter().map(|l| blob_path(&l.digest)).collect::<Result<Vec<_>, _>>()?;
    Ok((layers, chosen.digest.clone()))
}

/// One node of the final tree.
#[derive(Clone, Debug)]
struct Node {
    meta: Metadata,
    kind: NodeKind,
    /// The last layer that added or changed this node or anything below it (for opaque whiteouts).
    touched: usize,
}

#[derive(Clone, Debug)]
enum NodeKind {
    Dir(BTreeMap<OsString, Node>),
    /// Contents: byte range in one of the layer backings.
    File { backing: usize, offset: u64 },
    Symlink(PathBuf),
    Other,
}

impl Node {
    fn dir(touched: usize) -> Self {
        Node { meta: Metadata { file_type: FileType::Dir, size: 0, mode: 0o755, uid: 0, gid: 0, mtime: 0, ino: 0 }, kind: NodeKind::Dir(BTreeMap::new()), touched }
    }

    fn children_mut(&mut self) -> Option<&mut BTreeMap<OsString, Node>> {
        match &mut self.kind {
            NodeKind::Dir(c) => Some(c),
            _ => None,
        }
    }

    /// Removes everything below this directory that no layer at or after `layer` touched.
    fn prune_below(&mut self, layer: usize) {
        if let Some(children) = self.children_mut() {
            children.retain(|_, c| c.touched >= layer);
            for c in children.values_mut() {
                c.prune_below(layer);
            }
        }
    }
}

/// A container image as a read-only filesystem. See the module docs.
pub struct ImageFs {
    path: PathBuf,
    format: ImageFormat,
    /// `RepoTags[0]` of a docker archive or the manifest digest of an OCI image.
    reference: Option<String>,
    root: Node,
    backings: Vec<Arc<File>>,
    warnings: Vec<String>,
    layer_count: usize,
    bytes_read: Arc<AtomicU64>,
    files_opened: AtomicU64,
}

impl std::fmt::Debug for ImageFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFs").field("path", &self.path).field("format", &self.format).field("layers", &self.layer_count).finish()
    }
}

impl ImageFs {
    /// Opens an image, detecting its format from its content.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ImageError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let format = probe(path).map_err(|e| ImageError::Io { path: shown.clone(), source: e })?.ok_or_else(|| ImageError::NotAnImage {
            path: shown.clone(),
            reason: "no manifest.json (docker save) nor index.json + blobs/ (OCI layout)".into(),
        })?;
        let blobs = match format {
            ImageFormat::OciDir => Blobs::Dir(path.to_path_buf()),
            _ => {
                let mut file = File::open(path).map_err(|e| ImageError::Io { path: shown.clone(), source: e })?;
                let file = match Compression::sniff(&mut file).map_err(|e| ImageError::Io { path: shown.clone(), source: e })? {
                    Compression::Gzip => inflate_to_temp(Section::new(Arc::new(file), 0, u64::MAX)).map_err(|e| ImageError::Io { path: shown.clone(), source: e })?,
                    _ => file,
                };
                Blobs::open_tar(file).map_err(|e| invalid(shown.clone(), format!("corrupt tar archive: {e}")))?
            }
        };
        // docker save (and Docker >= 25, which writes an OCI layout plus manifest.json) — manifest.json
        // names the layers in order.
        let (layers, reference) = if format == ImageFormat::DockerArchive {
            let manifest: Vec<DockerManifestEntry> = blobs.read_json("manifest.json")?;
            let first = manifest.into_iter().next().ok_or_else(|| invalid("manifest.json", "lists no image"))?;
            let reference = first.repo_tags.and_then(|t| t.into_iter().next());
            (first.layers.into_iter().map(|l| normalize_member(&l)).collect(), reference)
        } else {
            let index: OciIndex = blobs.read_json("index.json")?;
            let (layers, digest) = resolve_oci_layers(&blobs, index, 0)?;
            (layers, Some(digest))
        };
        let mut fs = ImageFs { path: path.to_path_buf(), format, reference, root: Node::dir(0), backings: Vec::new(), warnings: Vec::new(), layer_count: layers.len(), bytes_read: Arc::default(), files_opened: AtomicU64::new(0) };
        let mut entries = 0usize;
        for (i, layer) in layers.iter().enumerate() {
            fs.apply_layer(&blobs, i + 1, layer, &mut entries).map_err(|e| match e {
                ImageError::Io { source, .. } => invalid(format!("{shown}: layer {} ({layer})", i + 1), source.to_string()),
                other => other,
            })?;
        }
        Ok(fs)
    }

    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// The image's tag (docker archive) or manifest digest (OCI), when known.
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    /// Problems met while applying layers (skipped unsafe entries, dangling hard links).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn layer_count(&self) -> usize {
        self.layer_count
    }

    fn apply_layer(&mut self, blobs: &Blobs, layer: usize, name: &str, entries: &mut usize) -> Result<(), ImageError> {
        let io_err = |e: io::Error| ImageError::Io { path: name.to_string(), source: e };
        let mut section = blobs.open(name).map_err(io_err)?;
        let backing_section = match Compression::sniff(&mut section).map_err(io_err)? {
            Compression::None => section,
            Compression::Gzip => {
                let f = inflate_to_temp(section).map_err(io_err)?;
                let len = f.metadata().map_err(io_err)?.len();
                Section::new(Arc::new(f), 0, len)
            }
            Compression::Zstd => {
                let f = unzstd_to_temp(section).map_err(io_err)?;
                let len = f.metadata().map_err(io_err)?.len();
                Section::new(Arc::new(f), 0, len)
            }
        };
        let backing = self.backings.len();
        self.backings.push(backing_section.file.clone());
        let base = backing_section.start;
        let mut archive = tar::Archive::new(backing_section);
        for entry in archive.entries_with_seek().map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            *entries += 1;
            if *entries > MAX_ENTRIES {
                return Err(invalid(name, format!("more than {MAX_ENTRIES} entries in the image")));
            }
            let raw_path = entry.path().map_err(io_err)?.into_owned();
            let Some(rel) = safe_relative(&raw_path) else {
                self.warnings.push(format!("layer {layer} ({name}): skipped unsafe path {:?}", raw_path));
                continue;
            };
            if rel.components().count() > MAX_DEPTH {
                self.warnings.push(format!("layer {layer} ({name}): skipped a path deeper than {MAX_DEPTH} directories"));
                continue;
            }
            let header = entry.header();
            let Some(file_name) = rel.file_name().map(OsStr::to_os_string) else {
                continue; // the root directory itself
            };
            let parent = rel.parent().unwrap_or(Path::new(""));
            let name_bytes = file_name.as_bytes();
            if name_bytes == b".wh..wh..opq" {
                if let Some(dir) = self.dir_mut(parent, layer) {
                    dir.prune_below(layer);
                }
                continue;
            }
            if let Some(target) = name_bytes.strip_prefix(b".wh.") {
                let target = OsStr::from_bytes(target);
                if let Some(children) = self.dir_mut(parent, layer).and_then(Node::children_mut) {
                    if children.get(target).is_some_and(|n| n.touched < layer) {
                        children.remove(target);
                    }
                }
                continue;
            }
            let meta = Metadata {
                file_type: FileType::Other,
                size: 0,
                mode: header.mode().unwrap_or(0o644) & 0o7777,
                uid: header.uid().unwrap_or(0) as u32,
                gid: header.gid().unwrap_or(0) as u32,
                mtime: header.mtime().unwrap_or(0) as i64,
                ino: *entries as u64,
            };
            let entry_type = header.entry_type();
            let node = if entry_type.is_dir() {
                // A directory entry over an existing directory changes its metadata and keeps its
                // children; over a non-directory it replaces it.
                if self.lookup(&rel).is_some_and(|n| !matches!(n.kind, NodeKind::Dir(_))) {
                    if let Some(children) = self.dir_mut(parent, layer).and_then(Node::children_mut) {
                        children.remove(&file_name);
                    }
                }
                match self.dir_mut(&rel, layer) {
                    Some(dir) => dir.meta = Metadata { file_type: FileType::Dir, ..meta },
                    None => self.warnings.push(format!("layer {layer} ({name}): {} is below a non-directory; skipped", rel.display())),
                }
                continue;
            } else if entry_type.is_symlink() {
                let target = entry.link_name().map_err(io_err)?.map(|t| t.into_owned()).unwrap_or_default();
                let size = target.as_os_str().len() as u64;
                Node { meta: Metadata { file_type: FileType::Symlink, size, ..meta }, kind: NodeKind::Symlink(target), touched: layer }
            } else if entry_type.is_hard_link() {
                let target = entry.link_name().map_err(io_err)?.map(|t| t.into_owned()).unwrap_or_default();
                match safe_relative(&target).and_then(|t| self.lookup(&t).cloned()) {
                    Some(mut n) if !matches!(n.kind, NodeKind::Dir(_)) => {
                        n.touched = layer;
                        n
                    }
                    _ => {
                        self.warnings.push(format!("layer {layer} ({name}): hard link {} -> {} has no target; skipped", rel.display(), target.display()));
                        continue;
                    }
                }
            } else if entry_type.is_file() || entry_type == tar::EntryType::Continuous {
                Node { meta: Metadata { file_type: FileType::File, size: entry.size(), ..meta }, kind: NodeKind::File { backing, offset: base + entry.raw_file_position() }, touched: layer }
            } else if matches!(entry_type, tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo) {
                Node { meta, kind: NodeKind::Other, touched: layer }
            } else if entry_type == tar::EntryType::GNUSparse {
                self.warnings.push(format!("layer {layer} ({name}): {} is a GNU sparse file, which kensa does not read; skipped", rel.display()));
                continue;
            } else {
                continue; // pax/gnu extension headers are consumed by the tar crate; anything else is ignored
            };
            if let Some(children) = self.dir_mut(parent, layer).and_then(Node::children_mut) {
                children.insert(file_name, node);
            } else {
                self.warnings.push(format!("layer {layer} ({name}): {} is below a non-directory; skipped", rel.display()));
            }
        }
        Ok(())
    }

    /// The directory at `rel`, created (like tar does) when missing; every directory on the way is
    /// marked as touched by `layer`. `None` when a non-directory is in the way.
    fn dir_mut(&mut self, rel: &Path, layer: usize) -> Option<&mut Node> {
        let mut node = &mut self.root;
        node.touched = node.touched.max(layer);
        for comp in rel.components() {
            let Component::Normal(name) = comp else { continue };
            let children = node.children_mut()?;
            let child = children.entry(name.to_os_string()).or_insert_with(|| Node::dir(layer));
            if !matches!(child.kind, NodeKind::Dir(_)) {
                return None;
            }
            child.touched = child.touched.max(layer);
            node = child;
        }
        Some(node)
    }

    fn lookup(&self, rel: &Path) -> Option<&Node> {
        let mut node = &self.root;
        for comp in rel.components() {
            match comp {
                Component::Normal(name) => match &node.kind {
                    NodeKind::Dir(children) => node = children.get(name)?,
                    _ => return None,
                },
                Component::RootDir | Component::CurDir => {}
                _ => return None,
            }
        }
        Some(node)
    }

    fn node(&self, path: &Path) -> io::Result<&Node> {
        self.lookup(path).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file or directory in the image"))
    }
}

/// The path relative to the image root, or `None` for an absolute path or one with `..`.
fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for comp in p.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Decompresses a gzip stream into an unlinked temporary file (removed when closed).
fn inflate_to_temp(section: Section) -> io::Result<File> {
    let mut out = BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
    let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, section));
    copy_capped(gz, &mut out)?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())
}

/// Copies at most [`MAX_LAYER_BYTES`], failing beyond.
fn copy_capped(r: impl Read, out: &mut impl Write) -> io::Result<u64> {
    let n = io::copy(&mut r.take(MAX_LAYER_BYTES + 1), out)?;
    if n > MAX_LAYER_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("decompresses to more than {MAX_LAYER_BYTES} bytes")));
    }
    Ok(n)
}

/// Decompresses a zstd stream (one or more frames) into an unlinked temporary file.
fn unzstd_to_temp(section: Section) -> io::Result<File> {
    use std::io::BufRead;
    let mut out = BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
    let mut input = BufReader::with_capacity(1 << 20, section);
    loop {
        let frame = ruzstd::StreamingDecoder::new(&mut input).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
        copy_capped(frame, &mut out)?;
        if input.fill_buf()?.is_empty() {
            break;
        }
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())
}

impl RawFs for ImageFs {
    fn lstat(&self, path: &Path) -> io::Result<Metadata> {
        Ok(self.node(path)?.meta.clone())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        match &self.node(path)?.kind {
            NodeKind::Dir(children) => Ok(children.iter().map(|(name, n)| DirEntry { name: name.clone(), file_type: n.meta.file_type }).collect()),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a directory")),
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match &self.node(path)?.kind {
            NodeKind::Symlink(t) => Ok(t.clone()),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a symbolic link")),
        }
    }

    fn open_file(&self, path: &Path) -> io::Result<Box<dyn ReadSeek>> {
        let node = self.node(path)?;
        match &node.kind {
            NodeKind::File { backing, offset } => {
                self.files_opened.fetch_add(1, Ordering::Relaxed);
                let mut section = Section::new(self.backings[*backing].clone(), *offset, node.meta.size);
                section.counter = Some(self.bytes_read.clone());
                Ok(Box::new(section))
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")),
        }
    }

    fn describe(&self) -> String {
        format!("container image {} ({})", self.path.display(), self.format.as_str())
    }

    /// File contents read and files opened since the image was indexed (opening it reads every
    /// layer once; that is not counted).
    fn stats(&self) -> Option<IoStats> {
        Some(IoStats { bytes_read: self.bytes_read.load(Ordering::Relaxed), files_opened: self.files_opened.load(Ordering::Relaxed), ..Default::default() })
    }
}
