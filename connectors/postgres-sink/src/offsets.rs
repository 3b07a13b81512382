//! The sink's own offsets table: the last offset written per (target table, topic, partition),
//! updated in the same transaction as the rows, so the target database always knows exactly
//! which records it holds.
//!
//! Every update is a compare-and-set: it expects the offset this task last read or wrote. A
//! second instance of the task (a zombie after a rebalance, a task restarted while the old one
//! still runs) that wrote in between makes the expected value wrong; the update then raises
//! SQLSTATE [`FENCED_SQLSTATE`] and the whole transaction rolls back. The row lock the update
//! takes orders two racing transactions: the second waits, re-reads, and fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::TableName;
use crate::sql::literal;

/// The SQLSTATE the compare-and-set raises when another instance moved the offsets.
pub const FENCED_SQLSTATE: &str = "WSK01";

/// What an offset belongs to: the target table (as written), the topic and the partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetKey {
    pub table: String,
    pub topic: String,
    pub partition: i32,
}

/// The last offset written per key.
pub type Stored = BTreeMap<OffsetKey, i64>;

/// One compare-and-set: from `expected` (none: no row yet) to `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetUpdate {
    pub key: OffsetKey,
    pub expected: Option<i64>,
    pub offset: i64,
}

/// Create the offsets table if missing.
pub fn create_sql(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (target_table text NOT NULL, topic text NOT NULL, \
         kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL, \
         updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (target_table, topic, kafka_partition))",
        table.to_sql()
    )
}

/// Every stored offset.
pub fn load_sql(table: &TableName) -> String {
    format!("SELECT target_table, topic, kafka_partition, kafka_offset FROM {}", table.to_sql())
}

/// The rows of [`load_sql`], parsed.
///
/// # Errors
/// A row that does not have the table's shape, named.
pub fn parse_rows(rows: &[serde_json::Map<String, serde_json::Value>]) -> Result<Stored, String> {
    let mut stored = Stored::new();
    for row in rows {
        let text = |name: &str| row.get(name).and_then(serde_json::Value::as_str);
        let (Some(table), Some(topic), Some(partition), Some(offset)) =
            (text("target_table"), text("topic"), text("kafka_partition"), text("kafka_offset"))
        else {
            return Err(format!("an offsets row without its columns: {row:?}"));
        };
        let partition = partition.parse().map_err(|_| format!("an offsets row with partition {partition}"))?;
        let offset = offset.parse().map_err(|_| format!("an offsets row with offset {offset}"))?;
        stored.insert(OffsetKey { table: table.to_owned(), topic: topic.to_owned(), partition }, offset);
    }
    Ok(stored)
}

/// One `DO` block applying every update as a compare-and-set, raising [`FENCED_SQLSTATE`] on the
/// first that finds another value.
pub fn cas_sql(table: &TableName, updates: &[OffsetUpdate]) -> String {
    let name = table.to_sql();
    let mut body = String::new();
    for update in updates {
        let key = &update.key;
        let matches = format!(
            "target_table = {} AND topic = {} AND kafka_partition = {}",
            literal(&key.table),
            literal(&key.topic),
            key.partition
        );
        let message = literal(&format!(
            "the offsets of {} {}/{} were moved by another instance of this sink task (expected {}): this one is fenced off",
            key.table,
            key.topic,
            key.partition,
            update.expected.map_or_else(|| "none".to_owned(), |offset| offset.to_string())
        ));
        match update.expected {
            Some(expected) => {
                let _ = write!(
                    body,
                    "UPDATE {name} SET kafka_offset = {}, updated_at = now() WHERE {matches} AND kafka_offset = {expected}; ",
                    update.offset
                );
            }
            None => {
                let _ = write!(
                    body,
                    "INSERT INTO {name} (target_table, topic, kafka_partition, kafka_offset) VALUES ({}, {}, {}, {}) \
                     ON CONFLICT DO NOTHING; ",
                    literal(&key.table),
                    literal(&key.topic),
                    key.partition,
                    update.offset
                );
            }
        }
        let _ = write!(
            body,
            "IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = '{FENCED_SQLSTATE}', MESSAGE = {message}; END IF; "
        );
    }
    // Names and topics may hold `$`: pick a dollar-quote tag the body does not contain.
    let mut tag = "weir".to_owned();
    while body.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    format!("DO ${tag}$ BEGIN {body}END ${tag}$")
}
