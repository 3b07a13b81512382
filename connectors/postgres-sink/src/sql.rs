//! SQL text: quoting, values as literals for their target column, and the batched statements.
//!
//! The host's `postgres.query` runs the simple query protocol (no bind parameters), so values go
//! into the statement as string literals. An untyped literal (`'42'`) in `INSERT ... VALUES`
//! takes its target column's type, so an INSERT needs no casts; the `VALUES` lists of UPDATE and
//! DELETE are a join input whose types come from their first row, so that row is cast.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::Value;

use crate::config::TableName;

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal (`standard_conforming_strings` is on in every supported Postgres).
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_literal(&mut out, text);
    out
}

fn push_literal(out: &mut String, text: &str) {
    out.push('\'');
    for character in text.chars() {
        if character == '\'' {
            out.push('\'');
        }
        out.push(character);
    }
    out.push('\'');
}

/// What the sink needs to know of a target column to write a JSON value into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// `format_type` of the column, e.g. `integer`, `character(84)`, `text[]`.
    pub sql_type: String,
    pub kind: ColumnKind,
}

/// The column types whose literal form differs from the JSON value's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// An array type: a JSON array becomes an array literal (`{a,"b c"}`).
    Array,
    /// `json` / `jsonb`: a JSON string is taken as JSON text (Debezium writes json columns so).
    Json,
    /// `bytea`: a string is base64 (Debezium's default `binary.handling.mode`).
    Bytea,
    Other,
}

impl ColumnType {
    /// From the catalog: `format_type`, `pg_type.typcategory` and `typname`.
    pub fn from_catalog(sql_type: &str, category: &str, type_name: &str) -> Self {
        let kind = match (category, type_name) {
            ("A", _) => ColumnKind::Array,
            (_, "json" | "jsonb") => ColumnKind::Json,
            (_, "bytea") => ColumnKind::Bytea,
            _ => ColumnKind::Other,
        };
        Self { sql_type: sql_type.to_owned(), kind }
    }

    /// The column type `auto.create` and `auto.evolve` give a field from its JSON value.
    pub fn for_value(value: &Value) -> Self {
        let (sql_type, kind) = match value {
            Value::Bool(_) => ("boolean", ColumnKind::Other),
            Value::Number(number) if number.is_i64() => ("bigint", ColumnKind::Other),
            Value::Number(number) if number.is_u64() => ("numeric", ColumnKind::Other),
            Value::Number(_) => ("double precision", ColumnKind::Other),
            Value::Array(_) | Value::Object(_) => ("jsonb", ColumnKind::Json),
            Value::String(_) | Value::Null => ("text", ColumnKind::Other),
        };
        Self { sql_type: sql_type.to_owned(), kind }
    }
}

/// A value that cannot be written into its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

/// The text form of `value` for a column of `column` type, as Postgres reads it from a literal
/// or from COPY; `None` for null.
///
/// # Errors
/// A string holding a NUL character (Postgres text cannot store it).
fn text_form<'v>(value: &'v Value, column: &ColumnType) -> Result<Option<Cow<'v, str>>, ValueError> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::String(text) => {
            if text.contains('\0') {
                return Err(ValueError("a string holds a NUL character, which Postgres text cannot store".into()));
            }
            match column.kind {
                ColumnKind::Bytea => match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => {
                        let mut hex = String::with_capacity(2 + bytes.len() * 2);
                        hex.push_str("\\x");
                        for byte in bytes {
                            let _ = write!(hex, "{byte:02x}");
                        }
                        Cow::Owned(hex)
                    }
                    Err(_) => Cow::Borrowed(text.as_str()),
                },
                _ => Cow::Borrowed(text.as_str()),
            }
        }
        Value::Bool(flag) => Cow::Borrowed(if *flag { "true" } else { "false" }),
        Value::Number(number) => Cow::Owned(number.to_string()),
        Value::Array(items) if column.kind == ColumnKind::Array => {
            let mut array = String::new();
            push_array(&mut array, items)?;
            Cow::Owned(array)
        }
        Value::Array(_) | Value::Object(_) => Cow::Owned(value.to_string()),
    }))
}

/// Append `value` as a literal for a column of `column` type (`NULL` for null).
///
/// # Errors
/// A string holding a NUL character (Postgres text cannot store it).
pub fn push_value(out: &mut String, value: &Value, column: &ColumnType) -> Result<(), ValueError> {
    match text_form(value, column)? {
        None => out.push_str("NULL"),
        Some(text) => push_literal(out, &text),
    }
    Ok(())
}

/// Append `value` as a field of COPY's text format (`\N` for null; backslash, tab, newline and
/// carriage return escaped).
///
/// # Errors
/// As [`push_value`].
pub fn push_copy_value(out: &mut String, value: &Value, column: &ColumnType) -> Result<(), ValueError> {
    let Some(text) = text_form(value, column)? else {
        out.push_str("\\N");
        return Ok(());
    };
    let mut rest: &str = &text;
    while let Some(position) = rest.find(['\\', '\t', '\n', '\r']) {
        out.push_str(&rest[..position]);
        out.push_str(match rest.as_bytes()[position] {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            _ => "\\r",
        });
        rest = &rest[position + 1..];
    }
    out.push_str(rest);
    Ok(())
}

/// A Postgres array literal's text (`{1,"b c",NULL,{2,3}}`).
fn push_array(out: &mut String, items: &[Value]) -> Result<(), ValueError> {
    out.push('{');
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => push_array(out, inner)?,
            Value::String(text) => {
                if text.contains('\0') {
                    return Err(ValueError("an array element holds a NUL character".into()));
                }
                push_array_element(out, text);
            }
            other => push_array_element(out, &other.to_string()),
        }
    }
    out.push('}');
    Ok(())
}

fn push_array_element(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        if character == '"' || character == '\\' {
            out.push('\\');
        }
        out.push(character);
    }
    out.push('"');
}

/// One row to write: its column values by name (key columns included).
pub type Row = serde_json::Map<String, Value>;

/// Column lookup for rendering: the table's columns.
pub trait Columns {
    fn column(&self, name: &str) -> Option<&ColumnType>;
}

impl Columns for std::collections::BTreeMap<String, ColumnType> {
    fn column(&self, name: &str) -> Option<&ColumnType> {
        self.get(name)
    }
}

fn column_of<'a>(columns: &'a impl Columns, name: &str) -> Result<&'a ColumnType, ValueError> {
    columns.column(name).ok_or_else(|| ValueError(format!("the table has no column {name}")))
}

/// `(v1, v2, ...)` of `row` in the order of `names`; `cast` casts each literal to its type.
fn push_tuple(
    out: &mut String,
    row: &Row,
    names: &[String],
    columns: &impl Columns,
    cast: bool,
) -> Result<(), ValueError> {
    out.push('(');
    for (position, name) in names.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let column = column_of(columns, name)?;
        push_value(out, row.get(name).unwrap_or(&Value::Null), column)?;
        if cast {
            out.push_str("::");
            out.push_str(&column.sql_type);
        }
    }
    out.push(')');
    Ok(())
}

fn idents(names: &[String]) -> String {
    names.iter().map(|name| ident(name)).collect::<Vec<_>>().join(",")
}

/// `INSERT INTO t (cols) VALUES (...), ...`, with `ON CONFLICT (key) DO UPDATE` when `upsert`.
///
/// # Errors
/// A value that cannot be written (the row's index in `rows`).
pub fn insert(
    table: &TableName,
    names: &[String],
    key: &[String],
    rows: &[&Row],
    columns: &impl Columns,
    upsert: bool,
) -> Result<String, (usize, ValueError)> {
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", table.to_sql(), idents(names));
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            sql.push(',');
        }
        push_tuple(&mut sql, row, names, columns, false).map_err(|error| (index, error))?;
    }
    if upsert {
        push_on_conflict(&mut sql, names, key);
    }
    Ok(sql)
}

/// ` ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, ...` (`DO NOTHING` without other columns).
fn push_on_conflict(sql: &mut String, names: &[String], key: &[String]) {
    let _ = write!(sql, " ON CONFLICT ({}) DO ", idents(key));
    let updated: Vec<String> = names
        .iter()
        .filter(|name| !key.contains(name))
        .map(|name| format!("{0} = EXCLUDED.{0}", ident(name)))
        .collect();
    if updated.is_empty() {
        sql.push_str("NOTHING");
    } else {
        let _ = write!(sql, "UPDATE SET {}", updated.join(", "));
    }
}

/// An upsert through a staging table: the statement creating `stage` (a temporary table with
/// `names`' columns of `table`, dropped when the transaction ends), and the one moving its rows
/// into `table` with `ON CONFLICT (key) DO UPDATE`. The rows go in between by [`copy`] into
/// `stage`.
pub fn staged_upsert(table: &TableName, names: &[String], key: &[String], stage: &str) -> (String, String) {
    let columns = idents(names);
    let create = format!(
        "CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM {} WITH NO DATA",
        table.to_sql()
    );
    let mut merge = format!("INSERT INTO {} ({columns}) SELECT {columns} FROM {stage}", table.to_sql());
    push_on_conflict(&mut merge, names, key);
    (create, merge)
}

/// `COPY table (cols) FROM STDIN` (`table` as SQL) and its input: `rows` in COPY's text format,
/// one line each; `columns` are the target's.
///
/// # Errors
/// A value that cannot be written (the row's index in `rows`).
pub fn copy(
    table: &str,
    names: &[String],
    rows: &[&Row],
    columns: &impl Columns,
) -> Result<(String, String), (usize, ValueError)> {
    let statement = format!("COPY {table} ({}) FROM STDIN", idents(names));
    let types: Vec<&ColumnType> =
        names.iter().map(|name| column_of(columns, name)).collect::<Result<_, _>>().map_err(|error| (0, error))?;
    let mut data = String::with_capacity(rows.len() * 64);
    for (index, row) in rows.iter().enumerate() {
        for (position, (name, column)) in names.iter().zip(&types).enumerate() {
            if position > 0 {
                data.push('\t');
            }
            push_copy_value(&mut data, row.get(name).unwrap_or(&Value::Null), column)
                .map_err(|error| (index, error))?;
        }
        data.push('\n');
    }
    Ok((statement, data))
}

/// `UPDATE t SET c = v.c FROM (VALUES ...) AS v(cols) WHERE t.k = v.k`; `None` when the rows
/// hold only key columns (nothing to update).
///
/// # Errors
/// A value that cannot be written (the row's index in `rows`).
pub fn update(
    table: &TableName,
    names: &[String],
    key: &[String],
    rows: &[&Row],
    columns: &impl Columns,
) -> Result<Option<String>, (usize, ValueError)> {
    let set: Vec<String> =
        names.iter().filter(|name| !key.contains(name)).map(|name| format!("{0} = v.{0}", ident(name))).collect();
    if set.is_empty() {
        return Ok(None);
    }
    let mut sql = format!("UPDATE {} AS t SET {} FROM (VALUES ", table.to_sql(), set.join(", "));
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            sql.push(',');
        }
        push_tuple(&mut sql, row, names, columns, index == 0).map_err(|error| (index, error))?;
    }
    let _ = write!(sql, ") AS v ({}) WHERE {}", idents(names), key_match(key));
    Ok(Some(sql))
}

/// `DELETE FROM t USING (VALUES ...) AS v(key) WHERE t.k = v.k`.
///
/// # Errors
/// A key value that cannot be written (the row's index in `keys`).
pub fn delete(
    table: &TableName,
    key: &[String],
    keys: &[&Row],
    columns: &impl Columns,
) -> Result<String, (usize, ValueError)> {
    let mut sql = format!("DELETE FROM {} AS t USING (VALUES ", table.to_sql());
    for (index, row) in keys.iter().enumerate() {
        if index > 0 {
            sql.push(',');
        }
        push_tuple(&mut sql, row, key, columns, index == 0).map_err(|error| (index, error))?;
    }
    let _ = write!(sql, ") AS v ({}) WHERE {}", idents(key), key_match(key));
    Ok(sql)
}

fn key_match(key: &[String]) -> String {
    key.iter().map(|name| format!("t.{0} = v.{0}", ident(name))).collect::<Vec<_>>().join(" AND ")
}

/// `CREATE TABLE IF NOT EXISTS` with `columns` (in order) and `key` as the primary key.
pub fn create_table(table: &TableName, columns: &[(String, ColumnType)], key: &[String]) -> String {
    let mut parts: Vec<String> = columns
        .iter()
        .map(|(name, column)| {
            let not_null = if key.contains(name) { " NOT NULL" } else { "" };
            format!("{} {}{not_null}", ident(name), column.sql_type)
        })
        .collect();
    if !key.is_empty() {
        parts.push(format!("PRIMARY KEY ({})", idents(key)));
    }
    format!("CREATE TABLE IF NOT EXISTS {} ({})", table.to_sql(), parts.join(", "))
}

/// `ALTER TABLE ... ADD COLUMN IF NOT EXISTS ...` for each new column.
pub fn add_columns(table: &TableName, columns: &[(String, ColumnType)]) -> String {
    let added: Vec<String> = columns
        .iter()
        .map(|(name, column)| format!("ADD COLUMN IF NOT EXISTS {} {}", ident(name), column.sql_type))
        .collect();
    format!("ALTER TABLE {} {}", table.to_sql(), added.join(", "))
}

/// The columns of `table` (name, `format_type`, category, type name), for [`ColumnType::from_catalog`];
/// no rows when the table does not exist.
pub fn columns_query(table: &TableName) -> String {
    format!(
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, t.typcategory AS category, \
         t.typname AS type_name FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        literal(&table.to_sql())
    )
}

/// Whether `table` exists (`present` is `t` or `f`).
pub fn exists_query(table: &TableName) -> String {
    format!("SELECT to_regclass({}) IS NOT NULL AS present", literal(&table.to_sql()))
}
