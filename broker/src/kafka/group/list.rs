//! ListGroups (0–4): every group with members or committed offsets, filtered by state (v4).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::server::Context;

pub(in crate::kafka) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: ListGroupsRequest,
) -> ListGroupsResponse {
    let groups = context
        .groups
        .list()
        .into_iter()
        .filter(|group| {
            message.states_filter.is_empty()
                || message.states_filter.iter().any(|state| state.eq_ignore_ascii_case(group.state.as_str()))
        })
        .map(|group| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group.group_id)))
                .with_protocol_type(StrBytes::from_string(group.protocol_type));
            if request.version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(group.state.as_str()))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_error_code(codes::NONE).with_groups(groups)
}
