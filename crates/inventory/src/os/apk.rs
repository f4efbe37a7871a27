//! Alpine packages from apk-tools' database, `/lib/apk/db/installed` (apk-tools 3 may keep it in
//! `/usr/lib/apk/db/installed`). The format: one `K:value` line per field, records separated by
//! blank lines; `F:` names a directory and the `R:` lines after it are files in that directory.

use std::collections::HashSet;

use crate::model::{Inventory, Location, Package, PackageType, Warning};
use crate::purl::Purl;
use crate::CatalogContext;

pub const INSTALLED_DBS: [&str; 2] = ["/lib/apk/db/installed", "/usr/lib/apk/db/installed"];

const DB_LIMIT: u64 = 256 << 20;
const CATALOGER: &str = "apk";

/// One package record of the installed database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApkRecord {
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    pub origin: Option<String>,
    pub license: Option<String>,
    pub maintainer: Option<String>,
    pub installed_size: Option<u64>,
    pub build_time: Option<i64>,
    pub commit: Option<String>,
    pub files: Vec<String>,
    /// 1-based line of the record's first field.
    pub line: usize,
}

/// Parses the installed database. Records without a name or version are reported, not returned.
pub fn parse_installed(text: &str) -> (Vec<ApkRecord>, Vec<(usize, String)>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut cur = ApkRecord::default();
    let mut dir = String::new();
    let mut in_record = false;
    let finish = |cur: &mut ApkRecord, in_record: &mut bool, records: &mut Vec<ApkRecord>, problems: &mut Vec<(usize, String)>| {
        if *in_record {
            if cur.name.is_empty() || cur.version.is_empty() {
                problems.push((cur.line, "package record without P: (name) or V: (version)".to_string()));
            } else {
                records.push(std::mem::take(cur));
            }
        }
        *cur = ApkRecord::default();
        *in_record = false;
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            finish(&mut cur, &mut in_record, &mut records, &mut problems);
            dir.clear();
            continue;
        }
        if !in_record {
            in_record = true;
            cur.line = i + 1;
        }
        let Some((key, value)) = line.split_once(':').filter(|(k, _)| k.len() == 1) else {
            problems.push((i + 1, format!("malformed line (no `K:`): {:?}", line.chars().take(60).collect::<String>())));
            continue;
        };
        match key {
            "P" => cur.name = value.to_string(),
            "V" => cur.version = value.to_string(),
            "A" => cur.arch = Some(value.to_string()),
            "o" => cur.origin = Some(value.to_string()),
            "L" => cur.license = Some(value.to_string()),
            "m" => cur.maintainer = Some(value.to_string()),
            "I" => cur.installed_size = value.parse().ok(),
            "t" => cur.build_time = value.parse().ok(),
            "c" => cur.commit = Some(value.to_string()),
            "F" => dir = value.trim_matches('/').to_string(),
            "R" => cur.files.push(if dir.is_empty() { format!("/{value}") } else { format!("/{dir}/{value}") }),
            _ => {}
        }
    }
    finish(&mut cur, &mut in_record, &mut records, &mut problems);
    (records, problems)
}

/// Catalogs apk packages into `inv`.
pub fn catalog(ctx: &CatalogContext, inv: &mut Inventory) {
    let mut seen = HashSet::new();
    for path in INSTALLED_DBS {
        // With merged /usr, /lib is a link to /usr/lib: read the database once.
        let canonical = match ctx.root.canonicalize(path) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: path.into(), message: e.to_string(), partial: true });
                continue;
            }
        };
        if !seen.insert(canonical) {
            continue;
        }
        let bytes = match ctx.root.read_limited(path, DB_LIMIT) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: path.into(), message: format!("cannot read the apk database: {e}"), partial: true });
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let (records, problems) = parse_installed(&text);
        for (line, message) in problems {
            inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: format!("{path}:{line}"), message, partial: true });
        }
        for r in records {
            inv.packages.push(to_package(ctx, r, path));
        }
    }
}

/// Builds the package and its purl (`pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4`).
pub fn to_package(ctx: &CatalogContext, r: ApkRecord, db_path: &str) -> Package {
    let namespace = ctx.os.map(|o| o.id.as_str()).filter(|id| !id.is_empty()).unwrap_or("alpine").to_string();
    let mut purl = Purl::new("apk", &r.name).namespace(namespace).version(&r.version).qualifier("arch", r.arch.clone().unwrap_or_default());
    if let Some(origin) = r.origin.as_ref().filter(|o| **o != r.name) {
        purl = purl.qualifier("upstream", origin.clone());
    }
    if let Some(os) = ctx.os.filter(|o| !o.version_id.is_empty()) {
        purl = purl.qualifier("distro", format!("{}-{}", os.id, os.version_id));
    }
    let mut pkg = Package::new(PackageType::Apk, &r.name, &r.version, purl.to_string());
    pkg.release = r.version.rsplit_once("-r").map(|(_, rel)| format!("r{rel}"));
    pkg.arch = r.arch;
    pkg.source_name = Some(r.origin.unwrap_or_else(|| r.name.clone()));
    pkg.license = r.license;
    pkg.vendor = r.maintainer;
    pkg.size = r.installed_size;
    pkg.install_time = None;
    if let Some(t) = r.build_time {
        pkg.metadata.insert("buildTime".into(), t.to_string());
    }
    if let Some(c) = r.commit {
        pkg.metadata.insert("gitCommit".into(), c);
    }
    pkg.files = r.files;
    pkg.locations.push(Location { path: db_path.to_string() });
    pkg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OsInfo;
    use kensa_fs::Root;

    // Two records as apk-tools writes them (from an Alpine 3.18 image).
    const DB: &str = "C:Q1nIYuDgj8U2ZT2S+X3wTsG1ra2uI=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1698327830
c:b6b0a4ebd4bc4c2e2eb2cb5d0b46e2ab1b3e8bd5
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1vvr1pN7EpIHVlUvP5lpEy4YyZUI=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q1BEbXfMv8rvYtf+bFwn/NVoVSYvY=

C:Q1cYBAplK1OXzyKXMybhIvCRXaJ5s=
P:libcrypto3
V:3.1.4-r0
A:x86_64
S:1708425
I:4403200
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1698346446
c:2b3d2d2b1b1f0c2a5bb7e1c2d8d2ef8f5b6b0b8b
D:so:libc.musl-x86_64.so.1
F:etc
F:etc/ssl
R:openssl.cnf
F:usr
F:usr/lib
R:libcrypto.so.3
";

    #[test]
    fn parses_records_files_and_purls() {
        let (records, problems) = parse_installed(DB);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].files, vec!["/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"]);
        assert_eq!(records[1].files, vec!["/etc/ssl/openssl.cnf", "/usr/lib/libcrypto.so.3"]);
        let root = Root::dir(tempfile::tempdir().unwrap().path()).unwrap();
        let os = OsInfo { id: "alpine".into(), version_id: "3.18.4".into(), ..Default::default() };
        let ctx = CatalogContext { root: &root, os: Some(&os) };
        let pkgs: Vec<Package> = records.into_iter().map(|r| to_package(&ctx, r, INSTALLED_DBS[0])).collect();
        assert_eq!(pkgs[0].purl, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4");
        assert_eq!(pkgs[1].purl, "pkg:apk/alpine/libcrypto3@3.1.4-r0?arch=x86_64&distro=alpine-3.18.4&upstream=openssl");
        assert_eq!((pkgs[1].source_name.as_deref(), pkgs[1].license.as_deref(), pkgs[1].release.as_deref(), pkgs[1].size), (Some("openssl"), Some("Apache-2.0"), Some("r0"), Some(4403200)));
    }

    #[test]
    fn catalogs_once_through_merged_usr_and_reports_garbage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib/apk/db")).unwrap();
        std::os::unix::fs::symlink("usr/lib", dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/apk/db/installed"), format!("{DB}\nP:broken\nthis is not a field\n")).unwrap();
        let root = Root::dir(dir.path()).unwrap();
        let mut inv = Inventory::default();
        catalog(&CatalogContext { root: &root, os: None }, &mut inv);
        assert_eq!(inv.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec!["musl", "libcrypto3"]);
        assert_eq!(inv.packages[0].purl, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
        let w: Vec<_> = inv.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(w, vec!["/lib/apk/db/installed:45", "/lib/apk/db/installed:44"]);
        assert!(inv.is_partial());
    }
}
