//! Produce: a call's batches cut to `batch.size`, sent one batch per partition per request,
//! grouped by leader, retried on leader moves and network faults with the same sequence
//! numbers, so the broker stores a retried batch once (the idempotent producer).
//!
//! Each partition's sequence lives behind its own async lock, held for the whole append: a
//! partition has one batch in flight at a time, so sequences never race and a retry never
//! overtakes the batch before it. Different partitions proceed in parallel.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, TopicName,
    produce_request::{PartitionProduceData, TopicProduceData},
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Mutex, OwnedMutexGuard};
use weir_broker::wire::{ProducerStamp, encode_batch};
use weir_broker::{AppendResult, Record};

use super::cluster::Cluster;
use super::error::KafkaError;
use crate::log::PartitionBatch;

/// A producer id and epoch from InitProducerId.
type Identity = (i64, i16);

#[derive(Debug, Default)]
struct PartitionSequence {
    identity: Option<Identity>,
    next: i32,
}

type SequenceLock = Arc<Mutex<PartitionSequence>>;

/// The idempotent producer's state: its id and each partition's next sequence number.
#[derive(Debug, Default)]
pub(super) struct Producer {
    identity: Mutex<Option<Identity>>,
    partitions: std::sync::Mutex<HashMap<(String, u32), SequenceLock>>,
}

/// Each partition's outcome of a Produce request, or the partitions and the request's error.
type Outcomes<'a> = Result<Vec<((&'a str, u32), Result<i64, KafkaError>)>, (Vec<(&'a str, u32)>, KafkaError)>;

/// One batch to send: a slice of one input batch's records.
struct Chunk<'a> {
    /// Which input batch it belongs to.
    batch: usize,
    topic: &'a str,
    partition: u32,
    records: &'a [Record],
    /// The stamp and bytes it was last encoded with (a retry resends them unchanged).
    encoded: Option<(Option<ProducerStamp>, Bytes)>,
}

/// Cuts records into runs of at most `limit` bytes (a record over the limit goes alone).
fn cut(records: &[Record], limit: usize) -> Vec<&[Record]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (index, record) in records.iter().enumerate() {
        let record_size = 24
            + record.key.as_ref().map_or(0, Bytes::len)
            + record.value.as_ref().map_or(0, Bytes::len)
            + record
                .headers
                .iter()
                .map(|(key, value)| key.len() + value.as_ref().map_or(0, Bytes::len) + 4)
                .sum::<usize>();
        if index > start && size + record_size > limit {
            runs.push(&records[start..index]);
            start = index;
            size = 0;
        }
        size += record_size;
    }
    if start < records.len() {
        runs.push(&records[start..]);
    }
    runs
}

impl Producer {
    /// The producer's id, asking the cluster for one if it has none.
    async fn identity(&self, cluster: &Cluster) -> Result<Identity, KafkaError> {
        let mut identity = self.identity.lock().await;
        if let Some(known) = *identity {
            return Ok(known);
        }
        let connection = cluster.any().await?;
        let version = connection.version(ApiKey::InitProducerId, (0, 4))?;
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let answer: InitProducerIdResponse = connection.call(&request, version).await?;
        if answer.error_code != 0 {
            return Err(KafkaError::broker(ApiKey::InitProducerId, answer.error_code, None));
        }
        let known = (answer.producer_id.0, answer.producer_epoch);
        tracing::debug!(producer_id = known.0, epoch = known.1, "idempotent producer id");
        *identity = Some(known);
        Ok(known)
    }

    /// Drops the producer id `failed` (the broker no longer accepts its sequences): the next
    /// batch asks for a new one and every partition starts again at sequence 0.
    async fn reset(&self, failed: Identity) {
        let mut identity = self.identity.lock().await;
        if *identity == Some(failed) {
            *identity = None;
        }
    }

    /// The partition's sequence lock.
    fn sequence(&self, topic: &str, partition: u32) -> SequenceLock {
        let mut partitions = self.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        partitions.entry((topic.to_owned(), partition)).or_default().clone()
    }

    /// Appends every batch; results in input order. See the module docs.
    pub(super) async fn append(
        &self,
        cluster: &Cluster,
        batches: &[PartitionBatch],
    ) -> Result<Vec<AppendResult>, KafkaError> {
        let config = &cluster.config;
        if let Some(empty) = batches.iter().find(|batch| batch.records.is_empty()) {
            return Err(KafkaError::Config {
                key: format!("{}/{}", empty.topic, empty.partition),
                message: "a batch without records".to_owned(),
            });
        }
        // Each partition's chunks in order, behind the partition's lock (taken in a fixed order).
        let mut queues: BTreeMap<(&str, u32), Vec<Chunk<'_>>> = BTreeMap::new();
        for (index, batch) in batches.iter().enumerate() {
            let queue = queues.entry((batch.topic.as_str(), batch.partition)).or_default();
            for records in cut(&batch.records, config.batch_size) {
                queue.push(Chunk {
                    batch: index,
                    topic: &batch.topic,
                    partition: batch.partition,
                    records,
                    encoded: None,
                });
            }
        }
        let mut locks: Vec<((&str, u32), OwnedMutexGuard<PartitionSequence>)> = Vec::with_capacity(queues.len());
        for &(topic, partition) in queues.keys() {
            locks.push(((topic, partition), self.sequence(topic, partition).lock_owned().await));
        }
        let mut sequences: HashMap<(&str, u32), OwnedMutexGuard<PartitionSequence>> = locks.into_iter().collect();
        for queue in queues.values_mut() {
            queue.reverse();
        }
        let mut results: Vec<Option<AppendResult>> = vec![None; batches.len()];
        let deadline = std::time::Instant::now() + config.delivery_timeout;
        let mut backoff = config.retry_backoff;
        while queues.values().any(|queue| !queue.is_empty()) {
            let identity = if config.enable_idempotence { Some(self.identity(cluster).await?) } else { None };
            // The head chunk of every partition, grouped by leader.
            let mut by_leader: HashMap<i32, Vec<&mut Chunk<'_>>> = HashMap::new();
            let mut failure: Option<KafkaError> = None;
            for queue in queues.values_mut() {
                let Some(chunk) = queue.last_mut() else { continue };
                match cluster.leader(chunk.topic, chunk.partition).await {
                    Ok(leader) => by_leader.entry(leader).or_default().push(chunk),
                    Err(error) => {
                        if !error.is_retriable() {
                            return Err(error);
                        }
                        failure = Some(error);
                    }
                }
            }
            let mut requests = Vec::with_capacity(by_leader.len());
            for (leader, mut chunks) in by_leader {
                for chunk in &mut chunks {
                    let sequence = sequences.get_mut(&(chunk.topic, chunk.partition)).expect("locked above");
                    if sequence.identity != identity {
                        sequence.identity = identity;
                        sequence.next = 0;
                    }
                    let stamp = identity.map(|(producer_id, producer_epoch)| ProducerStamp {
                        producer_id,
                        producer_epoch,
                        base_sequence: sequence.next,
                    });
                    if chunk.encoded.as_ref().is_none_or(|(encoded_stamp, _)| *encoded_stamp != stamp) {
                        let bytes = encode_batch(chunk.records, stamp, config.compression).map_err(|source| {
                            KafkaError::Corrupt { topic: chunk.topic.to_owned(), partition: chunk.partition, source }
                        })?;
                        chunk.encoded = Some((stamp, bytes));
                    }
                }
                requests.push(self.produce(cluster, leader, chunks));
            }
            for outcomes in join_all(requests).await {
                let outcomes = match outcomes {
                    Ok(outcomes) => outcomes,
                    Err((keys, error)) => {
                        if !error.is_retriable() {
                            return Err(error);
                        }
                        for (topic, _) in keys {
                            cluster.forget(topic).await;
                        }
                        failure = Some(error);
                        continue;
                    }
                };
                for ((topic, partition), outcome) in outcomes {
                    match outcome {
                        Ok(base_offset) => {
                            let queue = queues.get_mut(&(topic, partition)).expect("queued");
                            let chunk = queue.pop().expect("a head chunk");
                            let count = i32::try_from(chunk.records.len()).unwrap_or(i32::MAX);
                            let sequence = sequences.get_mut(&(topic, partition)).expect("locked above");
                            sequence.next =
                                sequence.next.checked_add(count).unwrap_or(count - (i32::MAX - sequence.next) - 1);
                            let last_offset = base_offset + i64::from(count) - 1;
                            let result = results[chunk.batch].get_or_insert(AppendResult { base_offset, last_offset });
                            result.last_offset = last_offset;
                        }
                        Err(error) => {
                            if let KafkaError::Broker { code: 45 | 47 | 59, .. } = error
                                && let Some(identity) = identity
                            {
                                // The broker lost or refused this producer's sequence state.
                                tracing::warn!(%error, topic, partition, "producer id reset");
                                self.reset(identity).await;
                            } else if !error.is_retriable() {
                                return Err(error);
                            }
                            if error.wants_metadata() {
                                cluster.forget(topic).await;
                            }
                            failure = Some(error);
                        }
                    }
                }
            }
            if let Some(error) = failure {
                if std::time::Instant::now() + backoff >= deadline {
                    return Err(error);
                }
                tracing::debug!(%error, "retrying a produce");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            } else {
                backoff = config.retry_backoff;
            }
        }
        Ok(results.into_iter().map(|result| result.expect("every batch written")).collect())
    }

    /// One Produce request to `leader` with one chunk per partition: each partition's outcome
    /// (its base offset or its error), or the request's own error when it had no answer.
    async fn produce<'a>(&self, cluster: &Cluster, leader: i32, chunks: Vec<&mut Chunk<'a>>) -> Outcomes<'a> {
        let keys: Vec<(&'a str, u32)> = chunks.iter().map(|chunk| (chunk.topic, chunk.partition)).collect();
        let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
        for chunk in &chunks {
            let (_, bytes) = chunk.encoded.as_ref().expect("encoded before sending");
            topics.entry(chunk.topic).or_default().push(
                PartitionProduceData::default()
                    .with_index(i32::try_from(chunk.partition).unwrap_or(i32::MAX))
                    .with_records(Some(bytes.clone())),
            );
        }
        let request = ProduceRequest::default()
            .with_acks(cluster.config.acks)
            .with_timeout_ms(i32::try_from(cluster.config.request_timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topic_data(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                            .with_partition_data(partitions)
                    })
                    .collect(),
            );
        let answer: Result<ProduceResponse, KafkaError> = async {
            let connection = cluster.node(leader).await?;
            let version = connection.version(ApiKey::Produce, (3, 9))?;
            connection.call(&request, version).await
        }
        .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => return Err((keys, error)),
        };
        let mut outcomes = Vec::with_capacity(keys.len());
        for key in keys {
            let partition = answer
                .responses
                .iter()
                .filter(|topic| topic.name.0.as_str() == key.0)
                .flat_map(|topic| &topic.partition_responses)
                .find(|partition| i64::from(partition.index) == i64::from(key.1));
            let outcome = match partition {
                None => {
                    Err(KafkaError::connection(&format!("node {leader}"), "the produce answer left out a partition"))
                }
                // DUPLICATE_SEQUENCE_NUMBER: stored before (a retry of a batch that landed).
                Some(partition) if partition.error_code == 0 || partition.error_code == 46 => Ok(partition.base_offset),
                Some(partition) => Err(KafkaError::broker(
                    ApiKey::Produce,
                    partition.error_code,
                    partition.error_message.as_ref().map(|message| format!("{}/{}: {message}", key.0, key.1)),
                )),
            };
            outcomes.push((key, outcome));
        }
        Ok(outcomes)
    }
}
