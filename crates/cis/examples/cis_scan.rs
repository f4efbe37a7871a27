//! Development helper: `cargo run -p kensa-cis --example cis_scan -- DATASTREAM PROFILE ROOTFS [OUT.json]`.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: cis_scan DATASTREAM PROFILE ROOTFS [OUT.json]");
        std::process::exit(2);
    }
    let t = std::time::Instant::now();
    let ds = kensa_cis::DataStream::load(a[1].as_ref()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("load {:?}", t.elapsed());
    let root = kensa_fs::Root::dir(&a[3]).expect("rootfs");
    let opts = kensa_cis::ScanOptions { profile: a[2].clone(), ..Default::default() };
    let t = std::time::Instant::now();
    let r = kensa_cis::scan(&ds, &opts, root, false).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("scan {:?}", t.elapsed());
    match a.get(4) {
        Some(out) => std::fs::write(out, kensa_cis::report::json(&r)).expect("write"),
        None => print!("{}", kensa_cis::report::table(&r)),
    }
}
