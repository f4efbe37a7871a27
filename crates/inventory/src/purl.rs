//! Package URLs (https://github.com/package-url/purl-spec): `pkg:type/namespace/name@version?qualifiers#subpath`.
//!
//! Written here rather than taken from a crate: building a purl is a few lines of percent-encoding,
//! and the crates we looked at either pull in URL parsing we do not need or encode `+` differently
//! from the spec's test suite.

/// Characters left unencoded in purl segments (RFC 3986 unreserved, plus the spec's choices).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes one segment. `:` is kept in versions and qualifier values as the spec's examples do.
pub fn encode(s: &str, keep_colon: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) || (keep_colon && b == b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A purl under construction.
#[derive(Clone, Debug, Default)]
pub struct Purl {
    pub ty: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: Vec<(String, String)>,
    pub subpath: Option<String>,
}

impl Purl {
    pub fn new(ty: &str, name: &str) -> Self {
        Purl { ty: ty.to_string(), name: name.to_string(), ..Default::default() }
    }
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        let ns = ns.into();
        self.namespace = if ns.is_empty() { None } else { Some(ns) };
        self
    }
    pub fn version(mut self, v: impl Into<String>) -> Self {
        let v = v.into();
        self.version = if v.is_empty() { None } else { Some(v) };
        self
    }
    /// Adds a qualifier; empty values are dropped, as the spec requires.
    pub fn qualifier(mut self, k: &str, v: impl Into<String>) -> Self {
        let v = v.into();
        if !v.is_empty() {
            self.qualifiers.push((k.to_ascii_lowercase(), v));
        }
        self
    }
    pub fn subpath(mut self, s: impl Into<String>) -> Self {
        self.subpath = Some(s.into());
        self
    }
}

impl std::fmt::Display for Purl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pkg:{}/", self.ty.to_ascii_lowercase())?;
        if let Some(ns) = &self.namespace {
            let segs: Vec<String> = ns.split('/').filter(|s| !s.is_empty()).map(|s| encode(s, false)).collect();
            write!(f, "{}/", segs.join("/"))?;
        }
        write!(f, "{}", encode(&self.name, false))?;
        if let Some(v) = &self.version {
            write!(f, "@{}", encode(v, true))?;
        }
        if !self.qualifiers.is_empty() {
            let mut q = self.qualifiers.clone();
            q.sort();
            let parts: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", encode(v, true))).collect();
            write!(f, "?{}", parts.join("&"))?;
        }
        if let Some(sp) = &self.subpath {
            let segs: Vec<String> = sp.split('/').filter(|s| !s.is_empty() && *s != "." && *s != "..").map(|s| encode(s, false)).collect();
            write!(f, "#{}", segs.join("/"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        let p = Purl::new("rpm", "openssl").namespace("rocky").version("3.0.7-25.el9").qualifier("arch", "x86_64").qualifier("epoch", "1").qualifier("distro", "rocky-9.3");
        assert_eq!(p.to_string(), "pkg:rpm/rocky/openssl@3.0.7-25.el9?arch=x86_64&distro=rocky-9.3&epoch=1");
        let p = Purl::new("deb", "openssl").namespace("debian").version("3.0.15-1~deb12u1").qualifier("arch", "amd64").qualifier("distro", "debian-12");
        assert_eq!(p.to_string(), "pkg:deb/debian/openssl@3.0.15-1~deb12u1?arch=amd64&distro=debian-12");
        let p = Purl::new("npm", "core").namespace("@angular").version("1.2.3");
        assert_eq!(p.to_string(), "pkg:npm/%40angular/core@1.2.3");
        let p = Purl::new("deb", "libc6").namespace("debian").version("1:2.36-9+deb12u4");
        assert_eq!(p.to_string(), "pkg:deb/debian/libc6@1:2.36-9%2Bdeb12u4");
        let p = Purl::new("maven", "log4j-core").namespace("org.apache.logging.log4j").version("2.14.1");
        assert_eq!(p.to_string(), "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1");
    }
}
