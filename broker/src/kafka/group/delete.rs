//! DeleteGroups (0–2): removes groups without members and their committed offsets, as
//! `kafka-consumer-groups --delete` asks. A group with members is refused with NON_EMPTY_GROUP;
//! so is a hosted group (a sink connector's `connect-<name>`) while its tasks run.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::coordinator::GroupError;
use crate::kafka::codes;
use crate::kafka::dispatch::Request;
use crate::kafka::produce::blocking;
use crate::kafka::server::Context;

pub(in crate::kafka) async fn handle(
    context: &Context,
    _request: &Request<'_>,
    message: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let results = message
        .groups_names
        .into_iter()
        .map(|group_id| {
            let name = group_id.0.to_string();
            let result = DeletableGroupResult::default().with_group_id(group_id);
            let running =
                context.hosted().and_then(|hosted| hosted.group(&name)).is_some_and(|group| !group.members.is_empty());
            let outcome = if running {
                Err(GroupError::NonEmptyGroup { group: name })
            } else {
                blocking(|| context.groups.delete(&name))
            };
            match outcome {
                Ok(()) => result.with_error_code(codes::NONE),
                Err(error) => result.with_error_code(codes::group_error(&error)),
            }
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
