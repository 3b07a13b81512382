//! From a request frame to a response frame: the header, the version check, the decoding, the
//! operation, the encoding.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::api_versions::{self, supported};
use super::connection::Peer;
use super::produce::{Produced, Unsynced};
use super::server::Context;
use super::{
    alter_configs, create_partitions, create_topics, delete_topics, describe_cluster, describe_configs, fetch,
    find_coordinator, group, init_producer_id, list_offsets, metadata, offset_commit, offset_fetch, produce,
};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A request that cannot be answered: the connection is closed.
#[derive(thiserror::Error, Debug)]
pub(crate) enum DispatchError {
    #[error("unknown API key {api_key}")]
    UnknownApiKey { api_key: i16 },
    #[error("{api_key:?} version {version} is not supported")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("cannot decode {api_key:?} v{version} request")]
    Decode { api_key: ApiKey, version: i16, source: BoxError },
    #[error("{api_key:?} v{version} request has {left} bytes after its end")]
    TrailingBytes { api_key: ApiKey, version: i16, left: usize },
    #[error("cannot encode {api_key:?} v{version} response")]
    Encode { api_key: ApiKey, version: i16, source: BoxError },
}

/// The parts of a request every operation may need.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) version: i16,
    pub(super) client_id: String,
    pub(super) peer: &'a Peer,
}

fn decode<T: Decodable>(body: &mut Bytes, api_key: ApiKey, version: i16) -> Result<T, DispatchError> {
    let message =
        T::decode(body, version).map_err(|error| DispatchError::Decode { api_key, version, source: error.into() })?;
    if body.has_remaining() {
        return Err(DispatchError::TrailingBytes { api_key, version, left: body.remaining() });
    }
    Ok(message)
}

fn encode<T: Encodable>(
    correlation_id: i32,
    response: &T,
    api_key: ApiKey,
    version: i16,
) -> Result<BytesMut, DispatchError> {
    let encode_error = |error: anyhow::Error| DispatchError::Encode { api_key, version, source: error.into() };
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api_key.response_header_version(version)).map_err(encode_error)?;
    response.encode(&mut buf, version).map_err(encode_error)?;
    Ok(buf)
}

/// What a request comes to.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The response frame, without its size prefix.
    Ready(BytesMut),
    /// A produce request appended, answered once [`Outcome::finish`] has synced it.
    Produced { pending: Unsynced, correlation_id: i32, version: i16 },
    /// No answer: Kafka does not answer Produce with acks=0.
    Silent,
}

impl Outcome {
    /// Whether [`Outcome::finish`] blocks on an fsync.
    pub(super) fn syncs(&self) -> bool {
        matches!(self, Outcome::Produced { .. })
    }

    /// The response frame, once durable: syncs a produce request's appends (blocking on fsync).
    pub(super) fn finish(self) -> Result<Option<BytesMut>, DispatchError> {
        match self {
            Outcome::Ready(frame) => Ok(Some(frame)),
            Outcome::Produced { pending, correlation_id, version } => {
                encode(correlation_id, &pending.finish(), ApiKey::Produce, version).map(Some)
            }
            Outcome::Silent => Ok(None),
        }
    }
}

/// Decodes `frame` and runs the operation; see [`Outcome`].
pub(super) async fn dispatch(context: &Context, frame: Bytes, peer: &Peer) -> Result<Outcome, DispatchError> {
    let mut body = frame;
    let raw_key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|()| DispatchError::UnknownApiKey { api_key: raw_key })?;
    let Some(range) = supported(api_key) else {
        return Err(DispatchError::UnsupportedVersion { api_key, version });
    };
    if !range.contains(&version) {
        if api_key == ApiKey::ApiVersions {
            // Clients send their newest ApiVersions first and expect a v0 answer with the error
            // and our key list, then retry with a version from it.
            let response = api_versions::unsupported_version_response();
            return encode(correlation_id, &response, api_key, 0).map(Outcome::Ready);
        }
        return Err(DispatchError::UnsupportedVersion { api_key, version });
    }
    let header: RequestHeader = decode_header(&mut body, api_key, version)?;
    let request =
        Request { version, client_id: header.client_id.as_ref().map(|id| id.to_string()).unwrap_or_default(), peer };
    macro_rules! answer {
        ($($module:ident)::+) => {{
            let message = decode(&mut body, api_key, version)?;
            let response = $($module)::+::handle(context, &request, message).await;
            encode(correlation_id, &response, api_key, version).map(Outcome::Ready)
        }};
    }
    match api_key {
        ApiKey::ApiVersions => answer!(api_versions),
        ApiKey::Metadata => answer!(metadata),
        ApiKey::Produce => {
            let message = decode(&mut body, api_key, version)?;
            return match produce::handle(context, &request, message).await {
                Produced::Refused(response) => encode(correlation_id, &response, api_key, version).map(Outcome::Ready),
                Produced::Appended(pending) => Ok(Outcome::Produced { pending, correlation_id, version }),
                Produced::Unanswered => Ok(Outcome::Silent),
            };
        }
        ApiKey::Fetch => answer!(fetch),
        ApiKey::ListOffsets => answer!(list_offsets),
        ApiKey::InitProducerId => answer!(init_producer_id),
        ApiKey::FindCoordinator => answer!(find_coordinator),
        ApiKey::JoinGroup => answer!(group::join),
        ApiKey::SyncGroup => answer!(group::sync),
        ApiKey::Heartbeat => answer!(group::heartbeat),
        ApiKey::LeaveGroup => answer!(group::leave),
        ApiKey::DescribeGroups => answer!(group::describe),
        ApiKey::ListGroups => answer!(group::list),
        ApiKey::OffsetCommit => answer!(offset_commit),
        ApiKey::OffsetFetch => answer!(offset_fetch),
        ApiKey::CreateTopics => answer!(create_topics),
        ApiKey::DeleteTopics => answer!(delete_topics),
        ApiKey::CreatePartitions => answer!(create_partitions),
        ApiKey::DeleteGroups => answer!(group::delete),
        ApiKey::DescribeConfigs => answer!(describe_configs),
        ApiKey::AlterConfigs => answer!(alter_configs),
        ApiKey::IncrementalAlterConfigs => {
            let message = decode(&mut body, api_key, version)?;
            let response = alter_configs::handle_incremental(context, &request, message).await;
            encode(correlation_id, &response, api_key, version).map(Outcome::Ready)
        }
        ApiKey::DescribeCluster => answer!(describe_cluster),
        _ => Err(DispatchError::UnsupportedVersion { api_key, version }),
    }
}

fn decode_header(body: &mut Bytes, api_key: ApiKey, version: i16) -> Result<RequestHeader, DispatchError> {
    RequestHeader::decode(body, api_key.request_header_version(version)).map_err(|error| DispatchError::Decode {
        api_key,
        version,
        source: error.into(),
    })
}
