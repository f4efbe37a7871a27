use std::os::unix::fs::symlink;
use std::path::Path;

use kensa_fs::{walk::Visit, FileType, Root, WalkOptions};

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib")).unwrap();
    std::fs::write(r.join("usr/lib/os-release"), "ID=debian\n").unwrap();
    symlink("../usr/lib/os-release", r.join("etc/os-release")).unwrap();
    symlink("/usr/lib", r.join("lib")).unwrap();
    // Escapes: absolute and relative links pointing above the root must stay inside it.
    symlink("/../../../../etc/passwd", r.join("escape-abs")).unwrap();
    symlink("../../../../../../etc/hostname", r.join("etc/escape-rel")).unwrap();
    symlink("loop-b", r.join("loop-a")).unwrap();
    symlink("loop-a", r.join("loop-b")).unwrap();
    t
}

#[test]
fn symlinks_resolve_inside_root() {
    let t = tree();
    let root = Root::dir(t.path()).unwrap();
    assert_eq!(root.read_to_string_lossy("/etc/os-release").unwrap(), "ID=debian\n");
    assert_eq!(root.read_to_string_lossy("/lib/os-release").unwrap(), "ID=debian\n");
    // `..` after a symlink is physical, as in the kernel: /lib -> /usr/lib, so /lib/../etc is /usr/etc.
    assert_eq!(root.canonicalize("/lib/../lib/os-release").unwrap(), Path::new("/usr/lib/os-release"));
    assert!(root.read("/lib/../etc/os-release").unwrap_err().is_not_found());
    // Both escape attempts resolve to paths inside the root, which do not exist there.
    assert_eq!(root.canonicalize("/escape-abs").unwrap(), Path::new("/etc/passwd"));
    assert!(root.read("/escape-abs").unwrap_err().is_not_found());
    assert_eq!(root.canonicalize("/etc/escape-rel").unwrap(), Path::new("/etc/hostname"));
    assert!(root.read("/etc/escape-rel").is_err());
}

#[test]
fn symlink_loop_is_an_error() {
    let t = tree();
    let root = Root::dir(t.path()).unwrap();
    let err = root.read("/loop-a").unwrap_err();
    assert!(err.to_string().contains("too many levels of symbolic links"), "{err}");
}

#[test]
fn read_limit_is_enforced() {
    let t = tree();
    let root = Root::dir(t.path()).unwrap();
    assert!(root.read_limited("/usr/lib/os-release", 3).is_err());
    assert!(root.read_limited("/usr/lib/os-release", 10).is_ok());
}

#[test]
fn walk_does_not_follow_directory_symlinks() {
    let t = tree();
    let root = Root::dir(t.path()).unwrap();
    let mut seen = Vec::new();
    let errs = root.walk("/", &WalkOptions::standard(), |e| {
        seen.push((e.path.to_string_lossy().into_owned(), e.file_type));
        Visit::Continue
    });
    assert!(errs.is_empty(), "{errs:?}");
    assert!(seen.contains(&("/lib".to_string(), FileType::Symlink)));
    assert!(seen.contains(&("/usr/lib/os-release".to_string(), FileType::File)));
    assert!(!seen.iter().any(|(p, _)| p.starts_with("/lib/")));
}
