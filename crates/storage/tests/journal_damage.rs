//! A journal damaged before its tail: the store refuses to open, says where, and with
//! `recover` opens on what survived, takes no local write until it is told how far its peers
//! hold its changes, and then continues its sequences after theirs.
#![allow(clippy::unwrap_used)]

use meridian_core::SystemClock;
use meridian_model::Item;
use meridian_model::value::item_from_json;
use meridian_storage::{LogRead, Store, StoreError, StoreOptions};
use std::path::{Path, PathBuf};

mod common;
use common::{meta, put, try_put};

fn item(pk: &str) -> Item {
    item_from_json(&serde_json::json!({"pk": {"S": pk}, "v": {"S": "x".repeat(100)}})).unwrap()
}

fn options(dir: &Path, recover: bool) -> StoreOptions {
    let mut o = StoreOptions::new(dir, "r1", SystemClock::new());
    o.recover = recover;
    o
}

/// The journal holding the writes, and where its data ends.
fn journal(dir: &Path) -> (PathBuf, usize) {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    found.sort();
    let path = found.pop().expect("a journal");
    let bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    (path, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_before_the_tail_refuses_to_open_and_recovery_skips_what_peers_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(options(dir.path(), false)).unwrap();
    let t = store.create_table(meta("t")).await.unwrap();
    for i in 0..60 {
        put(&store, &t, item(&format!("k{i}"))).await;
    }
    assert_eq!(store.head(), 61);
    // Stopped like a crash: the journal keeps every write (no memtable was flushed).
    drop(store);

    let (path, end) = journal(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = end / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let err = Store::open(options(dir.path(), false)).unwrap_err();
    let msg = err.to_string();
    let StoreError::JournalDamaged(d) = err else {
        panic!("expected JournalDamaged, got {msg}");
    };
    assert_eq!(d.file, path);
    assert!(d.offset <= at as u64, "{msg}");
    assert!(d.batches_after > 10, "{msg}");
    assert!(msg.contains("--recover"), "{msg}");
    // refusing touched nothing: the same damage is found again
    assert_eq!(std::fs::read(&path).unwrap()[..end], bytes[..end]);
    let report = meridian_storage::verify(dir.path()).unwrap();
    assert!(!report.ok());
    assert_eq!(report.journal.as_ref().map(|j| j.offset), Some(d.offset));

    let store = Store::open(options(dir.path(), true)).unwrap();
    let survived = store.head();
    assert!(survived < 50, "head {survived}");
    let r = store.recovery().expect("recovering");
    assert_eq!(r.from, survived);
    assert_eq!(r.lost_through, Some(61));
    let t = store.table("t").unwrap();
    assert!(matches!(
        try_put(&store, &t, item("during")).await,
        Err(StoreError::Recovering)
    ));
    // still recovering after a restart, though the journal is sound now
    store.shutdown();
    drop(store);
    let store = Store::open(options(dir.path(), false)).unwrap();
    assert_eq!(store.recovery().map(|r| r.from), Some(survived));

    // the peers hold our changes up to 55: sequences go on from 56
    assert_eq!(store.finish_recovery(55).await.unwrap(), (survived, 55));
    assert!(store.recovery().is_none());
    let t = store.table("t").unwrap();
    put(&store, &t, item("after")).await;
    assert_eq!(store.head(), 56);
    let read = store.changes_for(survived - 1, 1000, |_| true).unwrap();
    let seqs: Vec<u64> = read.iter().map(LogRead::seq).collect();
    assert_eq!(seqs, (survived - 1..=56).collect::<Vec<_>>());
    assert!(matches!(read[..2], [LogRead::Entry(_), LogRead::Entry(_)]));
    assert!(
        read[2..read.len() - 1]
            .iter()
            .all(|r| matches!(r, LogRead::Skipped { .. }))
    );
    assert!(matches!(read.last(), Some(LogRead::Entry(_))));
    // a read limited inside the gap stops there, and the next one goes on after it
    let part = store.changes_for(survived + 1, 3, |_| true).unwrap();
    assert_eq!(
        part.iter().map(LogRead::seq).collect::<Vec<_>>(),
        vec![survived + 1, survived + 2, survived + 3]
    );

    // the gap and the head survive a restart
    store.shutdown();
    drop(store);
    let store = Store::open(options(dir.path(), false)).unwrap();
    assert_eq!(store.head(), 56);
    assert!(store.recovery().is_none());
    assert_eq!(
        store
            .changes_for(survived + 1, 1000, |_| true)
            .unwrap()
            .len(),
        56 - survived as usize
    );
    store.shutdown();
    drop(store);
    assert!(meridian_storage::verify(dir.path()).unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(options(dir.path(), false)).unwrap();
    let t = store.create_table(meta("t")).await.unwrap();
    for i in 0..20 {
        put(&store, &t, item(&format!("k{i}"))).await;
    }
    // values the journal compresses are read back and checksummed as written
    let big = serde_json::json!({"pk": {"S": "big"}, "v": {"S": "abc".repeat(7_000)}});
    put(&store, &t, item_from_json(&big).unwrap()).await;
    put(&store, &t, item("k20")).await;
    drop(store);
    assert_eq!(meridian_storage::journal::check(dir.path()).unwrap(), None);
    // the last batch cut short, as a crash during its write leaves it
    let (path, end) = journal(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(end as u64 - 30).unwrap();
    let store = Store::open(options(dir.path(), false)).unwrap();
    assert_eq!(store.head(), 22);
    assert!(store.recovery().is_none());
}
