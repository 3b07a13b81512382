//! FindCoordinator (0–4): this node coordinates every group (v4 asks for several at once).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::codes;
use super::dispatch::Request;
use super::server::Context;

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let node = BrokerId(context.config.node_id);
    let host = StrBytes::from_string(context.advertised_host.clone());
    if request.version >= 4 {
        let coordinators = message
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(context.advertised_port)
                    .with_error_code(codes::NONE)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(codes::NONE)
        .with_node_id(node)
        .with_host(host)
        .with_port(context.advertised_port)
}
