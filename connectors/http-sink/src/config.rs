//! The `http-sink` configuration, in the names of Confluent's and Aiven's HTTP sinks where they
//! have one (`http.api.url`, `request.method`, `headers`, `header.separator`, `batch.max.size`,
//! `max.retries`, `retry.backoff.ms`, `retry.on.status.codes`, `auth.type`, `connection.user`,
//! `connection.password`, `oauth2.*`, `behavior.on.error`, `behavior.on.null.values`). The doc
//! comments are the user documentation: they land in the connector's JSON Schema.

use weir_connector_sdk::FieldError;

use crate::retry::StatusCodes;

/// Configuration of the `http-sink` connector.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// Comma-separated topics to consume. Read by the runtime; every record it puts is sent.
    pub topics: String,
    /// The endpoint, an absolute `http://` or `https://` URL. The manifest must grant its origin
    /// (scheme, host and port) under `grants.http`.
    #[serde(rename = "http.api.url")]
    pub url: String,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(rename = "request.method", default)]
    pub method: Method,
    /// The body: `json` (a JSON array of the records' values; with `batch.max.size: 1`, the one
    /// value itself) or `ndjson` (one value per line). A value that is JSON text goes in as it
    /// is; any other UTF-8 value as a JSON string; a value that is not UTF-8 is a failed record.
    #[serde(rename = "request.body.format", default)]
    pub body_format: BodyFormat,
    /// Most records per request; 1 sends one request per record.
    #[serde(rename = "batch.max.size", default = "default_batch_max_size")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub batch_max_size: u32,
    /// Most body bytes per request (a single record larger than this goes alone).
    #[serde(rename = "batch.max.bytes", default = "default_batch_max_bytes")]
    #[schemars(range(min = 1))]
    pub batch_max_bytes: u64,
    /// How long a batch that is not full may wait for more records before it is sent
    /// (milliseconds; 0: send at the end of every `put`). Every flush (Kafka Connect's
    /// `offset.flush.interval.ms`) sends what is buffered regardless.
    #[serde(rename = "batch.linger.ms", default)]
    pub linger_ms: u64,
    /// Extra request headers, `Name:Value` pairs separated by `header.separator`, e.g.
    /// `X-Source:weir|X-Env:prod`. `Content-Type` defaults to `application/json` (`json`) or
    /// `application/x-ndjson` (`ndjson`) unless given here.
    #[serde(default)]
    #[schemars(extend("writeOnly" = true))]
    pub headers: String,
    /// The separator of `headers`.
    #[serde(rename = "header.separator", default = "default_header_separator")]
    pub header_separator: String,
    /// `none` (default), `basic` (`connection.user` / `connection.password`), `bearer`
    /// (`bearer.token`) or `oauth2` (client credentials, `oauth2.*`).
    #[serde(rename = "auth.type", default)]
    pub auth_type: AuthType,
    /// User of basic auth.
    #[serde(rename = "connection.user", default)]
    pub user: String,
    /// Password of basic auth.
    #[serde(rename = "connection.password", default)]
    #[schemars(extend("writeOnly" = true))]
    pub password: String,
    /// The token of bearer auth, sent as `Authorization: Bearer <token>`.
    #[serde(rename = "bearer.token", default)]
    #[schemars(extend("writeOnly" = true))]
    pub bearer_token: String,
    /// The OAuth2 token endpoint (client credentials grant). Its origin must be granted too.
    #[serde(rename = "oauth2.token.url", default)]
    pub oauth2_token_url: String,
    #[serde(rename = "oauth2.client.id", default)]
    pub oauth2_client_id: String,
    #[serde(rename = "oauth2.client.secret", default)]
    #[schemars(extend("writeOnly" = true))]
    pub oauth2_client_secret: String,
    /// The scope asked for (empty: none).
    #[serde(rename = "oauth2.client.scope", default)]
    pub oauth2_scope: String,
    /// How the client authenticates to the token endpoint: `header` (HTTP basic, default) or
    /// `url` (`client_id` and `client_secret` in the form body).
    #[serde(rename = "oauth2.client.auth.mode", default)]
    pub oauth2_auth_mode: OAuthMode,
    /// The field of the token response holding the token.
    #[serde(rename = "oauth2.token.property", default = "default_token_property")]
    pub oauth2_token_property: String,
    /// Retries of one batch before it has failed for good (after the first try).
    #[serde(rename = "max.retries", default = "default_max_retries")]
    pub max_retries: u32,
    /// The first wait before a retry, doubled after each (milliseconds). A `Retry-After` header on
    /// the response (seconds or an HTTP date) takes its place, as long as it asks (up to an
    /// hour).
    #[serde(rename = "retry.backoff.ms", default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// The longest backoff between two tries (milliseconds).
    #[serde(rename = "retry.backoff.max.ms", default = "default_retry_backoff_max_ms")]
    pub retry_backoff_max_ms: u64,
    /// Statuses worth a retry: codes and ranges, comma-separated, a range open at the top
    /// written `500-` (e.g. `408,429,500-`). Connection errors and timeouts are always retried.
    #[serde(rename = "retry.on.status.codes", default = "default_retry_codes")]
    pub retry_on_status_codes: String,
    /// Longest wait for one request's response (milliseconds), within the call's deadline
    /// (`limits.call.timeout.ms`).
    #[serde(rename = "request.timeout.ms", default = "default_request_timeout_ms")]
    pub request_timeout_ms: u32,
    /// What a batch refused for good (a status not worth a retry, or retries spent) does: `fail`
    /// (default: its records are failed records, which `errors.tolerance` and the dead-letter
    /// topic decide on, with the status in `__connect.errors.http.status`), `log` (logged and
    /// dropped) or `ignore` (dropped).
    #[serde(rename = "behavior.on.error", default)]
    pub behavior_on_error: OnError,
    /// What a record with a null value (a tombstone) does: `ignore` (default: skipped) or `fail`
    /// (a failed record).
    #[serde(rename = "behavior.on.null.values", default)]
    pub behavior_on_null_values: OnNull,
}

/// The request method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
pub enum Method {
    #[default]
    #[serde(rename = "POST", alias = "post")]
    Post,
    #[serde(rename = "PUT", alias = "put")]
    Put,
    #[serde(rename = "PATCH", alias = "patch")]
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// How a batch's body is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// A JSON array of values (one value alone with `batch.max.size: 1`).
    #[default]
    Json,
    /// One JSON value per line, each line ending in `\n`.
    Ndjson,
}

/// `auth.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
pub enum AuthType {
    #[default]
    #[serde(rename = "none", alias = "NONE")]
    None,
    #[serde(rename = "basic", alias = "BASIC")]
    Basic,
    #[serde(rename = "bearer", alias = "BEARER")]
    Bearer,
    #[serde(rename = "oauth2", alias = "OAUTH2")]
    OAuth2,
}

/// `oauth2.client.auth.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
pub enum OAuthMode {
    #[default]
    #[serde(rename = "header", alias = "HEADER")]
    Header,
    #[serde(rename = "url", alias = "URL")]
    Url,
}

/// `behavior.on.error`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
pub enum OnError {
    #[default]
    #[serde(rename = "fail", alias = "FAIL")]
    Fail,
    #[serde(rename = "log", alias = "LOG")]
    Log,
    #[serde(rename = "ignore", alias = "IGNORE")]
    Ignore,
}

/// `behavior.on.null.values`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
pub enum OnNull {
    #[default]
    #[serde(rename = "ignore", alias = "IGNORE")]
    Ignore,
    #[serde(rename = "fail", alias = "FAIL")]
    Fail,
}

fn default_batch_max_size() -> u32 {
    500
}

fn default_batch_max_bytes() -> u64 {
    4 << 20
}

fn default_header_separator() -> String {
    "|".to_owned()
}

fn default_token_property() -> String {
    "access_token".to_owned()
}

fn default_max_retries() -> u32 {
    10
}

fn default_retry_backoff_ms() -> u64 {
    3_000
}

fn default_retry_backoff_max_ms() -> u64 {
    60_000
}

fn default_retry_codes() -> String {
    "408,429,500-".to_owned()
}

fn default_request_timeout_ms() -> u32 {
    10_000
}

impl HttpSinkConfig {
    /// The `headers` pairs, trimmed.
    ///
    /// # Errors
    /// The first entry that is not `Name:Value`.
    pub fn header_pairs(&self) -> Result<Vec<(String, String)>, String> {
        if self.headers.trim().is_empty() {
            return Ok(Vec::new());
        }
        let separator = if self.header_separator.is_empty() { "|" } else { self.header_separator.as_str() };
        self.headers
            .split(separator)
            .filter(|entry| !entry.trim().is_empty())
            .enumerate()
            .map(|(index, entry)| match entry.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.trim().to_owned())),
                // The value is a secret as often as not: name the entry by position only.
                _ => Err(format!("entry {} is not `Name:Value`", index + 1)),
            })
            .collect()
    }

    /// Every problem, each naming its key.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.topics.split(',').all(|topic| topic.trim().is_empty()) {
            errors.push(FieldError::new("topics", "must name at least one topic"));
        }
        let url = self.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            errors.push(FieldError::new("http.api.url", format!("`{url}` is not an absolute http:// or https:// URL")));
        }
        if let Err(message) = self.header_pairs() {
            errors.push(FieldError::new("headers", message));
        }
        if let Err(message) = StatusCodes::parse(&self.retry_on_status_codes) {
            errors.push(FieldError::new("retry.on.status.codes", message));
        }
        if self.batch_max_size == 0 {
            errors.push(FieldError::new("batch.max.size", "must be at least 1"));
        }
        if self.batch_max_bytes == 0 {
            errors.push(FieldError::new("batch.max.bytes", "must be at least 1"));
        }
        if self.retry_backoff_max_ms < self.retry_backoff_ms {
            errors.push(FieldError::new("retry.backoff.max.ms", "must be at least retry.backoff.ms"));
        }
        match self.auth_type {
            AuthType::None => {}
            AuthType::Basic => {
                if self.user.is_empty() {
                    errors.push(FieldError::new("connection.user", "auth.type basic needs a user"));
                }
            }
            AuthType::Bearer => {
                if self.bearer_token.is_empty() {
                    errors.push(FieldError::new("bearer.token", "auth.type bearer needs a token"));
                }
            }
            AuthType::OAuth2 => {
                let token_url = self.oauth2_token_url.trim();
                if !(token_url.starts_with("http://") || token_url.starts_with("https://")) {
                    errors.push(FieldError::new("oauth2.token.url", "auth.type oauth2 needs the token endpoint's URL"));
                }
                if self.oauth2_client_id.is_empty() {
                    errors.push(FieldError::new("oauth2.client.id", "auth.type oauth2 needs a client id"));
                }
                if self.oauth2_client_secret.is_empty() {
                    errors.push(FieldError::new("oauth2.client.secret", "auth.type oauth2 needs a client secret"));
                }
                if self.oauth2_token_property.is_empty() {
                    errors.push(FieldError::new("oauth2.token.property", "must not be empty"));
                }
            }
        }
        errors
    }
}
