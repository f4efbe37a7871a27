//! OS package catalogers: each reads one package manager's database from the target's files.

pub mod apk;
pub mod dpkg;
pub mod rpm;
