//! Groups hosted in this process: consumers that are not Kafka clients but tasks next to the
//! log (weir's sink tasks, group `connect-<connector>`, as Kafka Connect names its sinks'
//! groups), shown to Kafka tools as consumer groups.
//!
//! Whoever runs them implements [`HostedGroups`] and hands it to
//! [`KafkaServer::with_hosted_groups`](super::KafkaServer::with_hosted_groups). ListGroups
//! lists them with protocol type `consumer`, Stable while a member runs and Empty otherwise;
//! DescribeGroups shows each member's subscription and assignment in the consumer protocol's
//! encoding (what `kafka-consumer-groups --describe` decodes); OffsetFetch answers from the
//! committed offsets the tasks store in the log, as for any group.
//!
//! A Kafka client cannot take part: JoinGroup is refused with GROUP_AUTHORIZATION_FAILED (a
//! consumer joining would otherwise read the same partitions as the tasks), and OffsetCommit is
//! refused with UNKNOWN_MEMBER_ID unless the group is Empty and the commit is an admin's (no
//! member, generation -1), as Kafka refuses commits from outside a live group. Resetting a
//! sink's offsets with a Kafka tool therefore works while its connector is stopped, as in Kafka
//! Connect.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::coordinator::GroupState;

/// The protocol type of hosted groups.
pub(super) const PROTOCOL_TYPE: &str = "consumer";
/// The assignor name shown for hosted groups.
pub(super) const PROTOCOL: &str = "range";

/// The groups someone in this process runs, asked for whenever a client wants them.
pub trait HostedGroups: Send + Sync + std::fmt::Debug {
    /// Every hosted group as it is now.
    fn groups(&self) -> Vec<HostedGroup>;

    /// One hosted group, if it is one.
    fn group(&self, group_id: &str) -> Option<HostedGroup> {
        self.groups().into_iter().find(|group| group.group_id == group_id)
    }
}

/// A hosted group: Stable while it has members, Empty otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedGroup {
    /// The group id.
    pub group_id: String,
    /// Its running members.
    pub members: Vec<HostedMember>,
}

impl HostedGroup {
    /// Stable with members, Empty without.
    pub fn state(&self) -> GroupState {
        if self.members.is_empty() { GroupState::Empty } else { GroupState::Stable }
    }
}

/// A running member of a hosted group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedMember {
    /// The member id.
    pub member_id: String,
    /// The client id tools show.
    pub client_id: String,
    /// The host tools show.
    pub client_host: String,
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it reads, per topic.
    pub assignment: Vec<(String, Vec<u32>)>,
}

/// Consumer-protocol version 0 bytes: a 2-byte version, then the message.
fn versioned(message: &impl Encodable) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    message.encode(&mut buf, 0).expect("a version-0 consumer protocol message encodes");
    buf.freeze()
}

impl HostedMember {
    /// Its subscription as a consumer's JoinGroup metadata.
    pub(super) fn subscription(&self) -> Bytes {
        let topics = self.topics.iter().map(|topic| StrBytes::from_string(topic.clone())).collect();
        versioned(&ConsumerProtocolSubscription::default().with_topics(topics))
    }

    /// Its assignment as a consumer group leader would have sent it.
    pub(super) fn assignment_bytes(&self) -> Bytes {
        let assigned = self
            .assignment
            .iter()
            .map(|(topic, partitions)| {
                kafka_protocol::messages::consumer_protocol_assignment::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions.iter().map(|&partition| partition as i32).collect())
            })
            .collect();
        versioned(&ConsumerProtocolAssignment::default().with_assigned_partitions(assigned))
    }
}

/// Why a Kafka client may not join `group`, if it is hosted.
pub(super) fn join_refusal(hosted: Option<&dyn HostedGroups>, group_id: &str) -> Option<ResponseError> {
    hosted?.group(group_id).map(|_| ResponseError::GroupAuthorizationFailed)
}

/// Why a Kafka client may not commit offsets for `group`, if it is hosted.
pub(super) fn commit_refusal(
    hosted: Option<&dyn HostedGroups>,
    group_id: &str,
    generation: i32,
    member_id: &str,
) -> Option<ResponseError> {
    let group = hosted?.group(group_id)?;
    let admin_commit = generation < 0 && member_id.is_empty();
    (!admin_commit || !group.members.is_empty()).then_some(ResponseError::UnknownMemberId)
}

#[cfg(test)]
mod tests {
    use bytes::Buf;
    use kafka_protocol::protocol::Decodable;

    use super::*;

    #[test]
    fn member_bytes_decode_as_the_consumer_protocol() {
        let member = HostedMember {
            member_id: "m".into(),
            client_id: "c".into(),
            client_host: "/h".into(),
            topics: vec!["orders".into()],
            assignment: vec![("orders".into(), vec![0, 2])],
        };
        let mut subscription = member.subscription();
        assert_eq!(subscription.get_i16(), 0);
        let decoded = ConsumerProtocolSubscription::decode(&mut subscription, 0).expect("decodes");
        assert_eq!(decoded.topics, vec![StrBytes::from_static_str("orders")]);
        let mut assignment = member.assignment_bytes();
        assert_eq!(assignment.get_i16(), 0);
        let decoded = ConsumerProtocolAssignment::decode(&mut assignment, 0).expect("decodes");
        assert_eq!(decoded.assigned_partitions[0].partitions, vec![0, 2]);
    }
}
