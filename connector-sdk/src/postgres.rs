//! Postgres for connectors (sources and sinks): the guest side of the WIT `postgres` import.
//!
//! The host opens the connections (only to servers the manifest grants under
//! `grants.postgres`), runs SQL, creates logical replication slots and streams their raw
//! `pgoutput` messages; the connector decodes them. Every call returns within the task's call
//! deadline. Natively (a connector compiled into the host, or a unit test) there is no host to
//! ask: every call returns [`PgError::Usage`] saying so.

use crate::types::ConnectorError;

/// Where to connect. `host` may be a Unix socket directory (starting with `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
}

/// Why a Postgres call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgError {
    /// The manifest grants no such connection (nothing reached the network).
    NotGranted(String),
    /// The connection failed or dropped: retriable after a reconnect.
    Connection(String),
    /// The server refused the statement.
    Server(String),
    /// The calls came in an order that cannot work, or there is no host (natively).
    Usage(String),
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::NotGranted(message) => write!(f, "not granted: {message}"),
            PgError::Connection(message) => write!(f, "connection: {message}"),
            PgError::Server(message) => write!(f, "server: {message}"),
            PgError::Usage(message) => write!(f, "usage: {message}"),
        }
    }
}

impl std::error::Error for PgError {}

impl PgError {
    /// Whether retrying (after reconnecting) may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, PgError::Connection(_))
    }

    /// A connection problem is retriable; everything else fails the task.
    pub fn into_connector_error(self, context: &str) -> ConnectorError {
        if self.is_retriable() {
            ConnectorError::Retriable(format!("{context}: {self}"))
        } else {
            ConnectorError::Fatal(format!("{context}: {self}"))
        }
    }
}

/// A slot just created, with its exported snapshot (already imported by the SQL session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotCreated {
    pub consistent_point: u64,
    pub snapshot_name: String,
}

/// One replication event. LSNs are plain `u64`s; times are microseconds since 2000-01-01.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalEvent {
    Begin {
        final_lsn: u64,
        xid: u32,
        commit_time_micros: i64,
    },
    /// One raw pgoutput message (Relation, Insert, Update, Delete, Truncate, Type, Origin).
    Change {
        lsn: u64,
        data: Vec<u8>,
    },
    Commit {
        lsn: u64,
        end_lsn: u64,
        commit_time_micros: i64,
    },
    Message {
        lsn: u64,
        transactional: bool,
        prefix: String,
        content: Vec<u8>,
    },
    Keepalive {
        wal_end: u64,
    },
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{ConnectOptions, PgError, SlotCreated, WalEvent};
    use crate::__bindings::sink::weir::connector::postgres as wit;

    fn error(error: wit::PgError) -> PgError {
        match error {
            wit::PgError::NotGranted(message) => PgError::NotGranted(message),
            wit::PgError::Connection(message) => PgError::Connection(message),
            wit::PgError::Server(message) => PgError::Server(message),
            wit::PgError::Usage(message) => PgError::Usage(message),
        }
    }

    pub(super) fn connect(options: &ConnectOptions) -> Result<(), PgError> {
        wit::connect(&wit::ConnectOptions {
            host: options.host.clone(),
            port: options.port,
            database: options.database.clone(),
            user: options.user.clone(),
            password: options.password.clone(),
        })
        .map_err(error)
    }

    pub(super) fn query(sql: &str) -> Result<String, PgError> {
        wit::query(sql).map_err(error)
    }

    pub(super) fn copy_in(sql: &str, data: &[u8]) -> Result<u64, PgError> {
        wit::copy_in(sql, data).map_err(error)
    }

    pub(super) fn create_slot_with_snapshot(slot: &str, publication: &str) -> Result<SlotCreated, PgError> {
        let created = wit::create_slot_with_snapshot(slot, publication).map_err(error)?;
        Ok(SlotCreated { consistent_point: created.consistent_point, snapshot_name: created.snapshot_name })
    }

    pub(super) fn start_replication(slot: &str, publication: &str, start_lsn: u64) -> Result<(), PgError> {
        wit::start_replication(slot, publication, start_lsn).map_err(error)
    }

    pub(super) fn read(max: u32, wait_ms: u32) -> Result<Vec<WalEvent>, PgError> {
        let events = wit::read(max, wait_ms).map_err(error)?;
        Ok(events
            .into_iter()
            .map(|event| match event {
                wit::WalEvent::Begin(begin) => WalEvent::Begin {
                    final_lsn: begin.final_lsn,
                    xid: begin.xid,
                    commit_time_micros: begin.commit_time_micros,
                },
                wit::WalEvent::Change(change) => WalEvent::Change { lsn: change.lsn, data: change.data },
                wit::WalEvent::Commit(commit) => WalEvent::Commit {
                    lsn: commit.lsn,
                    end_lsn: commit.end_lsn,
                    commit_time_micros: commit.commit_time_micros,
                },
                wit::WalEvent::Message(message) => WalEvent::Message {
                    lsn: message.lsn,
                    transactional: message.transactional,
                    prefix: message.prefix,
                    content: message.content,
                },
                wit::WalEvent::Keepalive(wal_end) => WalEvent::Keepalive { wal_end },
            })
            .collect())
    }

    pub(super) fn ack(lsn: u64) -> Result<(), PgError> {
        wit::ack(lsn).map_err(error)
    }

    pub(super) fn stop_replication() {
        wit::stop_replication();
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{ConnectOptions, PgError, SlotCreated, WalEvent};

    fn unavailable<T>() -> Result<T, PgError> {
        Err(PgError::Usage("the postgres capability is unavailable natively (only in a component)".into()))
    }

    pub(super) fn connect(_options: &ConnectOptions) -> Result<(), PgError> {
        unavailable()
    }
    pub(super) fn query(_sql: &str) -> Result<String, PgError> {
        unavailable()
    }
    pub(super) fn copy_in(_sql: &str, _data: &[u8]) -> Result<u64, PgError> {
        unavailable()
    }
    pub(super) fn create_slot_with_snapshot(_slot: &str, _publication: &str) -> Result<SlotCreated, PgError> {
        unavailable()
    }
    pub(super) fn start_replication(_slot: &str, _publication: &str, _start_lsn: u64) -> Result<(), PgError> {
        unavailable()
    }
    pub(super) fn read(_max: u32, _wait_ms: u32) -> Result<Vec<WalEvent>, PgError> {
        unavailable()
    }
    pub(super) fn ack(_lsn: u64) -> Result<(), PgError> {
        unavailable()
    }
    pub(super) fn stop_replication() {}
}

/// Open the task's SQL session (kept when already open with the same options).
///
/// # Errors
/// [`PgError::NotGranted`] when the manifest does not grant this server and database.
pub fn connect(options: &ConnectOptions) -> Result<(), PgError> {
    imp::connect(options)
}

/// Run SQL (several statements allowed); the rows of the last row-returning statement as a JSON
/// array of objects whose values are the columns' text forms (or null).
///
/// # Errors
/// When the statement fails or the session is gone.
pub fn query(sql: &str) -> Result<String, PgError> {
    imp::query(sql)
}

/// Run one `COPY ... FROM STDIN` statement with `data` as its input (text format unless the
/// statement says otherwise), inside the session's open transaction; the rows copied.
///
/// # Errors
/// When the statement or a row of `data` fails, or the session is gone.
pub fn copy_in(sql: &str, data: &[u8]) -> Result<u64, PgError> {
    imp::copy_in(sql, data)
}

/// [`query`], parsed.
///
/// # Errors
/// As [`query`].
pub fn query_rows(sql: &str) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, PgError> {
    let text = imp::query(sql)?;
    serde_json::from_str(&text)
        .map_err(|error| PgError::Usage(format!("the host returned rows that are not JSON: {error}")))
}

/// Create a pgoutput slot with an exported snapshot, which the SQL session imports in a
/// `REPEATABLE READ` transaction (end it with `query("COMMIT")`).
///
/// # Errors
/// When the slot exists or cannot be created.
pub fn create_slot_with_snapshot(slot: &str, publication: &str) -> Result<SlotCreated, PgError> {
    imp::create_slot_with_snapshot(slot, publication)
}

/// Start streaming `slot` from `start_lsn` (0: the slot's confirmed position).
///
/// # Errors
/// When the slot is missing or held by another session.
pub fn start_replication(slot: &str, publication: &str, start_lsn: u64) -> Result<(), PgError> {
    imp::start_replication(slot, publication, start_lsn)
}

/// Up to `max` events, waiting at most `wait_ms` for the first.
///
/// # Errors
/// When the stream broke ([`PgError::Connection`]: start again).
pub fn read(max: u32, wait_ms: u32) -> Result<Vec<WalEvent>, PgError> {
    imp::read(max, wait_ms)
}

/// Report everything up to `lsn` as durable. Irreversible: call it only from `commit`.
///
/// # Errors
/// When there is no replication session.
pub fn ack(lsn: u64) -> Result<(), PgError> {
    imp::ack(lsn)
}

/// Close the replication session (the slot stays).
pub fn stop_replication() {
    imp::stop_replication();
}

/// An LSN in Postgres' text form (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Parse an LSN in Postgres' text form.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
    }

    #[test]
    fn natively_unavailable() {
        assert!(matches!(query("SELECT 1"), Err(PgError::Usage(_))));
    }
}
