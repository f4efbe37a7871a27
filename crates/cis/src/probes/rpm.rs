//! rpminfo: installed rpm packages.
//!
//! The probe reads packages through the small [`RpmSource`] trait; the default source is kensa's
//! own rpm database reader (crates/rpmdb: Berkeley DB, ndb and sqlite, opened through
//! `kensa_fs::Root`). The signature key id comes from the header's RSA/DSA/PGP signature.

use kensa_fs::Root;

use super::spec;
use crate::oval::{Collected, Evaluator, Item};
use crate::xml::Node;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// Key id of the header signature (16 lower-case hex digits), when signed.
    pub signature_keyid: Option<String>,
}

/// One file as the rpm database records it (for rpmverifyfile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmFile {
    pub path: String,
    pub mode: u32,
    pub user: String,
    pub group: String,
    pub size: u64,
    /// Lower-case hex digest, with its rpm algorithm number (8 = SHA-256).
    pub digest: String,
    pub digest_algo: u32,
    pub flags: u32,
    /// Modification time recorded by the package (seconds since the epoch).
    pub mtime: i64,
    /// Symlink target ("" for other files).
    pub link_to: String,
    /// Which `rpm -V` tests apply (`%verify(not ...)`; RPMVERIFY_* bits, all when unrecorded).
    pub verify_flags: u32,
}

/// Where rpminfo and rpmverifyfile get packages from.
pub trait RpmSource: Send + Sync {
    fn packages(&self, root: &Root) -> Result<Vec<RpmPackage>, String>;
    /// Packages with their recorded files; sources that cannot tell return an error.
    fn packages_with_files(&self, _root: &Root) -> Result<Vec<(RpmPackage, Vec<RpmFile>)>, String> {
        Err("this rpm source does not read file records".into())
    }
}

/// kensa-rpmdb on the target's rpm database.
pub struct KensaRpmDb;

/// Database files in the order rpm looks for them (RHEL 9 / Fedora sqlite, SUSE ndb, older BDB).
const DB_PATHS: &[&str] = &[
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages.db",
    "/var/lib/rpm/Packages",
    "/usr/lib/sysimage/rpm/Packages",
];

const TAG_SIGPGP: i32 = 259;
const TAG_SIGGPG: i32 = 262;
const TAG_DSAHEADER: i32 = 267;
const TAG_RSAHEADER: i32 = 268;

impl RpmSource for KensaRpmDb {
    fn packages(&self, root: &Root) -> Result<Vec<RpmPackage>, String> {
        Ok(self.read(root, false)?.into_iter().map(|(p, _)| p).collect())
    }

    fn packages_with_files(&self, root: &Root) -> Result<Vec<(RpmPackage, Vec<RpmFile>)>, String> {
        self.read(root, true)
    }
}

const TAG_FILESIZES: i32 = 1028;
const TAG_FILEMTIMES: i32 = 1034;
const TAG_FILELINKTOS: i32 = 1036;
const TAG_FILEVERIFYFLAGS: i32 = 1045;
const TAG_FILEMODES: i32 = 1030;
const TAG_FILEDIGESTS: i32 = 1035;
const TAG_FILEFLAGS: i32 = 1037;
const TAG_FILEUSERNAME: i32 = 1039;
const TAG_FILEGROUPNAME: i32 = 1040;
const TAG_FILEDIGESTALGO: i32 = 5011;

impl KensaRpmDb {
    fn read(&self, root: &Root, with_files: bool) -> Result<Vec<(RpmPackage, Vec<RpmFile>)>, String> {
        // No rpm database at all: no packages (a Debian target, for instance).
        let Some(path) = DB_PATHS.iter().find(|p| root.is_file(p)) else { return Ok(Vec::new()) };
        let file = root.open(path).map_err(|e| e.to_string())?;
        let wal = root.open(format!("{path}-wal")).ok().map(|w| Box::new(w) as Box<dyn kensa_rpmdb::ReadSeek>);
        let db = kensa_rpmdb::PackageDb::open(Box::new(file), wal).map_err(|e| format!("{path}: {e}"))?;
        let mut out = Vec::new();
        for blob in db {
            let blob = blob.map_err(|e| format!("{path}: {e}"))?;
            let p = kensa_rpmdb::parse_package(&blob.data).map_err(|e| format!("{path}: package #{}: {e}", blob.key))?;
            let sig = kensa_rpmdb::header::Header::parse(&blob.data).ok().and_then(|h| {
                [TAG_RSAHEADER, TAG_DSAHEADER, TAG_SIGPGP, TAG_SIGGPG].iter().find_map(|t| h.binary(*t).ok().flatten().and_then(pgp_issuer))
            });
            let mut files = Vec::new();
            if with_files && !p.files.is_empty() {
                if let Ok(h) = kensa_rpmdb::header::Header::parse(&blob.data) {
                    let strs = |t| h.string_array(t).ok().flatten().unwrap_or_default();
                    let ints = |t| h.integers(t).ok().flatten().unwrap_or_default();
                    let (modes, sizes, flags) = (ints(TAG_FILEMODES), ints(TAG_FILESIZES), ints(TAG_FILEFLAGS));
                    let (mtimes, verify) = (ints(TAG_FILEMTIMES), ints(TAG_FILEVERIFYFLAGS));
                    let (digests, users, groups, links) = (strs(TAG_FILEDIGESTS), strs(TAG_FILEUSERNAME), strs(TAG_FILEGROUPNAME), strs(TAG_FILELINKTOS));
                    let algo = h.integer(TAG_FILEDIGESTALGO).ok().flatten().unwrap_or(1) as u32;
                    for (i, path) in p.files.iter().enumerate() {
                        files.push(RpmFile {
                            path: path.clone(),
                            mode: modes.get(i).copied().unwrap_or(0) as u32,
                            user: users.get(i).cloned().unwrap_or_default(),
                            group: groups.get(i).cloned().unwrap_or_default(),
                            size: sizes.get(i).copied().unwrap_or(0),
                            digest: digests.get(i).cloned().unwrap_or_default(),
                            digest_algo: algo,
                            flags: flags.get(i).copied().unwrap_or(0) as u32,
                            mtime: mtimes.get(i).copied().unwrap_or(0) as i64,
                            link_to: links.get(i).cloned().unwrap_or_default(),
                            verify_flags: verify.get(i).map(|&v| v as u32).unwrap_or(u32::MAX),
                        });
                    }
                }
            }
            out.push((RpmPackage { name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch, signature_keyid: sig }, files));
        }
        Ok(out)
    }
}

/// The issuer key id of an OpenPGP signature packet (v3 or v4).
fn pgp_issuer(p: &[u8]) -> Option<String> {
    let tag = *p.first()?;
    let (body, _) = if tag & 0x40 != 0 {
        let l0 = *p.get(1)? as usize;
        if l0 < 192 {
            (p.get(2..2 + l0)?, ())
        } else if l0 < 224 {
            let l = ((l0 - 192) << 8) + *p.get(2)? as usize + 192;
            (p.get(3..3 + l)?, ())
        } else {
            let l = u32::from_be_bytes(p.get(2..6)?.try_into().ok()?) as usize;
            (p.get(6..6 + l)?, ())
        }
    } else {
        match tag & 3 {
            0 => (p.get(2..2 + *p.get(1)? as usize)?, ()),
            1 => {
                let l = u16::from_be_bytes(p.get(1..3)?.try_into().ok()?) as usize;
                (p.get(3..3 + l)?, ())
            }
            2 => {
                let l = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?) as usize;
                (p.get(5..5 + l)?, ())
            }
            _ => (p.get(1..)?, ()),
        }
    };
    let hex = |s: &[u8]| s.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match body.first()? {
        3 => Some(hex(body.get(7..15)?)),
        4 | 5 => {
            let hl = u16::from_be_bytes(body.get(4..6)?.try_into().ok()?) as usize;
            let hashed = body.get(6..6 + hl)?;
            let ul_at = 6 + hl;
            let ul = u16::from_be_bytes(body.get(ul_at..ul_at + 2)?.try_into().ok()?) as usize;
            let unhashed = body.get(ul_at + 2..ul_at + 2 + ul)?;
            for area in [hashed, unhashed] {
                let mut i = 0;
                while i < area.len() {
                    let l0 = area[i] as usize;
                    let (len, hdr) = if l0 < 192 {
                        (l0, 1)
                    } else if l0 < 255 {
                        (((l0 - 192) << 8) + *area.get(i + 1)? as usize + 192, 2)
                    } else {
                        (u32::from_be_bytes(area.get(i + 1..i + 5)?.try_into().ok()?) as usize, 5)
                    };
                    let sp = area.get(i + hdr..i + hdr + len)?;
                    match sp.first().map(|t| t & 0x7f) {
                        Some(16) => return Some(hex(sp.get(1..9)?)),
                        Some(33) => return Some(hex(sp.get(sp.len().checked_sub(8)?..)?)),
                        _ => {}
                    }
                    i += hdr + len;
                }
            }
            None
        }
        _ => None,
    }
}

pub fn rpminfo<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let name = spec(ev, obj, "name")?.ok_or("rpminfo_object without name")?;
    let pkgs = ev.ctx.rpm_packages()?;
    let mut items = Vec::new();
    for p in pkgs {
        if !name.matches(&p.name)? {
            continue;
        }
        let epoch = p.epoch.map(|e| e.to_string()).unwrap_or_else(|| "(none)".into());
        let evr = format!("{}:{}-{}", p.epoch.unwrap_or(0), p.version, p.release);
        let mut it = Item::new();
        it.set("name", p.name.clone())
            .set("arch", p.arch.clone())
            .set("epoch", epoch)
            .set("release", p.release.clone())
            .set("version", p.version.clone())
            .set("evr", evr.clone())
            .set("signature_keyid", p.signature_keyid.clone().unwrap_or_else(|| "0".into()))
            .set("extended_name", format!("{}-{}.{}", p.name, evr, p.arch));
        items.push(it);
    }
    Ok(Collected::items(items))
}

/// dpkginfo: packages from the target's dpkg status database (kensa_inventory's parser); only
/// packages whose files are on disk count as installed, as dpkg-query shows them.
pub fn dpkginfo<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let name = spec(ev, obj, "name")?.ok_or("dpkginfo_object without name")?;
    let Some(text) = ev.ctx.read_text("/var/lib/dpkg/status")? else { return Ok(Collected::items(vec![])) };
    let (entries, _problems) = kensa_inventory::os::dpkg::parse_status(&text);
    let mut items = Vec::new();
    for e in entries.iter().filter(|e| e.is_present()) {
        if !name.matches(&e.package)? {
            continue;
        }
        let (epoch, rest) = match e.version.split_once(':') {
            Some((ep, r)) if ep.chars().all(|c| c.is_ascii_digit()) => (ep.to_string(), r),
            _ => ("0".to_string(), e.version.as_str()),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v.to_string(), r.to_string()),
            None => (rest.to_string(), String::new()),
        };
        let mut it = Item::new();
        it.set("name", e.package.clone())
            .set("arch", e.architecture.clone())
            .set("epoch", epoch.clone())
            .set("release", release)
            .set("version", version)
            .set("evr", format!("{epoch}:{rest}"));
        items.push(it);
    }
    Ok(Collected::items(items))
}

const RPMFILE_CONFIG: u32 = 1;
const RPMFILE_DOC: u32 = 2;
const RPMFILE_GHOST: u32 = 64;
const RPMFILE_LICENSE: u32 = 128;
const RPMFILE_README: u32 = 256;

// rpmVerifyAttrs bits (rpm's rpmvf.h).
const VERIFY_DIGEST: u32 = 1 << 0;
const VERIFY_SIZE: u32 = 1 << 1;
const VERIFY_LINKTO: u32 = 1 << 2;
const VERIFY_USER: u32 = 1 << 3;
const VERIFY_GROUP: u32 = 1 << 4;
const VERIFY_MTIME: u32 = 1 << 5;
const VERIFY_MODE: u32 = 1 << 6;
const VERIFY_RDEV: u32 = 1 << 7;
const VERIFY_CAPS: u32 = 1 << 8;

fn id_map(ev: &Evaluator, path: &str) -> std::collections::HashMap<String, u32> {
    let text = ev.ctx.read_text(path).ok().flatten().unwrap_or_default();
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
    }).collect()
}

/// rpmverifyfile: each file the rpm database records, compared with the target's file like
/// `rpm -V`: size, mode, SHA-256 digest, link target, owner, group, mtime, each only where rpm
/// tests it (the file's `%verify` flags, and by file type: no size/digest/mtime for directories,
/// no size/digest/mtime/mode for symlinks). Device numbers and capabilities are not compared.
pub fn rpmverifyfile<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    use sha2::Digest;
    let specs: Vec<(&str, Option<crate::oval::EntitySpec>)> = ["name", "epoch", "version", "release", "arch", "filepath"]
        .into_iter()
        .map(|n| spec(ev, obj, n).map(|s| (n, s)))
        .collect::<Result<_, _>>()?;
    let b = obj.child("behaviors");
    let off = |k: &str| b.and_then(|b| b.attr(k)) == Some("true");
    let pkgs = ev.ctx.rpm_packages_with_files()?;
    let users = id_map(ev, "/etc/passwd");
    let groups = id_map(ev, "/etc/group");
    let mut items = Vec::new();
    for (p, files) in pkgs.iter() {
        let epoch = p.epoch.map(|e| e.to_string()).unwrap_or_else(|| "(none)".into());
        let pkg_fields = [("name", p.name.as_str()), ("epoch", epoch.as_str()), ("version", p.version.as_str()), ("release", p.release.as_str()), ("arch", p.arch.as_str())];
        let mut pkg_ok = true;
        for (n, v) in pkg_fields {
            if let Some((_, Some(s))) = specs.iter().find(|(k, _)| *k == n) {
                pkg_ok &= s.matches(v)?;
            }
        }
        if !pkg_ok {
            continue;
        }
        for f in files {
            if let Some((_, Some(s))) = specs.iter().find(|(k, _)| *k == "filepath") {
                if !s.matches(&f.path)? {
                    continue;
                }
            }
            let ghost = f.flags & RPMFILE_GHOST != 0;
            if (ghost && off("noghostfiles")) || (f.flags & RPMFILE_CONFIG != 0 && off("noconfigfiles")) {
                continue;
            }
            let md = ev.ctx.root.symlink_metadata(&f.path).ok();
            // The tests rpm runs for this file: its %verify flags, less what the behaviors turn
            // off, less what the file's type on disk makes meaningless (rpm's lib/verify.c).
            let mut tests = f.verify_flags;
            for (behavior, bit) in [("nomd5", VERIFY_DIGEST), ("nofiledigest", VERIFY_DIGEST), ("nosize", VERIFY_SIZE), ("nolinkto", VERIFY_LINKTO), ("nouser", VERIFY_USER), ("nogroup", VERIFY_GROUP), ("nomtime", VERIFY_MTIME), ("nomode", VERIFY_MODE)] {
                if off(behavior) {
                    tests &= !bit;
                }
            }
            tests &= match md.as_ref().map(|m| m.file_type) {
                Some(kensa_fs::FileType::File) => !(VERIFY_LINKTO | VERIFY_RDEV),
                Some(kensa_fs::FileType::Symlink) => !(VERIFY_DIGEST | VERIFY_SIZE | VERIFY_MTIME | VERIFY_MODE | VERIFY_RDEV | VERIFY_CAPS),
                Some(kensa_fs::FileType::Dir) => !(VERIFY_DIGEST | VERIFY_SIZE | VERIFY_MTIME | VERIFY_LINKTO | VERIFY_RDEV | VERIFY_CAPS),
                // Devices, FIFOs, sockets: rpm compares the device number of devices (kensa
                // cannot: `not performed`).
                Some(_) => !(VERIFY_DIGEST | VERIFY_SIZE | VERIFY_MTIME | VERIFY_LINKTO | VERIFY_CAPS),
                // Missing: nothing to compare.
                None => 0,
            };
            // Missing and %ghost files: nothing performed. A test rpm skips for an existing file is
            // reported `pass`, as OpenSCAP's probe reports it; one kensa cannot run (a digest
            // other than SHA-256, an owner name the target does not know) `not performed`.
            let verdict = |bit: u32, differs: &dyn Fn(&kensa_fs::Metadata) -> Option<bool>| -> &'static str {
                let Some(m) = md.as_ref().filter(|_| !ghost) else { return "not performed" };
                if tests & bit == 0 {
                    return "pass";
                }
                match differs(m) {
                    None => "not performed",
                    Some(true) => "fail",
                    Some(false) => "pass",
                }
            };
            let size = verdict(VERIFY_SIZE, &|m| Some(m.size != f.size));
            let mode = verdict(VERIFY_MODE, &|m| {
                let kind = match m.file_type {
                    kensa_fs::FileType::File => 0o100000,
                    kensa_fs::FileType::Dir => 0o040000,
                    kensa_fs::FileType::Symlink => 0o120000,
                    kensa_fs::FileType::Other => f.mode & 0o170000,
                };
                Some(kind | (m.mode & 0o7777) != f.mode & 0o177777)
            });
            // Only SHA-256 digests (RHEL 8+, Fedora, SUSE 15) are recomputed.
            let digest = verdict(VERIFY_DIGEST, &|_| {
                if f.digest_algo != 8 || f.digest.is_empty() {
                    return None;
                }
                ev.ctx.root.read(&f.path).ok().map(|data| hex_lower(&sha2::Sha256::digest(&data)) != f.digest)
            });
            let link = verdict(VERIFY_LINKTO, &|_| ev.ctx.root.read_link(&f.path).ok().map(|t| t.to_string_lossy() != f.link_to));
            let user = verdict(VERIFY_USER, &|m| users.get(&f.user).map(|&u| u != m.uid));
            let group = verdict(VERIFY_GROUP, &|m| groups.get(&f.group).map(|&g| g != m.gid));
            let mtime = verdict(VERIFY_MTIME, &|m| Some(m.mtime != f.mtime));
            // Device numbers are not exposed by filesystem sources: compared only where rpm
            // skips them (everything but device files).
            let device = verdict(VERIFY_RDEV, &|_| None);
            // File capabilities live in extended attributes, which filesystem sources do not
            // expose: compared only where rpm skips them (everything but regular files).
            let caps = verdict(VERIFY_CAPS, &|_| None);
            let mut it = Item::new();
            it.set("name", p.name.clone())
                .set("epoch", epoch.clone())
                .set("version", p.version.clone())
                .set("release", p.release.clone())
                .set("arch", p.arch.clone())
                .set("extended_name", format!("{}-{}:{}-{}.{}", p.name, p.epoch.unwrap_or(0), p.version, p.release, p.arch))
                .set("filepath", f.path.clone())
                .set("size_differs", size)
                .set("mode_differs", mode)
                .set("md5_differs", digest)
                .set("filedigest_differs", digest)
                .set("ownership_differs", user)
                .set("group_differs", group)
                .set("mtime_differs", mtime)
                .set("device_differs", device)
                .set("capabilities_differ", caps)
                .set("link_mismatch", link)
                .set("configuration_file", (f.flags & RPMFILE_CONFIG != 0).to_string())
                .set("documentation_file", (f.flags & RPMFILE_DOC != 0).to_string())
                .set("ghost_file", ghost.to_string())
                .set("license_file", (f.flags & RPMFILE_LICENSE != 0).to_string())
                .set("readme_file", (f.flags & RPMFILE_README != 0).to_string());
            items.push(it);
        }
    }
    Ok(Collected::items(items))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
