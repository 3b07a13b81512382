//! The catalog side of the connector: the publication and the slot (created, looked up,
//! dropped), the captured tables' columns and keys, and what is the same for every event of a
//! table, rendered once.

use std::sync::Arc;

use serde_json::{Map, Value};
use weir_connector_sdk::postgres::{self as pg, PgError};
use weir_connector_sdk::{Connector, ConnectorError};

use crate::config::{CdcConfig, PublicationAutocreate};
use crate::convert::{Kind, Modes};
use crate::schema::{self, ColumnType, SchemaColumn};
use crate::source::PostgresCdc;

/// The comment on a publication the connector created (and so may drop).
pub(crate) const PUBLICATION_COMMENT: &str = "created by weir postgres-cdc";

/// A column of a captured table.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// How its values convert (see [`crate::convert`]).
    pub(crate) kind: Kind,
    /// What its Connect schema needs.
    pub(crate) column_type: ColumnType,
}

impl Column {
    /// A column known only from a pgoutput Relation message (its type's OID and modifier).
    pub(crate) fn from_relation(name: String, type_oid: u32, typmod: i32) -> Self {
        Column {
            name,
            kind: Kind::classify(type_oid, typmod, "", 0),
            column_type: ColumnType {
                type_oid,
                type_name: String::new(),
                element_name: String::new(),
                enum_labels: None,
                optional: true,
            },
        }
    }
}

#[derive(Clone)]
pub(crate) struct Table {
    pub(crate) schema: String,
    pub(crate) name: String,
    /// The columns, in column order.
    pub(crate) columns: Vec<Column>,
    /// Primary key column names (empty: no key, records carry a null key).
    pub(crate) key: Vec<String>,
    /// What is the same for every event of the table, rendered once (see [`PostgresCdc::render`]).
    pub(crate) captured: bool,
    pub(crate) topic: Arc<str>,
    /// `schema.table`, the `data_collection` of transaction metadata.
    pub(crate) data_collection: Arc<str>,
    /// `"<column>":` of each column, in column order.
    pub(crate) column_keys: Vec<Vec<u8>>,
    /// The key columns' `"<column>":` and index in `columns` (none: always null).
    pub(crate) key_columns: Vec<(Vec<u8>, Option<usize>)>,
    /// `{"version":..,"connector":"postgresql","name":..,` of `source`.
    pub(crate) source_head: String,
    /// `"db":..,` of `source`.
    pub(crate) source_db: String,
    /// `"schema":..,"table":..,` of `source`.
    pub(crate) source_table: String,
    /// The envelope's Connect schema, with `value.converter.schemas.enable`.
    pub(crate) value_schema: Option<String>,
    /// The key's Connect schema, with `key.converter.schemas.enable`.
    pub(crate) key_schema: Option<String>,
}

impl Table {
    /// A table with nothing rendered yet: see [`PostgresCdc::render`].
    pub(crate) fn new(schema: String, name: String, columns: Vec<Column>) -> Self {
        Table {
            schema,
            name,
            columns,
            key: Vec::new(),
            captured: false,
            topic: Arc::from(""),
            data_collection: Arc::from(""),
            column_keys: Vec::new(),
            key_columns: Vec::new(),
            source_head: String::new(),
            source_db: String::new(),
            source_table: String::new(),
            value_schema: None,
            key_schema: None,
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
                let mut tables = self.candidate_tables()?;
                // Signals are read from the stream: the signal table must be published too.
                if let Some((schema, table)) =
                    self.config.signal_data_collection.as_deref().and_then(crate::signal::split_collection)
                    && !tables.iter().any(|(s, t)| s == schema && t == table)
                {
                    tables.push((schema.to_owned(), table.to_owned()));
                }
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
            "SELECT a.attname, a.atttypid::int8 AS type, a.atttypmod::int8 AS typmod, a.attnotnull::text AS notnull, \
             t.typname, coalesce(e.typname, '') AS element, t.typelem::int8 AS elem, \
             (SELECT string_agg(l.enumlabel, ',' ORDER BY l.enumsortorder) FROM pg_enum l WHERE l.enumtypid = a.atttypid) AS labels \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
             WHERE a.attrelid = {regclass} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ))
        .map_err(pg_error("describing a table"))?;
        let key = pg::query_rows(&format!(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = {regclass} AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)"
        ))
        .map_err(pg_error("reading a primary key"))?;
        let columns = columns.iter().filter_map(catalog_column).collect();
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
        let config = &self.config;
        table.captured = self.filter.captures(&table.schema, &table.name);
        let topic = format!("{}.{}.{}", config.topic_prefix, table.schema, table.name);
        table.data_collection = Arc::from(format!("{}.{}", table.schema, table.name));
        table.column_keys =
            table.columns.iter().map(|column| format!("{}:", text(&column.name)).into_bytes()).collect();
        table.key_columns = key
            .iter()
            .map(|name| {
                let index = table.columns.iter().position(|column| &column.name == name);
                (format!("{}:", text(name)).into_bytes(), index)
            })
            .collect();
        table.key = key;
        table.source_head = format!(
            "{{\"version\":{},\"connector\":\"postgresql\",\"name\":{},",
            text(Self::VERSION),
            text(&config.topic_prefix)
        );
        table.source_db = format!("\"db\":{},", text(&config.dbname));
        table.source_table = format!("\"schema\":{},\"table\":{},", text(&table.schema), text(&table.name));
        let modes = Modes::of(config);

        table.value_schema = config.value_schemas_enable.then(|| {
            let columns: Vec<SchemaColumn<'_>> = table.columns.iter().map(schema_column).collect();
            schema::envelope_schema(&topic, &columns, &modes)
        });
        table.key_schema = (config.key_schemas_enable && !table.key_columns.is_empty()).then(|| {
            let columns: Vec<SchemaColumn<'_>> = table
                .key_columns
                .iter()
                .filter_map(|(_, index)| index.map(|index| schema_column(&table.columns[index])))
                .collect();
            schema::key_schema(&topic, &columns, &modes)
        });
        table.topic = Arc::from(topic);
        table
    }
}

/// A column from the catalog query of [`PostgresCdc::describe`].
fn catalog_column(row: &Map<String, Value>) -> Option<Column> {
    let number = |name: &str| text_column(row, name).and_then(|text| text.parse::<i64>().ok());
    let type_oid = u32::try_from(number("type")?).ok()?;
    let typmod = i32::try_from(number("typmod").unwrap_or(-1)).unwrap_or(-1);
    let element_oid = u32::try_from(number("elem").unwrap_or(0)).unwrap_or(0);
    let type_name = text_column(row, "typname").unwrap_or_default();
    let element_name = text_column(row, "element").unwrap_or_default();
    // An array's element type decides; the array type's own name starts with `_`.
    let kind = Kind::classify(type_oid, typmod, &type_name, if element_name.is_empty() { 0 } else { element_oid });
    let kind = match kind {
        Kind::Array(_) if element_name == "hstore" => Kind::Array(Box::new(Kind::Hstore)),
        kind => kind,
    };
    Some(Column {
        name: text_column(row, "attname")?,
        kind,
        column_type: ColumnType {
            type_oid,
            type_name,
            element_name,
            enum_labels: text_column(row, "labels"),
            optional: text_column(row, "notnull").as_deref() != Some("true"),
        },
    })
}

fn schema_column(column: &Column) -> SchemaColumn<'_> {
    SchemaColumn { name: &column.name, kind: &column.kind, column: &column.column_type }
}
