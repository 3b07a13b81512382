//! [`GroupCoordinator`]: the groups behind one lock, parked joins and syncs, and the timer that
//! expires silent members.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::GroupError;
use super::group::{Group, GroupState, JoinStep, SyncStep};
use crate::Log;
use crate::fs_util::lock;

/// Limits and timing of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Shortest session timeout a member may ask for (Kafka's `group.min.session.timeout.ms`).
    pub min_session_timeout: Duration,
    /// Longest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout: Duration,
    /// How long the first join phase of an empty group waits for more members before it
    /// completes (`group.initial.rebalance.delay.ms`), so a group of several members that start
    /// together forms in one rebalance instead of one per member.
    pub initial_rebalance_delay: Duration,
    /// How often silent members and overdue join phases are looked for: the precision of every
    /// timeout.
    pub tick: Duration,
}

impl Default for CoordinatorConfig {
    /// Sessions of 1 s to 30 min, no initial delay, a 100 ms tick.
    fn default() -> Self {
        CoordinatorConfig {
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::ZERO,
            tick: Duration::from_millis(100),
        }
    }
}

/// One protocol a member supports, with its opaque metadata (for consumers: the subscription).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// The protocol name (for consumers: the assignor, `range`, `cooperative-sticky`, ...).
    pub name: String,
    /// Opaque bytes the leader reads.
    pub metadata: Bytes,
}

/// A member's request to join a group.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The group.
    pub group_id: String,
    /// The member's id; empty for a member joining for the first time.
    pub member_id: String,
    /// The static instance id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The kind of group (`consumer`, `connect`, ...); every member must agree.
    pub protocol_type: String,
    /// The protocols the member supports, most preferred first.
    pub protocols: Vec<Protocol>,
    /// The member is removed when not heard from for this long.
    pub session_timeout: Duration,
    /// How long a join phase waits for this member to rejoin.
    pub rebalance_timeout: Duration,
    /// A first join without an id is answered [`GroupError::MemberIdRequired`] (KIP-394; Kafka
    /// clients ask for it from JoinGroup v4).
    pub require_known_member_id: bool,
    /// The client's id, for describing the group.
    pub client_id: String,
    /// The client's address, for describing the group.
    pub client_host: String,
}

/// A member of the group as the leader sees it after a join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinedMember {
    /// The member id.
    pub member_id: String,
    /// Its static instance id, if any.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The result of a completed join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The new generation.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: String,
    /// The protocol chosen (one every member supports).
    pub protocol_name: String,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member with its metadata, for the leader; empty for the others.
    pub members: Vec<JoinedMember>,
}

/// A member's request for its assignment; the leader's carries everyone's.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    /// The group.
    pub group_id: String,
    /// The generation the member joined.
    pub generation: i32,
    /// The member id.
    pub member_id: String,
    /// The static instance id, if any.
    pub group_instance_id: Option<String>,
    /// From the leader: each member's assignment; from the others: empty.
    pub assignments: Vec<(String, Bytes)>,
}

/// A member's assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The group's protocol type.
    pub protocol_type: String,
    /// The protocol chosen.
    pub protocol_name: String,
    /// The opaque assignment the leader gave this member.
    pub assignment: Bytes,
}

/// A member named by id, or by static instance id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberIdentity {
    /// The member id (may be empty when the instance id is given).
    pub member_id: String,
    /// The static instance id, if any.
    pub group_instance_id: Option<String>,
}

/// One offset to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The client's metadata string, stored with the offset.
    pub metadata: String,
}

/// A member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// The static instance id, if any.
    pub group_instance_id: Option<String>,
    /// The client id it joined with.
    pub client_id: String,
    /// The address it joined from.
    pub client_host: String,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Its current assignment.
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// The protocol type, empty for a group without members.
    pub protocol_type: String,
    /// The chosen protocol, empty unless stable or completing.
    pub protocol: String,
    /// The generation.
    pub generation: i32,
    /// The members, in join order.
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type (empty for a group that only has committed offsets).
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
}

/// The group coordinator of one log. Shared as `Arc`; cheap to call from many tasks.
#[derive(Debug)]
pub struct GroupCoordinator {
    log: Arc<Log>,
    config: CoordinatorConfig,
    groups: Mutex<HashMap<String, Group>>,
    next_member: AtomicU64,
    /// Distinguishes this coordinator's member ids from a previous run's.
    epoch: u64,
}

impl GroupCoordinator {
    /// A coordinator for `log`'s groups, and its timer task (which ends when the coordinator is
    /// dropped). Must be called inside a tokio runtime.
    pub fn new(log: Arc<Log>, config: CoordinatorConfig) -> Arc<Self> {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        let coordinator = Arc::new(GroupCoordinator {
            log,
            config,
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(0),
            epoch,
        });
        let weak = Arc::downgrade(&coordinator);
        tokio::spawn(run_timer(weak, coordinator.config.tick));
        coordinator
    }

    /// The log whose committed offsets this coordinator keeps.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let sequence = self.next_member.fetch_add(1, Ordering::Relaxed);
        let prefix = if client_id.is_empty() { "member" } else { client_id };
        format!("{prefix}-{:x}-{sequence}", self.epoch)
    }

    /// Joins a group (or rejoins it), waiting until the join phase completes: until every
    /// member has rejoined, or the longest rebalance timeout passed.
    ///
    /// # Errors
    ///
    /// [`GroupError::MemberIdRequired`] (join again with the given id);
    /// [`GroupError::UnknownMemberId`]; [`GroupError::FencedInstanceId`];
    /// [`GroupError::InconsistentGroupProtocol`]; [`GroupError::InvalidSessionTimeout`];
    /// [`GroupError::InvalidGroupId`]; [`GroupError::RebalanceInProgress`] if a newer join of
    /// the same member replaced this one.
    pub async fn join(&self, request: JoinRequest) -> Result<JoinOutcome, GroupError> {
        if request.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        if request.session_timeout < self.config.min_session_timeout
            || request.session_timeout > self.config.max_session_timeout
        {
            return Err(GroupError::InvalidSessionTimeout {
                given_ms: request.session_timeout.as_millis() as u64,
                min_ms: self.config.min_session_timeout.as_millis() as u64,
                max_ms: self.config.max_session_timeout.as_millis() as u64,
            });
        }
        let (sender, receiver) = oneshot::channel();
        let step = {
            let mut groups = lock(&self.groups);
            let group = groups.entry(request.group_id.clone()).or_insert_with(|| Group::new(&request.group_id));
            group.join(&request, sender, Instant::now(), self.config.initial_rebalance_delay, || {
                self.new_member_id(&request.client_id)
            })
        };
        match step {
            JoinStep::Done(result) => result,
            JoinStep::Parked => receiver.await.unwrap_or(Err(GroupError::ShuttingDown)),
        }
    }

    /// Fetches this member's assignment for the generation it joined; the leader's call
    /// carries everyone's assignment. A member other than the leader waits for the leader's.
    ///
    /// # Errors
    ///
    /// [`GroupError::UnknownMemberId`]; [`GroupError::IllegalGeneration`];
    /// [`GroupError::RebalanceInProgress`] (join again); [`GroupError::FencedInstanceId`].
    pub async fn sync(&self, request: SyncRequest) -> Result<SyncOutcome, GroupError> {
        let (sender, receiver) = oneshot::channel();
        let step = {
            let mut groups = lock(&self.groups);
            let Some(group) = groups.get_mut(&request.group_id) else {
                return Err(GroupError::UnknownMemberId { group: request.group_id, member_id: request.member_id });
            };
            group.sync(
                request.generation,
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.assignments,
                sender,
                Instant::now(),
            )
        };
        match step {
            SyncStep::Done(result) => result,
            SyncStep::Parked => receiver.await.unwrap_or(Err(GroupError::ShuttingDown)),
        }
    }

    /// Keeps a member's session alive.
    ///
    /// # Errors
    ///
    /// [`GroupError::RebalanceInProgress`] (join again); [`GroupError::UnknownMemberId`];
    /// [`GroupError::IllegalGeneration`]; [`GroupError::FencedInstanceId`].
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        let mut groups = lock(&self.groups);
        let group = groups.get_mut(group_id).ok_or_else(|| GroupError::UnknownMemberId {
            group: group_id.to_owned(),
            member_id: member_id.to_owned(),
        })?;
        group.heartbeat(generation, member_id, group_instance_id, Instant::now())
    }

    /// Removes members from a group (the others rebalance); one result per member, in order.
    pub fn leave(&self, group_id: &str, members: &[MemberIdentity]) -> Vec<Result<(), GroupError>> {
        let mut groups = lock(&self.groups);
        let now = Instant::now();
        members
            .iter()
            .map(|member| match groups.get_mut(group_id) {
                Some(group) => group.leave(&member.member_id, member.group_instance_id.as_deref(), now),
                None => {
                    Err(GroupError::UnknownMemberId { group: group_id.to_owned(), member_id: member.member_id.clone() })
                }
            })
            .collect()
    }

    /// Durably commits offsets for a member of the current generation (`generation < 0` with
    /// an empty `member_id` commits for a group without members, as admin tools do). Returns
    /// after the offsets are fsynced.
    ///
    /// # Errors
    ///
    /// The membership errors of [`GroupCoordinator::heartbeat`]; [`GroupError::Log`].
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        offsets: Vec<OffsetCommit>,
    ) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        {
            let mut groups = lock(&self.groups);
            match groups.get_mut(group_id) {
                Some(group) => group.check_commit(generation, member_id, group_instance_id, Instant::now())?,
                None if generation < 0 && member_id.is_empty() => {}
                None => {
                    return Err(GroupError::UnknownMemberId {
                        group: group_id.to_owned(),
                        member_id: member_id.to_owned(),
                    });
                }
            }
        }
        let log = Arc::clone(&self.log);
        let group = group_id.to_owned();
        tokio::task::spawn_blocking(move || {
            let entries: Vec<(&str, u32, i64, &str)> = offsets
                .iter()
                .map(|offset| (offset.topic.as_str(), offset.partition, offset.offset, offset.metadata.as_str()))
                .collect();
            log.commit_offsets_with_metadata(&group, &entries)
        })
        .await
        .map_err(|_join_error| GroupError::ShuttingDown)??;
        Ok(())
    }

    /// The committed offset of a partition and its metadata, if any.
    pub fn committed_offset(&self, group_id: &str, topic: &str, partition: u32) -> Option<(i64, String)> {
        self.log.committed_offset_with_metadata(group_id, topic, partition)
    }

    /// Every committed offset of the group as `(topic, partition, offset, metadata)`, sorted.
    pub fn committed_offsets(&self, group_id: &str) -> Vec<(String, u32, i64, String)> {
        self.log
            .group_offsets(group_id)
            .into_iter()
            .map(|(topic, partition, offset)| {
                let metadata =
                    self.log.committed_offset_with_metadata(group_id, &topic, partition).map(|(_, metadata)| metadata);
                (topic, partition, offset, metadata.unwrap_or_default())
            })
            .collect()
    }

    /// The group's state and members; a group the coordinator has never seen is `Empty`
    /// (Kafka answers DescribeGroups for unknown groups the same way, as "Dead").
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let groups = lock(&self.groups);
        match groups.get(group_id) {
            Some(group) => GroupDescription {
                group_id: group_id.to_owned(),
                state: group.state,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocol: match group.state {
                    GroupState::Stable | GroupState::CompletingRebalance => group.protocol.clone().unwrap_or_default(),
                    GroupState::Empty | GroupState::PreparingRebalance => String::new(),
                },
                generation: group.generation,
                members: group.describe_members(),
            },
            None => GroupDescription {
                group_id: group_id.to_owned(),
                state: GroupState::Empty,
                protocol_type: String::new(),
                protocol: String::new(),
                generation: 0,
                members: Vec::new(),
            },
        }
    }

    /// Whether the coordinator or the log knows the group.
    pub fn exists(&self, group_id: &str) -> bool {
        lock(&self.groups).contains_key(group_id) || !self.log.group_offsets(group_id).is_empty()
    }

    /// Every group with members or committed offsets, sorted by id.
    pub fn list(&self) -> Vec<GroupListing> {
        let mut listings: HashMap<String, GroupListing> = self
            .log
            .groups()
            .into_iter()
            .map(|group_id| {
                (group_id.clone(), GroupListing { group_id, protocol_type: String::new(), state: GroupState::Empty })
            })
            .collect();
        for (group_id, group) in lock(&self.groups).iter() {
            if group.is_idle() && !listings.contains_key(group_id) {
                continue;
            }
            listings.insert(
                group_id.clone(),
                GroupListing {
                    group_id: group_id.clone(),
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    state: group.state,
                },
            );
        }
        let mut listings: Vec<GroupListing> = listings.into_values().collect();
        listings.sort_by(|left, right| left.group_id.cmp(&right.group_id));
        listings
    }

    /// Deletes a group without members, and its committed offsets.
    ///
    /// # Errors
    ///
    /// [`GroupError::NonEmptyGroup`]; [`GroupError::GroupIdNotFound`]; [`GroupError::Log`].
    pub fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        let mut groups = lock(&self.groups);
        if let Some(group) = groups.get(group_id) {
            if !group.members.is_empty() {
                return Err(GroupError::NonEmptyGroup { group: group_id.to_owned() });
            }
        } else if self.log.group_offsets(group_id).is_empty() {
            return Err(GroupError::GroupIdNotFound { group: group_id.to_owned() });
        }
        groups.remove(group_id);
        self.log.delete_group_offsets(group_id)?;
        Ok(())
    }

    /// Runs the timeouts once (the timer task calls this every tick).
    fn tick(&self) {
        let now = Instant::now();
        let mut groups = lock(&self.groups);
        for group in groups.values_mut() {
            group.tick(now);
        }
        groups.retain(|_, group| !group.is_idle() || group.generation > 0);
    }
}

impl Drop for GroupCoordinator {
    fn drop(&mut self) {
        for group in lock(&self.groups).values_mut() {
            group.shut_down();
        }
    }
}

async fn run_timer(coordinator: Weak<GroupCoordinator>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(coordinator) = coordinator.upgrade() else { return };
        coordinator.tick();
    }
}
