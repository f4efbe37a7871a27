//! Ordering laws on seeded random samples per scheme: reflexivity, antisymmetry and
//! transitivity. A comparator that breaks them would make sorting and range matching
//! inconsistent; upstream algorithms satisfy them on well-formed versions.

use std::cmp::Ordering;

use kensa_version::{Scheme, Version};

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

fn num(rng: &mut fastrand::Rng) -> String {
    // Small numbers collide often (more equal segments); leading zeros only where allowed.
    match rng.u8(..10) {
        0 => rng.u32(..100_000).to_string(),
        _ => rng.u8(..4).to_string(),
    }
}

fn gen(scheme: Scheme, rng: &mut fastrand::Rng) -> String {
    let mut s = String::new();
    match scheme {
        Scheme::Rpm => {
            if rng.u8(..4) == 0 {
                s += &format!("{}:", rng.u8(..3));
            }
            for _ in 0..rng.usize(1..5) {
                s += pick(rng, &["1", "0", "2", "10", "01", "a", "b", "rc", "."]);
                s += pick(rng, &["", ".", "~", "^", "_", "+", ".", ""]);
            }
            if rng.bool() {
                s += &format!("-{}", pick(rng, &["1", "1.el9", "2", "0.1", "1~rc"]));
            }
        }
        Scheme::Deb => {
            if rng.u8(..4) == 0 {
                s += &format!("{}:", rng.u8(..3));
            }
            s += &num(rng);
            for _ in 0..rng.usize(0..4) {
                s += pick(rng, &[".", "+", "~", "", "."]);
                s += pick(rng, &["1", "0", "2", "10", "a", "b", "dfsg", "rc"]);
            }
            if rng.bool() {
                s += &format!("-{}", pick(rng, &["1", "0ubuntu1", "2", "1+b1", "1~bpo1"]));
            }
        }
        Scheme::Apk => {
            s += &num(rng);
            for _ in 0..rng.usize(0..3) {
                s += &format!(".{}", num(rng));
            }
            if rng.u8(..4) == 0 {
                s += pick(rng, &["a", "b", "z"]);
            }
            for _ in 0..rng.usize(0..3) {
                s += &format!("_{}", pick(rng, &["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]));
                if rng.bool() {
                    s += &num(rng);
                }
            }
            if rng.u8(..5) == 0 {
                s += pick(rng, &["~abc1", "~0f", "~1234abcd"]);
            }
            if rng.bool() {
                s += &format!("-r{}", rng.u8(..5));
            }
        }
        Scheme::Pypi => {
            if rng.u8(..6) == 0 {
                s += &format!("{}!", rng.u8(..3));
            }
            s += &num(rng);
            for _ in 0..rng.usize(0..3) {
                s += &format!(".{}", num(rng));
            }
            if rng.u8(..3) == 0 {
                s += &format!("{}{}", pick(rng, &["a", "b", "rc", "alpha", "c", "pre"]), rng.u8(..3));
            }
            if rng.u8(..3) == 0 {
                s += &format!(".post{}", rng.u8(..3));
            }
            if rng.u8(..3) == 0 {
                s += &format!(".dev{}", rng.u8(..3));
            }
            if rng.u8(..4) == 0 {
                s += &format!("+{}", pick(rng, &["1", "abc", "ubuntu.1", "1.abc", "2"]));
            }
        }
        Scheme::Npm => {
            s += &format!("{}.{}.{}", rng.u8(..3), rng.u8(..3), rng.u8(..3));
            if rng.bool() {
                let ids: Vec<&str> =
                    (0..rng.usize(1..4)).map(|_| pick(rng, &["alpha", "beta", "1", "2", "10", "rc", "x-y"])).collect();
                s += &format!("-{}", ids.join("."));
            }
            if rng.u8(..4) == 0 {
                s += "+build.5";
            }
        }
        Scheme::Maven => {
            for _ in 0..rng.usize(1..6) {
                s += pick(
                    rng,
                    &["1", "0", "2", "10", "alpha", "a1", "beta", "b2", "m1", "rc", "cr", "snapshot", "ga", "final", "sp", "foo", "-", "."],
                );
            }
        }
        Scheme::Go => {
            s += &format!("v{}", rng.u8(..3));
            if rng.u8(..4) != 0 {
                s += &format!(".{}.{}", rng.u8(..3), rng.u8(..3));
                if rng.bool() {
                    let ids: Vec<&str> =
                        (0..rng.usize(1..3)).map(|_| pick(rng, &["alpha", "beta", "1", "2", "10", "pre"])).collect();
                    s += &format!("-{}", ids.join("."));
                }
                if rng.u8(..4) == 0 {
                    s += "+incompatible";
                }
            }
        }
    }
    s
}

fn sample(scheme: Scheme, n: usize, seed: u64) -> Vec<(String, Version)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    while out.len() < n {
        let s = gen(scheme, &mut rng);
        // Some generated strings are invalid for the scheme (e.g. maven "-" alone is fine, a
        // deb version may end in '-'); the laws are about the versions the scheme accepts.
        if let Ok(v) = Version::parse(scheme, &s) {
            out.push((s, v));
        }
    }
    out
}

fn check_laws(scheme: Scheme) {
    let seed = 0x6b656e7361 ^ scheme as u64;
    let vs = sample(scheme, 150, seed);
    let cmp = |a: &Version, b: &Version| a.compare(b).expect("same scheme");
    for (s, v) in &vs {
        assert_eq!(cmp(v, v), Ordering::Equal, "{scheme}: {s:?} is not equal to itself");
    }
    for (sa, a) in &vs {
        for (sb, b) in &vs {
            assert_eq!(cmp(a, b), cmp(b, a).reverse(), "{scheme}: antisymmetry fails for {sa:?} / {sb:?}");
        }
    }
    let small = &vs[..60];
    for (sa, a) in small {
        for (sb, b) in small {
            let ab = cmp(a, b);
            if ab == Ordering::Greater {
                continue;
            }
            for (sc, c) in small {
                let bc = cmp(b, c);
                if bc == Ordering::Greater {
                    continue;
                }
                let ac = cmp(a, c);
                let want_less = ab == Ordering::Less || bc == Ordering::Less;
                assert!(
                    if want_less { ac == Ordering::Less } else { ac == Ordering::Equal },
                    "{scheme}: transitivity fails: {sa:?} {ab:?} {sb:?}, {sb:?} {bc:?} {sc:?}, but {sa:?} {ac:?} {sc:?}"
                );
            }
        }
    }
}

#[test]
fn rpm_laws() {
    check_laws(Scheme::Rpm);
}
#[test]
fn deb_laws() {
    check_laws(Scheme::Deb);
}
#[test]
fn apk_laws() {
    check_laws(Scheme::Apk);
}
#[test]
fn pypi_laws() {
    check_laws(Scheme::Pypi);
}
#[test]
fn npm_laws() {
    check_laws(Scheme::Npm);
}
#[test]
fn maven_laws() {
    check_laws(Scheme::Maven);
}
#[test]
fn go_laws() {
    check_laws(Scheme::Go);
}

#[test]
fn scheme_names_round_trip() {
    for s in Scheme::ALL {
        assert_eq!(s.name().parse::<Scheme>().unwrap(), s);
        assert_eq!(s.to_string().to_uppercase().parse::<Scheme>().unwrap(), s);
    }
    assert_eq!("golang".parse::<Scheme>().unwrap(), Scheme::Go);
    assert!("cargo".parse::<Scheme>().is_err());
}

#[test]
fn invalid_versions_are_errors_not_panics() {
    let long = "x".repeat(100_000);
    let hostile = ["", " ", "\0", "v", "1..2", "-", ":", "1:", "~", "^", "+", "1.2.3-", "1.0-1:2", "é", &long];
    for scheme in Scheme::ALL {
        for h in hostile {
            // Either outcome is fine; it must return.
            let _ = kensa_version::compare(scheme, h, "1.0");
            let _ = kensa_version::compare(scheme, "1.0", h);
        }
    }
    let e = kensa_version::compare(Scheme::Go, "1.2.3", "v1.2.3").unwrap_err();
    assert_eq!(e.scheme, "go");
    assert!(e.reason.contains("v prefix"), "{e}");
    assert!(kensa_version::compare(Scheme::Deb, "1.0 2", "1").unwrap_err().reason.contains("embedded spaces"));
    assert!(kensa_version::compare(Scheme::Pypi, "french toast", "1").is_err());
    assert!(kensa_version::compare(Scheme::Npm, "1.2", "1.2.3").is_err());
    // The error message stays bounded for huge inputs.
    let e = kensa_version::compare(Scheme::Pypi, &long, "1").unwrap_err();
    assert!(e.to_string().len() < 400);
}
