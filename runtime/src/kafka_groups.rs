//! weir's sink tasks as Kafka consumer groups: [`SinkConsumerGroups`] shows each sink
//! connector to the Kafka listener (`weir run --kafka-listen`) as the group `connect-<name>`
//! (the name Kafka Connect gives its sinks' groups), so `kafka-consumer-groups`-style tools list
//! it, describe it (Stable while a task runs, Empty otherwise; a member per running task with
//! the partitions it reads) and fetch its committed offsets, which are the offsets the sink
//! tasks commit to the log.

use weir_broker::kafka::{HostedGroup, HostedGroups, HostedMember};

use crate::herder::{SinkGroupView, StandaloneHerder};
use crate::log::EmbeddedLog;
use crate::supervisor::sink_group;
use crate::task::owner;

/// The sink connectors of a herder, as consumer groups of the log they read.
#[derive(Clone)]
pub struct SinkConsumerGroups {
    herder: StandaloneHerder,
    log: EmbeddedLog,
}

impl std::fmt::Debug for SinkConsumerGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConsumerGroups").finish_non_exhaustive()
    }
}

impl SinkConsumerGroups {
    /// The sinks `herder` runs, reading `log`.
    pub fn new(herder: StandaloneHerder, log: EmbeddedLog) -> Self {
        Self { herder, log }
    }

    fn group_of(&self, view: SinkGroupView) -> HostedGroup {
        // Topics that do not exist yet have no partitions to read (the task subscribes when
        // they appear, as a consumer does).
        let partitions: Vec<(String, u32)> = view
            .topics
            .iter()
            .map(|topic| (topic.clone(), self.log.broker().topic_config(topic).map_or(0, |config| config.partitions)))
            .collect();
        let members = view
            .running_tasks
            .iter()
            .map(|&task| {
                let client_id = format!("connector-consumer-{}-{task}", view.connector);
                HostedMember {
                    member_id: format!("{client_id}-in-process"),
                    client_id,
                    client_host: "/in-process".to_owned(),
                    topics: view.topics.clone(),
                    assignment: partitions
                        .iter()
                        .map(|(topic, count)| {
                            let owned =
                                (0..*count).filter(|partition| owner(topic, *partition, view.task_count) == task);
                            (topic.clone(), owned.collect())
                        })
                        .filter(|(_, owned): &(String, Vec<u32>)| !owned.is_empty())
                        .collect(),
                }
            })
            .collect();
        HostedGroup { group_id: sink_group(&view.connector), members }
    }
}

impl HostedGroups for SinkConsumerGroups {
    fn groups(&self) -> Vec<HostedGroup> {
        self.herder.sink_groups().into_iter().map(|view| self.group_of(view)).collect()
    }

    fn group(&self, group_id: &str) -> Option<HostedGroup> {
        let connector = group_id.strip_prefix("connect-")?;
        self.herder.sink_groups().into_iter().find(|view| view.connector == connector).map(|view| self.group_of(view))
    }
}
