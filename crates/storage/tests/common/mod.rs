//! Fixtures shared by the store's integration tests.

use meridian_model::Item;
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use meridian_model::table::{
    Billing, IndexKind, IndexMeta, IndexProjection, IndexStatus, TableMeta, TableStatus,
};
use meridian_storage::{Change, ChangeKind, Store, StoreError};
use std::sync::Arc;

/// A table `name` with a string partition key `pk`, not yet created (the store assigns its id).
pub fn meta(name: &str) -> TableMeta {
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
        indexes: Vec::new(),
        version: None,
        replicas: None,
        created: None,
        extra: Default::default(),
    }
}

/// A global index `by_g` on the string attribute `g`, keys only, not yet created (the store
/// assigns its id).
#[allow(
    dead_code,
    reason = "each test binary compiles this module; not every one uses it"
)]
pub fn index_on_g(status: IndexStatus) -> IndexMeta {
    IndexMeta {
        name: "by_g".into(),
        kind: IndexKind::Global,
        id: 0,
        key_schema: KeySchema {
            hash: KeyAttr {
                name: "g".into(),
                ty: KeyType::S,
            },
            range: None,
        },
        projection: IndexProjection::KeysOnly,
        status,
        read_units: 0,
        write_units: 0,
    }
}

/// Puts `it`, durably committed.
pub async fn put(store: &Store, t: &Arc<TableMeta>, it: Item) {
    try_put(store, t, it).await.unwrap();
}

/// Puts `it`; the store's answer (an error when it refused or failed the write).
pub async fn try_put(store: &Store, t: &Arc<TableMeta>, it: Item) -> Result<(), StoreError> {
    let key = t.key_schema.encode(&it).unwrap();
    try_write_one(store, t, key, ChangeKind::Put(it)).await
}

/// One change to the item at storage key `key`, durably committed.
#[allow(
    dead_code,
    reason = "each test binary compiles this module; not every one uses it"
)]
pub async fn write_one(store: &Store, t: &Arc<TableMeta>, key: Vec<u8>, kind: ChangeKind) {
    try_write_one(store, t, key, kind).await.unwrap();
}

/// One change to the item at storage key `key`; the store's answer.
pub async fn try_write_one(
    store: &Store,
    t: &Arc<TableMeta>,
    key: Vec<u8>,
    kind: ChangeKind,
) -> Result<(), StoreError> {
    let t2 = t.clone();
    store
        .write(vec![(t.clone(), key.clone())], move |_| {
            (
                vec![Change {
                    table: t2,
                    key,
                    kind,
                }],
                (),
            )
        })
        .await
}
