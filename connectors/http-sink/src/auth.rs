//! Authentication: a fixed `Authorization` header (basic, bearer), or OAuth2 client credentials
//! with the token fetched from `oauth2.token.url`, kept until shortly before it expires, and
//! fetched again when the endpoint answers 401.

use std::time::{Duration, Instant};

use base64::Engine as _;
use weir_connector_sdk::ConnectorError;
use weir_connector_sdk::http::{self, Request};

use crate::config::{AuthType, HttpSinkConfig, OAuthMode};

/// A token is fetched again this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// A token response without `expires_in` is kept this long.
const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(300);

/// The `Authorization` header of basic auth.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `application/x-www-form-urlencoded` escaping of one name or value.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// What a request is authorised with.
#[derive(Debug)]
pub enum Auth {
    None,
    /// A fixed `Authorization` header value.
    Fixed(String),
    OAuth2(OAuth2),
}

/// OAuth2 client credentials and the token in hand.
#[derive(Debug)]
pub struct OAuth2 {
    token_url: String,
    client_id: String,
    client_secret: String,
    scope: String,
    mode: OAuthMode,
    property: String,
    timeout_ms: u32,
    token: Option<(String, Instant)>,
}

impl Auth {
    pub fn of(config: &HttpSinkConfig) -> Self {
        match config.auth_type {
            AuthType::None => Auth::None,
            AuthType::Basic => Auth::Fixed(basic(&config.user, &config.password)),
            AuthType::Bearer => Auth::Fixed(format!("Bearer {}", config.bearer_token)),
            AuthType::OAuth2 => Auth::OAuth2(OAuth2 {
                token_url: config.oauth2_token_url.trim().to_owned(),
                client_id: config.oauth2_client_id.clone(),
                client_secret: config.oauth2_client_secret.clone(),
                scope: config.oauth2_scope.clone(),
                mode: config.oauth2_auth_mode,
                property: config.oauth2_token_property.clone(),
                timeout_ms: config.request_timeout_ms,
                token: None,
            }),
        }
    }

    /// The `Authorization` header value for the next request, fetching a token if needed.
    ///
    /// # Errors
    /// The token endpoint unreachable (retriable) or refusing the credentials (fatal).
    pub fn header(&mut self) -> Result<Option<String>, ConnectorError> {
        match self {
            Auth::None => Ok(None),
            Auth::Fixed(value) => Ok(Some(value.clone())),
            Auth::OAuth2(oauth) => oauth.token().map(|token| Some(format!("Bearer {token}"))),
        }
    }

    /// The endpoint answered 401: a token is fetched again before the next request. `true` when
    /// that may help (OAuth2), so the request is worth repeating at once.
    pub fn rejected(&mut self) -> bool {
        match self {
            Auth::OAuth2(oauth) => oauth.token.take().is_some(),
            _ => false,
        }
    }
}

impl OAuth2 {
    fn token(&mut self) -> Result<String, ConnectorError> {
        if let Some((token, until)) = &self.token
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut body = "grant_type=client_credentials".to_owned();
        if !self.scope.is_empty() {
            body.push_str(&format!("&scope={}", form_encode(&self.scope)));
        }
        let mut headers = vec![
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
        ];
        match self.mode {
            OAuthMode::Header => headers.push((
                "authorization".to_owned(),
                basic(&form_encode(&self.client_id), &form_encode(&self.client_secret)),
            )),
            OAuthMode::Url => body.push_str(&format!(
                "&client_id={}&client_secret={}",
                form_encode(&self.client_id),
                form_encode(&self.client_secret)
            )),
        }
        let mut request = Request {
            method: "POST".to_owned(),
            url: self.token_url.clone(),
            headers,
            body: body.into_bytes(),
            timeout_ms: self.timeout_ms,
        };
        let response = http::send(&mut request).map_err(|error| error.into_connector_error("oauth2 token request"))?;
        if response.status == 429 || response.status >= 500 {
            return Err(ConnectorError::Retriable(format!(
                "oauth2 token request: {} answered {}",
                self.token_url, response.status
            )));
        }
        if !response.is_success() {
            return Err(ConnectorError::Fatal(format!(
                "oauth2 token request: {} answered {}: {}",
                self.token_url,
                response.status,
                String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
            )));
        }
        let parsed: serde_json::Value = serde_json::from_slice(&response.body).map_err(|error| {
            ConnectorError::Fatal(format!("oauth2 token request: the response is not JSON: {error}"))
        })?;
        let token = parsed.get(&self.property).and_then(serde_json::Value::as_str).ok_or_else(|| {
            ConnectorError::Fatal(format!(
                "oauth2 token request: the response has no string `{}` (oauth2.token.property)",
                self.property
            ))
        })?;
        let life = parsed
            .get("expires_in")
            .and_then(|value| value.as_u64().or_else(|| value.as_str().and_then(|text| text.parse().ok())))
            .map_or(DEFAULT_TOKEN_LIFE, Duration::from_secs);
        let until = Instant::now() + life.saturating_sub(EXPIRY_MARGIN).max(life / 2);
        self.token = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        assert_eq!(basic("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn form_encoding_escapes_all_but_unreserved() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("read:all write"), "read%3Aall+write");
    }
}
