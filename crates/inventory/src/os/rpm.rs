//! rpm cataloger: reads the rpm database (Berkeley DB, ndb or sqlite; see `kensa-rpmdb`) from the
//! target's files, without running rpm.
//!
//! Where the database is: rpm's `%_dbpath` is `/var/lib/rpm` on most distributions; Fedora >= 36
//! and openSUSE moved it to `/usr/lib/sysimage/rpm` and left `/var/lib/rpm` as a symlink to it,
//! which [`kensa_fs::Root`] resolves inside the target; rpm-ostree systems keep it in
//! `/usr/share/rpm`. The directory that holds a database is used; when several do, the target's own
//! `%_dbpath` (from its rpm macro files) decides, else the order of [`DB_DIRS`]. In that directory
//! the file of the target's `%_db_backend` is used when present — rpm itself falls back to
//! whichever database exists — else the newest format (sqlite, ndb, Berkeley DB). The format is
//! then detected from the file's content, not its name. Empty files are skipped.

use std::path::{Path, PathBuf};

use kensa_fs::Root;
use kensa_rpmdb::{DbError, PackageDb, RpmPackage};

use crate::model::{Inventory, Location, OsInfo, Package, PackageType, Warning};
use crate::purl::Purl;
use crate::CatalogContext;

const CATALOGER: &str = "rpm";

/// Database directories, in the order they are tried.
pub const DB_DIRS: &[&str] = &["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"];
/// Database file names in one directory, newest format first.
pub const DB_FILES: &[&str] = &["rpmdb.sqlite", "Packages.db", "Packages"];

/// rpm macro files that may set `%_dbpath` / `%_db_backend`, in rpm's load order (later wins).
const MACRO_FILES: &[&str] = &["/usr/lib/rpm/macros", "/usr/lib/rpm/macros.d", "/etc/rpm"];

/// The rpm database of a target (its path with symlinks resolved), or `None` when there is none.
pub fn find_database(root: &Root) -> Option<PathBuf> {
    // Every non-empty database file, grouped by its real directory.
    let mut dirs: Vec<(PathBuf, Vec<(&str, PathBuf)>)> = Vec::new();
    for dir in DB_DIRS {
        let Ok(real_dir) = root.canonicalize(dir) else { continue };
        if dirs.iter().any(|(d, _)| *d == real_dir) {
            continue;
        }
        let files: Vec<(&str, PathBuf)> = DB_FILES
            .iter()
            .map(|f| (*f, real_dir.join(f)))
            .filter(|(_, p)| root.metadata(p).map(|md| md.is_file() && md.size > 0).unwrap_or(false))
            .collect();
        if !files.is_empty() {
            dirs.push((real_dir, files));
        }
    }
    if dirs.is_empty() {
        return None;
    }
    let (dbpath, backend) = configured_db(root);
    let configured_dir = dbpath.and_then(|p| root.canonicalize(p).ok());
    let (_, files) = dirs.iter().find(|(d, _)| Some(d) == configured_dir.as_ref()).unwrap_or(&dirs[0]);
    let wanted_file = match backend.as_deref() {
        Some("sqlite") => Some("rpmdb.sqlite"),
        Some("ndb") => Some("Packages.db"),
        Some("bdb" | "bdb_ro") => Some("Packages"),
        _ => None,
    };
    let (_, path) = files.iter().find(|(f, _)| Some(*f) == wanted_file).unwrap_or(&files[0]);
    Some(root.canonicalize(path).unwrap_or_else(|_| path.clone()))
}

/// `%_dbpath` and `%_db_backend` as the target's rpm macro files set them (the last definition
/// wins). Values using macros other than the standard directory ones are ignored.
fn configured_db(root: &Root) -> (Option<String>, Option<String>) {
    let mut files = Vec::new();
    for base in MACRO_FILES {
        match root.read_dir(base) {
            // /usr/lib/rpm/macros.d/macros.*, /etc/rpm/macros.* then /etc/rpm/macros
            Ok(entries) => {
                let mut names: Vec<String> = entries.iter().map(|e| e.name.to_string_lossy().into_owned()).filter(|n| n.starts_with("macros.")).collect();
                names.sort();
                files.extend(names.into_iter().map(|n| format!("{base}/{n}")));
                if *base == "/etc/rpm" {
                    files.push("/etc/rpm/macros".to_string());
                }
            }
            Err(_) => files.push(base.to_string()),
        }
    }
    let (mut dbpath, mut backend) = (None, None);
    for file in files {
        let Ok(text) = root.read_limited(&file, 1 << 20) else { continue };
        for line in String::from_utf8_lossy(&text).lines() {
            let mut words = line.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else { continue };
            let value = expand_dir_macros(value);
            match (name, value) {
                ("%_dbpath", Some(v)) => dbpath = Some(v),
                ("%_db_backend", Some(v)) => backend = Some(v),
                _ => {}
            }
        }
    }
    (dbpath, backend)
}

/// Expands the directory macros `%_dbpath` definitions use; `None` when others remain.
fn expand_dir_macros(value: &str) -> Option<String> {
    let mut v = value.to_string();
    for (m, dir) in [("%{_var}", "/var"), ("%{_localstatedir}", "/var"), ("%{_usr}", "/usr"), ("%{_prefix}", "/usr")] {
        v = v.replace(m, dir);
    }
    (!v.contains('%')).then_some(v)
}

/// Catalogs the rpm database of `ctx.root`, if it has one. An unreadable database or record is a
/// warning (`partial` when packages may be missing); `gpg-pubkey` entries are not packages.
pub fn catalog(ctx: &CatalogContext, inv: &mut Inventory) {
    let Some(db_path) = find_database(ctx.root) else { return };
    let path_str = db_path.to_string_lossy().into_owned();
    let warn = |inv: &mut Inventory, message: String, partial: bool| {
        inv.warnings.push(Warning { cataloger: CATALOGER.into(), path: path_str.clone(), message, partial });
    };
    let db = match open(ctx.root, &db_path) {
        Ok(db) => db,
        Err(e) => return warn(inv, format!("cannot read the rpm database: {e}"), true),
    };
    let backend = db.backend();
    let mut unreadable = 0usize;
    for record in db.packages() {
        let (_, pkg) = match record {
            Ok(r) => r,
            Err(e) => {
                unreadable += 1;
                if unreadable <= MAX_RECORD_WARNINGS {
                    warn(inv, format!("{} rpm database: {e}; that package is missing from the results", backend.as_str()), true);
                }
                continue;
            }
        };
        if pkg.is_gpg_pubkey() {
            continue;
        }
        if let Some(e) = &pkg.files_error {
            warn(inv, format!("package {}: its file list is unreadable ({e}); the package is listed without files", pkg.name), false);
        }
        inv.packages.push(to_package(pkg, ctx.os, &path_str));
    }
    if unreadable > MAX_RECORD_WARNINGS {
        let more = unreadable - MAX_RECORD_WARNINGS;
        warn(inv, format!("{more} more unreadable records in the {} rpm database ({unreadable} in all)", backend.as_str()), true);
    }
}

/// A badly damaged database would otherwise produce one warning per record.
const MAX_RECORD_WARNINGS: usize = 10;

fn open(root: &Root, db_path: &Path) -> Result<PackageDb, String> {
    let file = root.open(db_path).map_err(|e| e.to_string())?;
    let mut wal_path = db_path.as_os_str().to_owned();
    wal_path.push("-wal");
    let wal = match root.metadata(&wal_path) {
        Ok(md) if md.is_file() && md.size > 0 => Some(Box::new(root.open(&wal_path).map_err(|e| e.to_string())?) as Box<dyn kensa_rpmdb::ReadSeek>),
        _ => None,
    };
    PackageDb::open(Box::new(file), wal).map_err(|e: DbError| e.to_string())
}

/// The purl namespace for a distribution: its os-release ID, except Red Hat's (`rhel` -> `redhat`),
/// as Syft and Red Hat's own SBOMs write it.
pub fn purl_namespace(os: &OsInfo) -> String {
    match os.id.as_str() {
        "rhel" => "redhat".to_string(),
        id => id.to_string(),
    }
}

/// The source package name from a source rpm file name: `glibc-2.34-2.cm2.src.rpm` -> `glibc`.
pub fn source_name(source_rpm: &str) -> Option<String> {
    let stem = source_rpm.strip_suffix(".src.rpm").or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))?;
    let (name_version, _release) = stem.rsplit_once('-')?;
    let (name, _version) = name_version.rsplit_once('-')?;
    (!name.is_empty()).then(|| name.to_string())
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Builds the inventory package and its purl
/// (`pkg:rpm/<ns>/<name>@<version>-<release>?arch=..&epoch=..&distro=<id>-<version_id>`).
pub fn to_package(p: RpmPackage, os: Option<&OsInfo>, db_path: &str) -> Package {
    let epoch = p.epoch.filter(|&e| e > 0);
    let vr = format!("{}-{}", p.version, p.release);
    let version = match epoch {
        Some(e) => format!("{e}:{vr}"),
        None => vr.clone(),
    };
    let mut purl = Purl::new("rpm", &p.name).version(vr).qualifier("arch", p.arch.clone());
    if let Some(e) = epoch {
        purl = purl.qualifier("epoch", e.to_string());
    }
    if let Some(os) = os {
        let distro = if os.version_id.is_empty() { os.id.clone() } else { format!("{}-{}", os.id, os.version_id) };
        purl = purl.namespace(purl_namespace(os)).qualifier("distro", distro);
    }
    let mut pkg = Package::new(PackageType::Rpm, p.name, version, purl.to_string());
    pkg.epoch = p.epoch;
    pkg.release = Some(p.release);
    pkg.arch = non_empty(p.arch);
    pkg.source_name = source_name(&p.source_rpm);
    pkg.source_rpm = non_empty(p.source_rpm);
    pkg.vendor = non_empty(p.vendor);
    pkg.license = non_empty(p.license);
    pkg.size = p.size;
    pkg.install_time = p.install_time;
    pkg.modularity_label = non_empty(p.modularity_label);
    pkg.locations = vec![Location { path: db_path.to_string() }];
    pkg.files = p.files;
    pkg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names() {
        assert_eq!(source_name("glibc-2.34-2.cm2.src.rpm").as_deref(), Some("glibc"));
        assert_eq!(source_name("python3-pip-21.3.1-2.fc35.src.rpm").as_deref(), Some("python3-pip"));
        assert_eq!(source_name("kernel-5.14.0-1.nosrc.rpm").as_deref(), Some("kernel"));
        assert_eq!(source_name(""), None);
        assert_eq!(source_name("weird.src.rpm"), None);
    }

    #[test]
    fn purls_follow_syft() {
        let os = OsInfo { id: "rhel".into(), version_id: "8.6".into(), ..Default::default() };
        let p = RpmPackage {
            name: "openssl".into(),
            epoch: Some(1),
            version: "1.1.1k".into(),
            release: "7.el8_6".into(),
            arch: "x86_64".into(),
            source_rpm: "openssl-1.1.1k-7.el8_6.src.rpm".into(),
            ..Default::default()
        };
        let pkg = to_package(p.clone(), Some(&os), "/var/lib/rpm/Packages");
        assert_eq!(pkg.purl, "pkg:rpm/redhat/openssl@1.1.1k-7.el8_6?arch=x86_64&distro=rhel-8.6&epoch=1");
        assert_eq!(pkg.version, "1:1.1.1k-7.el8_6");
        assert_eq!(pkg.source_name.as_deref(), Some("openssl"));
        let zero = RpmPackage { epoch: Some(0), ..p };
        let os = OsInfo { id: "rocky".into(), version_id: "9.3".into(), ..Default::default() };
        let pkg = to_package(zero, Some(&os), "/var/lib/rpm/rpmdb.sqlite");
        assert_eq!(pkg.purl, "pkg:rpm/rocky/openssl@1.1.1k-7.el8_6?arch=x86_64&distro=rocky-9.3");
        assert_eq!(pkg.version, "1.1.1k-7.el8_6");
        assert_eq!(pkg.epoch, Some(0));
    }
}
