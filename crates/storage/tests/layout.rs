//! The on-disk layout upgrade: a store written in layout 1 (`id:u64be ‖ key` in `items`,
//! `tombstones` and `index`) opens with everything where it was, including one whose upgrade was
//! cut off half-way; a layout newer than the build is refused.
#![allow(clippy::unwrap_used)]

use meridian_core::SystemClock;
use meridian_model::table::{IndexStatus, TableMeta};
use meridian_model::value::item_from_json;
use meridian_model::{AttributeValue, Item};
use meridian_storage::{ChangeKind, Store, StoreError, StoreOptions, StoredItem};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

mod common;
use common::{index_on_g, meta, put, write_one};

const KEYSPACES: [&str; 3] = ["items", "tombstones", "index"];

fn open(dir: &Path) -> Result<Store, StoreError> {
    Store::open(StoreOptions::new(dir, "r1", SystemClock::new()))
}

fn item(i: usize) -> Item {
    item_from_json(&serde_json::json!({
        "pk": {"S": format!("key-{i}")},
        "g": {"S": format!("g{}", i % 7)},
        "v": {"N": i.to_string()},
    }))
    .unwrap()
}

fn with_index(name: &str) -> TableMeta {
    let mut m = meta(name);
    m.indexes.push(index_on_g(IndexStatus::Active));
    m
}

/// Everything the store reads back of its tables: items in key order, tombstones, index entries
/// and stats.
#[derive(Debug, PartialEq)]
struct Contents {
    items: Vec<(Vec<u8>, StoredItem)>,
    tombstones: Vec<Vec<u8>>,
    index: Vec<Vec<u8>>,
    item_count: i64,
}

fn contents(store: &Store, names: &[&str]) -> Vec<Contents> {
    names
        .iter()
        .map(|name| {
            let t = store.table(name).unwrap();
            let idx = t.index("by_g").unwrap().id;
            Contents {
                items: store
                    .range(&t, Bound::Unbounded, Bound::Unbounded, false)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap(),
                tombstones: store
                    .tombstones(&t)
                    .unwrap()
                    .into_iter()
                    .map(|(k, _, _)| k)
                    .collect(),
                index: store
                    .index_range(idx, Bound::Unbounded, Bound::Unbounded, false)
                    .unwrap()
                    .map(|r| r.unwrap().0)
                    .collect(),
                item_count: store.stats(t.id).item_count,
            }
        })
        .collect()
}

/// Two tables with an index each: 2,500 items each (more than one upgrade chunk), every fifth
/// deleted again (tombstones).
async fn fill(dir: &Path) -> Vec<Contents> {
    let store = open(dir).unwrap();
    let mut tables: Vec<Arc<TableMeta>> = Vec::new();
    for name in ["a", "b"] {
        tables.push(store.create_table(with_index(name)).await.unwrap());
    }
    for t in &tables {
        for i in 0..2_500 {
            put(&store, t, item(i)).await;
        }
        for i in (0..2_500).step_by(5) {
            let key = t.key_schema.encode(&item(i)).unwrap();
            write_one(&store, t, key, ChangeKind::Delete).await;
        }
    }
    let c = contents(&store, &["a", "b"]);
    assert_eq!(c[0].items.len(), 2_000);
    assert_eq!(c[0].tombstones.len(), 500);
    assert_eq!(c[0].index.len(), 2_000);
    drop(store);
    c
}

/// Rewrites the store in layout 1, as builds before layout 2 wrote it: keys `id:u64be ‖ key` and
/// no layout mark. With `every` > 1 only every `every`-th key is rewritten, the state an upgrade
/// cut off half-way leaves.
fn downgrade(dir: &Path, every: usize) -> usize {
    let db = fjall::Database::builder(dir).open().unwrap();
    let mut rewritten = 0;
    for name in KEYSPACES {
        let ks = db.keyspace(name, Default::default).unwrap();
        let keys: Vec<(fjall::Slice, fjall::Slice)> =
            ks.iter().map(|g| g.into_inner().unwrap()).collect();
        for (n, (k, v)) in keys.into_iter().enumerate() {
            assert_ne!(k[0], 0, "{name}: a layout-1 key in a layout-2 store");
            if n % every != 0 {
                continue;
            }
            let (id, rest) = leb128(&k);
            let mut old = id.to_be_bytes().to_vec();
            old.extend_from_slice(rest);
            let mut b = db.batch();
            b.remove(&ks, k.clone());
            b.insert(&ks, old, v);
            b.commit().unwrap();
            rewritten += 1;
        }
    }
    let meta = db.keyspace("meta", Default::default).unwrap();
    assert!(
        meta.get("layout").unwrap().is_some(),
        "a new store is marked"
    );
    meta.remove("layout").unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
    rewritten
}

fn leb128(k: &[u8]) -> (u64, &[u8]) {
    let mut id = 0u64;
    for (i, b) in k.iter().enumerate() {
        id |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (id, &k[i + 1..]);
        }
    }
    panic!("unterminated table prefix");
}

/// After an upgrade: no key of any table keyspace starts with `00`, and the mark says layout 2.
fn assert_layout_2(dir: &Path) {
    let db = fjall::Database::builder(dir).open().unwrap();
    for name in KEYSPACES {
        let ks = db.keyspace(name, Default::default).unwrap();
        assert_eq!(ks.prefix([0u8]).count(), 0, "{name} kept layout-1 keys");
    }
    let meta = db.keyspace("meta", Default::default).unwrap();
    let mark = meta.get("layout").unwrap().expect("layout mark");
    assert_eq!(&mark[..], &[1, 0, 0, 0, 0, 0, 0, 0, 2][..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_1_store_opens_with_every_item_tombstone_and_index_entry_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path()).await;
    assert_eq!(downgrade(dir.path(), 1), 2 * (2_000 + 500 + 2_000));

    let store = open(dir.path()).unwrap();
    assert_eq!(contents(&store, &["a", "b"]), before);
    // and it takes writes in the new layout
    let t = store.table("a").unwrap();
    put(&store, &t, item(10_000)).await;
    let key = t.key_schema.encode(&item(10_000)).unwrap();
    let got = store.get(&t, &key).unwrap().unwrap();
    assert_eq!(got.item.get("v"), Some(&AttributeValue::N(10_000.into())));
    drop(store);
    assert_layout_2(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_cut_off_half_way_is_finished_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path()).await;
    // every third key still in layout 1, the rest already moved, no mark: what a crash between
    // two upgrade batches leaves
    let old = downgrade(dir.path(), 3);
    assert!(
        old > 2_000 && old < 2 * 4_500,
        "{old} keys left in layout 1"
    );

    let store = open(dir.path()).unwrap();
    assert_eq!(contents(&store, &["a", "b"]), before);
    drop(store);
    assert_layout_2(dir.path());
}

/// Writes the layout mark (a u64 record: format byte `01`, then the value big-endian).
fn set_layout_mark(dir: &Path, layout: u64) {
    let db = fjall::Database::builder(dir).open().unwrap();
    let meta = db.keyspace("meta", Default::default).unwrap();
    let mut v = vec![1u8];
    v.extend_from_slice(&layout.to_be_bytes());
    meta.insert("layout", v).unwrap();
    db.persist(fjall::PersistMode::SyncAll).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_newer_than_the_build_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let before = fill(dir.path()).await;
    set_layout_mark(dir.path(), 3);
    match open(dir.path()) {
        Err(StoreError::Layout(msg)) => assert!(msg.contains("layout 3"), "{msg}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a layout-3 store was opened"),
    }
    set_layout_mark(dir.path(), 2);
    let store = open(dir.path()).unwrap();
    assert_eq!(contents(&store, &["a", "b"]), before);
}
