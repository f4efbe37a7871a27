//! Inventory: what is installed in a filesystem source.
//!
//! Catalogers read a [`kensa_fs::Root`] and produce [`Package`]s. OS catalogers read the package
//! manager's own database (no package manager binary runs); language catalogers do "deep inspection"
//! of Python, JavaScript, Java, Go and Rust packages. The result is an [`Inventory`]: the detected OS,
//! every package, and the warnings that say which parts could not be read.
//!
//! Each cataloger is a function `fn(&CatalogContext, &mut Inventory)`: it appends packages and
//! warnings and never fails as a whole.

pub mod lang;
pub mod model;
pub mod os;
pub mod os_release;
pub mod ownership;
pub mod purl;
pub mod scan;

pub use model::*;
pub use scan::{scan, ScanOptions};

/// What a cataloger gets: the filesystem to read and the OS detected on it (for purl `distro`
/// qualifiers and namespaces).
pub struct CatalogContext<'a> {
    pub root: &'a kensa_fs::Root,
    pub os: Option<&'a OsInfo>,
}
