//! DescribeConfigs (1–4): a topic's settings under Kafka's names; a broker's few that exist.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::Request;
use super::server::Context;
use super::{codes, topic_configs};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Config sources: set on the topic, or the default.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;
/// Config types (v3+).
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn entry(name: &str, value: String, source: i8, read_only: bool) -> DescribeConfigsResourceResult {
    let config_type = match name {
        "cleanup.policy" => TYPE_LIST,
        "retention.ms" | "retention.bytes" | "segment.bytes" => TYPE_LONG,
        _ => TYPE_STRING,
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_owned()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_config_type(config_type)
}

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = message
        .resources
        .into_iter()
        .map(|resource| {
            let wanted = |name: &str| {
                resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|key| key.as_str() == name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let configs: Vec<DescribeConfigsResourceResult> = match resource.resource_type {
                TOPIC => {
                    let Some(config) = context.log.topic_config(resource.resource_name.as_str()) else {
                        return result.with_error_code(codes::code(ResponseError::UnknownTopicOrPartition));
                    };
                    topic_configs::describe(&config, context.log.config().segment_bytes)
                        .into_iter()
                        .filter(|(name, _, _)| wanted(name))
                        .map(|(name, value, set)| {
                            entry(name, value, if set { DYNAMIC_TOPIC_CONFIG } else { DEFAULT_CONFIG }, false)
                        })
                        .collect()
                }
                BROKER => [
                    ("auto.create.topics.enable", context.config.auto_create_topics.to_string()),
                    ("num.partitions", context.config.default_partitions.to_string()),
                    ("log.segment.bytes", context.log.config().segment_bytes.to_string()),
                    ("socket.request.max.bytes", context.config.max_frame_bytes.to_string()),
                ]
                .into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(name, value)| entry(name, value, DEFAULT_CONFIG, true))
                .collect(),
                _ => return result.with_error_code(codes::code(ResponseError::InvalidRequest)),
            };
            let configs = if request.version >= 3 {
                configs
            } else {
                configs.into_iter().map(|config| config.with_config_type(0)).collect()
            };
            result.with_error_code(codes::NONE).with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
