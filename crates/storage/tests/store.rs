//! Contract tests of the store: atomic item + change-log commits, recovery, table lifecycle.
#![allow(clippy::unwrap_used)]

use meridian_core::SystemClock;
use meridian_model::table::TableMeta;
use meridian_model::value::item_from_json;
use meridian_model::{AttributeValue, Item};
use meridian_storage::{Change, ChangeKind, ChangeOp, Store, StoreOptions};
use std::ops::Bound;
use std::sync::Arc;

mod common;
use common::{index_on_g, meta, put, try_put, write_one};

fn item(pk: &str, v: i64) -> Item {
    item_from_json(&serde_json::json!({"pk": {"S": pk}, "v": {"N": v.to_string()}})).unwrap()
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreOptions::new(dir, "r1", SystemClock::new())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_get_gapless_changelog_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("t")).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (s, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                put(&s, &t, item(&format!("k{w}-{i}"), i)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.head(), 401); // CreateTable + 400 puts
    assert_eq!(store.stats(t.id).item_count, 400);
    store.shutdown();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.head(), 401);
    let t = store.table("t").unwrap();
    let log = store.changes(1, 1000).unwrap();
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=401).collect::<Vec<_>>());
    assert!(matches!(log[0].op, ChangeOp::TableUpsert(_)));
    assert_eq!(
        log.iter()
            .filter(|e| matches!(e.op, ChangeOp::Put(_)))
            .count(),
        400
    );
    assert!(
        log.iter()
            .all(|e| e.gtid.origin == "r1" && e.gtid.seq == e.seq)
    );
    let n = store
        .range(&t, Bound::Unbounded, Bound::Unbounded, false)
        .unwrap()
        .count();
    assert_eq!(n, 400);
    assert_eq!(store.stats(t.id).item_count, 400);
    // versions strictly increase along the log
    assert!(log.windows(2).all(|w| w[0].version < w[1].version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_modify_write_sees_earlier_writes_in_the_same_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("c")).await.unwrap();
    put(&store, &t, item("ctr", 0)).await;
    let key = t.key_schema.encode(&item("ctr", 0)).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (s, t, key) = (store.clone(), t.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let t2 = t.clone();
            s.write(vec![(t, key.clone())], move |cur| {
                let mut it = cur[0].as_ref().unwrap().item.clone();
                let AttributeValue::N(n) = it["v"].clone() else {
                    panic!()
                };
                it.insert("v".into(), AttributeValue::N(n.add(&1.into()).unwrap()));
                (
                    vec![Change {
                        table: t2,
                        key,
                        kind: ChangeKind::Put(it),
                    }],
                    (),
                )
            })
            .await
            .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let got = store.get(&t, &key).unwrap().unwrap();
    assert_eq!(got.item["v"], AttributeValue::N(200.into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_table_hides_and_purges_items_and_recreate_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("d")).await.unwrap();
    for i in 0..10 {
        put(&store, &t, item(&format!("k{i}"), i)).await;
    }
    assert!(store.create_table(meta("d")).await.is_err());
    store.delete_table("d").await.unwrap();
    assert!(store.table("d").is_none());
    let t2 = store.create_table(meta("d")).await.unwrap();
    assert_ne!(t.id, t2.id);
    assert_eq!(
        store
            .range(&t2, Bound::Unbounded, Bound::Unbounded, false)
            .unwrap()
            .count(),
        0
    );
    // a write racing with the delete, holding the old table, is refused
    assert!(try_put(&store, &t, item("late", 1)).await.is_err());
    // deleting logs a tombstone change
    let key = t2.key_schema.encode(&item("x", 1)).unwrap();
    put(&store, &t2, item("x", 1)).await;
    let t3 = t2.clone();
    let k2 = key.clone();
    store
        .write(vec![(t2.clone(), key.clone())], move |_| {
            (
                vec![Change {
                    table: t3,
                    key: k2,
                    kind: ChangeKind::Delete,
                }],
                (),
            )
        })
        .await
        .unwrap();
    let last = store.changes(store.head(), 1).unwrap();
    assert_eq!(last[0].op, ChangeOp::Delete);
    assert!(store.get(&t2, &key).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_poisons_the_store_and_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("f")).await.unwrap();
    put(&store, &t, item("before", 1)).await;
    store_faults(&store)
        .fail_next_sync
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        try_put(&store, &t, item("during", 1)).await.is_err(),
        "a write whose fsync failed must not be acknowledged"
    );
    assert!(store.is_poisoned());
    // everything after is refused, reads included
    assert!(
        store
            .get(&t, &t.key_schema.encode(&item("before", 1)).unwrap())
            .is_err()
    );
    assert!(store.create_table(meta("g")).await.is_err());
    store.shutdown();
    drop(store);
    // after a restart, what was acknowledged is there
    let store = open(dir.path());
    let t = store.table("f").unwrap();
    assert!(
        store
            .get(&t, &t.key_schema.encode(&item("before", 1)).unwrap())
            .unwrap()
            .is_some()
    );
}

/// A link checkpoint on its own is not fsynced (a lost one only makes the link resend what the
/// receiver drops as duplicates): the armed fsync fault is still there for the next write, the
/// first group that fsyncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_alone_is_not_fsynced_and_the_next_write_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("c")).await.unwrap();
    store_faults(&store)
        .fail_next_sync
        .store(true, std::sync::atomic::Ordering::SeqCst);
    store.set_checkpoint("me->peer", 5).await.unwrap();
    assert!(!store.is_poisoned(), "the checkpoint's group was fsynced");
    assert_eq!(store.checkpoint("me->peer").unwrap(), 5);
    assert!(
        try_put(&store, &t, item("after", 1)).await.is_err(),
        "the write after the checkpoint was not fsynced"
    );
    assert!(store.is_poisoned());
}

/// A change committed to the engine but not yet fsynced is visible to reads, but not to the
/// change log's readers (sync-outs, snapshots): after a crash its sequence would be reused for
/// another change, and a peer holding it would skip that one as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_log_readers_and_snapshots_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("d")).await.unwrap();
    put(&store, &t, item("a", 1)).await;
    let durable = store.head();
    store_faults(&store)
        .hold_next_sync_ms
        .store(1500, std::sync::atomic::Ordering::SeqCst);
    let (s2, t2) = (store.clone(), t.clone());
    let write = tokio::spawn(async move { put(&s2, &t2, item("b", 2)).await });
    // Wait (bounded) until the write is committed to the engine: reads see it.
    let key_b = t.key_schema.encode(&item("b", 2)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.get(&t, &key_b).unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the write never committed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!write.is_finished(), "acknowledged before its fsync");
    assert_eq!(store.head(), durable, "the head moved before the fsync");
    assert!(
        store.changes(durable + 1, 10).unwrap().is_empty(),
        "a log reader saw a change that is not durable"
    );
    // A snapshot taken now waits for the held commit to be durable before it is handed out.
    let s3 = store.clone();
    let snap = tokio::task::spawn_blocking(move || s3.snapshot().map(|s| s.head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap, durable + 1);
    assert!(
        store.head() >= snap,
        "the snapshot came before its head was durable"
    );
    write.await.unwrap();
    let log = store.changes(durable + 1, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].seq, durable + 1);
    assert!(
        store
            .wait_durable(durable + 1, std::time::Duration::from_secs(1))
            .unwrap()
    );
    assert!(
        !store
            .wait_durable(durable + 2, std::time::Duration::from_millis(50))
            .unwrap(),
        "nothing was written after: that sequence is not durable"
    );
}

fn store_faults(store: &Store) -> std::sync::Arc<meridian_storage::StoreFaults> {
    store.faults()
}

fn open_as(dir: &std::path::Path, region: &str) -> Store {
    Store::open(StoreOptions::new(dir, region, SystemClock::new())).unwrap()
}

/// A region that forwards nothing (a mesh, a star's spoke) applies received changes — items,
/// tables, tombstones, watermarks — without logging them: its log holds its own changes only,
/// at sequences equal to their origin sequences, and a received delete's tombstone is recorded
/// at sequence 0 (delivered: no link of this region ships it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_log_remote_applies_received_changes_without_logging_them() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_as(da.path(), "a");
    let mut opts = StoreOptions::new(db.path(), "b", SystemClock::new());
    opts.log_remote = false;
    let b = Store::open(opts).unwrap();
    let ta = a.create_table(meta("r")).await.unwrap();
    put(&a, &ta, item("k1", 1)).await;
    put(&a, &ta, item("k2", 2)).await;
    let k2 = ta.key_schema.encode(&item("k2", 0)).unwrap();
    write_one(&a, &ta, k2.clone(), ChangeKind::Delete).await;
    let from_a = a.changes(1, 100).unwrap();
    assert_eq!(from_a.len(), 4);

    let before = std::time::Instant::now();
    let r = b.apply_remote(from_a.clone()).await.unwrap();
    assert_eq!((r.applied, r.duplicates), (4, 0));
    // stamped by the writer once the batch was fsynced (the lag is measured to it)
    let durable = r
        .durable_at
        .expect("the writer stamps when the batch became durable");
    assert!(before <= durable && durable <= std::time::Instant::now());
    assert_eq!(b.apply_remote(from_a).await.unwrap().duplicates, 4);
    let tb = b.table("r").expect("table replicated to b");
    assert_eq!(b.stats(tb.id).item_count, 1);
    assert_eq!(b.watermark("a").unwrap(), 4);
    assert_eq!(b.head(), 0, "nothing received is logged");
    assert!(b.changes(1, 100).unwrap().is_empty());
    assert_eq!(b.tombstones(&tb).unwrap().len(), 1);

    // b's own write is its first log entry: local sequence = origin sequence
    put(&b, &tb, item("k3", 3)).await;
    let own = b.changes(1, 100).unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(
        (own[0].seq, own[0].gtid.origin.as_str(), own[0].gtid.seq),
        (1, "b", 1)
    );

    // the received tombstone needs no acknowledgement of b's log to be purged
    let (purged, _) = b
        .purge_tombstones(u64::MAX, 0, u64::MAX, None, 100)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(b.tombstones(&tb).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_changes_dedup_skip_own_and_resolve_by_lww() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_as(da.path(), "a");
    let b = open_as(db.path(), "b");
    let ta = a.create_table(meta("r")).await.unwrap();
    put(&a, &ta, item("k1", 1)).await;
    put(&a, &ta, item("k2", 2)).await;
    let from_a = a.changes(1, 100).unwrap();

    // first delivery applies (the replicated CreateTable creates the table in b); a duplicate
    // delivery (resend after a lost ack) is skipped
    let r1 = b.apply_remote(from_a.clone()).await.unwrap();
    assert_eq!((r1.applied, r1.duplicates), (3, 0));
    let tb = b.table("r").expect("table replicated to b");
    let r2 = b.apply_remote(from_a.clone()).await.unwrap();
    assert_eq!((r2.applied, r2.duplicates), (0, 3));
    assert_eq!(b.watermark("a").unwrap(), 3);
    assert_eq!(b.stats(tb.id).item_count, 2);
    // the replicated entries keep their GTIDs in b's log
    let log_b = b.changes(1, 100).unwrap();
    assert_eq!(
        log_b.iter().map(|e| e.gtid.clone()).collect::<Vec<_>>(),
        from_a.iter().map(|e| e.gtid.clone()).collect::<Vec<_>>()
    );

    // loop prevention: a's own changes coming back from b are ignored by a
    let back = a.apply_remote(log_b).await.unwrap();
    assert_eq!((back.own, back.applied), (3, 0));

    // a later write in b (after observing a's) wins in a, even if a's clock were ahead
    put(&b, &tb, item("k1", 100)).await;
    let newest_b = b.changes(b.head(), 1).unwrap();
    let r = a.apply_remote(newest_b).await.unwrap();
    assert_eq!(r.applied, 1);
    let k1 = ta.key_schema.encode(&item("k1", 0)).unwrap();
    assert_eq!(
        a.get(&ta, &k1).unwrap().unwrap().item["v"],
        AttributeValue::N(100.into())
    );

    // an older write arriving late loses and is counted as a conflict
    let stale = vec![meridian_storage::ChangeEntry {
        seq: 0,
        gtid: meridian_core::Gtid {
            origin: "c".into(),
            seq: 1,
        },
        table: "r".into(),
        key: k1.clone(),
        version: meridian_core::Version {
            ts: meridian_core::Timestamp(1),
            region: "c".into(),
        },
        op: ChangeOp::Put(item("k1", -1)),
        crdt: None,
    }];
    let r = a.apply_remote(stale).await.unwrap();
    assert_eq!((r.applied, r.stale), (0, 1));
    assert_eq!(r.conflicts.get("r"), Some(&1));

    // a replicated delete leaves a tombstone that beats older puts
    let k2 = ta.key_schema.encode(&item("k2", 0)).unwrap();
    write_one(&a, &ta, k2.clone(), ChangeKind::Delete).await;
    let del = a.changes(a.head(), 1).unwrap();
    assert_eq!(b.apply_remote(del).await.unwrap().applied, 1);
    let tk2 = tb.key_schema.encode(&item("k2", 0)).unwrap();
    assert!(b.get(&tb, &tk2).unwrap().is_none());
    let old_put = from_a.iter().find(|e| e.key == k2).unwrap().clone();
    let resurrect = meridian_storage::ChangeEntry {
        gtid: meridian_core::Gtid {
            origin: "c".into(),
            seq: 2,
        },
        ..old_put
    };
    assert_eq!(b.apply_remote(vec![resurrect]).await.unwrap().stale, 1);
    assert!(
        b.get(&tb, &tk2).unwrap().is_none(),
        "a tombstone must beat an older put"
    );
    assert_eq!(b.tombstones(&tb).unwrap().len(), 1);

    // watermarks and checkpoints survive a restart
    b.set_checkpoint("b->a", 7).await.unwrap();
    b.shutdown();
    drop(b);
    let b = open_as(db.path(), "b");
    assert_eq!(b.checkpoint("b->a").unwrap(), 7);
    assert_eq!(b.watermark("a").unwrap(), a.head());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_index_is_backfilled_while_writes_continue_and_dropped_index_is_purged() {
    use meridian_model::table::IndexStatus;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = store.create_table(meta("bf")).await.unwrap();
    let with_g = |pk: &str, g: i64| {
        let mut it = item(pk, g);
        it.insert("g".into(), AttributeValue::S(format!("g{}", g % 3)));
        it
    };
    for i in 0..1_234 {
        put(
            &store,
            &t,
            if i % 2 == 0 {
                with_g(&format!("k{i}"), i)
            } else {
                item(&format!("k{i}"), i)
            },
        )
        .await;
    }
    let idx = index_on_g(IndexStatus::Creating);
    let t = store
        .update_table("bf", Box::new(move |m: &mut TableMeta| m.indexes.push(idx)))
        .await
        .unwrap();
    let index_id = t.index("by_g").unwrap().id;
    assert_ne!(index_id, 0);
    // writes racing with the backfill keep the index exact
    let writer = {
        let (s, t) = (store.clone(), t.clone());
        tokio::spawn(async move {
            for i in 0..200 {
                put(&s, &t, with_g(&format!("new{i}"), i)).await;
            }
        })
    };
    store.backfill_index("bf", "by_g").await.unwrap();
    writer.await.unwrap();
    assert_eq!(
        store.table("bf").unwrap().index("by_g").unwrap().status,
        IndexStatus::Active
    );
    let n = store
        .index_range(index_id, Bound::Unbounded, Bound::Unbounded, false)
        .unwrap()
        .count();
    assert_eq!(n, 617 + 200);
    // dropping the index purges its entries
    store
        .update_table("bf", Box::new(|m: &mut TableMeta| m.indexes.clear()))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store
        .index_range(index_id, Bound::Unbounded, Bound::Unbounded, false)
        .unwrap()
        .count()
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "index entries not purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// An `ADD c :n` as the API performs it: read-modify-write with counter metadata.
async fn add(store: &Store, t: &Arc<TableMeta>, pk: &str, n: i64) {
    use meridian_model::crdt::{Effect, after_update};
    let key = t.key_schema.encode(&item(pk, 0)).unwrap();
    let (t2, k2, region, pk) = (
        t.clone(),
        key.clone(),
        store.region().to_owned(),
        pk.to_owned(),
    );
    store
        .write(vec![(t.clone(), key)], move |cur| {
            let old = cur[0].as_ref();
            let mut new = old.map(|s| s.item.clone()).unwrap_or_else(|| item(&pk, 0));
            let AttributeValue::N(v) = new["v"].clone() else {
                panic!()
            };
            new.insert("v".into(), AttributeValue::N(v.add(&n.into()).unwrap()));
            let effects = [Effect::Add("v".into(), n.into())];
            let crdt = after_update(
                old.map(|s| (&s.version, &s.item, s.crdt.as_ref())),
                &new,
                &effects,
                &region,
            );
            (
                vec![Change {
                    table: t2,
                    key: k2,
                    kind: ChangeKind::Update(new, crdt),
                }],
                (),
            )
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_counter_increments_from_every_region_all_count() {
    let seed: u64 = std::env::var("MERIDIAN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed={seed}");
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let names = ["a", "b", "c"];
    let stores: Vec<Store> = dirs
        .iter()
        .zip(names)
        .map(|(d, n)| open_as(d.path(), n))
        .collect();
    let mut tables = Vec::new();
    for s in &stores {
        tables.push(s.create_table(meta("ctr")).await.unwrap());
    }
    // the item exists everywhere (v = 0)
    put(&stores[0], &tables[0], item("hot", 0)).await;
    let first = stores[0].changes(1, 10).unwrap();
    for s in &stores[1..] {
        s.apply_remote(first.clone()).await.unwrap();
    }
    // concurrent increments in every region, none seeing the others
    let mut expected = 0i64;
    for (s, t) in stores.iter().zip(&tables) {
        for _ in 0..10 {
            let n = next(11) as i64 - 3;
            expected += n;
            add(s, t, "hot", n).await;
        }
    }
    // exchange every region's own changes: origins interleaved at random, each origin's
    // batches in order (as a link delivers them), with resends of earlier batches
    let own: Vec<Vec<_>> = stores
        .iter()
        .map(|s| {
            s.changes(1, 1000)
                .unwrap()
                .into_iter()
                .filter(|e| e.gtid.origin == s.region())
                .collect()
        })
        .collect();
    for (i, s) in stores.iter().enumerate() {
        let mut queues: Vec<std::collections::VecDeque<Vec<_>>> = (0..3)
            .filter(|j| *j != i)
            .map(|j| {
                let mut q = std::collections::VecDeque::new();
                for (k, c) in own[j].chunks(3).enumerate() {
                    q.push_back(c.to_vec());
                    if next(3) == 0 {
                        q.push_back(own[j].chunks(3).nth(k / 2).unwrap().to_vec()); // a resend
                    }
                }
                q
            })
            .collect();
        while queues.iter().any(|q| !q.is_empty()) {
            let pick = next(queues.len() as u64) as usize;
            if let Some(b) = queues[pick].pop_front() {
                s.apply_remote(b).await.unwrap();
            }
        }
    }
    let key = tables[0].key_schema.encode(&item("hot", 0)).unwrap();
    let values: Vec<_> = stores
        .iter()
        .zip(&tables)
        .map(|(s, t)| s.get(t, &key).unwrap().unwrap())
        .collect();
    for v in &values {
        assert_eq!(
            v.item["v"],
            AttributeValue::N(expected.into()),
            "seed={seed}"
        );
    }
    assert!(
        values.windows(2).all(|w| w[0] == w[1]),
        "seed={seed}: states differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_changes_replicate_with_last_writer_wins() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_as(da.path(), "a");
    let b = open_as(db.path(), "b");
    let ta = a.create_table(meta("ddl")).await.unwrap();
    put(&a, &ta, item("x", 1)).await;
    let old_create = a.changes(1, 10).unwrap();
    // a drops the table; b learns of the create and the drop in one batch, then of the create
    // again (a late resend from another path): the table stays dropped
    a.delete_table("ddl").await.unwrap();
    let all = a.changes(1, 10).unwrap();
    b.apply_remote(all).await.unwrap();
    assert!(b.table("ddl").is_none());
    let relay = old_create
        .into_iter()
        .map(|e| meridian_storage::ChangeEntry {
            gtid: meridian_core::Gtid {
                origin: "c".into(),
                seq: e.gtid.seq,
            },
            ..e
        })
        .collect();
    assert_eq!(b.apply_remote(relay).await.unwrap().applied, 0);
    assert!(b.table("ddl").is_none());
    // a later create in b reaches a; an index added in a reaches b and is backfilled there
    let tb = b.create_table(meta("ddl")).await.unwrap();
    put(&b, &tb, item("y", 2)).await;
    let from_b: Vec<_> = b
        .changes(1, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.gtid.origin == "b")
        .collect();
    a.apply_remote(from_b).await.unwrap();
    let ta = a.table("ddl").expect("re-created from b");
    assert_eq!(a.stats(ta.id).item_count, 1);
}

async fn delete(store: &Store, t: &Arc<TableMeta>, pk: &str) {
    let key = t.key_schema.encode(&item(pk, 0)).unwrap();
    write_one(store, t, key, ChangeKind::Delete).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_changelog_keeps_its_sequence_across_reopen_and_respects_upto_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(
        store.bootstrap_pending().unwrap(),
        "a new store waits for a snapshot"
    );
    let t = store.create_table(meta("t")).await.unwrap();
    for i in 0..20 {
        put(&store, &t, item(&format!("k{i}"), i)).await;
    }
    assert_eq!(store.head(), 21);
    // nothing is older than a commit time of 0
    assert_eq!(store.purge_changelog(21, 0, 100).await.unwrap(), 0);
    // only up to `upto`, and at most `limit` per call
    let far_future = store.wall_ms() + 3_600_000;
    assert_eq!(store.purge_changelog(10, far_future, 4).await.unwrap(), 4);
    assert_eq!(store.purged_through().unwrap(), 4);
    assert_eq!(store.purge_changelog(10, far_future, 100).await.unwrap(), 6);
    assert_eq!(store.purged_through().unwrap(), 10);
    assert_eq!(store.changes(1, 100).unwrap().first().unwrap().seq, 11);
    // everything: the head must not go back, now or after a restart
    assert_eq!(
        store
            .purge_changelog(u64::MAX, far_future, 100)
            .await
            .unwrap(),
        11
    );
    assert!(store.changes(1, 100).unwrap().is_empty());
    assert_eq!(store.head(), 21);
    store.shutdown();
    drop(store);
    let store = open(dir.path());
    assert!(
        store.bootstrap_pending().unwrap(),
        "no snapshot was installed"
    );
    assert_eq!(store.head(), 21);
    assert_eq!(store.purged_through().unwrap(), 21);
    assert_eq!(
        store.purged_own_through().unwrap(),
        21,
        "every entry was this region's own"
    );
    let t = store.table("t").unwrap();
    put(&store, &t, item("after", 1)).await;
    let log = store.changes(1, 100).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].seq, log[0].gtid.seq), (22, 22));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_installed_elsewhere_reproduces_tables_items_tombstones_and_watermarks() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = open_as(src_dir.path(), "src");
    let t = src.create_table(meta("t")).await.unwrap();
    for i in 0..50 {
        put(&src, &t, item(&format!("k{i}"), i)).await;
    }
    for i in 0..50 {
        if i % 5 == 0 {
            delete(&src, &t, &format!("k{i}")).await;
        }
    }
    // a change from a third region, so the snapshot has a watermark of it
    let mut remote = src.changes(2, 1).unwrap().remove(0);
    remote.gtid = meridian_core::Gtid {
        origin: "other".into(),
        seq: 7,
    };
    remote.version.region = "other".into();
    remote.version.ts = meridian_core::Timestamp(remote.version.ts.0 + (1 << 20));
    remote.key = t.key_schema.encode(&item("k1", 0)).unwrap();
    remote.op = ChangeOp::Put(item("k1", 1000));
    src.apply_remote(vec![remote]).await.unwrap();

    let snap = src.snapshot().unwrap();
    // writes after the snapshot are not in it
    put(&src, &t, item("late", 1)).await;
    let entries: Vec<_> = snap.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(snap.head, 62); // CreateTable + 50 puts + 10 deletes + 1 applied
    assert_eq!(snap.watermarks.get("src"), Some(&snap.head));
    assert_eq!(snap.watermarks.get("other"), Some(&7));
    assert!(matches!(entries[0].op, ChangeOp::TableUpsert(_)));
    assert_eq!(
        entries
            .iter()
            .filter(|e| matches!(e.op, ChangeOp::Put(_)))
            .count(),
        40
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| matches!(e.op, ChangeOp::Delete))
            .count(),
        10
    );
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    let watermarks = snap.watermarks.clone();
    drop(snap);

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = open_as(dst_dir.path(), "dst");
    assert!(dst.bootstrap_pending().unwrap());
    dst.repair(entries.clone()).await.unwrap();
    // installing twice changes nothing (states are joins)
    let again = dst.repair(entries).await.unwrap();
    assert_eq!(again.applied, 0);
    dst.finish_snapshot(watermarks).await.unwrap();
    assert!(!dst.bootstrap_pending().unwrap());
    assert_eq!(dst.watermark("src").unwrap(), 62);
    assert_eq!(dst.watermark("other").unwrap(), 7);
    let dt = dst.table("t").unwrap();
    let read = |s: &Store, t: &TableMeta| -> Vec<(Vec<u8>, meridian_storage::StoredItem)> {
        s.range(t, Bound::Unbounded, Bound::Unbounded, false)
            .unwrap()
            .map(Result::unwrap)
            .filter(|(k, _)| *k != t.key_schema.encode(&item("late", 0)).unwrap())
            .collect()
    };
    assert_eq!(read(&dst, &dt), read(&src, &src.table("t").unwrap()));
    assert_eq!(dst.tombstones(&dt).unwrap().len(), 10);
    assert_eq!(dst.stats(dt.id).item_count, 40);
    // a lower watermark from a later snapshot never lowers it; our own origin is never set
    let lower = [("src".to_owned(), 5), ("dst".to_owned(), 99)].into();
    dst.finish_snapshot(lower).await.unwrap();
    assert_eq!(dst.watermark("src").unwrap(), 62);
    assert_eq!(dst.watermark("dst").unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_reads_the_log_decoding_only_the_origins_it_ships() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = open_as(da.path(), "a");
    let b = open_as(db.path(), "b");
    let ta = a.create_table(meta("l")).await.unwrap();
    put(&a, &ta, item("k1", 1)).await;
    b.apply_remote(a.changes(1, 100).unwrap()).await.unwrap();
    let tb = b.table("l").unwrap();
    put(&b, &tb, item("k2", 2)).await;
    put(&b, &tb, item("k3", 3)).await;
    // b's log: a's two changes, then two of b's own
    let all = b.changes(1, 100).unwrap();
    let read = b.changes_for(1, 100, |origin| origin == "b").unwrap();
    assert_eq!(read.len(), all.len());
    for (r, e) in read.iter().zip(&all) {
        match r {
            meridian_storage::LogRead::Entry(got) => {
                assert_eq!(e.gtid.origin, "b");
                // the header read without decoding agrees with the decoded entry
                assert_eq!(
                    (got.seq(), got.origin(), got.commit_ms()),
                    (e.seq, "b", e.version.ts.physical_ms())
                );
                assert_eq!(&got.decode().unwrap(), e);
                // the record is the one the log stores, byte for byte
                assert_eq!(got.record(), meridian_storage::record::encode_change(e));
            }
            meridian_storage::LogRead::Skipped { seq, origin, bytes } => {
                assert_eq!((*seq, origin.as_str()), (e.seq, "a"));
                assert!(*bytes > 0);
            }
        }
    }
    let kinds: Vec<bool> = read
        .iter()
        .map(|r| matches!(r, meridian_storage::LogRead::Entry(_)))
        .collect();
    assert_eq!(kinds, [false, false, true, true]);
    // from the middle, with a limit
    let read = b.changes_for(2, 2, |_| true).unwrap();
    let seqs: Vec<u64> = read
        .into_iter()
        .filter_map(|r| r.into_entry())
        .map(|e| e.seq())
        .collect();
    assert_eq!(seqs, [2, 3]);
}

/// Changes as a peer receives them: encoded as a sync-out ships them, decoded as a sync-in
/// decodes them (a put in canonical form keeps its item encoded).
fn received(entries: &[meridian_storage::ChangeEntry]) -> Vec<meridian_storage::ChangeEntry> {
    use meridian_storage::record::{decode_received_change, encode_change};
    entries
        .iter()
        .map(|e| decode_received_change(e.seq, &encode_change(e)).unwrap())
        .collect()
}

/// Items, (item count, size) and index entries of a table.
type Contents = (
    Vec<(Vec<u8>, meridian_storage::StoredItem)>,
    (i64, i64),
    Vec<(Vec<u8>, Item)>,
);

/// Everything a store holds for `table`: items, stats and index entries.
fn contents(s: &Store, table: &str) -> Contents {
    let t = s.table(table).unwrap();
    let items = s
        .range(&t, Bound::Unbounded, Bound::Unbounded, false)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let st = s.stats(t.id);
    let index = t.indexes.first().map_or_else(Vec::new, |i| {
        s.index_range(i.id, Bound::Unbounded, Bound::Unbounded, false)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    (items, (st.item_count, st.size_bytes), index)
}

/// A put received in canonical form is written from its encoded item (`ChangeOp::PutEncoded`):
/// a region applying a peer's changes in that form ends exactly as one applying them decoded
/// — items, versions, counters, stats, index entries, its log — with overwrites within one
/// commit, an indexed table, a delete, and a plain put over an item with counters (a merge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_puts_applied_from_their_encoded_items_end_as_decoded_ones() {
    use meridian_model::table::IndexStatus;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = open_as(dirs[0].path(), "a");
    let c = open_as(dirs[1].path(), "c");
    let (decoded, encoded) = (open_as(dirs[2].path(), "b"), open_as(dirs[3].path(), "b"));
    let plain = a.create_table(meta("plain")).await.unwrap();
    let mut m = meta("indexed");
    m.indexes.push(index_on_g(IndexStatus::Active));
    let indexed = a.create_table(m).await.unwrap();
    let tables = a.changes(1, 10).unwrap();
    // counters on item "ctr", from region c, in both b stores; a then puts "ctr" plainly
    c.apply_remote(tables.clone()).await.unwrap();
    add(&c, &c.table("plain").unwrap(), "ctr", 5).await;
    let from_c = c.changes(1, 10).unwrap();
    for b in [&decoded, &encoded] {
        b.apply_remote(tables.clone()).await.unwrap();
        b.apply_remote(from_c.clone()).await.unwrap();
    }
    let with_g = |pk: &str, v: i64, g: i64| {
        let mut it = item(pk, v);
        it.insert("g".into(), AttributeValue::S(format!("g{g}")));
        it
    };
    for i in 0..30 {
        put(&a, &plain, item(&format!("k{i}"), i)).await;
        put(&a, &indexed, with_g(&format!("k{i}"), i, i % 4)).await;
    }
    for i in 0..10 {
        put(&a, &plain, item(&format!("k{i}"), 100 + i)).await;
        put(&a, &indexed, with_g(&format!("k{i}"), i, i % 3 + 10)).await;
    }
    for t in [&plain, &indexed] {
        let k3 = t.key_schema.encode(&item("k3", 0)).unwrap();
        write_one(&a, t, k3, ChangeKind::Delete).await;
    }
    put(&a, &plain, item("ctr", 1)).await;
    let from_a = a.changes(1, 1000).unwrap();
    let rx = received(&from_a);
    let puts = |v: &[meridian_storage::ChangeEntry], encoded: bool| {
        v.iter()
            .filter(|e| match &e.op {
                ChangeOp::Put(_) => !encoded,
                ChangeOp::PutEncoded(_) => encoded,
                _ => false,
            })
            .count()
    };
    assert_eq!(puts(&from_a, false), 81);
    assert_eq!(
        (puts(&rx, true), puts(&rx, false)),
        (81, 0),
        "every put stays encoded"
    );

    // one apply each: the overwrites decide against states written earlier in the same commit
    let r1 = decoded.apply_remote(from_a.clone()).await.unwrap();
    let r2 = encoded.apply_remote(rx).await.unwrap();
    assert_eq!((r1.applied, r1.stale), (r2.applied, r2.stale));
    assert_eq!(r2.applied, 83);
    for table in ["plain", "indexed"] {
        assert_eq!(
            contents(&encoded, table),
            contents(&decoded, table),
            "{table}"
        );
    }
    let (items, (count, _), index) = contents(&encoded, "indexed");
    assert_eq!((items.len(), count, index.len()), (29, 29, 29));
    assert_eq!(contents(&encoded, "indexed").0, contents(&a, "indexed").0);
    let ctr = plain.key_schema.encode(&item("ctr", 0)).unwrap();
    let merged = encoded.get(&plain, &ctr).unwrap().unwrap();
    assert!(
        merged.crdt.is_some(),
        "the put merged into the item's counters"
    );
    assert_eq!(
        encoded.changes(1, 1000).unwrap(),
        decoded.changes(1, 1000).unwrap()
    );
}

/// A batch holding a version more than the maximum clock offset ahead of the receiver's clock
/// is refused whole — by replication and by repair alike — without touching the store or its
/// clock; once the receiver's clock is within the offset the same batch applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_too_far_ahead_is_refused_whole_and_leaves_the_store_healthy() {
    use meridian_core::ManualClock;
    use meridian_storage::StoreError;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let t0 = 1_800_000_000_000;
    let a = Store::open(StoreOptions::new(
        da.path(),
        "a",
        ManualClock::new(t0 + 2_000),
    ))
    .unwrap();
    let clock_b = ManualClock::new(t0);
    let b = Store::open(StoreOptions::new(db.path(), "b", clock_b.clone())).unwrap();
    let ta = a.create_table(meta("r")).await.unwrap();
    put(&a, &ta, item("k1", 1)).await;
    let from_a = a.changes(1, 100).unwrap();

    for refused in [
        b.apply_remote(from_a.clone()).await,
        b.repair(from_a.clone()).await,
    ] {
        match refused {
            Err(StoreError::ClockAhead { origin, error }) => {
                assert_eq!(origin, "a");
                assert!(error.to_string().contains("2000 ms ahead"), "{error}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(!b.is_poisoned());
    assert!(b.table("r").is_none(), "nothing of the batch applied");
    assert_eq!(b.watermark("a").unwrap(), 0);
    // The refused versions did not drag b's clock forward.
    let tb = b.create_table(meta("local")).await.unwrap();
    let own = b.changes(1, 10).unwrap();
    assert_eq!(own[0].version.ts.physical_ms(), t0);
    put(&b, &tb, item("x", 1)).await;

    clock_b.set(t0 + 1_600);
    let r = b.apply_remote(from_a).await.unwrap();
    assert_eq!(r.applied, 2);
    assert_eq!(b.watermark("a").unwrap(), 2);
}
