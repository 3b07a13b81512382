//! One contract, three logs: the same scenario runs against the embedded log, the Kafka backend
//! over weir's own Kafka listener (real TCP), and the Kafka backend over Tansu 0.6, an
//! independent Kafka-compatible broker (installed by `tests/kafka/tansu/install.sh`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use weir_broker::wire::Compression;
use weir_broker::{Bytes, CleanupPolicy, Log, Record, TopicConfig};

use super::{KafkaClientConfig, KafkaLog};
use crate::log::{EmbeddedLog, EventLog, FetchRequest, Generation, GroupOffset, LogError, PartitionBatch};

fn record(key: &str, value: &str, timestamp: i64) -> Record {
    Record {
        key: Some(Bytes::from(key.to_owned())),
        value: Some(Bytes::from(value.to_owned())),
        headers: vec![("h".to_owned(), Some(Bytes::from_static(b"1"))), ("h".to_owned(), None)],
        timestamp,
    }
}

fn batch(topic: &str, partition: u32, records: Vec<Record>) -> PartitionBatch {
    PartitionBatch { topic: topic.to_owned(), partition, records }
}

fn request(topic: &str, partition: u32, from: i64) -> FetchRequest {
    FetchRequest { topic: topic.to_owned(), partition, from }
}

/// Reads a partition from `from` to its end.
async fn read_all(log: &dyn EventLog, topic: &str, partition: u32, mut from: i64) -> Vec<weir_broker::StoredRecord> {
    let mut records = Vec::new();
    loop {
        let fetched = log.fetch(vec![request(topic, partition, from)], 1 << 20, 10_000).await.expect("fetch");
        let Some(part) = fetched.into_iter().next() else { return records };
        from = part.records.last().expect("non-empty").offset + 1;
        records.extend(part.records);
    }
}

/// What every log must do the same way.
async fn contract(log: Arc<dyn EventLog>) {
    let generation = Generation(1);
    // Topics: created once, the first count stands, configs kept.
    assert_eq!(
        log.ensure_topic("orders", TopicConfig { partitions: 3, ..TopicConfig::default() }).await.expect("create"),
        3
    );
    assert_eq!(
        log.ensure_topic("orders", TopicConfig { partitions: 5, ..TopicConfig::default() }).await.expect("again"),
        3
    );
    let compact = TopicConfig { partitions: 1, cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() };
    log.ensure_topic("state", compact).await.expect("compact topic");
    let topics = log.topics().await.expect("topics");
    assert!(topics.contains(&"orders".to_owned()) && topics.contains(&"state".to_owned()), "{topics:?}");
    assert_eq!(
        log.topic_config("state").await.expect("config").expect("exists").cleanup_policy,
        CleanupPolicy::Compact
    );
    assert_eq!(log.topic_config("orders").await.expect("config").expect("exists").partitions, 3);
    assert_eq!(log.topic_config("missing").await.expect("config"), None);

    // Appends: offsets per partition, in input order, continuing.
    let first = log
        .append(
            vec![
                batch("orders", 0, (0..3).map(|i| record(&format!("k{i}"), &format!("v{i}"), 1_000 + i)).collect()),
                batch("orders", 2, vec![record("x", "y", 5)]),
            ]
            .into(),
            generation,
        )
        .await
        .expect("append");
    assert_eq!((first[0].base_offset, first[0].last_offset, first[1].base_offset), (0, 2, 0));
    let second =
        log.append(vec![batch("orders", 0, vec![record("k3", "v3", 2_000)])].into(), generation).await.expect("again");
    assert_eq!(second[0].base_offset, 3);

    // Fetch: whole records, from a mid offset, several partitions at once, nothing past the end.
    let all = read_all(log.as_ref(), "orders", 0, 0).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[1].offset, 1);
    assert_eq!(all[1].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(all[1].value.as_deref(), Some(&b"v1"[..]));
    assert_eq!(all[1].timestamp, 1_001);
    assert_eq!(all[1].headers, vec![("h".to_owned(), Some(Bytes::from_static(b"1"))), ("h".to_owned(), None)]);
    assert_eq!(read_all(log.as_ref(), "orders", 0, 2).await.first().map(|record| record.offset), Some(2));
    let both = log
        .fetch(vec![request("orders", 0, 3), request("orders", 1, 0), request("orders", 2, 0)], 1 << 20, 100)
        .await
        .expect("fetch");
    assert_eq!(both.iter().map(|part| (part.request, part.records.len())).collect::<Vec<_>>(), [(0, 1), (2, 1)]);
    assert!(log.fetch(vec![request("orders", 0, 4)], 1 << 20, 100).await.expect("at end").is_empty());
    let range = log.offset_range("orders", 0).await.expect("range");
    assert_eq!((range.start, range.end), (0, 4));

    // Waiting: times out with nothing new, wakes when a record lands.
    assert!(!log.wait_for_data(&[request("orders", 1, 0)], Duration::from_millis(300)).await.expect("wait"));
    assert!(log.wait_for_data(&[request("orders", 0, 0)], Duration::from_secs(5)).await.expect("data there"));
    let writer = log.clone();
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer.append(vec![batch("orders", 1, vec![record("late", "1", 9)])].into(), Generation(1)).await
    });
    let started = std::time::Instant::now();
    assert!(log.wait_for_data(&[request("orders", 1, 0)], Duration::from_secs(10)).await.expect("wait"));
    assert!(started.elapsed() < Duration::from_secs(8), "woke only at the timeout");
    append.await.expect("join").expect("late append");

    // A batch bigger than one request (batch.size is small in the Kafka configs below).
    let big: Vec<Record> = (0..500).map(|i| record(&format!("b{i}"), &"x".repeat(200), i)).collect();
    let written = log.append(vec![batch("orders", 2, big)].into(), generation).await.expect("big append");
    assert_eq!((written[0].base_offset, written[0].last_offset), (1, 500));
    let read = read_all(log.as_ref(), "orders", 2, 1).await;
    assert_eq!(read.len(), 500);
    assert!(
        read.iter()
            .enumerate()
            .all(|(i, record)| record.offset == i as i64 + 1
                && record.key.as_deref() == Some(format!("b{i}").as_bytes()))
    );

    // Records with their offset record.
    log.append_with_offsets(
        vec![batch("orders", 1, vec![record("src", "1", 10)])].into(),
        batch("state", 0, vec![record("offset", "{\"pos\":1}", 10)]),
        generation,
    )
    .await
    .expect("append with offsets");
    assert_eq!(read_all(log.as_ref(), "state", 0, 0).await.len(), 1);
    assert_eq!(read_all(log.as_ref(), "orders", 1, 0).await.len(), 2);

    // Group offsets.
    let offsets = vec![
        GroupOffset { topic: "orders".to_owned(), partition: 0, offset: 4 },
        GroupOffset { topic: "orders".to_owned(), partition: 2, offset: 1 },
    ];
    log.commit_offsets("connect-files", offsets.clone(), generation).await.expect("commit");
    assert_eq!(log.group_offsets("connect-files").await.expect("offsets"), offsets);
    log.commit_offsets(
        "connect-files",
        vec![GroupOffset { topic: "orders".to_owned(), partition: 0, offset: 2 }],
        generation,
    )
    .await
    .expect("commit again");
    assert_eq!(log.group_offsets("connect-files").await.expect("offsets")[0].offset, 2);
    assert!(log.groups().await.expect("groups").contains(&"connect-files".to_owned()));
    log.delete_group_offsets("connect-files").await.expect("delete");
    assert!(log.group_offsets("connect-files").await.expect("offsets").is_empty());
    log.delete_group_offsets("never-was").await.expect("deleting an unknown group");

    // A partition that does not exist is an error that retrying will not mend.
    let error = log
        .append(vec![batch("orders", 7, vec![record("k", "v", 0)])].into(), generation)
        .await
        .expect_err("no such partition");
    assert!(!error.is_retriable(), "{error}");
    log.flush().await.expect("flush");
}

fn kafka_config(bootstrap: &str, compression: Compression) -> KafkaClientConfig {
    KafkaClientConfig {
        compression,
        // Small, so the big batch above takes several requests.
        batch_size: 16 << 10,
        delivery_timeout: Duration::from_secs(20),
        ..KafkaClientConfig::with_bootstrap_servers(bootstrap).expect("servers")
    }
}

#[tokio::test]
async fn the_embedded_log_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("dir");
    contract(Arc::new(EmbeddedLog::open(dir.path(), Default::default()).await.expect("log"))).await;
}

/// weir's own Kafka listener on a fresh log, serving until the test ends.
async fn weir_listener(dir: &std::path::Path) -> String {
    let log = Log::open(dir, Default::default()).expect("log");
    let config = weir_broker::kafka::KafkaConfig { auto_create_topics: false, ..Default::default() };
    let server = weir_broker::kafka::KafkaServer::bind("127.0.0.1:0", log, config).await.expect("bind");
    let address = server.local_addr().expect("address").to_string();
    tokio::spawn(server.serve(std::future::pending()));
    address
}

#[tokio::test]
async fn the_kafka_backend_keeps_the_contract_on_weirs_listener() {
    let dir = tempfile::tempdir().expect("dir");
    let address = weir_listener(dir.path()).await;
    let log = KafkaLog::connect(kafka_config(&address, Compression::Lz4)).await.expect("connect");
    contract(Arc::new(log)).await;
}

/// A Tansu broker on a free loopback port, killed when dropped.
pub(crate) struct Tansu {
    child: Child,
    pub(crate) address: String,
}

impl Tansu {
    pub(crate) fn start(storage: &str) -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let installed = Command::new(root.join("tests/kafka/tansu/install.sh")).output().expect("run install.sh");
        assert!(installed.status.success(), "installing Tansu: {}", String::from_utf8_lossy(&installed.stderr));
        let binary = String::from_utf8(installed.stdout).expect("path").trim().to_owned();
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(std::time::Instant::now() < deadline, "Tansu did not listen on {address}");
            #[allow(clippy::disallowed_methods, reason = "a test's set-up, before its runtime does anything")]
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, address }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_kafka_backend_keeps_the_contract_on_tansu() {
    let tansu = Tansu::start("memory://tansu/");
    let log = KafkaLog::connect(kafka_config(&tansu.address, Compression::Zstd)).await.expect("connect");
    contract(Arc::new(log)).await;
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_clear_retriable_error() {
    let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let error =
        KafkaLog::connect(KafkaClientConfig::with_bootstrap_servers(&format!("127.0.0.1:{port}")).expect("servers"))
            .await
            .expect_err("nothing listens");
    assert!(matches!(error, LogError::Kafka(_)) && error.is_retriable(), "{error}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
}
