//! rpm cataloger: reads the rpm database (Berkeley DB, ndb or sqlite; see `kensa-rpmdb`) from the
//! target's files, without running rpm.
//!
//! Where the database is: rpm's `%_dbpath` is `/var/lib/rpm` on most distributions; Fedora >= 36
//! and openSUSE moved it to `/usr/lib/sysimage/rpm` and left `/var/lib/rpm` as a symlink to it,
//! which [`kensa_fs::Root`] resolves inside the target. So `/var/lib/rpm` is tried first (a real
//! directory there is the live database of a distribution that never moved) and then
//! `/usr/lib/sysimage/rpm`, then `/usr/share/rpm`. In a directory, the newest format present wins (sqlite, then ndb, then
//! Berkeley DB, which is what an rpm that converted its database leaves behind); the format is then
//! detected from the file's content, not its name. Empty files are skipped.

use std::path::{Path, PathBuf};

use kensa_fs::Root;
use kensa_rpmdb::{DbError, PackageDb, RpmPackage};

use crate::model::{Inventory, Location, OsInfo, Package, PackageType, Warning};
use crate::purl::Purl;
use crate::CatalogContext;

const CATALOGER: &str = "rpm";

/// Database directories, in the order they are tried (`/usr/share/rpm`: rpm-ostree systems such as
/// Fedora CoreOS keep the database there, as Syft also looks).
pub const DB_DIRS: &[&str] = &["/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm"];
/// Database file names in one directory, newest format first.
pub const DB_FILES: &[&str] = &["rpmdb.sqlite", "Packages.db", "Packages"];

/// The rpm database of a target (its path with symlinks resolved), or `None` when there is none.
pub fn find_database(root: &Root) -> Option<PathBuf> {
    for dir in DB_DIRS {
        for file in DB_FILES {
            let path = Path::new(dir).join(file);
            if let Ok(md) = root.metadata(&path) {
                if md.is_file() && md.size > 0 {
                    return Some(root.canonicalize(&path).unwrap_or(path));
                }
            }
        }
    }
    None
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
    let mut wal = match root.metadata(&wal_path) {
        Ok(md) if md.is_file() && md.size > 0 => Some(root.open(&wal_path).map_err(|e| e.to_string())?),
        _ => None,
    };
    PackageDb::open(Box::new(file), wal.as_mut().map(|w| w as &mut dyn std::io::Read)).map_err(|e: DbError| e.to_string())
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
