//! JoinGroup (0–7). From v4 a first join without a member id is answered MEMBER_ID_REQUIRED
//! with the id to use (KIP-394).

use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::{GroupError, JoinRequest, Protocol};
use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::hosted_groups::join_refusal;
use crate::kafka::server::Context;

fn millis(value: i32) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

pub(in crate::kafka) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = request.version;
    if let Some(error) = join_refusal(context.hosted(), message.group_id.0.as_str()) {
        tracing::debug!(group = message.group_id.0.as_str(), "join of a hosted group refused");
        let response = JoinGroupResponse::default()
            .with_error_code(codes::code(error))
            .with_generation_id(-1)
            .with_member_id(message.member_id);
        return if version >= 7 {
            response.with_protocol_name(None)
        } else {
            response.with_protocol_name(Some(StrBytes::default()))
        };
    }
    let join = JoinRequest {
        group_id: message.group_id.0.to_string(),
        member_id: message.member_id.to_string(),
        group_instance_id: message.group_instance_id.map(|id| id.to_string()),
        protocol_type: message.protocol_type.to_string(),
        protocols: message
            .protocols
            .into_iter()
            .map(|protocol| Protocol { name: protocol.name.to_string(), metadata: protocol.metadata })
            .collect(),
        session_timeout: millis(message.session_timeout_ms),
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout: millis(if version >= 1 { message.rebalance_timeout_ms } else { message.session_timeout_ms }),
        require_known_member_id: version >= 4,
        client_id: request.client_id.clone(),
        client_host: format!("/{}", request.peer.addr.ip()),
    };
    let response = JoinGroupResponse::default();
    match context.groups.join(join).await {
        Ok(outcome) => {
            let members = outcome
                .members
                .into_iter()
                .map(|member| {
                    let joined = JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(member.member_id))
                        .with_metadata(member.metadata);
                    if version >= 5 {
                        joined.with_group_instance_id(member.group_instance_id.map(StrBytes::from_string))
                    } else {
                        joined
                    }
                })
                .collect();
            let response = response
                .with_error_code(codes::NONE)
                .with_generation_id(outcome.generation)
                .with_protocol_name(Some(StrBytes::from_string(outcome.protocol_name)))
                .with_leader(StrBytes::from_string(outcome.leader))
                .with_member_id(StrBytes::from_string(outcome.member_id))
                .with_members(members);
            if version >= 7 {
                response.with_protocol_type(Some(StrBytes::from_string(outcome.protocol_type)))
            } else {
                response
            }
        }
        Err(error) => {
            let member_id = match &error {
                GroupError::MemberIdRequired { member_id } => member_id.clone(),
                _ => message.member_id.to_string(),
            };
            tracing::debug!(%error, "join refused");
            let response = response
                .with_error_code(codes::group_error(&error))
                .with_generation_id(-1)
                .with_member_id(StrBytes::from_string(member_id));
            if version >= 7 {
                response.with_protocol_name(None)
            } else {
                response.with_protocol_name(Some(StrBytes::default()))
            }
        }
    }
}
