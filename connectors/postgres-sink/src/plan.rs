//! Turning one table's changes, in record order, into few multi-row statements with the same
//! effect.
//!
//! Changes are gathered into rounds in which every key appears once, so the statements of a
//! round touch disjoint rows and their order does not matter: its deletes, then its writes
//! grouped by column set. A later change of a key already in the round replaces the earlier one
//! when that gives the same end state (a delete always does; a write does when it sets every
//! column the earlier write set); otherwise the round ends there. `ON CONFLICT DO UPDATE` cannot
//! touch a row twice in one statement, which is why keys must be distinct. In `insert` mode a
//! repeated key always ends the round, so the second INSERT still fails as it should.

use std::collections::BTreeMap;

use crate::config::{InsertMode, TableName};
use crate::record::Change;
use crate::sql::{self, Columns, Row, ValueError};

/// What a piece does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    Insert,
    Upsert,
    Update,
    Delete,
}

/// One statement's worth of changes of one kind on one table, each with its record's index.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub table: TableName,
    pub kind: PieceKind,
    /// The columns written (for a delete: the key columns).
    pub names: Vec<String>,
    /// The key columns.
    pub key: Vec<String>,
    /// `(record index, row)`; for a delete the row holds the key only.
    pub items: Vec<(usize, Row)>,
}

impl Piece {
    /// The statement for `items` (a subset of this piece's); `None` when there is nothing to do
    /// (an update of key columns only).
    ///
    /// # Errors
    /// A value that cannot be written, with its position in `items`.
    pub fn render(
        &self,
        items: &[(usize, Row)],
        columns: &impl Columns,
    ) -> Result<Option<String>, (usize, ValueError)> {
        let rows: Vec<&Row> = items.iter().map(|(_, row)| row).collect();
        match self.kind {
            PieceKind::Insert => sql::insert(&self.table, &self.names, &self.key, &rows, columns, false).map(Some),
            PieceKind::Upsert => sql::insert(&self.table, &self.names, &self.key, &rows, columns, true).map(Some),
            PieceKind::Update => sql::update(&self.table, &self.names, &self.key, &rows, columns),
            PieceKind::Delete => sql::delete(&self.table, &self.key, &rows, columns).map(Some),
        }
    }
}

/// Inserts and upserts of at least this many rows go by COPY, which Postgres takes faster than
/// a multi-row statement (measured with psql: README); smaller ones cost fewer round trips as
/// a statement.
pub const COPY_MIN_ROWS: usize = 32;

/// How a piece is written on the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// SQL run by `query`, with other statements in one round trip.
    Sql(String),
    /// `COPY ... FROM STDIN` and its input, run by `copy-in`, with SQL to run before it (in the
    /// round trip that precedes it) and after it (with the statements that follow).
    Copy { before: Option<String>, sql: String, data: String, after: Option<String> },
}

impl Piece {
    /// The fast path's statement for all of this piece's items: COPY for a large insert, COPY
    /// into temporary table `stage` and a merge for a large upsert, otherwise
    /// [`Piece::render`]'s.
    ///
    /// # Errors
    /// As [`Piece::render`].
    pub fn render_fast(&self, columns: &impl Columns, stage: &str) -> Result<Option<Statement>, (usize, ValueError)> {
        if self.items.len() >= COPY_MIN_ROWS && matches!(self.kind, PieceKind::Insert | PieceKind::Upsert) {
            let rows: Vec<&Row> = self.items.iter().map(|(_, row)| row).collect();
            if self.kind == PieceKind::Insert {
                let (sql, data) = sql::copy(&self.table.to_sql(), &self.names, &rows, columns)?;
                return Ok(Some(Statement::Copy { before: None, sql, data, after: None }));
            }
            let (sql, data) = sql::copy(stage, &self.names, &rows, columns)?;
            let (create, merge) = sql::staged_upsert(&self.table, &self.names, &self.key, stage);
            return Ok(Some(Statement::Copy { before: Some(create), sql, data, after: Some(merge) }));
        }
        Ok(self.render(&self.items, columns)?.map(Statement::Sql))
    }
}

/// The pieces for `changes` (record index, change) of `table`, in order, at most `batch_size`
/// rows each. Skips are ignored.
pub fn plan(table: &TableName, mode: InsertMode, changes: Vec<(usize, Change)>, batch_size: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut round: Vec<(usize, Change)> = Vec::new();
    let mut positions: BTreeMap<String, usize> = BTreeMap::new();
    for (index, change) in changes {
        let key = match &change {
            Change::Write { key, .. } | Change::Delete { key } => key,
            Change::Skip(_) => continue,
        };
        if !key.is_empty() {
            let id = serde_json::Value::Object(key.clone()).to_string();
            if let Some(&position) = positions.get(&id) {
                if replaces(mode, &round[position].1, &change) {
                    round[position] = (index, change);
                    continue;
                }
                emit(table, mode, std::mem::take(&mut round), batch_size, &mut pieces);
                positions.clear();
            }
            positions.insert(id, round.len());
        }
        round.push((index, change));
    }
    emit(table, mode, round, batch_size, &mut pieces);
    pieces
}

/// Whether `new` applied alone leaves the row as `old` then `new` would.
fn replaces(mode: InsertMode, old: &Change, new: &Change) -> bool {
    match (mode, old, new) {
        (InsertMode::Insert, _, _) => false,
        (_, _, Change::Delete { .. }) => true,
        (_, Change::Write { row: old_row, .. }, Change::Write { row, .. }) => {
            old_row.keys().all(|name| row.contains_key(name))
        }
        _ => false,
    }
}

fn emit(table: &TableName, mode: InsertMode, round: Vec<(usize, Change)>, batch_size: usize, pieces: &mut Vec<Piece>) {
    // Grouped by (kind, names, key), in first-seen order so statements follow the records.
    let mut groups: Vec<Piece> = Vec::new();
    let mut writes = Vec::new();
    for (index, change) in round {
        match change {
            Change::Delete { key } => {
                let names: Vec<String> = key.keys().cloned().collect();
                push(&mut groups, table, PieceKind::Delete, names.clone(), names, index, key);
            }
            Change::Write { key, row } => writes.push((index, key, row)),
            Change::Skip(_) => {}
        }
    }
    let kind = match mode {
        InsertMode::Insert => PieceKind::Insert,
        InsertMode::Upsert => PieceKind::Upsert,
        InsertMode::Update => PieceKind::Update,
    };
    for (index, key, row) in writes {
        let names: Vec<String> = row.keys().cloned().collect();
        push(&mut groups, table, kind, names, key.keys().cloned().collect(), index, row);
    }
    for group in groups {
        let mut items = group.items;
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(batch_size.max(1)));
            pieces.push(Piece {
                table: group.table.clone(),
                kind: group.kind,
                names: group.names.clone(),
                key: group.key.clone(),
                items,
            });
            items = rest;
        }
    }
}

fn push(
    groups: &mut Vec<Piece>,
    table: &TableName,
    kind: PieceKind,
    names: Vec<String>,
    key: Vec<String>,
    index: usize,
    row: Row,
) {
    match groups.iter_mut().find(|group| group.kind == kind && group.names == names && group.key == key) {
        Some(group) => group.items.push((index, row)),
        None => groups.push(Piece { table: table.clone(), kind, names, key, items: vec![(index, row)] }),
    }
}
