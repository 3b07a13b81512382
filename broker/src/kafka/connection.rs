//! One client connection: size-prefixed frames in, responses out, in order.
//!
//! Containment of bad input happens here. The 4-byte size prefix is checked against
//! `max_frame_bytes` before anything else, and the frame is read into a buffer that grows with
//! the bytes that actually arrive, so a client that announces a large frame and sends little
//! holds little. Requests are handled one at a time per connection, in order (as Kafka brokers
//! do), and answered in order; the one overlap is that a produce request's fsync runs while the
//! next requests are read and appended, at most [`MAX_UNANSWERED`] of them, so a client that
//! floods requests without reading responses is stopped by TCP backpressure. A silent connection
//! is closed after `idle_timeout`. Anything that cannot be decoded closes that connection, once
//! the answers before it are written, with a logged reason and touches nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::dispatch::{DispatchError, Outcome, dispatch};
use super::server::Context;

/// The smallest request: api key, api version, correlation id.
const MIN_FRAME_BYTES: usize = 8;
/// Initial buffer for a frame; it grows as bytes arrive.
const INITIAL_FRAME_CAPACITY: usize = 64 * 1024;
/// Requests handled but not yet answered (their fsync pending) before reading stops.
const MAX_UNANSWERED: usize = 8;

/// Why a connection was closed by the server.
#[derive(thiserror::Error, Debug)]
pub(super) enum ConnectionError {
    #[error("frame of {size} bytes is outside 8..={max}")]
    FrameSize { size: i64, max: usize },
    #[error("no request for {0:?}")]
    Idle(std::time::Duration),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error("socket error")]
    Io(#[from] std::io::Error),
}

/// Who is on the other end, for group descriptions and logs.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) addr: SocketAddr,
}

pub(super) async fn serve_connection(
    context: Arc<Context>,
    stream: TcpStream,
    addr: SocketAddr,
    cancel: CancellationToken,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%addr, %error, "set_nodelay failed");
    }
    let peer = Peer { addr };
    tracing::debug!(%addr, "Kafka client connected");
    let result = tokio::select! {
        () = cancel.cancelled() => Ok(()),
        result = run(&context, stream, &peer) => result,
    };
    match result {
        Ok(()) => tracing::debug!(%addr, "Kafka client disconnected"),
        Err(ConnectionError::Io(error)) => tracing::debug!(%addr, %error, "Kafka connection failed"),
        Err(error) => {
            tracing::warn!(%addr, error = %error, source = ?std::error::Error::source(&error), "closing Kafka connection")
        }
    }
}

async fn run(context: &Context, stream: TcpStream, peer: &Peer) -> Result<(), ConnectionError> {
    let (reader, writer) = stream.into_split();
    let (sender, receiver) = mpsc::channel(MAX_UNANSWERED);
    let (read, written) = tokio::join!(read_requests(context, reader, peer, sender), write_answers(writer, receiver));
    // The reader's error comes first: the writer ends once the reader has stopped (it drops the
    // sender), after writing what was handled before.
    read.and(written)
}

/// Reads and handles requests in order, passing each outcome to the writer.
async fn read_requests(
    context: &Context,
    reader: OwnedReadHalf,
    peer: &Peer,
    answers: mpsc::Sender<Outcome>,
) -> Result<(), ConnectionError> {
    let mut reader = BufReader::new(reader);
    let max = context.config.max_frame_bytes;
    let idle = context.config.idle_timeout;
    loop {
        let size = match tokio::time::timeout(idle, reader.read_i32()).await {
            Err(_elapsed) => return Err(ConnectionError::Idle(idle)),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(result) => result?,
        };
        if size < MIN_FRAME_BYTES as i32 || size as usize > max {
            return Err(ConnectionError::FrameSize { size: i64::from(size), max });
        }
        let size = size as usize;
        let mut frame = Vec::with_capacity(size.min(INITIAL_FRAME_CAPACITY));
        let read = (&mut reader).take(size as u64).read_to_end(&mut frame).await?;
        if read != size {
            return Ok(());
        }
        let outcome = dispatch(context, Bytes::from(frame), peer).await?;
        if answers.send(outcome).await.is_err() {
            // The writer stopped: its error is the connection's.
            return Ok(());
        }
    }
}

/// Writes the answers in the order the requests came, each once it is durable.
async fn write_answers(
    mut writer: OwnedWriteHalf,
    mut outcomes: mpsc::Receiver<Outcome>,
) -> Result<(), ConnectionError> {
    while let Some(outcome) = outcomes.recv().await {
        let frame = if outcome.syncs() {
            // On the blocking pool: the reader goes on appending the next requests meanwhile.
            tokio::task::spawn_blocking(move || outcome.finish())
                .await
                .map_err(|error| ConnectionError::Io(std::io::Error::other(error)))??
        } else {
            outcome.finish()?
        };
        if let Some(frame) = frame {
            write_frame(&mut writer, frame).await?;
        }
    }
    Ok(())
}

async fn write_frame(writer: &mut OwnedWriteHalf, body: BytesMut) -> Result<(), std::io::Error> {
    let size = body.len() as u32;
    writer.write_all(&size.to_be_bytes()).await?;
    writer.write_all(&body).await?;
    Ok(())
}
