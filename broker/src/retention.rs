//! Which old segments retention deletes.
//!
//! Retention only ever deletes whole sealed segments from the front of a partition, so the log
//! start offset moves forward to the next segment's base offset and no offset inside the log is
//! ever skipped. The active segment is never deleted: it holds the log end, which must survive.
//! The rules are Kafka's (`UnifiedLog.deleteRetentionSizeBreachedSegments` and
//! `deleteRetentionMsBreachedSegments`):
//!
//! - by size: delete the oldest segments as long as the partition stays at or above
//!   `retention_bytes` without them;
//! - by time: delete the oldest segments whose newest record is older than `retention_ms`, up
//!   to the first one that is not (a segment's age is its largest timestamp, not its file time,
//!   so copying files around does not change what is kept).

/// What retention needs to know about one sealed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub(crate) size: u64,
    /// `None` for a segment without records.
    pub(crate) max_timestamp: Option<i64>,
}

/// The retention limits of a topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RetentionLimits {
    pub(crate) retention_bytes: Option<u64>,
    pub(crate) retention_ms: Option<i64>,
}

/// How many segments, from the front of `sealed`, to delete at time `now_ms`, given the size of
/// the active segment.
pub(crate) fn segments_to_delete(
    sealed: &[SegmentSummary],
    active_size: u64,
    limits: RetentionLimits,
    now_ms: i64,
) -> usize {
    let by_size = limits.retention_bytes.map_or(0, |retention_bytes| {
        let total: u64 = sealed.iter().map(|segment| segment.size).sum::<u64>() + active_size;
        let mut excess = total.saturating_sub(retention_bytes);
        sealed
            .iter()
            .take_while(|segment| {
                let deletable = excess >= segment.size;
                if deletable {
                    excess -= segment.size;
                }
                deletable
            })
            .count()
    });
    let by_time = limits.retention_ms.map_or(0, |retention_ms| {
        sealed
            .iter()
            .take_while(|segment| {
                segment.max_timestamp.is_none_or(|newest| now_ms.saturating_sub(newest) > retention_ms)
            })
            .count()
    });
    by_size.max(by_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(size: u64, max_timestamp: i64) -> SegmentSummary {
        SegmentSummary { size, max_timestamp: Some(max_timestamp) }
    }

    #[test]
    fn size_retention_keeps_at_least_retention_bytes() {
        let sealed = [segment(100, 0), segment(100, 0), segment(100, 0)];
        let limits = RetentionLimits { retention_bytes: Some(150), retention_ms: None };
        // 350 bytes in all; dropping two segments leaves 150, dropping three would leave 50.
        assert_eq!(segments_to_delete(&sealed, 50, limits, 0), 2);
        assert_eq!(segments_to_delete(&sealed, 50, RetentionLimits::default(), 0), 0);
    }

    #[test]
    fn time_retention_deletes_a_prefix_of_expired_segments() {
        let sealed = [segment(10, 100), segment(10, 5_000), segment(10, 200)];
        let limits = RetentionLimits { retention_bytes: None, retention_ms: Some(1_000) };
        // The third is old too, but the second is not, and only a prefix goes.
        assert_eq!(segments_to_delete(&sealed, 0, limits, 5_500), 1);
        assert_eq!(segments_to_delete(&sealed, 0, limits, 10_000), 3);
    }

    #[test]
    fn the_stricter_limit_wins() {
        let sealed = [segment(100, 0), segment(100, 10_000), segment(100, 10_000)];
        let limits = RetentionLimits { retention_bytes: Some(100), retention_ms: Some(1_000) };
        assert_eq!(segments_to_delete(&sealed, 0, limits, 5_000), 2);
    }
}
