//! `/connectors`: list, create, read, change and delete connectors; their status, tasks and
//! topics.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::bodies::{
    ActiveTopics, ConfigPatch, ConnectorConfig, ConnectorInfo, ConnectorList, ConnectorState, ConnectorStatus,
    CreateConnector, ErrorBody, ExpandedConnector, TaskId, TaskInfo, TaskState, config_text,
};
use super::error::ApiError;
use super::router::ApiState;
use crate::config_provider;
use crate::herder::{ConnectorSnapshot, Herder};
use crate::manifest::ConnectorDefinition;

/// The flat config as shown: references as written, schema-secret fields `[hidden]`.
pub(super) fn shown_config(worker: &dyn Herder, definition: &ConnectorDefinition) -> BTreeMap<String, String> {
    let flat = definition.to_flat();
    let shown = match worker.plugins().get(&definition.class) {
        Some(plugin) => config_provider::redact(&flat, plugin.schema()),
        None => flat,
    };
    shown.into_iter().map(|(key, value)| (key, config_text(&value))).collect()
}

pub(super) fn connector_info(worker: &dyn Herder, name: &str) -> Result<ConnectorInfo, ApiError> {
    let info = worker.info(name).ok_or_else(|| ApiError::unknown_connector(name))?;
    let tasks = info.tasks.iter().map(|task| TaskId { connector: name.to_owned(), task: *task }).collect();
    Ok(ConnectorInfo {
        name: name.to_owned(),
        config: shown_config(worker, &info.definition),
        tasks,
        kind: info.kind.into(),
    })
}

pub(super) fn connector_status_body(snapshot: &ConnectorSnapshot) -> ConnectorStatus {
    let tasks = snapshot
        .tasks
        .iter()
        .map(|task| TaskState { status: task.status.clone(), metrics: task.gauges.clone() })
        .collect();
    ConnectorStatus {
        name: snapshot.name.clone(),
        connector: ConnectorState {
            state: snapshot.state,
            worker_id: snapshot.worker_id.clone(),
            trace: snapshot.trace.clone(),
        },
        tasks,
        kind: snapshot.kind.into(),
    }
}

fn connector_status(worker: &dyn Herder, name: &str) -> Result<ConnectorStatus, ApiError> {
    worker
        .status(name)
        .map(|snapshot| connector_status_body(&snapshot))
        .ok_or_else(|| ApiError::unknown_connector(name))
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
#[utoipa::path(get, path = "/connectors", tag = "connectors", params(("expand" = Option<String>, Query, description = "`status` and/or `info` (repeat the parameter for both); other values are ignored")), responses((status = 200, description = "Names, or name → {status, info}", body = ConnectorList)))]
pub(super) async fn list(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Json<ConnectorList> {
    let (status, info) = expand_params(query.as_deref());
    let names = state.herder.connectors();
    if !status && !info {
        return Json(ConnectorList::Names(names));
    }
    let mut out = BTreeMap::new();
    for name in names {
        let mut entry = ExpandedConnector::default();
        if status {
            entry.status = connector_status(&*state.herder, &name).ok();
        }
        if info {
            entry.info = connector_info(&*state.herder, &name).ok();
        }
        out.insert(name, entry);
    }
    Json(ConnectorList::Expanded(out))
}

/// Create a connector: `{"name": ..., "config": {...}, "initial_state": "RUNNING|PAUSED|STOPPED"}`.
#[utoipa::path(post, path = "/connectors", tag = "connectors", request_body = CreateConnector, responses((status = 201, description = "Created; Location names it", body = ConnectorInfo, headers(("Location" = String, description = "The connector's path"))), (status = 400, description = "Malformed body, or an invalid config (names the field)", body = ErrorBody), (status = 409, description = "Exists already", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<ApiState>,
    body: Result<Json<CreateConnector>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(CreateConnector { name, config, initial_state }) = body?;
    if name.trim().is_empty() || name.contains('/') {
        return Err(ApiError::bad_request("Connector name must not be empty or contain '/'"));
    }
    let mut flat = config.into_map();
    flat.entry("name").or_insert_with(|| json!(name));
    if state.herder.info(&name).is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("Connector {name} already exists")));
    }
    let definition = definition_from_flat(&*state.herder, &name, &flat)?;
    state.herder.put(definition, initial_state).await?;
    let info = connector_info(&*state.herder, &name)?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/connectors/{name}"))], Json(info)).into_response())
}

/// A connector's name, config, tasks and type.
#[utoipa::path(get, path = "/connectors/{name}", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Info", body = ConnectorInfo), (status = 404, description = "Unknown connector", body = ErrorBody)))]
pub(super) async fn info(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ConnectorInfo>, ApiError> {
    connector_info(&*state.herder, &name).map(Json)
}

/// Delete a connector (its tasks stop; its offsets stay).
#[utoipa::path(delete, path = "/connectors/{name}", tag = "connectors", params(("name" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn delete(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.herder.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The connector's flat config (references as written, secrets `[hidden]`).
#[utoipa::path(get, path = "/connectors/{name}/config", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Flat config", body = BTreeMap<String, String>), (status = 404, description = "Unknown connector", body = ErrorBody)))]
pub(super) async fn config(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let info = state.herder.info(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    Ok(Json(shown_config(&*state.herder, &info.definition)))
}

/// Create or replace a connector's config; 201 when created, 200 when replaced.
#[utoipa::path(put, path = "/connectors/{name}/config", tag = "connectors", params(("name" = String, Path)), request_body = ConnectorConfig, responses((status = 201, description = "Created", body = ConnectorInfo, headers(("Location" = String, description = "The connector's path"))), (status = 200, description = "Replaced", body = ConnectorInfo), (status = 400, description = "Malformed body, or an invalid config (names the field)", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn put_config(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<ConnectorConfig>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(config) = body?;
    let mut flat = config.into_map();
    flat.entry("name").or_insert_with(|| json!(name));
    keep_hidden(&*state.herder, &name, &mut flat);
    let definition = definition_from_flat(&*state.herder, &name, &flat)?;
    let created = state.herder.put(definition, None).await?;
    let info = connector_info(&*state.herder, &name)?;
    if created {
        Ok((StatusCode::CREATED, [(header::LOCATION, format!("/connectors/{name}"))], Json(info)).into_response())
    } else {
        Ok((StatusCode::OK, Json(info)).into_response())
    }
}

/// Merge keys into a connector's config; a `null` value removes the key.
#[utoipa::path(patch, path = "/connectors/{name}/config", tag = "connectors", params(("name" = String, Path)), request_body = ConfigPatch, responses((status = 200, description = "Patched", body = ConnectorInfo), (status = 400, description = "Malformed body, or the patched config is invalid", body = ErrorBody), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn patch_config(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<ConfigPatch>, JsonRejection>,
) -> Result<Json<ConnectorInfo>, ApiError> {
    let Json(patch) = body?;
    let info = state.herder.info(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    let mut flat = info.definition.to_flat();
    for (key, value) in patch.0 {
        match value.map(Value::from) {
            None => {
                flat.remove(&key);
            }
            Some(value) if value.as_str() == Some(config_provider::HIDDEN) => {}
            Some(value) => {
                flat.insert(key, value);
            }
        }
    }
    let definition = definition_from_flat(&*state.herder, &name, &flat)?;
    state.herder.put(definition, None).await?;
    connector_info(&*state.herder, &name).map(Json)
}

/// Connector and task states, worker id and, for FAILED, the trace.
#[utoipa::path(get, path = "/connectors/{name}/status", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Status", body = ConnectorStatus), (status = 404, description = "Unknown connector", body = ErrorBody)))]
pub(super) async fn status(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ConnectorStatus>, ApiError> {
    connector_status(&*state.herder, &name).map(Json)
}

/// The connector's tasks with their configs.
#[utoipa::path(get, path = "/connectors/{name}/tasks", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "Tasks", body = Vec<TaskInfo>), (status = 404, description = "Unknown connector", body = ErrorBody)))]
pub(super) async fn tasks(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<TaskInfo>>, ApiError> {
    let info = state.herder.info(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    let config = shown_config(&*state.herder, &info.definition);
    let tasks = info
        .tasks
        .iter()
        .map(|task| {
            let mut task_config = config.clone();
            task_config.insert("task.id".into(), task.to_string());
            TaskInfo { id: TaskId { connector: name.clone(), task: *task }, config: task_config }
        })
        .collect();
    Ok(Json(tasks))
}

/// One task's state.
#[utoipa::path(get, path = "/connectors/{name}/tasks/{task}/status", tag = "connectors", params(("name" = String, Path), ("task" = u32, Path)), responses((status = 200, description = "Task status", body = TaskState), (status = 404, description = "Unknown connector or task", body = ErrorBody)))]
pub(super) async fn task_status(
    State(state): State<ApiState>,
    Path((name, task)): Path<(String, String)>,
) -> Result<Json<TaskState>, ApiError> {
    let snapshot = state.herder.status(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    let task: u32 =
        task.parse().map_err(|_| ApiError::not_found(format!("Task {task} of connector {name} not found")))?;
    let status = connector_status_body(&snapshot);
    let found = status.tasks.into_iter().find(|candidate| candidate.status.id == task);
    found.map(Json).ok_or_else(|| ApiError::not_found(format!("Task {task} of connector {name} not found")))
}

/// The topics the connector has used.
#[utoipa::path(get, path = "/connectors/{name}/topics", tag = "connectors", params(("name" = String, Path)), responses((status = 200, description = "{name: {topics: [...]}}", body = BTreeMap<String, ActiveTopics>), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn topics(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<BTreeMap<String, ActiveTopics>>, ApiError> {
    let topics = state.herder.active_topics(&name)?;
    Ok(Json(BTreeMap::from([(name, ActiveTopics { topics: topics.into_iter().collect() })])))
}

/// Forget the topics the connector has used.
#[utoipa::path(put, path = "/connectors/{name}/topics/reset", tag = "connectors", params(("name" = String, Path)), responses((status = 202, description = "Reset"), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn reset_topics(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.herder.reset_active_topics(&name).await?;
    Ok(StatusCode::ACCEPTED)
}
