//! [`Log::append_atomic`]: the public face of [`crate::transaction`].

use crate::error::LogError;
use crate::record::{AppendResult, Record};
use crate::transaction::Stop;

use super::Log;

impl Log {
    /// Appends records to several partitions and then `commit` (a source task's offset record)
    /// as one unit: readers see all of it at once, once it is durable (with
    /// [`crate::FlushPolicy::EveryBatch`]; see [`crate::transaction`] for the others), and a
    /// failure or a crash at any point leaves none of it, now or after a reopen. Other appends to
    /// those partitions wait for it.
    ///
    /// # Errors
    ///
    /// As [`Log::append_many`], and [`LogError::PartitionFailed`] from a partition where a
    /// failed atomic append could not be undone.
    pub fn append_atomic(
        &self,
        batches: &[(&str, u32, &[Record])],
        commit: (&str, u32, &[Record]),
    ) -> Result<Vec<AppendResult>, LogError> {
        self.append_atomic_until(batches, commit, None)
    }

    /// [`Log::append_atomic`], stopped (crashed or failed) where a test says.
    pub(crate) fn append_atomic_until(
        &self,
        batches: &[(&str, u32, &[Record])],
        commit: (&str, u32, &[Record]),
        stop: Option<Stop>,
    ) -> Result<Vec<AppendResult>, LogError> {
        let prepare = |&(topic, partition, records): &(&str, u32, &[Record])| {
            Ok::<_, LogError>((
                self.writable_partition(topic, partition, records)?,
                self.encode(topic, partition, records)?,
            ))
        };
        let data = batches.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
        let commit = prepare(&commit)?;
        crate::transaction::append_atomic(&self.journal, self.config.flush, data, commit, stop)
    }
}
