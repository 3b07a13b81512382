//! Object-safe forms of the connector traits with exactly the shape of the WIT exports (config
//! as JSON text in, packed batches across), and their one implementation over any [`Source`] or
//! [`Sink`]. The wasm export glue and the native runner both go through this code, so a
//! connector runs the same code paths natively and as a component, apart from the boundary.

use std::marker::PhantomData;

use crate::batch::{BatchError, SinkBatchReader, SourceBatchWriter};
use crate::config;
use crate::connector::{Connector, Sink, Source};
use crate::host::{Host, TaskContext};
use crate::types::{ConnectorError, FieldError, Kind, OffsetFailure, RecordFailure, SourceOffset, Spec};

/// The WIT `connector` interface, object-safe.
pub trait DynConnector: Send + Sync {
    fn spec(&self) -> Spec;

    /// Parse `config` (JSON) and run the connector's own checks.
    ///
    /// # Errors
    /// The problems, each naming its field; a config that does not parse yields one.
    fn validate(&self, config: &str) -> Result<(), Vec<FieldError>>;

    /// The task configs (JSON text, one per task, at most `max_tasks`).
    ///
    /// # Errors
    /// [`ConnectorError::InvalidConfig`] if the config does not parse, or the connector's error.
    fn task_configs(&self, config: &str, max_tasks: u32) -> Result<Vec<String>, ConnectorError>;

    /// The connector was deleted: see [`Connector::on_delete`]. Default: nothing.
    ///
    /// # Errors
    /// [`ConnectorError::InvalidConfig`] if the config does not parse, or the connector's error.
    fn on_delete(&self, config: &str) -> Result<(), ConnectorError> {
        let _ = config;
        Ok(())
    }
}

/// The WIT `source-task` resource, object-safe.
pub trait DynSourceTask: Send {
    /// A packed source batch of at most `max` records (see [`crate::batch`]).
    ///
    /// # Errors
    /// The connector's error; [`ConnectorError::Fatal`] if it pushed more than `max` records.
    fn poll(&mut self, max: u32) -> Result<Vec<u8>, ConnectorError>;

    /// # Errors
    /// The connector's error.
    fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), ConnectorError>;

    /// # Errors
    /// The connector's error.
    fn close(&mut self) -> Result<(), ConnectorError>;
}

/// The WIT `sink-task` resource, object-safe.
pub trait DynSinkTask: Send {
    /// Decode a packed sink batch and hand it to the sink.
    ///
    /// # Errors
    /// The connector's error; [`ConnectorError::Fatal`] if the batch is malformed or the sink
    /// reports a failure for an index outside the batch.
    fn put(&mut self, batch: &[u8]) -> Result<Vec<RecordFailure>, ConnectorError>;

    /// Flush, then the records found failed since the last flush that `put` did not report.
    ///
    /// # Errors
    /// The connector's error.
    fn flush(&mut self) -> Result<Vec<OffsetFailure>, ConnectorError>;

    /// # Errors
    /// The connector's error.
    fn close(&mut self) -> Result<(), ConnectorError>;
}

/// The spec of `C`, a connector of `kind`.
pub(crate) fn spec<C: Connector>(kind: Kind) -> Spec {
    Spec {
        name: C::NAME.to_owned(),
        version: C::VERSION.to_owned(),
        kind,
        description: C::DESCRIPTION.to_owned(),
        config_schema: config::schema_of::<C::Config>(),
    }
}

pub(crate) fn validate<C: Connector>(config: &str) -> Result<(), Vec<FieldError>> {
    let config = config::parse::<C::Config>(config).map_err(|error| vec![error])?;
    C::validate(&config)
}

pub(crate) fn on_delete<C: Connector>(config: &str) -> Result<(), ConnectorError> {
    C::on_delete(&config::parse_for_task::<C::Config>(config)?)
}

pub(crate) fn task_configs<C: Connector>(config: &str, max_tasks: u32) -> Result<Vec<String>, ConnectorError> {
    if max_tasks == 0 {
        return Err(ConnectorError::invalid_config("tasks.max", "must be at least 1"));
    }
    let config = config::parse_for_task::<C::Config>(config)?;
    let tasks = C::task_configs(&config, max_tasks)?;
    if tasks.len() > max_tasks as usize {
        return Err(ConnectorError::Fatal(format!(
            "connector {} made {} task configs for tasks.max {max_tasks}",
            C::NAME,
            tasks.len()
        )));
    }
    Ok(tasks.iter().map(serde_json::Value::to_string).collect())
}

fn open_context(task_config: &str, task_id: u32, host: Box<dyn Host>) -> Result<TaskContext, ConnectorError> {
    let task_config = if task_config.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(task_config)
            .map_err(|error| ConnectorError::InvalidConfig(format!("task config is not JSON: {error}")))?
    };
    Ok(TaskContext::new(task_id, task_config, host))
}

/// [`DynConnector`] for any connector, of a known kind.
pub(crate) struct ConnectorGlue<C> {
    kind: Kind,
    connector: PhantomData<fn() -> C>,
}

impl<C> ConnectorGlue<C> {
    pub(crate) fn new(kind: Kind) -> Self {
        Self { kind, connector: PhantomData }
    }
}

impl<C: Connector> DynConnector for ConnectorGlue<C> {
    fn spec(&self) -> Spec {
        spec::<C>(self.kind)
    }

    fn validate(&self, config: &str) -> Result<(), Vec<FieldError>> {
        validate::<C>(config)
    }

    fn task_configs(&self, config: &str, max_tasks: u32) -> Result<Vec<String>, ConnectorError> {
        task_configs::<C>(config, max_tasks)
    }

    fn on_delete(&self, config: &str) -> Result<(), ConnectorError> {
        on_delete::<C>(config)
    }
}

/// A source task behind the WIT shape.
pub(crate) struct SourceTaskGlue<S> {
    source: S,
    /// Bytes of the last batch: the next one starts with that capacity, so a steady stream of
    /// batches does not regrow its buffer every poll.
    capacity: usize,
}

impl<S: Source> SourceTaskGlue<S> {
    pub(crate) fn open(
        config: &str,
        task_config: &str,
        task_id: u32,
        host: Box<dyn Host>,
    ) -> Result<Self, ConnectorError> {
        let config = config::parse_for_task::<S::Config>(config)?;
        let context = open_context(task_config, task_id, host)?;
        let source = S::open(config, context)?;
        Ok(Self { source, capacity: 4096 })
    }

    pub(crate) fn poll(&mut self, max: u32) -> Result<Vec<u8>, ConnectorError> {
        let mut batch = SourceBatchWriter::with_capacity(self.capacity);
        if max > 0 {
            self.source.poll(max, &mut batch)?;
        }
        if batch.len() > max as usize {
            return Err(ConnectorError::Fatal(format!(
                "connector {} pushed {} records in a poll for at most {max}",
                S::NAME,
                batch.len()
            )));
        }
        let bytes = batch.finish();
        self.capacity = bytes.len().max(4096);
        Ok(bytes)
    }

    pub(crate) fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), ConnectorError> {
        self.source.commit(positions)
    }

    pub(crate) fn close(&mut self) -> Result<(), ConnectorError> {
        self.source.close()
    }
}

impl<S: Source + Send> DynSourceTask for SourceTaskGlue<S> {
    fn poll(&mut self, max: u32) -> Result<Vec<u8>, ConnectorError> {
        SourceTaskGlue::poll(self, max)
    }

    fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), ConnectorError> {
        SourceTaskGlue::commit(self, positions)
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        SourceTaskGlue::close(self)
    }
}

/// A sink task behind the WIT shape.
pub(crate) struct SinkTaskGlue<S> {
    sink: S,
}

/// The smallest encoded sink record: topic, key and value lengths, partition, offset, timestamp
/// and header count. Bounds the records a batch can hold, so a lying count reserves nothing.
const MIN_SINK_RECORD_LEN: usize = 4 + 4 + 8 + 8 + 4 + 4 + 4;

impl<S: Sink> SinkTaskGlue<S> {
    pub(crate) fn open(
        config: &str,
        task_config: &str,
        task_id: u32,
        host: Box<dyn Host>,
    ) -> Result<Self, ConnectorError> {
        let config = config::parse_for_task::<S::Config>(config)?;
        let context = open_context(task_config, task_id, host)?;
        let sink = S::open(config, context)?;
        Ok(Self { sink })
    }

    pub(crate) fn put(&mut self, batch: &[u8]) -> Result<Vec<RecordFailure>, ConnectorError> {
        let reader = SinkBatchReader::new(batch).map_err(malformed)?;
        let bound = batch.len() / MIN_SINK_RECORD_LEN;
        let mut records = Vec::with_capacity((reader.record_count() as usize).min(bound));
        for record in reader {
            records.push(record.map_err(malformed)?);
        }
        let failures = self.sink.put(&records)?;
        if let Some(failure) = failures.iter().find(|failure| failure.index as usize >= records.len()) {
            return Err(ConnectorError::Fatal(format!(
                "connector {} reported a failure for record {} of a batch of {}",
                S::NAME,
                failure.index,
                records.len()
            )));
        }
        Ok(failures)
    }

    pub(crate) fn flush(&mut self) -> Result<Vec<OffsetFailure>, ConnectorError> {
        self.sink.flush()?;
        Ok(self.sink.take_failures())
    }

    pub(crate) fn close(&mut self) -> Result<(), ConnectorError> {
        self.sink.close()
    }
}

/// The runtime sent a batch that does not decode: a bug on the host side, not a retriable
/// condition.
fn malformed(error: BatchError) -> ConnectorError {
    ConnectorError::Fatal(format!("malformed sink batch: {error}"))
}

impl<S: Sink + Send> DynSinkTask for SinkTaskGlue<S> {
    fn put(&mut self, batch: &[u8]) -> Result<Vec<RecordFailure>, ConnectorError> {
        SinkTaskGlue::put(self, batch)
    }

    fn flush(&mut self) -> Result<Vec<OffsetFailure>, ConnectorError> {
        SinkTaskGlue::flush(self)
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        SinkTaskGlue::close(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{SinkBatchWriter, SinkRecordRef, SourceBatchReader, SourceRecordRef};
    use crate::native::{self, MemoryHost};

    /// Doc comments of this config must reach the schema.
    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct TestConfig {
        /// Records per poll.
        #[serde(rename = "records.per.poll")]
        records_per_poll: u32,
        /// Number of tasks to ask for, regardless of `max_tasks`.
        #[serde(default)]
        tasks: Option<u32>,
    }

    struct TestSource {
        records_per_poll: u32,
        context: TaskContext,
    }

    impl Connector for TestSource {
        type Config = TestConfig;
        const NAME: &'static str = "test-source";
        const VERSION: &'static str = "1.2.3";
        const DESCRIPTION: &'static str = "A source for the glue's tests.";

        fn validate(config: &TestConfig) -> Result<(), Vec<FieldError>> {
            if config.records_per_poll > 100 {
                return Err(vec![FieldError::new("records.per.poll", "at most 100")]);
            }
            Ok(())
        }

        fn task_configs(config: &TestConfig, max_tasks: u32) -> Result<Vec<serde_json::Value>, ConnectorError> {
            let tasks = config.tasks.unwrap_or(max_tasks);
            Ok((0..tasks).map(|task| serde_json::json!({ "task": task })).collect())
        }
    }

    impl Source for TestSource {
        fn open(config: TestConfig, context: TaskContext) -> Result<Self, ConnectorError> {
            Ok(Self { records_per_poll: config.records_per_poll, context })
        }

        fn poll(&mut self, _max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
            let task = self.context.task_config.to_string();
            for index in 0..self.records_per_poll {
                let value = format!("{task}/{index}");
                batch.push(&SourceRecordRef {
                    topic: "out",
                    partition: index as i32 % 2 - 1,
                    timestamp: Some(i64::from(index)),
                    key: (index % 2 == 0).then_some(b"even"),
                    value: Some(value.as_bytes()),
                    headers: &[("n", Some(b"1")), ("empty", None)],
                    source_partition: task.as_bytes(),
                    source_position: index.to_string().as_bytes(),
                });
            }
            Ok(())
        }

        fn commit(&mut self, positions: &[SourceOffset]) -> Result<(), ConnectorError> {
            self.context.host().state_set("committed", &positions[0].position);
            Ok(())
        }
    }

    struct TestSink {
        context: TaskContext,
    }

    impl Connector for TestSink {
        type Config = TestConfig;
        const NAME: &'static str = "test-sink";
        const VERSION: &'static str = "1.2.3";
        const DESCRIPTION: &'static str = "A sink for the glue's tests.";
    }

    impl Sink for TestSink {
        fn open(_config: TestConfig, context: TaskContext) -> Result<Self, ConnectorError> {
            Ok(Self { context })
        }

        /// Keeps what it saw in the host's state; fails records whose value is `bad`, and
        /// reports an impossible index for a value `lie`.
        fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError> {
            let mut seen = Vec::new();
            let mut failures = Vec::new();
            for (index, record) in records.iter().enumerate() {
                let headers: Vec<_> = record.headers.iter().collect();
                seen.push(format!(
                    "{}:{}:{}:{}:{:?}:{:?}:{:?}",
                    record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, headers
                ));
                let index = match record.value {
                    Some(b"bad") => index as u32,
                    Some(b"lie") => 1000,
                    _ => continue,
                };
                failures.push(RecordFailure::new(index, ConnectorError::fatal("bad value")));
            }
            self.context.host().state_set("seen", seen.join("\n").as_bytes());
            Ok(failures)
        }
    }

    const CONFIG: &str = r#"{"records.per.poll":3}"#;

    #[test]
    fn spec_carries_identity_kind_and_documented_schema() {
        let spec = native::source_connector::<TestSource>().spec();
        assert_eq!((spec.name.as_str(), spec.version.as_str()), ("test-source", "1.2.3"));
        assert_eq!(spec.kind, Kind::Source);
        assert_eq!(spec.description, "A source for the glue's tests.");
        let schema: serde_json::Value = serde_json::from_str(&spec.config_schema).unwrap();
        assert_eq!(schema["properties"]["records.per.poll"]["description"], "Records per poll.");
        assert_eq!(native::sink_connector::<TestSink>().spec().kind, Kind::Sink);
    }

    #[test]
    fn validate_names_parse_errors_and_runs_the_connector_checks() {
        let connector = native::source_connector::<TestSource>();
        assert_eq!(connector.validate(CONFIG), Ok(()));
        let errors = connector.validate(r#"{"records.per.poll":"many"}"#).unwrap_err();
        assert_eq!(errors[0].field, "records.per.poll");
        let errors = connector.validate(r#"{}"#).unwrap_err();
        assert_eq!(errors[0].field, "records.per.poll");
        let errors = connector.validate(r#"{"records.per.poll":1,"extra":1}"#).unwrap_err();
        assert_eq!(errors[0].field, "extra");
        let errors = connector.validate(r#"{"records.per.poll":101}"#).unwrap_err();
        assert_eq!(errors, vec![FieldError::new("records.per.poll", "at most 100")]);
    }

    #[test]
    fn task_configs_are_json_text_and_bounded_by_max_tasks() {
        let connector = native::source_connector::<TestSource>();
        assert_eq!(connector.task_configs(CONFIG, 2).unwrap(), vec![r#"{"task":0}"#, r#"{"task":1}"#]);
        assert_eq!(native::sink_connector::<TestSink>().task_configs(CONFIG, 5).unwrap(), vec!["null"]);
        assert!(matches!(
            connector.task_configs(r#"{"records.per.poll":1,"tasks":3}"#, 2),
            Err(ConnectorError::Fatal(_))
        ));
        assert!(matches!(connector.task_configs(CONFIG, 0), Err(ConnectorError::InvalidConfig(_))));
        match connector.task_configs(r#"{"records.per.poll":-1}"#, 1) {
            Err(ConnectorError::InvalidConfig(message)) => {
                assert!(message.starts_with("records.per.poll: "), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn source_batches_round_trip_through_the_glue() {
        let host = MemoryHost::new();
        let mut task = native::open_source::<TestSource>(CONFIG, r#"{"task":7}"#, 7, Box::new(host.clone())).unwrap();
        let batch = task.poll(10).unwrap();
        let records: Vec<_> = SourceBatchReader::new(&batch).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].topic, "out");
        assert_eq!(records[0].partition, -1);
        assert_eq!(records[1].partition, 0);
        assert_eq!(records[2].timestamp, Some(2));
        assert_eq!(records[0].key, Some(&b"even"[..]));
        assert_eq!(records[1].key, None);
        assert_eq!(records[2].value, Some(&br#"{"task":7}/2"#[..]));
        assert_eq!(records[0].headers.iter().collect::<Vec<_>>(), vec![("n", Some(&b"1"[..])), ("empty", None)]);
        assert_eq!(records[2].source_partition, br#"{"task":7}"#);
        assert_eq!(records[2].source_position, b"2");

        let offset = SourceOffset { partition: b"p".to_vec(), position: b"2".to_vec() };
        task.commit(&[offset]).unwrap();
        assert_eq!(host.state("committed"), Some(b"2".to_vec()));
        task.close().unwrap();
    }

    #[test]
    fn pushing_more_than_max_is_fatal_and_max_zero_polls_nothing() {
        let mut task = native::open_source::<TestSource>(CONFIG, "", 0, Box::new(MemoryHost::new())).unwrap();
        assert!(matches!(task.poll(2), Err(ConnectorError::Fatal(_))));
        let batch = task.poll(0).unwrap();
        assert_eq!(SourceBatchReader::new(&batch).unwrap().record_count(), 0);
    }

    #[test]
    fn open_reports_config_and_task_config_errors() {
        let open = |config: &str, task_config: &str| {
            native::open_source::<TestSource>(config, task_config, 0, Box::new(MemoryHost::new())).err()
        };
        assert!(matches!(open("{}", "null"), Some(ConnectorError::InvalidConfig(_))));
        assert!(matches!(open(CONFIG, "{nope"), Some(ConnectorError::InvalidConfig(_))));
        assert_eq!(open(CONFIG, "   "), None);
    }

    #[test]
    fn sink_batches_round_trip_through_the_glue() {
        let host = MemoryHost::new();
        let mut task = native::open_sink::<TestSink>(CONFIG, "null", 0, Box::new(host.clone())).unwrap();
        let mut batch = SinkBatchWriter::new();
        batch.push("in", 2, 40, 1000, Some(b"k"), Some(b"good"), [("h", Some(&b"v"[..]))].into_iter());
        batch.push("in", 2, 41, 1001, None, Some(b"bad"), std::iter::empty());
        batch.push("in", 3, 7, 1002, None, None, std::iter::empty());
        let failures = task.put(&batch.finish()).unwrap();
        assert_eq!(failures, vec![RecordFailure::new(1, ConnectorError::fatal("bad value"))]);
        let seen = String::from_utf8(host.state("seen").unwrap()).unwrap();
        assert_eq!(
            seen.lines().collect::<Vec<_>>(),
            vec![
                "in:2:40:1000:Some([107]):Some([103, 111, 111, 100]):[(\"h\", Some([118]))]",
                "in:2:41:1001:None:Some([98, 97, 100]):[]",
                "in:3:7:1002:None:None:[]",
            ]
        );
        task.flush().unwrap();
        task.close().unwrap();
    }

    #[test]
    fn sink_failures_outside_the_batch_and_malformed_batches_are_fatal() {
        let mut task = native::open_sink::<TestSink>(CONFIG, "null", 0, Box::new(MemoryHost::new())).unwrap();
        let mut batch = SinkBatchWriter::new();
        batch.push("in", 0, 0, 0, None, Some(b"lie"), std::iter::empty());
        assert!(matches!(task.put(&batch.finish()), Err(ConnectorError::Fatal(_))));
        assert!(matches!(task.put(b"WRB1"), Err(ConnectorError::Fatal(_))));
        // A count far beyond the bytes reserves nothing and fails cleanly.
        let mut lying = crate::batch::BATCH_MAGIC.to_le_bytes().to_vec();
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(task.put(&lying), Err(ConnectorError::Fatal(_))));
        let empty = SinkBatchWriter::new().finish();
        assert_eq!(task.put(&empty), Ok(Vec::new()));
    }
}
