//! Signals for a source connector's tasks (`POST /connectors/{name}/signals`), queued in the
//! connector's `state`: `signals.<n>` holds signal `n`, `signals.next` the next number (the
//! herder's, written under its change lock), and `signals.consumed` the first one the tasks have
//! not durably applied (the tasks'). The task side is the connector's (postgres-cdc's
//! `signal.rs`).

use weir_connector_sdk::Kind;

use super::HerderError;
use super::standalone::StandaloneHerder;

/// State key of the next signal number.
const NEXT_KEY: &str = "signals.next";
/// State key of the first signal the tasks have not durably applied.
const CONSUMED_KEY: &str = "signals.consumed";

fn number(bytes: Option<Vec<u8>>) -> u64 {
    bytes.and_then(|bytes| String::from_utf8(bytes).ok()).and_then(|text| text.parse().ok()).unwrap_or(0)
}

impl StandaloneHerder {
    pub(super) async fn signal_locked(&self, name: &str, signal: &serde_json::Value) -> Result<u64, HerderError> {
        let kind =
            self.connectors_map().get(name).map(|connector| connector.kind).ok_or_else(|| Self::not_found(name))?;
        if kind != Kind::Source {
            return Err(HerderError::NotASource { name: name.to_owned() });
        }
        let state = self.inner.supervisor.state_store();
        // Never below what the tasks consumed: a queue whose counter was lost starts after it.
        let sequence = number(state.get(name, NEXT_KEY)).max(number(state.get(name, CONSUMED_KEY)));
        let generation = self.inner.supervisor.generation();
        let value = serde_json::to_vec(signal).expect("JSON serializes");
        state
            .set(name, &format!("signals.{sequence}"), Some(&value), generation)
            .await
            .map_err(HerderError::log("storing a signal"))?;
        state
            .set(name, NEXT_KEY, Some((sequence + 1).to_string().as_bytes()), generation)
            .await
            .map_err(HerderError::log("storing a signal"))?;
        tracing::info!(connector = name, sequence, "signal queued");
        Ok(sequence)
    }
}
