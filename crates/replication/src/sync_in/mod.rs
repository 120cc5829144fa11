//! The sync-in side: one listener per region; each accepted connection is authenticated
//! (challenge–response, [`handshake`]), checked against the topology, then driven by an
//! `Inbound` state machine ([`link`]) — every batch is validated, applied through the
//! change sink in one durable commit, and only then acknowledged.

use crate::Ctx;
use crate::conn::send_error;
use crate::conn::{self, FrameReader, FrameWriter, LinkError};
use crate::protocol::{ErrorCode, Frame, Start, Welcome, Window};
use handshake::handshake;
use link::InLink;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

mod handshake;
mod link;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest frame accepted before the peer has authenticated (`Hello` and `Auth` are under
/// 200 bytes): an anonymous connection cannot make the region buffer a 16 MiB frame.
const HANDSHAKE_MAX_FRAME: usize = 4096;
/// Sync-in connections served at once, authenticated or not: a few per configured peer
/// (reconnects overlap the connection they replace) and some slack. Beyond it a connection
/// is closed at once.
fn max_connections(peers: usize) -> usize {
    4 * peers + 16
}

/// Accepts connections until shutdown.
pub(crate) async fn listen(ctx: Arc<Ctx>, listener: TcpListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections(
        ctx.config.peers.len(),
    )));
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%addr, "sync-in connection refused: too many connections");
                    ctx.links.refused("?");
                    drop(stream);
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let Some((mut reader, mut writer, cert)) = open(&ctx, stream, addr).await
                    else {
                        return;
                    };
                    match serve(&ctx, cert.as_ref(), &mut reader, &mut writer).await {
                        Ok(()) => {}
                        Err((peer, e)) => {
                            tracing::warn!(%addr, peer = %peer, error = %e, "sync-in connection ended");
                        }
                    }
                    writer.finish(Duration::from_millis(200)).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A connection's frame halves, after the TLS handshake when the links use TLS (with the
/// peer's certificate), capped at small frames until the peer authenticates; `None` when the
/// TLS handshake fails (counted as a refusal).
async fn open(
    ctx: &Ctx,
    stream: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
) -> Option<(FrameReader, FrameWriter, Option<CertificateDer<'static>>)> {
    let (mut reader, writer, cert) = match &ctx.tls {
        None => {
            let (r, w) = conn::split(stream);
            (r, w, None)
        }
        Some(tls) => {
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok((stream, cert))) => {
                    let (r, w) = conn::split_tls(stream);
                    (r, w, Some(cert))
                }
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    ctx.links.refused("?");
                    tracing::warn!(%addr, error = %why, "replication TLS handshake failed");
                    return None;
                }
            }
        }
    };
    reader.set_max_frame(HANDSHAKE_MAX_FRAME);
    Some((reader, writer, cert))
}

fn window_for(paused: bool) -> Window {
    if paused {
        Window::CLOSED
    } else {
        Window::DEFAULT
    }
}

async fn serve(
    ctx: &Ctx,
    cert: Option<&CertificateDer<'static>>,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<(), (String, LinkError)> {
    let (peer, resume_from) = handshake(ctx, cert, reader, writer).await?;
    reader.set_max_frame(crate::protocol::MAX_FRAME_BYTES);
    stream(ctx, &peer, resume_from, reader, writer)
        .await
        .map_err(|e| (peer.clone(), e))
}

async fn stream(
    ctx: &Ctx,
    peer: &str,
    resume_from: u64,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<(), LinkError> {
    let Some(mut control) = ctx.links.control(peer) else {
        return Err(LinkError::Closed("no such peer"));
    };
    // A newer connection from the same region supersedes this one.
    let links = ctx.links.peers.get(peer).cloned();
    let current = links
        .as_ref()
        .map(|l| l.inbound_generation.fetch_add(1, Ordering::AcqRel) + 1)
        .unwrap_or(0);
    let paused = control.borrow_and_update().paused;
    let drops_seen = control.borrow().drops;
    let start = match begin(ctx, peer, current)? {
        Ok(start) => start,
        Err(why) => {
            let why = format!("{why}; try again later");
            send_error(writer, ErrorCode::Busy, &why).await;
            return Err(LinkError::Closed("busy with a snapshot"));
        }
    };
    writer
        .send(&Frame::Welcome(Welcome {
            window: window_for(paused),
            start,
        }))
        .await?;
    ctx.links.connected(peer, "in");
    ctx.catch_up(|g| g.on_linked(peer));
    let resume_from = match start {
        Start::After(n) => resume_from.max(n + 1),
        Start::Snapshot => {
            let installed = crate::snapshot::receive(ctx, peer, reader, writer).await;
            if let Ok(mut s) = ctx.links.snapshots.lock()
                && s.claim == current
                && s.installing_from.as_deref() == Some(peer)
            {
                s.installing_from = None;
            }
            installed? + 1
        }
    };
    tracing::info!(peer = %peer, resume_from, "sync-in connected");
    let mut link = InLink::new(ctx, peer, resume_from, links, paused);
    ctx.links
        .update_inbound(peer, Some(&link.sm.status()), paused);
    let result = link.run(reader, writer, control, drops_seen, current).await;
    // mark the link down, unless a newer connection from the same peer already took over
    if let Some(l) = &link.links
        && l.inbound_generation.load(Ordering::Acquire) == current
    {
        let paused = l.control.borrow().paused;
        ctx.links.update_inbound(peer, None, paused);
        ctx.catch_up(|g| g.on_unlinked(peer));
    }
    result
}

/// Where the stream from `peer` starts: a snapshot first when this region is new (its store
/// was created empty and has not installed one yet) or when the peer said it purged what this
/// region needs; otherwise right after this region's watermark of the peer. One snapshot is
/// installed at a time, and a new region takes its first only once all its peers have linked:
/// `Err(why)` says what it is waiting for.
fn begin(ctx: &Ctx, peer: &str, connection: u64) -> Result<Result<Start, String>, LinkError> {
    let pending = ctx.store.bootstrap_pending()?;
    let mut s = ctx
        .links
        .snapshots
        .lock()
        .map_err(|_| LinkError::Closed("snapshot state poisoned"))?;
    s.linked.insert(peer.to_owned());
    if pending || s.wanted_from.contains(peer) {
        if let Some(other) = s.installing_from.clone().filter(|o| o != peer) {
            return Ok(Err(format!("installing a snapshot from {other}")));
        }
        // A new region waits until every peer that ships to it has linked once: from then on
        // their checkpoints for it hold back their garbage collection, so the snapshot's
        // watermarks stay within what each of them can still stream.
        let me = &ctx.config.region;
        let missing: Vec<&str> = ctx
            .config
            .peers
            .iter()
            .filter(|p| {
                ctx.config.topology.accepts_from(me, &p.name) && !s.linked.contains(&p.name)
            })
            .map(|p| p.name.as_str())
            .collect();
        if pending
            && !missing.is_empty()
            && ctx.started.elapsed().as_secs() < ctx.config.bootstrap_wait_secs
        {
            return Ok(Err(format!(
                "waiting for {} to link before taking a first snapshot",
                missing.join(", ")
            )));
        }
        s.installing_from = Some(peer.to_owned());
        s.claim = connection;
        return Ok(Ok(Start::Snapshot));
    }
    Ok(Ok(Start::After(ctx.store.watermark(peer)?)))
}

/// The peer purged changes this region never received. A new region takes a snapshot from it
/// at the next connection. Any other region has been away longer than its peers keep their
/// logs: items deleted meanwhile may have lost their tombstones everywhere else, so patching
/// its old data with a snapshot could resurrect them. It is marked stale instead, loudly.
fn log_purged(ctx: &Ctx, peer: &str, message: &str) -> Result<(), LinkError> {
    let pending = ctx.store.bootstrap_pending()?;
    let Ok(mut s) = ctx.links.snapshots.lock() else {
        return Ok(());
    };
    if pending {
        s.wanted_from.insert(peer.to_owned());
    } else {
        if !s.stale_from.contains_key(peer) {
            tracing::error!(peer = %peer, reason = %message, "this region's data is stale: {peer} purged changes it never received. Restart it with an empty data directory to have it seeded from a snapshot");
        }
        s.stale_from.insert(peer.to_owned(), message.to_owned());
    }
    Ok(())
}

/// Records every applied entry's lag at receipt (`received_ms`) and once durable
/// (`durable_ms`), from its origin commit time.
fn record_lag(ctx: &Ctx, peer: &str, commits_ms: &[u64], received_ms: u64, durable_ms: u64) {
    let Some(links) = ctx.links.peers.get(peer) else {
        return;
    };
    for (h, at) in [
        (&links.receive_lag, received_ms),
        (&links.apply_lag, durable_ms),
    ] {
        if let Ok(mut h) = h.lock() {
            for c in commits_ms {
                h.record(at.saturating_sub(*c));
            }
        }
    }
}
