//! `weir bench-cdc`: the `postgres-cdc` connector against `pg_recvlogical`, on one Postgres and
//! the same WAL, in one process, so each run's ratio compares like with like.
//!
//! Every throughput run creates two slots (one per reader) at the same LSN, runs the workload,
//! then lets each reader catch up on the same retained WAL: `pg_recvlogical --plugin=pgoutput`
//! writing to `/dev/null` up to the WAL end, and a worker with the connector streaming into its
//! durable embedded log (flush every batch) until every change is committed there. Both pay the
//! server's decoding; the difference is what each does with the stream.
//!
//! Besides: the snapshot rate (rows/s of a one-table snapshot into the log) and the end-to-end
//! latency from the insert (the row's `clock_timestamp()`, microseconds before its commit) to the
//! record being readable in the log, at a steady insert rate.
//!
//! The Postgres server is the caller's (`tests/bench/cdc.sh` starts a throwaway one); it needs
//! `wal_level=logical` and a superuser over TCP.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use weir_broker::FlushPolicy;
use weir_runtime::Herder as _;
use weir_runtime::log::{EventLog, FetchRequest, TopicConfig};

use weir_runtime::manifest::{ConnectorDefinition, Grants, PostgresGrant};
use weir_runtime::worker::{Worker, WorkerConfig};

const PUBLICATION: &str = "weir_bench";
const SNAPSHOT_PUBLICATION: &str = "weir_bench_snapshot";
const LATENCY_PUBLICATION: &str = "weir_bench_latency";

/// Where the server is and what to run (the `weir bench-cdc` flags).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CdcBenchOptions {
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
    #[arg(long, default_value_t = 5432)]
    pub(crate) port: u16,
    #[arg(long, default_value = "postgres")]
    pub(crate) user: String,
    #[arg(long, default_value = "postgres")]
    pub(crate) database: String,
    /// Where `pg_recvlogical` and `pgbench` are (default: `pg_config --bindir`).
    #[arg(long)]
    pub(crate) bindir: Option<PathBuf>,
    /// Runs per workload; medians are reported.
    #[arg(long, default_value_t = 5)]
    pub(crate) runs: usize,
    /// Rows inserted in the one-transaction workload (and snapshotted).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) rows: u64,
    /// pgbench (TPC-B) clients of the small-transaction workload.
    #[arg(long, default_value_t = 4)]
    pub(crate) pgbench_clients: u32,
    /// pgbench transactions per client.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) pgbench_transactions: u32,
    /// Records per poll of the connector.
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch_size: u32,
    /// Inserts per second of the latency run.
    #[arg(long, default_value_t = 5000)]
    pub(crate) latency_rate: u32,
    /// Seconds of the latency run (0: skip it).
    #[arg(long, default_value_t = 20)]
    pub(crate) latency_seconds: u32,
}

/// A failed benchmark step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CdcBenchError {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the worker: {0}")]
    Worker(#[from] weir_runtime::worker::WorkerError),
    #[error(transparent)]
    Herder(#[from] weir_runtime::HerderError),
    #[error("running {program}: {message}")]
    Tool { program: String, message: String },
    #[error("{0}")]
    Stalled(String),
}

/// One workload's runs.
#[derive(Debug, Clone)]
pub(crate) struct Throughput {
    pub(crate) workload: String,
    pub(crate) changes: u64,
    /// Seconds of each run, in run order.
    pub(crate) weir_seconds: Vec<f64>,
    pub(crate) recvlogical_seconds: Vec<f64>,
    /// CPU seconds (user + system) of each run: weir's process, `pg_recvlogical`'s. The
    /// server's walsender, the same work for both, is not counted.
    pub(crate) weir_cpu_seconds: Vec<f64>,
    pub(crate) recvlogical_cpu_seconds: Vec<f64>,
}

impl Throughput {
    /// Add one run of both readers.
    fn record(&mut self, weir: Measured, recv: Measured) {
        self.weir_seconds.push(weir.seconds);
        self.recvlogical_seconds.push(recv.seconds);
        self.weir_cpu_seconds.push(weir.cpu_seconds);
        self.recvlogical_cpu_seconds.push(recv.cpu_seconds);
    }
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Throughput {
    pub(crate) fn weir_rate(&self) -> f64 {
        self.changes as f64 / median(self.weir_seconds.iter().copied())
    }

    pub(crate) fn recvlogical_rate(&self) -> f64 {
        self.changes as f64 / median(self.recvlogical_seconds.iter().copied())
    }

    /// Median CPU microseconds per change: (weir, pg_recvlogical).
    pub(crate) fn cpu_us_per_change(&self) -> (f64, f64) {
        let per_change = |seconds: &[f64]| median(seconds.iter().copied()) * 1e6 / self.changes as f64;
        (per_change(&self.weir_cpu_seconds), per_change(&self.recvlogical_cpu_seconds))
    }

    /// Median of the per-run ratios weir / pg_recvlogical (each run on the same WAL).
    pub(crate) fn ratio(&self) -> f64 {
        median(self.weir_seconds.iter().zip(&self.recvlogical_seconds).map(|(weir, recv)| recv / weir))
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub(crate) struct CdcBenchReport {
    pub(crate) options: CdcBenchOptions,
    pub(crate) throughput: Vec<Throughput>,
    /// Rows and seconds of each snapshot run.
    pub(crate) snapshot_rows: u64,
    pub(crate) snapshot_seconds: Vec<f64>,
    /// Insert → readable in the log, microseconds, sorted.
    pub(crate) latencies_us: Vec<u64>,
    pub(crate) latency_achieved_rate: f64,
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index] as f64
}

impl fmt::Display for CdcBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "postgres-cdc -> durable log (flush every batch, batch {}) vs pg_recvlogical pgoutput -> /dev/null, \
             median of {} runs",
            self.options.batch_size, self.options.runs
        )?;
        writeln!(
            f,
            "{:<34} {:>9} {:>14} {:>16} {:>7}",
            "workload", "changes", "weir ch/s", "recvlogical ch/s", "ratio"
        )?;
        for run in &self.throughput {
            writeln!(
                f,
                "{:<34} {:>9} {:>14.0} {:>16.0} {:>7.3}",
                run.workload,
                run.changes,
                run.weir_rate(),
                run.recvlogical_rate(),
                run.ratio()
            )?;
            let seconds = |values: &[f64]| values.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(" ");
            writeln!(
                f,
                "  runs (s): weir [{}] recvlogical [{}]",
                seconds(&run.weir_seconds),
                seconds(&run.recvlogical_seconds)
            )?;
            let (weir_cpu, recv_cpu) = run.cpu_us_per_change();
            writeln!(
                f,
                "  CPU per change (client side, user + system): weir {weir_cpu:.2} us, recvlogical {recv_cpu:.2} us"
            )?;
        }
        if !self.snapshot_seconds.is_empty() {
            let runs: Vec<String> = self.snapshot_seconds.iter().map(|s| format!("{s:.2}")).collect();
            writeln!(
                f,
                "snapshot: {} rows, {:.0} rows/s (median; runs {} s)",
                self.snapshot_rows,
                self.snapshot_rows as f64 / median(self.snapshot_seconds.iter().copied()),
                runs.join(" ")
            )?;
        }
        if !self.latencies_us.is_empty() {
            let ms = |fraction: f64| percentile(&self.latencies_us, fraction) / 1000.0;
            writeln!(
                f,
                "latency insert -> readable in the log at {:.0} changes/s ({} samples): p50 {:.2} ms, p99 {:.2} ms, \
                 p99.9 {:.2} ms, max {:.2} ms",
                self.latency_achieved_rate,
                self.latencies_us.len(),
                ms(0.5),
                ms(0.99),
                ms(0.999),
                ms(1.0)
            )?;
        }
        Ok(())
    }
}

struct Bench {
    options: CdcBenchOptions,
    client: tokio_postgres::Client,
    bindir: PathBuf,
    scratch: PathBuf,
}

/// Run every measurement.
///
/// # Errors
/// When Postgres, a tool or the worker fails, or a reader stalls.
pub(crate) async fn run(options: &CdcBenchOptions) -> Result<CdcBenchReport, CdcBenchError> {
    let bindir = match &options.bindir {
        Some(dir) => dir.clone(),
        None => bindir()?,
    };
    let client = connect(options).await?;
    let scratch = std::env::temp_dir().join(format!("weir-bench-cdc-{}", std::process::id()));
    let bench = Bench { options: options.clone(), client, bindir, scratch };
    let result = bench.run_all().await;
    let _ = std::fs::remove_dir_all(&bench.scratch);
    bench.cleanup().await;
    result
}

async fn connect(options: &CdcBenchOptions) -> Result<tokio_postgres::Client, CdcBenchError> {
    let mut config = tokio_postgres::Config::new();
    config.host(&options.host).port(options.port).user(&options.user).dbname(&options.database);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "bench SQL session ended");
        }
    });
    Ok(client)
}

fn bindir() -> Result<PathBuf, CdcBenchError> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("pg_recvlogical").exists() {
            return Ok(dir);
        }
    }
    ["17", "16", "15"]
        .iter()
        .map(|version| PathBuf::from(format!("/usr/lib/postgresql/{version}/bin")))
        .find(|dir| dir.join("pg_recvlogical").exists())
        .ok_or_else(|| CdcBenchError::Tool {
            program: "pg_recvlogical".into(),
            message: "not found (install postgresql-15, or pass --bindir)".into(),
        })
}

impl Bench {
    async fn run_all(&self) -> Result<CdcBenchReport, CdcBenchError> {
        self.setup().await?;
        let options = &self.options;
        let mut bulk = Throughput {
            workload: format!("{} inserts in one transaction", options.rows),
            changes: options.rows,
            weir_seconds: Vec::new(),
            recvlogical_seconds: Vec::new(),
            weir_cpu_seconds: Vec::new(),
            recvlogical_cpu_seconds: Vec::new(),
        };
        let transactions = u64::from(options.pgbench_clients) * u64::from(options.pgbench_transactions);
        let mut mix = Throughput {
            workload: format!("pgbench TPC-B, {transactions} transactions"),
            // Three updates and one insert per TPC-B transaction.
            changes: transactions * 4,
            weir_seconds: Vec::new(),
            recvlogical_seconds: Vec::new(),
            weir_cpu_seconds: Vec::new(),
            recvlogical_cpu_seconds: Vec::new(),
        };
        let mut snapshot_seconds = Vec::new();
        for run in 0..options.runs {
            let (weir, recv) = self.throughput_run(run, "bulk", bulk.changes).await?;
            tracing::info!(run, weir = weir.seconds, recv = recv.seconds, "bulk run");
            bulk.record(weir, recv);
            // The bulk rows are there now: snapshot them.
            let seconds = self.snapshot_run(run).await?;
            tracing::info!(run, seconds, "snapshot run");
            snapshot_seconds.push(seconds);
            let (weir, recv) = self.throughput_run(run, "pgbench", mix.changes).await?;
            tracing::info!(run, weir = weir.seconds, recv = recv.seconds, "pgbench run");
            mix.record(weir, recv);
        }
        let (latencies_us, latency_achieved_rate) =
            if options.latency_seconds > 0 { self.latency_run().await? } else { (Vec::new(), 0.0) };
        Ok(CdcBenchReport {
            options: options.clone(),
            throughput: vec![bulk, mix],
            snapshot_rows: options.rows,
            snapshot_seconds,
            latencies_us,
            latency_achieved_rate,
        })
    }

    async fn setup(&self) -> Result<(), CdcBenchError> {
        self.cleanup().await;
        self.tool(
            "pgbench",
            &["-i", "-s", "1", "-q", "-n"],
            "initialising the pgbench tables (pgbench_accounts: 100,000 rows)",
        )?;
        self.client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS bench_rows, bench_latency; \
                 CREATE TABLE bench_rows (id bigint PRIMARY KEY, account int NOT NULL, amount numeric(12,2), \
                   note text, at timestamptz NOT NULL DEFAULT now()); \
                 CREATE TABLE bench_latency (id bigserial PRIMARY KEY, written_us int8 NOT NULL); \
                 CREATE PUBLICATION {PUBLICATION} FOR TABLE bench_rows, pgbench_accounts, pgbench_tellers, \
                   pgbench_branches, pgbench_history; \
                 CREATE PUBLICATION {SNAPSHOT_PUBLICATION} FOR TABLE bench_rows; \
                 CREATE PUBLICATION {LATENCY_PUBLICATION} FOR TABLE bench_latency;"
            ))
            .await?;
        Ok(())
    }

    /// Drop what the benchmark made (slots first: they pin WAL).
    async fn cleanup(&self) {
        let _ = self
            .client
            .batch_execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'weir_bench%'",
            )
            .await;
        for publication in [PUBLICATION, SNAPSHOT_PUBLICATION, LATENCY_PUBLICATION] {
            let _ = self.client.batch_execute(&format!("DROP PUBLICATION IF EXISTS {publication}")).await;
        }
    }

    fn tool(&self, program: &str, args: &[&str], what: &str) -> Result<String, CdcBenchError> {
        let options = &self.options;
        let port = options.port.to_string();
        let output = Command::new(self.bindir.join(program))
            .args(["-h", &options.host, "-p", &port, "-U", &options.user, "-d", &options.database])
            .args(args)
            .output()
            .map_err(|error| CdcBenchError::Tool { program: program.into(), message: format!("{what}: {error}") })?;
        if !output.status.success() {
            return Err(CdcBenchError::Tool {
                program: program.into(),
                message: format!("{what}: {}", String::from_utf8_lossy(&output.stderr)),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    async fn create_slot(&self, slot: &str) -> Result<(), CdcBenchError> {
        self.client.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[&slot]).await?;
        Ok(())
    }

    async fn drop_slot(&self, slot: &str) -> Result<(), CdcBenchError> {
        self.client.execute("SELECT pg_drop_replication_slot($1)", &[&slot]).await?;
        Ok(())
    }

    /// One workload, then both readers on its WAL: (weir seconds, pg_recvlogical seconds).
    async fn throughput_run(
        &self,
        run: usize,
        workload: &str,
        changes: u64,
    ) -> Result<(Measured, Measured), CdcBenchError> {
        let (recv_slot, weir_slot) = ("weir_bench_recv", "weir_bench_weir");
        self.client.batch_execute("TRUNCATE bench_rows").await?;
        self.create_slot(recv_slot).await?;
        self.create_slot(weir_slot).await?;
        match workload {
            "bulk" => {
                self.client
                    .execute(
                        "INSERT INTO bench_rows (id, account, amount, note) \
                         SELECT i, i % 1000, (i % 100000) / 100.0, 'note ' || i FROM generate_series(1, $1::int8) i",
                        &[&i64::try_from(changes).unwrap_or(i64::MAX)],
                    )
                    .await?;
            }
            _ => {
                let clients = self.options.pgbench_clients.to_string();
                let transactions = self.options.pgbench_transactions.to_string();
                self.tool("pgbench", &["-n", "-c", &clients, "-j", "2", "-t", &transactions], "running pgbench")?;
            }
        }
        let end: String = self.client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);
        // Alternate which reader goes first, so page-cache warmth favours neither.
        let (weir, recv) = if run.is_multiple_of(2) {
            let recv = self.recvlogical(recv_slot, &end)?;
            (self.weir_catch_up(weir_slot, changes).await?, recv)
        } else {
            let weir = self.weir_catch_up(weir_slot, changes).await?;
            (weir, self.recvlogical(recv_slot, &end)?)
        };
        self.drop_slot(recv_slot).await?;
        self.drop_slot(weir_slot).await?;
        Ok((weir, recv))
    }

    fn recvlogical(&self, slot: &str, end: &str) -> Result<Measured, CdcBenchError> {
        let publication = format!("publication_names={PUBLICATION}");
        let endpos = format!("--endpos={end}");
        let (_, children_before) = cpu_seconds();
        let started = Instant::now();
        self.tool(
            "pg_recvlogical",
            &[
                "-S",
                slot,
                "--start",
                "--no-loop",
                &endpos,
                "-o",
                "proto_version=1",
                "-o",
                &publication,
                "-f",
                "/dev/null",
            ],
            "streaming the slot",
        )?;
        let seconds = started.elapsed().as_secs_f64();
        // A waited-for child's CPU time lands in this process's `cutime` / `cstime`.
        let (_, children_after) = cpu_seconds();
        Ok(Measured { seconds, cpu_seconds: children_after - children_before })
    }

    fn definition(&self, slot: &str, publication: &str, snapshot_mode: &str) -> ConnectorDefinition {
        let options = &self.options;
        let config = serde_json::json!({
            "database.hostname": options.host,
            "database.port": options.port,
            "database.user": options.user,
            "database.dbname": options.database,
            "topic.prefix": "bench",
            "slot.name": slot,
            "publication.name": publication,
            "publication.autocreate.mode": "disabled",
            "snapshot.mode": snapshot_mode,
            "snapshot.fetch.size": options.batch_size,
        });
        let mut grants = Grants::default();
        grants.postgres.push(PostgresGrant {
            host: options.host.clone(),
            port: options.port,
            database: options.database.clone(),
        });
        ConnectorDefinition {
            name: "bench-cdc".into(),
            class: "postgres-cdc".into(),
            tasks_max: 1,
            default_partitions: Some(1),
            config: config.as_object().cloned().unwrap_or_default(),
            grants,
            ..ConnectorDefinition::default()
        }
    }

    async fn worker(&self, name: &str) -> Result<Worker, CdcBenchError> {
        let dir = self.scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = WorkerConfig::new(dir);
        config.flush = FlushPolicy::EveryBatch;
        config.batch_size = self.options.batch_size;
        config.default_partitions = 1;
        Ok(Worker::start(config).await?)
    }

    /// Seconds from creating the connector until `records` records are committed in the log.
    async fn until_committed(&self, worker: &Worker, records: u64) -> Result<f64, CdcBenchError> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(900);
        loop {
            let snapshot = worker.herder().status("bench-cdc");
            let tasks = snapshot.as_ref().map(|connector| connector.tasks.as_slice()).unwrap_or_default();
            let done: u64 = tasks.iter().map(|task| task.records).sum();
            if done >= records {
                return Ok(started.elapsed().as_secs_f64());
            }
            if let Some(failed) = tasks.iter().find(|task| task.status.state == weir_runtime::task::State::Failed) {
                return Err(CdcBenchError::Stalled(format!("the CDC task failed: {:?}", failed.status.trace)));
            }
            if Instant::now() > deadline {
                return Err(CdcBenchError::Stalled(format!("only {done} of {records} records after 900 s")));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn weir_catch_up(&self, slot: &str, changes: u64) -> Result<Measured, CdcBenchError> {
        let worker = self.worker("stream").await?;
        let (own_before, _) = cpu_seconds();
        let started = Instant::now();
        worker.herder().create(self.definition(slot, PUBLICATION, "never")).await?;
        let result = self.until_committed(&worker, changes).await;
        let seconds = started.elapsed().as_secs_f64();
        let (own_after, _) = cpu_seconds();
        worker.shutdown().await;
        result.map(|_| Measured { seconds, cpu_seconds: own_after - own_before })
    }

    async fn snapshot_run(&self, run: usize) -> Result<f64, CdcBenchError> {
        let slot = format!("weir_bench_snapshot_{run}");
        let worker = self.worker("snapshot").await?;
        let started = Instant::now();
        worker.herder().create(self.definition(&slot, SNAPSHOT_PUBLICATION, "initial_only")).await?;
        let result = self.until_committed(&worker, self.options.rows).await;
        let seconds = started.elapsed().as_secs_f64();
        worker.shutdown().await;
        self.drop_slot(&slot).await?;
        result.map(|_| seconds)
    }

    /// Insert at a steady rate (four sessions, each paced) while a reader tails the topic.
    async fn latency_run(&self) -> Result<(Vec<u64>, f64), CdcBenchError> {
        let options = &self.options;
        let worker = self.worker("latency").await?;
        let topic = "bench.public.bench_latency";
        worker
            .log()
            .ensure_topic(topic, TopicConfig { partitions: 1, ..TopicConfig::default() })
            .await
            .map_err(|error| CdcBenchError::Stalled(format!("creating {topic}: {error}")))?;
        worker.herder().create(self.definition("weir_bench_latency", LATENCY_PUBLICATION, "never")).await?;
        // Let the connector create its slot and start streaming before the clock starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let slot = self
                .client
                .query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'weir_bench_latency' AND active", &[])
                .await?;
            if !slot.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(CdcBenchError::Stalled("the latency connector did not start streaming".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let total = u64::from(options.latency_rate) * u64::from(options.latency_seconds);
        let reader = tokio::spawn(tail(worker.log().clone(), topic.to_owned(), total));
        let sessions = 4u64;
        let started = Instant::now();
        let mut writers = Vec::new();
        for session in 0..sessions {
            let client = connect(options).await?;
            let count = total / sessions + u64::from(session < total % sessions);
            let interval = Duration::from_secs_f64(sessions as f64 / f64::from(options.latency_rate.max(1)));
            writers.push(tokio::spawn(async move {
                let statement = client
                    .prepare(
                        "INSERT INTO bench_latency (written_us) \
                         VALUES ((extract(epoch FROM clock_timestamp()) * 1000000)::int8)",
                    )
                    .await?;
                for index in 0..count {
                    tokio::time::sleep_until((started + interval.mul_f64(index as f64)).into()).await;
                    client.execute(&statement, &[]).await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            }));
        }
        for writer in writers {
            writer.await.map_err(|error| CdcBenchError::Stalled(format!("a writer panicked: {error}")))??;
        }
        let achieved = total as f64 / started.elapsed().as_secs_f64();
        let latencies =
            reader.await.map_err(|error| CdcBenchError::Stalled(format!("the reader panicked: {error}")))?;
        worker.shutdown().await;
        self.drop_slot("weir_bench_latency").await?;
        let mut latencies = latencies?;
        // The first second warms up (connections, the first relation message).
        let skip = usize::try_from(u64::from(options.latency_rate)).unwrap_or(0).min(latencies.len() / 2);
        let mut steady = latencies.split_off(skip);
        steady.sort_unstable();
        Ok((steady, achieved))
    }
}

/// One reader's run.
#[derive(Debug, Clone, Copy)]
struct Measured {
    seconds: f64,
    cpu_seconds: f64,
}

/// CPU seconds (user + system) of this process and of its waited-for children, from
/// `/proc/self/stat` (in clock ticks: Linux's `USER_HZ` is 100). NaN where there is no procfs.
fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (f64::NAN, f64::NAN) };
    // After the command name in parentheses, the fields from 3 (`state`) on; utime, stime,
    // cutime and cstime are fields 14 to 17.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |field: usize| fields.get(field - 3).and_then(|value| value.parse::<f64>().ok()).unwrap_or(f64::NAN);
    ((ticks(14) + ticks(15)) / 100.0, (ticks(16) + ticks(17)) / 100.0)
}

/// Follow `topic` until `total` records were read: for each, now minus its `written_us`, in order.
async fn tail(log: std::sync::Arc<dyn EventLog>, topic: String, total: u64) -> Result<Vec<u64>, CdcBenchError> {
    let failed = |error: &dyn fmt::Display| CdcBenchError::Stalled(format!("reading {topic}: {error}"));
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut from = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while (latencies.len() as u64) < total {
        let request = FetchRequest { topic: topic.clone(), partition: 0, from };
        let fetched = log.fetch(vec![request.clone()], 1 << 20, usize::MAX).await.map_err(|error| failed(&error))?;
        let Some(records) = fetched.into_iter().next().map(|partition| partition.records) else {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !log.wait_for_data(&[request], left).await.map_err(|error| failed(&error))? {
                return Err(CdcBenchError::Stalled(format!("only {} records in {topic}", latencies.len())));
            }
            continue;
        };
        let now_us = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros());
        for record in records {
            from = record.offset + 1;
            let Some(value) = record.value else { continue };
            let envelope: serde_json::Value = serde_json::from_slice(&value).map_err(|error| failed(&error))?;
            let written = envelope["after"]["written_us"].as_i64().unwrap_or(0);
            latencies.push(u64::try_from(now_us as i128 - i128::from(written)).unwrap_or(0));
        }
    }
    Ok(latencies)
}
