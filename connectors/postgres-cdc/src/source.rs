//! The `postgres-cdc` source task: an initial snapshot through the slot's exported snapshot
//! ([`crate::snapshot`]), then the slot's pgoutput stream ([`crate::stream`]), as Debezium
//! envelopes ([`crate::envelope`]); positions in [`crate::position`], the publication, slot and
//! table descriptions in [`crate::catalog`]. This file holds the task and the decision between
//! snapshot and streaming at start.
//!
//! To know which record is a transaction's last, the newest record of the open transaction is
//! held back until the next change or the commit arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use weir_connector_sdk::batch::{SourceBatchWriter, SourceRecordRef};
use weir_connector_sdk::postgres as pg;
use weir_connector_sdk::{Connector, ConnectorError, FieldError, Source, TaskContext};

use crate::catalog::{Table, connect, drop_on_delete, pg_error};
use crate::config::{CdcConfig, SlotInvalidatedAction, SnapshotMode};
use crate::convert::{Modes, ReadPath, Skipped};
use crate::envelope::CellStyle;
use crate::filter::TableFilter;
use crate::incremental::{Incremental, RecentXids};
use crate::position::{CommittedProgress, Position, mark};
use crate::signal::RestSignals;
use crate::snapshot::Snapshot;
use crate::stream::Transaction;

/// The connector.
pub struct PostgresCdc {
    pub(crate) config: CdcConfig,
    pub(crate) filter: TableFilter,
    pub(crate) context: TaskContext,
    pub(crate) partition: Vec<u8>,
    pub(crate) phase: Phase,
    pub(crate) relations: HashMap<u32, Arc<Table>>,
    pub(crate) transaction: Option<Transaction>,
    /// The newest record of the open transaction (or snapshot), not yet known to be its last.
    pub(crate) held: Option<Pending>,
    pub(crate) ready: VecDeque<Pending>,
    /// Records at or before this `(commit_lsn, seq)` were delivered already: skip them.
    pub(crate) skip_until: Option<(u64, u64)>,
    /// The last record handed to the runtime (the skip mark after a reconnect).
    pub(crate) emitted: Option<(u64, u64)>,
    pub(crate) streaming: bool,
    pub(crate) acked: u64,
    pub(crate) next_heartbeat: Option<Instant>,
    pub(crate) next_stats: Option<Instant>,
    /// Reused for each record's position JSON.
    pub(crate) position_buffer: Vec<u8>,
    /// The handling modes and the TOAST placeholder.
    pub(crate) style: Arc<CellStyle>,
    /// How snapshot rows are written (Debezium reads them through JDBC; see [`ReadPath`]).
    pub(crate) snapshot_style: Arc<CellStyle>,
    pub(crate) skipped_operations: Skipped,
    /// The end LSN of the last transaction streamed (`source.sequence`'s first element).
    pub(crate) last_commit_lsn: Option<u64>,
    /// The clock of the batch being streamed (nanoseconds since the epoch): every event of one
    /// read shares it as its `ts_ms` / `ts_us` / `ts_ns`, so the clock is asked once per read,
    /// not once per event.
    pub(crate) read_nanos: i64,
    /// The incremental snapshot running, if any ([`crate::incremental`]).
    pub(crate) incremental: Option<Incremental>,
    /// The progress the last record handed over carried (where a reconnect resumes it).
    pub(crate) emitted_progress: Option<Arc<str>>,
    /// The ids of the latest transactions streamed (a chunk read checks its snapshot against them).
    pub(crate) recent_xids: RecentXids,
    /// The mark of the last record released to `ready`.
    pub(crate) released_mark: (u64, u64),
    /// The REST signal channel ([`crate::signal`]).
    pub(crate) rest: RestSignals,
}

impl std::fmt::Debug for PostgresCdc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCdc").field("slot", &self.config.slot_name).finish_non_exhaustive()
    }
}

pub(crate) enum Phase {
    /// Not connected yet: the first poll connects, so that a database that is down at start is
    /// a retriable poll error (retried with backoff) rather than a failed open.
    Starting,
    Snapshot(Snapshot),
    Streaming,
    /// `initial_only` after its snapshot: nothing more to do.
    Finished,
}

pub(crate) struct Pending {
    pub(crate) topic: Arc<str>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) position: Position,
    /// Where `source.snapshot`'s text is in `value`, and its length: a snapshot record learns
    /// only later that it was its table's (or the snapshot's) last.
    pub(crate) marker: Option<(usize, usize)>,
}

impl Pending {
    /// Replace the record's `source.snapshot` text.
    pub(crate) fn mark_snapshot(&mut self, snapshot: &str) {
        if let (Some((start, length)), Some(value)) = (self.marker, self.value.as_mut()) {
            value.splice(start..start + length, snapshot.bytes());
            self.marker = Some((start, snapshot.len()));
        }
    }
}

impl Connector for PostgresCdc {
    type Config = CdcConfig;
    const NAME: &'static str = "postgres-cdc";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Postgres change data capture: a consistent snapshot, then pgoutput logical replication, as Debezium events";

    fn validate(config: &CdcConfig) -> Result<(), Vec<FieldError>> {
        config.check()
    }

    /// With `slot.drop.on.delete`: drop the slot (once its last session let go of it) and the
    /// publication if this connector created it (it says so in its comment).
    fn on_delete(config: &CdcConfig) -> Result<(), ConnectorError> {
        drop_on_delete(config)
    }
}

impl Source for PostgresCdc {
    fn open(config: CdcConfig, context: TaskContext) -> Result<Self, ConnectorError> {
        let filter = TableFilter::compile(config.table_include_list.as_deref(), config.table_exclude_list.as_deref())
            .map_err(ConnectorError::InvalidConfig)?;
        let partition =
            serde_json::to_vec(&json!({ "server": config.topic_prefix })).expect("a JSON object serializes");
        let skipped_operations = Skipped::parse(&config.skipped_operations).map_err(ConnectorError::InvalidConfig)?;
        let style = Arc::new(CellStyle {
            modes: Modes::of(&config),
            placeholder: config.unavailable_value_placeholder.clone(),
        });
        let snapshot_style = Arc::new(CellStyle {
            modes: Modes { read: ReadPath::Snapshot, ..style.modes },
            placeholder: style.placeholder.clone(),
        });
        let task = PostgresCdc {
            config,
            filter,
            context,
            partition,
            phase: Phase::Starting,
            relations: HashMap::new(),
            transaction: None,
            held: None,
            ready: VecDeque::new(),
            skip_until: None,
            emitted: None,
            streaming: false,
            acked: 0,
            next_heartbeat: None,
            next_stats: None,
            position_buffer: Vec::with_capacity(160),
            style,
            snapshot_style,
            skipped_operations,
            last_commit_lsn: None,
            read_nanos: 0,
            incremental: None,
            emitted_progress: None,
            recent_xids: RecentXids::default(),
            released_mark: (0, 0),
            rest: RestSignals::default(),
        };
        task.context.info(&format!("postgres-cdc for {} ({})", task.config.dbname, task.config.topic_prefix));
        Ok(task)
    }

    fn poll(&mut self, max: u32, batch: &mut SourceBatchWriter) -> Result<(), ConnectorError> {
        let max = max.max(1) as usize;
        if matches!(self.phase, Phase::Starting) {
            self.connect()?;
            self.ensure_publication()?;
            self.start()?;
        }
        if self.ready.is_empty() {
            match self.phase {
                Phase::Starting => {}
                Phase::Snapshot(_) => self.snapshot_step(max)?,
                Phase::Streaming => self.stream_step(max)?,
                Phase::Finished => {}
            }
        }
        let mut pushed = 0;
        while pushed < max {
            let Some(record) = self.ready.pop_front() else { break };
            let mut position = std::mem::take(&mut self.position_buffer);
            record.position.write_json(&mut position);
            batch.push(&SourceRecordRef {
                topic: &record.topic,
                partition: -1,
                timestamp: record.timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &[],
                source_partition: &self.partition,
                source_position: &position,
            });
            if !record.position.snapshot {
                self.emitted = Some(mark(&record.position));
                self.emitted_progress = record.position.incremental.clone();
            }
            self.position_buffer = position;
            pushed += 1;
        }
        Ok(())
    }

    fn commit(&mut self, positions: &[weir_connector_sdk::SourceOffset]) -> Result<(), ConnectorError> {
        let positions: Vec<Position> =
            positions.iter().filter_map(|offset| serde_json::from_slice::<Position>(&offset.position).ok()).collect();
        for position in &positions {
            if position.last && position.end_lsn > self.acked && self.streaming {
                match pg::ack(position.end_lsn) {
                    Ok(()) => self.acked = position.end_lsn,
                    Err(error) => {
                        self.context.warn(&format!("cannot acknowledge {}: {error}", pg::format_lsn(position.end_lsn)))
                    }
                }
            }
        }
        if !self.rest.awaiting.is_empty() {
            self.commit_rest_signals(&positions);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConnectorError> {
        pg::stop_replication();
        Ok(())
    }
}

impl PostgresCdc {
    pub(crate) fn connect(&self) -> Result<(), ConnectorError> {
        connect(&self.config)
    }

    /// Decide between snapshot and streaming from the committed position and the slot.
    pub(crate) fn start(&mut self) -> Result<(), ConnectorError> {
        self.restart_rest_signals();
        let committed_bytes = self.context.committed_position(&self.partition);
        let committed = committed_bytes.as_ref().and_then(|bytes| serde_json::from_slice::<Position>(bytes).ok());
        let slot = self.slot_confirmed_lsn()?;
        let slot_name = self.config.slot_name.clone();
        match committed {
            Some(position) if !position.snapshot || position.snapshot_done => {
                let resnapshot = self.config.slot_invalidated_action == SlotInvalidatedAction::Resnapshot;
                let Some(confirmed) = slot else {
                    if self.config.snapshot_mode == SnapshotMode::WhenNeeded || resnapshot {
                        self.context.warn(&format!("replication slot {slot_name} is gone: snapshotting again"));
                        return self.begin_snapshot();
                    }
                    return Err(ConnectorError::Fatal(format!(
                        "replication slot {slot_name} is gone (dropped or invalidated): changes since the committed offset may be lost. \
                         Set slot.invalidated.action=resnapshot (or snapshot.mode=when_needed) to snapshot again, or delete the connector's offsets"
                    )));
                };
                let durable = if position.snapshot {
                    position.consistent_point
                } else if position.last {
                    position.end_lsn
                } else {
                    position.commit_lsn
                };
                if confirmed > durable && resnapshot {
                    self.context.warn(&format!(
                        "replication slot {slot_name} confirmed {} beyond the committed {}: dropping it and snapshotting again",
                        pg::format_lsn(confirmed),
                        pg::format_lsn(durable)
                    ));
                    self.drop_slot()?;
                    return self.begin_snapshot();
                }
                if confirmed > durable {
                    return Err(ConnectorError::Fatal(format!(
                        "replication slot {slot_name} has confirmed {} but weir committed only {}: the slot was recreated or advanced behind weir's back, \
                         and the changes in between are lost. Set slot.invalidated.action=resnapshot, or drop the slot and the connector's offsets, to snapshot again",
                        pg::format_lsn(confirmed),
                        pg::format_lsn(durable)
                    )));
                }
                if position.snapshot && self.config.snapshot_mode == SnapshotMode::InitialOnly {
                    self.phase = Phase::Finished;
                    return Ok(());
                }
                let start = if position.snapshot {
                    position.consistent_point
                } else if position.last {
                    position.end_lsn
                } else {
                    0
                };
                self.skip_until = (!position.snapshot).then(|| mark(&position));
                self.last_commit_lsn = (!position.snapshot && position.last).then_some(position.end_lsn);
                self.acked = confirmed;
                if !position.snapshot {
                    let progress = committed_bytes
                        .as_deref()
                        .and_then(|bytes| serde_json::from_slice::<CommittedProgress>(bytes).ok())
                        .and_then(|committed| committed.incremental);
                    self.resume_incremental(progress);
                    self.emitted_progress =
                        self.incremental.as_ref().map(|incremental| Arc::clone(&incremental.rendered));
                }
                self.start_streaming(start)
            }
            _ => {
                if committed.is_some() {
                    self.context.info("the snapshot was interrupted: starting it again");
                }
                if self.config.snapshot_mode == SnapshotMode::Never {
                    if slot.is_none() {
                        pg::create_slot_with_snapshot(&slot_name, &self.config.publication_name)
                            .map_err(pg_error("creating the replication slot"))?;
                        pg::query("COMMIT").map_err(pg_error("ending the unused snapshot"))?;
                    }
                    return self.start_streaming(0);
                }
                match slot {
                    Some(confirmed) => self.snapshot_again(confirmed),
                    None => self.begin_snapshot(),
                }
            }
        }
    }

    pub(crate) fn hold(&mut self, record: Pending) {
        if let Some(previous) = self.held.replace(record) {
            self.release(previous);
        }
    }

    /// A record is ready to hand over. A change carries the incremental snapshot's progress as
    /// of now (unless it has its own): every record before it was released before it.
    pub(crate) fn release(&mut self, mut record: Pending) {
        if !record.position.snapshot {
            if record.position.incremental.is_none() {
                record.position.incremental =
                    self.incremental.as_ref().map(|incremental| Arc::clone(&incremental.rendered));
            }
            self.released_mark = mark(&record.position);
        }
        self.ready.push_back(record);
    }
}
