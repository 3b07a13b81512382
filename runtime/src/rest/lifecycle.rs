//! Pause, resume, stop and restart.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::bodies::{ConnectorStatus, ErrorBody};
use super::connectors::connector_status_body;
use super::error::ApiError;
use super::router::ApiState;
use crate::connector_store::TargetState;

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct RestartParams {
    /// Restart the tasks too.
    #[serde(default)]
    #[param(rename = "includeTasks")]
    include_tasks: bool,
    /// Only what FAILED.
    #[serde(default)]
    #[param(rename = "onlyFailed")]
    only_failed: bool,
}

/// Restart a connector; with `includeTasks=true` its tasks too (only FAILED ones with
/// `onlyFailed=true`). 204 for the connector alone, else 202 with the status.
#[utoipa::path(post, path = "/connectors/{name}/restart", tag = "lifecycle", params(("name" = String, Path), RestartParams), responses((status = 204, description = "Connector restarted"), (status = 202, description = "Restarting, with the status", body = ConnectorStatus), (status = 400, description = "A query parameter is not true or false", body = ErrorBody), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn restart(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    params: Result<Query<RestartParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    state.herder.restart(&name, params.include_tasks, params.only_failed).await?;
    if !params.include_tasks && !params.only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let snapshot = state.herder.status(&name).ok_or_else(|| ApiError::unknown_connector(&name))?;
    Ok((StatusCode::ACCEPTED, Json(connector_status_body(&snapshot))).into_response())
}

/// Restart one task.
#[utoipa::path(post, path = "/connectors/{name}/tasks/{task}/restart", tag = "lifecycle", params(("name" = String, Path), ("task" = u32, Path)), responses((status = 204, description = "Restarted"), (status = 404, description = "Unknown connector or task", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn restart_task(
    State(state): State<ApiState>,
    Path((name, task)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let task: u32 =
        task.parse().map_err(|_| ApiError::not_found(format!("Task {task} of connector {name} not found")))?;
    state.herder.restart_task(&name, task).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pause: the tasks stop taking records and wait (state PAUSED).
#[utoipa::path(put, path = "/connectors/{name}/pause", tag = "lifecycle", params(("name" = String, Path)), responses((status = 202, description = "Pausing"), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn pause(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.herder.set_target(&name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Resume a PAUSED or STOPPED connector from its committed offsets.
#[utoipa::path(put, path = "/connectors/{name}/resume", tag = "lifecycle", params(("name" = String, Path)), responses((status = 202, description = "Resuming"), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn resume(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.herder.set_target(&name, TargetState::Running).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Stop: the tasks shut down (state STOPPED); offsets may then be altered or reset.
#[utoipa::path(put, path = "/connectors/{name}/stop", tag = "lifecycle", params(("name" = String, Path)), responses((status = 204, description = "Stopped"), (status = 404, description = "Unknown connector", body = ErrorBody), (status = 500, description = "The worker failed", body = ErrorBody)))]
pub(super) async fn stop(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.herder.set_target(&name, TargetState::Stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}
