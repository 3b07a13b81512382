//! [`Log`]: the embedded event log, its topics and their partitions.
//!
//! Layout of a data directory:
//!
//! ```text
//! <data_dir>/.lock                         held (flock) while a Log has the directory open
//! <data_dir>/topics/<topic>.json           topic metadata: name and TopicConfig
//! <data_dir>/topics/<topic>-<partition>/   segments: <base offset>.log / .index / .timeindex,
//!                                          and for compacted topics cleaner-checkpoint (and,
//!                                          while a clean swaps segments, *.cleaned / *.swap)
//! <data_dir>/groups/<group>.json           committed offsets of one consumer group
//! <data_dir>/transactions.journal          intents of atomic appends (see crate::transaction)
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

use crate::background::Background;
use crate::batch::{CheckedBatches, EncodedBatches};
use crate::cleaner::{CleanSettings, CompactionStats, clean_partition};
use crate::config::{CleanupPolicy, FlushPolicy, LogConfig, TopicConfig};
use crate::error::LogError;
use crate::fs_util::{lock, read, remove_dir_if_exists, remove_file_if_exists, run_parallel, sync_dir, write};
use crate::groups::GroupStore;
use crate::partition::Partition;
use crate::record::{AppendResult, Record, StoredRecord};
use crate::retention::RetentionLimits;
use crate::topic::{metadata_path, partition_dir, read_metadata, validate_topic_name, write_metadata};
use crate::transaction::Journal;

mod atomic;

type TopicMap = RwLock<BTreeMap<String, Arc<Topic>>>;

#[derive(Debug)]
struct Topic {
    config: RwLock<TopicConfig>,
    partitions: Vec<Arc<Partition>>,
}

impl Topic {
    fn config_policy(&self) -> CleanupPolicy {
        read(&self.config).cleanup_policy
    }
}

/// The embedded, durable, append-only event log.
///
/// Shared as `Arc<Log>`; every method takes `&self` and is safe to call from many threads (or
/// tokio tasks: appends are short, synchronous file writes). Each partition has its own lock.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    topics_dir: PathBuf,
    config: LogConfig,
    /// Shared with the background flusher, which needs the partitions but not the log.
    topics: Arc<TopicMap>,
    /// Serializes topic creation, deletion and reconfiguration.
    admin: Mutex<()>,
    groups: GroupStore,
    journal: Journal,
    flusher: Mutex<Option<Background>>,
    cleaner: Mutex<Option<Background>>,
    /// Holds the directory's lock for the life of the log.
    _lock_file: File,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

impl Log {
    /// Opens (creating if needed) the log in `dir` and recovers every partition: each partition's
    /// last segment is scanned and a torn or corrupt tail is truncated, keeping every whole, valid
    /// batch, and an interrupted cleaner swap is finished or undone. Starts the background
    /// flusher for [`FlushPolicy::Interval`] and the cleaner (unless `cleaner_interval` is
    /// `None`); they stop when the last `Arc` is dropped or on [`Log::close`].
    ///
    /// # Errors
    ///
    /// [`LogError::InvalidLogConfig`]; [`LogError::DirectoryLocked`] if another `Log` has the
    /// directory open; [`LogError::MetadataCorrupt`] for an unreadable topic or group file;
    /// [`LogError::Io`].
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Arc<Log>, LogError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(LogError::io(&dir))?;
        let lock_path = dir.join(".lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(LogError::io(&lock_path))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LogError::DirectoryLocked { path: lock_path });
            }
            Err(TryLockError::Error(source)) => {
                return Err(LogError::Io { path: lock_path, source });
            }
        }

        let topics_dir = dir.join("topics");
        std::fs::create_dir_all(&topics_dir).map_err(LogError::io(&topics_dir))?;
        let topics = Self::load_topics(&topics_dir, &config)?;
        let (journal, intents) = Journal::open(&dir)?;
        crate::transaction::recover(&intents, |topic, partition| {
            topics.get(topic).and_then(|topic| topic.partitions.get(partition as usize).cloned())
        })?;
        journal.clear()?;
        let groups = GroupStore::open(dir.join("groups"))?;
        tracing::info!(dir = %dir.display(), topics = topics.len(), flush = ?config.flush, "opened log");

        let log = Arc::new(Log {
            dir,
            topics_dir,
            config,
            topics: Arc::new(RwLock::new(topics)),
            admin: Mutex::new(()),
            groups,
            journal,
            flusher: Mutex::new(None),
            cleaner: Mutex::new(None),
            _lock_file: lock_file,
        });
        if let FlushPolicy::Interval(interval) = log.config.flush {
            let topics = Arc::clone(&log.topics);
            let flusher = Background::spawn("weir-log-flusher", move || flush_topics(&topics), interval, &log.dir)?;
            *lock(&log.flusher) = Some(flusher);
        }
        if let Some(interval) = log.config.cleaner_interval {
            let topics = Arc::clone(&log.topics);
            let config = log.config.clone();
            let percent = Some(config.min_cleanable_dirty_percent);
            let work = move || compact_topics(&topics, &config, percent, now_ms(), None).map(drop);
            *lock(&log.cleaner) = Some(Background::spawn("weir-log-cleaner", work, interval, &log.dir)?);
        }
        Ok(log)
    }

    fn load_topics(topics_dir: &Path, config: &LogConfig) -> Result<BTreeMap<String, Arc<Topic>>, LogError> {
        let mut topics = BTreeMap::new();
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(topics_dir).map_err(LogError::io(topics_dir))? {
            let entry = entry.map_err(LogError::io(topics_dir))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(LogError::io(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if file_type.is_dir() {
                dirs.push((name, path));
            } else if name.ends_with(".tmp") {
                remove_file_if_exists(&path)?;
            } else if name.ends_with(".json") {
                let (topic, topic_config) = read_metadata(&path)?;
                let name: Arc<str> = topic.as_str().into();
                let segment_bytes = topic_config.effective_segment_bytes(config);
                let partitions = (0..topic_config.partitions)
                    .map(|partition| {
                        Partition::open(
                            partition_dir(topics_dir, &topic, partition),
                            Arc::clone(&name),
                            partition,
                            config.index_interval_bytes,
                            segment_bytes,
                        )
                        .map(Arc::new)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                topics.insert(topic, Arc::new(Topic { config: RwLock::new(topic_config), partitions }));
            }
        }
        // A partition directory without metadata is what an interrupted create or delete leaves.
        let expected: std::collections::HashSet<PathBuf> = topics
            .values()
            .flat_map(|topic| topic.partitions.iter().map(|partition| partition.dir().to_owned()))
            .collect();
        for (name, path) in dirs {
            if !expected.contains(&path) {
                tracing::warn!(dir = %path.display(), name, "removing partition directory of a topic that does not exist");
                remove_dir_if_exists(&path)?;
            }
        }
        Ok(topics)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log's configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        read(&self.topics).get(name).cloned().ok_or_else(|| LogError::UnknownTopic { topic: name.to_owned() })
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, LogError> {
        self.topic(topic)?
            .partitions
            .get(partition as usize)
            .cloned()
            .ok_or_else(|| LogError::UnknownPartition { topic: topic.to_owned(), partition })
    }

    /// Creates the topic, or does nothing if it exists with the same partition count (its stored
    /// config is then kept; see [`Log::update_topic_config`] to change it).
    ///
    /// # Errors
    ///
    /// [`LogError::PartitionCountMismatch`] if it exists with another count;
    /// [`LogError::InvalidTopicName`]; [`LogError::InvalidTopicConfig`]; [`LogError::Io`].
    pub fn ensure_topic(&self, name: &str, config: TopicConfig) -> Result<(), LogError> {
        validate_topic_name(name)?;
        config.validate(name)?;
        let _admin = lock(&self.admin);
        if let Some(existing) = read(&self.topics).get(name) {
            let existing = existing.partitions.len() as u32;
            if existing != config.partitions {
                return Err(LogError::PartitionCountMismatch {
                    topic: name.to_owned(),
                    existing,
                    requested: config.partitions,
                });
            }
            return Ok(());
        }
        let partitions = self.create_partition_dirs(name, 0..config.partitions, &config)?;
        write_metadata(&self.topics_dir, name, &config)?;
        tracing::info!(topic = name, partitions = config.partitions, "created topic");
        write(&self.topics).insert(name.to_owned(), Arc::new(Topic { config: RwLock::new(config), partitions }));
        Ok(())
    }

    /// Creates the directories of partitions `range` of topic `name`, empty, and syncs the topics
    /// directory; the caller then writes the topic's metadata, the commit point. Leftovers of an
    /// interrupted create, growth or delete of a topic of the same name are removed first.
    fn create_partition_dirs(
        &self,
        name: &str,
        range: std::ops::Range<u32>,
        config: &TopicConfig,
    ) -> Result<Vec<Arc<Partition>>, LogError> {
        let topic_name: Arc<str> = name.into();
        let segment_bytes = config.effective_segment_bytes(&self.config);
        let mut partitions = Vec::with_capacity(range.len());
        for partition in range {
            let dir = partition_dir(&self.topics_dir, name, partition);
            remove_dir_if_exists(&dir)?;
            partitions.push(Arc::new(Partition::open(
                dir,
                Arc::clone(&topic_name),
                partition,
                self.config.index_interval_bytes,
                segment_bytes,
            )?));
        }
        sync_dir(&self.topics_dir)?;
        Ok(partitions)
    }

    /// Changes a topic's segment size, retention and cleanup policy. The partition count cannot
    /// change.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`]; [`LogError::PartitionCountMismatch`];
    /// [`LogError::InvalidTopicConfig`]; [`LogError::Io`].
    pub fn update_topic_config(&self, name: &str, config: TopicConfig) -> Result<(), LogError> {
        config.validate(name)?;
        let _admin = lock(&self.admin);
        let topic = self.topic(name)?;
        let existing = topic.partitions.len() as u32;
        if existing != config.partitions {
            return Err(LogError::PartitionCountMismatch {
                topic: name.to_owned(),
                existing,
                requested: config.partitions,
            });
        }
        write_metadata(&self.topics_dir, name, &config)?;
        let segment_bytes = config.effective_segment_bytes(&self.config);
        for partition in &topic.partitions {
            partition.set_segment_bytes(segment_bytes);
        }
        *write(&topic.config) = config;
        Ok(())
    }

    /// Grows a topic to `partitions` partitions (Kafka's CreatePartitions): the new ones start
    /// empty; the existing ones and their data stay as they are. Keyed records written from now
    /// on may land in other partitions than before, as in Kafka.
    ///
    /// The topic's metadata file is the commit point: a crash before it is rewritten leaves the
    /// new partition directories without metadata, and opening the log removes them.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`]; [`LogError::PartitionsNotIncreased`] when `partitions` is
    /// not above the current count; [`LogError::InvalidTopicConfig`]; [`LogError::Io`].
    pub fn create_partitions(&self, name: &str, partitions: u32) -> Result<(), LogError> {
        let _admin = lock(&self.admin);
        let topic = self.topic(name)?;
        let existing = topic.partitions.len() as u32;
        if partitions <= existing {
            return Err(LogError::PartitionsNotIncreased { topic: name.to_owned(), existing, requested: partitions });
        }
        let mut config = read(&topic.config).clone();
        config.partitions = partitions;
        config.validate(name)?;
        let mut all = topic.partitions.clone();
        all.extend(self.create_partition_dirs(name, existing..partitions, &config)?);
        write_metadata(&self.topics_dir, name, &config)?;
        tracing::info!(topic = name, from = existing, to = partitions, "added partitions");
        write(&self.topics).insert(name.to_owned(), Arc::new(Topic { config: RwLock::new(config), partitions: all }));
        Ok(())
    }

    /// The topic's config, if the topic exists.
    pub fn topic_config(&self, name: &str) -> Option<TopicConfig> {
        let topic = read(&self.topics).get(name).cloned()?;
        let config = read(&topic.config).clone();
        Some(config)
    }

    /// All topic names, sorted.
    pub fn topics(&self) -> Vec<String> {
        read(&self.topics).keys().cloned().collect()
    }

    /// Deletes the topic, its data, and every group's committed offsets for it. Appends racing
    /// the deletion fail with [`LogError::UnknownTopic`]; readers that already hold segment
    /// handles finish reading; end-offset watchers see their sender close.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`]; [`LogError::Io`].
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let _admin = lock(&self.admin);
        let topic =
            write(&self.topics).remove(name).ok_or_else(|| LogError::UnknownTopic { topic: name.to_owned() })?;
        for partition in &topic.partitions {
            partition.mark_deleted();
        }
        // The metadata file goes first: it is the commit point (see `topic.rs`).
        remove_file_if_exists(&metadata_path(&self.topics_dir, name))?;
        sync_dir(&self.topics_dir)?;
        for partition in &topic.partitions {
            remove_dir_if_exists(partition.dir())?;
        }
        self.groups.forget_topic(name)?;
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Appends `records` to a partition as one RecordBatch (several if larger than
    /// `max_batch_bytes`), with consecutive offsets from the current log end. With
    /// [`FlushPolicy::EveryBatch`] it returns after the data is fsynced. An empty `records` writes
    /// nothing and returns `last_offset = base_offset - 1`.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`]; [`LogError::Encode`] for a
    /// field over 2 GiB; [`LogError::Io`] (a prefix of a multi-batch append may then be written).
    pub fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<AppendResult, LogError> {
        let handle = self.writable_partition(topic, partition, records)?;
        let mut encoded = self.encode(topic, partition, records)?;
        let result = handle.append(&mut encoded)?;
        if self.config.flush == FlushPolicy::EveryBatch && result.record_count() > 0 {
            handle.sync_up_to(result.last_offset + 1)?;
        }
        tracing::trace!(topic, partition, base_offset = result.base_offset, records = records.len(), "appended");
        Ok(result)
    }

    /// Checks RecordBatches as a Kafka producer sent them for one partition (framing, CRC32C,
    /// bounded record counts, every record's framing, compressed ones decompressed to check),
    /// without writing anything, so a caller can check producer sequences before appending.
    ///
    /// # Errors
    ///
    /// [`LogError::InvalidBatch`]; [`LogError::KeyRequired`] for a record without a key on a
    /// compacted topic.
    pub fn check_batches(&self, topic: &str, partition: u32, bytes: &Bytes) -> Result<CheckedBatches, LogError> {
        let invalid = |source| LogError::InvalidBatch { topic: topic.to_owned(), partition, source };
        let checked = CheckedBatches::check(bytes).map_err(invalid)?;
        // An unknown topic is the append's error to report.
        let compacted = self.topic(topic).is_ok_and(|topic| topic.config_policy() == CleanupPolicy::Compact);
        if compacted && let Some(index) = checked.first_keyless() {
            return Err(LogError::KeyRequired { topic: topic.to_owned(), partition, index });
        }
        Ok(checked)
    }

    /// Appends batches checked by [`Log::check_batches`] as they were sent (any codec), only the
    /// base offset and partition leader epoch rewritten, never re-encoded. Durability as
    /// [`Log::append`].
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`]; [`LogError::Io`].
    pub fn append_checked(
        &self,
        topic: &str,
        partition: u32,
        batches: CheckedBatches,
    ) -> Result<AppendResult, LogError> {
        let result = self.append_checked_unsynced(topic, partition, batches)?;
        self.sync_appended(&[(topic, partition, result.last_offset + 1)])?;
        Ok(result)
    }

    /// [`Log::append_checked`] without its fsync: the records are in the log (and readable)
    /// when this returns, but durable only once [`Log::sync_appended`] has returned for them.
    /// A request that writes several partitions appends to each, then syncs them all at once.
    ///
    /// # Errors
    ///
    /// As [`Log::append_checked`].
    pub fn append_checked_unsynced(
        &self,
        topic: &str,
        partition: u32,
        batches: CheckedBatches,
    ) -> Result<AppendResult, LogError> {
        let handle = self.partition(topic, partition)?;
        let mut encoded = batches.encoded;
        let result = handle.append(&mut encoded)?;
        tracing::trace!(
            topic,
            partition,
            base_offset = result.base_offset,
            records = result.record_count(),
            "appended producer batches"
        );
        Ok(result)
    }

    /// Makes what was appended below each `(topic, partition, end)` durable as the flush policy
    /// says ([`FlushPolicy::EveryBatch`]: fsyncs, in parallel, of the partitions not yet synced
    /// that far; other policies: nothing).
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`]; [`LogError::Io`].
    pub fn sync_appended(&self, ends: &[(&str, u32, i64)]) -> Result<(), LogError> {
        if self.config.flush != FlushPolicy::EveryBatch {
            return Ok(());
        }
        let partitions = ends
            .iter()
            .map(|&(topic, partition, end)| Ok((self.partition(topic, partition)?, end)))
            .collect::<Result<Vec<_>, LogError>>()?;
        run_parallel(&partitions, |(partition, end)| partition.sync_up_to(*end))
    }

    /// The partition to append `records` to, after checking that a compacted topic gets a key
    /// on every record.
    fn writable_partition(&self, topic: &str, partition: u32, records: &[Record]) -> Result<Arc<Partition>, LogError> {
        let handle = self.partition(topic, partition)?;
        let compacted = self.topic(topic)?.config_policy() == CleanupPolicy::Compact;
        if compacted && let Some(index) = records.iter().position(|record| record.key.is_none()) {
            return Err(LogError::KeyRequired { topic: topic.to_owned(), partition, index });
        }
        Ok(handle)
    }

    fn encode(&self, topic: &str, partition: u32, records: &[Record]) -> Result<EncodedBatches, LogError> {
        EncodedBatches::encode(records, self.config.max_batch_bytes).map_err(|source| LogError::Encode {
            topic: topic.to_owned(),
            partition,
            source,
        })
    }

    /// Appends to several partitions, then (with [`FlushPolicy::EveryBatch`]) fsyncs each touched
    /// partition once, in parallel: a source task's poll spread over four partitions costs one
    /// round of fsyncs, not four in a row. Results are in input order.
    ///
    /// Every topic, partition and record is checked before anything is written, so those errors
    /// write nothing. The appends are not atomic across partitions: an I/O error can leave the
    /// earlier ones written.
    ///
    /// # Errors
    ///
    /// As [`Log::append`].
    pub fn append_many(&self, batches: &[(&str, u32, &[Record])]) -> Result<Vec<AppendResult>, LogError> {
        let prepared = batches
            .iter()
            .map(|(topic, partition, records)| {
                Ok((self.writable_partition(topic, *partition, records)?, self.encode(topic, *partition, records)?))
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        let mut results = Vec::with_capacity(prepared.len());
        let mut touched: Vec<(Arc<Partition>, i64)> = Vec::new();
        for (partition, mut encoded) in prepared {
            let result = partition.append(&mut encoded)?;
            if result.record_count() > 0 {
                let end = result.last_offset + 1;
                match touched.iter_mut().find(|(seen, _)| Arc::ptr_eq(seen, &partition)) {
                    Some((_, seen_end)) => *seen_end = (*seen_end).max(end),
                    None => touched.push((partition, end)),
                }
            }
            results.push(result);
        }
        if self.config.flush == FlushPolicy::EveryBatch {
            run_parallel(&touched, |(partition, end)| partition.sync_up_to(*end))?;
        }
        Ok(results)
    }

    /// Records from offset `from` on, up to about `max_bytes` of keys, values and headers (at
    /// least one record if any exists at or after `from`, however large). A `from` inside a
    /// batch starts at that record; a `from` below the start offset starts at the start offset;
    /// at or past the end offset returns nothing.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`]; [`LogError::SegmentCorrupt`]
    /// if a batch fails its CRC or framing checks; [`LogError::Io`].
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        from: i64,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.partition(topic, partition)?.read(from, max_bytes)
    }

    /// The stored RecordBatch bytes from the batch holding `from` on (which may start before
    /// `from`, as in a Kafka fetch response), up to `max_bytes` (at least one batch if any). Lets
    /// a Kafka-protocol server answer fetches without decoding or re-encoding.
    ///
    /// # Errors
    ///
    /// As [`Log::read`].
    pub fn read_batches(&self, topic: &str, partition: u32, from: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        self.partition(topic, partition)?.read_batches(from, max_bytes)
    }

    /// The directory of a partition's segments, where state kept beside them lives (the Kafka
    /// listener's producer snapshots); it goes away with the topic.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`].
    pub(crate) fn partition_dir(&self, topic: &str, partition: u32) -> Result<PathBuf, LogError> {
        Ok(self.partition(topic, partition)?.dir().to_owned())
    }

    /// The offset of the first record with a timestamp `>= timestamp` (Kafka's ListOffsets by
    /// time), using the time indexes to skip old segments and batches.
    ///
    /// # Errors
    ///
    /// As [`Log::read`].
    pub fn offset_for_timestamp(&self, topic: &str, partition: u32, timestamp: i64) -> Result<Option<i64>, LogError> {
        self.partition(topic, partition)?.offset_for_timestamp(timestamp)
    }

    /// The log start offset: the first offset still stored (moves forward with retention).
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`].
    pub fn start_offset(&self, topic: &str, partition: u32) -> Result<i64, LogError> {
        Ok(self.partition(topic, partition)?.start_offset())
    }

    /// The log end offset: the offset the next appended record will get. Records below it are
    /// readable (written, though with policies other than `EveryBatch` maybe not yet fsynced).
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`].
    pub fn end_offset(&self, topic: &str, partition: u32) -> Result<i64, LogError> {
        Ok(self.partition(topic, partition)?.end_offset())
    }

    /// A watch of the partition's end offset, updated on every append, so a consumer can
    /// `changed().await` instead of polling. The sender closes when the topic is deleted.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`].
    pub fn end_offset_watch(&self, topic: &str, partition: u32) -> Result<watch::Receiver<i64>, LogError> {
        Ok(self.partition(topic, partition)?.end_offset_watch())
    }

    /// Durably stores a group's committed offsets (the offset of the next record to consume, by
    /// Kafka's convention); returns after they are fsynced.
    ///
    /// # Errors
    ///
    /// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`]; [`LogError::InvalidOffset`]
    /// for a negative offset; [`LogError::InvalidGroupName`]; [`LogError::Io`].
    pub fn commit_offsets(&self, group: &str, offsets: &[(&str, u32, i64)]) -> Result<(), LogError> {
        let offsets: Vec<(&str, u32, i64, &str)> =
            offsets.iter().map(|(topic, partition, offset)| (*topic, *partition, *offset, "")).collect();
        self.commit_offsets_with_metadata(group, &offsets)
    }

    /// As [`Log::commit_offsets`], each offset with the client's metadata string (Kafka's
    /// `committed_metadata`), kept with it durably.
    ///
    /// # Errors
    ///
    /// As [`Log::commit_offsets`].
    pub fn commit_offsets_with_metadata(
        &self,
        group: &str,
        offsets: &[(&str, u32, i64, &str)],
    ) -> Result<(), LogError> {
        for (topic, partition, offset, _) in offsets {
            self.partition(topic, *partition)?;
            if *offset < 0 {
                return Err(LogError::InvalidOffset {
                    topic: (*topic).to_owned(),
                    partition: *partition,
                    offset: *offset,
                });
            }
        }
        self.groups.commit_with_metadata(group, offsets)
    }

    /// The group's committed offset for a partition and the metadata committed with it.
    pub fn committed_offset_with_metadata(&self, group: &str, topic: &str, partition: u32) -> Option<(i64, String)> {
        self.groups
            .committed_with_metadata(group, topic, partition)
            .map(|committed| (committed.offset, committed.metadata))
    }

    /// The group's committed offset for a partition, if any.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: u32) -> Option<i64> {
        self.groups.committed(group, topic, partition)
    }

    /// All of a group's committed offsets as `(topic, partition, offset)`, sorted.
    pub fn group_offsets(&self, group: &str) -> Vec<(String, u32, i64)> {
        self.groups.offsets(group)
    }

    /// Every group with committed offsets, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.groups.groups()
    }

    /// Deletes all of a group's committed offsets. Deleting an unknown group is not an error.
    ///
    /// # Errors
    ///
    /// [`LogError::Io`].
    pub fn delete_group_offsets(&self, group: &str) -> Result<(), LogError> {
        self.groups.delete(group)
    }

    /// Fsyncs every partition written since its last fsync, in parallel.
    ///
    /// # Errors
    ///
    /// [`LogError::Io`] (the first failure; the other partitions are still synced).
    pub fn flush(&self) -> Result<(), LogError> {
        flush_topics(&self.topics)
    }

    /// Deletes old sealed segments of every `Delete`-policy topic by its `retention_ms` and
    /// `retention_bytes`, as Kafka does: by size, the oldest segments while the partition stays
    /// at or above `retention_bytes` without them; by time, the oldest segments whose newest
    /// record is older than `retention_ms`. Only whole sealed segments go, so the start offset
    /// moves to a segment boundary; the active segment always stays. Call it periodically.
    ///
    /// # Errors
    ///
    /// [`LogError::Io`] (the first failure; the other partitions are still processed).
    pub fn enforce_retention(&self) -> Result<(), LogError> {
        self.enforce_retention_at(now_ms())
    }

    pub(crate) fn enforce_retention_at(&self, now_ms: i64) -> Result<(), LogError> {
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        let mut first_error = None;
        for topic in topics {
            let config = read(&topic.config).clone();
            if config.cleanup_policy == CleanupPolicy::Compact {
                continue;
            }
            let limits = RetentionLimits { retention_bytes: config.retention_bytes, retention_ms: config.retention_ms };
            if limits == RetentionLimits::default() {
                continue;
            }
            for partition in &topic.partitions {
                if let Err(error) = partition.enforce_retention(limits, now_ms) {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Compacts every partition of every `Compact` topic now, whatever its share of dirty data
    /// (the background cleaner waits for `min_cleanable_dirty_percent`): keeps the latest record
    /// of each key in the sealed segments, drops tombstones older than the topic's
    /// `delete_retention_ms`, and merges small sealed segments (see the `cleaner` module).
    /// Offsets of kept records never change; the active segment is never touched.
    ///
    /// # Errors
    ///
    /// [`LogError::SegmentCorrupt`] if a sealed batch fails its checks; [`LogError::Io`] (the
    /// first failure; the other partitions are still compacted). A failed clean leaves the
    /// partition as it was, or cleaned, never in between.
    pub fn compact(&self) -> Result<CompactionStats, LogError> {
        compact_topics(&self.topics, &self.config, None, now_ms(), None)
    }

    /// [`Log::compact`] at a given time, optionally only where the dirty share reaches
    /// `min_dirty_percent`, optionally stopping the first swap after a step.
    #[cfg(test)]
    pub(crate) fn compact_at(
        &self,
        now_ms: i64,
        min_dirty_percent: Option<u8>,
        crash_after: Option<crate::swap::SwapStep>,
    ) -> Result<CompactionStats, LogError> {
        compact_topics(&self.topics, &self.config, min_dirty_percent, now_ms, crash_after)
    }

    /// Stops the background flusher and cleaner and fsyncs everything. The log stays usable
    /// (appends then follow the policy without the background thread). Dropping the last `Arc`
    /// does the same, logging instead of returning a flush error.
    ///
    /// # Errors
    ///
    /// [`LogError::Io`] from the final flush.
    pub fn close(&self) -> Result<(), LogError> {
        self.stop_background();
        self.flush()
    }

    fn stop_background(&self) {
        for thread in [&self.flusher, &self.cleaner] {
            if let Some(background) = lock(thread).take() {
                background.stop();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn partition_for_test(&self, topic: &str, partition: u32) -> Arc<Partition> {
        self.partition(topic, partition).expect("partition exists in test")
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.stop_background();
        if self.config.flush != FlushPolicy::Never
            && let Err(error) = self.flush()
        {
            tracing::warn!(%error, "final flush at close failed");
        }
    }
}

/// Runs the cleaner over every partition of every `Compact` topic; `min_dirty_percent: None`
/// cleans whatever the dirty share.
fn compact_topics(
    topics: &TopicMap,
    config: &LogConfig,
    min_dirty_percent: Option<u8>,
    now_ms: i64,
    crash_after: Option<crate::swap::SwapStep>,
) -> Result<CompactionStats, LogError> {
    let topics: Vec<Arc<Topic>> = read(topics).values().cloned().collect();
    let mut stats = CompactionStats::default();
    let mut first_error = None;
    for topic in topics {
        let topic_config = read(&topic.config).clone();
        if topic_config.cleanup_policy != CleanupPolicy::Compact {
            continue;
        }
        let settings = CleanSettings {
            now_ms,
            delete_retention_ms: topic_config.delete_retention_ms,
            segment_bytes: topic_config.effective_segment_bytes(config),
            index_interval: config.index_interval_bytes,
            min_dirty_percent,
            crash_after,
        };
        for partition in &topic.partitions {
            match clean_partition(partition, &settings) {
                Ok(partition_stats) => stats.add(partition_stats),
                Err(error) => {
                    tracing::warn!(topic = partition.topic(), partition = partition.id(), %error, "compaction failed");
                    first_error.get_or_insert(error);
                }
            }
        }
    }
    first_error.map_or(Ok(stats), Err)
}

/// Fsyncs every dirty partition of every topic, in parallel.
fn flush_topics(topics: &TopicMap) -> Result<(), LogError> {
    let dirty: Vec<Arc<Partition>> = read(topics)
        .values()
        .flat_map(|topic| topic.partitions.iter())
        .filter(|partition| partition.is_dirty())
        .cloned()
        .collect();
    run_parallel(&dirty, |partition| partition.sync_if_dirty())
}
