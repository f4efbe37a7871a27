//! npm packages: the `package.json` at the root of each installed package, i.e.
//! `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json` (local trees
//! and global installs such as `/usr/lib/node_modules`). Every installed copy is its own package
//! instance with its own location.
//!
//! Not reported: `package.json` files deeper inside a package (test fixtures, `dist/esm` stubs), the
//! project's own `package.json` outside `node_modules` (it is not installed), and lock files (they
//! say what *would* be installed; the installed tree is the truth).

use std::path::Path;

use kensa_fs::Root;
use serde_json::Value;

use super::{warning, Limits};
use crate::purl::Purl;
use crate::{Location, Package, PackageType, Warning};

const CATALOGER: &str = "npm";

/// Whether `path` (a `package.json`) sits at the root of an installed package.
pub fn is_installed_package_json(path: &Path) -> bool {
    let Some(pkg_dir) = path.parent() else { return false };
    let Some(dir_name) = pkg_dir.file_name().map(|n| n.to_string_lossy()) else { return false };
    if dir_name.starts_with('.') {
        return false;
    }
    let Some(parent) = pkg_dir.parent() else { return false };
    let parent_name = parent.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    if parent_name == "node_modules" {
        return !dir_name.starts_with('@');
    }
    if parent_name.starts_with('@') && parent_name.len() > 1 {
        return parent.parent().and_then(|g| g.file_name()).is_some_and(|n| n == "node_modules");
    }
    false
}

fn license_of(v: &Value) -> Option<String> {
    match v.get("license") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Object(o)) => o.get("type").and_then(Value::as_str).map(str::to_string),
        _ => match v.get("licenses") {
            Some(Value::Array(a)) => {
                let names: Vec<&str> = a.iter().filter_map(|l| l.get("type").and_then(Value::as_str).or(l.as_str())).collect();
                (!names.is_empty()).then(|| names.join(" OR "))
            }
            _ => None,
        },
    }
}

/// The purl of an npm package name (`@scope/name` puts the scope in the namespace).
pub fn purl(name: &str, version: &str) -> String {
    match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => Purl::new("npm", n).namespace(scope).version(version).to_string(),
        _ => Purl::new("npm", name).version(version).to_string(),
    }
}

pub fn catalog_package_json(root: &Root, path: &Path, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let loc = path.to_string_lossy().into_owned();
    let bytes = match root.read_limited(path, limits.max_metadata_bytes) {
        Ok(b) => b,
        Err(e) => return warnings.push(warning(CATALOGER, &loc, e.to_string(), false)),
    };
    // Some editors on Windows leave a UTF-8 byte order mark; npm accepts it.
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let v: Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            // Invalid UTF-8 or broken JSON: say which file.
            return warnings.push(warning(CATALOGER, &loc, format!("{loc}: invalid package.json: {e}"), false));
        }
    };
    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
    let version = v.get("version").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() || version.is_empty() {
        // npm itself requires both for an installed package; a stub without them is not one.
        return warnings.push(warning(CATALOGER, &loc, format!("{loc}: package.json has no name or version"), false));
    }
    let mut p = Package::new(PackageType::Npm, name, version, purl(name, version));
    p.license = license_of(&v);
    p.locations.push(Location { path: loc });
    if v.get("private").and_then(Value::as_bool) == Some(true) {
        p.metadata.insert("private".into(), "true".into());
    }
    out.push(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_roots() {
        assert!(is_installed_package_json(Path::new("/srv/web/node_modules/express/package.json")));
        assert!(is_installed_package_json(Path::new("/a/node_modules/@babel/core/package.json")));
        assert!(is_installed_package_json(Path::new("/a/node_modules/x/node_modules/ms/package.json")));
        assert!(!is_installed_package_json(Path::new("/srv/web/package.json")));
        assert!(!is_installed_package_json(Path::new("/a/node_modules/x/test/fixture/package.json")));
        assert!(!is_installed_package_json(Path::new("/a/node_modules/x/dist/esm/package.json")));
        assert!(!is_installed_package_json(Path::new("/a/node_modules/@scope/package.json")));
        assert!(!is_installed_package_json(Path::new("/a/node_modules/.bin/package.json")));
        assert_eq!(purl("@angular/core", "1.2.3"), "pkg:npm/%40angular/core@1.2.3");
    }
}
