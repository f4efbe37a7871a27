//! SBOM writers: an [`Inventory`] as CycloneDX 1.6 JSON, SPDX 2.3 JSON, or kensa's native JSON.
//!
//! Output is deterministic: the same inventory gives the same bytes, except the document's serial
//! number / namespace and creation time ([`DocumentInfo`]), which callers may pin (tests do).
//! Packages are written in the inventory's order (`kensa_inventory::scan` sorts it).
//!
//! Every package carries its purl. Locations go in properties named like Syft's
//! (`kensa:location:0:path`), so tools that read Syft's output find them the same way.

mod cyclonedx;
mod spdx;

use std::io::{self, Write};
use std::str::FromStr;

use kensa_inventory::Inventory;

pub use cyclonedx::write_cyclonedx;
pub use spdx::write_spdx;

/// Output formats of `kensa sbom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    CycloneDxJson,
    SpdxJson,
    /// kensa's own: the inventory with every field.
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::CycloneDxJson, Format::SpdxJson, Format::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::CycloneDxJson => "cyclonedx-json",
            Format::SpdxJson => "spdx-json",
            Format::Json => "json",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| format!("unknown SBOM format {s:?} (expected cyclonedx-json, spdx-json or json)"))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-document values that are not derived from the inventory.
#[derive(Clone, Debug)]
pub struct DocumentInfo {
    pub tool_name: String,
    pub tool_version: String,
    /// Creation time, seconds since the epoch (UTC).
    pub created: i64,
    /// A UUID: CycloneDX `serialNumber` (`urn:uuid:...`) and the unique part of SPDX's namespace.
    pub uuid: String,
}

impl DocumentInfo {
    /// Now, with a fresh random UUID.
    pub fn new(tool_version: &str) -> Self {
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        DocumentInfo { tool_name: "kensa".into(), tool_version: tool_version.into(), created, uuid: random_uuid() }
    }

    /// RFC 3339 UTC timestamp of `created` (`2024-01-02T03:04:05Z`).
    pub fn created_rfc3339(&self) -> String {
        rfc3339(self.created)
    }
}

/// Writes `inv` in `format`.
pub fn write(format: Format, inv: &Inventory, doc: &DocumentInfo, out: impl Write) -> io::Result<()> {
    match format {
        Format::CycloneDxJson => write_cyclonedx(inv, doc, out),
        Format::SpdxJson => write_spdx(inv, doc, out),
        Format::Json => write_native(inv, doc, out),
    }
}

/// kensa's native JSON: the [`Inventory`] as serialised by serde (OS, every package with every
/// field, warnings) plus the tool version. No timestamp: the same scan gives the same bytes.
pub fn write_native(inv: &Inventory, doc: &DocumentInfo, mut out: impl Write) -> io::Result<()> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Native<'a> {
        schema: &'static str,
        tool: String,
        #[serde(flatten)]
        inventory: &'a Inventory,
    }
    let native = Native { schema: "kensa-inventory/1", tool: format!("{} {}", doc.tool_name, doc.tool_version), inventory: inv };
    serde_json::to_writer_pretty(&mut out, &native)?;
    out.write_all(b"\n")
}

/// A random (version 4) UUID from the kernel's random source; a time-and-pid mix if that is
/// unavailable (uniqueness, not secrecy, is what a document id needs).
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut b)).is_ok();
    if !ok {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mix = t ^ ((std::process::id() as u128) << 64);
        b = mix.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Properties shared by the CycloneDX and SPDX writers: `(name, value)` pairs for one package, in
/// a fixed order.
pub(crate) fn package_properties(p: &kensa_inventory::Package) -> Vec<(String, String)> {
    let mut props = vec![("kensa:package:type".to_string(), p.package_type.as_str().to_string())];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            props.push((format!("kensa:package:{k}"), v));
        }
    };
    add("arch", p.arch.clone());
    add("epoch", p.epoch.map(|e| e.to_string()));
    add("release", p.release.clone());
    add("sourceName", p.source_name.clone());
    add("sourceVersion", p.source_version.clone());
    add("sourceRpm", p.source_rpm.clone());
    add("size", p.size.map(|s| s.to_string()));
    add("installTime", p.install_time.map(|t| t.to_string()));
    add("modularityLabel", p.modularity_label.clone());
    if let Some(o) = &p.owned_by {
        add("ownedBy", Some(format!("{}:{}@{}", o.package_type.as_str(), o.name, o.version)));
    }
    for (k, v) in &p.metadata {
        add(&format!("metadata:{k}"), Some(v.clone()));
    }
    for (i, l) in p.locations.iter().enumerate() {
        props.push((format!("kensa:location:{i}:path"), l.path.clone()));
    }
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_uuids() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, random_uuid());
        assert_eq!("spdx-json".parse::<Format>(), Ok(Format::SpdxJson));
        assert!("xml".parse::<Format>().is_err());
    }
}
