//! Streaming: the slot's pgoutput stream decoded into change events, each transaction's
//! records positioned so that the slot confirms only whole transactions; heartbeats and the
//! slot's statistics on their intervals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weir_connector_sdk::ConnectorError;
use weir_connector_sdk::postgres::{self as pg, WalEvent};

use crate::catalog::{Table, pg_error, quote_literal, text_column};
use crate::envelope::{envelope, key_of, now_ms, render_row};
use crate::pgoutput::{self, Message};
use crate::position::{Position, mark};
use crate::source::{Pending, Phase, PostgresCdc};

/// Microseconds between 1970-01-01 and Postgres' epoch 2000-01-01.
pub(crate) const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Longest a poll waits for the replication stream.
pub(crate) const READ_WAIT_MS: u32 = 200;
pub(crate) const HEARTBEAT_PREFIX: &str = "weir_heartbeat";

pub(crate) struct Transaction {
    pub(crate) final_lsn: u64,
    pub(crate) xid: u32,
    pub(crate) commit_time_ms: i64,
    pub(crate) seq: u64,
}

impl PostgresCdc {
    pub(crate) fn start_streaming(&mut self, start: u64) -> Result<(), ConnectorError> {
        pg::start_replication(&self.config.slot_name, &self.config.publication_name, start)
            .map_err(pg_error("starting replication"))?;
        self.phase = Phase::Streaming;
        self.streaming = true;
        self.context.info(&format!("streaming slot {} from {}", self.config.slot_name, pg::format_lsn(start)));
        Ok(())
    }

    pub(crate) fn reconnect(&mut self) -> Result<(), ConnectorError> {
        self.transaction = None;
        self.held = None;
        self.ready.clear();
        self.skip_until = self.emitted.or(self.skip_until);
        self.connect()?;
        self.start_streaming(0)
    }

    pub(crate) fn stream_step(&mut self, max: usize) -> Result<(), ConnectorError> {
        if !self.streaming {
            self.reconnect()?;
        }
        self.heartbeat();
        self.report_slot_stats();
        let events = match pg::read(u32::try_from(max).unwrap_or(u32::MAX), READ_WAIT_MS) {
            Ok(events) => events,
            Err(error) if error.is_retriable() => {
                self.streaming = false;
                self.context.warn(&format!("replication stream lost, reconnecting: {error}"));
                return Err(ConnectorError::Retriable(format!("replication stream lost: {error}")));
            }
            Err(error) => return Err(error.into_connector_error("reading the replication stream")),
        };
        for event in events {
            self.apply(event)?;
        }
        Ok(())
    }

    /// Report the slot's retained WAL (`pg_current_wal_lsn() - restart_lsn`) and the replication
    /// lag (`pg_current_wal_lsn() - confirmed_flush_lsn`), in bytes, as gauges and a log line,
    /// every `slot.stats.interval.s`: one query per interval, never per batch.
    pub(crate) fn report_slot_stats(&mut self) {
        if self.config.slot_stats_interval_s == 0 {
            return;
        }
        let now = Instant::now();
        if self.next_stats.is_some_and(|next| now < next) {
            return;
        }
        self.next_stats = Some(now + Duration::from_secs(self.config.slot_stats_interval_s));
        let rows = pg::query_rows(&format!(
            "SELECT (pg_current_wal_lsn() - restart_lsn)::int8 AS retained, (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 AS lag \
             FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(&self.config.slot_name)
        ));
        let row = match rows {
            Ok(rows) => rows.into_iter().next(),
            Err(error) => {
                self.context.warn(&format!("cannot read the slot's statistics: {error}"));
                return;
            }
        };
        let bytes =
            |name: &str| row.as_ref().and_then(|row| text_column(row, name)).and_then(|text| text.parse::<i64>().ok());
        let (Some(retained), Some(lag)) = (bytes("retained"), bytes("lag")) else { return };
        self.context.gauge("slot_retained_wal_bytes", retained);
        self.context.gauge("replication_lag_bytes", lag);
        self.context.info(&format!(
            "slot {}: retained WAL {retained} bytes, replication lag {lag} bytes, acknowledged {}",
            self.config.slot_name,
            pg::format_lsn(self.acked)
        ));
    }

    pub(crate) fn heartbeat(&mut self) {
        if self.config.heartbeat_interval_ms == 0 {
            return;
        }
        let now = Instant::now();
        if self.next_heartbeat.is_some_and(|next| now < next) {
            return;
        }
        self.next_heartbeat = Some(now + Duration::from_millis(self.config.heartbeat_interval_ms));
        if let Err(error) = pg::query(&format!("SELECT pg_logical_emit_message(false, '{HEARTBEAT_PREFIX}', '')")) {
            self.context.warn(&format!("heartbeat failed: {error}"));
        }
    }

    pub(crate) fn apply(&mut self, event: WalEvent) -> Result<(), ConnectorError> {
        match event {
            WalEvent::Begin { final_lsn, xid, commit_time_micros } => {
                self.transaction = Some(Transaction {
                    final_lsn,
                    xid,
                    commit_time_ms: (commit_time_micros + POSTGRES_EPOCH_MICROS) / 1000,
                    seq: 0,
                });
            }
            WalEvent::Commit { end_lsn, .. } => {
                if let Some(mut held) = self.held.take() {
                    held.position.last = true;
                    held.position.end_lsn = end_lsn;
                    self.ready.push_back(held);
                }
                self.transaction = None;
            }
            WalEvent::Change { lsn, data } => {
                let message = pgoutput::decode(&data).map_err(|error| ConnectorError::Fatal(error.to_string()))?;
                self.change(lsn, message)?;
            }
            WalEvent::Message { lsn, transactional: false, prefix, .. } if prefix == HEARTBEAT_PREFIX => {
                if self.transaction.is_none() && self.held.is_none() && self.config.heartbeat_interval_ms > 0 {
                    let position =
                        Position { commit_lsn: lsn, seq: 0, last: true, end_lsn: lsn, ..Position::default() };
                    if !self.skipped(&position) {
                        let value = json!({ "ts_ms": now_ms() });
                        self.ready.push_back(Pending {
                            topic: Arc::from(format!("__debezium-heartbeat.{}", self.config.topic_prefix)),
                            key: Some(
                                serde_json::to_vec(&json!({ "serverName": self.config.topic_prefix }))
                                    .expect("JSON serializes"),
                            ),
                            value: Some(serde_json::to_vec(&value).expect("JSON serializes")),
                            timestamp: None,
                            position,
                        });
                    }
                }
            }
            WalEvent::Message { .. } | WalEvent::Keepalive { .. } => {}
        }
        Ok(())
    }

    pub(crate) fn skipped(&self, position: &Position) -> bool {
        self.skip_until.is_some_and(|until| mark(position) <= until)
    }

    pub(crate) fn relation(&self, id: u32) -> Result<&Arc<Table>, ConnectorError> {
        self.relations.get(&id).ok_or_else(|| {
            ConnectorError::Fatal(format!("pgoutput sent a change of relation {id} before describing it"))
        })
    }

    pub(crate) fn change(&mut self, lsn: u64, message: Message) -> Result<(), ConnectorError> {
        let (table_id, op, before, after, key) = match message {
            Message::Relation(relation) => {
                let key = match self.describe(&relation.id.to_string(), relation.schema.clone(), relation.name.clone())
                {
                    Ok(described) => described.key,
                    Err(_) if relation.replica_identity == b'd' => {
                        relation.columns.iter().filter(|column| column.key).map(|column| column.name.clone()).collect()
                    }
                    Err(_) => Vec::new(),
                };
                let columns = relation.columns.iter().map(|column| (column.name.clone(), column.type_oid)).collect();
                let table = self.render(Table::new(relation.schema.clone(), relation.name.clone(), columns), key);
                self.relations.insert(relation.id, Arc::new(table));
                return Ok(());
            }
            Message::Insert { relation, new } => {
                let table = self.relation(relation)?;
                if !table.captured {
                    return Ok(());
                }
                let placeholder = &self.config.unavailable_value_placeholder;
                let key = key_of(table, &new, None, placeholder);
                (relation, "c", None, Some(render_row(table, &new, None, placeholder)), key)
            }
            Message::Update { relation, old, new, .. } => {
                let table = self.relation(relation)?;
                if !table.captured {
                    return Ok(());
                }
                let placeholder = &self.config.unavailable_value_placeholder;
                let before = old.as_ref().map(|old| render_row(table, old, None, placeholder));
                let after = render_row(table, &new, old.as_deref(), placeholder);
                let key = key_of(table, &new, old.as_deref(), placeholder);
                (relation, "u", before, Some(after), key)
            }
            Message::Delete { relation, old, .. } => {
                let table = self.relation(relation)?;
                if !table.captured {
                    return Ok(());
                }
                let placeholder = &self.config.unavailable_value_placeholder;
                let key = key_of(table, &old, None, placeholder);
                (relation, "d", Some(render_row(table, &old, None, placeholder)), None, key)
            }
            Message::Truncate { relations, .. } => {
                for relation in relations {
                    self.emit(lsn, relation, "t", None, None, None)?;
                }
                return Ok(());
            }
            Message::Other(_) => return Ok(()),
        };
        self.emit(lsn, table_id, op, before, after, key)
    }

    pub(crate) fn emit(
        &mut self,
        lsn: u64,
        relation: u32,
        op: &str,
        before: Option<Vec<u8>>,
        after: Option<Vec<u8>>,
        key: Option<Vec<u8>>,
    ) -> Result<(), ConnectorError> {
        let table = Arc::clone(self.relation(relation)?);
        if !table.captured {
            return Ok(());
        }
        let Some(transaction) = self.transaction.as_mut() else {
            return Err(ConnectorError::Fatal("pgoutput sent a change outside a transaction".into()));
        };
        let (final_lsn, xid, commit_time_ms) = (transaction.final_lsn, transaction.xid, transaction.commit_time_ms);
        let tombstone = op == "d" && self.config.tombstones_on_delete;
        let first_seq = transaction.seq;
        transaction.seq += if tombstone { 2 } else { 1 };
        let value = envelope(
            &table,
            before.as_deref(),
            after.as_deref(),
            op,
            commit_time_ms,
            "false",
            Some(xid),
            lsn,
            now_ms(),
        );
        let topic = table.topic.clone();
        let position = Position { commit_lsn: final_lsn, seq: first_seq, ..Position::default() };
        if !self.skipped(&position) {
            self.hold(Pending {
                topic: topic.clone(),
                key: key.clone(),
                value: Some(value),
                timestamp: Some(commit_time_ms),
                position,
            });
        }
        if tombstone {
            let position = Position { commit_lsn: final_lsn, seq: first_seq + 1, ..Position::default() };
            if !self.skipped(&position) {
                self.hold(Pending { topic, key, value: None, timestamp: Some(commit_time_ms), position });
            }
        }
        Ok(())
    }
}
