//! Partition tables: GPT, MBR with extended/logical partitions, or none (a bare filesystem).
//!
//! GPT is read here directly rather than with the `gpt` crate: that crate is built around a
//! `std::fs::File` it may write to, while we need ~80 lines of read-only parsing over [`BlockDev`].

use std::collections::HashSet;
use std::io;

use crate::block::{corrupt, le16, le32, le64, read_vec, BlockDev};

/// The kind of partition table found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    Gpt,
    Mbr,
    /// No table: the whole disk is one volume.
    None,
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Partition number as Linux names it (`sda1` is 1; MBR logical partitions start at 5).
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// GPT type GUID, or the MBR type byte as two hex digits.
    pub type_id: String,
    /// PARTUUID as Linux reports it (GPT unique GUID, or `<disk signature>-<number>` for MBR).
    pub part_uuid: Option<String>,
    /// GPT partition name (PARTLABEL).
    pub part_label: Option<String>,
}

/// Largest GPT partition-entry array we read.
const MAX_GPT_ARRAY: u64 = 1 << 20;
/// Most logical partitions we follow in an EBR chain.
const MAX_LOGICAL: usize = 128;

/// Reads the partition table of a disk.
pub fn scan(dev: &dyn BlockDev) -> io::Result<(TableKind, Vec<Partition>)> {
    if dev.size() < 1024 {
        return Ok((TableKind::None, Vec::new()));
    }
    for sector in [512u64, 4096] {
        if dev.size() >= sector * 2 {
            let mut sig = [0u8; 8];
            dev.read_at(sector, &mut sig)?;
            if &sig == b"EFI PART" {
                return Ok((TableKind::Gpt, gpt(dev, sector)?));
            }
        }
    }
    let mbr = read_vec(dev, 0, 512, 512, "MBR")?;
    if mbr[510] == 0x55 && mbr[511] == 0xAA {
        if let Some(parts) = dos(dev, &mbr)? {
            return Ok((TableKind::Mbr, parts));
        }
    }
    Ok((TableKind::None, Vec::new()))
}

/// Formats a GUID stored in the mixed-endian on-disk layout.
pub fn guid(b: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        le32(b, 0),
        le16(b, 4),
        le16(b, 6),
        b[8],
        b[9],
        b[10..16].iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

fn gpt(dev: &dyn BlockDev, sector: u64) -> io::Result<Vec<Partition>> {
    let h = read_vec(dev, sector, 92, 92, "GPT header")?;
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80) as u64;
    let entry_size = le32(&h, 84) as u64;
    if !(128..=4096).contains(&entry_size) {
        return Err(corrupt(format!("GPT header at offset {sector}: partition entry size {entry_size} (offset 84) is invalid")));
    }
    let array_off = entries_lba
        .checked_mul(sector)
        .ok_or_else(|| corrupt(format!("GPT header at offset {sector}: partition array LBA {entries_lba} overflows")))?;
    let array = read_vec(dev, array_off, count.saturating_mul(entry_size), MAX_GPT_ARRAY, &format!("GPT partition array at offset {array_off}"))?;
    let mut parts = Vec::new();
    for (i, e) in array.chunks_exact(entry_size as usize).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64(e, 32);
        let last = le64(e, 40);
        let entry_off = array_off + i as u64 * entry_size;
        if last < first {
            return Err(corrupt(format!("GPT entry {} at offset {entry_off}: last LBA {last} before first LBA {first}", i + 1)));
        }
        let name: Vec<u16> = e[56..128].chunks_exact(2).map(|c| le16(c, 0)).take_while(|&c| c != 0).collect();
        let (start, size) = match (first.checked_mul(sector), (last - first + 1).checked_mul(sector)) {
            (Some(s), Some(z)) => (s, z),
            _ => return Err(corrupt(format!("GPT entry {} at offset {entry_off}: LBAs {first}..={last} overflow a byte offset", i + 1))),
        };
        parts.push(Partition {
            number: i as u32 + 1,
            start,
            size,
            type_id: guid(&e[0..16]),
            part_uuid: Some(guid(&e[16..32])),
            part_label: Some(String::from_utf16_lossy(&name)),
        });
    }
    Ok(parts)
}

fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0f | 0x85)
}

fn dos(dev: &dyn BlockDev, mbr: &[u8]) -> io::Result<Option<Vec<Partition>>> {
    let disk_sig = le32(mbr, 440);
    let mut parts = Vec::new();
    let mut extended = None;
    for i in 0..4 {
        let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
        let status = e[0];
        let ptype = e[4];
        if status != 0 && status != 0x80 {
            // Not a partition table (a boot sector of a bare filesystem, say).
            return Ok(None);
        }
        if ptype == 0 {
            continue;
        }
        let start = le32(e, 8) as u64 * 512;
        let size = le32(e, 12) as u64 * 512;
        if size == 0 {
            continue;
        }
        if is_extended(ptype) {
            extended = Some(start);
            continue;
        }
        let number = i as u32 + 1;
        parts.push(Partition {
            number,
            start,
            size,
            type_id: format!("{ptype:02x}"),
            part_uuid: Some(format!("{disk_sig:08x}-{number:02x}")),
            part_label: None,
        });
    }
    if parts.is_empty() && extended.is_none() {
        return Ok(None);
    }
    if let Some(ext_start) = extended {
        let mut ebr = ext_start;
        let mut seen = HashSet::new();
        let mut number = 5;
        while seen.insert(ebr) {
            if seen.len() > MAX_LOGICAL {
                return Err(corrupt(format!("MBR: more than {MAX_LOGICAL} logical partitions in the EBR chain (stopped at the EBR at offset {ebr})")));
            }
            let b = read_vec(dev, ebr, 512, 512, &format!("EBR at offset {ebr}"))?;
            if b[510] != 0x55 || b[511] != 0xAA {
                return Err(corrupt(format!("EBR at offset {ebr}: missing 55AA signature")));
            }
            let e1 = &b[446..462];
            if e1[4] != 0 && le32(e1, 12) != 0 {
                let start = ebr + le32(e1, 8) as u64 * 512;
                parts.push(Partition {
                    number,
                    start,
                    size: le32(e1, 12) as u64 * 512,
                    type_id: format!("{:02x}", e1[4]),
                    part_uuid: Some(format!("{disk_sig:08x}-{number:02x}")),
                    part_label: None,
                });
                number += 1;
            }
            let e2 = &b[462..478];
            if e2[4] == 0 || le32(e2, 8) == 0 {
                break;
            }
            ebr = ext_start + le32(e2, 8) as u64 * 512;
        }
    }
    Ok(Some(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: &mut [u8], slot: usize, status: u8, ptype: u8, start: u32, sectors: u32) {
        let e = &mut b[446 + slot * 16..446 + (slot + 1) * 16];
        e[0] = status;
        e[4] = ptype;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    }

    #[test]
    fn ebr_chain_loop_is_stopped() {
        let mut d = vec![0u8; 64 * 512];
        d[510] = 0x55;
        d[511] = 0xAA;
        entry(&mut d, 0, 0, 0x05, 10, 50);
        // EBR at sector 10 -> logical at 11, next EBR at ext+0 (itself): a loop.
        let ebr = 10 * 512;
        d[ebr + 510] = 0x55;
        d[ebr + 511] = 0xAA;
        let mut e = vec![0u8; 512];
        entry(&mut e, 0, 0, 0x83, 1, 5);
        entry(&mut e, 1, 0, 0x05, 0, 10);
        d[ebr + 446..ebr + 478].copy_from_slice(&e[446..478]);
        let (kind, parts) = scan(&d).unwrap();
        assert_eq!(kind, TableKind::Mbr);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].number, 5);
        assert_eq!(parts[0].start, 11 * 512);
    }
}
