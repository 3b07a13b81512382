//! The REST API over real HTTP against a running `weir`: every endpoint with its Kafka Connect
//! status codes and shapes, error paths, the lifecycle across process restarts, secrets, the
//! OpenAPI document against the routes served, and the `weir connectors` CLI.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{WEIR, WeirProcess, component, sink_ids, wait_until};

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// One HTTP/1.1 exchange with `Connection: close`: (status, headers, body).
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|error| panic!("connect to weir on {port}: {error}"));
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status =
        head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status in {head}"));
    (status, head.to_owned(), body.to_owned())
}

/// An exchange whose answer must have `expected` status; returns the body as JSON (Null if empty).
fn call(port: u16, method: &str, path: &str, body: Option<Value>, expected: u16) -> Value {
    let text = body.map(|body| body.to_string());
    let (status, _, answer) = http(port, method, path, text.as_deref());
    assert_eq!(status, expected, "{method} {path} answered {status}: {answer}");
    if answer.is_empty() { Value::Null } else { serde_json::from_str(&answer).unwrap_or(Value::String(answer)) }
}

/// An error answer: Kafka Connect's `{"error_code", "message"}` with `expected` status.
fn error(port: u16, method: &str, path: &str, body: Option<&str>, expected: u16) -> String {
    let (status, _, answer) = http(port, method, path, body);
    assert_eq!(status, expected, "{method} {path} answered {status}: {answer}");
    let value: Value =
        serde_json::from_str(&answer).unwrap_or_else(|error| panic!("error body is not JSON ({error}): {answer}"));
    assert_eq!(value["error_code"], expected, "{answer}");
    value["message"].as_str().unwrap_or_else(|| panic!("no message: {answer}")).to_owned()
}

fn start(dir: &Path, port: u16, manifests: &[std::path::PathBuf], extra: &[&str]) -> WeirProcess {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--rest-listen", listen.as_str()];
    args.extend_from_slice(extra);
    let weir = WeirProcess::start(dir, manifests, &args);
    wait_until("the REST API to answer", Duration::from_secs(120), || {
        let up = TcpStream::connect(("127.0.0.1", port)).is_ok() && http(port, "GET", "/health", None).0 == 200;
        (up, weir.stderr_text())
    });
    weir
}

fn state_of(port: u16, name: &str) -> (String, Vec<String>) {
    let status = call(port, "GET", &format!("/connectors/{name}/status"), None, 200);
    let tasks = status["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|task| task["state"].as_str().unwrap_or("").to_owned())
        .collect();
    (status["connector"]["state"].as_str().unwrap_or("").to_owned(), tasks)
}

fn wait_state(port: u16, name: &str, connector: &str, tasks: &[&str]) {
    wait_until(&format!("{name} to be {connector} {tasks:?}"), Duration::from_secs(60), || {
        let observed = state_of(port, name);
        (observed.0 == connector && observed.1 == tasks, observed)
    });
}

pub(crate) fn datagen(topic: &str, extra: Value) -> Value {
    let mut config = json!({ "connector.class": "datagen", "tasks.max": "1", "topic": topic, "iterations": "0", "max.interval": "20" });
    for (key, value) in extra.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    config
}

#[test]
fn rest_endpoints_answer_as_kafka_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::fs::copy(component("weir_faulty.wasm"), plugins.join("weir_faulty.wasm")).expect("copy faulty component");
    let port = free_port();
    let plugin_dir = plugins.display().to_string();
    let weir = start(dir.path(), port, &[], &["--plugin-dir", &plugin_dir]);

    // The worker.
    let root = call(port, "GET", "/", None, 200);
    assert!(
        root["version"].is_string() && root["commit"].is_string() && root["kafka_cluster_id"].is_string(),
        "{root}"
    );
    // Built from a git checkout (as here and in CI), the commit is the checkout's.
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if repository.join(".git").is_dir() {
        let head = std::process::Command::new("git")
            .current_dir(&repository)
            .args(["rev-parse", "HEAD"])
            .output()
            .expect("git rev-parse");
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        let commit = root["commit"].as_str().unwrap_or_default();
        assert!(commit.len() >= 7 && head.starts_with(commit), "commit {commit} is not HEAD {head}");
    }
    assert_eq!(call(port, "GET", "/health/", None, 200)["status"], "healthy");

    // Plugins.
    let plugins = call(port, "GET", "/connector-plugins", None, 200);
    assert!(
        plugins
            .as_array()
            .expect("array")
            .iter()
            .any(|plugin| plugin["class"] == "datagen" && plugin["type"] == "source"),
        "{plugins}"
    );
    assert_eq!(call(port, "GET", "/connector-plugins?connectorsOnly=false", None, 200), plugins);
    let keys = call(port, "GET", "/connector-plugins/datagen/config", None, 200);
    assert!(
        keys.as_array().expect("array").iter().any(|key| key["name"] == "iterations" && key["type"] == "LONG"),
        "{keys}"
    );
    error(port, "GET", "/connector-plugins/nope/config", None, 404);
    let invalid = call(
        port,
        "PUT",
        "/connector-plugins/datagen/config/validate",
        Some(json!({ "topic": "t", "iterations": "lots" })),
        200,
    );
    assert_eq!(invalid["name"], "datagen");
    assert_eq!(invalid["error_count"], 1, "{invalid}");
    let field = invalid["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .find(|config| config["value"]["name"] == "iterations")
        .expect("iterations listed");
    assert_eq!(field["value"]["errors"].as_array().map(Vec::len), Some(1), "{field}");
    assert_eq!(field["definition"]["name"], "iterations");
    let valid = call(
        port,
        "PUT",
        "/connector-plugins/datagen/config/validate/",
        Some(json!({ "topic": "t", "iterations": "10" })),
        200,
    );
    assert_eq!(valid["error_count"], 0, "{valid}");
    error(port, "PUT", "/connector-plugins/nope/config/validate", Some("{}"), 404);
    error(port, "PUT", "/connector-plugins/datagen/config/validate", Some("{not json"), 400);

    // Create: error paths first.
    error(port, "POST", "/connectors", Some("{not json"), 400);
    let unknown = error(
        port,
        "POST",
        "/connectors",
        Some(&json!({ "name": "x", "config": { "connector.class": "nope" } }).to_string()),
        400,
    );
    assert!(unknown.contains("connector.class"), "{unknown}");
    let bad = json!({ "name": "x", "config": datagen("orders", json!({ "iterations": "lots" })) });
    let message = error(port, "POST", "/connectors", Some(&bad.to_string()), 400);
    assert!(message.contains("config.iterations"), "{message}");
    let (status, head, body) = http(
        port,
        "POST",
        "/connectors",
        Some(&json!({ "name": "a", "config": datagen("orders", json!({})) }).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    assert!(head.to_ascii_lowercase().contains("location: /connectors/a"), "{head}");
    let created: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(created["name"], "a");
    assert_eq!(created["type"], "source");
    assert_eq!(created["config"]["topic"], "orders");
    error(
        port,
        "POST",
        "/connectors",
        Some(&json!({ "name": "a", "config": datagen("orders", json!({})) }).to_string()),
        409,
    );
    wait_state(port, "a", "RUNNING", &["RUNNING"]);

    // Read.
    assert_eq!(call(port, "GET", "/connectors", None, 200), json!(["a"]));
    assert_eq!(call(port, "GET", "/connectors/", None, 200), json!(["a"]));
    let expanded = call(port, "GET", "/connectors?expand=status&expand=info", None, 200);
    assert_eq!(expanded["a"]["status"]["connector"]["state"], "RUNNING", "{expanded}");
    assert_eq!(expanded["a"]["info"]["config"]["connector.class"], "datagen", "{expanded}");
    assert!(call(port, "GET", "/connectors?expand=status", None, 200)["a"].get("info").is_none());
    assert_eq!(call(port, "GET", "/connectors/a/", None, 200)["tasks"], json!([{ "connector": "a", "task": 0 }]));
    let config = call(port, "GET", "/connectors/a/config", None, 200);
    assert_eq!(config["name"], "a");
    assert_eq!(config["iterations"], "0");
    let tasks = call(port, "GET", "/connectors/a/tasks", None, 200);
    assert_eq!(tasks[0]["id"], json!({ "connector": "a", "task": 0 }), "{tasks}");
    assert_eq!(call(port, "GET", "/connectors/a/tasks/0/status", None, 200)["state"], "RUNNING");
    error(port, "GET", "/connectors/a/tasks/9/status", None, 404);
    for path in [
        "/connectors/nope",
        "/connectors/nope/config",
        "/connectors/nope/status",
        "/connectors/nope/tasks",
        "/connectors/nope/topics",
        "/connectors/nope/offsets",
    ] {
        let message = error(port, "GET", path, None, 404);
        assert!(message.contains("nope"), "{path}: {message}");
    }
    error(port, "GET", "/no/such/endpoint", None, 404);

    // Change the config: PUT replaces (200), creates (201); PATCH merges, null removes.
    let replaced =
        call(port, "PUT", "/connectors/a/config", Some(datagen("orders", json!({ "max.interval": "10" }))), 200);
    assert_eq!(replaced["config"]["max.interval"], "10");
    let (status, head, _) = http(port, "PUT", "/connectors/b/config/", Some(&datagen("other", json!({})).to_string()));
    assert_eq!(status, 201);
    assert!(head.to_ascii_lowercase().contains("location: /connectors/b"), "{head}");
    let message = error(
        port,
        "PUT",
        "/connectors/b/config",
        Some(&datagen("other", json!({ "max.interval": "soon" })).to_string()),
        400,
    );
    assert!(message.contains("max.interval"), "{message}");
    let patched =
        call(port, "PATCH", "/connectors/b/config", Some(json!({ "max.interval": null, "iterations": "7" })), 200);
    assert!(patched["config"].get("max.interval").is_none(), "{patched}");
    assert_eq!(patched["config"]["iterations"], "7");
    error(port, "PATCH", "/connectors/nope/config", Some("{}"), 404);
    error(port, "PATCH", "/connectors/b/config", Some("[1"), 400);

    // Lifecycle codes.
    call(port, "PUT", "/connectors/a/pause", None, 202);
    wait_state(port, "a", "PAUSED", &["PAUSED"]);
    call(port, "PUT", "/connectors/a/resume/", None, 202);
    wait_state(port, "a", "RUNNING", &["RUNNING"]);
    call(port, "POST", "/connectors/a/restart", None, 204);
    let restarting = call(port, "POST", "/connectors/a/restart?includeTasks=true&onlyFailed=false", None, 202);
    assert_eq!(restarting["name"], "a");
    call(port, "POST", "/connectors/a/tasks/0/restart", None, 204);
    error(port, "POST", "/connectors/a/tasks/9/restart", None, 404);
    wait_state(port, "a", "RUNNING", &["RUNNING"]);
    for (method, path) in [
        ("PUT", "pause"),
        ("PUT", "resume"),
        ("PUT", "stop"),
        ("POST", "restart"),
        ("DELETE", "offsets"),
        ("PUT", "topics/reset"),
    ] {
        error(port, method, &format!("/connectors/nope/{path}"), None, 404);
    }
    error(port, "DELETE", "/connectors/nope", None, 404);

    // Topics.
    assert_eq!(call(port, "GET", "/connectors/a/topics", None, 200), json!({ "a": { "topics": ["orders"] } }));
    call(port, "PUT", "/connectors/a/topics/reset", None, 202);
    assert_eq!(call(port, "GET", "/connectors/a/topics", None, 200), json!({ "a": { "topics": [] } }));

    // Offsets: readable any time, changed only when STOPPED.
    wait_until("a's offsets", Duration::from_secs(30), || {
        let offsets = call(port, "GET", "/connectors/a/offsets", None, 200);
        (offsets["offsets"].as_array().is_some_and(|offsets| !offsets.is_empty()), offsets)
    });
    let offsets = call(port, "GET", "/connectors/a/offsets", None, 200);
    assert_eq!(offsets["offsets"][0]["partition"], json!({ "task": 0 }), "{offsets}");
    let alter = json!({ "offsets": [{ "partition": { "task": 0 }, "offset": { "id": 3 } }] }).to_string();
    let message = error(port, "PATCH", "/connectors/a/offsets", Some(&alter), 400);
    assert!(message.contains("STOPPED"), "{message}");
    error(port, "DELETE", "/connectors/a/offsets", None, 400);
    call(port, "PUT", "/connectors/a/stop", None, 204);
    assert_eq!(state_of(port, "a"), ("STOPPED".to_owned(), Vec::new()));
    error(port, "PATCH", "/connectors/a/offsets", Some("{\"offsets\": 5}"), 400);
    let altered = call(port, "PATCH", "/connectors/a/offsets", Some(serde_json::from_str(&alter).expect("json")), 200);
    assert_eq!(altered["message"], "The offsets for this connector have been altered successfully");
    assert_eq!(
        call(port, "GET", "/connectors/a/offsets", None, 200)["offsets"],
        json!([{ "partition": { "task": 0 }, "offset": { "id": 3 } }])
    );
    let reset = call(port, "DELETE", "/connectors/a/offsets", None, 200);
    assert_eq!(reset["message"], "The offsets for this connector have been reset successfully");
    assert_eq!(call(port, "GET", "/connectors/a/offsets", None, 200), json!({ "offsets": [] }));

    // A failing task: FAILED with its trace; restart of only the failed tasks answers 202.
    let faulty = json!({ "name": "faulty", "config": { "connector.class": "faulty", "topic": "bad", "mode": "trap", "after": "1" } });
    call(port, "POST", "/connectors", Some(faulty), 201);
    wait_state(port, "faulty", "RUNNING", &["FAILED"]);
    let status = call(port, "GET", "/connectors/faulty/status", None, 200);
    assert!(status["tasks"][0]["trace"].as_str().is_some_and(|trace| !trace.is_empty()), "{status}");
    let restarted = call(port, "POST", "/connectors/faulty/restart?includeTasks=true&onlyFailed=true", None, 202);
    assert_eq!(restarted["name"], "faulty");
    wait_state(port, "faulty", "RUNNING", &["FAILED"]);

    // Loggers.
    let loggers = call(port, "GET", "/admin/loggers", None, 200);
    assert_eq!(loggers["root"]["level"], "INFO", "{loggers}");
    assert_eq!(
        call(port, "PUT", "/admin/loggers/weir_runtime::worker", Some(json!({ "level": "DEBUG" })), 200),
        json!(["weir_runtime::worker"])
    );
    assert_eq!(call(port, "GET", "/admin/loggers/weir_runtime::worker", None, 200)["level"], "DEBUG");
    assert_eq!(call(port, "GET", "/admin/loggers/weir_runtime::worker::inner", None, 200)["level"], "DEBUG");
    assert_eq!(call(port, "GET", "/admin/loggers/", None, 200)["weir_runtime::worker"]["level"], "DEBUG");
    error(port, "PUT", "/admin/loggers/weir_runtime", Some(&json!({ "level": "LOUD" }).to_string()), 400);
    // The new level is live: DEBUG lines of that target appear.
    call(port, "PUT", "/connectors/b/pause", None, 202);
    wait_until("a DEBUG line after the level change", Duration::from_secs(10), || {
        let text = weir.stderr_text();
        (text.contains("DEBUG"), ())
    });

    // Metrics.
    call(port, "PUT", "/connectors/b/resume", None, 202);
    wait_state(port, "b", "RUNNING", &["RUNNING"]);
    let (status, head, metrics) = http(port, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain"), "{head}");
    for family in [
        "weir_source_records_polled_total",
        "weir_task_batches_total",
        "weir_task_errors_total",
        "weir_task_running",
        "weir_sink_consumer_lag_records",
    ] {
        assert!(metrics.contains(&format!("# TYPE {family} ")), "{family} missing:\n{metrics}");
    }
    assert!(metrics.contains("weir_source_records_polled_total{connector=\"b\",task=\"0\"}"), "{metrics}");

    // Delete.
    call(port, "DELETE", "/connectors/a", None, 204);
    error(port, "GET", "/connectors/a", None, 404);
    let (status, _, _) = weir.terminate(Duration::from_secs(60));
    assert!(status.success());
}

/// Every (method, path) the API must serve, as Kafka Connect names them, plus weir's own.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/admin/loggers"),
    ("get", "/admin/loggers/{logger}"),
    ("put", "/admin/loggers/{logger}"),
    ("get", "/connectors"),
    ("post", "/connectors"),
    ("get", "/connectors/{name}"),
    ("delete", "/connectors/{name}"),
    ("get", "/connectors/{name}/config"),
    ("put", "/connectors/{name}/config"),
    ("patch", "/connectors/{name}/config"),
    ("get", "/connectors/{name}/status"),
    ("get", "/connectors/{name}/tasks"),
    ("get", "/connectors/{name}/tasks/{task}/status"),
    ("post", "/connectors/{name}/tasks/{task}/restart"),
    ("post", "/connectors/{name}/restart"),
    ("post", "/connectors/{name}/signals"),
    ("put", "/connectors/{name}/pause"),
    ("put", "/connectors/{name}/resume"),
    ("put", "/connectors/{name}/stop"),
    ("get", "/connectors/{name}/topics"),
    ("put", "/connectors/{name}/topics/reset"),
    ("get", "/connectors/{name}/offsets"),
    ("patch", "/connectors/{name}/offsets"),
    ("delete", "/connectors/{name}/offsets"),
    ("get", "/connector-plugins"),
    ("get", "/connector-plugins/{plugin}/config"),
    ("put", "/connector-plugins/{plugin}/config/validate"),
];

#[test]
fn openapi_lists_every_route_the_router_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let weir = start(dir.path(), port, &[], &[]);
    let document = call(port, "GET", "/openapi.json", None, 200);
    assert!(document["openapi"].as_str().is_some_and(|version| version.starts_with("3.")), "{document}");
    assert!(document["info"]["title"].is_string());
    let mut documented = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            documented.push((method.clone(), path.clone()));
            // Structurally valid: responses present, every path parameter declared.
            assert!(
                operation["responses"].as_object().is_some_and(|responses| !responses.is_empty()),
                "{method} {path}"
            );
            for parameter in
                path.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')))
            {
                let declared = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|declared| declared["name"] == parameter && declared["in"] == "path");
                assert!(declared, "{method} {path} does not declare its path parameter {parameter}");
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> =
        ROUTES.iter().map(|(method, path)| ((*method).to_owned(), (*path).to_owned())).collect();
    expected.sort();
    assert_eq!(documented, expected, "the OpenAPI document and the routes differ");
    // Every documented route is served: no "unknown endpoint" and no 405.
    for (method, path) in ROUTES {
        let concrete = path
            .replace("{name}", "nope")
            .replace("{plugin}", "nope")
            .replace("{task}", "0")
            .replace("{logger}", "root");
        let body = if ["put", "post", "patch"].contains(method) { Some("{}") } else { None };
        let (status, _, answer) = http(port, &method.to_ascii_uppercase(), &concrete, body);
        assert_ne!(status, 405, "{method} {concrete}: {answer}");
        assert!(!answer.contains("Unknown endpoint"), "{method} {concrete} is not served: {answer}");
    }
    let (status, _, _) = weir.terminate(Duration::from_secs(60));
    assert!(status.success());
}

fn sink_manifest(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("sink.yaml");
    std::fs::write(&path, crate::support::FILE_SINK_MANIFEST).expect("write manifest");
    path
}

#[test]
fn rest_lifecycle_survives_process_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = sink_manifest(dir.path());
    let manifests = [manifest];
    let port = free_port();
    let restart = |weir: WeirProcess| {
        let (status, _, stderr) = weir.terminate(Duration::from_secs(60));
        assert!(status.success(), "{stderr}");
        start(dir.path(), port, &manifests, &[])
    };
    let mut weir = start(dir.path(), port, &manifests, &[]);

    // The manifest's connector is visible and changeable over REST.
    assert_eq!(call(port, "GET", "/connectors", None, 200), json!(["orders-file"]));
    wait_state(port, "orders-file", "RUNNING", &["RUNNING"]);
    let config = call(port, "GET", "/connectors/orders-file/config", None, 200);
    assert_eq!(config["topics"], "orders");
    assert!(config["weir.grants"].as_str().is_some_and(|grants| grants.contains("read-write")), "{config}");

    // Create in each initial state.
    for (name, initial, topic) in
        [("gen", "RUNNING", "orders"), ("parked", "PAUSED", "parked"), ("idle", "STOPPED", "idle")]
    {
        let body = json!({ "name": name, "config": datagen(topic, json!({})), "initial_state": initial });
        call(port, "POST", "/connectors", Some(body), 201);
    }
    error(
        port,
        "POST",
        "/connectors",
        Some(&json!({ "name": "z", "config": datagen("z", json!({})), "initial_state": "SLEEPING" }).to_string()),
        400,
    );
    wait_state(port, "gen", "RUNNING", &["RUNNING"]);
    wait_state(port, "parked", "PAUSED", &["PAUSED"]);
    wait_state(port, "idle", "STOPPED", &[]);
    call(port, "PATCH", "/connectors/parked/config", Some(json!({ "max.interval": "30" })), 200);

    weir = restart(weir);
    wait_state(port, "gen", "RUNNING", &["RUNNING"]);
    wait_state(port, "parked", "PAUSED", &["PAUSED"]);
    wait_state(port, "idle", "STOPPED", &[]);
    wait_state(port, "orders-file", "RUNNING", &["RUNNING"]);
    assert_eq!(call(port, "GET", "/connectors/parked/config", None, 200)["max.interval"], "30");

    // Pause survives a restart; resume; stop survives a restart.
    call(port, "PUT", "/connectors/gen/pause", None, 202);
    wait_state(port, "gen", "PAUSED", &["PAUSED"]);
    weir = restart(weir);
    wait_state(port, "gen", "PAUSED", &["PAUSED"]);
    call(port, "PUT", "/connectors/gen/resume", None, 202);
    wait_state(port, "gen", "RUNNING", &["RUNNING"]);
    let out = dir.path().join("out/orders.txt");
    wait_until("records to reach the sink", Duration::from_secs(60), || {
        let ids = sink_ids(&out);
        (ids.len() >= 5, ids.len())
    });
    call(port, "PUT", "/connectors/gen/stop", None, 204);
    wait_state(port, "gen", "STOPPED", &[]);
    weir = restart(weir);
    wait_state(port, "gen", "STOPPED", &[]);

    // Sink offsets are the consumer group's; changing them while RUNNING is refused.
    let sink_offsets = call(port, "GET", "/connectors/orders-file/offsets", None, 200);
    assert_eq!(sink_offsets["offsets"][0]["partition"]["kafka_topic"], "orders", "{sink_offsets}");
    assert!(
        sink_offsets["offsets"][0]["offset"]["kafka_offset"].as_i64().is_some_and(|offset| offset > 0),
        "{sink_offsets}"
    );
    let alter_sink = json!({ "offsets": [{ "partition": { "kafka_topic": "orders", "kafka_partition": 0 }, "offset": { "kafka_offset": 0 } }] });
    error(port, "PATCH", "/connectors/orders-file/offsets", Some(&alter_sink.to_string()), 400);

    // Alter the stopped source's offsets; after a restart and resume it continues from there.
    let far = 5_000_000u64;
    let alter = json!({ "offsets": [{ "partition": { "task": 0 }, "offset": { "id": far } }] });
    call(port, "PATCH", "/connectors/gen/offsets", Some(alter), 200);
    weir = restart(weir);
    assert_eq!(call(port, "GET", "/connectors/gen/offsets", None, 200)["offsets"][0]["offset"]["id"], far);
    call(port, "PUT", "/connectors/gen/resume", None, 202);
    wait_until("the source to continue after the altered offset", Duration::from_secs(60), || {
        let ids = sink_ids(&out);
        (ids.contains(&(far + 1)), ids.iter().rev().take(3).copied().collect::<Vec<_>>())
    });

    // Delete survives a restart (the manifest's connector stays: the manifest applies it).
    call(port, "DELETE", "/connectors/gen", None, 204);
    error(port, "GET", "/connectors/gen/status", None, 404);
    weir = restart(weir);
    assert_eq!(call(port, "GET", "/connectors", None, 200), json!(["idle", "orders-file", "parked"]));
    let (status, _, _) = weir.terminate(Duration::from_secs(60));
    assert!(status.success());
}

#[test]
fn secrets_never_appear_in_rest_answers_or_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // The secret is the file-sink's output path: it reaches the component, which writes that
    // file, but it is written nowhere in the config the API and the logs show.
    let secret = "s3cr3t-orders.txt";
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(WEIR)
        .current_dir(dir.path())
        .args(["run", "--data-dir", "data", "--progress-interval", "1", "--rest-listen", &listen])
        .env("WEIR_LOG", "debug")
        .env("WEIR_TEST_SECRET_FILE", format!("./out/{secret}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout")).expect("stdout file"))
        .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
        .spawn()
        .expect("spawn weir");
    let weir = WeirProcess { child, stdout: dir.path().join("stdout"), stderr: dir.path().join("stderr") };
    wait_until("the REST API to answer", Duration::from_secs(120), || {
        (TcpStream::connect(("127.0.0.1", port)).is_ok() && http(port, "GET", "/health", None).0 == 200, ())
    });
    let reference = "${env:WEIR_TEST_SECRET_FILE}";
    let grants = r#"{"filesystem":[{"path":"./out","access":"read-write"}]}"#;
    let config =
        json!({ "connector.class": "file-sink", "topics": "orders", "file": reference, "weir.grants": grants });
    let mut answers = Vec::new();
    answers.push(
        call(port, "POST", "/connectors", Some(json!({ "name": "s", "config": config.clone() })), 201).to_string(),
    );
    call(port, "POST", "/connectors", Some(json!({ "name": "gen", "config": datagen("orders", json!({})) })), 201);
    wait_state(port, "s", "RUNNING", &["RUNNING"]);
    // The task runs with the resolved value: it writes the secret file.
    let written = dir.path().join("out").join(secret);
    wait_until("records in the file the reference names", Duration::from_secs(60), || {
        let ids = sink_ids(&written);
        (!ids.is_empty(), ids.len())
    });
    // An unresolvable reference is a config error naming the field, without a value.
    let unset = json!({ "name": "t", "config": { "connector.class": "file-sink", "topics": "orders", "file": "${env:WEIR_TEST_UNSET_VARIABLE}" } });
    let message = error(port, "POST", "/connectors", Some(&unset.to_string()), 400);
    assert!(message.contains("config.file"), "{message}");
    for path in [
        "/connectors/s",
        "/connectors/s/config",
        "/connectors/s/tasks",
        "/connectors/s/status",
        "/connectors?expand=info&expand=status",
        "/connectors/s/offsets",
        "/connectors/s/topics",
        "/metrics",
    ] {
        answers.push(http(port, "GET", path, None).2);
    }
    let validated = call(
        port,
        "PUT",
        "/connector-plugins/file-sink/config/validate",
        Some(json!({ "topics": "x", "file": reference, "nope": "1" })),
        200,
    );
    answers.push(validated.to_string());
    answers.push(call(port, "PUT", "/connectors/s/config", Some(config), 200).to_string());
    assert_eq!(call(port, "GET", "/connectors/s/config", None, 200)["file"], reference);
    call(port, "PUT", "/connectors/s/stop", None, 204);
    let (_, stdout, stderr) = weir.terminate(Duration::from_secs(60));
    for answer in &answers {
        assert!(!answer.contains(secret), "a REST answer shows the secret: {answer}");
    }
    assert!(stderr.contains("DEBUG") || stderr.contains("INFO"), "no logs captured: {stderr}");
    for line in stdout.lines().chain(stderr.lines()) {
        assert!(!line.contains(secret), "a log line shows the secret: {line}");
    }
}

#[test]
fn cli_manages_connectors_through_the_rest_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let weir = start(dir.path(), port, &[], &[]);
    let url = format!("http://127.0.0.1:{port}");
    let cli = |args: &[&str]| {
        let output = Command::new(WEIR)
            .arg("connectors")
            .args(["--url", &url])
            .args(args)
            .output()
            .expect("run weir connectors");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stdout, stderr)
    };
    let manifest = dir.path().join("gen.yaml");
    std::fs::write(&manifest, "name: gen\nconnector.class: datagen\nconfig:\n  topic: orders\n  max.interval: 20\n")
        .expect("manifest");
    let manifest = manifest.display().to_string();
    let (ok, stdout, stderr) = cli(&["create", "-f", &manifest]);
    assert!(ok && stdout.contains("created gen"), "{stdout}{stderr}");
    let (ok, _, stderr) = cli(&["create", "-f", &manifest]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    wait_state(port, "gen", "RUNNING", &["RUNNING"]);
    let (ok, stdout, _) = cli(&["list"]);
    assert!(
        ok && stdout.contains("NAME") && stdout.lines().any(|line| line.starts_with("gen") && line.contains("RUNNING")),
        "{stdout}"
    );
    let (ok, stdout, _) = cli(&["list", "--output", "json"]);
    assert!(ok, "{stdout}");
    let listed: Value = serde_json::from_str(&stdout).expect("json output");
    assert_eq!(listed["gen"]["status"]["connector"]["state"], "RUNNING");
    let (ok, stdout, _) = cli(&["status", "gen"]);
    assert!(ok && stdout.contains("RUNNING"), "{stdout}");
    let (ok, stdout, _) = cli(&["get", "gen"]);
    assert!(ok && stdout.contains("orders"), "{stdout}");
    std::fs::write(
        dir.path().join("gen.yaml"),
        "name: gen\nconnector.class: datagen\nconfig:\n  topic: orders\n  max.interval: 40\n",
    )
    .expect("manifest");
    let (ok, stdout, _) = cli(&["apply", "-f", &manifest]);
    assert!(ok && stdout.contains("applied gen"), "{stdout}");
    assert_eq!(call(port, "GET", "/connectors/gen/config", None, 200)["max.interval"], "40");
    assert!(cli(&["pause", "gen"]).0);
    wait_state(port, "gen", "PAUSED", &["PAUSED"]);
    assert!(cli(&["resume", "gen"]).0);
    assert!(cli(&["restart", "gen", "--include-tasks"]).0);
    wait_state(port, "gen", "RUNNING", &["RUNNING"]);
    assert!(cli(&["stop", "gen"]).0);
    wait_state(port, "gen", "STOPPED", &[]);
    let (ok, stdout, _) = cli(&["offsets", "gen", "-o", "json"]);
    assert!(ok && serde_json::from_str::<Value>(&stdout).is_ok(), "{stdout}");
    assert!(cli(&["delete", "gen"]).0);
    let (ok, _, stderr) = cli(&["status", "gen"]);
    assert!(!ok && stderr.contains("not found"), "{stderr}");
    let (status, _, _) = weir.terminate(Duration::from_secs(60));
    assert!(status.success());
}
