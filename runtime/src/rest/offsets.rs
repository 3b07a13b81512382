//! `/connectors/{name}/offsets`, in Kafka Connect's shape: source partitions and positions as
//! JSON objects, sink offsets as `{"kafka_topic", "kafka_partition"}` → `{"kafka_offset"}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::router::ApiState;
use crate::herder::ConnectorOffsets;

fn to_json(offsets: ConnectorOffsets) -> Value {
    let entries: Vec<Value> = match offsets {
        ConnectorOffsets::Source(entries) => {
            entries.into_iter().map(|(partition, offset)| json!({ "partition": partition, "offset": offset })).collect()
        }
        ConnectorOffsets::Sink(entries) => entries
            .into_iter()
            .map(|(topic, partition, offset)| {
                json!({
                    "partition": { "kafka_topic": topic, "kafka_partition": partition },
                    "offset": { "kafka_offset": offset },
                })
            })
            .collect(),
    };
    json!({ "offsets": entries })
}

/// Parse a PATCH body; sink entries are recognised by `kafka_topic` in the partition.
fn from_json(body: &Value) -> Result<ConnectorOffsets, ApiError> {
    let entries = body
        .get("offsets")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("The request body must have an \"offsets\" array"))?;
    if entries.is_empty() {
        return Err(ApiError::bad_request("The \"offsets\" array must not be empty"));
    }
    let sink = entries.iter().any(|entry| entry.pointer("/partition/kafka_topic").is_some());
    if sink {
        let mut out = Vec::new();
        for entry in entries {
            let topic = entry.pointer("/partition/kafka_topic").and_then(Value::as_str);
            let partition = entry.pointer("/partition/kafka_partition").and_then(Value::as_u64);
            let (Some(topic), Some(partition)) = (topic, partition) else {
                return Err(ApiError::bad_request(
                    "A sink offset's partition needs \"kafka_topic\" and \"kafka_partition\"",
                ));
            };
            let offset = match entry.get("offset") {
                None | Some(Value::Null) => -1,
                Some(offset) => offset
                    .get("kafka_offset")
                    .and_then(Value::as_i64)
                    .filter(|offset| *offset >= 0)
                    .ok_or_else(|| ApiError::bad_request("A sink offset needs a non-negative \"kafka_offset\""))?,
            };
            let partition =
                u32::try_from(partition).map_err(|_| ApiError::bad_request("\"kafka_partition\" is out of range"))?;
            out.push((topic.to_owned(), partition, offset));
        }
        Ok(ConnectorOffsets::Sink(out))
    } else {
        let mut out = Vec::new();
        for entry in entries {
            let partition = entry
                .get("partition")
                .filter(|partition| !partition.is_null())
                .cloned()
                .ok_or_else(|| ApiError::bad_request("Every offset needs a \"partition\""))?;
            out.push((partition, entry.get("offset").cloned().unwrap_or(Value::Null)));
        }
        Ok(ConnectorOffsets::Source(out))
    }
}

/// The connector's committed offsets.
#[utoipa::path(get, path = "/connectors/{name}/offsets", tag = "offsets", params(("name" = String, Path)), responses((status = 200, description = "{offsets: [{partition, offset}]}", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn get(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(state.herder.offsets(&name).await?)))
}

/// Alter offsets of a STOPPED connector (a `null` offset removes a partition's).
#[utoipa::path(patch, path = "/connectors/{name}/offsets", tag = "offsets", params(("name" = String, Path)), request_body = Value, responses((status = 200, description = "Altered", body = Value), (status = 400, description = "Not STOPPED, or bad offsets", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn alter(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    if state.herder.info(&name).is_none() {
        return Err(ApiError::unknown_connector(&name));
    }
    let offsets = from_json(&body)?;
    state.herder.alter_offsets(&name, offsets).await?;
    Ok(Json(json!({ "message": "The offsets for this connector have been altered successfully" })))
}

/// Remove every offset of a STOPPED connector.
#[utoipa::path(delete, path = "/connectors/{name}/offsets", tag = "offsets", params(("name" = String, Path)), responses((status = 200, description = "Reset", body = Value), (status = 400, description = "Not STOPPED", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn reset(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    state.herder.reset_offsets(&name).await?;
    Ok(Json(json!({ "message": "The offsets for this connector have been reset successfully" })))
}
