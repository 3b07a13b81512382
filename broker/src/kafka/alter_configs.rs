//! AlterConfigs (0–2) and IncrementalAlterConfigs (0–1): a topic's settings changed under
//! Kafka's names (see `topic_configs`), as `kafka-configs --alter` and AdminClient do.
//!
//! AlterConfigs replaces a topic's whole set: what the request leaves out goes back to its
//! default. IncrementalAlterConfigs changes only what it names: SET, DELETE (back to the
//! default), and APPEND / SUBTRACT on the list `cleanup.policy`. Either checks every entry of a
//! resource before changing anything, and `validate_only` changes nothing. Broker settings are
//! fixed at start: altering them is refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::Request;
use super::server::Context;
use super::{codes, topic_configs};
use crate::TopicConfig;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Why a resource was not changed: an error code and a message for the client.
type Refusal = (i16, String);

fn refusal(error: ResponseError, message: String) -> Refusal {
    (codes::code(error), message)
}

/// Changes topic `name`'s config with `change` (which sees the current one) unless
/// `validate_only`.
fn alter_topic(
    context: &Context,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut TopicConfig) -> Result<(), String>,
) -> Result<(), Refusal> {
    let Some(current) = context.log.topic_config(name) else {
        return Err(refusal(ResponseError::UnknownTopicOrPartition, format!("no topic {name:?}")));
    };
    let mut config = current.clone();
    change(&mut config).map_err(|reason| refusal(ResponseError::InvalidConfig, reason))?;
    if validate_only || config == current {
        return Ok(());
    }
    context.log.update_topic_config(name, config).map_err(|error| (codes::log_error(&error), error.to_string()))?;
    tracing::info!(topic = name, "altered topic config");
    Ok(())
}

/// The answer for one resource of either request.
fn outcome(resource_type: i8, name: &str, alter: impl FnOnce() -> Result<(), Refusal>) -> (i16, Option<StrBytes>) {
    let result = match resource_type {
        TOPIC => alter(),
        BROKER => Err(refusal(
            ResponseError::InvalidRequest,
            "broker settings are fixed at start; restart weir to change them".to_owned(),
        )),
        other => Err(refusal(ResponseError::InvalidRequest, format!("resource type {other} has no configs here"))),
    };
    match result {
        Ok(()) => (codes::NONE, None),
        Err((code, message)) => {
            tracing::debug!(resource = name, %message, "config change refused");
            (code, Some(StrBytes::from_string(message)))
        }
    }
}

/// Applies one incremental operation to `config`.
fn apply_incremental(config: &mut TopicConfig, name: &str, operation: i8, value: Option<&str>) -> Result<(), String> {
    match operation {
        SET => topic_configs::apply(config, name, value),
        DELETE => topic_configs::reset(config, name),
        APPEND | SUBTRACT => {
            let mut items = topic_configs::list(config, name)?;
            let given = value.unwrap_or_default().split(',').map(str::trim).filter(|item| !item.is_empty());
            for item in given {
                if operation == APPEND {
                    if !items.iter().any(|existing| existing == item) {
                        items.push(item.to_owned());
                    }
                } else {
                    items.retain(|existing| existing != item);
                }
            }
            if items.is_empty() {
                return Err(format!("{name} cannot be empty"));
            }
            topic_configs::apply(config, name, Some(&items.join(",")))
        }
        other => Err(format!("unknown config operation {other} for {name}")),
    }
}

pub(super) async fn handle_incremental(
    context: &Context,
    _request: &Request<'_>,
    message: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let validate_only = message.validate_only;
    let responses = message
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let (error_code, error_message) = outcome(resource.resource_type, &name, || {
                alter_topic(context, &name, validate_only, |config| {
                    resource.configs.iter().try_for_each(|entry| {
                        apply_incremental(config, entry.name.as_str(), entry.config_operation, entry.value.as_deref())
                    })
                })
            });
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

pub(super) async fn handle(
    context: &Context,
    _request: &Request<'_>,
    message: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let validate_only = message.validate_only;
    let responses = message
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let (error_code, error_message) = outcome(resource.resource_type, &name, || {
                alter_topic(context, &name, validate_only, |config| {
                    // The request is the whole set: start from the defaults.
                    *config = TopicConfig::with_partitions(config.partitions);
                    resource
                        .configs
                        .iter()
                        .try_for_each(|entry| topic_configs::apply(config, entry.name.as_str(), entry.value.as_deref()))
                })
            });
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}
