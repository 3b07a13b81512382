//! The sink task loop: read the assigned partitions from the consumer group's committed
//! offsets, `put` batches to the component, `flush` it, then commit the group offsets.
//!
//! Offsets are committed only after `flush` returned ok, so a crash repeats what was put since
//! the last flush (at-least-once) and never skips a record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::select_all;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weir_broker::{Bytes, Log};
use weir_connector_sdk::batch::{SinkBatchReader, SinkBatchWriter, SinkRecordRef};

use super::errors::{ErrorHandling, FailedRecord, Stage, handle_failures};
use super::handle::SinkHandle;
use super::retry::{Backoff, RetryPolicy, sleep_or_cancel};
use super::source::log_failure;
use super::status::TaskMetrics;
use crate::host::TaskError;
use crate::transform::{self, Chain};

/// How often a sink looks again for subscribed topics that do not exist yet.
const MISSING_TOPIC_CHECK: Duration = Duration::from_millis(100);

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
struct Assigned {
    topic: String,
    partition: u32,
    /// Next offset to read.
    position: i64,
    /// Offset the group has committed (the flushed position).
    committed: i64,
    end: watch::Receiver<i64>,
}

pub(crate) struct SinkTask {
    pub(crate) connector: Arc<str>,
    pub(crate) task_id: u32,
    pub(crate) handle: SinkHandle,
    pub(crate) log: Arc<Log>,
    pub(crate) metrics: Arc<TaskMetrics>,
    pub(crate) group: String,
    /// The topics the connector reads; a topic that does not exist yet is picked up when it
    /// appears (as a Kafka consumer's subscription would).
    pub(crate) topics: Vec<String>,
    /// How many tasks share the topics' partitions.
    pub(crate) task_count: u32,
    pub(crate) settings: SinkSettings,
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
        let mut missing = self.topics.clone();
        self.assign_new(&mut assigned, &mut missing)?;
        let result = self.run_loop(&mut assigned, &mut missing, &cancel).await;
        let result = match result {
            // A clean stop: make everything put durable and commit it, so a restart redoes nothing.
            Ok(()) => self.flush_and_commit(&mut assigned).await,
            Err(error) => Err(error),
        };
        let closed = self.handle.close().await;
        result.and(closed)
    }

    /// Take over this task's partitions of the topics in `missing` that exist now.
    fn assign_new(&self, assigned: &mut Vec<Assigned>, missing: &mut Vec<String>) -> Result<(), TaskError> {
        let mut still_missing = Vec::new();
        for topic in missing.drain(..) {
            let Some(config) = self.log.topic_config(&topic) else {
                still_missing.push(topic);
                continue;
            };
            for partition in
                (0..config.partitions).filter(|partition| owner(&topic, *partition, self.task_count) == self.task_id)
            {
                let start = self.log.start_offset(&topic, partition).map_err(log_failure)?;
                let committed = self.log.committed_offset(&self.group, &topic, partition).unwrap_or(start).max(start);
                assigned.push(Assigned {
                    topic: topic.clone(),
                    partition,
                    position: committed,
                    committed,
                    end: self.log.end_offset_watch(&topic, partition).map_err(log_failure)?,
                });
            }
            tracing::debug!(topic, "subscribed");
        }
        *missing = still_missing;
        Ok(())
    }

    async fn run_loop(
        &mut self,
        assigned: &mut Vec<Assigned>,
        missing: &mut Vec<String>,
        cancel: &CancellationToken,
    ) -> Result<(), TaskError> {
        let mut last_flush = Instant::now();
        let mut dirty = false;
        let mut first = 0usize;
        // Size the next batch buffer like the last one, so steady state allocates once per batch.
        let mut capacity = 64 << 10;
        while !cancel.is_cancelled() {
            let (batch, next_positions, bytes, failed) = self.gather(assigned, first, capacity)?;
            if !failed.is_empty() {
                self.metrics.errors.fetch_add(failed.len() as u64, std::sync::atomic::Ordering::Relaxed);
                handle_failures(&self.settings.errors, &self.log, &self.connector, self.task_id, failed)?;
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
            if records == 0 {
                if !missing.is_empty() {
                    self.assign_new(assigned, missing)?;
                }
                if dirty && last_flush.elapsed() >= self.settings.flush_interval {
                    self.flush_and_commit(assigned).await?;
                    dirty = false;
                    last_flush = Instant::now();
                }
                let mut wait = if dirty {
                    self.settings.flush_interval.saturating_sub(last_flush.elapsed())
                } else {
                    Duration::from_secs(1)
                };
                if !missing.is_empty() {
                    wait = wait.min(MISSING_TOPIC_CHECK);
                }
                wait_for_data(assigned, wait, cancel).await;
                continue;
            }
            let batch = batch.finish();
            self.put(&batch, cancel).await?;
            for (slot, position) in assigned.iter_mut().zip(next_positions) {
                slot.position = position;
            }
            self.metrics.add_batch(records, bytes);
            dirty = true;
            if last_flush.elapsed() >= self.settings.flush_interval {
                self.flush_and_commit(assigned).await?;
                dirty = false;
                last_flush = Instant::now();
            }
        }
        Ok(())
    }

    /// Read up to one batch from the assigned partitions, starting at `first` for fairness.
    fn gather(
        &self,
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
        for step in 0..count {
            let index = (first + step) % count;
            if writer.len() >= limit {
                break;
            }
            let slot = &mut assigned[index];
            // Marking the end offset seen here makes `wait_for_data` wake only on newer appends.
            let end = *slot.end.borrow_and_update();
            if positions[index] >= end {
                continue;
            }
            let records = self
                .log
                .read(&slot.topic, slot.partition, positions[index], self.settings.max_read_bytes)
                .map_err(log_failure)?;
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

    #[allow(clippy::ptr_arg)]
    async fn put(&mut self, batch: &Vec<u8>, cancel: &CancellationToken) -> Result<(), TaskError> {
        let mut backoff = Backoff::new(self.settings.retry);
        loop {
            match self.handle.put(batch).await {
                Ok(failures) if failures.is_empty() => return Ok(()),
                Ok(failures) => {
                    self.metrics.errors.fetch_add(failures.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    let records: Vec<SinkRecordRef<'_>> = match SinkBatchReader::new(batch) {
                        Ok(reader) => reader.filter_map(Result::ok).collect(),
                        Err(_) => Vec::new(),
                    };
                    let failed = failures
                        .into_iter()
                        .map(|failure| match records.get(failure.index as usize) {
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
                                context: Vec::new(),
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
                                context: Vec::new(),
                            },
                        })
                        .collect();
                    return handle_failures(&self.settings.errors, &self.log, &self.connector, self.task_id, failed);
                }
                Err(error) if error.is_retriable() => {
                    self.metrics.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(wait) = backoff.next_wait() else { return Err(error) };
                    tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "put failed, retrying");
                    if !sleep_or_cancel(wait, cancel).await {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn flush_and_commit(&mut self, assigned: &mut [Assigned]) -> Result<(), TaskError> {
        if assigned.iter().all(|slot| slot.position == slot.committed) {
            return Ok(());
        }
        let mut backoff = Backoff::new(self.settings.retry);
        loop {
            match self.handle.flush().await {
                Ok(()) => break,
                Err(error) if error.is_retriable() => {
                    let Some(wait) = backoff.next_wait() else { return Err(error) };
                    tracing::warn!(%error, "flush failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(error) => return Err(error),
            }
        }
        let offsets: Vec<(&str, u32, i64)> =
            assigned.iter().map(|slot| (slot.topic.as_str(), slot.partition, slot.position)).collect();
        self.log.commit_offsets(&self.group, &offsets).map_err(log_failure)?;
        for slot in assigned.iter_mut() {
            slot.committed = slot.position;
        }
        self.metrics.committed_now();
        tracing::debug!("offsets committed");
        Ok(())
    }
}

/// Wait until any assigned partition grows, the time passes, or the task is cancelled.
async fn wait_for_data(assigned: &mut [Assigned], wait: Duration, cancel: &CancellationToken) {
    if assigned.is_empty() {
        sleep_or_cancel(wait, cancel).await;
        return;
    }
    let changes = select_all(assigned.iter_mut().map(|slot| Box::pin(slot.end.changed())));
    tokio::select! {
        _ = changes => {}
        () = tokio::time::sleep(wait) => {}
        () = cancel.cancelled() => {}
    }
}
