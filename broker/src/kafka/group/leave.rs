//! LeaveGroup (0–4): one member (v0–2) or several, by member or instance id (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::coordinator::MemberIdentity;
use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::server::Context;

pub(in crate::kafka) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group = message.group_id.0.to_string();
    if request.version < 3 {
        let member = MemberIdentity { member_id: message.member_id.to_string(), group_instance_id: None };
        let result = context.groups.leave(&group, &[member]).pop().unwrap_or(Ok(()));
        return LeaveGroupResponse::default()
            .with_error_code(result.as_ref().map_or_else(codes::group_error, |()| codes::NONE));
    }
    let identities: Vec<MemberIdentity> = message
        .members
        .iter()
        .map(|member| MemberIdentity {
            member_id: member.member_id.to_string(),
            group_instance_id: member.group_instance_id.as_ref().map(|id| id.to_string()),
        })
        .collect();
    let results = context.groups.leave(&group, &identities);
    let members = message
        .members
        .into_iter()
        .zip(results)
        .map(|(member, result)| {
            MemberResponse::default()
                .with_member_id(member.member_id)
                .with_group_instance_id(member.group_instance_id)
                .with_error_code(result.as_ref().map_or_else(codes::group_error, |()| codes::NONE))
        })
        .collect();
    LeaveGroupResponse::default().with_error_code(codes::NONE).with_members(members)
}
