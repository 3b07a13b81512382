//! The catalog side of the connector: the publication and the slot (created, looked up,
//! dropped), the captured tables' columns and keys, and what is the same for every event of a
//! table, rendered once.

use std::sync::Arc;

use serde_json::{Map, Value};
use weir_connector_sdk::postgres::{self as pg, PgError};
use weir_connector_sdk::{Connector, ConnectorError};

use crate::config::{CdcConfig, PublicationAutocreate};
use crate::source::PostgresCdc;

/// The comment on a publication the connector created (and so may drop).
pub(crate) const PUBLICATION_COMMENT: &str = "created by weir postgres-cdc";

#[derive(Clone)]
pub(crate) struct Table {
    pub(crate) schema: String,
    pub(crate) name: String,
    /// Name and type OID, in column order.
    pub(crate) columns: Vec<(String, u32)>,
    /// Primary key column names (empty: no key, records carry a null key).
    pub(crate) key: Vec<String>,
    /// What is the same for every event of the table, rendered once (see [`PostgresCdc::render`]).
    pub(crate) captured: bool,
    pub(crate) topic: Arc<str>,
    /// `"<column>":` of each column, in column order.
    pub(crate) column_keys: Vec<Vec<u8>>,
    /// The key columns' `"<column>":` and index in `columns` (none: always null).
    pub(crate) key_columns: Vec<(Vec<u8>, Option<usize>)>,
    /// `{"version":..,"connector":"postgresql","name":..,` of `source`.
    pub(crate) source_head: String,
    /// `"db":..,"sequence":null,"schema":..,"table":..,` of `source`.
    pub(crate) source_tail: String,
}

impl Table {
    /// A table with nothing rendered yet: see [`PostgresCdc::render`].
    pub(crate) fn new(schema: String, name: String, columns: Vec<(String, u32)>) -> Self {
        Table {
            schema,
            name,
            columns,
            key: Vec::new(),
            captured: false,
            topic: Arc::from(""),
            column_keys: Vec::new(),
            key_columns: Vec::new(),
            source_head: String::new(),
            source_tail: String::new(),
        }
    }
}

pub(crate) fn pg_error(context: &str) -> impl FnOnce(PgError) -> ConnectorError + '_ {
    move |error| error.into_connector_error(context)
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(crate) fn text_column(row: &Map<String, Value>, name: &str) -> Option<String> {
    row.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// With `slot.drop.on.delete`: drop the slot (once its last session let go of it) and the
/// publication if this connector created it (it says so in its comment).
pub(crate) fn drop_on_delete(config: &CdcConfig) -> Result<(), ConnectorError> {
    if !config.slot_drop_on_delete {
        return Ok(());
    }
    connect(config)?;
    let slot = quote_literal(&config.slot_name);
    // The deleted task's replication session may take a moment to end on the server.
    let mut attempts = 0;
    loop {
        let rows = pg::query_rows(&format!(
            "SELECT active::text AS active FROM pg_replication_slots WHERE slot_name = {slot}"
        ))
        .map_err(pg_error("looking up the replication slot"))?;
        let Some(row) = rows.first() else { break };
        if text_column(row, "active").as_deref() != Some("true") {
            pg::query(&format!("SELECT pg_drop_replication_slot({slot})"))
                .map_err(pg_error("dropping the replication slot"))?;
            break;
        }
        attempts += 1;
        if attempts > 100 {
            return Err(ConnectorError::Retriable(format!(
                "replication slot {} is still in use by another session: not dropped",
                config.slot_name
            )));
        }
        pg::query("SELECT pg_sleep(0.1)").map_err(pg_error("waiting for the replication slot"))?;
    }
    let publication = quote_literal(&config.publication_name);
    let ours = pg::query_rows(&format!(
        "SELECT 1 FROM pg_publication p WHERE p.pubname = {publication} AND obj_description(p.oid, 'pg_publication') = {}",
        quote_literal(PUBLICATION_COMMENT)
    ))
    .map_err(pg_error("looking up the publication"))?;
    if !ours.is_empty() {
        pg::query(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(&config.publication_name)))
            .map_err(pg_error("dropping the publication"))?;
    }
    Ok(())
}

pub(crate) fn connect(config: &CdcConfig) -> Result<(), ConnectorError> {
    pg::connect(&pg::ConnectOptions {
        host: config.hostname.clone(),
        port: config.port,
        database: config.dbname.clone(),
        user: config.user.clone(),
        password: config.password.clone(),
    })
    .map_err(pg_error("connecting to Postgres"))
}

impl PostgresCdc {
    pub(crate) fn ensure_publication(&self) -> Result<(), ConnectorError> {
        let name = &self.config.publication_name;
        let found =
            pg::query_rows(&format!("SELECT pubname FROM pg_publication WHERE pubname = {}", quote_literal(name)))
                .map_err(pg_error("looking up the publication"))?;
        if !found.is_empty() {
            return Ok(());
        }
        let statement = match self.config.publication_autocreate_mode {
            PublicationAutocreate::Disabled => {
                return Err(ConnectorError::Fatal(format!(
                    "publication {name} does not exist and publication.autocreate.mode is disabled: create it (CREATE PUBLICATION {name} FOR TABLE ...)"
                )));
            }
            PublicationAutocreate::AllTables => format!("CREATE PUBLICATION {} FOR ALL TABLES", quote_ident(name)),
            PublicationAutocreate::Filtered => {
                let tables = self.candidate_tables()?;
                if tables.is_empty() {
                    format!("CREATE PUBLICATION {}", quote_ident(name))
                } else {
                    let list: Vec<String> = tables
                        .iter()
                        .map(|(schema, table)| format!("{}.{}", quote_ident(schema), quote_ident(table)))
                        .collect();
                    format!("CREATE PUBLICATION {} FOR TABLE {}", quote_ident(name), list.join(", "))
                }
            }
        };
        // The comment marks it as ours: `slot.drop.on.delete` drops only a publication it made.
        let comment = format!("COMMENT ON PUBLICATION {} IS {}", quote_ident(name), quote_literal(PUBLICATION_COMMENT));
        pg::query(&format!("{statement}; {comment}")).map_err(pg_error("creating the publication"))?;
        self.context.info(&format!("created publication {name}"));
        Ok(())
    }

    /// Every ordinary or partitioned table the filter selects.
    pub(crate) fn candidate_tables(&self) -> Result<Vec<(String, String)>, ConnectorError> {
        let rows = pg::query_rows(
            "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1, 2",
        )
        .map_err(pg_error("listing tables"))?;
        Ok(rows
            .iter()
            .filter_map(|row| Some((text_column(row, "schema")?, text_column(row, "name")?)))
            .filter(|(schema, table)| self.filter.captures(schema, table))
            .collect())
    }

    /// The tables the snapshot reads: those of the publication that the filter selects.
    pub(crate) fn published_tables(&self) -> Result<Vec<Table>, ConnectorError> {
        let rows = pg::query_rows(&format!(
            "SELECT schemaname AS schema, tablename AS name FROM pg_publication_tables WHERE pubname = {} ORDER BY 1, 2",
            quote_literal(&self.config.publication_name)
        ))
        .map_err(pg_error("listing the publication's tables"))?;
        let mut tables = Vec::new();
        for row in rows {
            let (Some(schema), Some(name)) = (text_column(&row, "schema"), text_column(&row, "name")) else { continue };
            if self.filter.captures(&schema, &name) {
                let relation = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
                tables.push(self.describe(&relation, schema, name)?);
            }
        }
        Ok(tables)
    }

    /// Columns and primary key of a relation (`relation`: a quoted name or an OID).
    pub(crate) fn describe(&self, relation: &str, schema: String, name: String) -> Result<Table, ConnectorError> {
        let regclass = if relation.bytes().all(|b| b.is_ascii_digit()) {
            relation.to_owned()
        } else {
            format!("{}::regclass", quote_literal(relation))
        };
        let columns = pg::query_rows(&format!(
            "SELECT attname, atttypid::int8 AS type FROM pg_attribute WHERE attrelid = {regclass} AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ))
        .map_err(pg_error("describing a table"))?;
        let key = pg::query_rows(&format!(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = {regclass} AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)"
        ))
        .map_err(pg_error("reading a primary key"))?;
        let columns = columns
            .iter()
            .filter_map(|row| Some((text_column(row, "attname")?, text_column(row, "type")?.parse().ok()?)))
            .collect();
        let key = key.iter().filter_map(|row| text_column(row, "attname")).collect();
        Ok(self.render(Table::new(schema, name, columns), key))
    }

    pub(crate) fn slot_confirmed_lsn(&self) -> Result<Option<u64>, ConnectorError> {
        let rows = pg::query_rows(&format!(
            "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(&self.config.slot_name)
        ))
        .map_err(pg_error("looking up the replication slot"))?;
        Ok(rows.first().map(|row| text_column(row, "lsn").and_then(|lsn| pg::parse_lsn(&lsn)).unwrap_or(0)))
    }

    pub(crate) fn drop_slot(&self) -> Result<(), ConnectorError> {
        pg::query(&format!("SELECT pg_drop_replication_slot({})", quote_literal(&self.config.slot_name)))
            .map_err(pg_error("dropping the replication slot"))?;
        Ok(())
    }

    /// Fill in what is the same for every event of `table`, whose primary key is `key`.
    pub(crate) fn render(&self, mut table: Table, key: Vec<String>) -> Table {
        let text = |value: &str| serde_json::to_string(value).expect("a string serializes");
        table.captured = self.filter.captures(&table.schema, &table.name);
        table.topic = Arc::from(format!("{}.{}.{}", self.config.topic_prefix, table.schema, table.name));
        table.column_keys = table.columns.iter().map(|(name, _)| format!("{}:", text(name)).into_bytes()).collect();
        table.key_columns = key
            .iter()
            .map(|column| {
                (format!("{}:", text(column)).into_bytes(), table.columns.iter().position(|(name, _)| name == column))
            })
            .collect();
        table.key = key;
        table.source_head = format!(
            "{{\"version\":{},\"connector\":\"postgresql\",\"name\":{},",
            text(Self::VERSION),
            text(&self.config.topic_prefix)
        );
        table.source_tail = format!(
            "\"db\":{},\"sequence\":null,\"schema\":{},\"table\":{},",
            text(&self.config.dbname),
            text(&table.schema),
            text(&table.name)
        );
        table
    }
}
