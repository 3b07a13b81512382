//! Offsets admin (Kafka Connect's `GET`/`PATCH`/`DELETE /connectors/{name}/offsets`): a source's
//! positions in `weir-offsets`, a sink's consumer-group offsets; changed only when STOPPED.

use weir_connector_sdk::{Kind, SourceOffset};

use super::standalone::StandaloneHerder;
use super::{ConnectorOffsets, HerderError};
use crate::log::GroupOffset;
use crate::supervisor::sink_group;

impl StandaloneHerder {
    fn kind_of(&self, name: &str) -> Result<Kind, HerderError> {
        self.connectors_map().get(name).map(|connector| connector.kind).ok_or_else(|| Self::not_found(name))
    }

    pub(super) async fn offsets_of(&self, name: &str) -> Result<ConnectorOffsets, HerderError> {
        Ok(match self.kind_of(name)? {
            Kind::Source => ConnectorOffsets::Source(
                self.inner
                    .supervisor
                    .offsets()
                    .committed(name)
                    .into_iter()
                    .map(|offset| (json_or_text(&offset.partition), json_or_text(&offset.position)))
                    .collect(),
            ),
            Kind::Sink => ConnectorOffsets::Sink(
                self.inner
                    .log
                    .group_offsets(&sink_group(name))
                    .await
                    .map_err(HerderError::log("reading group offsets"))?
                    .into_iter()
                    .map(|offset| (offset.topic, offset.partition, offset.offset))
                    .collect(),
            ),
        })
    }

    fn require_stopped(&self, name: &str) -> Result<Kind, HerderError> {
        let connectors = self.connectors_map();
        let connector = connectors.get(name).ok_or_else(|| Self::not_found(name))?;
        if connector.target != crate::connector_store::TargetState::Stopped {
            return Err(HerderError::NotStopped { name: name.to_owned() });
        }
        Ok(connector.kind)
    }

    pub(super) async fn alter_offsets_locked(&self, name: &str, offsets: ConnectorOffsets) -> Result<(), HerderError> {
        let kind = self.require_stopped(name)?;
        let generation = self.inner.supervisor.generation();
        let store = self.inner.supervisor.offsets();
        let log = &self.inner.log;
        match (kind, offsets) {
            (Kind::Source, ConnectorOffsets::Source(changes)) => {
                let current = store.committed(name);
                let mut kept: Vec<SourceOffset> = current.clone();
                for (partition, position) in changes {
                    // Keep the connector's own bytes for a partition it already wrote, so that
                    // its next commit replaces this entry instead of adding one.
                    let key = current
                        .iter()
                        .find(|offset| json_or_text(&offset.partition) == partition)
                        .map(|offset| offset.partition.clone())
                        .unwrap_or_else(|| json_bytes(&partition));
                    kept.retain(|offset| offset.partition != key);
                    if !position.is_null() {
                        kept.push(SourceOffset { partition: key, position: json_bytes(&position) });
                    }
                }
                store.reset(name, generation).await.map_err(HerderError::log("resetting source offsets"))?;
                store.commit(name, &kept, generation).await.map_err(HerderError::log("storing source offsets"))?;
            }
            (Kind::Sink, ConnectorOffsets::Sink(changes)) => {
                let group = sink_group(name);
                let is_removed = |offset: &GroupOffset| {
                    changes.iter().any(|(topic, partition, value)| {
                        *value < 0 && *topic == offset.topic && *partition == offset.partition
                    })
                };
                if changes.iter().any(|(_, _, offset)| *offset < 0) {
                    let kept: Vec<GroupOffset> = log
                        .group_offsets(&group)
                        .await
                        .map_err(HerderError::log("reading group offsets"))?
                        .into_iter()
                        .filter(|offset| !is_removed(offset))
                        .collect();
                    log.delete_group_offsets(&group).await.map_err(HerderError::log("deleting group offsets"))?;
                    if !kept.is_empty() {
                        log.commit_offsets(&group, kept, generation)
                            .await
                            .map_err(HerderError::log("committing group offsets"))?;
                    }
                }
                let set: Vec<GroupOffset> = changes
                    .into_iter()
                    .filter(|(_, _, offset)| *offset >= 0)
                    .map(|(topic, partition, offset)| GroupOffset { topic, partition, offset })
                    .collect();
                if !set.is_empty() {
                    log.commit_offsets(&group, set, generation)
                        .await
                        .map_err(HerderError::log("committing group offsets"))?;
                }
            }
            (kind, _) => return Err(HerderError::OffsetsKindMismatch { name: name.to_owned(), kind }),
        }
        tracing::info!(connector = name, "offsets altered");
        Ok(())
    }

    pub(super) async fn reset_offsets_locked(&self, name: &str) -> Result<(), HerderError> {
        match self.require_stopped(name)? {
            Kind::Source => self
                .inner
                .supervisor
                .offsets()
                .reset(name, self.inner.supervisor.generation())
                .await
                .map_err(HerderError::log("resetting source offsets"))?,
            Kind::Sink => self
                .inner
                .log
                .delete_group_offsets(&sink_group(name))
                .await
                .map_err(HerderError::log("deleting group offsets"))?,
        }
        tracing::info!(connector = name, "offsets reset");
        Ok(())
    }
}

fn json_or_text(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(text) if serde_json::from_str::<serde_json::Value>(text).is_err() => {
            text.clone().into_bytes()
        }
        other => serde_json::to_vec(other).unwrap_or_default(),
    }
}
