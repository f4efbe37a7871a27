//! Probes: collect OVAL items from a target read through [`kensa_fs::Root`].
//!
//! Every probe reads files only (no chroot, no execution), so the same code serves an offline
//! root filesystem and the live host. Where the live host and an offline tree differ (sysctl,
//! mounts, systemd state, uname), the probe reads the runtime view under the target's `/proc`
//! when the target has one and falls back to configuration files otherwise; docs/cis-offline.md
//! documents each case.

mod accounts;
mod files;
mod misc;
pub mod rpm;
mod systemd;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use kensa_fs::Root;

use crate::oval::{Collected, EntitySpec, Evaluator};
use crate::xml::Node;

pub use rpm::{RpmPackage, RpmSource};

/// What probes read: the target and lazily loaded package and account databases.
pub struct ProbeContext {
    pub root: Root,
    /// The target is the running host (runtime views like /proc are real).
    pub live: bool,
    rpm_source: Box<dyn RpmSource>,
    rpms: OnceCell<Result<Vec<RpmPackage>, String>>,
    rpm_files: OnceCell<Result<Vec<PackageFiles>, String>>,
}

/// An installed rpm and the files it owns.
type PackageFiles = (RpmPackage, Vec<rpm::RpmFile>);

impl ProbeContext {
    pub fn new(root: Root, live: bool) -> Self {
        ProbeContext { root, live, rpm_source: Box::new(rpm::KensaRpmDb), rpms: OnceCell::new(), rpm_files: OnceCell::new() }
    }

    /// Replaces the rpm database reader (e.g. by the kensa-rpmdb reader).
    pub fn with_rpm_source(mut self, src: Box<dyn RpmSource>) -> Self {
        self.rpm_source = src;
        self
    }

    pub fn rpm_packages(&self) -> Result<&[RpmPackage], String> {
        self.rpms.get_or_init(|| self.rpm_source.packages(&self.root)).as_ref().map(|v| v.as_slice()).map_err(|e| e.clone())
    }

    pub fn rpm_packages_with_files(&self) -> Result<&[(RpmPackage, Vec<rpm::RpmFile>)], String> {
        self.rpm_files.get_or_init(|| self.rpm_source.packages_with_files(&self.root)).as_ref().map(|v| v.as_slice()).map_err(|e| e.clone())
    }

    /// Reads a text file of the target (lossy UTF-8), `None` when it does not exist.
    pub fn read_text(&self, path: impl AsRef<Path>) -> Result<Option<String>, String> {
        match self.root.read_limited(path.as_ref(), 64 << 20) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Whether the target has a runtime `/proc` view (the live host, or a captured one).
    pub fn has_proc(&self, sub: &str) -> bool {
        self.root.exists(PathBuf::from("/proc").join(sub))
    }
}

/// Collects the items of one object by its element name.
pub fn collect<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Collected {
    let r = match obj.name {
        "family_object" => misc::family(ev, obj),
        "textfilecontent54_object" => files::textfilecontent54(ev, obj),
        "file_object" => files::file(ev, obj),
        "symlink_object" => files::symlink(ev, obj),
        "rpminfo_object" => rpm::rpminfo(ev, obj),
        "dpkginfo_object" => rpm::dpkginfo(ev, obj),
        "rpmverifyfile_object" => rpm::rpmverifyfile(ev, obj),
        "variable_object" => misc::variable(ev, obj),
        "sysctl_object" => misc::sysctl(ev, obj),
        "partition_object" => misc::partition(ev, obj),
        "uname_object" => misc::uname(ev, obj),
        "environmentvariable58_object" => misc::environmentvariable58(ev, obj),
        "interface_object" => misc::interface(ev, obj),
        "systemdunitproperty_object" => systemd::unit_property(ev, obj),
        "systemdunitdependency_object" => systemd::unit_dependency(ev, obj),
        "xmlfilecontent_object" => files::xmlfilecontent(ev, obj),
        "selinuxsecuritycontext_object" => files::selinuxsecuritycontext(ev, obj),
        "process58_object" => misc::process58(ev, obj),
        "selinuxboolean_object" => misc::selinuxboolean(ev, obj),
        "password_object" => accounts::password(ev, obj),
        "shadow_object" => accounts::shadow(ev, obj),
        other => return Collected::not_collected(format!("no kensa probe for <{other}>")),
    };
    r.unwrap_or_else(|e| Collected::error(format!("{}: {e}", obj.attr("id").unwrap_or("?"))))
}

/// The spec of entity `name` of an object, if present.
pub(crate) fn spec<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node, name: &str) -> Result<Option<EntitySpec>, String> {
    match obj.child(name) {
        None => Ok(None),
        Some(n) => ev.entity_spec(n).map(Some),
    }
}

/// Filters candidate names through an entity spec (equals fast path: the values themselves).
pub(crate) fn select_names(spec: &EntitySpec, candidates: impl Iterator<Item = String>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in candidates {
        if spec.matches(&c)? {
            out.push(c);
        }
    }
    Ok(out)
}
