//! Date-time values of OVAL 5.11's `time_difference` function (DateTimeFormatEnumeration),
//! as seconds since the Unix epoch.
//!
//! Times without a zone are read as UTC: an offline target's time zone is not the scanning
//! host's, and differences between two such times do not depend on it. OpenSCAP 1.3 differs on
//! purpose here (docs/cis-offline.md): it reads them in the host's local time and, for the
//! year/month/day string formats, shifts the year by 1900 and the month by one, so its
//! differences across month ends are wrong; it returns 0 for win_filetime and for values it
//! cannot read, where the OVAL schema says "the result is an error".

/// Seconds since the epoch of `value` in OVAL date-time `format`.
pub fn parse(format: &str, value: &str) -> Result<i64, String> {
    let bad = || format!("time_difference: {value:?} is not a {format} date-time");
    match format {
        "seconds_since_epoch" => value.trim().parse::<i64>().map_err(|_| bad()),
        "win_filetime" => {
            // 100-nanosecond intervals since 1601-01-01 UTC; decimal, or hex with 0x.
            let v = value.trim();
            let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse::<u64>(),
            }
            .map_err(|_| bad())?;
            Ok((n / 10_000_000) as i64 - 11_644_473_600)
        }
        "cim_datetime" => cim(value).ok_or_else(bad),
        "year_month_day" => strptime_any(value, YEAR_MONTH_DAY).ok_or_else(bad),
        "month_day_year" => strptime_any(value, MONTH_DAY_YEAR).ok_or_else(bad),
        "day_month_year" => strptime_any(value, DAY_MONTH_YEAR).ok_or_else(bad),
        other => Err(format!("time_difference: unknown date-time format {other:?}")),
    }
}

/// The schema's formats as strptime(3) patterns (`%n`: any white space; `%b`: a month name, full
/// or abbreviated).
const YEAR_MONTH_DAY: &[&str] = &["%Y%m%d", "%Y/%m/%d", "%Y-%m-%d", "%Y%m%dT%H%M%S", "%Y/%m/%d%n%T", "%Y-%m-%d%n%T"];
const MONTH_DAY_YEAR: &[&str] = &["%m/%d/%Y", "%m-%d-%Y", "%b,%n%d%n%Y", "%m/%d/%Y%n%T", "%m-%d-%Y%n%T", "%b,%n%d%n%Y%n%T"];
const DAY_MONTH_YEAR: &[&str] = &["%d/%m/%Y", "%d-%m-%Y", "%d/%m/%Y%n%T", "%d-%m-%Y%n%T"];

const MONTHS: [&str; 12] = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

fn strptime_any(value: &str, formats: &[&str]) -> Option<i64> {
    formats.iter().find_map(|f| strptime(value, f))
}

/// A strptime(3) subset with glibc's number rules: leading blanks skipped, at most N digits,
/// range-checked. The whole input must be consumed.
fn strptime(input: &str, fmt: &str) -> Option<i64> {
    let s = input.as_bytes();
    let mut pos = 0;
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec) = (1900i64, 1i64, 1i64, 0i64, 0i64, 0i64);
    let fmt = fmt.replace("%T", "%H:%M:%S");
    let mut f = fmt.bytes();
    let number = |pos: &mut usize, from: i64, to: i64, digits: usize| -> Option<i64> {
        while s.get(*pos).is_some_and(u8::is_ascii_whitespace) {
            *pos += 1;
        }
        let mut v = 0i64;
        let mut n = 0;
        while n < digits && s.get(*pos).is_some_and(u8::is_ascii_digit) && (n == 0 || v * 10 <= to) {
            v = v * 10 + (s[*pos] - b'0') as i64;
            *pos += 1;
            n += 1;
        }
        (n > 0 && (from..=to).contains(&v)).then_some(v)
    };
    while let Some(c) = f.next() {
        if c == b'%' {
            match f.next()? {
                b'Y' => y = number(&mut pos, 0, 9999, 4)?,
                b'm' => mo = number(&mut pos, 1, 12, 2)?,
                b'd' => d = number(&mut pos, 1, 31, 2)?,
                b'H' => h = number(&mut pos, 0, 23, 2)?,
                b'M' => mi = number(&mut pos, 0, 59, 2)?,
                b'S' => sec = number(&mut pos, 0, 61, 2)?,
                b'n' => {
                    while s.get(pos).is_some_and(u8::is_ascii_whitespace) {
                        pos += 1;
                    }
                }
                b'b' => {
                    let rest = input.get(pos..)?.to_ascii_lowercase();
                    let (i, len) = MONTHS.iter().enumerate().find_map(|(i, m)| {
                        if rest.starts_with(m) {
                            Some((i, m.len()))
                        } else if rest.starts_with(&m[..3]) {
                            Some((i, 3))
                        } else {
                            None
                        }
                    })?;
                    mo = i as i64 + 1;
                    pos += len;
                }
                _ => return None,
            }
        } else if c.is_ascii_whitespace() {
            while s.get(pos).is_some_and(u8::is_ascii_whitespace) {
                pos += 1;
            }
        } else if s.get(pos) == Some(&c) {
            pos += 1;
        } else {
            return None;
        }
    }
    (pos == s.len()).then(|| epoch_seconds(y, mo, d, h, mi, sec))
}

/// `yyyymmddHHMMSS.mmmmmmsUUU` (UUU: minutes east of UTC), or the WQL forms
/// `yyyy-mm-dd HH:MM:SS:mmm` and `mm-dd-yyyy hh:mm:ss:mmm`.
fn cim(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |a, c| a * 10 + (c - b'0') as i64))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if b.len() == 25 && at(14, b'.') && matches!(b[21], b'+' | b'-') {
        let (y, mo, d, h, mi, s) = (digits(0..4)?, digits(4..6)?, digits(6..8)?, digits(8..10)?, digits(10..12)?, digits(12..14)?);
        digits(15..21)?;
        let offset_min = digits(22..25)?;
        let sign = if b[21] == b'+' { 1 } else { -1 };
        return valid(mo, d, h, mi, s).then(|| epoch_seconds(y, mo, d, h, mi, s) - sign * offset_min * 60);
    }
    if b.len() == 23 && at(4, b'-') && at(7, b'-') && at(10, b' ') && at(13, b':') && at(16, b':') && at(19, b':') {
        let (y, mo, d, h, mi, s) = (digits(0..4)?, digits(5..7)?, digits(8..10)?, digits(11..13)?, digits(14..16)?, digits(17..19)?);
        digits(20..23)?;
        return valid(mo, d, h, mi, s).then(|| epoch_seconds(y, mo, d, h, mi, s));
    }
    if b.len() == 23 && at(2, b'-') && at(5, b'-') && at(10, b' ') && at(13, b':') && at(16, b':') && at(19, b':') {
        let (mo, d, y, h, mi, s) = (digits(0..2)?, digits(3..5)?, digits(6..10)?, digits(11..13)?, digits(14..16)?, digits(17..19)?);
        digits(20..23)?;
        return valid(mo, d, h, mi, s).then(|| epoch_seconds(y, mo, d, h, mi, s));
    }
    None
}

fn valid(mo: i64, d: i64, h: i64, mi: i64, s: i64) -> bool {
    (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 62
}

/// Seconds since the epoch of a UTC civil time; days past a month's end roll over like
/// mktime(3) (February 30 is March 1 or 2).
pub fn epoch_seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    (days_from_civil(y, mo, 1) + d - 1) * 86_400 + h * 3600 + mi * 60 + s
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn every_schema_format() {
        // Expected values from `date -u -d ... +%s`.
        let t = 1_709_294_400; // 2024-03-01 12:00:00 UTC
        let day = 1_709_251_200; // 2024-03-01 00:00:00 UTC
        for (fmt, v, want) in [
            ("year_month_day", "20240301", day),
            ("year_month_day", "20240301T120000", t),
            ("year_month_day", "2024/03/01 12:00:00", t),
            ("year_month_day", "2024/03/01", day),
            ("year_month_day", "2024-03-01 12:00:00", t),
            ("year_month_day", "2024-03-01", day),
            ("month_day_year", "03/01/2024 12:00:00", t),
            ("month_day_year", "03/01/2024", day),
            ("month_day_year", "03-01-2024 12:00:00", t),
            ("month_day_year", "03-01-2024", day),
            ("month_day_year", "March, 01 2024 12:00:00", t),
            ("month_day_year", "March, 1 2024", day),
            ("month_day_year", "Mar, 01 2024 12:00:00", t),
            ("month_day_year", "mar, 01 2024", day),
            ("day_month_year", "01/03/2024 12:00:00", t),
            ("day_month_year", "01/03/2024", day),
            ("day_month_year", "01-03-2024 12:00:00", t),
            ("day_month_year", "01-03-2024", day),
            ("seconds_since_epoch", "1709294400", t),
            ("win_filetime", "133537680000000000", t),
            ("win_filetime", "0x1DA6BCFFC87A000", t),
            ("cim_datetime", "20240301120000.000000+000", t),
            ("cim_datetime", "20240301140000.000000+120", t),
            ("cim_datetime", "2024-03-01 12:00:00:000", t),
            ("cim_datetime", "03-01-2024 12:00:00:000", t),
            ("year_month_day", "2000-02-29", 951_782_400),
            ("year_month_day", "1960-01-01", -315_619_200),
        ] {
            assert_eq!(parse(fmt, v), Ok(want), "{fmt} {v}");
        }
    }

    #[test]
    fn values_not_in_the_format_are_errors() {
        for (fmt, v) in [
            ("year_month_day", "03/01/2024"),
            ("year_month_day", "2024-13-01"),
            ("year_month_day", "2024-03-01 25:00:00"),
            ("year_month_day", "2024-03-01 trailing"),
            ("month_day_year", "Smarch, 01 2024"),
            ("day_month_year", ""),
            ("seconds_since_epoch", "12abc"),
            ("win_filetime", "-1"),
            ("cim_datetime", "20240301120000"),
            ("julian", "1"),
        ] {
            let e = parse(fmt, v).unwrap_err();
            assert!(e.contains(&format!("{v:?}")) || e.contains("julian"), "{e}");
        }
    }
}
