//! Which OS package owns a language package's files.
//!
//! Debian ships `python3-requests` (whose `requests-2.28.1.egg-info/PKG-INFO` dpkg lists), Red Hat
//! ships `log4j.jar` in an rpm, and so on. Such a language package is marked `owned_by` its OS
//! package so the matcher can report the OS package's advisory instead of a second, often wrong,
//! upstream finding. A language package is owned when its metadata file (for a nested archive: the
//! outer file on disk) or any file it says it installed is listed by an OS package.
//!
//! The OS file lists are indexed once (path -> owner). OS databases record paths as installed,
//! which on merged-/usr systems may go through a top-level symlink (`/lib/...` for `/usr/lib/...`);
//! catalogers report canonical paths, so index keys are rewritten through the root's top-level
//! directory symlinks.

use std::collections::HashMap;

use kensa_fs::{FileType, Root};

use crate::{Inventory, Owner, Package};

/// Path -> index of the owning OS package.
pub struct OwnershipIndex {
    by_path: HashMap<String, usize>,
    owners: Vec<Owner>,
}

impl OwnershipIndex {
    /// Indexes the files of every OS package in `packages`; `aliases` maps a top-level symlinked
    /// directory (`/lib`) to its canonical target (`/usr/lib`).
    pub fn new(packages: &[Package], aliases: &[(String, String)]) -> Self {
        let mut by_path = HashMap::new();
        let mut owners = Vec::new();
        for p in packages.iter().filter(|p| p.package_type.is_os() && !p.files.is_empty()) {
            let idx = owners.len();
            owners.push(Owner { package_type: p.package_type, name: p.name.clone(), version: p.version.clone() });
            for f in &p.files {
                by_path.entry(canonical_key(f, aliases)).or_insert(idx);
            }
        }
        OwnershipIndex { by_path, owners }
    }

    /// The OS package owning `path`, if any.
    pub fn owner_of(&self, path: &str) -> Option<&Owner> {
        let path = path.split('!').next().unwrap_or(path);
        self.by_path.get(path).map(|&i| &self.owners[i])
    }

    /// The owner of a language package: its location, else the first owned installed file.
    pub fn owner_of_package(&self, p: &Package) -> Option<&Owner> {
        p.locations.iter().find_map(|l| self.owner_of(&l.path)).or_else(|| p.files.iter().find_map(|f| self.owner_of(f)))
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

fn canonical_key(path: &str, aliases: &[(String, String)]) -> String {
    let trimmed = path.trim_end_matches('/');
    for (from, to) in aliases {
        if let Some(rest) = trimmed.strip_prefix(from.as_str()) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{to}{rest}");
            }
        }
    }
    trimmed.to_string()
}

/// Top-level directory symlinks of the root (`/lib -> usr/lib` on merged-/usr systems).
pub fn top_level_aliases(root: &Root) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(entries) = root.read_dir("/") {
        for e in entries {
            if e.file_type != FileType::Symlink {
                continue;
            }
            let from = format!("/{}", e.name.to_string_lossy());
            if let Ok(to) = root.canonicalize(&from) {
                if root.is_dir(&to) {
                    out.push((from, to.to_string_lossy().into_owned()));
                }
            }
        }
    }
    out
}

/// Marks every language package of `inv` whose files an OS package of `inv` owns.
pub fn mark_owned(root: &Root, inv: &mut Inventory) {
    let index = OwnershipIndex::new(&inv.packages, &top_level_aliases(root));
    if index.is_empty() {
        return;
    }
    let owners: Vec<Option<Owner>> = inv.packages.iter().map(|p| if p.package_type.is_os() { None } else { index.owner_of_package(p).cloned() }).collect();
    for (p, o) in inv.packages.iter_mut().zip(owners) {
        if o.is_some() {
            p.owned_by = o;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Location, PackageType};

    #[test]
    fn owner_by_location_file_or_alias() {
        let mut deb = Package::new(PackageType::Deb, "python3-requests", "2.28.1+dfsg-1", "pkg:deb/debian/python3-requests");
        deb.files = vec!["/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO".into(), "/lib/app/x.jar".into()];
        let mut py = Package::new(PackageType::Pypi, "requests", "2.28.1", "pkg:pypi/requests@2.28.1");
        py.locations.push(Location { path: "/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO".into() });
        let mut jar = Package::new(PackageType::Maven, "a:b", "1", "pkg:maven/a/b@1");
        jar.locations.push(Location { path: "/usr/lib/app/x.jar!lib/inner.jar".into() });
        let mut free = Package::new(PackageType::Pypi, "six", "1", "pkg:pypi/six@1");
        free.locations.push(Location { path: "/usr/local/lib/six.dist-info/METADATA".into() });
        free.files.push("/usr/lib/other.py".into());
        let idx = OwnershipIndex::new(&[deb], &[("/lib".into(), "/usr/lib".into())]);
        assert_eq!(idx.owner_of_package(&py).unwrap().name, "python3-requests");
        assert_eq!(idx.owner_of_package(&jar).unwrap().name, "python3-requests");
        assert!(idx.owner_of_package(&free).is_none());
    }
}
