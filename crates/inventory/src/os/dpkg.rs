//! Debian packages from dpkg's own database: `/var/lib/dpkg/status` and, in distroless images
//! (which have no dpkg), one status paragraph per package in `/var/lib/dpkg/status.d/`.
//!
//! Which packages count: every paragraph `dpkg-query -W` lists (all but `not-installed`), except
//! `config-files` ones: a removed package whose configuration files remain has no code on disk
//! left to be vulnerable. Half-installed, unpacked, half-configured and triggers-* packages do
//! have their files on disk, and a `deinstall ok installed` package (selected for removal, not yet
//! removed) is still installed: all of those are listed. (Trivy drops the latter; dpkg does not.)

use std::path::Path;

use kensa_fs::Root;

use crate::model::{Inventory, Location, Package, PackageType, Warning};
use crate::purl::Purl;
use crate::CatalogContext;

pub const STATUS_FILE: &str = "/var/lib/dpkg/status";
pub const STATUS_DIR: &str = "/var/lib/dpkg/status.d";
pub const INFO_DIR: &str = "/var/lib/dpkg/info";

/// Biggest status file accepted (Debian's largest real ones are a few MiB).
const STATUS_LIMIT: u64 = 128 << 20;
/// Biggest `.list`/`.md5sums` file accepted.
const LIST_LIMIT: u64 = 64 << 20;

const CATALOGER: &str = "dpkg";

/// One status paragraph, as far as kensa uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusEntry {
    pub package: String,
    pub status: String,
    pub version: String,
    pub architecture: String,
    /// `Source:` name, when present.
    pub source: Option<String>,
    /// `Source: name (version)`'s version, when present.
    pub source_version: Option<String>,
    pub maintainer: Option<String>,
    /// `Installed-Size:` in KiB.
    pub installed_size_kib: Option<u64>,
    /// Line of the paragraph's first field (1-based), for messages.
    pub line: usize,
}

impl StatusEntry {
    /// The third word of `Status:` (`installed`, `config-files`, ...).
    pub fn state(&self) -> &str {
        self.status.split_whitespace().nth(2).unwrap_or("")
    }

    /// Whether the package's files are (at least partly) on disk; see the module docs.
    pub fn is_present(&self) -> bool {
        matches!(self.state(), "installed" | "half-installed" | "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending")
    }
}

/// A problem in a status file: what and on which line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseProblem {
    pub line: usize,
    pub message: String,
}

/// Parses dpkg status paragraphs (RFC-822-like: `Field: value`, continuation lines start with a
/// space or tab, paragraphs separated by blank lines). Malformed paragraphs are skipped and
/// reported; the rest is still returned.
pub fn parse_status(text: &str) -> (Vec<StatusEntry>, Vec<ParseProblem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut cur = StatusEntry::default();
    let mut in_para = false;
    let mut bad = false;
    let finish = |cur: &mut StatusEntry, in_para: &mut bool, bad: &mut bool, entries: &mut Vec<StatusEntry>, problems: &mut Vec<ParseProblem>| {
        if *in_para && !*bad {
            if cur.package.is_empty() {
                problems.push(ParseProblem { line: cur.line, message: "paragraph without a Package field".into() });
            } else if cur.status.is_empty() {
                problems.push(ParseProblem { line: cur.line, message: format!("package {} has no Status field", cur.package) });
            } else {
                entries.push(std::mem::take(cur));
            }
        }
        *cur = StatusEntry::default();
        *in_para = false;
        *bad = false;
    };
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            finish(&mut cur, &mut in_para, &mut bad, &mut entries, &mut problems);
            continue;
        }
        if !in_para {
            in_para = true;
            cur.line = lineno;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if cur.line == lineno && !bad {
                problems.push(ParseProblem { line: lineno, message: "continuation line without a field".into() });
                bad = true;
            }
            continue; // continuation of Description, Conffiles, ...: not used
        }
        let Some((field, value)) = line.split_once(':') else {
            if !bad {
                problems.push(ParseProblem { line: lineno, message: format!("malformed line (no `Field:`): {:?}", truncate(line, 60)) });
                bad = true;
            }
            continue;
        };
        let value = value.trim();
        match field {
            "Package" => cur.package = value.to_string(),
            "Status" => cur.status = value.to_string(),
            "Version" => cur.version = value.to_string(),
            "Architecture" => cur.architecture = value.to_string(),
            "Maintainer" => cur.maintainer = Some(value.to_string()),
            "Installed-Size" => cur.installed_size_kib = value.parse().ok(),
            "Source" => {
                // `Source: glibc (2.36-9+deb12u4)` or `Source: glibc`.
                match value.split_once('(') {
                    Some((name, rest)) => {
                        cur.source = Some(name.trim().to_string());
                        cur.source_version = Some(rest.trim_end().trim_end_matches(')').trim().to_string()).filter(|v| !v.is_empty());
                    }
                    None => cur.source = Some(value.to_string()).filter(|v| !v.is_empty()),
                }
            }
            _ => {}
        }
    }
    finish(&mut cur, &mut in_para, &mut bad, &mut entries, &mut problems);
    (entries, problems)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Catalogs dpkg packages into `inv`.
pub fn catalog(ctx: &CatalogContext, inv: &mut Inventory) {
    let root = ctx.root;
    match root.read_limited(STATUS_FILE, STATUS_LIMIT) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            catalog_text(ctx, inv, &text, STATUS_FILE, false);
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: STATUS_FILE.into(), message: format!("cannot read the dpkg database: {e}"), partial: true });
        }
    }
    // Distroless: one file per package, plus `<name>.md5sums` listing its files.
    match root.read_dir(STATUS_DIR) {
        Ok(entries) => {
            for entry in entries {
                let name = entry.name.to_string_lossy().into_owned();
                if name.ends_with(".md5sums") || name.starts_with('.') {
                    continue;
                }
                let path = format!("{STATUS_DIR}/{name}");
                match root.read_limited(&path, STATUS_LIMIT) {
                    Ok(bytes) => {
                                    catalog_text(ctx, inv, &String::from_utf8_lossy(&bytes), &path, true);
                    }
                    Err(e) => {
                        // A directory or special file in status.d is not a database file.
                        if root.is_file(&path) {
                            inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: path.clone(), message: format!("cannot read: {e}"), partial: true });
                        }
                    }
                }
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: STATUS_DIR.into(), message: format!("cannot list: {e}"), partial: true }),
    }
}

fn catalog_text(ctx: &CatalogContext, inv: &mut Inventory, text: &str, path: &str, distroless: bool) {
    let (entries, problems) = parse_status(text);
    for p in problems {
        inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: format!("{path}:{}", p.line), message: format!("{} (that package is left out)", p.message), partial: true });
    }
    for entry in entries {
        if !entry.is_present() {
            continue;
        }
        if entry.version.is_empty() {
            inv.warnings.push(Warning {
                cataloger: CATALOGER.into(),
                path: format!("{path}:{}", entry.line),
                message: format!("installed package {} has no Version field (left out)", entry.package),
                partial: true,
            });
            continue;
        }
        let mut pkg = to_package(ctx, &entry, path);
        let (files, list_path) = if distroless { read_md5sums(ctx.root, &format!("{STATUS_DIR}/{}.md5sums", entry.package), inv) } else { read_file_list(ctx.root, &entry, inv) };
        pkg.files = files;
        pkg.license = read_copyright_licenses(ctx.root, &entry.package);
        if let Some(lp) = list_path {
            pkg.locations.push(Location { path: lp });
        }
        inv.packages.push(pkg);
    }
}

/// Builds the package (purl included) from one status entry.
pub fn to_package(ctx: &CatalogContext, e: &StatusEntry, status_path: &str) -> Package {
    // Ubuntu and its derivatives use Ubuntu's archive; everything else dpkg-based, Debian's.
    let is_ubuntu = ctx.os.is_some_and(|o| o.id == "ubuntu" || o.id_like.iter().any(|l| l == "ubuntu"));
    let namespace = if is_ubuntu { "ubuntu" } else { "debian" };
    let mut purl = Purl::new("deb", &e.package).namespace(namespace).version(&e.version).qualifier("arch", &e.architecture);
    if let Some(src) = &e.source {
        let upstream = match &e.source_version {
            Some(sv) if *sv != e.version => format!("{src}@{sv}"),
            _ if *src != e.package => src.clone(),
            _ => String::new(),
        };
        purl = purl.qualifier("upstream", upstream);
    }
    if let Some(os) = ctx.os {
        if !os.version_id.is_empty() {
            purl = purl.qualifier("distro", format!("{}-{}", os.id, os.version_id));
        }
    }
    let (epoch, release) = split_deb_version(&e.version);
    let mut pkg = Package::new(PackageType::Deb, &e.package, &e.version, purl.to_string());
    pkg.epoch = epoch;
    pkg.release = release;
    pkg.arch = Some(e.architecture.clone()).filter(|a| !a.is_empty());
    // Like `${source:Package}`: the package's own name when there is no Source field.
    pkg.source_name = Some(e.source.clone().unwrap_or_else(|| e.package.clone()));
    pkg.source_version = e.source_version.clone().filter(|v| *v != e.version);
    pkg.vendor = e.maintainer.clone();
    pkg.size = e.installed_size_kib.map(|k| k * 1024);
    pkg.locations.push(Location { path: status_path.to_string() });
    pkg
}

/// The licenses named in `/usr/share/doc/NAME/copyright` (dpkg keeps none in its database):
/// machine-readable `License:` fields and references to `/usr/share/common-licenses/X`, sorted,
/// de-duplicated and joined with ` AND ` (each applies to some of the package's files).
/// A missing or unreadable file gives `None`: licenses are informational, not inventory.
fn read_copyright_licenses(root: &Root, package: &str) -> Option<String> {
    let bytes = root.read_limited(format!("/usr/share/doc/{package}/copyright"), COPYRIGHT_LIMIT).ok()?;
    let licenses = parse_copyright_licenses(&String::from_utf8_lossy(&bytes));
    if licenses.is_empty() {
        return None;
    }
    let parts: Vec<String> = licenses.into_iter().map(|l| if l.contains(' ') { format!("({l})") } else { l }).collect();
    Some(parts.join(" AND "))
}

/// Biggest copyright file read (the largest in Debian are a few hundred KiB).
const COPYRIGHT_LIMIT: u64 = 4 << 20;

pub fn parse_copyright_licenses(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:") {
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            if !v.is_empty() {
                out.insert(v);
            }
        }
        let mut rest = line;
        while let Some(i) = rest.find("/usr/share/common-licenses/") {
            rest = &rest[i + "/usr/share/common-licenses/".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')).collect();
            let name = name.trim_end_matches('.');
            if !name.is_empty() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// `1:2.36-9+deb12u4` -> (Some(1), Some("9+deb12u4")).
fn split_deb_version(v: &str) -> (Option<u32>, Option<String>) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.bytes().all(|b| b.is_ascii_digit()) && !e.is_empty() => (e.parse().ok(), r),
        _ => (None, v),
    };
    (epoch, rest.rsplit_once('-').map(|(_, r)| r.to_string()))
}

/// Files from `info/<pkg>:<arch>.list` (multi-arch `same` packages) or `info/<pkg>.list`.
fn read_file_list(root: &Root, e: &StatusEntry, inv: &mut Inventory) -> (Vec<String>, Option<String>) {
    let candidates = [format!("{INFO_DIR}/{}:{}.list", e.package, e.architecture), format!("{INFO_DIR}/{}.list", e.package)];
    for path in candidates {
        match root.read_limited(&path, LIST_LIMIT) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let files = text.lines().map(str::trim_end).filter(|l| !l.is_empty() && *l != "/." && *l != "/").map(str::to_string).collect();
                return (files, Some(path));
            }
            Err(err) if err.is_not_found() => continue,
            Err(err) => {
                inv.warnings.push(Warning { cataloger: CATALOGER.into(), path, message: format!("cannot read the file list of {}: {err}", e.package), partial: false });
                return (Vec::new(), None);
            }
        }
    }
    (Vec::new(), None)
}

/// Files from a distroless `<pkg>.md5sums` (`<md5>  <path relative to />` lines).
fn read_md5sums(root: &Root, path: &str, inv: &mut Inventory) -> (Vec<String>, Option<String>) {
    match root.read_limited(path, LIST_LIMIT) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let files = text
                .lines()
                .filter_map(|l| l.split_once(char::is_whitespace).map(|(_, p)| p.trim()))
                .filter(|p| !p.is_empty())
                .map(|p| Path::new("/").join(p).to_string_lossy().into_owned())
                .collect();
            (files, Some(path.to_string()))
        }
        Err(err) if err.is_not_found() => (Vec::new(), None),
        Err(err) => {
            inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: path.into(), message: format!("cannot read: {err}"), partial: false });
            (Vec::new(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OsInfo;

    const STATUS: &str = "Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12988
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: openssl (3.0.15-1~deb12u1)
Version: 3.0.15-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Description: GCC support library

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/gone.conf 0123456789abcdef0123456789abcdef

Package: purged
Status: purge ok not-installed
Architecture: amd64

Package: tzdata
Status: deinstall ok installed
Architecture: all
Version: 2024a-0+deb12u1
";

    fn debian() -> OsInfo {
        OsInfo { id: "debian".into(), version_id: "12".into(), ..Default::default() }
    }

    #[test]
    fn parses_paragraphs_and_states() {
        let (entries, problems) = parse_status(STATUS);
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<_> = entries.iter().map(|e| (e.package.as_str(), e.is_present())).collect();
        assert_eq!(names, vec![("libc6", true), ("libssl3", true), ("libgcc-s1", true), ("gone", false), ("purged", false), ("tzdata", true)]);
        assert_eq!(entries[1].source.as_deref(), Some("openssl"));
        assert_eq!(entries[1].source_version.as_deref(), Some("3.0.15-1~deb12u1"));
        assert_eq!(entries[0].installed_size_kib, Some(12988));
    }

    #[test]
    fn purls_like_syft() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::dir(dir.path()).unwrap();
        let os = debian();
        let ctx = CatalogContext { root: &root, os: Some(&os) };
        let (entries, _) = parse_status(STATUS);
        let purls: Vec<String> = entries.iter().filter(|e| e.is_present()).map(|e| to_package(&ctx, e, STATUS_FILE).purl).collect();
        assert_eq!(
            purls,
            vec![
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
                "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
                "pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12",
                "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
            ]
        );
        let p = to_package(&ctx, &entries[0], STATUS_FILE);
        assert_eq!((p.source_name.as_deref(), p.release.as_deref(), p.size), (Some("glibc"), Some("9+deb12u4"), Some(12988 * 1024)));
        // A binNMU: source version differs from the binary's.
        let (e, _) = parse_status("Package: libx\nStatus: install ok installed\nArchitecture: arm64\nSource: x (1:2.0-1)\nVersion: 1:2.0-1+b1\n");
        let p = to_package(&ctx, &e[0], STATUS_FILE);
        assert_eq!(p.purl, "pkg:deb/debian/libx@1:2.0-1%2Bb1?arch=arm64&distro=debian-12&upstream=x%401:2.0-1");
        assert_eq!((p.epoch, p.source_version.as_deref()), (Some(1), Some("1:2.0-1")));
    }

    #[test]
    fn malformed_paragraphs_are_reported_and_skipped() {
        let text = "Package: ok\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\nPackage: broken\n\u{1}\u{2}garbage without colon\nStatus: install ok installed\nVersion: 2\n\n continuation first\nPackage: x\n\nVersion: 3\nStatus: install ok installed\n";
        let (entries, problems) = parse_status(text);
        assert_eq!(entries.iter().map(|e| e.package.as_str()).collect::<Vec<_>>(), vec!["ok"]);
        assert_eq!(problems.iter().map(|p| p.line).collect::<Vec<_>>(), vec![7, 11, 14]);
    }

    #[test]
    fn catalogs_status_lists_and_distroless() {
        let dir = tempfile::tempdir().unwrap();
        let dpkg = dir.path().join("var/lib/dpkg");
        std::fs::create_dir_all(dpkg.join("info")).unwrap();
        std::fs::create_dir_all(dpkg.join("status.d")).unwrap();
        std::fs::write(dpkg.join("status"), STATUS).unwrap();
        std::fs::write(dpkg.join("info/libc6:amd64.list"), "/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n").unwrap();
        std::fs::write(dpkg.join("info/tzdata.list"), "/.\n/usr/share/zoneinfo/UTC\n").unwrap();
        std::fs::write(dpkg.join("status.d/base-files"), "Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n").unwrap();
        std::fs::write(dpkg.join("status.d/base-files.md5sums"), "d41d8cd98f00b204e9800998ecf8427e  etc/debian_version\n").unwrap();
        let root = Root::dir(dir.path()).unwrap();
        let os = debian();
        let mut inv = Inventory::default();
        catalog(&CatalogContext { root: &root, os: Some(&os) }, &mut inv);
        assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
        let got: Vec<_> = inv.packages.iter().map(|p| (p.name.as_str(), p.files.clone(), p.locations.iter().map(|l| l.path.as_str()).collect::<Vec<_>>())).collect();
        assert_eq!(got[0], ("libc6", vec!["/lib".to_string(), "/lib/x86_64-linux-gnu/libc.so.6".into()], vec![STATUS_FILE, "/var/lib/dpkg/info/libc6:amd64.list"]));
        assert_eq!(got[3], ("tzdata", vec!["/usr/share/zoneinfo/UTC".to_string()], vec![STATUS_FILE, "/var/lib/dpkg/info/tzdata.list"]));
        assert_eq!(got[4], ("base-files", vec!["/etc/debian_version".to_string()], vec!["/var/lib/dpkg/status.d/base-files", "/var/lib/dpkg/status.d/base-files.md5sums"]));
        assert_eq!(inv.packages.len(), 5);
    }

    #[test]
    fn licenses_from_copyright_files() {
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nFiles: *\nLicense: GPL-2+\n\nFiles: lib/*\nLicense:   LGPL-2.1+ or  GPL-2+\n\nLicense: GPL-2+\n On Debian systems, see /usr/share/common-licenses/GPL-2.\n";
        let got: Vec<String> = parse_copyright_licenses(dep5).into_iter().collect();
        assert_eq!(got, vec!["GPL-2", "GPL-2+", "LGPL-2.1+ or GPL-2+"]);
        let old_style = "  General Public License can be found in `/usr/share/common-licenses/LGPL-2.1'.\n";
        assert_eq!(parse_copyright_licenses(old_style).into_iter().collect::<Vec<_>>(), vec!["LGPL-2.1"]);

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/share/doc/libc6")).unwrap();
        std::fs::write(dir.path().join("usr/share/doc/libc6/copyright"), dep5).unwrap();
        let root = Root::dir(dir.path()).unwrap();
        assert_eq!(read_copyright_licenses(&root, "libc6").as_deref(), Some("GPL-2 AND GPL-2+ AND (LGPL-2.1+ or GPL-2+)"));
        assert_eq!(read_copyright_licenses(&root, "missing"), None);
    }

    #[test]
    fn corrupt_status_is_partial() {
        let dir = tempfile::tempdir().unwrap();
        let dpkg = dir.path().join("var/lib/dpkg");
        std::fs::create_dir_all(&dpkg).unwrap();
        std::fs::write(dpkg.join("status"), b"Package: a\nStatus: install ok installed\nVersion: 1\n\n\xff\xfe\x00garbage\x00\n").unwrap();
        let root = Root::dir(dir.path()).unwrap();
        let mut inv = Inventory::default();
        catalog(&CatalogContext { root: &root, os: None }, &mut inv);
        assert_eq!(inv.packages.len(), 1);
        assert!(inv.is_partial());
        assert_eq!(inv.warnings[0].path, "/var/lib/dpkg/status:5");
        // No OS detected: the namespace defaults to debian and there is no distro qualifier.
        assert_eq!(inv.packages[0].purl, "pkg:deb/debian/a@1");
    }
}
