//! Streaming: the slot's pgoutput stream decoded into change events, each transaction's
//! records positioned so that the slot confirms only whole transactions; heartbeats and the
//! slot's statistics on their intervals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_connector_sdk::ConnectorError;
use weir_connector_sdk::postgres::{self as pg, WalEvent};

use crate::catalog::{Column, Table, pg_error, quote_literal, text_column};
use crate::convert::write_string;
use crate::envelope::{EventSource, TransactionBlock, envelope, key_of, now_ms, now_nanos, render_row};
use crate::incremental::WATERMARK_PREFIX;
use crate::pgoutput::{self, Message, Relation};
use crate::position::{Position, mark, write_i64, write_u64};
use crate::schema;
use crate::source::{Pending, Phase, PostgresCdc};

/// Microseconds between 1970-01-01 and Postgres' epoch 2000-01-01.
pub(crate) const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Longest a poll waits for the replication stream.
pub(crate) const READ_WAIT_MS: u32 = 200;
pub(crate) const HEARTBEAT_PREFIX: &str = "weir_heartbeat";

/// The open transaction of the stream.
pub(crate) struct Transaction {
    pub(crate) final_lsn: u64,
    pub(crate) xid: u32,
    /// Commit time, microseconds since 1970.
    pub(crate) commit_time_micros: i64,
    /// The next record's index in the transaction.
    pub(crate) seq: u64,
    /// Change events so far (transaction metadata's `total_order`).
    pub(crate) total_order: u64,
    /// Change events so far per `schema.table`, in order of appearance.
    pub(crate) data_collections: Vec<(Arc<str>, u64)>,
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
        // What was not handed over comes again from the slot, signals included: the incremental
        // snapshot goes back to where the last record handed over had it.
        let progress = self.emitted_progress.as_deref().and_then(|text| serde_json::from_str(text).ok());
        self.resume_incremental(progress);
        self.restart_rest_signals();
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
        self.read_nanos = now_nanos();
        for event in events {
            self.apply(event)?;
        }
        self.incremental_step()
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
                // Its commit is in the WAL already: pgoutput sends a transaction once committed.
                self.recent_xids.push(xid);
                self.transaction = Some(Transaction {
                    final_lsn,
                    xid,
                    commit_time_micros: commit_time_micros + POSTGRES_EPOCH_MICROS,
                    seq: 0,
                    total_order: 0,
                    data_collections: Vec::new(),
                });
            }
            WalEvent::Commit { end_lsn, .. } => {
                if let Some(transaction) = self.transaction.take()
                    && self.config.provide_transaction_metadata
                    && transaction.total_order > 0
                {
                    self.transaction_event(&transaction, "END", end_lsn);
                }
                if let Some(mut held) = self.held.take() {
                    held.position.last = true;
                    held.position.end_lsn = end_lsn;
                    self.release(held);
                }
                self.last_commit_lsn = Some(end_lsn);
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
                        let record = self.heartbeat_record(position);
                        self.release(record);
                    }
                }
            }
            WalEvent::Message { lsn, transactional: true, prefix, content } if prefix == WATERMARK_PREFIX => {
                self.close_window(lsn, &content);
            }
            WalEvent::Message { .. } | WalEvent::Keepalive { .. } => {}
        }
        Ok(())
    }

    /// A heartbeat: `{"serverName"}` → `{"ts_ms"}` in `<topic.heartbeat.prefix>.<topic.prefix>`.
    fn heartbeat_record(&self, position: Position) -> Pending {
        let mut key = Vec::with_capacity(64);
        key.extend_from_slice(b"{\"serverName\":");
        write_string(&mut key, &self.config.topic_prefix);
        key.push(b'}');
        let mut value = Vec::with_capacity(32);
        value.extend_from_slice(b"{\"ts_ms\":");
        write_i64(&mut value, now_ms());
        value.push(b'}');
        let (key_schema, value_schema) = schema::heartbeat_schemas();
        Pending {
            topic: Arc::from(format!("{}.{}", self.config.topic_heartbeat_prefix, self.config.topic_prefix)),
            key: Some(if self.config.key_schemas_enable { schema::wrap(&key_schema, &key) } else { key }),
            value: Some(if self.config.value_schemas_enable { schema::wrap(&value_schema, &value) } else { value }),
            timestamp: None,
            position,
            marker: None,
        }
    }

    /// A BEGIN or END record of the transaction topic (`provide.transaction.metadata`).
    fn transaction_event(&mut self, transaction: &Transaction, status: &str, lsn: u64) {
        let id = format!("{}:{lsn}", transaction.xid);
        let mut key = Vec::with_capacity(48);
        key.extend_from_slice(b"{\"id\":");
        write_string(&mut key, &id);
        key.push(b'}');
        let mut value = Vec::with_capacity(160);
        value.extend_from_slice(b"{\"status\":");
        write_string(&mut value, status);
        value.extend_from_slice(b",\"id\":");
        write_string(&mut value, &id);
        if status == "END" {
            value.extend_from_slice(b",\"event_count\":");
            write_u64(&mut value, transaction.total_order);
            value.extend_from_slice(b",\"data_collections\":[");
            for (index, (collection, count)) in transaction.data_collections.iter().enumerate() {
                if index > 0 {
                    value.push(b',');
                }
                value.extend_from_slice(b"{\"data_collection\":");
                write_string(&mut value, collection);
                value.extend_from_slice(b",\"event_count\":");
                write_u64(&mut value, *count);
                value.push(b'}');
            }
            value.push(b']');
        } else {
            value.extend_from_slice(b",\"event_count\":null,\"data_collections\":null");
        }
        value.extend_from_slice(b",\"ts_ms\":");
        write_i64(&mut value, transaction.commit_time_micros.div_euclid(1000));
        value.push(b'}');
        if self.config.key_schemas_enable {
            key = schema::wrap(&schema::transaction_key_schema(), &key);
        }
        if self.config.value_schemas_enable {
            value = schema::wrap(&schema::transaction_value_schema(), &value);
        }
        // BEGIN takes the next position of the open transaction; END follows the last event.
        let seq = match self.transaction.as_mut() {
            Some(open) => {
                open.seq += 1;
                open.seq - 1
            }
            None => transaction.seq,
        };
        let position = Position { commit_lsn: transaction.final_lsn, seq, ..Position::default() };
        if !self.skipped(&position) {
            self.hold(Pending {
                topic: Arc::from(format!("{}.transaction", self.config.topic_prefix)),
                key: Some(key),
                value: Some(value),
                timestamp: Some(transaction.commit_time_micros.div_euclid(1000)),
                position,
                marker: None,
            });
        }
    }

    pub(crate) fn skipped(&self, position: &Position) -> bool {
        self.skip_until.is_some_and(|until| mark(position) <= until)
    }

    pub(crate) fn relation(&self, id: u32) -> Result<&Arc<Table>, ConnectorError> {
        self.relations.get(&id).ok_or_else(|| {
            ConnectorError::Fatal(format!("pgoutput sent a change of relation {id} before describing it"))
        })
    }

    /// A Relation message: the table as the stream sends its columns, with the catalog's key,
    /// types and nullability where the catalog still knows the column.
    fn describe_relation(&self, relation: &Relation) -> Table {
        let described = self.describe(&relation.id.to_string(), relation.schema.clone(), relation.name.clone()).ok();
        let key = match &described {
            Some(described) => described.key.clone(),
            None if relation.replica_identity == b'd' => {
                relation.columns.iter().filter(|column| column.key).map(|column| column.name.clone()).collect()
            }
            None => Vec::new(),
        };
        let columns = relation
            .columns
            .iter()
            .map(|column| {
                described
                    .as_ref()
                    .and_then(|table| table.columns.iter().find(|known| known.name == column.name))
                    .filter(|known| known.column_type.type_oid == column.type_oid)
                    .cloned()
                    .unwrap_or_else(|| {
                        Column::from_relation(column.name.clone(), column.type_oid, column.type_modifier)
                    })
            })
            .collect();
        self.render(Table::new(relation.schema.clone(), relation.name.clone(), columns), key)
    }

    pub(crate) fn change(&mut self, lsn: u64, message: Message) -> Result<(), ConnectorError> {
        let style = Arc::clone(&self.style);
        let style = style.as_ref();
        match message {
            Message::Relation(relation) => {
                let table = self.describe_relation(&relation);
                self.relations.insert(relation.id, Arc::new(table));
            }
            Message::Insert { relation, new } => {
                let table = Arc::clone(self.relation(relation)?);
                if let Some(transaction) = &self.transaction {
                    let (commit_lsn, seq) = (transaction.final_lsn, transaction.seq);
                    self.signal_row(&table, &new, commit_lsn, seq);
                }
                if table.captured && !self.skipped_operations.create {
                    let key = key_of(&table, &new, None, style);
                    let after = render_row(&table, &new, None, style);
                    self.emit(lsn, &table, "c", None, Some(after), key)?;
                }
            }
            Message::Update { relation, old, key_only, new } => {
                let table = Arc::clone(self.relation(relation)?);
                if !table.captured || self.skipped_operations.update {
                    return Ok(());
                }
                let key = key_of(&table, &new, old.as_deref(), style);
                let old_key = old.as_ref().and_then(|old| key_of(&table, old, None, style));
                // A changed primary key: Debezium's delete of the old key, then create of the new.
                if old_key.is_some() && old_key != key {
                    let old = old.as_deref().unwrap_or_default();
                    let before = render_row(&table, old, None, style);
                    self.emit(lsn, &table, "d", Some(before), None, old_key)?;
                    let after = render_row(&table, &new, None, style);
                    return self.emit(lsn, &table, "c", None, Some(after), key);
                }
                let before = old.as_ref().filter(|_| !key_only).map(|old| render_row(&table, old, None, style));
                let after = render_row(&table, &new, old.as_deref(), style);
                self.emit(lsn, &table, "u", before, Some(after), key)?;
            }
            Message::Delete { relation, old, .. } => {
                let table = Arc::clone(self.relation(relation)?);
                if table.captured && !self.skipped_operations.delete {
                    let key = key_of(&table, &old, None, style);
                    let before = render_row(&table, &old, None, style);
                    self.emit(lsn, &table, "d", Some(before), None, key)?;
                }
            }
            Message::Truncate { relations, .. } => {
                for relation in &relations {
                    let table = Arc::clone(self.relation(*relation)?);
                    self.truncated(&table);
                }
                if !self.skipped_operations.truncate {
                    for relation in relations {
                        let table = Arc::clone(self.relation(relation)?);
                        if table.captured {
                            self.emit(lsn, &table, "t", None, None, None)?;
                        }
                    }
                }
            }
            Message::Other(_) => {}
        }
        Ok(())
    }

    fn emit(
        &mut self,
        lsn: u64,
        table: &Table,
        op: &str,
        before: Option<Vec<u8>>,
        after: Option<Vec<u8>>,
        mut key: Option<Vec<u8>>,
    ) -> Result<(), ConnectorError> {
        self.supersede(table, key.as_deref());
        let metadata = self.config.provide_transaction_metadata;
        let Some(transaction) = self.transaction.as_mut() else {
            return Err(ConnectorError::Fatal("pgoutput sent a change outside a transaction".into()));
        };
        let begins = metadata && transaction.total_order == 0;
        let block = metadata.then(|| {
            transaction.total_order += 1;
            let per_table =
                match transaction.data_collections.iter_mut().find(|(name, _)| *name == table.data_collection) {
                    Some((_, count)) => {
                        *count += 1;
                        *count
                    }
                    None => {
                        transaction.data_collections.push((Arc::clone(&table.data_collection), 1));
                        1
                    }
                };
            TransactionBlock {
                xid: u64::from(transaction.xid),
                lsn,
                total_order: transaction.total_order,
                data_collection_order: per_table,
            }
        });
        if begins {
            let snapshot = Transaction { data_collections: Vec::new(), ..*transaction };
            self.transaction_event(&snapshot, "BEGIN", lsn);
        }
        let Some(transaction) = self.transaction.as_mut() else { return Ok(()) };
        let (final_lsn, xid, commit_time_micros) =
            (transaction.final_lsn, transaction.xid, transaction.commit_time_micros);
        let tombstone = op == "d" && self.config.tombstones_on_delete;
        let first_seq = transaction.seq;
        transaction.seq += if tombstone { 2 } else { 1 };
        let event = EventSource {
            op,
            source_micros: commit_time_micros,
            snapshot: "false",
            last_commit_lsn: self.last_commit_lsn,
            lsn,
            xid: Some(u64::from(xid)),
            transaction: block,
        };
        let (value, _) = envelope(table, before.as_deref(), after.as_deref(), &event, self.read_nanos);
        let timestamp = Some(commit_time_micros.div_euclid(1000));
        let position = Position { commit_lsn: final_lsn, seq: first_seq, ..Position::default() };
        if !self.skipped(&position) {
            self.hold(Pending {
                topic: table.topic.clone(),
                key: if tombstone { key.clone() } else { key.take() },
                value: Some(value),
                timestamp,
                position,
                marker: None,
            });
        }
        if tombstone {
            let position = Position { commit_lsn: final_lsn, seq: first_seq + 1, ..Position::default() };
            if !self.skipped(&position) {
                self.hold(Pending { topic: table.topic.clone(), key, value: None, timestamp, position, marker: None });
            }
        }
        Ok(())
    }
}
