//! Packages compiled into ELF executables: Go build information (`\xff Go buildinf:`) and Rust
//! dependency lists embedded by cargo-auditable (the `.dep-v0` section).
//!
//! Only regular files with an execute bit are opened, and only their headers are read eagerly:
//! the ELF header, then the section (or program) headers, then the one section needed. Nothing is
//! executed.
//!
//! Go: the main module, every dependency (a replacement `=> path version` wins, as Syft and Trivy
//! report what was compiled in), and the toolchain as `stdlib` (version `go1.21.5`, purl
//! `pkg:golang/stdlib@1.21.5`, as Syft does; vulnerability feeds list the standard library as
//! `stdlib` with plain semver versions). Both build-info layouts are read: the Go 1.18+ inline
//! strings and the older pointers to Go string headers.

use std::io::{Read, SeekFrom};
use std::path::Path;

use flate2::read::ZlibDecoder;
use kensa_fs::{ReadSeek, Root};

use super::{warning, Limits};
use crate::purl::Purl;
use crate::{Location, Package, PackageType, Warning};

/// Smaller files cannot be ELF executables worth reading.
pub const MIN_ELF_SIZE: u64 = 64;
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Go's `debug/buildinfo` reads at most this much of the data segment when there is no section.
const GO_SEARCH_WINDOW: u64 = 64 << 10;
/// Largest `.dep-v0` section (compressed) and its inflated JSON.
const MAX_AUDIT_COMPRESSED: u64 = 4 << 20;
const MAX_AUDIT_JSON: u64 = 16 << 20;
/// Largest section header table read.
const MAX_SECTION_TABLE: u64 = 4 << 20;
/// Largest Go string read through a pointer (module info of huge programs stays far below).
const MAX_GO_STRING: u64 = 4 << 20;

#[derive(Debug, Clone)]
struct Section {
    name: String,
    addr: u64,
    offset: u64,
    size: u64,
    sh_type: u32,
}

#[derive(Debug, Clone)]
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
}

/// Just enough of an ELF file: endianness, word size, sections and loadable segments.
struct Elf {
    big_endian: bool,
    sections: Vec<Section>,
    segments: Vec<Segment>,
}

fn rd(b: &[u8], at: usize, n: usize, be: bool) -> u64 {
    let s = &b[at..at + n];
    let mut v = 0u64;
    if be {
        for &x in s {
            v = (v << 8) | x as u64;
        }
    } else {
        for &x in s.iter().rev() {
            v = (v << 8) | x as u64;
        }
    }
    v
}

fn read_at(f: &mut dyn ReadSeek, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
    f.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("truncated: wanted {len} bytes at offset {offset}")));
    }
    Ok(buf)
}

impl Elf {
    /// Parses the headers; `Ok(None)` when the file is not ELF.
    fn parse(f: &mut dyn ReadSeek, file_len: u64) -> Result<Option<Elf>, String> {
        let mut h = [0u8; 64];
        f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        let n = f.read(&mut h).map_err(|e| e.to_string())?;
        if n < 52 || &h[..4] != b"\x7fELF" {
            return Ok(None);
        }
        let is64 = match h[4] {
            1 => false,
            2 => true,
            c => return Err(format!("unknown ELF class {c}")),
        };
        if is64 && n < 64 {
            return Err("truncated ELF header".into());
        }
        let be = h[5] == 2;
        let (phoff, phentsize, phnum, shoff, shentsize, shnum, shstrndx) = if is64 {
            (rd(&h, 0x20, 8, be), rd(&h, 0x36, 2, be), rd(&h, 0x38, 2, be), rd(&h, 0x28, 8, be), rd(&h, 0x3A, 2, be), rd(&h, 0x3C, 2, be), rd(&h, 0x3E, 2, be))
        } else {
            (rd(&h, 0x1C, 4, be), rd(&h, 0x2A, 2, be), rd(&h, 0x2C, 2, be), rd(&h, 0x20, 4, be), rd(&h, 0x2E, 2, be), rd(&h, 0x30, 2, be), rd(&h, 0x32, 2, be))
        };
        let mut segments = Vec::new();
        let min_ph = if is64 { 56 } else { 32 };
        if phoff != 0 && phnum > 0 && phentsize >= min_ph && phoff.saturating_add(phnum * phentsize) <= file_len {
            let t = read_at(f, phoff, phnum * phentsize).map_err(|e| format!("program headers: {e}"))?;
            for i in 0..phnum as usize {
                let p = &t[i * phentsize as usize..];
                if rd(p, 0, 4, be) != 1 {
                    continue; // PT_LOAD only
                }
                let seg = if is64 {
                    Segment { flags: rd(p, 4, 4, be) as u32, offset: rd(p, 8, 8, be), vaddr: rd(p, 16, 8, be), filesz: rd(p, 32, 8, be) }
                } else {
                    Segment { offset: rd(p, 4, 4, be), vaddr: rd(p, 8, 4, be), filesz: rd(p, 16, 4, be), flags: rd(p, 24, 4, be) as u32 }
                };
                segments.push(seg);
            }
        }
        let mut sections = Vec::new();
        let min_sh = if is64 { 64 } else { 40 };
        if shoff != 0 && shnum > 0 && shentsize >= min_sh {
            let table_len = shnum * shentsize;
            if table_len > MAX_SECTION_TABLE || shoff.saturating_add(table_len) > file_len {
                return Err(format!("section header table ({shnum} entries at offset {shoff}) does not fit the file"));
            }
            let t = read_at(f, shoff, table_len).map_err(|e| format!("section headers: {e}"))?;
            let mut raw = Vec::with_capacity(shnum as usize);
            for i in 0..shnum as usize {
                let s = &t[i * shentsize as usize..];
                let (name_off, sh_type, addr, offset, size) = if is64 {
                    (rd(s, 0, 4, be), rd(s, 4, 4, be) as u32, rd(s, 16, 8, be), rd(s, 24, 8, be), rd(s, 32, 8, be))
                } else {
                    (rd(s, 0, 4, be), rd(s, 4, 4, be) as u32, rd(s, 12, 4, be), rd(s, 16, 4, be), rd(s, 20, 4, be))
                };
                raw.push((name_off, Section { name: String::new(), addr, offset, size, sh_type }));
            }
            if let Some((_, strtab)) = raw.get(shstrndx as usize) {
                if strtab.size <= MAX_SECTION_TABLE && strtab.offset.saturating_add(strtab.size) <= file_len {
                    let names = read_at(f, strtab.offset, strtab.size).map_err(|e| format!("section names: {e}"))?;
                    for (off, s) in raw.iter_mut() {
                        if let Some(rest) = names.get(*off as usize..) {
                            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                            s.name = String::from_utf8_lossy(&rest[..end]).into_owned();
                        }
                    }
                }
            }
            sections = raw.into_iter().map(|(_, s)| s).collect();
        }
        Ok(Some(Elf { big_endian: be, sections, segments }))
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name && s.sh_type != 8 /* SHT_NOBITS */)
    }

    /// File offset of a virtual address and how many bytes are mapped from there.
    fn va_to_offset(&self, va: u64) -> Option<(u64, u64)> {
        for s in &self.segments {
            if va >= s.vaddr && va - s.vaddr < s.filesz {
                return Some((s.offset + (va - s.vaddr), s.filesz - (va - s.vaddr)));
            }
        }
        for s in &self.sections {
            if s.addr != 0 && va >= s.addr && va - s.addr < s.size && s.sh_type != 8 {
                return Some((s.offset + (va - s.addr), s.size - (va - s.addr)));
            }
        }
        None
    }
}

/// Go build information as embedded in the binary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GoBuildInfo {
    pub go_version: String,
    pub main_path: String,
    pub main_version: String,
    /// (path, version, replaced by (path, version))
    pub deps: Vec<GoModule>,
    pub settings: Vec<(String, String)>,
}

#[derive(Debug, Default, PartialEq, Eq, Clone)]
pub struct GoModule {
    pub path: String,
    pub version: String,
    pub replace: Option<(String, String)>,
}

/// Parses the module-info text (`path`, `mod`, `dep`, `=>`, `build` lines).
pub fn parse_modinfo(go_version: &str, modinfo: &str) -> GoBuildInfo {
    let mut bi = GoBuildInfo { go_version: go_version.to_string(), ..Default::default() };
    let mut last_is_main = false;
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.first().copied() {
            Some("path") if f.len() >= 2 => bi.main_path = f[1].to_string(),
            Some("mod") if f.len() >= 3 => {
                bi.main_path = f[1].to_string();
                bi.main_version = f[2].to_string();
                last_is_main = true;
            }
            Some("dep") if f.len() >= 2 => {
                bi.deps.push(GoModule { path: f[1].to_string(), version: f.get(2).unwrap_or(&"").to_string(), replace: None });
                last_is_main = false;
            }
            Some("=>") if f.len() >= 2 => {
                let r = (f[1].to_string(), f.get(2).unwrap_or(&"").to_string());
                if last_is_main {
                    bi.main_version = r.1.clone();
                } else if let Some(d) = bi.deps.last_mut() {
                    d.replace = Some(r);
                }
            }
            Some("build") if f.len() >= 2 => {
                if let Some((k, v)) = f[1..].join("\t").split_once('=') {
                    bi.settings.push((k.to_string(), v.to_string()));
                }
            }
            Some("go") if f.len() >= 2 && bi.go_version.is_empty() => bi.go_version = f[1].to_string(),
            _ => {}
        }
    }
    bi
}

fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(10) {
        v |= ((x & 0x7f) as u64) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Strips the 16-byte sentinels Go puts around the module info.
fn trim_modinfo(s: &[u8]) -> &[u8] {
    if s.len() >= 33 && s[s.len() - 17] == b'\n' {
        &s[16..s.len() - 16]
    } else {
        s
    }
}

fn go_build_info(f: &mut dyn ReadSeek, elf: &Elf) -> Result<Option<GoBuildInfo>, String> {
    // Where to look: the .go.buildinfo section, else the first writable loadable segment.
    let (start_off, window) = if let Some(s) = elf.section(".go.buildinfo") {
        (s.offset, s.size.min(GO_SEARCH_WINDOW))
    } else if elf.sections.iter().any(|s| s.name == ".go.buildinfo" || s.name == ".gopclntab" || s.name == ".note.go.buildid") || elf.sections.is_empty() {
        match elf.segments.iter().find(|s| s.flags & 0b110 == 0b110) {
            Some(seg) => (seg.offset, seg.filesz.min(GO_SEARCH_WINDOW)),
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    let data = read_at(f, start_off, window).map_err(|e| format!("Go build info: {e}"))?;
    let Some(pos) = (0..data.len()).step_by(16).find(|&i| data[i..].starts_with(GO_MAGIC)) else {
        return Ok(None);
    };
    let h = &data[pos..];
    if h.len() < 32 {
        return Err("Go build info header is truncated".into());
    }
    let ptr_size = h[14] as usize;
    let flags = h[15];
    let (version, modinfo) = if flags & 2 != 0 {
        // Go 1.18+: two varint-prefixed strings right after the 32-byte header.
        let mut rest = &h[32..];
        let mut strings = Vec::new();
        for _ in 0..2 {
            let (len, n) = read_uvarint(rest).ok_or("bad varint in Go build info")?;
            let len = len as usize;
            if rest.len() < n + len {
                // The strings run past the window: read them from the file directly.
                let abs = start_off + pos as u64 + (h.len() - rest.len()) as u64 + n as u64;
                if len as u64 > MAX_GO_STRING {
                    return Err(format!("Go build info string of {len} bytes is too large"));
                }
                strings.push(read_at(f, abs, len as u64).map_err(|e| format!("Go build info: {e}"))?);
                rest = &[];
                if strings.len() < 2 {
                    return Err("Go build info strings are truncated".into());
                }
                continue;
            }
            strings.push(rest[n..n + len].to_vec());
            rest = &rest[n + len..];
        }
        (strings.remove(0), strings.remove(0))
    } else {
        // Before Go 1.18: pointers to Go string headers (data pointer, length).
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("Go build info has pointer size {ptr_size}"));
        }
        let be = flags & 1 != 0 || elf.big_endian;
        let read_ptr = |b: &[u8], at: usize| rd(b, at, ptr_size, be);
        let read_go_string = |f: &mut dyn ReadSeek, va: u64| -> Result<Vec<u8>, String> {
            let (off, avail) = elf.va_to_offset(va).ok_or_else(|| format!("Go build info pointer {va:#x} is outside the file"))?;
            if avail < 2 * ptr_size as u64 {
                return Err("Go string header is truncated".into());
            }
            let hdr = read_at(f, off, 2 * ptr_size as u64).map_err(|e| e.to_string())?;
            let (data_va, len) = (read_ptr(&hdr, 0), read_ptr(&hdr, ptr_size));
            if len > MAX_GO_STRING {
                return Err(format!("Go build info string of {len} bytes is too large"));
            }
            if len == 0 {
                return Ok(Vec::new());
            }
            let (doff, davail) = elf.va_to_offset(data_va).ok_or_else(|| format!("Go string pointer {data_va:#x} is outside the file"))?;
            if davail < len {
                return Err("Go string runs past its segment".into());
            }
            read_at(f, doff, len).map_err(|e| e.to_string())
        };
        let v = read_go_string(f, read_ptr(h, 16))?;
        let m = read_go_string(f, read_ptr(h, 16 + ptr_size))?;
        (v, m)
    };
    let version = String::from_utf8_lossy(&version).into_owned();
    let modinfo = String::from_utf8_lossy(trim_modinfo(&modinfo)).into_owned();
    Ok(Some(parse_modinfo(&version, &modinfo)))
}

fn golang_purl(path: &str, version: &str) -> String {
    match path.rsplit_once('/') {
        Some((ns, name)) => Purl::new("golang", name).namespace(ns).version(version).to_string(),
        None => Purl::new("golang", path).version(version).to_string(),
    }
}

fn go_packages(bi: &GoBuildInfo, location: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mk = |name: &str, version: &str, purl: String| {
        let mut p = Package::new(PackageType::Golang, name, version, purl);
        p.locations.push(Location { path: location.to_string() });
        p.metadata.insert("goVersion".into(), bi.go_version.clone());
        if !bi.main_path.is_empty() {
            p.metadata.insert("mainModule".into(), bi.main_path.clone());
        }
        p
    };
    // The main module; toolchain commands (`path cmd/compile` without a `mod` line) have none.
    if !bi.main_path.is_empty() && !bi.main_version.is_empty() {
        let mut p = mk(&bi.main_path, &bi.main_version, golang_purl(&bi.main_path, &bi.main_version));
        for (k, v) in &bi.settings {
            if k == "vcs.revision" || k == "GOOS" || k == "GOARCH" {
                p.metadata.insert(k.clone(), v.clone());
            }
        }
        out.push(p);
    }
    for d in &bi.deps {
        let (path, version) = match &d.replace {
            // A local directory replacement has no version of its own: keep the module path.
            Some((rp, rv)) if rp.starts_with('.') || rp.starts_with('/') => (d.path.clone(), if rv.is_empty() { "(devel)".to_string() } else { rv.clone() }),
            Some((rp, rv)) => (rp.clone(), rv.clone()),
            None => (d.path.clone(), d.version.clone()),
        };
        let mut p = mk(&path, &version, golang_purl(&path, &version));
        if let Some((rp, rv)) = &d.replace {
            p.metadata.insert("replaces".into(), format!("{} {}", d.path, d.version));
            p.metadata.insert("replacement".into(), format!("{rp} {rv}").trim().to_string());
        }
        out.push(p);
    }
    // The toolchain's standard library, compiled into every Go binary.
    let gv = bi.go_version.split_whitespace().next().unwrap_or("");
    if let Some(semver) = gv.strip_prefix("go") {
        if !semver.is_empty() {
            out.push(mk("stdlib", gv, Purl::new("golang", "stdlib").version(semver).to_string()));
        }
    }
    out
}

/// One package of a cargo-auditable dependency list.
#[derive(Debug, serde::Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    root: bool,
}

#[derive(Debug, serde::Deserialize)]
struct AuditInfo {
    packages: Vec<AuditPackage>,
}

fn rust_packages(f: &mut dyn ReadSeek, elf: &Elf, location: &str) -> Result<Vec<Package>, String> {
    let Some(s) = elf.section(".dep-v0") else { return Ok(Vec::new()) };
    if s.size > MAX_AUDIT_COMPRESSED {
        return Err(format!(".dep-v0 section of {} bytes is larger than the {MAX_AUDIT_COMPRESSED}-byte limit", s.size));
    }
    let z = read_at(f, s.offset, s.size).map_err(|e| format!(".dep-v0: {e}"))?;
    let mut json = Vec::new();
    ZlibDecoder::new(&z[..]).take(MAX_AUDIT_JSON + 1).read_to_end(&mut json).map_err(|e| format!(".dep-v0: not zlib data: {e}"))?;
    if json.len() as u64 > MAX_AUDIT_JSON {
        return Err(format!(".dep-v0 inflates beyond {MAX_AUDIT_JSON} bytes"));
    }
    let info: AuditInfo = serde_json::from_slice(&json).map_err(|e| format!(".dep-v0: invalid dependency list: {e}"))?;
    Ok(info
        .packages
        .into_iter()
        .map(|a| {
            let purl = Purl::new("cargo", &a.name).version(a.version.clone()).to_string();
            let mut p = Package::new(PackageType::Cargo, a.name, a.version, purl);
            p.locations.push(Location { path: location.to_string() });
            if let Some(src) = a.source {
                p.metadata.insert("source".into(), src);
            }
            if let Some(k) = a.kind {
                p.metadata.insert("kind".into(), k);
            }
            if a.root {
                p.metadata.insert("root".into(), "true".into());
            }
            p
        })
        .collect())
}

/// Reads one executable: Go build info and cargo-auditable data, if any.
pub fn catalog_executable(root: &Root, path: &Path, limits: &Limits, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let loc = path.to_string_lossy().into_owned();
    let len = match root.metadata(path) {
        Ok(m) => m.size,
        Err(e) => return warnings.push(warning("binary", &loc, e.to_string(), false)),
    };
    if len > limits.max_binary_bytes {
        return warnings.push(warning("binary", &loc, format!("{loc}: {len} bytes is above the {}-byte limit for executables; not inspected", limits.max_binary_bytes), false));
    }
    let mut f = match root.open(path) {
        Ok(f) => f,
        Err(e) => return warnings.push(warning("binary", &loc, e.to_string(), false)),
    };
    catalog_elf(&mut *f, len, &loc, out, warnings);
}

/// Go and Rust packages of one ELF file given as a reader of `len` bytes.
pub fn catalog_elf(f: &mut dyn ReadSeek, len: u64, loc: &str, out: &mut Vec<Package>, warnings: &mut Vec<Warning>) {
    let elf = match Elf::parse(f, len) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => return warnings.push(warning("binary", loc, format!("{loc}: {e}"), false)),
    };
    match go_build_info(f, &elf) {
        Ok(Some(bi)) => out.extend(go_packages(&bi, loc)),
        Ok(None) => {}
        Err(e) => warnings.push(warning("go", loc, format!("{loc}: {e}"), false)),
    }
    match rust_packages(f, &elf, loc) {
        Ok(p) => out.extend(p),
        Err(e) => warnings.push(warning("rust", loc, format!("{loc}: {e}"), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_lines() {
        let m = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgithub.com/a/b\tv1.2.3\th1:x=\ndep\texample.com/old\tv0.1.0\n=>\texample.com/new\tv0.2.0\th1:y=\nbuild\t-compiler=gc\nbuild\tGOOS=linux\n";
        let bi = parse_modinfo("go1.21.5", m);
        assert_eq!(bi.main_path, "example.com/app");
        assert_eq!(bi.deps.len(), 2);
        assert_eq!(bi.deps[1].replace, Some(("example.com/new".into(), "v0.2.0".into())));
        let pk = go_packages(&bi, "/x");
        let purls: Vec<&str> = pk.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(purls, ["pkg:golang/example.com/app@%28devel%29", "pkg:golang/github.com/a/b@v1.2.3", "pkg:golang/example.com/new@v0.2.0", "pkg:golang/stdlib@1.21.5"]);
    }
}
