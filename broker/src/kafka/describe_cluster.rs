//! DescribeCluster (0–1): the one broker, which is also the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::codes;
use super::dispatch::Request;
use super::server::Context;

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    _message: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(context.config.node_id))
        .with_host(StrBytes::from_string(context.advertised_host.clone()))
        .with_port(context.advertised_port);
    let response = DescribeClusterResponse::default()
        .with_error_code(codes::NONE)
        .with_cluster_id(StrBytes::from_string(context.config.cluster_id.clone()))
        .with_controller_id(BrokerId(context.config.node_id))
        .with_brokers(vec![broker]);
    if request.version >= 1 { response.with_endpoint_type(1) } else { response }
}
