//! A region's sync-in against a hand-driven peer over a real loopback socket: a peer that holds
//! the link's credential but forges another region's origin, sends a version from the future,
//! or sends an entry that can never apply. The receiver refuses the first two whole (alarm
//! naming the peer, nothing applied), quarantines the third and goes on with the stream.
#![allow(clippy::unwrap_used)]

use futures_util::{SinkExt, StreamExt};
use meridian_core::{Gtid, SystemClock, Timestamp, Version};
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use meridian_model::table::TableMeta;
use meridian_model::table::{Billing, TableStatus};
use meridian_model::value::item_from_json;
use meridian_replication::protocol::auth::{Side, Transcript, proof};
use meridian_replication::protocol::batch::{BatchHeader, build_records};
use meridian_replication::protocol::{Auth, ErrorCode, Frame, Hello, Start, decode, encode};
use meridian_replication::{PeerConfig, ReplicationConfig};
use meridian_storage::record::encode_change;
use meridian_storage::{ChangeEntry, ChangeOp, Store, StoreOptions};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

const SECRET: &str = "hostile-peer-test-secret";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A table `name` with a string partition key `pk`.
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
        indexes: Vec::new(),
        version: None,
        replicas: None,
        created: None,
        extra: Default::default(),
    }
}

fn put(seq: u64, origin: &str, origin_seq: u64, pk: &str, ts_ms: u64) -> ChangeEntry {
    let item = item_from_json(&serde_json::json!({"pk": {"S": pk}, "v": {"S": "x"}})).unwrap();
    let meta = meta("tbl");
    ChangeEntry {
        seq,
        gtid: Gtid {
            origin: origin.into(),
            seq: origin_seq,
        },
        table: "tbl".into(),
        key: meta.key_schema.encode(&item).unwrap(),
        version: Version {
            ts: Timestamp::new(ts_ms, 0),
            region: origin.into(),
        },
        op: ChangeOp::Put(item),
        crdt: None,
    }
}

struct Peer {
    io: Framed<TcpStream, LengthDelimitedCodec>,
}

impl Peer {
    /// Connects as region `from` (a configured peer of "b") and completes the handshake.
    async fn connect(addr: std::net::SocketAddr, from: &str) -> Peer {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(16 << 20)
            .new_codec();
        let mut p = Peer {
            io: Framed::new(tcp, codec),
        };
        let nonce: [u8; 32] = rand::random();
        p.send(&Frame::Hello(Hello {
            from: from.into(),
            to: "b".into(),
            nonce,
        }))
        .await;
        let Frame::Challenge(c) = p.recv().await else {
            panic!("expected a challenge")
        };
        let t = Transcript {
            from,
            to: "b",
            client_nonce: &nonce,
            server_nonce: &c.nonce,
        };
        p.send(&Frame::Auth(Auth {
            proof: proof(SECRET.as_bytes(), Side::Client, &t),
            resume_from: 1,
        }))
        .await;
        let Frame::Welcome(w) = p.recv().await else {
            panic!("expected a welcome")
        };
        assert_eq!(w.start, Start::After(0));
        p
    }

    async fn send(&mut self, f: &Frame) {
        let bytes = bytes::Bytes::from(encode(f).unwrap());
        self.io.send(bytes).await.unwrap();
    }

    /// The next frame that answers something (heartbeats and window credits come any time).
    async fn recv(&mut self) -> Frame {
        loop {
            let bytes = tokio::time::timeout(Duration::from_secs(10), self.io.next())
                .await
                .expect("an answer in time")
                .expect("the connection is open")
                .unwrap();
            match decode(&bytes).unwrap() {
                Frame::Heartbeat(_) | Frame::Credit(_) => continue,
                frame => return frame,
            }
        }
    }

    /// Sends the records as one batch covering `first..=last`; returns the answer.
    async fn batch(&mut self, first: u64, last: u64, records: &[(u64, Vec<u8>)]) -> Frame {
        let header = BatchHeader {
            first,
            last,
            attempt: 1,
            head: last,
            hlc_now: Timestamp::new(now_ms(), 0).0,
        };
        let b = build_records(header, records.iter().map(|(s, r)| (*s, r.as_slice()))).unwrap();
        self.send(&Frame::Batch(b)).await;
        self.recv().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_origins_future_versions_and_poison_entries_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(
        dir.path().join("store"),
        "b",
        SystemClock::new(),
    ))
    .unwrap();
    // Not a new region: no snapshot first.
    store.finish_snapshot(BTreeMap::new()).await.unwrap();
    store.create_table(meta("tbl")).await.unwrap();
    let peer = |name: &str| PeerConfig {
        name: name.into(),
        endpoint: "127.0.0.1:9".into(),
        secret: SECRET.into(),
    };
    let mut config = ReplicationConfig::new(
        "b",
        "127.0.0.1:0".parse().unwrap(),
        vec![peer("a"), peer("c")],
    );
    let quarantine = dir.path().join("quarantine");
    config.quarantine_dir = Some(quarantine.clone());
    let handle = meridian_replication::start(config, store.clone(), std::future::pending())
        .await
        .unwrap();
    let links = handle.links();
    let addr = handle.local_addr();
    let refused = |peer: &str| {
        links.peers[peer]
            .refused
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default()
    };
    let t = store.table("tbl").unwrap();
    let has = |pk: &str| {
        let item = item_from_json(&serde_json::json!({"pk": {"S": pk}})).unwrap();
        store
            .get(&t, &t.key_schema.encode(&item).unwrap())
            .unwrap()
            .is_some()
    };

    // 1. "a" sends a change that originated at "c": refused whole, alarm names "a".
    let mut a = Peer::connect(addr, "a").await;
    let forged = put(1, "c", 1, "forged", now_ms());
    match a.batch(1, 1, &[(1, encode_change(&forged))]).await {
        Frame::Error(e) => assert_eq!(e.code, ErrorCode::Invalid, "{}", e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(refused("a").starts_with("invalid:"), "{}", refused("a"));
    assert!(!has("forged"));
    assert_eq!(store.watermark("c").unwrap(), 0, "c is not silenced");

    // 2. a version an hour ahead: refused whole, the clock named, nothing applied.
    let mut a = Peer::connect(addr, "a").await;
    let future = put(1, "a", 1, "future", now_ms() + 3_600_000);
    match a.batch(1, 1, &[(1, encode_change(&future))]).await {
        Frame::Error(e) => assert_eq!(e.code, ErrorCode::Refused, "{}", e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(refused("a").starts_with("clock:"), "{}", refused("a"));
    assert!(!has("future"));
    assert_eq!(store.watermark("a").unwrap(), 0);

    // 3. a batch with an entry that can never apply between two good ones: the bad one is
    // quarantined (kept on disk with its reason), the good ones apply and the batch is acked.
    let mut a = Peer::connect(addr, "a").await;
    let records = vec![
        (1, encode_change(&put(1, "a", 1, "first", now_ms()))),
        (2, vec![0x01, 0xff, 0xfe]),
        (3, encode_change(&put(3, "a", 3, "third", now_ms()))),
    ];
    match a.batch(1, 3, &records).await {
        Frame::Ack(ack) => assert_eq!((ack.up_to, ack.gap), (3, false)),
        other => panic!("expected an ack, got {other:?}"),
    }
    assert!(has("first") && has("third"));
    assert_eq!(store.watermark("a").unwrap(), 3);
    assert!(
        refused("a").is_empty(),
        "an applied batch clears the refusal"
    );
    let kept = std::fs::read(quarantine.join("a-2.change")).unwrap();
    assert_eq!(kept, vec![0x01, 0xff, 0xfe]);
    assert!(
        std::fs::read_to_string(quarantine.join("a-2.reason"))
            .unwrap()
            .contains("corrupt")
    );
}
