//! The Storage contract, checked on FsStorage.

use std::time::Duration;

use site_encrypt::storage::keys;
use site_encrypt::{FsStorage, Storage, StorageError};

#[test]
fn load_store_delete_list() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = FsStorage::new(dir.path().join("store"));
    assert!(
        matches!(s.load(keys::CERT), Err(StorageError::NotFound(_))),
        "missing key is a distinct error"
    );
    assert!(s.is_empty().expect("empty"));
    s.store(keys::CERT, b"one").expect("store");
    assert_eq!(s.load(keys::CERT).expect("load"), b"one");
    s.store(keys::CERT, b"two").expect("overwrite");
    assert_eq!(
        s.load(keys::CERT).expect("load"),
        b"two",
        "load sees the last store"
    );
    s.store(&keys::archived(5, "cert.pem"), b"old")
        .expect("store");
    s.store(keys::ACCOUNT, b"{}").expect("store");
    assert_eq!(
        s.list("").expect("list"),
        ["account.json", "archive/5/cert.pem", "current/cert.pem"]
    );
    assert_eq!(s.list(keys::ARCHIVE).expect("list"), ["archive/5/cert.pem"]);
    s.delete(keys::CERT).expect("delete");
    s.delete(keys::CERT)
        .expect("deleting a missing key is fine");
    assert!(matches!(s.load(keys::CERT), Err(StorageError::NotFound(_))));
    for bad in ["../escape", "/abs", "", "a/../../b"] {
        assert!(
            matches!(s.store(bad, b"x"), Err(StorageError::InvalidKey(_))),
            "{bad}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(m(&dir.path().join("store")), 0o700);
        assert_eq!(m(&dir.path().join("store/account.json")), 0o600);
    }
    s.wipe().expect("wipe");
    assert!(s.is_empty().expect("empty after wipe"));
}

#[test]
fn locks_are_exclusive_leases() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = FsStorage::new(dir.path());
    let held = s.lock("certify", Duration::from_secs(60)).expect("first");
    match s.lock("certify", Duration::from_secs(60)) {
        Err(StorageError::Locked { remaining, .. }) => assert!(remaining > Duration::from_secs(50)),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a held lock was granted twice"),
    }
    held.refresh().expect("refresh");
    assert!(s.list("").expect("list").is_empty(), "leases are not data");
    drop(held);
    let again = s
        .lock("certify", Duration::from_secs(60))
        .expect("released on drop");
    drop(again);
    // A holder that died leaves an expired lease, which is taken over.
    std::fs::write(dir.path().join("locks/certify"), "1").expect("stale lease");
    s.lock("certify", Duration::from_secs(60))
        .expect("expired lease taken over");
}

#[test]
fn backup_round_trip_refuses_escapes() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = FsStorage::new(dir.path().join("a"));
    s.store(keys::CERT, b"chain").expect("store");
    s.store(keys::KEY, b"key").expect("store");
    let _lock = s.lock("certify", Duration::from_secs(60)).expect("lock");
    let archive = dir.path().join("b.tgz");
    site_encrypt::write_backup(s.root(), &archive).expect("backup");
    let restored = dir.path().join("restored");
    assert_eq!(
        site_encrypt::restore_backup(&archive, &restored).expect("restore"),
        2,
        "locks are not backed up"
    );
    assert_eq!(
        std::fs::read(restored.join("current/key.pem")).expect("key"),
        b"key"
    );
    std::fs::write(dir.path().join("garbage.tgz"), b"not a gzip").expect("write");
    let err = site_encrypt::restore_backup(&dir.path().join("garbage.tgz"), &dir.path().join("r2"))
        .expect_err("garbage");
    assert!(err.to_string().contains("garbage.tgz"), "{err}");
}
