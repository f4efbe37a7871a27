//! family, variable, sysctl, partition, uname, environmentvariable58, interface.

use super::{select_names, spec};
use crate::oval::{Collected, Evaluator, Item};
use crate::xml::Node;

pub fn family<'a>(_ev: &mut Evaluator<'a, '_>, _obj: &'a Node) -> Result<Collected, String> {
    let mut it = Item::new();
    it.set("family", "unix");
    Ok(Collected::items(vec![it]))
}

pub fn variable<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let var = obj.child_text("var_ref").ok_or("variable_object without var_ref")?.to_string();
    let values = ev.variable(&var)?;
    let items = values
        .iter()
        .map(|v| {
            let mut it = Item::new();
            it.set("var_ref", var.clone()).set("value", v.clone());
            it
        })
        .collect();
    Ok(Collected::items(items))
}

/// Kernel parameters. On the live host the current values (`/proc/sys`); offline, the values the
/// sysctl configuration files would set at boot, applied in `systemd-sysctl` / `sysctl --system`
/// order (docs/cis-offline.md). A `proc/` directory inside an offline tree is ignored: a disk
/// snapshot has none, and a copied one describes a different moment than the files.
pub fn sysctl<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let name = spec(ev, obj, "name")?.ok_or("sysctl_object without name")?;
    let mut items = Vec::new();
    if ev.ctx.live {
        let names: Vec<String> = if name.is_equals() { name.values.clone() } else { proc_sys_names(ev)? };
        for n in select_names(&name, names.into_iter())? {
            let p = format!("/proc/sys/{}", n.replace('.', "/"));
            if let Some(v) = ev.ctx.read_text(&p).ok().flatten() {
                let mut it = Item::new();
                // Multi-value parameters (e.g. ip_local_port_range) are tab separated: OpenSCAP
                // reports them with the tabs.
                it.set("name", n.clone()).set("value", v.trim_end_matches('\n').to_string());
                items.push(it);
            }
        }
        return Ok(Collected::items(items));
    }
    let conf = sysctl_config(ev)?;
    for (k, v) in conf {
        if name.matches(&k)? {
            let mut it = Item::new();
            it.set("name", k).set("value", v);
            items.push(it);
        }
    }
    if items.is_empty() {
        // Not configured: the running value is the kernel default, unknowable offline.
        return Ok(Collected::not_applicable("offline target: no sysctl configuration sets this parameter"));
    }
    Ok(Collected::items(items))
}

fn proc_sys_names(ev: &Evaluator) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let opts = kensa_fs::WalkOptions { max_depth: 16, max_entries: 200_000, ..Default::default() };
    ev.ctx.root.walk("/proc/sys", &opts, |e| {
        if e.file_type == kensa_fs::FileType::File {
            if let Ok(rel) = e.path.strip_prefix("/proc/sys") {
                out.push(rel.to_string_lossy().replace('/', "."));
            }
        }
        kensa_fs::walk::Visit::Continue
    });
    Ok(out)
}

/// Directories systemd-sysctl reads, in priority order (a file name in an earlier directory masks
/// the same name in later ones); files are applied in file-name order, then /etc/sysctl.conf.
const SYSCTL_DIRS: &[&str] = &["/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"];

/// The final value of each parameter after applying all sysctl configuration files.
pub fn sysctl_config(ev: &Evaluator) -> Result<Vec<(String, String)>, String> {
    let mut files: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for d in SYSCTL_DIRS {
        if let Ok(entries) = ev.ctx.root.read_dir(d) {
            for e in entries {
                let n = e.name.to_string_lossy().into_owned();
                if n.ends_with(".conf") && !files.contains_key(&n) {
                    files.insert(n.clone(), format!("{d}/{n}"));
                }
            }
        }
    }
    let mut order: Vec<String> = files.into_values().collect();
    order.push("/etc/sysctl.conf".into());
    let mut values: Vec<(String, String)> = Vec::new();
    let mut seen_sysctl_conf = false;
    for f in order {
        // /etc/sysctl.d/99-sysctl.conf is a link to /etc/sysctl.conf on RHEL: read it once.
        let canon = ev.ctx.root.canonicalize(&f).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        if canon == "/etc/sysctl.conf" {
            if seen_sysctl_conf {
                continue;
            }
            seen_sysctl_conf = true;
        }
        let Some(text) = ev.ctx.read_text(&f).ok().flatten() else { continue };
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            let l = l.trim_start_matches('-');
            let Some((k, v)) = l.split_once('=') else { continue };
            let k = k.trim().replace('/', ".");
            let v = v.trim().to_string();
            if k.contains('*') {
                continue;
            }
            match values.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => values.push((k, v)),
            }
        }
    }
    Ok(values)
}

/// Mounted filesystems: the target's `/proc/mounts` when it has a runtime view, else `/etc/fstab`
/// (what will be mounted at boot; docs/cis-offline.md).
pub fn partition<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let mp = spec(ev, obj, "mount_point")?.ok_or("partition_object without mount_point")?;
    let (text, fstab) = match ev.ctx.read_text("/proc/mounts")? {
        Some(t) if !t.trim().is_empty() => (t, false),
        _ => (ev.ctx.read_text("/etc/fstab")?.unwrap_or_default(), true),
    };
    let mut items = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let unescape = |s: &str| s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\");
        let (dev, point, fstype, opts) = (unescape(f[0]), unescape(f[1]), f[2].to_string(), f[3]);
        if fstab && (fstype == "swap" || !point.starts_with('/')) {
            continue;
        }
        if !mp.matches(&point)? {
            continue;
        }
        let mut it = Item::new();
        it.set("mount_point", point).set("device", dev).set("fs_type", fstype).set_many("mount_options", opts.split(',').map(str::to_string).collect());
        items.push(it);
    }
    Ok(Collected::items(items))
}

/// uname: on the live host from /proc/sys/kernel; offline, the newest installed kernel
/// (/lib/modules) and the os name "Linux" (docs/cis-offline.md).
pub fn uname<'a>(ev: &mut Evaluator<'a, '_>, _obj: &'a Node) -> Result<Collected, String> {
    let live = ev.ctx.live;
    let read = |p: &str| if live || !p.starts_with("/proc/") { ev.ctx.read_text(p).ok().flatten().map(|s| s.trim().to_string()) } else { None };
    let release = read("/proc/sys/kernel/osrelease").or_else(|| {
        let mut mods: Vec<String> = ev.ctx.root.read_dir("/lib/modules").ok()?.into_iter().map(|e| e.name.to_string_lossy().into_owned()).collect();
        mods.sort_by(|a, b| crate::value::compare_evr(a, b));
        mods.pop()
    });
    let Some(release) = release else { return Ok(Collected::not_applicable("offline target without installed kernels: no uname")) };
    let machine = machine_from_release(&release).or_else(|| machine_from_elf(ev)).unwrap_or_default().to_string();
    let mut it = Item::new();
    it.set("machine_class", machine.clone())
        .set("node_name", read("/proc/sys/kernel/hostname").or_else(|| read("/etc/hostname")).unwrap_or_default())
        .set("os_name", "Linux")
        .set("os_release", release)
        .set("os_version", read("/proc/sys/kernel/version").unwrap_or_default())
        .set("processor_type", machine);
    Ok(Collected::items(vec![it]))
}

/// uname(2)'s machine from a kernel release: RHEL and Fedora end it with `.x86_64`, Debian with its
/// own architecture name (`6.1.0-18-amd64`, `-cloud-arm64`). Others (Ubuntu's `-generic`) do not say.
fn machine_from_release(release: &str) -> Option<&'static str> {
    let suffix = release.rsplit(['.', '-']).next()?;
    Some(match suffix {
        "x86_64" | "amd64" => "x86_64",
        "aarch64" | "arm64" => "aarch64",
        "ppc64le" | "ppc64el" => "ppc64le",
        "s390x" => "s390x",
        "i686" | "686" | "pae" => "i686",
        _ => return None,
    })
}

/// uname(2)'s machine from the ELF header of the target's /bin/sh (what the kernel must be able
/// to run), when the kernel release does not name it.
fn machine_from_elf(ev: &Evaluator) -> Option<&'static str> {
    use std::io::Read;
    let mut header = [0u8; 20];
    ev.ctx.root.open("/bin/sh").ok()?.read_exact(&mut header).ok()?;
    if &header[..4] != b"\x7fELF" {
        return None;
    }
    let e_machine = if header[5] == 2 { u16::from_be_bytes([header[18], header[19]]) } else { u16::from_le_bytes([header[18], header[19]]) };
    Some(match (e_machine, header[5]) {
        (0x3e, _) => "x86_64",
        (0xb7, _) => "aarch64",
        (0x15, 1) => "ppc64le",
        (0x15, _) => "ppc64",
        (0x16, _) => "s390x",
        (0x03, _) => "i686",
        _ => return None,
    })
}

/// Environment of a process. Only the live host has processes: offline targets have none.
pub fn environmentvariable58<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let name = spec(ev, obj, "name")?.ok_or("environmentvariable58_object without name")?;
    if !ev.ctx.live {
        return Ok(Collected::items(vec![]));
    }
    let pid_nil = obj.child("pid").map(|p| p.is_nil() || p.text.trim().is_empty()).unwrap_or(true);
    let (pid, env): (String, Vec<(String, String)>) = if pid_nil {
        (std::process::id().to_string(), std::env::vars().collect())
    } else {
        let pid = obj.child_text("pid").unwrap_or("").to_string();
        let raw = ev.ctx.root.read_limited(format!("/proc/{pid}/environ"), 1 << 20).unwrap_or_default();
        (pid, raw.split(|&b| b == 0).filter_map(|kv| String::from_utf8_lossy(kv).split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect())
    };
    let mut items = Vec::new();
    for (k, v) in env {
        if name.matches(&k)? {
            let mut it = Item::new();
            it.set("pid", pid.clone()).set("name", k).set("value", v);
            items.push(it);
        }
    }
    Ok(Collected::items(items))
}

/// Network interfaces from /sys/class/net (live host; offline targets have none).
pub fn interface<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let name = spec(ev, obj, "name")?.ok_or("interface_object without name")?;
    let mut items = Vec::new();
    if !ev.ctx.live {
        return Ok(Collected::not_applicable("offline target: no network interfaces"));
    }
    let Ok(entries) = ev.ctx.root.read_dir("/sys/class/net") else { return Ok(Collected::items(items)) };
    for e in entries {
        let n = e.name.to_string_lossy().into_owned();
        if !name.matches(&n)? {
            continue;
        }
        let flags_raw = ev.ctx.read_text(format!("/sys/class/net/{n}/flags")).ok().flatten().unwrap_or_default();
        let bits = i64::from_str_radix(flags_raw.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        const NAMES: &[(i64, &str)] = &[(0x1, "UP"), (0x2, "BROADCAST"), (0x8, "LOOPBACK"), (0x10, "POINTOPOINT"), (0x40, "RUNNING"), (0x100, "PROMISC"), (0x200, "ALLMULTI"), (0x1000, "MULTICAST")];
        let flags = NAMES.iter().filter(|(b, _)| bits & b != 0).map(|(_, s)| s.to_string()).collect();
        let mut it = Item::new();
        it.set("name", n.clone())
            .set("hardware_addr", ev.ctx.read_text(format!("/sys/class/net/{n}/address")).ok().flatten().unwrap_or_default().trim().to_string())
            .set_many("flag", flags);
        items.push(it);
    }
    Ok(Collected::items(items))
}

/// Processes (command line and pid) of the live host; offline targets have none.
pub fn process58<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let cmd = spec(ev, obj, "command_line")?;
    let pid_spec = spec(ev, obj, "pid")?;
    let mut items = Vec::new();
    if !ev.ctx.live {
        return Ok(Collected::items(items));
    }
    let entries = ev.ctx.root.read_dir("/proc").map_err(|e| e.to_string())?;
    for e in entries {
        let pid = e.name.to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let raw = ev.ctx.root.read_limited(format!("/proc/{pid}/cmdline"), 1 << 20).unwrap_or_default();
        let line = raw.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(" ");
        if let Some(c) = &cmd {
            if !c.matches(&line)? {
                continue;
            }
        }
        if let Some(p) = &pid_spec {
            if !p.matches(&pid)? {
                continue;
            }
        }
        let mut it = Item::new();
        it.set("command_line", line).set("pid", pid);
        items.push(it);
    }
    Ok(Collected::items(items))
}

/// SELinux booleans of the running policy (/sys/fs/selinux/booleans). An offline tree has no
/// loaded policy: no booleans (as OpenSCAP reports offline).
pub fn selinuxboolean<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let name = spec(ev, obj, "name")?.ok_or("selinuxboolean_object without name")?;
    let mut items = Vec::new();
    if !ev.ctx.live {
        return Ok(Collected::items(items));
    }
    let Ok(entries) = ev.ctx.root.read_dir("/sys/fs/selinux/booleans") else { return Ok(Collected::items(items)) };
    for e in entries {
        let n = e.name.to_string_lossy().into_owned();
        if !name.matches(&n)? {
            continue;
        }
        let raw = ev.ctx.read_text(format!("/sys/fs/selinux/booleans/{n}")).ok().flatten().unwrap_or_default();
        let mut f = raw.split_whitespace();
        let current = f.next().unwrap_or("0") == "1";
        let pending = f.next().map(|p| p == "1").unwrap_or(current);
        let mut it = Item::new();
        it.set("name", n).set("current_status", current.to_string()).set("pending_status", pending.to_string());
        items.push(it);
    }
    Ok(Collected::items(items))
}
