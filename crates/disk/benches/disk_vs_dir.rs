//! Scan time and bytes read for disk images of the ~590 MiB Debian test tree against the
//! directory scan of the same tree (same process, warm page cache, best of 3, the directory scan
//! alternating with each image's so both see the same machine load). Goals: within 2x of
//! the directory scan, and at most 10% of each image's allocated bytes read.
//! `read/guest data` also counts a converted image's reads against the allocated bytes of the
//! raw disk it was made from (the data the guest holds; a deflated VMDK allocates a third of it).
//!
//! `cargo bench -p kensa-disk --bench disk_vs_dir`
//!
//! `DISK_BENCH_TREE=DIR DISK_BENCH_IMAGES=DIR` runs it on another tree and its images (made by
//! `../shared/tools/make-disk-images.sh`).
//!
//! `DISK_BENCH_EXTRA=IMAGE,...` adds images of the same tree (paths, or names in the image dir).
//!
//! `DISK_BENCH_PROFILE=disk-gpt-ext4.vmdk cargo bench -p kensa-disk --bench disk_vs_dir` instead
//! prints where that image's bytes read go: per file opened by a cataloger (and the walk's and
//! lookups' metadata reads), largest first, with totals per kind of file.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kensa_disk::{open_image, Limits};
use kensa_fs::{DirEntry, Metadata, RawFs, ReadSeek, Root};
use kensa_inventory::ScanOptions;

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn main() {
    // Another tree: DISK_BENCH_TREE=DIR DISK_BENCH_IMAGES=DIR (made by make-disk-images.sh DIR).
    let (tree, images) = match (std::env::var_os("DISK_BENCH_TREE"), std::env::var_os("DISK_BENCH_IMAGES")) {
        (Some(tree), Some(images)) => {
            let images = PathBuf::from(images);
            let root_mib = std::fs::metadata(images.join("root.ext4")).expect("root.ext4 in DISK_BENCH_IMAGES").len() >> 20;
            common::fix_gpt(&images, root_mib).expect("GPT tables");
            (PathBuf::from(tree), images)
        }
        _ => {
            let Some(tree) = kensa_testdata::debian_rootfs() else { return };
            let Some(tools) = kensa_testdata::shared_tools() else { return };
            let Some(images) = kensa_testdata::cached_fixture("disk-bench-images-v2", |out| {
                let st = Command::new("bash").arg(tools.join("make-disk-images.sh")).arg(&tree).arg(out).status().map_err(|e| e.to_string())?;
                if !st.success() {
                    return Err(format!("make-disk-images.sh: {st}"));
                }
                common::fix_gpt(out, 2048)
            }) else {
                return;
            };
            (tree, images)
        }
    };
    let opts = ScanOptions::default();
    if let Ok(name) = std::env::var("DISK_BENCH_PROFILE") {
        return profile(&images.join(name), &opts);
    }
    let scan_dir = || kensa_inventory::scan(&Root::dir(&tree).unwrap(), &opts);
    let (dir_time, dir_inv) = best_of(3, scan_dir);
    let dir_packages = serde_packages(&dir_inv);
    println!("directory scan of {}: {:.3} s, {} packages", tree.display(), dir_time.as_secs_f64(), dir_inv.packages.len());
    // A converted image (qcow2, VMDK) holds the guest data of the raw disk it was made from
    // (images.tsv: "of disk-gpt-ext4.raw"); deflated formats allocate less than that data.
    let sources: HashMap<String, String> = std::fs::read_to_string(images.join("images.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.get(2)?.strip_prefix("of ")?.to_string()))
        })
        .collect();
    println!("| image | scan s | dir scan s | vs dir | bytes read | allocated | read/allocated | read/guest data | same packages |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let mut names: Vec<String> = ["root.ext4", "root.xfs", "disk-gpt-ext4.raw", "disk-gpt-xfs.raw", "disk-mbr-ext4.raw", "disk-gpt-ext4.qcow2", "disk-gpt-xfs.qcow2", "disk-gpt-ext4.vmdk", "disk-gpt-xfs.vmdk"].map(String::from).into();
    // More images of the same tree (say `qemu-img convert -c`, as cloud images are), comma-separated.
    names.extend(std::env::var("DISK_BENCH_EXTRA").unwrap_or_default().split(',').filter(|n| !n.is_empty()).map(String::from));
    for name in &names {
        let path = images.join(name);
        let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
        let guest_data = match sources.get(name) {
            Some(raw) => std::fs::metadata(images.join(raw)).map_or(0, |m| m.blocks() * 512),
            None => allocated,
        };
        // The directory scan is timed again next to each image (alternating, best of 3 each), so
        // the ratio compares runs made under the same load of a shared machine.
        let (mut dir_best, mut time) = (Duration::MAX, Duration::MAX);
        let mut last = None;
        for _ in 0..3 {
            let t = Instant::now();
            std::hint::black_box(scan_dir());
            dir_best = dir_best.min(t.elapsed());
            let t = Instant::now();
            let target = open_image(&path, &Limits::default()).unwrap();
            let inv = kensa_inventory::scan(&target.root, &opts);
            time = time.min(t.elapsed());
            last = Some((inv, target.stats()));
        }
        let (inv, stats) = last.unwrap();
        println!(
            "| {name} | {:.3} | {:.3} | {:.2}x | {:.1} MiB | {:.1} MiB | {:.1}% | {} | {} |",
            time.as_secs_f64(),
            dir_best.as_secs_f64(),
            time.as_secs_f64() / dir_best.as_secs_f64(),
            stats.bytes_read as f64 / (1 << 20) as f64,
            allocated as f64 / (1 << 20) as f64,
            100.0 * stats.bytes_read as f64 / allocated as f64,
            if guest_data > 0 { format!("{:.1}%", 100.0 * stats.bytes_read as f64 / guest_data as f64) } else { "-".into() },
            if serde_packages(&inv) == dir_packages { "yes" } else { "NO" }
        );
    }
}

/// Package identity for comparison (the target name differs by construction).
fn serde_packages(inv: &kensa_inventory::Inventory) -> Vec<String> {
    let mut v: Vec<String> = inv.packages.iter().map(|p| format!("{p:?}")).collect();
    v.sort();
    v
}

/// Bytes read from the image attributed to what caused them: the file a cataloger is reading, or
/// metadata (lookups, directory listings) outside any file read. The profiled scan runs on one thread, so
/// the counter's change across one call belongs to that call.
struct ProfiledFs {
    inner: Arc<dyn RawFs>,
    by_cause: Arc<Mutex<HashMap<String, (u64, u64)>>>,
}

impl ProfiledFs {
    fn bytes(inner: &Arc<dyn RawFs>) -> u64 {
        inner.stats().map_or(0, |s| s.bytes_read)
    }
    fn charge<T>(inner: &Arc<dyn RawFs>, by_cause: &Mutex<HashMap<String, (u64, u64)>>, cause: &str, f: impl FnOnce() -> T) -> T {
        let before = Self::bytes(inner);
        let v = f();
        let mut map = by_cause.lock().unwrap();
        let e = map.entry(cause.to_string()).or_default();
        e.0 += Self::bytes(inner) - before;
        e.1 += 1;
        v
    }
}

impl RawFs for ProfiledFs {
    fn lstat(&self, path: &Path) -> io::Result<Metadata> {
        Self::charge(&self.inner, &self.by_cause, "(lstat)", || self.inner.lstat(path))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        Self::charge(&self.inner, &self.by_cause, "(read_dir)", || self.inner.read_dir(path))
    }
    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        Self::charge(&self.inner, &self.by_cause, "(read_link)", || self.inner.read_link(path))
    }
    fn open_file(&self, path: &Path) -> io::Result<Box<dyn ReadSeek>> {
        let cause = path.display().to_string();
        let file = Self::charge(&self.inner, &self.by_cause, "(open)", || self.inner.open_file(path))?;
        Ok(Box::new(ProfiledFile { file, inner: self.inner.clone(), by_cause: self.by_cause.clone(), cause }))
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn stats(&self) -> Option<kensa_fs::IoStats> {
        self.inner.stats()
    }
}

struct ProfiledFile {
    file: Box<dyn ReadSeek>,
    inner: Arc<dyn RawFs>,
    by_cause: Arc<Mutex<HashMap<String, (u64, u64)>>>,
    cause: String,
}

impl Read for ProfiledFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        ProfiledFs::charge(&self.inner, &self.by_cause, &self.cause, || self.file.read(buf))
    }
}

impl Seek for ProfiledFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.file.seek(to)
    }
}

fn kind_of(cause: &str) -> String {
    if cause.starts_with('(') {
        return cause.to_string();
    }
    let name = cause.rsplit('/').next().unwrap_or(cause);
    if cause.contains("/var/lib/dpkg/") || (cause.starts_with("/usr/share/doc/") && name == "copyright") {
        return "dpkg database".into();
    }
    if cause.contains("/var/lib/rpm") || cause.contains("/usr/lib/sysimage/rpm") {
        return "rpm database".into();
    }
    if cause.contains(".dist-info/") || cause.contains(".egg-info") {
        return "python metadata".into();
    }
    if name == "package.json" {
        return "package.json".into();
    }
    match name.rsplit_once('.') {
        Some((_, ext)) if ext.len() <= 5 && !ext.chars().all(|c| c.is_ascii_digit()) => format!(".{ext}"),
        _ => "other (executables, ...)".into(),
    }
}

fn profile(path: &Path, opts: &ScanOptions) {
    let allocated = std::fs::metadata(path).unwrap().blocks() * 512;
    let target = open_image(path, &Limits::default()).unwrap();
    let at_open = target.stats().bytes_read;
    let by_cause = Arc::new(Mutex::new(HashMap::new()));
    let root = Root::new(ProfiledFs { inner: target.root.raw().clone(), by_cause: by_cause.clone() });
    let t = Instant::now();
    // One thread: a call's change of the byte counter is then that call's.
    let inv = kensa_inventory::scan(&root, &ScanOptions { threads: 1, ..opts.clone() });
    let time = t.elapsed();
    let total = target.stats().bytes_read;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "{}: {} packages, {:.3} s, {:.1} MiB read ({:.1} MiB opening the image) of {:.1} MiB allocated ({:.1}%)",
        path.display(),
        inv.packages.len(),
        time.as_secs_f64(),
        mib(total),
        mib(at_open),
        mib(allocated),
        100.0 * total as f64 / allocated as f64
    );
    let by_cause = by_cause.lock().unwrap();
    let mut kinds: HashMap<String, (u64, u64)> = HashMap::new();
    for (cause, (bytes, calls)) in by_cause.iter() {
        let k = kinds.entry(kind_of(cause)).or_default();
        k.0 += bytes;
        k.1 += if cause.starts_with('(') { *calls } else { 1 };
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1 .0));
    println!("| kind | MiB read | files (calls) |");
    for (k, (bytes, n)) in &kinds {
        println!("| {k} | {:.2} | {n} |", mib(*bytes));
    }
    let mut files: Vec<_> = by_cause.iter().collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.1 .0));
    println!("top files:");
    let top: usize = std::env::var("DISK_BENCH_PROFILE_TOP").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    for (cause, (bytes, calls)) in files.iter().take(top) {
        println!("{:>9.3} MiB {:>7} reads  {cause}", mib(*bytes), calls);
    }
}
