//! Holding a partition for an atomic append ([`crate::transaction`]): its writes stay invisible
//! until published, and can be truncated away again.

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use crate::batch::EncodedBatches;
use crate::error::LogError;
use crate::fs_util::lock;
use crate::record::AppendResult;

use super::Partition;

/// Where an atomic append began in a partition: what undoing it truncates back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HoldStart {
    pub(crate) offset: i64,
    /// The active segment it was written to (an atomic append never rolls the segment).
    pub(crate) segment_base: i64,
    pub(crate) position: u64,
}

/// A partition held by an atomic append ([`crate::transaction`]): no other append runs on it
/// while the hold lives, and what the holder writes stays invisible to readers until
/// [`WriteHold::publish`]. Dropped without `publish` or a successful
/// [`WriteHold::roll_back`], it leaves the partition failed (see `PartitionState::failed`).
#[derive(Debug)]
pub(crate) struct WriteHold<'a> {
    partition: &'a Partition,
    _writer: MutexGuard<'a, ()>,
    start: HoldStart,
    settled: bool,
}

impl WriteHold<'_> {
    pub(crate) fn start(&self) -> HoldStart {
        self.start
    }

    pub(crate) fn partition(&self) -> &Partition {
        self.partition
    }

    /// Writes `encoded` after what the hold wrote so far, invisibly, in the segment the hold
    /// began in (however far past `segment.bytes` that takes it).
    pub(crate) fn append(&mut self, encoded: &mut EncodedBatches) -> Result<AppendResult, LogError> {
        let partition = self.partition;
        let mut state = lock(&partition.state);
        if state.deleted {
            return Err(partition.deleted_error());
        }
        let base = state.active.next_offset();
        if encoded.record_count() == 0 {
            return Ok(AppendResult { base_offset: base, last_offset: base - 1 });
        }
        let last_offset = base + encoded.record_count() as i64 - 1;
        if last_offset - state.active.base_offset() > i64::from(u32::MAX) {
            return Err(LogError::Io {
                path: partition.dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an atomic append must fit in one segment's 2^32 offsets",
                ),
            });
        }
        encoded.assign_offsets(base);
        state.dirty = true;
        state.active.append_run(encoded, encoded.batches(), base)?;
        Ok(AppendResult { base_offset: base, last_offset })
    }

    /// Makes what the hold wrote visible and lets other appends in.
    pub(crate) fn publish(mut self) {
        self.settled = true;
        let partition = self.partition;
        let mut state = lock(&partition.state);
        state.held_end = None;
        partition.end_offset.send_replace(state.active.next_offset());
    }

    /// Truncates what the hold wrote, keeping the hold (publish it afterwards).
    pub(crate) fn undo(&mut self) -> Result<(), LogError> {
        self.partition.truncate_to(self.start).map(drop)
    }

    /// Leaves the partition failed: what the hold wrote stays invisible, and no append runs on it
    /// until the log is reopened and rolls it back from the transaction journal.
    pub(crate) fn poison(mut self) {
        self.settled = true;
        let partition = self.partition;
        lock(&partition.state).failed = true;
        tracing::error!(topic = %partition.topic, partition = partition.id, "an atomic append could not be undone: the partition takes no appends until the log is reopened");
    }
}

impl Drop for WriteHold<'_> {
    /// A hold dropped unsettled (an error before anything was written, or a crash test) is
    /// released if it wrote nothing, and poisoned otherwise.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let partition = self.partition;
        let mut state = lock(&partition.state);
        if state.active.next_offset() == self.start.offset {
            state.held_end = None;
        } else {
            state.failed = true;
            tracing::error!(topic = %partition.topic, partition = partition.id, "an atomic append was abandoned: the partition takes no appends until the log is reopened");
        }
    }
}

impl Partition {
    /// Holds the partition for an atomic append of about `incoming_bytes`. A non-empty active
    /// segment that they would take past `segment.bytes` is rolled first, so the append stays in
    /// one segment and undoing it is one truncation.
    pub(crate) fn hold(&self, incoming_bytes: u64) -> Result<WriteHold<'_>, LogError> {
        let writer = lock(&self.writer);
        let mut state = lock(&self.state);
        self.check_writable(&state)?;
        let size = state.active.size();
        if size > 0 && size + incoming_bytes > self.segment_bytes.load(Ordering::Relaxed) {
            self.roll(&mut state)?;
        }
        let start = HoldStart {
            offset: state.active.next_offset(),
            segment_base: state.active.base_offset(),
            position: state.active.size(),
        };
        state.held_end = Some(start.offset);
        Ok(WriteHold { partition: self, _writer: writer, start, settled: false })
    }

    /// Truncates the partition back to `start` (durably), if it holds anything past it: undoes an
    /// atomic append, in flight or found unfinished at open. Returns whether anything went.
    pub(crate) fn truncate_to(&self, start: HoldStart) -> Result<bool, LogError> {
        let mut synced = lock(&self.synced);
        let mut state = lock(&self.state);
        if state.active.next_offset() <= start.offset {
            return Ok(false);
        }
        let mismatch =
            |reason: String| LogError::Rollback { topic: self.topic.to_string(), partition: self.id, reason };
        if state.active.base_offset() != start.segment_base || state.active.size() < start.position {
            return Err(mismatch(format!(
                "it began at offset {} in segment {} at byte {}, but the active segment is {} with {} bytes",
                start.offset,
                start.segment_base,
                start.position,
                state.active.base_offset(),
                state.active.size()
            )));
        }
        state.active.truncate(&self.dir, start.position, self.index_interval)?;
        if state.active.next_offset() != start.offset {
            return Err(mismatch(format!(
                "truncating to byte {} left the log ending at offset {}, not {}",
                start.position,
                state.active.next_offset(),
                start.offset
            )));
        }
        // What was synced past the new end is gone; the next sync must not skip what replaces it.
        *synced = (*synced).min(start.offset);
        state.dirty = true;
        let end = state.visible_end();
        self.end_offset.send_replace(end);
        Ok(true)
    }
}
