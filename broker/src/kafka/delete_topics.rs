//! DeleteTopics (1–5): deletes topics, their data and every group's offsets for them.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::codes;
use super::dispatch::Request;
use super::produce::blocking;
use super::server::Context;

pub(super) async fn handle(
    context: &Context,
    request: &Request<'_>,
    message: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let responses = message
        .topic_names
        .into_iter()
        .map(|name| {
            let topic = name.0.to_string();
            let result = DeletableTopicResult::default().with_name(Some(name));
            match blocking(|| context.log.delete_topic(&topic)) {
                Ok(()) => {
                    context.producers.forget_topic(&topic);
                    result.with_error_code(codes::NONE)
                }
                Err(error) => {
                    let result = result.with_error_code(codes::log_error(&error));
                    if request.version >= 5 {
                        result.with_error_message(Some(StrBytes::from_string(error.to_string())))
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
