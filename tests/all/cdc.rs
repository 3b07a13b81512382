//! The `postgres-cdc` connector against a real Postgres this test starts: snapshot, then
//! streamed inserts, updates, deletes and truncates as Debezium envelopes, in commit order;
//! resuming after a stop; recovering from a Postgres restart; refusing an ungranted server;
//! snapshot progress, retained WAL and lag in status and /metrics; a snapshot interrupted by
//! SIGKILL.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use weir_runtime::Herder as _;
use weir_runtime::manifest::{ConnectorDefinition, Limits, PostgresGrant};
use weir_runtime::task::State;
use weir_runtime::{Worker, WorkerConfig};

use crate::pg::Postgres;

/// (key, value) of every record of `topic` (one partition), values parsed as JSON.
async fn read_topic(worker: &Worker, topic: &str) -> Vec<(Value, Value)> {
    read_log(&**worker.log(), topic).await
}

pub(crate) async fn read_log(log: &dyn weir_runtime::log::EventLog, topic: &str) -> Vec<(Value, Value)> {
    let parse = |bytes: &Option<bytes::Bytes>| {
        bytes.as_ref().map_or(Value::Null, |bytes| serde_json::from_slice(bytes).expect("JSON record"))
    };
    let records = crate::support::read_partition(log, topic, 0).await;
    records.iter().map(|record| (parse(&record.key), parse(&record.value))).collect()
}

pub(crate) fn definition(postgres: &Postgres, granted: bool, extra: Value) -> ConnectorDefinition {
    let mut config = json!({
        "database.hostname": "127.0.0.1",
        "database.port": postgres.port,
        "database.user": "postgres",
        "database.dbname": "postgres",
        "topic.prefix": "pg",
        "slot.name": "weir_test",
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        config[key] = value;
    }
    // Not granted: the grant names another database of the same server, so the component
    // deploys (it may use `postgres`) but its connection is out of scope.
    let mut grants = weir_runtime::manifest::Grants::default();
    grants.postgres.push(PostgresGrant {
        host: "127.0.0.1".into(),
        port: postgres.port,
        database: if granted { "postgres" } else { "elsewhere" }.into(),
    });
    ConnectorDefinition {
        name: "cdc".into(),
        class: "postgres-cdc".into(),
        tasks_max: 1,
        default_partitions: Some(1),
        config: config.as_object().cloned().unwrap_or_default(),
        grants,
        limits: Limits::default(),
        ..ConnectorDefinition::default()
    }
}

async fn start_worker(dir: &Path, definition: ConnectorDefinition) -> Worker {
    // The worker's log (WEIR_LOG, default warnings) in the test output, for when a test fails.
    let filter = std::env::var("WEIR_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let worker = Worker::start(WorkerConfig::new(dir.join("data"))).await.expect("worker starts");
    worker.herder().create(definition).await.expect("create the connector");
    worker
}

/// Wait until `topic` holds at least `count` records; fail with the task's status otherwise.
async fn wait_for(worker: &Worker, topic: &str, count: usize) -> Vec<(Value, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let records = read_topic(worker, topic).await;
        if records.len() >= count {
            return records;
        }
        let snapshot = worker.herder().statuses();
        let failed = crate::support::failed_task(worker);
        assert!(failed.is_none(), "the CDC task failed: {failed:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {count} records in {topic}; have {}: {records:?}; status {snapshot:?}",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ops(records: &[(Value, Value)]) -> Vec<String> {
    records
        .iter()
        .map(
            |(_, value)| {
                if value.is_null() { "tombstone".to_owned() } else { value["op"].as_str().unwrap_or("?").to_owned() }
            },
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_snapshot_then_streams_changes_as_debezium_envelopes() {
    let postgres = Postgres::start();
    postgres.sql(
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), tags text[], doc jsonb, body text, \
         at timestamptz, flag bool, blob bytea, ratio float8); \
         CREATE TABLE nopk (a int, b text); ALTER TABLE nopk REPLICA IDENTITY FULL; \
         CREATE TABLE fulltoast (id int PRIMARY KEY, n int, body text); ALTER TABLE fulltoast REPLICA IDENTITY FULL; \
         INSERT INTO items (id, name, price) SELECT i, 'item ' || i, i * 1.5 FROM generate_series(1, 3) i;",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // Debezium's non-default modes: decimals as strings, weir's ISO times, truncates emitted.
    let modes =
        json!({ "decimal.handling.mode": "string", "time.precision.mode": "iso", "skipped.operations": "none" });
    let worker = start_worker(dir.path(), definition(&postgres, true, modes.clone())).await;

    let snapshot = wait_for(&worker, "pg.public.items", 3).await;
    assert_eq!(ops(&snapshot), ["r", "r", "r"]);
    let (key, value) = &snapshot[0];
    assert_eq!(key, &json!({ "id": 1 }));
    assert_eq!(value["after"]["name"], json!("item 1"));
    assert_eq!(value["after"]["price"], json!("1.50"));
    assert_eq!(value["source"]["connector"], json!("postgresql"));
    assert_eq!(value["source"]["table"], json!("items"));
    assert_eq!(snapshot[2].1["source"]["snapshot"], json!("last"));

    postgres.sql(
        "INSERT INTO items VALUES (4, 'four', 4.25, '{a,\"b c\"}', '{\"k\": [1, 2]}', \
           (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 800) i), '2024-01-02 03:04:05+00', true, '\\x0102', 0.5); \
         BEGIN; UPDATE items SET name = 'one' WHERE id = 1; DELETE FROM items WHERE id = 2; COMMIT; \
         UPDATE items SET price = 5 WHERE id = 4; \
         INSERT INTO nopk VALUES (1, 'x'); UPDATE nopk SET b = 'y'; DELETE FROM nopk; \
         INSERT INTO nopk VALUES (2, 'z'); TRUNCATE nopk; \
         INSERT INTO fulltoast VALUES (1, 0, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 800) i)); \
         UPDATE fulltoast SET n = 1;",
    );
    let items = wait_for(&worker, "pg.public.items", 8).await;
    assert_eq!(ops(&items), ["r", "r", "r", "c", "u", "d", "tombstone", "u"]);
    let insert = &items[3].1;
    assert_eq!(insert["after"]["tags"], json!(["a", "b c"]));
    // json and jsonb: a string holding the JSON text, as Debezium writes them.
    assert_eq!(insert["after"]["doc"], json!("{\"k\": [1, 2]}"));
    assert_eq!(insert["after"]["at"], json!("2024-01-02T03:04:05Z"));
    assert_eq!(insert["after"]["flag"], json!(true));
    assert_eq!(insert["after"]["blob"], json!("AQI="));
    assert_eq!(insert["after"]["ratio"], json!(0.5));
    assert_eq!(insert["after"]["body"].as_str().map(str::len), Some(800 * 32));
    assert!(insert["source"]["lsn"].as_u64().is_some_and(|lsn| lsn > 0));
    assert!(insert["source"]["txId"].as_u64().is_some());
    let update = &items[4].1;
    assert_eq!(update["after"]["name"], json!("one"));
    assert_eq!(items[4].0, json!({ "id": 1 }));
    let delete = &items[5];
    assert_eq!(delete.0, json!({ "id": 2 }));
    assert_eq!(delete.1["before"]["id"], json!(2));
    assert!(delete.1["after"].is_null());
    assert_eq!(items[6].0, json!({ "id": 2 }));
    // The update left the TOASTed body unchanged: pgoutput does not resend it, so the marker.
    assert_eq!(items[7].1["after"]["body"], json!("__debezium_unavailable_value"));
    assert_eq!(items[7].1["after"]["price"], json!("5.00"));

    let nopk = wait_for(&worker, "pg.public.nopk", 6).await;
    assert_eq!(ops(&nopk), ["c", "u", "d", "tombstone", "c", "t"]);
    assert!(nopk[0].0.is_null(), "no primary key, no key");
    assert_eq!(nopk[1].1["before"], json!({ "a": 1, "b": "x" }), "REPLICA IDENTITY FULL sends the old row");
    assert_eq!(nopk[1].1["after"], json!({ "a": 1, "b": "y" }));

    // REPLICA IDENTITY FULL: the unchanged TOASTed value comes from the old row.
    let full = wait_for(&worker, "pg.public.fulltoast", 2).await;
    assert_eq!(ops(&full), ["c", "u"]);
    assert_eq!(full[1].1["after"]["n"], json!(1));
    assert_eq!(full[1].1["after"]["body"].as_str().map(str::len), Some(800 * 32));
    assert_eq!(full[1].1["before"]["n"], json!(0));

    // The slot's confirmed position moves once the records are durable (commit → ack).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lag = postgres.sql(
            "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'weir_test'",
        );
        if lag.parse::<i64>().is_ok_and(|lag| lag < 65_536) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slot never confirmed the streamed changes (lag {lag})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A clean stop, changes while stopped, a restart: each change once, nothing lost.
    worker.shutdown().await;
    drop(worker);
    postgres.sql("INSERT INTO items (id, name) VALUES (5, 'five'); UPDATE items SET name = 'three' WHERE id = 3;");
    let worker = start_worker(dir.path(), definition(&postgres, true, modes)).await;
    let items = wait_for(&worker, "pg.public.items", 10).await;
    assert_eq!(ops(&items), ["r", "r", "r", "c", "u", "d", "tombstone", "u", "c", "u"]);
    assert_eq!(items[8].1["after"]["name"], json!("five"));

    // Postgres restarts under the connector: it reconnects and resumes by itself.
    postgres.stop_server();
    postgres.start_server();
    postgres.sql("INSERT INTO items (id, name) VALUES (6, 'six');");
    let items = wait_for(&worker, "pg.public.items", 11).await;
    assert_eq!(ops(&items)[10], "c");
    assert_eq!(items[10].1["after"]["name"], json!("six"));
    assert_eq!(items.len(), 11, "no duplicates after the reconnect: {:?}", ops(&items));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_refuses_a_server_the_manifest_does_not_grant() {
    let postgres = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path(), definition(&postgres, false, json!({}))).await;
    let trace = failure(&worker).await;
    assert!(trace.contains("not granted"), "{trace}");
    let slots = postgres.sql("SELECT count(*) FROM pg_replication_slots");
    assert_eq!(slots, "0", "nothing reached the server");
    worker.shutdown().await;
}

/// `(id, v)` of every row of `table`.
pub(crate) fn table_rows(postgres: &Postgres, table: &str) -> std::collections::BTreeMap<i64, i64> {
    postgres
        .sql(&format!("SELECT id, v FROM {table}"))
        .lines()
        .map(|line| {
            let (id, v) = line.split_once('|').expect("id|v");
            (id.parse().expect("id"), v.parse().expect("v"))
        })
        .collect()
}

/// The table as the topic replays it: the last `after` per key, deletes removing it.
pub(crate) fn replay(records: &[(Value, Value)]) -> std::collections::BTreeMap<i64, i64> {
    let mut table = std::collections::BTreeMap::new();
    for (key, value) in records {
        let Some(id) = key["id"].as_i64() else { continue };
        match value["op"].as_str() {
            Some("r" | "c" | "u") => {
                table.insert(id, value["after"]["v"].as_i64().expect("v is an integer"));
            }
            Some("d") => {
                table.remove(&id);
            }
            _ => {}
        }
    }
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_snapshot_seam_under_a_concurrent_writer_has_no_gap_and_no_duplicate() {
    let postgres = std::sync::Arc::new(Postgres::start());
    postgres.sql(
        "CREATE TABLE seam (id int PRIMARY KEY, v int NOT NULL); \
         INSERT INTO seam SELECT i, 0 FROM generate_series(1, 100000) i;",
    );
    // Small transactions (an update, an insert, now and then a delete) while the slot is
    // created and the snapshot read.
    let writer = {
        let postgres = postgres.clone();
        std::thread::spawn(move || {
            postgres.sql(
                "DO $$ BEGIN FOR i IN 1..3000 LOOP \
                   UPDATE seam SET v = v + 1 WHERE id = (i * 37) % 100000 + 1; \
                   INSERT INTO seam VALUES (100000 + i, i); \
                   IF i % 10 = 0 THEN DELETE FROM seam WHERE id = (i * 53) % 100000 + 1; END IF; \
                   COMMIT; PERFORM pg_sleep(0.001); \
                 END LOOP; END $$;",
            )
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let worker =
        start_worker(dir.path(), definition(&postgres, true, json!({ "table.include.list": "public\\.seam" }))).await;
    writer.join().expect("the writer finishes");
    let expected = table_rows(&postgres, "seam");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let records = loop {
        let records = read_topic(&worker, "pg.public.seam").await;
        if replay(&records) == expected {
            break records;
        }
        let failed = crate::support::failed_task(&worker);
        assert!(failed.is_none(), "the CDC task failed: {failed:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replayed topic never matched the table ({} records, {} rows replayed, {} expected)",
            records.len(),
            replay(&records).len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let snapshot_reads = records.iter().filter(|(_, value)| value["op"] == "r").count();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in records.iter().filter(|(_, value)| value["op"] == "r") {
        assert!(seen.insert(key.clone()), "snapshot read of {key} twice: {value}");
    }
    // Every streamed change comes after the snapshot's reads and exactly once: the streamed
    // events' (lsn, op, key) are unique.
    let mut changes = std::collections::HashSet::new();
    for (key, value) in records.iter().filter(|(_, value)| value["op"] != "r" && !value.is_null()) {
        assert!(changes.insert((value["source"]["lsn"].clone(), key.clone())), "duplicate change {value}");
    }
    assert!((90_000..=103_000).contains(&snapshot_reads), "{snapshot_reads} snapshot reads");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_heartbeats_advance_the_slot_while_captured_tables_are_idle() {
    let postgres = Postgres::start();
    postgres.sql("CREATE TABLE idle (id int PRIMARY KEY)");
    postgres.sql("CREATE DATABASE other");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path(), definition(&postgres, true, json!({ "heartbeat.interval.ms": 200 }))).await;
    wait_for(&worker, "__debezium-heartbeat.pg", 1).await;
    // WAL written by another database: nothing of it reaches this slot's publication.
    let before = postgres.sql("SELECT pg_current_wal_lsn()");
    postgres.sql_in("other", "CREATE TABLE busy (n int); INSERT INTO busy SELECT generate_series(1, 50000);");
    let written = postgres.sql("SELECT pg_current_wal_lsn()");
    assert_ne!(before, written);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let advanced = postgres.sql(&format!(
            "SELECT confirmed_flush_lsn >= '{written}' FROM pg_replication_slots WHERE slot_name = 'weir_test'"
        ));
        if advanced == "t" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the idle slot never confirmed past {written}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(read_topic(&worker, "pg.public.idle").await.is_empty());
    worker.shutdown().await;
}

/// The `after.id` of every CDC event the file sink wrote (complete lines only).
fn sunk_ids(file: &Path) -> Vec<u64> {
    let Ok(text) = std::fs::read_to_string(file) else { return Vec::new() };
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete
        .lines()
        .filter(|line| !line.is_empty())
        // SIGKILL can leave a torn line, which the restarted sink appends to: keep the whole
        // event at its end.
        .map(|line| line.rfind("{\"after\"").map_or(line, |start| &line[start..]))
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
            value["after"]["id"].as_u64().unwrap_or_else(|| panic!("no after.id: {line}"))
        })
        .collect()
}

/// A postgres-cdc manifest for `weir run` against the test server, with `extra` config lines.
fn cdc_manifest(port: u16, slot: &str, extra: &str) -> String {
    format!(
        "name: cdc\nconnector.class: postgres-cdc\nconfig:\n  database.hostname: 127.0.0.1\n  database.port: {port}\n  \
         database.user: postgres\n  database.dbname: postgres\n  topic.prefix: pg\n  slot.name: {slot}\n{extra}\
         grants:\n  postgres:\n    - host: 127.0.0.1\n      port: {port}\n      database: postgres\n"
    )
}

#[test]
fn cdc_sigkill_of_weir_mid_stream_loses_no_change() {
    let postgres = std::sync::Arc::new(Postgres::start());
    postgres.sql("CREATE TABLE k (id int PRIMARY KEY, at timestamptz DEFAULT now())");
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("cdc.yaml");
    std::fs::write(
        &manifest,
        format!(
            "{}---
name: cdc-file
connector.class: file-sink
config:
  topics: pg.public.k
  file: ./out/k.txt
grants:
  filesystem:
    - path: ./out
      access: read-write
",
            cdc_manifest(postgres.port, "weir_kill", "")
        ),
    )
    .expect("write manifest");
    let total = 20_000u64;
    let writer = {
        let postgres = postgres.clone();
        std::thread::spawn(move || {
            postgres.sql(&format!(
                "DO $$ BEGIN FOR i IN 1..{total} LOOP INSERT INTO k (id) VALUES (i); \
                 IF i % 5 = 0 THEN COMMIT; END IF; IF i % 500 = 0 THEN PERFORM pg_sleep(0.02); END IF; END LOOP; END $$;"
            ))
        })
    };
    let file = dir.path().join("out").join("k.txt");
    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
    crate::support::wait_until("some changes in the file", Duration::from_secs(120), || {
        let count = sunk_ids(&file).len();
        (count >= 2_000, (count, weir.stderr_text()))
    });
    weir.kill9();
    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
    writer.join().expect("the writer finishes");
    let (distinct, duplicates, _) =
        crate::support::wait_until("every change in the file", Duration::from_secs(180), || {
            let ids = sunk_ids(&file);
            let (distinct, duplicates) = crate::support::distinct(&ids);
            let tail = weir.stderr_text().lines().rev().take(5).collect::<Vec<_>>().join("\n");
            (distinct as u64 == total, (distinct, duplicates, tail))
        });
    eprintln!(
        "cdc_sigkill_of_weir_mid_stream_loses_no_change: {distinct} changes, {duplicates} duplicates after one SIGKILL"
    );
    let (status, _, stderr) = weir.terminate(Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
}

/// Wait for the CDC task to fail; its trace.
async fn failure(worker: &Worker) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let snapshot = worker.herder().statuses();
        let task = snapshot.iter().flat_map(|connector| connector.tasks.iter()).next().map(|task| task.status.clone());
        if let Some(status) = task.filter(|status| status.state == State::Failed) {
            return status.trace.unwrap_or_default();
        }
        assert!(tokio::time::Instant::now() < deadline, "the task should fail: {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_slot_dropped_behind_weirs_back_fails_or_resnapshots() {
    let postgres = Postgres::start();
    postgres.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path(), definition(&postgres, true, json!({}))).await;
    wait_for(&worker, "pg.public.t", 1).await;
    postgres.sql("INSERT INTO t VALUES (2)");
    wait_for(&worker, "pg.public.t", 2).await;
    worker.shutdown().await;
    drop(worker);
    postgres.sql("SELECT pg_drop_replication_slot('weir_test')");

    let worker = start_worker(dir.path(), definition(&postgres, true, json!({}))).await;
    let trace = failure(&worker).await;
    assert!(trace.contains("weir_test is gone") && trace.contains("resnapshot"), "{trace}");
    worker.shutdown().await;
    drop(worker);

    let worker =
        start_worker(dir.path(), definition(&postgres, true, json!({ "slot.invalidated.action": "resnapshot" }))).await;
    let records = wait_for(&worker, "pg.public.t", 4).await;
    assert_eq!(ops(&records), ["r", "c", "r", "r"]);
    postgres.sql("INSERT INTO t VALUES (3)");
    let records = wait_for(&worker, "pg.public.t", 5).await;
    assert_eq!(records[4].0, json!({ "id": 3 }));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_waits_for_a_database_that_is_down_at_start() {
    let postgres = Postgres::start();
    postgres.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    postgres.stop_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path(), definition(&postgres, true, json!({}))).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snapshot = worker.herder().statuses();
    assert!(
        snapshot.iter().flat_map(|connector| connector.tasks.iter()).all(|task| task.status.state != State::Failed),
        "a database that is down is retried, not a failure: {snapshot:?}"
    );
    postgres.start_server();
    let records = wait_for(&worker, "pg.public.t", 1).await;
    assert_eq!(ops(&records), ["r"]);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_reports_snapshot_progress_retained_wal_and_lag_in_status_and_metrics() {
    use tower::ServiceExt as _;

    let postgres = Postgres::start();
    postgres.sql(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); \
         INSERT INTO a SELECT generate_series(1, 2500); INSERT INTO b SELECT generate_series(1, 700);",
    );
    postgres.sql("CREATE DATABASE other");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path(), definition(&postgres, true, json!({ "slot.stats.interval.s": 1 }))).await;
    wait_for(&worker, "pg.public.a", 2500).await;
    wait_for(&worker, "pg.public.b", 700).await;
    // WAL the slot has to keep but never gets a change of (another database): nothing is
    // acknowledged past it, so the lag reported later covers at least all of it.
    let before = postgres.sql("SELECT pg_current_wal_lsn()");
    postgres.sql_in("other", "CREATE TABLE busy (n int); INSERT INTO busy SELECT generate_series(1, 20000);");
    let written: i64 =
        postgres.sql(&format!("SELECT (pg_current_wal_lsn() - '{before}')::int8")).parse().expect("a byte count");
    assert!(written > 100_000, "only {written} bytes of WAL written");
    let gauges = |worker: &Worker| worker.herder().statuses()[0].tasks[0].gauges.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let reported = loop {
        let reported = gauges(&worker);
        if reported.get("replication_lag_bytes").is_some_and(|lag| *lag >= written) {
            break reported;
        }
        assert!(tokio::time::Instant::now() < deadline, "no lag of at least {written} bytes reported: {reported:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reported["snapshot_rows"], 3200, "{reported:?}");
    assert_eq!(reported["snapshot_tables_total"], 2, "{reported:?}");
    assert_eq!(reported["snapshot_tables_done"], 2, "{reported:?}");
    assert_eq!(reported["snapshot_running"], 0, "{reported:?}");
    // restart_lsn <= confirmed_flush_lsn: the slot retains at least what is not confirmed.
    assert!(reported["slot_retained_wal_bytes"] >= reported["replication_lag_bytes"], "{reported:?}");

    let metrics = weir_runtime::metrics::render(worker.herder()).await;
    assert!(metrics.contains("weir_connector_snapshot_rows{connector=\"cdc\",task=\"0\"} 3200"), "{metrics}");
    assert!(metrics.contains("# TYPE weir_connector_slot_retained_wal_bytes gauge"), "{metrics}");
    assert!(metrics.contains("weir_connector_replication_lag_bytes{connector=\"cdc\",task=\"0\"} "), "{metrics}");

    let router =
        weir_runtime::rest::router(weir_runtime::rest::ApiState { herder: worker.herder_handle(), log_levels: None });
    let request = axum::http::Request::get("/connectors/cdc/status").body(axum::body::Body::empty()).expect("request");
    let response = router.oneshot(request).await.expect("an answer");
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
    let status: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_eq!(status["tasks"][0]["metrics"]["snapshot_rows"], 3200, "{status}");
    assert!(status["tasks"][0]["metrics"]["replication_lag_bytes"].as_i64().is_some(), "{status}");
    worker.shutdown().await;
}

/// The task's `snapshot_rows` gauge, through the REST API of a `weir` process on `port`.
fn snapshot_rows_over_rest(port: u16) -> Option<i64> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(b"GET /connectors/cdc/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status: Value = serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()?;
    status["tasks"][0]["metrics"]["snapshot_rows"].as_i64()
}

#[test]
fn cdc_sigkill_during_the_snapshot_then_the_replayed_topic_reproduces_the_table() {
    let postgres = std::sync::Arc::new(Postgres::start());
    let rows = 300_000;
    postgres.sql(&format!(
        "CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL); INSERT INTO big SELECT i, 0 FROM generate_series(1, {rows}) i;"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("cdc.yaml");
    std::fs::write(
        &manifest,
        cdc_manifest(
            postgres.port,
            "weir_interrupted",
            "  table.include.list: public\\.big\n  heartbeat.interval.ms: 200\n",
        ),
    )
    .expect("write manifest");
    let rest = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
    let listen = format!("127.0.0.1:{rest}");
    let args = ["--rest-listen", listen.as_str()];
    // Updates, inserts and deletes, before, during and after the kill: a delete of a row the
    // interrupted snapshot had delivered must still reach the topic.
    let writer = {
        let postgres = postgres.clone();
        std::thread::spawn(move || {
            postgres.sql(&format!(
                "DO $$ BEGIN FOR i IN 1..4000 LOOP \
                   UPDATE big SET v = v + 1 WHERE id = (i * 37) % {rows} + 1; \
                   INSERT INTO big VALUES ({rows} + i, i); \
                   IF i % 4 = 0 THEN DELETE FROM big WHERE id = (i * 53) % 2000 + 1; END IF; \
                   COMMIT; PERFORM pg_sleep(0.002); \
                 END LOOP; END $$;"
            ))
        })
    };
    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &args);
    let at_kill = crate::support::wait_until("the snapshot under way", Duration::from_secs(120), || {
        let read = snapshot_rows_over_rest(rest);
        (read.is_some_and(|read| read >= 20_000), (read, weir.stderr_text().lines().last().map(str::to_owned)))
    });
    weir.kill9();
    assert!(at_kill.0.is_some_and(|read| read < rows), "the snapshot finished before the kill: {at_kill:?}");

    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &args);
    writer.join().expect("the writer finishes");
    let written = postgres.sql("SELECT pg_current_wal_lsn()");
    // The slot confirms a position only once everything before it is durable in the log.
    crate::support::wait_until("the slot to confirm everything written", Duration::from_secs(240), || {
        let confirmed = postgres.sql(&format!(
            "SELECT confirmed_flush_lsn >= '{written}' FROM pg_replication_slots WHERE slot_name = 'weir_interrupted'"
        ));
        (confirmed == "t", weir.stderr_text().lines().rev().take(3).collect::<Vec<_>>().join("\n"))
    });
    let (status, _, stderr) = weir.terminate(Duration::from_secs(60));
    assert!(status.success(), "{stderr}");

    let records = tokio::runtime::Runtime::new().expect("a runtime").block_on(async {
        let log = weir_runtime::log::EmbeddedLog::open(dir.path().join("data").join("log"), Default::default())
            .await
            .expect("open the log");
        read_log(&log, "pg.public.big").await
    });
    let expected: std::collections::BTreeMap<i64, i64> = postgres
        .sql("SELECT id, v FROM big")
        .lines()
        .map(|line| {
            let (id, v) = line.split_once('|').expect("id|v");
            (id.parse().expect("id"), v.parse().expect("v"))
        })
        .collect();
    let replayed = replay(&records);
    let differing = expected.iter().filter(|(id, v)| replayed.get(id) != Some(v)).count()
        + replayed.keys().filter(|id| !expected.contains_key(id)).count();
    assert_eq!(differing, 0, "{differing} rows differ; {} records, {} rows expected", records.len(), expected.len());
    // The snapshot was read again after the kill: some rows were read twice.
    let mut reads = std::collections::HashSet::new();
    let read_twice = records.iter().filter(|(key, value)| value["op"] == "r" && !reads.insert(key.clone())).count();
    assert!(read_twice > 0, "no row was read twice: the kill did not interrupt the snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_delete_drops_the_slot_and_only_its_own_publication_with_slot_drop_on_delete() {
    let postgres = Postgres::start();
    postgres
        .sql("CREATE TABLE d (id int PRIMARY KEY); INSERT INTO d VALUES (1); CREATE PUBLICATION theirs FOR TABLE d;");
    let dir = tempfile::tempdir().expect("tempdir");
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let worker = Worker::start(WorkerConfig::new(dir.path().join("data"))).await.expect("worker starts");
    let slot_exists =
        |slot: &str| postgres.sql(&format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"));
    let publication_exists = |publication: &str| {
        postgres.sql(&format!("SELECT count(*) FROM pg_publication WHERE pubname = '{publication}'"))
    };
    // (connector, its config, whether the slot and the publication outlive the deletion)
    let cases = [
        ("keep", json!({ "slot.name": "weir_keep", "publication.name": "keep_pub" }), ("1", "1")),
        (
            "own",
            json!({ "slot.name": "weir_own", "publication.name": "own_pub", "slot.drop.on.delete": true }),
            ("0", "0"),
        ),
        // A publication the connector did not create stays.
        (
            "theirs",
            json!({ "slot.name": "weir_theirs", "publication.name": "theirs", "slot.drop.on.delete": true }),
            ("0", "1"),
        ),
    ];
    for (name, extra, (slot_after, publication_after)) in cases {
        let mut extra = extra;
        extra["topic.prefix"] = json!(name);
        let mut definition = definition(&postgres, true, extra.clone());
        definition.name = name.into();
        worker.herder().create(definition).await.expect("create the connector");
        wait_for(&worker, &format!("{name}.public.d"), 1).await;
        let (slot, publication) =
            (extra["slot.name"].as_str().expect("slot"), extra["publication.name"].as_str().expect("pub"));
        assert_eq!(slot_exists(slot), "1", "{name}: the slot exists while the connector runs");
        assert_eq!(publication_exists(publication), "1", "{name}");
        // Deleted while its replication session is streaming: the slot is dropped once free.
        worker.herder().delete(name).await.expect("delete the connector");
        assert_eq!(slot_exists(slot), slot_after, "{name}: slot {slot} after the deletion");
        assert_eq!(
            publication_exists(publication),
            publication_after,
            "{name}: publication {publication} after the deletion"
        );
    }
    worker.shutdown().await;
}

/// Debezium's JSON for the numbers JSON cannot carry as doubles: int8 beyond 2^53 as a plain
/// integer with its exact digits, float `NaN` and the infinities as strings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_int8_beyond_2_pow_53_is_exact_and_float_nan_and_infinity_are_strings() {
    let postgres = Postgres::start();
    postgres.sql(
        "CREATE TABLE nums (id int8 PRIMARY KEY, d float8, r real); \
         INSERT INTO nums VALUES (9007199254740993, 'NaN', 'Infinity');",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path(), definition(&postgres, true, json!({}))).await;
    wait_for(&worker, "pg.public.nums", 1).await;
    postgres.sql("INSERT INTO nums VALUES (-9223372036854775808, '-Infinity', 1.5), (9223372036854775807, 0.1, 'NaN')");
    let records = wait_for(&worker, "pg.public.nums", 3).await;
    let rows: Vec<(Value, Value, Value)> = records
        .iter()
        .map(|(key, value)| (key["id"].clone(), value["after"]["d"].clone(), value["after"]["r"].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (json!(9_007_199_254_740_993_i64), json!("NaN"), json!("Infinity")),
            (json!(i64::MIN), json!("-Infinity"), json!(1.5)),
            (json!(i64::MAX), json!(0.1), json!("NaN")),
        ]
    );
    // The digits as written, not a double's rounding (9007199254740992).
    let raw = crate::support::read_partition(&**worker.log(), "pg.public.nums", 0).await;
    let value = String::from_utf8_lossy(raw[0].value.as_ref().expect("a value")).into_owned();
    assert!(value.contains("\"id\":9007199254740993"), "{value}");
    worker.shutdown().await;
}

/// `snapshot.mode`: `never` streams only what changes after the start; `initial_only` reads the
/// table and streams nothing; `when_needed` snapshots again when the slot is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_snapshot_modes_never_initial_only_and_when_needed() {
    let postgres = Postgres::start();
    postgres.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);");

    let dir = tempfile::tempdir().expect("tempdir");
    let never = json!({ "snapshot.mode": "never", "slot.name": "weir_never" });
    let worker = start_worker(dir.path(), definition(&postgres, true, never)).await;
    wait_until_streaming(&postgres, "weir_never").await;
    postgres.sql("INSERT INTO t VALUES (3)");
    let records = wait_for(&worker, "pg.public.t", 1).await;
    assert_eq!(ops(&records), ["c"], "no snapshot with never: {records:?}");
    assert_eq!(records[0].0, json!({ "id": 3 }));
    worker.shutdown().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let initial_only = json!({ "snapshot.mode": "initial_only", "slot.name": "weir_initial_only" });
    let worker = start_worker(dir.path(), definition(&postgres, true, initial_only)).await;
    let records = wait_for(&worker, "pg.public.t", 3).await;
    assert_eq!(ops(&records), ["r", "r", "r"]);
    postgres.sql("INSERT INTO t VALUES (4)");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(read_topic(&worker, "pg.public.t").await.len(), 3, "initial_only streams nothing after the snapshot");
    worker.shutdown().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let when_needed = json!({ "snapshot.mode": "when_needed", "slot.name": "weir_when_needed" });
    let worker = start_worker(dir.path(), definition(&postgres, true, when_needed.clone())).await;
    assert_eq!(ops(&wait_for(&worker, "pg.public.t", 4).await), ["r", "r", "r", "r"]);
    worker.shutdown().await;
    drop(worker);
    postgres.sql("SELECT pg_drop_replication_slot('weir_when_needed')");
    let worker = start_worker(dir.path(), definition(&postgres, true, when_needed)).await;
    let records = wait_for(&worker, "pg.public.t", 8).await;
    assert_eq!(ops(&records), ["r", "r", "r", "r", "r", "r", "r", "r"], "read again with the slot gone");
    worker.shutdown().await;
}

/// Wait until the slot exists and its stream is active (changes from now on are captured).
async fn wait_until_streaming(postgres: &Postgres, slot: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let active =
            postgres.sql(&format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active"));
        if active == "1" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot {slot} never became active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
