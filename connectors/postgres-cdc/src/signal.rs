//! Signals, in Debezium's shape: `{id, type, data}` with `data` a JSON object. Two channels:
//!
//! - **the signal table** (`signal.data.collection`, Debezium's "source" channel): a row inserted
//!   into it, seen in the replication stream, so a signal takes effect at its place in commit
//!   order. A signal replayed after a restart is skipped when the committed position is past it,
//!   as any streamed change.
//! - **weir's REST API** (`POST /connectors/{name}/signals`): the worker queues the signal in
//!   the connector's `state` as `signals.<n>` and raises `signals.next`; the task reads them in
//!   order and keeps `signals.consumed`, which it raises only once a record handed over after
//!   the signal took effect is committed (that record's position carries the effect). A crash
//!   before that applies the signal again, which is harmless: applying a signal twice is the
//!   same as once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::catalog::Table;
use crate::pgoutput::TupleValue;
use crate::position::{Position, mark};
use crate::source::PostgresCdc;

/// State key of the first REST signal not yet durably applied (the task's).
pub(crate) const CONSUMED_KEY: &str = "signals.consumed";
/// How often the task looks for a REST signal.
const REST_INTERVAL: Duration = Duration::from_millis(200);

/// A signal, as Debezium's signal table holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signal {
    pub(crate) id: String,
    pub(crate) kind: String,
    /// The `data` column as JSON (`null` when empty).
    pub(crate) data: Value,
}

/// What a signal asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start (or extend) an incremental snapshot of the tables these patterns match.
    Execute {
        collections: Vec<String>,
    },
    /// Stop the incremental snapshot of these tables (all of them when empty).
    Stop {
        collections: Vec<String>,
    },
    Pause,
    Resume,
    /// Debezium's `log` signal: write the message into the worker's log.
    Log(String),
}

/// `schema.table` split at its first dot; `None` unless both parts are non-empty.
pub(crate) fn split_collection(collection: &str) -> Option<(&str, &str)> {
    collection.split_once('.').filter(|(schema, table)| !schema.is_empty() && !table.is_empty())
}

impl Signal {
    /// A signal table row: its `id`, `type` and `data` columns' text.
    ///
    /// # Errors
    /// A missing id or type, or `data` that is not a JSON object.
    pub(crate) fn from_row(id: Option<String>, kind: Option<String>, data: Option<String>) -> Result<Self, String> {
        let id = id.filter(|id| !id.is_empty()).ok_or("the `id` column is empty")?;
        let kind =
            kind.filter(|kind| !kind.is_empty()).ok_or_else(|| format!("signal {id}: the `type` column is empty"))?;
        let data = match data.as_deref().map(str::trim) {
            None | Some("") => Value::Null,
            Some(text) => serde_json::from_str(text)
                .map_err(|error| format!("signal {id}: the `data` column is not JSON ({error}): {text}"))?,
        };
        Ok(Signal { id, kind, data })
    }

    /// A REST signal as the worker stored it: `{"id", "type", "data"}`, `data` an object or a
    /// string holding one.
    ///
    /// # Errors
    /// When it is not that shape.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let data = match value.get("data") {
            Some(Value::String(text)) => Some(text.clone()),
            None | Some(Value::Null) => None,
            Some(other) => Some(other.to_string()),
        };
        Signal::from_row(text("id"), text("type"), data)
    }

    /// What the signal asks for.
    ///
    /// # Errors
    /// An unknown type, or data Debezium would refuse (or that weir does not support yet),
    /// saying which.
    pub(crate) fn action(&self) -> Result<Action, String> {
        let id = &self.id;
        if !matches!(self.data, Value::Null | Value::Object(_)) {
            return Err(format!("signal {id}: `data` must be a JSON object, not {}", self.data));
        }
        let snapshot_type = self.data.get("type").and_then(Value::as_str).unwrap_or("incremental");
        let collections = || -> Result<Vec<String>, String> {
            match self.data.get("data-collections") {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("signal {id}: `data-collections` must hold strings, not {item}"))
                    })
                    .collect(),
                Some(other) => Err(format!("signal {id}: `data-collections` must be an array, not {other}")),
            }
        };
        let incremental_only = |what: &str| {
            if snapshot_type.eq_ignore_ascii_case("incremental") {
                Ok(())
            } else {
                Err(format!(
                    "signal {id}: {what} of type `{snapshot_type}` is not supported: only `incremental` snapshots"
                ))
            }
        };
        match self.kind.as_str() {
            "execute-snapshot" => {
                incremental_only("execute-snapshot")?;
                for unsupported in ["additional-conditions", "additional-condition", "surrogate-key"] {
                    if self
                        .data
                        .get(unsupported)
                        .is_some_and(|value| !value.is_null() && value != &Value::Array(vec![]))
                    {
                        return Err(format!("signal {id}: `{unsupported}` is not supported yet"));
                    }
                }
                let collections = collections()?;
                if collections.is_empty() {
                    return Err(format!("signal {id}: execute-snapshot needs a non-empty `data-collections`"));
                }
                for pattern in &collections {
                    regex_lite::Regex::new(pattern)
                        .map_err(|error| format!("signal {id}: `{pattern}` is not a regular expression: {error}"))?;
                }
                Ok(Action::Execute { collections })
            }
            "stop-snapshot" => {
                incremental_only("stop-snapshot")?;
                Ok(Action::Stop { collections: collections()? })
            }
            "pause-snapshot" => Ok(Action::Pause),
            "resume-snapshot" => Ok(Action::Resume),
            "log" => Ok(Action::Log(self.data.get("message").and_then(Value::as_str).unwrap_or_default().to_owned())),
            other => Err(format!(
                "signal {id}: unknown type `{other}` (execute-snapshot, stop-snapshot, pause-snapshot, resume-snapshot, log)"
            )),
        }
    }
}

/// The REST channel's place in the task.
#[derive(Debug, Default)]
pub(crate) struct RestSignals {
    /// The next `signals.<n>` to read.
    pub(crate) next: u64,
    /// Durable: every signal below it took effect in a committed position.
    pub(crate) consumed: u64,
    /// Signals applied but not yet durable: (the `consumed` value once durable, the mark of the
    /// last record handed over before the signal took effect).
    pub(crate) awaiting: VecDeque<(u64, (u64, u64))>,
    pub(crate) next_check: Option<Instant>,
}

impl PostgresCdc {
    /// A change of relation `table`: a signal when it is an insert into the signal table.
    /// `seq` is the position the next record of the open transaction takes.
    pub(crate) fn signal_row(&mut self, table: &Table, tuple: &[TupleValue], commit_lsn: u64, seq: u64) {
        let Some(collection) = self.config.signal_data_collection.as_deref() else { return };
        if *table.data_collection != *collection {
            return;
        }
        // Replayed after a restart and already durable in its effect.
        if self.skipped(&Position { commit_lsn, seq, ..Position::default() }) {
            return;
        }
        let column = |name: &str| {
            let index = table.columns.iter().position(|column| column.name == name)?;
            match tuple.get(index) {
                Some(TupleValue::Text(text)) => Some(text.clone()),
                Some(TupleValue::Binary(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            }
        };
        match Signal::from_row(column("id"), column("type"), column("data")) {
            Ok(signal) => self.apply_signal(&signal, "the signal table"),
            Err(error) => self.context.warn(&format!("a row of signal table {collection} ignored: {error}")),
        }
    }

    /// Read the REST signals queued since the last look (every [`REST_INTERVAL`]).
    pub(crate) fn poll_rest_signals(&mut self) {
        let now = Instant::now();
        if self.rest.next_check.is_some_and(|next| now < next) {
            return;
        }
        self.rest.next_check = Some(now + REST_INTERVAL);
        for _ in 0..16 {
            let key = format!("signals.{}", self.rest.next);
            let Some(bytes) = self.context.host().state_get(&key) else { break };
            match Signal::from_json(&bytes) {
                Ok(signal) => self.apply_signal(&signal, "the REST API"),
                Err(error) => self.context.warn(&format!("REST signal {key} ignored: {error}")),
            }
            self.rest.next += 1;
            self.rest.awaiting.push_back((self.rest.next, self.released_mark));
        }
    }

    /// Positions were committed: REST signals whose effect they carry are consumed.
    pub(crate) fn commit_rest_signals(&mut self, positions: &[Position]) {
        let Some(newest) = positions.iter().map(mark).max() else { return };
        let mut consumed = self.rest.consumed;
        while let Some((next, _)) = self.rest.awaiting.front().filter(|(_, before)| newest > *before) {
            consumed = *next;
            self.rest.awaiting.pop_front();
        }
        if consumed > self.rest.consumed {
            self.context.host().state_set(CONSUMED_KEY, consumed.to_string().as_bytes());
            for done in self.rest.consumed..consumed {
                self.context.host().state_delete(&format!("signals.{done}"));
            }
            self.rest.consumed = consumed;
        }
    }

    /// The REST channel from what the state holds: everything not durably consumed is read again.
    pub(crate) fn restart_rest_signals(&mut self) {
        let consumed = self
            .context
            .host()
            .state_get(CONSUMED_KEY)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        self.rest = RestSignals { next: consumed, consumed, ..RestSignals::default() };
    }

    pub(crate) fn apply_signal(&mut self, signal: &Signal, channel: &str) {
        let action = match signal.action() {
            Ok(action) => action,
            Err(error) => {
                self.context.warn(&format!("signal from {channel} ignored: {error}"));
                return;
            }
        };
        self.context.info(&format!("signal {} ({}) from {channel}", signal.id, signal.kind));
        match action {
            Action::Execute { collections } => self.execute_snapshot(&signal.id, &collections),
            Action::Stop { collections } => self.stop_snapshot(&collections),
            Action::Pause => self.pause_snapshot(true),
            Action::Resume => self.pause_snapshot(false),
            Action::Log(message) => self.context.info(&format!("signal {}: {message}", signal.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(kind: &str, data: &str) -> Signal {
        Signal::from_row(Some("s1".into()), Some(kind.into()), Some(data.into())).expect("a signal")
    }

    #[test]
    fn debeziums_signals_parse_into_actions() {
        let execute =
            row("execute-snapshot", r#"{"data-collections": ["public.t", "inv\\..*"], "type": "incremental"}"#);
        assert_eq!(execute.action(), Ok(Action::Execute { collections: vec!["public.t".into(), "inv\\..*".into()] }));
        // Debezium's default type is incremental.
        assert!(matches!(
            row("execute-snapshot", r#"{"data-collections": ["a.b"]}"#).action(),
            Ok(Action::Execute { .. })
        ));
        assert_eq!(
            row("stop-snapshot", r#"{"type": "incremental"}"#).action(),
            Ok(Action::Stop { collections: vec![] })
        );
        assert_eq!(
            row("stop-snapshot", r#"{"data-collections": ["public.t"], "type": "INCREMENTAL"}"#).action(),
            Ok(Action::Stop { collections: vec!["public.t".into()] })
        );
        assert_eq!(row("pause-snapshot", "").action(), Ok(Action::Pause));
        assert_eq!(row("resume-snapshot", r#"{"type": "incremental"}"#).action(), Ok(Action::Resume));
        assert_eq!(row("log", r#"{"message": "hello"}"#).action(), Ok(Action::Log("hello".into())));
    }

    #[test]
    fn bad_signals_say_what_is_wrong() {
        let error = |signal: Signal| signal.action().expect_err("refused");
        assert!(error(row("execute-snapshot", r#"{"data-collections": []}"#)).contains("non-empty"));
        assert!(error(row("execute-snapshot", r#"{"data-collections": "public.t"}"#)).contains("must be an array"));
        assert!(
            error(row("execute-snapshot", r#"{"data-collections": ["a.b"], "type": "blocking"}"#)).contains("blocking")
        );
        assert!(error(row("execute-snapshot", r#"{"data-collections": ["(a"]}"#)).contains("regular expression"));
        assert!(
            error(row("execute-snapshot", r#"{"data-collections": ["a.b"], "additional-conditions": [{"x": 1}]}"#))
                .contains("additional-conditions")
        );
        assert!(error(row("snapshot-now", "{}")).contains("unknown type `snapshot-now`"));
        assert!(error(row("execute-snapshot", "[1]")).contains("JSON object"));
        let not_json = Signal::from_row(Some("s2".into()), Some("log".into()), Some("{".into())).expect_err("refused");
        assert!(not_json.contains("signal s2") && not_json.contains("not JSON"), "{not_json}");
        assert!(Signal::from_row(None, Some("log".into()), None).expect_err("refused").contains("`id`"));
    }

    #[test]
    fn rest_signals_take_data_as_an_object_or_a_string() {
        let object = json!({"id": "r1", "type": "execute-snapshot", "data": {"data-collections": ["public.t"]}});
        let string = json!({"id": "r1", "type": "execute-snapshot", "data": "{\"data-collections\": [\"public.t\"]}"});
        let parsed = Signal::from_json(object.to_string().as_bytes()).expect("a signal");
        assert_eq!(parsed, Signal::from_json(string.to_string().as_bytes()).expect("a signal"));
        assert_eq!(parsed.action(), Ok(Action::Execute { collections: vec!["public.t".into()] }));
        assert!(Signal::from_json(b"[]").is_err());
    }

    #[test]
    fn collections_split_at_the_first_dot() {
        assert_eq!(split_collection("public.debezium_signal"), Some(("public", "debezium_signal")));
        assert_eq!(split_collection("s.t.u"), Some(("s", "t.u")));
        assert_eq!(split_collection("nodot"), None);
        assert_eq!(split_collection(".t"), None);
    }
}
