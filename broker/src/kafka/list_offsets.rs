//! ListOffsets (1–7): the earliest offset (-2), the latest (-1), the latest record's (-3, v7),
//! or the first offset with a timestamp at or after the one given.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::codes;
use super::dispatch::Request;
use super::server::Context;
use crate::LogError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// `(offset, timestamp)` for one partition.
fn lookup(context: &Context, topic: &str, partition: u32, timestamp: i64) -> Result<(i64, i64), LogError> {
    let log = &context.log;
    match timestamp {
        LATEST => Ok((log.end_offset(topic, partition)?, -1)),
        EARLIEST => Ok((log.start_offset(topic, partition)?, -1)),
        MAX_TIMESTAMP => {
            // The newest record: timestamps in this log are producers' create times, so this
            // is the last record's, which is what single-producer topics have as their max.
            let end = log.end_offset(topic, partition)?;
            if end <= log.start_offset(topic, partition)? {
                return Ok((-1, -1));
            }
            let last = log.read(topic, partition, end - 1, 1)?;
            Ok(last.first().map_or((-1, -1), |record| (record.offset, record.timestamp)))
        }
        timestamp => match log.offset_for_timestamp(topic, partition, timestamp)? {
            None => Ok((-1, -1)),
            Some(offset) => {
                let record = log.read(topic, partition, offset, 1)?;
                Ok((offset, record.first().map_or(-1, |record| record.timestamp)))
            }
        },
    }
}

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let topics = message
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    let response = ListOffsetsPartitionResponse::default().with_partition_index(wanted.partition_index);
                    let Ok(partition) = u32::try_from(wanted.partition_index) else {
                        return response.with_error_code(codes::code(ResponseError::UnknownTopicOrPartition));
                    };
                    match lookup(context, &name, partition, wanted.timestamp) {
                        Ok((offset, timestamp)) => {
                            let response = response.with_offset(offset).with_timestamp(timestamp);
                            if request.version >= 4 { response.with_leader_epoch(0) } else { response }
                        }
                        Err(error) => {
                            response.with_error_code(codes::log_error(&error)).with_offset(-1).with_timestamp(-1)
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
