//! OffsetFetch (1–7): a group's committed offsets and metadata; -1 where nothing is committed.
//! A null topic list (v2+) asks for everything the group committed.

use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::codes;
use super::dispatch::Request;
use super::server::Context;

fn partition(index: i32, committed: Option<(i64, String)>) -> OffsetFetchResponsePartition {
    let (offset, metadata) = committed.unwrap_or((-1, String::new()));
    OffsetFetchResponsePartition::default()
        .with_partition_index(index)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(-1)
        .with_metadata(Some(StrBytes::from_string(metadata)))
        .with_error_code(codes::NONE)
}

pub(super) async fn handle(
    context: &Context,
    _request: &Request<'_>,
    message: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let group = message.group_id.0.to_string();
    let topics = match message.topics {
        Some(topics) => topics
            .into_iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|&index| {
                        let committed = u32::try_from(index)
                            .ok()
                            .and_then(|index| context.groups.committed_offset(&group, &name, index));
                        partition(index, committed)
                    })
                    .collect();
                OffsetFetchResponseTopic::default().with_name(topic.name).with_partitions(partitions)
            })
            .collect(),
        None => {
            let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
            for (topic, index, offset, metadata) in context.groups.committed_offsets(&group) {
                let entry = partition(index as i32, Some((offset, metadata)));
                match topics.last_mut() {
                    Some(last) if last.name.0.as_str() == topic => last.partitions.push(entry),
                    _ => topics.push(
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(vec![entry]),
                    ),
                }
            }
            topics
        }
    };
    OffsetFetchResponse::default().with_topics(topics).with_error_code(codes::NONE)
}
