//! Key compaction: the cleaner keeps only the latest record of each key in the sealed segments
//! of a [`CleanupPolicy::Compact`](crate::CleanupPolicy::Compact) topic, so that the log of a
//! map (the runtime's `weir-offsets`, `weir-configs`, `weir-status`, `weir-state`) stays about
//! the size of the map, and replaying it at start reads about one record per key.
//!
//! The semantics are Kafka's log cleaner's:
//!
//! - **Only sealed segments.** The active segment is never read or written by the cleaner, so
//!   its records are never dropped, and a key whose newest record is in the active segment keeps
//!   its latest sealed record too until that segment is sealed and cleaned.
//! - **Offsets never change.** A record that stays keeps its offset, and a batch that loses
//!   records keeps its base offset and last offset delta (see
//!   [`encode_retained`](crate::batch::encode_retained)), so a compacted log has gaps: a read
//!   from an offset that was compacted away starts at the next record kept, and the log's start
//!   and end offsets do not move. Consumers' committed offsets stay valid.
//! - **What is dropped.** A record is kept if it is the latest of its key among all sealed
//!   segments. Tombstones (null values) are kept as long as their timestamp is no more than the
//!   topic's `delete_retention_ms` old, so a consumer reading from the start within that time
//!   sees the delete, and dropped after. (Kafka 3.1+ counts that time from the clean that first
//!   saw the tombstone; counting from the record's timestamp needs no extra state, and weir
//!   stamps records with the append time.) Records without a key are dropped: a compacted topic
//!   refuses them at append ([`LogError::KeyRequired`]), so they can only come from a topic that
//!   was switched from `Delete`, where Kafka drops them too. Control batches (transaction
//!   markers) are kept whole.
//! - **Batches.** A batch that keeps every record is copied byte for byte (its CRC, compression
//!   and producer fields untouched); one that keeps none is dropped; one that keeps some is
//!   re-encoded, uncompressed, with a fresh CRC.
//! - **Merging.** Consecutive sealed segments are cleaned into one output segment as long as
//!   the output so far plus the next input stays within the topic's segment size (and its
//!   offsets within `u32` of the output's base, as the index needs). Output is usually far
//!   smaller than input, so a topic of a million overwrites of a few keys ends with one or two
//!   sealed segments, not thousands of tiny ones. (Kafka groups by input sizes, which needs a
//!   second pass to merge what the first shrank.) A group of one segment that loses nothing is
//!   left alone.
//! - **Crash safety.** Each group replaces its segments through the swap protocol of
//!   [`crate::swap`]: a crash at any point leaves the old segments or the new one, whole.
//!
//! **Scheduling.** Each partition keeps a checkpoint (`cleaner-checkpoint`, the offset where
//! its not-yet-cleaned sealed segments begin). The background cleaner cleans a partition once
//! those dirty segments are at least `min_cleanable_dirty_percent` of its sealed bytes (Kafka's
//! `min.cleanable.dirty.ratio`); [`Log::compact`](crate::Log::compact) cleans every compacted
//! partition with sealed segments regardless. The checkpoint only decides when to clean, never
//! what is kept, so losing it (it is written atomically, after the swaps) costs one early clean.
//!
//! **Cost.** A pass reads the sealed segments twice (once to find each key's latest offset,
//! once to rewrite) and holds every distinct key of them in memory (Kafka bounds that with a
//! fixed dedupe buffer of key hashes, which a log of maps this size does not need).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::batch::{BatchError, batch_records, check_batch, encode_retained};
use crate::error::LogError;
use crate::fs_util::write_atomically;
use crate::partition::Partition;
use crate::record::StoredRecord;
use crate::segment::{BatchReader, SegmentSlice};
use crate::swap::{self, CleanedWriter, SwapStep};

const CHECKPOINT_FILE: &str = "cleaner-checkpoint";

/// What one or more cleaner passes did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Partitions cleaned.
    pub partitions: usize,
    /// Sealed segments of those partitions before cleaning.
    pub segments_before: usize,
    /// Sealed segments of those partitions after cleaning.
    pub segments_after: usize,
    /// Bytes of those sealed segments before cleaning.
    pub bytes_before: u64,
    /// Bytes of those sealed segments after cleaning.
    pub bytes_after: u64,
    /// Records dropped: superseded by a later one of their key, expired tombstones, no key.
    pub records_removed: u64,
}

impl CompactionStats {
    pub(crate) fn add(&mut self, other: CompactionStats) {
        self.partitions += other.partitions;
        self.segments_before += other.segments_before;
        self.segments_after += other.segments_after;
        self.bytes_before += other.bytes_before;
        self.bytes_after += other.bytes_after;
        self.records_removed += other.records_removed;
    }
}

/// The cleaner's memory of a partition: where its dirty (not yet cleaned) sealed segments
/// begin. Lives in the partition's cleaner lock.
#[derive(Debug)]
pub(crate) struct CleanerState {
    checkpoint: PathBuf,
    first_dirty: i64,
}

impl CleanerState {
    /// Reads the partition's checkpoint; without one (a new partition, or a topic that was not
    /// compacted before) everything is dirty.
    pub(crate) fn load(dir: &Path) -> Result<Self, LogError> {
        let checkpoint = dir.join(CHECKPOINT_FILE);
        let first_dirty = match std::fs::read_to_string(&checkpoint) {
            Ok(text) => text.trim().parse().unwrap_or_else(|error| {
                tracing::warn!(path = %checkpoint.display(), %error, "ignoring an unreadable cleaner checkpoint");
                0
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(LogError::Io { path: checkpoint, source }),
        };
        Ok(CleanerState { checkpoint, first_dirty })
    }

    fn store(&mut self, first_dirty: i64) -> Result<(), LogError> {
        if first_dirty != self.first_dirty {
            write_atomically(&self.checkpoint, first_dirty.to_string().as_bytes())?;
            self.first_dirty = first_dirty;
        }
        Ok(())
    }
}

/// One sealed segment as the cleaner reads it.
#[derive(Debug)]
pub(crate) struct SealedView {
    pub(crate) base_offset: i64,
    pub(crate) size: u64,
    pub(crate) slice: SegmentSlice,
}

/// The sealed segments of a partition and where the active segment begins.
#[derive(Debug)]
pub(crate) struct CleanInput {
    pub(crate) segments: Vec<SealedView>,
    pub(crate) active_base: i64,
}

/// How to clean one partition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CleanSettings {
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    /// Largest output segment.
    pub(crate) segment_bytes: u64,
    pub(crate) index_interval: u32,
    /// Clean only if the dirty share is at least this percentage; `None` cleans regardless.
    pub(crate) min_dirty_percent: Option<u8>,
    /// Test hook: stop the first swap after this step, as a crash would.
    pub(crate) crash_after: Option<SwapStep>,
}

/// Whether `dirty` bytes out of `clean + dirty` are enough to clean at `percent`.
pub(crate) fn is_cleanable(clean: u64, dirty: u64, percent: u8) -> bool {
    dirty > 0 && u128::from(dirty) * 100 >= u128::from(percent) * (u128::from(clean) + u128::from(dirty))
}

/// Cleans the sealed segments of one partition (see the module docs).
///
/// # Errors
///
/// [`LogError::SegmentCorrupt`] if a sealed batch fails its checks (nothing is replaced then);
/// [`LogError::Io`].
pub(crate) fn clean_partition(partition: &Partition, settings: &CleanSettings) -> Result<CompactionStats, LogError> {
    let mut state = partition.lock_cleaner();
    let dir = partition.dir();
    // A pass that failed earlier in this process may have left files; the swap protocol
    // finishes or discards them exactly as it would at open.
    swap::recover(dir)?;
    let Some(input) = partition.clean_input()? else {
        return Ok(CompactionStats::default());
    };
    if input.segments.is_empty() {
        return Ok(CompactionStats::default());
    }
    let (clean, dirty): (Vec<&SealedView>, Vec<&SealedView>) =
        input.segments.iter().partition(|segment| segment.base_offset < state.first_dirty);
    let clean_bytes: u64 = clean.iter().map(|segment| segment.size).sum();
    let dirty_bytes: u64 = dirty.iter().map(|segment| segment.size).sum();
    if let Some(percent) = settings.min_dirty_percent
        && !is_cleanable(clean_bytes, dirty_bytes, percent)
    {
        return Ok(CompactionStats::default());
    }

    let latest = latest_offsets(&input.segments)?;
    let mut stats = CompactionStats {
        partitions: 1,
        segments_before: input.segments.len(),
        bytes_before: clean_bytes + dirty_bytes,
        ..CompactionStats::default()
    };
    let mut group: Option<Group> = None;
    for (index, segment) in input.segments.iter().enumerate() {
        let boundary = input.segments.get(index + 1).map_or(input.active_base, |next| next.base_offset);
        if let Some(current) = &group
            && !current.can_take(segment, boundary, settings.segment_bytes)
            && let Some(full) = group.take()
        {
            full.finish(partition, settings, &mut stats)?;
        }
        let current = match &mut group {
            Some(current) => current,
            None => group.insert(Group {
                writer: CleanedWriter::create(dir, segment.base_offset, settings.index_interval)?,
                replaced: Vec::new(),
                end: boundary,
                changed: false,
            }),
        };
        current.add(partition, segment, boundary, &latest, settings, &mut stats)?;
    }
    if let Some(last) = group.take() {
        last.finish(partition, settings, &mut stats)?;
    }
    state.store(input.active_base)?;
    tracing::info!(
        topic = partition.topic(),
        partition = partition.id(),
        segments_before = stats.segments_before,
        segments_after = stats.segments_after,
        bytes_before = stats.bytes_before,
        bytes_after = stats.bytes_after,
        records_removed = stats.records_removed,
        "compacted partition"
    );
    Ok(stats)
}

type LatestOffsets = HashMap<Box<[u8]>, i64>;

/// Every key of the sealed segments and the offset of its latest record there.
fn latest_offsets(segments: &[SealedView]) -> Result<LatestOffsets, LogError> {
    let mut latest = LatestOffsets::new();
    for segment in segments {
        for_each_batch(&segment.slice, |_, records, _| {
            for record in records.iter().flatten() {
                let Some(key) = record.key.as_deref() else { continue };
                match latest.get_mut(key) {
                    Some(offset) => *offset = record.offset,
                    None => {
                        latest.insert(key.into(), record.offset);
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(latest)
}

/// Calls `visit` with every batch of `slice` (CRC checked), its records (`None` for a control
/// batch) and its bytes.
fn for_each_batch(
    slice: &SegmentSlice,
    mut visit: impl FnMut(&crate::batch::BatchHeader, Option<Vec<StoredRecord>>, &bytes::Bytes) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut reader = BatchReader::for_slice(slice);
    while let Some(batch) = reader.next_batch()? {
        let corrupt = |source: BatchError| LogError::SegmentCorrupt {
            path: slice.path.to_path_buf(),
            position: batch.position,
            source,
        };
        let header = check_batch(&batch.bytes).map_err(corrupt)?;
        let records = if header.is_control() {
            None
        } else {
            Some(batch_records(&batch.bytes).map_err(corrupt)?.collect::<Result<Vec<_>, _>>().map_err(corrupt)?)
        };
        visit(&header, records, &batch.bytes)?;
    }
    Ok(())
}

fn keeps(record: &StoredRecord, latest: &LatestOffsets, settings: &CleanSettings) -> bool {
    let is_latest = record.key.as_deref().is_some_and(|key| latest.get(key) == Some(&record.offset));
    let expired_tombstone =
        record.value.is_none() && settings.now_ms.saturating_sub(record.timestamp) > settings.delete_retention_ms;
    is_latest && !expired_tombstone
}

/// Consecutive sealed segments being cleaned into one.
#[derive(Debug)]
struct Group {
    writer: CleanedWriter,
    /// Base offsets of the segments in the group.
    replaced: Vec<i64>,
    /// The offset after the group: the next segment's base offset.
    end: i64,
    /// Whether the output differs from the input.
    changed: bool,
}

impl Group {
    fn can_take(&self, segment: &SealedView, boundary: i64, segment_bytes: u64) -> bool {
        self.writer.size() + segment.size <= segment_bytes
            && boundary - 1 - self.writer.base_offset() <= i64::from(u32::MAX)
    }

    fn add(
        &mut self,
        partition: &Partition,
        segment: &SealedView,
        boundary: i64,
        latest: &LatestOffsets,
        settings: &CleanSettings,
        stats: &mut CompactionStats,
    ) -> Result<(), LogError> {
        self.replaced.push(segment.base_offset);
        self.end = boundary;
        self.changed |= self.replaced.len() > 1;
        let encode_error =
            |source| LogError::Encode { topic: partition.topic().to_owned(), partition: partition.id(), source };
        for_each_batch(&segment.slice, |header, records, bytes| {
            let Some(records) = records else {
                return self.writer.push(header, bytes);
            };
            let total = records.len();
            let retained: Vec<StoredRecord> =
                records.into_iter().filter(|record| keeps(record, latest, settings)).collect();
            stats.records_removed += (total - retained.len()) as u64;
            if retained.len() == total {
                return self.writer.push(header, bytes);
            }
            self.changed = true;
            if retained.is_empty() {
                return Ok(());
            }
            let rewritten = encode_retained(header, &retained).map_err(encode_error)?;
            let rewritten_header = check_batch(&rewritten).map_err(encode_error)?;
            self.writer.push(&rewritten_header, &rewritten)
        })
    }

    fn finish(
        self,
        partition: &Partition,
        settings: &CleanSettings,
        stats: &mut CompactionStats,
    ) -> Result<(), LogError> {
        stats.segments_after += 1;
        stats.bytes_after += self.writer.size();
        if !self.changed {
            return self.writer.discard();
        }
        let replaced = self.replaced;
        self.writer
            .swap_in(&replaced, self.end, settings.crash_after, |segment| partition.install_cleaned(&replaced, segment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanable_when_the_dirty_share_reaches_the_percentage() {
        assert!(!is_cleanable(100, 0, 0), "nothing dirty, nothing to do");
        assert!(is_cleanable(100, 1, 0));
        assert!(is_cleanable(100, 100, 50));
        assert!(!is_cleanable(101, 100, 50));
        assert!(is_cleanable(0, 1, 100));
        assert!(is_cleanable(u64::MAX, u64::MAX, 50), "no overflow");
    }

    #[test]
    fn checkpoint_survives_a_reload_and_defaults_to_everything_dirty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = CleanerState::load(dir.path()).expect("load");
        assert_eq!(state.first_dirty, 0);
        state.store(1234).expect("store");
        assert_eq!(CleanerState::load(dir.path()).expect("reload").first_dirty, 1234);
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "garbage").expect("write");
        assert_eq!(CleanerState::load(dir.path()).expect("reload").first_dirty, 0);
    }
}
