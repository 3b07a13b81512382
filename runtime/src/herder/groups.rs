//! Sink connectors as consumer groups: what the Kafka listener shows of them
//! ([`crate::kafka_groups`]).

use weir_connector_sdk::Kind;

use super::StandaloneHerder;
use crate::task::State;

/// A sink connector seen as its consumer group `connect-<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkGroupView {
    pub connector: String,
    /// The topics it reads.
    pub topics: Vec<String>,
    /// Its tasks that are running now (ids).
    pub running_tasks: Vec<u32>,
    /// How many tasks share the topics' partitions.
    pub task_count: u32,
}

impl StandaloneHerder {
    /// Every sink connector with its running tasks.
    pub fn sink_groups(&self) -> Vec<SinkGroupView> {
        self.connectors_map()
            .iter()
            .filter(|(_, connector)| connector.kind == Kind::Sink)
            .map(|(name, connector)| SinkGroupView {
                connector: name.clone(),
                topics: connector.definition.topics(),
                running_tasks: connector
                    .tasks
                    .iter()
                    .map(|slot| slot.status())
                    .filter(|status| status.state == State::Running)
                    .map(|status| status.id)
                    .collect(),
                task_count: connector.tasks.len() as u32,
            })
            .collect()
    }
}
