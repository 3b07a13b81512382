//! `/connectors/{name}/offsets`, in Kafka Connect's shape: source partitions and positions as
//! JSON objects, sink offsets as `{"kafka_topic", "kafka_partition"}` → `{"kafka_offset"}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde_json::{Map, Value, json};

use super::bodies::{ConnectorOffsetsBody, ErrorBody, Message, OffsetEntry};
use super::error::ApiError;
use super::router::ApiState;
use crate::herder::ConnectorOffsets;

fn to_body(offsets: ConnectorOffsets) -> ConnectorOffsetsBody {
    let offsets = match offsets {
        ConnectorOffsets::Source(entries) => entries
            .into_iter()
            .map(|(partition, offset)| {
                // A partition the connector wrote as something other than an object is shown
                // under `value`, so the answer keeps Kafka Connect's shape.
                let partition = match partition {
                    Value::Object(map) => map,
                    other => Map::from_iter([("value".to_owned(), other)]),
                };
                OffsetEntry { partition, offset: Some(offset).filter(|offset| !offset.is_null()) }
            })
            .collect(),
        ConnectorOffsets::Sink(entries) => entries
            .into_iter()
            .map(|(topic, partition, offset)| OffsetEntry {
                partition: Map::from_iter([
                    ("kafka_topic".to_owned(), json!(topic)),
                    ("kafka_partition".to_owned(), json!(partition)),
                ]),
                offset: Some(json!({ "kafka_offset": offset })),
            })
            .collect(),
    };
    ConnectorOffsetsBody { offsets }
}

/// The offsets of a PATCH body: sink entries are recognised by `kafka_topic` in the partition.
fn from_body(body: ConnectorOffsetsBody) -> Result<ConnectorOffsets, ApiError> {
    if body.offsets.is_empty() {
        return Err(ApiError::bad_request("The \"offsets\" array must not be empty"));
    }
    let sink = body.offsets.iter().any(|entry| entry.partition.contains_key("kafka_topic"));
    if !sink {
        let entries = body
            .offsets
            .into_iter()
            .map(|entry| (Value::Object(entry.partition), entry.offset.unwrap_or(Value::Null)))
            .collect();
        return Ok(ConnectorOffsets::Source(entries));
    }
    let mut out = Vec::new();
    for entry in body.offsets {
        let topic = entry.partition.get("kafka_topic").and_then(Value::as_str);
        let partition = entry.partition.get("kafka_partition").and_then(Value::as_u64);
        let (Some(topic), Some(partition)) = (topic, partition) else {
            return Err(ApiError::bad_request(
                "A sink offset's partition needs \"kafka_topic\" and \"kafka_partition\"",
            ));
        };
        let offset = match &entry.offset {
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
}

/// The connector's committed offsets.
#[utoipa::path(get, path = "/connectors/{name}/offsets", tag = "offsets", params(("name" = String, Path)), responses((status = 200, description = "{offsets: [{partition, offset}]}", body = ConnectorOffsetsBody), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ConnectorOffsetsBody>, ApiError> {
    Ok(Json(to_body(state.herder.offsets(&name).await?)))
}

/// Alter offsets of a STOPPED connector (a `null` offset removes a partition's).
#[utoipa::path(patch, path = "/connectors/{name}/offsets", tag = "offsets", params(("name" = String, Path)), request_body = ConnectorOffsetsBody, responses((status = 200, description = "Altered", body = Message), (status = 400, description = "Malformed body, not STOPPED, or offsets of the other kind", body = ErrorBody), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn alter(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<ConnectorOffsetsBody>, JsonRejection>,
) -> Result<Json<Message>, ApiError> {
    let Json(body) = body?;
    if state.herder.info(&name).is_none() {
        return Err(ApiError::unknown_connector(&name));
    }
    let offsets = from_body(body)?;
    state.herder.alter_offsets(&name, offsets).await?;
    Ok(Json(Message { message: "The offsets for this connector have been altered successfully".to_owned() }))
}

/// Remove every offset of a STOPPED connector.
#[utoipa::path(delete, path = "/connectors/{name}/offsets", tag = "offsets", params(("name" = String, Path)), responses((status = 200, description = "Reset", body = Message), (status = 400, description = "Not STOPPED", body = ErrorBody), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn reset(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Message>, ApiError> {
    state.herder.reset_offsets(&name).await?;
    Ok(Json(Message { message: "The offsets for this connector have been reset successfully".to_owned() }))
}
