//! The Kafka listener of the binary: `weir broker` (the log alone, served over the Kafka
//! protocol) and the `--kafka-*` options of `weir run` (the same listener on the worker's own
//! embedded log, in the same process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgAction, Args};
use weir_broker::kafka::{KafkaConfig, KafkaServer};
use weir_broker::{FlushPolicy, Log, LogConfig};
use weir_runtime::kafka_groups::SinkConsumerGroups;

/// Where `--kafka-listen` listens when given without an address: Kafka's port, loopback only.
pub(crate) const DEFAULT_KAFKA_LISTEN: &str = "127.0.0.1:9092";

/// `weir broker`: the options.
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// Where Kafka clients connect (loopback only unless an address says otherwise, e.g.
    /// `0.0.0.0:9092`).
    #[arg(long, env = "WEIR_KAFKA_LISTEN", default_value = DEFAULT_KAFKA_LISTEN)]
    listen: SocketAddr,
    /// The log's directory (the same layout `weir run` keeps under `<data-dir>/log`).
    #[arg(long, env = "WEIR_DATA_DIR", default_value = "./weir-broker-data")]
    data_dir: PathBuf,
    /// When appends are fsynced: `every-batch`, `never`, or an interval like `100ms`.
    #[arg(long, env = "WEIR_FLUSH", default_value = "every-batch", value_parser = crate::parse_flush)]
    flush: FlushPolicy,
    /// Create a topic when a client asks for one that does not exist (Kafka's
    /// `auto.create.topics.enable`): `true` or `false`.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics asking for the default
    /// (Kafka's `num.partitions`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    default_partitions: u32,
    /// The host clients are told to connect to (Metadata, FindCoordinator); the listen
    /// address's IP by default (127.0.0.1 for an unspecified address such as 0.0.0.0).
    #[arg(long)]
    advertised_host: Option<String>,
}

/// `weir run`: the options of its Kafka listener.
#[derive(Debug, Args)]
pub(crate) struct RunKafkaArgs {
    /// Serve the worker's log over the Kafka protocol at this address (off unless given;
    /// `--kafka-listen` alone means 127.0.0.1:9092; loopback only unless the address says
    /// otherwise).
    #[arg(long, env = "WEIR_KAFKA_LISTEN", num_args = 0..=1, default_missing_value = DEFAULT_KAFKA_LISTEN)]
    pub(crate) kafka_listen: Option<SocketAddr>,
    /// Create a topic when a Kafka client asks for one that does not exist: `true` or `false`.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    kafka_auto_create_topics: bool,
    /// Partitions of topics Kafka clients create without saying how many.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    kafka_default_partitions: u32,
    /// The host Kafka clients are told to connect to; the listen address's IP by default.
    #[arg(long)]
    kafka_advertised_host: Option<String>,
}

impl RunKafkaArgs {
    pub(crate) fn config(&self) -> KafkaConfig {
        KafkaConfig {
            auto_create_topics: self.kafka_auto_create_topics,
            default_partitions: self.kafka_default_partitions,
            advertised_host: self.kafka_advertised_host.clone(),
            ..KafkaConfig::default()
        }
    }
}

/// Runs `weir broker` until Ctrl-C or SIGTERM, then closes the listener and the log.
pub(crate) async fn run_broker(args: BrokerArgs) -> anyhow::Result<ExitCode> {
    let BrokerArgs { listen, data_dir, flush, auto_create_topics, default_partitions, advertised_host } = args;
    let config = KafkaConfig { auto_create_topics, default_partitions, advertised_host, ..KafkaConfig::default() };
    let dir = data_dir.clone();
    let log = tokio::task::spawn_blocking(move || Log::open(dir, LogConfig { flush, ..LogConfig::default() }))
        .await
        .context("while opening the log")?
        .with_context(|| format!("while opening the log in {}", data_dir.display()))?;
    let server = KafkaServer::bind(listen, Arc::clone(&log), config)
        .await
        .with_context(|| format!("while binding the Kafka listener to {listen}"))?;
    let bound = server.local_addr().context("while reading the Kafka listener's address")?;
    println!("weir: broker serving Kafka on {bound}; data in {}; Ctrl-C to stop", data_dir.display());
    server.serve(crate::shutdown_signal()).await;
    println!("weir: stopping (closing connections, flushing the log)");
    tokio::task::spawn_blocking(move || log.close())
        .await
        .context("while closing the log")?
        .with_context(|| format!("while flushing the log in {}", data_dir.display()))?;
    println!("weir: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts `weir run`'s Kafka listener on the worker's embedded log when `--kafka-listen` was
/// given: the address it is bound to and the task serving it until `stop`.
pub(crate) async fn start_listener(
    worker: &weir_runtime::Worker,
    args: &RunKafkaArgs,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>> {
    let Some(listen) = args.kafka_listen else { return Ok(None) };
    let embedded = worker.embedded_log().context("the worker's log is not the embedded one: nothing to serve")?;
    let server = KafkaServer::bind(listen, Arc::clone(embedded.broker()), args.config())
        .await
        .with_context(|| format!("while binding the Kafka listener to {listen}"))?
        // The sink connectors, as consumer groups `connect-<name>`.
        .with_hosted_groups(Arc::new(SinkConsumerGroups::new(worker.herder().clone(), embedded.clone())));
    let bound = server.local_addr().context("while reading the Kafka listener's address")?;
    let serving = tokio::spawn(server.serve(async move { stop.cancelled().await }));
    Ok(Some((bound, serving)))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, Command};

    fn kafka_listen(args: &[&str]) -> Option<std::net::SocketAddr> {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Run { kafka, .. } => kafka.kafka_listen,
            other => panic!("not a run command: {other:?}"),
        }
    }

    #[test]
    fn kafka_listen_is_off_unless_given_and_alone_means_loopback_9092() {
        assert_eq!(kafka_listen(&["weir", "run", "m.yaml"]), None);
        assert_eq!(kafka_listen(&["weir", "run", "--kafka-listen"]), Some("127.0.0.1:9092".parse().expect("addr")));
        assert_eq!(
            kafka_listen(&["weir", "run", "--kafka-listen", "0.0.0.0:19092", "m.yaml"]),
            Some("0.0.0.0:19092".parse().expect("addr"))
        );
        assert!(Cli::try_parse_from(["weir", "run", "--kafka-listen", "not-an-address"]).is_err());
    }

    #[test]
    fn broker_knobs_have_defaults_and_refuse_zero_partitions() {
        let cli = Cli::try_parse_from(["weir", "broker"]).expect("parses");
        let Command::Broker(args) = cli.command else { panic!("not a broker command") };
        assert_eq!(args.listen, "127.0.0.1:9092".parse().expect("addr"));
        assert!(args.auto_create_topics);
        assert_eq!(args.default_partitions, 1);
        let cli = Cli::try_parse_from(["weir", "broker", "--auto-create-topics", "false", "--default-partitions", "4"])
            .expect("parses");
        let Command::Broker(args) = cli.command else { panic!("not a broker command") };
        assert!(!args.auto_create_topics);
        assert_eq!(args.default_partitions, 4);
        assert!(Cli::try_parse_from(["weir", "broker", "--default-partitions", "0"]).is_err());
    }
}
