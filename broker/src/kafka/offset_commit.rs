//! OffsetCommit (2–8): a member's committed offsets, with their metadata, stored durably.
//! Partitions that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION and the rest committed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::codes;
use super::dispatch::Request;
use super::hosted_groups::commit_refusal;
use super::server::Context;
use crate::coordinator::OffsetCommit;

/// A partition and, if refused before the commit, its error code.
type Answer = (i32, Option<i16>);

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let mut commits = Vec::new();
    // (topic, partition, Some(error) if refused up front)
    let mut answers: Vec<(kafka_protocol::messages::TopicName, Vec<Answer>)> = Vec::new();
    for topic in message.topics {
        let name = topic.name.0.to_string();
        let partitions = context.log.topic_config(&name).map_or(0, |config| config.partitions);
        let mut answered = Vec::new();
        for partition in topic.partitions {
            let known = u32::try_from(partition.partition_index).ok().filter(|index| *index < partitions);
            match known {
                Some(index) if partition.committed_offset >= 0 => {
                    commits.push(OffsetCommit {
                        topic: name.clone(),
                        partition: index,
                        offset: partition.committed_offset,
                        metadata: partition.committed_metadata.map(|metadata| metadata.to_string()).unwrap_or_default(),
                    });
                    answered.push((partition.partition_index, None));
                }
                Some(_) => {
                    answered
                        .push((partition.partition_index, Some(codes::code(ResponseError::InvalidCommitOffsetSize))));
                }
                None => answered
                    .push((partition.partition_index, Some(codes::code(ResponseError::UnknownTopicOrPartition)))),
            }
        }
        answers.push((topic.name, answered));
    }
    let instance_id = if request.version >= 7 { message.group_instance_id.map(|id| id.to_string()) } else { None };
    let group_id = message.group_id.0.as_str();
    let generation = message.generation_id_or_member_epoch;
    let commit_code =
        if let Some(error) = commit_refusal(context.hosted(), group_id, generation, message.member_id.as_str()) {
            tracing::debug!(group = group_id, "offset commit to a hosted group refused");
            codes::code(error)
        } else {
            let result = context
                .groups
                .commit_offsets(group_id, generation, message.member_id.as_str(), instance_id.as_deref(), commits)
                .await;
            match &result {
                Ok(()) => codes::NONE,
                Err(error) => {
                    tracing::debug!(%error, "offset commit refused");
                    codes::group_error(error)
                }
            }
        };
    let topics = answers
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, refused)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(refused.unwrap_or(commit_code))
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
