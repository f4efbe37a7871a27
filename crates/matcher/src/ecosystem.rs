//! Which OSV ecosystems apply to a target and a package, and which version scheme orders them.

use kensa_inventory::{OsInfo, Package, PackageType};
use kensa_version::Scheme;

/// The distribution ecosystems (OSV names with the release) whose advisories apply to `os`.
/// `available` lists the ecosystems present in the database; families with many streams
/// (Red Hat's `enterprise_linux:9::baseos`, `::appstream`, ...) are picked from it by prefix.
pub fn os_ecosystems(os: &OsInfo, available: &[String]) -> Vec<String> {
    let v = os.version_id.trim();
    let major = v.split('.').next().unwrap_or(v);
    let major_minor = v.split('.').take(2).collect::<Vec<_>>().join(".");
    let mut out: Vec<String> = match os.id.as_str() {
        "almalinux" => vec![format!("AlmaLinux:{major}")],
        "rocky" => vec![format!("Rocky Linux:{major}")],
        "rhel" | "centos" => {
            let exact = format!("Red Hat:enterprise_linux:{major}");
            let prefix = format!("{exact}::");
            available.iter().filter(|e| **e == exact || e.starts_with(&prefix)).cloned().collect()
        }
        "debian" => vec![format!("Debian:{major}")],
        "ubuntu" => {
            let mut eco = vec![format!("Ubuntu:{v}"), format!("Ubuntu:{v}:LTS"), format!("Ubuntu:Pro:{v}:LTS")];
            eco.retain(|e| available.is_empty() || available.contains(e));
            eco
        }
        "alpine" => vec![format!("Alpine:v{major_minor}")],
        "sles" | "sled" | "sles_sap" => match v.split_once('.') {
            Some((maj, sp)) if sp != "0" => vec![format!("SUSE:Linux Enterprise Server {maj} SP{sp}")],
            _ => vec![format!("SUSE:Linux Enterprise Server {major}")],
        },
        "opensuse-leap" => vec![format!("openSUSE:Leap {v}")],
        "opensuse-tumbleweed" => vec!["openSUSE:Tumbleweed".to_string()],
        "amzn" => vec![format!("Amazon Linux:{major}")],
        "mariner" => vec![format!("Mariner:{major_minor}")],
        "azurelinux" => vec![format!("Azure Linux:{major_minor}")],
        "ol" => vec![format!("Oracle Linux:{major}")],
        "fedora" => vec![format!("Fedora:{major}")],
        _ => Vec::new(),
    };
    out.dedup();
    out
}

/// The version scheme of an OSV ecosystem (`AlmaLinux:9` -> rpm, `PyPI` -> PEP 440, ...).
pub fn ecosystem_scheme(ecosystem: &str) -> Option<Scheme> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    Some(match base {
        "AlmaLinux" | "Rocky Linux" | "Red Hat" | "SUSE" | "openSUSE" | "Amazon Linux" | "Mariner" | "Azure Linux"
        | "Oracle Linux" | "Fedora" | "openEuler" => Scheme::Rpm,
        "Debian" | "Ubuntu" => Scheme::Deb,
        "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
        "PyPI" => Scheme::Pypi,
        "npm" => Scheme::Npm,
        "Maven" => Scheme::Maven,
        // OSV's Go and crates.io records carry SEMVER ranges with `v`-less versions; Go's module
        // order and Cargo's are SemVer 2.0 precedence, which node-semver implements.
        "Go" | "crates.io" => Scheme::Npm,
        _ => return None,
    })
}

/// The OSV ecosystem of a language package (`None` for OS packages, which use [`os_ecosystems`]).
pub fn language_ecosystem(t: PackageType) -> Option<&'static str> {
    Some(match t {
        PackageType::Pypi => "PyPI",
        PackageType::Npm => "npm",
        PackageType::Maven => "Maven",
        PackageType::Golang => "Go",
        PackageType::Cargo => "crates.io",
        PackageType::Rpm | PackageType::Deb | PackageType::Apk => return None,
    })
}

/// The name and version to look an OS package up with. Debian, Ubuntu and Alpine advisories name
/// *source* packages and give source versions, so a binary is matched through its source name
/// and the source version (when the binary's differs, e.g. binNMUs `1.2-3+b1` of source `1.2-3`),
/// as Trivy and Grype do. rpm advisories name binary packages.
pub fn lookup_key(p: &Package) -> (&str, &str) {
    match p.package_type {
        PackageType::Deb | PackageType::Apk => {
            (p.source_name.as_deref().filter(|s| !s.is_empty()).unwrap_or(&p.name), p.source_version.as_deref().filter(|s| !s.is_empty()).unwrap_or(&p.version))
        }
        _ => (&p.name, &p.version),
    }
}

/// The version a language package is compared with: Go modules carry a `v` and the Go toolchain
/// (`stdlib`) a `go` that OSV's Go records omit (`v1.2.3` -> `1.2.3`, `go1.21.5` -> `1.21.5`).
pub fn comparable_version(p: &Package) -> &str {
    match p.package_type {
        PackageType::Golang => p.version.strip_prefix("go").or_else(|| p.version.strip_prefix('v')).unwrap_or(&p.version),
        _ => &p.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, v: &str) -> OsInfo {
        OsInfo { id: id.into(), version_id: v.into(), ..Default::default() }
    }

    #[test]
    fn distro_ecosystems() {
        assert_eq!(os_ecosystems(&os("almalinux", "9.4"), &[]), ["AlmaLinux:9"]);
        assert_eq!(os_ecosystems(&os("rocky", "9.3"), &[]), ["Rocky Linux:9"]);
        assert_eq!(os_ecosystems(&os("debian", "12"), &[]), ["Debian:12"]);
        assert_eq!(os_ecosystems(&os("alpine", "3.20.3"), &[]), ["Alpine:v3.20"]);
        assert_eq!(os_ecosystems(&os("sles", "15.5"), &[]), ["SUSE:Linux Enterprise Server 15 SP5"]);
        assert_eq!(os_ecosystems(&os("opensuse-leap", "15.5"), &[]), ["openSUSE:Leap 15.5"]);
        assert_eq!(os_ecosystems(&os("mariner", "2.0"), &[]), ["Mariner:2.0"]);
        let avail: Vec<String> = ["Red Hat:enterprise_linux:9::appstream", "Red Hat:enterprise_linux:9::baseos", "Red Hat:enterprise_linux:8::baseos", "Ubuntu:22.04:LTS"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(os_ecosystems(&os("rhel", "9.4"), &avail), ["Red Hat:enterprise_linux:9::appstream", "Red Hat:enterprise_linux:9::baseos"]);
        assert_eq!(os_ecosystems(&os("ubuntu", "22.04"), &avail), ["Ubuntu:22.04:LTS"]);
    }

    #[test]
    fn go_versions_lose_their_prefix() {
        let p = |v: &str| Package::new(PackageType::Golang, "stdlib", v, "pkg:golang/stdlib");
        assert_eq!(comparable_version(&p("go1.21.5")), "1.21.5");
        assert_eq!(comparable_version(&p("v0.0.0-20230101000000-abcdefabcdef")), "0.0.0-20230101000000-abcdefabcdef");
    }
}
