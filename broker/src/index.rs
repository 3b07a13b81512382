//! The sparse offset index and the time index of a segment.
//!
//! Both are files of fixed-width big-endian entries, so entry `n` is at byte `n * SIZE` and a
//! torn last entry shows as a length that is not a multiple of the size.
//!
//! - `.index`: [`OFFSET_INDEX_ENTRY_SIZE`] bytes per entry: the batch's offset relative to the
//!   segment's base offset (`u32`) and the batch's byte position in the `.log` file (`u32`). An
//!   entry is added when at least `index_interval_bytes` have been written since the previous
//!   one, so a lookup finds the nearest indexed batch at or before an offset and a read scans at
//!   most about one interval from there. No entry is needed for position 0.
//! - `.timeindex`: [`TIME_INDEX_ENTRY_SIZE`] bytes per entry: the largest timestamp seen so far
//!   (`i64`) and the relative offset of the last record of the batch that carried it (`u32`).
//!   Entries are only added when the timestamp grows, so timestamps strictly increase. Sealing a
//!   segment appends a final entry with the segment's largest timestamp, which is how retention
//!   learns a sealed segment's age without reading it.
//!
//! Lookups are pure functions over slices ([`lookup_offset`], [`lookup_time`]), tested against a
//! linear scan.

/// Bytes per offset-index entry: relative offset `u32` + file position `u32`.
pub(crate) const OFFSET_INDEX_ENTRY_SIZE: usize = 8;
/// Bytes per time-index entry: timestamp `i64` + relative offset `u32`.
pub(crate) const TIME_INDEX_ENTRY_SIZE: usize = 12;

/// "Batches at or after `relative_offset` start at or after byte `position`."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetIndexEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

impl OffsetIndexEntry {
    pub(crate) fn to_bytes(self) -> [u8; OFFSET_INDEX_ENTRY_SIZE] {
        let mut bytes = [0u8; OFFSET_INDEX_ENTRY_SIZE];
        bytes[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        bytes[4..].copy_from_slice(&self.position.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        OffsetIndexEntry {
            relative_offset: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            position: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

/// "No record up to `relative_offset` has a timestamp above `timestamp`."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeIndexEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

impl TimeIndexEntry {
    pub(crate) fn to_bytes(self) -> [u8; TIME_INDEX_ENTRY_SIZE] {
        let mut bytes = [0u8; TIME_INDEX_ENTRY_SIZE];
        bytes[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        bytes[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&bytes[..8]);
        TimeIndexEntry {
            timestamp: i64::from_be_bytes(timestamp),
            relative_offset: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        }
    }
}

/// Why an index file was not trusted (it is then rebuilt from the segment).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IndexDamage {
    /// Length not a multiple of the entry size: a torn write.
    TornEntry,
    /// Entries not strictly increasing.
    OutOfOrder,
    /// An entry pointing past the end of the segment.
    PastEnd,
}

/// The entry with the largest relative offset `<= relative_offset`, if any: where to start
/// scanning for that offset. `None` means "from the start of the segment".
pub(crate) fn lookup_offset(entries: &[OffsetIndexEntry], relative_offset: u32) -> Option<OffsetIndexEntry> {
    let after = entries.partition_point(|entry| entry.relative_offset <= relative_offset);
    after.checked_sub(1).map(|index| entries[index])
}

/// The entry with the largest timestamp `< timestamp`, if any: every record up to its offset is
/// older than `timestamp`, so a search for the first record at or after `timestamp` starts past
/// it. `None` means "from the start of the segment".
pub(crate) fn lookup_time(entries: &[TimeIndexEntry], timestamp: i64) -> Option<TimeIndexEntry> {
    let after = entries.partition_point(|entry| entry.timestamp < timestamp);
    after.checked_sub(1).map(|index| entries[index])
}

/// Parses an offset-index file and checks it against its segment's size.
pub(crate) fn parse_offset_index(bytes: &[u8], segment_size: u64) -> Result<Vec<OffsetIndexEntry>, IndexDamage> {
    if !bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_SIZE) {
        return Err(IndexDamage::TornEntry);
    }
    let entries: Vec<OffsetIndexEntry> =
        bytes.chunks_exact(OFFSET_INDEX_ENTRY_SIZE).map(OffsetIndexEntry::from_bytes).collect();
    let ordered = entries
        .windows(2)
        .all(|pair| pair[0].relative_offset < pair[1].relative_offset && pair[0].position < pair[1].position);
    if !ordered {
        return Err(IndexDamage::OutOfOrder);
    }
    if entries.last().is_some_and(|last| u64::from(last.position) >= segment_size) {
        return Err(IndexDamage::PastEnd);
    }
    Ok(entries)
}

/// Parses a time-index file.
pub(crate) fn parse_time_index(bytes: &[u8]) -> Result<Vec<TimeIndexEntry>, IndexDamage> {
    if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_SIZE) {
        return Err(IndexDamage::TornEntry);
    }
    let entries: Vec<TimeIndexEntry> =
        bytes.chunks_exact(TIME_INDEX_ENTRY_SIZE).map(TimeIndexEntry::from_bytes).collect();
    let ordered = entries
        .windows(2)
        .all(|pair| pair[0].timestamp < pair[1].timestamp && pair[0].relative_offset <= pair[1].relative_offset);
    if !ordered {
        return Err(IndexDamage::OutOfOrder);
    }
    Ok(entries)
}

/// One batch as the index sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexedBatch {
    pub(crate) base_relative_offset: u32,
    pub(crate) last_relative_offset: u32,
    pub(crate) position: u32,
    pub(crate) len: u64,
    pub(crate) max_timestamp: i64,
}

/// Decides which batches get index entries. Appends and recovery both feed every batch through
/// one builder, so a rebuilt index equals the one written while appending.
#[derive(Clone, Debug)]
pub(crate) struct IndexBuilder {
    interval_bytes: u64,
    bytes_since_last_entry: u64,
    /// Largest timestamp so far and the relative offset of the last record of its batch.
    max_timestamp: Option<(i64, u32)>,
    last_time_entry: Option<i64>,
}

impl IndexBuilder {
    pub(crate) fn new(interval_bytes: u32) -> Self {
        IndexBuilder {
            interval_bytes: u64::from(interval_bytes),
            bytes_since_last_entry: 0,
            max_timestamp: None,
            last_time_entry: None,
        }
    }

    /// Records one batch; returns the entries to append to each index.
    pub(crate) fn on_batch(&mut self, batch: IndexedBatch) -> (Option<OffsetIndexEntry>, Option<TimeIndexEntry>) {
        if self.max_timestamp.is_none_or(|(timestamp, _)| batch.max_timestamp > timestamp) {
            self.max_timestamp = Some((batch.max_timestamp, batch.last_relative_offset));
        }
        let mut offset_entry = None;
        let mut time_entry = None;
        if batch.position > 0 && self.bytes_since_last_entry >= self.interval_bytes {
            offset_entry =
                Some(OffsetIndexEntry { relative_offset: batch.base_relative_offset, position: batch.position });
            self.bytes_since_last_entry = 0;
            time_entry = self.time_entry_if_grown();
        }
        self.bytes_since_last_entry += batch.len;
        (offset_entry, time_entry)
    }

    /// The final time-index entry written when the segment is sealed.
    pub(crate) fn final_time_entry(&mut self) -> Option<TimeIndexEntry> {
        self.time_entry_if_grown()
    }

    /// Largest timestamp of any batch so far.
    pub(crate) fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp.map(|(timestamp, _)| timestamp)
    }

    fn time_entry_if_grown(&mut self) -> Option<TimeIndexEntry> {
        let (timestamp, relative_offset) = self.max_timestamp?;
        if self.last_time_entry.is_some_and(|last| last >= timestamp) {
            return None;
        }
        self.last_time_entry = Some(timestamp);
        Some(TimeIndexEntry { timestamp, relative_offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted_entries() -> impl Strategy<Value = Vec<OffsetIndexEntry>> {
        proptest::collection::btree_set(any::<u32>(), 0..60).prop_map(|offsets| {
            offsets
                .into_iter()
                .enumerate()
                .map(|(index, relative_offset)| OffsetIndexEntry { relative_offset, position: index as u32 * 100 })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn offset_lookup_matches_a_linear_scan(entries in sorted_entries(), target in any::<u32>()) {
            let expected = entries.iter().rev().find(|entry| entry.relative_offset <= target).copied();
            prop_assert_eq!(lookup_offset(&entries, target), expected);
        }

        #[test]
        fn offset_lookup_of_a_present_offset_finds_its_own_entry(entries in sorted_entries(), pick in any::<prop::sample::Index>()) {
            prop_assume!(!entries.is_empty());
            let entry = entries[pick.index(entries.len())];
            prop_assert_eq!(lookup_offset(&entries, entry.relative_offset), Some(entry));
        }

        #[test]
        fn time_lookup_matches_a_linear_scan(
            timestamps in proptest::collection::btree_set(any::<i64>(), 0..60),
            target in any::<i64>(),
        ) {
            let entries: Vec<TimeIndexEntry> = timestamps
                .into_iter()
                .enumerate()
                .map(|(index, timestamp)| TimeIndexEntry { timestamp, relative_offset: index as u32 })
                .collect();
            let expected = entries.iter().rev().find(|entry| entry.timestamp < target).copied();
            prop_assert_eq!(lookup_time(&entries, target), expected);
        }

        #[test]
        fn index_files_round_trip(entries in sorted_entries()) {
            let bytes: Vec<u8> = entries.iter().flat_map(|entry| entry.to_bytes()).collect();
            prop_assert_eq!(parse_offset_index(&bytes, u64::MAX).expect("parses"), entries);
        }
    }

    #[test]
    fn a_torn_or_unordered_index_file_is_refused() {
        let first = OffsetIndexEntry { relative_offset: 5, position: 100 }.to_bytes();
        let second = OffsetIndexEntry { relative_offset: 3, position: 200 }.to_bytes();
        assert_eq!(parse_offset_index(&first[..7], 1000), Err(IndexDamage::TornEntry));
        let unordered: Vec<u8> = first.iter().chain(second.iter()).copied().collect();
        assert_eq!(parse_offset_index(&unordered, 1000), Err(IndexDamage::OutOfOrder));
        assert_eq!(parse_offset_index(&first, 100), Err(IndexDamage::PastEnd));
        let time = TimeIndexEntry { timestamp: 9, relative_offset: 1 }.to_bytes();
        assert_eq!(parse_time_index(&time[..11]), Err(IndexDamage::TornEntry));
        assert_eq!(parse_time_index(&time).expect("parses").len(), 1);
    }

    #[test]
    fn builder_adds_an_entry_once_the_interval_is_passed() {
        let mut builder = IndexBuilder::new(100);
        let mut entries = Vec::new();
        let mut position = 0u32;
        for batch in 0..10u32 {
            let (offset_entry, _) = builder.on_batch(IndexedBatch {
                base_relative_offset: batch * 2,
                last_relative_offset: batch * 2 + 1,
                position,
                len: 60,
                max_timestamp: i64::from(batch),
            });
            entries.extend(offset_entry);
            position += 60;
        }
        // 60 bytes per batch, interval 100: an entry every second batch, never at position 0.
        let positions: Vec<u32> = entries.iter().map(|entry| entry.position).collect();
        assert_eq!(positions, vec![120, 240, 360, 480]);
        assert_eq!(builder.max_timestamp(), Some(9));
        let last = builder.final_time_entry().expect("grew since the last entry");
        assert_eq!(last, TimeIndexEntry { timestamp: 9, relative_offset: 19 });
        assert_eq!(builder.final_time_entry(), None);
    }
}
