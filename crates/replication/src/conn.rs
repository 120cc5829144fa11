//! Bytes on a TCP connection: length-delimited frames (4-byte big-endian length, at most
//! [`MAX_FRAME_BYTES`]) carrying [`Frame`]s, a reader half and a writer task that can hold
//! frames back to emulate one-way delay.

use crate::protocol::{self, Frame, MAX_FRAME_BYTES};
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The receiving half of a connection: a TCP socket's, or a TLS stream's.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The sending half.
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Socket error or the peer closed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not a valid frame.
    #[error(transparent)]
    Protocol(#[from] protocol::ProtocolError),
    /// The peer said why it gave up.
    #[error("peer refused: {0:?}: {1}")]
    Peer(protocol::ErrorCode, String),
    /// Authentication failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Nothing arrived for too long.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The local store failed.
    #[error("store: {0}")]
    Store(#[from] meridian_storage::StoreError),
    /// Closed on purpose (operator drop, shutdown, superseded).
    #[error("closed: {0}")]
    Closed(&'static str),
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// The receiving half of a link connection.
pub struct FrameReader {
    inner: FramedRead<ReadHalf, LengthDelimitedCodec>,
}

impl FrameReader {
    /// Caps the frames this reader accepts at `max_bytes` (at most [`MAX_FRAME_BYTES`]): a
    /// connection that has not authenticated yet may send only small ones.
    pub fn set_max_frame(&mut self, max_bytes: usize) {
        self.inner
            .decoder_mut()
            .set_max_frame_length(max_bytes.min(MAX_FRAME_BYTES));
    }

    /// The next frame; `Closed` at end of stream.
    pub async fn next(&mut self) -> Result<Frame, LinkError> {
        match self.inner.next().await {
            Some(Ok(bytes)) => Ok(protocol::decode(&bytes)?),
            Some(Err(e)) => Err(LinkError::Io(e)),
            None => Err(LinkError::Closed("peer closed the connection")),
        }
    }

    /// The next frame if one is already received (`None` if reading would wait). Cancel-safe:
    /// a partly received frame stays buffered for the next call.
    pub fn try_next(&mut self) -> Option<Result<Frame, LinkError>> {
        self.next().now_or_never()
    }

    /// The next frame within `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Result<Frame, LinkError> {
        tokio::time::timeout(timeout, self.next())
            .await
            .map_err(|_| LinkError::Timeout("waiting for a frame"))?
    }
}

/// The sending half: frames go through a writer task, in order, each released no earlier than
/// its due time (for the delay fault hook).
pub struct FrameWriter {
    tx: mpsc::Sender<(Instant, Bytes)>,
    task: tokio::task::JoinHandle<()>,
    last_due: Instant,
}

impl FrameWriter {
    /// Queues a frame to be written after `delay` (never before frames queued earlier).
    pub async fn send_delayed(&mut self, frame: &Frame, delay: Duration) -> Result<(), LinkError> {
        let bytes = Bytes::from(protocol::encode(frame)?);
        let due = (Instant::now() + delay).max(self.last_due);
        self.last_due = due;
        self.tx
            .send((due, bytes))
            .await
            .map_err(|_| LinkError::Closed("writer stopped"))
    }

    /// Queues a frame to be written now (after anything queued before it).
    pub async fn send(&mut self, frame: &Frame) -> Result<(), LinkError> {
        self.send_delayed(frame, Duration::ZERO).await
    }

    /// Flushes what is queued (waiting at most `within`), then closes the socket.
    pub async fn finish(mut self, within: Duration) {
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        let _ = tokio::time::timeout(within, &mut self.task).await;
    }

    /// Whether the writer task died (socket error).
    pub fn is_closed(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for FrameWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn write_loop(
    mut sink: FramedWrite<WriteHalf, LengthDelimitedCodec>,
    mut rx: mpsc::Receiver<(Instant, Bytes)>,
) {
    // Frames already due are fed without flushing; the sink is flushed whenever the queue runs
    // dry or the next frame must wait (delay hook), so nothing sits unflushed while we sleep.
    let mut next: Option<(Instant, Bytes)> = None;
    loop {
        let (due, bytes) = match next.take() {
            Some(f) => f,
            None => match rx.recv().await {
                Some(f) => f,
                None => return,
            },
        };
        if due > Instant::now() {
            if SinkExt::<Bytes>::flush(&mut sink).await.is_err() {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
        if sink.feed(bytes).await.is_err() {
            return;
        }
        match rx.try_recv() {
            Ok(f) => next = Some(f),
            Err(_) => {
                if SinkExt::<Bytes>::flush(&mut sink).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Splits a connected socket into a frame reader and a frame writer task.
pub fn split(stream: TcpStream) -> (FrameReader, FrameWriter) {
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    framed(Box::new(r), Box::new(w))
}

/// [`split`] for a TLS stream (its socket already set up).
pub fn split_tls<S>(stream: S) -> (FrameReader, FrameWriter)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(stream);
    framed(Box::new(r), Box::new(w))
}

fn framed(r: ReadHalf, w: WriteHalf) -> (FrameReader, FrameWriter) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(write_loop(FramedWrite::new(w, codec()), rx));
    (
        FrameReader {
            inner: FramedRead::new(r, codec()),
        },
        FrameWriter {
            tx,
            task,
            last_due: Instant::now(),
        },
    )
}

/// Tells the peer why this side gives up on the connection (best effort).
pub(crate) async fn send_error(
    writer: &mut FrameWriter,
    code: crate::protocol::ErrorCode,
    message: &str,
) {
    let _ = writer
        .send(&Frame::Error(crate::protocol::ErrorFrame {
            code,
            message: message.to_owned(),
        }))
        .await;
}
