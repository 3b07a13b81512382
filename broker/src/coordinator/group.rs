//! One group's membership state machine, synchronous and clock-free (`now` is passed in), so it
//! can be driven and tested without timers. The service wraps it in a lock and parks waiting
//! joins and syncs as oneshot senders kept here.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::GroupError;
use super::service::{JoinOutcome, JoinRequest, JoinedMember, MemberDescription, Protocol, SyncOutcome};

/// Where a group is in its membership cycle (Kafka's state names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members (committed offsets may exist).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined: waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl GroupState {
    /// Kafka's name for the state, as DescribeGroups and ListGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

pub(super) type JoinWaiter = oneshot::Sender<Result<JoinOutcome, GroupError>>;
pub(super) type SyncWaiter = oneshot::Sender<Result<SyncOutcome, GroupError>>;

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) protocols: Vec<Protocol>,
    pub(super) session_timeout: Duration,
    pub(super) rebalance_timeout: Duration,
    /// When the member is removed unless it is heard from.
    pub(super) deadline: Instant,
    pub(super) join_waiter: Option<JoinWaiter>,
    pub(super) sync_waiter: Option<SyncWaiter>,
    pub(super) assignment: Bytes,
    /// Join order: the first member becomes leader when there is none.
    pub(super) seq: u64,
}

/// What a join did: answered at once, or parked until the join phase completes.
pub(super) enum JoinStep {
    Done(Result<JoinOutcome, GroupError>),
    Parked,
}

/// What a sync did.
pub(super) enum SyncStep {
    Done(Result<SyncOutcome, GroupError>),
    Parked,
}

#[derive(Debug)]
pub(super) struct Group {
    pub(super) name: String,
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// Static instance id -> member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out by a MEMBER_ID_REQUIRED answer, not yet used: id -> expiry.
    pending: HashMap<String, Instant>,
    /// When the join phase ends even if not everyone rejoined.
    rebalance_deadline: Option<Instant>,
    /// A join phase of a group that was empty waits at least until then for more members.
    initial_delay_until: Option<Instant>,
    next_seq: u64,
}

impl Group {
    pub(super) fn new(name: &str) -> Self {
        Group {
            name: name.to_owned(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            next_seq: 0,
        }
    }

    fn unknown_member(&self, member_id: &str) -> GroupError {
        GroupError::UnknownMemberId { group: self.name.clone(), member_id: member_id.to_owned() }
    }

    fn fenced(&self, instance_id: &str) -> GroupError {
        GroupError::FencedInstanceId { group: self.name.clone(), instance_id: instance_id.to_owned() }
    }

    /// Checks that `member_id` (with `instance_id`, if static) is a current member.
    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if let Some(instance_id) = instance_id
            && let Some(holder) = self.static_members.get(instance_id)
            && holder != member_id
        {
            return Err(self.fenced(instance_id));
        }
        if !self.members.contains_key(member_id) {
            return Err(self.unknown_member(member_id));
        }
        Ok(())
    }

    fn check_generation(&self, generation: i32) -> Result<(), GroupError> {
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration {
                group: self.name.clone(),
                current: self.generation,
                given: generation,
            });
        }
        Ok(())
    }

    /// A protocol every member (and the candidate `protocols`) supports, in the leader's order
    /// of preference (or the candidate's, with no members).
    fn common_protocol(&self, extra: Option<&[Protocol]>) -> Option<String> {
        let supports = |protocols: &[Protocol], name: &str| protocols.iter().any(|protocol| protocol.name == name);
        let preferred: &[Protocol] = self
            .leader
            .as_ref()
            .and_then(|leader| self.members.get(leader))
            .map(|leader| leader.protocols.as_slice())
            .or_else(|| self.members.values().min_by_key(|member| member.seq).map(|member| member.protocols.as_slice()))
            .or(extra)
            .unwrap_or(&[]);
        preferred
            .iter()
            .find(|candidate| {
                self.members.values().all(|member| supports(&member.protocols, &candidate.name))
                    && extra.is_none_or(|extra| supports(extra, &candidate.name))
            })
            .map(|protocol| protocol.name.clone())
    }

    fn new_member(&mut self, id: String, request: &JoinRequest, now: Instant) {
        self.next_seq += 1;
        if let Some(instance_id) = &request.group_instance_id {
            self.static_members.insert(instance_id.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: request.group_instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                protocols: request.protocols.clone(),
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                deadline: now + request.session_timeout,
                join_waiter: None,
                sync_waiter: None,
                assignment: Bytes::new(),
                seq: self.next_seq,
            },
        );
    }

    /// Handles a join; `new_id` makes a fresh member id.
    pub(super) fn join(
        &mut self,
        request: &JoinRequest,
        waiter: JoinWaiter,
        now: Instant,
        initial_delay: Duration,
        new_id: impl FnOnce() -> String,
    ) -> JoinStep {
        if !self.members.is_empty() {
            if self.protocol_type.as_deref() != Some(request.protocol_type.as_str())
                || self.common_protocol(Some(&request.protocols)).is_none()
            {
                return JoinStep::Done(Err(GroupError::InconsistentGroupProtocol { group: self.name.clone() }));
            }
        } else if request.protocols.is_empty() {
            return JoinStep::Done(Err(GroupError::InconsistentGroupProtocol { group: self.name.clone() }));
        }
        let mut is_new = false;
        let mut static_rejoin = false;
        let mut replaced_leader = None;
        let member_id = if request.member_id.is_empty() {
            match &request.group_instance_id {
                Some(instance_id) if self.static_members.contains_key(instance_id) => {
                    // A restarted static member: it takes over the old member's place.
                    let old_id = self.static_members[instance_id].clone();
                    let id = new_id();
                    match self.members.remove(&old_id) {
                        Some(mut member) => {
                            if let Some(old_waiter) = member.join_waiter.take() {
                                let _ = old_waiter.send(Err(self.fenced(instance_id)));
                            }
                            if let Some(old_waiter) = member.sync_waiter.take() {
                                let _ = old_waiter.send(Err(self.fenced(instance_id)));
                            }
                            member.id = id.clone();
                            if self.leader.as_deref() == Some(old_id.as_str()) {
                                self.leader = Some(id.clone());
                                replaced_leader = Some(old_id.clone());
                            }
                            self.members.insert(id.clone(), member);
                            self.static_members.insert(instance_id.clone(), id.clone());
                            static_rejoin = true;
                        }
                        None => {
                            is_new = true;
                            self.new_member(id.clone(), request, now);
                        }
                    }
                    id
                }
                Some(_) => {
                    is_new = true;
                    let id = new_id();
                    self.new_member(id.clone(), request, now);
                    id
                }
                None if request.require_known_member_id => {
                    let id = new_id();
                    self.pending.insert(id.clone(), now + request.session_timeout);
                    return JoinStep::Done(Err(GroupError::MemberIdRequired { member_id: id }));
                }
                None => {
                    is_new = true;
                    let id = new_id();
                    self.new_member(id.clone(), request, now);
                    id
                }
            }
        } else if self.members.contains_key(&request.member_id) {
            if let Err(error) = self.check_member(&request.member_id, request.group_instance_id.as_deref()) {
                return JoinStep::Done(Err(error));
            }
            request.member_id.clone()
        } else if self.pending.remove(&request.member_id).is_some() {
            is_new = true;
            self.new_member(request.member_id.clone(), request, now);
            request.member_id.clone()
        } else {
            if let Some(instance_id) = &request.group_instance_id
                && self.static_members.contains_key(instance_id)
            {
                return JoinStep::Done(Err(self.fenced(instance_id)));
            }
            return JoinStep::Done(Err(self.unknown_member(&request.member_id)));
        };
        self.protocol_type = Some(request.protocol_type.clone());

        // A restarted static member keeps its place without a rebalance while the group's
        // protocol still suits it (KIP-345), whatever its metadata says now: a consumer's
        // subscription carries the partitions it owned, which a restart empties.
        let keeps_protocol = static_rejoin
            && self.protocol.as_deref().is_some_and(|name| request.protocols.iter().any(|p| p.name == name));
        let member = self.members.get_mut(&member_id).expect("the member was found or added above");
        let unchanged = !is_new && (member.protocols == request.protocols || keeps_protocol);
        member.protocols = request.protocols.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.deadline = now + request.session_timeout;
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();

        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::Stable if keeps_protocol => {
                // As Kafka does, a restarted leader is answered as a follower (named the old
                // leader id, given no members), so it computes no assignment that a stable
                // group would not hand out: its SyncGroup gets the stored one.
                let mut outcome = self.join_outcome(&member_id);
                if let Some(old_leader) = replaced_leader {
                    outcome.leader = old_leader;
                    outcome.members.clear();
                }
                return JoinStep::Done(Ok(outcome));
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if unchanged && (self.state == GroupState::CompletingRebalance || !is_leader) =>
            {
                return JoinStep::Done(Ok(self.join_outcome(&member_id)));
            }
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::CompletingRebalance | GroupState::Stable => {
                self.prepare_rebalance(now, initial_delay);
            }
        }
        let member = self.members.get_mut(&member_id).expect("the member was found or added above");
        if let Some(old) = member.join_waiter.replace(waiter) {
            let _ = old.send(Err(GroupError::RebalanceInProgress { group: self.name.clone() }));
        }
        self.maybe_complete_join(now);
        JoinStep::Parked
    }

    fn join_outcome(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            let protocol = self.protocol.as_deref().unwrap_or_default();
            let mut members: Vec<&Member> = self.members.values().collect();
            members.sort_by_key(|member| member.seq);
            members
                .into_iter()
                .map(|member| JoinedMember {
                    member_id: member.id.clone(),
                    group_instance_id: member.instance_id.clone(),
                    metadata: member
                        .protocols
                        .iter()
                        .find(|candidate| candidate.name == protocol)
                        .map(|candidate| candidate.metadata.clone())
                        .unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol.clone().unwrap_or_default(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// Starts a join phase: every member must join again.
    fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::Empty && !initial_delay.is_zero() {
            self.initial_delay_until = Some(now + initial_delay);
        }
        self.state = GroupState::PreparingRebalance;
        let longest = self.members.values().map(|member| member.rebalance_timeout).max().unwrap_or_default();
        self.rebalance_deadline = Some(now + longest);
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(Err(GroupError::RebalanceInProgress { group: self.name.clone() }));
            }
        }
        tracing::debug!(
            group = self.name,
            generation = self.generation,
            members = self.members.len(),
            "rebalance started"
        );
    }

    /// Ends the join phase if every member rejoined (and any initial delay passed).
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let everyone = self.members.values().all(|member| member.join_waiter.is_some());
        let delayed = self.initial_delay_until.is_some_and(|until| now < until);
        if everyone && !delayed {
            self.complete_join();
        }
    }

    /// Ends the join phase with the members that rejoined: a new generation, a leader, and an
    /// answer to every parked join.
    fn complete_join(&mut self) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|member| member.join_waiter.is_none())
            .map(|member| member.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            self.protocol = None;
            return;
        }
        if !self.leader.as_ref().is_some_and(|leader| self.members.contains_key(leader)) {
            self.leader = self.members.values().min_by_key(|member| member.seq).map(|member| member.id.clone());
        }
        self.protocol = self.common_protocol(None);
        self.state = GroupState::CompletingRebalance;
        tracing::debug!(group = self.name, generation = self.generation, members = self.members.len(), leader = ?self.leader, "join phase complete");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.join_outcome(&id);
            let member = self.members.get_mut(&id).expect("ids were just listed");
            member.assignment = Bytes::new();
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(Ok(outcome));
            }
        }
    }

    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        if let Some(instance_id) = &member.instance_id
            && self.static_members.get(instance_id).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance_id);
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        Some(member)
    }

    /// After a member left or expired: rebalance what remains.
    fn on_member_gone(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.state = GroupState::Empty;
                    self.generation += 1;
                    self.leader = None;
                    self.protocol = None;
                } else {
                    self.prepare_rebalance(now, Duration::ZERO);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty => {}
        }
    }

    pub(super) fn sync(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        waiter: SyncWaiter,
        now: Instant,
    ) -> SyncStep {
        if let Err(error) = self.check_member(member_id, instance_id).and_then(|()| self.check_generation(generation)) {
            return SyncStep::Done(Err(error));
        }
        let outcome = |group: &Group, assignment: Bytes| SyncOutcome {
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name: group.protocol.clone().unwrap_or_default(),
            assignment,
        };
        let member = self.members.get_mut(member_id).expect("checked above");
        member.deadline = now + member.session_timeout;
        match self.state {
            GroupState::Empty => SyncStep::Done(Err(self.unknown_member(member_id))),
            GroupState::PreparingRebalance => {
                SyncStep::Done(Err(GroupError::RebalanceInProgress { group: self.name.clone() }))
            }
            GroupState::Stable => {
                let assignment = self.members[member_id].assignment.clone();
                SyncStep::Done(Ok(outcome(self, assignment)))
            }
            GroupState::CompletingRebalance => {
                if self.leader.as_deref() != Some(member_id) {
                    if let Some(old) =
                        self.members.get_mut(member_id).expect("checked above").sync_waiter.replace(waiter)
                    {
                        let _ = old.send(Err(GroupError::RebalanceInProgress { group: self.name.clone() }));
                    }
                    return SyncStep::Parked;
                }
                let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = assignments.remove(&member.id).unwrap_or_default();
                }
                self.state = GroupState::Stable;
                tracing::debug!(group = self.name, generation = self.generation, "group stable");
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for id in ids {
                    let assignment = self.members[&id].assignment.clone();
                    let result = outcome(self, assignment);
                    if let Some(waiter) = self.members.get_mut(&id).expect("listed").sync_waiter.take() {
                        let _ = waiter.send(Ok(result));
                    }
                }
                let assignment = self.members[member_id].assignment.clone();
                SyncStep::Done(Ok(outcome(self, assignment)))
            }
        }
    }

    pub(super) fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance_id)?;
        let member = self.members.get_mut(member_id).expect("checked above");
        member.deadline = now + member.session_timeout;
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress { group: self.name.clone() });
        }
        self.check_generation(generation)
    }

    /// Checks that a member of the current generation may commit offsets (and counts the
    /// commit as a heartbeat). A generation below zero with no member id is an admin commit,
    /// allowed only while the group has no members.
    pub(super) fn check_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), GroupError> {
        if generation < 0 && member_id.is_empty() {
            if self.members.is_empty() {
                return Ok(());
            }
            return Err(self.unknown_member(member_id));
        }
        self.check_member(member_id, instance_id)?;
        let member = self.members.get_mut(member_id).expect("checked above");
        member.deadline = now + member.session_timeout;
        self.check_generation(generation)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress { group: self.name.clone() });
        }
        Ok(())
    }

    /// Removes a member that leaves (by member id, or by instance id for static members).
    pub(super) fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Instant) -> Result<(), GroupError> {
        let id = match instance_id {
            Some(instance_id) => {
                let holder =
                    self.static_members.get(instance_id).cloned().ok_or_else(|| self.unknown_member(member_id))?;
                if !member_id.is_empty() && holder != member_id {
                    return Err(self.fenced(instance_id));
                }
                holder
            }
            None => member_id.to_owned(),
        };
        let mut member = self.remove_member(&id).ok_or_else(|| self.unknown_member(&id))?;
        tracing::debug!(group = self.name, member = id, "member left");
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(Err(self.unknown_member(&id)));
        }
        self.on_member_gone(now);
        Ok(())
    }

    /// Expires silent members and pending ids and ends overdue join phases; returns when it
    /// next needs to run.
    pub(super) fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, expiry| *expiry > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| member.join_waiter.is_none() && member.deadline <= now)
            .map(|member| member.id.clone())
            .collect();
        for id in expired {
            if let Some(mut member) = self.remove_member(&id) {
                tracing::info!(group = self.name, member = id, "member session expired");
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(Err(self.unknown_member(&id)));
                }
                self.on_member_gone(now);
            }
        }
        if self.state == GroupState::PreparingRebalance {
            let overdue = self.rebalance_deadline.is_some_and(|deadline| deadline <= now);
            if overdue {
                self.complete_join();
            } else {
                self.maybe_complete_join(now);
            }
        }
    }

    /// Whether nothing is left to keep in memory.
    pub(super) fn is_idle(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty() && self.state == GroupState::Empty
    }

    pub(super) fn describe_members(&self) -> Vec<MemberDescription> {
        let protocol = self.protocol.as_deref().unwrap_or_default();
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|member| member.seq);
        members
            .into_iter()
            .map(|member| MemberDescription {
                member_id: member.id.clone(),
                group_instance_id: member.instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: member
                    .protocols
                    .iter()
                    .find(|candidate| candidate.name == protocol)
                    .map(|candidate| candidate.metadata.clone())
                    .unwrap_or_default(),
                assignment: member.assignment.clone(),
            })
            .collect()
    }

    /// Fails every parked join and sync (the coordinator is going away).
    pub(super) fn shut_down(&mut self) {
        for member in self.members.values_mut() {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(Err(GroupError::ShuttingDown));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(Err(GroupError::ShuttingDown));
            }
        }
    }
}
