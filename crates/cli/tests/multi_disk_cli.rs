//! `kensa sbom IMAGE --disk IMAGE2`: a machine whose /var lives on a second disk lists the packages
//! of both; `--disk` with a target that is not a disk image is refused; `--max-disk-size` and
//! `--max-volumes` change the agentless limits.

use std::path::Path;
use std::process::Command;

const VAR_UUID: &str = "7a1c3e5f-2b4d-4f60-8a9b-c0d1e2f30405";

fn mkfs(tree: &Path, image: &Path, extra: &[&str]) {
    std::fs::File::create(image).unwrap().set_len(32 << 20).unwrap();
    let out = Command::new("mkfs.ext4").args(["-q", "-F", "-E", "root_owner=0:0"]).args(extra).arg("-d").arg(tree).arg(image).output().unwrap();
    assert!(out.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&out.stderr));
}

fn kensa(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kensa")).args(args).output().unwrap()
}

#[test]
fn sbom_of_a_machine_with_two_disks() {
    if !kensa_testdata::require_tool("mkfs.ext4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let root = t.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
    std::fs::write(root.join("etc/fstab"), format!("UUID={VAR_UUID} /var ext4 defaults 0 2\n")).unwrap();
    let var = t.join("var");
    std::fs::create_dir_all(var.join("lib/dpkg")).unwrap();
    std::fs::write(var.join("lib/dpkg/status"), "Package: on-second-disk\nStatus: install ok installed\nVersion: 2.0-1\nArchitecture: all\n\n").unwrap();
    let (root_img, var_img) = (t.join("root.img"), t.join("var.img"));
    mkfs(&root, &root_img, &[]);
    mkfs(&var, &var_img, &["-U", VAR_UUID]);

    let out = kensa(&["sbom".as_ref(), root_img.as_os_str(), "--disk".as_ref(), var_img.as_os_str(), "--format".as_ref(), "json".as_ref(), "--stats".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = inv["packages"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["on-second-disk"]);
    assert!(stderr.contains("bytes read"), "{stderr}");

    // Only the root disk: the fstab entry has no volume, and the package is not there.
    let out = kensa(&["sbom".as_ref(), root_img.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inv["packages"].as_array().unwrap().len(), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such volume"), "{}", String::from_utf8_lossy(&out.stderr));

    // The agentless limits can be changed: both disks (64 MiB) are over 40 MiB, one is not; two
    // volumes are over one.
    let out = kensa(&["sbom".as_ref(), root_img.as_os_str(), "--disk".as_ref(), var_img.as_os_str(), "--max-disk-size".as_ref(), "40MiB".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not eligible for agentless scanning: the 2 disks hold 67108864 bytes") && stderr.contains("more than the 41943040-byte limit"), "{stderr}");
    let out = kensa(&["sbom".as_ref(), root_img.as_os_str(), "--max-disk-size".as_ref(), "40MiB".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = kensa(&["sbom".as_ref(), root_img.as_os_str(), "--disk".as_ref(), var_img.as_os_str(), "--max-volumes".as_ref(), "1".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 volumes, more than the limit of 1"), "{stderr}");
    let out = kensa(&["sbom".as_ref(), root_img.as_os_str(), "--max-disk-size".as_ref(), "big".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size such as 1200GB"), "{}", String::from_utf8_lossy(&out.stderr));

    // --disk with a directory target is a usage error.
    let out = kensa(&["sbom".as_ref(), root.as_os_str(), "--disk".as_ref(), var_img.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a disk image"));
}
