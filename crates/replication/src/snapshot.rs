//! Snapshots over a link: how a new region (or one whose peer purged the changes it needs)
//! is seeded before it takes the change stream.
//!
//! The receiver asks for one in its `Welcome` (`Start::Snapshot`). The sender takes a
//! consistent snapshot of its store (`Store::snapshot`: tables, items, tombstones, watermarks
//! and head as of one commit) and streams it in `SnapshotChunk` frames — the batch format,
//! entries in repair form — at most [`CHUNKS_IN_FLIGHT`] unacknowledged. The receiver applies
//! each chunk with `Store::repair` (merge and last-writer-wins, as anti-entropy does) and acks
//! it once durable. `SnapshotEnd` carries the snapshot's watermarks and head: the receiver
//! raises its dedup watermarks to them in one durable commit (`Store::finish_snapshot`) and
//! acks; only then does the sender move its checkpoint to the head and stream from there.
//!
//! Why there is no gap and no double apply: every change of origin `O` up to the snapshot's
//! watermark of `O` is reflected in the installed states, and every later one has a higher
//! sequence, which `O`'s own stream delivers (the receiver's `Welcome` asks each sender to
//! start after its watermark); changes at or below a watermark are skipped by dedup. A
//! snapshot cut short leaves the watermarks untouched, so the next attempt starts over (states
//! are joins: installing one twice changes nothing).

use crate::Ctx;
use crate::conn::send_error;
use crate::conn::{FrameReader, FrameWriter, LinkError};
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::{ErrorCode, Frame, SnapshotEnd};
use crate::status::{InstalledSnapshot, LinkLabel};
use meridian_storage::ChangeEntry;
use meridian_storage::record::encode_change;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Most unacknowledged chunks.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// A chunk is cut at this many entries…
const CHUNK_ENTRIES: usize = 2048;
/// …or this many bytes of encoded entries, whichever comes first.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

fn label(peer: &str, direction: &str) -> LinkLabel {
    LinkLabel {
        peer: peer.to_owned(),
        direction: direction.to_owned(),
    }
}

/// Sender: streams a consistent snapshot to `peer` and returns the change-log head it
/// corresponds to, once the receiver has durably installed it.
pub(crate) async fn send(
    ctx: &Ctx,
    peer: &str,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<u64, LinkError> {
    let started = Instant::now();
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ChangeEntry>>(2);
    let store = ctx.store.clone();
    // The snapshot is read on a blocking thread and handed over a chunk at a time.
    let producer = tokio::task::spawn_blocking(move || {
        let snap = store.snapshot()?;
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for e in snap.entries() {
            let e = e?;
            bytes += encode_change(&e).len();
            chunk.push(e);
            if chunk.len() >= CHUNK_ENTRIES || bytes >= CHUNK_BYTES {
                bytes = 0;
                if tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                    return Err(meridian_storage::StoreError::Closed);
                }
            }
        }
        if !chunk.is_empty() && tx.blocking_send(chunk).is_err() {
            return Err(meridian_storage::StoreError::Closed);
        }
        Ok::<_, meridian_storage::StoreError>((snap.head, snap.watermarks.clone()))
    });
    let mut sent = 0u64;
    let mut inflight: VecDeque<u64> = VecDeque::new();
    let mut producing = true;
    let counter = ctx
        .links
        .metrics
        .snapshot_entries
        .get_or_create(&label(peer, "out"))
        .clone();
    while producing || !inflight.is_empty() {
        tokio::select! {
            chunk = rx.recv(), if producing && inflight.len() < CHUNKS_IN_FLIGHT => {
                let Some(entries) = chunk else {
                    producing = false;
                    continue;
                };
                let first = sent + 1;
                let last = sent + entries.len() as u64;
                let header = BatchHeader {
                    first,
                    last,
                    attempt: 0,
                    head: 0,
                    hlc_now: meridian_core::Timestamp::new(ctx.store.wall_ms(), 0).0,
                };
                writer.send(&Frame::SnapshotChunk(batch::build(header, &entries)?)).await?;
                counter.inc_by(entries.len() as u64);
                sent = last;
                inflight.push_back(last);
            }
            frame = reader.next_within(idle) => {
                match frame? {
                    Frame::SnapshotAck(n) => {
                        while inflight.front().is_some_and(|&l| l <= n) {
                            inflight.pop_front();
                        }
                    }
                    Frame::Heartbeat(_) | Frame::Credit(_) => {}
                    Frame::Error(e) => return Err(LinkError::Peer(e.code, e.message)),
                    other => {
                        let msg = format!("unexpected frame {} during a snapshot", other.name());
                        send_error(writer, ErrorCode::Invalid, &msg).await;
                        return Err(LinkError::Closed("protocol violation"));
                    }
                }
            }
        }
    }
    let (head, watermarks) = producer
        .await
        .map_err(|_| LinkError::Closed("snapshot reader failed"))??;
    writer
        .send(&Frame::SnapshotEnd(SnapshotEnd {
            entries: sent,
            head,
            watermarks: watermarks.into_iter().collect(),
        }))
        .await?;
    // The receiver's last ack comes once the watermarks are durable.
    loop {
        match reader.next_within(idle).await? {
            Frame::SnapshotAck(n) if n == sent => break,
            Frame::SnapshotAck(_) | Frame::Heartbeat(_) | Frame::Credit(_) => {}
            Frame::Error(e) => return Err(LinkError::Peer(e.code, e.message)),
            other => {
                let msg = format!("unexpected frame {} after the snapshot", other.name());
                send_error(writer, ErrorCode::Invalid, &msg).await;
                return Err(LinkError::Closed("protocol violation"));
            }
        }
    }
    ctx.links
        .metrics
        .snapshots
        .get_or_create(&label(peer, "out"))
        .inc();
    tracing::info!(peer = %peer, entries = sent, head, ms = started.elapsed().as_millis() as u64, "snapshot sent");
    Ok(head)
}

/// Receiver: installs the snapshot `peer` streams and returns the sender's head it
/// corresponds to (the stream resumes after it).
pub(crate) async fn receive(
    ctx: &Ctx,
    peer: &str,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<u64, LinkError> {
    let me = ctx.config.region.as_str();
    let started = Instant::now();
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let counter = ctx
        .links
        .metrics
        .snapshot_entries
        .get_or_create(&label(peer, "in"))
        .clone();
    let mut installed = 0u64;
    tracing::info!(peer = %peer, "installing a snapshot");
    loop {
        match reader.next_within(idle).await? {
            Frame::SnapshotChunk(b) => {
                let entries = match batch::open(&b, me) {
                    Ok(o) if b.first == installed + 1 => {
                        crate::quarantine::set_aside(ctx, peer, o.quarantined).await?;
                        o.entries
                    }
                    Ok(_) => {
                        let msg = format!(
                            "snapshot chunk {}..={} does not follow {installed}",
                            b.first, b.last
                        );
                        send_error(writer, ErrorCode::Invalid, &msg).await;
                        return Err(LinkError::Closed("snapshot out of order"));
                    }
                    Err(e) => {
                        ctx.links.refuse_batch(peer, "invalid", &e.to_string());
                        send_error(writer, ErrorCode::Invalid, &e.to_string()).await;
                        return Err(e.into());
                    }
                };
                let n = entries.len() as u64;
                match ctx.store.repair(entries).await {
                    Ok(_) => {}
                    Err(e @ meridian_storage::StoreError::ClockAhead { .. }) => {
                        ctx.links.refuse_batch(peer, "clock", &e.to_string());
                        send_error(writer, ErrorCode::Refused, &e.to_string()).await;
                        return Err(e.into());
                    }
                    Err(e) => {
                        send_error(writer, ErrorCode::Unavailable, "store unavailable").await;
                        return Err(e.into());
                    }
                }
                counter.inc_by(n);
                installed = b.last;
                writer.send(&Frame::SnapshotAck(installed)).await?;
            }
            Frame::SnapshotEnd(end) => {
                if end.entries != installed {
                    let msg = format!(
                        "snapshot ended at {} but {installed} entries arrived",
                        end.entries
                    );
                    send_error(writer, ErrorCode::Invalid, &msg).await;
                    return Err(LinkError::Closed("snapshot incomplete"));
                }
                let watermarks: BTreeMap<String, u64> = end.watermarks.into_iter().collect();
                if let Err(e) = ctx.store.finish_snapshot(watermarks.clone()).await {
                    send_error(writer, ErrorCode::Unavailable, "store unavailable").await;
                    return Err(e.into());
                }
                writer.send(&Frame::SnapshotAck(installed)).await?;
                let millis = started.elapsed().as_millis() as u64;
                if let Ok(mut s) = ctx.links.snapshots.lock() {
                    s.wanted_from.remove(peer);
                    s.installed.push(InstalledSnapshot {
                        peer: peer.to_owned(),
                        entries: installed,
                        head: end.head,
                        watermarks,
                        millis,
                    });
                }
                ctx.links
                    .metrics
                    .snapshots
                    .get_or_create(&label(peer, "in"))
                    .inc();
                tracing::info!(peer = %peer, entries = installed, head = end.head, millis, "snapshot installed");
                return Ok(end.head);
            }
            Frame::Heartbeat(_) => {}
            Frame::Error(e) => return Err(LinkError::Peer(e.code, e.message)),
            other => {
                let msg = format!("unexpected frame {} during a snapshot", other.name());
                send_error(writer, ErrorCode::Invalid, &msg).await;
                return Err(LinkError::Closed("protocol violation"));
            }
        }
    }
}
