//! Failure handling: retries with backoff, error tolerance and dead-letter topics on the sink
//! and the source side.

use std::time::Duration;

use weir_runtime::Herder as _;
use weir_runtime::Worker;
use weir_runtime::herder::TaskSnapshot;
use weir_runtime::manifest::{ConnectorDefinition, Limits, Tolerance};
use weir_runtime::task::State;

use crate::containment::{definition, worker_with_faulty};
use crate::support::{end_offset, read_partition};

fn task(worker: &Worker, name: &str) -> TaskSnapshot {
    worker
        .herder()
        .statuses()
        .into_iter()
        .find(|connector| connector.name == name)
        .and_then(|connector| connector.tasks.into_iter().next())
        .unwrap_or_else(|| panic!("connector {name} has a task"))
}

async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn datagen(total: u64) -> ConnectorDefinition {
    definition(
        "gen",
        "datagen",
        serde_json::json!({ "topic": "orders", "iterations": total, "max.interval": 0 }),
        Limits::default(),
    )
}

/// Where datagen's record `id` lands: the topics here have 2 partitions, keyed by the id.
fn place_of(id: u64) -> (u32, u64) {
    let partition = weir_broker::partition_for_key(id.to_string().as_bytes(), 2);
    let offset =
        (0..id).filter(|other| weir_broker::partition_for_key(other.to_string().as_bytes(), 2) == partition).count();
    (partition, offset as u64)
}

fn header<'a>(headers: &'a [(String, Option<weir_broker::Bytes>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.as_deref())
        .and_then(|value| std::str::from_utf8(value).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_put_failures_are_retried_until_the_batch_goes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let sink = definition(
        "sink",
        "faulty-sink",
        serde_json::json!({ "topics": "orders", "mode": "fail-retriable-n", "n": 3 }),
        Limits::default(),
    );
    worker.herder().create(sink).await.expect("create sink");
    worker.herder().create(datagen(2_000)).await.expect("create source");
    wait_for("2000 records through the sink", async || task(&worker, "sink").records >= 2_000).await;
    let sink = task(&worker, "sink");
    assert_eq!(sink.status.state, State::Running, "{sink:?}");
    assert_eq!(sink.retries, 3, "one retry per failed put: {sink:?}");
    assert_eq!(sink.records, 2_000, "no record lost or repeated: {sink:?}");
    worker.shutdown().await;
}

fn poison_sink(tolerance: Tolerance) -> ConnectorDefinition {
    ConnectorDefinition {
        tolerance,
        dead_letter_topic: (tolerance == Tolerance::All).then(|| "dlq".to_owned()),
        dead_letter_context_headers: true,
        log_errors: true,
        ..definition(
            "sink",
            "faulty-sink",
            serde_json::json!({ "topics": "orders", "mode": "poison", "poison": "\"id\":7," }),
            Limits::default(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_fails_the_task_naming_it_when_nothing_is_tolerated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    worker.herder().create(poison_sink(Tolerance::None)).await.expect("create sink");
    worker.herder().create(datagen(1_000)).await.expect("create source");
    wait_for("the sink task to fail", async || task(&worker, "sink").status.state == State::Failed).await;
    let trace = task(&worker, "sink").status.trace.expect("trace");
    assert!(trace.contains("stage TASK_PUT"), "{trace}");
    let (partition, offset) = place_of(7);
    assert!(
        trace.contains(&format!("topic orders partition {partition} offset {offset}")),
        "the trace names the record: {trace}"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_goes_to_the_dead_letter_topic_and_the_rest_is_delivered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    worker.herder().create(poison_sink(Tolerance::All)).await.expect("create sink");
    worker.herder().create(datagen(1_000)).await.expect("create source");
    wait_for("1000 records through the sink", async || task(&worker, "sink").records >= 1_000).await;
    let sink = task(&worker, "sink");
    assert_eq!(sink.status.state, State::Running, "{sink:?}");
    assert_eq!(sink.errors, 1, "{sink:?}");
    let dead = read_partition(&**worker.log(), "dlq", 0).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let record = &dead[0];
    let value = String::from_utf8_lossy(record.value.as_deref().expect("value"));
    assert!(value.starts_with("{\"id\":7,"), "{value}");
    assert_eq!(header(&record.headers, "__connect.errors.topic"), Some("orders"));
    let (partition, offset) = place_of(7);
    assert_eq!(header(&record.headers, "__connect.errors.partition"), Some(partition.to_string().as_str()));
    assert_eq!(header(&record.headers, "__connect.errors.offset"), Some(offset.to_string().as_str()));
    assert_eq!(header(&record.headers, "__connect.errors.connector.name"), Some("sink"));
    assert_eq!(header(&record.headers, "__connect.errors.task.id"), Some("0"));
    assert_eq!(header(&record.headers, "__connect.errors.stage"), Some("TASK_PUT"));
    assert!(header(&record.headers, "__connect.errors.exception.message").is_some_and(|message| !message.is_empty()));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_records_that_cannot_be_written_go_to_the_source_dead_letter_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let source = ConnectorDefinition {
        tolerance: Tolerance::All,
        dead_letter_topic: Some("source-dlq".into()),
        dead_letter_context_headers: true,
        ..definition(
            "misrouting",
            "faulty",
            serde_json::json!({ "topic": "numbers", "mode": "misroute" }),
            Limits::default(),
        )
    };
    worker.herder().create(source).await.expect("create source");
    wait_for("records in the source dead-letter topic", async || {
        end_offset(&**worker.log(), "source-dlq", 0).await >= 5
    })
    .await;
    let source = task(&worker, "misrouting");
    assert_eq!(source.status.state, State::Running, "{source:?}");
    let dead = read_partition(&**worker.log(), "source-dlq", 0).await;
    for record in &dead {
        let value = String::from_utf8_lossy(record.value.as_deref().expect("value")).into_owned();
        assert!(value.ends_with("3}"), "only misrouted records are dead letters: {value}");
        assert_eq!(header(&record.headers, "__connect.errors.stage"), Some("KAFKA_PRODUCE"));
        assert_eq!(header(&record.headers, "__connect.errors.partition"), Some("1000000"));
        assert_eq!(header(&record.headers, "__weir.errors.source.position"), Some(value.as_str()));
    }
    let written = read_partition(&**worker.log(), "numbers", 0).await;
    assert!(!written.is_empty());
    assert!(written.iter().all(|record| !record.value.as_deref().unwrap_or_default().ends_with(b"3}")));
    worker.shutdown().await;
}

async fn dead_letters(worker: &Worker, topic: &str) -> Vec<weir_broker::StoredRecord> {
    read_partition(&**worker.log(), topic, 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_records_that_fail_a_transform_go_to_the_source_dead_letter_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let manifest = "name: poisoned\nconnector.class: faulty\ntopic.creation.default.partitions: 1\nconfig:\n  \
                    topic: numbers\n  mode: poison-values\ntransforms:\n  - name: tag\n    \
                    type: org.apache.kafka.connect.transforms.InsertField$Value\n    static.field: origin\n    \
                    static.value: faulty\n  - name: route\n    type: RegexRouter\n    regex: num(.*)\n    \
                    replacement: routed-num$1\nerrors.tolerance: all\nerrors.deadletterqueue.topic.name: source-dlq\n\
                    errors.deadletterqueue.context.headers.enable: true\n";
    let file = weir_runtime::manifest::ManifestFile::parse(std::path::Path::new("t.yaml"), manifest.into())
        .expect("manifest parses");
    worker.herder().create(file.definitions[0].clone()).await.expect("create source");
    wait_for("100 records written", async || end_offset(&**worker.log(), "routed-numbers", 0).await >= 100).await;
    let written = read_partition(&**worker.log(), "routed-numbers", 0).await;
    for record in &written {
        let value: serde_json::Value = serde_json::from_slice(record.value.as_deref().expect("value")).expect("json");
        assert_eq!(value["origin"], "faulty", "the transform ran: {value}");
        assert_ne!(value["n"].as_u64().expect("n") % 10, 7, "no poisoned record is written: {value}");
    }
    let dead = dead_letters(&worker, "source-dlq").await;
    assert!(!dead.is_empty());
    for record in &dead {
        let value = String::from_utf8_lossy(record.value.as_deref().expect("value")).into_owned();
        assert!(value.starts_with("not json ") && value.ends_with('7'), "only poisoned records: {value}");
        assert_eq!(header(&record.headers, "__connect.errors.stage"), Some("TRANSFORMATION"));
        assert_eq!(header(&record.headers, "__connect.errors.topic"), Some("numbers"));
        let message = header(&record.headers, "__connect.errors.exception.message").expect("message");
        assert!(message.contains("transform `tag`") && message.contains("not JSON"), "{message}");
    }
    assert_eq!(task(&worker, "poisoned").status.state, State::Running);
    let active = worker.herder().active_topics("poisoned").expect("topics");
    assert!(active.contains("routed-numbers"), "the topic the source wrote to is active: {active:?}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_records_that_fail_a_transform_go_to_the_dead_letter_topic_and_the_rest_is_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = worker_with_faulty(dir.path()).await;
    let source = ConnectorDefinition {
        default_partitions: Some(1),
        ..definition(
            "poisoned",
            "faulty",
            serde_json::json!({ "topic": "numbers", "mode": "poison-values" }),
            Limits::default(),
        )
    };
    let sink = ConnectorDefinition {
        tolerance: Tolerance::All,
        dead_letter_topic: Some("sink-dlq".into()),
        dead_letter_context_headers: true,
        transforms: vec![weir_runtime::transform::TransformSpec {
            name: "unwrap".into(),
            kind: "ExtractField$Value".into(),
            predicate: None,
            negate: false,
            config: serde_json::json!({ "field": "n" }).as_object().cloned().unwrap_or_default(),
        }],
        ..definition("sink", "faulty-sink", serde_json::json!({ "topics": "numbers" }), Limits::default())
    };
    worker.herder().create(sink).await.expect("create sink");
    worker.herder().create(source).await.expect("create source");
    wait_for("90 records put", async || task(&worker, "sink").records >= 90).await;
    let dead = dead_letters(&worker, "sink-dlq").await;
    assert!(!dead.is_empty());
    for record in &dead {
        let value = String::from_utf8_lossy(record.value.as_deref().expect("value")).into_owned();
        assert!(value.starts_with("not json "), "{value}");
        let n: i64 = value["not json ".len()..].parse().expect("number");
        assert_eq!(header(&record.headers, "__connect.errors.stage"), Some("TRANSFORMATION"));
        assert_eq!(
            header(&record.headers, "__connect.errors.offset"),
            Some(n.to_string().as_str()),
            "one partition: offset = n"
        );
    }
    let sink = task(&worker, "sink");
    assert_eq!(sink.status.state, State::Running, "{sink:?}");
    assert!(sink.errors >= dead.len() as u64, "{sink:?}");
    worker.shutdown().await;
}
