//! The replication wire protocol: pure data and functions, no sockets, no tokio.
//!
//! - [`frame`]: the frames and their versioned byte form (`version ‖ postcard`).
//! - [`batch`]: the entries inside a batch (compressed), and the checks run before any apply.
//! - [`auth`]: the mutual HMAC-SHA256 challenge–response on the link's shared secret.
//!
//! Byte layouts: `docs/design/replication.md`.

pub mod auth;
pub mod batch;
pub mod frame;

pub use frame::{
    Ack, AckReport, Auth, Batch, Challenge, Compression, ErrorCode, ErrorFrame, Frame, Heartbeat,
    Hello, MAX_FRAME_BYTES, NONCE_BYTES, PROTOCOL_VERSION, Payload, SnapshotEnd, Start, Welcome,
    Window, decode, encode,
};

/// A frame that cannot be read or must not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame's version byte is not one this build speaks.
    #[error("unknown protocol version {0}")]
    UnknownVersion(u8),
    /// The bytes are not a frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame or payload over its limit.
    #[error("frame or payload too large ({0} bytes)")]
    TooLarge(usize),
    /// A well-formed frame whose content breaks an invariant.
    #[error("invalid frame: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod fuzz {
    //! Fuzz-style properties: decoding arbitrary bytes never panics.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut v1 = vec![PROTOCOL_VERSION];
            v1.extend_from_slice(&bytes);
            if let Ok(Frame::Batch(b)) = decode(&v1) {
                let _ = batch::open(&b, "r");
            }
        }

        #[test]
        fn opening_random_payloads_never_panics(
            payload in proptest::collection::vec(any::<u8>(), 0..512),
            count in 0u32..8,
            raw_len in 0u32..4096,
            lz4 in any::<bool>(),
            first in 0u64..4,
            span in 0u64..20,
        ) {
            let b = Batch {
                first,
                last: first + span,
                attempt: 0,
                head: 0,
                hlc_now: 0,
                count,
                compression: if lz4 { Compression::Lz4 } else { Compression::None },
                raw_len: if lz4 { raw_len } else { payload.len() as u32 },
                payload: Payload(payload),
            };
            let _ = batch::open(&b, "r");
        }

        #[test]
        fn mutated_valid_frames_never_panic(flip in 0usize..400, byte in any::<u8>()) {
            let e = meridian_storage::ChangeEntry {
                seq: 2,
                gtid: meridian_core::Gtid { origin: "a".into(), seq: 2 },
                table: "users".into(),
                key: vec![1, 2, 3],
                version: meridian_core::Version {
                    ts: meridian_core::Timestamp(99),
                    region: "a".into(),
                },
                op: meridian_storage::ChangeOp::Delete,
                crdt: None,
            };
            let header = batch::BatchHeader { first: 1, last: 2, attempt: 1, head: 2, hlc_now: 5 };
            let frame = Frame::Batch(batch::build(header, &[e]).expect("build"));
            let mut bytes = encode(&frame).expect("encode");
            let i = flip % bytes.len();
            if let Some(b) = bytes.get_mut(i) {
                *b = byte;
            }
            if let Ok(Frame::Batch(b)) = decode(&bytes) {
                let _ = batch::open(&b, "r");
            }
        }
    }
}
