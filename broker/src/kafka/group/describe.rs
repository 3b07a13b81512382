//! DescribeGroups (0–5): state, protocol and members with their metadata and assignments
//! (what `kafka-consumer-groups --describe` shows). A group nobody knows is "Dead", as in Kafka.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::hosted_groups::{HostedGroup, PROTOCOL, PROTOCOL_TYPE};
use crate::kafka::server::Context;

/// What a client may do with a group, as DescribeGroups v3+ reports it when asked: READ (3),
/// DELETE (6) and DESCRIBE (8), all of them, since there is no authorization yet.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);
/// Kafka's "not asked for" value.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// A hosted group (weir's sink tasks) as a consumer group.
fn describe_hosted(described: DescribedGroup, group: HostedGroup, version: i16) -> DescribedGroup {
    let state = group.state();
    let members = group
        .members
        .into_iter()
        .map(|member| {
            let described = DescribedGroupMember::default()
                .with_member_id(StrBytes::from_string(member.member_id.clone()))
                .with_client_id(StrBytes::from_string(member.client_id.clone()))
                .with_client_host(StrBytes::from_string(member.client_host.clone()))
                .with_member_metadata(member.subscription())
                .with_member_assignment(member.assignment_bytes());
            if version >= 4 { described.with_group_instance_id(None) } else { described }
        })
        .collect();
    let protocol = if state == crate::coordinator::GroupState::Stable { PROTOCOL } else { "" };
    described
        .with_group_state(StrBytes::from_static_str(state.as_str()))
        .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
        .with_protocol_data(StrBytes::from_static_str(protocol))
        .with_members(members)
}

pub(in crate::kafka) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let operations = if message.include_authorized_operations { GROUP_OPERATIONS } else { OPERATIONS_NOT_REQUESTED };
    let groups = message
        .groups
        .into_iter()
        .map(|group_id| {
            let name = group_id.0.to_string();
            let described = DescribedGroup::default()
                .with_group_id(group_id)
                .with_error_code(codes::NONE)
                .with_authorized_operations(operations);
            if let Some(hosted) = context.hosted().and_then(|hosted| hosted.group(&name)) {
                return describe_hosted(described, hosted, request.version);
            }
            if !context.groups.exists(&name) {
                return described.with_group_state(StrBytes::from_static_str("Dead"));
            }
            let description = context.groups.describe(&name);
            let members = description
                .members
                .into_iter()
                .map(|member| {
                    let described = DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(member.member_id))
                        .with_client_id(StrBytes::from_string(member.client_id))
                        .with_client_host(StrBytes::from_string(member.client_host))
                        .with_member_metadata(member.metadata)
                        .with_member_assignment(member.assignment);
                    if request.version >= 4 {
                        described.with_group_instance_id(member.group_instance_id.map(StrBytes::from_string))
                    } else {
                        described
                    }
                })
                .collect();
            described
                .with_group_state(StrBytes::from_static_str(description.state.as_str()))
                .with_protocol_type(StrBytes::from_string(description.protocol_type))
                .with_protocol_data(StrBytes::from_string(description.protocol))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
