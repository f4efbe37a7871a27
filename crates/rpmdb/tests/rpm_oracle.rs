//! Databases written by the real rpm (Debian's rpm 4.18) read exactly as `rpm -qa` lists them.
//!
//! The test builds tiny packages with `rpmbuild` (epochs, `~` and `^` versions, a noarch one, a
//! module-stream label, one with no files, one with many files), installs them into a sqlite
//! database with `rpm --justdb`, and compares the reader with `rpm -qa --queryformat`. It then
//! rewrites the same header blobs into Berkeley DB hash files with `db5.3_load` (little- and
//! big-endian, small and large pages, so values are both inline and on overflow pages) and checks
//! them against rpm's own read-only BDB backend (`_db_backend bdb_ro`). Debian's rpm cannot write
//! ndb, so ndb is covered by the real SLE 15 database and the corruption tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use kensa_rpmdb::{Backend, PackageDb};

struct Spec {
    name: &'static str,
    epoch: Option<u32>,
    version: &'static str,
    release: &'static str,
    noarch: bool,
    files: usize,
    modularity_label: Option<&'static str>,
}

const SPECS: &[Spec] = &[
    Spec { name: "kensa-alpha", epoch: Some(2), version: "1.0", release: "1", noarch: false, files: 2, modularity_label: None },
    Spec { name: "kensa-tilde", epoch: None, version: "1.0~rc1", release: "3.el9", noarch: true, files: 1, modularity_label: None },
    Spec { name: "kensa-caret", epoch: Some(0), version: "2.0^20240101git1a2b3c", release: "1.fc40", noarch: true, files: 3, modularity_label: None },
    Spec { name: "kensa-module", epoch: Some(1), version: "5.26.3", release: "416.module+el8.3.0+7", noarch: false, files: 1, modularity_label: Some("perl:5.26:8030020200715000000:9fe1d287") },
    Spec { name: "kensa-empty", epoch: None, version: "0.1", release: "0", noarch: true, files: 0, modularity_label: None },
    // Enough files that the header is larger than any page: Berkeley DB overflow chains.
    Spec { name: "kensa-many", epoch: None, version: "3.2.1", release: "7", noarch: false, files: 600, modularity_label: None },
];

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn write_spec(dir: &Path, s: &Spec) -> PathBuf {
    let mut spec = String::new();
    writeln!(spec, "%define debug_package %{{nil}}\n%define _build_id_links none").unwrap();
    writeln!(spec, "Name: {}\nVersion: {}\nRelease: {}", s.name, s.version, s.release).unwrap();
    if let Some(e) = s.epoch {
        writeln!(spec, "Epoch: {e}").unwrap();
    }
    writeln!(spec, "Summary: kensa test package {}\nLicense: MIT and (BSD or GPLv2+)\nVendor: Kensa Tests", s.name).unwrap();
    if s.noarch {
        writeln!(spec, "BuildArch: noarch").unwrap();
    }
    writeln!(spec, "\n%description\nA package built by kensa's tests.\n\n%install").unwrap();
    let dir_in_pkg = format!("/usr/share/{}", s.name);
    if s.files > 0 {
        writeln!(spec, "mkdir -p %{{buildroot}}{dir_in_pkg}/sub").unwrap();
        writeln!(spec, "for i in $(seq 1 {}); do echo $i > %{{buildroot}}{dir_in_pkg}/sub/file-with-a-longish-name-$i.txt; done", s.files).unwrap();
    }
    writeln!(spec, "\n%files").unwrap();
    if s.files > 0 {
        writeln!(spec, "{dir_in_pkg}").unwrap();
    }
    let path = dir.join(format!("{}.spec", s.name));
    std::fs::write(&path, spec).unwrap();
    path
}

/// Builds the packages and installs them into a sqlite rpmdb; returns the db directory.
fn build_sqlite_db(work: &Path) -> PathBuf {
    let top = work.join("rpmbuild");
    for s in SPECS {
        let spec = write_spec(work, s);
        let mut cmd = Command::new("rpmbuild");
        cmd.arg("-bb").arg("--quiet").arg("--define").arg(format!("_topdir {}", top.display()));
        if let Some(label) = s.modularity_label {
            cmd.arg("--define").arg(format!("modularitylabel {label}"));
        }
        run(cmd.arg(&spec));
    }
    let mut rpms = Vec::new();
    for arch in std::fs::read_dir(top.join("RPMS")).unwrap() {
        for f in std::fs::read_dir(arch.unwrap().path()).unwrap() {
            rpms.push(f.unwrap().path());
        }
    }
    rpms.sort();
    assert_eq!(rpms.len(), SPECS.len());
    let db = work.join("db");
    std::fs::create_dir_all(&db).unwrap();
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(&db)
        .args(["--define", "_db_backend sqlite", "-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos"])
        .args(&rpms));
    db
}

const QUERY: &str = "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{SOURCERPM}|%{SIZE}|%{LICENSE}|%{VENDOR}|%{MODULARITYLABEL}|%{INSTALLTIME}|%{SIGMD5}|[%{FILENAMES},]\n";

fn rpm_qa(db: &Path, backend: &str) -> Vec<String> {
    let out = run(Command::new("rpm").arg("--dbpath").arg(db).args(["--define", &format!("_db_backend {backend}"), "-qa", "--qf", QUERY]));
    out.lines().map(str::to_string).collect()
}

fn ours(db_file: &Path, backend: Backend) -> Vec<String> {
    let db = PackageDb::open_path(db_file).unwrap_or_else(|e| panic!("{}: {e}", db_file.display()));
    assert_eq!(db.backend(), backend);
    let none = |s: &str| if s.is_empty() { "(none)".to_string() } else { s.to_string() };
    db.packages()
        .map(|r| {
            let (_, p) = r.unwrap();
            assert!(p.files_error.is_none());
            let files: String = p.files.iter().map(|f| format!("{f},")).collect();
            format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
                p.name,
                p.epoch.map(|e| e.to_string()).unwrap_or("(none)".into()),
                p.version,
                p.release,
                none(&p.arch),
                none(&p.source_rpm),
                p.size.map(|s| s.to_string()).unwrap_or("(none)".into()),
                none(&p.license),
                none(&p.vendor),
                none(&p.modularity_label),
                p.install_time.map(|s| s.to_string()).unwrap_or("(none)".into()),
                none(&p.sigmd5),
                files,
            )
        })
        .collect()
}

/// Writes the sqlite database's header blobs into a Berkeley DB hash `Packages` with db5.3_load.
/// `copies` > 1 stores every header that many times (under distinct keys) and `ffactor` packs that
/// many records per bucket, so buckets continue on chained hash pages.
fn write_bdb(sqlite_db: &Path, out_dir: &Path, big_endian: bool, page_size: u32, copies: u32, ffactor: Option<u32>) {
    let conn = rusqlite::Connection::open_with_flags(sqlite_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages ORDER BY hnum").unwrap();
    let rows: Vec<(u32, Vec<u8>)> = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let key = |n: u32| if big_endian { n.to_be_bytes() } else { n.to_le_bytes() };
    let mut dump = format!("VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize={page_size}\n");
    if let Some(f) = ffactor {
        writeln!(dump, "h_ffactor={f}").unwrap();
    }
    dump.push_str("HEADER=END\n");
    // Record 0: rpm's next-header-number counter, which readers must skip.
    let next = rows.iter().map(|r| r.0).max().unwrap() + 1000 * copies;
    writeln!(dump, " {}\n {}", hex(&key(0)), hex(&key(next))).unwrap();
    for copy in 0..copies {
        for (n, blob) in &rows {
            writeln!(dump, " {}\n {}", hex(&key(n + 1000 * copy)), hex(blob)).unwrap();
        }
    }
    dump.push_str("DATA=END\n");
    std::fs::create_dir_all(out_dir).unwrap();
    let input = out_dir.join("dump.txt");
    std::fs::write(&input, dump).unwrap();
    let lorder = if big_endian { "4321" } else { "1234" };
    run(Command::new("db5.3_load").args(["-c", &format!("db_lorder={lorder}"), "-f"]).arg(&input).arg(out_dir.join("Packages")));
    std::fs::remove_file(input).unwrap();
}

/// Whether some hash page (type 13, or 2 for old databases) has a next page: a bucket chain.
fn has_hash_chains(db: &Path, big_endian: bool, page_size: u32) -> bool {
    let bytes = std::fs::read(db).unwrap();
    bytes.chunks(page_size as usize).skip(1).any(|p| {
        let next: [u8; 4] = p[16..20].try_into().unwrap();
        let next = if big_endian { u32::from_be_bytes(next) } else { u32::from_le_bytes(next) };
        (p[25] == 13 || p[25] == 2) && next != 0
    })
}

/// Compares line lists, reporting the first difference briefly (file lists make lines long).
fn assert_same(ours: &[String], rpm: &[String], what: &str) {
    let short = |s: &str| s.chars().take(300).collect::<String>();
    for (i, (a, b)) in ours.iter().zip(rpm).enumerate() {
        assert!(a == b, "{what}: package {i} differs:\n ours: {}\n  rpm: {}", short(a), short(b));
    }
    assert_eq!(ours.len(), rpm.len(), "{what}: package count");
}

#[test]
fn sqlite_and_berkeley_db_written_by_rpm() {
    if !kensa_testdata::require_tool("rpmbuild") || !kensa_testdata::require_tool("rpm") || !kensa_testdata::require_tool("db5.3_load") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let db = build_sqlite_db(work.path());

    let expected = rpm_qa(&db, "sqlite");
    assert_eq!(expected.len(), SPECS.len(), "{expected:#?}");
    assert_same(&ours(&db.join("rpmdb.sqlite"), Backend::Sqlite), &expected, "sqlite");

    let cases = [(false, 4096, 1, None), (true, 4096, 1, None), (false, 65536, 1, None), (true, 512, 1, None), (false, 512, 40, Some(200)), (true, 1024, 40, Some(200))];
    for (big_endian, page_size, copies, ffactor) in cases {
        let what = format!("Berkeley DB, big-endian {big_endian}, pages of {page_size}, {copies} copies");
        let bdb = work.path().join(format!("bdb-{big_endian}-{page_size}-{copies}"));
        write_bdb(&db.join("rpmdb.sqlite"), &bdb, big_endian, page_size, copies, ffactor);
        let mut rpm_view = rpm_qa(&bdb, "bdb_ro");
        let mut our_view = ours(&bdb.join("Packages"), Backend::BerkeleyDb);
        assert_same(&our_view, &rpm_view, &what);
        // Same packages as the sqlite original (hash order differs from insertion order).
        rpm_view.sort();
        our_view.sort();
        let mut sorted: Vec<String> = (0..copies).flat_map(|_| expected.iter().cloned()).collect();
        sorted.sort();
        assert_same(&our_view, &sorted, &format!("{what} vs sqlite"));
        if copies > 1 {
            assert!(has_hash_chains(&bdb.join("Packages"), big_endian, page_size), "{what}: no bucket continues on a second page");
        }
    }
}

/// The 129 real CBL-Mariner headers in Berkeley DB files with 64 KiB pages (small headers stay on
/// the hash page, big ones go to overflow pages) and 4 KiB big-endian pages, read by rpm's bdb_ro.
#[test]
fn real_headers_in_berkeley_db() {
    if !kensa_testdata::require_tool("rpm") || !kensa_testdata::require_tool("db5.3_load") {
        return;
    }
    let Some(dir) = kensa_testdata::shared_path("rpmdb/cbl-mariner-2.0") else { return };
    let work = tempfile::tempdir().unwrap();
    for (big_endian, page_size) in [(false, 65536), (true, 4096)] {
        let bdb = work.path().join(format!("bdb-{big_endian}-{page_size}"));
        write_bdb(&dir.join("rpmdb.sqlite"), &bdb, big_endian, page_size, 1, None);
        let rpm_view = rpm_qa(&bdb, "bdb_ro");
        assert_eq!(rpm_view.len(), 129);
        assert_same(&ours(&bdb.join("Packages"), Backend::BerkeleyDb), &rpm_view, &format!("real headers, big-endian {big_endian}, pages of {page_size}"));
    }
}
