//! password (/etc/passwd) and shadow (/etc/shadow), read as files (no NSS, no getspnam).

use super::spec;
use crate::oval::{Collected, Evaluator, Item};
use crate::xml::Node;

fn records(ev: &Evaluator, path: &str, min_fields: usize) -> Result<Vec<Vec<String>>, String> {
    let text = ev.ctx.read_text(path)?.unwrap_or_default();
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() >= min_fields)
        .collect())
}

pub fn password<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let user = spec(ev, obj, "username")?.ok_or("password_object without username")?;
    let mut items = Vec::new();
    for f in records(ev, "/etc/passwd", 7)? {
        if !user.matches(&f[0])? {
            continue;
        }
        let mut it = Item::new();
        it.set("username", f[0].clone())
            .set("password", f[1].clone())
            .set("user_id", f[2].clone())
            .set("group_id", f[3].clone())
            .set("gcos", f[4].clone())
            .set("home_dir", f[5].clone())
            .set("login_shell", f[6].clone())
            .set("last_login", "-1");
        items.push(it);
    }
    Ok(Collected::items(items))
}

pub fn shadow<'a>(ev: &mut Evaluator<'a, '_>, obj: &'a Node) -> Result<Collected, String> {
    let user = spec(ev, obj, "username")?.ok_or("shadow_object without username")?;
    let mut items = Vec::new();
    for f in records(ev, "/etc/shadow", 9)? {
        if !user.matches(&f[0])? {
            continue;
        }
        let num = |s: &str| if s.is_empty() { "-1".to_string() } else { s.to_string() };
        let method = match f[1].split('$').nth(1) {
            Some("1") => "MD5",
            Some("2a") | Some("2b") | Some("2y") => "BLOWFISH",
            Some("5") => "SHA-256",
            Some("6") => "SHA-512",
            Some("y") => "YESCRYPT",
            _ if f[1].starts_with('_') => "BSDI",
            _ => "DES",
        };
        let mut it = Item::new();
        it.set("username", f[0].clone())
            .set("password", f[1].clone())
            .set("chg_lst", num(&f[2]))
            .set("chg_allow", num(&f[3]))
            .set("chg_req", num(&f[4]))
            .set("exp_warn", num(&f[5]))
            .set("exp_inact", num(&f[6]))
            .set("exp_date", num(&f[7]))
            .set("flag", f[8].clone())
            .set("encrypt_method", method);
        items.push(it);
    }
    Ok(Collected::items(items))
}
