//! The API's one error type, answered as Kafka Connect does:
//! `{"error_code": <HTTP status>, "message": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::bodies::ErrorBody;
use crate::herder::HerderError;

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
        let body = ErrorBody { error_code: self.status.as_u16(), message: self.message };
        (self.status, Json(body)).into_response()
    }
}

impl From<HerderError> for ApiError {
    fn from(error: HerderError) -> Self {
        let status = match &error {
            HerderError::NotFound { .. } | HerderError::TaskNotFound { .. } => StatusCode::NOT_FOUND,
            HerderError::AlreadyExists { .. } => StatusCode::CONFLICT,
            HerderError::InvalidConfig { .. }
            | HerderError::NotStopped { .. }
            | HerderError::OffsetsKindMismatch { .. }
            | HerderError::NotASource { .. }
            | HerderError::Unresolved { .. }
            | HerderError::UnknownPlugin { .. }
            | HerderError::TaskPlanning { .. } => StatusCode::BAD_REQUEST,
            HerderError::Log { .. } | HerderError::Engine(_) | HerderError::Plugin(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &error {
            HerderError::NotFound { name } => format!("Connector {name} not found"),
            HerderError::AlreadyExists { name } => format!("Connector {name} already exists"),
            // The worker's own failure: say what failed, keep the detail (paths, OS errors) in
            // the worker's log.
            HerderError::Log { operation, .. } => {
                tracing::error!(error = %error, "request failed");
                format!("The worker failed while {operation}; see the worker's log")
            }
            HerderError::Engine(_) | HerderError::Plugin(_) => {
                tracing::error!(error = %error, "request failed");
                "The worker's WebAssembly engine failed; see the worker's log".to_owned()
            }
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
