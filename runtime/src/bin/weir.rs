//! `weir`: run connectors from YAML manifests on an embedded log, or benchmark the pipeline.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use weir_broker::FlushPolicy;
use weir_runtime::manifest::line_of_key_in;
use weir_runtime::rest::{ApiState, LogLevels};
use weir_runtime::{Herder, ManifestError, ManifestFile, Worker, WorkerConfig};

use crate::bench::BenchOptions;
use crate::bench::cdc::CdcBenchOptions;
use crate::bench::http::HttpBenchOptions;

#[path = "weir/bench/mod.rs"]
mod bench;
#[path = "weir/cli.rs"]
mod cli;
#[path = "weir/kafka.rs"]
mod kafka;

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "A connector runtime: sandboxed WebAssembly connectors around an embedded event log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a standalone worker with the connectors of the given manifests.
    Run {
        /// Manifest files (YAML; several connectors per file separated by `---`).
        manifests: Vec<PathBuf>,
        /// Where the log, offsets and compiled components live.
        #[arg(long, env = "WEIR_DATA_DIR", default_value = "./weir-data")]
        data_dir: PathBuf,
        /// A directory of extra connector components (`*.wasm`).
        #[arg(long, env = "WEIR_PLUGIN_DIR")]
        plugin_dir: Option<PathBuf>,
        /// When appends are fsynced: `every-batch`, `never`, or an interval like `100ms`.
        #[arg(long, env = "WEIR_FLUSH", default_value = "every-batch", value_parser = parse_flush)]
        flush: FlushPolicy,
        /// Seconds between progress lines (0: none).
        #[arg(long, default_value_t = 5)]
        progress_interval: u64,
        /// Where the REST API listens (Kafka Connect's port by default; loopback only unless
        /// set otherwise).
        #[arg(long, env = "WEIR_REST_LISTEN", default_value = "127.0.0.1:8083")]
        rest_listen: SocketAddr,
        /// How often topics' `retention.ms` and `retention.bytes` are enforced, deleting whole
        /// old segments (Kafka's `log.retention.check.interval.ms`).
        #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
        retention_check_interval_ms: u64,
        #[command(flatten)]
        kafka: kafka::RunKafkaArgs,
    },
    /// Serve the log alone over the Kafka protocol: any Kafka producer, consumer or consumer
    /// group works against it (one node; no replication, transactions, SASL or TLS).
    Broker(kafka::BrokerArgs),
    /// Manage the connectors of a running worker through its REST API.
    Connectors(cli::ConnectorsArgs),
    /// Check manifests against the plugins' schemas without running anything.
    Validate {
        manifests: Vec<PathBuf>,
        #[arg(long, env = "WEIR_PLUGIN_DIR")]
        plugin_dir: Option<PathBuf>,
    },
    /// List the available connector plugins.
    Plugins {
        #[arg(long, env = "WEIR_PLUGIN_DIR")]
        plugin_dir: Option<PathBuf>,
    },
    /// Benchmark datagen → log → blackhole, as WASM components and compiled natively, in one run.
    Bench {
        /// Records per run.
        #[arg(long, default_value_t = 500_000)]
        records: u64,
        /// Value sizes in bytes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,1024")]
        value_sizes: Vec<usize>,
        /// Runs per configuration; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Records per poll and per put.
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
        /// Partitions of the benchmark topic.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        #[arg(long, default_value = "every-batch", value_parser = parse_flush)]
        flush: FlushPolicy,
    },
    /// Peak memory of a worker whose sink is slower than its source, next to one whose sink
    /// keeps up: two `weir run` processes, datagen → blackhole, sampled from /proc.
    BenchBackpressure {
        /// Seconds each process runs.
        #[arg(long, default_value_t = 180)]
        seconds: u64,
        /// The slow sink's time per put (of up to 1000 records), in ms.
        #[arg(long, default_value_t = 50)]
        delay_ms: u64,
        /// Bytes of each record's value. The log keeps everything the source writes: at 1024 B
        /// a 180 s run can write some 40 GB to the temporary directory.
        #[arg(long, default_value_t = 100)]
        value_size: usize,
    },
    /// Benchmark the postgres-cdc connector against pg_recvlogical on a running Postgres
    /// (`wal_level=logical`, superuser; tests/bench/cdc.sh starts a throwaway one).
    BenchCdc(CdcBenchOptions),
    /// Benchmark the http-sink connector against a plain client POSTing the same batches to one
    /// receiver on loopback.
    BenchHttp(HttpBenchOptions),
}

pub(crate) fn parse_flush(text: &str) -> Result<FlushPolicy, String> {
    match text {
        "every-batch" => Ok(FlushPolicy::EveryBatch),
        "never" => Ok(FlushPolicy::Never),
        other => {
            let millis = other
                .strip_suffix("ms")
                .and_then(|number| number.parse::<u64>().ok())
                .ok_or_else(|| format!("expected `every-batch`, `never` or an interval like `100ms`, got `{other}`"))?;
            Ok(FlushPolicy::Interval(Duration::from_millis(millis)))
        }
    }
}

fn main() -> ExitCode {
    // The filter sits behind a reload handle so that `/admin/loggers` can change it live.
    let initial =
        std::env::var("WEIR_LOG").ok().filter(|text| EnvFilter::try_new(text).is_ok()).unwrap_or_else(|| "info".into());
    let (filter, reload) = tracing_subscriber::reload::Layer::new(EnvFilter::new(&initial));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                // Scrubs values resolved from config providers: a component may log its config.
                .with_writer(|| weir_runtime::config_provider::ScrubbingWriter)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let log_levels = Arc::new(LogLevels::new(&initial, move |text| {
        let filter = EnvFilter::try_new(text).map_err(|error| error.to_string())?;
        reload.reload(filter).map_err(|error| error.to_string())
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, log_levels)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, log_levels: Arc<LogLevels>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            manifests,
            data_dir,
            plugin_dir,
            flush,
            progress_interval,
            rest_listen,
            retention_check_interval_ms,
            kafka,
        } => {
            let mut config = WorkerConfig::new(data_dir);
            config.plugin_dir = plugin_dir;
            config.flush = flush;
            let listeners = Listeners {
                rest: rest_listen,
                kafka,
                retention_check: Duration::from_millis(retention_check_interval_ms),
            };
            run_worker(config, &manifests, progress_interval, listeners, log_levels).await
        }
        Command::Broker(args) => kafka::run_broker(args).await,
        Command::Connectors(args) => cli::run(args).await,
        Command::Validate { manifests, plugin_dir } => {
            let scratch = tempfile_dir()?;
            let mut config = WorkerConfig::new(scratch.join("data"));
            config.plugin_dir = plugin_dir;
            let files = match load_manifests(&manifests) {
                Ok(files) => files,
                Err(code) => return Ok(code),
            };
            let worker = Worker::start(config).await.context("while starting the worker")?;
            let code = match validate_all(&worker, &files).await {
                Ok(()) => {
                    println!("{} manifest(s) valid", files.len());
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            };
            let _ = std::fs::remove_dir_all(&scratch);
            Ok(code)
        }
        Command::Plugins { plugin_dir } => {
            let scratch = tempfile_dir()?;
            let mut config = WorkerConfig::new(scratch.join("data"));
            config.plugin_dir = plugin_dir;
            let worker = Worker::start(config).await.context("while loading the plugins")?;
            println!("{:<16} {:<7} {:<9} DESCRIPTION", "NAME", "KIND", "VERSION");
            for plugin in worker.plugins().plugins() {
                let spec = plugin.spec();
                println!(
                    "{:<16} {:<7} {:<9} {}",
                    spec.name,
                    format!("{:?}", spec.kind).to_lowercase(),
                    spec.version,
                    spec.description
                );
            }
            let _ = std::fs::remove_dir_all(&scratch);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { records, value_sizes, runs, batch_size, partitions, flush } => {
            let options = BenchOptions { records, value_sizes, runs, batch_size, partitions, flush };
            let report = bench::run(&options).await.context("while benchmarking")?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchBackpressure { seconds, delay_ms, value_size } => {
            let exe = std::env::current_exe().context("while finding the weir binary")?;
            let options = bench::backpressure::BackpressureOptions { exe, seconds, delay_ms, value_size };
            let report = bench::backpressure::run(&options).await.context("while benchmarking back-pressure")?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchCdc(options) => {
            let report = bench::cdc::run(&options).await.context("while benchmarking CDC")?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchHttp(options) => {
            let report = bench::http::run(&options).await.context("while benchmarking the HTTP sink")?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("weir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    Ok(dir)
}

/// Parse every manifest, printing every error; connector names must be unique.
fn load_manifests(paths: &[PathBuf]) -> Result<Vec<ManifestFile>, ExitCode> {
    let mut files = Vec::new();
    let mut failed = false;
    let mut names = HashSet::new();
    for path in paths {
        match ManifestFile::load(path) {
            Ok(file) => {
                for definition in &file.definitions {
                    if !names.insert(definition.name.clone()) {
                        let error = ManifestError {
                            file: file.path.clone(),
                            line: line_of_key_in(&file.text, "name"),
                            field: Some("name".into()),
                            message: format!("a connector named `{}` is already defined", definition.name),
                        };
                        eprintln!("error: {error}");
                        failed = true;
                    }
                }
                files.push(file);
            }
            Err(error) => {
                eprintln!("error: {error}");
                failed = true;
            }
        }
    }
    if failed { Err(ExitCode::from(2)) } else { Ok(files) }
}

/// Check every definition against its plugin, printing every error with file, line and field.
async fn validate_all(worker: &Worker, files: &[ManifestFile]) -> Result<(), ExitCode> {
    let mut failed = false;
    for file in files {
        for (index, definition) in file.definitions.iter().enumerate() {
            if let Err(errors) = worker.herder().validate(definition).await {
                for error in errors {
                    eprintln!("error: {}", file.field_error(index, &error.field, &error.message));
                }
                failed = true;
            }
        }
    }
    if failed { Err(ExitCode::from(2)) } else { Ok(()) }
}

/// What `weir run` listens on.
struct Listeners {
    rest: SocketAddr,
    kafka: kafka::RunKafkaArgs,
    /// Not a listener: how often retention runs on the log the listeners share.
    retention_check: Duration,
}

async fn run_worker(
    config: WorkerConfig,
    manifests: &[PathBuf],
    progress_interval: u64,
    listeners: Listeners,
    log_levels: Arc<LogLevels>,
) -> anyhow::Result<ExitCode> {
    let rest_listen = listeners.rest;
    let files = match load_manifests(manifests) {
        Ok(files) => files,
        Err(code) => return Ok(code),
    };
    let data_dir = config.data_dir.clone();
    let worker =
        Worker::start(config).await.with_context(|| format!("while starting the worker in {}", data_dir.display()))?;
    if let Err(code) = validate_all(&worker, &files).await {
        worker.shutdown().await;
        return Ok(code);
    }
    // Connectors stored by an earlier run come back in their target state; then the manifests
    // are applied through the same model as `PUT /connectors/{name}/config` (create, or update
    // keeping the target state).
    worker.restore().await;
    for file in &files {
        for definition in &file.definitions {
            worker.herder().put(definition.clone(), None).await.with_context(|| {
                format!("while starting connector {} from {}", definition.name, file.path.display())
            })?;
        }
    }
    let stop_rest = tokio_util::sync::CancellationToken::new();
    let state = ApiState { herder: worker.herder_handle(), log_levels: Some(log_levels) };
    let rest_stopped = stop_rest.clone();
    let (bound, server) =
        match weir_runtime::rest::serve(rest_listen, state, async move { rest_stopped.cancelled().await }).await {
            Ok(serving) => serving,
            Err(error) => {
                worker.shutdown().await;
                return Err(error).with_context(|| format!("while binding the REST API to {rest_listen}"));
            }
        };
    tracing::info!(address = %bound, "REST API listening");
    let stop_retention = tokio_util::sync::CancellationToken::new();
    let retention = worker.embedded_log().map(|embedded| {
        let log = Arc::clone(embedded.broker());
        tokio::spawn(kafka::enforce_retention(log, listeners.retention_check, stop_retention.clone()))
    });
    let stop_kafka = tokio_util::sync::CancellationToken::new();
    let (kafka_note, kafka_server) = match kafka::start_listener(&worker, &listeners.kafka, stop_kafka.clone()).await {
        Ok(Some((address, server))) => (format!("; Kafka on {address}"), Some(server)),
        Ok(None) => (String::new(), None),
        Err(error) => {
            stop_retention.cancel();
            stop_rest.cancel();
            let _ = server.await;
            worker.shutdown().await;
            return Err(error);
        }
    };
    println!(
        "weir: running {} connector(s); REST API on http://{bound}{kafka_note}; data in {}; Ctrl-C to stop",
        worker.herder().statuses().len(),
        data_dir.display()
    );
    let started = Instant::now();
    let mut previous: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let interval = Duration::from_secs(progress_interval.max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick(), if progress_interval > 0 => {
                println!("{}", progress_line(&worker, started.elapsed(), interval, &mut previous));
            }
        }
    }
    println!("weir: stopping (finishing batches, flushing, committing)");
    stop_kafka.cancel();
    if let Some(kafka_server) = kafka_server {
        let _ = kafka_server.await;
    }
    stop_rest.cancel();
    let _ = server.await;
    stop_retention.cancel();
    if let Some(retention) = retention {
        let _ = retention.await;
    }
    worker.shutdown().await;
    println!("{}", progress_line(&worker, started.elapsed(), interval, &mut previous));
    println!("weir: stopped");
    Ok(ExitCode::SUCCESS)
}

fn progress_line(
    worker: &Worker,
    elapsed: Duration,
    interval: Duration,
    previous: &mut std::collections::HashMap<String, u64>,
) -> String {
    let mut parts = Vec::new();
    for connector in worker.herder().statuses() {
        let records: u64 = connector.tasks.iter().map(|task| task.records).sum();
        let before = previous.insert(connector.name.clone(), records).unwrap_or(0);
        let rate = (records - before.min(records)) as f64 / interval.as_secs_f64();
        let verb = match connector.kind {
            weir_connector_sdk::Kind::Source => "in",
            weir_connector_sdk::Kind::Sink => "out",
        };
        let states: Vec<String> = connector.tasks.iter().map(|task| task.status.state.to_string()).collect();
        parts.push(format!("{} {verb} {records} ({rate:.0}/s) [{}]", connector.name, states.join(",")));
    }
    format!("[{:>5}s] {}", elapsed.as_secs(), parts.join(" | "))
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
