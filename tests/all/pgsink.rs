//! The `postgres-sink` connector against a real Postgres this test starts: upserts, deletes,
//! a constraint violation routed to the dead-letter topic, `auto.create` and `auto.evolve`;
//! resuming from the sink's own offsets rather than the group's; and a CDC → Postgres round
//! trip under a pgbench TPC-B workload with weir SIGKILLed twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weir_runtime::Herder as _;
use weir_runtime::log::{Bytes, Generation, PartitionBatch, Record, TopicConfig};
use weir_runtime::manifest::{ConnectorDefinition, Limits, PostgresGrant, Tolerance};
use weir_runtime::task::State;
use weir_runtime::{Worker, WorkerConfig};

use crate::pg::Postgres;

fn grant(postgres: &Postgres, database: &str) -> weir_runtime::manifest::Grants {
    let mut grants = weir_runtime::manifest::Grants::default();
    grants.postgres.push(PostgresGrant { host: "127.0.0.1".into(), port: postgres.port, database: database.into() });
    grants
}

fn sink(name: &str, postgres: &Postgres, config: Value) -> ConnectorDefinition {
    let mut base = json!({
        "database.hostname": "127.0.0.1",
        "database.port": postgres.port,
        "database.user": "postgres",
        "database.dbname": "target",
    });
    for (key, value) in config.as_object().cloned().unwrap_or_default() {
        base[key] = value;
    }
    ConnectorDefinition {
        name: name.into(),
        class: "postgres-sink".into(),
        tasks_max: 1,
        config: base.as_object().cloned().unwrap_or_default(),
        grants: grant(postgres, "target"),
        limits: Limits::default(),
        ..ConnectorDefinition::default()
    }
}

async fn start_worker(dir: &Path) -> Worker {
    let filter = std::env::var("WEIR_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    Worker::start(WorkerConfig::new(dir.join("data"))).await.expect("worker starts")
}

/// Append `(key, value)` records (JSON text; `None` is null) to partition 0 of `topic`.
async fn produce(worker: &Worker, topic: &str, records: &[(Option<Value>, Option<Value>)]) {
    let log = worker.log();
    log.ensure_topic(topic, TopicConfig { partitions: 1, ..TopicConfig::default() }).await.expect("topic");
    let records = records
        .iter()
        .map(|(key, value)| Record {
            key: key.as_ref().map(|key| Bytes::from(key.to_string())),
            value: value.as_ref().map(|value| Bytes::from(value.to_string())),
            headers: Vec::new(),
            timestamp: 0,
        })
        .collect();
    let batch = PartitionBatch { topic: topic.into(), partition: 0, records };
    log.append(Arc::from([batch]), Generation::default()).await.expect("append");
}

/// Poll `query` in the target database until it returns `expected`; fail with the tasks' state.
/// A query that fails (its table or a column the sink is to create not there yet) is polled
/// again, as one that returns other rows.
async fn wait_for_rows(worker: &Worker, postgres: &Postgres, query: &str, expected: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let output = postgres.psql_raw_in("target", query);
        let found = if output.status.success() {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        } else {
            format!("(query failed: {})", String::from_utf8_lossy(&output.stderr).trim())
        };
        if found == expected {
            return;
        }
        let statuses = worker.herder().statuses();
        let failed = crate::support::failed_task(worker);
        assert!(failed.is_none(), "a sink task failed: {failed:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {query:?} to give {expected:?}; last: {found:?}; {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsink_upserts_deletes_evolves_and_sends_a_violating_record_to_the_dead_letter_topic() {
    let postgres = Postgres::start();
    postgres.sql("CREATE DATABASE target");
    postgres.sql_in("target", "CREATE TABLE orders (id int PRIMARY KEY, name text, qty int CHECK (qty >= 0))");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    produce(
        &worker,
        "orders",
        &[
            (Some(json!({"id": 1})), Some(json!({"id": 1, "name": "one", "qty": 1}))),
            (Some(json!({"id": 2})), Some(json!({"id": 2, "name": "two", "qty": 2}))),
            (Some(json!({"id": 1})), Some(json!({"id": 1, "name": "uno", "qty": 10}))),
            (Some(json!({"id": 3})), Some(json!({"id": 3, "name": "bad", "qty": -1}))),
            (Some(json!({"id": 2})), None),
            (Some(json!({"id": 4})), Some(json!({"id": 4, "name": "four", "qty": 4, "gift": true}))),
            // A Debezium event: its `after` is the row.
            (
                Some(json!({"id": 5})),
                Some(json!({"before": null, "after": {"id": 5, "name": "five", "qty": 5}, "op": "c", "source": {}})),
            ),
        ],
    )
    .await;
    let definition = ConnectorDefinition {
        tolerance: Tolerance::All,
        dead_letter_topic: Some("orders-dlq".into()),
        dead_letter_context_headers: true,
        ..sink(
            "orders-pg",
            &postgres,
            json!({
                "topics": "orders",
                // Left as written by the config providers, replaced by the sink.
                "table.name.format": "public.${topic}",
                "insert.mode": "upsert",
                "pk.mode": "record_key",
                "delete.enabled": true,
                "auto.evolve": true,
            }),
        )
    };
    worker.herder().create(definition.clone()).await.expect("create the sink");
    wait_for_rows(
        &worker,
        &postgres,
        "SELECT id, name, qty, gift FROM orders ORDER BY id",
        "1|uno|10|\n4|four|4|t\n5|five|5|",
    )
    .await;
    let dead = crate::cdc::read_log(&**worker.log(), "orders-dlq").await;
    assert_eq!(dead.len(), 1, "the violating record, and only it, is dead-lettered: {dead:?}");
    assert_eq!(dead[0].0, json!({"id": 3}));
    let stored = postgres.sql_in(
        "target",
        "SELECT target_table, topic, kafka_partition, kafka_offset FROM __weir_sink_offsets ORDER BY 1",
    );
    assert_eq!(stored, "public.orders|orders|0|6");

    // Another topic into a table the sink creates, insert-only without a key: a duplicate
    // would show as a second row.
    let events: Vec<_> =
        (0..500).map(|n| (None, Some(json!({"n": n, "label": format!("e{n}"), "ratio": 0.5})))).collect();
    produce(&worker, "events", &events).await;
    let log_sink = sink("events-pg", &postgres, json!({ "topics": "events", "auto.create": true, "batch.size": 64 }));
    worker.herder().create(log_sink.clone()).await.expect("create the insert sink");
    wait_for_rows(&worker, &postgres, "SELECT to_regclass('events') IS NOT NULL", "t").await;
    wait_for_rows(&worker, &postgres, "SELECT count(*), count(DISTINCT n), sum(n) FROM events", "500|500|124750").await;
    let types = postgres.sql_in(
        "target",
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_name) FROM information_schema.columns \
         WHERE table_name = 'events'",
    );
    assert_eq!(types, "label text, n bigint, ratio double precision");
    worker.shutdown().await;
    drop(worker);

    // The consumer group forgets everything: the restarted sinks are handed every record again
    // and must skip what their own offsets say the tables hold.
    let worker = start_worker(dir.path()).await;
    for group in ["connect-orders-pg", "connect-events-pg"] {
        assert!(!worker.log().group_offsets(group).await.expect("group offsets").is_empty(), "{group} committed");
        worker.log().delete_group_offsets(group).await.expect("delete the group offsets");
    }
    // The stored connectors start only now, from no group offsets at all.
    worker.restore().await;
    let more: Vec<_> =
        (500..600).map(|n| (None, Some(json!({"n": n, "label": format!("e{n}"), "ratio": 0.5})))).collect();
    produce(&worker, "events", &more).await;
    produce(&worker, "orders", &[(Some(json!({"id": 1})), Some(json!({"id": 1, "name": "eins", "qty": 11})))]).await;
    wait_for_rows(&worker, &postgres, "SELECT count(*), count(DISTINCT n) FROM events", "600|600").await;
    wait_for_rows(&worker, &postgres, "SELECT name, qty FROM orders WHERE id = 1", "eins|11").await;
    // The delete of id 2 was not undone by the replayed upsert of it.
    assert_eq!(postgres.sql_in("target", "SELECT count(*) FROM orders WHERE id = 2"), "0");
    let dead = crate::cdc::read_log(&**worker.log(), "orders-dlq").await;
    assert_eq!(dead.len(), 1, "the replay skipped the dead-lettered record too: {dead:?}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsink_with_errors_tolerance_none_fails_and_commits_nothing_of_the_failing_batch() {
    let postgres = Postgres::start();
    postgres.sql("CREATE DATABASE target");
    postgres.sql_in("target", "CREATE TABLE strict (id int PRIMARY KEY, qty int NOT NULL)");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    produce(
        &worker,
        "strict",
        &[
            (Some(json!({"id": 1})), Some(json!({"id": 1, "qty": 1}))),
            (Some(json!({"id": 2})), Some(json!({"id": 2, "qty": null}))),
        ],
    )
    .await;
    let definition = ConnectorDefinition {
        restart_max_attempts: 0,
        ..sink("strict-pg", &postgres, json!({ "topics": "strict", "insert.mode": "upsert", "pk.mode": "record_key" }))
    };
    worker.herder().create(definition).await.expect("create the sink");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let trace = loop {
        let statuses = worker.herder().statuses();
        let task = statuses.iter().flat_map(|connector| connector.tasks.iter()).next().map(|task| task.status.clone());
        if let Some(status) = task.filter(|status| status.state == State::Failed) {
            break status.trace.unwrap_or_default();
        }
        assert!(tokio::time::Instant::now() < deadline, "the sink should fail: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(trace.contains("23502") && trace.contains("qty"), "the failure names the violation: {trace}");
    // The good record of the failed batch is not in the table either: nothing was skipped, the
    // batch comes again once the task runs again.
    assert_eq!(postgres.sql_in("target", "SELECT count(*) FROM strict"), "0");
    assert_eq!(postgres.sql_in("target", "SELECT count(*) FROM __weir_sink_offsets"), "0");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsink_refuses_a_database_the_manifest_does_not_grant() {
    let postgres = Postgres::start();
    postgres.sql("CREATE DATABASE target");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    produce(&worker, "t", &[(None, Some(json!({"a": 1})))]).await;
    let definition = ConnectorDefinition {
        grants: grant(&postgres, "elsewhere"),
        restart_max_attempts: 0,
        ..sink("ungranted", &postgres, json!({ "topics": "t", "auto.create": true }))
    };
    worker.herder().create(definition).await.expect("create");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let statuses = worker.herder().statuses();
        let failed = crate::support::failed_task(&worker).and_then(|task| task.status.trace);
        if let Some(trace) = failed {
            assert!(trace.contains("grants no Postgres connection"), "{trace}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sink should fail: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(postgres.sql_in("target", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
    worker.shutdown().await;
}

/// Run pgbench with `args` against `database`; panics when it fails.
fn pgbench(postgres: &Postgres, database: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::pg::bindir().join("pgbench"))
        .args(["-h", "127.0.0.1", "-p", &postgres.port.to_string(), "-U", "postgres"])
        .args(args)
        .arg(database)
        .output()
        .expect("run pgbench");
    assert!(output.status.success(), "pgbench {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every row of the pgbench tables of `database`, per table, in key order.
fn pgbench_rows(postgres: &Postgres, database: &str) -> BTreeMap<&'static str, String> {
    [
        ("pgbench_accounts", "SELECT aid, bid, abalance, filler FROM pgbench_accounts ORDER BY aid"),
        ("pgbench_tellers", "SELECT tid, bid, tbalance, filler FROM pgbench_tellers ORDER BY tid"),
        ("pgbench_branches", "SELECT bid, bbalance, filler FROM pgbench_branches ORDER BY bid"),
        ("pgbench_history", "SELECT hid, tid, bid, aid, delta, mtime, filler FROM pgbench_history ORDER BY hid"),
    ]
    .into_iter()
    .map(|(table, query)| (table, postgres.sql_in(database, query)))
    .collect()
}

fn count(postgres: &Postgres, database: &str, table: &str) -> i64 {
    postgres.sql_in(database, &format!("SELECT count(*) FROM {table}")).parse().expect("a count")
}

/// The manifest of the round trip: postgres-cdc on `postgres`; the pgbench tables upserted by key
/// into `target`; and every history event inserted into `history_log` keyed by its topic,
/// partition and offset (`pk.mode: kafka`, `insert.mode: insert`), where writing a record twice
/// would violate the primary key and fail the task.
fn round_trip_manifest(port: u16) -> String {
    let connection = format!("  database.hostname: 127.0.0.1\n  database.port: {port}\n  database.user: postgres\n");
    let router =
        "transforms:\n  - name: route\n    type: RegexRouter\n    regex: pg\\.public\\.(.*)\n    replacement: $1\n";
    let grant = format!("grants:\n  postgres:\n    - host: 127.0.0.1\n      port: {port}\n      database: target\n");
    format!(
        "name: cdc\nconnector.class: postgres-cdc\nconfig:\n{connection}  database.dbname: postgres\n  topic.prefix: pg\n  \
         slot.name: weir_round_trip\n  table.include.list: public\\.pgbench_.*\n  time.precision.mode: iso\n\
         grants:\n  postgres:\n    - host: 127.0.0.1\n      port: {port}\n      database: postgres\n\
         ---\n\
         name: pgbench-sink\nconnector.class: postgres-sink\nconfig:\n{connection}  database.dbname: target\n  \
         topics: pg.public.pgbench_accounts,pg.public.pgbench_tellers,pg.public.pgbench_branches,pg.public.pgbench_history\n  \
         insert.mode: upsert\n  pk.mode: record_key\n  delete.enabled: true\n{router}{grant}\
         ---\n\
         name: history-log\nconnector.class: postgres-sink\nconfig:\n{connection}  database.dbname: target\n  \
         topics: pg.public.pgbench_history\n  table.name.format: history_log\n  insert.mode: insert\n  pk.mode: kafka\n  \
         auto.create: true\n  debezium.unwrap: false\n{grant}"
    )
}

#[test]
fn pgsink_cdc_round_trip_under_pgbench_with_two_sigkills_matches_the_source_row_for_row() {
    let postgres = Arc::new(Postgres::start());
    pgbench(&postgres, "postgres", &["-i", "-q", "-s", "1"]);
    postgres.sql("CREATE DATABASE target");
    // The same tables, empty, with their primary keys ("d"rop, "t"ables, "p"rimary keys).
    pgbench(&postgres, "target", &["-i", "-q", "-I", "dtp", "-s", "1"]);
    // History has no key; give it one on both sides (pgbench names its columns when inserting),
    // so its events can be upserted.
    for database in ["postgres", "target"] {
        postgres.sql_in(database, "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("round-trip.yaml");
    std::fs::write(&manifest, round_trip_manifest(postgres.port)).expect("write manifest");

    // TPC-B at a bounded rate, running through both kills.
    let workload = {
        let postgres = postgres.clone();
        std::thread::spawn(move || pgbench(&postgres, "postgres", &["-n", "-c", "2", "-R", "200", "-T", "60"]))
    };
    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
    // Both kills while changes stream (a kill during the snapshot makes postgres-cdc read rows
    // again, which an insert-only table would keep twice: that is the source's contract, not
    // the sink's).
    let at_first = crate::support::wait_until(
        "the snapshot in the target and changes streaming",
        Duration::from_secs(180),
        || {
            let accounts = count(&postgres, "target", "pgbench_accounts");
            let history = count(&postgres, "target", "pgbench_history");
            (
                accounts == 100_000 && history >= 500,
                (accounts, history, weir.stderr_text().lines().rev().take(3).collect::<Vec<_>>().join("\n")),
            )
        },
    );
    weir.kill9();
    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
    let history_before = count(&postgres, "target", "pgbench_history");
    let at_second = crate::support::wait_until("more changes in the target", Duration::from_secs(180), || {
        let history = count(&postgres, "target", "pgbench_history");
        (
            history >= history_before + 1_000,
            (history, weir.stderr_text().lines().rev().take(3).collect::<Vec<_>>().join("\n")),
        )
    });
    weir.kill9();
    let running = !workload.is_finished();
    let weir = crate::support::WeirProcess::start(dir.path(), std::slice::from_ref(&manifest), &[]);
    let report = workload.join().expect("pgbench finishes");
    assert!(running, "the workload ended before the second kill: make it longer");
    let transactions =
        report.lines().find(|line| line.contains("transactions actually processed")).unwrap_or("").to_owned();

    let source = pgbench_rows(&postgres, "postgres");
    let differing = |target: &BTreeMap<&'static str, String>| -> Vec<(&'static str, usize, usize)> {
        source
            .iter()
            .filter(|(table, rows)| target.get(*table) != Some(rows))
            .map(|(table, rows)| {
                (*table, rows.lines().count(), target.get(*table).map_or(0, |rows| rows.lines().count()))
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut last = Vec::new();
    let history = count(&postgres, "postgres", "pgbench_history");
    let mut logged = -1;
    while std::time::Instant::now() < deadline {
        last = differing(&pgbench_rows(&postgres, "target"));
        // history_log has caught up when it holds a row per source row at least and stopped growing.
        let now = postgres.sql_in("target", "SELECT count(*) FROM history_log").parse().unwrap_or(-1);
        if last.is_empty() && now >= history && now == logged {
            break;
        }
        logged = now;
        #[allow(clippy::disallowed_methods, reason = "a synchronous process test: no executor here")]
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, _, stderr) = weir.terminate(Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
    // Every history event the topic holds is in `history_log` exactly once (its primary key is
    // the event's offset), whatever was replayed after the kills.
    let events = tokio::runtime::Runtime::new().expect("a runtime").block_on(async {
        let log = weir_runtime::log::EmbeddedLog::open(dir.path().join("data").join("log"), Default::default())
            .await
            .expect("open the log");
        crate::cdc::read_log(&log, "pg.public.pgbench_history").await
    });
    let logged = postgres
        .sql_in("target", "SELECT count(*), count(DISTINCT __connect_offset), max(__connect_offset) FROM history_log");
    assert_eq!(logged, format!("{0}|{0}|{1}", events.len(), events.len() - 1), "history_log holds each event once");
    // postgres-cdc's part, reported, not asserted: the same change (same row, same LSN) twice
    // in the topic. The upserting sink makes the table right regardless.
    let mut seen = std::collections::HashMap::new();
    for (_, value) in &events {
        *seen.entry((value["after"].to_string(), value["source"]["lsn"].to_string())).or_insert(0) += 1;
    }
    let repeated = seen.values().filter(|times| **times > 1).count();
    assert!(last.is_empty(), "(table, source rows, target rows) differing: {last:?}; {} history events", events.len());
    let sums = postgres.sql_in(
        "target",
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history) \
           AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history) \
           AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history)",
    );
    assert_eq!(sums, "t");
    assert!(history > history_before, "changes streamed after the kills");
    eprintln!(
        "pgsink round trip: {history} history rows, 100000 accounts; kills at {} and {} history rows in the target; \
         {transactions}; {} history events in the topic, {repeated} of them repeated by postgres-cdc",
        at_first.1,
        at_second.0,
        events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsink_is_fenced_off_when_another_instance_moved_its_offsets() {
    let postgres = Postgres::start();
    postgres.sql("CREATE DATABASE target");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    let numbers = |range: std::ops::Range<i64>| -> Vec<(Option<Value>, Option<Value>)> {
        range.map(|n| (Some(json!({"n": n})), Some(json!({"n": n, "v": "first"})))).collect()
    };
    produce(&worker, "fenced", &numbers(0..5)).await;
    let definition = sink(
        "fenced-pg",
        &postgres,
        json!({ "topics": "fenced", "insert.mode": "upsert", "pk.mode": "record_key", "auto.create": true }),
    );
    worker.herder().create(definition).await.expect("create the sink");
    wait_for_rows(&worker, &postgres, "SELECT to_regclass('fenced') IS NOT NULL", "t").await;
    wait_for_rows(&worker, &postgres, "SELECT count(*) FROM fenced", "5").await;
    // Another instance of the task (a zombie, say) wrote records 5..=7 and moved the offsets.
    postgres.sql_in(
        "target",
        "INSERT INTO fenced VALUES (5, 'other'), (6, 'other'), (7, 'other'); \
         UPDATE __weir_sink_offsets SET kafka_offset = 7 WHERE topic = 'fenced'",
    );
    let mut next = numbers(5..10);
    for (_, value) in &mut next {
        if let Some(value) = value {
            value["v"] = json!("mine");
        }
    }
    produce(&worker, "fenced", &next).await;
    // This instance's compare-and-set expected 4: its transaction rolls back (WSK01), it reads
    // the offsets again and writes only what the other did not.
    wait_for_rows(
        &worker,
        &postgres,
        "SELECT n, v FROM fenced WHERE n >= 5 ORDER BY n",
        "5|other\n6|other\n7|other\n8|mine\n9|mine",
    )
    .await;
    assert_eq!(postgres.sql_in("target", "SELECT kafka_offset FROM __weir_sink_offsets WHERE topic = 'fenced'"), "9");
    let retries = worker.herder().statuses()[0].tasks[0].clone();
    assert_eq!(retries.status.state, State::Running, "{retries:?}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsink_update_mode_changes_existing_rows_only() {
    let postgres = Postgres::start();
    postgres.sql("CREATE DATABASE target");
    postgres.sql_in(
        "target",
        "CREATE TABLE prices (sku text PRIMARY KEY, price numeric(8,2), tags text[]); \
         INSERT INTO prices VALUES ('a', 1, '{x}'), ('b', 2, NULL)",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    produce(
        &worker,
        "prices",
        &[
            (None, Some(json!({"sku": "a", "price": "1.50", "tags": ["y", "z w"]}))),
            (None, Some(json!({"sku": "c", "price": 3}))),
            (None, Some(json!({"sku": "b", "price": 2.25}))),
        ],
    )
    .await;
    let definition = sink(
        "prices-pg",
        &postgres,
        json!({ "topics": "prices", "insert.mode": "update", "pk.mode": "record_value", "pk.fields": "sku" }),
    );
    worker.herder().create(definition).await.expect("create the sink");
    wait_for_rows(&worker, &postgres, "SELECT to_regclass('__weir_sink_offsets') IS NOT NULL", "t").await;
    wait_for_rows(&worker, &postgres, "SELECT kafka_offset FROM __weir_sink_offsets", "2").await;
    assert_eq!(
        postgres.sql_in("target", "SELECT sku, price, tags FROM prices ORDER BY sku"),
        "a|1.50|{y,\"z w\"}\nb|2.25|",
        "a and b updated (b's tags untouched), no row for c"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgsink_inserts_by_copy_keep_every_character_and_a_violating_row_alone_fails() {
    let postgres = Postgres::start();
    postgres.sql("CREATE DATABASE target");
    postgres.sql_in(
        "target",
        "CREATE TABLE notes (n int PRIMARY KEY, body text, tags text[], doc jsonb, blob bytea, qty int CHECK (qty >= 0))",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    // Text with every character COPY's text format escapes, quotes, a lone backslash at the end,
    // `\N` written out, and non-ASCII; record 77 violates the CHECK.
    let body = |n: i64| format!("row {n}\ttab\nline\r\\back 'q' \"dq\" \\N é€ \\");
    let events: Vec<_> = (0..200)
        .map(|n: i64| {
            let qty = if n == 77 { -1 } else { n };
            let doc = json!({"n": n, "text": "a\tb\nc\\d"});
            (None, Some(json!({"n": n, "body": body(n), "tags": ["x\ty", "z\\"], "doc": doc, "blob": "AAEC/w==", "qty": qty})))
        })
        .collect();
    produce(&worker, "notes", &events).await;
    let definition = ConnectorDefinition {
        tolerance: Tolerance::All,
        dead_letter_topic: Some("notes-dlq".into()),
        ..sink("notes-pg", &postgres, json!({ "topics": "notes", "batch.size": 100 }))
    };
    worker.herder().create(definition).await.expect("create the sink");
    wait_for_rows(&worker, &postgres, "SELECT count(*), sum(n) FROM notes", &format!("199|{}", 19900 - 77)).await;
    let dead = crate::cdc::read_log(&**worker.log(), "notes-dlq").await;
    assert_eq!(dead.len(), 1, "only the violating record is dead-lettered: {dead:?}");
    // Each value came back as it was sent (JSON escapes what psql would print raw).
    let stored = postgres.sql_in(
        "target",
        "SELECT json_agg(json_build_object('n', n, 'body', body, 'tags', tags, 'doc', doc, \
         'blob', encode(blob, 'hex'), 'qty', qty) ORDER BY n) FROM notes",
    );
    let stored: Value = serde_json::from_str(&stored).expect("rows as JSON");
    let expected: Vec<Value> = (0..200)
        .filter(|n| *n != 77)
        .map(|n: i64| {
            json!({"n": n, "body": body(n), "tags": ["x\ty", "z\\"], "doc": {"n": n, "text": "a\tb\nc\\d"},
                   "blob": "000102ff", "qty": n})
        })
        .collect();
    assert_eq!(stored, Value::Array(expected));

    // Upserts of 100 rows at once go through a staging table: 99 update rows, one (77) is new.
    let upserts: Vec<_> =
        (0..100).map(|n: i64| (None, Some(json!({"n": n, "body": format!("v2\t{n}"), "qty": n + 1})))).collect();
    produce(&worker, "notes-v2", &upserts).await;
    let upsert_sink = sink(
        "notes-v2-pg",
        &postgres,
        json!({ "topics": "notes-v2", "table.name.format": "notes", "insert.mode": "upsert",
                "pk.mode": "record_value", "pk.fields": "n", "batch.size": 100 }),
    );
    worker.herder().create(upsert_sink).await.expect("create the upsert sink");
    wait_for_rows(&worker, &postgres, "SELECT count(*), sum(qty) FROM notes WHERE body LIKE 'v2%'", "100|5050").await;
    assert_eq!(postgres.sql_in("target", "SELECT count(*) FROM notes"), "200");
    assert_eq!(
        postgres.sql_in("target", "SELECT count(*) FROM notes WHERE n < 100 AND body = 'v2' || E'\\t' || n"),
        "100"
    );
    // Columns the upserts did not set are kept.
    assert_eq!(postgres.sql_in("target", "SELECT count(*) FROM notes WHERE n < 100 AND n <> 77 AND tags IS NULL"), "0");
    worker.shutdown().await;
}
