//! Inventory: what is installed in a filesystem source.
//!
//! Catalogers read a [`kensa_fs::Root`] and produce [`Package`]s. OS catalogers read the package
//! manager's own database (no package manager binary runs); language catalogers do "deep inspection"
//! of Python, JavaScript, Java, Go and Rust packages. The result is an [`Inventory`]: the detected OS,
//! every package, and the warnings that say which parts could not be read.

pub mod model;

pub use model::*;
