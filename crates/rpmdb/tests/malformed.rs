//! Damaged input gives clear errors, never a panic, a hang or unbounded memory: synthetic header
//! blobs with one defect each, and many mutated copies of real databases of every backend.

use std::io::Cursor;

use kensa_rpmdb::header::tag;
use kensa_rpmdb::{parse_package, DbError, PackageDb};

/// Deterministic pseudo-random numbers (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const STRING: u32 = 6;
const INT32: u32 = 4;
const STRING_ARRAY: u32 = 8;

enum Val<'a> {
    Str(&'a str),
    Strs(&'a [&'a str]),
    Ints(&'a [u32]),
}

/// Builds a header blob the way rpm lays one out (index, then data store, big-endian).
fn header(entries: &[(i32, Val)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut store = Vec::new();
    for (t, v) in entries {
        let (ty, count) = match v {
            Val::Str(_) => (STRING, 1),
            Val::Strs(s) => (STRING_ARRAY, s.len() as u32),
            Val::Ints(i) => {
                while store.len() % 4 != 0 {
                    store.push(0);
                }
                (INT32, i.len() as u32)
            }
        };
        index.extend_from_slice(&t.to_be_bytes());
        index.extend_from_slice(&ty.to_be_bytes());
        index.extend_from_slice(&(store.len() as u32).to_be_bytes());
        index.extend_from_slice(&count.to_be_bytes());
        match v {
            Val::Str(s) => {
                store.extend_from_slice(s.as_bytes());
                store.push(0);
            }
            Val::Strs(ss) => {
                for s in *ss {
                    store.extend_from_slice(s.as_bytes());
                    store.push(0);
                }
            }
            Val::Ints(is) => is.iter().for_each(|i| store.extend_from_slice(&i.to_be_bytes())),
        }
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
    blob.extend(index);
    blob.extend(store);
    blob
}

fn base_entries<'a>() -> Vec<(i32, Val<'a>)> {
    vec![
        (tag::NAME, Val::Str("bash")),
        (tag::VERSION, Val::Str("5.1.8")),
        (tag::RELEASE, Val::Str("9.el9")),
        (tag::EPOCH, Val::Ints(&[3])),
        (tag::ARCH, Val::Str("x86_64")),
    ]
}

#[test]
fn synthetic_headers_with_good_and_bad_file_lists() {
    let mut e = base_entries();
    e.push((tag::BASENAMES, Val::Strs(&["bash", "sh", "bash.1.gz"])));
    e.push((tag::DIRNAMES, Val::Strs(&["/usr/bin/", "/usr/share/man/man1/"])));
    e.push((tag::DIRINDEXES, Val::Ints(&[0, 0, 1])));
    let p = parse_package(&header(&e)).unwrap();
    assert_eq!((p.name.as_str(), p.epoch, p.version.as_str(), p.release.as_str()), ("bash", Some(3), "5.1.8", "9.el9"));
    assert_eq!(p.files, ["/usr/bin/bash", "/usr/bin/sh", "/usr/share/man/man1/bash.1.gz"]);
    assert!(p.files_error.is_none());

    // A directory index past DIRNAMES: the package stays, its files are reported unreadable.
    let mut e = base_entries();
    e.push((tag::BASENAMES, Val::Strs(&["bash", "sh"])));
    e.push((tag::DIRNAMES, Val::Strs(&["/usr/bin/"])));
    e.push((tag::DIRINDEXES, Val::Ints(&[0, 7])));
    let p = parse_package(&header(&e)).unwrap();
    assert_eq!(p.name, "bash");
    assert!(p.files.is_empty());
    let err = p.files_error.unwrap();
    assert!(err.field.starts_with("DIRINDEXES") && err.problem.contains("index 7"), "{err}");

    // Fewer DIRINDEXES than BASENAMES.
    let mut e = base_entries();
    e.push((tag::BASENAMES, Val::Strs(&["bash", "sh"])));
    e.push((tag::DIRNAMES, Val::Strs(&["/usr/bin/"])));
    e.push((tag::DIRINDEXES, Val::Ints(&[0])));
    assert!(parse_package(&header(&e)).unwrap().files_error.unwrap().problem.contains("1 entries for 2 BASENAMES"));

    // BASENAMES whose offset points outside the data store: still the package, without files.
    let mut e = base_entries();
    e.push((tag::BASENAMES, Val::Strs(&["bash"])));
    e.push((tag::DIRNAMES, Val::Strs(&["/usr/bin/"])));
    e.push((tag::DIRINDEXES, Val::Ints(&[0])));
    let mut blob = header(&e);
    let basenames_entry = 8 + 5 * 16;
    blob[basenames_entry + 8..basenames_entry + 12].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    let p = parse_package(&blob).unwrap();
    assert_eq!(p.name, "bash");
    assert!(p.files_error.unwrap().field.starts_with("BASENAMES"));

    // Legacy OLDFILENAMES.
    let mut e = base_entries();
    e.push((tag::OLDFILENAMES, Val::Strs(&["/bin/bash", "/bin/sh"])));
    assert_eq!(parse_package(&header(&e)).unwrap().files, ["/bin/bash", "/bin/sh"]);
}

#[test]
fn synthetic_headers_with_fatal_defects_name_the_field() {
    let mut e = base_entries();
    e.remove(0);
    let err = parse_package(&header(&e)).unwrap_err();
    assert!(err.field.starts_with("NAME") && err.problem == "missing", "{err}");

    // NAME not NUL-terminated: the data store ends inside it.
    let e = vec![(tag::VERSION, Val::Str("1")), (tag::RELEASE, Val::Str("1")), (tag::NAME, Val::Str("bash"))];
    let mut blob = header(&e);
    blob.pop();
    let dl = u32::from_be_bytes(blob[4..8].try_into().unwrap()) - 1;
    blob[4..8].copy_from_slice(&dl.to_be_bytes());
    let err = parse_package(&blob).unwrap_err();
    assert!(err.field.starts_with("NAME") && err.problem.contains("NUL"), "{err}");

    // EPOCH with a count that runs past the store.
    let mut blob = header(&base_entries());
    let epoch_entry = 8 + 3 * 16;
    blob[epoch_entry + 12..epoch_entry + 16].copy_from_slice(&1_000_000u32.to_be_bytes());
    let err = parse_package(&blob).unwrap_err();
    assert!(err.field.starts_with("EPOCH"), "{err}");

    // Preamble claims more data than the blob holds.
    let mut blob = header(&base_entries());
    blob[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(parse_package(&blob).unwrap_err().field, "header");
    assert_eq!(parse_package(&[0, 0]).unwrap_err().field, "header");
    assert_eq!(parse_package(&[0xff; 64]).unwrap_err().field, "header");
}

/// Truncations and random byte damage of real header blobs: always a result, never a panic.
#[test]
fn mutated_real_header_blobs() {
    let Some(dir) = kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0") else { return };
    let blobs: Vec<Vec<u8>> = PackageDb::open_path(&dir.join("rpmdb.sqlite")).unwrap().take(8).map(|b| b.unwrap().data).collect();
    let mut rng = Rng(0x5eed);
    let (mut ok, mut err) = (0, 0);
    for blob in &blobs {
        for cut in [0, 1, 7, 8, 9, 16, 24, blob.len() / 3, blob.len() / 2, blob.len() - 1] {
            match parse_package(&blob[..cut]) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.field.is_empty() && !e.problem.is_empty());
                    err += 1
                }
            }
        }
        for _ in 0..300 {
            let mut m = blob.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len());
                m[at] = rng.next() as u8;
            }
            // Target the index now and then: offsets and counts are where the danger is.
            let il = u32::from_be_bytes(m[0..4].try_into().unwrap()).min(64) as usize;
            if il > 0 && 8 + il * 16 <= m.len() {
                let at = 8 + rng.below(il) * 16 + 8 + rng.below(8);
                m[at] = rng.next() as u8;
            }
            match parse_package(&m) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

/// Opens and fully iterates a database image held in memory; returns (records read, errors).
fn read_all(bytes: Vec<u8>) -> Result<(usize, usize), DbError> {
    let db = PackageDb::open(Box::new(Cursor::new(bytes)), None)?;
    let (mut good, mut bad) = (0, 0);
    for r in db.packages() {
        match r {
            Ok(_) => good += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                bad += 1
            }
        }
    }
    Ok((good, bad))
}

fn mutate_database(rel: &str, expected: usize, garbled_copies: usize) {
    let Some(path) = kensa_testdata::shared_path(rel) else { return };
    let original = std::fs::read(&path).unwrap();
    assert_eq!(read_all(original.clone()).unwrap(), (expected, 0), "{rel} undamaged");
    let mut rng = Rng(original.len() as u64);

    // Truncated copies are errors when opened or when the cut records are read. (Cutting the last
    // bytes may lose nothing: sqlite ignores a partial last page.)
    for cut in [0, 10, 100, 512, 4096, original.len() / 2, original.len() - 4096, original.len() - 1] {
        match read_all(original[..cut].to_vec()) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok((good, bad)) => assert!(cut > original.len() / 2 || good < expected || bad > 0, "{rel} cut at {cut}: {good} good, {bad} bad"),
        }
    }
    // Random damage anywhere, including the structural pages at the start.
    let mut noticed = 0;
    for i in 0..garbled_copies {
        let mut m = original.clone();
        let at = if i % 3 == 0 { rng.below(8192.min(m.len())) } else { rng.below(m.len()) };
        let len = 1 + rng.below(256);
        for b in m.iter_mut().skip(at).take(len) {
            *b = rng.next() as u8;
        }
        match read_all(m) {
            Err(_) => noticed += 1,
            Ok((good, bad)) if good != expected || bad > 0 => noticed += 1,
            Ok(_) => {} // damage in free space or in a field nobody reads
        }
    }
    assert!(noticed > 0, "{rel}: no damage was ever noticed");
}

#[test]
fn mutated_ndb() {
    mutate_database("rpmdb/sle15-bci/Packages.db", 35, 60);
}

#[test]
fn mutated_sqlite() {
    mutate_database("rpmdb/cbl-mariner-2.0/rpmdb.sqlite", 129, 20);
}

#[test]
fn mutated_berkeley_db() {
    mutate_database("rpmdb/centos7-plain/Packages", 144, 30);
}

/// An installed header: an immutable region (tag 63 + trailer) followed by dribble entries that rpm
/// adds at install time; a dribble replaces the region's entry of the same tag.
#[test]
fn dribble_entries_replace_region_entries() {
    let region = header(&[
        (tag::NAME, Val::Str("bash")),
        (tag::VERSION, Val::Str("5.1.8")),
        (tag::RELEASE, Val::Str("9.el9")),
        (tag::VENDOR, Val::Str("packager")),
        (tag::ARCH, Val::Str("x86_64")),
    ]);
    // Rebuild as: [63 region entry][5 region entries][1 dribble], store = region data + trailer + dribble data.
    let il = 5usize;
    let region_index = &region[8..8 + il * 16];
    let mut store = region[8 + il * 16..].to_vec();
    let trailer_at = store.len() as u32;
    let ril = (il + 1) as i32;
    store.extend_from_slice(&63i32.to_be_bytes());
    store.extend_from_slice(&7u32.to_be_bytes());
    store.extend_from_slice(&(-(ril * 16)).to_be_bytes());
    store.extend_from_slice(&16u32.to_be_bytes());
    let dribble_at = store.len() as u32;
    store.extend_from_slice(b"installer\0");
    let mut blob = Vec::new();
    blob.extend_from_slice(&((il + 2) as u32).to_be_bytes());
    blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
    let push_entry = |blob: &mut Vec<u8>, t: i32, ty: u32, off: u32, count: u32| {
        for word in [t as u32, ty, off, count] {
            blob.extend_from_slice(&word.to_be_bytes());
        }
    };
    push_entry(&mut blob, 63, 7, trailer_at, 16);
    blob.extend_from_slice(region_index);
    push_entry(&mut blob, tag::VENDOR, STRING, dribble_at, 1);
    blob.extend(store);
    let p = parse_package(&blob).unwrap();
    assert_eq!((p.name.as_str(), p.arch.as_str(), p.vendor.as_str()), ("bash", "x86_64", "installer"));
}
