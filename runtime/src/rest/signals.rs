//! `POST /connectors/{name}/signals`: a Debezium signal (`{"id", "type", "data"}`, the columns of
//! Debezium's signal table) for a source connector, queued for its tasks. Kafka Connect has no
//! such call; Debezium takes signals from a table, a Kafka topic or JMX. Here the body is the
//! signal-table row as JSON, `data` an object (or a string holding one), e.g.
//!
//! ```json
//! {"type": "execute-snapshot", "data": {"data-collections": ["public.orders"], "type": "incremental"}}
//! ```
//!
//! 202: queued (the connector acts on it within a poll or two, and logs what it did, or why
//! not); 400: not a signal, or a sink connector; 404: no such connector.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::bodies::ErrorBody;
use super::error::ApiError;
use super::router::ApiState;

/// The signal types Debezium's users send.
const TYPES: &[&str] = &["execute-snapshot", "stop-snapshot", "pause-snapshot", "resume-snapshot", "log"];

/// A signal, as a row of Debezium's signal table.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignalRequest {
    /// The signal's unique id (the `id` column); weir makes one up when absent.
    #[serde(default)]
    id: Option<String>,
    /// `execute-snapshot`, `stop-snapshot`, `pause-snapshot`, `resume-snapshot` or `log`.
    #[serde(rename = "type")]
    kind: String,
    /// The signal's parameters (the `data` column): a JSON object, or a string holding one, e.g.
    /// `{"data-collections": ["public.orders"], "type": "incremental"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    data: Option<Value>,
}

/// The answer to a queued signal.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct SignalQueued {
    /// The signal's id (as given, or made up).
    id: String,
    /// Its place in the connector's queue of signals.
    sequence: u64,
}

/// `data` as an object (`null` when absent), or why it is not one.
fn data_object(data: Option<Value>) -> Result<Value, ApiError> {
    let data = match data {
        Some(Value::String(text)) if text.trim().is_empty() => Value::Null,
        Some(Value::String(text)) => serde_json::from_str(&text)
            .map_err(|error| ApiError::bad_request(format!("\"data\" is a string but not JSON: {error}")))?,
        Some(other) => other,
        None => Value::Null,
    };
    match data {
        Value::Null | Value::Object(_) => Ok(data),
        other => Err(ApiError::bad_request(format!("\"data\" must be a JSON object, not {other}"))),
    }
}

fn check(kind: &str, data: &Value) -> Result<(), ApiError> {
    if !TYPES.contains(&kind) {
        return Err(ApiError::bad_request(format!("Unknown signal type \"{kind}\"; one of {}", TYPES.join(", "))));
    }
    if kind == "execute-snapshot" {
        let collections = data.get("data-collections").and_then(Value::as_array);
        if !collections.is_some_and(|items| !items.is_empty() && items.iter().all(Value::is_string)) {
            return Err(ApiError::bad_request(
                "execute-snapshot needs \"data\": {\"data-collections\": [\"<schema>.<table>\", ...]}",
            ));
        }
    }
    Ok(())
}

/// Queue a signal for a source connector's tasks.
#[utoipa::path(post, path = "/connectors/{name}/signals", tag = "signals", params(("name" = String, Path)), request_body = SignalRequest, responses((status = 202, description = "Queued for the connector's tasks", body = SignalQueued), (status = 400, description = "Not a signal, or the connector is a sink", body = ErrorBody), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn signal(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<SignalRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<SignalQueued>), ApiError> {
    let Json(request) = body?;
    if state.herder.info(&name).is_none() {
        return Err(ApiError::unknown_connector(&name));
    }
    let data = data_object(request.data)?;
    check(&request.kind, &data)?;
    let id = match request.id.filter(|id| !id.is_empty()) {
        Some(id) => id,
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            format!("weir-{nanos}")
        }
    };
    let signal = json!({ "id": id, "type": request.kind, "data": data });
    let sequence = state.herder.signal(&name, &signal).await?;
    Ok((StatusCode::ACCEPTED, Json(SignalQueued { id, sequence })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_checked_before_they_are_queued() {
        assert_eq!(data_object(None), Ok(Value::Null));
        assert_eq!(data_object(Some(json!("{\"a\": 1}"))), Ok(json!({"a": 1})));
        assert!(data_object(Some(json!([1]))).is_err());
        assert!(data_object(Some(json!("nope"))).is_err());
        assert!(check("execute-snapshot", &json!({"data-collections": ["public.t"]})).is_ok());
        assert!(check("execute-snapshot", &json!({"data-collections": []})).is_err());
        assert!(check("execute-snapshot", &Value::Null).is_err());
        assert!(check("pause-snapshot", &Value::Null).is_ok());
        let unknown = check("snapshot-please", &Value::Null).expect_err("refused");
        assert!(unknown.message.contains("snapshot-please"), "{}", unknown.message);
    }
}
