//! Fetch (4–12): stored batches as they are, from the batch holding the fetch offset, within
//! the request's and each partition's byte limits, the request's capped by the listener's
//! `fetch_max_bytes` (at least one batch, however large, so a consumer can always make progress,
//! as in KIP-74). With fewer than `min_bytes` available the
//! fetch waits, up to `max_wait_ms`, on the partitions' end-offset watches: a long poll with no
//! polling. No fetch sessions: every answer is a full one (session id 0), which every client
//! accepts.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::sync::watch;

use super::codes;
use super::dispatch::Request;
use super::server::Context;

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

struct Wanted {
    topic: String,
    partition: i32,
    offset: i64,
    max_bytes: usize,
}

/// Reads every wanted partition once; returns the answer and its record bytes.
fn read_once(context: &Context, wanted: &[Wanted], max_bytes: usize) -> (Vec<FetchableTopicResponse>, usize) {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut total = 0usize;
    for want in wanted {
        let data = read_partition(context, want, max_bytes.saturating_sub(total), total == 0);
        total += data.records.as_ref().map_or(0, Bytes::len);
        match topics.last_mut() {
            Some(last) if last.topic.0.as_str() == want.topic => last.partitions.push(data),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(kafka_protocol::messages::TopicName(want.topic.clone().into()))
                    .with_partitions(vec![data]),
            ),
        }
    }
    (topics, total)
}

fn read_partition(context: &Context, want: &Wanted, budget: usize, first: bool) -> PartitionData {
    let data = PartitionData::default().with_partition_index(want.partition);
    let log = &context.log;
    let Ok(partition) = u32::try_from(want.partition) else {
        return data.with_error_code(codes::code(ResponseError::UnknownTopicOrPartition));
    };
    let (start, end) = match (log.start_offset(&want.topic, partition), log.end_offset(&want.topic, partition)) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(error), _) | (_, Err(error)) => return data.with_error_code(codes::log_error(&error)),
    };
    let data = data.with_high_watermark(end).with_last_stable_offset(end).with_log_start_offset(start);
    if want.offset < start || want.offset > end {
        return data.with_error_code(codes::code(ResponseError::OffsetOutOfRange));
    }
    // Past the request's budget only the first partition still gets its one batch.
    let limit = want.max_bytes.min(budget);
    if want.offset == end || (limit == 0 && !first) {
        return data.with_records(Some(Bytes::new()));
    }
    match log.read_batches(&want.topic, partition, want.offset, limit.max(1)) {
        Ok(records) => data.with_records(Some(records)),
        Err(error) => {
            tracing::warn!(topic = want.topic, partition, %error, "fetch read failed");
            data.with_error_code(codes::log_error(&error))
        }
    }
}

pub(super) async fn handle(context: &Context, _request: &Request<'_>, message: FetchRequest) -> FetchResponse {
    let wanted: Vec<Wanted> = message
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| Wanted {
                topic: topic.topic.0.to_string(),
                partition: partition.partition,
                offset: partition.fetch_offset,
                max_bytes: usize::try_from(partition.partition_max_bytes).unwrap_or(0),
            })
        })
        .collect();
    let max_bytes = usize::try_from(message.max_bytes).unwrap_or(0).min(context.config.fetch_max_bytes);
    let min_bytes = usize::try_from(message.min_bytes).unwrap_or(0).max(1);
    let wait = Duration::from_millis(u64::try_from(message.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read, so an append between the read and the wait wakes it.
    let mut watches: Vec<watch::Receiver<i64>> = wanted
        .iter()
        .filter_map(|want| {
            let partition = u32::try_from(want.partition).ok()?;
            let mut watch = context.log.end_offset_watch(&want.topic, partition).ok()?;
            watch.borrow_and_update();
            Some(watch)
        })
        .collect();
    loop {
        let (topics, total) = read_once(context, &wanted, max_bytes);
        if total >= min_bytes || tokio::time::Instant::now() >= deadline || watches.is_empty() {
            return FetchResponse::default().with_responses(topics).with_session_id(0);
        }
        let closed = {
            let changed = futures::future::select_all(watches.iter_mut().map(|watch| Box::pin(watch.changed())));
            // A watch closes when its topic is deleted while waiting: answer now.
            matches!(tokio::time::timeout_at(deadline, changed).await, Ok((Err(_closed), _, _)))
        };
        if closed {
            watches.clear();
        }
        for watch in &mut watches {
            watch.borrow_and_update();
        }
    }
}
