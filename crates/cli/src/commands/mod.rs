//! Subcommands. Exit codes are shared by all of them and documented in the README.

pub mod agent;
pub mod cis;
pub mod db;
pub mod sbom;
pub mod scan;
pub mod server;
pub mod version;

/// Success (and, for `scan`, no finding that trips `--exit-code`).
#[allow(dead_code)]
pub const EXIT_OK: u8 = 0;
/// Invalid input: bad arguments, an invalid version, an unreadable target.
pub const EXIT_ERROR: u8 = 2;
/// The command completed but some part of the target could not be read (results are partial).
#[allow(dead_code)]
pub const EXIT_PARTIAL: u8 = 3;
