//! LVM2: physical-volume labels, the text metadata area, and linear logical volumes (segments of
//! type `striped` with one stripe) as [`ConcatDev`]s. Other segment types (raid, thin, cache,
//! multi-stripe) are reported, not read.

use std::io;
use std::sync::Arc;

use crate::block::{corrupt, le32, le64, read_vec, BlockDev, ConcatDev};

const LABEL: &[u8; 8] = b"LABELONE";
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const MAX_METADATA: u64 = 16 << 20;

/// A physical volume found on a partition (or whole disk).
pub struct PhysicalVolume {
    /// PV UUID without dashes.
    pub uuid: String,
    pub dev: Arc<dyn BlockDev>,
    /// The newest metadata text in the PV's first metadata area, if it has one.
    pub metadata: Option<String>,
}

/// A logical volume ready to read, or why it cannot be.
pub struct LogicalVolume {
    pub vg: String,
    pub name: String,
    pub dev: Result<Arc<dyn BlockDev>, String>,
}

/// Reads the LVM2 label (in one of the first four sectors) of a device, if it has one.
pub fn probe(dev: &Arc<dyn BlockDev>) -> io::Result<Option<PhysicalVolume>> {
    for sector in 0..4u64 {
        let off = sector * 512;
        if off + 512 > dev.size() {
            return Ok(None);
        }
        let s = read_vec(&**dev, off, 512, 512, "LVM label")?;
        if &s[0..8] != LABEL || &s[24..32] != b"LVM2 001" {
            continue;
        }
        let hdr = le32(&s, 20) as usize;
        if hdr + 40 > 512 {
            return Err(corrupt(format!("LVM label at offset {off}: PV header offset {hdr} is invalid")));
        }
        let uuid = String::from_utf8_lossy(&s[hdr..hdr + 32]).into_owned();
        // Data areas, then metadata areas, each a zero-terminated list of (offset, size).
        let mut p = hdr + 40;
        let mut lists: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
        for list in lists.iter_mut() {
            loop {
                if p + 16 > 512 {
                    return Err(corrupt(format!("LVM label at offset {off}: area list runs past the label sector")));
                }
                let (o, z) = (le64(&s, p), le64(&s, p + 8));
                p += 16;
                if o == 0 && z == 0 {
                    break;
                }
                list.push((o, z));
            }
        }
        let metadata = match lists[1].first() {
            Some(&(mda_off, mda_size)) => read_metadata(&**dev, mda_off, mda_size)?,
            None => None,
        };
        return Ok(Some(PhysicalVolume { uuid, dev: dev.clone(), metadata }));
    }
    Ok(None)
}

fn read_metadata(dev: &dyn BlockDev, mda_off: u64, mda_size: u64) -> io::Result<Option<String>> {
    let h = read_vec(dev, mda_off, 512, 512, "LVM metadata area header")?;
    if &h[4..20] != MDA_MAGIC {
        return Err(corrupt(format!("LVM metadata area header at offset {mda_off}: bad magic")));
    }
    let (off, size) = (le64(&h, 40), le64(&h, 48));
    if size == 0 {
        return Ok(None);
    }
    if size > MAX_METADATA || size > mda_size || off >= mda_size || off < 512 {
        return Err(corrupt(format!("LVM metadata area at offset {mda_off}: text location {off}+{size} is invalid for an area of {mda_size} bytes")));
    }
    // The area after its 512-byte header is a circular buffer.
    let first = size.min(mda_size - off);
    let mut text = read_vec(dev, mda_off + off, first, MAX_METADATA, "LVM metadata")?;
    if first < size {
        text.extend(read_vec(dev, mda_off + 512, size - first, MAX_METADATA, "LVM metadata")?);
    }
    if let Some(z) = text.iter().position(|&b| b == 0) {
        text.truncate(z);
    }
    Ok(Some(String::from_utf8_lossy(&text).into_owned()))
}

// ------------------------------------------------------------------------- metadata text format

/// A value in LVM's metadata text format.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Section(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Section(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn sections(&self) -> Vec<(&str, &Value)> {
        match self {
            Value::Section(items) => items.iter().filter(|(_, v)| matches!(v, Value::Section(_))).map(|(k, v)| (k.as_str(), v)).collect(),
            _ => Vec::new(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    p: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, msg: &str) -> io::Error {
        corrupt(format!("LVM metadata text at byte {}: {msg}", self.p))
    }
    fn skip_ws(&mut self) {
        while self.p < self.s.len() {
            match self.s[self.p] {
                b' ' | b'\t' | b'\n' | b'\r' => self.p += 1,
                b'#' => {
                    while self.p < self.s.len() && self.s[self.p] != b'\n' {
                        self.p += 1;
                    }
                }
                _ => break,
            }
        }
    }
    fn ident(&mut self) -> Option<String> {
        let start = self.p;
        while self.p < self.s.len() && (self.s[self.p].is_ascii_alphanumeric() || b"_-.+".contains(&self.s[self.p])) {
            self.p += 1;
        }
        (self.p > start).then(|| String::from_utf8_lossy(&self.s[start..self.p]).into_owned())
    }
    fn items(&mut self, closing: Option<u8>) -> io::Result<Vec<(String, Value)>> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(self.err("nesting too deep"));
        }
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.p >= self.s.len() {
                if closing.is_some() {
                    return Err(self.err("unexpected end"));
                }
                break;
            }
            if Some(self.s[self.p]) == closing {
                self.p += 1;
                break;
            }
            let key = self.ident().ok_or_else(|| self.err("expected a name"))?;
            self.skip_ws();
            match self.s.get(self.p) {
                Some(b'{') => {
                    self.p += 1;
                    items.push((key, Value::Section(self.items(Some(b'}'))?)));
                }
                Some(b'=') => {
                    self.p += 1;
                    items.push((key, self.value()?));
                }
                _ => return Err(self.err("expected `{` or `=`")),
            }
        }
        self.depth -= 1;
        Ok(items)
    }
    fn value(&mut self) -> io::Result<Value> {
        self.skip_ws();
        match self.s.get(self.p) {
            Some(b'"') => {
                self.p += 1;
                let mut out = Vec::new();
                while self.p < self.s.len() && self.s[self.p] != b'"' {
                    if self.s[self.p] == b'\\' && self.p + 1 < self.s.len() {
                        self.p += 1;
                    }
                    out.push(self.s[self.p]);
                    self.p += 1;
                }
                if self.p >= self.s.len() {
                    return Err(self.err("unterminated string"));
                }
                self.p += 1;
                Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(b'[') => {
                self.p += 1;
                let mut list = Vec::new();
                loop {
                    self.skip_ws();
                    match self.s.get(self.p) {
                        Some(b']') => {
                            self.p += 1;
                            break;
                        }
                        Some(b',') => self.p += 1,
                        Some(_) => list.push(self.value()?),
                        None => return Err(self.err("unterminated list")),
                    }
                }
                Ok(Value::List(list))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.p;
                self.p += 1;
                while self.p < self.s.len() && (self.s[self.p].is_ascii_digit() || self.s[self.p] == b'.') {
                    self.p += 1;
                }
                let t = String::from_utf8_lossy(&self.s[start..self.p]).into_owned();
                Ok(Value::Int(t.split('.').next().unwrap_or("0").parse().map_err(|_| self.err("bad number"))?))
            }
            _ => Err(self.err("expected a value")),
        }
    }
}

/// Parses LVM metadata text into its top-level section.
pub fn parse(text: &str) -> io::Result<Value> {
    let mut p = Parser { s: text.as_bytes(), p: 0, depth: 0 };
    Ok(Value::Section(p.items(None)?))
}

/// Builds the logical volumes of every volume group described by the PVs' metadata.
pub fn logical_volumes(pvs: &[PhysicalVolume]) -> io::Result<Vec<LogicalVolume>> {
    let mut out = Vec::new();
    let mut seen_vgs = std::collections::HashSet::new();
    for pv in pvs {
        let Some(text) = &pv.metadata else { continue };
        let top = parse(text)?;
        for (vg_name, vg) in top.sections() {
            if !seen_vgs.insert(vg_name.to_string()) {
                continue;
            }
            let extent = vg.int("extent_size").filter(|&e| e > 0).ok_or_else(|| corrupt(format!("LVM VG {vg_name}: missing extent_size")))? as u64 * 512;
            let pv_map: Vec<(String, String, u64)> = vg
                .get("physical_volumes")
                .map(|s| s.sections())
                .unwrap_or_default()
                .into_iter()
                .map(|(key, v)| (key.to_string(), v.str("id").unwrap_or("").replace('-', ""), v.int("pe_start").unwrap_or(0).max(0) as u64 * 512))
                .collect();
            let lvs = vg.get("logical_volumes").map(|s| s.sections()).unwrap_or_default();
            for (lv_name, lv) in lvs {
                let dev = build_lv(vg_name, lv_name, lv, extent, &pv_map, pvs);
                out.push(LogicalVolume { vg: vg_name.to_string(), name: lv_name.to_string(), dev });
            }
        }
    }
    Ok(out)
}

fn build_lv(vg: &str, name: &str, lv: &Value, extent: u64, pv_map: &[(String, String, u64)], pvs: &[PhysicalVolume]) -> Result<Arc<dyn BlockDev>, String> {
    let mut segments: Vec<(u64, u64, Arc<dyn BlockDev>, u64)> = Vec::new();
    let mut segs: Vec<&Value> = lv.sections().into_iter().filter(|(k, _)| k.starts_with("segment")).map(|(_, v)| v).collect();
    segs.sort_by_key(|s| s.int("start_extent").unwrap_or(0));
    for seg in segs {
        let kind = seg.str("type").unwrap_or("?");
        let stripes = seg.int("stripe_count").unwrap_or(0);
        if kind != "striped" || stripes != 1 {
            return Err(format!("LV {vg}/{name}: segment type {kind} with {stripes} stripes is not supported (only linear volumes are read)"));
        }
        let (start, count) = (seg.int("start_extent").unwrap_or(-1), seg.int("extent_count").unwrap_or(-1));
        let Some(Value::List(list)) = seg.get("stripes") else { return Err(format!("LV {vg}/{name}: segment without stripes")) };
        let (Some(Value::Str(pv_key)), Some(Value::Int(pe))) = (list.first(), list.get(1)) else {
            return Err(format!("LV {vg}/{name}: malformed stripes list"));
        };
        if start < 0 || count <= 0 || *pe < 0 {
            return Err(format!("LV {vg}/{name}: segment with negative extents"));
        }
        let Some((_, uuid, pe_start)) = pv_map.iter().find(|(k, _, _)| k == pv_key) else {
            return Err(format!("LV {vg}/{name}: stripe on unknown PV {pv_key}"));
        };
        let Some(pv) = pvs.iter().find(|p| &p.uuid == uuid) else {
            return Err(format!("LV {vg}/{name}: physical volume {uuid} is not in this image"));
        };
        let (Some(off), Some(len), Some(dev_off)) = ((start as u64).checked_mul(extent), (count as u64).checked_mul(extent), (*pe as u64).checked_mul(extent).and_then(|o| o.checked_add(*pe_start))) else {
            return Err(format!("LV {vg}/{name}: extent numbers overflow"));
        };
        segments.push((off, len, pv.dev.clone(), dev_off));
    }
    if segments.is_empty() {
        return Err(format!("LV {vg}/{name}: no segments"));
    }
    ConcatDev::new(segments, format!("LV {vg}/{name}")).map(|d| Arc::new(d) as Arc<dyn BlockDev>).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata_text() {
        let text = r#"vg0 {
id = "abc"
seqno = 3
extent_size = 8192 # 4 MiB
physical_volumes {
pv0 {
id = "AAAA-BB"
pe_start = 2048
}
}
logical_volumes {
root {
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 1
segment1 {
start_extent = 0
extent_count = 10
type = "striped"
stripe_count = 1 # linear
stripes = [
"pv0", 0
]
}
}
}
}
contents = "Text Format Volume Group"
"#;
        let top = parse(text).unwrap();
        let vg = top.get("vg0").unwrap();
        assert_eq!(vg.int("extent_size"), Some(8192));
        let lv = vg.get("logical_volumes").unwrap().get("root").unwrap();
        assert_eq!(lv.get("segment1").unwrap().str("type"), Some("striped"));
        let pv = PhysicalVolume { uuid: "AAAABB".into(), dev: Arc::new(vec![0u8; 8 << 20]), metadata: Some(text.into()) };
        let pv2 = PhysicalVolume { uuid: "AAAABB".into(), dev: Arc::new(vec![0u8; 1 << 20]), metadata: None };
        let lvs = logical_volumes(&[pv]).unwrap();
        assert_eq!(lvs.len(), 1);
        // 10 extents of 4 MiB do not fit on an 8 MiB PV: a clear error, not a panic.
        assert!(lvs[0].dev.as_ref().err().unwrap().contains("past the end"));
        drop(pv2);
        assert!(parse("vg { a = [ \"x\" ").is_err());
    }
}
