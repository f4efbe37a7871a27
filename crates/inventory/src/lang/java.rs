//! Java archives (`.jar .war .ear .jpi .hpi` and kin), read from the zip central directory without
//! extracting anything.
//!
//! Identification, per archive:
//! 1. every `META-INF/maven/<group>/<artifact>/pom.properties` is a package (shaded JARs carry
//!    several; each is reported);
//! 2. unless one of those is the archive's own (same artifact name or same version), the archive
//!    itself is a package: name and version from the file name
//!    (`commons-io-2.11.0.jar`), completed from MANIFEST.MF (`Implementation-Version`,
//!    `Specification-Version`, `Bundle-Version`); the Maven group is guessed from the manifest the
//!    way Syft does ([`manifest_group`]), else it is the artifact name (as Syft does too);
//! 3. nested archives (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`, an EAR's modules, the JARs of a
//!    distribution `.zip`, which Syft also searches, ...) are read in place when stored
//!    uncompressed, else inflated into memory (size-capped), and identified the same way,
//!    recursively, with locations like
//!    `/opt/app/app.war!WEB-INF/lib/foo.jar`.
//!
//! Every archive has an inflate budget shared with everything nested in it, a nesting-depth cap and
//! per-entry caps, so a zip bomb costs bounded time and memory and ends in a warning.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use kensa_fs::{ReadSeek, Root};

use super::zip::{InflateBudget, Window, ZipArchive, ZipError};
use super::{has_java_extension, warning, Limits};
use crate::purl::Purl;
use crate::{Location, Package, PackageType, Warning};

const CATALOGER: &str = "java";

/// `key=value` / `key: value` lines of a Java properties file (no escapes beyond what Maven writes).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']);
        if let Some(i) = split {
            out.insert(line[..i].trim().to_string(), line[i + 1..].trim().to_string());
        }
    }
    out
}

/// The main section of a MANIFEST.MF (continuation lines start with one space).
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some(v) = last.as_ref().and_then(|k| out.get_mut(k)) {
                v.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim().to_string();
            out.insert(k.clone(), v.trim().to_string());
            last = Some(k);
        }
    }
    out
}

/// Splits `commons-io-2.11.0` into (`commons-io`, `2.11.0`): the version starts at the first `-`
/// followed by a digit.
pub fn split_file_name(stem: &str) -> (String, String) {
    let b = stem.as_bytes();
    for i in 0..b.len().saturating_sub(1) {
        if b[i] == b'-' && b[i + 1].is_ascii_digit() && i > 0 {
            return (stem[..i].to_string(), stem[i + 1..].to_string());
        }
    }
    (stem.to_string(), String::new())
}

/// Manifest fields that may hold a group id, most telling first (Syft's lists, so that kensa and
/// Syft/Grype name manifest-only archives alike).
const PRIMARY_GROUP_FIELDS: &[&str] =
    &["Group-Id", "Bundle-SymbolicName", "Extension-Name", "Specification-Vendor", "Implementation-Vendor", "Implementation-Vendor-Id", "Implementation-Title", "Bundle-Activator"];
const SECONDARY_GROUP_FIELDS: &[&str] = &["Automatic-Module-Name", "Main-Class", "Package"];
const GROUP_PREFIXES: &[&str] = &["com", "org", "net", "io", "be"];

/// The group of an archive without pom.properties, guessed from its manifest as Syft does: the
/// values of the primary fields (else the secondary ones) that start like a reverse domain name,
/// OSGi directives removed, the alphabetically first. `None` when nothing looks like a group.
pub fn manifest_group(manifest: &BTreeMap<String, String>) -> Option<String> {
    for fields in [PRIMARY_GROUP_FIELDS, SECONDARY_GROUP_FIELDS] {
        let mut candidates: Vec<String> = fields
            .iter()
            .filter_map(|f| manifest.get(*f))
            .filter(|v| GROUP_PREFIXES.iter().any(|p| v.starts_with(p)))
            .map(|v| v.split(';').next().unwrap().split('#').next().unwrap().trim().to_string())
            .filter(|v| !v.is_empty() && !v.contains(char::is_whitespace))
            .collect();
        candidates.sort();
        if let Some(first) = candidates.into_iter().next() {
            return Some(first);
        }
    }
    None
}

fn maven_package(group: &str, artifact: &str, version: &str, location: &str, source: &str) -> Package {
    let purl = Purl::new("maven", artifact).namespace(group).version(version).to_string();
    let name = if group.is_empty() { artifact.to_string() } else { format!("{group}:{artifact}") };
    let mut p = Package::new(PackageType::Maven, name, version, purl);
    p.locations.push(Location { path: location.to_string() });
    p.metadata.insert("identifiedBy".into(), source.to_string());
    p
}

/// Reads one archive file (and what is nested in it).
pub fn catalog_archive(root: &Root, path: &Path, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let loc = path.to_string_lossy().into_owned();
    let mut file = match root.open(path) {
        Ok(f) => f,
        Err(e) => return warnings.push(warning(CATALOGER, &loc, e.to_string(), false)),
    };
    let reader: Dyn<'_> = &mut *file;
    let mut zip = match ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => return warnings.push(warning(CATALOGER, &loc, format!("{loc}: {e}"), false)),
    };
    let mut budget = InflateBudget::new(limits.max_inflated_per_archive);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A plain `.zip` (a distribution bundle) is not a package itself; the JARs inside it are.
    let is_java_archive = has_java_extension(&file_name);
    scan(&mut zip, &loc, &loc, &file_name, 0, is_java_archive, limits, &mut budget, out, warnings);
}

/// Identifies the packages of an opened archive from an in-memory copy (tests, other sources).
pub fn catalog_archive_bytes(bytes: Vec<u8>, location: &str, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let mut cursor = Cursor::new(bytes);
    let reader: Dyn<'_> = &mut cursor;
    let mut zip = match ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => return warnings.push(warning(CATALOGER, location, format!("{location}: {e}"), false)),
    };
    let mut budget = InflateBudget::new(limits.max_inflated_per_archive);
    let file_name = location.rsplit(['/', '!']).next().unwrap_or(location).to_string();
    scan(&mut zip, location, location, &file_name, 0, true, limits, &mut budget, out, warnings);
}

/// Every archive, top-level or nested, is read through a trait object so that nesting recurses
/// without a new type per level.
type Dyn<'a> = &'a mut (dyn ReadSeek + 'a);

#[allow(clippy::too_many_arguments)]
fn scan<'a>(
    zip: &mut ZipArchive<Dyn<'a>>,
    top: &str,
    location: &str,
    file_name: &str,
    depth: usize,
    identify_self: bool,
    limits: &Limits,
    budget: &mut InflateBudget,
    out: &mut Vec<Package>,
    warnings: &mut Vec<Warning>,
) {
    let read_text = |zip: &mut ZipArchive<Dyn<'a>>, i: usize, budget: &mut InflateBudget, warnings: &mut Vec<Warning>| -> Option<String> {
        match zip.read(i, limits.max_metadata_bytes, budget) {
            Ok(b) => Some(match String::from_utf8(b) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
            Err(e) => {
                warnings.push(warning(CATALOGER, top, format!("{location}!{}: {e}", zip.entries[i].name), false));
                None
            }
        }
    };
    // 1. pom.properties
    let poms: Vec<usize> = (0..if identify_self { zip.entries.len() } else { 0 })
        .filter(|&i| {
            let n = &zip.entries[i].name;
            n.starts_with("META-INF/maven/") && n.ends_with("/pom.properties")
        })
        .collect();
    let mut from_poms: Vec<(String, String)> = Vec::new();
    for i in poms {
        let Some(text) = read_text(zip, i, budget, warnings) else { continue };
        let props = parse_properties(&text);
        let get = |k: &str| props.get(k).map(String::as_str).unwrap_or("");
        let (g, a, v) = (get("groupId"), get("artifactId"), get("version"));
        if a.is_empty() || v.is_empty() {
            warnings.push(warning(CATALOGER, top, format!("{location}!{}: no artifactId or version", zip.entries[i].name), false));
            continue;
        }
        let mut p = maven_package(g, a, v, location, "pom.properties");
        p.metadata.insert("pomProperties".into(), zip.entries[i].name.clone());
        out.push(p);
        from_poms.push((a.to_string(), v.to_string()));
    }
    // 2. the archive itself, from its name and manifest, unless a pom.properties already names it
    let manifest = zip.find("META-INF/MANIFEST.MF").filter(|_| identify_self).and_then(|i| read_text(zip, i, budget, warnings)).map(|t| parse_manifest(&t)).unwrap_or_default();
    let stem = file_name.rsplit_once('.').map(|(s, _)| s).unwrap_or(file_name);
    let (mut name, mut version) = split_file_name(stem);
    let m = |k: &str| manifest.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if version.is_empty() {
        version = m("Implementation-Version").or(m("Specification-Version")).or(m("Plugin-Version")).or(m("Bundle-Version")).unwrap_or("").to_string();
    }
    if name.is_empty() {
        name = m("Bundle-SymbolicName").or(m("Implementation-Title")).unwrap_or("").to_string();
    }
    // A pom.properties is the archive's own when its artifact is the file's name or its version
    // is the archive's (`maven3-core.jar` holding maven-core 3.8.7); an archive with only shaded
    // poms of other versions (`guice.jar` 4.2.3 holding cglib 3.2.12) is reported itself too.
    let comparable = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    let versions: Vec<&str> = [Some(version.as_str()), m("Implementation-Version"), m("Bundle-Version"), m("Specification-Version")].into_iter().flatten().collect();
    let covered = !from_poms.is_empty()
        && (version.is_empty()
            || from_poms.iter().any(|(a, v)| comparable(a) == comparable(&name) || comparable(a) == comparable(stem) || versions.contains(&v.as_str())));
    if identify_self && !name.is_empty() && !covered {
        let group = manifest_group(&manifest).unwrap_or_else(|| name.clone());
        let source = if manifest.is_empty() { "filename" } else { "manifest" };
        out.push(maven_package(&group, &name, &version, location, source));
    }
    // 3. nested archives
    let nested: Vec<usize> = (0..zip.entries.len()).filter(|&i| !zip.entries[i].is_dir() && has_java_extension(&zip.entries[i].name)).collect();
    for i in nested {
        let name = zip.entries[i].name.clone();
        let nested_loc = format!("{location}!{name}");
        if depth + 1 > limits.max_archive_depth {
            warnings.push(warning(CATALOGER, top, format!("{nested_loc}: archives nested deeper than {} levels are not read", limits.max_archive_depth), false));
            continue;
        }
        let inner_file = name.rsplit('/').next().unwrap_or(&name).to_string();
        // Stored (uncompressed) nested archives are read in place; compressed ones are inflated
        // into memory, capped.
        match zip.stored_range(i) {
            Ok(Some((start, len))) => {
                if let Err(e) = budget.charge(len) {
                    warnings.push(warning(CATALOGER, top, format!("{nested_loc}: {e}"), false));
                    return;
                }
                let mut window = Window::new(zip.reader_mut(), start, len);
                let reader: Dyn<'_> = &mut window;
                match ZipArchive::new(reader) {
                    Ok(mut inner) => scan(&mut inner, top, &nested_loc, &inner_file, depth + 1, true, limits, budget, out, warnings),
                    Err(e) => warnings.push(warning(CATALOGER, top, format!("{nested_loc}: {e}"), false)),
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                warnings.push(warning(CATALOGER, top, format!("{nested_loc}: {e}"), false));
                continue;
            }
        }
        let bytes = match zip.read(i, limits.max_nested_archive_bytes, budget) {
            Ok(b) => b,
            Err(e) => {
                let stop = matches!(e, ZipError::BudgetExhausted(_));
                warnings.push(warning(CATALOGER, top, format!("{nested_loc}: {e}"), false));
                if stop {
                    return;
                }
                continue;
            }
        };
        let mut cursor = Cursor::new(bytes);
        let reader: Dyn<'_> = &mut cursor;
        match ZipArchive::new(reader) {
            Ok(mut inner) => scan(&mut inner, top, &nested_loc, &inner_file, depth + 1, true, limits, budget, out, warnings),
            Err(e) => warnings.push(warning(CATALOGER, top, format!("{nested_loc}: {e}"), false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(split_file_name("commons-collections3-3.2.2"), ("commons-collections3".into(), "3.2.2".into()));
        assert_eq!(split_file_name("jsr305-0.1~+svn49"), ("jsr305".into(), "0.1~+svn49".into()));
        assert_eq!(split_file_name("guice-no-aop-4.2.3"), ("guice-no-aop".into(), "4.2.3".into()));
        assert_eq!(split_file_name("enterprise"), ("enterprise".into(), "".into()));
    }

    #[test]
    fn manifest_continuations() {
        let m = parse_manifest("Manifest-Version: 1.0\r\nBundle-Description: a long\r\n  text\r\nImplementation-Version: 2.1\r\n\r\nName: x\r\nFoo: bar\r\n");
        assert_eq!(m.get("Bundle-Description").unwrap(), "a long text");
        assert_eq!(m.get("Implementation-Version").unwrap(), "2.1");
        assert!(!m.contains_key("Foo"));
    }
}
