//! Deep inspection: language packages (Python, JavaScript, Java, Go, Rust) found anywhere in the
//! scanned paths, with Amazon Inspector's path policy.
//!
//! One walk of the tree collects every candidate file (metadata directories, `package.json` of
//! installed packages, Java archives, executables); each ecosystem's cataloger then reads only its
//! candidates. No cataloger walks the tree itself.
//!
//! Path policy ([`DeepInspection`]): `all` scans the whole tree; `agent` scans Inspector's default
//! paths (`/usr/lib`, `/usr/lib64`, `/usr/local/lib`, `/usr/local/lib64`) plus up to five custom
//! paths; `off` scans nothing. Kernel pseudo filesystems and container runtime storage are never
//! walked ([`kensa_fs::walk::STANDARD_SKIPS`]).

pub mod binary;
pub mod java;
pub mod npm;
pub mod python;
pub mod zip;

use std::path::{Path, PathBuf};

use kensa_fs::walk::Visit;
use kensa_fs::{FileType, Root, WalkOptions};

use crate::{CatalogContext, Inventory, Package, Warning};

/// Inspector's default deep-inspection paths (agent mode).
pub const AGENT_DEFAULT_PATHS: &[&str] = &["/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64"];
/// Inspector accepts at most five custom paths ...
pub const MAX_CUSTOM_PATHS: usize = 5;
/// ... of at most 512 characters each.
pub const MAX_CUSTOM_PATH_LEN: usize = 512;

/// Which paths deep inspection scans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeepInspectionMode {
    /// No language packages at all.
    Off,
    /// Inspector's default paths plus the custom paths.
    Agent,
    /// Every path (except pseudo filesystems and container storage).
    #[default]
    All,
}

impl std::str::FromStr for DeepInspectionMode {
    type Err = PathPolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(DeepInspectionMode::Off),
            "agent" => Ok(DeepInspectionMode::Agent),
            "all" => Ok(DeepInspectionMode::All),
            other => Err(PathPolicyError::Mode(other.to_string())),
        }
    }
}

/// The deep-inspection settings of one scan. Build it with [`DeepInspection::new`], which validates
/// the custom paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeepInspection {
    pub mode: DeepInspectionMode,
    pub custom_paths: Vec<String>,
}

/// An invalid deep-inspection setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathPolicyError {
    #[error("unknown deep-inspection mode `{0}` (expected all, agent or off)")]
    Mode(String),
    #[error("at most {MAX_CUSTOM_PATHS} custom deep-inspection paths are allowed, got {0}")]
    TooManyPaths(usize),
    #[error("custom path `{path}`: {reason}")]
    InvalidPath { path: String, reason: String },
}

impl DeepInspection {
    /// Validated settings: at most five custom paths, each valid per [`validate_custom_path`].
    pub fn new(mode: DeepInspectionMode, custom_paths: Vec<String>) -> Result<Self, PathPolicyError> {
        if custom_paths.len() > MAX_CUSTOM_PATHS {
            return Err(PathPolicyError::TooManyPaths(custom_paths.len()));
        }
        for p in &custom_paths {
            validate_custom_path(p)?;
        }
        Ok(DeepInspection { mode, custom_paths })
    }

    pub fn all() -> Self {
        DeepInspection { mode: DeepInspectionMode::All, custom_paths: Vec::new() }
    }

    pub fn agent() -> Self {
        DeepInspection { mode: DeepInspectionMode::Agent, custom_paths: Vec::new() }
    }

    pub fn off() -> Self {
        DeepInspection { mode: DeepInspectionMode::Off, custom_paths: Vec::new() }
    }

    /// The paths walked, as given (before symlink resolution).
    pub fn start_paths(&self) -> Vec<PathBuf> {
        match self.mode {
            DeepInspectionMode::Off => Vec::new(),
            DeepInspectionMode::All => vec![PathBuf::from("/")],
            DeepInspectionMode::Agent => AGENT_DEFAULT_PATHS
                .iter()
                .map(PathBuf::from)
                .chain(self.custom_paths.iter().map(PathBuf::from))
                .collect(),
        }
    }
}

/// Checks a custom path the way Inspector does: absolute, at most 512 characters, and matching
/// `^(?:/(?:\.[-\w]+|[-\w]+(?:\.[-\w]+)?))+/?$` — every component is `.name` or `name[.ext]` made
/// of letters, digits, `_` and `-` (so no `..`, no empty components, no spaces).
pub fn validate_custom_path(path: &str) -> Result<(), PathPolicyError> {
    let bad = |reason: &str| Err(PathPolicyError::InvalidPath { path: path.to_string(), reason: reason.to_string() });
    if path.chars().count() > MAX_CUSTOM_PATH_LEN {
        return bad(&format!("longer than {MAX_CUSTOM_PATH_LEN} characters"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return bad("must be absolute (start with /)");
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return bad("must name a directory below / (use --deep-inspection all for the whole tree)");
    }
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    for comp in rest.split('/') {
        let ok = match comp.strip_prefix('.') {
            Some(hidden) => word(hidden),
            None => match comp.split_once('.') {
                Some((stem, ext)) => word(stem) && word(ext),
                None => word(comp),
            },
        };
        if !ok {
            return bad(&format!(
                "component `{comp}` is not allowed (components are `name`, `name.ext` or `.name` of letters, digits, `_` and `-`; no `..`, `//` or spaces)"
            ));
        }
    }
    Ok(())
}

/// A file the walk found that some language cataloger reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Candidate {
    /// `*.dist-info` / `*.egg-info` / `EGG-INFO` directory: the metadata file inside it.
    PythonMetadataDir(PathBuf),
    /// Single-file `*.egg-info` (distutils).
    PythonEggInfoFile(PathBuf),
    /// `*.egg` zip archive.
    PythonEggArchive(PathBuf),
    /// `node_modules/<name>/package.json` or `node_modules/@scope/<name>/package.json`.
    NpmPackageJson(PathBuf),
    /// `.jar .war .ear .jpi .hpi` and the other Java archive extensions; `.zip` files are searched
    /// for the Java archives inside them.
    JavaArchive(PathBuf),
    /// A regular file with an execute bit (maybe a Go or Rust ELF binary).
    Executable(PathBuf),
}

/// Java archive extensions (Syft's list: jar, war, ear, par, sar, nar, jpi, hpi, kar, lpkg).
pub const JAVA_ARCHIVE_EXTENSIONS: &[&str] = &["jar", "war", "ear", "par", "sar", "nar", "jpi", "hpi", "kar", "lpkg"];

pub(crate) fn has_java_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && JAVA_ARCHIVE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

fn classify(path: &Path, file_type: FileType) -> Option<Candidate> {
    // Names are bytes: one that is not UTF-8 (a Latin-1 `café.jar`) is still classified by its
    // suffix, and reported under its lossy form.
    let name = &*path.file_name()?.to_string_lossy();
    match file_type {
        FileType::Dir => {
            if name.ends_with(".dist-info") || name.ends_with(".egg-info") || name == "EGG-INFO" {
                return Some(Candidate::PythonMetadataDir(path.to_path_buf()));
            }
            None
        }
        FileType::File => {
            if name == "package.json" {
                return npm::is_installed_package_json(path).then(|| Candidate::NpmPackageJson(path.to_path_buf()));
            }
            if name.ends_with(".egg-info") {
                return Some(Candidate::PythonEggInfoFile(path.to_path_buf()));
            }
            if name.ends_with(".egg") {
                return Some(Candidate::PythonEggArchive(path.to_path_buf()));
            }
            if has_java_extension(name) || name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && ext.eq_ignore_ascii_case("zip")) {
                return Some(Candidate::JavaArchive(path.to_path_buf()));
            }
            None
        }
        _ => None,
    }
}

/// Whether a symlink's name says it would be a candidate (checked for loops and reported).
fn symlink_looks_relevant(name: &str) -> bool {
    name == "package.json" || name.ends_with(".egg-info") || name.ends_with(".dist-info") || name.ends_with(".egg") || has_java_extension(name)
}

/// Walks the paths of `policy` once and classifies what it finds: `found` gets every candidate,
/// in walk order, as soon as it is seen. Returns the problems met on the way.
pub fn walk_candidates(root: &Root, policy: &DeepInspection, mut found: impl FnMut(Candidate)) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let opts = WalkOptions::standard();
    // Resolve the start paths inside the root; drop the missing ones and those inside another.
    let mut starts: Vec<PathBuf> = Vec::new();
    for p in policy.start_paths() {
        match root.canonicalize(&p) {
            Ok(c) => {
                if root.is_dir(&c) {
                    starts.push(c);
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => warnings.push(warning("deep-inspection", &p.to_string_lossy(), e.to_string(), false)),
        }
    }
    starts.sort();
    starts.dedup();
    let starts: Vec<PathBuf> = starts.iter().filter(|s| !starts.iter().any(|o| o != *s && s.starts_with(o))).cloned().collect();
    let raw = root.raw().clone();
    for start in starts {
        let errors = root.walk(&start, &opts, |entry| {
            let Some(name) = entry.path.file_name().map(|n| n.to_string_lossy()) else {
                return Visit::Continue;
            };
            if let Some(c) = classify(&entry.path, entry.file_type) {
                let is_dir = matches!(c, Candidate::PythonMetadataDir(_));
                found(c);
                return if is_dir { Visit::SkipDir } else { Visit::Continue };
            }
            match entry.file_type {
                FileType::File => {
                    if let Ok(md) = raw.lstat(&entry.path) {
                        if md.is_executable() && md.size >= binary::MIN_ELF_SIZE {
                            found(Candidate::Executable(entry.path.clone()));
                        }
                    }
                }
                FileType::Symlink if symlink_looks_relevant(&name) => {
                    // Targets inside the scanned paths are reported at their own path; a link
                    // that cannot be resolved (a loop) is worth a warning.
                    if let Err(e) = root.canonicalize(&entry.path) {
                        if !e.is_not_found() {
                            warnings.push(warning("deep-inspection", &entry.path.to_string_lossy(), e.to_string(), false));
                        }
                    }
                }
                _ => {}
            }
            Visit::Continue
        });
        for e in errors {
            warnings.push(warning("deep-inspection", "", e.to_string(), false));
        }
    }
    warnings
}

pub(crate) fn warning(cataloger: &str, path: &str, message: impl Into<String>, partial: bool) -> Warning {
    let message = message.into();
    // Errors from kensa-fs already start with the path; do not repeat it.
    let path = if path.is_empty() { message.split(':').next().unwrap_or("").to_string() } else { path.to_string() };
    Warning { cataloger: cataloger.to_string(), path, message, partial }
}

/// Limits of the language catalogers (the defaults suit real systems; tests lower them).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest metadata file read (METADATA, PKG-INFO, package.json, RECORD, manifest, pom.properties).
    pub max_metadata_bytes: u64,
    /// Largest nested archive read into memory (a JAR inside a WAR).
    pub max_nested_archive_bytes: u64,
    /// Total bytes inflated from one top-level archive and everything nested in it.
    pub max_inflated_per_archive: u64,
    /// Archive nesting depth (the top-level archive is depth 0).
    pub max_archive_depth: usize,
    /// Largest ELF file opened for build information.
    pub max_binary_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_metadata_bytes: 8 << 20,
            max_nested_archive_bytes: 48 << 20,
            max_inflated_per_archive: 512 << 20,
            max_archive_depth: 4,
            max_binary_bytes: 2 << 30,
        }
    }
}

/// Deep inspection of `policy`'s paths: appends language packages and warnings to `inv`.
pub fn catalog(ctx: &CatalogContext<'_>, policy: &DeepInspection, inv: &mut Inventory) {
    catalog_with_limits(ctx, policy, &Limits::default(), 1, inv)
}

/// [`catalog`] with explicit limits, cataloging the files found by `threads` threads. Results are
/// appended in the walk's order whatever the number of threads.
pub fn catalog_with_limits(ctx: &CatalogContext<'_>, policy: &DeepInspection, limits: &Limits, threads: usize, inv: &mut Inventory) {
    if policy.mode == DeepInspectionMode::Off {
        return;
    }
    /// What cataloging one file found.
    type Found = (Vec<Package>, Vec<Warning>);
    let one = |c: &Candidate| -> Found {
        let (mut packages, mut warnings) = (Vec::new(), Vec::new());
        match c {
            Candidate::PythonMetadataDir(p) => python::catalog_metadata_dir(ctx.root, p, limits, &mut packages, &mut warnings),
            Candidate::PythonEggInfoFile(p) => python::catalog_egg_info_file(ctx.root, p, limits, &mut packages, &mut warnings),
            Candidate::PythonEggArchive(p) => python::catalog_egg_archive(ctx.root, p, limits, &mut packages, &mut warnings),
            Candidate::NpmPackageJson(p) => npm::catalog_package_json(ctx.root, p, limits, &mut packages, &mut warnings),
            Candidate::JavaArchive(p) => java::catalog_archive(ctx.root, p, limits, &mut packages, &mut warnings),
            Candidate::Executable(p) => binary::catalog_executable(ctx.root, p, limits, &mut packages, &mut warnings),
        }
        (packages, warnings)
    };
    let (walk_warnings, mut results): (Vec<Warning>, Vec<(usize, Found)>) = if threads <= 1 {
        let mut files = Vec::new();
        let walk_warnings = walk_candidates(ctx.root, policy, |c| files.push(c));
        (walk_warnings, files.iter().map(one).enumerate().collect())
    } else {
        // The walk hands each file to the workers as it finds it, so cataloging overlaps the walk
        // (in disk images both mostly wait on inflating); results are put back in walk order.
        // Bounded, so a walk far ahead of the workers holds little; the workers share the
        // receiver, which goes away with the last of them (a send then fails instead of blocking).
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Candidate)>(1024);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        // `tx` moves into the scope's closure: a panicking walk drops it and the workers stop.
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let rx = rx.clone();
                    s.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            // The lock is held only while waiting for the next file.
                            let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                            let Ok((i, c)) = next else { break };
                            done.push((i, one(&c)));
                        }
                        done
                    })
                })
                .collect();
            drop(rx);
            let mut n = 0;
            let walk_warnings = walk_candidates(ctx.root, policy, |c| {
                // Fails only once every worker has ended (panicked); the join below reports it.
                let _ = tx.send((n, c));
                n += 1;
            });
            drop(tx);
            let results = workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
            (walk_warnings, results)
        })
    };
    inv.warnings.extend(walk_warnings);
    results.sort_by_key(|(i, _)| *i);
    for (_, (packages, warnings)) in results {
        inv.packages.extend(packages);
        inv.warnings.extend(warnings);
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn names_that_are_not_utf8_are_still_classified() {
        let path = |b: &[u8]| Path::new(OsStr::from_bytes(b)).to_path_buf();
        assert!(matches!(classify(&path(b"/opt/caf\xe9.jar"), FileType::File), Some(Candidate::JavaArchive(_))));
        assert!(matches!(classify(&path(b"/srv/node_modules/p\xe9kg/package.json"), FileType::File), Some(Candidate::NpmPackageJson(_))));
        assert!(matches!(classify(&path(b"/usr/lib/python3/dist-packages/f\xf6o-1.0.dist-info"), FileType::Dir), Some(Candidate::PythonMetadataDir(_))));
        assert!(classify(&path(b"/opt/caf\xe9.txt"), FileType::File).is_none());
    }
}
