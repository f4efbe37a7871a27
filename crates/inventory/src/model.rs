//! The inventory data model shared by catalogers, the matcher, SBOM writers and the server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The packaging system a package belongs to. Its name is the ecosystem of the version scheme
/// that orders its versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    Rpm,
    Deb,
    Apk,
    Pypi,
    Npm,
    Maven,
    Golang,
    Cargo,
}

impl PackageType {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Rpm => "rpm",
            PackageType::Deb => "deb",
            PackageType::Apk => "apk",
            PackageType::Pypi => "pypi",
            PackageType::Npm => "npm",
            PackageType::Maven => "maven",
            PackageType::Golang => "golang",
            PackageType::Cargo => "cargo",
        }
    }

    /// OS package managers (as opposed to language ecosystems).
    pub fn is_os(self) -> bool {
        matches!(self, PackageType::Rpm | PackageType::Deb | PackageType::Apk)
    }
}

/// The operating system of a target, from /etc/os-release and its fallbacks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsInfo {
    /// `ID` from os-release, lower case (`rhel`, `rocky`, `almalinux`, `debian`, `ubuntu`, `alpine`, ...).
    pub id: String,
    /// `ID_LIKE` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// `VERSION_ID` (e.g. `9.3`, `12`, `22.04`, `3.20.1`).
    pub version_id: String,
    /// `VERSION_CODENAME` (e.g. `bookworm`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe_name: Option<String>,
    /// The file the information came from (e.g. `/etc/os-release`).
    pub source_file: String,
}

/// Where a package was found and which files belong to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The file the package's metadata came from: the package database for OS packages
    /// (`/var/lib/rpm/rpmdb.sqlite`), the metadata file or archive for language packages
    /// (`/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA`,
    /// `/opt/app/app.war!WEB-INF/lib/foo.jar` for nested archives).
    pub path: String,
}

/// The OS package that owns a language package's files (so the matcher does not report it twice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub package_type: PackageType,
    pub name: String,
    pub version: String,
}

/// One installed package instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub package_type: PackageType,
    /// Name as the ecosystem spells it (Maven: `group:artifact`; PyPI: the project name as written
    /// in the metadata; normalisation happens in purls and matching).
    pub name: String,
    /// The full version string as the ecosystem orders it:
    /// rpm: `[epoch:]version-release`; deb: `[epoch:]upstream[-revision]`; apk: `1.2.3-r4`;
    /// language packages: their version as written.
    pub version: String,
    /// rpm/deb epoch, when the package has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// rpm release / deb revision / apk `-rN` (also inside `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Source package name (deb `Source:`, rpm SOURCERPM name, apk origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version when it differs from the binary's (deb `Source: name (version)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// rpm's SOURCERPM file name, as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_rpm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Installed size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Install time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_time: Option<i64>,
    /// RHEL modularity label (`name:stream:version:context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modularity_label: Option<String>,
    /// Package URL (purl spec).
    pub purl: String,
    /// Where the package was found.
    pub locations: Vec<Location>,
    /// Files the package installs (absolute paths inside the target): OS packages' file lists, and
    /// for Python packages what RECORD / installed-files.txt list (used to find their OS owner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Set on language packages whose files an OS package owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<Owner>,
    /// Ecosystem-specific extras (e.g. Go: `goVersion`, `mainModule`; Java: `manifest`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Package {
    /// A package with only the required fields set.
    pub fn new(package_type: PackageType, name: impl Into<String>, version: impl Into<String>, purl: impl Into<String>) -> Self {
        Package {
            package_type,
            name: name.into(),
            version: version.into(),
            epoch: None,
            release: None,
            arch: None,
            source_name: None,
            source_version: None,
            source_rpm: None,
            vendor: None,
            license: None,
            size: None,
            install_time: None,
            modularity_label: None,
            purl: purl.into(),
            locations: Vec::new(),
            files: Vec::new(),
            owned_by: None,
            metadata: BTreeMap::new(),
        }
    }

    /// The first location's path (the metadata file), or an empty string.
    pub fn path(&self) -> &str {
        self.locations.first().map(|l| l.path.as_str()).unwrap_or("")
    }
}

/// A problem that made part of the inventory incomplete. The scan goes on; output says what is missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// The cataloger that hit it (`rpm`, `dpkg`, `python`, ...).
    pub cataloger: String,
    /// The file or directory concerned.
    pub path: String,
    pub message: String,
    /// True when a whole package database could not be read (the result is partial).
    #[serde(default)]
    pub partial: bool,
}

/// Everything found in one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// What was scanned (`/srv/rootfs`, `image.tar`, `/`).
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl Inventory {
    /// True when some package database could not be read.
    pub fn is_partial(&self) -> bool {
        self.warnings.iter().any(|w| w.partial)
    }
}
