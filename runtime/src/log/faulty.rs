//! [`FaultyLog`]: a real [`EventLog`] (any, usually the embedded broker) wrapped so that chosen
//! calls fail or are delayed, for the task loops' delivery-order tests. Every call that reaches
//! the wrapped log does its real work; a fault replaces a call (or, for
//! [`Fault::FailAfterRecords`], the second half of one) with a real error of the log's own type.
//! It also notes each write that took effect in a shared journal, so a test can put the log's
//! writes and a connector's calls in one order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_broker::AppendResult;

use super::event_log::{
    Batches, EventLog, FetchRequest, FetchedPartition, Generation, GroupOffset, OffsetRange, PartitionBatch,
};
use super::{LogError, TopicConfig};

/// A shared record of what happened, in order: the log's writes and whatever else a test notes.
pub(crate) type Journal = Arc<Mutex<Vec<String>>>;

/// The calls a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Append,
    AppendWithOffsets,
    CommitOffsets,
    Fetch,
}

/// What happens to the `nth` call (counting from 1) of a kind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// The call fails before doing anything, with a retriable I/O error or a fatal one.
    Fail { call: Call, nth: usize, retriable: bool },
    /// `append_with_offsets` writes the records, then fails before the offset record: what a
    /// log without atomic writes may do, the worst the task loop must survive.
    FailAfterRecords { nth: usize, retriable: bool },
    /// The call waits this long, then does its work.
    Delay { call: Call, nth: usize, delay: Duration },
}

#[derive(Debug)]
pub(crate) struct FaultyLog {
    inner: Arc<dyn EventLog>,
    faults: Mutex<Vec<Fault>>,
    counts: Mutex<[usize; 4]>,
    journal: Journal,
}

fn error(retriable: bool) -> LogError {
    if retriable {
        LogError::Embedded(weir_broker::LogError::Io {
            path: "injected".into(),
            source: std::io::Error::other("injected retriable failure"),
        })
    } else {
        LogError::Fenced { generation: 0, current: 1 }
    }
}

impl FaultyLog {
    pub(crate) fn new(inner: Arc<dyn EventLog>, faults: Vec<Fault>, journal: Journal) -> Self {
        Self { inner, faults: Mutex::new(faults), counts: Mutex::new([0; 4]), journal }
    }

    fn note(&self, entry: String) {
        self.journal.lock().expect("journal lock").push(entry);
    }

    /// Counts the call and answers with its fault, if one is planned for it.
    async fn arrive(&self, call: Call) -> Result<Option<Fault>, LogError> {
        let nth = {
            let mut counts = self.counts.lock().expect("counts lock");
            counts[call as usize] += 1;
            counts[call as usize]
        };
        let fault = self.faults.lock().expect("faults lock").iter().copied().find(|fault| match *fault {
            Fault::Fail { call: hit, nth: at, .. } | Fault::Delay { call: hit, nth: at, .. } => {
                hit == call && at == nth
            }
            Fault::FailAfterRecords { nth: at, .. } => call == Call::AppendWithOffsets && at == nth,
        });
        match fault {
            Some(Fault::Fail { retriable, .. }) => {
                self.note(format!("{call:?} #{nth} failed"));
                Err(error(retriable))
            }
            Some(Fault::Delay { delay, .. }) => {
                tokio::time::sleep(delay).await;
                Ok(None)
            }
            other => Ok(other),
        }
    }
}

fn describe(batches: &[PartitionBatch]) -> String {
    batches
        .iter()
        .map(|batch| format!("{}-{}:{}", batch.topic, batch.partition, batch.records.len()))
        .collect::<Vec<_>>()
        .join(",")
}

#[async_trait::async_trait]
impl EventLog for FaultyLog {
    async fn ensure_topic(&self, topic: &str, config: TopicConfig) -> Result<u32, LogError> {
        self.inner.ensure_topic(topic, config).await
    }

    async fn topics(&self) -> Result<Vec<String>, LogError> {
        self.inner.topics().await
    }

    async fn topic_config(&self, topic: &str) -> Result<Option<TopicConfig>, LogError> {
        self.inner.topic_config(topic).await
    }

    async fn append(&self, batches: Batches, generation: Generation) -> Result<Vec<AppendResult>, LogError> {
        self.arrive(Call::Append).await?;
        let described = describe(&batches);
        let result = self.inner.append(batches, generation).await?;
        self.note(format!("append {described}"));
        Ok(result)
    }

    async fn append_with_offsets(
        &self,
        batches: Batches,
        offsets: PartitionBatch,
        generation: Generation,
    ) -> Result<(), LogError> {
        let fault = self.arrive(Call::AppendWithOffsets).await?;
        let described = describe(&batches);
        if let Some(Fault::FailAfterRecords { retriable, .. }) = fault {
            self.inner.append(batches, generation).await?;
            self.note(format!("records {described} (offsets then failed)"));
            return Err(error(retriable));
        }
        self.inner.append_with_offsets(batches, offsets, generation).await?;
        self.note(format!("records {described} + offsets"));
        Ok(())
    }

    async fn fetch(
        &self,
        requests: Vec<FetchRequest>,
        max_bytes_per_partition: usize,
        max_records: usize,
    ) -> Result<Vec<FetchedPartition>, LogError> {
        self.arrive(Call::Fetch).await?;
        self.inner.fetch(requests, max_bytes_per_partition, max_records).await
    }

    async fn offset_range(&self, topic: &str, partition: u32) -> Result<OffsetRange, LogError> {
        self.inner.offset_range(topic, partition).await
    }

    async fn wait_for_data(&self, requests: &[FetchRequest], timeout: Duration) -> Result<bool, LogError> {
        self.inner.wait_for_data(requests, timeout).await
    }

    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<GroupOffset>,
        generation: Generation,
    ) -> Result<(), LogError> {
        self.arrive(Call::CommitOffsets).await?;
        let described = offsets
            .iter()
            .map(|offset| format!("{}-{}@{}", offset.topic, offset.partition, offset.offset))
            .collect::<Vec<_>>()
            .join(",");
        self.inner.commit_offsets(group, offsets, generation).await?;
        self.note(format!("group commit {described}"));
        Ok(())
    }

    async fn group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>, LogError> {
        self.inner.group_offsets(group).await
    }

    async fn groups(&self) -> Result<Vec<String>, LogError> {
        self.inner.groups().await
    }

    async fn delete_group_offsets(&self, group: &str) -> Result<(), LogError> {
        self.inner.delete_group_offsets(group).await
    }

    async fn flush(&self) -> Result<(), LogError> {
        self.inner.flush().await
    }
}
