//! [`KafkaConfig`]: what the Kafka listener advertises and the bounds it enforces.

use std::time::Duration;

use crate::coordinator::CoordinatorConfig;

/// Settings of the Kafka protocol listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// The host clients are told to connect to (Metadata, FindCoordinator); `None` uses the
    /// bound address's IP.
    pub advertised_host: Option<String>,
    /// The port clients are told to connect to; `None` uses the bound port.
    pub advertised_port: Option<u16>,
    /// The cluster id reported to clients.
    pub cluster_id: String,
    /// This node's id.
    pub node_id: i32,
    /// Create a topic when a client asks for its metadata (Kafka's
    /// `auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics, and of CreateTopics asking for the default.
    pub default_partitions: u32,
    /// The largest request frame accepted (Kafka's `socket.request.max.bytes`); a larger size
    /// prefix closes the connection before anything is read or allocated.
    pub max_frame_bytes: usize,
    /// Connections beyond this many wait to be accepted.
    pub max_connections: usize,
    /// A connection with no request for this long is closed (`connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// The most a fetch response carries, whatever the client asks for (Kafka's broker-side
    /// `fetch.max.bytes`), still at least one batch: bounds what one fetch holds in memory.
    pub fetch_max_bytes: usize,
    /// The group coordinator's settings.
    pub coordinator: CoordinatorConfig,
}

impl Default for KafkaConfig {
    /// Advertise the bound address, auto-create one-partition topics, 100 MiB frames, 1024
    /// connections, 10 min idle timeout, fetch responses of at most 8 MiB.
    fn default() -> Self {
        KafkaConfig {
            advertised_host: None,
            advertised_port: None,
            cluster_id: "weir".to_owned(),
            node_id: 0,
            auto_create_topics: true,
            default_partitions: 1,
            max_frame_bytes: 100 * 1024 * 1024,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(600),
            fetch_max_bytes: 8 * 1024 * 1024,
            coordinator: CoordinatorConfig::default(),
        }
    }
}
