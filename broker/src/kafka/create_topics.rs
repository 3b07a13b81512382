//! CreateTopics (2–5): partitions and the topic configs the log knows (see `topic_configs`).
//! Replication factors other than 1 (or -1, the default) are refused: there is one node.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::Request;
use super::server::Context;
use super::{codes, topic_configs};
use crate::TopicConfig;

fn failure(result: CreatableTopicResult, error: ResponseError, message: String) -> CreatableTopicResult {
    result.with_error_code(codes::code(error)).with_error_message(Some(StrBytes::from_string(message)))
}

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let topics = message
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            if context.log.topic_config(&name).is_some() {
                return failure(result, ResponseError::TopicAlreadyExists, format!("topic {name:?} already exists"));
            }
            if !matches!(topic.replication_factor, -1 | 1) || !topic.assignments.is_empty() {
                return failure(
                    result,
                    ResponseError::InvalidReplicationFactor,
                    "this is a single node: replication factor must be 1".to_owned(),
                );
            }
            let partitions = match topic.num_partitions {
                -1 => context.config.default_partitions,
                count => match u32::try_from(count) {
                    Ok(count) if count > 0 => count,
                    _ => return failure(result, ResponseError::InvalidPartitions, format!("{count} partitions")),
                },
            };
            let mut config = TopicConfig::with_partitions(partitions);
            for entry in &topic.configs {
                if let Err(reason) = topic_configs::apply(&mut config, entry.name.as_str(), entry.value.as_deref()) {
                    return failure(result, ResponseError::InvalidConfig, reason);
                }
            }
            if !message.validate_only
                && let Err(error) = context.log.ensure_topic(&name, config.clone())
            {
                return result
                    .with_error_code(codes::log_error(&error))
                    .with_error_message(Some(StrBytes::from_string(error.to_string())));
            }
            if !message.validate_only {
                tracing::info!(topic = name, partitions, "created topic");
            }
            let result = result.with_error_code(codes::NONE);
            if request.version >= 5 {
                let configs = topic_configs::describe(&config, context.log.config().segment_bytes)
                    .into_iter()
                    .map(|(name, value, set)| {
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(Some(StrBytes::from_string(value)))
                            .with_config_source(if set { 1 } else { 5 })
                    })
                    .collect();
                result.with_num_partitions(partitions as i32).with_replication_factor(1).with_configs(Some(configs))
            } else {
                result
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
