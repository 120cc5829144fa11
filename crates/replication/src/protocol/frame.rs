//! The frames of a replication link and their byte form.
//!
//! ```text
//! frame := version:u8 (= 2) ‖ postcard(Frame)
//! ```
//!
//! The transport adds a 4-byte big-endian length in front of every frame
//! (`LengthDelimitedCodec`, at most [`MAX_FRAME_BYTES`]). A frame whose version byte is not
//! [`PROTOCOL_VERSION`] is refused, never guessed at. The exact layout of every variant is drawn
//! in `docs/design/replication.md`; `tests` below pins it with fixtures.

use super::ProtocolError;
use serde::{Deserialize, Serialize};

/// Version byte of every frame this build writes and the only one it reads.
/// Version 2 added where the stream starts ([`Welcome`]) and snapshots.
pub const PROTOCOL_VERSION: u8 = 2;
/// Largest frame on the wire (after the length prefix), compressed payload included.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Length of the handshake nonces and HMAC proofs.
pub const NONCE_BYTES: usize = 32;

/// One message on a link. The connecting side is always the **sync-out** (sender) of the
/// directed link `from → to`; the accepting side is its **sync-in** (receiver).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// Sender → receiver, first frame: who is calling whom, and the sender's nonce.
    Hello(Hello),
    /// Receiver → sender: the receiver's nonce and its proof that it knows the link secret.
    Challenge(Challenge),
    /// Sender → receiver: the sender's proof, and where its stream resumes.
    Auth(Auth),
    /// Receiver → sender: the link is open, with the receiver's window and where to start.
    Welcome(Welcome),
    /// Sender → receiver: a contiguous range of the sender's change log.
    Batch(Batch),
    /// Receiver → sender: everything up to `up_to` is durably applied.
    Ack(Ack),
    /// Either way, when idle: liveness and the sender's position.
    Heartbeat(Heartbeat),
    /// Receiver → sender: a new window (zero batches pauses the sender).
    Credit(Window),
    /// Either way, then the connection closes.
    Error(ErrorFrame),
    /// Sender → receiver, after a [`Start::Snapshot`] welcome: part of a consistent snapshot of
    /// the sender's state (entries in repair form; `first..=last` number the snapshot's
    /// entries, not change-log sequences).
    SnapshotChunk(Batch),
    /// Sender → receiver: the snapshot is complete; the stream follows from `head`.
    SnapshotEnd(SnapshotEnd),
    /// Receiver → sender: the snapshot's entries up to this number are durably installed.
    SnapshotAck(u64),
}

/// The receiver's answer to [`Auth`]: the link is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// How much the sender may have unacknowledged.
    pub window: Window,
    /// Where the stream starts.
    pub start: Start,
}

/// Where a sender starts, as the receiver asks in [`Welcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// After the later of the sender's checkpoint and this sequence: the receiver's dedup
    /// watermark of the sender (it already holds the sender's changes up to it).
    After(u64),
    /// Send a consistent snapshot first, then the stream from the snapshot's head: the
    /// receiver is new, or the sender said it purged what the receiver needs.
    Snapshot,
}

/// The end of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEnd {
    /// Entries in the snapshot (the last chunk's `last`, 0 if empty).
    pub entries: u64,
    /// The sender's change-log head as of the snapshot: the stream resumes after it.
    pub head: u64,
    /// Per origin, the highest sequence whose effect the snapshot holds.
    pub watermarks: Vec<(String, u64)>,
}

/// First frame of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sending region (origin of the link).
    pub from: String,
    /// The region the sender believes it is calling.
    pub to: String,
    /// The sender's random nonce.
    pub nonce: [u8; NONCE_BYTES],
}

/// The receiver's answer to [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The receiving region's name.
    pub region: String,
    /// The receiver's random nonce.
    pub nonce: [u8; NONCE_BYTES],
    /// `HMAC-SHA256(secret, server transcript)`: the receiver knows the secret too.
    pub proof: [u8; NONCE_BYTES],
}

/// The sender's answer to [`Challenge`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// `HMAC-SHA256(secret, client transcript)`.
    pub proof: [u8; NONCE_BYTES],
    /// The first local sequence the sender will ship (its checkpoint + 1).
    pub resume_from: u64,
}

/// How much a sender may have unacknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Most batches sent and not acknowledged (0 = paused).
    pub max_batches: u32,
    /// Most payload bytes sent and not acknowledged.
    pub max_bytes: u64,
}

impl Window {
    /// The default window: 64 batches or 4 MiB. Under a light load every commit group is its
    /// own small batch, so the batch count must cover a WAN round trip of them (at 160 ms RTT,
    /// 8 batches held entries back for an ack; see docs/benchmarks.md, lag); the byte bound
    /// is what limits memory.
    pub const DEFAULT: Window = Window {
        max_batches: 64,
        max_bytes: 4 * 1024 * 1024,
    };
    /// A closed window: the sender sends nothing new.
    pub const CLOSED: Window = Window {
        max_batches: 0,
        max_bytes: 0,
    };
}

/// How a batch payload is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    /// Stored as is.
    None,
    /// LZ4 block format (`lz4_flex::block`).
    Lz4,
}

/// A contiguous range `first..=last` of the sender's change log. Only entries the topology lets
/// this link carry are in the payload (possibly none: the range still advances the stream).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// First local sequence covered.
    pub first: u64,
    /// Last local sequence covered.
    pub last: u64,
    /// The sender's stream attempt (bumped on every rewind); echoed in gap acks.
    pub attempt: u32,
    /// The sender's change-log head when the batch was cut.
    pub head: u64,
    /// The sender's HLC reading when the batch was cut.
    pub hlc_now: u64,
    /// Number of entries in the payload.
    pub count: u32,
    /// Payload compression.
    pub compression: Compression,
    /// Payload length before compression.
    pub raw_len: u32,
    /// The entries (see [`super::batch`]), compressed as `compression` says.
    pub payload: Payload,
}

/// What the receiver did with the batches acknowledged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckReport {
    /// Entries applied (won last-writer-wins).
    pub applied: u64,
    /// Entries at or below their origin's watermark.
    pub duplicates: u64,
    /// Entries that lost last-writer-wins.
    pub stale: u64,
    /// Entries that originated at the receiver.
    pub own: u64,
    /// Entries for tables the receiver lacks.
    pub missing_table: u64,
    /// Conflicts (all tables).
    pub conflicts: u64,
}

/// The receiver's acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Every entry of the stream up to this local sequence is durably applied.
    pub up_to: u64,
    /// The attempt of the batch this answers.
    pub attempt: u32,
    /// The batch did not start at `up_to + 1`: rewind and resend from there.
    pub gap: bool,
    /// Counts for the batch acknowledged (zero for gaps and duplicates).
    pub report: AckReport,
}

/// Sent by either side after a quiet interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Sender: its change-log head. Receiver: the last sequence it acknowledged.
    pub head: u64,
    /// The writer's HLC (sender) or wall clock (receiver), `physical_ms << 16 | logical`.
    pub hlc_now: u64,
    /// Sender: commit time (ms) of the oldest entry the receiver has not acknowledged, 0 if
    /// none. Lets the receiver measure lag while nothing flows (a paused link).
    pub pending_since_ms: u64,
    /// Sender: every change of its own with an HLC timestamp at or below this is at or below
    /// `head` in its log (0: unknown). A receiver that has applied the stream through `head`
    /// holds all of them — the causal stability tombstone garbage collection waits for.
    pub stable_ts: u64,
    /// A star's hub to a spoke: for every other spoke, a timestamp such that all of that
    /// spoke's writes up to it are applied at the hub, hence at or below `head` in the hub's
    /// log (0: unknown). Empty from everyone else.
    pub origins: Vec<(String, u64)>,
}

/// Why a side gave up on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The peer is unknown or failed the challenge.
    Unauthorized,
    /// The topology forbids this link.
    NotAllowed,
    /// A frame failed validation.
    Invalid,
    /// The receiver could not apply (its store failed).
    Unavailable,
    /// The sender no longer has the change-log entries the receiver asked to start from
    /// (purged): the receiver must take a snapshot from it.
    LogPurged,
    /// The receiver is installing a snapshot from another peer: try again later.
    Busy,
    /// The receiver refused a batch unapplied (a version too far ahead of its clock): the
    /// sender backs off and sends it again.
    Refused,
}

/// An error frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// What went wrong.
    pub code: ErrorCode,
    /// A short human-readable reason (never secrets or internal detail).
    pub message: String,
}

/// Opaque bytes, serialized by postcard as `varint(len) ‖ bytes` in one copy.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Payload, E> {
                Ok(Payload(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Encodes a frame: version byte, then postcard.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, ProtocolError> {
    let out = postcard::to_extend(frame, vec![PROTOCOL_VERSION])
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if out.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge(out.len()));
    }
    Ok(out)
}

/// Decodes a frame, refusing unknown versions, oversized input and trailing bytes. Never
/// panics, whatever the input.
pub fn decode(bytes: &[u8]) -> Result<Frame, ProtocolError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge(bytes.len()));
    }
    let Some((&version, body)) = bytes.split_first() else {
        return Err(ProtocolError::Malformed("empty frame".into()));
    };
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::UnknownVersion(version));
    }
    let (frame, rest) = postcard::take_from_bytes::<Frame>(body)
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtocolError::Malformed(
            "trailing bytes after frame".into(),
        ));
    }
    Ok(frame)
}

impl Frame {
    /// The frame type's name, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "Hello",
            Frame::Challenge(_) => "Challenge",
            Frame::Auth(_) => "Auth",
            Frame::Welcome(_) => "Welcome",
            Frame::Batch(_) => "Batch",
            Frame::Ack(_) => "Ack",
            Frame::Heartbeat(_) => "Heartbeat",
            Frame::Credit(_) => "Credit",
            Frame::Error(_) => "Error",
            Frame::SnapshotChunk(_) => "SnapshotChunk",
            Frame::SnapshotEnd(_) => "SnapshotEnd",
            Frame::SnapshotAck(_) => "SnapshotAck",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn round_trip_every_variant() {
        let frames = vec![
            Frame::Hello(Hello {
                from: "a".into(),
                to: "b".into(),
                nonce: [7; NONCE_BYTES],
            }),
            Frame::Challenge(Challenge {
                region: "b".into(),
                nonce: [1; NONCE_BYTES],
                proof: [2; NONCE_BYTES],
            }),
            Frame::Auth(Auth {
                proof: [3; NONCE_BYTES],
                resume_from: 42,
            }),
            Frame::Welcome(Welcome {
                window: Window::DEFAULT,
                start: Start::After(7),
            }),
            Frame::Welcome(Welcome {
                window: Window::CLOSED,
                start: Start::Snapshot,
            }),
            Frame::SnapshotChunk(Batch {
                first: 1,
                last: 2,
                attempt: 0,
                head: 0,
                hlc_now: 1,
                count: 0,
                compression: Compression::None,
                raw_len: 0,
                payload: Payload(vec![]),
            }),
            Frame::SnapshotEnd(SnapshotEnd {
                entries: 2,
                head: 40,
                watermarks: vec![("a".into(), 40), ("c".into(), 3)],
            }),
            Frame::SnapshotAck(2),
            Frame::Batch(Batch {
                first: 1,
                last: 9,
                attempt: 2,
                head: 12,
                hlc_now: 1 << 20,
                count: 0,
                compression: Compression::None,
                raw_len: 3,
                payload: Payload(vec![1, 2, 3]),
            }),
            Frame::Ack(Ack {
                up_to: 9,
                attempt: 2,
                gap: false,
                report: AckReport {
                    applied: 3,
                    ..AckReport::default()
                },
            }),
            Frame::Heartbeat(Heartbeat::default()),
            Frame::Heartbeat(Heartbeat {
                head: 9,
                hlc_now: 1 << 20,
                pending_since_ms: 3,
                stable_ts: 1 << 19,
                origins: vec![("s2".into(), 1 << 18), ("s3".into(), 0)],
            }),
            Frame::Credit(Window::CLOSED),
            Frame::Error(ErrorFrame {
                code: ErrorCode::Unauthorized,
                message: "no".into(),
            }),
        ];
        for f in frames {
            let b = encode(&f).expect("encode");
            assert_eq!(b[0], PROTOCOL_VERSION);
            assert_eq!(decode(&b).expect("decode"), f);
        }
    }

    /// Fixtures of version 2: a change here breaks mixed-version clusters.
    #[test]
    fn version_2_fixtures() {
        let ack = Frame::Ack(Ack {
            up_to: 300,
            attempt: 1,
            gap: false,
            report: AckReport {
                applied: 2,
                conflicts: 1,
                ..AckReport::default()
            },
        });
        // 02 | variant 5 (Ack) | up_to varint(300)=ac02 | attempt 01 | gap 00 | report 02 00 00 00 00 01
        assert_eq!(
            hex(&encode(&ack).expect("encode")),
            "0205ac020100020000000001"
        );
        let credit = Frame::Credit(Window {
            max_batches: 8,
            max_bytes: 1024,
        });
        // 02 | variant 7 (Credit) | 08 | varint(1024)=8008
        assert_eq!(hex(&encode(&credit).expect("encode")), "0207088008");
        let welcome = Frame::Welcome(Welcome {
            window: Window {
                max_batches: 8,
                max_bytes: 1024,
            },
            start: Start::After(300),
        });
        // 02 | variant 3 (Welcome) | 08 | 8008 | Start::After = 00 | varint(300)=ac02
        assert_eq!(hex(&encode(&welcome).expect("encode")), "020308800800ac02");
    }

    #[test]
    fn refuses_unknown_version_and_trailing_bytes() {
        let mut b = encode(&Frame::Heartbeat(Heartbeat::default())).expect("encode");
        b.push(0);
        assert!(matches!(decode(&b), Err(ProtocolError::Malformed(_))));
        b.pop();
        b[0] = 1;
        assert_eq!(decode(&b), Err(ProtocolError::UnknownVersion(1)));
        assert!(decode(&[]).is_err());
    }
}
