//! Operating-system detection from a target's files.
//!
//! `/etc/os-release` first (then `/usr/lib/os-release`, its systemd-defined fallback); for old or
//! stripped-down systems without one, the distribution's own release files: `/etc/redhat-release`,
//! `/etc/system-release`, `/etc/alpine-release`, `/etc/debian_version`.
//! Debian testing/sid has no `VERSION_ID`; `/etc/debian_version` fills that gap.

use kensa_fs::Root;

use crate::model::{OsInfo, Warning};

/// os-release and release files are a few hundred bytes; anything bigger is not one.
const RELEASE_FILE_LIMIT: u64 = 64 << 10;

/// Detects the OS of `root`. Unreadable release files are reported in `warnings`; a target without
/// any (a scratch image, an application directory) gives `None` and no warning.
pub fn detect(root: &Root, warnings: &mut Vec<Warning>) -> Option<OsInfo> {
    let mut read = |path: &str| -> Option<String> {
        match root.read_limited(path, RELEASE_FILE_LIMIT) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                warnings.push(Warning { cataloger: "os".into(), path: path.into(), message: e.to_string(), partial: false });
                None
            }
        }
    };
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(text) = read(path) {
            if let Some(mut os) = parse_os_release(&text, path) {
                if os.id == "debian" && os.version_id.is_empty() {
                    // Debian testing/sid has no VERSION_ID; debian_version says `trixie/sid`.
                    if let Some(dv) = read("/etc/debian_version") {
                        os.version_id = dv.trim().to_string();
                    }
                }
                return Some(os);
            }
        }
    }
    for path in ["/etc/redhat-release", "/etc/system-release"] {
        if let Some(text) = read(path) {
            if let Some(os) = parse_release_line(&text, path) {
                return Some(os);
            }
        }
    }
    if let Some(text) = read("/etc/alpine-release") {
        let v = text.trim();
        if !v.is_empty() {
            return Some(OsInfo { id: "alpine".into(), version_id: v.into(), pretty_name: Some(format!("Alpine Linux v{v}")), source_file: "/etc/alpine-release".into(), ..Default::default() });
        }
    }
    if let Some(text) = read("/etc/debian_version") {
        let v = text.trim();
        if !v.is_empty() {
            let codename = debian_codename(v.split('.').next().unwrap_or("")).map(str::to_string);
            return Some(OsInfo { id: "debian".into(), version_id: v.into(), codename, source_file: "/etc/debian_version".into(), ..Default::default() });
        }
    }
    None
}

/// Parses os-release(5) text: `KEY=value` lines, values optionally quoted with shell-style escapes.
/// Returns `None` when there is no `ID`.
pub fn parse_os_release(text: &str, source_file: &str) -> Option<OsInfo> {
    let mut os = OsInfo { source_file: source_file.to_string(), ..Default::default() };
    let mut version = None;
    let mut ubuntu_codename = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else { continue };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => os.id = value.to_ascii_lowercase(),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(|s| s.to_ascii_lowercase()).collect(),
            "VERSION_ID" => os.version_id = value,
            "VERSION_CODENAME" if !value.is_empty() => os.codename = Some(value),
            "UBUNTU_CODENAME" if !value.is_empty() => ubuntu_codename = Some(value),
            "PRETTY_NAME" if !value.is_empty() => os.pretty_name = Some(value),
            "CPE_NAME" if !value.is_empty() => os.cpe_name = Some(value),
            "VERSION" => version = Some(value),
            _ => {}
        }
    }
    if os.id.is_empty() {
        return None;
    }
    if os.codename.is_none() {
        os.codename = ubuntu_codename.or_else(|| {
            // Debian 9/10 and older Ubuntu only say `VERSION="10 (buster)"`.
            let v = version?;
            let inner = v.split_once('(')?.1.split_once(')')?.0.trim().to_string();
            (matches!(os.id.as_str(), "debian" | "ubuntu" | "raspbian") && !inner.is_empty()).then(|| inner.split_whitespace().next().unwrap_or("").to_ascii_lowercase())
        });
    }
    if os.codename.is_none() && os.id == "debian" {
        os.codename = debian_codename(&os.version_id).map(str::to_string);
    }
    Some(os)
}

/// Undoes os-release quoting: `"a \"b\""`, `'a b'` or a bare word.
fn unquote(raw: &str) -> String {
    let bytes = raw.as_bytes();
    if bytes.len() >= 2 && (bytes[0] == b'"' || bytes[0] == b'\'') && bytes[bytes.len() - 1] == bytes[0] {
        let inner = &raw[1..raw.len() - 1];
        if bytes[0] == b'\'' {
            return inner.to_string();
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    raw.to_string()
}

/// Parses the one line of `/etc/redhat-release` or `/etc/system-release`, e.g.
/// `Rocky Linux release 9.3 (Blue Onyx)`, `CentOS Linux release 7.9.2009 (Core)`,
/// `Amazon Linux release 2 (Karoo)`, `Red Hat Enterprise Linux Server release 7.9 (Maipo)`.
pub fn parse_release_line(text: &str, source_file: &str) -> Option<OsInfo> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let (name, rest) = line.split_once(" release ")?;
    let version = rest.split_whitespace().next()?.to_string();
    let codename = rest.split_once('(').and_then(|(_, c)| c.split_once(')')).map(|(c, _)| c.trim().to_string()).filter(|c| !c.is_empty());
    let lower = name.to_ascii_lowercase();
    let id = if lower.starts_with("red hat enterprise linux") {
        "rhel"
    } else if lower.starts_with("centos stream") || lower.starts_with("centos") {
        "centos"
    } else if lower.starts_with("rocky") {
        "rocky"
    } else if lower.starts_with("almalinux") {
        "almalinux"
    } else if lower.starts_with("oracle linux") {
        "ol"
    } else if lower.starts_with("fedora") {
        "fedora"
    } else if lower.starts_with("amazon linux") {
        "amzn"
    } else if lower.starts_with("cbl-mariner") {
        "mariner"
    } else if lower.starts_with("azure linux") {
        "azurelinux"
    } else {
        return None;
    };
    // CentOS 7 writes 7.9.2009; advisories and os-release use the major version.
    let version_id = match id {
        "centos" => version.split('.').next().unwrap_or(&version).to_string(),
        _ => version,
    };
    Some(OsInfo { id: id.into(), version_id, codename, pretty_name: Some(line.to_string()), source_file: source_file.to_string(), ..Default::default() })
}

fn debian_codename(major: &str) -> Option<&'static str> {
    Some(match major {
        "7" => "wheezy",
        "8" => "jessie",
        "9" => "stretch",
        "10" => "buster",
        "11" => "bullseye",
        "12" => "bookworm",
        "13" => "trixie",
        "14" => "forky",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> OsInfo {
        parse_os_release(text, "/etc/os-release").expect("parsed")
    }

    #[test]
    fn rhel_family() {
        let rhel = os(r#"NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
"#);
        assert_eq!((rhel.id.as_str(), rhel.version_id.as_str()), ("rhel", "9.4"));
        assert_eq!(rhel.id_like, vec!["fedora"]);
        assert_eq!(rhel.cpe_name.as_deref(), Some("cpe:/o:redhat:enterprise_linux:9::baseos"));

        let centos = os(r#"NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
"#);
        assert_eq!((centos.id.as_str(), centos.version_id.as_str()), ("centos", "7"));
        assert_eq!(centos.id_like, vec!["rhel", "fedora"]);
        assert_eq!(centos.codename, None);

        let rocky = os(r#"NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
ROCKY_SUPPORT_PRODUCT="Rocky-Linux-9"
ROCKY_SUPPORT_PRODUCT_VERSION="9.3"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
"#);
        assert_eq!((rocky.id.as_str(), rocky.version_id.as_str()), ("rocky", "9.3"));
        assert_eq!(rocky.cpe_name.as_deref(), Some("cpe:/o:rocky:rocky:9::baseos"));

        let alma = os(r#"NAME="AlmaLinux"
VERSION="9.3 (Shamrock Pampas Cat)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.3 (Shamrock Pampas Cat)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:9::baseos"
"#);
        assert_eq!((alma.id.as_str(), alma.version_id.as_str()), ("almalinux", "9.3"));

        let oracle = os(r#"NAME="Oracle Linux Server"
VERSION="8.9"
ID="ol"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="8.9"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Oracle Linux Server 8.9"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:oracle:linux:8:9:server"
"#);
        assert_eq!((oracle.id.as_str(), oracle.version_id.as_str()), ("ol", "8.9"));
        assert_eq!(oracle.cpe_name.as_deref(), Some("cpe:/o:oracle:linux:8:9:server"));

        let fedora = os(r#"NAME="Fedora Linux"
VERSION="39 (Container Image)"
ID=fedora
VERSION_ID=39
VERSION_CODENAME=""
PLATFORM_ID="platform:f39"
PRETTY_NAME="Fedora Linux 39 (Container Image)"
CPE_NAME="cpe:/o:fedoraproject:fedora:39"
"#);
        assert_eq!((fedora.id.as_str(), fedora.version_id.as_str()), ("fedora", "39"));
        assert_eq!(fedora.codename, None, "empty VERSION_CODENAME is no codename");
    }

    #[test]
    fn amazon_linux() {
        let al2 = os(r#"NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2"
HOME_URL="https://amazonlinux.com/"
"#);
        assert_eq!((al2.id.as_str(), al2.version_id.as_str()), ("amzn", "2"));
        assert_eq!(al2.cpe_name.as_deref(), Some("cpe:2.3:o:amazon:amazon_linux:2"));
        let al2023 = os(r#"NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023.3.20240131"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"
SUPPORT_END="2028-03-15"
"#);
        assert_eq!((al2023.id.as_str(), al2023.version_id.as_str()), ("amzn", "2023"));
        assert_eq!(al2023.pretty_name.as_deref(), Some("Amazon Linux 2023.3.20240131"));
    }

    #[test]
    fn debian_and_ubuntu() {
        let deb = os(r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#);
        assert_eq!((deb.id.as_str(), deb.version_id.as_str(), deb.codename.as_deref()), ("debian", "12", Some("bookworm")));
        // Debian 10's os-release has no VERSION_CODENAME.
        let buster = os(r#"PRETTY_NAME="Debian GNU/Linux 10 (buster)"
NAME="Debian GNU/Linux"
VERSION_ID="10"
VERSION="10 (buster)"
ID=debian
"#);
        assert_eq!(buster.codename.as_deref(), Some("buster"));
        // testing/sid: no VERSION_ID at all.
        let sid = os("PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nNAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=trixie\nID=debian\n");
        assert_eq!((sid.version_id.as_str(), sid.codename.as_deref()), ("", Some("trixie")));

        let ubuntu = os(r#"PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
"#);
        assert_eq!((ubuntu.id.as_str(), ubuntu.version_id.as_str(), ubuntu.codename.as_deref()), ("ubuntu", "22.04", Some("jammy")));
        assert_eq!(ubuntu.id_like, vec!["debian"]);
    }

    #[test]
    fn alpine_suse_mariner() {
        let alpine = os("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n");
        assert_eq!((alpine.id.as_str(), alpine.version_id.as_str()), ("alpine", "3.18.4"));

        let sles = os(r#"NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp5"
DOCUMENTATION_URL="https://documentation.suse.com/"
"#);
        assert_eq!((sles.id.as_str(), sles.version_id.as_str()), ("sles", "15.5"));
        assert_eq!(sles.cpe_name.as_deref(), Some("cpe:/o:suse:sles:15:sp5"));

        let leap = os(r#"NAME="openSUSE Leap"
VERSION="15.5"
ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.5"
PRETTY_NAME="openSUSE Leap 15.5"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:opensuse:leap:15.5"
"#);
        assert_eq!((leap.id.as_str(), leap.version_id.as_str()), ("opensuse-leap", "15.5"));
        assert_eq!(leap.id_like, vec!["suse", "opensuse"]);

        let mariner = os(r#"NAME="Common Base Linux Mariner"
VERSION="2.0.20240123"
ID=mariner
VERSION_ID="2.0"
PRETTY_NAME="CBL-Mariner/Linux"
ANSI_COLOR="1;34"
HOME_URL="https://aka.ms/cbl-mariner"
"#);
        assert_eq!((mariner.id.as_str(), mariner.version_id.as_str()), ("mariner", "2.0"));
        let azl = os(r#"NAME="Microsoft Azure Linux"
VERSION="3.0.20240727"
ID=azurelinux
VERSION_ID="3.0"
PRETTY_NAME="Microsoft Azure Linux 3.0"
ANSI_COLOR="1;34"
HOME_URL="https://aka.ms/azurelinux"
"#);
        assert_eq!((azl.id.as_str(), azl.version_id.as_str()), ("azurelinux", "3.0"));
    }

    #[test]
    fn quoting_and_garbage() {
        let o = os("ID='my os'\nVERSION_ID=\"1 \\\"x\\\"\"\n# comment\nnot a line\n");
        assert_eq!((o.id.as_str(), o.version_id.as_str()), ("my os", "1 \"x\""));
        assert!(parse_os_release("NAME=foo\n", "/etc/os-release").is_none());
        assert!(parse_os_release("\u{0}\u{1}binary", "/etc/os-release").is_none());
    }

    #[test]
    fn release_lines() {
        let cases = [
            ("Red Hat Enterprise Linux Server release 7.9 (Maipo)", "rhel", "7.9", Some("Maipo")),
            ("Red Hat Enterprise Linux release 8.9 (Ootpa)", "rhel", "8.9", Some("Ootpa")),
            ("CentOS Linux release 7.9.2009 (Core)", "centos", "7", Some("Core")),
            ("CentOS release 6.10 (Final)", "centos", "6", Some("Final")),
            ("Rocky Linux release 9.3 (Blue Onyx)", "rocky", "9.3", Some("Blue Onyx")),
            ("AlmaLinux release 9.3 (Shamrock Pampas Cat)", "almalinux", "9.3", Some("Shamrock Pampas Cat")),
            ("Oracle Linux Server release 8.9", "ol", "8.9", None),
            ("Fedora release 39 (Thirty Nine)", "fedora", "39", Some("Thirty Nine")),
            ("Amazon Linux release 2 (Karoo)", "amzn", "2", Some("Karoo")),
            ("Amazon Linux release 2023.3.20240131 (Amazon Linux)", "amzn", "2023.3.20240131", Some("Amazon Linux")),
            ("CBL-Mariner release 2.0.20240123 (x86_64)", "mariner", "2.0.20240123", Some("x86_64")),
        ];
        for (line, id, version, codename) in cases {
            let o = parse_release_line(&format!("{line}\n"), "/etc/redhat-release").unwrap_or_else(|| panic!("{line}"));
            assert_eq!((o.id.as_str(), o.version_id.as_str(), o.codename.as_deref()), (id, version, codename), "{line}");
        }
        assert!(parse_release_line("Ubuntu 22.04", "/etc/system-release").is_none());
    }

    #[test]
    fn detects_from_files_with_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let root = Root::dir(dir.path()).unwrap();
        let mut warnings = Vec::new();
        assert_eq!(detect(&root, &mut warnings), None);

        std::fs::write(etc.join("debian_version"), "12.8\n").unwrap();
        let o = detect(&root, &mut warnings).unwrap();
        assert_eq!((o.id.as_str(), o.version_id.as_str(), o.codename.as_deref()), ("debian", "12.8", Some("bookworm")));

        std::fs::write(etc.join("alpine-release"), "3.19.1\n").unwrap();
        assert_eq!(detect(&root, &mut warnings).unwrap().id, "alpine");

        std::fs::write(etc.join("redhat-release"), "Rocky Linux release 8.9 (Green Obsidian)\n").unwrap();
        let o = detect(&root, &mut warnings).unwrap();
        assert_eq!((o.id.as_str(), o.version_id.as_str(), o.source_file.as_str()), ("rocky", "8.9", "/etc/redhat-release"));

        // /usr/lib/os-release through the usual /etc/os-release symlink.
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n").unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", etc.join("os-release")).unwrap();
        let o = detect(&root, &mut warnings).unwrap();
        assert_eq!((o.id.as_str(), o.version_id.as_str()), ("debian", "12"));
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
