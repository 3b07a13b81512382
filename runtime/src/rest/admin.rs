//! `/`, `/health`, `/metrics` and `/admin/loggers`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::error::ApiError;
use super::router::ApiState;

/// Version, commit and cluster id (Kafka Connect's `GET /`).
#[utoipa::path(get, path = "/", tag = "admin", responses((status = 200, description = "Worker version", body = Value)))]
pub(super) async fn root(State(state): State<ApiState>) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("WEIR_GIT_COMMIT").unwrap_or("unknown"),
        "kafka_cluster_id": format!("weir-{}", state.herder.worker_id()),
    }))
}

/// Whether the worker is up and serving (Kafka Connect's `GET /health`).
#[utoipa::path(get, path = "/health", tag = "admin", responses((status = 200, description = "Healthy", body = Value)))]
pub(super) async fn health() -> Json<Value> {
    Json(json!({ "status": "healthy", "message": "Worker has completed startup and is ready to handle requests." }))
}

/// Per connector and task counters in Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "admin", responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&*state.herder).await)
}

fn levels(state: &ApiState) -> Result<&super::router::LogLevels, ApiError> {
    state.log_levels.as_deref().ok_or_else(|| ApiError::not_found("Log levels cannot be changed on this worker"))
}

/// Every logger (tracing target) with an explicit level; `root` is the default.
#[utoipa::path(get, path = "/admin/loggers", tag = "admin", responses((status = 200, description = "Logger levels", body = Value)))]
pub(super) async fn loggers(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let levels = levels(&state)?.levels();
    Ok(Json(Value::Object(levels.into_iter().map(|(logger, level)| (logger, json!({ "level": level }))).collect())))
}

/// One logger's effective level.
#[utoipa::path(get, path = "/admin/loggers/{logger}", tag = "admin", params(("logger" = String, Path, description = "A tracing target, e.g. weir_runtime::task, or root")), responses((status = 200, description = "The level", body = Value)))]
pub(super) async fn logger(State(state): State<ApiState>, Path(logger): Path<String>) -> Result<Json<Value>, ApiError> {
    let levels = levels(&state)?.levels();
    // The closest ancestor with a level (targets are `::`-separated), else root.
    let mut candidate = logger.as_str();
    loop {
        if let Some(level) = levels.get(candidate) {
            return Ok(Json(json!({ "level": level })));
        }
        match candidate.rsplit_once("::") {
            Some((parent, _)) => candidate = parent,
            None => break,
        }
    }
    Ok(Json(json!({ "level": levels.get("root").cloned().unwrap_or_else(|| "INFO".into()) })))
}

/// Change a logger's level live; answers the loggers changed.
#[utoipa::path(put, path = "/admin/loggers/{logger}", tag = "admin", params(("logger" = String, Path)), request_body = Value, responses((status = 200, description = "The loggers changed", body = Value), (status = 400, description = "Invalid level", body = Value)))]
pub(super) async fn set_logger(
    State(state): State<ApiState>,
    Path(logger): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let level = body
        .get("level")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("The request body must have a \"level\" field"))?;
    levels(&state)?.set(&logger, level).map_err(ApiError::bad_request)?;
    tracing::info!(logger = %logger, level, "log level changed");
    Ok(Json(json!([logger])))
}
