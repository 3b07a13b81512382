//! [`Cluster`]: what the client knows of the cluster (brokers, partition leaders, group
//! coordinators) and one connection per broker, with the retry loop every call goes through.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
    metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Mutex, RwLock};

use super::config::KafkaClientConfig;
use super::connection::Connection;
use super::error::KafkaError;

/// A topic as the last metadata answer described it.
#[derive(Debug, Clone)]
pub(super) struct TopicMetadata {
    /// The leader of each partition (-1 while none is elected).
    pub leaders: Vec<i32>,
    pub internal: bool,
}

#[derive(Debug, Default)]
struct Metadata {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, TopicMetadata>,
    controller: Option<i32>,
    coordinators: HashMap<String, i32>,
}

/// The cluster as the client sees it. Shared by every call of the log.
#[derive(Debug)]
pub(super) struct Cluster {
    pub config: KafkaClientConfig,
    metadata: RwLock<Metadata>,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
}

fn name(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Cluster {
    pub(super) fn new(config: KafkaClientConfig) -> Self {
        Self { config, metadata: RwLock::default(), connections: Mutex::default() }
    }

    /// The open connection to `address`, opening one if there is none or it broke.
    async fn connect(&self, address: &str) -> Result<Arc<Connection>, KafkaError> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(address).filter(|connection| !connection.is_closed()) {
            return Ok(connection.clone());
        }
        let connection =
            Connection::open(address, &self.config.client_id, self.config.connect_timeout, self.config.request_timeout)
                .await?;
        connections.insert(address.to_owned(), connection.clone());
        Ok(connection)
    }

    /// A connection to some broker: a known one first, else each bootstrap server in turn.
    pub(super) async fn any(&self) -> Result<Arc<Connection>, KafkaError> {
        let known: Vec<String> = self.metadata.read().await.brokers.values().cloned().collect();
        let mut last = None;
        for address in known.iter().chain(&self.config.bootstrap_servers) {
            match self.connect(address).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| KafkaError::connection("bootstrap.servers", "no broker to connect to")))
    }

    /// A connection to the broker with this node id.
    pub(super) async fn node(&self, node: i32) -> Result<Arc<Connection>, KafkaError> {
        let address = self.metadata.read().await.brokers.get(&node).cloned();
        match address {
            Some(address) => self.connect(&address).await,
            None => {
                self.refresh(None).await?;
                let address = self.metadata.read().await.brokers.get(&node).cloned();
                let address = address
                    .ok_or_else(|| KafkaError::connection(&format!("node {node}"), "not in the cluster's metadata"))?;
                self.connect(&address).await
            }
        }
    }

    /// Connections to every broker the cluster has.
    pub(super) async fn every_broker(&self) -> Result<Vec<Arc<Connection>>, KafkaError> {
        self.refresh(None).await?;
        let addresses: Vec<String> = self.metadata.read().await.brokers.values().cloned().collect();
        let mut connections = Vec::with_capacity(addresses.len());
        for address in addresses {
            connections.push(self.connect(&address).await?);
        }
        Ok(connections)
    }

    /// Asks the cluster for its brokers and these topics (`None`: every topic), and keeps the
    /// answer. Topics asked for that the cluster does not have are forgotten.
    pub(super) async fn refresh(&self, topics: Option<&[&str]>) -> Result<(), KafkaError> {
        let connection = self.any().await?;
        let version = connection.version(ApiKey::Metadata, (1, 12))?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|topics| {
                topics
                    .iter()
                    .map(|topic| MetadataRequestTopic::default().with_name(Some(TopicName(name(topic)))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let answer: MetadataResponse = connection.call(&request, version).await?;
        let mut metadata = self.metadata.write().await;
        if !answer.brokers.is_empty() {
            metadata.brokers = answer
                .brokers
                .iter()
                .map(|broker| (broker.node_id.0, format!("{}:{}", broker.host.as_str(), broker.port)))
                .collect();
        }
        metadata.controller = Some(answer.controller_id.0).filter(|id| *id >= 0);
        if topics.is_none() {
            metadata.topics.clear();
        }
        for topic in &answer.topics {
            let Some(topic_name) = topic.name.as_ref().map(|name| name.0.to_string()) else { continue };
            match topic.error_code {
                0 => {
                    let mut leaders = vec![-1; topic.partitions.len()];
                    for partition in &topic.partitions {
                        if let Some(slot) =
                            usize::try_from(partition.partition_index).ok().and_then(|index| leaders.get_mut(index))
                        {
                            *slot = if partition.error_code == 0 { partition.leader_id.0 } else { -1 };
                        }
                    }
                    metadata.topics.insert(topic_name, TopicMetadata { leaders, internal: topic.is_internal });
                }
                // UNKNOWN_TOPIC_OR_PARTITION: it does not exist.
                3 => {
                    metadata.topics.remove(&topic_name);
                }
                // LEADER_NOT_AVAILABLE while a topic is being created: known, leaderless.
                5 => {
                    metadata.topics.entry(topic_name).or_insert(TopicMetadata { leaders: Vec::new(), internal: false });
                }
                code => return Err(KafkaError::broker(ApiKey::Metadata, code, None)),
            }
        }
        Ok(())
    }

    /// The topic as last seen, asking the cluster when it is not known yet.
    pub(super) async fn topic(&self, topic: &str) -> Result<Option<TopicMetadata>, KafkaError> {
        if let Some(known) = self.metadata.read().await.topics.get(topic) {
            return Ok(Some(known.clone()));
        }
        self.refresh(Some(&[topic])).await?;
        Ok(self.metadata.read().await.topics.get(topic).cloned())
    }

    /// Every topic of the last full refresh.
    pub(super) async fn topics(&self) -> Result<Vec<(String, TopicMetadata)>, KafkaError> {
        self.refresh(None).await?;
        Ok(self.metadata.read().await.topics.iter().map(|(name, topic)| (name.clone(), topic.clone())).collect())
    }

    /// Forgets what is known of a topic, so the next call asks again (after a leader moved).
    pub(super) async fn forget(&self, topic: &str) {
        self.metadata.write().await.topics.remove(topic);
    }

    /// The leader of the partition: its node id.
    ///
    /// # Errors
    /// [`KafkaError::UnknownPartition`] when the topic or partition does not exist; a retriable
    /// LEADER_NOT_AVAILABLE while no leader is elected.
    pub(super) async fn leader(&self, topic: &str, partition: u32) -> Result<i32, KafkaError> {
        let unknown = || KafkaError::UnknownPartition { topic: topic.to_owned(), partition };
        let metadata = self.topic(topic).await?.ok_or_else(unknown)?;
        if metadata.leaders.is_empty() {
            self.forget(topic).await;
            return Err(KafkaError::broker(ApiKey::Metadata, 5, Some(format!("topic {topic} has no leaders yet"))));
        }
        let leader = *metadata.leaders.get(partition as usize).ok_or_else(unknown)?;
        if leader < 0 {
            self.forget(topic).await;
            return Err(KafkaError::broker(ApiKey::Metadata, 5, Some(format!("{topic}/{partition} has no leader"))));
        }
        Ok(leader)
    }

    /// The controller (where CreateTopics goes), or any broker when the cluster names none.
    pub(super) async fn controller(&self) -> Result<Arc<Connection>, KafkaError> {
        let controller = self.metadata.read().await.controller;
        match controller {
            Some(node) => self.node(node).await,
            None => {
                self.refresh(None).await?;
                let controller = self.metadata.read().await.controller;
                match controller {
                    Some(node) => self.node(node).await,
                    None => self.any().await,
                }
            }
        }
    }

    /// The group's coordinator, asking the cluster when it is not known (or was forgotten).
    pub(super) async fn coordinator(&self, group: &str) -> Result<Arc<Connection>, KafkaError> {
        let known = self.metadata.read().await.coordinators.get(group).copied();
        if let Some(node) = known {
            return self.node(node).await;
        }
        let connection = self.any().await?;
        let version = connection.version(ApiKey::FindCoordinator, (0, 4))?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![name(group)])
        } else {
            FindCoordinatorRequest::default().with_key(name(group))
        };
        let answer: FindCoordinatorResponse = connection.call(&request, version).await?;
        let (code, message, node, host, port) = match answer.coordinators.first() {
            Some(found) if version >= 4 => {
                (found.error_code, found.error_message.clone(), found.node_id, found.host.clone(), found.port)
            }
            _ => (answer.error_code, answer.error_message.clone(), answer.node_id, answer.host.clone(), answer.port),
        };
        if code != 0 {
            return Err(KafkaError::broker(ApiKey::FindCoordinator, code, message.map(|message| message.to_string())));
        }
        let BrokerId(node) = node;
        {
            let mut metadata = self.metadata.write().await;
            metadata.brokers.entry(node).or_insert_with(|| format!("{}:{port}", host.as_str()));
            metadata.coordinators.insert(group.to_owned(), node);
        }
        self.node(node).await
    }

    /// Forgets the group's coordinator (after NOT_COORDINATOR and the like).
    pub(super) async fn forget_coordinator(&self, group: &str) {
        self.metadata.write().await.coordinators.remove(group);
    }
}

/// The retries of one call: until `delivery.timeout.ms` passes, waiting `retry.backoff.ms`
/// (doubling, at most a second) between tries.
#[derive(Debug)]
pub(super) struct Retry {
    deadline: Instant,
    backoff: Duration,
    what: &'static str,
}

impl Retry {
    pub(super) fn new(config: &KafkaClientConfig, what: &'static str) -> Self {
        Self { deadline: Instant::now() + config.delivery_timeout, backoff: config.retry_backoff, what }
    }

    /// Waits before the next try, or gives the error back when it is not retriable or time is
    /// up.
    pub(super) async fn again(&mut self, error: KafkaError) -> Result<(), KafkaError> {
        if !error.is_retriable() || Instant::now() + self.backoff >= self.deadline {
            return Err(error);
        }
        tracing::debug!(%error, what = self.what, "retrying a Kafka call");
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
        Ok(())
    }
}

/// Runs the async `$body` (a block whose value is a `Result<_, KafkaError>`) until it succeeds
/// or [`Retry::again`] gives up; `$stale` runs first when an error says the metadata is stale.
/// A macro, not a function taking a closure: the body borrows freely and stays `Send`.
macro_rules! retrying {
    ($config:expr, $what:expr, $body:block) => {
        retrying!($config, $what, {}, $body)
    };
    ($config:expr, $what:expr, $stale:block, $body:block) => {{
        let mut retry = $crate::log::kafka::cluster::Retry::new($config, $what);
        loop {
            let result: Result<_, $crate::log::kafka::KafkaError> = async $body.await;
            match result {
                Ok(value) => break Ok(value),
                Err(error) => {
                    if error.wants_metadata() $stale
                    if let Err(error) = retry.again(error).await {
                        break Err(error);
                    }
                }
            }
        }
    }};
}
pub(super) use retrying;
