//! CreatePartitions (0–3): grows topics. Partitions are only ever added; a replica assignment,
//! if given, may name only this node (there is one).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::codes;
use super::dispatch::Request;
use super::produce::blocking;
use super::server::Context;
use crate::LogError;

fn failure(result: CreatePartitionsTopicResult, code: i16, message: String) -> CreatePartitionsTopicResult {
    result.with_error_code(code).with_error_message(Some(StrBytes::from_string(message)))
}

pub(super) async fn handle(
    context: &Context,
    _request: &Request<'_>,
    message: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node_id = context.config.node_id;
    let results = message
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let Some(config) = context.log.topic_config(&name) else {
                return failure(
                    result,
                    codes::code(ResponseError::UnknownTopicOrPartition),
                    format!("topic {name:?} does not exist"),
                );
            };
            let requested = match u32::try_from(topic.count) {
                Ok(count) => count,
                Err(_) => {
                    return failure(
                        result,
                        codes::code(ResponseError::InvalidPartitions),
                        format!("{} partitions", topic.count),
                    );
                }
            };
            if requested <= config.partitions {
                let error = LogError::PartitionsNotIncreased { topic: name, existing: config.partitions, requested };
                return failure(result, codes::log_error(&error), error.to_string());
            }
            if let Some(assignments) = &topic.assignments {
                let added = (requested - config.partitions) as usize;
                if assignments.len() != added {
                    return failure(
                        result,
                        codes::code(ResponseError::InvalidReplicaAssignment),
                        format!("{} assignments for {added} new partitions", assignments.len()),
                    );
                }
                if let Some(other) = assignments
                    .iter()
                    .flat_map(|assignment| assignment.broker_ids.iter())
                    .find(|broker| broker.0 != node_id)
                {
                    return failure(
                        result,
                        codes::code(ResponseError::InvalidReplicaAssignment),
                        format!("broker {} does not exist: this is a single node, id {node_id}", other.0),
                    );
                }
                if assignments.iter().any(|assignment| assignment.broker_ids.len() != 1) {
                    return failure(
                        result,
                        codes::code(ResponseError::InvalidReplicaAssignment),
                        "this is a single node: each new partition has exactly one replica".to_owned(),
                    );
                }
            }
            let grown = crate::TopicConfig { partitions: requested, ..config };
            if let Err(error) = grown.validate(&name) {
                return failure(result, codes::code(ResponseError::InvalidPartitions), error.to_string());
            }
            if message.validate_only {
                return result.with_error_code(codes::NONE);
            }
            match blocking(|| context.log.create_partitions(&name, requested)) {
                Ok(()) => result.with_error_code(codes::NONE),
                Err(error) => failure(result, codes::log_error(&error), error.to_string()),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
