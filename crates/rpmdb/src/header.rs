//! The rpm header blob as stored in the package database.
//!
//! Layout (all integers big-endian): `il: u32`, `dl: u32`, then `il` index entries of 16 bytes
//! (`tag: i32, type: u32, offset: i32, count: u32`), then the `dl`-byte data store the offsets point
//! into. An installed header starts with an immutable region (tag 63, whose trailer lives in the data
//! store) followed by "dribble" entries rpm adds at install time (INSTALLTIME, ...); a dribble entry
//! replaces a region entry with the same tag, so lookups take the last entry of a tag.
//!
//! Every read is bounds-checked against the data store: a malformed header is a [`HeaderError`]
//! naming the tag, never a panic.

use std::fmt;

/// Largest header blob accepted. rpm itself allows up to 256 MiB (`HEADER_DATA_MAX`); real installed
/// headers are well under 16 MiB (a texlive-doc header with ~100k files is about 10 MiB), and a
/// lower cap keeps memory bounded on hostile databases.
pub const MAX_HEADER_SIZE: usize = 64 << 20;

/// Most strings read from one array tag. The largest real packages list about 100k files; a
/// hostile count of empty strings could otherwise turn a 64 MiB blob into gigabytes of `String`s.
const MAX_STRINGS: usize = 1 << 20;

/// rpm's own limit on the number of index entries (`hdrchkTags`).
const MAX_INDEX_ENTRIES: u32 = 0xffff;

/// Tags this crate reads (values from rpm's `rpmtag.h`).
pub mod tag {
    pub const SIGMD5: i32 = 261;
    pub const NAME: i32 = 1000;
    pub const VERSION: i32 = 1001;
    pub const RELEASE: i32 = 1002;
    pub const EPOCH: i32 = 1003;
    pub const SUMMARY: i32 = 1004;
    pub const INSTALLTIME: i32 = 1008;
    pub const SIZE: i32 = 1009;
    pub const VENDOR: i32 = 1011;
    pub const LICENSE: i32 = 1014;
    pub const ARCH: i32 = 1022;
    pub const OLDFILENAMES: i32 = 1027;
    pub const SOURCERPM: i32 = 1044;
    pub const DIRINDEXES: i32 = 1116;
    pub const BASENAMES: i32 = 1117;
    pub const DIRNAMES: i32 = 1118;
    pub const LONGSIZE: i32 = 5009;
    pub const MODULARITYLABEL: i32 = 5096;

    /// A readable name for messages.
    pub fn name(tag: i32) -> String {
        let n = match tag {
            SIGMD5 => "SIGMD5",
            NAME => "NAME",
            VERSION => "VERSION",
            RELEASE => "RELEASE",
            EPOCH => "EPOCH",
            SUMMARY => "SUMMARY",
            INSTALLTIME => "INSTALLTIME",
            SIZE => "SIZE",
            VENDOR => "VENDOR",
            LICENSE => "LICENSE",
            ARCH => "ARCH",
            OLDFILENAMES => "OLDFILENAMES",
            SOURCERPM => "SOURCERPM",
            DIRINDEXES => "DIRINDEXES",
            BASENAMES => "BASENAMES",
            DIRNAMES => "DIRNAMES",
            LONGSIZE => "LONGSIZE",
            MODULARITYLABEL => "MODULARITYLABEL",
            _ => return format!("tag {tag}"),
        };
        format!("{n} ({tag})")
    }
}

/// Data types of index entries (`rpmTagType`).
mod ty {
    pub const CHAR: u32 = 1;
    pub const INT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const INT32: u32 = 4;
    pub const INT64: u32 = 5;
    pub const STRING: u32 = 6;
    pub const BIN: u32 = 7;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// What is wrong with a header blob; `field` names the tag or the header part concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    pub field: String,
    pub problem: String,
}

impl HeaderError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        HeaderError { field: field.into(), problem: problem.into() }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for HeaderError {}

#[derive(Clone, Copy, Debug)]
struct Entry {
    tag: i32,
    ty: u32,
    offset: i32,
    count: usize,
}

/// A parsed view of one header blob.
pub struct Header<'a> {
    entries: Vec<Entry>,
    /// Number of index entries in the leading region (0 when there is none): the entries after it
    /// are dribbles, which replace region entries of the same tag (rpm's `headerImport`).
    region_len: usize,
    store: &'a [u8],
}

pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

impl<'a> Header<'a> {
    /// Parses the index of a header blob. Entry data is checked when read.
    pub fn parse(blob: &'a [u8]) -> Result<Self, HeaderError> {
        if blob.len() > MAX_HEADER_SIZE {
            return Err(HeaderError::new("header", format!("{} bytes is over the {MAX_HEADER_SIZE}-byte limit", blob.len())));
        }
        if blob.len() < 8 {
            return Err(HeaderError::new("header", format!("only {} bytes, shorter than the 8-byte preamble", blob.len())));
        }
        let il = be32(blob, 0);
        let dl = be32(blob, 4);
        if il == 0 || il > MAX_INDEX_ENTRIES {
            return Err(HeaderError::new("header", format!("implausible index entry count {il}")));
        }
        let index_end = 8 + il as usize * 16;
        let store_end = index_end.checked_add(dl as usize).filter(|&e| e <= blob.len()).ok_or_else(|| {
            HeaderError::new("header", format!("{il} index entries and {dl} data bytes need more than the blob's {} bytes", blob.len()))
        })?;
        let store = &blob[index_end..store_end];
        let mut entries = Vec::with_capacity(il as usize);
        for i in 0..il as usize {
            let e = &blob[8 + i * 16..8 + i * 16 + 16];
            let tag = be32(e, 0) as i32;
            let ty = be32(e, 4);
            let offset = be32(e, 8) as i32;
            let count = be32(e, 12);
            // Offsets are checked when an entry is read, so a damaged entry only spoils its own tag
            // (a package whose file list is damaged is still listed).
            entries.push(Entry { tag, ty, offset, count: count as usize });
        }
        let region_len = region_len(&entries, store);
        Ok(Header { entries, store, region_len })
    }

    /// The entry rpm would use for `tag`: a dribble entry over a region entry, the first otherwise.
    fn entry(&self, tag: i32) -> Option<Entry> {
        let (region, dribbles) = self.entries.split_at(self.region_len);
        dribbles.iter().rev().find(|e| e.tag == tag).or_else(|| region.iter().find(|e| e.tag == tag)).copied()
    }

    /// True when the header has an entry for `tag`.
    pub fn has(&self, tag: i32) -> bool {
        self.entry(tag).is_some()
    }

    /// The entry's offset, checked to lie inside the data store.
    fn offset(&self, e: &Entry) -> Result<usize, HeaderError> {
        if e.offset < 0 || e.offset as usize > self.store.len() {
            return Err(HeaderError::new(tag::name(e.tag), format!("offset {} is outside the {}-byte data store", e.offset, self.store.len())));
        }
        Ok(e.offset as usize)
    }

    fn bytes(&self, e: &Entry, elem_size: usize) -> Result<&'a [u8], HeaderError> {
        let offset = self.offset(e)?;
        let len = e.count.checked_mul(elem_size).ok_or_else(|| HeaderError::new(tag::name(e.tag), "count overflows"))?;
        let end = offset.checked_add(len).filter(|&end| end <= self.store.len());
        match end {
            Some(end) => Ok(&self.store[offset..end]),
            None => Err(HeaderError::new(
                tag::name(e.tag),
                format!("{} values of {elem_size} bytes at offset {} run past the {}-byte data store", e.count, e.offset, self.store.len()),
            )),
        }
    }

    /// `count` NUL-terminated strings starting at the entry's offset.
    fn strings_of(&self, e: &Entry) -> Result<Vec<String>, HeaderError> {
        let offset = self.offset(e)?;
        // Each string takes at least one byte, so a count beyond the store size is corrupt.
        if e.count > self.store.len() - offset {
            return Err(HeaderError::new(tag::name(e.tag), format!("{} strings cannot fit in the data store", e.count)));
        }
        if e.count > MAX_STRINGS {
            return Err(HeaderError::new(tag::name(e.tag), format!("{} strings is over the limit of {MAX_STRINGS}", e.count)));
        }
        let mut out = Vec::with_capacity(e.count);
        let mut pos = offset;
        for _ in 0..e.count {
            let rest = &self.store[pos..];
            let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| HeaderError::new(tag::name(e.tag), "string is not NUL-terminated inside the data store"))?;
            out.push(String::from_utf8_lossy(&rest[..nul]).into_owned());
            pos += nul + 1;
        }
        Ok(out)
    }

    /// A STRING or I18NSTRING value (the first, untranslated, string of an I18NSTRING).
    pub fn string(&self, tag: i32) -> Result<Option<String>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        match e.ty {
            ty::STRING | ty::I18NSTRING | ty::STRING_ARRAY => {
                if e.count == 0 {
                    return Err(HeaderError::new(tag::name(tag), "string entry with count 0"));
                }
                let first = Entry { count: 1, ..e };
                Ok(self.strings_of(&first)?.pop())
            }
            other => Err(HeaderError::new(tag::name(tag), format!("expected a string, found type {other}"))),
        }
    }

    /// A STRING_ARRAY value (a single STRING is accepted as a one-element array).
    pub fn string_array(&self, tag: i32) -> Result<Option<Vec<String>>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        match e.ty {
            ty::STRING_ARRAY | ty::STRING | ty::I18NSTRING => Ok(Some(self.strings_of(&e)?)),
            other => Err(HeaderError::new(tag::name(tag), format!("expected a string array, found type {other}"))),
        }
    }

    /// Integer values of any integer type, widened to u64.
    pub fn integers(&self, tag: i32) -> Result<Option<Vec<u64>>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        let size = match e.ty {
            ty::CHAR | ty::INT8 => 1,
            ty::INT16 => 2,
            ty::INT32 => 4,
            ty::INT64 => 8,
            other => return Err(HeaderError::new(tag::name(tag), format!("expected an integer, found type {other}"))),
        };
        let b = self.bytes(&e, size)?;
        Ok(Some(
            b.chunks_exact(size)
                .map(|c| c.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
                .collect(),
        ))
    }

    /// The first value of an integer tag.
    pub fn integer(&self, tag: i32) -> Result<Option<u64>, HeaderError> {
        match self.integers(tag)? {
            None => Ok(None),
            Some(v) => v.first().copied().map(Some).ok_or_else(|| HeaderError::new(tag::name(tag), "integer entry with count 0")),
        }
    }

    /// A BIN value.
    pub fn binary(&self, tag: i32) -> Result<Option<&'a [u8]>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        if e.ty != ty::BIN {
            return Err(HeaderError::new(tag::name(tag), format!("expected binary data, found type {}", e.ty)));
        }
        Ok(Some(self.bytes(&e, 1)?))
    }
}

/// Region tags: HEADERIMAGE, HEADERSIGNATURES, HEADERIMMUTABLE.
const REGION_TAGS: [i32; 3] = [61, 62, 63];

/// The entry count of the region the index starts with, from its trailer (a 16-byte entry in the
/// data store whose negative offset is minus the region's index size). A missing or implausible
/// trailer means no region: every entry then counts as a dribble, and the last entry of a tag wins.
fn region_len(entries: &[Entry], store: &[u8]) -> usize {
    let Some(first) = entries.first() else { return 0 };
    if !REGION_TAGS.contains(&first.tag) || first.ty != ty::BIN || first.count != 16 || first.offset < 0 {
        return 0;
    }
    let off = first.offset as usize;
    let Some(trailer) = store.get(off..off + 16) else { return 0 };
    let trailer_offset = be32(trailer, 8) as i32;
    if trailer_offset >= 0 || trailer_offset % 16 != 0 {
        return 0;
    }
    let ril = (trailer_offset.unsigned_abs() / 16) as usize;
    if ril == 0 || ril > entries.len() {
        return 0;
    }
    ril
}

/// The package fields kensa needs from one installed header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    /// `None` when the header has no EPOCH tag.
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// Empty for `gpg-pubkey` pseudo-packages.
    pub arch: String,
    /// The source rpm's file name (`glibc-2.34-2.cm2.src.rpm`); empty when absent.
    pub source_rpm: String,
    pub vendor: String,
    pub license: String,
    pub summary: String,
    /// Installed size in bytes (LONGSIZE, else SIZE).
    pub size: Option<u64>,
    pub install_time: Option<i64>,
    pub modularity_label: String,
    /// Lower-case hex of SIGMD5 (empty when absent).
    pub sigmd5: String,
    /// Absolute paths of the package's files, in header order.
    pub files: Vec<String>,
    /// Set when the file list could not be read; the other fields are still valid.
    pub files_error: Option<HeaderError>,
}

impl RpmPackage {
    /// True for the `gpg-pubkey` entries rpm keeps for imported keys: not packages.
    pub fn is_gpg_pubkey(&self) -> bool {
        self.name == "gpg-pubkey"
    }
}

/// Reads the package fields from a header blob. A missing NAME, VERSION or RELEASE is an error;
/// malformed file data only sets [`RpmPackage::files_error`].
pub fn parse_package(blob: &[u8]) -> Result<RpmPackage, HeaderError> {
    let h = Header::parse(blob)?;
    let required = |t: i32| -> Result<String, HeaderError> { h.string(t)?.ok_or_else(|| HeaderError::new(tag::name(t), "missing")) };
    // Old gpg-pubkey headers store rpm's "(none)" placeholder literally (SOURCERPM): it means absent.
    let opt = |t: i32| -> Result<String, HeaderError> { Ok(h.string(t)?.filter(|s| s != "(none)").unwrap_or_default()) };
    let epoch = match h.integer(tag::EPOCH)? {
        None => None,
        Some(e) => Some(u32::try_from(e).map_err(|_| HeaderError::new(tag::name(tag::EPOCH), format!("{e} is out of range")))?),
    };
    let size = match h.integer(tag::LONGSIZE)? {
        Some(s) => Some(s),
        None => h.integer(tag::SIZE)?,
    };
    let sigmd5 = h.binary(tag::SIGMD5)?.map(|b| b.iter().map(|x| format!("{x:02x}")).collect()).unwrap_or_default();
    let (files, files_error) = match file_list(&h) {
        Ok(f) => (f, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Ok(RpmPackage {
        name: required(tag::NAME)?,
        epoch,
        version: required(tag::VERSION)?,
        release: required(tag::RELEASE)?,
        arch: opt(tag::ARCH)?,
        source_rpm: opt(tag::SOURCERPM)?,
        vendor: opt(tag::VENDOR)?,
        license: opt(tag::LICENSE)?,
        summary: opt(tag::SUMMARY)?,
        size,
        install_time: h.integer(tag::INSTALLTIME)?.map(|t| t as i64),
        modularity_label: opt(tag::MODULARITYLABEL)?,
        sigmd5,
        files,
        files_error,
    })
}

/// BASENAMES + DIRNAMES + DIRINDEXES (rpm >= 4), else the legacy OLDFILENAMES.
fn file_list(h: &Header<'_>) -> Result<Vec<String>, HeaderError> {
    let Some(basenames) = h.string_array(tag::BASENAMES)? else {
        return Ok(h.string_array(tag::OLDFILENAMES)?.unwrap_or_default());
    };
    let dirnames = h.string_array(tag::DIRNAMES)?.ok_or_else(|| HeaderError::new(tag::name(tag::DIRNAMES), "missing while BASENAMES is present"))?;
    let dirindexes = h.integers(tag::DIRINDEXES)?.ok_or_else(|| HeaderError::new(tag::name(tag::DIRINDEXES), "missing while BASENAMES is present"))?;
    if dirindexes.len() != basenames.len() {
        return Err(HeaderError::new(
            tag::name(tag::DIRINDEXES),
            format!("{} entries for {} BASENAMES", dirindexes.len(), basenames.len()),
        ));
    }
    basenames
        .iter()
        .zip(&dirindexes)
        .map(|(base, &idx)| {
            let dir = dirnames.get(idx as usize).ok_or_else(|| {
                HeaderError::new(tag::name(tag::DIRINDEXES), format!("index {idx} is beyond the {} DIRNAMES", dirnames.len()))
            })?;
            Ok(format!("{dir}{base}"))
        })
        .collect()
}
