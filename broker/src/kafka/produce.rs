//! Produce (3–9): each partition's batches are checked, sequence-checked for idempotent
//! producers, and appended as sent; then every partition the request wrote is synced at once (in
//! parallel, one round of fsyncs per request, not one per partition), and only then answered.
//! acks=0 gets no response at all, as in Kafka.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::codes;
use super::dispatch::Request;
use super::producer_state::Verdict;
use super::server::Context;
use crate::{Log, LogError};

/// The outcome for one partition: an error code and the base offset, and the end offset to sync
/// when it appended something.
fn append_partition(context: &Context, topic: &str, partition: i32, records: Option<Bytes>) -> (i16, i64, Option<i64>) {
    let Ok(partition) = u32::try_from(partition) else {
        return (codes::code(ResponseError::UnknownTopicOrPartition), -1, None);
    };
    let Some(records) = records else {
        return (codes::code(ResponseError::InvalidRecord), -1, None);
    };
    let log: &Arc<Log> = &context.log;
    let checked = match log.check_batches(topic, partition, &records) {
        Ok(checked) => checked,
        Err(error) => {
            tracing::debug!(topic, partition, %error, "refused produced batch");
            return (codes::log_error(&error), -1, None);
        }
    };
    if checked.is_empty() {
        return (codes::code(ResponseError::InvalidRecord), -1, None);
    }
    let producers = context.producers.partition(topic, partition);
    let mut producers = crate::fs_util::lock(&producers);
    // Only an idempotent producer needs the state; rebuilding it for a plain one would read the
    // partition for nothing.
    let idempotent = checked.producers().first().is_some_and(|first| first.producer_id >= 0);
    if idempotent && let Err(error) = producers.ensure_loaded(log, topic, partition) {
        tracing::warn!(topic, partition, %error, "cannot rebuild the partition's producer state");
        return (codes::log_error(&error), -1, None);
    }
    match producers.check(&checked) {
        Verdict::Append => {}
        Verdict::Duplicate(base_offset) => return (codes::NONE, base_offset, None),
        Verdict::Refuse(error) => return (codes::code(error), -1, None),
    }
    let infos = checked.producers().to_vec();
    match log.append_checked_unsynced(topic, partition, checked) {
        Ok(appended) => {
            producers.record(&infos, appended.base_offset, appended.last_offset + 1);
            producers.snapshot_if_due(log, topic, partition);
            (codes::NONE, appended.base_offset, Some(appended.last_offset + 1))
        }
        Err(error) => {
            if !matches!(error, LogError::UnknownTopic { .. } | LogError::UnknownPartition { .. }) {
                tracing::warn!(topic, partition, %error, "append of produced batch failed");
            }
            (codes::log_error(&error), -1, None)
        }
    }
}

/// A produce request appended but not yet durable: answered by [`Unsynced::finish`], which
/// syncs it. The connection finishes it while it appends the requests that follow, so their
/// fsyncs overlap (and often coalesce: one fsync covers every append before it).
#[derive(Debug)]
pub(super) struct Unsynced {
    log: Arc<Log>,
    responses: Vec<TopicProduceResponse>,
    to_sync: Vec<(String, u32, i64)>,
}

impl Unsynced {
    /// Syncs what the request appended (blocking on fsync) and returns its answer: every
    /// partition it wrote fails with the sync's error if the sync fails (which fsync failed is
    /// not known, so none is acknowledged).
    pub(super) fn finish(self) -> ProduceResponse {
        let Unsynced { log, mut responses, to_sync } = self;
        let ends: Vec<(&str, u32, i64)> =
            to_sync.iter().map(|(topic, partition, end)| (topic.as_str(), *partition, *end)).collect();
        if let Err(error) = log.sync_appended(&ends) {
            tracing::warn!(%error, "sync of produced batches failed");
            let code = codes::log_error(&error);
            for topic in &mut responses {
                for partition in &mut topic.partition_responses {
                    let written = to_sync.iter().any(|(name, index, _)| {
                        name.as_str() == topic.name.as_str() && i64::from(*index) == i64::from(partition.index)
                    });
                    if written {
                        partition.error_code = code;
                        partition.base_offset = -1;
                    }
                }
            }
        }
        ProduceResponse::default().with_responses(responses)
    }
}

/// Appends everything in the request; syncing is left to [`Unsynced::finish`].
fn append_all(context: &Context, message: ProduceRequest) -> Unsynced {
    let mut to_sync: Vec<(String, u32, i64)> = Vec::new();
    let responses: Vec<TopicProduceResponse> = message
        .topic_data
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partition_data
                .into_iter()
                .map(|data| {
                    let (error_code, base_offset, end) = append_partition(context, &name, data.index, data.records);
                    let partition = u32::try_from(data.index).ok();
                    if let (Some(end), Some(partition)) = (end, partition) {
                        to_sync.push((name.clone(), partition, end));
                    }
                    let log_start_offset =
                        partition.and_then(|p| context.log.start_offset(&name, p).ok()).unwrap_or(-1);
                    PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_error_code(error_code)
                        .with_base_offset(base_offset)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(log_start_offset)
                })
                .collect();
            TopicProduceResponse::default().with_name(topic.name).with_partition_responses(partitions)
        })
        .collect();
    Unsynced { log: Arc::clone(&context.log), responses, to_sync }
}

/// Every partition of the request answered with `error`.
fn refuse_all(message: ProduceRequest, error: ResponseError) -> Vec<TopicProduceResponse> {
    message
        .topic_data
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|data| {
                    PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_error_code(codes::code(error))
                        .with_base_offset(-1)
                })
                .collect();
            TopicProduceResponse::default().with_name(topic.name).with_partition_responses(partitions)
        })
        .collect()
}

/// Runs `work`, which blocks (appends fsync), without stalling the other tasks of a
/// multi-threaded runtime.
pub(super) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// What a produce request comes to.
#[derive(Debug)]
pub(super) enum Produced {
    /// Refused whole: answered now.
    Refused(ProduceResponse),
    /// Appended: answered once synced.
    Appended(Unsynced),
    /// acks=0: appended and synced, and never answered.
    Unanswered,
}

pub(super) async fn handle(context: &Context, _request: &Request<'_>, message: ProduceRequest) -> Produced {
    let acks = message.acks;
    if message.transactional_id.is_some() {
        let refused = refuse_all(message, ResponseError::TransactionalIdAuthorizationFailed);
        return if acks == 0 {
            Produced::Unanswered
        } else {
            Produced::Refused(ProduceResponse::default().with_responses(refused))
        };
    }
    if !(-1..=1).contains(&acks) {
        let refused = refuse_all(message, ResponseError::InvalidRequiredAcks);
        return Produced::Refused(ProduceResponse::default().with_responses(refused));
    }
    let appended = blocking(|| append_all(context, message));
    if acks == 0 {
        blocking(|| drop(appended.finish()));
        return Produced::Unanswered;
    }
    Produced::Appended(appended)
}
