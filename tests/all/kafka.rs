//! The log speaks Kafka, end to end: `weir run --kafka-listen` serves the same log its
//! connectors use to real Kafka clients (confluent-kafka, kcat) in other processes, and
//! `weir broker` serves a log alone, keeping what was produced across a clean stop and a kill.
//! The client scripts are in `tests/kafka/python/`; `tests/run.sh` installs the clients.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{WEIR, WeirProcess, wait_until};

const STARTUP: Duration = Duration::from_secs(60);
const CLIENT: Duration = Duration::from_secs(120);

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

/// Fails with how to install `program` unless `program check...` succeeds.
pub(crate) fn require(program: &str, check: &[&str], install: &str) {
    let found = Command::new(program).args(check).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        found.is_ok_and(|status| status.success()),
        "{program} is needed for this test: run tests/run.sh, or `{install}`"
    );
}

pub(crate) fn require_confluent_kafka() {
    require("python3", &["-c", "import confluent_kafka"], "pip install confluent-kafka");
}

/// Runs `command` to completion (killed after `timeout`), feeding it `stdin`; panics with its
/// output unless it succeeded.
pub(crate) fn run_client(mut command: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    use std::io::Write;
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let description = format!("{command:?}");
    let mut child = command.spawn().unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input).expect("write the client's stdin");
    }
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("wait for the client").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            let output = child.wait_with_output().expect("client output");
            panic!(
                "{description} did not finish in {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        #[allow(clippy::disallowed_methods, reason = "a synchronous test waiting for a client process")]
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("client output");
    assert!(
        output.status.success(),
        "{description} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `tests/kafka/python/weir_run_clients.py COMMAND BOOTSTRAP ARGS...`; its stdout.
pub(crate) fn python_client(command: &str, bootstrap: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/kafka/python/weir_run_clients.py");
    let mut python = Command::new("python3");
    python.arg(script).arg(command).arg(bootstrap).args(args);
    String::from_utf8(run_client(python, None, CLIENT).stdout).expect("utf-8 client output")
}

/// Waits until `stdout` (a process's output file) says the Kafka listener is up.
pub(crate) fn wait_for_line(process_output: impl Fn() -> String, line: &str, what: &str) {
    wait_until(what, STARTUP, || {
        let text = process_output();
        (text.contains(line), text)
    });
}

/// The lines of `file` that are complete, in order.
fn lines(file: &Path) -> Vec<String> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete.lines().map(str::to_owned).collect()
}

/// datagen → `orders` (`count` records), and a file sink of topic `inbound`.
fn manifest(dir: &Path, count: u64) -> PathBuf {
    let path = dir.join("kafka.yaml");
    fs::write(
        &path,
        format!(
            "name: orders-gen
connector.class: datagen
tasks.max: 1
config:
  topic: orders
  iterations: {count}
  max.interval: 0
---
name: inbound-file
connector.class: file-sink
config:
  topics: inbound
  file: ./out/inbound.txt
grants:
  filesystem:
    - path: ./out
      access: read-write
"
        ),
    )
    .expect("write manifest");
    fs::create_dir_all(dir.join("out")).expect("create out dir");
    path
}

#[test]
fn weir_run_serves_the_connectors_log_to_kafka_clients_both_ways() {
    require_confluent_kafka();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let weir = WeirProcess::start(dir.path(), &[manifest(dir.path(), 50)], &["--kafka-listen", &bootstrap]);
    wait_for_line(|| weir.stdout_text(), &format!("Kafka on {bootstrap}"), "weir run's Kafka listener");

    // What the datagen connector wrote, read by a Kafka consumer in another process.
    let read = python_client("read", &bootstrap, &["orders", "50"]);
    let ids: BTreeSet<u64> = read
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("not a datagen record ({error}): {line}"));
            value["id"].as_u64().unwrap_or_else(|| panic!("datagen record without an id: {line}"))
        })
        .collect();
    assert_eq!(ids, (0..50).collect::<BTreeSet<u64>>(), "the consumer saw every datagen record once");

    // What a Kafka producer writes reaches the file sink, in order.
    assert_eq!(python_client("produce", &bootstrap, &["inbound", "from-kafka", "20"]).trim(), "ok");
    let file = dir.path().join("out/inbound.txt");
    let expected: Vec<String> = (0..20).map(|index| format!("from-kafka-{index}")).collect();
    let written = wait_until("the file sink to write what the producer sent", STARTUP, || {
        let written = lines(&file);
        (written.len() >= expected.len(), written)
    });
    assert_eq!(written, expected);

    let (status, stdout, stderr) = weir.terminate(STARTUP);
    assert!(status.success(), "weir run exits cleanly: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("weir: stopped"), "stdout:\n{stdout}");
}

/// A `weir broker` process whose output goes to files in its directory.
struct BrokerProcess {
    child: Child,
    stdout: PathBuf,
    bootstrap: String,
}

impl BrokerProcess {
    fn start(dir: &Path, run: usize) -> Self {
        let bootstrap = format!("127.0.0.1:{}", free_port());
        let stdout = dir.join(format!("broker-{run}.stdout"));
        let child = Command::new(WEIR)
            .current_dir(dir)
            .args(["broker", "--listen", &bootstrap, "--data-dir", "broker-data"])
            .env("WEIR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("create stdout file"))
            .stderr(fs::File::create(dir.join(format!("broker-{run}.stderr"))).expect("create stderr file"))
            .spawn()
            .expect("spawn weir broker");
        let broker = Self { child, stdout, bootstrap };
        wait_for_line(|| broker.stdout_text(), &format!("serving Kafka on {}", broker.bootstrap), "weir broker");
        broker
    }

    fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) on our own child's pid has no memory-safety implications.
        #[allow(unsafe_code)]
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal}) failed");
    }

    /// Sends `signal` and waits for the process to exit.
    fn stop(mut self, signal: i32) -> std::process::ExitStatus {
        self.signal(signal);
        wait_until("weir broker to exit", STARTUP, || match self.child.try_wait() {
            Ok(Some(status)) => (true, Some(status)),
            _ => (false, None),
        })
        .expect("exit status")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kcat_produce(bootstrap: &str, topic: &str, values: &[String]) {
    let mut input = values.join("\n");
    input.push('\n');
    let mut kcat = Command::new("kcat");
    kcat.args(["-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"]);
    run_client(kcat, Some(input.as_bytes()), CLIENT);
}

fn kcat_consume_all(bootstrap: &str, topic: &str) -> Vec<String> {
    let mut kcat = Command::new("kcat");
    kcat.args(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"]);
    let output = run_client(kcat, None, CLIENT);
    String::from_utf8(output.stdout).expect("utf-8 values").lines().map(str::to_owned).collect()
}

#[test]
fn weir_broker_keeps_what_was_produced_across_a_clean_stop_and_a_kill() {
    require("kcat", &["-V"], "apt-get install kcat");
    let dir = tempfile::tempdir().expect("tempdir");
    let first: Vec<String> = (0..100).map(|index| format!("before-stop-{index}")).collect();
    let second: Vec<String> = (0..100).map(|index| format!("before-kill-{index}")).collect();

    let broker = BrokerProcess::start(dir.path(), 0);
    kcat_produce(&broker.bootstrap, "kept", &first);
    let stdout = dir.path().join("broker-0.stdout");
    let status = broker.stop(libc::SIGTERM);
    let said = fs::read_to_string(&stdout).unwrap_or_default();
    assert!(status.success(), "weir broker exits cleanly on SIGTERM: {status}\n{said}");
    assert!(said.contains("weir: stopped"), "stdout:\n{said}");

    let broker = BrokerProcess::start(dir.path(), 1);
    kcat_produce(&broker.bootstrap, "kept", &second);
    broker.stop(libc::SIGKILL);

    let broker = BrokerProcess::start(dir.path(), 2);
    let everything = kcat_consume_all(&broker.bootstrap, "kept");
    let expected: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(everything, expected, "every acknowledged record, once, in order");
    let status = broker.stop(libc::SIGTERM);
    assert!(status.success(), "{status}");
}

/// The groups tools see of a sink connector, through confluent-kafka's AdminClient.
fn admin_view(bootstrap: &str, group: &str) -> serde_json::Value {
    let text = python_client("groups", bootstrap, &[group]);
    serde_json::from_str(text.trim()).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

#[test]
fn sink_tasks_are_consumer_groups_to_kafka_admin_tools() {
    require_confluent_kafka();
    require("python3", &["-c", "import kafka"], "pip install kafka-python");
    let dir = tempfile::tempdir().expect("tempdir");
    let bootstrap = format!("127.0.0.1:{}", free_port());
    let rest = format!("127.0.0.1:{}", free_port());
    let manifest = crate::support::pipeline_manifest(dir.path(), 30, 2, 0);
    fs::create_dir_all(dir.path().join("out")).expect("create out dir");
    let weir = WeirProcess::start(dir.path(), &[manifest], &["--kafka-listen", &bootstrap, "--rest-listen", &rest]);
    wait_for_line(|| weir.stdout_text(), &format!("Kafka on {bootstrap}"), "weir run's Kafka listener");

    // Running: Stable, one member (the sink's one task) reading both partitions, and the
    // offsets the task committed after writing all 30 records.
    let running = wait_until("the sink to commit every record", STARTUP, || {
        let view = admin_view(&bootstrap, "connect-orders-file");
        let committed: i64 =
            view["offsets"].as_array().into_iter().flatten().map(|entry| entry[2].as_i64().unwrap_or(0)).sum();
        (committed == 30, view)
    });
    assert_eq!(running["listed"], true, "{running}");
    assert_eq!(running["listed_state"], "STABLE", "{running}");
    assert_eq!(running["state"], "STABLE", "{running}");
    assert_eq!(running["protocol_type"], "consumer", "{running}");
    let members = running["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{running}");
    assert_eq!(members[0]["client_id"], "connector-consumer-orders-file-0");
    assert_eq!(members[0]["assignment"], serde_json::json!(["orders:0", "orders:1"]));

    // kafka-python sees the same, with the protocol type on the wire.
    let text = python_client("kafka-python-groups", &bootstrap, &["connect-orders-file"]);
    let view: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|error| panic!("{error}: {text}"));
    assert_eq!(view["listed_protocol_type"], "consumer", "{view}");
    assert_eq!(view["state"], "Stable", "{view}");
    assert_eq!(view["protocol_type"], "consumer", "{view}");
    assert_eq!(view["members"], serde_json::json!(["connector-consumer-orders-file-0"]));
    assert_eq!(view["offsets"], running["offsets"], "{view}");

    // A Kafka consumer cannot join the sink's group.
    let joined = python_client("join", &bootstrap, &["connect-orders-file", "orders"]);
    assert_eq!(joined.trim(), "GROUP_AUTHORIZATION_FAILED");

    // Stopped: Empty, no members, the offsets kept.
    let mut stop = Command::new(WEIR);
    stop.args(["connectors", "--url", &format!("http://{rest}"), "stop", "orders-file"]);
    run_client(stop, None, CLIENT);
    let stopped = wait_until("the group to be Empty", STARTUP, || {
        let view = admin_view(&bootstrap, "connect-orders-file");
        (view["state"] == "EMPTY", view)
    });
    assert_eq!(stopped["members"], serde_json::json!([]), "{stopped}");
    assert_eq!(stopped["offsets"], running["offsets"], "{stopped}");

    let (status, stdout, stderr) = weir.terminate(STARTUP);
    assert!(status.success(), "weir run exits cleanly: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
}
