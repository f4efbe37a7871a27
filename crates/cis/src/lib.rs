//! CIS benchmark scans: an XCCDF 1.2 + OVAL 5.11 engine for SCAP source datastreams (SCAP
//! Security Guide content) that reads its target through [`kensa_fs::Root`] — a root filesystem
//! directory, the live host or a disk image — without executing anything from it.
//!
//! ```no_run
//! # fn main() -> Result<(), kensa_cis::Error> {
//! let ds = kensa_cis::DataStream::load("ssg-rhel9-ds.xml".as_ref())?;
//! let root = kensa_fs::Root::dir("/srv/rootfs").unwrap();
//! let report = kensa_cis::scan(&ds, &kensa_cis::ScanOptions { profile: "cis_server_l1".into(), ..Default::default() }, root, false)?;
//! println!("{}", report.score);
//! # Ok(()) }
//! ```

pub mod datetime;
pub mod engine;
pub mod oval;
pub mod probes;
pub mod report;
pub mod value;
pub mod xccdf;
pub mod xml;

pub use engine::{list_profiles, scan, BenchmarkInfo, CheckReport, ProfileInfo, Report, RuleReport, ScanOptions, Score};
pub use xccdf::DataStream;

/// Errors that stop a scan as a whole (bad content, unknown profile). Problems inside one rule
/// become that rule's `error`/`unknown` result instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid SCAP content: {0}")]
    Content(String),
    #[error("{0}")]
    Usage(String),
}
