//! ApiVersions (0–3): which operations and versions this server speaks.
//!
//! Produce is advertised from version 0 although only 3 and later are accepted (older versions
//! carry the message sets v0/v1 this log does not store): older librdkafka releases only enable
//! compression when the broker's range starts at 0, and every client in use sends 3 or later.

use std::ops::RangeInclusive;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::codes;
use super::dispatch::Request;
use super::server::Context;

/// Every operation served, with the versions advertised (and, but for Produce, accepted).
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 5),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
];

/// The versions of `api_key` accepted (Produce: 3 and later), if it is served at all.
pub(super) fn supported(api_key: ApiKey) -> Option<RangeInclusive<i16>> {
    SUPPORTED.iter().find(|(key, _, _)| *key == api_key).map(|&(key, min, max)| {
        let min = if key == ApiKey::Produce { 3 } else { min };
        min..=max
    })
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max)
        })
        .collect()
}

/// The answer to an ApiVersions request of a version newer than 3, encoded as v0.
pub(super) fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(codes::code(ResponseError::UnsupportedVersion))
        .with_api_keys(api_keys())
}

pub(super) async fn handle(
    _context: &Context,
    _request: &Request<'_>,
    _message: ApiVersionsRequest,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(codes::NONE).with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_is_advertised_from_zero_but_accepted_from_three() {
        let produce = api_keys().into_iter().find(|key| key.api_key == ApiKey::Produce as i16).expect("listed");
        assert_eq!((produce.min_version, produce.max_version), (0, 9));
        assert_eq!(supported(ApiKey::Produce), Some(3..=9));
        assert_eq!(supported(ApiKey::SaslHandshake), None);
    }
}
