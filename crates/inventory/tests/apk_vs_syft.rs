//! The apk cataloger against Syft's on an Alpine-style tree written here (apk-tools' installed
//! database format, records as found in Alpine 3.18 images): same packages, same purls.

use std::collections::BTreeSet;
use std::process::Command;

use kensa_fs::Root;
use kensa_inventory::{scan, ScanOptions};

const INSTALLED: &str = "C:Q1nIYuDgj8U2ZT2S+X3wTsG1ra2uI=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1698327830
c:b6b0a4ebd4bc4c2e2eb2cb5d0b46e2ab1b3e8bd5
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755

C:Q1cYBAplK1OXzyKXMybhIvCRXaJ5s=
P:libcrypto3
V:3.1.4-r0
A:x86_64
L:Apache-2.0
o:openssl
F:usr/lib
R:libcrypto.so.3

C:Q1Mq0y1z1GxN3y0w+Gq8o2rCZ2a9E=
P:busybox-binsh
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
o:busybox
F:bin
R:sh

C:Q1x5q8P6m0rQm8X3m6N8v0w5Ew1b4=
P:ca-certificates-bundle
V:20230506-r0
A:x86_64
L:MPL-2.0 AND MIT
o:ca-certificates
F:etc/ssl/certs
R:ca-certificates.crt
";

#[test]
fn apk_purls_equal_syft() {
    let Some(syft) = kensa_testdata::venv_tool("syft") else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/os-release"), "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\n").unwrap();
    std::fs::write(dir.path().join("etc/alpine-release"), "3.18.4\n").unwrap();
    std::fs::write(dir.path().join("lib/apk/db/installed"), INSTALLED).unwrap();
    let out = Command::new(syft).arg(format!("dir:{}", dir.path().display())).args(["-o", "json", "-q"]).env("SYFT_CHECK_FOR_APP_UPDATE", "false").output().expect("run syft");
    assert!(out.status.success(), "syft failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let syft: BTreeSet<String> = doc["artifacts"].as_array().unwrap().iter().map(|a| a["purl"].as_str().unwrap().to_string()).collect();
    let inv = scan(&Root::dir(dir.path()).unwrap(), &ScanOptions::default());
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let kensa: BTreeSet<String> = inv.packages.iter().map(|p| p.purl.clone()).collect();
    assert_eq!(kensa.len(), 4);
    assert_eq!(kensa, syft);
    let musl = inv.packages.iter().find(|p| p.name == "musl").unwrap();
    assert_eq!(musl.files, vec!["/lib/ld-musl-x86_64.so.1"]);
}
