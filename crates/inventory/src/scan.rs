//! The scan entry point: detect the OS, run the catalogers, return one sorted [`Inventory`].

use kensa_fs::Root;

use crate::model::{Inventory, Package};
use crate::{os, os_release, CatalogContext};

/// What to catalog. Plain fields with a `Default` that scans everything kensa knows how to.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Name of the target shown in the output (`Inventory::target`); the source's own description
    /// when `None`.
    pub target_name: Option<String>,
    /// Skip the OS package databases (rpm, dpkg, apk).
    pub skip_os_packages: bool,
    /// Which paths language packages are looked for in (default: everywhere; `off` for none).
    pub deep_inspection: crate::lang::DeepInspection,
    /// Threads reading the target at once (0: one per core, at most [`MAX_THREADS`]). The result
    /// is the same for any number.
    pub threads: usize,
}

/// Most threads a scan uses by default: a few hide the latency of reading (and, in compressed
/// disk images, inflating) one file while another is parsed; each may hold an archive in memory.
pub const MAX_THREADS: usize = 4;

impl ScanOptions {
    fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS),
            n => n,
        }
    }
}

/// A cataloger: appends packages and warnings, never fails as a whole.
pub type Cataloger = fn(&CatalogContext, &mut Inventory);

/// The OS package catalogers, in the order they run.
pub const OS_CATALOGERS: &[(&str, Cataloger)] = &[("dpkg", os::dpkg::catalog), ("apk", os::apk::catalog), ("rpm", os::rpm::catalog)];

/// Scans `root`: OS detection, then every cataloger. Problems end up in `Inventory::warnings`
/// (with `partial` set when a whole database could not be read); the scan itself never fails.
pub fn scan(root: &Root, opts: &ScanOptions) -> Inventory {
    let mut inv = Inventory { target: opts.target_name.clone().unwrap_or_else(|| root.describe()), ..Default::default() };
    inv.os = os_release::detect(root, &mut inv.warnings);
    let os = inv.os.clone();
    let ctx = CatalogContext { root, os: os.as_ref() };
    let threads = opts.thread_count();
    let os_packages = || {
        let mut out = Inventory::default();
        if !opts.skip_os_packages {
            for (name, cataloger) in OS_CATALOGERS {
                let _span = tracing::debug_span!("cataloger", name).entered();
                cataloger(&ctx, &mut out);
            }
        }
        out
    };
    let deep_inspection = || {
        let _span = tracing::debug_span!("cataloger", name = "deep-inspection").entered();
        let mut out = Inventory::default();
        crate::lang::catalog_with_limits(&ctx, &opts.deep_inspection, &crate::lang::Limits::default(), threads, &mut out);
        out
    };
    // The package databases and the deep-inspection walk read different files: side by side.
    let (os_part, lang_part) = if threads > 1 {
        std::thread::scope(|s| {
            let os_thread = s.spawn(os_packages);
            let lang_part = deep_inspection();
            (os_thread.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), lang_part)
        })
    } else {
        (os_packages(), deep_inspection())
    };
    for part in [os_part, lang_part] {
        inv.packages.extend(part.packages);
        inv.warnings.extend(part.warnings);
    }
    crate::ownership::mark_owned(root, &mut inv);
    sort_packages(&mut inv.packages);
    inv
}

/// Sorts packages so output is the same on every run whatever order catalogers found them in.
pub fn sort_packages(packages: &mut [Package]) {
    packages.sort_by(|a, b| {
        (a.package_type, &a.name, &a.version, &a.arch, a.path(), &a.purl).cmp(&(b.package_type, &b.name, &b.version, &b.arch, b.path(), &b.purl))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_os_and_packages_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("etc")).unwrap();
        std::fs::create_dir_all(p.join("var/lib/dpkg")).unwrap();
        std::fs::write(p.join("etc/os-release"), "ID=ubuntu\nVERSION_ID=\"22.04\"\nVERSION_CODENAME=jammy\n").unwrap();
        std::fs::write(
            p.join("var/lib/dpkg/status"),
            "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.11.dfsg-2ubuntu9.2\nSource: zlib\n\n\
             Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.1-6ubuntu1.1\n",
        )
        .unwrap();
        let root = Root::dir(p).unwrap();
        let inv = scan(&root, &ScanOptions { target_name: Some("t".into()), ..Default::default() });
        assert_eq!(inv.target, "t");
        assert_eq!(inv.os.as_ref().map(|o| o.id.as_str()), Some("ubuntu"));
        let purls: Vec<_> = inv.packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(purls, vec!["pkg:deb/ubuntu/bash@5.1-6ubuntu1.1?arch=amd64&distro=ubuntu-22.04", "pkg:deb/ubuntu/zlib1g@1:1.2.11.dfsg-2ubuntu9.2?arch=amd64&distro=ubuntu-22.04&upstream=zlib"]);
        assert!(inv.warnings.is_empty());
        let none = scan(&root, &ScanOptions { skip_os_packages: true, ..Default::default() });
        assert!(none.packages.is_empty());
    }
}
