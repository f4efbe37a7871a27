//! Listing every package (with its files) of the real databases: kensa-rpmdb against rpm itself
//! (Debian's rpm 4.18, `rpm -qa --dbpath`) run in the same process, printed as ratios.
//! Run: `cargo bench -p kensa-rpmdb` (needs ../shared/data and rpm; ndb has no rpm peer on Debian).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kensa_rpmdb::PackageDb;

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Ours: open, read every header, parse fields and file lists. Returns (packages, files).
fn ours(db: &Path) -> (usize, usize) {
    let mut files = 0;
    let mut n = 0;
    for r in PackageDb::open_path(db).unwrap().packages() {
        files += r.unwrap().1.files.len();
        n += 1;
    }
    (n, files)
}

fn rpm(dbpath: &Path, backend: &str) -> (usize, usize) {
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(dbpath)
        .args(["--define", &format!("_db_backend {backend}"), "-qa", "--qf", "P %{NAME}-%{EPOCH}:%{VERSION}-%{RELEASE}.%{ARCH} %{SIZE}\n[%{FILENAMES}\n]"])
        .output()
        .expect("run rpm");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let pkgs = text.lines().filter(|l| l.starts_with("P ")).count();
    (pkgs, text.lines().count() - pkgs)
}

fn peak_rss_kib(who: i32) -> i64 {
    #[repr(C)]
    struct Rusage {
        utime: [i64; 2],
        stime: [i64; 2],
        maxrss: i64,
        rest: [i64; 13],
    }
    extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut u = Rusage { utime: [0; 2], stime: [0; 2], maxrss: 0, rest: [0; 13] };
    // SAFETY: getrusage fills the struct, which matches Linux's `struct rusage` layout on 64-bit.
    unsafe { getrusage(who, &mut u) };
    u.maxrss
}

fn main() {
    let Some(data) = kensa_testdata::shared_path("rpmdb") else { return };
    let cases = [
        ("centos7-many (Berkeley DB, 33 MB)", "centos7-many", "Packages", Some("bdb_ro")),
        ("cbl-mariner-2.0 (sqlite, 3.6 MB)", "cbl-mariner-2.0", "rpmdb.sqlite", Some("sqlite")),
        ("sle15-bci (ndb, 1.4 MB)", "sle15-bci", "Packages.db", None),
    ];
    let have_rpm = kensa_testdata::have_tool("rpm");
    println!("| database | packages | files | kensa-rpmdb | rpm -qa | rpm / kensa |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (label, dir, file, backend) in cases {
        // rpm wants a writable dbpath: give both readers the same private copy.
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join(file);
        std::fs::copy(data.join(dir).join(file), &db).unwrap();
        let (pkgs, files) = ours(&db);
        let t_ours = median((0..RUNS).map(|_| {
            let t = Instant::now();
            std::hint::black_box(ours(&db));
            t.elapsed()
        }).collect());
        let peer = match backend {
            Some(b) if have_rpm => {
                let (rp, rf) = rpm(tmp.path(), b);
                assert_eq!((rp, rf), (pkgs, files), "{label}: rpm and kensa-rpmdb disagree");
                Some(median((0..RUNS).map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(rpm(tmp.path(), b));
                    t.elapsed()
                }).collect()))
            }
            _ => None,
        };
        match peer {
            Some(p) => println!("| {label} | {pkgs} | {files} | {:.1} ms | {:.1} ms | {:.1}x |", ms(t_ours), ms(p), p.as_secs_f64() / t_ours.as_secs_f64()),
            None => println!("| {label} | {pkgs} | {files} | {:.1} ms | n/a | n/a |", ms(t_ours)),
        }
    }
    println!();
    println!("peak RSS: this process (kensa-rpmdb, all runs) {} KiB; largest rpm child {} KiB", peak_rss_kib(0), peak_rss_kib(-1));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
