//! Corruption helpers shared by the hostile-input tests: devices that record or alter what is
//! read, a seeded generator, a bounded runner that turns panics and hangs into failures, and the
//! byte-flip campaign itself.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kensa_disk::block::{BlockDev, Counters, FileDev};
use kensa_fs::{FileType, Root, WalkOptions};

/// Records every range read (to learn where an image's metadata is).
pub struct Recording {
    pub inner: Arc<dyn BlockDev>,
    pub reads: Mutex<Vec<(u64, usize)>>,
}

impl BlockDev for Recording {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads.lock().unwrap().push((off, buf.len()));
        self.inner.read_at(off, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A device with some bytes changed.
pub struct Flipped {
    pub inner: Arc<dyn BlockDev>,
    pub changes: HashMap<u64, u8>,
}

impl BlockDev for Flipped {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(off, buf)?;
        for (&at, &v) in &self.changes {
            if at >= off && at < off + buf.len() as u64 {
                buf[(at - off) as usize] = v;
            }
        }
        Ok(())
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn describe(&self) -> String {
        "corrupted image".into()
    }
}

/// `KENSA_HOSTILE_ROUNDS=N` multiplies every test's rounds and `KENSA_HOSTILE_SEED=S` varies
/// their seeds: a longer campaign than CI's, same checks (`cargo test --release -p kensa-disk
/// --test hostile`).
pub fn campaign() -> (usize, u64) {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    (var("KENSA_HOSTILE_ROUNDS").unwrap_or(1).max(1) as usize, var("KENSA_HOSTILE_SEED").unwrap_or(0))
}

pub struct Rng(u64);
impl Rng {
    /// A generator for `seed` varied by `KENSA_HOSTILE_SEED` (never zero: xorshift would stay there).
    pub fn new(seed: u64) -> Rng {
        let s = seed ^ campaign().1.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Rng(if s == 0 { 1 } else { s })
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Reads everything reachable, with bounds a hostile tree cannot defeat: lists, stats, links and
/// up to 1 MiB of every file. Returns the errors met.
pub fn exercise(root: &Root) -> Vec<String> {
    let opts = WalkOptions { max_entries: 20_000, max_depth: 64, ..WalkOptions::default() };
    let mut files = Vec::new();
    let mut errors = root.walk("/", &opts, |e| {
        if e.file_type == FileType::File {
            files.push(e.path);
        }
        kensa_fs::walk::Visit::Continue
    });
    let mut found: Vec<String> = errors.drain(..).map(|e| e.to_string()).collect();
    for f in files.iter().take(300) {
        match root.raw().open_file(f) {
            Ok(r) => {
                let mut buf = Vec::new();
                if let Err(e) = r.take(1 << 20).read_to_end(&mut buf) {
                    found.push(e.to_string());
                }
            }
            Err(e) => found.push(e.to_string()),
        }
    }
    found
}

/// Whether an error message says where the damage is (or is a plain not-found, which corrupt
/// names legitimately cause).
pub fn locates(msg: &str) -> bool {
    ["offset", "inode", "block", "extent", "No such file", "no such file", "not a directory", "cycle", "not normalised", "symbolic links", "walk stopped"].iter().any(|w| msg.contains(w))
}

/// Runs `f` on a thread and fails the test when it does not finish in time (a hang).
pub fn bounded<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => panic!("{what}: panicked: {:?}", p.downcast_ref::<String>().map(String::as_str).or(p.downcast_ref::<&str>().copied())),
        Err(_) => panic!("{what}: did not finish within 60 s (hang?)"),
    }
}

/// Opens a device as a tree: one filesystem, or a whole disk (partitions, LVM, fstab).
pub type Opener = fn(Arc<dyn BlockDev>) -> Result<Root, String>;

/// The ranges of `dev` read by opening it (tables, labels, superblocks, fstab), then those read
/// by walking its tree (no file contents).
/// (offset, length) of each read.
type Ranges = Vec<(u64, usize)>;

fn metadata_ranges(dev: Arc<dyn BlockDev>, open: Opener) -> (Ranges, Ranges) {
    let rec = Arc::new(Recording { inner: dev, reads: Mutex::new(Vec::new()) });
    let root = open(rec.clone()).unwrap();
    let at_open = std::mem::take(&mut *rec.reads.lock().unwrap());
    root.walk("/", &WalkOptions::default(), |e| {
        if e.file_type == FileType::Symlink {
            let _ = root.read_link(&e.path);
        }
        kensa_fs::walk::Visit::Continue
    });
    let walk = rec.reads.lock().unwrap().clone();
    (at_open, walk)
}

/// `rounds` corrupted copies of `image` (1 to `flips` bytes changed in the metadata that opening it
/// and walking its tree read, half of them in what opening reads), each opened and exercised: a clean result or errors that `explains` accepts, never a panic or
/// a hang.
pub fn flip_metadata(image: &Path, open: Opener, explains: fn(&str) -> bool, seed: u64, rounds: usize, flips: u64) {
    let dev: Arc<dyn BlockDev> = Arc::new(FileDev::open(image, Arc::new(Counters::default())).unwrap());
    let (at_open, walk) = metadata_ranges(dev.clone(), open);
    assert!(!at_open.is_empty() && !walk.is_empty());
    let mut rng = Rng::new(seed);
    let rounds = rounds * campaign().0;
    let mut opened = 0;
    let mut errors_with_offsets = 0;
    let mut errors = 0;
    for round in 0..rounds {
        let mut changes = HashMap::new();
        for _ in 0..1 + rng.below(flips) {
            let ranges = if rng.below(2) == 0 { &at_open } else { &walk };
            let (off, len) = ranges[rng.below(ranges.len() as u64) as usize];
            let at = off + rng.below(len as u64);
            let v = match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                _ => rng.next() as u8,
            };
            changes.insert(at, v);
        }
        let flipped: Arc<dyn BlockDev> = Arc::new(Flipped { inner: dev.clone(), changes });
        let what = format!("{} round {round}", image.display());
        let (ok, errs) = bounded(what, move || match open(flipped) {
            Ok(root) => (true, exercise(&root)),
            Err(e) => (false, vec![e]),
        });
        opened += usize::from(ok);
        errors += errs.len();
        for e in &errs {
            assert!(explains(e), "error does not say where: {e}");
            errors_with_offsets += usize::from(e.contains("offset"));
        }
    }
    eprintln!("{}: {rounds} corrupted copies, {opened} opened, {errors} errors, {errors_with_offsets} naming a byte offset", image.display());
    assert!(errors > 0, "corruption went unnoticed in every round");
}

/// Errors opening a whole disk may also be about the disk as a whole.
pub fn explains_disk_error(msg: &str) -> bool {
    locates(msg) || ["no root filesystem", "unsupported", "past the end"].iter().any(|w| msg.contains(w))
}

/// A whole corrupted disk, opened as `kensa scan` opens a snapshot.
pub fn open_disk(dev: Arc<dyn BlockDev>) -> Result<Root, String> {
    kensa_disk::open_block_device(dev, Arc::new(Counters::default()), Path::new("corrupted disk"), &kensa_disk::Limits::default()).map(|t| t.root).map_err(|e| e.to_string())
}
