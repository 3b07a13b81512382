//! Configuration of the log as a whole ([`LogConfig`]) and of each topic ([`TopicConfig`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::LogError;

/// The largest segment the format can address: index entries hold file positions as `u32`.
pub(crate) const MAX_SEGMENT_BYTES: u64 = u32::MAX as u64;
/// Most partitions one topic may have: each is a directory with open segment files, so a request
/// for millions (a typo, or a hostile CreateTopics) is refused instead of exhausting the disk's
/// inodes and the process's file descriptors.
pub(crate) const MAX_TOPIC_PARTITIONS: u32 = 10_000;

/// When appended data is forced to stable storage (fsync).
///
/// Every policy writes the data into the OS page cache before `append` returns, so **a crash of
/// the process (even SIGKILL) loses nothing with any policy**: the kernel still holds the pages
/// and writes them out. The policies differ only in what a power loss or kernel crash can take
/// (see each variant).
///
/// An fsync costs ~3 ms on this class of machine (~300 per second), so the log never syncs per
/// record: one append call (a whole batch) costs at most one fsync, and concurrent appends to one
/// partition share one (group commit). Sealed segments are always synced when they are rolled,
/// whatever the policy, which is why recovery only has to scan the last segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// `append` returns only after the partition's data is fsynced (`append_many`: after every
    /// touched partition is). Survives power loss: an acknowledged append is on disk.
    EveryBatch,
    /// A background thread fsyncs every partition written since its last pass, once per
    /// interval. A power loss loses at most about the last interval of appends.
    Interval(Duration),
    /// Never fsync appends (the OS writes pages back in its own time, typically within 30 s).
    /// A power loss can lose any data not yet written back. `Log::flush` still syncs on demand.
    Never,
}

/// Settings for the whole log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// When appends are fsynced.
    pub flush: FlushPolicy,
    /// Roll to a new segment when the active one would grow past this many bytes (per-topic
    /// `segment_bytes` overrides it). At most 4 GiB - 1.
    pub segment_bytes: u64,
    /// Add an offset-index entry after at least this many bytes of batches. Smaller means more
    /// index memory and shorter scans on reads.
    pub index_interval_bytes: u32,
    /// Split one append into several RecordBatches when its encoding would pass this size (a
    /// single larger record still gets a batch of its own).
    pub max_batch_bytes: usize,
    /// Segment size of a `Compact` topic that sets no `segment_bytes` of its own. Smaller than
    /// `segment_bytes` because the cleaner only works on sealed segments: with 64 MiB segments
    /// a small internal topic (`weir-offsets`) would seal nothing for weeks and replay everything
    /// at each start. Kafka does the same for its own offsets topic
    /// (`offsets.topic.segment.bytes`).
    pub compact_segment_bytes: u64,
    /// How often the background cleaner looks for `Compact` partitions worth cleaning (Kafka's
    /// `log.cleaner.backoff.ms`); `None` runs no cleaner thread ([`Log::compact`] still works).
    ///
    /// [`Log::compact`]: crate::Log::compact
    pub cleaner_interval: Option<Duration>,
    /// The background cleaner cleans a partition once the bytes of its sealed segments not yet
    /// cleaned are at least this percentage of all its sealed bytes (Kafka's
    /// `log.cleaner.min.cleanable.ratio`, 0.5, as a percentage). 0 cleans whenever a segment
    /// was sealed since the last clean.
    pub min_cleanable_dirty_percent: u8,
}

impl Default for LogConfig {
    /// Fsync every batch, 64 MiB segments (1 MiB for compacted topics), an index entry every
    /// 4 KiB, batches up to 1 MiB, a cleaner pass every 15 s that cleans partitions at least
    /// half dirty.
    fn default() -> Self {
        LogConfig {
            flush: FlushPolicy::EveryBatch,
            segment_bytes: 64 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_batch_bytes: 1024 * 1024,
            compact_segment_bytes: 1024 * 1024,
            cleaner_interval: Some(Duration::from_secs(15)),
            min_cleanable_dirty_percent: 50,
        }
    }
}

impl LogConfig {
    pub(crate) fn validate(&self) -> Result<(), LogError> {
        let invalid = |reason: String| Err(LogError::InvalidLogConfig { reason });
        if self.segment_bytes == 0 || self.segment_bytes > MAX_SEGMENT_BYTES {
            return invalid(format!("segment_bytes must be in 1..={MAX_SEGMENT_BYTES}, got {}", self.segment_bytes));
        }
        if self.compact_segment_bytes == 0 || self.compact_segment_bytes > MAX_SEGMENT_BYTES {
            return invalid(format!(
                "compact_segment_bytes must be in 1..={MAX_SEGMENT_BYTES}, got {}",
                self.compact_segment_bytes
            ));
        }
        if self.min_cleanable_dirty_percent > 100 {
            return invalid(format!(
                "min_cleanable_dirty_percent must be at most 100, got {}",
                self.min_cleanable_dirty_percent
            ));
        }
        if self.cleaner_interval.is_some_and(|interval| interval.is_zero()) {
            return invalid("the cleaner interval must be longer than zero".to_owned());
        }
        if self.max_batch_bytes == 0 {
            return invalid("max_batch_bytes must be at least 1".to_owned());
        }
        if let FlushPolicy::Interval(interval) = self.flush
            && interval.is_zero()
        {
            return invalid("the flush interval must be longer than zero".to_owned());
        }
        Ok(())
    }
}

/// Kafka's default `delete.retention.ms`: one day.
pub(crate) const DEFAULT_DELETE_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// What happens to old data in a topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CleanupPolicy {
    /// Delete whole old segments by `retention_ms` / `retention_bytes`.
    #[default]
    Delete,
    /// Keep the latest record per key: the cleaner rewrites sealed segments without the records
    /// a later one of the same key supersedes, and drops tombstones (null values) after
    /// `delete_retention_ms` (see the `cleaner` module). Every record needs a key; appending one
    /// without is refused, as Kafka refuses it. Retention settings do not apply.
    Compact,
}

/// Settings of one topic, stored with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicConfig {
    /// Number of partitions (at least 1). Fixed at creation.
    pub partitions: u32,
    /// Segment size for this topic; `None` uses the log's `segment_bytes`.
    pub segment_bytes: Option<u64>,
    /// Delete sealed segments whose newest record is older than this many milliseconds; `None`
    /// keeps them forever.
    pub retention_ms: Option<i64>,
    /// Delete the oldest sealed segments while a partition holds more than this many bytes;
    /// `None` sets no limit.
    pub retention_bytes: Option<u64>,
    /// Delete or compact.
    pub cleanup_policy: CleanupPolicy,
    /// On a `Compact` topic, how long a tombstone (a record with a null value) is kept after
    /// its timestamp, so a consumer reading from the start sees the delete (Kafka's
    /// `delete.retention.ms`, default one day).
    pub delete_retention_ms: i64,
}

impl Default for TopicConfig {
    /// One partition, the log's segment size, no retention limits, `Delete`.
    fn default() -> Self {
        TopicConfig {
            partitions: 1,
            segment_bytes: None,
            retention_ms: None,
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
        }
    }
}

impl TopicConfig {
    /// A default config with `partitions` partitions.
    pub fn with_partitions(partitions: u32) -> Self {
        TopicConfig { partitions, ..TopicConfig::default() }
    }

    /// The segment size this topic rolls at under `log`.
    pub(crate) fn effective_segment_bytes(&self, log: &LogConfig) -> u64 {
        self.segment_bytes.unwrap_or(match self.cleanup_policy {
            CleanupPolicy::Delete => log.segment_bytes,
            CleanupPolicy::Compact => log.compact_segment_bytes,
        })
    }

    pub(crate) fn validate(&self, topic: &str) -> Result<(), LogError> {
        let invalid = |reason: String| Err(LogError::InvalidTopicConfig { topic: topic.to_owned(), reason });
        if self.partitions == 0 || self.partitions > MAX_TOPIC_PARTITIONS {
            return invalid(format!("partitions must be in 1..={MAX_TOPIC_PARTITIONS}, got {}", self.partitions));
        }
        if let Some(segment_bytes) = self.segment_bytes
            && (segment_bytes == 0 || segment_bytes > MAX_SEGMENT_BYTES)
        {
            return invalid(format!("segment_bytes must be in 1..={MAX_SEGMENT_BYTES}, got {segment_bytes}"));
        }
        if let Some(retention_ms) = self.retention_ms
            && retention_ms < 0
        {
            return invalid(format!("retention_ms must not be negative (use None for no limit), got {retention_ms}"));
        }
        if self.delete_retention_ms < 0 {
            return invalid(format!("delete_retention_ms must not be negative, got {}", self.delete_retention_ms));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_config_rejects_zero_partitions_and_negative_retention() {
        assert!(TopicConfig::with_partitions(0).validate("t").is_err());
        let negative = TopicConfig { retention_ms: Some(-1), ..TopicConfig::default() };
        assert!(negative.validate("t").is_err());
        assert!(TopicConfig::default().validate("t").is_ok());
    }

    #[test]
    fn topic_config_round_trips_through_json_with_kafka_policy_names() {
        let config = TopicConfig {
            partitions: 3,
            segment_bytes: Some(1024),
            retention_ms: Some(60_000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Compact,
            delete_retention_ms: 1000,
        };
        let json = serde_json::to_string(&config).expect("serialize");
        assert!(json.contains("\"compact\""));
        let back: TopicConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, config);
    }

    #[test]
    fn log_config_rejects_zero_interval_and_oversized_segments() {
        let zero_interval = LogConfig { flush: FlushPolicy::Interval(Duration::ZERO), ..LogConfig::default() };
        assert!(zero_interval.validate().is_err());
        let huge = LogConfig { segment_bytes: MAX_SEGMENT_BYTES + 1, ..LogConfig::default() };
        assert!(huge.validate().is_err());
        assert!(LogConfig::default().validate().is_ok());
    }
}
