//! Incremental snapshots of `postgres-cdc` against a real Postgres: started by a row in the
//! signal table (Debezium's format) or by `POST /connectors/{name}/signals`, read in chunks
//! while a writer updates, deletes and inserts rows, and checked row by row against the table;
//! stopped, paused and resumed by signals; resumed (not restarted) after a worker restart; and
//! run for just the table added to `table.include.list`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tower::ServiceExt as _;
use weir_runtime::Herder as _;
use weir_runtime::manifest::ConnectorDefinition;
use weir_runtime::{Worker, WorkerConfig};

use crate::cdc::{definition, read_log, replay, table_rows};
use crate::pg::Postgres;

const SIGNAL_TABLE: &str =
    "CREATE TABLE debezium_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))";

async fn start_worker(dir: &Path, definition: ConnectorDefinition) -> Worker {
    let filter = std::env::var("WEIR_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    let worker = Worker::start(WorkerConfig::new(dir.join("data"))).await.expect("worker starts");
    if worker.herder().info(&definition.name).is_none() {
        worker.herder().create(definition).await.expect("create the connector");
    }
    worker
}

async fn read_topic(worker: &Worker, topic: &str) -> Vec<(Value, Value)> {
    read_log(&**worker.log(), topic).await
}

fn gauges(worker: &Worker) -> BTreeMap<String, i64> {
    worker.herder().statuses()[0]
        .tasks
        .first()
        .map(|task| task.gauges.clone().into_iter().collect())
        .unwrap_or_default()
}

/// Wait until `condition` holds for what the worker shows; fail if the task failed or at the
/// deadline, with the last observation.
async fn wait_for<T: std::fmt::Debug>(
    worker: &Worker,
    what: &str,
    timeout: Duration,
    mut condition: impl AsyncFnMut() -> (bool, T),
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (done, observed) = condition().await;
        if done {
            return observed;
        }
        let failed = crate::support::failed_task(worker);
        assert!(failed.is_none(), "the CDC task failed while waiting for {what}: {failed:?}");
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last observed: {observed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until_streaming(postgres: &Postgres, slot: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while postgres.sql(&format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active"))
        != "1"
    {
        assert!(tokio::time::Instant::now() < deadline, "slot {slot} never became active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn reads(records: &[(Value, Value)]) -> Vec<i64> {
    records.iter().filter(|(_, value)| value["op"] == "r").filter_map(|(key, _)| key["id"].as_i64()).collect()
}

/// A signal for connector `cdc` through the REST API; the answer's status and body.
async fn rest_signal(worker: &Worker, body: Value) -> (u16, Value) {
    rest_signal_to(worker, "cdc", body).await
}

async fn rest_signal_to(worker: &Worker, connector: &str, body: Value) -> (u16, Value) {
    let router =
        weir_runtime::rest::router(weir_runtime::rest::ApiState { herder: worker.herder_handle(), log_levels: None });
    let request = axum::http::Request::post(format!("/connectors/{connector}/signals"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .expect("request");
    let response = router.oneshot(request).await.expect("an answer");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// 20,000 rows, streaming running, a writer updating, deleting and inserting rows while an
/// incremental snapshot (chunks of 100) started by a signal-table row reads them: the replayed
/// topic equals the table row for row, no delete is undone by a stale read, every row the
/// writer left alone was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_snapshot_under_a_concurrent_writer_ends_equal_to_the_table() {
    let postgres = Arc::new(Postgres::start());
    let rows = 20_000;
    postgres.sql(&format!(
        "{SIGNAL_TABLE}; CREATE TABLE inc (id int PRIMARY KEY, v int NOT NULL); \
         INSERT INTO inc SELECT i, 0 FROM generate_series(1, {rows}) i;"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = json!({
        "snapshot.mode": "never",
        "signal.data.collection": "public.debezium_signal",
        "incremental.snapshot.chunk.size": 100,
        "table.include.list": "public\\.inc",
    });
    let worker = start_worker(dir.path(), definition(&postgres, true, config)).await;
    wait_until_streaming(&postgres, "weir_test").await;
    // Small transactions all over the key range (so that many land in open windows): an
    // update, an insert above the largest key, now and then a delete.
    let writer = {
        let postgres = postgres.clone();
        std::thread::spawn(move || {
            postgres.sql(&format!(
                "DO $$ BEGIN FOR i IN 1..4000 LOOP \
                   UPDATE inc SET v = v + 1 WHERE id = (i * 37) % {rows} + 1; \
                   UPDATE inc SET v = v + 1 WHERE id = (i * 101) % {rows} + 1; \
                   INSERT INTO inc VALUES ({rows} + i, i); \
                   IF i % 5 = 0 THEN DELETE FROM inc WHERE id = (i * 53) % {rows} + 1; END IF; \
                   COMMIT; PERFORM pg_sleep(0.0005); \
                 END LOOP; END $$;"
            ))
        })
    };
    postgres.sql(
        "INSERT INTO debezium_signal VALUES ('ad-hoc-1', 'execute-snapshot', \
         '{\"data-collections\": [\"public.inc\"], \"type\": \"incremental\"}')",
    );
    writer.join().expect("the writer finishes");
    let expected = table_rows(&postgres, "inc");
    let records = wait_for(&worker, "the replayed topic to equal the table", Duration::from_secs(240), async || {
        let records = read_topic(&worker, "pg.public.inc").await;
        let replayed = replay(&records);
        let done = replayed == expected && gauges(&worker).get("incremental_snapshot_running") == Some(&0);
        (done, if done { records } else { vec![(json!(replayed.len()), json!(records.len()))] })
    })
    .await;

    let read: Vec<i64> = reads(&records);
    let touched: HashSet<i64> = records
        .iter()
        .filter(|(_, value)| value["op"] != "r" && !value.is_null())
        .filter_map(|(key, _)| key["id"].as_i64())
        .collect();
    let read_once: HashSet<i64> = read.iter().copied().collect();
    // Every original row the writer never touched was read (a touched one may have been
    // dropped from its chunk: its streamed event stands in for it).
    let missing: Vec<i64> = (1..=rows).filter(|id| !touched.contains(id) && !read_once.contains(id)).take(10).collect();
    assert!(missing.is_empty(), "rows never read: {missing:?}");
    assert!(read.len() >= rows as usize - touched.len(), "{} reads", read.len());
    // A read never follows the delete of its key (the writer never inserts a deleted id again).
    let mut deleted = HashSet::new();
    for (key, value) in &records {
        let Some(id) = key["id"].as_i64() else { continue };
        match value["op"].as_str() {
            Some("d") => {
                deleted.insert(id);
            }
            Some("r") => assert!(!deleted.contains(&id), "row {id} read after its delete: {value}"),
            _ => {}
        }
    }
    // The snapshot ran while streaming: streamed changes sit between its first and last reads.
    let first = records.iter().position(|(_, value)| value["op"] == "r").expect("reads");
    let last = records.iter().rposition(|(_, value)| value["op"] == "r").expect("reads");
    let interleaved = records[first..last].iter().filter(|(_, value)| value["op"] == "u").count();
    assert!(interleaved > 0, "no streamed change between the snapshot's reads");
    let sample = &records[first].1;
    assert_eq!(sample["source"]["snapshot"], "incremental", "{sample}");
    assert!(sample["before"].is_null() && sample["after"]["id"].is_i64(), "{sample}");
    let reported = gauges(&worker);
    assert_eq!(reported.get("incremental_snapshot_rows"), Some(&(read.len() as i64)), "{reported:?}");
    assert_eq!(reported.get("incremental_snapshot_tables_remaining"), Some(&0), "{reported:?}");
    eprintln!(
        "incremental snapshot under a writer: {} reads of {rows} rows, {} keys touched by the writer, {interleaved} updates interleaved",
        read.len(),
        touched.len()
    );
    worker.shutdown().await;
}

/// A snapshot started over REST, interrupted by a worker restart, resumes from its last chunk;
/// pause holds it (across nothing but a wait), resume continues it, stop ends another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_snapshot_resumes_after_a_restart_and_obeys_pause_resume_and_stop() {
    let postgres = Postgres::start();
    let rows = 20_000usize;
    let chunk = 50usize;
    postgres.sql(&format!(
        "{SIGNAL_TABLE}; CREATE TABLE r (id int PRIMARY KEY, v int NOT NULL); \
         INSERT INTO r SELECT i, 0 FROM generate_series(1, {rows}) i;"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = json!({
        "snapshot.mode": "never",
        "signal.data.collection": "public.debezium_signal",
        "incremental.snapshot.chunk.size": chunk,
        "table.include.list": "public\\.r",
    });
    let worker = start_worker(dir.path(), definition(&postgres, true, config.clone())).await;
    wait_until_streaming(&postgres, "weir_test").await;

    // Bad signals are refused with the reason; a good one is queued.
    let (status, body) = rest_signal(&worker, json!({ "type": "execute-snapshot", "data": {} })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().is_some_and(|message| message.contains("data-collections")), "{body}");
    let (status, body) = rest_signal(&worker, json!({ "type": "snapshot-everything" })).await;
    assert_eq!((status, body["error_code"].clone()), (400, json!(400)), "{body}");
    let (status, body) = rest_signal(&worker, json!({ "type": "log", "data": [1], "extra": true })).await;
    assert_eq!(status, 400, "unknown fields and non-object data are refused: {body}");
    let (status, body) = rest_signal_to(&worker, "nope", json!({ "type": "pause-snapshot" })).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = rest_signal(
        &worker,
        json!({ "id": "rest-1", "type": "execute-snapshot", "data": { "data-collections": ["public.r"] } }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], "rest-1", "{body}");

    let topic = "pg.public.r";
    // Progress is watched through the rows gauge: reading the topic back while the snapshot runs
    // is slow enough on a loaded machine for the snapshot to end in the meantime.
    let snapshot_rows = |worker: &Worker| gauges(worker).get("incremental_snapshot_rows").copied().unwrap_or(0);
    wait_for(&worker, "a part of the snapshot", Duration::from_secs(120), async || {
        let read = snapshot_rows(&worker);
        (read >= 2_000, read)
    })
    .await;
    worker.shutdown().await;
    let before_restart = reads(&read_topic(&worker, topic).await);
    drop(worker);
    assert!(before_restart.len() < rows, "the snapshot finished before the restart");

    let worker = start_worker(dir.path(), definition(&postgres, true, config.clone())).await;
    wait_for(&worker, "more of the snapshot", Duration::from_secs(120), async || {
        let read = usize::try_from(snapshot_rows(&worker)).unwrap_or(0);
        (read >= before_restart.len() + 4_000, read)
    })
    .await;
    let (status, body) =
        rest_signal(&worker, json!({ "type": "pause-snapshot", "data": { "type": "incremental" } })).await;
    assert_eq!(status, 202, "{body}");
    wait_for(&worker, "the pause", Duration::from_secs(30), async || {
        let reported = gauges(&worker);
        (reported.get("incremental_snapshot_paused") == Some(&1), reported)
    })
    .await;
    // An open window completes; then nothing more is read while paused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused = reads(&read_topic(&worker, topic).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reads(&read_topic(&worker, topic).await).len(), paused.len(), "reads went on while paused");
    let distinct_at_pause = paused.iter().collect::<HashSet<_>>().len();
    assert!(distinct_at_pause < rows, "the snapshot finished before the pause");
    postgres.sql("INSERT INTO debezium_signal VALUES ('resume-1', 'resume-snapshot', '{\"type\": \"incremental\"}')");
    let records = wait_for(&worker, "the whole snapshot", Duration::from_secs(180), async || {
        let reported = gauges(&worker);
        let done = reported.get("incremental_snapshot_running") == Some(&0);
        let records = read_topic(&worker, topic).await;
        (done, records)
    })
    .await;
    let read = reads(&records);
    let distinct: HashSet<i64> = read.iter().copied().collect();
    assert_eq!(distinct.len(), rows, "every row read");
    // Resumed from the last chunk delivered, not from the start: at most a chunk or two again.
    let again = read.len() - rows;
    assert!(again <= 2 * chunk, "{again} rows read twice after the restart");
    // Reads of a snapshot come in key order, the restart's repeat aside.
    let ascending = read.windows(2).filter(|pair| pair[1] < pair[0]).count();
    assert!(ascending <= 1, "{ascending} steps back in the read order");

    // Stop: a second snapshot of the same table ends short of the table.
    postgres.sql(
        "INSERT INTO debezium_signal VALUES ('again', 'execute-snapshot', '{\"data-collections\": [\"public\\\\.r\"]}')",
    );
    // Watched through the gauge, not by reading the topic back: a read of 20,000+ records takes
    // long enough on a loaded machine that the snapshot could end before the stop is sent.
    wait_for(&worker, "the second snapshot to start", Duration::from_secs(60), async || {
        let reported = gauges(&worker);
        (reported.get("incremental_snapshot_running") == Some(&1), reported)
    })
    .await;
    postgres.sql("INSERT INTO debezium_signal VALUES ('stop', 'stop-snapshot', '{\"type\": \"incremental\"}')");
    wait_for(&worker, "the stop", Duration::from_secs(30), async || {
        let reported = gauges(&worker);
        (reported.get("incremental_snapshot_running") == Some(&0), reported)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped_at = reads(&read_topic(&worker, topic).await).len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reads(&read_topic(&worker, topic).await).len(), stopped_at, "reads went on after the stop");
    assert!(stopped_at < 2 * rows + again, "the second snapshot was not stopped: {stopped_at} reads");
    eprintln!(
        "incremental snapshot restart: {} reads before the restart, {again} read again; second snapshot stopped after {} reads",
        before_restart.len(),
        stopped_at - rows - again
    );
    worker.shutdown().await;
}

/// Adding a table to `table.include.list` and signalling it snapshots just that table; a table
/// outside the list is not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_snapshot_of_a_table_added_to_the_include_list_reads_only_it() {
    let postgres = Postgres::start();
    postgres.sql(&format!(
        "{SIGNAL_TABLE}; CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL); CREATE TABLE b (id int PRIMARY KEY, v int NOT NULL); \
         CREATE TABLE c (id int PRIMARY KEY, v int NOT NULL); \
         INSERT INTO a SELECT i, 1 FROM generate_series(1, 500) i; INSERT INTO b SELECT i, 2 FROM generate_series(1, 700) i; \
         INSERT INTO c SELECT i, 3 FROM generate_series(1, 10) i;"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = json!({ "signal.data.collection": "public.debezium_signal", "table.include.list": "public\\.a" });
    let worker = start_worker(dir.path(), definition(&postgres, true, config.clone())).await;
    wait_for(&worker, "the initial snapshot of a", Duration::from_secs(60), async || {
        let read = reads(&read_topic(&worker, "pg.public.a").await).len();
        (read == 500, read)
    })
    .await;
    config["table.include.list"] = json!("public\\.a,public\\.b");
    worker.herder().put(definition(&postgres, true, config), None).await.expect("the new config");
    wait_until_streaming(&postgres, "weir_test").await;
    postgres.sql(
        "INSERT INTO debezium_signal VALUES ('add-b', 'execute-snapshot', \
         '{\"data-collections\": [\"public.b\", \"public.c\"], \"type\": \"incremental\"}')",
    );
    wait_for(&worker, "the incremental snapshot of b", Duration::from_secs(60), async || {
        let records = read_topic(&worker, "pg.public.b").await;
        let read = reads(&records).len();
        let done = read == 700 && gauges(&worker).get("incremental_snapshot_running") == Some(&0);
        (done, (read, gauges(&worker)))
    })
    .await;
    postgres.sql("UPDATE b SET v = 5 WHERE id = 1");
    let records = wait_for(&worker, "the update of b", Duration::from_secs(30), async || {
        let records = read_topic(&worker, "pg.public.b").await;
        (records.len() > 700, records)
    })
    .await;
    assert_eq!(records[700].1["op"], "u");
    assert_eq!(records.iter().filter(|(_, value)| value["source"]["snapshot"] == "incremental").count(), 700);
    assert_eq!(reads(&read_topic(&worker, "pg.public.a").await).len(), 500, "a was not read again");
    assert!(read_topic(&worker, "pg.public.c").await.is_empty(), "c is not captured");
    // The signal table is not captured either: its rows are signals only.
    assert!(read_topic(&worker, "pg.public.debezium_signal").await.is_empty());
    worker.shutdown().await;
}
