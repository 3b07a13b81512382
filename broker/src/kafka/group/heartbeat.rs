//! Heartbeat (0–4).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::server::Context;

pub(in crate::kafka) async fn handle(
    context: &Context,
    _request: &Request<'_>,
    message: HeartbeatRequest,
) -> HeartbeatResponse {
    let result = context.groups.heartbeat(
        message.group_id.0.as_str(),
        message.generation_id,
        message.member_id.as_str(),
        message.group_instance_id.as_deref(),
    );
    HeartbeatResponse::default().with_error_code(result.as_ref().map_or_else(codes::group_error, |()| codes::NONE))
}
