//! Idempotent producers: per partition and producer id, the epoch and the last batches'
//! sequence numbers, checked under a per-partition lock held across the append, so a retried
//! batch is answered with its first offset instead of being written twice and a gap is refused.
//!
//! Kafka's rules: a batch whose sequence range matches one of the last five of its producer is
//! a duplicate (answered with the offset it got, no error); a batch that does not start right
//! after the last one is `OUT_OF_ORDER_SEQUENCE_NUMBER`; an older epoch is
//! `INVALID_PRODUCER_EPOCH`; a newer epoch starts again at sequence 0. A producer never seen (or
//! evicted) is accepted from whatever sequence it sends, as Kafka accepts one whose state
//! expired.
//!
//! The state survives a restart the way Kafka's does: a snapshot file beside the partition's
//! segments says what the state was up to some offset, and the batch headers after that offset
//! (the producer id, epoch and base sequence are in every RecordBatch header) are replayed on top
//! (`producer_snapshot`). A partition's state is rebuilt the first time a producer writes to it
//! after a start, so starting costs nothing for partitions nobody produces to.
//!
//! Bounded: at most [`MAX_PRODUCERS`] producers per partition (the one that wrote least recently
//! is forgotten first), [`REMEMBERED_BATCHES`] batches each, and a snapshot every
//! [`SNAPSHOT_EVERY_BATCHES`] idempotent batches, after a rebuild and at shutdown, so a replay
//! reads at most what was appended since the last snapshot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use kafka_protocol::error::ResponseError;

use super::producer_snapshot;
use crate::fs_util::lock;
use crate::{CheckedBatches, Log, LogError, ProducerBatchInfo};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub(super) const REMEMBERED_BATCHES: usize = 5;
/// Producers remembered per partition.
pub(super) const MAX_PRODUCERS: usize = 10_000;
/// Idempotent batches appended to a partition between two snapshots.
pub(super) const SNAPSHOT_EVERY_BATCHES: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SeenBatch {
    pub(super) first_sequence: i32,
    pub(super) last_sequence: i32,
    pub(super) base_offset: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Producer {
    pub(super) epoch: i16,
    pub(super) batches: VecDeque<SeenBatch>,
}

impl Producer {
    /// The base offset of its latest batch: how recently it wrote.
    fn last_write(&self) -> i64 {
        self.batches.back().map_or(i64::MIN, |batch| batch.base_offset)
    }
}

/// One partition's producers.
#[derive(Debug, Default)]
pub(super) struct PartitionProducers {
    pub(super) producers: HashMap<i64, Producer>,
    /// Whether the state was rebuilt from the snapshot and the log since this process started.
    loaded: bool,
    /// Every batch below this offset is accounted for.
    pub(super) covered_end: i64,
    /// Idempotent batches recorded since the last snapshot.
    unsnapshotted: u32,
}

/// What to do with a produce request's batches for one partition.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Append them.
    Append,
    /// Already appended at this base offset: answer with it and write nothing.
    Duplicate(i64),
    /// Refuse with this error.
    Refuse(ResponseError),
}

fn last_sequence(batch: &ProducerBatchInfo) -> i32 {
    batch.base_sequence.wrapping_add(batch.record_count - 1) & i32::MAX
}

impl PartitionProducers {
    /// Checks the batches of one request against what the producer sent before.
    pub(super) fn check(&self, batches: &CheckedBatches) -> Verdict {
        let Some(first) = batches.producers().first() else { return Verdict::Append };
        if first.producer_id < 0 {
            return Verdict::Append;
        }
        let Some(producer) = self.producers.get(&first.producer_id) else { return Verdict::Append };
        if first.producer_epoch < producer.epoch {
            return Verdict::Refuse(ResponseError::InvalidProducerEpoch);
        }
        if first.producer_epoch > producer.epoch {
            return if first.base_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Refuse(ResponseError::OutOfOrderSequenceNumber)
            };
        }
        if let Some(seen) = producer
            .batches
            .iter()
            .find(|seen| seen.first_sequence == first.base_sequence && seen.last_sequence == last_sequence(first))
        {
            return Verdict::Duplicate(seen.base_offset);
        }
        let expected =
            producer.batches.back().map_or(first.base_sequence, |last| last.last_sequence.wrapping_add(1) & i32::MAX);
        if first.base_sequence != expected {
            return Verdict::Refuse(ResponseError::OutOfOrderSequenceNumber);
        }
        Verdict::Append
    }

    /// Remembers one batch of an idempotent producer, stored at `base_offset`.
    pub(super) fn record_batch(&mut self, batch: &ProducerBatchInfo, base_offset: i64) {
        if batch.producer_id < 0 {
            return;
        }
        if !self.producers.contains_key(&batch.producer_id) && self.producers.len() >= MAX_PRODUCERS {
            self.evict_least_recent();
        }
        let producer = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch != producer.epoch {
            producer.epoch = batch.producer_epoch;
            producer.batches.clear();
        }
        if producer.batches.len() == REMEMBERED_BATCHES {
            producer.batches.pop_front();
        }
        producer.batches.push_back(SeenBatch {
            first_sequence: batch.base_sequence,
            last_sequence: last_sequence(batch),
            base_offset,
        });
        self.unsnapshotted = self.unsnapshotted.saturating_add(1);
    }

    fn evict_least_recent(&mut self) {
        if let Some((&id, _)) = self.producers.iter().min_by_key(|(_, producer)| producer.last_write()) {
            self.producers.remove(&id);
        }
    }

    /// Remembers batches appended with their first record at `base_offset`, the last one
    /// ending before `end_offset`.
    pub(super) fn record(&mut self, producers: &[ProducerBatchInfo], base_offset: i64, end_offset: i64) {
        let mut offset = base_offset;
        for batch in producers {
            self.record_batch(batch, offset);
            offset += i64::from(batch.record_count);
        }
        self.covered_end = self.covered_end.max(end_offset);
    }

    /// Rebuilds the state from the snapshot and the log, the first time after a start.
    ///
    /// # Errors
    ///
    /// What reading the log's batches returns.
    pub(super) fn ensure_loaded(&mut self, log: &Log, topic: &str, partition: u32) -> Result<(), LogError> {
        if self.loaded {
            return Ok(());
        }
        let replayed = producer_snapshot::rebuild(self, log, topic, partition)?;
        self.loaded = true;
        self.unsnapshotted = 0;
        if replayed > 0 {
            // The next start replays from here, not from wherever the old snapshot was.
            self.snapshot(log, topic, partition);
        }
        Ok(())
    }

    /// Writes a snapshot when enough batches were recorded since the last one.
    pub(super) fn snapshot_if_due(&mut self, log: &Log, topic: &str, partition: u32) {
        if self.unsnapshotted >= SNAPSHOT_EVERY_BATCHES {
            self.snapshot(log, topic, partition);
        }
    }

    /// Writes a snapshot now. A failure is logged: the next start replays further back.
    pub(super) fn snapshot(&mut self, log: &Log, topic: &str, partition: u32) {
        match producer_snapshot::write(self, log, topic, partition) {
            Ok(()) => self.unsnapshotted = 0,
            Err(error) => tracing::warn!(topic, partition, %error, "cannot write the producer-state snapshot"),
        }
    }
}

type SharedPartition = Arc<Mutex<PartitionProducers>>;

/// Every partition's producers.
#[derive(Debug, Default)]
pub(super) struct ProducerStates {
    partitions: Mutex<HashMap<(String, u32), SharedPartition>>,
}

impl ProducerStates {
    /// The lock to hold across checking and appending to a partition (its state may still
    /// have to be rebuilt: [`PartitionProducers::ensure_loaded`]).
    pub(super) fn partition(&self, topic: &str, partition: u32) -> Arc<Mutex<PartitionProducers>> {
        let mut partitions = lock(&self.partitions);
        Arc::clone(partitions.entry((topic.to_owned(), partition)).or_default())
    }

    /// Forgets a deleted topic's producers (their snapshots went with its directory).
    pub(super) fn forget_topic(&self, topic: &str) {
        lock(&self.partitions).retain(|(name, _), _| name != topic);
    }

    /// Snapshots every partition with batches recorded since its last snapshot (at shutdown),
    /// so the next start replays nothing.
    pub(super) fn snapshot_all(&self, log: &Log) {
        let partitions: Vec<((String, u32), SharedPartition)> =
            lock(&self.partitions).iter().map(|(key, state)| (key.clone(), Arc::clone(state))).collect();
        for ((topic, partition), state) in partitions {
            let mut state = lock(&state);
            if state.loaded && state.unsnapshotted > 0 && log.topic_config(&topic).is_some() {
                state.snapshot(log, &topic, partition);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, base_sequence: i32, record_count: i32) -> ProducerBatchInfo {
        ProducerBatchInfo { producer_id, producer_epoch: epoch, base_sequence, record_count }
    }

    #[test]
    fn only_the_last_five_batches_of_a_producer_are_kept() {
        let mut state = PartitionProducers::default();
        for index in 0..7 {
            state.record_batch(&batch(1, 0, index * 2, 2), i64::from(index) * 2);
        }
        let producer = &state.producers[&1];
        assert_eq!(producer.batches.len(), REMEMBERED_BATCHES);
        assert_eq!(producer.batches.front().map(|seen| seen.first_sequence), Some(4));
    }

    #[test]
    fn a_new_epoch_forgets_the_old_sequences() {
        let mut state = PartitionProducers::default();
        state.record_batch(&batch(1, 0, 0, 3), 0);
        state.record_batch(&batch(1, 1, 0, 1), 3);
        let producer = &state.producers[&1];
        assert_eq!(producer.epoch, 1);
        assert_eq!(producer.batches.len(), 1);
    }

    #[test]
    fn past_the_producer_limit_the_least_recent_writer_is_forgotten() {
        let mut state = PartitionProducers::default();
        for id in 0..MAX_PRODUCERS as i64 {
            state.record_batch(&batch(id, 0, 0, 1), id);
        }
        // Producer 0 writes again: producer 1 is now the least recent.
        state.record_batch(&batch(0, 0, 1, 1), MAX_PRODUCERS as i64);
        state.record_batch(&batch(-1, 0, 0, 1), MAX_PRODUCERS as i64 + 1);
        state.record_batch(&batch(MAX_PRODUCERS as i64, 0, 0, 1), MAX_PRODUCERS as i64 + 2);
        assert_eq!(state.producers.len(), MAX_PRODUCERS);
        assert!(state.producers.contains_key(&0));
        assert!(!state.producers.contains_key(&1));
        assert!(state.producers.contains_key(&(MAX_PRODUCERS as i64)));
    }
}
