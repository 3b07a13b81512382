//! [`KafkaClientConfig`]: how weir talks to a Kafka cluster, with Kafka's own key names.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_broker::wire::Compression;

use super::error::KafkaError;

/// The client settings of the Kafka backend. [`KafkaClientConfig::from_properties`] reads them
/// from Kafka's keys (`bootstrap.servers`, `compression.type`, ...), as a worker config holds
/// them; defaults are Kafka's unless said otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaClientConfig {
    /// `bootstrap.servers`: where the client first asks for the cluster's brokers.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`, sent with every request (`weir` by default).
    pub client_id: String,
    /// `request.timeout.ms`: how long one request waits for its answer (30 s).
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms` (10 s).
    pub connect_timeout: Duration,
    /// `delivery.timeout.ms`: how long a write (and any call) keeps retrying (120 s).
    pub delivery_timeout: Duration,
    /// `retry.backoff.ms`: the pause before a retry (100 ms).
    pub retry_backoff: Duration,
    /// `compression.type` of produced batches (`none`).
    pub compression: Compression,
    /// `enable.idempotence`: batches carry a producer id and sequence numbers, so a retried
    /// write is stored once (true).
    pub enable_idempotence: bool,
    /// `acks`: -1 (all in-sync replicas), 1 (the leader) or 0 is refused (weir needs offsets).
    pub acks: i16,
    /// `batch.size`: the most bytes of records in one produced batch. Kafka's default is 16 KiB
    /// because its producer batches records as they come; weir hands whole batches to the
    /// client, so 1 MiB (Kafka's `max.request.size`) by default.
    pub batch_size: usize,
    /// `fetch.max.wait.ms` of a fetch waiting for data (500 ms).
    pub fetch_max_wait: Duration,
    /// `replication.factor` of the topics weir creates: -1 leaves it to the broker's
    /// `default.replication.factor` (needs CreateTopics v4, Kafka 2.4+).
    pub replication_factor: i16,
}

impl Default for KafkaClientConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: vec!["localhost:9092".to_owned()],
            client_id: "weir".to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(120),
            retry_backoff: Duration::from_millis(100),
            compression: Compression::None,
            enable_idempotence: true,
            acks: -1,
            batch_size: 1 << 20,
            fetch_max_wait: Duration::from_millis(500),
            replication_factor: -1,
        }
    }
}

impl KafkaClientConfig {
    /// The defaults with these bootstrap servers (`host:port[,host:port]`).
    ///
    /// # Errors
    /// An empty list or an entry without a port.
    pub fn with_bootstrap_servers(servers: &str) -> Result<Self, KafkaError> {
        Ok(Self { bootstrap_servers: parse_servers(servers)?, ..Self::default() })
    }

    /// Reads the keys weir knows from a worker config's properties; unknown keys are left to
    /// other readers.
    ///
    /// # Errors
    /// A value that does not parse, naming its key.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<Self, KafkaError> {
        let mut config = Self::default();
        for (key, value) in properties {
            let value = value.trim();
            match key.as_str() {
                "bootstrap.servers" => config.bootstrap_servers = parse_servers(value)?,
                "client.id" => config.client_id = value.to_owned(),
                "request.timeout.ms" => config.request_timeout = millis(key, value)?,
                "socket.connection.setup.timeout.ms" => config.connect_timeout = millis(key, value)?,
                "delivery.timeout.ms" => config.delivery_timeout = millis(key, value)?,
                "retry.backoff.ms" => config.retry_backoff = millis(key, value)?,
                "fetch.max.wait.ms" => config.fetch_max_wait = millis(key, value)?,
                "compression.type" => {
                    config.compression = Compression::from_name(value)
                        .ok_or_else(|| invalid(key, "one of none, gzip, snappy, lz4, zstd"))?;
                }
                "enable.idempotence" => {
                    config.enable_idempotence = value.parse().map_err(|_bad| invalid(key, "true or false"))?;
                }
                "acks" => {
                    config.acks = match value {
                        "all" | "-1" => -1,
                        "1" => 1,
                        _ => return Err(invalid(key, "all, -1 or 1 (weir needs the offsets acks=0 does not give)")),
                    };
                }
                "batch.size" => {
                    config.batch_size = value
                        .parse()
                        .ok()
                        .filter(|size| *size > 0)
                        .ok_or_else(|| invalid(key, "a positive number of bytes"))?;
                }
                "replication.factor" => {
                    config.replication_factor = value
                        .parse()
                        .ok()
                        .filter(|factor| *factor == -1 || *factor > 0)
                        .ok_or_else(|| invalid(key, "-1 (the broker's default) or a positive number"))?;
                }
                _ => {}
            }
        }
        if config.enable_idempotence && config.acks != -1 {
            return Err(invalid("acks", "all (-1) when enable.idempotence is true, as Kafka requires"));
        }
        Ok(config)
    }
}

fn parse_servers(servers: &str) -> Result<Vec<String>, KafkaError> {
    let list: Vec<String> =
        servers.split(',').map(str::trim).filter(|server| !server.is_empty()).map(str::to_owned).collect();
    if list.is_empty() {
        return Err(invalid("bootstrap.servers", "at least one host:port"));
    }
    if let Some(bad) =
        list.iter().find(|server| server.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()))
    {
        return Err(invalid("bootstrap.servers", &format!("{bad:?} is not host:port")));
    }
    Ok(list)
}

fn millis(key: &str, value: &str) -> Result<Duration, KafkaError> {
    value.parse().map(Duration::from_millis).map_err(|_bad| invalid(key, "a whole number of milliseconds"))
}

fn invalid(key: &str, expected: &str) -> KafkaError {
    KafkaError::Config { key: key.to_owned(), message: format!("expected {expected}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_keys_are_read_and_bad_values_name_their_key() {
        let properties: BTreeMap<String, String> = [
            ("bootstrap.servers", "a:9092, b:9093"),
            ("compression.type", "zstd"),
            ("linger.ms", "5"),
            ("request.timeout.ms", "1500"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let config = KafkaClientConfig::from_properties(&properties).expect("config");
        assert_eq!(config.bootstrap_servers, ["a:9092", "b:9093"]);
        assert_eq!(config.compression, Compression::Zstd);
        assert_eq!(config.request_timeout, Duration::from_millis(1500));

        for (key, value) in [("compression.type", "brotli"), ("bootstrap.servers", "nohost"), ("acks", "0")] {
            let properties = BTreeMap::from([(key.to_owned(), value.to_owned())]);
            let error = KafkaClientConfig::from_properties(&properties).expect_err(key).to_string();
            assert!(error.starts_with(key), "{error}");
        }
    }
}
