//! The sync-in side: one listener per region; each accepted connection is authenticated
//! (challenge–response), checked against the topology, then driven by an [`Inbound`] state
//! machine — every batch is validated, applied in one durable commit (`Store::apply_remote`),
//! and only then acknowledged.

use crate::Ctx;
use crate::conn::{self, FrameReader, FrameWriter, LinkError, now_ms};
use crate::inbound::{Inbound, Verdict};
use crate::protocol::auth::{self, Side, Transcript};
use crate::protocol::batch::{self, check_region_name};
use crate::protocol::{AckReport, Challenge, ErrorCode, Frame, Heartbeat, Window};
use crate::status::PeerLabel;
use crate::sync_out::{frame_name, send_error};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until shutdown.
pub(crate) async fn listen(ctx: Arc<Ctx>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let (mut reader, mut writer) = conn::split(stream);
                    match serve(&ctx, &mut reader, &mut writer).await {
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

/// The receiver's handshake; returns the authenticated peer and the stream's start.
async fn handshake(
    ctx: &Ctx,
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
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<(), (String, LinkError)> {
    let (peer, resume_from) = handshake(ctx, reader, writer).await?;
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
    writer.send(&Frame::Welcome(window_for(paused))).await?;
    ctx.links.connected(peer, "in");
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
    let mut tick = tokio::time::interval(Duration::from_millis(ctx.config.heartbeat_ms.max(10)));
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let mut last_heard = tokio::time::Instant::now();
    let result = async { loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return Ok(()),
            frame = reader.next() => {
                last_heard = tokio::time::Instant::now();
                match frame? {
                    Frame::Batch(b) => {
                        let entries = match batch::open(&b, me) {
                            Ok(e) => e,
                            Err(e) => {
                                tracing::error!(peer = %peer, error = %e, "invalid batch refused");
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
                                let entries: Vec<_> =
                                    entries.into_iter().filter(|e| e.seq >= from).collect();
                                let newest = entries.last().map(|e| e.version.ts.physical_ms());
                                let commits: Vec<u64> =
                                    entries.iter().map(|e| e.version.ts.physical_ms()).collect();
                                let report = if entries.is_empty() {
                                    AckReport::default()
                                } else {
                                    match ctx.store.apply_remote(entries).await {
                                        Ok(r) => AckReport {
                                            applied: r.applied,
                                            duplicates: r.duplicates,
                                            stale: r.stale,
                                            own: r.own,
                                            missing_table: r.missing_table,
                                            conflicts: r.conflicts.values().sum(),
                                        },
                                        Err(e) => {
                                            send_error(writer, ErrorCode::Unavailable, "store unavailable").await;
                                            return Err(e.into());
                                        }
                                    }
                                };
                                record_apply_lag(ctx, peer, &commits, now_ms());
                                applied.inc_by(report.applied);
                                dups.inc_by(report.duplicates);
                                stale.inc_by(report.stale);
                                if report.missing_table > 0 {
                                    tracing::warn!(peer = %peer, count = report.missing_table, "changes for tables this region does not have were skipped");
                                }
                                let ack = sm.on_applied(b.last, b.attempt, report, newest, now_ms());
                                writer.send(&Frame::Ack(ack)).await?;
                            }
                        }
                    }
                    Frame::Heartbeat(hb) => {
                        sm.on_heartbeat(&hb, now_ms());
                        // the clock offset between the two regions' clocks, skew included
                        sm.on_sender_clock(hb.hlc_now >> 16, ctx.store.wall_ms());
                    }
                    Frame::Error(e) => return Err(LinkError::Peer(e.code, e.message)),
                    other => {
                        let msg = format!("unexpected frame {}", frame_name(&other));
                        send_error(writer, ErrorCode::Invalid, &msg).await;
                        return Err(LinkError::Closed("protocol violation"));
                    }
                }
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
                })).await?;
                ctx.links.update_inbound(peer, Some(&s), paused);
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

/// Records the lag of every entry of a batch that just became durable here.
fn record_apply_lag(ctx: &Ctx, peer: &str, commits_ms: &[u64], now_ms: u64) {
    let Some(links) = ctx.links.peers.get(peer) else {
        return;
    };
    if let Ok(mut h) = links.apply_lag.lock() {
        for c in commits_ms {
            h.record(now_ms.saturating_sub(*c));
        }
    }
}
