//! Metadata (0–12): the one broker, and every topic's partitions led by it. Topics a client
//! asks for that do not exist are created when auto-creation is on (and the client allows it,
//! from v4).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::codes;
use super::dispatch::Request;
use super::server::Context;
use crate::{LogError, TopicConfig};

pub(super) fn broker(context: &Context) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(context.config.node_id))
        .with_host(StrBytes::from_string(context.advertised_host.clone()))
        .with_port(context.advertised_port)
}

fn describe(context: &Context, name: &str) -> MetadataResponseTopic {
    let topic = MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))));
    let Some(config) = context.log.topic_config(name) else {
        return topic.with_error_code(codes::code(ResponseError::UnknownTopicOrPartition));
    };
    let node = BrokerId(context.config.node_id);
    let partitions = (0..config.partitions)
        .map(|partition| {
            MetadataResponsePartition::default()
                .with_partition_index(partition as i32)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    topic.with_is_internal(name.starts_with("__")).with_partitions(partitions)
}

fn auto_create(context: &Context, name: &str) -> Result<(), LogError> {
    context.log.ensure_topic(name, TopicConfig::with_partitions(context.config.default_partitions))?;
    tracing::info!(topic = name, partitions = context.config.default_partitions, "auto-created topic");
    Ok(())
}

pub(super) async fn handle(context: &Context, request: &Request<'_>, message: MetadataRequest) -> MetadataResponse {
    // v0 asks for every topic with an empty list; later versions with a null one.
    let requested = match message.topics {
        Some(topics) if !(request.version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let allow_create = context.config.auto_create_topics && (request.version < 4 || message.allow_auto_topic_creation);
    let topics = match requested {
        None => context.log.topics().iter().map(|name| describe(context, name)).collect(),
        Some(topics) => topics
            .into_iter()
            .map(|topic| {
                let Some(name) = topic.name else {
                    return MetadataResponseTopic::default()
                        .with_name(None)
                        .with_topic_id(topic.topic_id)
                        .with_error_code(codes::code(ResponseError::UnknownTopicId));
                };
                let name = name.0.to_string();
                if context.log.topic_config(&name).is_none()
                    && allow_create
                    && let Err(error) = auto_create(context, &name)
                {
                    return MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name))))
                        .with_error_code(codes::log_error(&error));
                }
                describe(context, &name)
            })
            .collect(),
    };
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker(context)])
        .with_controller_id(BrokerId(context.config.node_id))
        .with_topics(topics);
    if request.version >= 2 {
        response = response.with_cluster_id(Some(StrBytes::from_string(context.config.cluster_id.clone())));
    }
    response
}
