//! The `http-sink` task.
//!
//! - `put` takes every record or none: when the batches waiting to be sent pass four requests'
//!   worth (the endpoint is down or slow), it first tries to send them and, if it cannot, refuses
//!   the whole put with a retriable error; the runtime puts the same records again after its
//!   backoff. Records it takes stay buffered until they are sent or refused for good, so a put is
//!   never half-taken and nothing is buffered twice.
//! - A send that fails in a way worth repeating (a connection error, a timeout, a status of
//!   `retry.on.status.codes`) is tried again after `Retry-After` or the backoff, within the
//!   current call's deadline; a retry due later than this call can wait is left for the next
//!   `put` or `flush`, which then waits for it. `flush` returns a retriable error while anything
//!   is still unsent, so the runtime commits no offset for unsent records.
//! - A batch refused for good (another status, or `max.retries` spent) follows
//!   `behavior.on.error`; with `fail` its records are reported from the next successful flush
//!   ([`Sink::take_failures`]), before the runtime commits the offsets that cover them.

use std::time::{Duration, Instant, SystemTime};

use weir_connector_sdk::batch::SinkRecordRef;
use weir_connector_sdk::http::{self, Request, Response};
use weir_connector_sdk::{Connector, ConnectorError, FieldError, OffsetFailure, RecordFailure, Sink, TaskContext};

use crate::auth::Auth;
use crate::body::{self, Batch, Batches};
use crate::config::{BodyFormat, HttpSinkConfig, OnError, OnNull};
use crate::retry::{self, StatusCodes};

/// A try is not started with less than this left of the call's deadline.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(100);
/// Longest `Retry-After` honoured as asked.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);
/// Bytes of a refusing response kept in the failed records' context header.
const RESPONSE_EXCERPT: usize = 1_000;
/// Requests' worth of records buffered before `put` pushes back.
const BACKLOG_BATCHES: usize = 4;

/// The context headers of a failed record's dead-letter copy.
pub const STATUS_HEADER: &str = "__connect.errors.http.status";
pub const URL_HEADER: &str = "__connect.errors.http.url";
pub const RESPONSE_HEADER: &str = "__connect.errors.http.response";

/// How the oldest batch has fared so far.
#[derive(Debug, Default)]
struct Tries {
    retries: u32,
    /// The next try is due then.
    not_before: Option<Instant>,
    /// Why the last try failed.
    last: String,
    /// A 401 made the sink fetch a new token for this batch already.
    reauthorised: bool,
}

/// How one batch's send ended.
enum Outcome {
    Delivered,
    /// Refused for good: the status (if there was a response), why, and the response body.
    Refused {
        status: Option<u16>,
        message: String,
        response: Vec<u8>,
    },
    /// A retry is due later than this call can wait.
    Later(String),
}

/// Whether everything due was sent.
enum Sent {
    All,
    Waiting(String),
}

/// The `http-sink` task.
#[derive(Debug)]
pub struct HttpSink {
    config: HttpSinkConfig,
    context: TaskContext,
    /// `headers` and the content type; the auth header is added per request.
    headers: Vec<(String, String)>,
    auth: Auth,
    retry_codes: StatusCodes,
    batches: Batches,
    tries: Tries,
    /// The request of the front batch, started and not yet answered.
    in_flight: Option<u64>,
    failures: Vec<OffsetFailure>,
    requests: i64,
    records_sent: i64,
    retries: i64,
}

impl Connector for HttpSink {
    type Config = HttpSinkConfig;
    const NAME: &'static str = "http-sink";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Sends records to an HTTP endpoint in batches (JSON array or NDJSON) or one per request, with retries and auth.";

    fn validate(config: &HttpSinkConfig) -> Result<(), Vec<FieldError>> {
        let errors = config.check();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

impl Sink for HttpSink {
    fn open(config: HttpSinkConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        let errors = config.check();
        if !errors.is_empty() {
            return Err(ConnectorError::InvalidConfig(
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            ));
        }
        let mut headers =
            config.header_pairs().map_err(|message| ConnectorError::invalid_config("headers", message))?;
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            let content_type = match config.body_format {
                BodyFormat::Json => "application/json",
                BodyFormat::Ndjson => "application/x-ndjson",
            };
            headers.push(("content-type".to_owned(), content_type.to_owned()));
        }
        let retry_codes = StatusCodes::parse(&config.retry_on_status_codes)
            .map_err(|message| ConnectorError::invalid_config("retry.on.status.codes", message))?;
        let batches = Batches::new(config.body_format, config.batch_max_size, config.batch_max_bytes);
        context.info(&format!(
            "http-sink sending {} to {} ({} records or {} bytes per request)",
            config.method.as_str(),
            config.url,
            config.batch_max_size,
            config.batch_max_bytes
        ));
        Ok(Self {
            auth: Auth::of(&config),
            config,
            context,
            headers,
            retry_codes,
            batches,
            tries: Tries::default(),
            in_flight: None,
            failures: Vec::new(),
            requests: 0,
            records_sent: 0,
            retries: 0,
        })
    }

    fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError> {
        if self.over_backlog()
            && let Sent::Waiting(reason) = self.send_due(true, true)?
            && self.over_backlog()
        {
            // Nothing of this put was taken: the runtime puts it again after its backoff.
            return Err(ConnectorError::Retriable(format!("the endpoint is not taking records: {reason}")));
        }
        let mut failures = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let Some(value) = record.value else {
                if self.config.behavior_on_null_values == OnNull::Fail {
                    failures.push(RecordFailure::new(
                        index,
                        ConnectorError::Fatal("the value is null (behavior.on.null.values: fail)".into()),
                    ));
                }
                continue;
            };
            match body::encoding_of(value) {
                Ok(encoding) => self.batches.push(record, value, encoding),
                Err(message) => failures.push(RecordFailure::new(index, ConnectorError::Fatal(message.into()))),
            }
            // A batch just filled: on its way while the rest of this put is encoded.
            if self.batches.front_full() {
                self.send_due(false, false)?;
            }
        }
        // Whatever is not sent now stays buffered for the next put or flush; the last request
        // started travels meanwhile.
        self.send_due(self.config.linger_ms == 0, false)?;
        self.report_gauges();
        Ok(failures)
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        let sent = self.send_due(true, true)?;
        self.report_gauges();
        match sent {
            Sent::All => Ok(()),
            Sent::Waiting(reason) => Err(ConnectorError::Retriable(reason)),
        }
    }

    fn take_failures(&mut self) -> Vec<OffsetFailure> {
        std::mem::take(&mut self.failures)
    }
}

impl HttpSink {
    fn over_backlog(&self) -> bool {
        let batches = BACKLOG_BATCHES as u64;
        self.batches.records() as u64 >= batches * u64::from(self.config.batch_max_size)
            || self.batches.bytes() as u64 >= batches.saturating_mul(self.config.batch_max_bytes)
    }

    /// Send the batches that are due (all of them with `everything`; otherwise the full ones and
    /// one that has lingered long enough), oldest first and one at a time, stopping at one whose
    /// retry (or response) is due later than this call can wait. The last request started is
    /// left in flight unless `wait_for_last`: the caller goes on (the runtime reads the next
    /// batch, `put` encodes it) while it travels.
    fn send_due(&mut self, everything: bool, wait_for_last: bool) -> Result<Sent, ConnectorError> {
        let linger = Duration::from_millis(self.config.linger_ms);
        loop {
            let Some(front) = self.batches.front() else { return Ok(Sent::All) };
            if self.in_flight.is_none() {
                let lingered = front.started.is_some_and(|started| started.elapsed() >= linger);
                if !(everything || lingered || self.batches.front_full()) {
                    return Ok(Sent::All);
                }
                match self.start_front()? {
                    None => {}
                    Some(Outcome::Later(reason)) => return Ok(Sent::Waiting(reason)),
                    Some(outcome) => {
                        self.settle(outcome);
                        continue;
                    }
                }
            }
            // The front is in flight: wait for it when a batch behind it is due, or when asked.
            if !(wait_for_last || self.batches.behind_front_due(everything)) {
                return Ok(Sent::All);
            }
            match self.finish_front()? {
                None => {}
                Some(Outcome::Later(reason)) => return Ok(Sent::Waiting(reason)),
                Some(outcome) => self.settle(outcome),
            }
        }
    }

    /// The front batch was delivered or refused for good: it leaves the queue.
    fn settle(&mut self, outcome: Outcome) {
        let batch = self.batches.pop_front().expect("the front batch was just sent");
        match outcome {
            Outcome::Delivered => {
                self.requests += 1;
                self.records_sent += batch.records.len() as i64;
            }
            Outcome::Refused { status, message, response } => self.refused(&batch, status, &message, &response),
            Outcome::Later(_) => unreachable!("a batch waiting for later stays"),
        }
        self.tries = Tries::default();
    }

    /// Start sending the front batch, once its retry is due (waiting for that within this call).
    /// `None` when it is in flight; otherwise why not (its retry is due later, or the token
    /// endpoint refused for good).
    fn start_front(&mut self) -> Result<Option<Outcome>, ConnectorError> {
        loop {
            let left = Duration::from_millis(http::remaining_ms().into());
            let wait = self.tries.not_before.map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()));
            if wait + MIN_REQUEST_TIME > left {
                let reason = if self.tries.last.is_empty() {
                    "no time left in this call".to_owned()
                } else {
                    format!(
                        "retry {} of {} is due in {} ms: {}",
                        self.tries.retries,
                        self.config.max_retries,
                        wait.as_millis(),
                        self.tries.last
                    )
                };
                return Ok(Some(Outcome::Later(reason)));
            }
            if !wait.is_zero() {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "in a component this is WASI's poll, which the host awaits without blocking a thread; \
                              natively the http capability is unavailable, so no retry is ever waited for"
                )]
                std::thread::sleep(wait);
            }
            let authorization = match self.auth.header() {
                Ok(header) => header,
                Err(ConnectorError::Retriable(message)) => {
                    if let Some(refused) = self.retry_later(None, message) {
                        return Ok(Some(refused));
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            let batch = self.batches.close_front().expect("start_front runs with a batch");
            let mut headers = self.headers.clone();
            if let Some(authorization) = authorization {
                headers.push(("authorization".to_owned(), authorization));
            }
            let mut request = Request {
                method: self.config.method.as_str().to_owned(),
                url: self.config.url.clone(),
                headers,
                body: std::mem::take(&mut batch.body),
                timeout_ms: self.config.request_timeout_ms,
            };
            let started = http::start(&mut request);
            batch.body = request.body;
            match started {
                Ok(id) => {
                    self.in_flight = Some(id);
                    return Ok(None);
                }
                // Not granted, a request that cannot be sent: the configuration is wrong, and no
                // record would fare better.
                Err(error) => return Err(ConnectorError::Fatal(format!("http-sink: {error}"))),
            }
        }
    }

    /// Wait (within this call) for the response to the front batch's request: `None` when its
    /// retry is scheduled (or a new token is to be tried at once), otherwise how it ended.
    fn finish_front(&mut self) -> Result<Option<Outcome>, ConnectorError> {
        let id = self.in_flight.expect("finish_front runs with a request in flight");
        let Some(result) = http::wait(id, http::remaining_ms()) else {
            return Ok(Some(Outcome::Later(format!("no answer from {} yet", self.config.url))));
        };
        self.in_flight = None;
        match result {
            Ok(response) if response.is_success() => Ok(Some(Outcome::Delivered)),
            Ok(response) if response.status == 401 && !self.tries.reauthorised && self.auth.rejected() => {
                // A token the endpoint no longer takes: fetch another and try at once.
                self.tries.reauthorised = true;
                Ok(None)
            }
            Ok(response) if self.retry_codes.contains(response.status) => {
                let message = format!("{} answered {}", self.config.url, response.status);
                Ok(self.retry_later(Some(&response), message))
            }
            Ok(response) => Ok(Some(Outcome::Refused {
                status: Some(response.status),
                message: format!("{} answered {} (not in retry.on.status.codes)", self.config.url, response.status),
                response: response.body,
            })),
            Err(error) if error.is_retriable() => Ok(self.retry_later(None, error.to_string())),
            // A redirect outside the grant: the configuration is wrong.
            Err(error) => Err(ConnectorError::Fatal(format!("http-sink: {error}"))),
        }
    }

    /// Count a failed try and schedule the next; the refusal once `max.retries` are spent.
    fn retry_later(&mut self, response: Option<&Response>, message: String) -> Option<Outcome> {
        self.tries.retries += 1;
        if self.tries.retries > self.config.max_retries {
            return Some(Outcome::Refused {
                status: response.map(|response| response.status),
                message: format!("{message}; gave up after {} retries (max.retries)", self.config.max_retries),
                response: response.map(|response| response.body.clone()).unwrap_or_default(),
            });
        }
        let asked = response
            .and_then(|response| response.header("retry-after"))
            .and_then(|value| retry::retry_after(value, SystemTime::now()))
            .map(|wait| wait.min(MAX_RETRY_AFTER));
        let wait = asked.unwrap_or_else(|| {
            retry::backoff(
                Duration::from_millis(self.config.retry_backoff_ms),
                Duration::from_millis(self.config.retry_backoff_max_ms),
                self.tries.retries,
            )
        });
        self.context.info(&format!(
            "http-sink: {message}; retry {} of {} in {} ms{}",
            self.tries.retries,
            self.config.max_retries,
            wait.as_millis(),
            if asked.is_some() { " (Retry-After)" } else { "" }
        ));
        self.retries += 1;
        self.tries.not_before = Some(Instant::now() + wait);
        self.tries.last = message;
        None
    }

    /// A batch refused for good, as `behavior.on.error` says.
    fn refused(&mut self, batch: &Batch, status: Option<u16>, message: &str, response: &[u8]) {
        match self.config.behavior_on_error {
            OnError::Ignore => {}
            OnError::Log => self.context.warn(&format!(
                "http-sink dropped {} records (behavior.on.error: log): {message}",
                batch.records.len()
            )),
            OnError::Fail => {
                let excerpt = String::from_utf8_lossy(&response[..response.len().min(RESPONSE_EXCERPT)]).into_owned();
                for origin in &batch.records {
                    let mut context = vec![(URL_HEADER.to_owned(), self.config.url.clone())];
                    if let Some(status) = status {
                        context.push((STATUS_HEADER.to_owned(), status.to_string()));
                    }
                    if !excerpt.is_empty() {
                        context.push((RESPONSE_HEADER.to_owned(), excerpt.clone()));
                    }
                    self.failures.push(OffsetFailure {
                        topic: self.batches.topics[origin.topic as usize].clone(),
                        partition: origin.partition,
                        offset: origin.offset,
                        error: ConnectorError::Fatal(message.to_owned()),
                        context,
                    });
                }
            }
        }
    }

    fn report_gauges(&self) {
        self.context.gauge("http_requests", self.requests);
        self.context.gauge("http_records_sent", self.records_sent);
        self.context.gauge("http_retries", self.retries);
        self.context.gauge("http_buffered_records", self.batches.records() as i64);
    }
}
