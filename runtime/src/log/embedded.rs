//! [`EmbeddedLog`]: the [`EventLog`] over the in-process broker.
//!
//! The broker's calls are synchronous and may block on file I/O and fsync (one fsync per appended
//! batch by default, ~3 ms here), so each call runs on tokio's blocking pool. Waiting for data uses
//! the broker's per-partition end-offset watches and blocks nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use weir_broker::{AppendResult, Log, LogConfig, TopicConfig};

use super::LogError;
use super::event_log::{
    Batches, EventLog, FetchRequest, FetchedPartition, Generation, GroupOffset, OffsetRange, PartitionBatch,
};

/// The embedded broker behind the log seam. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    log: Arc<Log>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the broker's data directory and recovers it.
    ///
    /// # Errors
    /// When the directory is locked by another process, is unreadable, or holds corrupt metadata.
    pub async fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self, LogError> {
        let dir = dir.as_ref().to_path_buf();
        let log = tokio::task::spawn_blocking(move || Log::open(dir, config))
            .await
            .map_err(|source| LogError::Blocking { source })??;
        Ok(Self { log })
    }

    /// The broker itself, for serving this same log over the Kafka protocol
    /// (`weir_broker::kafka::KafkaServer`) next to the connectors that use it.
    pub fn broker(&self) -> &Arc<Log> {
        &self.log
    }

    /// Runs a broker call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Log) -> Result<T, weir_broker::LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let log = self.log.clone();
        Ok(tokio::task::spawn_blocking(move || call(&log)).await.map_err(|source| LogError::Blocking { source })??)
    }
}

/// The broker's view of a batch list: borrowed slices, no copies.
fn slices(batches: &[PartitionBatch]) -> Vec<(&str, u32, &[weir_broker::Record])> {
    batches.iter().map(|batch| (batch.topic.as_str(), batch.partition, batch.records.as_slice())).collect()
}

fn ensure(log: &Log, topic: &str, config: TopicConfig) -> Result<u32, weir_broker::LogError> {
    if let Some(existing) = log.topic_config(topic) {
        return Ok(existing.partitions);
    }
    match log.ensure_topic(topic, config.clone()) {
        Ok(()) => {
            tracing::info!(topic, partitions = config.partitions, "created topic");
            Ok(config.partitions)
        }
        // Created meanwhile by someone else, maybe with another count: theirs stands.
        Err(error) => log.topic_config(topic).map(|existing| existing.partitions).ok_or(error),
    }
}

#[async_trait::async_trait]
impl EventLog for EmbeddedLog {
    async fn ensure_topic(&self, topic: &str, config: TopicConfig) -> Result<u32, LogError> {
        if let Some(existing) = self.log.topic_config(topic) {
            // The common case answers from memory without a trip to the blocking pool.
            return Ok(existing.partitions);
        }
        let topic = topic.to_owned();
        self.blocking(move |log| ensure(log, &topic, config)).await
    }

    async fn topics(&self) -> Result<Vec<String>, LogError> {
        Ok(self.log.topics())
    }

    async fn topic_config(&self, topic: &str) -> Result<Option<TopicConfig>, LogError> {
        // In memory: the broker keeps topic configs in a map.
        Ok(self.log.topic_config(topic))
    }

    async fn append(&self, batches: Batches, _generation: Generation) -> Result<Vec<AppendResult>, LogError> {
        self.blocking(move |log| log.append_many(&slices(&batches))).await
    }

    async fn append_with_offsets(
        &self,
        batches: Batches,
        offsets: PartitionBatch,
        _generation: Generation,
    ) -> Result<(), LogError> {
        self.blocking(move |log| {
            log.append_atomic(&slices(&batches), (&offsets.topic, offsets.partition, &offsets.records)).map(drop)
        })
        .await
    }

    async fn fetch(
        &self,
        requests: Vec<FetchRequest>,
        max_bytes_per_partition: usize,
        max_records: usize,
    ) -> Result<Vec<FetchedPartition>, LogError> {
        // Partitions already read to their end need no trip to the blocking pool.
        let mut wanted = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            if self.log.end_offset(&request.topic, request.partition)? > request.from {
                wanted.push((index, request));
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.blocking(move |log| {
            let mut fetched = Vec::new();
            let mut read = 0usize;
            for (index, request) in wanted {
                if read >= max_records {
                    break;
                }
                let records = log.read(&request.topic, request.partition, request.from, max_bytes_per_partition)?;
                if !records.is_empty() {
                    read += records.len();
                    fetched.push(FetchedPartition { request: index, records });
                }
            }
            Ok(fetched)
        })
        .await
    }

    async fn offset_range(&self, topic: &str, partition: u32) -> Result<OffsetRange, LogError> {
        Ok(OffsetRange { start: self.log.start_offset(topic, partition)?, end: self.log.end_offset(topic, partition)? })
    }

    async fn wait_for_data(&self, requests: &[FetchRequest], timeout: Duration) -> Result<bool, LogError> {
        let mut watches = Vec::with_capacity(requests.len());
        for request in requests {
            let watch = self.log.end_offset_watch(&request.topic, request.partition)?;
            if *watch.borrow() > request.from {
                return Ok(true);
            }
            watches.push((watch, request.from));
        }
        if watches.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = {
                let changes = select_all(watches.iter_mut().map(|(watch, _)| Box::pin(watch.changed())));
                match tokio::time::timeout_at(deadline, changes).await {
                    Err(_elapsed) => return Ok(false),
                    Ok((result, _, _)) => result,
                }
            };
            // A closed sender means the topic is gone: the next read says so.
            if changed.is_err() || watches.iter().any(|(watch, from)| *watch.borrow() > *from) {
                return Ok(true);
            }
        }
    }

    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<GroupOffset>,
        _generation: Generation,
    ) -> Result<(), LogError> {
        let group = group.to_owned();
        self.blocking(move |log| {
            let offsets: Vec<(&str, u32, i64)> =
                offsets.iter().map(|offset| (offset.topic.as_str(), offset.partition, offset.offset)).collect();
            log.commit_offsets(&group, &offsets)
        })
        .await
    }

    async fn group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>, LogError> {
        // In memory: the broker keeps committed offsets in a map.
        Ok(self
            .log
            .group_offsets(group)
            .into_iter()
            .map(|(topic, partition, offset)| GroupOffset { topic, partition, offset })
            .collect())
    }

    async fn groups(&self) -> Result<Vec<String>, LogError> {
        Ok(self.log.groups())
    }

    async fn delete_group_offsets(&self, group: &str) -> Result<(), LogError> {
        let group = group.to_owned();
        self.blocking(move |log| log.delete_group_offsets(&group)).await
    }

    async fn flush(&self) -> Result<(), LogError> {
        self.blocking(Log::flush).await
    }
}
