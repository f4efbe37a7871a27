//! Opening files that are not (readable) kensa databases fails with a clear error.

use kensa_vulndb::{Error, VulnDb};

#[test]
fn bad_files_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.db");
    assert!(matches!(VulnDb::open(&missing), Err(Error::Missing(_))));

    let garbage = tmp.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = VulnDb::open(&garbage).err().expect("garbage refused").to_string();
    assert!(err.contains("garbage.db"), "{err}");
    assert!(VulnDb::create(&garbage).is_err());

    // Another application's SQLite file is neither read nor migrated.
    let other = tmp.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;").unwrap();
    assert!(matches!(VulnDb::open(&other), Err(Error::NotKensaDb)));
    assert!(matches!(VulnDb::create(&other), Err(Error::NotKensaDb)));

    // A database written by a newer kensa.
    let newer = tmp.path().join("newer.db");
    drop(VulnDb::create(&newer).unwrap());
    rusqlite::Connection::open(&newer).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
    assert!(matches!(VulnDb::open(&newer), Err(Error::SchemaTooNew { found: 99, .. })));

    // A fresh database opens read-only and is empty.
    let fresh = tmp.path().join("fresh.db");
    drop(VulnDb::create(&fresh).unwrap());
    let db = VulnDb::open(&fresh).unwrap();
    assert_eq!(db.counts().unwrap().vulnerabilities, 0);
    assert!(db.vulnerability("CVE-2021-44228").unwrap().is_none());
    assert!(db.affected("PyPI", "django").unwrap().is_empty());
}
