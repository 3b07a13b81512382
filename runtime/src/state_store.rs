//! Connector state (the `state` import) and committed source offsets, each a [`KeyedStore`]
//! over its own internal topic.

use std::sync::Arc;

use weir_broker::{Log, LogError};
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
    pub fn open(log: Arc<Log>) -> Result<Self, LogError> {
        Ok(Self { store: KeyedStore::open(log, STATE_TOPIC)? })
    }

    pub fn get(&self, connector: &str, key: &str) -> Option<Vec<u8>> {
        self.store.get(connector, key.as_bytes())
    }

    /// # Errors
    /// When the append fails.
    pub fn set(&self, connector: &str, key: &str, value: Option<&[u8]>) -> Result<(), LogError> {
        self.store.put_all(connector, [(key.as_bytes(), value)])
    }

    /// # Errors
    /// When the append fails.
    pub fn clear(&self, connector: &str) -> Result<(), LogError> {
        self.store.clear(connector)
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
    pub fn open(log: Arc<Log>) -> Result<Self, LogError> {
        Ok(Self { store: KeyedStore::open(log, OFFSETS_TOPIC)? })
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
    pub fn commit(&self, connector: &str, positions: &[SourceOffset]) -> Result<(), LogError> {
        self.store.put_all(
            connector,
            positions.iter().map(|offset| (offset.partition.as_slice(), Some(offset.position.as_slice()))),
        )
    }

    /// Remove every position of a connector.
    ///
    /// # Errors
    /// When the append fails.
    pub fn reset(&self, connector: &str) -> Result<(), LogError> {
        self.store.clear(connector)
    }
}
