//! The `http-sink` connector against real HTTP servers on loopback that the tests drive to fail,
//! throttle (429 with `Retry-After`), stall past the request timeout, refuse and redirect; OAuth2
//! client credentials against a token endpoint; origins outside the grant refused.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use weir_runtime::Herder as _;
use weir_runtime::log::{Generation, PartitionBatch, Record, TopicConfig};
use weir_runtime::manifest::{ConnectorDefinition, HttpGrant, Tolerance};
use weir_runtime::{Worker, WorkerConfig};

/// What the server answers to the next request.
#[derive(Debug, Clone)]
enum Reply {
    Status(u16),
    /// 429 with this `Retry-After`.
    Throttle(&'static str),
    /// Answer 200 only after this long (the client gives up first).
    Stall(Duration),
    /// A redirect to this URL with this status.
    Redirect(u16, String),
}

/// One request as the server saw it, and what it answered (0: stalled).
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

#[derive(Default)]
struct ServerState {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    /// The token the `/token` endpoint hands out next; `/ingest` wants the latest one when set.
    token: Mutex<Option<u32>>,
    /// Where `/moved` redirects to, always (307).
    moved_to: Mutex<Option<String>>,
}

struct Server {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

impl Server {
    async fn start(script: Vec<Reply>) -> Self {
        let state = Arc::new(ServerState { script: Mutex::new(script.into()), ..ServerState::default() });
        let app = axum::Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn grant(&self) -> HttpGrant {
        HttpGrant::try_from(format!("http://{}", self.addr)).expect("grant")
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }

    /// The values of the records delivered to `/ingest` (2xx answers), in order.
    fn delivered(&self) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.path == "/ingest" && (200..300).contains(&seen.answered))
            .flat_map(|seen| match serde_json::from_slice::<Value>(&seen.body).expect("a JSON body") {
                Value::Array(values) => values,
                value => vec![value],
            })
            .collect()
    }
}

async fn answer(State(state): State<Arc<ServerState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let note = |answered: u16| {
        let seen =
            Seen { at: Instant::now(), path: path.clone(), headers: headers.clone(), body: body.clone(), answered };
        state.seen.lock().expect("lock").push(seen);
    };
    if path == "/token" {
        let mut token = state.token.lock().expect("lock");
        let next = token.map_or(1, |token| token + 1);
        *token = Some(next);
        drop(token);
        note(200);
        return axum::Json(json!({"access_token": format!("tok-{next}"), "expires_in": 3600, "token_type": "bearer"}))
            .into_response();
    }
    if path == "/moved"
        && let Some(to) = state.moved_to.lock().expect("lock").clone()
    {
        note(307);
        return (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response();
    }
    let wanted = *state.token.lock().expect("lock");
    if let Some(token) = wanted {
        let given = headers.get("authorization").and_then(|value| value.to_str().ok()).unwrap_or_default();
        // The first token is already revoked when it is first used: the sink must fetch another.
        if token == 1 || given != format!("Bearer tok-{token}") {
            note(401);
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    let reply = state.script.lock().expect("lock").pop_front();
    match reply {
        None => {
            note(200);
            StatusCode::OK.into_response()
        }
        Some(Reply::Status(status)) => {
            note(status);
            (StatusCode::from_u16(status).expect("status"), format!("scripted {status}")).into_response()
        }
        Some(Reply::Throttle(after)) => {
            note(429);
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", after)], "slow down").into_response()
        }
        Some(Reply::Stall(wait)) => {
            note(0);
            tokio::time::sleep(wait).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::Redirect(status, to)) => {
            note(status);
            (StatusCode::from_u16(status).expect("status"), [("location", to)]).into_response()
        }
    }
}

async fn start_worker(dir: &std::path::Path) -> Worker {
    let filter = std::env::var("WEIR_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    Worker::start(WorkerConfig::new(dir.join("data"))).await.expect("worker starts")
}

/// Append these values (JSON text, or raw bytes) to partition 0 of `topic`.
async fn produce(worker: &Worker, topic: &str, values: Vec<Vec<u8>>) {
    let log = worker.log();
    log.ensure_topic(topic, TopicConfig { partitions: 1, ..TopicConfig::default() }).await.expect("topic");
    let records = values
        .into_iter()
        .map(|value| Record { key: None, value: Some(value.into()), headers: Vec::new(), timestamp: 0 })
        .collect();
    let batch = PartitionBatch { topic: topic.into(), partition: 0, records };
    log.append(Arc::from([batch]), Generation::default()).await.expect("append");
}

fn numbered(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|n| json!({"n": n}).to_string().into_bytes()).collect()
}

fn sink(name: &str, grants: Vec<HttpGrant>, config: Value) -> ConnectorDefinition {
    let mut definition = ConnectorDefinition {
        name: name.into(),
        class: "http-sink".into(),
        config: config.as_object().cloned().unwrap_or_default(),
        ..ConnectorDefinition::default()
    };
    definition.grants.http = grants;
    definition
}

/// Wait until `done` holds, failing early if a task failed.
async fn wait_for(worker: &Worker, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        let failed = crate::support::failed_task(worker);
        assert!(failed.is_none(), "a task failed while waiting for {what}: {failed:?}");
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", worker.herder().statuses());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_failure(worker: &Worker) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(task) = crate::support::failed_task(worker) {
            return task.status.trace.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "no task failed: {:?}", worker.herder().statuses());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_rides_out_errors_throttling_and_a_stall_and_delivers_every_record() {
    let server = Server::start(vec![
        Reply::Status(500),
        Reply::Status(503),
        Reply::Throttle("1"),
        Reply::Stall(Duration::from_secs(3)),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    produce(&worker, "events", numbered(0..100)).await;
    let definition = sink(
        "events-http",
        vec![server.grant()],
        json!({
            "topics": "events",
            "http.api.url": server.url("/ingest"),
            "batch.max.size": 25,
            "retry.backoff.ms": 50,
            "request.timeout.ms": 1000,
            "headers": "X-Source: weir|X-Env:test",
            "auth.type": "bearer",
            "bearer.token": "s3cret",
        }),
    );
    worker.herder().create(definition).await.expect("create the sink");
    wait_for(&worker, "100 delivered records", || server.delivered().len() >= 100).await;
    // Delivered once each (a stalled request whose answer never came is the one repeat allowed,
    // and it was never answered, so it is not counted as delivered).
    let mut numbers: Vec<u64> = server.delivered().iter().map(|value| value["n"].as_u64().expect("n")).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());

    let seen: Vec<Seen> = server.seen().into_iter().filter(|seen| seen.path == "/ingest").collect();
    let answered: Vec<u16> = seen.iter().map(|seen| seen.answered).collect();
    assert_eq!(&answered[..5], [500, 503, 429, 0, 200], "the script, then success: {answered:?}");
    assert_eq!(answered.len(), 8, "four tries of the first batch that failed, then one request per batch");
    // All tries of the first batch carry the same 25 records.
    assert!(seen[..5].iter().all(|try_| try_.body == seen[0].body));
    let throttled = seen[3].at.duration_since(seen[2].at);
    assert!(throttled >= Duration::from_millis(950), "Retry-After: 1 honoured, waited {throttled:?}");
    let first = &seen[0].headers;
    assert_eq!(first["content-type"], "application/json");
    assert_eq!(first["x-source"], "weir");
    assert_eq!(first["x-env"], "test");
    assert_eq!(first["authorization"], "Bearer s3cret");

    // The group offsets come to cover every record.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let group = worker.log().group_offsets("connect-events-http").await.expect("group offsets");
        if group.iter().map(|offset| offset.offset).eq([100]) {
            break;
        }
        assert!(Instant::now() < deadline, "group offsets: {group:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tasks = worker.herder().statuses().into_iter().flat_map(|connector| connector.tasks).collect::<Vec<_>>();
    assert_eq!(tasks[0].gauges.get("http_retries"), Some(&4), "{tasks:?}");
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_sends_refused_records_to_the_dead_letter_topic_with_the_status() {
    let server = Server::start(vec![Reply::Status(400)]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    let mut values = numbered(0..10);
    values.push(vec![0xff, 0xfe]);
    produce(&worker, "orders", values).await;
    let definition = ConnectorDefinition {
        tolerance: Tolerance::All,
        dead_letter_topic: Some("orders-dlq".into()),
        dead_letter_context_headers: true,
        ..sink(
            "orders-http",
            vec![server.grant()],
            json!({
                "topics": "orders",
                "http.api.url": server.url("/ingest"),
                "request.body.format": "json",
                "batch.max.size": 5,
                "batch.linger.ms": 60000,
            }),
        )
    };
    worker.herder().create(definition).await.expect("create the sink");
    wait_for(&worker, "5 delivered records", || server.delivered().len() >= 5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = crate::support::read_partition(&**worker.log(), "orders-dlq", 0).await;
        if dead.len() >= 6 {
            break dead;
        }
        assert!(Instant::now() < deadline, "dead-lettered so far: {dead:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead.len(), 6);
    let header = |record: &weir_runtime::log::StoredRecord, name: &str| {
        record
            .headers
            .iter()
            .find(|(header, _)| header == name)
            .and_then(|(_, value)| value.clone())
            .map(|value| String::from_utf8_lossy(&value).into_owned())
    };
    // The binary value failed in `put` (it cannot be sent as JSON); the first batch of five was
    // refused with 400 and comes back from the log as it was consumed, with the status.
    let mut refused: Vec<Value> = Vec::new();
    for record in &dead {
        assert_eq!(header(record, "__connect.errors.stage").as_deref(), Some("TASK_PUT"));
        match header(record, "__connect.errors.http.status") {
            Some(status) => {
                assert_eq!(status, "400");
                assert_eq!(header(record, "__connect.errors.http.response").as_deref(), Some("scripted 400"));
                refused.push(serde_json::from_slice(record.value.as_ref().expect("value")).expect("json"));
            }
            None => assert_eq!(record.value.as_deref(), Some(&[0xff, 0xfe][..])),
        }
    }
    assert_eq!(refused, (0..5).map(|n| json!({"n": n})).collect::<Vec<_>>());
    assert_eq!(server.delivered(), (5..10).map(|n| json!({"n": n})).collect::<Vec<_>>());
    assert!(crate::support::failed_task(&worker).is_none());
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sink_follows_redirects_and_oauth2_within_its_grant_and_nothing_outside_it() {
    let outside = Server::start(Vec::new()).await;
    let server = Server::start(vec![Reply::Redirect(308, "/ingest".into())]).await;
    // `/ingest` wants a token from `/token`; the first one it hands out is refused.
    *server.state.token.lock().expect("lock") = Some(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(dir.path()).await;
    produce(&worker, "a", numbered(0..3)).await;
    let oauth = sink(
        "a-http",
        vec![server.grant()],
        json!({
            "topics": "a",
            "http.api.url": server.url("/hop"),
            "request.body.format": "ndjson",
            "auth.type": "oauth2",
            "oauth2.token.url": server.url("/token"),
            "oauth2.client.id": "weir",
            "oauth2.client.secret": "p@ss word",
            "oauth2.client.scope": "ingest",
            "retry.backoff.ms": 50,
        }),
    );
    worker.herder().create(oauth).await.expect("create the sink");
    let delivered = || {
        server
            .seen()
            .into_iter()
            .filter(|seen| seen.path == "/ingest" && seen.answered == 200)
            .map(|seen| String::from_utf8_lossy(&seen.body).into_owned())
            .collect::<Vec<_>>()
    };
    wait_for(&worker, "the batch after the redirect", || !delivered().is_empty()).await;
    assert_eq!(delivered(), ["{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"]);
    let seen = server.seen();
    let paths: Vec<(&str, u16)> = seen.iter().map(|seen| (seen.path.as_str(), seen.answered)).collect();
    assert_eq!(
        paths,
        [("/token", 200), ("/hop", 401), ("/token", 200), ("/hop", 308), ("/ingest", 200)],
        "a refused token is fetched again once, then the 308 is followed"
    );
    let token_request = &seen[0];
    assert_eq!(token_request.headers["authorization"], "Basic d2VpcjpwJTQwc3Mrd29yZA==");
    assert_eq!(String::from_utf8_lossy(&token_request.body), "grant_type=client_credentials&scope=ingest");
    assert_eq!(seen[4].headers["authorization"], "Bearer tok-2");
    assert_eq!(seen[4].headers["content-type"], "application/x-ndjson");

    // A redirect to a server the grant does not name: refused, nothing sent there. The task
    // fails, and so does each restart, until the restart policy gives up.
    *server.state.token.lock().expect("lock") = None;
    *server.state.moved_to.lock().expect("lock") = Some(outside.url("/ingest"));
    produce(&worker, "b", numbered(0..2)).await;
    worker
        .herder()
        .create(sink("b-http", vec![server.grant()], json!({"topics": "b", "http.api.url": server.url("/moved")})))
        .await
        .expect("create the second sink");
    let trace = wait_for_failure(&worker).await;
    assert!(trace.contains("redirect refused") && trace.contains("grants.http"), "{trace}");
    assert!(outside.seen().is_empty(), "nothing reached the server outside the grant");

    // And a URL outside the grant is refused before anything is sent.
    worker.herder().delete("b-http").await.expect("delete");
    produce(&worker, "c", numbered(0..1)).await;
    worker
        .herder()
        .create(sink("c-http", vec![server.grant()], json!({"topics": "c", "http.api.url": outside.url("/ingest")})))
        .await
        .expect("create the third sink");
    let trace = wait_for_failure(&worker).await;
    assert!(trace.contains("not granted") && trace.contains(&outside.addr.to_string()), "{trace}");
    assert!(outside.seen().is_empty());
    worker.shutdown().await;
}
