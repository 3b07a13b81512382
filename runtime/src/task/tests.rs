//! The delivery order of the task loops, against the embedded log wrapped in a [`FaultyLog`]
//! that fails or delays chosen calls (real errors of the log's own type, real writes otherwise).
//!
//! - a source's positions are stored only after its records are durable, and the component
//!   hears `commit` only after that;
//! - a sink's group offsets move only after `flush` succeeded;
//! - a failed append or flush loses nothing and duplicates at most the batch in hand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_connector_sdk::batch::{SinkBatchReader, SourceBatchWriter, SourceRecordRef};
use weir_connector_sdk::{ConnectorError, DynSinkTask, DynSourceTask, OffsetFailure, RecordFailure, SourceOffset};

use super::errors::ErrorHandling;
use super::handle::{SinkHandle, SourceHandle};
use super::retry::RetryPolicy;
use super::sink::{SinkSettings, SinkTask};
use super::source::{SourceSettings, SourceTask};
use super::status::TaskMetrics;
use crate::host::TaskError;
use crate::log::faulty::{Call, Fault, FaultyLog, Journal};
use crate::log::{EmbeddedLog, EventLog, Generation, PartitionBatch, Record, TopicConfig};
use crate::state_store::OffsetStore;
use crate::transform::Chain;

const BATCH: u64 = 10;
const TOPIC: &str = "numbers";

fn note(journal: &Journal, entry: String) {
    journal.lock().expect("journal lock").push(entry);
}

fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().expect("journal lock").clone()
}

/// Emits `total` numbered records, `BATCH` per poll, position `n` after record `n`; notes each
/// `commit` it hears.
struct Numbers {
    next: u64,
    total: u64,
    /// Records per poll.
    per_poll: u64,
    journal: Journal,
}

impl DynSourceTask for Numbers {
    fn poll(&mut self, _max: u32) -> Result<Vec<u8>, ConnectorError> {
        let mut batch = SourceBatchWriter::new();
        let end = (self.next + self.per_poll).min(self.total);
        for n in self.next..end {
            let text = n.to_string();
            let position = format!("{{\"n\":{}}}", n + 1);
            batch.push(&SourceRecordRef {
                topic: TOPIC,
                partition: 0,
                timestamp: Some(0),
                key: Some(text.as_bytes()),
                value: Some(text.as_bytes()),
                headers: &[],
                source_partition: b"{}",
                source_position: position.as_bytes(),
            });
        }
        self.next = end;
        Ok(batch.finish())
    }

    fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), ConnectorError> {
        for position in positions {
            if self.per_poll == BATCH {
                note(&self.journal, format!("commit {}", String::from_utf8_lossy(&position.position)));
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    embedded: Arc<dyn EventLog>,
    /// The same log, for what only the broker itself can do (growing a topic).
    broker: Arc<weir_broker::Log>,
    journal: Journal,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(dir.path(), Default::default()).await.expect("log");
    let broker = log.broker().clone();
    let embedded: Arc<dyn EventLog> = Arc::new(log);
    embedded.ensure_topic(TOPIC, TopicConfig::default()).await.expect("topic");
    Fixture { _dir: dir, embedded, broker, journal: Journal::default() }
}

fn settings() -> (RetryPolicy, ErrorHandling, Arc<Chain>) {
    (
        RetryPolicy { timeout: Some(Duration::from_secs(10)), max_delay: Duration::from_millis(5) },
        ErrorHandling::default(),
        Arc::default(),
    )
}

/// Runs a source over `total` records through a log with `faults`; returns the task's result
/// once it committed everything (or failed), and the offsets store.
async fn run_source(fixture: &Fixture, total: u64, faults: Vec<Fault>) -> (Result<(), TaskError>, Arc<OffsetStore>) {
    let log: Arc<dyn EventLog> = Arc::new(FaultyLog::new(fixture.embedded.clone(), faults, fixture.journal.clone()));
    let offsets = Arc::new(OffsetStore::open(fixture.embedded.clone()).await.expect("offsets"));
    let (retry, errors, transforms) = settings();
    let task = SourceTask {
        connector: Arc::from("source"),
        task_id: 0,
        handle: SourceHandle::native(Box::new(Numbers {
            next: 0,
            total,
            per_poll: BATCH,
            journal: fixture.journal.clone(),
        })),
        log,
        offsets: offsets.clone(),
        generation: Generation(1),
        metrics: Arc::new(TaskMetrics::default()),
        on_new_topic: Arc::new(|_| {}),
        settings: SourceSettings { batch_size: BATCH as u32, default_partitions: 1, retry, errors, transforms },
    };
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));
    let last = format!("commit {{\"n\":{total}}}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !running.is_finished() && !entries(&fixture.journal).contains(&last) {
        assert!(tokio::time::Instant::now() < deadline, "the source stalled: {:?}", entries(&fixture.journal));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    (running.await.expect("task joins"), offsets)
}

async fn stored_numbers(log: &dyn EventLog) -> Vec<u64> {
    let request = crate::log::FetchRequest { topic: TOPIC.into(), partition: 0, from: 0 };
    let fetched = log.fetch(vec![request], 1 << 20, usize::MAX).await.expect("read");
    fetched
        .into_iter()
        .flat_map(|part| part.records)
        .map(|record| String::from_utf8_lossy(record.value.as_deref().expect("value")).parse().expect("number"))
        .collect()
}

fn stored_position(offsets: &OffsetStore) -> Option<String> {
    offsets.committed("source").first().map(|offset| String::from_utf8_lossy(&offset.position).into_owned())
}

#[tokio::test]
async fn source_commit_reaches_the_component_only_after_records_and_positions_are_durable() {
    let fixture = fixture().await;
    let (result, offsets) = run_source(&fixture, 3 * BATCH, Vec::new()).await;
    result.expect("the source stops cleanly");
    let expected: Vec<String> = (1..=3)
        .flat_map(|batch| {
            [format!("records {TOPIC}-0:{BATCH} + offsets"), format!("commit {{\"n\":{}}}", batch * BATCH)]
        })
        .collect();
    assert_eq!(entries(&fixture.journal), expected);
    assert_eq!(stored_position(&offsets).as_deref(), Some("{\"n\":30}"));
    assert_eq!(stored_numbers(&*fixture.embedded).await, (0..3 * BATCH).collect::<Vec<_>>());
}

#[tokio::test]
async fn source_positions_are_not_stored_when_the_append_fails_after_the_records() {
    let fixture = fixture().await;
    let (result, offsets) =
        run_source(&fixture, 3 * BATCH, vec![Fault::FailAfterRecords { nth: 2, retriable: false }]).await;
    let error = result.expect_err("a fatal append fails the task");
    assert!(matches!(error, TaskError::Log { .. }) && !error.is_retriable(), "{error}");
    let journal = entries(&fixture.journal);
    assert_eq!(journal[..2], [format!("records {TOPIC}-0:{BATCH} + offsets"), "commit {\"n\":10}".to_owned()]);
    assert!(!journal.iter().any(|entry| entry == "commit {\"n\":20}"), "no commit for the failed batch: {journal:?}");
    assert_eq!(stored_position(&offsets).as_deref(), Some("{\"n\":10}"), "the failed batch's position is not stored");
    // A restart resumes at 10 and writes 10..20 again: the batch in hand is the only repeat.
    assert_eq!(stored_numbers(&*fixture.embedded).await, (0..2 * BATCH).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_retried_append_duplicates_at_most_the_batch_in_hand_and_loses_nothing() {
    let fixture = fixture().await;
    let faults = vec![
        Fault::FailAfterRecords { nth: 2, retriable: true },
        Fault::Fail { call: Call::AppendWithOffsets, nth: 4, retriable: true },
        Fault::Delay { call: Call::AppendWithOffsets, nth: 5, delay: Duration::from_millis(50) },
    ];
    let (result, offsets) = run_source(&fixture, 4 * BATCH, faults).await;
    result.expect("retriable failures are retried");
    let numbers = stored_numbers(&*fixture.embedded).await;
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for number in &numbers {
        *counts.entry(*number).or_default() += 1;
    }
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), (0..4 * BATCH).collect::<Vec<_>>(), "nothing lost");
    let repeated: Vec<u64> = counts.iter().filter(|(_, count)| **count > 1).map(|(number, _)| *number).collect();
    assert_eq!(repeated, (BATCH..2 * BATCH).collect::<Vec<_>>(), "only the batch whose offsets failed repeats");
    assert_eq!(stored_position(&offsets).as_deref(), Some("{\"n\":40}"));
    let commits: Vec<String> =
        entries(&fixture.journal).into_iter().filter(|entry| entry.starts_with("commit")).collect();
    assert_eq!(commits, (1..=4).map(|batch| format!("commit {{\"n\":{}}}", batch * BATCH)).collect::<Vec<_>>());
}

/// Notes each put (first and last offset) and flush; the `fail_flush`-th flush fails fatally.
struct Recorder {
    journal: Journal,
    flushes: usize,
    fail_flush: Option<usize>,
}

impl DynSinkTask for Recorder {
    fn put(&mut self, batch: &[u8]) -> Result<Vec<RecordFailure>, ConnectorError> {
        let offsets: Vec<i64> = SinkBatchReader::new(batch)
            .map_err(|error| ConnectorError::Fatal(error.to_string()))?
            .map(|record| record.map(|record| record.offset).map_err(|error| ConnectorError::Fatal(error.to_string())))
            .collect::<Result<_, _>>()?;
        if let (Some(first), Some(last)) = (offsets.first(), offsets.last()) {
            note(&self.journal, format!("put {first}..={last}"));
        }
        Ok(Vec::new())
    }

    fn flush(&mut self) -> Result<Vec<OffsetFailure>, ConnectorError> {
        self.flushes += 1;
        if self.fail_flush == Some(self.flushes) {
            note(&self.journal, "flush failed".into());
            return Err(ConnectorError::Fatal("injected flush failure".into()));
        }
        note(&self.journal, "flush".into());
        Ok(Vec::new())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

async fn fill(log: &dyn EventLog, count: u64) {
    fill_partition(log, 0, count).await;
}

async fn fill_partition(log: &dyn EventLog, partition: u32, count: u64) {
    let records = (0..count)
        .map(|n| Record { key: None, value: Some(n.to_string().into()), headers: Vec::new(), timestamp: 0 })
        .collect();
    log.append(Arc::from([PartitionBatch { topic: TOPIC.into(), partition, records }]), Generation(1))
        .await
        .expect("fill");
}

/// Runs a sink until it committed `until` (or failed); returns its result.
async fn run_sink(fixture: &Fixture, until: i64, fail_flush: Option<usize>) -> Result<(), TaskError> {
    let (running, cancel) = start_sink(fixture, fail_flush);
    wait_for_commit(fixture, &running, 0, until).await;
    cancel.cancel();
    running.await.expect("task joins")
}

/// Waits until the sink committed `until` on `partition`, or stopped.
async fn wait_for_commit(
    fixture: &Fixture,
    running: &tokio::task::JoinHandle<Result<(), TaskError>>,
    partition: u32,
    until: i64,
) {
    let last = format!("{TOPIC}-{partition}@{until}");
    // A commit of several partitions is one entry: `group commit t-0@10,t-1@5`.
    let committed = |entry: &String| {
        entry.strip_prefix("group commit ").is_some_and(|offsets| offsets.split(',').any(|offset| offset == last))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !running.is_finished() && !entries(&fixture.journal).iter().any(committed) {
        assert!(tokio::time::Instant::now() < deadline, "the sink stalled: {:?}", entries(&fixture.journal));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts a sink task over `TOPIC` whose `fail_flush`-th flush fails.
fn start_sink(
    fixture: &Fixture,
    fail_flush: Option<usize>,
) -> (tokio::task::JoinHandle<Result<(), TaskError>>, CancellationToken) {
    let recorder = Recorder { journal: fixture.journal.clone(), flushes: 0, fail_flush };
    start_sink_with(fixture, Box::new(recorder), settings().1)
}

/// Starts sink task `sink` over `TOPIC` with these error settings.
fn start_sink_with(
    fixture: &Fixture,
    sink: Box<dyn DynSinkTask>,
    errors: ErrorHandling,
) -> (tokio::task::JoinHandle<Result<(), TaskError>>, CancellationToken) {
    let log: Arc<dyn EventLog> =
        Arc::new(FaultyLog::new(fixture.embedded.clone(), Vec::new(), fixture.journal.clone()));
    let (retry, _, transforms) = settings();
    let task = SinkTask {
        connector: Arc::from("sink"),
        task_id: 0,
        handle: SinkHandle::native(sink),
        log,
        generation: Generation(1),
        metrics: Arc::new(TaskMetrics::default()),
        group: "connect-sink".into(),
        topics: vec![TOPIC.into()],
        task_count: 1,
        settings: SinkSettings {
            batch_size: BATCH as u32,
            max_read_bytes: 1 << 20,
            flush_interval: Duration::ZERO,
            retry,
            errors,
            transforms,
        },
    };
    let cancel = CancellationToken::new();
    (tokio::spawn(task.run(cancel.clone())), cancel)
}

/// Every group commit follows a flush that came after the last put before it.
fn assert_commits_follow_flushes(journal: &[String]) {
    let mut flushed_since_put = false;
    for entry in journal {
        if entry.starts_with("put ") {
            flushed_since_put = false;
        } else if entry == "flush" {
            flushed_since_put = true;
        } else if entry.starts_with("group commit") {
            assert!(flushed_since_put, "{entry} without a flush after the last put: {journal:?}");
        }
    }
}

#[tokio::test]
async fn sink_group_offsets_move_only_after_flush_succeeded() {
    let fixture = fixture().await;
    fill(&*fixture.embedded, 3 * BATCH).await;
    run_sink(&fixture, 30, None).await.expect("the sink stops cleanly");
    let journal = entries(&fixture.journal);
    assert_commits_follow_flushes(&journal);
    let committed = fixture.embedded.group_offsets("connect-sink").await.expect("group offsets");
    assert_eq!(committed.iter().map(|offset| offset.offset).collect::<Vec<_>>(), [30]);
}

#[tokio::test]
async fn a_failed_flush_commits_nothing_and_the_restart_repeats_only_the_batch_in_hand() {
    let fixture = fixture().await;
    fill(&*fixture.embedded, 3 * BATCH).await;
    let error = run_sink(&fixture, 30, Some(2)).await.expect_err("a fatal flush fails the task");
    assert!(matches!(error, TaskError::Connector(ConnectorError::Fatal(_))), "{error}");
    let committed = fixture.embedded.group_offsets("connect-sink").await.expect("group offsets");
    assert_eq!(committed.iter().map(|offset| offset.offset).collect::<Vec<_>>(), [10], "only the flushed batch");
    run_sink(&fixture, 30, None).await.expect("the restarted sink stops cleanly");
    let journal = entries(&fixture.journal);
    assert_commits_follow_flushes(&journal);
    let puts: Vec<&String> = journal.iter().filter(|entry| entry.starts_with("put ")).collect();
    assert_eq!(puts, ["put 0..=9", "put 10..=19", "put 10..=19", "put 20..=29"], "{journal:?}");
}

/// Accepts every put; its first flush reports these offsets of partition 0 as failed, as a sink
/// that buffers across puts does when a send is refused.
struct Refuser {
    refuse: Vec<i64>,
}

impl DynSinkTask for Refuser {
    fn put(&mut self, _batch: &[u8]) -> Result<Vec<RecordFailure>, ConnectorError> {
        Ok(Vec::new())
    }

    fn flush(&mut self) -> Result<Vec<OffsetFailure>, ConnectorError> {
        Ok(std::mem::take(&mut self.refuse)
            .into_iter()
            .map(|offset| OffsetFailure {
                topic: TOPIC.into(),
                partition: 0,
                offset,
                error: ConnectorError::Fatal("refused".into()),
                context: vec![("x-status".into(), "400".into())],
            })
            .collect())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[tokio::test]
async fn records_a_flush_reports_failed_are_dead_lettered_as_consumed_before_the_commit() {
    let fixture = fixture().await;
    fill(&*fixture.embedded, BATCH).await;
    let errors = ErrorHandling {
        tolerance: crate::manifest::Tolerance::All,
        dead_letter_topic: Some("dlq".into()),
        context_headers: true,
        ..ErrorHandling::default()
    };
    let (running, cancel) = start_sink_with(&fixture, Box::new(Refuser { refuse: vec![3, 7] }), errors);
    wait_for_commit(&fixture, &running, 0, 10).await;
    cancel.cancel();
    running.await.expect("task joins").expect("the sink stops cleanly");
    let journal = entries(&fixture.journal);
    let dead_letters = journal.iter().position(|entry| entry.starts_with("append dlq")).expect("a dead-letter append");
    let commit = journal.iter().position(|entry| entry.starts_with("group commit")).expect("a commit");
    assert!(dead_letters < commit, "dead letters before the commit: {journal:?}");
    let request = crate::log::FetchRequest { topic: "dlq".into(), partition: 0, from: 0 };
    let fetched = fixture.embedded.fetch(vec![request], 1 << 20, 100).await.expect("read the dead letters");
    let dead = &fetched[0].records;
    let values: Vec<&[u8]> = dead.iter().map(|record| record.value.as_deref().unwrap_or_default()).collect();
    assert_eq!(values, [b"3".as_slice(), b"7"], "the records as they were consumed");
    let header = |name: &str| {
        dead[1]
            .headers
            .iter()
            .find(|(header, _)| header == name)
            .and_then(|(_, value)| value.as_deref())
            .map(<[u8]>::to_vec)
    };
    assert_eq!(header("x-status").as_deref(), Some(b"400".as_slice()));
    assert_eq!(header("__connect.errors.offset").as_deref(), Some(b"7".as_slice()));
    assert_eq!(header("__connect.errors.stage").as_deref(), Some(b"TASK_PUT".as_slice()));
}

#[tokio::test]
async fn a_running_sink_takes_over_partitions_added_to_its_topic() {
    let fixture = fixture().await;
    fill(&*fixture.embedded, BATCH).await;
    let (running, cancel) = start_sink(&fixture, None);
    wait_for_commit(&fixture, &running, 0, 10).await;
    fixture.broker.create_partitions(TOPIC, 2).expect("grow the topic");
    fill_partition(&*fixture.embedded, 1, 5).await;
    wait_for_commit(&fixture, &running, 1, 5).await;
    cancel.cancel();
    running.await.expect("task joins").expect("the sink stops cleanly");
    let committed = fixture.embedded.group_offsets("connect-sink").await.expect("group offsets");
    let committed: Vec<(u32, i64)> = committed.iter().map(|offset| (offset.partition, offset.offset)).collect();
    assert_eq!(committed, [(0, 10), (1, 5)]);
}

/// A million source commits (one record per poll, one offset record per commit) keep the
/// offsets topic bounded: the broker's cleaner compacts it to the latest position, so a restart
/// replays a bounded number of records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_commits_keep_the_offsets_topic_bounded() {
    const COMMITS: u64 = 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = weir_broker::LogConfig { flush: weir_broker::FlushPolicy::Never, ..Default::default() };
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path(), config.clone()).await.expect("log"));
    log.ensure_topic(TOPIC, TopicConfig::default()).await.expect("topic");
    let offsets = Arc::new(OffsetStore::open(log.clone()).await.expect("offsets"));
    let (retry, errors, transforms) = settings();
    let journal = Journal::default();
    let metrics = Arc::new(TaskMetrics::default());
    let task = SourceTask {
        connector: Arc::from("source"),
        task_id: 0,
        handle: SourceHandle::native(Box::new(Numbers { next: 0, total: COMMITS, per_poll: 1, journal })),
        log: log.clone(),
        offsets: offsets.clone(),
        generation: Generation(1),
        metrics: metrics.clone(),
        on_new_topic: Arc::new(|_| {}),
        settings: SourceSettings { batch_size: 1, default_partitions: 1, retry, errors, transforms },
    };
    let cancel = CancellationToken::new();
    let running = tokio::spawn(task.run(cancel.clone()));
    let started = std::time::Instant::now();
    while metrics.batches.load(std::sync::atomic::Ordering::Relaxed) < COMMITS {
        assert!(started.elapsed() < Duration::from_secs(600), "the source stalled at {:?}", metrics.batches);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    running.await.expect("joins").expect("the source stops cleanly");
    assert_eq!(stored_position(&offsets).as_deref(), Some("{\"n\":1000000}"));
    drop(offsets);
    drop(log);
    // Reopen as a restart does, and replay the offsets topic as the store does.
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path(), config).await.expect("reopen"));
    let offsets_dir = dir.path().join("topics").join(format!("{}-0", crate::state_store::OFFSETS_TOPIC));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (bytes, replayed) = loop {
        let bytes: u64 = std::fs::read_dir(&offsets_dir)
            .expect("the offsets partition")
            .map(|entry| entry.expect("entry").metadata().expect("metadata").len())
            .sum();
        let request =
            crate::log::FetchRequest { topic: crate::state_store::OFFSETS_TOPIC.into(), partition: 0, from: 0 };
        let mut replayed = 0usize;
        let mut next = request;
        loop {
            let fetched = log.fetch(vec![next.clone()], 1 << 20, usize::MAX).await.expect("replay");
            let Some(part) = fetched.into_iter().next() else { break };
            replayed += part.records.len();
            next.from = part.records.last().expect("non-empty").offset + 1;
        }
        if bytes < 8 << 20 && replayed < 50_000 {
            break (bytes, replayed);
        }
        assert!(std::time::Instant::now() < deadline, "not compacted: {bytes} bytes, {replayed} records to replay");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reopened = OffsetStore::open(log.clone()).await.expect("replay");
    assert_eq!(stored_position(&reopened).as_deref(), Some("{\"n\":1000000}"), "the latest position survives");
    eprintln!("a million commits: offsets topic {bytes} bytes on disk, {replayed} records to replay");
}
