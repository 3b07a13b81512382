//! Idempotent producers: per partition and producer id, the epoch and the last batches'
//! sequence numbers, checked under a per-partition lock held across the append, so a retried
//! batch is answered with its first offset instead of being written twice and a gap is refused.
//!
//! Kafka's rules: a batch whose sequence range matches one of the last five of its producer is
//! a duplicate (answered with the offset it got, no error); a batch that does not start right
//! after the last one is `OUT_OF_ORDER_SEQUENCE_NUMBER`; an older epoch is
//! `INVALID_PRODUCER_EPOCH`; a newer epoch starts again at sequence 0.
//!
//! The state is in memory. A producer that this process has not seen (after a restart, or
//! whose state was never built) is accepted from whatever sequence it sends, as Kafka accepts
//! producers whose state expired: at worst a batch retried across a restart is stored twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use kafka_protocol::error::ResponseError;

use crate::fs_util::lock;
use crate::{CheckedBatches, ProducerBatchInfo};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct SeenBatch {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    batches: VecDeque<SeenBatch>,
}

/// One partition's producers.
#[derive(Debug, Default)]
pub(super) struct PartitionProducers {
    producers: HashMap<i64, Producer>,
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

    /// Remembers batches appended with their first record at `base_offset`.
    pub(super) fn record(&mut self, producers: &[ProducerBatchInfo], base_offset: i64) {
        let mut offset = base_offset;
        for batch in producers {
            if batch.producer_id >= 0 {
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
                    base_offset: offset,
                });
            }
            offset += i64::from(batch.record_count);
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
    /// The lock to hold across checking and appending to a partition.
    pub(super) fn partition(&self, topic: &str, partition: u32) -> Arc<Mutex<PartitionProducers>> {
        let mut partitions = lock(&self.partitions);
        Arc::clone(partitions.entry((topic.to_owned(), partition)).or_default())
    }

    /// Forgets a deleted topic's producers.
    pub(super) fn forget_topic(&self, topic: &str) {
        lock(&self.partitions).retain(|(name, _), _| name != topic);
    }
}
