//! One TCP connection to one broker: requests framed and written in order, answers matched to
//! them in order (a Kafka broker answers a connection's requests in the order they came), many
//! in flight at once.
//!
//! A writer task and a reader task share the socket; the writer hands each request's reply
//! channel to the reader before it writes the frame, so the reader always knows whose answer it
//! reads next. When either side fails, every request in flight gets [`KafkaError::Connection`]
//! and the connection reports itself closed, so the cluster opens a new one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::error::KafkaError;

/// The largest answer accepted (Kafka's `socket.request.max.bytes` is 100 MiB).
const MAX_RESPONSE_BYTES: usize = 100 << 20;
/// Requests queued for the writer before callers wait.
const QUEUE: usize = 64;

type Reply = oneshot::Sender<Result<Bytes, KafkaError>>;

struct Outgoing {
    frame: BytesMut,
    correlation_id: i32,
    response_header_version: i16,
    reply: Reply,
}

/// A connection to one broker, with the API versions both sides speak. Cheap to share.
#[derive(Debug)]
pub(super) struct Connection {
    address: String,
    client_id: StrBytes,
    requests: mpsc::Sender<Outgoing>,
    next_correlation_id: std::sync::atomic::AtomicI32,
    closed: Arc<AtomicBool>,
    versions: HashMap<i16, (i16, i16)>,
    request_timeout: Duration,
}

impl Connection {
    /// Connects and asks the broker which API versions it speaks.
    ///
    /// # Errors
    /// The broker unreachable, or its ApiVersions answer unusable.
    pub(super) async fn open(
        address: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Arc<Self>, KafkaError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_elapsed| KafkaError::connection(address, "connect timed out"))?
            .map_err(|source| KafkaError::io(address, source))?;
        stream.set_nodelay(true).map_err(|source| KafkaError::io(address, source))?;
        let (reader, writer) = stream.into_split();
        let (requests, queue) = mpsc::channel(QUEUE);
        let (in_flight, awaited) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_requests(writer, queue, in_flight, closed.clone()));
        tokio::spawn(read_answers(reader, awaited, closed.clone(), address.to_owned()));
        let mut connection = Self {
            address: address.to_owned(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            requests,
            next_correlation_id: std::sync::atomic::AtomicI32::new(1),
            closed,
            versions: HashMap::new(),
            request_timeout,
        };
        connection.versions = connection.api_versions().await?;
        Ok(Arc::new(connection))
    }

    async fn api_versions(&self) -> Result<HashMap<i16, (i16, i16)>, KafkaError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut answer: ApiVersionsResponse = self.call(&request, 3).await?;
        if answer.error_code == 35 {
            // UNSUPPORTED_VERSION: an older broker answers with its versions at v0.
            answer = self.call(&ApiVersionsRequest::default(), 0).await?;
        }
        if answer.error_code != 0 {
            return Err(KafkaError::broker(ApiKey::ApiVersions, answer.error_code, None));
        }
        Ok(answer.api_keys.iter().map(|key| (key.api_key, (key.min_version, key.max_version))).collect())
    }

    pub(super) fn address(&self) -> &str {
        &self.address
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.requests.is_closed()
    }

    /// The highest version of `api` both sides speak within `ours`, or an error naming the API.
    ///
    /// # Errors
    /// [`KafkaError::Unsupported`] when the ranges do not meet.
    pub(super) fn version(&self, api: ApiKey, ours: (i16, i16)) -> Result<i16, KafkaError> {
        let (min, max) = self.versions.get(&(api as i16)).copied().ok_or(KafkaError::Unsupported {
            api,
            broker: self.address.clone(),
            range: None,
        })?;
        let version = ours.1.min(max);
        if version < ours.0.max(min) {
            return Err(KafkaError::Unsupported { api, broker: self.address.clone(), range: Some((min, max)) });
        }
        Ok(version)
    }

    /// Sends one request at `version` and waits for its answer.
    ///
    /// # Errors
    /// The connection failing or timing out, or an answer that does not decode.
    pub(super) async fn call<R: Request>(&self, request: &R, version: i16) -> Result<R::Response, KafkaError> {
        let api = ApiKey::try_from(R::KEY).map_err(|()| KafkaError::connection(&self.address, "unknown API key"))?;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::with_capacity(64);
        frame.extend_from_slice(&[0; 4]);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        header
            .encode(&mut frame, R::header_version(version))
            .and_then(|()| request.encode(&mut frame, version))
            .map_err(|source| KafkaError::Encode { api, version, source: source.into() })?;
        let size = i32::try_from(frame.len() - 4).map_err(|_too_big| KafkaError::RequestTooLarge { api })?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let (reply, answer) = oneshot::channel();
        let outgoing =
            Outgoing { frame, correlation_id, response_header_version: R::Response::header_version(version), reply };
        if self.requests.send(outgoing).await.is_err() {
            return Err(KafkaError::connection(&self.address, "connection closed"));
        }
        let mut body = match tokio::time::timeout(self.request_timeout, answer).await {
            Err(_elapsed) => {
                // Answers come in order: one that never came leaves the connection unusable.
                self.closed.store(true, Ordering::Release);
                return Err(KafkaError::Timeout { api, broker: self.address.clone() });
            }
            Ok(Err(_dropped)) => return Err(KafkaError::connection(&self.address, "connection closed")),
            Ok(Ok(body)) => body?,
        };
        R::Response::decode(&mut body, version).map_err(|source| KafkaError::Decode {
            api,
            version,
            source: source.into(),
        })
    }
}

async fn write_requests(
    writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Outgoing>,
    in_flight: mpsc::UnboundedSender<(i32, i16, Reply)>,
    closed: Arc<AtomicBool>,
) {
    let mut writer = BufWriter::with_capacity(64 << 10, writer);
    while let Some(first) = queue.recv().await {
        // Everything queued goes out in one write.
        let mut next = Some(first);
        while let Some(outgoing) = next {
            if in_flight.send((outgoing.correlation_id, outgoing.response_header_version, outgoing.reply)).is_err() {
                closed.store(true, Ordering::Release);
                return;
            }
            if writer.write_all(&outgoing.frame).await.is_err() {
                closed.store(true, Ordering::Release);
                return;
            }
            next = queue.try_recv().ok();
        }
        if writer.flush().await.is_err() || closed.load(Ordering::Acquire) {
            closed.store(true, Ordering::Release);
            return;
        }
    }
}

async fn read_answers(
    mut reader: OwnedReadHalf,
    mut awaited: mpsc::UnboundedReceiver<(i32, i16, Reply)>,
    closed: Arc<AtomicBool>,
    address: String,
) {
    while let Some((correlation_id, header_version, reply)) = awaited.recv().await {
        match read_answer(&mut reader, correlation_id, header_version, &address).await {
            Ok(body) => {
                // The caller may have given up (timed out); its answer is dropped.
                let _ = reply.send(Ok(body));
            }
            Err(error) => {
                closed.store(true, Ordering::Release);
                let _ = reply.send(Err(error));
                // Dropping `awaited` fails every request still in flight.
                return;
            }
        }
    }
}

async fn read_answer(
    reader: &mut OwnedReadHalf,
    correlation_id: i32,
    header_version: i16,
    address: &str,
) -> Result<Bytes, KafkaError> {
    let size = reader.read_i32().await.map_err(|source| KafkaError::io(address, source))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|size| *size <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| KafkaError::connection(address, "answer size out of range"))?;
    let mut frame = vec![0; size];
    reader.read_exact(&mut frame).await.map_err(|source| KafkaError::io(address, source))?;
    let mut body = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut body, header_version)
        .map_err(|_error| KafkaError::connection(address, "answer header does not decode"))?;
    if header.correlation_id != correlation_id {
        return Err(KafkaError::connection(address, "answer out of order (correlation id)"));
    }
    Ok(body)
}
