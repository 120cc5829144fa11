//! The sync-in side: one listener per region; each accepted connection is authenticated
//! (challenge–response), checked against the topology, then driven by an [`Inbound`] state
//! machine — every batch is validated, applied in one durable commit (`Store::apply_remote`),
//! and only then acknowledged.

use crate::Ctx;
use crate::conn::{self, FrameReader, FrameWriter, LinkError};
use crate::inbound::{Inbound, Verdict};
use crate::protocol::auth::{self, Side, Transcript};
use crate::protocol::batch::{self, check_region_name};
use crate::protocol::{AckReport, Challenge, ErrorCode, Frame, Heartbeat, Start, Welcome, Window};
use crate::status::PeerLabel;
use crate::sync_out::{frame_name, send_error};
use meridian_storage::StoreError;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

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
/// At most this many entries (by sequence span) are gathered from batches already received
/// into one apply. One durable apply per gather keeps fsyncs few; the cap keeps each apply
/// short, because the first entry of a gather waits for the last: after a stall, 8192 entries
/// took one apply of up to ~250 ms on this 2-core box. `meridian bench lag` p99 (one region /
/// all regions), three interleaved pairs: 8192 → 203/273, 121/131, 114/192 ms; 2048 → 113/179,
/// 111/135, 81/126 ms. Catch-up after 60 s at 10k/s was unchanged (19.5 → 19.4 s).
const GATHER_MAX_ENTRIES: u64 = 2048;

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

/// Refuses a connection: logs, counts, answers with an error frame.
async fn refuse(
    ctx: &Ctx,
    writer: &mut FrameWriter,
    claimed: &str,
    code: ErrorCode,
    why: &str,
) -> LinkError {
    ctx.links.refused(claimed);
    tracing::warn!(peer = %claimed, reason = %why, "replication peer refused");
    send_error(writer, code, why).await;
    match code {
        ErrorCode::Unauthorized => LinkError::Auth(why.to_owned()),
        _ => LinkError::Closed("refused"),
    }
}

/// The receiver's handshake; returns the authenticated peer and the stream's start. Over TLS
/// the peer's certificate must name the region its `Hello` claims.
async fn handshake(
    ctx: &Ctx,
    cert: Option<&CertificateDer<'static>>,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<(String, u64), (String, LinkError)> {
    let me = ctx.config.region.as_str();
    let hello = match reader.next_within(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::Hello(h)) => h,
        Ok(other) => {
            let why = format!("expected Hello, got {}", frame_name(&other));
            let e = refuse(ctx, writer, "?", ErrorCode::Invalid, &why).await;
            return Err(("?".into(), e));
        }
        Err(e) => return Err(("?".into(), e)),
    };
    let from = hello.from.clone();
    if check_region_name(&from).is_err() || hello.to != me {
        let e = refuse(ctx, writer, "?", ErrorCode::NotAllowed, "wrong region").await;
        return Err((from, e));
    }
    let Some(peer) = ctx.config.peer(&from) else {
        let e = refuse(ctx, writer, &from, ErrorCode::Unauthorized, "unknown peer").await;
        return Err((from, e));
    };
    if let Some(cert) = cert
        && !crate::tls::names_region(cert, &from)
    {
        let why = "the peer's certificate does not name the region it claims";
        let e = refuse(ctx, writer, &from, ErrorCode::Unauthorized, why).await;
        return Err((from, e));
    }
    if !ctx.config.topology.accepts_from(me, &from) {
        let e = refuse(
            ctx,
            writer,
            &from,
            ErrorCode::NotAllowed,
            "the topology has no link from this region",
        )
        .await;
        return Err((from, e));
    }
    let server_nonce: [u8; 32] = rand::random();
    let t = Transcript {
        from: &from,
        to: me,
        client_nonce: &hello.nonce,
        server_nonce: &server_nonce,
    };
    let challenge = Challenge {
        region: me.to_owned(),
        nonce: server_nonce,
        proof: auth::proof(peer.secret.as_bytes(), Side::Server, &t),
    };
    if let Err(e) = writer.send(&Frame::Challenge(challenge)).await {
        return Err((from, e));
    }
    let auth_frame = match reader.next_within(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::Auth(a)) => a,
        Ok(Frame::Error(e)) => {
            ctx.links.refused(&from);
            tracing::warn!(peer = %from, reason = %e.message, "replication peer refused: it rejected our proof (do the secrets match?)");
            return Err((from, LinkError::Peer(e.code, e.message)));
        }
        Ok(other) => {
            let why = format!("expected Auth, got {}", frame_name(&other));
            let e = refuse(ctx, writer, &from, ErrorCode::Invalid, &why).await;
            return Err((from, e));
        }
        Err(e) => return Err((from, e)),
    };
    if !auth::verify(peer.secret.as_bytes(), Side::Client, &t, &auth_frame.proof) {
        let e = refuse(
            ctx,
            writer,
            &from,
            ErrorCode::Unauthorized,
            "authentication failed",
        )
        .await;
        return Err((from, e));
    }
    Ok((from, auth_frame.resume_from))
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
    let me = ctx.config.region.as_str();
    let Some(mut control) = ctx.links.control(peer) else {
        return Err(LinkError::Closed("no such peer"));
    };
    // A newer connection from the same region supersedes this one.
    let links = ctx.links.peers.get(peer).cloned();
    let current = links
        .as_ref()
        .map(|l| l.inbound_generation.fetch_add(1, Ordering::AcqRel) + 1)
        .unwrap_or(0);
    let mut paused = control.borrow_and_update().paused;
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
    let mut sm = Inbound::new(resume_from);
    ctx.links.update_inbound(peer, Some(&sm.status()), paused);
    let label = PeerLabel {
        peer: peer.to_owned(),
    };
    let m = &ctx.links.metrics;
    let (applied, dups, stale) = (
        m.applied.get_or_create(&label).clone(),
        m.duplicates.get_or_create(&label).clone(),
        m.stale.get_or_create(&label).clone(),
    );
    let (repeats, gaps) = (
        m.repeated_batches.get_or_create(&label).clone(),
        m.gap_batches.get_or_create(&label).clone(),
    );
    let (received, applies) = (
        m.received_batches.get_or_create(&label).clone(),
        m.applies.get_or_create(&label).clone(),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(ctx.config.heartbeat_ms.max(10)));
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let mut last_heard = tokio::time::Instant::now();
    // A frame read while gathering batches, handled before reading again.
    let mut held: Option<Frame> = None;
    let result = async { loop {
        let frame = match held.take() {
            Some(f) => f,
            None => tokio::select! {
                () = ctx.shutdown.cancelled() => return Ok(()),
                frame = reader.next() => {
                    last_heard = tokio::time::Instant::now();
                    frame?
                }
                changed = control.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let c = *control.borrow_and_update();
                    if c.drops != drops_seen {
                        return Err(LinkError::Closed("dropped by operator"));
                    }
                    if c.paused != paused {
                        paused = c.paused;
                        writer.send(&Frame::Credit(window_for(paused))).await?;
                    }
                    continue;
                }
                _ = tick.tick() => {
                    if links.as_ref().is_some_and(|l| l.inbound_generation.load(Ordering::Acquire) != current) {
                        return Err(LinkError::Closed("superseded by a newer connection"));
                    }
                    if last_heard.elapsed() > idle {
                        return Err(LinkError::Timeout("peer silent"));
                    }
                    let s = sm.status();
                    writer.send(&Frame::Heartbeat(Heartbeat {
                        head: s.acked,
                        hlc_now: meridian_core::Timestamp::new(ctx.store.wall_ms(), 0).0,
                        pending_since_ms: 0,
                        stable_ts: 0,
                        origins: Vec::new(),
                    })).await?;
                    ctx.links.update_inbound(peer, Some(&s), paused);
                    continue;
                }
            },
        };
        match frame {
            Frame::Batch(b) => {
                // Every batch already received is taken too and applied in the same commit:
                // one durable apply per batch would cap the link at the batches per second
                // the store can sync, and a queue would build behind it.
                let mut span = b.last.saturating_sub(b.first) + 1;
                let mut batches = vec![b];
                while span < GATHER_MAX_ENTRIES {
                    match reader.try_next() {
                        Some(Ok(Frame::Batch(b))) => {
                            span += b.last.saturating_sub(b.first) + 1;
                            batches.push(b);
                        }
                        Some(Ok(other)) => {
                            held = Some(other);
                            break;
                        }
                        Some(Err(e)) => return Err(e),
                        None => break,
                    }
                }
                received.inc_by(batches.len() as u64);
                let mut entries = Vec::new();
                let mut quarantined = Vec::new();
                let mut accepted: Option<(u64, u32)> = None;
                for b in &batches {
                    let opened = match batch::open(b, me).and_then(|o| {
                        batch::check_origins(&o.entries, &ctx.config.topology, peer, me).map(|()| o)
                    }) {
                        Ok(o) => o,
                        Err(e) => {
                            ctx.links.refuse_batch(peer, "invalid", &e.to_string());
                            send_error(writer, ErrorCode::Invalid, &e.to_string()).await;
                            return Err(e.into());
                        }
                    };
                    sm.on_sender_clock(b.hlc_now >> 16, ctx.store.wall_ms());
                    match sm.on_batch(b.first, b.last, b.attempt, b.head) {
                        Verdict::Reply(ack) => {
                            if ack.gap { gaps.inc() } else { repeats.inc() };
                            writer.send(&Frame::Ack(ack)).await?;
                        }
                        Verdict::Apply { from } => {
                            entries.extend(opened.entries.into_iter().filter(|e| e.seq >= from));
                            quarantined.extend(opened.quarantined.into_iter().filter(|q| q.seq >= from));
                            accepted = Some((b.last, b.attempt));
                        }
                    }
                }
                let Some((last, attempt)) = accepted else {
                    continue;
                };
                crate::quarantine::set_aside(ctx, peer, quarantined).await?;
                let newest = entries.last().map(|e| e.version.ts.physical_ms());
                // Each origin's changes arrive in its sequence order, which is
                // also its timestamp order: once applied, all its writes up to
                // the newest of them are here (the sender's own, and on a star's
                // spoke the ones the hub forwards).
                let mut stable_by_origin: std::collections::BTreeMap<String, u64> =
                    std::collections::BTreeMap::new();
                for e in &entries {
                    let v = stable_by_origin.entry(e.gtid.origin.clone()).or_insert(0);
                    *v = (*v).max(e.version.ts.0);
                }
                let commits: Vec<u64> =
                    entries.iter().map(|e| e.version.ts.physical_ms()).collect();
                let mut replicas_added = Vec::new();
                let received_ms = ctx.clock.now_ms();
                let mut durable_at = None;
                let report = if entries.is_empty() {
                    AckReport::default()
                } else {
                    applies.inc();
                    match ctx.store.apply_remote(entries).await {
                        Ok(r) => {
                            replicas_added = r.replicas_added;
                            durable_at = r.durable_at;
                            AckReport {
                                applied: r.applied,
                                duplicates: r.duplicates,
                                stale: r.stale,
                                own: r.own,
                                missing_table: r.missing_table,
                                conflicts: r.conflicts.values().sum(),
                            }
                        }
                        Err(e @ StoreError::ClockAhead { .. }) => {
                            // Nothing of the batch was applied; the sender backs off and
                            // sends it again, by when the version may be within the offset.
                            ctx.links.refuse_batch(peer, "clock", &e.to_string());
                            // The sender's clock offset, seen in this batch's header.
                            ctx.links.update_inbound(peer, Some(&sm.status()), paused);
                            send_error(writer, ErrorCode::Refused, &e.to_string()).await;
                            return Err(e.into());
                        }
                        Err(e) => {
                            send_error(writer, ErrorCode::Unavailable, "store unavailable").await;
                            return Err(e.into());
                        }
                    }
                };
                ctx.links.clear_refusal(peer);
                // Wall-clock time of the fsync: now, less how long this task took to run
                // again after it (a wake-up on a busy machine, not part of the lag).
                let since = durable_at.map_or(0, |t| t.elapsed().as_millis() as u64);
                record_lag(ctx, peer, &commits, received_ms, ctx.clock.now_ms().saturating_sub(since));
                for (origin, ts) in &stable_by_origin {
                    match &links {
                        Some(l) if origin == peer => {
                            l.stable_ts.fetch_max(*ts, Ordering::AcqRel);
                        }
                        _ => ctx.links.raise_origin_stable(origin, *ts),
                    }
                }
                applied.inc_by(report.applied);
                dups.inc_by(report.duplicates);
                stale.inc_by(report.stale);
                if report.missing_table > 0 {
                    tracing::warn!(peer = %peer, count = report.missing_table, "changes for tables this region does not have were skipped");
                }
                let ack = sm.on_applied(last, attempt, report, newest, ctx.clock.now_ms());
                writer.send(&Frame::Ack(ack)).await?;
                if !replicas_added.is_empty() {
                    // Their earlier items never came here: reconnect and
                    // take a snapshot from this peer.
                    tracing::info!(peer = %peer, tables = ?replicas_added, "became a replica of existing tables; asking for a snapshot");
                    if let Ok(mut s) = ctx.links.snapshots.lock() {
                        s.wanted_from.insert(peer.to_owned());
                    }
                    return Err(LinkError::Closed("reconnecting for a snapshot"));
                }
            }
            Frame::Heartbeat(hb) => {
                sm.on_heartbeat(&hb, ctx.clock.now_ms());
                // Caught up with the sender's stream as of `head`: every write of the
                // sender's older than `stable_ts` is applied here.
                if hb.stable_ts > 0
                    && sm.status().acked >= hb.head
                    && let Some(l) = &links
                {
                    l.stable_ts.fetch_max(hb.stable_ts, Ordering::AcqRel);
                }
                // A hub also vouches for the spokes this region hears through it.
                if sm.status().acked >= hb.head {
                    for (origin, ts) in &hb.origins {
                        if origin != me && origin != peer {
                            ctx.links.raise_origin_stable(origin, *ts);
                        }
                    }
                }
                // the clock offset between the two regions' clocks, skew included
                sm.on_sender_clock(hb.hlc_now >> 16, ctx.store.wall_ms());
            }
            Frame::Error(e) => {
                if e.code == ErrorCode::LogPurged {
                    log_purged(ctx, peer, &e.message)?;
                }
                return Err(LinkError::Peer(e.code, e.message));
            }
            other => {
                let msg = format!("unexpected frame {}", frame_name(&other));
                send_error(writer, ErrorCode::Invalid, &msg).await;
                return Err(LinkError::Closed("protocol violation"));
            }
        }
    } }
    .await;
    // mark the link down, unless a newer connection from the same peer already took over
    if let Some(l) = &links
        && l.inbound_generation.load(Ordering::Acquire) == current
    {
        let paused = l.control.borrow().paused;
        ctx.links.update_inbound(peer, None, paused);
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
