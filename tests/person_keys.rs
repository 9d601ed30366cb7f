//! Crypto-shredding (`kho::record::vault`, docs/privacy.md "Provable erasure"): payloads
//! sealed under per-person keys held in a separate vault; erasure destroys the key first,
//! so copies made before it — a checkpoint here — hold only ciphertext nobody can open;
//! the key leaves the vault's files; a crash at any point leaves the person whole with
//! their key, or their key gone and nothing of theirs readable.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{fault_fs, small_options};
use kho::record::{Error, NationalId, PersonKeys, Store, StoreOptions};
use kho::vfs::{CrashMode, SharedFs};
use kho::{Db, Options};

fn plain_options() -> Options {
    Options { compression_level: 0, write_buffer_size: 64 << 10, block_size: 1024, ..Options::default() }
}

fn open_vault(dir: &Path) -> PersonKeys {
    PersonKeys::open(Db::open(dir, plain_options()).unwrap()).unwrap()
}

fn open(dir: &Path, vault: &PersonKeys) -> kho::record::Result<Store> {
    Store::open(
        Db::open(dir, plain_options())?,
        StoreOptions { person_keys: Some(vault.clone()), ..StoreOptions::default() },
    )
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() && std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
            hits.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    hits
}

fn id(s: &str) -> NationalId {
    NationalId::parse(s).unwrap()
}

#[test]
fn payloads_are_sealed_and_erasure_makes_every_earlier_copy_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, vdir, snap) = (tmp.path().join("db"), tmp.path().join("vault"), tmp.path().join("snap"));
    let vault = open_vault(&vdir);
    let store = open(&dir, &vault).unwrap();
    let (a, b) = (id("079190001234"), id("001185000042"));
    for (who, tag) in [(&a, "ALPHA"), (&b, "BRAVO")] {
        store.insert("tax", format!("T-{tag}"), who, &format!("{tag}-income-secret")).unwrap();
        store.insert("health", format!("H-{tag}"), who, &format!("{tag}-diagnosis-secret")).unwrap();
    }
    store.db().flush().unwrap();
    // Readable through the store; sealed on disk (no payload byte in any file).
    let recs = store.person(&a).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].decode::<String>().unwrap(), "ALPHA-income-secret");
    assert!(files_containing(&dir, b"ALPHA-income-secret").is_empty());
    assert_eq!(store.scan("tax").unwrap().count(), 2);
    // A copy made before the erasure.
    store.checkpoint(&snap).unwrap();
    let key_entry = [&b"K"[..], a.as_bytes()].concat();
    let key_bytes = vault.db().get(&key_entry).unwrap().unwrap()[8..].to_vec();
    vault.db().flush().unwrap();
    assert!(!files_containing(&vdir, &key_bytes).is_empty(), "the key is in the vault's files");

    let erasure = store.erase_person(&a).unwrap();
    assert_eq!(erasure.records, 2);
    let receipt = &erasure.receipt;
    assert!(receipt.destroyed_key.is_some() && !receipt.tables_until_purge.is_empty(), "{receipt:?}");
    assert_eq!(vault.destroyed_key_ids(&a).unwrap(), vec![receipt.destroyed_key.unwrap()]);
    assert!(!vault.has_key(&a).unwrap());
    // The key is gone from the vault's files and memory.
    assert!(files_containing(&vdir, &key_bytes).is_empty(), "the destroyed key is still in a vault file");
    assert_eq!(vault.db().cached_blocks_containing(&key_bytes), 0);
    assert!(store.person(&a).unwrap().is_empty());

    // The checkpoint still holds A's records, as ciphertext: opened with the live vault, they
    // read as erased; B is intact.
    let old = open(&snap, &vault).unwrap();
    assert!(old.db().get([&b"R"[..], &1u32.to_be_bytes(), b"T-ALPHA"].concat()).unwrap().is_some());
    assert!(old.person(&a).unwrap().is_empty());
    assert!(old.get_raw("tax", "T-ALPHA").unwrap().is_none());
    assert_eq!(old.person(&b).unwrap().len(), 2);
    assert_eq!(old.scan("tax").unwrap().count(), 1);
    drop(old);

    // A new record for the same ID gets a new key; the old ciphertext stays unreadable.
    store.insert("tax", "T-NEW", &a, "new life").unwrap();
    assert_eq!(store.person(&a).unwrap().len(), 1);
    store.purge_erased(&erasure).unwrap();
    assert_eq!(store.person(&b).unwrap().len(), 2);
    assert!(store.verify_index().unwrap().is_clean());
}

#[test]
fn the_vault_must_be_the_stores_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let vault = open_vault(&tmp.path().join("vault"));
    open(&dir, &vault).unwrap().close().unwrap();
    let other = open_vault(&tmp.path().join("other"));
    assert!(matches!(open(&dir, &other), Err(Error::WrongVault)));
    let without = Store::open(Db::open(&dir, plain_options()).unwrap(), StoreOptions::default());
    assert!(matches!(without, Err(Error::PersonKeysNeeded)));
    // A reader without the vault sees the index but no sealed payload.
    {
        let store = open(&dir, &vault).unwrap();
        store.insert("tax", "1", &id("079190001234"), "sealed").unwrap();
        store.close().unwrap();
    }
    let ro =
        Store::open_read_only(Db::open_read_only(&dir, plain_options()).unwrap(), StoreOptions::default()).unwrap();
    assert!(matches!(ro.person(&id("079190001234")), Err(Error::PersonKeysNeeded)));
    assert!(ro.verify_index().unwrap().is_clean());
    drop(ro);
}

fn open_fs(shared: &SharedFs) -> kho::record::Result<(Store, PersonKeys)> {
    let vault = PersonKeys::open(Db::open("/vault", small_options(shared.clone()))?)?;
    let store = Store::open(
        Db::open("/db", small_options(shared.clone()))?,
        StoreOptions { person_keys: Some(vault.clone()), ..StoreOptions::default() },
    )?;
    Ok((store, vault))
}

#[test]
fn erasure_at_every_crash_point_leaves_the_person_whole_or_unreadable() {
    let (a, b) = (id("079190001234"), id("001185000042"));
    let mut point = 0u64;
    loop {
        let (fs, shared) = fault_fs();
        {
            let (store, _) = open_fs(&shared).unwrap();
            for i in 0..3 {
                let mut batch = store.batch();
                batch.insert("tax", format!("a{i}"), &a, &format!("a-{i}")).unwrap();
                batch.insert("tax", format!("b{i}"), &b, &format!("b-{i}")).unwrap();
                batch.sync(true);
                batch.commit().unwrap();
            }
            store.db().flush().unwrap();
            store.close().unwrap();
        }
        fs.arm_crash_after(point);
        if let Ok((store, _)) = open_fs(&shared) {
            if let Ok(e) = store.erase_person(&a) {
                let _ = store.purge_erased(&e);
            }
        }
        let finished = !fs.crash_point_hit();
        fs.crash(if point.is_multiple_of(2) {
            CrashMode::DropUnsynced
        } else {
            CrashMode::TearUnsynced { seed: point }
        });

        let (store, vault) = open_fs(&shared).unwrap_or_else(|e| panic!("crash point {point}: reopen: {e}"));
        let seen = store.person(&a).unwrap_or_else(|e| panic!("crash point {point}: {e}"));
        if vault.has_key(&a).unwrap() {
            assert_eq!(seen.len(), 3, "crash point {point}: key present, person must be whole");
        } else {
            assert!(seen.is_empty(), "crash point {point}: key gone, yet {} records readable", seen.len());
        }
        assert_eq!(store.person(&b).unwrap().len(), 3, "crash point {point}: the neighbour");
        // Erasing again finishes the job.
        let e = store.erase_person(&a).unwrap();
        store.purge_erased(&e).unwrap();
        assert!(store.person(&a).unwrap().is_empty() && !vault.has_key(&a).unwrap());
        assert!(store.verify_index().unwrap().is_clean(), "crash point {point}");
        drop(store);
        if finished {
            assert!(point > 20, "the erasure should have many crash points, saw {point}");
            return;
        }
        point += 1;
    }
}

#[test]
fn the_change_feed_carries_sealed_payloads_and_delivers_them_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, vdir) = (tmp.path().join("db"), tmp.path().join("vault"));
    let vault = open_vault(&vdir);
    let opts = StoreOptions {
        person_keys: Some(vault.clone()),
        feed: kho::record::FeedOptions { enable: true, ..Default::default() },
        ..StoreOptions::default()
    };
    let store = Store::open(Db::open(&dir, plain_options()).unwrap(), opts).unwrap();
    store.subscribe("agency", kho::record::SubscriptionFilter::all()).unwrap();
    let (a, b) = (id("079190001234"), id("001185000042"));
    store.insert("tax", "T-A", &a, "ALPHA-feed-secret").unwrap();
    store.insert("tax", "T-B", &b, "BRAVO-feed-secret").unwrap();
    store.db().flush().unwrap();
    assert!(files_containing(&dir, b"ALPHA-feed-secret").is_empty(), "the changelog is sealed too");
    let mut cursor = store.changes("agency").unwrap();
    let got: Vec<_> = cursor.by_ref().map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].decode::<String>().unwrap().unwrap(), "ALPHA-feed-secret");
    drop(cursor);
    // After an erasure the subscriber sees the erase change; the earlier insert is gone.
    store.erase_person(&a).unwrap();
    let mut cursor = store.changes("agency").unwrap();
    let kinds: Vec<_> = cursor.by_ref().map(|c| c.unwrap()).map(|c| (c.kind, c.id)).collect();
    assert_eq!(kinds, [(kho::record::ChangeKind::Insert, b), (kho::record::ChangeKind::Erase, a)]);
}
