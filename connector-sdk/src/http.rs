//! HTTP(S) for connectors: the guest side of the WIT `http` import.
//!
//! The host sends the request with its own client, only to origins (scheme, host, port) the
//! manifest grants under `grants.http`, and follows redirects only within them. Every call returns
//! within the task's call deadline; [`remaining_ms`] says how much of it is left, so a connector
//! that waits between retries can stop before it. Natively (a connector compiled into the host, or
//! a unit test) there is no host to ask: [`send`] returns [`HttpError::NotGranted`] saying so.

use crate::types::ConnectorError;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Longest wait for the whole exchange in milliseconds (0: what the call deadline allows).
    pub timeout_ms: u32,
}

/// A response, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header, _)| header == name).map(|(_, value)| value.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The manifest grants no such origin (nothing reached the network), or there is no host.
    NotGranted(String),
    /// A redirect pointed outside the grant; it was not followed.
    RedirectRefused(String),
    /// No connection, or it dropped before a response: worth a retry.
    Connection(String),
    /// No response within the timeout: worth a retry.
    Timeout(String),
    /// The request cannot be sent as given.
    Invalid(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NotGranted(message) => write!(f, "not granted: {message}"),
            HttpError::RedirectRefused(message) => write!(f, "redirect refused: {message}"),
            HttpError::Connection(message) => write!(f, "connection: {message}"),
            HttpError::Timeout(message) => write!(f, "timeout: {message}"),
            HttpError::Invalid(message) => write!(f, "invalid request: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl HttpError {
    /// Whether sending again may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, HttpError::Connection(_) | HttpError::Timeout(_))
    }

    /// A connection problem or a timeout is retriable; everything else fails the task.
    pub fn into_connector_error(self, context: &str) -> ConnectorError {
        if self.is_retriable() {
            ConnectorError::Retriable(format!("{context}: {self}"))
        } else {
            ConnectorError::Fatal(format!("{context}: {self}"))
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{HttpError, Request, Response};
    use crate::__bindings::sink::weir::connector::http as wit;

    pub(super) fn send(request: &mut Request) -> Result<Response, HttpError> {
        let lowered = lower(request);
        let result = wit::send(&lowered);
        restore(request, lowered);
        result.map(response).map_err(error)
    }

    pub(super) fn start(request: &mut Request) -> Result<u64, HttpError> {
        let lowered = lower(request);
        let result = wit::start(&lowered);
        restore(request, lowered);
        result.map_err(error)
    }

    pub(super) fn wait(id: u64, wait_ms: u32) -> Option<Result<Response, HttpError>> {
        wit::wait(id, wait_ms).map(|result| result.map(response).map_err(error))
    }

    /// Moved into the WIT record and back: the body crosses without a copy in the guest.
    fn lower(request: &mut Request) -> wit::Request {
        wit::Request {
            method: std::mem::take(&mut request.method),
            url: std::mem::take(&mut request.url),
            headers: std::mem::take(&mut request.headers),
            body: std::mem::take(&mut request.body),
            timeout_ms: request.timeout_ms,
        }
    }

    fn restore(request: &mut Request, lowered: wit::Request) {
        request.method = lowered.method;
        request.url = lowered.url;
        request.headers = lowered.headers;
        request.body = lowered.body;
    }

    fn response(response: wit::Response) -> Response {
        Response { status: response.status, headers: response.headers, body: response.body }
    }

    fn error(error: wit::HttpError) -> HttpError {
        match error {
            wit::HttpError::NotGranted(message) => HttpError::NotGranted(message),
            wit::HttpError::RedirectRefused(message) => HttpError::RedirectRefused(message),
            wit::HttpError::Connection(message) => HttpError::Connection(message),
            wit::HttpError::Timeout(message) => HttpError::Timeout(message),
            wit::HttpError::Invalid(message) => HttpError::Invalid(message),
        }
    }

    pub(super) fn remaining_ms() -> u32 {
        wit::remaining_ms()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{HttpError, Request, Response};

    fn unavailable() -> HttpError {
        HttpError::NotGranted("the http capability is unavailable natively (only in a component)".into())
    }

    pub(super) fn send(_request: &mut Request) -> Result<Response, HttpError> {
        Err(unavailable())
    }

    pub(super) fn start(_request: &mut Request) -> Result<u64, HttpError> {
        Err(unavailable())
    }

    pub(super) fn wait(_id: u64, _wait_ms: u32) -> Option<Result<Response, HttpError>> {
        Some(Err(unavailable()))
    }

    pub(super) fn remaining_ms() -> u32 {
        u32::MAX
    }
}

/// Send one request; the response whatever its status. `request` is borrowed mutably only so
/// that its body crosses to the host without a copy: it is left as it was.
///
/// # Errors
/// [`HttpError::NotGranted`] when the manifest does not grant the URL's origin; a connection
/// problem or timeout (retriable); a redirect outside the grant; a request that cannot be sent.
pub fn send(request: &mut Request) -> Result<Response, HttpError> {
    imp::send(request)
}

/// Start sending `request` without waiting for its response; collect that with [`wait`]. Its
/// `timeout_ms` counts from now (0: 30 s); at most 8 requests of a task are in flight. Borrowed
/// mutably for the same reason as in [`send`].
///
/// # Errors
/// As [`send`] for what is checked before sending (the grant, the request's form), and when 8
/// requests are in flight already.
pub fn start(request: &mut Request) -> Result<u64, HttpError> {
    imp::start(request)
}

/// The response of request `id` (from [`start`]), waiting at most `wait_ms` (capped by the call's
/// deadline); `None` while it has not come. Once it is returned, `id` is done.
pub fn wait(id: u64, wait_ms: u32) -> Option<Result<Response, HttpError>> {
    imp::wait(id, wait_ms)
}

/// Milliseconds left of the current call's deadline (natively: `u32::MAX`).
pub fn remaining_ms() -> u32 {
    imp::remaining_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_unavailable() {
        let mut request = Request {
            method: "GET".into(),
            url: "http://127.0.0.1:1/".into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: 0,
        };
        assert!(matches!(send(&mut request), Err(HttpError::NotGranted(_))));
    }

    #[test]
    fn headers_are_found_by_lowercase_name() {
        let response = Response { status: 429, headers: vec![("retry-after".into(), "2".into())], body: Vec::new() };
        assert_eq!(response.header("retry-after"), Some("2"));
        assert!(!response.is_success());
    }
}
