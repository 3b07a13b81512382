//! The source task loop: poll the component, route records to partitions, append them to the
//! log, store the positions in the offsets topic, then `commit` them to the component.
//!
//! The order is the guarantee: positions are stored only after the append is durable, and the
//! component hears `commit` only after the positions are stored. A crash anywhere in between
//! repeats records (at-least-once), never loses them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_broker::partition_for_key;
use weir_connector_sdk::SourceOffset;
use weir_connector_sdk::batch::SourceBatchReader;

use super::errors::{ErrorHandling, FailedRecord, Stage, handle_failures};
use super::handle::SourceHandle;
use super::retry::{Retried, RetryPolicy, retry, sleep_or_cancel};
use super::status::TaskMetrics;
use crate::host::TaskError;
use crate::keyed_store::now_ms;
use crate::log::{Batches, Bytes, EventLog, Generation, PartitionBatch, Record, TopicConfig};
use crate::state_store::OffsetStore;
use crate::transform::{self, Chain};

/// Longest pause between polls of a source that has nothing ready.
const MAX_IDLE_WAIT: Duration = Duration::from_millis(100);

/// Source-loop settings.
#[derive(Debug, Clone)]
pub(crate) struct SourceSettings {
    /// Most records asked for per poll.
    pub(crate) batch_size: u32,
    /// Partitions of topics created for this connector's records.
    pub(crate) default_partitions: u32,
    pub(crate) retry: RetryPolicy,
    pub(crate) errors: ErrorHandling,
    /// Transforms applied to each record before it is routed.
    pub(crate) transforms: Arc<Chain>,
}

pub(crate) struct SourceTask {
    pub(crate) connector: Arc<str>,
    pub(crate) task_id: u32,
    pub(crate) handle: SourceHandle,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) offsets: Arc<OffsetStore>,
    /// The generation of the task's assignment: every append and offset commit carries it.
    pub(crate) generation: Generation,
    pub(crate) metrics: Arc<TaskMetrics>,
    /// Told of each topic the task writes to for the first time in this run (the connector's
    /// active topics).
    pub(crate) on_new_topic: crate::supervisor::OnNewTopic,
    pub(crate) settings: SourceSettings,
}

/// How records of one topic are spread.
struct Route {
    partitions: u32,
    /// Next partition for a record with no key.
    round_robin: u32,
}

/// A polled batch, routed and ready to append.
struct Routed {
    batches: BTreeMap<(String, u32), Vec<Record>>,
    positions: Vec<SourceOffset>,
    /// Records that cannot be written (tolerated: they go to the dead-letter topic).
    failed: Vec<FailedRecord>,
    records: u64,
    bytes: u64,
}

impl SourceTask {
    /// Run until cancelled (then finish the batch in hand, and close) or until the task fails.
    #[tracing::instrument(name = "source_task", skip_all, fields(connector = %self.connector, task = self.task_id))]
    pub(crate) async fn run(mut self, cancel: CancellationToken) -> Result<(), TaskError> {
        let result = self.run_loop(&cancel).await;
        let closed = self.handle.close().await;
        result.and(closed)
    }

    async fn run_loop(&mut self, cancel: &CancellationToken) -> Result<(), TaskError> {
        let mut routes: HashMap<String, Route> = HashMap::new();
        let mut idle_wait = Duration::from_millis(1);
        // The batch being made durable on the blocking pool while the next one is polled: the
        // component's work overlaps the log's I/O. Commit order is kept: a batch is committed
        // before the next one is handed to the log.
        let mut pending: Option<Pending> = None;
        while !cancel.is_cancelled() {
            let polled = self.poll(cancel).await;
            // The batch before this poll is made durable whatever the poll did; the component
            // hears about it only if the poll left it usable.
            let finished = match pending.take() {
                Some(pending) => self.finish(pending, polled.is_ok()).await,
                None => Ok(()),
            };
            let polled = polled?;
            finished?;
            let Some(batch) = polled else { break };
            let routed = self.route(batch, &mut routes).await?;
            self.metrics.errors.fetch_add(routed.failed.len() as u64, std::sync::atomic::Ordering::Relaxed);
            if routed.records == 0 && routed.failed.is_empty() {
                sleep_or_cancel(idle_wait, cancel).await;
                idle_wait = (idle_wait * 2).min(MAX_IDLE_WAIT);
                continue;
            }
            idle_wait = Duration::from_millis(1);
            pending = Some(self.persist(routed, cancel));
        }
        if let Some(pending) = pending.take() {
            self.finish(pending, true).await?;
        }
        Ok(())
    }

    /// Start making a routed batch durable (failed records to the dead-letter topic, then the
    /// records with their positions) in a task of its own, so the next poll overlaps it.
    fn persist(&self, routed: Routed, cancel: &CancellationToken) -> Pending {
        let log = self.log.clone();
        let offsets = self.offsets.clone();
        let metrics = self.metrics.clone();
        let connector = self.connector.clone();
        let cancel = cancel.clone();
        let positions = routed.positions.clone();
        let batches: Batches = routed
            .batches
            .into_iter()
            .map(|((topic, partition), records)| PartitionBatch { topic, partition, records })
            .collect();
        let failed = routed.failed;
        let errors = self.settings.errors.clone();
        let policy = self.settings.retry;
        let task = self.task_id;
        let generation = self.generation;
        let work = tokio::spawn(async move {
            // Failed records first: with tolerance `none` this fails the task before anything
            // of the batch is committed; with `all` they are in the dead-letter topic before
            // the positions covering them are stored.
            handle_failures(&errors, &*log, &connector, task, failed, generation).await?;
            // Positions are stored only after the records: a retry after a failure between the
            // two repeats the batch in hand, never skips it.
            let stored = retry!(
                "append",
                policy,
                &cancel,
                &metrics,
                offsets
                    .append_with_positions(&*log, &connector, batches.clone(), &positions, generation)
                    .await
                    .map_err(TaskError::log("append"))
            )?;
            Ok(stored == Retried::Done(()))
        });
        Pending { work, positions: routed.positions, records: routed.records, bytes: routed.bytes }
    }

    /// Wait for a persisted batch, then tell the component (unless it can no longer hear it).
    async fn finish(&mut self, pending: Pending, notify: bool) -> Result<(), TaskError> {
        let stored =
            pending.work.await.map_err(|source| TaskError::Panicked { what: "append", source: Arc::new(source) })??;
        if !stored {
            // Cancelled while retrying: the batch is not durable, so nothing is committed and a
            // restart polls it again.
            return Ok(());
        }
        if notify {
            self.handle.commit(&pending.positions).await?;
        }
        self.metrics.add_batch(pending.records, pending.bytes);
        self.metrics.committed_now();
        tracing::trace!(records = pending.records, "batch committed");
        Ok(())
    }

    /// Poll, retrying retriable errors with backoff. `None` when cancelled while retrying.
    async fn poll(&mut self, cancel: &CancellationToken) -> Result<Option<Bytes>, TaskError> {
        let max = self.settings.batch_size;
        match retry!("poll", self.settings.retry, cancel, &self.metrics, self.handle.poll(max).await)? {
            Retried::Done(batch) => Ok(Some(Bytes::from(batch))),
            Retried::Cancelled => Ok(None),
        }
    }

    async fn route(&mut self, batch: Bytes, routes: &mut HashMap<String, Route>) -> Result<Routed, TaskError> {
        let malformed = |error: &dyn std::fmt::Display| TaskError::MalformedBatch { reason: error.to_string() };
        let reader = SourceBatchReader::new(&batch).map_err(|error| malformed(&error))?;
        let now = now_ms();
        let mut routed =
            Routed { batches: BTreeMap::new(), positions: Vec::new(), failed: Vec::new(), records: 0, bytes: 0 };
        let mut last_positions: HashMap<&[u8], &[u8]> = HashMap::new();
        let mut partition_order: Vec<&[u8]> = Vec::new();
        for record in reader {
            let record = record.map_err(|error| malformed(&error))?;
            if last_positions.insert(record.source_partition, record.source_position).is_none() {
                partition_order.push(record.source_partition);
            }
            let source_context = || {
                vec![
                    ("__weir.errors.source.partition".to_owned(), record.source_partition.to_vec()),
                    ("__weir.errors.source.position".to_owned(), record.source_position.to_vec()),
                ]
            };
            // Zero-copy: keys, values and header values are slices of the polled buffer.
            let mut stored = Record {
                key: record.key.map(|key| batch.slice_ref(key)),
                value: record.value.map(|value| batch.slice_ref(value)),
                headers: record
                    .headers
                    .iter()
                    .map(|(name, value)| (name.to_owned(), value.map(|value| batch.slice_ref(value))))
                    .collect(),
                timestamp: record.timestamp.unwrap_or(now),
            };
            let mut topic = std::borrow::Cow::Borrowed(record.topic);
            let mut requested = record.partition;
            if !self.settings.transforms.is_empty() {
                let input = transform::Record {
                    topic: record.topic.to_owned(),
                    partition: record.partition,
                    offset: None,
                    timestamp: stored.timestamp,
                    key: stored.key.clone(),
                    value: stored.value.clone(),
                    headers: stored.headers.clone(),
                };
                match self.settings.transforms.apply(input) {
                    // Dropped (a filter): its position still counts as handled.
                    Ok(None) => continue,
                    Ok(Some(out)) => {
                        topic = std::borrow::Cow::Owned(out.topic);
                        requested = out.partition;
                        stored =
                            Record { key: out.key, value: out.value, headers: out.headers, timestamp: out.timestamp };
                    }
                    Err(error) => {
                        routed.failed.push(FailedRecord {
                            topic: record.topic.to_owned(),
                            partition: (record.partition >= 0).then_some(record.partition),
                            offset: None,
                            key: stored.key,
                            value: stored.value,
                            headers: stored.headers,
                            error: weir_connector_sdk::ConnectorError::Fatal(error.to_string()),
                            stage: Stage::Transformation,
                            context: source_context(),
                        });
                        continue;
                    }
                }
            }
            let route = match routes.get_mut(&*topic) {
                Some(route) => route,
                None => {
                    let partitions = self.ensure_topic(&topic).await?;
                    (self.on_new_topic)(topic.to_string());
                    routes.entry(topic.clone().into_owned()).or_insert(Route { partitions, round_robin: 0 })
                }
            };
            let partition = if requested >= 0 {
                let partition = requested as u32;
                if partition >= route.partitions {
                    let message = format!(
                        "the record names partition {partition} of topic {topic}, which has {} partitions",
                        route.partitions
                    );
                    routed.failed.push(FailedRecord {
                        topic: topic.into_owned(),
                        partition: Some(requested),
                        offset: None,
                        key: stored.key,
                        value: stored.value,
                        headers: stored.headers,
                        error: weir_connector_sdk::ConnectorError::Fatal(message),
                        stage: Stage::KafkaProduce,
                        context: source_context(),
                    });
                    continue;
                }
                partition
            } else if let Some(key) = &stored.key {
                partition_for_key(key, route.partitions)
            } else {
                let partition = route.round_robin % route.partitions;
                route.round_robin = route.round_robin.wrapping_add(1);
                partition
            };
            routed.bytes += (stored.key.as_ref().map_or(0, |key| key.len())
                + stored.value.as_ref().map_or(0, |value| value.len())) as u64;
            routed.records += 1;
            routed.batches.entry((topic.into_owned(), partition)).or_default().push(stored);
        }
        routed.positions = partition_order
            .into_iter()
            .map(|partition| SourceOffset {
                partition: partition.to_vec(),
                position: last_positions[partition].to_vec(),
            })
            .collect();
        Ok(routed)
    }

    async fn ensure_topic(&mut self, topic: &str) -> Result<u32, TaskError> {
        let config = TopicConfig { partitions: self.settings.default_partitions, ..TopicConfig::default() };
        self.log.ensure_topic(topic, config).await.map_err(TaskError::log("creating a topic"))
    }
}

/// A batch on its way into the log.
struct Pending {
    /// `true` once the records and positions are durable; `false` if cancelled while retrying.
    work: tokio::task::JoinHandle<Result<bool, TaskError>>,
    positions: Vec<SourceOffset>,
    records: u64,
    bytes: u64,
}
