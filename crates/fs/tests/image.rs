//! Container images built here, layer by layer with the `tar` crate, in both packagings
//! (`docker save` and OCI layout, as a directory and as a tar, gzip and plain layers): the
//! filesystem kensa sees is the final image — whiteouts and opaque directories applied, upper
//! layers winning, links intact, unsafe entries skipped.

use std::io::{Read, Write};
use std::path::Path;

use kensa_fs::image::{probe, ImageFormat};
use kensa_fs::{ImageFs, Root};

/// One layer entry.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn layer_tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::HardLink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A raw tar entry with any name (the `tar` crate's builder refuses `..` and absolute paths,
/// which is exactly what a hostile image contains).
fn raw_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// zstd-compresses with the `zstd` program (scripts/install-test-deps.sh installs it).
fn zstd(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("zstd").args(["-q", "-c", "-"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("run zstd");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

const STATUS_V1: &[u8] = b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n";
const STATUS_V2: &[u8] = b"Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n\nPackage: curl\nStatus: install ok installed\nVersion: 7.88.1-10+deb12u8\nArchitecture: amd64\n";

/// Three layers: a base, a layer that deletes and replaces, a layer with an opaque directory.
fn layers() -> Vec<Vec<u8>> {
    let mut l3 = layer_tar(&[
        // Opaque /opt/app: the lower layers' contents of it disappear, this layer's stay — also
        // an entry written before the marker.
        E::File("opt/app/new.txt", b"new"),
        E::File("opt/app/.wh..wh..opq", b""),
        E::File("opt/app/after.txt", b"after"),
        // a hard link to a file of a lower layer
        E::HardLink("usr/bin/curl-copy", "usr/bin/curl"),
    ]);
    // Hostile entries in the last layer: skipped with a warning, nothing written outside.
    let end = l3.len() - 1024; // before the two zero blocks that end the archive
    let tail = l3.split_off(end);
    raw_entry(&mut l3, "../../escape.txt", b"x");
    raw_entry(&mut l3, "/etc/absolute.txt", b"x");
    l3.extend_from_slice(&tail);
    vec![
        layer_tar(&[
            E::Dir("etc"),
            E::File("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"),
            E::Dir("var/lib/dpkg"),
            E::File("var/lib/dpkg/status", STATUS_V1),
            E::File("etc/removed.conf", b"gone"),
            E::Dir("opt/app/sub"),
            E::File("opt/app/old.txt", b"old"),
            E::File("opt/app/sub/deep.txt", b"deep"),
            E::Dir("usr/lib"),
            E::Symlink("lib", "usr/lib"),
            E::File("usr/lib/libz.so.1", b"zlib"),
            E::Dir("tmp/cache"),
            E::File("tmp/cache/a", b"a"),
        ]),
        layer_tar(&[
            E::File("var/lib/dpkg/status", STATUS_V2),
            E::File("etc/.wh.removed.conf", b""),
            E::File("tmp/.wh.cache", b""),
            E::File("usr/bin/curl", b"\x7fELF curl"),
        ]),
        l3,
    ]
}

fn write_docker_save(path: &Path, gz_layers: bool) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut names = Vec::new();
    for (i, l) in layers().into_iter().enumerate() {
        let data = if gz_layers { gzip(&l) } else { l };
        let name = format!("layer{i}/layer.tar");
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &data[..]).unwrap();
        names.push(name);
    }
    let manifest = serde_json::json!([{ "Config": "config.json", "RepoTags": ["example/app:1.0"], "Layers": names }]).to_string();
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", manifest.as_bytes()).unwrap();
    b.into_inner().unwrap().flush().unwrap();
}

/// An OCI layout in `dir`: gzip layers (the middle one zstd when `zstd_layer`) behind an image
/// index (with an attestation manifest to skip).
fn write_oci_dir(dir: &Path, zstd_layer: bool) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |data: &[u8]| {
        let hex = sha256_hex(data);
        std::fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
        format!("sha256:{hex}")
    };
    let mut layer_descs = Vec::new();
    for (i, l) in layers().into_iter().enumerate() {
        let (blob, media_type) = if zstd_layer && i == 1 { (zstd(&l), "application/vnd.oci.image.layer.v1.tar+zstd") } else { (gzip(&l), "application/vnd.oci.image.layer.v1.tar+gzip") };
        layer_descs.push(serde_json::json!({ "mediaType": media_type, "digest": put(&blob), "size": blob.len() }));
    }
    let config = put(b"{}");
    let manifest = serde_json::json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2 }, "layers": layer_descs }).to_string();
    let manifest_digest = put(manifest.as_bytes());
    let attestation = serde_json::json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [] }).to_string();
    let attestation_digest = put(attestation.as_bytes());
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [
        { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": attestation_digest, "size": attestation.len(), "platform": { "architecture": "unknown", "os": "unknown" } },
        { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len() },
    ] })
    .to_string();
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn read(root: &Root, p: &str) -> String {
    let mut s = String::new();
    root.open(p).unwrap_or_else(|e| panic!("{p}: {e}")).read_to_string(&mut s).unwrap();
    s
}

fn names(root: &Root, dir: &str) -> Vec<String> {
    root.read_dir(dir).unwrap().into_iter().map(|e| e.name.to_string_lossy().into_owned()).collect()
}

fn check_final_tree(img: ImageFs) {
    let warnings = img.warnings().to_vec();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("../../escape.txt")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("/etc/absolute.txt")), "{warnings:?}");
    let root = Root::new(img);
    assert_eq!(root.stats().map(|s| (s.bytes_read, s.files_opened)), Some((0, 0)));
    // The upper layer's dpkg status wins.
    assert_eq!(read(&root, "/var/lib/dpkg/status").as_bytes(), STATUS_V2);
    // Whiteouts: a file and a whole directory removed.
    assert!(!root.exists("/etc/removed.conf"));
    assert!(!root.exists("/tmp/cache/a"));
    assert_eq!(names(&root, "/tmp"), Vec::<String>::new());
    assert_eq!(names(&root, "/etc"), vec!["os-release"]);
    // Opaque directory: only the last layer's entries, whatever their order around the marker.
    assert_eq!(names(&root, "/opt/app"), vec!["after.txt", "new.txt"]);
    assert!(!root.exists("/opt/app/sub/deep.txt"));
    // Symlinks stay symlinks and resolve inside the image; hard links share content.
    assert!(root.symlink_metadata("/lib").unwrap().is_symlink());
    assert_eq!(read(&root, "/lib/libz.so.1"), "zlib");
    assert_eq!(read(&root, "/usr/bin/curl-copy"), "\x7fELF curl");
    assert_eq!(root.metadata("/usr/bin/curl-copy").unwrap().ino, root.metadata("/usr/bin/curl").unwrap().ino);
    // Nothing escaped to the root.
    assert_eq!(names(&root, "/"), vec!["etc", "lib", "opt", "tmp", "usr", "var"]);
    // Reads by offset: seeking inside a file works.
    let mut f = root.open("/var/lib/dpkg/status").unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(9)).unwrap();
    let mut s = [0u8; 10];
    f.read_exact(&mut s).unwrap();
    assert_eq!(&s, b"base-files");
    let stats = root.stats().unwrap();
    // status, libz.so.1, curl-copy, status again (10 bytes of it).
    assert_eq!((stats.files_opened, stats.bytes_read), (4, STATUS_V2.len() as u64 + 4 + 9 + 10), "{stats:?}");
}

#[test]
fn docker_save_plain_layers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("image.tar");
    write_docker_save(&p, false);
    assert_eq!(probe(&p).unwrap(), Some(ImageFormat::DockerArchive));
    let img = ImageFs::open(&p).unwrap();
    assert_eq!(img.reference(), Some("example/app:1.0"));
    assert_eq!(img.layer_count(), 3);
    check_final_tree(img);
}

#[test]
fn docker_save_gzip_layers_in_gzip_archive() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("image.tar");
    write_docker_save(&p, true);
    let gz = dir.path().join("image.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&p).unwrap())).unwrap();
    assert_eq!(probe(&gz).unwrap(), Some(ImageFormat::DockerArchive));
    check_final_tree(ImageFs::open(&gz).unwrap());
}

#[test]
fn oci_layout_dir_and_tar() {
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("oci");
    write_oci_dir(&oci, false);
    assert_eq!(probe(&oci).unwrap(), Some(ImageFormat::OciDir));
    check_final_tree(ImageFs::open(&oci).unwrap());

    let tar_path = dir.path().join("oci.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    b.append_dir_all(".", &oci).unwrap();
    b.into_inner().unwrap().flush().unwrap();
    assert_eq!(probe(&tar_path).unwrap(), Some(ImageFormat::OciArchive));
    let img = ImageFs::open(&tar_path).unwrap();
    assert_eq!(img.format(), ImageFormat::OciArchive);
    check_final_tree(img);
}

#[test]
fn oci_layout_with_zstd_layer() {
    if !kensa_testdata::require_tool("zstd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_oci_dir(dir.path(), true);
    check_final_tree(ImageFs::open(dir.path()).unwrap());
}

#[test]
fn not_images_and_broken_images() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(probe(dir.path()).unwrap(), None);
    let plain = dir.path().join("plain.tar");
    std::fs::write(&plain, layer_tar(&[E::File("a.txt", b"a")])).unwrap();
    assert_eq!(probe(&plain).unwrap(), None);
    let err = ImageFs::open(&plain).unwrap_err().to_string();
    assert!(err.contains("not a container image"), "{err}");

    // A manifest naming a missing layer, and one that is not JSON.
    let write = |name: &str, manifest: &[u8]| {
        let p = dir.path().join(name);
        let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(manifest.len() as u64);
        b.append_data(&mut h, "manifest.json", manifest).unwrap();
        b.into_inner().unwrap();
        p
    };
    let missing = write("missing.tar", br#"[{"Layers":["nope/layer.tar"]}]"#);
    let err = ImageFs::open(&missing).unwrap_err().to_string();
    assert!(err.contains("nope/layer.tar"), "{err}");
    let garbage = write("garbage.tar", b"{not json");
    let err = ImageFs::open(&garbage).unwrap_err().to_string();
    assert!(err.contains("manifest.json") && err.contains("invalid JSON"), "{err}");
    let traversal = write("traversal.tar", br#"[{"Layers":["../../etc/passwd"]}]"#);
    let err = ImageFs::open(&traversal).unwrap_err().to_string();
    assert!(err.contains("refusing"), "{err}");

    // A layer that is not a tar at all: an error naming the layer, no panic.
    let p = dir.path().join("corrupt.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
    let junk = vec![0xAAu8; 4096];
    let mut h = tar::Header::new_gnu();
    h.set_size(junk.len() as u64);
    b.append_data(&mut h, "l/layer.tar", &junk[..]).unwrap();
    let manifest = br#"[{"Layers":["l/layer.tar"]}]"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    b.append_data(&mut h, "manifest.json", &manifest[..]).unwrap();
    b.into_inner().unwrap();
    let err = ImageFs::open(&p).unwrap_err().to_string();
    assert!(err.contains("layer 1 (l/layer.tar)"), "{err}");
}

#[test]
fn too_deep_paths_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}f.txt", "d/".repeat(kensa_fs::image::MAX_DEPTH + 1));
    let layer = layer_tar(&[E::File(&deep, b"deep"), E::File("etc/ok", b"ok")]);
    let p = dir.path().join("deep.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(layer.len() as u64);
    b.append_data(&mut h, "l/layer.tar", &layer[..]).unwrap();
    let manifest = br#"[{"Layers":["l/layer.tar"]}]"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    b.append_data(&mut h, "manifest.json", &manifest[..]).unwrap();
    b.into_inner().unwrap();
    let img = ImageFs::open(&p).unwrap();
    assert_eq!(img.warnings().len(), 1, "{:?}", img.warnings());
    assert!(img.warnings()[0].contains("deeper than"));
    let root = Root::new(img);
    assert_eq!(names(&root, "/"), vec!["etc"]);
}
