//! Validating a segment front to back: how recovery finds a torn tail.
//!
//! A crash (of the process, the kernel or the power) can leave the end of the active segment
//! torn: a batch written halfway, a length field pointing past the end of the file, or a tail of
//! zeros where the file system extended the file but never wrote the data. A disk can also flip
//! bits. Each batch is accepted only if
//!
//! - its header parses (magic 2, a length that fits the file),
//! - its CRC32C matches (that covers everything from the attributes on),
//! - its base offset is exactly the one after the previous batch (the base offset is outside the
//!   CRC, so sequence is what protects it; in segments the cleaner wrote, where whole batches
//!   may have gone, it only has to be past the previous batch: [`OffsetSequence`]), and
//! - its partition leader epoch is the one this log writes (also outside the CRC).
//!
//! The scan stops at the first batch that fails. Everything before it is kept; it and everything
//! after it is dropped, since later bytes can no longer be trusted to be in sequence. Kafka
//! recovers the same way (`LogSegment.recover`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::batch::{BatchError, LEADER_EPOCH, check_batch};
use crate::error::LogError;
use crate::index::{IndexBuilder, IndexedBatch, OffsetIndexEntry, TimeIndexEntry};
use crate::segment::BatchReader;

/// How the base offsets of a segment's batches must follow each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OffsetSequence {
    /// Each batch starts right after the previous one, as appends write them.
    Contiguous,
    /// Each batch starts after the previous one, gaps allowed: what the cleaner writes.
    Increasing,
}

/// The valid prefix of a segment and its rebuilt indexes.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    /// Bytes of whole, valid batches from the start of the file.
    pub(crate) valid_size: u64,
    /// The offset after the last valid batch.
    pub(crate) next_offset: i64,
    pub(crate) index: Vec<OffsetIndexEntry>,
    pub(crate) time_index: Vec<TimeIndexEntry>,
    /// The builder after the last valid batch, to continue appending with.
    pub(crate) builder: IndexBuilder,
    /// Where the scan stopped early, and why.
    pub(crate) damage: Option<(u64, BatchError)>,
}

/// Scans `size` bytes of a segment starting at `base_offset`. I/O errors are returned; damage is
/// reported in the outcome.
pub(crate) fn scan_segment(
    file: &File,
    path: &Arc<Path>,
    base_offset: i64,
    size: u64,
    index_interval: u32,
    sequence: OffsetSequence,
) -> Result<ScanOutcome, LogError> {
    let mut outcome = ScanOutcome {
        valid_size: 0,
        next_offset: base_offset,
        index: Vec::new(),
        time_index: Vec::new(),
        builder: IndexBuilder::new(index_interval),
        damage: None,
    };
    let mut reader = BatchReader::new(file, path, 0, size);
    loop {
        let batch = match reader.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(LogError::SegmentCorrupt { position, source, .. }) => {
                outcome.damage = Some((position, source));
                break;
            }
            Err(error) => return Err(error),
        };
        if let Err(error) = validate(&batch.bytes, outcome.next_offset, base_offset, sequence) {
            outcome.damage = Some((batch.position, error));
            break;
        }
        let header = batch.header;
        let (offset_entry, time_entry) = outcome.builder.on_batch(IndexedBatch {
            base_relative_offset: (header.base_offset - base_offset) as u32,
            last_relative_offset: (header.last_offset() - base_offset) as u32,
            position: batch.position as u32,
            len: batch.bytes.len() as u64,
            max_timestamp: header.max_timestamp,
        });
        outcome.index.extend(offset_entry);
        outcome.time_index.extend(time_entry);
        outcome.next_offset = header.next_offset();
        outcome.valid_size = batch.position + batch.bytes.len() as u64;
    }
    Ok(outcome)
}

fn validate(batch: &[u8], expected_offset: i64, segment_base: i64, sequence: OffsetSequence) -> Result<(), BatchError> {
    let header = check_batch(batch)?;
    let in_sequence = match sequence {
        OffsetSequence::Contiguous => header.base_offset == expected_offset,
        OffsetSequence::Increasing => header.base_offset >= expected_offset,
    };
    if !in_sequence {
        return Err(BatchError::OffsetOutOfSequence { expected: expected_offset, found: header.base_offset });
    }
    if header.partition_leader_epoch != LEADER_EPOCH {
        return Err(BatchError::InvalidHeader { reason: "unexpected partition leader epoch" });
    }
    if header.last_offset() - segment_base > i64::from(u32::MAX) {
        return Err(BatchError::InvalidHeader { reason: "offset too far from the segment's base offset" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;

    use super::*;
    use crate::batch::EncodedBatches;
    use crate::record::Record;

    fn write_batches(file: &mut File, counts: &[usize]) -> Vec<u64> {
        let mut ends = Vec::new();
        let mut offset = 0i64;
        let mut end = 0u64;
        for &count in counts {
            let records: Vec<Record> = (0..count)
                .map(|index| Record {
                    value: Some(Bytes::from(vec![index as u8; 50])),
                    timestamp: index as i64,
                    ..Record::default()
                })
                .collect();
            let mut encoded = EncodedBatches::encode(&records, usize::MAX).expect("encodes");
            encoded.assign_offsets(offset);
            offset += count as i64;
            file.write_all(encoded.bytes()).expect("write");
            end += encoded.bytes().len() as u64;
            ends.push(end);
        }
        ends
    }

    #[test]
    fn scan_stops_at_a_zero_filled_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path: Arc<Path> = dir.path().join("segment.log").into();
        let mut file = File::create(&path).expect("create");
        let ends = write_batches(&mut file, &[3, 2]);
        file.write_all(&[0u8; 100]).expect("write zeros");
        let file = File::open(&path).expect("open");
        let outcome = scan_segment(&file, &path, 0, ends[1] + 100, 0, OffsetSequence::Contiguous).expect("scan");
        assert_eq!(outcome.valid_size, ends[1]);
        assert_eq!(outcome.next_offset, 5);
        assert!(outcome.damage.is_some());
    }

    #[test]
    fn scan_rejects_a_batch_whose_base_offset_is_out_of_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path: Arc<Path> = dir.path().join("segment.log").into();
        let mut file = File::create(&path).expect("create");
        let ends = write_batches(&mut file, &[3]);
        // A second batch that claims offset 0 again.
        write_batches(&mut file, &[1]);
        let file = File::open(&path).expect("open");
        let size = file.metadata().expect("metadata").len();
        let outcome = scan_segment(&file, &path, 0, size, 0, OffsetSequence::Contiguous).expect("scan");
        assert_eq!(outcome.valid_size, ends[0]);
        assert!(matches!(outcome.damage, Some((_, BatchError::OffsetOutOfSequence { expected: 3, found: 0 }))));
    }
}
