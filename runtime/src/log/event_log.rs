//! The [`EventLog`] trait and the plain data that crosses it.

use std::fmt;
use std::time::Duration;

use weir_broker::{AppendResult, Record, StoredRecord, TopicConfig};

use super::LogError;

/// The generation of the assignment a write comes from.
///
/// Standalone, a worker takes a new generation at each start; in a worker group it is the
/// group's generation. Implementations may refuse writes of a generation older than the one they
/// last saw for that writer ([`LogError::Fenced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Generation(pub u64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The batches of one append, shared so that a retry resends them without copying.
pub type Batches = std::sync::Arc<[PartitionBatch]>;

/// Records for one partition of one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionBatch {
    pub topic: String,
    pub partition: u32,
    pub records: Vec<Record>,
}

/// What to read from one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub topic: String,
    pub partition: u32,
    /// The first offset wanted (a compacted or deleted offset starts at the next one stored).
    pub from: i64,
}

/// Records read from one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedPartition {
    /// The index of the request in the call's list.
    pub request: usize,
    pub records: Vec<StoredRecord>,
}

/// The offsets a partition holds: `start..end`; `end` is where the next record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub start: i64,
    pub end: i64,
}

/// One committed consumer-group offset: the next offset the group will read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupOffset {
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
}

/// The runtime's only way to the event log. See the [module docs](super).
///
/// Every method is async and cheap to call from an executor thread: an implementation that does
/// blocking I/O moves it off the executor itself.
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + fmt::Debug + 'static {
    // --- produce ---

    /// Creates the topic unless it exists; returns its partition count, which is the existing
    /// one if someone else created it first (with another count).
    ///
    /// # Errors
    /// An invalid name or config, or the log failing.
    async fn ensure_topic(&self, topic: &str, config: TopicConfig) -> Result<u32, LogError>;

    /// Every topic's name, sorted.
    ///
    /// # Errors
    /// The log failing.
    async fn topics(&self) -> Result<Vec<String>, LogError>;

    /// The topic's config, or `None` if it does not exist.
    ///
    /// # Errors
    /// The log failing.
    async fn topic_config(&self, topic: &str) -> Result<Option<TopicConfig>, LogError>;

    /// Appends each batch to its partition; durable (as the log's flush policy defines it) when
    /// this returns. Results are in input order. Not atomic across partitions: after an error
    /// some batches may be written.
    ///
    /// # Errors
    /// An unknown topic or partition, a fenced generation, or the log failing.
    async fn append(&self, batches: Batches, generation: Generation) -> Result<Vec<AppendResult>, LogError>;

    /// Appends a source task's records and the offset record covering them as one atomic write:
    /// when this returns both are durable, readers see neither before both, and after an error
    /// or a crash neither is in the log (the ground for exactly-once sources). An implementation
    /// that cannot make it atomic must at least write the offset record last, so that a failure
    /// in between repeats records and never skips them.
    ///
    /// # Errors
    /// As [`EventLog::append`]; neither the records nor the offsets are then written.
    async fn append_with_offsets(
        &self,
        batches: Batches,
        offsets: PartitionBatch,
        generation: Generation,
    ) -> Result<(), LogError>;

    // --- fetch ---

    /// Reads from several partitions in one call: from each request's offset up to about
    /// `max_bytes_per_partition`, visiting requests in order and stopping once `max_records`
    /// records were read (a partition's read is not cut short). Partitions with nothing to read
    /// are left out of the answer.
    ///
    /// # Errors
    /// An unknown topic or partition, a corrupt batch, or the log failing.
    async fn fetch(
        &self,
        requests: Vec<FetchRequest>,
        max_bytes_per_partition: usize,
        max_records: usize,
    ) -> Result<Vec<FetchedPartition>, LogError>;

    /// The partition's start and end offsets.
    ///
    /// # Errors
    /// An unknown topic or partition.
    async fn offset_range(&self, topic: &str, partition: u32) -> Result<OffsetRange, LogError>;

    /// Waits until one of the partitions holds data at or past its request's offset, or
    /// `timeout` passes. Returns at once if one already does. Returns whether data is there.
    ///
    /// # Errors
    /// An unknown topic or partition.
    async fn wait_for_data(&self, requests: &[FetchRequest], timeout: Duration) -> Result<bool, LogError>;

    // --- group offsets ---

    /// Durably stores the group's offsets for these partitions (others keep theirs).
    ///
    /// # Errors
    /// An unknown partition, a negative offset, a fenced generation, or the log failing.
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<GroupOffset>,
        generation: Generation,
    ) -> Result<(), LogError>;

    /// The group's committed offsets, sorted.
    ///
    /// # Errors
    /// The log failing.
    async fn group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>, LogError>;

    /// Every group with committed offsets, sorted.
    ///
    /// # Errors
    /// The log failing.
    async fn groups(&self) -> Result<Vec<String>, LogError>;

    /// Forgets every committed offset of the group.
    ///
    /// # Errors
    /// The log failing.
    async fn delete_group_offsets(&self, group: &str) -> Result<(), LogError>;

    /// Makes everything written so far durable (a clean shutdown's last step).
    ///
    /// # Errors
    /// The log failing.
    async fn flush(&self) -> Result<(), LogError>;
}
