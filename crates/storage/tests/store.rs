//! Contract tests of the store: atomic item + change-log commits, recovery, table lifecycle.
#![allow(clippy::unwrap_used)]

use meridian_core::SystemClock;
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use meridian_model::table::{Billing, TableMeta, TableStatus};
use meridian_model::value::item_from_json;
use meridian_model::{AttributeValue, Item};
use meridian_storage::{Change, ChangeKind, ChangeOp, Store, StoreOptions};
use std::ops::Bound;
use std::sync::Arc;

fn meta(name: &str) -> TableMeta {
    TableMeta {
        name: name.into(),
        id: 0,
        key_schema: KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: KeyType::S,
            },
            range: None,
        },
        attribute_definitions: vec![("pk".into(), KeyType::S)],
        created_at: 0.0,
        status: TableStatus::Active,
        billing: Billing {
            mode: "PAY_PER_REQUEST".into(),
            read_units: 0,
            write_units: 0,
        },
        table_uuid: "x".into(),
        extra: Default::default(),
    }
}

fn item(pk: &str, v: i64) -> Item {
    item_from_json(&serde_json::json!({"pk": {"S": pk}, "v": {"N": v.to_string()}})).unwrap()
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreOptions::new(dir, "r1", SystemClock::new())).unwrap()
}

async fn put(store: &Store, t: &Arc<TableMeta>, it: Item) {
    let key = t.key_schema.encode(&it).unwrap();
    let t2 = t.clone();
    store
        .write(vec![(t.clone(), key.clone())], move |_| {
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
    assert_eq!(store.head(), 400);
    assert_eq!(store.stats(t.id).item_count, 400);
    store.shutdown();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.head(), 400);
    let t = store.table("t").unwrap();
    let log = store.changes(1, 1000).unwrap();
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
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
    let key = t.key_schema.encode(&item("late", 1)).unwrap();
    let t_old = t.clone();
    let r = store
        .write(vec![(t.clone(), key.clone())], move |_| {
            (
                vec![Change {
                    table: t_old,
                    key,
                    kind: ChangeKind::Put(item("late", 1)),
                }],
                (),
            )
        })
        .await;
    assert!(r.is_err());
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
    let key = t.key_schema.encode(&item("during", 1)).unwrap();
    let t2 = t.clone();
    let r = store
        .write(vec![(t.clone(), key.clone())], move |_| {
            (
                vec![Change {
                    table: t2,
                    key,
                    kind: ChangeKind::Put(item("during", 1)),
                }],
                (),
            )
        })
        .await;
    assert!(
        r.is_err(),
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

fn store_faults(store: &Store) -> std::sync::Arc<meridian_storage::StoreFaults> {
    store.faults()
}
