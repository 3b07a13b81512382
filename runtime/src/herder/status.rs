//! What the standalone herder reports: snapshots, infos, active topics and sink lag, and the
//! statuses it records in `weir-status`.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use weir_connector_sdk::Kind;

use super::standalone::{Connector, StandaloneHerder};
use super::{ConnectorInfo, ConnectorSnapshot, HerderError, TaskSnapshot};
use crate::manifest::ConnectorDefinition;
use crate::supervisor::sink_group;

impl StandaloneHerder {
    pub(super) fn info_of(&self, name: &str) -> Option<ConnectorInfo> {
        self.connectors_map().get(name).map(|connector| ConnectorInfo {
            definition: connector.definition.clone(),
            kind: connector.kind,
            target: connector.target,
            tasks: (0..connector.tasks.len() as u32).collect(),
        })
    }

    pub(super) fn snapshot_of(&self, name: &str, connector: &Connector) -> ConnectorSnapshot {
        ConnectorSnapshot {
            name: name.to_owned(),
            class: connector.definition.class.clone(),
            kind: connector.kind,
            state: connector.state,
            target: connector.target,
            trace: connector.trace.clone(),
            worker_id: self.inner.worker_id.clone(),
            tasks: connector
                .tasks
                .iter()
                .map(|slot| TaskSnapshot {
                    status: slot.status(),
                    records: slot.metrics.records(),
                    bytes: slot.metrics.bytes(),
                    batches: slot.metrics.batches.load(Ordering::Relaxed),
                    errors: slot.metrics.errors.load(Ordering::Relaxed),
                    last_commit_ms: slot.metrics.last_commit_ms.load(Ordering::Relaxed),
                    retries: slot.metrics.retries.load(Ordering::Relaxed),
                    gauges: slot.metrics.gauges(),
                })
                .collect(),
        }
    }

    pub(super) fn topics_of(&self, name: &str) -> Result<BTreeSet<String>, HerderError> {
        if !self.connectors_map().contains_key(name) {
            return Err(Self::not_found(name));
        }
        Ok(self
            .inner
            .store
            .status(name, "topics")
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default())
    }

    pub(super) async fn record_connector_status(&self, name: &str) {
        let json = {
            let connectors = self.connectors_map();
            let Some(connector) = connectors.get(name) else { return };
            serde_json::json!({
                "state": connector.state,
                "worker_id": self.inner.worker_id,
                "trace": connector.trace,
            })
        };
        if let Err(error) = self.inner.store.put_status(name, "connector", &json).await {
            tracing::warn!(connector = name, %error, "cannot record the connector status");
        }
    }

    /// Add the connector's configured topics to its active topics (Kafka Connect tracks the
    /// topics a connector used; weir knows them from the config).
    pub(super) async fn record_configured_topics(&self, name: &str) {
        let configured = {
            let connectors = self.connectors_map();
            let Some(connector) = connectors.get(name) else { return };
            configured_topics(&connector.definition)
        };
        self.add_active_topics(name, configured).await;
    }

    /// Add topics to a connector's active topics (stored in `weir-status`).
    pub(super) async fn add_active_topics(&self, name: &str, topics: impl IntoIterator<Item = String>) {
        let _serialized = self.inner.topics_lock.lock().await;
        let mut active = self.topics_of(name).unwrap_or_default();
        let before = active.len();
        active.extend(topics);
        if active.len() != before {
            let json = serde_json::json!(active);
            if let Err(error) = self.inner.store.put_status(name, "topics", &json).await {
                tracing::warn!(connector = name, %error, "cannot record the active topics");
            }
        }
    }

    pub(super) async fn lag_of(&self, name: &str) -> Vec<(String, u32, i64)> {
        let Some(definition) = self
            .connectors_map()
            .get(name)
            .filter(|connector| connector.kind == Kind::Sink)
            .map(|connector| connector.definition.clone())
        else {
            return Vec::new();
        };
        let log = &self.inner.log;
        let committed = log.group_offsets(&sink_group(name)).await.unwrap_or_default();
        let mut lag = Vec::new();
        for topic in definition.topics() {
            let Ok(Some(config)) = log.topic_config(&topic).await else { continue };
            for partition in 0..config.partitions {
                let Ok(range) = log.offset_range(&topic, partition).await else { break };
                let done = committed
                    .iter()
                    .find(|offset| offset.topic == topic && offset.partition == partition)
                    .map_or(0, |offset| offset.offset);
                lag.push((topic.clone(), partition, (range.end - done).max(0)));
            }
        }
        lag
    }
}

/// The topics a definition names: a sink's `topics`, a source's `topic` / `topics`.
fn configured_topics(definition: &ConnectorDefinition) -> Vec<String> {
    let mut topics = definition.topics();
    if let Some(serde_json::Value::String(topic)) = definition.config.get("topic")
        && !topic.contains("${")
    {
        topics.push(topic.clone());
    }
    topics.retain(|topic| !topic.contains("${"));
    topics
}
