//! The sync-out driver of one link `me → peer`: connects, authenticates, then moves bytes for
//! the [`Outbound`] state machine — reads the change log when it asks, sends the batches it
//! cuts, feeds it acks, persists the checkpoints it hands out — and reconnects with backoff
//! when the connection ends.

use crate::Ctx;
use crate::backoff::{Backoff, OsJitter};
use crate::config::PeerConfig;
use crate::conn::{self, FrameReader, FrameWriter, LinkError, send_error};
use crate::outbound::Outbound;
use crate::protocol::auth::{self, Side, Transcript};
use crate::protocol::batch::{self, BatchHeader};
use crate::protocol::{Auth, ErrorCode, Frame, Heartbeat, Hello, ProtocolError, Start, Welcome};
use crate::status::{Control, PeerLabel};
use meridian_core::Timestamp;
use meridian_storage::LogRead;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A read of the change log that starts fewer than this many entries behind the head is done on
/// the link's own task, and takes at most this many (the store's head may have moved on since
/// the link last saw it); a longer one (a backlog, after a partition or a restart) goes to the
/// blocking pool. A tailing read is a few just-committed entries, mostly still in the memtable,
/// and the round trip through the pool would be two thread wake-ups per batch on the path of
/// every change (measured with `meridian bench lag` in `docs/benchmarks.md`).
const INLINE_READ_ENTRIES: u64 = 512;

/// One outbound link across its connections: the state machine, the operator's controls,
/// the checkpoint writer and the reconnect backoff.
struct Link {
    peer: PeerConfig,
    sm: Outbound,
    control: watch::Receiver<Control>,
    /// Checkpoints to persist, to the helper task; and its answers `(sequence, ok)`.
    persist_tx: mpsc::UnboundedSender<u64>,
    persisted_rx: mpsc::UnboundedReceiver<(u64, bool)>,
    backoff: Backoff<OsJitter>,
}

/// Hands the checkpoint the state machine wants persisted, if any, to the writer task.
fn hand_checkpoint(sm: &mut Outbound, persist_tx: &mpsc::UnboundedSender<u64>) {
    if let Some(seq) = sm.poll_persist() {
        let _ = persist_tx.send(seq);
    }
}

/// Runs the link until shutdown.
pub(crate) async fn run(ctx: Arc<Ctx>, peer: PeerConfig) {
    let me = ctx.config.region.clone();
    let store = ctx.store.clone();
    let name = peer.name.clone();
    let checkpoint = {
        let (s, l) = (store.clone(), name.clone());
        match tokio::task::spawn_blocking(move || s.checkpoint(&l)).await {
            Ok(Ok(c)) => c,
            other => {
                tracing::error!(peer = %name, ?other, "cannot read the link checkpoint; link not started");
                return;
            }
        }
    };
    let sm = Outbound::new(
        &me,
        &peer.name,
        ctx.config.topology.clone(),
        ctx.config.outbound,
        checkpoint,
        ctx.source.head(),
    );
    tracing::info!(peer = %peer.name, endpoint = %peer.endpoint, checkpoint, "sync-out starting");
    let Some(control) = ctx.links.control(&peer.name) else {
        return;
    };
    // Checkpoints are written by a helper task so a slow fsync never holds up acks.
    let (persist_tx, persist_rx) = mpsc::unbounded_channel::<u64>();
    let (done_tx, persisted_rx) = mpsc::unbounded_channel::<(u64, bool)>();
    tokio::spawn(persist_loop(store, name, persist_rx, done_tx));
    let backoff = Backoff::new(
        ctx.config.backoff_initial_ms,
        ctx.config.backoff_max_ms,
        OsJitter,
    );
    let mut link = Link {
        peer,
        sm,
        control,
        persist_tx,
        persisted_rx,
        backoff,
    };
    loop {
        if ctx.shutdown.is_cancelled() {
            return;
        }
        link.sm.set_paused(link.control.borrow().paused);
        let result = connect_and_stream(&ctx, &mut link).await;
        link.sm.on_closed();
        let err = match result {
            Ok(()) => return, // shutdown
            Err(e) => e,
        };
        tracing::warn!(peer = %link.peer.name, error = %err, "sync-out link down");
        ctx.links.update_outbound(
            &link.peer.name,
            &link.sm.status(),
            None,
            ctx.clock.now_ms(),
            Some(err.to_string()),
        );
        // A receiver busy with a snapshot (or waiting for its other peers before taking one)
        // is asked again soon, without growing the backoff.
        let delay = match err {
            LinkError::Peer(ErrorCode::Busy, _) => Duration::from_millis(250),
            _ => Duration::from_millis(link.backoff.next_delay_ms()),
        };
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn persist_loop(
    store: meridian_storage::Store,
    link: String,
    mut rx: mpsc::UnboundedReceiver<u64>,
    done: mpsc::UnboundedSender<(u64, bool)>,
) {
    while let Some(seq) = rx.recv().await {
        let ok = match store.set_checkpoint(&link, seq).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(peer = %link, error = %e, "persisting the link checkpoint failed");
                false
            }
        };
        if done.send((seq, ok)).is_err() {
            return;
        }
    }
}

/// The sender's handshake: Hello → Challenge (check the receiver's proof) → Auth → Welcome.
async fn handshake(
    me: &str,
    peer: &PeerConfig,
    resume_from: u64,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> Result<Welcome, LinkError> {
    let client_nonce: [u8; 32] = rand::random();
    writer
        .send(&Frame::Hello(Hello {
            from: me.to_owned(),
            to: peer.name.clone(),
            nonce: client_nonce,
        }))
        .await?;
    let challenge = match reader.next_within(HANDSHAKE_TIMEOUT).await? {
        Frame::Challenge(c) => c,
        Frame::Error(e) => return Err(LinkError::Peer(e.code, e.message)),
        _ => return Err(LinkError::Auth("expected a challenge".into())),
    };
    if challenge.region != peer.name {
        return Err(LinkError::Auth(format!(
            "endpoint answered as region {:?}, expected {:?}",
            challenge.region, peer.name
        )));
    }
    let t = Transcript {
        from: me,
        to: &peer.name,
        client_nonce: &client_nonce,
        server_nonce: &challenge.nonce,
    };
    if !auth::verify(peer.secret.as_bytes(), Side::Server, &t, &challenge.proof) {
        // tell the receiver, so both ends log and count the refusal
        send_error(
            writer,
            ErrorCode::Unauthorized,
            "your proof of the secret is wrong",
        )
        .await;
        return Err(LinkError::Auth(
            "the peer failed to prove the shared secret".into(),
        ));
    }
    writer
        .send(&Frame::Auth(Auth {
            proof: auth::proof(peer.secret.as_bytes(), Side::Client, &t),
            resume_from,
        }))
        .await?;
    match reader.next_within(HANDSHAKE_TIMEOUT).await? {
        Frame::Welcome(w) => Ok(w),
        Frame::Error(e) => Err(LinkError::Peer(e.code, e.message)),
        _ => Err(LinkError::Auth("expected welcome".into())),
    }
}

/// The fault hooks as the operator set them on this connection, and the batch the reorder
/// hook holds back.
struct Hooks {
    faults: Control,
    held: Option<Frame>,
    byzantine_turn: u64,
}

impl Hooks {
    fn delay(&self) -> Duration {
        Duration::from_millis(self.faults.delay_ms)
    }

    /// The batch frame for `entries`: honest, or forged while the Byzantine hook is on.
    fn batch(
        &mut self,
        ctx: &Ctx,
        peer: &str,
        header: BatchHeader,
        entries: &[meridian_storage::RawChange],
    ) -> Result<Frame, LinkError> {
        if self.faults.byzantine && !entries.is_empty() {
            self.byzantine_turn += 1;
            let other = ctx
                .config
                .peers
                .iter()
                .map(|p| p.name.as_str())
                .find(|n| *n != peer)
                .unwrap_or("forged");
            let forged = crate::byzantine::forge(header, entries, other, self.byzantine_turn)?;
            return Ok(Frame::Batch(forged));
        }
        let records = entries.iter().map(|e| (e.seq(), e.record()));
        Ok(Frame::Batch(batch::build_records(header, records)?))
    }

    /// Sends a batch frame (after the delay hook's delay; twice under the duplicate hook),
    /// or holds it back under the reorder hook to send it after the next one.
    async fn send(&mut self, writer: &mut FrameWriter, frame: Frame) -> Result<(), LinkError> {
        if self.faults.reorder && self.held.is_none() {
            self.held = Some(frame);
            return Ok(());
        }
        self.send_now(writer, &frame).await?;
        self.release(writer).await
    }

    /// Sends the held-back batch, if any.
    async fn release(&mut self, writer: &mut FrameWriter) -> Result<(), LinkError> {
        match self.held.take() {
            Some(earlier) => self.send_now(writer, &earlier).await,
            None => Ok(()),
        }
    }

    async fn send_now(&self, writer: &mut FrameWriter, frame: &Frame) -> Result<(), LinkError> {
        writer.send_delayed(frame, self.delay()).await?;
        if self.faults.duplicate {
            writer.send_delayed(frame, self.delay()).await?;
        }
        Ok(())
    }
}

/// One connection of the link: connect, authenticate, agree where the stream starts, then
/// stream until the connection ends (`Ok` only at shutdown).
async fn connect_and_stream(ctx: &Ctx, link: &mut Link) -> Result<(), LinkError> {
    let me = ctx.config.region.as_str();
    let peer = link.peer.clone();
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&peer.endpoint),
    )
    .await
    .map_err(|_| LinkError::Timeout("connecting"))??;
    let (mut reader, mut writer) = match &ctx.tls {
        Some(tls) => {
            let _ = stream.set_nodelay(true);
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(stream, &peer.name))
                .await
                .map_err(|_| LinkError::Timeout("TLS handshake"))??;
            conn::split_tls(tls)
        }
        None => conn::split(stream),
    };
    let resume_from = link.sm.resume_from();
    let welcome = match handshake(me, &peer, resume_from, &mut reader, &mut writer).await {
        Ok(w) => w,
        Err(e) => {
            writer.finish(Duration::from_millis(200)).await; // deliver our error frame, if any
            return Err(e);
        }
    };
    // Where the receiver wants the stream to start: after what it already holds, or after a
    // snapshot of everything.
    let skip_to = match welcome.start {
        Start::After(n) => n,
        Start::Snapshot => crate::snapshot::send(ctx, &peer.name, &mut reader, &mut writer).await?,
    };
    ctx.holds_ours.send_modify(|h| {
        h.insert(peer.name.clone(), skip_to);
    });
    let head = link.sm.status().head.max(ctx.source.head());
    if skip_to > head && ctx.store.recovery().is_none() {
        // This region lost changes it had shipped (a restored backup, a lost disk write): its
        // next sequences are ones the peer holds, and it would drop them as repeats.
        let why = format!(
            "{} holds our changes through {skip_to}, beyond our head {head}",
            peer.name
        );
        ctx.store.begin_recovery(&why)?;
        ctx.recovery_started.notify_one();
    }
    link.sm.skip_to(skip_to);
    hand_checkpoint(&mut link.sm, &link.persist_tx);
    // What this link could have shipped and no longer can: only our own changes, unless we
    // are a star's hub (it forwards everyone's).
    let hub =
        matches!(&ctx.config.topology, crate::Topology::Star { hub } if *hub == ctx.config.region);
    let purged = ctx.source.purged_through(!hub)?;
    if link.sm.resume_from() <= purged {
        let why = format!(
            "changes from {} on were purged here (through {purged}); take a snapshot",
            link.sm.resume_from()
        );
        send_error(&mut writer, ErrorCode::LogPurged, &why).await;
        writer.finish(Duration::from_millis(200)).await;
        return Err(LinkError::Peer(ErrorCode::LogPurged, why));
    }
    link.backoff.reset();
    link.sm.on_open(welcome.window, ctx.clock.now_ms());
    ctx.links.connected(&peer.name, "out");
    tracing::info!(peer = %peer.name, resume_from = link.sm.resume_from(), "sync-out connected");
    tail(ctx, link, reader, writer).await
}

/// Moves the stream of an open connection until it ends.
async fn tail(
    ctx: &Ctx,
    link: &mut Link,
    mut reader: FrameReader,
    mut writer: FrameWriter,
) -> Result<(), LinkError> {
    let peer = link.peer.name.clone();
    let sm = &mut link.sm;
    let mut head_rx = ctx.source.subscribe_head();
    sm.on_head(*head_rx.borrow_and_update());
    // The controls as of now, marked seen: a pause or resume since the state machine last
    // looked (while connecting) applies here, or it would be lost until the next change.
    let controls = *link.control.borrow_and_update();
    sm.set_paused(controls.paused);
    let drops_seen = controls.drops;
    let mut hooks = Hooks {
        faults: controls,
        held: None,
        byzantine_turn: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(ctx.config.heartbeat_ms.max(10)));
    let idle = Duration::from_millis(ctx.config.idle_timeout_ms);
    let mut last_heard = tokio::time::Instant::now();
    let shipped = ctx
        .links
        .metrics
        .shipped
        .get_or_create(&PeerLabel { peer: peer.clone() })
        .clone();
    let ships: Arc<dyn Fn(&str) -> bool + Send + Sync> = Arc::new(ships_to(ctx, &peer));
    loop {
        // Send whatever the state machine allows before waiting again.
        while let Some(req) = sm.poll_read() {
            let entries = if sm.status().head.saturating_sub(req.from) < INLINE_READ_ENTRIES {
                // tailing: a few just-committed entries, read where we are
                let limit = req.max_entries.min(INLINE_READ_ENTRIES as usize);
                ctx.source.read(req.from, limit, ships.as_ref())?
            } else {
                let (source, ships) = (ctx.source.clone(), ships.clone());
                tokio::task::spawn_blocking(move || {
                    source.read(req.from, req.max_entries, ships.as_ref())
                })
                .await
                .map_err(|_| LinkError::Closed("reader task failed"))??
            };
            let Some(cut) = sm.on_read(req.from, entries, ctx.clock.now_ms()) else {
                break;
            };
            let header = BatchHeader {
                first: cut.first,
                last: cut.last,
                attempt: cut.attempt,
                head: sm.status().head,
                hlc_now: Timestamp::new(ctx.store.wall_ms(), 0).0,
            };
            let entries: Vec<_> = cut
                .entries
                .into_iter()
                .filter_map(LogRead::into_entry)
                .collect();
            let frame = hooks.batch(ctx, &peer, header, &entries)?;
            shipped.inc_by(entries.len() as u64);
            hooks.send(&mut writer, frame).await?;
        }
        if writer.is_closed() {
            return Err(LinkError::Closed("socket write failed"));
        }
        tokio::select! {
            () = ctx.shutdown.cancelled() => {
                writer.finish(Duration::from_millis(200)).await;
                return Ok(());
            }
            frame = reader.next() => {
                last_heard = tokio::time::Instant::now();
                match frame? {
                    Frame::Ack(ack) => {
                        sm.on_ack(&ack, ctx.clock.now_ms())?;
                        hand_checkpoint(sm, &link.persist_tx);
                    }
                    Frame::Credit(w) => sm.on_credit(w),
                    Frame::Heartbeat(_) => {}
                    Frame::Error(e) => return Err(LinkError::Peer(e.code, e.message)),
                    other => {
                        let msg = format!("unexpected frame {}", other.name());
                        send_error(&mut writer, ErrorCode::Invalid, &msg).await;
                        return Err(LinkError::Protocol(ProtocolError::Invalid(msg)));
                    }
                }
            }
            changed = head_rx.changed() => {
                if changed.is_err() {
                    return Err(LinkError::Closed("store stopped"));
                }
                sm.on_head(*head_rx.borrow_and_update());
            }
            changed = link.control.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let c = *link.control.borrow_and_update();
                sm.set_paused(c.paused);
                hooks.faults = c;
                if c.drops != drops_seen {
                    writer.finish(Duration::from_millis(50)).await;
                    return Err(LinkError::Closed("dropped by operator"));
                }
            }
            Some((seq, ok)) = link.persisted_rx.recv() => {
                sm.on_persisted(seq, ok);
                hand_checkpoint(sm, &link.persist_tx);
            }
            _ = tick.tick() => {
                hooks.release(&mut writer).await?;
                let now = ctx.clock.now_ms();
                if sm.stalled(now) {
                    return Err(LinkError::Timeout("no ack within the ack timeout"));
                }
                if last_heard.elapsed() > idle {
                    return Err(LinkError::Timeout("peer silent"));
                }
                let pending = pending_since(ctx, sm).await;
                // A hub vouches for the other spokes: read what it has applied of each before
                // the mark, so everything vouched for is at or below the mark's head.
                let origins = hub_origins(ctx, &peer);
                let (head, stable_ts) = ctx.source.stable_mark();
                let hb = Heartbeat {
                    head: head.max(sm.status().head),
                    hlc_now: Timestamp::new(ctx.store.wall_ms(), 0).0,
                    pending_since_ms: pending.unwrap_or(0),
                    // only a consistent pair: the mark's head may trail the watched head
                    stable_ts: if head >= sm.status().head { stable_ts } else { 0 },
                    origins: if head >= sm.status().head { origins } else { Vec::new() },
                };
                writer.send_delayed(&Frame::Heartbeat(hb), hooks.delay()).await?;
                ctx.links.update_outbound(&peer, &sm.status(), pending, now, None);
            }
        }
    }
}

/// For a star's hub sending to spoke `to`: every other spoke with the timestamp up to which all
/// its writes are applied here (0: unknown). Empty for everyone else.
fn hub_origins(ctx: &Ctx, to: &str) -> Vec<(String, u64)> {
    let me = &ctx.config.region;
    if !matches!(&ctx.config.topology, crate::Topology::Star { hub } if hub == me) {
        return Vec::new();
    }
    ctx.links
        .peers
        .iter()
        .filter(|(name, _)| name.as_str() != to)
        .map(|(name, l)| {
            (
                name.clone(),
                l.stable_ts.load(std::sync::atomic::Ordering::Acquire),
            )
        })
        .collect()
}

/// Whether the link to `peer` carries changes of a given origin (for reading the log).
fn ships_to(ctx: &Ctx, peer: &str) -> impl Fn(&str) -> bool + Send + Sync + 'static {
    let topology = ctx.config.topology.clone();
    let (me, peer) = (ctx.config.region.clone(), peer.to_owned());
    move |origin: &str| topology.ships(&me, &peer, origin)
}

/// Commit time of the oldest change this link still owes the peer: the oldest in flight, or
/// else the first shippable entry after the acked position (looked up in the log).
async fn pending_since(ctx: &Ctx, sm: &Outbound) -> Option<u64> {
    if let Some(ms) = sm.oldest_inflight_commit_ms() {
        return Some(ms);
    }
    let s = sm.status();
    if s.acked >= s.head {
        return None;
    }
    let source = ctx.source.clone();
    let ships = ships_to(ctx, sm.peer());
    let from = s.acked + 1;
    tokio::task::spawn_blocking(move || {
        let entries = source.read(from, 1024, &ships).ok()?;
        entries
            .into_iter()
            .find_map(LogRead::into_entry)
            .map(|e| e.commit_ms())
    })
    .await
    .ok()
    .flatten()
}
