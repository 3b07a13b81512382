//! `faulty-sink`: a test sink that misbehaves on request, to exercise the runtime's retries,
//! crash handling and dead-letter routing. Not shipped in the binary.

use weir_connector_sdk::batch::SinkRecordRef;
use weir_connector_sdk::{Connector, ConnectorError, FieldError, RecordFailure, Sink, TaskContext};

/// Configuration of the `faulty-sink` test sink.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultySinkConfig {
    /// Comma-separated topics to consume (read by the runtime).
    pub topics: String,
    /// How the sink misbehaves.
    #[serde(default)]
    pub mode: SinkMode,
    /// `trap`: puts that succeed before the trap.
    #[serde(default)]
    pub after: u32,
    /// `fail-retriable-n`: how many `put` calls fail (retriably) before puts succeed.
    #[serde(default = "default_n")]
    pub n: u32,
    /// `poison`: a record whose value contains this text is reported as failed.
    #[serde(default)]
    pub poison: Option<String>,
}

fn default_n() -> u32 {
    1
}

/// How the sink misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SinkMode {
    /// Never: every record is accepted.
    #[default]
    Ok,
    /// Panic once `after` puts have succeeded: the runtime sees a trap.
    Trap,
    /// The first `n` puts fail with a retriable error, later ones succeed.
    FailRetriableN,
    /// Records whose value contains `poison` are reported as failed; the others are accepted.
    Poison,
}

/// The `faulty-sink` task.
#[derive(Debug)]
pub struct FaultySink {
    context: TaskContext,
    config: FaultySinkConfig,
    puts: u32,
    failed_puts: u32,
    records: u64,
}

impl FaultySink {
    /// Records accepted so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

impl Connector for FaultySink {
    type Config = FaultySinkConfig;
    const NAME: &'static str = "faulty-sink";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Test sink that traps, fails or rejects records on request.";

    fn validate(config: &FaultySinkConfig) -> Result<(), Vec<FieldError>> {
        if config.mode == SinkMode::Poison && config.poison.as_deref().is_none_or(str::is_empty) {
            return Err(vec![FieldError::new("poison", "mode poison needs the text to look for")]);
        }
        Ok(())
    }
}

impl Sink for FaultySink {
    fn open(config: FaultySinkConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        if let Err(errors) = Self::validate(&config) {
            return Err(ConnectorError::InvalidConfig(errors[0].to_string()));
        }
        Ok(Self { context, config, puts: 0, failed_puts: 0, records: 0 })
    }

    fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError> {
        let mut failures = Vec::new();
        match self.config.mode {
            SinkMode::Ok => {}
            SinkMode::Trap => {
                if self.puts >= self.config.after {
                    panic!("faulty-sink: trap requested after {} puts", self.puts);
                }
            }
            SinkMode::FailRetriableN => {
                if self.failed_puts < self.config.n {
                    self.failed_puts += 1;
                    return Err(ConnectorError::retriable(format!(
                        "faulty-sink: retriable failure {} of {}",
                        self.failed_puts, self.config.n
                    )));
                }
            }
            SinkMode::Poison => {
                let poison = self.config.poison.as_deref().unwrap_or_default().as_bytes();
                for (index, record) in records.iter().enumerate() {
                    let value = record.value.unwrap_or_default();
                    if value.windows(poison.len()).any(|window| window == poison) {
                        failures.push(RecordFailure::new(
                            index as u32,
                            ConnectorError::fatal("faulty-sink: poisoned record"),
                        ));
                    }
                }
            }
        }
        self.puts += 1;
        self.records += (records.len() - failures.len()) as u64;
        self.context.debug(&format!(
            "faulty-sink accepted {} of {} records",
            records.len() - failures.len(),
            records.len()
        ));
        Ok(failures)
    }
}

weir_connector_sdk::export_sink!(FaultySink);

#[cfg(test)]
mod tests {
    use weir_connector_sdk::DynSinkTask;
    use weir_connector_sdk::batch::SinkBatchWriter;
    use weir_connector_sdk::native::{self, MemoryHost};

    use super::*;

    fn open(config: &str) -> Box<dyn DynSinkTask> {
        native::open_sink::<FaultySink>(config, "null", 0, Box::new(MemoryHost::new())).unwrap()
    }

    fn batch(values: &[&str]) -> Vec<u8> {
        let mut writer = SinkBatchWriter::new();
        for (offset, value) in values.iter().enumerate() {
            writer.push("t", 0, offset as i64, 0, None, Some(value.as_bytes()), std::iter::empty());
        }
        writer.finish()
    }

    #[test]
    fn fails_the_first_n_puts_retriably() {
        let mut task = open(r#"{"topics":"t","mode":"fail-retriable-n","n":2}"#);
        assert!(task.put(&batch(&["a"])).unwrap_err().is_retriable());
        assert!(task.put(&batch(&["a"])).unwrap_err().is_retriable());
        assert!(task.put(&batch(&["a"])).unwrap().is_empty());
    }

    #[test]
    fn reports_poisoned_records_by_index() {
        let mut task = open(r#"{"topics":"t","mode":"poison","poison":"BAD"}"#);
        let failures = task.put(&batch(&["fine", "so BAD", "ok", "BAD"])).unwrap();
        assert_eq!(failures.iter().map(|failure| failure.index).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    #[should_panic(expected = "trap requested")]
    fn traps_after_the_given_puts() {
        let mut task = open(r#"{"topics":"t","mode":"trap","after":1}"#);
        task.put(&batch(&["a"])).unwrap();
        let _ = task.put(&batch(&["a"]));
    }

    #[test]
    fn poison_mode_needs_the_text() {
        let errors = native::sink_connector::<FaultySink>().validate(r#"{"topics":"t","mode":"poison"}"#).unwrap_err();
        assert_eq!(errors[0].field, "poison");
    }
}
