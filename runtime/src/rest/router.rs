//! The router (every route, with its OpenAPI description, registered once), the shared state,
//! and binding.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use tower::ServiceExt;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::{admin, connectors, lifecycle, offsets, plugins, signals};
use crate::herder::Herder;

/// Installs a filter given in `EnvFilter` syntax.
type ApplyFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Live control of the log levels (`/admin/loggers`): the binary owns the subscriber and hands
/// in a function that installs a new filter (a `tracing_subscriber::reload` handle).
pub struct LogLevels {
    apply: ApplyFilter,
    /// Logger (tracing target) → level; `root` is the default.
    levels: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for LogLevels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevels").field("levels", &self.levels).finish_non_exhaustive()
    }
}

impl LogLevels {
    /// Start from a filter in `EnvFilter` syntax (`info,weir_runtime=debug`).
    pub fn new(initial: &str, apply: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        let mut levels = BTreeMap::new();
        levels.insert("root".to_owned(), "INFO".to_owned());
        for directive in initial.split(',').map(str::trim).filter(|directive| !directive.is_empty()) {
            match directive.split_once('=') {
                Some((target, level)) => levels.insert(target.to_owned(), level.to_ascii_uppercase()),
                None => levels.insert("root".to_owned(), directive.to_ascii_uppercase()),
            };
        }
        Self { apply: Box::new(apply), levels: Mutex::new(levels) }
    }

    /// Every logger with an explicit level.
    pub fn levels(&self) -> BTreeMap<String, String> {
        self.levels.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Set a logger's level (`root` sets the default) and install the new filter.
    ///
    /// # Errors
    /// When the level is not one of TRACE, DEBUG, INFO, WARN, ERROR, OFF.
    pub fn set(&self, logger: &str, level: &str) -> Result<(), String> {
        let level = match level.to_ascii_uppercase().as_str() {
            level @ ("TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "OFF") => level.to_owned(),
            "FATAL" => "ERROR".to_owned(),
            "WARNING" => "WARN".to_owned(),
            other => return Err(format!("Invalid log level '{other}'")),
        };
        let mut levels = self.levels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = levels.clone();
        next.insert(logger.to_owned(), level);
        let filter = next
            .iter()
            .map(|(target, level)| {
                if target == "root" {
                    level.to_ascii_lowercase()
                } else {
                    format!("{target}={}", level.to_ascii_lowercase())
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        (self.apply)(&filter)?;
        *levels = next;
        Ok(())
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub herder: Arc<dyn Herder>,
    pub log_levels: Option<Arc<LogLevels>>,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "weir REST API",
    description = "Kafka Connect's REST API (paths, JSON shapes, status codes), served by weir."
))]
struct ApiDoc;

fn api() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::root))
        .routes(routes!(admin::health))
        .routes(routes!(admin::metrics))
        .routes(routes!(admin::loggers))
        .routes(routes!(admin::logger, admin::set_logger))
        .routes(routes!(connectors::list, connectors::create))
        .routes(routes!(connectors::info, connectors::delete))
        .routes(routes!(connectors::config, connectors::put_config, connectors::patch_config))
        .routes(routes!(connectors::status))
        .routes(routes!(connectors::tasks))
        .routes(routes!(connectors::task_status))
        .routes(routes!(connectors::topics))
        .routes(routes!(connectors::reset_topics))
        .routes(routes!(lifecycle::restart))
        .routes(routes!(lifecycle::restart_task))
        .routes(routes!(lifecycle::pause))
        .routes(routes!(lifecycle::resume))
        .routes(routes!(lifecycle::stop))
        .routes(routes!(offsets::get, offsets::alter, offsets::reset))
        .routes(routes!(signals::signal))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::config))
        .routes(routes!(plugins::validate))
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = api().split_for_parts();
    // The document describes itself too.
    let (_, own) = OpenApiRouter::<ApiState>::new().routes(routes!(openapi_json)).split_for_parts();
    document.merge(own);
    document
}

/// The OpenAPI document (JSON).
#[utoipa::path(get, path = "/openapi.json", tag = "admin", responses((status = 200, description = "This API's OpenAPI 3.1 document", body = serde_json::Value)))]
async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi())
}

/// The whole API. Paths also answer with a trailing slash, as Kafka Connect's do; unknown
/// paths answer 404 in the API's error shape.
pub fn router(state: ApiState) -> Router {
    let (routes, _) = api().split_for_parts();
    let api: Router = routes
        .route("/openapi.json", axum::routing::get(openapi_json))
        .fallback(|uri: Uri| async move { ApiError::not_found(format!("Unknown endpoint {}", uri.path())) })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "HTTP method not allowed for this endpoint")
        })
        .with_state(state);
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let api = api.clone();
        async move { api.oneshot(trim_trailing_slash(request)).await }
    }))
}

fn trim_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(value) = path_and_query.parse() {
            parts.path_and_query = Some(value);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

/// Bind `address` and serve the API until `shutdown` completes.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    address: SocketAddr,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = router(state);
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "the REST server failed");
        }
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_are_trimmed_keeping_the_query() {
        let request = |uri: &str| Request::builder().uri(uri).body(axum::body::Body::empty()).expect("request");
        assert_eq!(trim_trailing_slash(request("/connectors/")).uri(), "/connectors");
        assert_eq!(trim_trailing_slash(request("/connectors/?expand=status")).uri(), "/connectors?expand=status");
        assert_eq!(trim_trailing_slash(request("/")).uri(), "/");
        assert_eq!(trim_trailing_slash(request("/health")).uri(), "/health");
    }

    #[test]
    fn log_levels_build_the_filter_and_refuse_bad_levels() {
        let installed = Arc::new(Mutex::new(String::new()));
        let seen = installed.clone();
        let levels = LogLevels::new("warn,weir_broker=debug", move |filter| {
            *seen.lock().expect("lock") = filter.to_owned();
            Ok(())
        });
        assert_eq!(levels.levels()["root"], "WARN");
        assert_eq!(levels.levels()["weir_broker"], "DEBUG");
        levels.set("weir_runtime::task", "trace").expect("valid level");
        assert_eq!(*installed.lock().expect("lock"), "warn,weir_broker=debug,weir_runtime::task=trace");
        assert!(levels.set("root", "loud").is_err());
        assert_eq!(levels.levels().len(), 3);
    }

    #[test]
    fn openapi_documents_every_path_once() {
        let document = openapi();
        let paths: Vec<&String> = document.paths.paths.keys().collect();
        assert!(paths.iter().any(|path| *path == "/connectors/{name}/offsets"));
        assert!(paths.iter().any(|path| *path == "/openapi.json"));
    }
}
