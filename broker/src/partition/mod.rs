//! One partition: an ordered list of sealed segments and one active segment, under one lock.
//!
//! Each partition has its own mutex, so appends to different partitions never contend. The lock
//! is held only for what must be serial: assigning offsets, the write itself, rolling, and
//! capturing what a read needs. Encoding happens before it (the batch's base offset is patched
//! in afterwards), and fsync and the reading of file bytes happen after it.
//!
//! Fsync is group-committed: the `synced` mutex is held across one fsync, so appends that
//! finished writing while an fsync ran queue behind it, and the next fsync covers all of them at
//! once instead of each paying ~3 ms.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::batch::{BatchError, EncodedBatches, batch_records, check_batch};
use crate::cleaner::{CleanInput, CleanerState, SealedView};
use crate::error::LogError;
use crate::fs_util::{lock, remove_file_if_exists, sync_dir};
use crate::index::{OffsetIndexEntry, lookup_offset, lookup_time};
use crate::record::{AppendResult, StoredRecord};
use crate::retention::{RetentionLimits, SegmentSummary, segments_to_delete};
use crate::segment::{ActiveSegment, BatchReader, SealedSegment, SegmentSlice, parse_segment_file_name};

mod hold;

pub(crate) use hold::{HoldStart, WriteHold};

#[derive(Debug)]
struct PartitionState {
    sealed: VecDeque<SealedSegment>,
    active: ActiveSegment,
    /// Written since the last fsync began.
    dirty: bool,
    /// The topic was deleted; the handle must not take more writes.
    deleted: bool,
    /// While an atomic append holds the partition: the end readers see. What lies past it is
    /// not committed yet (see [`WriteHold`]).
    held_end: Option<i64>,
    /// An atomic append could not undo its writes: the partition takes no more appends until a
    /// reopen rolls them back from the transaction journal.
    failed: bool,
}

impl PartitionState {
    fn start_offset(&self) -> i64 {
        self.sealed.front().map_or(self.active.base_offset(), SealedSegment::base_offset)
    }

    /// The end readers see: the log end, or where an atomic append in progress began.
    fn visible_end(&self) -> i64 {
        self.held_end.unwrap_or_else(|| self.active.next_offset())
    }
}

/// One partition of a topic.
#[derive(Debug)]
pub(crate) struct Partition {
    topic: Arc<str>,
    id: u32,
    dir: PathBuf,
    index_interval: u32,
    segment_bytes: AtomicU64,
    state: Mutex<PartitionState>,
    /// Held by every append for its duration, and by an atomic append for all of its steps.
    /// Taken before `state`, never after.
    writer: Mutex<()>,
    /// Held by whatever removes sealed segments (the cleaner, retention, topic deletion), so
    /// they never interleave. Taken before `state`, never after.
    cleaner: Mutex<CleanerState>,
    /// The offset below which everything is known to be fsynced.
    synced: Mutex<i64>,
    end_offset: watch::Sender<i64>,
}

/// What a read needs, captured under the lock.
struct ReadPlan {
    from: i64,
    end: i64,
    slices: Vec<SegmentSlice>,
    /// The first offset past the planned slices (`end` if they reach the log end). Compacted
    /// segments can hold nothing at or after `from`; the read then goes on from here.
    resume: i64,
}

/// Below this many bytes read beyond twice what a read returns, records keep sharing the read
/// buffers; above it they are copied out (see [`Partition::read`]).
const READ_COPY_SLACK_BYTES: u64 = 64 * 1024;

fn corrupt_at(slice: &SegmentSlice, position: u64) -> impl Fn(BatchError) -> LogError + '_ {
    move |source| LogError::SegmentCorrupt { path: slice.path.to_path_buf(), position, source }
}

/// Reads one segment slice's records into `records` for [`Partition::read`]; returns whether the
/// read is complete (end of data or of the byte budget).
fn read_records(
    reader: &mut BatchReader<'_>,
    slice: &SegmentSlice,
    plan: &ReadPlan,
    max_bytes: usize,
    records: &mut Vec<StoredRecord>,
    bytes: &mut usize,
) -> Result<bool, LogError> {
    while let Some(batch) = reader.next_batch()? {
        if batch.header.next_offset() <= plan.from {
            continue;
        }
        if batch.header.base_offset >= plan.end {
            return Ok(true);
        }
        let corrupt = corrupt_at(slice, batch.position);
        let mut decoded = batch_records(&batch.bytes).map_err(&corrupt)?;
        decoded.skip_before(plan.from).map_err(&corrupt)?;
        for record in decoded {
            let record = record.map_err(&corrupt)?;
            if record.offset >= plan.end {
                return Ok(true);
            }
            let size = record.size_hint();
            if !records.is_empty() && *bytes + size > max_bytes {
                return Ok(true);
            }
            *bytes += size;
            records.push(record);
        }
    }
    Ok(false)
}

/// Copies the records' keys, values and header values into one buffer of their own.
fn detach(records: &mut [StoredRecord]) {
    fn for_each_field(record: &mut StoredRecord, mut visit: impl FnMut(&mut Bytes)) {
        record.key.iter_mut().for_each(&mut visit);
        record.value.iter_mut().for_each(&mut visit);
        for (_, value) in &mut record.headers {
            value.iter_mut().for_each(&mut visit);
        }
    }
    let mut total = 0;
    for record in records.iter_mut() {
        for_each_field(record, |field| total += field.len());
    }
    let mut buffer = Vec::with_capacity(total);
    for record in records.iter_mut() {
        for_each_field(record, |field| buffer.extend_from_slice(field));
    }
    let shared = Bytes::from(buffer);
    let mut at = 0;
    for record in records.iter_mut() {
        for_each_field(record, |field| {
            let len = field.len();
            *field = shared.slice(at..at + len);
            at += len;
        });
    }
}

fn position_for(entries: &[OffsetIndexEntry], base_offset: i64, offset: i64) -> u64 {
    let relative = (offset - base_offset).clamp(0, i64::from(u32::MAX)) as u32;
    lookup_offset(entries, relative).map_or(0, |entry| u64::from(entry.position))
}

/// The records of a planned read; see [`Partition::read`].
fn read_plan(plan: &ReadPlan, max_bytes: usize) -> Result<Vec<StoredRecord>, LogError> {
    let mut records = Vec::new();
    let mut bytes = 0usize;
    let mut bytes_read = 0u64;
    for slice in &plan.slices {
        let mut reader = BatchReader::for_slice(slice);
        let finished = read_records(&mut reader, slice, plan, max_bytes, &mut records, &mut bytes);
        bytes_read += reader.bytes_read();
        if finished? {
            break;
        }
    }
    // Records are slices of the buffers their batches were read into. When a read returns
    // little of what it had to read (a small `max_bytes` inside a large batch), copy them
    // out, so that a caller holding on to a few records does not pin whole batches.
    if bytes_read > 2 * bytes as u64 + READ_COPY_SLACK_BYTES {
        detach(&mut records);
    }
    Ok(records)
}

/// The whole batches of a planned read; see [`Partition::read_batches`].
fn read_plan_batches(plan: &ReadPlan, max_bytes: usize) -> Result<Bytes, LogError> {
    let mut batches: Vec<Bytes> = Vec::new();
    let mut bytes = 0usize;
    'segments: for slice in &plan.slices {
        let mut reader = BatchReader::for_slice(slice);
        while let Some(batch) = reader.next_batch()? {
            if batch.header.next_offset() <= plan.from {
                continue;
            }
            if batch.header.base_offset >= plan.end || (!batches.is_empty() && bytes + batch.bytes.len() > max_bytes) {
                break 'segments;
            }
            check_batch(&batch.bytes).map_err(corrupt_at(slice, batch.position))?;
            bytes += batch.bytes.len();
            batches.push(batch.bytes);
        }
    }
    Ok(match batches.len() {
        1 => batches.swap_remove(0),
        _ => Bytes::from(batches.concat()),
    })
}

impl Partition {
    /// Opens (creating if needed) the partition in `dir`, recovering its active segment.
    pub(crate) fn open(
        dir: PathBuf,
        topic: Arc<str>,
        id: u32,
        index_interval: u32,
        segment_bytes: u64,
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(&dir).map_err(LogError::io(&dir))?;
        crate::swap::recover(&dir)?;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(LogError::io(&dir))? {
            let entry = entry.map_err(LogError::io(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(base) = parse_segment_file_name(name, ".log") {
                bases.push(base);
            } else if let Some(base) =
                parse_segment_file_name(name, ".index").or_else(|| parse_segment_file_name(name, ".timeindex"))
            {
                index_files.push((base, entry.path()));
            } else if name.ends_with(".tmp") {
                remove_file_if_exists(&entry.path())?;
            }
        }
        bases.sort_unstable();
        // Indexes whose log is gone: left by a crash in the middle of a segment deletion.
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                remove_file_if_exists(&path)?;
            }
        }

        // What recovery finds may still be only in the page cache (the process crashed, not the
        // machine), so the first sync must cover it; a new partition has nothing to sync.
        let recovered = !bases.is_empty();
        let (sealed, active) = match bases.split_last() {
            None => {
                let active = ActiveSegment::create(&dir, 0, index_interval)?;
                sync_dir(&dir)?;
                (VecDeque::new(), active)
            }
            Some((&last, sealed_bases)) => {
                let sealed = sealed_bases
                    .iter()
                    .map(|&base| SealedSegment::open(&dir, base, index_interval))
                    .collect::<Result<VecDeque<_>, _>>()?;
                let (active, report) = ActiveSegment::recover(&dir, last, index_interval)?;
                if let Some((position, error)) = &report.damage {
                    tracing::warn!(
                        topic = %topic,
                        partition = id,
                        segment = %active.log_path().display(),
                        position,
                        truncated_bytes = report.truncated_bytes,
                        %error,
                        "truncated torn or corrupt tail of the active segment"
                    );
                }
                (sealed, active)
            }
        };
        let end = active.next_offset();
        let cleaner = CleanerState::load(&dir)?;
        tracing::debug!(topic = %topic, partition = id, start = sealed.front().map_or(active.base_offset(), SealedSegment::base_offset), end, segments = sealed.len() + 1, "opened partition");
        Ok(Partition {
            topic,
            id,
            dir,
            index_interval,
            segment_bytes: AtomicU64::new(segment_bytes),
            state: Mutex::new(PartitionState {
                sealed,
                active,
                dirty: recovered,
                deleted: false,
                held_end: None,
                failed: false,
            }),
            writer: Mutex::new(()),
            cleaner: Mutex::new(cleaner),
            synced: Mutex::new(-1),
            end_offset: watch::Sender::new(end),
        })
    }

    fn deleted_error(&self) -> LogError {
        LogError::UnknownTopic { topic: self.topic.to_string() }
    }

    pub(crate) fn set_segment_bytes(&self, segment_bytes: u64) {
        self.segment_bytes.store(segment_bytes, Ordering::Relaxed);
    }

    /// Assigns offsets to `encoded` and writes it, rolling segments as needed. On an I/O error a
    /// prefix of the batches may be in the log (visible, with their offsets); the rest is not.
    pub(crate) fn append(&self, encoded: &mut EncodedBatches) -> Result<AppendResult, LogError> {
        let segment_bytes = self.segment_bytes.load(Ordering::Relaxed);
        let _writer = lock(&self.writer);
        let mut state = lock(&self.state);
        self.check_writable(&state)?;
        let base = state.active.next_offset();
        if encoded.record_count() == 0 {
            return Ok(AppendResult { base_offset: base, last_offset: base - 1 });
        }
        encoded.assign_offsets(base);
        let spans = encoded.batches();
        let mut next = 0;
        let result = loop {
            if next == spans.len() {
                break Ok(());
            }
            // The longest run of batches the active segment can take in one write. An empty
            // segment always takes at least one batch, however large.
            let active = &state.active;
            let mut end = next;
            let mut run_bytes = 0u64;
            while let Some(span) = spans.get(end) {
                let last_offset = base + span.first_record as i64 + i64::from(span.record_count) - 1;
                let fits_size =
                    active.size() + run_bytes + span.len as u64 <= segment_bytes || (active.size() == 0 && end == next);
                let fits_offsets = last_offset - active.base_offset() <= i64::from(u32::MAX);
                if !(fits_size && fits_offsets) {
                    break;
                }
                run_bytes += span.len as u64;
                end += 1;
            }
            if end == next {
                if let Err(error) = self.roll(&mut state) {
                    break Err(error);
                }
                continue;
            }
            if let Err(error) = state.active.append_run(encoded, &spans[next..end], base) {
                break Err(error);
            }
            next = end;
        };
        let end = state.active.next_offset();
        if end > base {
            state.dirty = true;
            // Sent under the lock so that concurrent appends publish their ends in order.
            self.end_offset.send_replace(end);
        }
        result.map(|()| AppendResult { base_offset: base, last_offset: end - 1 })
    }

    fn check_writable(&self, state: &PartitionState) -> Result<(), LogError> {
        if state.deleted {
            return Err(self.deleted_error());
        }
        if state.failed {
            return Err(LogError::PartitionFailed { topic: self.topic.to_string(), partition: self.id });
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end.
    fn roll(&self, state: &mut PartitionState) -> Result<(), LogError> {
        let next = state.active.next_offset();
        state.active.prepare_seal()?;
        let new_active = ActiveSegment::create(&self.dir, next, self.index_interval)?;
        let old = std::mem::replace(&mut state.active, new_active);
        tracing::debug!(topic = %self.topic, partition = self.id, base_offset = old.base_offset(), size = old.size(), "rolled segment");
        state.sealed.push_back(old.into_sealed(self.index_interval));
        sync_dir(&self.dir)
    }

    /// Fsyncs unless everything below `end` is already synced (group commit).
    pub(crate) fn sync_up_to(&self, end: i64) -> Result<(), LogError> {
        let mut synced = lock(&self.synced);
        if *synced >= end {
            return Ok(());
        }
        self.sync_locked(&mut synced)
    }

    /// Fsyncs if anything was written since the last fsync.
    pub(crate) fn sync_if_dirty(&self) -> Result<(), LogError> {
        let mut synced = lock(&self.synced);
        self.sync_locked(&mut synced)
    }

    pub(crate) fn is_dirty(&self) -> bool {
        lock(&self.state).dirty
    }

    fn sync_locked(&self, synced: &mut i64) -> Result<(), LogError> {
        let (log, path, end) = {
            let mut state = lock(&self.state);
            let end = state.active.next_offset();
            if !state.dirty {
                // No sync runs concurrently (we hold `synced`), so clean means synced.
                *synced = (*synced).max(end);
                return Ok(());
            }
            state.dirty = false;
            (Arc::clone(state.active.log()), Arc::clone(state.active.log_path()), end)
        };
        // Segments sealed since the write were fsynced when sealed; the active one is the only
        // one that can hold unsynced data.
        if let Err(source) = log.sync_data() {
            lock(&self.state).dirty = true;
            return Err(LogError::Io { path: path.to_path_buf(), source });
        }
        *synced = (*synced).max(end);
        Ok(())
    }

    pub(crate) fn start_offset(&self) -> i64 {
        lock(&self.state).start_offset()
    }

    pub(crate) fn end_offset(&self) -> i64 {
        *self.end_offset.borrow()
    }

    pub(crate) fn end_offset_watch(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    /// Marks the partition deleted: later appends fail, watchers see the sender close when the
    /// last handle goes.
    pub(crate) fn mark_deleted(&self) {
        // Waits for a clean in progress, so none writes into the directory being removed.
        let _cleaner = lock(&self.cleaner);
        lock(&self.state).deleted = true;
    }

    /// Excludes retention and deletion while the cleaner works on the sealed segments.
    pub(crate) fn lock_cleaner(&self) -> MutexGuard<'_, CleanerState> {
        lock(&self.cleaner)
    }

    /// The sealed segments as the cleaner reads them, each with its indexes loaded (so that the
    /// old segments never read index files that the cleaner is replacing), and the active
    /// segment's base offset: where the cleanable range ends. `None` once the topic is deleted.
    pub(crate) fn clean_input(&self) -> Result<Option<CleanInput>, LogError> {
        let mut state = lock(&self.state);
        if state.deleted {
            return Ok(None);
        }
        let mut segments = Vec::with_capacity(state.sealed.len());
        for segment in &mut state.sealed {
            segment.load_indexes()?;
            segments.push(SealedView {
                base_offset: segment.base_offset(),
                size: segment.size(),
                slice: segment.slice(0),
            });
        }
        Ok(Some(CleanInput { segments, active_base: state.active.base_offset() }))
    }

    /// Puts `segment` in the place of the sealed segments with base offsets `replaced`
    /// (consecutive, the first one's base offset equal to the new one's).
    pub(crate) fn install_cleaned(&self, replaced: &[i64], segment: SealedSegment) -> Result<(), LogError> {
        let mut state = lock(&self.state);
        let at = state.sealed.partition_point(|old| old.base_offset() < segment.base_offset());
        let matches = replaced.len() <= state.sealed.len() - at
            && state.sealed.range(at..at + replaced.len()).map(SealedSegment::base_offset).eq(replaced.iter().copied());
        if !matches {
            // The cleaner lock keeps everything but `roll` (which only adds at the back) away.
            return Err(LogError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("the segments the cleaner replaced are no longer in the partition"),
            });
        }
        state.sealed.drain(at..at + replaced.len());
        state.sealed.insert(at, segment);
        Ok(())
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    fn plan_read(&self, from: i64, max_bytes: usize) -> Result<Option<ReadPlan>, LogError> {
        let mut state = lock(&self.state);
        if state.deleted {
            return Err(self.deleted_error());
        }
        let end = state.visible_end();
        let from = from.max(state.start_offset());
        if from >= end {
            return Ok(None);
        }
        let state = &mut *state;
        let mut slices: Vec<SegmentSlice> = Vec::new();
        let mut resume = end;
        if from >= state.active.base_offset() {
            let position = position_for(state.active.offset_index(), state.active.base_offset(), from);
            slices.push(state.active.slice(position));
        } else {
            // `from >= start offset`, so some sealed segment starts at or before it. Later
            // segments are captured until they hold `max_bytes`, so the read need not come back.
            let containing = state.sealed.partition_point(|segment| segment.base_offset() <= from).saturating_sub(1);
            let mut planned_bytes = 0u64;
            let mut stopped_at = None;
            for segment in state.sealed.range_mut(containing..) {
                if !slices.is_empty() && planned_bytes >= max_bytes as u64 {
                    stopped_at = Some(segment.base_offset());
                    break;
                }
                let position = if slices.is_empty() {
                    let base_offset = segment.base_offset();
                    position_for(segment.offset_index()?, base_offset, from)
                } else {
                    0
                };
                let slice = segment.slice(position);
                planned_bytes += slice.end - slice.start;
                slices.push(slice);
            }
            if let Some(base_offset) = stopped_at {
                resume = base_offset;
            } else if planned_bytes < max_bytes as u64 {
                slices.push(state.active.slice(0));
            } else {
                resume = state.active.base_offset();
            }
        }
        Ok(Some(ReadPlan { from, end, slices, resume }))
    }

    /// Records at offsets `>= from` (or the start offset, if later), until their sizes pass
    /// `max_bytes`; at least one record if any exists. A `from` that compaction removed starts
    /// at the next record kept.
    pub(crate) fn read(&self, mut from: i64, max_bytes: usize) -> Result<Vec<StoredRecord>, LogError> {
        loop {
            let Some(plan) = self.plan_read(from, max_bytes)? else {
                return Ok(Vec::new());
            };
            let records = read_plan(&plan, max_bytes)?;
            if !records.is_empty() || plan.resume >= plan.end {
                return Ok(records);
            }
            from = plan.resume;
        }
    }

    /// Whole stored batches, as Kafka's fetch returns them: starting with the batch that holds
    /// `from` (which may begin before it), until `max_bytes`; at least one batch if any exists.
    /// Each batch's CRC is checked.
    pub(crate) fn read_batches(&self, mut from: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        loop {
            let Some(plan) = self.plan_read(from, max_bytes)? else {
                return Ok(Bytes::new());
            };
            let batches = read_plan_batches(&plan, max_bytes)?;
            if !batches.is_empty() || plan.resume >= plan.end {
                return Ok(batches);
            }
            from = plan.resume;
        }
    }

    /// The offset of the first record whose timestamp is `>= timestamp`, if any.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>, LogError> {
        let (slice, end) = {
            let mut state = lock(&self.state);
            if state.deleted {
                return Err(self.deleted_error());
            }
            let state = &mut *state;
            let newer = |max: Option<i64>| max.is_some_and(|max| max >= timestamp);
            let slice = if let Some(segment) = state.sealed.iter_mut().find(|segment| newer(segment.max_timestamp())) {
                let start = lookup_time(segment.time_index()?, timestamp).map_or(segment.base_offset(), |entry| {
                    segment.base_offset() + i64::from(entry.relative_offset) + 1
                });
                let base_offset = segment.base_offset();
                let position = position_for(segment.offset_index()?, base_offset, start);
                segment.slice(position)
            } else if newer(state.active.max_timestamp()) {
                let active = &state.active;
                let start = lookup_time(active.time_index(), timestamp)
                    .map_or(active.base_offset(), |entry| active.base_offset() + i64::from(entry.relative_offset) + 1);
                active.slice(position_for(active.offset_index(), active.base_offset(), start))
            } else {
                return Ok(None);
            };
            (slice, state.visible_end())
        };
        let mut reader = BatchReader::for_slice(&slice);
        while let Some(batch) = reader.next_batch()? {
            if batch.header.base_offset >= end {
                return Ok(None);
            }
            if batch.header.max_timestamp < timestamp {
                continue;
            }
            let corrupt = corrupt_at(&slice, batch.position);
            for record in batch_records(&batch.bytes).map_err(&corrupt)? {
                let record = record.map_err(&corrupt)?;
                if record.offset >= end {
                    return Ok(None);
                }
                if record.timestamp >= timestamp {
                    return Ok(Some(record.offset));
                }
            }
        }
        Ok(None)
    }

    /// Deletes the sealed segments that `limits` no longer keep; returns how many.
    pub(crate) fn enforce_retention(&self, limits: RetentionLimits, now_ms: i64) -> Result<usize, LogError> {
        let _cleaner = lock(&self.cleaner);
        let (removed, start) = {
            let mut state = lock(&self.state);
            if state.deleted {
                return Ok(0);
            }
            let summaries: Vec<SegmentSummary> = state
                .sealed
                .iter()
                .map(|segment| SegmentSummary { size: segment.size(), max_timestamp: segment.max_timestamp() })
                .collect();
            let count = segments_to_delete(&summaries, state.active.size(), limits, now_ms);
            let removed: Vec<SealedSegment> = state.sealed.drain(..count).collect();
            (removed, state.start_offset())
        };
        if removed.is_empty() {
            return Ok(0);
        }
        // Files go after the lock is released: readers that captured a segment keep reading
        // the unlinked file through their handle.
        for segment in &removed {
            segment.delete_files()?;
        }
        sync_dir(&self.dir)?;
        tracing::info!(topic = %self.topic, partition = self.id, segments = removed.len(), start_offset = start, "retention deleted segments");
        Ok(removed.len())
    }

    #[cfg(test)]
    pub(crate) fn active_log_path(&self) -> PathBuf {
        lock(&self.state).active.log_path().to_path_buf()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}
