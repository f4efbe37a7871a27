//! maven: Maven's `ComparableVersion` (maven-artifact), ported item for item.
//!
//! A version is a list of items: numbers, qualifiers (`alpha` < `beta` < `milestone` < `rc`
//! = `cr` < `snapshot` < `""` = `ga` = `final` = `release` < `sp` < unknown qualifiers in
//! lexical order), letter-digit combinations (`alpha1`, `a1` = `alpha-1`) and sub-lists opened
//! by `-` or a letter/digit transition. Trailing "null" items (0, empty, `ga`) are dropped.
//! Every string is a Maven version; only strings longer than 256 UTF-16 units are rejected,
//! as current Maven does.

use std::cmp::Ordering;

use crate::{Scheme, VersionError};

const MAX_VERSION_LENGTH: usize = 256;
const MAX_INTITEM_LENGTH: usize = 9;
const MAX_LONGITEM_LENGTH: usize = 18;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(i32),
    Long(i64),
    /// Digits without leading zeros, longer than a long.
    Big(Box<str>),
    Str(Box<str>),
    Combination(Box<str>, Box<Item>),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_QUALIFIERS: [&str; 3] = ["ga", "final", "release"];
const RELEASE_VERSION_INDEX: &str = "5";

/// `StringItem.comparableQualifier()`: a string that sorts qualifiers in Maven's order.
fn comparable_qualifier(q: &str) -> std::borrow::Cow<'static, str> {
    if RELEASE_QUALIFIERS.contains(&q) {
        return RELEASE_VERSION_INDEX.into();
    }
    match QUALIFIERS.iter().position(|&k| k == q) {
        Some(i) => ["0", "1", "2", "3", "4", "5", "6"][i].into(),
        None => format!("{}-{}", QUALIFIERS.len(), q).into(),
    }
}

/// Java's `String.compareTo`: UTF-16 code unit order.
fn java_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn qualifier_cmp(a: &str, b: &str) -> Ordering {
    java_cmp(&comparable_qualifier(a), &comparable_qualifier(b))
}

/// `new StringItem(value, followedByDigit)`: the a1/b1/m1 shorthands and the `cr` alias.
fn string_item(value: &str, followed_by_digit: bool) -> Box<str> {
    let value = if followed_by_digit && value.chars().count() == 1 {
        match value {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            v => v,
        }
    } else {
        value
    };
    if value == "cr" { "rc".into() } else { value.into() }
}

/// Java's `Character.isDigit` (Unicode decimal digits), approximated by Rust's numeric class
/// outside ASCII.
fn is_java_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn parse_number(buf: &str) -> Result<Item, &'static str> {
    if !buf.bytes().all(|c| c.is_ascii_digit()) {
        return Err("non-ASCII digits in a numeric item are not supported");
    }
    let digits = buf.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    Ok(if digits.len() <= MAX_INTITEM_LENGTH {
        Item::Int(digits.parse().expect("at most 9 digits"))
    } else if digits.len() <= MAX_LONGITEM_LENGTH {
        Item::Long(digits.parse().expect("at most 18 digits"))
    } else {
        Item::Big(digits.into())
    })
}

fn combination(value: &str) -> Result<Item, &'static str> {
    let value = value.replace('-', "");
    let index = value.char_indices().find(|&(_, c)| is_java_digit(c)).map_or(0, |(i, _)| i);
    let string_part = string_item(&value[..index], true);
    let digit_part = parse_number(&value[index..])?;
    Ok(Item::Combination(string_part, Box::new(digit_part)))
}

fn parse_item(is_combination: bool, is_digit: bool, buf: &str) -> Result<Item, &'static str> {
    if is_combination {
        combination(buf)
    } else if is_digit {
        parse_number(buf)
    } else {
        Ok(Item::Str(string_item(buf, false)))
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(v) => *v == 0,
            Item::Long(v) => *v == 0,
            Item::Big(_) => false,
            Item::Str(s) => s.is_empty(),
            Item::Combination(..) => false,
            Item::List(l) => l.is_empty(),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Item::Int(_) | Item::Long(_) | Item::Big(_))
    }

    /// `Item.compareTo(item)`, where `None` is Java's `null` (the missing item).
    fn compare(&self, other: Option<&Item>) -> Ordering {
        use Ordering::*;
        match self {
            Item::Int(_) | Item::Long(_) | Item::Big(_) => {
                let Some(other) = other else {
                    return if self.is_null() { Equal } else { Greater };
                };
                match (self, other) {
                    (Item::Int(a), Item::Int(b)) => a.cmp(b),
                    (Item::Long(a), Item::Long(b)) => a.cmp(b),
                    (Item::Big(a), Item::Big(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
                    (Item::Int(_), Item::Long(_) | Item::Big(_)) | (Item::Long(_), Item::Big(_)) => Less,
                    (Item::Long(_) | Item::Big(_), Item::Int(_)) | (Item::Big(_), Item::Long(_)) => Greater,
                    // 1.1 > 1-sp, 1.1 > 1-1, 1.1 > 1.a
                    _ => Greater,
                }
            }
            Item::Str(value) => match other {
                None => java_cmp(&comparable_qualifier(value), RELEASE_VERSION_INDEX),
                Some(o) if o.is_numeric() => Less,
                Some(Item::Str(o)) => qualifier_cmp(value, o),
                Some(Item::Combination(s, digits)) => {
                    let result = qualifier_cmp(value, s);
                    if result == Equal {
                        if self.compare(None) == Equal {
                            return digits.compare(None).reverse();
                        }
                        return Less;
                    }
                    result
                }
                Some(list @ Item::List(_)) => list.compare(Some(self)).reverse(),
                Some(_) => unreachable!("numeric handled above"),
            },
            Item::Combination(s, digits) => {
                let string_part = Item::Str(s.clone());
                match other {
                    None => {
                        let result = string_part.compare(None);
                        if result == Equal { digits.compare(None) } else { result }
                    }
                    Some(o) if o.is_numeric() => Less,
                    Some(o @ Item::Str(_)) => {
                        let result = string_part.compare(Some(o));
                        if result == Equal {
                            if string_part.compare(None) == Equal {
                                return digits.compare(None);
                            }
                            return Greater; // X1 > X
                        }
                        result
                    }
                    Some(list @ Item::List(_)) => list.compare(Some(self)).reverse(),
                    Some(Item::Combination(os, od)) => {
                        let result = qualifier_cmp(s, os);
                        if result == Equal { digits.compare(Some(od)) } else { result }
                    }
                    Some(_) => unreachable!("numeric handled above"),
                }
            }
            Item::List(items) => match other {
                None => {
                    for i in items {
                        let r = i.compare(None);
                        if r != Equal {
                            return r;
                        }
                    }
                    Equal
                }
                Some(o) if o.is_numeric() => Less, // 1-1 < 1.0.x
                Some(o @ (Item::Str(_) | Item::Combination(..))) => {
                    let mut result =
                        if items.is_empty() { o.compare(None).reverse() } else { items[0].compare(Some(o)) };
                    let mut i = 1;
                    while result == Equal && i < items.len() {
                        result = items[i].compare(None);
                        i += 1;
                    }
                    result
                }
                Some(Item::List(others)) => {
                    let n = items.len().max(others.len());
                    for k in 0..n {
                        let result = match (items.get(k), others.get(k)) {
                            (None, None) => Equal,
                            (None, Some(r)) => r.compare(None).reverse(),
                            (Some(l), r) => l.compare(r),
                        };
                        if result != Equal {
                            return result;
                        }
                    }
                    Equal
                }
                Some(_) => unreachable!("numeric handled above"),
            },
        }
    }
}

/// `ListItem.normalize()`: drops null items before a qualifier and at the end.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if !list[i].is_null() {
            continue;
        }
        let remove = if i + 1 == list.len() {
            true
        } else {
            match &list[i + 1] {
                Item::Str(_) => true,
                Item::List(next) => matches!(next.first(), Some(Item::Combination(..) | Item::Str(_))),
                _ => false,
            }
        };
        if remove {
            list.remove(i);
        }
    }
    if list.len() == 1 && matches!(list[0], Item::List(_)) {
        // Removing a zero prefix must not leave an extra nesting level.
        if let Some(Item::List(inner)) = list.pop() {
            *list = inner;
        }
    }
}

/// A parsed Maven version; `Ord` is `ComparableVersion.compareTo`.
#[derive(Debug, Clone)]
pub struct Version {
    items: Vec<Item>,
}

impl Version {
    pub fn parse(version: &str) -> Result<Version, VersionError> {
        Self::parse_inner(version).map_err(|why| VersionError::new(Scheme::Maven, version, why))
    }

    fn parse_inner(version: &str) -> Result<Version, &'static str> {
        if version.encode_utf16().count() > MAX_VERSION_LENGTH {
            return Err("longer than 256 characters");
        }
        let v = version.to_lowercase();
        let chars: Vec<(usize, char)> = v.char_indices().collect();
        // The innermost open list is last; a closed list becomes the last item of its parent.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut is_combination = false;
        let mut start = 0usize;
        let n = chars.len();
        let mut k = 0;
        while k < n {
            let (i, c) = chars[k];
            k += 1;
            let top = stack.last_mut().expect("root list");
            if c == '.' {
                if i == start {
                    top.push(Item::Int(0));
                } else {
                    top.push(parse_item(is_combination, is_digit, &v[start..i])?);
                }
                is_combination = false;
                start = i + 1;
            } else if c == '-' {
                if i == start {
                    top.push(Item::Int(0));
                } else {
                    // X-1 is treated as X1.
                    if !is_digit && k < n && is_java_digit(chars[k].1) {
                        is_combination = true;
                        continue;
                    }
                    top.push(parse_item(is_combination, is_digit, &v[start..i])?);
                }
                start = i + 1;
                if !top.is_empty() {
                    stack.push(Vec::new());
                }
                is_combination = false;
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    // X1
                    is_combination = true;
                    if !top.is_empty() {
                        stack.push(Vec::new());
                    }
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    top.push(parse_item(is_combination, true, &v[start..i])?);
                    start = i;
                    stack.push(Vec::new());
                    is_combination = false;
                }
                is_digit = false;
            }
        }
        if v.len() > start {
            // 1.0.0.X1 < 1.0.0-X2: treat .X as -X for any string qualifier X.
            if !is_digit && !stack.last().expect("root list").is_empty() {
                stack.push(Vec::new());
            }
            let item = parse_item(is_combination, is_digit, &v[start..])?;
            stack.last_mut().expect("root list").push(item);
        }
        while stack.len() > 1 {
            let mut inner = stack.pop().expect("checked");
            normalize(&mut inner);
            stack.last_mut().expect("checked").push(Item::List(inner));
        }
        let mut items = stack.pop().expect("root list");
        normalize(&mut items);
        Ok(Version { items })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        // The root lists compare as ListItem against ListItem.
        let n = self.items.len().max(other.items.len());
        for k in 0..n {
            let result = match (self.items.get(k), other.items.get(k)) {
                (None, None) => Ordering::Equal,
                (None, Some(r)) => r.compare(None).reverse(),
                (Some(l), r) => l.compare(r),
            };
            if result != Ordering::Equal {
                return result;
            }
        }
        Ordering::Equal
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}
