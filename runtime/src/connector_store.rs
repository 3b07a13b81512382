//! Connector configs, target states and statuses, each kept in an internal topic of the log
//! (Kafka Connect's `connect-configs` and `connect-status`) so that a restarted worker brings
//! every connector back in the state it was left in.
//!
//! `weir-configs` holds two namespaces of a [`KeyedStore`]: `connector` (name → the definition
//! as JSON, config provider references unresolved) and `target` (name → `RUNNING`, `PAUSED` or
//! `STOPPED`). `weir-status` is namespaced by connector: `connector` and `task-<id>` → the last
//! reported status as JSON, `topics` → the connector's active topics.

use std::sync::Arc;

use crate::log::{EventLog, Generation, LogError};

use crate::keyed_store::KeyedStore;
use crate::manifest::ConnectorDefinition;

/// Internal topic of connector configs and target states.
pub const CONFIGS_TOPIC: &str = "weir-configs";
/// Internal topic of connector and task statuses.
pub const STATUS_TOPIC: &str = "weir-status";

const DEFINITIONS: &str = "connector";
const TARGETS: &str = "target";
/// The worker's own entries (its generation counter).
const WORKER: &str = "worker";
const GENERATION: &str = "generation";

/// What a connector should be doing, as asked by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    Running,
    Paused,
    Stopped,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Running => "RUNNING",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "RUNNING" => Some(TargetState::Running),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

/// The persisted connectors.
#[derive(Debug)]
pub struct ConnectorStore {
    configs: KeyedStore,
    status: KeyedStore,
    /// The generation this worker writes with.
    generation: Generation,
}

impl ConnectorStore {
    /// # Errors
    /// When an internal topic cannot be created or replayed.
    pub async fn open(log: Arc<dyn EventLog>) -> Result<Self, LogError> {
        let configs = KeyedStore::open(log.clone(), CONFIGS_TOPIC).await?;
        let status = KeyedStore::open(log, STATUS_TOPIC).await?;
        // Standalone, each start of the worker is a generation: one more than the last stored.
        let last = configs
            .get(WORKER, GENERATION.as_bytes())
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let generation = Generation(last + 1);
        configs
            .put_all(WORKER, vec![(GENERATION.as_bytes(), Some(&generation.0.to_le_bytes()[..]))], generation)
            .await?;
        Ok(Self { configs, status, generation })
    }

    /// The generation of this start of the worker.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Every stored connector with its target state, by name. Entries that no longer parse are
    /// skipped with a warning.
    pub fn connectors(&self) -> Vec<(ConnectorDefinition, TargetState)> {
        let targets = self.configs.entries(TARGETS);
        self.configs
            .entries(DEFINITIONS)
            .into_iter()
            .filter_map(|(name, json)| {
                let name = String::from_utf8_lossy(&name).into_owned();
                match serde_json::from_slice::<ConnectorDefinition>(&json) {
                    Ok(definition) => {
                        let target = targets
                            .get(name.as_bytes())
                            .and_then(|text| TargetState::parse(&String::from_utf8_lossy(text)))
                            .unwrap_or(TargetState::Running);
                        Some((definition, target))
                    }
                    Err(error) => {
                        tracing::warn!(connector = %name, %error, "skipping a stored connector config that does not parse");
                        None
                    }
                }
            })
            .collect()
    }

    /// # Errors
    /// When the append fails.
    pub async fn put(&self, definition: &ConnectorDefinition, target: TargetState) -> Result<(), LogError> {
        let json = serde_json::to_vec(definition).unwrap_or_default();
        self.configs
            .put_all(DEFINITIONS, vec![(definition.name.as_bytes(), Some(json.as_slice()))], self.generation)
            .await?;
        self.put_target(&definition.name, target).await
    }

    /// # Errors
    /// When the append fails.
    pub async fn put_target(&self, name: &str, target: TargetState) -> Result<(), LogError> {
        self.configs.put_all(TARGETS, vec![(name.as_bytes(), Some(target.as_str().as_bytes()))], self.generation).await
    }

    /// Forget a connector's config, target state and statuses.
    ///
    /// # Errors
    /// When an append fails.
    pub async fn remove(&self, name: &str) -> Result<(), LogError> {
        self.configs.put_all(DEFINITIONS, vec![(name.as_bytes(), None)], self.generation).await?;
        self.configs.put_all(TARGETS, vec![(name.as_bytes(), None)], self.generation).await?;
        self.status.clear(name, self.generation).await
    }

    /// Record a status (`connector`, `task-<id>` or `topics`).
    ///
    /// # Errors
    /// When the append fails.
    pub async fn put_status(&self, name: &str, key: &str, status: &serde_json::Value) -> Result<(), LogError> {
        let json = status.to_string();
        self.status.put_all(name, vec![(key.as_bytes(), Some(json.as_bytes()))], self.generation).await
    }

    pub fn status(&self, name: &str, key: &str) -> Option<serde_json::Value> {
        self.status.get(name, key.as_bytes()).and_then(|json| serde_json::from_slice(&json).ok())
    }
}
