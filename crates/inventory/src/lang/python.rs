//! Python packages: `*.dist-info/METADATA` (wheels, pip), `*.egg-info/PKG-INFO` and single-file
//! `*.egg-info` (setuptools, distutils, Debian), `*.egg/EGG-INFO/PKG-INFO` and zipped `.egg`s.
//!
//! The purl carries the PEP 503 normalised name (`pkg:pypi/jinja2@3.1.2`); `Package::name` keeps the
//! name as written. `Package::files` lists what `RECORD` / `installed-files.txt` say the package
//! installed (absolute paths), which ownership needs.

use std::path::{Component, Path, PathBuf};

use kensa_fs::Root;

use super::zip::{InflateBudget, ZipArchive};
use super::{warning, Limits};
use crate::purl::Purl;
use crate::{Location, Package, PackageType, Warning};

const CATALOGER: &str = "python";

/// PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The core metadata fields we use, from an RFC 822 style header block (METADATA, PKG-INFO).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

/// Parses the header block (up to the first blank line); continuation lines are folded.
pub fn parse_core_metadata(text: &str) -> CoreMetadata {
    let mut md = CoreMetadata::default();
    let mut license_expression = None;
    let mut last: Option<(String, String)> = None;
    let mut commit = |md: &mut CoreMetadata, kv: Option<(String, String)>| {
        if let Some((k, v)) = kv {
            let v = v.trim().to_string();
            match k.to_ascii_lowercase().as_str() {
                "name" if md.name.is_empty() => md.name = v,
                "version" if md.version.is_empty() => md.version = v,
                "license" if md.license.is_none() && !v.is_empty() && v != "UNKNOWN" => md.license = Some(v),
                "license-expression" => license_expression = Some(v),
                _ => {}
            }
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = last.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        commit(&mut md, last.take());
        if let Some((k, v)) = line.split_once(':') {
            last = Some((k.trim().to_string(), v.to_string()));
        }
    }
    commit(&mut md, last.take());
    if let Some(e) = license_expression {
        md.license = Some(e);
    }
    // A multi-line License field holds the whole license text; keep only its first line's worth.
    if let Some(l) = &md.license {
        if l.len() > 200 {
            md.license = None;
        }
    }
    md
}

fn package(md: &CoreMetadata, location: String) -> Package {
    let purl = Purl::new("pypi", &normalize_name(&md.name)).version(md.version.clone()).to_string();
    let mut p = Package::new(PackageType::Pypi, md.name.clone(), md.version.clone(), purl);
    p.license = md.license.clone();
    p.locations.push(Location { path: location });
    p
}

fn lossy(bytes: Vec<u8>, path: &str, warnings: &mut Vec<Warning>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            warnings.push(warning(CATALOGER, path, format!("{path}: metadata is not valid UTF-8; invalid bytes replaced"), false));
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    }
}

fn read_text(root: &Root, path: &Path, limits: &Limits, warnings: &mut Vec<Warning>) -> Option<String> {
    match root.read_limited(path, limits.max_metadata_bytes) {
        Ok(b) => Some(lossy(b, &path.to_string_lossy(), warnings)),
        Err(e) => {
            warnings.push(warning(CATALOGER, &path.to_string_lossy(), e.to_string(), false));
            None
        }
    }
}

/// Checks that the metadata names a package; warns otherwise.
fn usable(md: &CoreMetadata, path: &str, warnings: &mut Vec<Warning>) -> bool {
    if md.name.is_empty() || md.version.is_empty() {
        warnings.push(warning(CATALOGER, path, format!("{path}: no Name or Version in the package metadata"), false));
        return false;
    }
    true
}

/// `*.dist-info`, `*.egg-info` or `EGG-INFO` directory.
pub fn catalog_metadata_dir(root: &Root, dir: &Path, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let is_dist_info = dir.extension().is_some_and(|e| e == "dist-info");
    let meta = dir.join(if is_dist_info { "METADATA" } else { "PKG-INFO" });
    if !root.is_file(&meta) {
        warnings.push(warning(CATALOGER, &dir.to_string_lossy(), format!("{}: no {} in package metadata directory", dir.display(), meta.file_name().unwrap().to_string_lossy()), false));
        return;
    }
    let Some(text) = read_text(root, &meta, limits, warnings) else { return };
    let md = parse_core_metadata(&text);
    let loc = meta.to_string_lossy().into_owned();
    if !usable(&md, &loc, warnings) {
        return;
    }
    let mut p = package(&md, loc);
    p.metadata.insert("metadataDir".into(), dir.to_string_lossy().into_owned());
    // Installed files: RECORD (relative to the site-packages directory) or installed-files.txt
    // (relative to the egg-info directory).
    let site = dir.parent().unwrap_or(Path::new("/"));
    let (list, base) = if is_dist_info { (dir.join("RECORD"), site) } else { (dir.join("installed-files.txt"), dir) };
    if root.is_file(&list) {
        if let Some(text) = read_text(root, &list, limits, warnings) {
            for line in text.lines() {
                let rel = if is_dist_info { record_path(line) } else { Some(line.trim().to_string()) };
                if let Some(rel) = rel.filter(|r| !r.is_empty()) {
                    if let Some(abs) = join_lexical(base, &rel) {
                        p.files.push(abs);
                    }
                }
            }
        }
    }
    out.push(p);
}

/// The path column of one RECORD line (CSV; the path may be quoted).
fn record_path(line: &str) -> Option<String> {
    let line = line.trim_end_matches('\r');
    if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    } else {
        Some(line.split(',').next().unwrap_or("").to_string())
    }
}

/// `base/rel` with `.` and `..` resolved lexically (RECORD has `../../../bin/tool` entries).
fn join_lexical(base: &Path, rel: &str) -> Option<String> {
    let mut out = if Path::new(rel).is_absolute() { PathBuf::from("/") } else { base.to_path_buf() };
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out.to_string_lossy().into_owned())
}

/// Single-file `*.egg-info` (distutils writes PKG-INFO under this name).
pub fn catalog_egg_info_file(root: &Root, path: &Path, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let Some(text) = read_text(root, path, limits, warnings) else { return };
    let md = parse_core_metadata(&text);
    let loc = path.to_string_lossy().into_owned();
    if usable(&md, &loc, warnings) {
        out.push(package(&md, loc));
    }
}

/// Zipped `.egg`: `EGG-INFO/PKG-INFO` inside the archive.
pub fn catalog_egg_archive(root: &Root, path: &Path, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let loc = path.to_string_lossy().into_owned();
    let file = match root.open(path) {
        Ok(f) => f,
        Err(e) => return warnings.push(warning(CATALOGER, &loc, e.to_string(), false)),
    };
    let mut zip = match ZipArchive::new(file) {
        Ok(z) => z,
        Err(e) => return warnings.push(warning(CATALOGER, &loc, format!("{loc}: {e}"), false)),
    };
    let Some(i) = zip.find("EGG-INFO/PKG-INFO") else {
        return warnings.push(warning(CATALOGER, &loc, format!("{loc}: egg has no EGG-INFO/PKG-INFO"), false));
    };
    let mut budget = InflateBudget::new(limits.max_inflated_per_archive);
    match zip.read(i, limits.max_metadata_bytes, &mut budget) {
        Ok(bytes) => {
            let entry_loc = format!("{loc}!EGG-INFO/PKG-INFO");
            let text = lossy(bytes, &entry_loc, warnings);
            let md = parse_core_metadata(&text);
            if usable(&md, &entry_loc, warnings) {
                out.push(package(&md, loc));
            }
        }
        Err(e) => warnings.push(warning(CATALOGER, &loc, format!("{loc}!EGG-INFO/PKG-INFO: {e}"), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503() {
        assert_eq!(normalize_name("Jinja2"), "jinja2");
        assert_eq!(normalize_name("charset_normalizer"), "charset-normalizer");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("A__b-.-C"), "a-b-c");
    }

    #[test]
    fn metadata_headers() {
        let md = parse_core_metadata("Metadata-Version: 2.1\nName: requests\nVersion: 2.25.1\nLicense: Apache 2.0\n  continued\nSummary: x\n\nName: body\n");
        assert_eq!(md, CoreMetadata { name: "requests".into(), version: "2.25.1".into(), license: Some("Apache 2.0 continued".into()) });
    }

    #[test]
    fn record_lines() {
        assert_eq!(record_path("requests/__init__.py,sha256=abc,123").as_deref(), Some("requests/__init__.py"));
        assert_eq!(record_path("\"a,b.py\",,").as_deref(), Some("a,b.py"));
        assert_eq!(join_lexical(Path::new("/v/lib/py/site"), "../../../bin/x").as_deref(), Some("/v/bin/x"));
    }
}
