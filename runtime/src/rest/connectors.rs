//! `/connectors`: list, create, read, change and delete connectors; their status, tasks and
//! topics.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use weir_connector_sdk::Kind;

use super::error::ApiError;
use super::router::ApiState;
use crate::config_provider;
use crate::connector_store::TargetState;
use crate::herder::{ConnectorSnapshot, Herder};
use crate::manifest::ConnectorDefinition;

pub(super) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Source => "source",
        Kind::Sink => "sink",
    }
}

/// The flat config as shown: references as written, schema-secret fields `[hidden]`.
pub(super) fn shown_config(worker: &dyn Herder, definition: &ConnectorDefinition) -> Map<String, Value> {
    let flat = definition.to_flat();
    match worker.plugins().get(&definition.class) {
        Some(plugin) => config_provider::redact(&flat, plugin.schema()),
        None => flat,
    }
}

pub(super) fn info_json(worker: &dyn Herder, name: &str) -> Result<Value, ApiError> {
    let info = worker.info(name).ok_or_else(|| ApiError::unknown_connector(name))?;
    let tasks: Vec<Value> = info.tasks.iter().map(|task| json!({ "connector": name, "task": task })).collect();
    Ok(json!({
        "name": name,
        "config": shown_config(worker, &info.definition),
        "tasks": tasks,
        "type": kind_name(info.kind),
    }))
}

pub(super) fn status_json(snapshot: &ConnectorSnapshot) -> Value {
    let mut connector = json!({ "state": snapshot.state, "worker_id": snapshot.worker_id });
    if let Some(trace) = &snapshot.trace {
        connector["trace"] = json!(trace);
    }
    let tasks: Vec<Value> = snapshot
        .tasks
        .iter()
        .map(|task| {
            let mut entry = json!(task.status);
            // Beyond Kafka Connect's shape: what the component reports of itself (`log.gauge`).
            if !task.gauges.is_empty() {
                entry["metrics"] = json!(task.gauges);
            }
            entry
        })
        .collect();
    json!({ "name": snapshot.name, "connector": connector, "tasks": tasks, "type": kind_name(snapshot.kind) })
}

fn connector_status(worker: &dyn Herder, name: &str) -> Result<Value, ApiError> {
    worker.status(name).map(|snapshot| status_json(&snapshot)).ok_or_else(|| ApiError::unknown_connector(name))
}

/// Build a definition from Kafka Connect's flat config map, coercing strings to the plugin
/// schema's types. Errors name the field.
pub(super) fn definition_from_flat(
    worker: &dyn Herder,
    name: &str,
    flat: &Map<String, Value>,
) -> Result<ConnectorDefinition, ApiError> {
    let schema = flat
        .get("connector.class")
        .and_then(Value::as_str)
        .and_then(|class| worker.plugins().get(class))
        .map(|plugin| plugin.schema().clone());
    ConnectorDefinition::from_flat(name, flat, schema.as_ref()).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(|error| format!("{}: {}", error.field, error.message)).collect();
        ApiError::bad_request(format!(
            "Connector configuration is invalid and contains the following {} error(s):\n{}",
            errors.len(),
            listed.join("\n")
        ))
    })
}

/// Secrets stay hidden on the way back in: a `[hidden]` value sent back (e.g. by a client that
/// read the config, changed one key and PUT it) keeps the stored value.
fn keep_hidden(worker: &dyn Herder, name: &str, flat: &mut Map<String, Value>) {
    let Some(info) = worker.info(name) else { return };
    let stored = info.definition.to_flat();
    for (key, value) in flat.iter_mut() {
        if value.as_str() == Some(config_provider::HIDDEN)
            && let Some(previous) = stored.get(key)
        {
            *value = previous.clone();
        }
    }
}

fn expand_params(query: Option<&str>) -> (bool, bool) {
    let mut status = false;
    let mut info = false;
    for pair in query.unwrap_or_default().split('&') {
        if let Some(("expand", value)) = pair.split_once('=') {
            status |= value == "status";
            info |= value == "info";
        }
    }
    (status, info)
}

/// Connector names, or with `?expand=status` / `?expand=info` a map of name to status / info.
#[utoipa::path(get, path = "/connectors", tag = "connectors", params(("expand" = Option<String>, Query, description = "`status` and/or `info` (repeat the parameter for both)")), responses((status = 200, description = "Names, or name → {status, info}", body = Value)))]
pub(super) async fn list(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let (status, info) = expand_params(query.as_deref());
    let names = state.herder.connectors();
    if !status && !info {
        return Ok(Json(json!(names)));
    }
    let mut out = Map::new();
    for name in names {
        let mut entry = Map::new();
        if status && let Ok(value) = connector_status(&*state.herder, &name) {
            entry.insert("status".into(), value);
        }
        if info && let Ok(value) = info_json(&*state.herder, &name) {
            entry.insert("info".into(), value);
        }
        out.insert(name, Value::Object(entry));
    }
    Ok(Json(Value::Object(out)))
}

/// Create a connector: `{"name": ..., "config": {...}, "initial_state": "RUNNING|PAUSED|STOPPED"}`.
#[utoipa::path(post, path = "/connectors", tag = "connectors", request_body = Value, responses((status = 201, description = "Created; Location names it", body = Value), (status = 400, description = "Invalid config (names the field)", body = Value), (status = 409, description = "Exists already", body = Value)))]
pub(super) async fn create(
    State(state): State<ApiState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let config = body.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| config.get("name").and_then(Value::as_str))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("Connector config is missing the \"name\" field"))?;
    if name.trim().is_empty() || name.contains('/') {
        return Err(ApiError::bad_request("Connector name must not be empty or contain '/'"));
    }
    let initial = match body.get("initial_state") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_str().and_then(TargetState::parse).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid initial_state {value}: expected RUNNING, PAUSED or STOPPED"))
        })?),
    };
    let mut flat = config;
    flat.entry("name").or_insert_with(|| json!(name));
    if state.herder.info(&name).is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("Connector {name} already exists")));
    }
    let definition = definition_from_flat(&*state.herder, &name, &flat)?;
    state.herder.put(definition, initial).await?;
    let info = info_json(&*state.herder, &name)?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/connectors/{name}"))], Json(info)).into_response())
}

/// A connector's name, config, tasks and type.
#[utoipa::path(get, path = "/connectors/{name}", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Info", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn info(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    info_json(&*state.herder, &name).map(Json)
}

/// Delete a connector (its tasks stop; its offsets stay).
#[utoipa::path(delete, path = "/connectors/{name}", tag = "connectors", params(("name" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn delete(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.herder.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The connector's flat config (references as written, secrets `[hidden]`).
#[utoipa::path(get, path = "/connectors/{name}/config", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Flat config", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn config(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let info = state.herder.info(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    Ok(Json(Value::Object(shown_config(&*state.herder, &info.definition))))
}

/// Create or replace a connector's config; 201 when created, 200 when replaced.
#[utoipa::path(put, path = "/connectors/{name}/config", tag = "connectors", params(("name" = String, Path)), request_body = Value, responses((status = 201, description = "Created", body = Value), (status = 200, description = "Replaced", body = Value), (status = 400, description = "Invalid config", body = Value)))]
pub(super) async fn put_config(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let mut flat =
        body.as_object().cloned().ok_or_else(|| ApiError::bad_request("The config must be a JSON object"))?;
    flat.entry("name").or_insert_with(|| json!(name));
    keep_hidden(&*state.herder, &name, &mut flat);
    let definition = definition_from_flat(&*state.herder, &name, &flat)?;
    let created = state.herder.put(definition, None).await?;
    let info = info_json(&*state.herder, &name)?;
    if created {
        Ok((StatusCode::CREATED, [(header::LOCATION, format!("/connectors/{name}"))], Json(info)).into_response())
    } else {
        Ok((StatusCode::OK, Json(info)).into_response())
    }
}

/// Merge keys into a connector's config; a `null` value removes the key.
#[utoipa::path(patch, path = "/connectors/{name}/config", tag = "connectors", params(("name" = String, Path)), request_body = Value, responses((status = 200, description = "Patched", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn patch_config(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let patch = body.as_object().cloned().ok_or_else(|| ApiError::bad_request("The patch must be a JSON object"))?;
    let info = state.herder.info(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    let mut flat = info.definition.to_flat();
    for (key, value) in patch {
        if value.is_null() {
            flat.remove(&key);
        } else if value.as_str() != Some(config_provider::HIDDEN) {
            flat.insert(key, value);
        }
    }
    let definition = definition_from_flat(&*state.herder, &name, &flat)?;
    state.herder.put(definition, None).await?;
    info_json(&*state.herder, &name).map(Json)
}

/// Connector and task states, worker id and, for FAILED, the trace.
#[utoipa::path(get, path = "/connectors/{name}/status", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Status", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn status(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    connector_status(&*state.herder, &name).map(Json)
}

/// The connector's tasks with their configs.
#[utoipa::path(get, path = "/connectors/{name}/tasks", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Tasks", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn tasks(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let info = state.herder.info(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    let config = shown_config(&*state.herder, &info.definition);
    let tasks: Vec<Value> = info
        .tasks
        .iter()
        .map(|task| {
            let mut task_config = config.clone();
            task_config.insert("task.id".into(), json!(task.to_string()));
            json!({ "id": { "connector": name, "task": task }, "config": task_config })
        })
        .collect();
    Ok(Json(json!(tasks)))
}

/// One task's state.
#[utoipa::path(get, path = "/connectors/{name}/tasks/{task}/status", tag = "connectors", params(("name" = String, Path), ("task" = u32, Path)), responses((status = 200, description = "Task status", body = Value), (status = 404, description = "Unknown connector or task", body = Value)))]
pub(super) async fn task_status(
    State(state): State<ApiState>,
    Path((name, task)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = state.herder.status(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    let task: u32 =
        task.parse().map_err(|_| ApiError::not_found(format!("Task {task} of connector {name} not found")))?;
    let found = snapshot.tasks.iter().find(|candidate| candidate.status.id == task);
    found
        .map(|task| Json(json!(task.status)))
        .ok_or_else(|| ApiError::not_found(format!("Task {task} of connector {name} not found")))
}

/// The topics the connector has used.
#[utoipa::path(get, path = "/connectors/{name}/topics", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "{name: {topics: [...]}}", body = Value), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn topics(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let topics = state.herder.active_topics(&name)?;
    Ok(Json(json!({ name: { "topics": topics } })))
}

/// Forget the topics the connector has used.
#[utoipa::path(put, path = "/connectors/{name}/topics/reset", tag = "connectors", params(("name" = String, Path)), responses((status = 202, description = "Reset"), (status = 404, description = "Unknown connector", body = Value)))]
pub(super) async fn reset_topics(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.reset_active_topics(&name).await?;
    Ok(StatusCode::ACCEPTED)
}
