//! The sink task loop: read the assigned partitions from the consumer group's committed
//! offsets, `put` batches to the component, `flush` it, then commit the group offsets.
//!
//! Offsets are committed only after `flush` returned ok, so a crash repeats what was put since
//! the last flush (at-least-once) and never skips a record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_connector_sdk::OffsetFailure;
use weir_connector_sdk::batch::{SinkBatchReader, SinkBatchWriter, SinkRecordRef};

use super::errors::{ErrorHandling, FailedRecord, Stage, handle_failures};
use super::handle::SinkHandle;
use super::retry::{Retried, RetryPolicy, retry};
use super::status::TaskMetrics;
use crate::host::TaskError;
use crate::log::{Bytes, EventLog, FetchRequest, Generation, GroupOffset};
use crate::transform::{self, Chain};

/// How often a sink looks again for subscribed topics that do not exist yet.
const MISSING_TOPIC_CHECK: Duration = Duration::from_millis(100);
/// How often a sink looks for partitions added to its topics (Kafka consumers refresh their
/// metadata every `metadata.max.age.ms`, 5 minutes; a topic lives in this process, so checking
/// costs a map lookup per topic).
const GROWN_TOPIC_CHECK: Duration = Duration::from_secs(2);

/// Sink-loop settings.
#[derive(Debug, Clone)]
pub(crate) struct SinkSettings {
    /// Most records per `put`.
    pub(crate) batch_size: u32,
    /// Most bytes read from one partition per read.
    pub(crate) max_read_bytes: usize,
    /// How often to flush and commit offsets while records flow (Kafka Connect's
    /// `offset.flush.interval.ms`).
    pub(crate) flush_interval: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) errors: ErrorHandling,
    /// Transforms applied to each record before `put`.
    pub(crate) transforms: Arc<Chain>,
}

/// One assigned partition and where the task is in it.
/// A topic the sink reads, and how many of its partitions have been taken over (0: the topic
/// does not exist yet).
struct Subscribed {
    topic: String,
    partitions: u32,
}

struct Assigned {
    topic: String,
    partition: u32,
    /// Next offset to read.
    position: i64,
    /// Offset the group has committed (the flushed position).
    committed: i64,
}

pub(crate) struct SinkTask {
    pub(crate) connector: Arc<str>,
    pub(crate) task_id: u32,
    pub(crate) handle: SinkHandle,
    pub(crate) log: Arc<dyn EventLog>,
    /// The generation of the task's assignment: its group-offset commits carry it.
    pub(crate) generation: Generation,
    pub(crate) metrics: Arc<TaskMetrics>,
    pub(crate) group: String,
    /// The topics the connector reads; a topic that does not exist yet is picked up when it
    /// appears (as a Kafka consumer's subscription would).
    pub(crate) topics: Vec<String>,
    /// How many tasks share the topics' partitions.
    pub(crate) task_count: u32,
    pub(crate) settings: SinkSettings,
}

/// A sink's context headers for a failed record's dead-letter copy.
fn context_of(pairs: Vec<(String, String)>) -> Vec<(String, Vec<u8>)> {
    pairs.into_iter().map(|(name, value)| (name, value.into_bytes())).collect()
}

/// Which task owns a partition: spread round-robin within a topic, starting at a per-topic
/// offset, so the owner of a partition never changes when another topic appears later.
pub(crate) fn owner(topic: &str, partition: u32, task_count: u32) -> u32 {
    let start = topic.bytes().fold(0u32, |hash, byte| hash.wrapping_mul(31).wrapping_add(u32::from(byte)));
    (start.wrapping_add(partition)) % task_count.max(1)
}

impl SinkTask {
    /// Run until cancelled (then flush, commit and close) or until the task fails.
    #[tracing::instrument(name = "sink_task", skip_all, fields(connector = %self.connector, task = self.task_id))]
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> Result<(), TaskError> {
        let mut assigned = Vec::new();
        let mut subscribed: Vec<Subscribed> =
            self.topics.iter().map(|topic| Subscribed { topic: topic.clone(), partitions: 0 }).collect();
        self.assign_new(&mut assigned, &mut subscribed).await?;
        let result = self.run_loop(&mut assigned, &mut subscribed, &cancel).await;
        let result = match result {
            // A clean stop: make everything put durable and commit it, so a restart redoes nothing.
            Ok(()) => self.flush_and_commit(&mut assigned, &cancel).await,
            Err(error) => Err(error),
        };
        let closed = self.handle.close().await;
        result.and(closed)
    }

    /// Take over this task's partitions that exist now and are not yet assigned: those of topics
    /// that did not exist before, and those a topic grew by (CreatePartitions), as a Kafka
    /// consumer's subscription picks them up.
    async fn assign_new(
        &mut self,
        assigned: &mut Vec<Assigned>,
        subscribed: &mut [Subscribed],
    ) -> Result<(), TaskError> {
        let mut grown = Vec::new();
        for (index, subscription) in subscribed.iter().enumerate() {
            let config = self.log.topic_config(&subscription.topic).await.map_err(TaskError::log("reading a topic"))?;
            if let Some(config) = config.filter(|config| config.partitions > subscription.partitions) {
                grown.push((index, config.partitions));
            }
        }
        if grown.is_empty() {
            return Ok(());
        }
        let committed = self.log.group_offsets(&self.group).await.map_err(TaskError::log("reading group offsets"))?;
        for (index, partitions) in grown {
            let subscription = &mut subscribed[index];
            let topic = &subscription.topic;
            for partition in (subscription.partitions..partitions)
                .filter(|partition| owner(topic, *partition, self.task_count) == self.task_id)
            {
                let start = self
                    .log
                    .offset_range(topic, partition)
                    .await
                    .map_err(TaskError::log("reading a partition's offsets"))?
                    .start;
                let committed = committed
                    .iter()
                    .find(|offset| offset.topic == *topic && offset.partition == partition)
                    .map_or(start, |offset| offset.offset)
                    .max(start);
                assigned.push(Assigned { topic: topic.clone(), partition, position: committed, committed });
            }
            tracing::debug!(topic, from = subscription.partitions, to = partitions, "subscribed");
            subscription.partitions = partitions;
        }
        Ok(())
    }

    async fn run_loop(
        &mut self,
        assigned: &mut Vec<Assigned>,
        subscribed: &mut [Subscribed],
        cancel: &CancellationToken,
    ) -> Result<(), TaskError> {
        let mut last_flush = Instant::now();
        let mut last_subscription_check = Instant::now();
        let mut dirty = false;
        let mut first = 0usize;
        // Size the next batch buffer like the last one, so steady state allocates once per batch.
        let mut capacity = 64 << 10;
        while !cancel.is_cancelled() {
            let (batch, next_positions, bytes, failed) = self.gather(assigned, first, capacity).await?;
            if !failed.is_empty() {
                self.metrics.errors.fetch_add(failed.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.dead_letters(failed).await?;
            }
            capacity = capacity.max(batch.byte_len());
            let batch_len = batch.len();
            first = (first + 1) % assigned.len().max(1);
            let records = batch_len as u64;
            if records == 0 && next_positions.iter().zip(assigned.iter()).any(|(next, slot)| *next != slot.position) {
                // Every record read was dropped or failed in the transforms: move past them.
                for (slot, position) in assigned.iter_mut().zip(next_positions) {
                    slot.position = position;
                }
                dirty = true;
                continue;
            }
            // New topics and partitions are looked for often while some topic is still missing,
            // and every few seconds otherwise, busy or not.
            let missing = subscribed.iter().any(|subscription| subscription.partitions == 0);
            let check_every = if missing { MISSING_TOPIC_CHECK } else { GROWN_TOPIC_CHECK };
            if last_subscription_check.elapsed() >= check_every {
                self.assign_new(assigned, subscribed).await?;
                last_subscription_check = Instant::now();
            }
            if records == 0 {
                if dirty && last_flush.elapsed() >= self.settings.flush_interval {
                    self.flush_and_commit(assigned, cancel).await?;
                    dirty = false;
                    last_flush = Instant::now();
                }
                let mut wait = if dirty {
                    self.settings.flush_interval.saturating_sub(last_flush.elapsed())
                } else {
                    Duration::from_secs(1)
                };
                wait = wait.min(check_every);
                self.wait_for_data(assigned, wait, cancel).await?;
                continue;
            }
            let batch = batch.finish();
            if !self.put(&batch, cancel).await? {
                // Cancelled while retrying the put: these records were not delivered, so their
                // positions stay where they were.
                break;
            }
            for (slot, position) in assigned.iter_mut().zip(next_positions) {
                slot.position = position;
            }
            self.metrics.add_batch(records, bytes);
            dirty = true;
            if last_flush.elapsed() >= self.settings.flush_interval {
                self.flush_and_commit(assigned, cancel).await?;
                dirty = false;
                last_flush = Instant::now();
            }
        }
        Ok(())
    }

    /// Read up to one batch from the assigned partitions, starting at `first` for fairness.
    async fn gather(
        &mut self,
        assigned: &mut [Assigned],
        first: usize,
        capacity: usize,
    ) -> Result<(SinkBatchWriter, Vec<i64>, u64, Vec<FailedRecord>), TaskError> {
        let limit = self.settings.batch_size as usize;
        let mut writer = SinkBatchWriter::with_capacity(capacity);
        let mut positions: Vec<i64> = assigned.iter().map(|slot| slot.position).collect();
        let mut bytes = 0u64;
        let mut failed = Vec::new();
        let count = assigned.len();
        let order: Vec<usize> = (0..count).map(|step| (first + step) % count).collect();
        let requests = order
            .iter()
            .map(|&index| FetchRequest {
                topic: assigned[index].topic.clone(),
                partition: assigned[index].partition,
                from: positions[index],
            })
            .collect();
        let fetched = self
            .log
            .fetch(requests, self.settings.max_read_bytes, limit)
            .await
            .map_err(TaskError::log("reading the assigned partitions"))?;
        for part in fetched {
            let index = order[part.request];
            if writer.len() >= limit {
                break;
            }
            let slot = &assigned[index];
            let records = part.records;
            let partition = i32::try_from(slot.partition).unwrap_or(i32::MAX);
            let room = limit - writer.len();
            for record in records.iter().take(room) {
                positions[index] = record.offset + 1;
                let transformed;
                let (topic, timestamp, key, value, headers) = if self.settings.transforms.is_empty() {
                    (&slot.topic, record.timestamp, &record.key, &record.value, &record.headers)
                } else {
                    let input = transform::Record {
                        topic: slot.topic.clone(),
                        partition,
                        offset: Some(record.offset),
                        timestamp: record.timestamp,
                        key: record.key.clone(),
                        value: record.value.clone(),
                        headers: record.headers.clone(),
                    };
                    match self.settings.transforms.apply(input) {
                        // Dropped by a filter: its offset still counts as handled.
                        Ok(None) => continue,
                        Ok(Some(out)) => {
                            transformed = out;
                            let out = &transformed;
                            (&out.topic, out.timestamp, &out.key, &out.value, &out.headers)
                        }
                        Err(error) => {
                            failed.push(FailedRecord {
                                topic: slot.topic.clone(),
                                partition: Some(partition),
                                offset: Some(record.offset),
                                key: record.key.clone(),
                                value: record.value.clone(),
                                headers: record.headers.clone(),
                                error: weir_connector_sdk::ConnectorError::Fatal(error.to_string()),
                                stage: Stage::Transformation,
                                context: Vec::new(),
                            });
                            continue;
                        }
                    }
                };
                bytes +=
                    (key.as_ref().map_or(0, |key| key.len()) + value.as_ref().map_or(0, |value| value.len())) as u64;
                writer.push(
                    topic,
                    partition,
                    record.offset,
                    timestamp,
                    key.as_deref(),
                    value.as_deref(),
                    headers.iter().map(|(name, value)| (name.as_str(), value.as_deref())),
                );
            }
        }
        Ok((writer, positions, bytes, failed))
    }

    /// Put a batch, retrying retriable errors; per-record failures follow `errors.tolerance`.
    /// `false` when cancelled while retrying (nothing of the batch was delivered).
    #[allow(clippy::ptr_arg)]
    async fn put(&mut self, batch: &Vec<u8>, cancel: &CancellationToken) -> Result<bool, TaskError> {
        let failures = match retry!("put", self.settings.retry, cancel, &self.metrics, self.handle.put(batch).await)? {
            Retried::Done(failures) => failures,
            Retried::Cancelled => return Ok(false),
        };
        if failures.is_empty() {
            return Ok(true);
        }
        self.metrics.errors.fetch_add(failures.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let records: Vec<SinkRecordRef<'_>> = match SinkBatchReader::new(batch) {
            Ok(reader) => reader.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        };
        let failed = failures
            .into_iter()
            .map(|failure| {
                let context = context_of(failure.context);
                match records.get(failure.index as usize) {
                    Some(record) => FailedRecord {
                        topic: record.topic.to_owned(),
                        partition: Some(record.partition),
                        offset: Some(record.offset),
                        key: record.key.map(Bytes::copy_from_slice),
                        value: record.value.map(Bytes::copy_from_slice),
                        headers: record
                            .headers
                            .iter()
                            .map(|(name, value)| (name.to_owned(), value.map(Bytes::copy_from_slice)))
                            .collect(),
                        error: failure.error,
                        stage: Stage::TaskPut,
                        context,
                    },
                    None => FailedRecord {
                        topic: format!("record #{} of the batch", failure.index),
                        partition: None,
                        offset: None,
                        key: None,
                        value: None,
                        headers: Vec::new(),
                        error: failure.error,
                        stage: Stage::TaskPut,
                        context,
                    },
                }
            })
            .collect();
        self.dead_letters(failed).await?;
        Ok(true)
    }

    /// The records the sink reported failed from `flush` (found when it sent what it had
    /// buffered), read back from the log as they were consumed, as Kafka Connect's dead-letter
    /// queue writes the consumed record. One a transform renamed the topic of cannot be found
    /// there; its dead-letter copy then carries only the error and the context headers.
    async fn flush_failures(&mut self, failures: Vec<OffsetFailure>) -> Result<(), TaskError> {
        self.metrics.errors.fetch_add(failures.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut failed = Vec::with_capacity(failures.len());
        for failure in failures {
            let stored = match u32::try_from(failure.partition) {
                Ok(partition) => self
                    .log
                    .fetch(
                        vec![FetchRequest { topic: failure.topic.clone(), partition, from: failure.offset }],
                        self.settings.max_read_bytes,
                        1,
                    )
                    .await
                    .ok()
                    .and_then(|parts| parts.into_iter().next())
                    .and_then(|part| part.records.into_iter().find(|record| record.offset == failure.offset)),
                Err(_) => None,
            };
            let (key, value, headers) = match stored {
                Some(record) => (record.key, record.value, record.headers),
                None => (None, None, Vec::new()),
            };
            failed.push(FailedRecord {
                topic: failure.topic,
                partition: Some(failure.partition),
                offset: Some(failure.offset),
                key,
                value,
                headers,
                error: failure.error,
                stage: Stage::TaskPut,
                context: context_of(failure.context),
            });
        }
        self.dead_letters(failed).await
    }

    async fn dead_letters(&mut self, failed: Vec<FailedRecord>) -> Result<(), TaskError> {
        handle_failures(&self.settings.errors, &*self.log, &self.connector, self.task_id, failed, self.generation).await
    }

    /// Flush the component, then (only if that succeeded) commit the group offsets of what was
    /// put. A flush cancelled while retrying commits nothing (the records are put again after a
    /// restart); at a stop the task is already cancelled, so its last flush gets one try.
    async fn flush_and_commit(
        &mut self,
        assigned: &mut [Assigned],
        cancel: &CancellationToken,
    ) -> Result<(), TaskError> {
        if assigned.iter().all(|slot| slot.position == slot.committed) {
            return Ok(());
        }
        let failures = match retry!("flush", self.settings.retry, cancel, &self.metrics, self.handle.flush().await)? {
            Retried::Done(failures) => failures,
            Retried::Cancelled => return Ok(()),
        };
        if !failures.is_empty() {
            // Before the commit: a crash in between puts the records again, nothing is skipped.
            self.flush_failures(failures).await?;
        }
        let offsets: Vec<GroupOffset> = assigned
            .iter()
            .map(|slot| GroupOffset { topic: slot.topic.clone(), partition: slot.partition, offset: slot.position })
            .collect();
        let log = &self.log;
        let group = &self.group;
        let generation = self.generation;
        let committed = retry!(
            "offset commit",
            self.settings.retry,
            cancel,
            &self.metrics,
            log.commit_offsets(group, offsets.clone(), generation).await.map_err(TaskError::log("offset commit"))
        )?;
        if committed != Retried::Done(()) {
            return Ok(());
        }
        for slot in assigned.iter_mut() {
            slot.committed = slot.position;
        }
        self.metrics.committed_now();
        tracing::debug!("offsets committed");
        Ok(())
    }

    /// Wait until any assigned partition holds data past this task's position, the time
    /// passes, or the task is cancelled.
    async fn wait_for_data(
        &mut self,
        assigned: &[Assigned],
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), TaskError> {
        let requests: Vec<FetchRequest> = assigned
            .iter()
            .map(|slot| FetchRequest { topic: slot.topic.clone(), partition: slot.partition, from: slot.position })
            .collect();
        tokio::select! {
            waited = self.log.wait_for_data(&requests, wait) => {
                waited.map_err(TaskError::log("waiting for data"))?;
            }
            () = cancel.cancelled() => {}
        }
        Ok(())
    }
}
