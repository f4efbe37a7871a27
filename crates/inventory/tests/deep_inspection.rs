//! Deep inspection on trees and archives the tests build themselves: every ecosystem, the path
//! policy, ownership, and hostile input (zip bombs, deep nesting, truncated archives, invalid UTF-8,
//! symlink loops, oversized files).

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kensa_fs::Root;
use kensa_inventory::lang::{self, DeepInspection, DeepInspectionMode, Limits, PathPolicyError};
use kensa_inventory::{CatalogContext, Inventory, Package};
use support::*;

fn write(root: &Path, rel: &str, data: impl AsRef<[u8]>) {
    let p = root.join(rel.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn run(dir: &Path, policy: &DeepInspection, limits: &Limits) -> Inventory {
    let root = Root::dir(dir).unwrap();
    let mut inv = Inventory::default();
    lang::catalog_with_limits(&CatalogContext { root: &root, os: None }, policy, limits, 1, &mut inv);
    // Several threads find the same packages and warnings, in the same order.
    let mut parallel = Inventory::default();
    lang::catalog_with_limits(&CatalogContext { root: &root, os: None }, policy, limits, 3, &mut parallel);
    assert_eq!(format!("{:?}", (&inv.packages, &inv.warnings)), format!("{:?}", (&parallel.packages, &parallel.warnings)), "1 thread against 3");
    inv
}

fn purl_at(inv: &Inventory) -> BTreeSet<(String, String)> {
    inv.packages.iter().map(|p| (p.purl.clone(), p.path().to_string())).collect()
}

fn find<'a>(inv: &'a Inventory, purl: &str) -> &'a Package {
    inv.packages.iter().find(|p| p.purl == purl).unwrap_or_else(|| panic!("{purl} not found in {:#?}", purl_at(inv)))
}

fn warned(inv: &Inventory, path_part: &str, msg_part: &str) -> bool {
    inv.warnings.iter().any(|w| w.path.contains(path_part) && w.message.contains(msg_part))
}

#[test]
fn python_every_metadata_form() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let site = "/opt/venv/lib/python3.11/site-packages";
    write(d, &format!("{site}/Jinja2-3.0.1.dist-info/METADATA"), "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.0.1\nLicense: BSD-3-Clause\n\nbody\n");
    write(d, &format!("{site}/Jinja2-3.0.1.dist-info/RECORD"), "jinja2/__init__.py,sha256=x,100\n\"jinja2/odd,name.py\",,\n../../../bin/jinja,,\nJinja2-3.0.1.dist-info/RECORD,,\n");
    write(d, "/usr/lib/python3/dist-packages/charset_normalizer-3.0.1.egg-info/PKG-INFO", "Metadata-Version: 2.1\nName: charset_normalizer\nVersion: 3.0.1\n");
    write(d, "/usr/lib/python3/dist-packages/charset_normalizer-3.0.1.egg-info/installed-files.txt", "../charset_normalizer/__init__.py\nPKG-INFO\n");
    write(d, "/usr/lib/python3/dist-packages/distutils_thing-1.0.egg-info", "Metadata-Version: 1.0\nName: distutils.thing\nVersion: 1.0\n");
    let egg = Zip::new().add("EGG-INFO/PKG-INFO", b"Metadata-Version: 1.1\nName: Zipped_Egg\nVersion: 0.9\n", true).add("zipped/__init__.py", b"", false).finish();
    write(d, "/srv/eggs/Zipped_Egg-0.9-py3.11.egg", egg);
    write(d, "/srv/eggs/unzipped-2.0-py3.11.egg/EGG-INFO/PKG-INFO", "Name: unzipped\nVersion: 2.0\n");
    let inv = run(d, &DeepInspection::all(), &Limits::default());
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    let got = purl_at(&inv);
    let want: BTreeSet<(String, String)> = [
        ("pkg:pypi/jinja2@3.0.1", format!("{site}/Jinja2-3.0.1.dist-info/METADATA")),
        ("pkg:pypi/charset-normalizer@3.0.1", "/usr/lib/python3/dist-packages/charset_normalizer-3.0.1.egg-info/PKG-INFO".into()),
        ("pkg:pypi/distutils-thing@1.0", "/usr/lib/python3/dist-packages/distutils_thing-1.0.egg-info".into()),
        ("pkg:pypi/zipped-egg@0.9", "/srv/eggs/Zipped_Egg-0.9-py3.11.egg".into()),
        ("pkg:pypi/unzipped@2.0", "/srv/eggs/unzipped-2.0-py3.11.egg/EGG-INFO/PKG-INFO".into()),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    assert_eq!(got, want);
    let j = find(&inv, "pkg:pypi/jinja2@3.0.1");
    assert_eq!(j.name, "Jinja2");
    assert_eq!(j.license.as_deref(), Some("BSD-3-Clause"));
    assert_eq!(
        j.files,
        [format!("{site}/jinja2/__init__.py"), format!("{site}/jinja2/odd,name.py"), "/opt/venv/bin/jinja".into(), format!("{site}/Jinja2-3.0.1.dist-info/RECORD")]
    );
    let c = find(&inv, "pkg:pypi/charset-normalizer@3.0.1");
    assert_eq!(c.files, ["/usr/lib/python3/dist-packages/charset_normalizer/__init__.py", "/usr/lib/python3/dist-packages/charset_normalizer-3.0.1.egg-info/PKG-INFO"]);
}

#[test]
fn npm_installed_packages_only() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "/srv/web/package.json", r#"{"name":"web","version":"1.0.0","private":true}"#);
    write(d, "/srv/web/package-lock.json", r#"{"name":"web","lockfileVersion":3,"packages":{"node_modules/left-pad":{"version":"9.9.9"}}}"#);
    write(d, "/srv/web/node_modules/.package-lock.json", r#"{"name":"web","version":"1.0.0"}"#);
    write(d, "/srv/web/node_modules/express/package.json", r#"{"name":"express","version":"4.17.1","license":"MIT"}"#);
    write(d, "/srv/web/node_modules/express/test/fixtures/package.json", r#"{"name":"fixture","version":"0.0.1"}"#);
    write(d, "/srv/web/node_modules/send/node_modules/ms/package.json", r#"{"name":"ms","version":"2.1.1","license":{"type":"MIT"}}"#);
    write(d, "/srv/web/node_modules/ms/package.json", r#"{"name":"ms","version":"2.0.0"}"#);
    write(d, "/srv/web/node_modules/@babel/core/package.json", r#"{"name":"@babel/core","version":"7.0.0"}"#);
    write(d, "/srv/web/node_modules/@babel/core/lib/esm/package.json", r#"{"type":"module"}"#);
    write(d, "/usr/lib/node_modules/npm/package.json", "\u{feff}{\"name\":\"npm\",\"version\":\"9.2.0\"}");
    let inv = run(d, &DeepInspection::all(), &Limits::default());
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    let got: Vec<_> = purl_at(&inv).into_iter().collect();
    assert_eq!(
        got,
        [
            ("pkg:npm/%40babel/core@7.0.0", "/srv/web/node_modules/@babel/core/package.json"),
            ("pkg:npm/express@4.17.1", "/srv/web/node_modules/express/package.json"),
            ("pkg:npm/ms@2.0.0", "/srv/web/node_modules/ms/package.json"),
            ("pkg:npm/ms@2.1.1", "/srv/web/node_modules/send/node_modules/ms/package.json"),
            ("pkg:npm/npm@9.2.0", "/usr/lib/node_modules/npm/package.json"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(find(&inv, "pkg:npm/ms@2.1.1").license.as_deref(), Some("MIT"));
}

#[test]
fn java_pom_manifest_filename_and_nesting() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let core = jar(&[("org.apache.logging.log4j", "log4j-core", "2.14.1")], "Implementation-Version: 2.14.1");
    let shaded = jar(&[("com.google.inject", "guice", "4.2.3"), ("cglib", "cglib", "3.2.12")], "");
    let manifest_only = jar(&[], "Extension-Name: commons-collections\r\nImplementation-Version: 3.2.2\r\nImplementation-Vendor-Id: org.apache");
    let bare = Zip::new().add("a/B.class", b"x", true).finish();
    write(d, "/opt/lib/log4j-core-2.14.1.jar", &core);
    write(d, "/opt/lib/guice.jar", &shaded);
    write(d, "/opt/lib/commons-collections3-3.2.2.jar", &manifest_only);
    write(d, "/opt/lib/aopalliance-1.0.jar", &bare);
    write(d, "/opt/lib/plugin.hpi", jar(&[("org.jenkins-ci.plugins", "git", "5.0.0")], ""));
    // WAR with stored and deflated nested JARs; EAR holding the WAR (JAR in WAR in EAR).
    let war = Zip::new()
        .add("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n", true)
        .add("META-INF/maven/com.example/webapp/pom.properties", b"groupId=com.example\nartifactId=webapp\nversion=1.4.2\n", true)
        .add("WEB-INF/lib/log4j-core-2.14.1.jar", &core, false)
        .add("WEB-INF/lib/commons-collections3-3.2.2.jar", &manifest_only, true)
        .finish();
    let ear = Zip::new().add("webapp.war", &war, true).add("lib/aopalliance-1.0.jar", &bare, false).finish();
    write(d, "/srv/ear/enterprise.ear", &ear);
    // Spring Boot fat JAR.
    let boot = Zip::new()
        .add("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nStart-Class: com.example.App\r\n", true)
        .add("META-INF/maven/com.example/demo/pom.properties", b"groupId=com.example\nartifactId=demo\nversion=2.3.0\n", true)
        .add("BOOT-INF/lib/log4j-core-2.14.1.jar", &core, false)
        .finish();
    write(d, "/usr/local/lib/app/demo-2.3.0.jar", &boot);
    // A "fully executable" Spring Boot JAR: a launch script prepended to the zip.
    let mut exec_jar = b"#!/bin/bash\n# launch script\nexec java -jar \"$0\" \"$@\"\n".to_vec();
    exec_jar.extend_from_slice(&jar(&[("com.example", "exec-app", "0.1.0")], ""));
    write(d, "/opt/exec/exec-app.jar", &exec_jar);
    // A distribution zip holding JARs (Syft searches these too); the zip itself is no package.
    write(d, "/opt/dist/tool-1.0.zip", Zip::new().add("tool-1.0/README", b"readme", true).add("tool-1.0/lib/log4j-core-2.14.1.jar", &core, true).finish());
    let inv = run(d, &DeepInspection::all(), &Limits::default());
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    let got: Vec<_> = purl_at(&inv).into_iter().collect();
    let want = [
        ("pkg:maven/aopalliance/aopalliance@1.0", "/opt/lib/aopalliance-1.0.jar"),
        ("pkg:maven/aopalliance/aopalliance@1.0", "/srv/ear/enterprise.ear!lib/aopalliance-1.0.jar"),
        ("pkg:maven/cglib/cglib@3.2.12", "/opt/lib/guice.jar"),
        ("pkg:maven/com.example/demo@2.3.0", "/usr/local/lib/app/demo-2.3.0.jar"),
        ("pkg:maven/com.example/exec-app@0.1.0", "/opt/exec/exec-app.jar"),
        ("pkg:maven/com.example/webapp@1.4.2", "/srv/ear/enterprise.ear!webapp.war"),
        ("pkg:maven/com.google.inject/guice@4.2.3", "/opt/lib/guice.jar"),
        ("pkg:maven/commons-collections/commons-collections3@3.2.2", "/opt/lib/commons-collections3-3.2.2.jar"),
        ("pkg:maven/commons-collections/commons-collections3@3.2.2", "/srv/ear/enterprise.ear!webapp.war!WEB-INF/lib/commons-collections3-3.2.2.jar"),
        ("pkg:maven/enterprise/enterprise", "/srv/ear/enterprise.ear"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "/opt/dist/tool-1.0.zip!tool-1.0/lib/log4j-core-2.14.1.jar"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "/opt/lib/log4j-core-2.14.1.jar"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "/srv/ear/enterprise.ear!webapp.war!WEB-INF/lib/log4j-core-2.14.1.jar"),
        ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "/usr/local/lib/app/demo-2.3.0.jar!BOOT-INF/lib/log4j-core-2.14.1.jar"),
        ("pkg:maven/org.jenkins-ci.plugins/git@5.0.0", "/opt/lib/plugin.hpi"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(got, want);
    assert_eq!(find(&inv, "pkg:maven/cglib/cglib@3.2.12").name, "cglib:cglib");
}

#[test]
fn go_and_rust_binaries_hand_assembled() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let modinfo = go_modinfo("path\texample.com/tool\nmod\texample.com/tool\tv1.0.0\th1:abc=\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\ndep\tgolang.org/x/text\tv0.3.0\n=>\tgolang.org/x/text\tv0.3.8\th1:ghi=\nbuild\t-compiler=gc\n");
    let inline = elf64(&[Sec { name: ".go.buildinfo", addr: 0x50_0000, data: go_buildinfo_inline("go1.21.5", &modinfo) }]);
    let old = go_elf_pointer_format("go1.16.15", &go_modinfo("path\texample.com/old\nmod\texample.com/old\t(devel)\t\ndep\tgithub.com/google/uuid\tv1.1.2\th1:x=\n"));
    let audit = br#"{"packages":[{"name":"myapp","version":"0.1.0","source":"local","root":true,"dependencies":[1]},{"name":"smallvec","version":"1.6.0","source":"crates.io"},{"name":"cc","version":"1.0.73","source":"crates.io","kind":"build"}]}"#;
    let rust = elf64(&[Sec { name: ".text", addr: 0x1000, data: vec![0xc3; 16] }, Sec { name: ".dep-v0", addr: 0, data: zlib(audit) }]);
    let plain = elf64(&[Sec { name: ".text", addr: 0x1000, data: vec![0xc3; 128] }]);
    let toolchain_cmd = elf64(&[Sec { name: ".go.buildinfo", addr: 0x50_0000, data: go_buildinfo_inline("go1.21.5", &go_modinfo("path\tcmd/compile\nbuild\t-compiler=gc\n")) }]);
    write(d, "usr/lib/go/pkg/tool/linux_amd64/compile", &toolchain_cmd);
    fs::set_permissions(d.join("usr/lib/go/pkg/tool/linux_amd64/compile"), fs::Permissions::from_mode(0o755)).unwrap();
    // The same binary with its section headers stripped: found through the writable segment.
    let mut no_sections = inline.clone();
    no_sections[0x28..0x30].fill(0); // e_shoff
    no_sections[0x3C..0x40].fill(0); // e_shnum, e_shstrndx
    for (name, bytes, mode) in [("usr/bin/tool", &inline, 0o755), ("usr/bin/stripped", &no_sections, 0o755), ("usr/bin/oldtool", &old, 0o755), ("usr/bin/myapp", &rust, 0o755), ("usr/bin/plain", &plain, 0o755), ("srv/not-exec", &inline, 0o644)] {
        write(d, name, bytes);
        fs::set_permissions(d.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    write(d, "usr/bin/script", "#!/bin/sh\necho this is a shell script, not an ELF file at all\n");
    fs::set_permissions(d.join("usr/bin/script"), fs::Permissions::from_mode(0o755)).unwrap();
    let inv = run(d, &DeepInspection::all(), &Limits::default());
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    let got: Vec<_> = purl_at(&inv).into_iter().collect();
    let want = [
        ("pkg:cargo/cc@1.0.73", "/usr/bin/myapp"),
        ("pkg:cargo/myapp@0.1.0", "/usr/bin/myapp"),
        ("pkg:cargo/smallvec@1.6.0", "/usr/bin/myapp"),
        ("pkg:golang/example.com/old@%28devel%29", "/usr/bin/oldtool"),
        ("pkg:golang/example.com/tool@v1.0.0", "/usr/bin/stripped"),
        ("pkg:golang/example.com/tool@v1.0.0", "/usr/bin/tool"),
        ("pkg:golang/github.com/google/uuid@v1.1.2", "/usr/bin/oldtool"),
        ("pkg:golang/github.com/pkg/errors@v0.9.1", "/usr/bin/stripped"),
        ("pkg:golang/github.com/pkg/errors@v0.9.1", "/usr/bin/tool"),
        ("pkg:golang/golang.org/x/text@v0.3.8", "/usr/bin/stripped"),
        ("pkg:golang/golang.org/x/text@v0.3.8", "/usr/bin/tool"),
        ("pkg:golang/stdlib@1.16.15", "/usr/bin/oldtool"),
        ("pkg:golang/stdlib@1.21.5", "/usr/bin/stripped"),
        ("pkg:golang/stdlib@1.21.5", "/usr/bin/tool"),
        ("pkg:golang/stdlib@1.21.5", "/usr/lib/go/pkg/tool/linux_amd64/compile"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(got, want);
    let stdlib = find(&inv, "pkg:golang/stdlib@1.21.5");
    assert_eq!(stdlib.version, "go1.21.5");
    assert_eq!(find(&inv, "pkg:golang/golang.org/x/text@v0.3.8").metadata.get("replaces").map(String::as_str), Some("golang.org/x/text v0.3.0"));
    assert_eq!(find(&inv, "pkg:cargo/cc@1.0.73").metadata.get("kind").map(String::as_str), Some("build"));
}

/// A real Go binary built by the Go toolchain (Debian's golang-go), checked against `go version -m`.
#[test]
fn go_binary_built_by_go_matches_go_version_m() {
    if !kensa_testdata::require_tool("go") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src, "go.mod", "module example.com/hello\n\ngo 1.18\n\nrequire example.com/greet v1.2.3\n\nreplace example.com/greet => ./greet\n");
    write(&src, "main.go", "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Hello()) }\n");
    write(&src, "greet/go.mod", "module example.com/greet\n\ngo 1.18\n");
    write(&src, "greet/greet.go", "package greet\n\nfunc Hello() string { return \"hi\" }\n");
    let root_dir = t.path().join("root");
    let bin = root_dir.join("usr/local/bin/hello");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let st = std::process::Command::new("go")
        .args(["build", "-buildvcs=false", "-trimpath", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .status()
        .expect("run go build");
    assert!(st.success(), "go build failed");
    let out = std::process::Command::new("go").args(["version", "-m"]).arg(&bin).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Oracle: go's own reading of the build info.
    let mut want = BTreeSet::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim_start().split('\t').collect();
        match f[0] {
            _ if line.starts_with(bin.to_str().unwrap()) => {
                let gv = line.rsplit(' ').next().unwrap();
                want.insert(format!("pkg:golang/stdlib@{}", gv.trim_start_matches("go")));
            }
            "mod" => {
                let (ns, name) = f[1].rsplit_once('/').unwrap();
                want.insert(format!("pkg:golang/{ns}/{name}@{}", f[2].replace('(', "%28").replace(')', "%29")));
            }
            "dep" => {}
            "=>" => {}
            _ => {}
        }
    }
    want.insert("pkg:golang/example.com/greet@%28devel%29".to_string());
    assert!(text.contains("dep\texample.com/greet\tv1.2.3") && text.contains("=>\t./greet"), "unexpected go version -m output:\n{text}");
    let inv = run(&root_dir, &DeepInspection::all(), &Limits::default());
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    let got: BTreeSet<String> = inv.packages.iter().map(|p| p.purl.clone()).collect();
    assert_eq!(got, want, "go version -m says:\n{text}");
    let greet = find(&inv, "pkg:golang/example.com/greet@%28devel%29");
    assert_eq!(greet.metadata.get("replaces").map(String::as_str), Some("example.com/greet v1.2.3"));
    assert_eq!(greet.path(), "/usr/local/bin/hello");
}

#[test]
fn custom_path_validation_follows_inspector() {
    for ok in ["/opt/app", "/opt/app/", "/home/.local", "/srv/my-app_2/lib.d", "/a"] {
        assert!(lang::validate_custom_path(ok).is_ok(), "{ok}");
    }
    for bad in ["opt/app", "/", "/opt/../etc", "/opt//app", "/opt/a b", "/opt/a.b.c", "/opt/..", "/opt/.", "/opt/app*", "/ópt"] {
        assert!(matches!(lang::validate_custom_path(bad), Err(PathPolicyError::InvalidPath { .. })), "{bad}");
    }
    let long = format!("/{}", "a".repeat(512));
    assert!(lang::validate_custom_path(&long).unwrap_err().to_string().contains("512"));
    let six: Vec<String> = (0..6).map(|i| format!("/p{i}")).collect();
    assert_eq!(DeepInspection::new(DeepInspectionMode::Agent, six), Err(PathPolicyError::TooManyPaths(6)));
    assert!("sometimes".parse::<DeepInspectionMode>().is_err());
}

#[test]
fn agent_mode_scans_default_and_custom_paths_only() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let pj = |n: &str| format!(r#"{{"name":"{n}","version":"1.0.0"}}"#);
    write(d, "/usr/lib/node_modules/a/package.json", pj("a"));
    write(d, "/usr/local/lib/node_modules/b/package.json", pj("b"));
    write(d, "/usr/lib64/x/node_modules/c/package.json", pj("c"));
    write(d, "/usr/local/lib64/node_modules/d/package.json", pj("d"));
    write(d, "/opt/app/node_modules/e/package.json", pj("e"));
    write(d, "/srv/web/node_modules/f/package.json", pj("f"));
    write(d, "/proc/1/root/node_modules/g/package.json", pj("g"));
    write(d, "/var/lib/docker/overlay2/x/node_modules/h/package.json", pj("h"));
    let names = |inv: &Inventory| inv.packages.iter().map(|p| p.name.clone()).collect::<BTreeSet<_>>();
    let agent = run(d, &DeepInspection::agent(), &Limits::default());
    assert_eq!(names(&agent), ["a", "b", "c", "d"].map(String::from).into());
    let custom = run(d, &DeepInspection::new(DeepInspectionMode::Agent, vec!["/opt/app".into(), "/usr/lib/node_modules".into()]).unwrap(), &Limits::default());
    assert_eq!(names(&custom), ["a", "b", "c", "d", "e"].map(String::from).into());
    assert_eq!(custom.packages.len(), 5, "overlapping custom path walked twice");
    let all = run(d, &DeepInspection::all(), &Limits::default());
    assert_eq!(names(&all), ["a", "b", "c", "d", "e", "f"].map(String::from).into());
    assert!(run(d, &DeepInspection::off(), &Limits::default()).packages.is_empty());
}

#[test]
fn hostile_archives_and_files_become_warnings() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // Zip bomb: one entry declaring 1 KiB that inflates to 64 MiB of zeros.
    let zeros = vec![0u8; 64 << 20];
    let mut bomb = Zip::new();
    let compressed = {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&zeros).unwrap();
        e.finish().unwrap()
    };
    drop(zeros);
    bomb.add_raw("META-INF/maven/x/bomb/pom.properties", 8, &compressed, 1024, 0);
    bomb.add_raw("lib/inner.jar", 8, &compressed, 1024, 0);
    write(d, "/opt/bomb.jar", bomb.finish());
    // Budget bomb: many nested jars that are each fine but add up.
    let filler = Zip::new().add("pad.bin", &vec![7u8; 300 << 10], false).finish();
    let mut many = Zip::new();
    for i in 0..40 {
        many = many.add(&format!("lib/f{i}.jar"), &filler, true);
    }
    write(d, "/opt/many.war", many.finish());
    // Nesting 8 deep.
    let mut nested = jar(&[("deep", "core", "1.0")], "");
    for i in 0..8 {
        nested = Zip::new().add(&format!("lib/level{i}.jar"), &nested, false).finish();
    }
    write(d, "/opt/nested.ear", nested);
    // Truncated archive; garbage with a jar name.
    let good = jar(&[("g", "a", "1")], "");
    write(d, "/opt/truncated.jar", &good[..good.len() / 2]);
    write(d, "/opt/garbage.jar", b"this is not a zip file at all");
    // A stored nested JAR cut in half (read in place, not copied): a warning, the outer JAR is
    // still reported.
    let mut outer = Zip::new().add("META-INF/maven/o/outer/pom.properties", b"groupId=o\nartifactId=outer\nversion=1\n", true);
    outer.add_raw("lib/half.jar", 0, &good[..good.len() / 2], (good.len() / 2) as u32, 0);
    write(d, "/opt/outer.jar", outer.finish());
    // Invalid UTF-8 metadata: reported, with a warning.
    write(d, "/usr/lib/python3/dist-packages/bad-1.0.dist-info/METADATA", b"Name: bad\nVersion: 1.0\nSummary: \xff\xfe broken\n");
    write(d, "/usr/lib/node_modules/badjson/package.json", b"{\"name\":\"badjson\",\"version\":\"1.0.0\",\"x\":\"\xff\"}");
    // Oversized metadata.
    write(d, "/usr/lib/node_modules/huge/package.json", format!(r#"{{"name":"huge","version":"1.0.0","pad":"{}"}}"#, "x".repeat(5000)));
    // Symlink loop with a jar name and a directory loop.
    std::os::unix::fs::symlink("loop-b.jar", d.join("opt/loop-a.jar")).unwrap();
    std::os::unix::fs::symlink("loop-a.jar", d.join("opt/loop-b.jar")).unwrap();
    std::os::unix::fs::symlink("/opt", d.join("opt/self")).unwrap();
    // A dist-info directory without METADATA.
    fs::create_dir_all(d.join("usr/lib/python3/dist-packages/empty-1.0.dist-info")).unwrap();
    let limits = Limits { max_metadata_bytes: 4096, max_nested_archive_bytes: 1 << 20, max_inflated_per_archive: 8 << 20, ..Limits::default() };
    let inv = run(d, &DeepInspection::all(), &limits);
    let w = |p: &str, m: &str| assert!(warned(&inv, p, m), "no warning for {p} containing {m:?}: {:#?}", inv.warnings);
    w("/opt/bomb.jar", "exceeds the 4096-byte limit");
    w("/opt/bomb.jar", "lib/inner.jar");
    w("/opt/many.war", "zip bomb");
    w("/opt/nested.ear", "nested deeper than 4 levels");
    w("/opt/truncated.jar", "not a zip archive");
    w("/opt/garbage.jar", "not a zip archive");
    w("/opt/outer.jar", "lib/half.jar: not a zip archive");
    assert_eq!(find(&inv, "pkg:maven/o/outer@1").path(), "/opt/outer.jar");
    w("bad-1.0.dist-info/METADATA", "not valid UTF-8");
    w("badjson/package.json", "invalid package.json");
    w("huge/package.json", "4096-byte limit");
    w("/opt/loop-a.jar", "symbolic links");
    w("empty-1.0.dist-info", "no METADATA");
    assert_eq!(find(&inv, "pkg:pypi/bad@1.0").path(), "/usr/lib/python3/dist-packages/bad-1.0.dist-info/METADATA");
    // The budget stopped the WAR part-way: some but not all 40 nested jars were read.
    let read = inv.packages.iter().filter(|p| p.path().starts_with("/opt/many.war!")).count();
    assert!(read > 0 && read < 40, "{read} nested jars read");
    // Nesting up to the limit is still read.
    assert!(inv.packages.iter().any(|p| p.path() == "/opt/nested.ear!lib/level7.jar!lib/level6.jar!lib/level5.jar!lib/level4.jar"));
    assert!(!inv.packages.iter().any(|p| p.path().contains("level3.jar") || p.purl.contains("deep")));
    // With default limits the same tree passes the bomb entry's 64 MiB only up to the cap.
    let inv = run(d, &DeepInspection::all(), &Limits::default());
    assert!(warned(&inv, "/opt/bomb.jar", "limit"), "{:#?}", inv.warnings);
}

/// A source where some files cannot be read (as on a host where the scanner lacks permission):
/// each becomes a warning naming the file, and the rest of the scan goes on.
#[test]
fn unreadable_files_become_warnings() {
    struct Unreadable {
        inner: kensa_fs::DirFs,
        deny: Vec<&'static str>,
    }
    impl kensa_fs::RawFs for Unreadable {
        fn lstat(&self, p: &Path) -> std::io::Result<kensa_fs::Metadata> {
            self.inner.lstat(p)
        }
        fn read_dir(&self, p: &Path) -> std::io::Result<Vec<kensa_fs::DirEntry>> {
            if self.deny.iter().any(|d| p == Path::new(d)) {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
            self.inner.read_dir(p)
        }
        fn read_link(&self, p: &Path) -> std::io::Result<std::path::PathBuf> {
            self.inner.read_link(p)
        }
        fn open_file(&self, p: &Path) -> std::io::Result<Box<dyn kensa_fs::ReadSeek>> {
            if self.deny.iter().any(|d| p == Path::new(d)) {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
            self.inner.open_file(p)
        }
        fn describe(&self) -> String {
            "test source with unreadable files".into()
        }
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "/opt/lib/secret.jar", jar(&[("g", "secret", "1.0")], ""));
    write(d, "/opt/lib/open.jar", jar(&[("g", "open", "1.0")], ""));
    write(d, "/usr/lib/node_modules/locked/package.json", r#"{"name":"locked","version":"1.0.0"}"#);
    write(d, "/srv/private/node_modules/x/package.json", r#"{"name":"x","version":"1.0.0"}"#);
    let fs = Unreadable { inner: kensa_fs::DirFs::new(d).unwrap(), deny: vec!["/opt/lib/secret.jar", "/usr/lib/node_modules/locked/package.json", "/srv/private"] };
    let root = Root::new(fs);
    let mut inv = Inventory::default();
    lang::catalog(&CatalogContext { root: &root, os: None }, &DeepInspection::all(), &mut inv);
    assert_eq!(inv.packages.iter().map(|p| p.purl.as_str()).collect::<Vec<_>>(), ["pkg:maven/g/open@1.0"]);
    for path in ["/opt/lib/secret.jar", "/usr/lib/node_modules/locked/package.json", "/srv/private"] {
        assert!(inv.warnings.iter().any(|w| w.path == path && w.message.to_lowercase().contains("permission denied")), "{path}: {:#?}", inv.warnings);
    }
}
