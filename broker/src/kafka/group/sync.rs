//! SyncGroup (0–5): the leader hands in the assignments, every member gets its own.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::SyncRequest;
use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::server::Context;

pub(in crate::kafka) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: SyncGroupRequest,
) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: message.group_id.0.to_string(),
        generation: message.generation_id,
        member_id: message.member_id.to_string(),
        group_instance_id: message.group_instance_id.map(|id| id.to_string()),
        assignments: message
            .assignments
            .into_iter()
            .map(|assignment| (assignment.member_id.to_string(), assignment.assignment))
            .collect(),
    };
    match context.groups.sync(sync).await {
        Ok(outcome) => {
            let response =
                SyncGroupResponse::default().with_error_code(codes::NONE).with_assignment(outcome.assignment);
            if request.version >= 5 {
                response
                    .with_protocol_type(Some(StrBytes::from_string(outcome.protocol_type)))
                    .with_protocol_name(Some(StrBytes::from_string(outcome.protocol_name)))
            } else {
                response
            }
        }
        Err(error) => {
            tracing::debug!(%error, "sync refused");
            SyncGroupResponse::default().with_error_code(codes::group_error(&error))
        }
    }
}
