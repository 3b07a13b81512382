//! Connector state (the `state` import) and committed source offsets, each a [`KeyedStore`]
//! over its own internal topic.

use std::sync::Arc;

use crate::log::{Batches, EventLog, Generation, LogError};
use weir_connector_sdk::SourceOffset;

use crate::keyed_store::KeyedStore;

/// Internal topic holding committed source positions (Kafka Connect's `connect-offsets`).
pub const OFFSETS_TOPIC: &str = "weir-offsets";
/// Internal topic holding connectors' private key-value state.
pub const STATE_TOPIC: &str = "weir-state";

/// The per-connector key-value store behind the `state` import.
#[derive(Debug)]
pub struct StateStore {
    store: KeyedStore,
}

impl StateStore {
    /// # Errors
    /// When the internal topic cannot be created or replayed.
    pub async fn open(log: Arc<dyn EventLog>) -> Result<Self, LogError> {
        Ok(Self { store: KeyedStore::open(log, STATE_TOPIC).await? })
    }

    pub fn get(&self, connector: &str, key: &str) -> Option<Vec<u8>> {
        self.store.get(connector, key.as_bytes())
    }

    /// # Errors
    /// When the append fails.
    pub async fn set(
        &self,
        connector: &str,
        key: &str,
        value: Option<&[u8]>,
        generation: Generation,
    ) -> Result<(), LogError> {
        self.store.put_all(connector, vec![(key.as_bytes(), value)], generation).await
    }

    /// # Errors
    /// When the append fails.
    pub async fn clear(&self, connector: &str, generation: Generation) -> Result<(), LogError> {
        self.store.clear(connector, generation).await
    }
}

/// Committed source positions: the latest per (connector, source partition).
#[derive(Debug)]
pub struct OffsetStore {
    store: KeyedStore,
}

impl OffsetStore {
    /// # Errors
    /// When the internal topic cannot be created or replayed.
    pub async fn open(log: Arc<dyn EventLog>) -> Result<Self, LogError> {
        Ok(Self { store: KeyedStore::open(log, OFFSETS_TOPIC).await? })
    }

    /// Every committed position of a connector.
    pub fn committed(&self, connector: &str) -> Vec<SourceOffset> {
        self.store
            .entries(connector)
            .into_iter()
            .map(|(partition, position)| SourceOffset { partition, position })
            .collect()
    }

    /// Store positions; durable when this returns.
    ///
    /// # Errors
    /// When the append fails (nothing is then stored).
    pub async fn commit(
        &self,
        connector: &str,
        positions: &[SourceOffset],
        generation: Generation,
    ) -> Result<(), LogError> {
        self.store.put_all(connector, changes(positions), generation).await
    }

    /// Append a source task's records and then the positions covering them
    /// ([`EventLog::append_with_offsets`]); the positions are durable and visible here when this
    /// returns.
    ///
    /// # Errors
    /// When an append fails; the positions are then not stored.
    pub async fn append_with_positions(
        &self,
        log: &dyn EventLog,
        connector: &str,
        batches: Batches,
        positions: &[SourceOffset],
        generation: Generation,
    ) -> Result<(), LogError> {
        let offsets = self.store.batch(connector, &changes(positions));
        log.append_with_offsets(batches, offsets, generation).await?;
        self.store.apply(connector, changes(positions));
        Ok(())
    }

    /// Remove every position of a connector.
    ///
    /// # Errors
    /// When the append fails.
    pub async fn reset(&self, connector: &str, generation: Generation) -> Result<(), LogError> {
        self.store.clear(connector, generation).await
    }
}

fn changes(positions: &[SourceOffset]) -> crate::keyed_store::Changes<'_> {
    positions.iter().map(|offset| (offset.partition.as_slice(), Some(offset.position.as_slice()))).collect()
}
