//! Producer state on disk: a snapshot file beside a partition's segments, and the replay of the
//! batch headers stored after it.
//!
//! `producers.snapshot.json` in the partition's directory holds every remembered producer (id,
//! epoch, last batches' sequence ranges and offsets) and `end_offset`, the offset below which the
//! snapshot accounts for every batch. It is replaced whole (write to `.tmp`, fsync, rename, fsync
//! the directory), so a crash leaves the old snapshot or the new one; a leftover `.tmp` is
//! removed when the partition opens. It lives in the partition's directory so that deleting the
//! topic deletes it, whoever deletes the topic.
//!
//! Rebuilding reads the snapshot, then the headers of the batches from its `end_offset` to the
//! log's end. A snapshot that claims more than the log holds (the log lost an unsynced tail in
//! a machine crash under a lenient flush policy) would remember batches that are gone, and a
//! retry of one would be wrongly answered as a duplicate: it is ignored, and the whole partition
//! is replayed instead. Snapshots are written after appends returned, so under the default
//! flush policy (fsync every batch) a snapshot never claims more than the log holds.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::producer_state::{PartitionProducers, Producer, SeenBatch};
use crate::batch::BatchHeader;
use crate::fs_util::write_atomically;
use crate::{Log, LogError, ProducerBatchInfo};

const FILE_NAME: &str = "producers.snapshot.json";
const FORMAT_VERSION: u32 = 1;
/// Bytes of batches read per step of a replay.
const REPLAY_CHUNK_BYTES: usize = 4 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotFile {
    version: u32,
    end_offset: i64,
    producers: Vec<SnapshotProducer>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotProducer {
    id: i64,
    epoch: i16,
    /// `[first_sequence, last_sequence, base_offset]`, oldest first.
    batches: Vec<(i32, i32, i64)>,
}

fn path(log: &Log, topic: &str, partition: u32) -> Result<PathBuf, LogError> {
    Ok(log.partition_dir(topic, partition)?.join(FILE_NAME))
}

/// Writes `state` as the partition's snapshot.
///
/// # Errors
///
/// [`LogError::UnknownTopic`] / [`LogError::UnknownPartition`]; [`LogError::Io`].
pub(super) fn write(state: &PartitionProducers, log: &Log, topic: &str, partition: u32) -> Result<(), LogError> {
    let mut producers: Vec<SnapshotProducer> = state
        .producers
        .iter()
        .map(|(&id, producer)| SnapshotProducer {
            id,
            epoch: producer.epoch,
            batches: producer
                .batches
                .iter()
                .map(|batch| (batch.first_sequence, batch.last_sequence, batch.base_offset))
                .collect(),
        })
        .collect();
    producers.sort_unstable_by_key(|producer| producer.id);
    let file = SnapshotFile { version: FORMAT_VERSION, end_offset: state.covered_end, producers };
    let json = serde_json::to_vec(&file).expect("plain structs serialize to JSON");
    write_atomically(&path(log, topic, partition)?, &json)?;
    tracing::debug!(topic, partition, end_offset = state.covered_end, "wrote producer-state snapshot");
    Ok(())
}

/// The snapshot, if there is a usable one.
fn read(log: &Log, topic: &str, partition: u32) -> Result<Option<SnapshotFile>, LogError> {
    let path = path(log, topic, partition)?;
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(LogError::Io { path, source }),
    };
    match serde_json::from_slice::<SnapshotFile>(&bytes) {
        Ok(file) if file.version == FORMAT_VERSION => Ok(Some(file)),
        Ok(file) => {
            tracing::warn!(path = %path.display(), version = file.version, "ignoring a producer-state snapshot of an unknown version");
            Ok(None)
        }
        Err(error) => {
            // Only a bug or a damaged disk gets here (the file is replaced atomically): the
            // replay of the whole partition rebuilds the same state.
            tracing::warn!(path = %path.display(), %error, "ignoring an unreadable producer-state snapshot");
            Ok(None)
        }
    }
}

/// Rebuilds `state` from the snapshot and the batches after it; the number of batches replayed.
///
/// # Errors
///
/// What reading the log returns.
pub(super) fn rebuild(
    state: &mut PartitionProducers,
    log: &Log,
    topic: &str,
    partition: u32,
) -> Result<usize, LogError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let mut from = start;
    state.producers.clear();
    match read(log, topic, partition)? {
        Some(snapshot) if snapshot.end_offset <= end => {
            for producer in snapshot.producers {
                let batches = producer
                    .batches
                    .into_iter()
                    .map(|(first_sequence, last_sequence, base_offset)| SeenBatch {
                        first_sequence,
                        last_sequence,
                        base_offset,
                    })
                    .collect();
                state.producers.insert(producer.id, Producer { epoch: producer.epoch, batches });
            }
            from = from.max(snapshot.end_offset);
        }
        Some(snapshot) => {
            tracing::warn!(
                topic,
                partition,
                snapshot_end = snapshot.end_offset,
                log_end = end,
                "the producer-state snapshot is ahead of the log: replaying the whole partition"
            );
        }
        None => {}
    }
    let replayed = replay(state, log, topic, partition, from, end)?;
    state.covered_end = end.max(state.covered_end);
    tracing::debug!(topic, partition, from, end, replayed, producers = state.producers.len(), "rebuilt producer state");
    Ok(replayed)
}

/// Records the idempotent batches stored in `[from, end)`; the number of batches read.
fn replay(
    state: &mut PartitionProducers,
    log: &Log,
    topic: &str,
    partition: u32,
    mut from: i64,
    end: i64,
) -> Result<usize, LogError> {
    let mut replayed = 0;
    while from < end {
        let bytes = log.read_batches(topic, partition, from, REPLAY_CHUNK_BYTES)?;
        let mut rest: &[u8] = &bytes;
        let before = from;
        while !rest.is_empty() {
            // Stored batches passed their CRC check in `read_batches`; a header that does not
            // parse here ends the replay (what was read so far stands).
            let Ok(header) = BatchHeader::parse(rest) else { break };
            if header.size() > rest.len() {
                break;
            }
            rest = &rest[header.size()..];
            if header.last_offset() < from {
                continue;
            }
            replayed += 1;
            if header.producer_id >= 0 && !header.is_control() {
                state.record_batch(&ProducerBatchInfo::from(&header), header.base_offset);
            }
            from = header.next_offset();
        }
        if from <= before {
            // Nothing past `from` (a compacted gap at the end): the rest holds no batch.
            break;
        }
    }
    Ok(replayed)
}
