//! PLACEHOLDER while the version crate is written (issue 2): the API the CLI uses.
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme { Rpm, Deb, Apk, Pypi, Npm, Maven, Go }

#[derive(Debug, thiserror::Error)]
#[error("invalid {scheme} version {version:?}: {reason}")]
pub struct VersionError { pub scheme: &'static str, pub version: String, pub reason: String }

pub fn compare(_scheme: Scheme, a: &str, _b: &str) -> Result<Ordering, VersionError> {
    Err(VersionError { scheme: "any", version: a.into(), reason: "not implemented yet".into() })
}
