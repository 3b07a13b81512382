//! The membership protocol driven in-process, with no wire format.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::{Log, LogConfig, TopicConfig};

fn config() -> CoordinatorConfig {
    CoordinatorConfig { tick: Duration::from_millis(20), ..CoordinatorConfig::default() }
}

fn join_request(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: "g".to_owned(),
        member_id: member_id.to_owned(),
        group_instance_id: instance.map(str::to_owned),
        protocol_type: "connect".to_owned(),
        protocols: vec![Protocol { name: "sessioned".to_owned(), metadata: Bytes::from_static(b"worker-url") }],
        session_timeout: Duration::from_secs(1),
        rebalance_timeout: Duration::from_secs(5),
        require_known_member_id: true,
        client_id: "test".to_owned(),
        client_host: "127.0.0.1".to_owned(),
    }
}

fn open_log(dir: &std::path::Path) -> Arc<Log> {
    let log = Log::open(dir, LogConfig::default()).expect("log");
    log.ensure_topic("t", TopicConfig::with_partitions(2)).expect("topic");
    log
}

/// Joins as a new member through the KIP-394 round trip; returns the member id.
async fn first_join(coordinator: &GroupCoordinator) -> String {
    match coordinator.join(join_request("", None)).await {
        Err(GroupError::MemberIdRequired { member_id }) => member_id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    }
}

async fn sync(coordinator: &GroupCoordinator, outcome: &JoinOutcome, assignments: Vec<(String, Bytes)>) -> Bytes {
    coordinator
        .sync(SyncRequest {
            group_id: "g".to_owned(),
            generation: outcome.generation,
            member_id: outcome.member_id.clone(),
            group_instance_id: None,
            assignments,
        })
        .await
        .expect("sync")
        .assignment
}

#[tokio::test]
async fn two_members_form_a_group_and_rebalance_when_one_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = GroupCoordinator::new(open_log(dir.path()), config());
    let first = first_join(&coordinator).await;
    let outcome = coordinator.join(join_request(&first, None)).await.expect("join");
    assert_eq!((outcome.generation, outcome.leader.as_str()), (1, first.as_str()));
    assert_eq!(outcome.members.len(), 1);
    assert_eq!(outcome.members[0].metadata, Bytes::from_static(b"worker-url"));
    sync(&coordinator, &outcome, vec![(first.clone(), Bytes::from_static(b"all"))]).await;

    // A second member joins: the first learns of it through its heartbeat and rejoins.
    let second = first_join(&coordinator).await;
    let second_join = tokio::spawn({
        let coordinator = Arc::clone(&coordinator);
        let second = second.clone();
        async move { coordinator.join(join_request(&second, None)).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !matches!(coordinator.heartbeat("g", 1, &first, None), Err(GroupError::RebalanceInProgress { .. })) {
        assert!(tokio::time::Instant::now() < deadline, "no rebalance seen");
        tokio::task::yield_now().await;
    }
    let leader = coordinator.join(join_request(&first, None)).await.expect("rejoin");
    let follower = second_join.await.expect("task").expect("join");
    assert_eq!((leader.generation, follower.generation), (2, 2));
    assert_eq!(leader.members.len(), 2);
    assert!(follower.members.is_empty());
    let follower_sync = tokio::spawn({
        let coordinator = Arc::clone(&coordinator);
        async move { sync(&coordinator, &follower, vec![]).await }
    });
    let assignments = vec![(first.clone(), Bytes::from_static(b"a")), (second.clone(), Bytes::from_static(b"b"))];
    assert_eq!(sync(&coordinator, &leader, assignments).await, Bytes::from_static(b"a"));
    assert_eq!(follower_sync.await.expect("task"), Bytes::from_static(b"b"));
    assert_eq!(coordinator.describe("g").state, GroupState::Stable);

    // An old generation is refused.
    assert!(matches!(coordinator.heartbeat("g", 1, &first, None), Err(GroupError::IllegalGeneration { .. })));
    coordinator.leave("g", &[MemberIdentity { member_id: second.clone(), group_instance_id: None }]);
    assert!(matches!(coordinator.heartbeat("g", 2, &first, None), Err(GroupError::RebalanceInProgress { .. })));
    let alone = coordinator.join(join_request(&first, None)).await.expect("rejoin");
    assert_eq!((alone.generation, alone.members.len()), (3, 1));
}

#[tokio::test]
async fn a_silent_member_expires_and_leaves_the_group_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = GroupCoordinator::new(open_log(dir.path()), config());
    let first = first_join(&coordinator).await;
    let outcome = coordinator.join(join_request(&first, None)).await.expect("join");
    sync(&coordinator, &outcome, vec![]).await;
    // No heartbeats: after the 1 s session the member is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !coordinator.describe("g").members.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tokio::time::Instant::now() < deadline, "the member never expired");
    }
    let error = coordinator.heartbeat("g", outcome.generation, &first, None).expect_err("expired");
    assert!(matches!(error, GroupError::UnknownMemberId { .. }), "{error:?}");
    assert_eq!(coordinator.describe("g").state, GroupState::Empty);
}

#[tokio::test]
async fn a_restarted_static_member_takes_over_its_place_and_fences_the_old_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = GroupCoordinator::new(open_log(dir.path()), config());
    let old = coordinator.join(join_request("", Some("worker-1"))).await.expect("static members need no second join");
    sync(&coordinator, &old, vec![(old.member_id.clone(), Bytes::from_static(b"tasks"))]).await;
    let new = coordinator.join(join_request("", Some("worker-1"))).await.expect("rejoin");
    assert_ne!(new.member_id, old.member_id);
    let error = coordinator.heartbeat("g", new.generation, &old.member_id, Some("worker-1")).expect_err("fenced");
    assert!(matches!(error, GroupError::FencedInstanceId { .. }), "{error:?}");
    coordinator.heartbeat("g", new.generation, &new.member_id, Some("worker-1")).expect("the new id is the member");
}

#[tokio::test]
async fn restarted_static_members_with_new_metadata_keep_their_assignments_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = GroupCoordinator::new(open_log(dir.path()), config());
    let leader = coordinator.join(join_request("", Some("w0"))).await.expect("join");
    sync(&coordinator, &leader, vec![(leader.member_id.clone(), Bytes::from_static(b"all"))]).await;
    // The follower's join makes the leader rejoin (with other metadata); both get generation 2.
    let joining = {
        let coordinator = Arc::clone(&coordinator);
        tokio::spawn(async move { coordinator.join(join_request("", Some("w1"))).await.expect("join") })
    };
    while coordinator.describe("g").state != GroupState::PreparingRebalance {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut rejoin = join_request(&leader.member_id, Some("w0"));
    rejoin.protocols[0].metadata = Bytes::from_static(b"owned:all");
    let leader = coordinator.join(rejoin).await.expect("rejoin");
    let follower = joining.await.expect("task");
    assert_eq!((leader.generation, follower.generation), (2, 2));
    let assignments = vec![
        (leader.member_id.clone(), Bytes::from_static(b"a")),
        (follower.member_id.clone(), Bytes::from_static(b"b")),
    ];
    let follower_sync = {
        let (coordinator, follower) = (Arc::clone(&coordinator), follower.clone());
        tokio::spawn(async move { sync(&coordinator, &follower, Vec::new()).await })
    };
    assert_eq!(sync(&coordinator, &leader, assignments).await, Bytes::from_static(b"a"));
    assert_eq!(follower_sync.await.expect("task"), Bytes::from_static(b"b"));

    // The follower restarts: a new member id, other metadata (it owns nothing now), the same
    // generation and assignment, and the leader is not asked to rejoin.
    let mut restarted = join_request("", Some("w1"));
    restarted.protocols[0].metadata = Bytes::from_static(b"owned:none");
    let restarted = coordinator.join(restarted).await.expect("rejoin");
    assert_ne!(restarted.member_id, follower.member_id);
    assert_eq!(restarted.generation, 2);
    assert_eq!(coordinator.describe("g").state, GroupState::Stable);
    assert_eq!(sync(&coordinator, &restarted, Vec::new()).await, Bytes::from_static(b"b"));
    coordinator.heartbeat("g", 2, &leader.member_id, Some("w0")).expect("no rebalance for the leader");

    // The leader restarts: answered as a follower (the old leader id, no members to assign),
    // in the same generation, and its sync gets its stored assignment.
    let mut restarted_leader = join_request("", Some("w0"));
    restarted_leader.protocols[0].metadata = Bytes::from_static(b"owned:none");
    let restarted_leader = coordinator.join(restarted_leader).await.expect("rejoin");
    assert_eq!(restarted_leader.generation, 2);
    assert_eq!(restarted_leader.leader, leader.member_id);
    assert!(restarted_leader.members.is_empty());
    assert_eq!(sync(&coordinator, &restarted_leader, Vec::new()).await, Bytes::from_static(b"a"));
    coordinator.heartbeat("g", 2, &restarted.member_id, Some("w1")).expect("no rebalance for the follower");
    assert_eq!(coordinator.describe("g").state, GroupState::Stable);
}

#[tokio::test]
async fn committed_offsets_and_metadata_survive_a_restart_and_need_the_current_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let commit = |offset| vec![OffsetCommit { topic: "t".to_owned(), partition: 1, offset, metadata: "m".to_owned() }];
    {
        let coordinator = GroupCoordinator::new(open_log(dir.path()), config());
        let member = first_join(&coordinator).await;
        let outcome = coordinator.join(join_request(&member, None)).await.expect("join");
        sync(&coordinator, &outcome, vec![]).await;
        let stale = coordinator.commit_offsets("g", outcome.generation + 1, &member, None, commit(3)).await;
        assert!(matches!(stale, Err(GroupError::IllegalGeneration { .. })));
        let stranger = coordinator.commit_offsets("g", outcome.generation, "nobody", None, commit(3)).await;
        assert!(matches!(stranger, Err(GroupError::UnknownMemberId { .. })));
        coordinator.commit_offsets("g", outcome.generation, &member, None, commit(42)).await.expect("commit");
        let admin = coordinator.commit_offsets("g", -1, "", None, commit(1)).await;
        assert!(admin.is_err(), "an admin commit while the group has members");
    }
    let coordinator = GroupCoordinator::new(open_log(dir.path()), config());
    assert_eq!(coordinator.committed_offset("g", "t", 1), Some((42, "m".to_owned())));
    assert_eq!(coordinator.list().len(), 1);
    coordinator.commit_offsets("g", -1, "", None, commit(7)).await.expect("admin commit of an empty group");
    assert_eq!(coordinator.committed_offset("g", "t", 1), Some((7, "m".to_owned())));
}
