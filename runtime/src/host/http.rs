//! The host side of the `http` import: requests sent with the host's reqwest client, only to the
//! origins the manifest grants (`grants.http`), redirects followed by hand so that every hop is
//! checked against the grant before anything is sent to it.
//!
//! A request waits at most what it asks for, capped by what is left of the call's deadline
//! (minus [`DEADLINE_MARGIN`], so the component gets control back in time to return).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue, LOCATION, PROXY_AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use tokio::task::JoinHandle;

use super::bindings::http::{self as wit, HttpError};
use super::state::TaskState;
use crate::manifest::HttpGrant;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 10;
/// Largest response body handed to a component (its memory limit is usually 256 MiB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Time kept back from the call's deadline for the component to finish its call.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Most requests of one task in flight at once (`start` without `wait`).
const MAX_IN_FLIGHT: usize = 8;
/// How long a request started without a timeout of its own may take.
const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a request's exchange needs, checked and ready to send.
struct Prepared {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Bytes,
}

/// The task's HTTP client, the origins it may reach, and its requests in flight.
#[derive(Debug, Default)]
pub(crate) struct HttpClient {
    grants: Arc<[HttpGrant]>,
    /// Made on first use, so a task that sends nothing pays nothing.
    client: Option<reqwest::Client>,
    in_flight: HashMap<u64, JoinHandle<Result<wit::Response, HttpError>>>,
    next_id: u64,
}

impl Drop for HttpClient {
    fn drop(&mut self) {
        // The task is gone (stopped, crashed, restarted): so are its requests.
        for (_, request) in self.in_flight.drain() {
            request.abort();
        }
    }
}

fn granted(grants: &[HttpGrant], url: &Url) -> bool {
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return false };
    grants.iter().any(|grant| grant.allows(url.scheme(), host, port))
}

impl HttpClient {
    pub(crate) fn new(grants: Vec<HttpGrant>) -> Self {
        Self { grants: grants.into(), client: None, in_flight: HashMap::new(), next_id: 0 }
    }

    fn client(&mut self) -> Result<reqwest::Client, HttpError> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(POOL_IDLE)
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| HttpError::Invalid(format!("cannot build the HTTP client: {error}")))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Check a request against the grant and its own form, before anything is sent.
    fn prepare(&self, connector: &str, request: wit::Request) -> Result<Prepared, HttpError> {
        let url =
            Url::parse(&request.url).map_err(|error| HttpError::Invalid(format!("`{}`: {error}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Invalid(format!("`{url}`: only http and https URLs can be sent")));
        }
        if !granted(&self.grants, &url) {
            let message = format!("the manifest grants no HTTP access to {} (add it under grants.http)", origin(&url));
            tracing::warn!(connector, capability = "http", "capability denied: {message}");
            return Err(HttpError::NotGranted(message));
        }
        Ok(Prepared {
            method: method_of(&request.method)?,
            url,
            headers: headers_of(&request.headers)?,
            body: Bytes::from(request.body),
        })
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn method_of(name: &str) -> Result<Method, HttpError> {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "PATCH" => Ok(Method::PATCH),
        "DELETE" => Ok(Method::DELETE),
        "HEAD" => Ok(Method::HEAD),
        _ => Err(HttpError::Invalid(format!("method `{name}` is not one of GET, POST, PUT, PATCH, DELETE, HEAD"))),
    }
}

fn headers_of(pairs: &[(String, String)]) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::Invalid(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| HttpError::Invalid(format!("the value of header `{name}` is not valid")))?;
        headers.append(header, value);
    }
    Ok(headers)
}

fn send_error(error: &reqwest::Error, url: &Url) -> HttpError {
    let url = url.as_str();
    if error.is_timeout() {
        HttpError::Timeout(format!("{url}: {error}"))
    } else if error.is_builder() {
        HttpError::Invalid(format!("{url}: {error}"))
    } else {
        // Connect, request, body and decode errors: the exchange broke, another try may work.
        let mut message = format!("{url}: {error}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        HttpError::Connection(message)
    }
}

/// The method and body of the next hop after a redirect: 303 (and 301/302 after a POST, as
/// browsers and curl do) turn into a GET without a body; 307 and 308 repeat the request.
fn redirected(status: StatusCode, method: Method, body: Bytes) -> (Method, Bytes) {
    let to_get = status == StatusCode::SEE_OTHER
        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND) && method == Method::POST);
    if to_get && method != Method::HEAD { (Method::GET, Bytes::new()) } else { (method, body) }
}

async fn read_body(mut response: reqwest::Response, url: &Url) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::with_capacity(response.content_length().map_or(0, |length| length as usize).min(1 << 20));
    while let Some(chunk) = response.chunk().await.map_err(|error| send_error(&error, url))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(HttpError::Invalid(format!(
                "{url}: the response body is over {} MiB",
                MAX_RESPONSE_BYTES >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl TaskState {
    /// What is left of the current call's deadline, for the component's own waits.
    fn call_time_left(&self) -> Duration {
        self.call_timeout.saturating_sub(self.call_started.elapsed()).saturating_sub(DEADLINE_MARGIN)
    }
}

/// Send a prepared request and follow its redirects within the grant, all within `timeout`.
async fn exchange(
    client: reqwest::Client,
    grants: Arc<[HttpGrant]>,
    connector: Arc<str>,
    prepared: Prepared,
    timeout: Duration,
) -> Result<wit::Response, HttpError> {
    let Prepared { mut method, mut url, mut headers, mut body } = prepared;
    let started = Instant::now();
    for _ in 0..=MAX_REDIRECTS {
        let remaining = timeout.saturating_sub(started.elapsed());
        let hop = async {
            let response = client
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await
                .map_err(|error| send_error(&error, &url))?;
            let status = response.status();
            let location = response.headers().get(LOCATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
            if status.is_redirection()
                && let Some(location) = location
            {
                return Ok(Err((status, location)));
            }
            let response_headers = response
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let response_body = read_body(response, &url).await?;
            Ok(Ok(wit::Response { status: status.as_u16(), headers: response_headers, body: response_body }))
        };
        let outcome = tokio::time::timeout(remaining, hop)
            .await
            .map_err(|_| HttpError::Timeout(format!("{url}: no response within {} ms", timeout.as_millis())))?;
        let (status, location) = match outcome? {
            Ok(response) => return Ok(response),
            Err(redirect) => redirect,
        };
        let next = url
            .join(&location)
            .map_err(|error| HttpError::Invalid(format!("{url} redirected to `{location}`: {error}")))?;
        if !granted(&grants, &next) {
            let message = format!(
                "{url} answered {status} to {next}, whose origin {} the manifest does not grant (grants.http)",
                origin(&next)
            );
            tracing::warn!(connector = &*connector, capability = "http", "redirect refused: {message}");
            return Err(HttpError::RedirectRefused(message));
        }
        if origin(&next) != origin(&url) {
            // Credentials are for the origin they were given for.
            for sensitive in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
                headers.remove(sensitive);
            }
        }
        (method, body) = redirected(status, method, body);
        url = next;
    }
    Err(HttpError::Invalid(format!("{url}: more than {MAX_REDIRECTS} redirects")))
}

impl wit::Host for TaskState {
    async fn send(&mut self, request: wit::Request) -> Result<wit::Response, HttpError> {
        let left = self.call_time_left();
        let timeout =
            if request.timeout_ms == 0 { left } else { Duration::from_millis(request.timeout_ms.into()).min(left) };
        let prepared = self.http.prepare(&self.connector, request)?;
        if timeout.is_zero() {
            return Err(HttpError::Timeout(format!("{}: no time left before the call's deadline", prepared.url)));
        }
        let client = self.http.client()?;
        exchange(client, self.http.grants.clone(), self.connector.clone(), prepared, timeout).await
    }

    async fn start(&mut self, request: wit::Request) -> Result<u64, HttpError> {
        let timeout =
            if request.timeout_ms == 0 { BACKGROUND_TIMEOUT } else { Duration::from_millis(request.timeout_ms.into()) };
        let prepared = self.http.prepare(&self.connector, request)?;
        if self.http.in_flight.len() >= MAX_IN_FLIGHT {
            return Err(HttpError::Invalid(format!(
                "{MAX_IN_FLIGHT} requests are in flight already: `wait` for one first"
            )));
        }
        let client = self.http.client()?;
        let exchange = exchange(client, self.http.grants.clone(), self.connector.clone(), prepared, timeout);
        let id = self.http.next_id;
        self.http.next_id += 1;
        self.http.in_flight.insert(id, tokio::spawn(exchange));
        Ok(id)
    }

    async fn wait(&mut self, id: u64, wait_ms: u32) -> Option<Result<wit::Response, HttpError>> {
        let wait = Duration::from_millis(wait_ms.into()).min(self.call_time_left());
        let Some(request) = self.http.in_flight.get_mut(&id) else {
            return Some(Err(HttpError::Invalid(format!("no request with id {id} is in flight"))));
        };
        let joined = tokio::time::timeout(wait, request).await.ok()?;
        self.http.in_flight.remove(&id);
        Some(joined.unwrap_or_else(|error| Err(HttpError::Connection(format!("the request's task ended: {error}")))))
    }

    async fn remaining_ms(&mut self) -> u32 {
        u32::try_from(self.call_time_left().as_millis()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_match_scheme_host_and_port() {
        let grants = [HttpGrant::try_from("http://127.0.0.1:8080".to_owned()).unwrap()];
        assert!(granted(&grants, &Url::parse("http://127.0.0.1:8080/a?b=c").unwrap()));
        assert!(!granted(&grants, &Url::parse("https://127.0.0.1:8080/").unwrap()));
        assert!(!granted(&grants, &Url::parse("http://127.0.0.1:8081/").unwrap()));
        assert!(!granted(&grants, &Url::parse("http://localhost:8080/").unwrap()));
        let https = [HttpGrant::try_from("https://Example.com".to_owned()).unwrap()];
        assert!(granted(&https, &Url::parse("https://example.com/x").unwrap()));
    }

    #[test]
    fn redirects_turn_posts_into_gets_as_clients_do() {
        let body = Bytes::from_static(b"x");
        assert_eq!(redirected(StatusCode::SEE_OTHER, Method::PUT, body.clone()).0, Method::GET);
        assert_eq!(redirected(StatusCode::FOUND, Method::POST, body.clone()).0, Method::GET);
        assert_eq!(redirected(StatusCode::FOUND, Method::PUT, body.clone()), (Method::PUT, body.clone()));
        assert_eq!(redirected(StatusCode::PERMANENT_REDIRECT, Method::POST, body.clone()), (Method::POST, body));
    }

    #[test]
    fn only_known_methods_and_valid_headers_are_sent() {
        assert_eq!(method_of("post").unwrap(), Method::POST);
        assert!(matches!(method_of("CONNECT"), Err(HttpError::Invalid(_))));
        assert!(matches!(headers_of(&[("bad header".into(), "x".into())]), Err(HttpError::Invalid(_))));
        assert!(matches!(headers_of(&[("x-ok".into(), "line\nbreak".into())]), Err(HttpError::Invalid(_))));
    }
}
