//! Importers. [`import_path`] takes a file, directory or archive, recognises each document by its
//! content and converts it with the matching importer:
//!
//! | format | recognised by | module |
//! | --- | --- | --- |
//! | OSV 1.x JSON or YAML (any ecosystem) | object with `id` and `affected`/`modified`/`schema_version` | [`osv`] |
//! | NVD CVE API 2.0 / JSON 2.0 feed | `vulnerabilities[].cve` | [`nvd`] |
//! | Red Hat CSAF VEX | `document.csaf_version` | [`csaf`] |
//! | CISA KEV | `catalogVersion` + `vulnerabilities` | [`kev`] |
//! | EPSS CSV (optionally gzip) | `#model_version` or `cve,epss,percentile` header | [`epss`] |
//! | Debian security tracker JSON | `{package: {CVE-...: {releases: ...}}}` | [`debian`] |
//! | Debian DSA/DLA list text | `[DD Mon YYYY] DSA-...` | [`debian`] |
//! | RustSec Markdown + TOML | ```` ```toml ```` front matter | [`rustsec`] |
//! | Node.js security WG JSON | `module_name` / `vulnerable` + `cve` | [`nodejs`] |
//! | victims-cve-db YAML | `cve` + `affected[].groupId/name` | [`victims`] |
//!
//! Containers: a directory (searched recursively), a zip (osv.dev's `all.zip`), a tar.gz, a
//! gzip'd single file, or a single file. A malformed record is skipped with a warning naming the
//! file and the reason; the import goes on.

pub mod csaf;
pub mod debian;
pub mod epss;
pub mod kev;
pub mod nodejs;
pub mod nvd;
pub mod osv;
pub mod rustsec;
pub mod victims;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::{Error, Result, VulnDb, Vulnerability, Writer};

/// Largest single document (after decompression) the importers accept: a corrupt or hostile
/// archive cannot make kensa allocate without bound. NVD's largest yearly feed is ~0.5 GiB.
pub const MAX_DOCUMENT_BYTES: u64 = 2 << 30;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Records imported, per format (`osv`, `nvd`, `kev`, `epss`, ...).
    pub imported: BTreeMap<String, u64>,
    /// Withdrawn or rejected records that were left out (and removed if present).
    pub withdrawn: u64,
    /// Malformed records that were skipped.
    pub skipped: u64,
    /// One line per skipped record: `file: reason`.
    pub warnings: Vec<String>,
}

impl ImportReport {
    pub fn total(&self) -> u64 {
        self.imported.values().sum()
    }

    pub(crate) fn count(&mut self, format: &str, n: u64) {
        *self.imported.entry(format.to_string()).or_default() += n;
    }

    pub(crate) fn skip(&mut self, name: &str, reason: impl std::fmt::Display) {
        let line = format!("{name}: {reason}");
        tracing::warn!("skipped {line}");
        self.skipped += 1;
        self.warnings.push(line);
    }

    pub fn merge(&mut self, other: ImportReport) {
        for (k, v) in other.imported {
            self.count(&k, v);
        }
        self.withdrawn += other.withdrawn;
        self.skipped += other.skipped;
        self.warnings.extend(other.warnings);
    }
}

/// Imports every record found at `path` into `db` in one transaction, and records the import as
/// feed `import:<file name>`. Unreadable inputs are errors (nothing is written); malformed
/// records inside them are skipped and reported.
pub fn import_path(db: &mut VulnDb, path: &Path) -> Result<ImportReport> {
    let mut w = db.writer()?;
    let report = import_into(&mut w, path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    w.set_feed(&crate::FeedState {
        name: format!("import:{name}"),
        url: Some(path.display().to_string()),
        updated_at: crate::now_rfc3339(),
        records: report.total(),
        ..Default::default()
    })?;
    w.set_meta("last_update", &crate::now_rfc3339())?;
    w.commit()?;
    Ok(report)
}

/// Like [`import_path`] inside a caller's transaction.
pub fn import_into(w: &mut Writer<'_>, path: &Path) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        walk_dir(w, path, &mut report)?;
    } else {
        let bytes = read_bounded(std::fs::File::open(path).map_err(|e| Error::io(path, e))?, &path.display().to_string())?;
        import_bytes(w, &path.display().to_string(), bytes, &mut report)?;
    }
    Ok(report)
}

fn walk_dir(w: &mut Writer<'_>, dir: &Path, report: &mut ImportReport) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let p = entry.path();
        let ft = entry.file_type().map_err(|e| Error::io(&p, e))?;
        if ft.is_dir() {
            walk_dir(w, &p, report)?;
        } else if ft.is_file() && is_archive(&p.to_string_lossy()) {
            let name = p.display().to_string();
            let bytes = read_bounded(std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?, &name)?;
            import_bytes(w, &name, bytes, report)?;
        } else if ft.is_file() && is_candidate(&p.to_string_lossy()) {
            let name = p.display().to_string();
            let bytes = read_bounded(std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?, &name)?;
            import_document(w, &name, &bytes, report)?;
        }
    }
    Ok(())
}

/// Archives found while walking a directory (a folder of downloaded feeds).
fn is_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".zip", ".tar.gz", ".tgz", ".json.gz", ".csv.gz"].iter().any(|s| lower.ends_with(s))
}

/// Files inside directories and archives that may hold records; others (LICENSE, scripts) are
/// passed over.
fn is_candidate(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".json", ".yaml", ".yml", ".md", ".csv", "/list", "-list.txt"].iter().any(|s| lower.ends_with(s))
}

fn read_bounded(r: impl Read, name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut buf).map_err(|e| Error::io(name, e))?;
    if buf.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(Error::format(name, format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
    }
    Ok(buf)
}

/// Imports a downloaded file (archive or document) named `name` inside a caller's transaction.
pub fn import_document_bytes(w: &mut Writer<'_>, name: &str, bytes: Vec<u8>) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    import_bytes(w, name, bytes, &mut report)?;
    Ok(report)
}

/// A file's bytes: an archive (zip, tar.gz, gzip) or one document.
fn import_bytes(w: &mut Writer<'_>, name: &str, bytes: Vec<u8>, report: &mut ImportReport) -> Result<()> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| Error::format(name, format!("bad zip archive: {e}")))?;
        for i in 0..zip.len() {
            let mut file = zip.by_index(i).map_err(|e| Error::format(name, format!("bad zip entry {i}: {e}")))?;
            if !file.is_file() || !is_candidate(file.name()) {
                continue;
            }
            let member = format!("{name}!{}", file.name());
            let mut buf = Vec::with_capacity(file.size().min(MAX_DOCUMENT_BYTES) as usize);
            (&mut file).take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut buf).map_err(|e| Error::format(&member, format!("cannot read: {e}")))?;
            if buf.len() as u64 > MAX_DOCUMENT_BYTES {
                return Err(Error::format(member, "entry too large"));
            }
            import_document(w, &member, &buf, report)?;
        }
        return Ok(());
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let inner = read_bounded(flate2::read::MultiGzDecoder::new(&bytes[..]), name)
            .map_err(|e| Error::format(name, format!("bad gzip data: {e}")))?;
        if inner.len() > 262 && &inner[257..262] == b"ustar" {
            let mut archive = tar::Archive::new(&inner[..]);
            let entries = archive.entries().map_err(|e| Error::format(name, format!("bad tar archive: {e}")))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| Error::format(name, format!("bad tar entry: {e}")))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let member_path = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                if !is_candidate(&member_path) {
                    continue;
                }
                let member = format!("{name}!{member_path}");
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).map_err(|e| Error::format(&member, format!("cannot read: {e}")))?;
                import_document(w, &member, &buf, report)?;
            }
            return Ok(());
        }
        let inner_name = name.strip_suffix(".gz").unwrap_or(name).to_string();
        return import_document(w, &inner_name, &inner, report);
    }
    import_document(w, name, &bytes, report)
}

/// One document, recognised by its content. Database errors are returned; a document that is not
/// a known format or is malformed is skipped with a warning.
pub(crate) fn import_document(w: &mut Writer<'_>, name: &str, bytes: &[u8], report: &mut ImportReport) -> Result<()> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_start_matches('\u{feff}'),
        Err(e) => {
            report.skip(name, format!("not UTF-8 text: {e}"));
            return Ok(());
        }
    };
    let trimmed = text.trim_start();
    let lower = name.to_ascii_lowercase();
    if trimmed.starts_with("```toml") {
        return rustsec::import(w, name, text, report);
    }
    if trimmed.starts_with("#model_version") || trimmed.starts_with("cve,epss") {
        return epss::import(w, name, text, report);
    }
    if trimmed.starts_with("cveID,vendorProject,") {
        return kev::import_csv(w, name, text, report);
    }
    if debian::looks_like_list(trimmed) {
        return debian::import_list(w, name, text, report);
    }
    let value: Value = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                report.skip(name, format!("invalid JSON: {e}"));
                return Ok(());
            }
        }
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        match serde_yaml_ng::from_str::<Value>(text) {
            Ok(v) => v,
            Err(e) => {
                report.skip(name, format!("invalid YAML: {e}"));
                return Ok(());
            }
        }
    } else if lower.ends_with(".md") {
        // Documentation next to the records (README.md, CONTRIBUTING.md).
        tracing::debug!("{name}: not an advisory, ignored");
        return Ok(());
    } else {
        report.skip(name, "unrecognised format (expected OSV, NVD, CSAF VEX, KEV, EPSS, Debian tracker, RustSec, ...)");
        return Ok(());
    };
    import_value(w, name, value, report)
}

fn import_value(w: &mut Writer<'_>, name: &str, value: Value, report: &mut ImportReport) -> Result<()> {
    let Some(obj) = value.as_object() else {
        if let Value::Array(items) = value {
            // A JSON array of OSV records (some mirrors publish lists).
            for (i, item) in items.into_iter().enumerate() {
                import_value(w, &format!("{name}[{i}]"), item, report)?;
            }
            return Ok(());
        }
        report.skip(name, "not a JSON object");
        return Ok(());
    };
    if obj.contains_key("$schema") && (obj.contains_key("properties") || obj.contains_key("definitions")) {
        // A JSON Schema published beside a feed (KEV ships one): not data.
        tracing::debug!("{name}: JSON Schema, ignored");
        return Ok(());
    }
    if obj.contains_key("catalogVersion") && obj.contains_key("vulnerabilities") {
        return kev::import(w, name, value, report);
    }
    if obj.get("document").and_then(|d| d.get("csaf_version")).is_some() {
        return csaf::import(w, name, value, report);
    }
    if obj.get("format").and_then(Value::as_str) == Some("NVD_CVE")
        || obj.get("vulnerabilities").and_then(Value::as_array).is_some_and(|v| v.first().is_some_and(|x| x.get("cve").is_some_and(Value::is_object)))
    {
        return nvd::import(w, name, value, report);
    }
    if obj.contains_key("module_name") || (obj.get("cve").is_some_and(Value::is_array)) {
        return nodejs::import(w, name, value, report);
    }
    if obj.get("cve").is_some_and(|c| c.is_string() || c.is_number()) && obj.contains_key("affected") {
        return victims::import(w, name, value, report);
    }
    if obj.get("id").is_some_and(Value::is_string)
        && ["affected", "modified", "schema_version", "withdrawn"].iter().any(|k| obj.contains_key(*k))
    {
        return osv::import(w, name, value, report);
    }
    if nodejs::is_index(obj) {
        return nodejs::import_index(w, name, value, report);
    }
    if debian::is_tracker_json(obj) {
        return debian::import_tracker(w, name, value, report);
    }
    report.skip(name, "unrecognised JSON document (expected OSV, NVD, CSAF VEX, KEV, Debian tracker, ...)");
    Ok(())
}

/// Stores a converted record, skipping (with a warning) one without an id.
pub(crate) fn put(w: &mut Writer<'_>, name: &str, format: &str, v: &Vulnerability, report: &mut ImportReport) -> Result<()> {
    if v.id.trim().is_empty() {
        report.skip(name, "record without an id");
        return Ok(());
    }
    w.put(v)?;
    report.count(format, 1);
    Ok(())
}

/// A string field of a JSON object, trimmed, `None` when absent or empty.
pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// A list of strings (ignores non-strings).
pub(crate) fn str_list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}
