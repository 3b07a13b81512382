//! `/`, `/health`, `/metrics` and `/admin/loggers`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::bodies::{ErrorBody, Health, LoggerLevel, ServerInfo, SetLevel};
use super::error::ApiError;
use super::router::ApiState;

/// Version, commit and cluster id (Kafka Connect's `GET /`).
#[utoipa::path(get, path = "/", tag = "admin", responses((status = 200, description = "Worker version", body = ServerInfo)))]
pub(super) async fn root(State(state): State<ApiState>) -> Json<ServerInfo> {
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: option_env!("WEIR_GIT_COMMIT").unwrap_or("unknown").to_owned(),
        kafka_cluster_id: format!("weir-{}", state.herder.worker_id()),
    })
}

/// Whether the worker is up and serving (Kafka Connect's `GET /health`).
#[utoipa::path(get, path = "/health", tag = "admin", responses((status = 200, description = "Healthy", body = Health)))]
pub(super) async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy".to_owned(),
        message: "Worker has completed startup and is ready to handle requests.".to_owned(),
    })
}

/// Per connector and task counters in Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "admin", responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&*state.herder).await)
}

fn levels(state: &ApiState) -> Result<&super::router::LogLevels, ApiError> {
    state.log_levels.as_deref().ok_or_else(|| ApiError::not_found("Log levels cannot be changed on this worker"))
}

/// Refuses a logger name that is not `root` or a tracing target (`::`-separated Rust
/// identifiers): it could not go into a filter. The routes' `pattern` says the same.
fn checked_logger(logger: &str) -> Result<&str, ApiError> {
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
            && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_')
    };
    if logger.split("::").all(identifier) {
        Ok(logger)
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid logger '{logger}': expected root or a tracing target such as weir_runtime::task"
        )))
    }
}

/// Every logger (tracing target) with an explicit level; `root` is the default.
#[utoipa::path(get, path = "/admin/loggers", tag = "admin", responses((status = 200, description = "Logger levels", body = BTreeMap<String, LoggerLevel>), (status = 404, description = "This worker's levels cannot be changed", body = ErrorBody)))]
pub(super) async fn loggers(State(state): State<ApiState>) -> Result<Json<BTreeMap<String, LoggerLevel>>, ApiError> {
    let levels = levels(&state)?.levels();
    Ok(Json(levels.into_iter().map(|(logger, level)| (logger, LoggerLevel { level })).collect()))
}

/// One logger's effective level.
#[utoipa::path(get, path = "/admin/loggers/{logger}", tag = "admin", params(("logger" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$", description = "A tracing target, e.g. weir_runtime::task, or root")), responses((status = 200, description = "The level", body = LoggerLevel), (status = 400, description = "Not a logger name", body = ErrorBody), (status = 404, description = "This worker's levels cannot be changed", body = ErrorBody)))]
pub(super) async fn logger(
    State(state): State<ApiState>,
    Path(logger): Path<String>,
) -> Result<Json<LoggerLevel>, ApiError> {
    let logger = checked_logger(&logger)?;
    let levels = levels(&state)?.levels();
    // The closest ancestor with a level (targets are `::`-separated), else root.
    let mut candidate = logger;
    loop {
        if let Some(level) = levels.get(candidate) {
            return Ok(Json(LoggerLevel { level: level.clone() }));
        }
        match candidate.rsplit_once("::") {
            Some((parent, _)) => candidate = parent,
            None => break,
        }
    }
    Ok(Json(LoggerLevel { level: levels.get("root").cloned().unwrap_or_else(|| "INFO".into()) }))
}

/// Change a logger's level live; answers the loggers changed.
#[utoipa::path(put, path = "/admin/loggers/{logger}", tag = "admin", params(("logger" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$")), request_body = SetLevel, responses((status = 200, description = "The loggers changed", body = Vec<String>), (status = 400, description = "Malformed body, invalid level or not a logger name", body = ErrorBody), (status = 404, description = "This worker's levels cannot be changed", body = ErrorBody)))]
pub(super) async fn set_logger(
    State(state): State<ApiState>,
    Path(logger): Path<String>,
    body: Result<Json<SetLevel>, JsonRejection>,
) -> Result<Json<Vec<String>>, ApiError> {
    let Json(SetLevel { level }) = body?;
    let logger = checked_logger(&logger)?;
    levels(&state)?.set(logger, &level).map_err(ApiError::bad_request)?;
    tracing::info!(logger = %logger, level, "log level changed");
    Ok(Json(vec![logger.to_owned()]))
}
