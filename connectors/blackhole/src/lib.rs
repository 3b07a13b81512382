//! `blackhole`: a sink that discards every record, counting records and bytes, and logs the
//! totals when it closes. It measures the runtime, not a target system.

use weir_connector_sdk::batch::SinkRecordRef;
use weir_connector_sdk::{Connector, ConnectorError, RecordFailure, Sink, TaskContext};

/// Configuration of the `blackhole` sink.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {
    /// Comma-separated topics to consume (read by the runtime; the sink accepts any record).
    pub topics: String,
    /// Time each `put` takes, in ms (0: none): a sink slower than its source, to see what the
    /// worker does under back-pressure.
    #[serde(default, rename = "put.delay.ms")]
    pub put_delay_ms: u64,
}

/// The `blackhole` sink task.
#[derive(Debug)]
pub struct Blackhole {
    context: TaskContext,
    records: u64,
    /// Key, value and header bytes of every record put.
    bytes: u64,
    delay: std::time::Duration,
}

impl Blackhole {
    /// Records discarded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes (keys, values, header names and values) discarded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Connector for Blackhole {
    type Config = BlackholeConfig;
    const NAME: &'static str = "blackhole";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Discards every record, counting records and bytes.";
}

impl Sink for Blackhole {
    fn open(config: BlackholeConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        Ok(Self { context, records: 0, bytes: 0, delay: std::time::Duration::from_millis(config.put_delay_ms) })
    }

    fn put(&mut self, records: &[SinkRecordRef<'_>]) -> Result<Vec<RecordFailure>, ConnectorError> {
        if !self.delay.is_zero() {
            #[allow(
                clippy::disallowed_methods,
                reason = "the slow-sink mode exists to be slow; a component call runs on its own store, and its deadline bounds it"
            )]
            std::thread::sleep(self.delay);
        }
        for record in records {
            let headers: usize =
                record.headers.iter().map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len)).sum();
            let size = record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len) + headers;
            self.bytes += size as u64;
        }
        self.records += records.len() as u64;
        Ok(Vec::new())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        self.context.info(&format!("blackhole discarded {} records, {} bytes", self.records, self.bytes));
        Ok(())
    }
}

weir_connector_sdk::export_sink!(Blackhole);

#[cfg(test)]
mod tests {
    use weir_connector_sdk::Level;
    use weir_connector_sdk::batch::SinkBatchWriter;
    use weir_connector_sdk::native::{self, MemoryHost};

    use super::*;

    #[test]
    fn counts_records_and_bytes_and_logs_totals_on_close() {
        let host = MemoryHost::new();
        let config = r#"{"topics":"orders"}"#;
        let mut task = native::open_sink::<Blackhole>(config, "null", 0, Box::new(host.clone())).unwrap();
        let mut batch = SinkBatchWriter::new();
        batch.push("orders", 0, 0, 1, Some(b"k1"), Some(b"value"), std::iter::empty());
        batch.push("orders", 0, 1, 1, None, None, [("h", Some(&b"xyz"[..]))].into_iter());
        assert!(task.put(&batch.finish()).unwrap().is_empty());
        task.flush().unwrap();
        task.close().unwrap();
        assert_eq!(host.logs(), vec![(Level::Info, "blackhole discarded 2 records, 11 bytes".to_owned())]);
    }

    #[test]
    fn spec_names_the_plugin() {
        let spec = native::sink_connector::<Blackhole>().spec();
        assert_eq!(spec.name, "blackhole");
        assert_eq!(spec.kind, weir_connector_sdk::Kind::Sink);
        let schema: serde_json::Value = serde_json::from_str(&spec.config_schema).unwrap();
        assert!(schema["properties"]["topics"]["description"].is_string());
    }
}
