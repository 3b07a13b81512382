//! `faulty`: a test source that misbehaves on request, to exercise the runtime's handling of
//! crashed, runaway and failing tasks. Not shipped in the binary.
//!
//! It polls normally (small records, like `datagen`) until `after` polls have succeeded, then
//! does what `mode` says: trap (panic, which aborts the component), loop forever, allocate
//! without bound, or return a fatal or retriable error from every poll.

use weir_connector_sdk::batch::{SourceBatchWriter, SourceRecordRef};
use weir_connector_sdk::{Connector, ConnectorError, Source, TaskContext};

/// Records per successful poll (fewer if `max` is smaller).
const RECORDS_PER_POLL: u32 = 10;

/// Configuration of the `faulty` test source.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultyConfig {
    /// Topic the records go to.
    pub topic: String,
    /// What to do once `after` polls have succeeded.
    #[serde(default)]
    pub mode: Mode,
    /// Polls that succeed before the task misbehaves.
    #[serde(default)]
    pub after: u32,
    /// `trap-on-start`: how many starts of the task trap before one succeeds (counted in the
    /// connector's state, so across restarts).
    #[serde(default)]
    pub starts: u32,
}

/// How the task misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Never: every poll emits records.
    #[default]
    Ok,
    /// Panic, which aborts the component: the runtime sees a trap.
    Trap,
    /// Spin forever: the runtime's per-call deadline must stop it.
    Loop,
    /// Allocate and touch 1 MiB after 1 MiB without end: the memory limit must stop it.
    Oom,
    /// Return a fatal error from every poll.
    FailFatal,
    /// Return a retriable error from every poll.
    FailRetriable,
    /// Emit every record whose number ends in 3 for partition 1000000, which no topic has: the
    /// runtime cannot write it (a source-side failure for its dead-letter topic).
    Misroute,
    /// Trap while opening, on the first `starts` starts; then run as `ok`.
    TrapOnStart,
    /// Emit every record whose number ends in 7 with a value that is not JSON (`not json <n>`),
    /// which a transform that edits JSON values cannot handle.
    PoisonValues,
    /// Look at the environment, and emit what it saw as each record's value:
    /// `{"env":<variables seen>}`.
    Snoop,
}

/// The `faulty` source task. Partition `{"task":<id>}`, position `{"n":<n>}`; resumes after its
/// committed `n`.
#[derive(Debug)]
pub struct Faulty {
    context: TaskContext,
    topic: String,
    mode: Mode,
    after: u32,
    polls: u32,
    next: u64,
    partition: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Position {
    n: u64,
}

impl Connector for Faulty {
    type Config = FaultyConfig;
    const NAME: &'static str = "faulty";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Test source that traps, loops, exhausts memory or fails on request.";
}

impl Source for Faulty {
    fn open(config: FaultyConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        let partition = format!("{{\"task\":{}}}", context.task_id).into_bytes();
        let next = match context.committed_position(&partition) {
            None => 0,
            Some(position) => {
                serde_json::from_slice::<Position>(&position)
                    .map_err(|error| ConnectorError::fatal(format!("committed position: {error}")))?
                    .n
                    + 1
            }
        };
        if config.mode == Mode::TrapOnStart {
            let key = format!("starts-{}", context.task_id);
            let started = context
                .host()
                .state_get(&key)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            context.host().state_set(&key, started.to_string().as_bytes());
            if started <= config.starts {
                panic!("faulty: trap requested on start {started} of the first {}", config.starts);
            }
        }
        Ok(Self { context, topic: config.topic, mode: config.mode, after: config.after, polls: 0, next, partition })
    }

    fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
        if self.polls >= self.after {
            match self.mode {
                Mode::Ok | Mode::Misroute | Mode::TrapOnStart | Mode::PoisonValues | Mode::Snoop => {}
                Mode::Trap => panic!("faulty: trap requested after {} polls", self.polls),
                Mode::Loop => spin(),
                Mode::Oom => exhaust_memory(),
                Mode::FailFatal => {
                    return Err(ConnectorError::fatal("faulty: fatal error requested"));
                }
                Mode::FailRetriable => {
                    return Err(ConnectorError::retriable("faulty: retriable error requested"));
                }
            }
        }
        for _ in 0..max.min(RECORDS_PER_POLL) {
            let key = self.next.to_string();
            let value = format!("{{\"n\":{}}}", self.next);
            let misrouted = self.mode == Mode::Misroute && self.next % 10 == 3;
            let poisoned = match self.mode {
                Mode::PoisonValues if self.next % 10 == 7 => Some(format!("not json {}", self.next)),
                Mode::Snoop => Some(snoop()),
                _ => None,
            };
            batch.push(&SourceRecordRef {
                topic: &self.topic,
                partition: if misrouted { 1_000_000 } else { -1 },
                timestamp: None,
                key: Some(key.as_bytes()),
                value: Some(poisoned.as_deref().unwrap_or(&value).as_bytes()),
                headers: &[],
                source_partition: &self.partition,
                source_position: value.as_bytes(),
            });
            self.next += 1;
        }
        self.polls += 1;
        self.context.trace("faulty: poll succeeded");
        Ok(())
    }
}

fn snoop() -> String {
    serde_json::json!({ "env": std::env::vars_os().count() }).to_string()
}

fn spin() -> ! {
    let mut spins = 0u64;
    loop {
        spins = core::hint::black_box(spins.wrapping_add(1));
    }
}

fn exhaust_memory() -> ! {
    let mut hog: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        // Touch every page, so the memory is really used, not merely reserved.
        for page in chunk.chunks_mut(4096) {
            page[0] = 1;
        }
        hog.push(core::hint::black_box(chunk));
    }
}

weir_connector_sdk::export_source!(Faulty);

#[cfg(test)]
mod tests {
    use weir_connector_sdk::batch::SourceBatchReader;
    use weir_connector_sdk::native::{self, MemoryHost};
    use weir_connector_sdk::{DynSourceTask, SourceOffset};

    use super::*;

    fn open(config: &str, host: MemoryHost) -> Box<dyn DynSourceTask> {
        native::open_source::<Faulty>(config, "null", 0, Box::new(host)).unwrap()
    }

    fn count(batch: &[u8]) -> usize {
        SourceBatchReader::new(batch).unwrap().map(Result::unwrap).count()
    }

    #[test]
    fn ok_mode_emits_records() {
        let mut task = open(r#"{"topic":"t"}"#, MemoryHost::new());
        assert_eq!(count(&task.poll(100).unwrap()), 10);
        assert_eq!(count(&task.poll(3).unwrap()), 3);
    }

    #[test]
    fn fails_after_the_given_polls() {
        let mut task = open(r#"{"topic":"t","mode":"fail-fatal","after":2}"#, MemoryHost::new());
        task.poll(5).unwrap();
        task.poll(5).unwrap();
        assert!(matches!(task.poll(5), Err(ConnectorError::Fatal(_))));
        let mut task = open(r#"{"topic":"t","mode":"fail-retriable"}"#, MemoryHost::new());
        assert!(task.poll(5).unwrap_err().is_retriable());
        assert!(task.poll(5).unwrap_err().is_retriable());
    }

    #[test]
    #[should_panic(expected = "trap requested")]
    fn trap_mode_panics() {
        let mut task = open(r#"{"topic":"t","mode":"trap"}"#, MemoryHost::new());
        let _ = task.poll(5);
    }

    #[test]
    fn resumes_after_the_committed_position() {
        let host = MemoryHost::with_committed(vec![SourceOffset {
            partition: b"{\"task\":0}".to_vec(),
            position: b"{\"n\":41}".to_vec(),
        }]);
        let mut task = open(r#"{"topic":"t"}"#, host);
        let batch = task.poll(1).unwrap();
        let record = SourceBatchReader::new(&batch).unwrap().next().unwrap().unwrap();
        assert_eq!(record.key, Some(&b"42"[..]));
    }

    #[test]
    fn unknown_mode_names_the_field() {
        let errors = native::source_connector::<Faulty>().validate(r#"{"topic":"t","mode":"explode"}"#).unwrap_err();
        assert_eq!(errors[0].field, "mode");
    }
}
