//! ListGroups (0–4): every group with members or committed offsets, and the hosted groups
//! (weir's sink tasks), filtered by state (v4).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::GroupListing;
use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::hosted_groups::PROTOCOL_TYPE;
use crate::kafka::server::Context;

pub(in crate::kafka) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: ListGroupsRequest,
) -> ListGroupsResponse {
    let mut listings = context.groups.list();
    if let Some(hosted) = context.hosted() {
        // A hosted group's committed offsets make the coordinator list it too: one entry each.
        for group in hosted.groups() {
            let listing = GroupListing {
                group_id: group.group_id.clone(),
                protocol_type: PROTOCOL_TYPE.to_owned(),
                state: group.state(),
            };
            match listings.iter_mut().find(|listed| listed.group_id == group.group_id) {
                Some(listed) => *listed = listing,
                None => listings.push(listing),
            }
        }
        listings.sort_by(|left, right| left.group_id.cmp(&right.group_id));
    }
    let groups = listings
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
