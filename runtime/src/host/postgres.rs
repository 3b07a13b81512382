//! The host side of the `postgres` import: SQL on a tokio-postgres session, logical replication
//! over the streaming replication protocol (pgwire-replication), both only to granted servers.
//!
//! A task has at most one SQL session and one replication session; both die with the task's
//! `Store`. The component never sees a socket: it asks, the host checks the grant, then connects.
//!
//! Every call returns within the task's per-call deadline: `read` waits at most the time it is
//! given (capped at [`MAX_READ_WAIT`]), and the replication stream is buffered by
//! pgwire-replication's worker meanwhile, which keeps answering the server's keepalives.

use std::time::Duration;

use futures::SinkExt as _;
use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use tokio_postgres::SimpleQueryMessage;

use super::bindings::postgres::{self as wit, PgError};
use super::state::TaskState;
use crate::manifest::PostgresGrant;

/// Longest a `read` call waits for the first event, whatever the component asks.
const MAX_READ_WAIT: Duration = Duration::from_millis(1_000);

/// Longest `stop-replication` waits for a graceful close before dropping the session.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Session settings pinned on both sessions: pgoutput and the snapshot send values as text, and
/// their rendering must not depend on the server's or the role's defaults.
const SESSION_OPTIONS: &str = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=iso_8601 -c extra_float_digits=3";

/// The task's Postgres sessions.
#[derive(Default)]
pub(crate) struct PostgresSessions {
    grants: Vec<PostgresGrant>,
    options: Option<wit::ConnectOptions>,
    sql: Option<tokio_postgres::Client>,
    replication: Option<Replication>,
    /// Why the last replication session ended by itself (reported by the next `read`).
    lost: Option<String>,
}

struct Replication {
    client: ReplicationClient,
    /// Created by `create-slot-with-snapshot` and not started yet: the slot it was made for.
    gated_slot: Option<String>,
}

impl std::fmt::Debug for PostgresSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSessions")
            .field("grants", &self.grants)
            .field("sql", &self.sql.is_some())
            .field("replication", &self.replication.is_some())
            .finish()
    }
}

impl PostgresSessions {
    pub(crate) fn new(grants: Vec<PostgresGrant>) -> Self {
        Self { grants, ..Self::default() }
    }

    fn granted(&self, options: &wit::ConnectOptions) -> Result<(), PgError> {
        if self.grants.iter().any(|grant| grant.allows(&options.host, options.port, &options.database)) {
            Ok(())
        } else {
            let message = format!(
                "the manifest grants no Postgres connection to {}:{}/{} (add it under grants.postgres)",
                options.host, options.port, options.database
            );
            tracing::warn!(capability = "postgres", "capability denied: {message}");
            Err(PgError::NotGranted(message))
        }
    }

    fn options(&self) -> Result<&wit::ConnectOptions, PgError> {
        self.options.as_ref().ok_or_else(|| PgError::Usage("call `connect` first".into()))
    }

    fn sql(&self) -> Result<&tokio_postgres::Client, PgError> {
        match &self.sql {
            Some(client) if !client.is_closed() => Ok(client),
            Some(_) => Err(PgError::Connection("the SQL session was closed; connect again".into())),
            None => Err(PgError::Usage("call `connect` first".into())),
        }
    }

    fn replication_config(&self, slot: &str, publication: &str, start: u64) -> Result<ReplicationConfig, PgError> {
        let options = self.options()?;
        Ok(ReplicationConfig::new(
            options.host.clone(),
            options.user.clone(),
            options.password.clone(),
            options.database.clone(),
            slot,
            publication,
        )
        .with_port(options.port)
        .with_tls(TlsConfig::disabled())
        .with_options(SESSION_OPTIONS)
        .with_application_name("weir")
        .with_start_lsn(Lsn::from_u64(start))
        .with_status_interval(Duration::from_millis(500)))
    }
}

fn same_options(a: &wit::ConnectOptions, b: &wit::ConnectOptions) -> bool {
    a.host == b.host && a.port == b.port && a.database == b.database && a.user == b.user && a.password == b.password
}

fn sql_error(error: &tokio_postgres::Error) -> PgError {
    match error.as_db_error() {
        Some(db) => PgError::Server(format!("{}: {} ({})", db.severity(), db.message(), db.code().code())),
        None if error.is_closed() => PgError::Connection(format!("connection closed: {error}")),
        None => PgError::Connection(error.to_string()),
    }
}

/// SQLSTATE `object_in_use`: for a replication slot, "is active for PID n". A task that restarts
/// quickly can find its previous session still holding the slot on the server for a moment.
const SQLSTATE_OBJECT_IN_USE: &str = "SQLSTATE 55006";

fn replication_error(error: &pgwire_replication::PgWireError) -> PgError {
    match error {
        // pgwire-replication renders the server's error with its code: the code, not the
        // prose, decides. Retriable, as the previous session goes away.
        pgwire_replication::PgWireError::Server(message) if message.contains(SQLSTATE_OBJECT_IN_USE) => {
            PgError::Connection(format!("the slot is still held by another session: {message}"))
        }
        pgwire_replication::PgWireError::Server(message) => PgError::Server(message.clone()),
        pgwire_replication::PgWireError::Auth(message) => PgError::Server(format!("authentication failed: {message}")),
        other => PgError::Connection(other.to_string()),
    }
}

/// The rows of the last row-returning statement, as a JSON array of objects of text values.
fn rows_to_json(messages: &[SimpleQueryMessage]) -> String {
    let mut last: Vec<serde_json::Value> = Vec::new();
    let mut current: Vec<serde_json::Value> = Vec::new();
    let mut described = false;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(_) => {
                described = true;
                current.clear();
            }
            SimpleQueryMessage::Row(row) => {
                described = true;
                let mut object = serde_json::Map::with_capacity(row.len());
                for (index, column) in row.columns().iter().enumerate() {
                    let value = row
                        .get(index)
                        .map_or(serde_json::Value::Null, |text| serde_json::Value::String(text.to_owned()));
                    object.insert(column.name().to_owned(), value);
                }
                current.push(serde_json::Value::Object(object));
            }
            SimpleQueryMessage::CommandComplete(_) if described => {
                last = std::mem::take(&mut current);
                described = false;
            }
            _ => {}
        }
    }
    serde_json::Value::Array(last).to_string()
}

impl wit::Host for TaskState {
    async fn connect(&mut self, options: wit::ConnectOptions) -> Result<(), PgError> {
        let sessions = &mut self.postgres;
        sessions.granted(&options)?;
        if sessions.options.as_ref().is_some_and(|open| same_options(open, &options))
            && sessions.sql.as_ref().is_some_and(|client| !client.is_closed())
        {
            return Ok(());
        }
        let mut config = tokio_postgres::Config::new();
        config
            .host(&options.host)
            .port(options.port)
            .dbname(&options.database)
            .user(&options.user)
            .password(options.password.as_bytes())
            .options(SESSION_OPTIONS)
            .application_name("weir")
            .connect_timeout(Duration::from_secs(10));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|error| sql_error(&error))?;
        let connector = self.connector.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(connector = &*connector, %error, "postgres SQL session ended");
            }
        });
        sessions.sql = Some(client);
        sessions.options = Some(options);
        Ok(())
    }

    async fn query(&mut self, sql: String) -> Result<String, PgError> {
        let client = self.postgres.sql()?;
        let messages = client.simple_query(&sql).await.map_err(|error| sql_error(&error))?;
        Ok(rows_to_json(&messages))
    }

    async fn copy_in(&mut self, sql: String, data: Vec<u8>) -> Result<u64, PgError> {
        let client = self.postgres.sql()?;
        let sink = client.copy_in::<_, bytes::Bytes>(sql.as_str()).await.map_err(|error| sql_error(&error))?;
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes::Bytes::from(data)).await.map_err(|error| sql_error(&error))?;
        sink.as_mut().finish().await.map_err(|error| sql_error(&error))
    }

    async fn create_slot_with_snapshot(
        &mut self,
        slot: String,
        publication: String,
    ) -> Result<wit::SlotCreated, PgError> {
        let sessions = &mut self.postgres;
        let config = sessions.replication_config(&slot, &publication, 0)?;
        sessions.sql()?;
        if let Some(mut old) = sessions.replication.take() {
            old.client.abort();
        }
        let mut client = ReplicationClient::connect_gated(config).await.map_err(|error| replication_error(&error))?;
        let quoted = slot.replace('"', "\"\"");
        let rows = client
            .simple_query(&format!("CREATE_REPLICATION_SLOT \"{quoted}\" LOGICAL pgoutput (SNAPSHOT 'export')"))
            .await
            .map_err(|error| replication_error(&error))?;
        // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
        let column = |index: usize| -> Result<String, PgError> {
            rows.first()
                .and_then(|row| row.get(index))
                .and_then(|value| value.as_ref())
                .map(|value| String::from_utf8_lossy(value).into_owned())
                .ok_or_else(|| PgError::Server("CREATE_REPLICATION_SLOT returned no snapshot".into()))
        };
        let consistent_point = column(1)?;
        let snapshot_name = column(2)?;
        let consistent_point = Lsn::parse(&consistent_point)
            .map_err(|error| PgError::Server(format!("bad consistent point {consistent_point}: {error}")))?
            .as_u64();
        // The snapshot lives until the replication session runs its next command: import it now.
        let sql = sessions.sql()?;
        sql.simple_query(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            snapshot_name.replace('\'', "''")
        ))
        .await
        .map_err(|error| sql_error(&error))?;
        sessions.replication = Some(Replication { client, gated_slot: Some(slot) });
        Ok(wit::SlotCreated { consistent_point, snapshot_name })
    }

    async fn start_replication(&mut self, slot: String, publication: String, start_lsn: u64) -> Result<(), PgError> {
        let sessions = &mut self.postgres;
        let reuse =
            sessions.replication.as_ref().is_some_and(|replication| replication.gated_slot.as_deref() == Some(&slot));
        if reuse {
            let replication = sessions.replication.as_mut().expect("checked just above");
            replication.gated_slot = None;
            replication.client.start().await.map_err(|error| replication_error(&error))?;
        } else {
            let config = sessions.replication_config(&slot, &publication, start_lsn)?;
            if let Some(mut old) = sessions.replication.take() {
                old.client.abort();
            }
            let client = ReplicationClient::connect(config).await.map_err(|error| replication_error(&error))?;
            sessions.replication = Some(Replication { client, gated_slot: None });
            sessions.lost = None;
        }
        let replication = sessions.replication.as_mut().expect("set just above");
        let started = tokio::time::timeout(Duration::from_secs(10), replication.client.wait_started()).await;
        match started {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(connector = &*self.connector, %error, "the server did not start replication");
                sessions.replication = None;
                Err(replication_error(&error))
            }
            Err(_) => Err(PgError::Connection("the server did not start replication within 10 s".into())),
        }
    }

    async fn read(&mut self, max: u32, wait_ms: u32) -> Result<Vec<wit::WalEvent>, PgError> {
        let replication = self.postgres.replication.as_mut().filter(|replication| replication.gated_slot.is_none());
        let Some(replication) = replication else {
            return Err(match self.postgres.lost.take() {
                Some(reason) => PgError::Connection(reason),
                None => PgError::Usage("call `start-replication` first".into()),
            });
        };
        let wait = Duration::from_millis(u64::from(wait_ms)).min(MAX_READ_WAIT);
        let max = max.max(1) as usize;
        let mut events = Vec::new();
        // Wait for the first event only; then take what is already buffered. `recv` reads an
        // mpsc channel, so dropping it on timeout loses nothing.
        let first = match tokio::time::timeout(wait, replication.client.recv()).await {
            Err(_) => return Ok(events),
            Ok(result) => result,
        };
        let mut next = Some(first);
        while let Some(result) = next.take() {
            match result {
                Ok(Some(event)) => {
                    if let Some(event) = to_wit_event(event) {
                        events.push(event);
                    }
                }
                Ok(None) => {
                    self.postgres.replication = None;
                    tracing::warn!(connector = &*self.connector, "the replication stream ended");
                    self.postgres.lost = Some("the replication stream ended".into());
                    if events.is_empty() {
                        return Err(PgError::Connection("the replication stream ended".into()));
                    }
                    return Ok(events);
                }
                Err(error) => {
                    self.postgres.replication = None;
                    tracing::warn!(connector = &*self.connector, %error, "the replication stream failed");
                    if events.is_empty() {
                        return Err(replication_error(&error));
                    }
                    self.postgres.lost = Some(format!("the replication stream failed: {error}"));
                    // Hand over what arrived; the next call reports the error.
                    return Ok(events);
                }
            }
            if events.len() >= max {
                break;
            }
            let replication = self.postgres.replication.as_mut().expect("still open");
            // `unconstrained`: tokio's cooperative budget would otherwise make `recv` report
            // "not ready" after ~128 items in one task poll, capping a batch far below `max`.
            next = futures::FutureExt::now_or_never(tokio::task::unconstrained(replication.client.recv()));
        }
        Ok(events)
    }

    async fn ack(&mut self, lsn: u64) -> Result<(), PgError> {
        let replication = self
            .postgres
            .replication
            .as_ref()
            .ok_or_else(|| PgError::Connection("no replication session to acknowledge on".into()))?;
        replication.client.update_applied_lsn(Lsn::from_u64(lsn));
        Ok(())
    }

    async fn stop_replication(&mut self) {
        let Some(mut replication) = self.postgres.replication.take() else { return };
        // A gated session never started: its worker waits for the gate, and a graceful
        // shutdown would wait for it forever (a host call is beyond the guest's epoch deadline).
        if replication.gated_slot.is_some() {
            replication.client.abort();
            return;
        }
        match tokio::time::timeout(STOP_WAIT, replication.client.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(connector = &*self.connector, %error, "closing the replication session failed");
            }
            Err(_) => {
                tracing::debug!(connector = &*self.connector, "the replication session did not close in time");
                replication.client.abort();
            }
        }
    }
}

fn to_wit_event(event: ReplicationEvent) -> Option<wit::WalEvent> {
    Some(match event {
        ReplicationEvent::KeepAlive { wal_end, .. } => wit::WalEvent::Keepalive(wal_end.as_u64()),
        ReplicationEvent::Begin { final_lsn, xid, commit_time_micros } => {
            wit::WalEvent::Begin(wit::WalBegin { final_lsn: final_lsn.as_u64(), xid, commit_time_micros })
        }
        ReplicationEvent::XLogData { wal_start, data, .. } => {
            wit::WalEvent::Change(wit::WalChange { lsn: wal_start.as_u64(), data: data.to_vec() })
        }
        ReplicationEvent::Commit { lsn, end_lsn, commit_time_micros } => {
            wit::WalEvent::Commit(wit::WalCommit { lsn: lsn.as_u64(), end_lsn: end_lsn.as_u64(), commit_time_micros })
        }
        ReplicationEvent::Message { transactional, lsn, prefix, content } => wit::WalEvent::Message(wit::WalMessage {
            lsn: lsn.as_u64(),
            transactional,
            prefix,
            content: content.to_vec(),
        }),
        ReplicationEvent::StoppedAt { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_held_by_another_session_is_retriable_other_server_errors_are_not() {
        let held = pgwire_replication::PgWireError::Server(
            "ERROR: replication slot \"weir\" is active for PID 4242 (SQLSTATE 55006)".into(),
        );
        assert!(matches!(replication_error(&held), PgError::Connection(_)));
        let missing = pgwire_replication::PgWireError::Server(
            "ERROR: replication slot \"weir\" does not exist (SQLSTATE 42704)".into(),
        );
        assert!(matches!(replication_error(&missing), PgError::Server(_)));
    }
}
