//! The REST router in-process (`tower::ServiceExt::oneshot`, no port), over a real worker:
//! answers, readability while a connector changes, secret fields.

use serde_json::{Value, json};

use crate::rest::datagen;

/// Answers one request through the router without a port: status and body text.
async fn send(router: axum::Router, method: &str, uri: &str, body: String) -> (u16, String) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .expect("request");
    let response = router.oneshot(request).await.expect("answer");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The router runs without binding a port (`oneshot`), over a real worker.
#[tokio::test]
async fn router_answers_in_process_without_a_port() {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker =
        weir_runtime::Worker::start(weir_runtime::WorkerConfig::new(dir.path().join("data"))).await.expect("worker");
    let router =
        weir_runtime::rest::router(weir_runtime::rest::ApiState { herder: worker.herder_handle(), log_levels: None });
    let request = |method: &str, uri: &str, body: &str| {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .expect("request")
    };
    let body = json!({ "name": "g", "config": datagen("orders", json!({})), "initial_state": "STOPPED" }).to_string();
    let response = router.clone().oneshot(request("POST", "/connectors", &body)).await.expect("answer");
    assert_eq!(response.status(), 201);
    let response = router.clone().oneshot(request("GET", "/connectors/g/status/", "")).await.expect("answer");
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let status: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(status["connector"]["state"], "STOPPED");
    let response = router.clone().oneshot(request("GET", "/admin/loggers", "")).await.expect("answer");
    assert_eq!(response.status(), 404, "no log control in this state");
    worker.shutdown().await;
}

/// A connector being replaced, paused or resumed stays readable: `GET /connectors/{name}`
/// never answers 404 for a connector that exists, however its tasks are stopping and starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_being_changed_never_answers_404() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker =
        weir_runtime::Worker::start(weir_runtime::WorkerConfig::new(dir.path().join("data"))).await.expect("worker");
    let router =
        weir_runtime::rest::router(weir_runtime::rest::ApiState { herder: worker.herder_handle(), log_levels: None });
    let send = move |method: &'static str, uri: &'static str, body: String| {
        let router = router.clone();
        async move { send(router, method, uri, body).await.0 }
    };
    let config = |interval: u64| datagen("orders", json!({ "max.interval": interval.to_string() })).to_string();
    assert_eq!(send("PUT", "/connectors/g/config", config(20)).await, 201);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let send = send.clone();
            tokio::spawn(async move {
                let mut answers = std::collections::BTreeMap::<u16, u64>::new();
                // Bounded, and yielding: the handlers answer from memory without waiting, so a
                // reader that never yields would keep the changes from running at all.
                for _ in 0..100_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    *answers.entry(send("GET", "/connectors/g", String::new()).await).or_default() += 1;
                    *answers.entry(send("GET", "/connectors/g/status", String::new()).await).or_default() += 1;
                    tokio::task::yield_now().await;
                }
                answers
            })
        })
        .collect();
    for round in 0..20u64 {
        assert_eq!(send("PUT", "/connectors/g/config", config(21 + round)).await, 200, "round {round}");
        let change = if round % 2 == 0 { "/connectors/g/pause" } else { "/connectors/g/resume" };
        assert_eq!(send("PUT", change, String::new()).await, 202, "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answers = std::collections::BTreeMap::<u16, u64>::new();
    for reader in readers {
        for (status, count) in reader.await.expect("reader joins") {
            *answers.entry(status).or_default() += count;
        }
    }
    assert_eq!(answers.keys().copied().collect::<Vec<_>>(), [200], "every read found the connector: {answers:?}");
    assert!(answers[&200] >= 40, "the readers ran throughout: {answers:?}");
    worker.shutdown().await;
}

/// A sink plugin whose schema marks `password` as secret (`writeOnly`), registered natively.
struct VaultSink;

impl weir_connector_sdk::DynConnector for VaultSink {
    fn spec(&self) -> weir_connector_sdk::Spec {
        weir_connector_sdk::Spec {
            name: "vault-sink".into(),
            version: "0.1.0".into(),
            kind: weir_connector_sdk::Kind::Sink,
            description: "A sink with a secret field".into(),
            config_schema: json!({
                "type": "object",
                "properties": { "topics": { "type": "string" }, "password": { "type": "string", "writeOnly": true } },
                "required": ["topics", "password"],
                "additionalProperties": false,
            })
            .to_string(),
        }
    }

    fn validate(&self, _config: &str) -> Result<(), Vec<weir_connector_sdk::FieldError>> {
        Ok(())
    }

    fn task_configs(&self, _config: &str, _max_tasks: u32) -> Result<Vec<String>, weir_connector_sdk::ConnectorError> {
        Ok(vec!["{}".into()])
    }
}

/// Fields the schema marks secret are `[hidden]` everywhere the API shows config, and a
/// `[hidden]` sent back keeps the stored value.
#[tokio::test]
async fn schema_secret_fields_are_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = weir_runtime::Worker::start_with(
        weir_runtime::WorkerConfig::new(dir.path().join("data")),
        |registry, engine, state| {
            registry.add_native_sink(
                engine,
                state,
                Box::new(VaultSink),
                weir_connector_sdk::native::open_sink::<weir_blackhole::Blackhole>,
            )
        },
    )
    .await
    .expect("worker");
    let router =
        weir_runtime::rest::router(weir_runtime::rest::ApiState { herder: worker.herder_handle(), log_levels: None });
    let secret = "hunter22-correct-horse";
    let send = |method: &'static str, uri: &'static str, body: String| send(router.clone(), method, uri, body);
    let config = json!({ "connector.class": "vault-sink", "topics": "orders", "password": secret });
    let body = json!({ "name": "vault", "config": config, "initial_state": "PAUSED" }).to_string();
    let mut answers = vec![send("POST", "/connectors", body).await];
    assert_eq!(answers[0].0, 201, "{}", answers[0].1);
    for uri in ["/connectors/vault", "/connectors/vault/config", "/connectors/vault/tasks", "/connectors?expand=info"] {
        answers.push(send("GET", uri, String::new()).await);
    }
    let validated = send(
        "PUT",
        "/connector-plugins/vault-sink/config/validate",
        json!({ "topics": "t", "password": secret }).to_string(),
    )
    .await;
    assert!(validated.1.contains("\"error_count\":0"), "{}", validated.1);
    answers.push(validated);
    let patched = send(
        "PATCH",
        "/connectors/vault/config",
        json!({ "password": "[hidden]", "topics": "orders,more" }).to_string(),
    )
    .await;
    assert_eq!(patched.0, 200, "{}", patched.1);
    answers.push(patched);
    for (status, answer) in &answers {
        assert!(!answer.contains(secret), "the secret is shown ({status}): {answer}");
    }
    let (_, config) = send("GET", "/connectors/vault/config", String::new()).await;
    let config: Value = serde_json::from_str(&config).expect("json");
    assert_eq!(config["password"], "[hidden]");
    assert_eq!(config["topics"], "orders,more");
    let stored = weir_runtime::Herder::info(worker.herder(), "vault").expect("stored");
    assert_eq!(stored.definition.config["password"], secret, "[hidden] sent back keeps the stored value");
    worker.shutdown().await;
}
