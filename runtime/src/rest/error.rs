//! The API's one error type, answered as Kafka Connect does:
//! `{"error_code": <HTTP status>, "message": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::worker::WorkerError;

/// An error answered to a REST client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unknown_connector(name: &str) -> Self {
        Self::not_found(format!("Connector {name} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.status.as_u16(), "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

impl From<WorkerError> for ApiError {
    fn from(error: WorkerError) -> Self {
        let status = match &error {
            WorkerError::NotFound { .. } | WorkerError::TaskNotFound { .. } => StatusCode::NOT_FOUND,
            WorkerError::AlreadyExists { .. } => StatusCode::CONFLICT,
            WorkerError::InvalidConfig { .. } | WorkerError::WrongState { .. } | WorkerError::BadRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            WorkerError::Plugin(_) | WorkerError::Task { .. } => StatusCode::BAD_REQUEST,
            WorkerError::Engine(_) | WorkerError::Log(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &error {
            WorkerError::NotFound { name } => format!("Connector {name} not found"),
            WorkerError::AlreadyExists { name } => format!("Connector {name} already exists"),
            other => other.to_string(),
        };
        Self::new(status, message)
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::bad_request(format!("Cannot deserialize the request body: {}", rejection.body_text()))
    }
}
