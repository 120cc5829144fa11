//! The UDP listeners. hickory's own UDP loop spawns a task per datagram, passes every response
//! through a channel to a sender task and logs each query; profiling showed that to cost more
//! than the answer itself (see docs/benchmarks.md, "Traffic plane"). Here each socket has one
//! thread that receives a batch of datagrams, answers each in place with [`Handler::respond`]
//! and sends the answers back in one call, reusing its buffers. Several sockets share one address with `SO_REUSEPORT`, so
//! the kernel spreads clients over them and the threads answer in parallel.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use meridian_health::HealthSnapshot;
use meridian_routing::SplitMix64;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use socket2::{Domain, Socket, Type};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::handler::{Handler, format_error};

/// How often an idle loop checks whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Most datagrams moved by one `recvmmsg` / `sendmmsg`.
const BATCH: usize = 32;

/// Largest datagram read; longer ones are truncated by the kernel and then fail to decode.
const MAX_DATAGRAM: usize = 4096;

/// Binds `count` UDP sockets to `addr` with `SO_REUSEPORT` (the first one resolves port 0)
/// and a receive buffer of `recv_buffer_bytes`, so bursts queue instead of being dropped.
pub(crate) fn bind(
    addr: SocketAddr,
    count: usize,
    recv_buffer_bytes: usize,
) -> io::Result<Vec<UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_port(true)?;
        if recv_buffer_bytes > 0 {
            socket.set_recv_buffer_size(recv_buffer_bytes)?;
        }
        socket.bind(&addr.into())?;
        let socket: UdpSocket = socket.into();
        addr = socket.local_addr()?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Answers queries on `socket` until `stop` is set (checked at least every
/// [`STOP_CHECK`]). Runs on its own thread and moves datagrams in batches: one `recvmmsg`
/// returns every datagram already queued (waiting only for the first), and one `sendmmsg`
/// sends all their answers. Per packet that saves two system calls and, on a busy server, most
/// of the wake-ups, which measured as the bulk of a query's cost. `index` seeds this loop's own
/// random generator (replayable per socket for a given `rng_seed`, no counter shared between
/// threads).
pub(crate) fn serve(
    socket: &UdpSocket,
    index: u64,
    handler: &Handler,
    stop: &AtomicBool,
) -> io::Result<()> {
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let fd = socket.as_raw_fd();
    let mut rng = SplitMix64::new(handler.rng_seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    // Each loop keeps its own snapshot and only re-reads the channel when it changed: no lock
    // shared between loops on the answer path.
    let mut health_rx = handler.health.clone();
    let mut health = health_rx.borrow_and_update().clone();
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut received: Vec<(usize, Option<SocketAddr>)> = Vec::with_capacity(BATCH);
    let mut dests: Vec<Option<SockaddrStorage>> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        received.clear();
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(
                fd,
                &mut recv_headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(msgs) => received.extend(msgs.map(|m| (m.bytes, m.address.and_then(std_addr)))),
                // The read timeout, ICMP port unreachable from an earlier reply, …: not fatal.
                Err(e) if is_transient(&io::Error::from(e)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if health_rx.has_changed().unwrap_or(false) {
            health = health_rx.borrow_and_update().clone();
        }
        dests.clear();
        for (&(len, src), buf) in received.iter().zip(&bufs) {
            // Never answer port 0 (a spoofed or broken source).
            let (Some(src), Some(datagram)) = (src.filter(|s| s.port() != 0), buf.get(..len))
            else {
                continue;
            };
            let Some(out) = outs.get_mut(dests.len()) else {
                break;
            };
            if answer(handler, datagram, src, &health, &mut rng, out) {
                dests.push(Some(SockaddrStorage::from(src)));
            }
        }
        if dests.is_empty() {
            continue;
        }
        let slices: Vec<[IoSlice<'_>; 1]> = outs
            .iter()
            .take(dests.len())
            .map(|o| [IoSlice::new(o)])
            .collect();
        if let Err(e) = sendmmsg(
            fd,
            &mut send_headers,
            &slices,
            &dests,
            [],
            MsgFlags::empty(),
        ) {
            tracing::debug!(error = %e, "sending DNS responses failed");
        }
    }
    Ok(())
}

/// Answers one datagram into `out`; false when nothing is to be sent.
fn answer(
    handler: &Handler,
    datagram: &[u8],
    src: SocketAddr,
    health: &HealthSnapshot,
    rng: &mut SplitMix64,
    out: &mut Vec<u8>,
) -> bool {
    match Request::from_bytes(datagram.to_vec(), src, Protocol::Udp) {
        Ok(request) => {
            if request.metadata.message_type != MessageType::Query {
                return false; // a response: answering it could start a reflection loop
            }
            handler
                .respond(&request, src.ip(), Protocol::Udp, health, rng)
                .encode(&request, Protocol::Udp, out);
        }
        // Shorter than a header: not a DNS message, nothing to answer.
        Err(_) => match Header::read(&mut BinDecoder::new(datagram)) {
            Ok(header) if format_error(&header, out).is_some() => {
                handler
                    .metrics
                    .observe(ResponseCode::FormErr, Protocol::Udp, false);
            }
            _ => return false,
        },
    }
    !out.is_empty()
}

fn std_addr(a: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    ) || e
        .raw_os_error()
        .is_some_and(|c| c == 105 /* ENOBUFS */ || c == 12 /* ENOMEM */)
}
