//! [`KafkaLog`]: the [`EventLog`] over a Kafka cluster.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, FetchRequest as KafkaFetch, FetchResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
    create_topics_request::{CreatableTopic, CreatableTopicConfig},
    describe_configs_request::DescribeConfigsResource,
    fetch_request::{FetchPartition, FetchTopic},
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::OffsetFetchRequestGroup,
};
use kafka_protocol::protocol::StrBytes;
use weir_broker::wire::decode_fetched;
use weir_broker::{AppendResult, CleanupPolicy, StoredRecord, TopicConfig};

use super::cluster::Cluster;
use super::cluster::retrying;
use super::config::KafkaClientConfig;
use super::error::KafkaError;
use super::producer::Producer;
use crate::log::LogError;
use crate::log::event_log::{
    Batches, EventLog, FetchRequest, FetchedPartition, Generation, GroupOffset, OffsetRange, PartitionBatch,
};

/// The largest per-partition fetch tried when one batch is bigger than what was asked for.
const MAX_PARTITION_FETCH: usize = 64 << 20;

/// A Kafka cluster behind the log seam. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KafkaLog {
    cluster: Arc<Cluster>,
    producer: Arc<Producer>,
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn topic_name(value: &str) -> TopicName {
    TopicName(text(value))
}

fn partition_index(partition: u32) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}

fn check(api: ApiKey, code: i16, message: Option<&StrBytes>) -> Result<(), KafkaError> {
    if code == 0 { Ok(()) } else { Err(KafkaError::broker(api, code, message.map(ToString::to_string))) }
}

impl KafkaLog {
    /// Connects to the cluster (one of the bootstrap servers must answer) and reads its
    /// brokers.
    ///
    /// # Errors
    /// No bootstrap server answering, or answering in versions weir cannot use.
    pub async fn connect(config: KafkaClientConfig) -> Result<Self, LogError> {
        let cluster = Arc::new(Cluster::new(config));
        cluster.refresh(Some(&[])).await?;
        Ok(Self { cluster, producer: Arc::new(Producer::default()) })
    }

    /// The partition's earliest (`-2`) or latest (`-1`) offset, or the first at a timestamp.
    async fn list_offset(&self, topic: &str, partition: u32, timestamp: i64) -> Result<i64, KafkaError> {
        retrying!(&self.cluster.config, "ListOffsets", { self.cluster.forget(topic).await }, {
            let leader = self.cluster.leader(topic, partition).await?;
            let connection = self.cluster.node(leader).await?;
            let version = connection.version(ApiKey::ListOffsets, (1, 7))?;
            let request = ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![
                ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition_index(partition))
                        .with_timestamp(timestamp),
                ]),
            ]);
            let answer: ListOffsetsResponse = connection.call(&request, version).await?;
            let found = answer
                .topics
                .iter()
                .flat_map(|topic| &topic.partitions)
                .find(|answer| answer.partition_index == partition_index(partition))
                .ok_or_else(|| KafkaError::connection(connection.address(), "ListOffsets left out the partition"))?;
            check(ApiKey::ListOffsets, found.error_code, None)?;
            Ok(found.offset)
        })
    }

    /// One Fetch to one leader: for each request, the raw records and the partition's high
    /// watermark.
    async fn fetch_from(
        &self,
        leader: i32,
        requests: &[(usize, &FetchRequest, usize)],
        max_wait: Duration,
    ) -> Result<Vec<(usize, Result<(bytes::Bytes, i64), KafkaError>)>, KafkaError> {
        let connection = self.cluster.node(leader).await?;
        let version = connection.version(ApiKey::Fetch, (4, 12))?;
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for (_, request, max_bytes) in requests {
            topics.entry(request.topic.as_str()).or_default().push(
                FetchPartition::default()
                    .with_partition(partition_index(request.partition))
                    .with_fetch_offset(request.from)
                    .with_partition_max_bytes(i32::try_from(*max_bytes).unwrap_or(i32::MAX)),
            );
        }
        let request = KafkaFetch::default()
            .with_max_wait_ms(i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX))
            .with_min_bytes(1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        FetchTopic::default().with_topic(topic_name(topic)).with_partitions(partitions)
                    })
                    .collect(),
            );
        let answer: FetchResponse = connection.call(&request, version).await?;
        check(ApiKey::Fetch, answer.error_code, None)?;
        let mut found: HashMap<(&str, i32), (i16, bytes::Bytes, i64)> = HashMap::new();
        for topic in &answer.responses {
            for partition in &topic.partitions {
                found.insert(
                    (topic.topic.0.as_str(), partition.partition_index),
                    (partition.error_code, partition.records.clone().unwrap_or_default(), partition.high_watermark),
                );
            }
        }
        Ok(requests
            .iter()
            .map(|(index, request, _)| {
                let outcome = match found.remove(&(request.topic.as_str(), partition_index(request.partition))) {
                    // Left out (some brokers leave out partitions with nothing new): nothing there.
                    None => Ok((bytes::Bytes::new(), -1)),
                    Some((0, records, high_watermark)) => Ok((records, high_watermark)),
                    Some((code, _, _)) => Err(KafkaError::broker(ApiKey::Fetch, code, None)),
                };
                (*index, outcome)
            })
            .collect())
    }

    /// Reads one partition from `from`: the records, skipping past markers and compacted-away
    /// batches, and past offsets retention deleted.
    async fn read_partition(&self, request: &FetchRequest, max_bytes: usize) -> Result<Vec<StoredRecord>, KafkaError> {
        let mut from = request.from;
        let mut max_bytes = max_bytes.max(1);
        // Each round either returns records or moves `from` forward; a bound keeps a
        // misbehaving broker from spinning us.
        for _round in 0..64 {
            let wanted = FetchRequest { topic: request.topic.clone(), partition: request.partition, from };
            let outcome = retrying!(&self.cluster.config, "Fetch", { self.cluster.forget(&request.topic).await }, {
                let leader = self.cluster.leader(&request.topic, request.partition).await?;
                let mut answers = self.fetch_from(leader, &[(0, &wanted, max_bytes)], Duration::from_millis(1)).await?;
                match answers.pop() {
                    Some((_, outcome)) => outcome,
                    None => Err(KafkaError::connection("fetch", "no answer for the partition")),
                }
            });
            let (records, high_watermark) = match outcome {
                Ok(answer) => answer,
                // OFFSET_OUT_OF_RANGE: before the start (deleted) starts at the start; past the
                // end there is nothing to read.
                Err(KafkaError::Broker { code: 1, .. }) => {
                    let start = self.list_offset(&request.topic, request.partition, -2).await?;
                    if from < start {
                        from = start;
                        continue;
                    }
                    return Ok(Vec::new());
                }
                Err(error) => return Err(error),
            };
            if from >= high_watermark {
                return Ok(Vec::new());
            }
            let fetched = decode_fetched(&records, from).map_err(|source| KafkaError::Corrupt {
                topic: request.topic.clone(),
                partition: request.partition,
                source,
            })?;
            if !fetched.records.is_empty() {
                return Ok(fetched.records);
            }
            match fetched.next_offset {
                Some(next) if next > from => from = next,
                // A batch larger than asked for, cut off: ask for more.
                _ if !records.is_empty() && max_bytes < MAX_PARTITION_FETCH => max_bytes *= 4,
                _ => return Ok(Vec::new()),
            }
        }
        Ok(Vec::new())
    }
}

/// Kafka's topic configs for a [`TopicConfig`] (only what differs from the broker's defaults
/// is left out: weir says what it wants).
fn topic_configs(config: &TopicConfig) -> Vec<CreatableTopicConfig> {
    let mut configs = vec![(
        "cleanup.policy",
        match config.cleanup_policy {
            CleanupPolicy::Delete => "delete".to_owned(),
            CleanupPolicy::Compact => "compact".to_owned(),
        },
    )];
    if let Some(retention) = config.retention_ms {
        configs.push(("retention.ms", retention.to_string()));
    }
    if let Some(bytes) = config.retention_bytes {
        configs.push(("retention.bytes", bytes.to_string()));
    }
    if let Some(bytes) = config.segment_bytes {
        configs.push(("segment.bytes", bytes.to_string()));
    }
    if config.cleanup_policy == CleanupPolicy::Compact {
        configs.push(("delete.retention.ms", config.delete_retention_ms.to_string()));
    }
    configs
        .into_iter()
        .map(|(name, value)| CreatableTopicConfig::default().with_name(text(name)).with_value(Some(text(&value))))
        .collect()
}

#[async_trait::async_trait]
impl EventLog for KafkaLog {
    async fn ensure_topic(&self, topic: &str, config: TopicConfig) -> Result<u32, LogError> {
        let partitions = retrying!(&self.cluster.config, "CreateTopics", { self.cluster.forget(topic).await }, {
            if let Some(existing) = self.cluster.topic(topic).await? {
                if existing.leaders.is_empty() || existing.leaders.iter().any(|leader| *leader < 0) {
                    // Created, leaders not elected yet.
                    return Err(KafkaError::broker(
                        ApiKey::Metadata,
                        5,
                        Some(format!("topic {topic} has no leaders yet")),
                    ));
                }
                return Ok(u32::try_from(existing.leaders.len()).unwrap_or(u32::MAX));
            }
            let connection = self.cluster.controller().await?;
            let version = connection.version(ApiKey::CreateTopics, (2, 5))?;
            let replication_factor = if version < 4 && self.cluster.config.replication_factor == -1 {
                1
            } else {
                self.cluster.config.replication_factor
            };
            let request = CreateTopicsRequest::default()
                .with_timeout_ms(i32::try_from(self.cluster.config.request_timeout.as_millis()).unwrap_or(i32::MAX))
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(topic_name(topic))
                        .with_num_partitions(i32::try_from(config.partitions).unwrap_or(i32::MAX))
                        .with_replication_factor(replication_factor)
                        .with_configs(topic_configs(&config)),
                ]);
            let answer: CreateTopicsResponse = connection.call(&request, version).await?;
            let result = answer
                .topics
                .first()
                .ok_or_else(|| KafkaError::connection(connection.address(), "CreateTopics left out the topic"))?;
            match result.error_code {
                0 => tracing::info!(topic, partitions = config.partitions, "created topic"),
                // TOPIC_ALREADY_EXISTS: someone else was first; theirs stands.
                36 => {}
                // NOT_CONTROLLER: the controller moved.
                41 => {
                    self.cluster.refresh(None).await?;
                    return Err(KafkaError::broker(ApiKey::CreateTopics, 41, None));
                }
                code => {
                    return Err(KafkaError::broker(
                        ApiKey::CreateTopics,
                        code,
                        result.error_message.as_ref().map(|message| format!("{topic}: {message}")),
                    ));
                }
            }
            self.cluster.forget(topic).await;
            // Metadata lags the create: the next round reads the partitions and leaders.
            Err(KafkaError::broker(ApiKey::Metadata, 5, Some(format!("topic {topic} has no leaders yet"))))
        })?;
        Ok(partitions)
    }

    async fn topics(&self) -> Result<Vec<String>, LogError> {
        let topics = retrying!(&self.cluster.config, "Metadata", { self.cluster.topics().await })?;
        let mut names: Vec<String> =
            topics.into_iter().filter(|(_, topic)| !topic.internal).map(|(name, _)| name).collect();
        names.sort();
        Ok(names)
    }

    async fn topic_config(&self, topic: &str) -> Result<Option<TopicConfig>, LogError> {
        let config = retrying!(&self.cluster.config, "DescribeConfigs", { self.cluster.forget(topic).await }, {
            let Some(metadata) = self.cluster.topic(topic).await? else { return Ok(None) };
            let connection = self.cluster.any().await?;
            let version = connection.version(ApiKey::DescribeConfigs, (0, 4))?;
            let request = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text(topic))
                    .with_configuration_keys(None),
            ]);
            let answer: DescribeConfigsResponse = connection.call(&request, version).await?;
            let result = answer
                .results
                .first()
                .ok_or_else(|| KafkaError::connection(connection.address(), "DescribeConfigs left out the topic"))?;
            if result.error_code == 3 {
                return Ok(None);
            }
            check(ApiKey::DescribeConfigs, result.error_code, result.error_message.as_ref())?;
            let mut config = TopicConfig {
                partitions: u32::try_from(metadata.leaders.len()).unwrap_or(u32::MAX),
                ..TopicConfig::default()
            };
            for entry in &result.configs {
                let Some(value) = entry.value.as_ref().map(StrBytes::as_str) else { continue };
                match entry.name.as_str() {
                    "cleanup.policy" if value.split(',').any(|policy| policy.trim() == "compact") => {
                        config.cleanup_policy = CleanupPolicy::Compact;
                    }
                    "retention.ms" => config.retention_ms = value.parse().ok().filter(|ms: &i64| *ms >= 0),
                    "retention.bytes" => config.retention_bytes = value.parse().ok(),
                    "segment.bytes" => config.segment_bytes = value.parse().ok(),
                    "delete.retention.ms" => {
                        if let Ok(ms) = value.parse() {
                            config.delete_retention_ms = ms;
                        }
                    }
                    _ => {}
                }
            }
            Ok(Some(config))
        })?;
        Ok(config)
    }

    async fn append(&self, batches: Batches, _generation: Generation) -> Result<Vec<AppendResult>, LogError> {
        Ok(self.producer.append(&self.cluster, &batches).await?)
    }

    /// Not atomic on Kafka without transactions: the records are written first and the offset
    /// record after them, so a failure in between repeats records on restart, never skips them.
    async fn append_with_offsets(
        &self,
        batches: Batches,
        offsets: PartitionBatch,
        _generation: Generation,
    ) -> Result<(), LogError> {
        if !batches.is_empty() {
            self.producer.append(&self.cluster, &batches).await?;
        }
        self.producer.append(&self.cluster, std::slice::from_ref(&offsets)).await?;
        Ok(())
    }

    async fn fetch(
        &self,
        requests: Vec<FetchRequest>,
        max_bytes_per_partition: usize,
        max_records: usize,
    ) -> Result<Vec<FetchedPartition>, LogError> {
        // One Fetch per leader first; partitions whose answer needs more care (out of range,
        // only markers, a batch bigger than asked for, an error) are then read one by one.
        let mut by_leader: HashMap<i32, Vec<(usize, &FetchRequest, usize)>> = HashMap::new();
        let mut one_by_one: Vec<usize> = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            match self.cluster.leader(&request.topic, request.partition).await {
                Ok(leader) => by_leader.entry(leader).or_default().push((index, request, max_bytes_per_partition)),
                Err(error) if error.is_retriable() => one_by_one.push(index),
                Err(error) => return Err(error.into()),
            }
        }
        let answers = join_all(
            by_leader.iter().map(|(leader, wanted)| self.fetch_from(*leader, wanted, Duration::from_millis(1))),
        )
        .await;
        let mut fetched: Vec<(usize, Vec<StoredRecord>)> = Vec::new();
        for (answer, (_, wanted)) in answers.into_iter().zip(&by_leader) {
            let Ok(answer) = answer else {
                one_by_one.extend(wanted.iter().map(|(index, _, _)| *index));
                continue;
            };
            for (index, outcome) in answer {
                let request = &requests[index];
                let Ok((records, high_watermark)) = outcome else {
                    one_by_one.push(index);
                    continue;
                };
                if request.from >= high_watermark {
                    continue;
                }
                let decoded = decode_fetched(&records, request.from).map_err(|source| KafkaError::Corrupt {
                    topic: request.topic.clone(),
                    partition: request.partition,
                    source,
                })?;
                if decoded.records.is_empty() {
                    one_by_one.push(index);
                } else {
                    fetched.push((index, decoded.records));
                }
            }
        }
        for index in one_by_one {
            let records = self.read_partition(&requests[index], max_bytes_per_partition).await?;
            if !records.is_empty() {
                fetched.push((index, records));
            }
        }
        fetched.sort_by_key(|(index, _)| *index);
        let mut read = 0usize;
        let mut answer = Vec::with_capacity(fetched.len());
        for (request, records) in fetched {
            if read >= max_records {
                break;
            }
            read += records.len();
            answer.push(FetchedPartition { request, records });
        }
        Ok(answer)
    }

    async fn offset_range(&self, topic: &str, partition: u32) -> Result<OffsetRange, LogError> {
        let (start, end) =
            futures::try_join!(self.list_offset(topic, partition, -2), self.list_offset(topic, partition, -1))?;
        Ok(OffsetRange { start, end })
    }

    async fn wait_for_data(&self, requests: &[FetchRequest], timeout: Duration) -> Result<bool, LogError> {
        let deadline = tokio::time::Instant::now() + timeout;
        if requests.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let max_wait = remaining.min(self.cluster.config.fetch_max_wait);
            // A long-poll Fetch per leader: the broker answers once there is data or
            // `max_wait` passed. Any error (a moved leader) counts as "look again".
            let mut by_leader: HashMap<i32, Vec<(usize, &FetchRequest, usize)>> = HashMap::new();
            for (index, request) in requests.iter().enumerate() {
                match self.cluster.leader(&request.topic, request.partition).await {
                    Ok(leader) => by_leader.entry(leader).or_default().push((index, request, 1)),
                    Err(error) if error.is_retriable() => return Ok(true),
                    Err(error) => return Err(error.into()),
                }
            }
            let started = tokio::time::Instant::now();
            let answers =
                join_all(by_leader.iter().map(|(leader, wanted)| self.fetch_from(*leader, wanted, max_wait))).await;
            for answer in answers {
                let Ok(answer) = answer else { return Ok(true) };
                for (index, outcome) in answer {
                    match outcome {
                        Ok((_, high_watermark)) if high_watermark > requests[index].from => return Ok(true),
                        Ok(_) => {}
                        Err(_) => return Ok(true),
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            // A broker that answers before `max_wait` without data (not every one long-polls):
            // poll gently instead of spinning.
            if started.elapsed() < max_wait / 2 {
                tokio::time::sleep(
                    Duration::from_millis(50).min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                )
                .await;
            }
        }
    }

    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<GroupOffset>,
        _generation: Generation,
    ) -> Result<(), LogError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for offset in &offsets {
            topics.entry(offset.topic.as_str()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(partition_index(offset.partition))
                    .with_committed_offset(offset.offset),
            );
        }
        let request = OffsetCommitRequest::default().with_group_id(GroupId(text(group))).with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(partitions)
                })
                .collect(),
        );
        retrying!(&self.cluster.config, "OffsetCommit", { self.cluster.forget_coordinator(group).await }, {
            let connection = self.cluster.coordinator(group).await?;
            let version = connection.version(ApiKey::OffsetCommit, (2, 8))?;
            let answer: OffsetCommitResponse = connection.call(&request, version).await?;
            for topic in &answer.topics {
                for partition in &topic.partitions {
                    check(ApiKey::OffsetCommit, partition.error_code, None)?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>, LogError> {
        let mut offsets =
            retrying!(&self.cluster.config, "OffsetFetch", { self.cluster.forget_coordinator(group).await }, {
                let connection = self.cluster.coordinator(group).await?;
                let version = connection.version(ApiKey::OffsetFetch, (2, 8))?;
                // No topics: every partition the group committed. From v8 a request names
                // groups; before, one group.
                let mut committed: Vec<(String, i32, i64, i16)> = Vec::new();
                if version >= 8 {
                    let request = OffsetFetchRequest::default().with_groups(vec![
                        OffsetFetchRequestGroup::default().with_group_id(GroupId(text(group))).with_topics(None),
                    ]);
                    let answer: OffsetFetchResponse = connection.call(&request, version).await?;
                    for answered in &answer.groups {
                        check(ApiKey::OffsetFetch, answered.error_code, None)?;
                        for topic in &answered.topics {
                            committed.extend(topic.partitions.iter().map(|partition| {
                                (
                                    topic.name.0.to_string(),
                                    partition.partition_index,
                                    partition.committed_offset,
                                    partition.error_code,
                                )
                            }));
                        }
                    }
                } else {
                    let request = OffsetFetchRequest::default().with_group_id(GroupId(text(group))).with_topics(None);
                    let answer: OffsetFetchResponse = connection.call(&request, version).await?;
                    check(ApiKey::OffsetFetch, answer.error_code, None)?;
                    for topic in &answer.topics {
                        committed.extend(topic.partitions.iter().map(|partition| {
                            (
                                topic.name.0.to_string(),
                                partition.partition_index,
                                partition.committed_offset,
                                partition.error_code,
                            )
                        }));
                    }
                }
                let mut offsets = Vec::with_capacity(committed.len());
                for (topic, partition, offset, code) in committed {
                    check(ApiKey::OffsetFetch, code, None)?;
                    if offset >= 0
                        && let Ok(partition) = u32::try_from(partition)
                    {
                        offsets.push(GroupOffset { topic, partition, offset });
                    }
                }
                Ok(offsets)
            })?;
        offsets.sort();
        Ok(offsets)
    }

    async fn groups(&self) -> Result<Vec<String>, LogError> {
        let mut groups = retrying!(&self.cluster.config, "ListGroups", {
            let mut groups = Vec::new();
            for connection in self.cluster.every_broker().await? {
                let version = connection.version(ApiKey::ListGroups, (0, 4))?;
                let answer: ListGroupsResponse = connection.call(&ListGroupsRequest::default(), version).await?;
                check(ApiKey::ListGroups, answer.error_code, None)?;
                groups.extend(answer.groups.iter().map(|group| group.group_id.0.to_string()));
            }
            Ok(groups)
        })?;
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    async fn delete_group_offsets(&self, group: &str) -> Result<(), LogError> {
        retrying!(&self.cluster.config, "DeleteGroups", { self.cluster.forget_coordinator(group).await }, {
            let connection = self.cluster.coordinator(group).await?;
            let version = connection.version(ApiKey::DeleteGroups, (0, 2))?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(group))]);
            let answer: DeleteGroupsResponse = connection.call(&request, version).await?;
            for result in &answer.results {
                // GROUP_ID_NOT_FOUND: nothing to forget.
                if result.error_code != 69 {
                    check(ApiKey::DeleteGroups, result.error_code, None)?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Every append was acknowledged by the cluster (`acks`) before it returned.
    async fn flush(&self) -> Result<(), LogError> {
        Ok(())
    }
}
