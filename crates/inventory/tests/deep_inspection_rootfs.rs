//! Deep inspection of the realistic Debian 12 tree (`kensa_testdata::debian_rootfs()`), compared
//! with Syft (the reference) and with the tree's own layout record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use kensa_fs::Root;
use kensa_inventory::lang::{self, DeepInspection};
use kensa_inventory::{CatalogContext, Inventory};

fn deep(dir: &Path, policy: &DeepInspection) -> Inventory {
    let root = Root::dir(dir).unwrap();
    let mut inv = Inventory::default();
    lang::catalog(&CatalogContext { root: &root, os: None }, policy, &mut inv);
    inv
}

fn strip_qualifiers(purl: &str) -> &str {
    purl.split(['?', '#']).next().unwrap()
}

/// (purl, file on disk) of every language package kensa finds; nested archives count as their
/// outermost file, as Syft reports them.
fn kensa_set(inv: &Inventory) -> BTreeSet<(String, String)> {
    inv.packages
        .iter()
        .filter(|p| matches!(p.package_type.as_str(), "pypi" | "npm" | "maven"))
        .map(|p| (p.purl.clone(), p.path().split('!').next().unwrap().to_string()))
        .collect()
}

/// Syft's findings that kensa deliberately does not reproduce, each with the reason
/// (docs/deep-inspection.md explains them). Anything else Syft finds, kensa must find too.
fn deliberate_difference(purl: &str, path: &str, kensa: &BTreeSet<(String, String)>) -> Option<&'static str> {
    // 1. A package.json that is not the root of an installed package (the project's own
    //    package.json outside node_modules, test fixtures inside a package) is not installed.
    if purl.starts_with("pkg:npm/") && !lang::npm::is_installed_package_json(Path::new(path)) {
        return Some("package.json that is not an installed package");
    }
    // 5. PyPI names: kensa applies PEP 503 (dots too: zope.interface -> zope-interface); Syft
    //    only lower-cases and replaces `_`.
    if let Some(rest) = purl.strip_prefix("pkg:pypi/") {
        let (name, version) = rest.split_once('@').unwrap_or((rest, ""));
        let normalized = format!("pkg:pypi/{}@{version}", lang::python::normalize_name(name));
        if normalized != purl && kensa.contains(&(normalized, path.to_string())) {
            return Some("PEP 503 name normalisation");
        }
    }
    if let Some(rest) = purl.strip_prefix("pkg:maven/") {
        let kensa_at_path: Vec<&str> = kensa.iter().filter(|(_, p)| p == path).map(|(u, _)| u.as_str()).collect();
        let (coords, _version) = rest.split_once('@').unwrap_or((rest, ""));
        // 2. A group taken from a Java class name in the manifest
        //    (org.apache.maven.artifact.versioning.ComparableVersion/maven3-artifact).
        //    kensa reports the jar's pom.properties (org.apache.maven/maven-artifact), as Syft also does.
        if coords.split('/').next().unwrap().split('.').next_back().is_some_and(|s| s.chars().next().is_some_and(char::is_uppercase)) {
            return Some("Syft takes a class name (Main-Class) as the group");
        }
        // 3. Syft adds a package named after the file (often without a version) next to the
        //    pom.properties packages of the same archive when the names differ
        //    (maven3-core.jar holds org.apache.maven:maven-core). kensa trusts pom.properties.
        let file_stem = Path::new(path).file_stem().unwrap().to_string_lossy().to_string();
        let artifact = coords.rsplit('/').next().unwrap();
        if file_stem.starts_with(artifact) && kensa_at_path.iter().any(|u| u.contains("@")) && !kensa_at_path.contains(&purl) {
            let kensa_has_pom_pkg = kensa_at_path.iter().any(|u| !u.contains(&format!("/{artifact}@")));
            if kensa_has_pom_pkg {
                return Some("file-name package beside pom.properties packages");
            }
        }
        // 4. For an archive without pom.properties, Syft sometimes derives the artifact from the
        //    manifest instead of the file name (commons-logging-1.2.jar -> org.apache/logging);
        //    kensa uses the file name (org.apache/commons-logging), same group and version.
        let (group, artifact) = coords.rsplit_once('/').unwrap_or(("", coords));
        let (file_artifact, _) = lang::java::split_file_name(&file_stem);
        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        let by_file_name = format!("pkg:maven/{group}/{file_artifact}@{version}");
        if artifact != file_artifact && kensa_at_path.contains(&by_file_name.as_str()) {
            return Some("artifact from the manifest, not the file name");
        }
    }
    None
}

/// The tree compared with Syft: `KENSA_DEEP_INSPECTION_TREE` (any root filesystem directory) or
/// the Debian test tree.
fn tree_under_test() -> Option<std::path::PathBuf> {
    match std::env::var_os("KENSA_DEEP_INSPECTION_TREE") {
        Some(p) => Some(p.into()),
        None => kensa_testdata::debian_rootfs(),
    }
}

#[test]
fn same_python_npm_java_packages_as_syft() {
    let Some(tree) = tree_under_test() else { return };
    let known_tree = tree.ends_with("debian-rootfs");
    let Some(syft) = kensa_testdata::venv_tool("syft") else { return };
    let out = Command::new(&syft)
        .arg(format!("dir:{}", tree.display()))
        .args(["--override-default-catalogers", "image", "-o", "cyclonedx-json", "-q"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("run syft");
    assert!(out.status.success(), "syft failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("syft cyclonedx json");
    let mut syft_set = BTreeSet::new();
    for c in doc["components"].as_array().unwrap() {
        let purl = c["purl"].as_str().unwrap_or("");
        if !(purl.starts_with("pkg:pypi/") || purl.starts_with("pkg:npm/") || purl.starts_with("pkg:maven/")) {
            continue;
        }
        let path = c["properties"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "syft:location:0:path"))
            .and_then(|p| p["value"].as_str())
            .unwrap_or("")
            .to_string();
        syft_set.insert((strip_qualifiers(purl).to_string(), path));
    }
    if known_tree {
        assert!(syft_set.len() > 200, "Syft found only {} language packages", syft_set.len());
    }

    let inv = deep(&tree, &DeepInspection::all());
    let kensa = kensa_set(&inv);
    let mut explained: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    for (purl, path) in &syft_set {
        if kensa.contains(&(purl.clone(), path.clone())) {
            continue;
        }
        match deliberate_difference(purl, path, &kensa) {
            Some(why) => explained.entry(why).or_default().push(format!("{purl} at {path}")),
            None => missing.push(format!("{purl} at {path}")),
        }
    }
    for (why, list) in &explained {
        eprintln!("deliberate difference ({why}): {list:#?}");
    }
    let extra: Vec<_> = kensa.iter().filter(|k| !syft_set.contains(k)).collect();
    eprintln!("kensa finds {} packages Syft does not: {extra:#?}", extra.len());
    assert!(missing.is_empty(), "Syft finds, kensa does not: {missing:#?}");
    // The difference classes this tree is known to show must occur (the list stays honest as
    // Syft changes); a PEP 503 difference needs a dotted Python name, which this tree lacks.
    if known_tree {
        for why in ["package.json that is not an installed package", "Syft takes a class name (Main-Class) as the group", "file-name package beside pom.properties packages", "artifact from the manifest, not the file name"] {
            assert!(explained.contains_key(why), "expected difference `{why}` not seen: {explained:#?}");
        }
    }
    // What kensa finds beyond Syft: on this tree, only its own naming of archives Syft names
    // differently. (Other trees may legitimately add forms Syft does not read, such as zipped
    // eggs; those are printed above, and the required direction is Syft -> kensa.)
    let renamed: BTreeSet<&str> = ["artifact from the manifest, not the file name", "PEP 503 name normalisation"]
        .iter()
        .filter_map(|why| explained.get(why))
        .flatten()
        .map(|e| e.rsplit_once(" at ").unwrap().1)
        .collect();
    if known_tree {
        for (purl, path) in &extra {
            assert!(renamed.contains(path.as_str()), "kensa finds {purl} at {path}, Syft does not");
        }
        assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    }
}

/// The layout record lists, per directory, what the builder put there and whether it lies in the
/// default deep-inspection paths; agent mode must report exactly the packages of the "yes" rows.
#[test]
fn agent_mode_reports_exactly_the_default_paths() {
    let Some(tree) = tree_under_test() else { return };
    let known_tree = tree.ends_with("debian-rootfs");
    let Ok(layout) = std::fs::read_to_string(tree.with_extension("layout.tsv")) else {
        assert!(!known_tree, "the Debian test tree has no layout.tsv");
        eprintln!("SKIP: {} has no layout.tsv beside it", tree.display());
        return;
    };
    let all = deep(&tree, &DeepInspection::all());
    let agent = deep(&tree, &DeepInspection::agent());
    let mut inside_rows = Vec::new();
    let mut outside_rows = Vec::new();
    for line in layout.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if !matches!(f[0], "python" | "npm" | "java") {
            continue;
        }
        let dir = f[1].split(' ').next().unwrap().to_string();
        match f[2] {
            "yes" => inside_rows.push(dir),
            "no" => outside_rows.push(dir),
            other => panic!("unexpected default_deep_path value {other}"),
        }
    }
    let under = |p: &str, dirs: &[String]| dirs.iter().any(|d| p == d || p.starts_with(&format!("{}/", d.trim_end_matches('/'))) || p.starts_with(&format!("{d}!")));
    // Every package of a "yes" row is in the agent result, none of a "no" row is.
    let agent_paths: BTreeSet<&str> = agent.packages.iter().map(|p| p.path()).collect();
    for p in &all.packages {
        if under(p.path(), &inside_rows) {
            assert!(agent_paths.contains(p.path()), "agent mode misses {} at {}", p.purl, p.path());
        }
    }
    for p in &agent.packages {
        assert!(!under(p.path(), &outside_rows), "agent mode reports {} at {} outside the default paths", p.purl, p.path());
        assert!(
            lang::AGENT_DEFAULT_PATHS.iter().any(|d| p.path().starts_with(&format!("{d}/"))),
            "agent mode reports {} at {}",
            p.purl,
            p.path()
        );
    }
    if !known_tree {
        return;
    }
    // The rows' contents are there: the pip packages of /usr/local and the three global npm packages.
    let purls: BTreeSet<&str> = agent.packages.iter().map(|p| p.purl.as_str()).collect();
    for want in ["pkg:pypi/requests@2.25.1", "pkg:pypi/pyjwt@1.7.1", "pkg:npm/semver@7.5.1", "pkg:npm/json5@2.2.1", "pkg:npm/node-fetch@2.6.0", "pkg:maven/com.example/demo-service@2.3.0"] {
        assert!(purls.contains(want), "{want} missing in agent mode");
    }
    assert!(!purls.contains("pkg:pypi/django@3.2.4") && !purls.contains("pkg:npm/express@4.17.1"));
    assert!(agent.packages.len() < all.packages.len());
}

/// Debian's own Python packages and JARs are owned by their dpkg packages; what pip, npm and the
/// test builder installed beside them is not.
#[test]
fn os_packages_own_their_language_packages() {
    let Some(tree) = kensa_testdata::debian_rootfs() else { return };
    let root = Root::dir(&tree).unwrap();
    let inv = kensa_inventory::scan(&root, &kensa_inventory::ScanOptions::default());
    let owner = |purl: &str, path_prefix: &str| {
        let p = inv
            .packages
            .iter()
            .find(|p| p.purl == purl && p.path().starts_with(path_prefix))
            .unwrap_or_else(|| panic!("{purl} under {path_prefix} not found"));
        p.owned_by.as_ref().map(|o| o.name.clone())
    };
    assert_eq!(owner("pkg:pypi/requests@2.28.1", "/usr/lib/python3/dist-packages/").as_deref(), Some("python3-requests"));
    assert_eq!(owner("pkg:pypi/pyyaml@6.0", "/usr/lib/python3/dist-packages/").as_deref(), Some("python3-yaml"));
    assert_eq!(owner("pkg:maven/org.apache.logging.log4j/log4j-core@2.19.0", "/usr/share/java/").as_deref(), Some("liblog4j2-java"));
    assert_eq!(owner("pkg:pypi/requests@2.25.1", "/usr/local/lib/"), None);
    assert_eq!(owner("pkg:npm/semver@7.5.1", "/usr/local/lib/node_modules/"), None);
    assert_eq!(owner("pkg:maven/commons-io/commons-io@2.11.0", "/usr/lib/legacy-app/"), None);
    assert_eq!(owner("pkg:maven/org.apache.logging.log4j/log4j-core@2.19.0", "/opt/app/webapp.war"), None);
    // Every Python package under /usr/lib/python3/dist-packages comes from a Debian package.
    for p in inv.packages.iter().filter(|p| p.path().starts_with("/usr/lib/python3/dist-packages/")) {
        assert!(p.owned_by.is_some(), "{} at {} has no owner", p.purl, p.path());
    }
    // Nothing outside what dpkg installed is owned.
    for p in inv.packages.iter().filter(|p| p.owned_by.is_some()) {
        assert!(p.path().starts_with("/usr/"), "{} at {} owned by {:?}", p.purl, p.path(), p.owned_by);
    }
}
