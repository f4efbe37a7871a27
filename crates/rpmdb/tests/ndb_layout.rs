//! ndb layouts the real SLE 15 database does not exercise: more than one slot page, free slots,
//! free space between blobs, slot order unlike block order, a blob with a bad checksum. The file is
//! written here following rpm's `lib/backend/ndb/rpmpkg.c` (Debian's rpm cannot write ndb) from
//! the real database's header blobs.

use std::io::Cursor;

use kensa_rpmdb::PackageDb;

const PAGE: usize = 4096;
const BLK: usize = 16;

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// `placed` lists (pkgidx, blob) in file (block) order; slots are assigned in pkgidx order with a
/// free slot after every fifth. Returns the file.
fn write_ndb(placed: &[(u32, &[u8])], slot_pages: usize) -> Vec<u8> {
    let mut file = vec![0u8; slot_pages * PAGE];
    for slot in 0..slot_pages * PAGE / 16 {
        file[slot * 16..slot * 16 + 4].copy_from_slice(b"Slot");
    }
    file[0..4].copy_from_slice(b"RpmP");
    file[4..8].copy_from_slice(&0u32.to_le_bytes());
    file[8..12].copy_from_slice(&7u32.to_le_bytes());
    file[12..16].copy_from_slice(&(slot_pages as u32).to_le_bytes());
    file[16..20].copy_from_slice(&(placed.len() as u32 + 1).to_le_bytes());
    let mut locations = Vec::new();
    for (i, (idx, blob)) in placed.iter().enumerate() {
        if i % 7 == 3 {
            file.extend_from_slice(&[0u8; 3 * BLK]); // free space left by a removed package
        }
        let blkoff = file.len() / BLK;
        let blkcnt = (16 + blob.len() + 12).div_ceil(BLK);
        let start = file.len();
        file.extend_from_slice(b"BlbS");
        file.extend_from_slice(&idx.to_le_bytes());
        file.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        file.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        file.extend_from_slice(blob);
        file.resize(start + blkcnt * BLK - 12, 0);
        let adler = adler32(&file[start..]);
        file.extend_from_slice(&adler.to_le_bytes());
        file.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        file.extend_from_slice(b"BlbE");
        locations.push((*idx, blkoff as u32, blkcnt as u32));
    }
    locations.sort();
    let mut slot = 2; // the file header takes the first two slots
    for (n, (idx, blkoff, blkcnt)) in locations.into_iter().enumerate() {
        if n % 5 == 4 {
            slot += 1; // a free slot
        }
        let s = slot * 16;
        file[s + 4..s + 8].copy_from_slice(&idx.to_le_bytes());
        file[s + 8..s + 12].copy_from_slice(&blkoff.to_le_bytes());
        file[s + 12..s + 16].copy_from_slice(&blkcnt.to_le_bytes());
        slot += 1;
    }
    assert!(slot * 16 <= slot_pages * PAGE);
    file
}

#[test]
fn two_slot_pages_free_space_and_block_order() {
    let Some(path) = kensa_testdata::shared_path("rpmdb/sle15-bci/Packages.db") else { return };
    let real: Vec<Vec<u8>> = PackageDb::open_path(&path).unwrap().map(|b| b.unwrap().data).collect();
    // 300 packages need a second slot page (a page holds 256 slots, the first only 254).
    let placed: Vec<(u32, &[u8])> = (0..300u32).map(|i| (((i * 37) % 300) + 1, real[i as usize % real.len()].as_slice())).collect();
    let file = write_ndb(&placed, 2);
    let got: Vec<(u32, Vec<u8>)> = PackageDb::open(Box::new(Cursor::new(file.clone())), None).unwrap().map(|b| b.map(|b| (b.key, b.data)).unwrap()).collect();
    let want: Vec<(u32, Vec<u8>)> = placed.iter().map(|(i, b)| (*i, b.to_vec())).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "blobs differ or are not in block order");

    // A flipped byte inside one blob: that package fails its checksum, the others still read.
    let mut damaged = file;
    let first_blob = 2 * PAGE;
    damaged[first_blob + 40] ^= 0x01;
    let results: Vec<_> = PackageDb::open(Box::new(Cursor::new(damaged)), None).unwrap().collect();
    assert_eq!(results.len(), 300);
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("adler32") && err.contains(&format!("package {}", placed[0].0)), "{err}");
    assert!(results[1..].iter().all(|r| r.is_ok()));
}

#[test]
fn slot_pointing_past_the_end_is_a_truncation_error() {
    let Some(path) = kensa_testdata::shared_path("rpmdb/sle15-bci/Packages.db") else { return };
    let real: Vec<Vec<u8>> = PackageDb::open_path(&path).unwrap().take(3).map(|b| b.unwrap().data).collect();
    let placed: Vec<(u32, &[u8])> = real.iter().enumerate().map(|(i, b)| (i as u32 + 1, b.as_slice())).collect();
    let mut file = write_ndb(&placed, 1);
    file.truncate(file.len() - BLK);
    let err = PackageDb::open(Box::new(Cursor::new(file)), None).err().expect("truncated file must not open").to_string();
    assert!(err.contains("truncated"), "{err}");
}
