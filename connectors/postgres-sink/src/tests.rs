//! Unit tests of the parts that need no database: config checks, record interpretation,
//! statement planning and SQL text, the offsets compare-and-set, error classification. The
//! end-to-end tests against a real Postgres are in `tests/all/pgsink.rs`.

use serde_json::{Value, json};
use weir_connector_sdk::batch::{SinkBatchReader, SinkBatchWriter, SinkRecordRef};
use weir_connector_sdk::native;
use weir_connector_sdk::postgres::PgError;

use crate::config::{SinkConfig, TableName};
use crate::offsets::{OffsetKey, OffsetUpdate, cas_sql, parse_rows};
use crate::plan::{PieceKind, plan};
use crate::record::{Change, KeyRule};
use crate::sql::{self, ColumnKind, ColumnType, Row};
use crate::{PostgresSink, SqlFailure, classify, sqlstate};

fn config(extra: Value) -> SinkConfig {
    let mut base = json!({
        "topics": "orders",
        "database.hostname": "127.0.0.1",
        "database.user": "weir",
        "database.dbname": "target",
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        base[key] = value;
    }
    serde_json::from_value(base).unwrap()
}

fn fields(errors: &[weir_connector_sdk::FieldError]) -> Vec<&str> {
    errors.iter().map(|error| error.field.as_str()).collect()
}

#[test]
fn validate_names_each_bad_key() {
    let connector = native::sink_connector::<PostgresSink>();
    let base = r#""topics":"t","database.hostname":"h","database.user":"u","database.dbname":"d""#;
    assert_eq!(connector.validate(&format!("{{{base}}}")), Ok(()));
    let errors = connector.validate(&format!(r#"{{{base},"insert.mode":"merge"}}"#)).unwrap_err();
    assert_eq!(fields(&errors), ["insert.mode"]);
    let errors = connector.validate(&format!(r#"{{{base},"pk.mod":"kafka"}}"#)).unwrap_err();
    assert_eq!(fields(&errors), ["pk.mod"]);
    let errors = connector
        .validate(&format!(r#"{{{base},"insert.mode":"upsert","delete.enabled":true,"batch.size":0}}"#))
        .unwrap_err();
    assert_eq!(fields(&errors), ["insert.mode", "delete.enabled", "batch.size"]);
    let errors = connector
        .validate(&format!(r#"{{{base},"pk.mode":"record_value","table.name.format":"s.${{topic}}.${{partition}}"}}"#))
        .unwrap_err();
    assert_eq!(fields(&errors), ["pk.fields", "table.name.format"]);
    let errors = connector.validate(r#"{"topics":"t","database.hostname":"h","database.user":"u"}"#).unwrap_err();
    assert_eq!(fields(&errors), ["database.dbname"]);
    let errors = connector
        .validate(&format!(r#"{{{base},"pk.mode":"kafka","pk.fields":"a,b","offsets.table":"s."}}"#))
        .unwrap_err();
    assert_eq!(fields(&errors), ["pk.fields", "offsets.table"]);
}

#[test]
fn the_password_is_a_secret_in_the_schema() {
    let spec = native::sink_connector::<PostgresSink>().spec();
    let schema: Value = serde_json::from_str(&spec.config_schema).unwrap();
    assert_eq!(schema["properties"]["database.password"]["writeOnly"], json!(true));
    assert!(schema["properties"]["insert.mode"].is_object());
}

#[test]
fn table_names_take_the_topic_and_keep_its_dots_in_the_table_part() {
    let table = TableName::for_topic("${topic}", "pg.public.accounts").unwrap();
    assert_eq!(table, TableName { schema: None, table: "pg.public.accounts".into() });
    assert_eq!(table.to_sql(), "\"pg.public.accounts\"");
    let table = TableName::for_topic("sink.${topic}_copy", "orders").unwrap();
    assert_eq!(table.to_sql(), "\"sink\".\"orders_copy\"");
    assert_eq!(table.display(), "sink.orders_copy");
    assert!(TableName::for_topic("${topic}", &"x".repeat(64)).is_err());
    assert_eq!(TableName::parse("a\"b").unwrap().to_sql(), "\"a\"\"b\"");
}

/// One sink record, as the runtime hands it over.
fn with_record<T>(
    key: Option<&str>,
    value: Option<&str>,
    offset: i64,
    body: impl FnOnce(&SinkRecordRef<'_>) -> T,
) -> T {
    let mut writer = SinkBatchWriter::new();
    writer.push("orders", 2, offset, 0, key.map(str::as_bytes), value.map(str::as_bytes), std::iter::empty());
    let bytes = writer.finish();
    let record = SinkBatchReader::new(&bytes).unwrap().next().unwrap().unwrap();
    body(&record)
}

fn change(config: &SinkConfig, key: Option<&str>, value: Option<&str>) -> Result<Change, String> {
    let rule = KeyRule::new(config);
    with_record(key, value, 7, |record| rule.change(record))
}

fn row(value: Value) -> Row {
    value.as_object().cloned().unwrap()
}

#[test]
fn debezium_events_unwrap_to_writes_and_deletes_by_key() {
    let keyed = config(json!({ "pk.mode": "record_key", "insert.mode": "upsert", "delete.enabled": true }));
    let event = r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c","source":{"table":"t"},"ts_ms":1}"#;
    assert_eq!(
        change(&keyed, Some(r#"{"id":1}"#), Some(event)).unwrap(),
        Change::Write { key: row(json!({"id": 1})), row: row(json!({"id": 1, "name": "a"})) }
    );
    let delete = r#"{"before":{"id":1,"name":"a"},"after":null,"op":"d","source":{}}"#;
    assert_eq!(
        change(&keyed, Some(r#"{"id":1}"#), Some(delete)).unwrap(),
        Change::Delete { key: row(json!({"id": 1})) }
    );
    assert_eq!(change(&keyed, Some(r#"{"id":1}"#), None).unwrap(), Change::Delete { key: row(json!({"id": 1})) });
    let truncate = r#"{"before":null,"after":null,"op":"t","source":{}}"#;
    assert!(matches!(change(&keyed, None, Some(truncate)).unwrap(), Change::Skip(_)));
    // JsonConverter with schemas: the payload.
    let framed = format!(r#"{{"schema":{{"type":"struct"}},"payload":{event}}}"#);
    let key = r#"{"schema":{"type":"struct"},"payload":{"id":1}}"#;
    assert!(matches!(change(&keyed, Some(key), Some(&framed)).unwrap(), Change::Write { .. }));
    // Off: the envelope is the row.
    let plain = config(json!({ "debezium.unwrap": false }));
    let Change::Write { row: written, .. } = change(&plain, None, Some(event)).unwrap() else { panic!() };
    assert!(written.contains_key("op"));
}

#[test]
fn keys_come_from_the_mode_and_bad_records_say_why() {
    let by_key = config(json!({ "pk.mode": "record_key", "pk.fields": "id" }));
    let Change::Write { key, row: written } = change(&by_key, Some("42"), Some(r#"{"name":"x"}"#)).unwrap() else {
        panic!()
    };
    assert_eq!(key, row(json!({"id": 42})));
    assert_eq!(written, row(json!({"id": 42, "name": "x"})));
    // A key that is not JSON is a string.
    let Change::Write { key, .. } = change(&by_key, Some("abc"), Some("{}")).unwrap() else { panic!() };
    assert_eq!(key, row(json!({"id": "abc"})));
    let by_value = config(json!({ "pk.mode": "record_value", "pk.fields": "a,b", "insert.mode": "upsert" }));
    let Change::Write { key, .. } = change(&by_value, None, Some(r#"{"a":1,"b":"x","c":true}"#)).unwrap() else {
        panic!()
    };
    assert_eq!(key, row(json!({"a": 1, "b": "x"})));
    let kafka = config(json!({ "pk.mode": "kafka" }));
    let Change::Write { key, .. } = change(&kafka, None, Some("{}")).unwrap() else { panic!() };
    assert_eq!(key, row(json!({"__connect_topic": "orders", "__connect_partition": 2, "__connect_offset": 7})));

    let whole_key = config(json!({ "pk.mode": "record_key" }));
    assert!(change(&whole_key, None, Some("{}")).unwrap_err().contains("no key"));
    assert!(change(&whole_key, Some("5"), Some("{}")).unwrap_err().contains("pk.fields"));
    assert!(change(&whole_key, Some(r#"{"id":null}"#), Some("{}")).unwrap_err().contains("id is null"));
    assert!(change(&by_value, None, Some(r#"{"a":1}"#)).unwrap_err().contains("no key field b"));
    assert!(change(&whole_key, Some("1"), Some("not json")).unwrap_err().contains("not JSON"));
    assert!(change(&whole_key, Some(r#"{"id":1}"#), Some("[1]")).unwrap_err().contains("array"));
    assert!(matches!(change(&whole_key, Some(r#"{"id":1}"#), None).unwrap(), Change::Skip(_)));
}

fn write(id: i64, value: Value) -> Change {
    let mut written = row(value);
    written.insert("id".into(), json!(id));
    Change::Write { key: row(json!({ "id": id })), row: written }
}

fn delete(id: i64) -> Change {
    Change::Delete { key: row(json!({ "id": id })) }
}

#[test]
fn plans_collapse_repeated_keys_and_keep_order_where_it_matters() {
    let table = TableName::parse("t").unwrap();
    let changes = vec![
        (0, write(1, json!({"v": 1}))),
        (1, write(2, json!({"v": 1}))),
        (2, write(1, json!({"v": 2}))),
        (3, delete(2)),
        (4, write(3, json!({"v": 1, "w": 1}))),
        // Sets fewer columns than the write before it: cannot replace it, a new round begins.
        (5, write(3, json!({"v": 2}))),
    ];
    let pieces = plan(&table, crate::InsertMode::Upsert, changes, 100);
    let shape: Vec<(PieceKind, Vec<usize>)> =
        pieces.iter().map(|piece| (piece.kind, piece.items.iter().map(|(index, _)| *index).collect())).collect();
    assert_eq!(
        shape,
        [
            (PieceKind::Delete, vec![3]),
            (PieceKind::Upsert, vec![2]),
            (PieceKind::Upsert, vec![4]),
            (PieceKind::Upsert, vec![5])
        ]
    );
    assert_eq!(pieces[1].names, ["id", "v"]);
    assert_eq!(pieces[2].names, ["id", "v", "w"]);

    // Insert mode never merges a repeated key: the second INSERT must meet the first.
    let inserts =
        plan(&table, crate::InsertMode::Insert, vec![(0, write(1, json!({}))), (1, write(1, json!({})))], 100);
    assert_eq!(inserts.len(), 2);
    // Chunks of batch.size rows.
    let many = (0..5).map(|id| (id as usize, write(id, json!({"v": id})))).collect();
    let chunks: Vec<usize> =
        plan(&table, crate::InsertMode::Upsert, many, 2).iter().map(|piece| piece.items.len()).collect();
    assert_eq!(chunks, [2, 2, 1]);
}

fn columns() -> std::collections::BTreeMap<String, ColumnType> {
    [
        ("id", ColumnType::from_catalog("integer", "N", "int4")),
        ("name", ColumnType::from_catalog("text", "S", "text")),
        ("tags", ColumnType::from_catalog("text[]", "A", "_text")),
        ("doc", ColumnType::from_catalog("jsonb", "U", "jsonb")),
        ("blob", ColumnType::from_catalog("bytea", "U", "bytea")),
    ]
    .into_iter()
    .map(|(name, column)| (name.to_owned(), column))
    .collect()
}

#[test]
fn statements_quote_values_for_their_columns() {
    let table = TableName::parse("t").unwrap();
    let names = ["blob", "doc", "id", "name", "tags"].map(str::to_owned);
    let key = ["id".to_owned()];
    let first = row(json!({"id": 1, "name": "it's", "tags": ["a", "b \"c\""], "doc": "{\"k\":1}", "blob": "AQI="}));
    let second = row(json!({"id": 2, "name": null, "tags": null, "doc": {"k": [1]}, "blob": null}));
    let statement = sql::insert(&table, &names, &key, &[&first, &second], &columns(), true).unwrap();
    assert_eq!(
        statement,
        "INSERT INTO \"t\" (\"blob\",\"doc\",\"id\",\"name\",\"tags\") VALUES \
         ('\\x0102','{\"k\":1}','1','it''s','{\"a\",\"b \\\"c\\\"\"}'),(NULL,'{\"k\":[1]}','2',NULL,NULL) \
         ON CONFLICT (\"id\") DO UPDATE SET \"blob\" = EXCLUDED.\"blob\", \"doc\" = EXCLUDED.\"doc\", \
         \"name\" = EXCLUDED.\"name\", \"tags\" = EXCLUDED.\"tags\""
    );
    let names = ["id", "name"].map(str::to_owned);
    let statement = sql::update(&table, &names, &key, &[&first, &second], &columns()).unwrap().unwrap();
    assert_eq!(
        statement,
        "UPDATE \"t\" AS t SET \"name\" = v.\"name\" FROM (VALUES ('1'::integer,'it''s'::text),('2',NULL)) \
         AS v (\"id\",\"name\") WHERE t.\"id\" = v.\"id\""
    );
    assert_eq!(sql::update(&table, &key, &key, &[&first], &columns()).unwrap(), None);
    let statement = sql::delete(&table, &key, &[&row(json!({"id": 3}))], &columns()).unwrap();
    assert_eq!(
        statement,
        "DELETE FROM \"t\" AS t USING (VALUES ('3'::integer)) AS v (\"id\") WHERE t.\"id\" = v.\"id\""
    );
    let nul = row(json!({"id": 1, "name": "a\u{0}b"}));
    let error = sql::insert(&table, &names, &key, &[&first, &nul], &columns(), false).unwrap_err();
    assert_eq!(error.0, 1);
    let missing = sql::insert(&table, &["nope".to_owned()], &key, &[&first], &columns(), false).unwrap_err();
    assert!(missing.1.0.contains("no column nope"));
}

#[test]
fn copy_input_escapes_text_format_specials_and_writes_null_as_backslash_n() {
    let table = TableName::parse("s.t").unwrap();
    let names = ["blob", "doc", "id", "name", "tags"].map(str::to_owned);
    let first = row(
        json!({"id": 1, "name": "tab\there\nnew\\back\rcr", "tags": ["a", "b\tc"], "doc": {"k": "x\ny"}, "blob": "AQI="}),
    );
    let second = row(json!({"id": 2, "name": null, "tags": null, "doc": null}));
    let (statement, data) = sql::copy(&table.to_sql(), &names, &[&first, &second], &columns()).unwrap();
    assert_eq!(statement, "COPY \"s\".\"t\" (\"blob\",\"doc\",\"id\",\"name\",\"tags\") FROM STDIN");
    assert_eq!(
        data,
        "\\\\x0102\t{\"k\":\"x\\\\ny\"}\t1\ttab\\there\\nnew\\\\back\\rcr\t{\"a\",\"b\\tc\"}\n\
         \\N\t\\N\t2\t\\N\t\\N\n"
    );
    let (create, merge) = sql::staged_upsert(&table, &["id".to_owned(), "name".to_owned()], &["id".to_owned()], "st");
    assert_eq!(
        create,
        "CREATE TEMPORARY TABLE st ON COMMIT DROP AS SELECT \"id\",\"name\" FROM \"s\".\"t\" WITH NO DATA"
    );
    assert_eq!(
        merge,
        "INSERT INTO \"s\".\"t\" (\"id\",\"name\") SELECT \"id\",\"name\" FROM st \
         ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\""
    );
    let nul = row(json!({"id": 3, "name": "a\u{0}b"}));
    assert_eq!(sql::copy(&table.to_sql(), &names, &[&first, &nul], &columns()).unwrap_err().0, 1);
}

#[test]
fn auto_created_columns_follow_the_json_types() {
    let types: Vec<String> = [json!(1), json!(u64::MAX), json!(1.5), json!(true), json!("x"), json!([1]), json!(null)]
        .iter()
        .map(|value| ColumnType::for_value(value).sql_type)
        .collect();
    assert_eq!(types, ["bigint", "numeric", "double precision", "boolean", "text", "jsonb", "text"]);
    assert_eq!(ColumnType::for_value(&json!({})).kind, ColumnKind::Json);
    let table = TableName::parse("s.t").unwrap();
    let created = sql::create_table(
        &table,
        &[("id".into(), ColumnType::for_value(&json!(1))), ("v".into(), ColumnType::for_value(&json!("x")))],
        &["id".into()],
    );
    assert_eq!(
        created,
        "CREATE TABLE IF NOT EXISTS \"s\".\"t\" (\"id\" bigint NOT NULL, \"v\" text, PRIMARY KEY (\"id\"))"
    );
}

#[test]
fn the_offsets_compare_and_set_expects_the_last_offset_and_raises_wsk01() {
    let table = TableName::parse("__weir_sink_offsets").unwrap();
    let key = |partition| OffsetKey { table: "t".into(), topic: "orders".into(), partition };
    let statement = cas_sql(
        &table,
        &[
            OffsetUpdate { key: key(0), expected: Some(9), offset: 20 },
            OffsetUpdate { key: key(1), expected: None, offset: 3 },
        ],
    );
    assert!(
        statement.starts_with("DO $weir$ BEGIN UPDATE \"__weir_sink_offsets\" SET kafka_offset = 20"),
        "{statement}"
    );
    assert!(statement.contains("kafka_partition = 0 AND kafka_offset = 9;"), "{statement}");
    assert!(statement.contains("VALUES ('t', 'orders', 1, 3) ON CONFLICT DO NOTHING"), "{statement}");
    assert_eq!(statement.matches("ERRCODE = 'WSK01'").count(), 2);
    // A topic holding the tag cannot end the dollar quote.
    let tricky = OffsetUpdate { key: OffsetKey { topic: "$weir$".into(), ..key(0) }, expected: None, offset: 1 };
    assert!(cas_sql(&table, &[tricky]).starts_with("DO $weir_$ "));

    let rows = vec![row(json!({"target_table": "t", "topic": "orders", "kafka_partition": "1", "kafka_offset": "41"}))];
    let stored = parse_rows(&rows).unwrap();
    assert_eq!(stored.get(&key(1)), Some(&41));
    assert!(parse_rows(&[row(json!({"topic": "x"}))]).is_err());
}

#[test]
fn failures_are_classified_by_sqlstate() {
    let server = |message: &str| classify(PgError::Server(message.into()));
    assert_eq!(sqlstate("ERROR: duplicate key value (23505)"), Some("23505"));
    assert_eq!(sqlstate("ERROR: no code (here)"), None);
    assert!(matches!(
        server("ERROR: duplicate key value violates unique constraint \"t_pkey\" (23505)"),
        SqlFailure::Record(_)
    ));
    assert!(matches!(server("ERROR: invalid input syntax for type integer (22P02)"), SqlFailure::Record(_)));
    assert!(matches!(server("ERROR: moved by another instance (WSK01)"), SqlFailure::Fenced(_)));
    assert!(matches!(
        server("ERROR: ON CONFLICT DO UPDATE command cannot affect row a second time (21000)"),
        SqlFailure::Record(_)
    ));
    assert!(matches!(server("ERROR: deadlock detected (40P01)"), SqlFailure::Transient(_)));
    assert!(matches!(server("FATAL: the database system is starting up (57P03)"), SqlFailure::Transient(_)));
    assert!(matches!(server("ERROR: permission denied for table t (42501)"), SqlFailure::Fatal(_)));
    assert!(matches!(classify(PgError::Connection("reset".into())), SqlFailure::Connection(_)));
    assert!(matches!(classify(PgError::NotGranted("no".into())), SqlFailure::Fatal(_)));
}

#[test]
fn natively_a_put_fails_without_the_host_capability() {
    let config = r#"{"topics":"t","database.hostname":"h","database.user":"u","database.dbname":"d"}"#;
    let mut task = native::open_sink::<PostgresSink>(config, "null", 0, Box::new(native::MemoryHost::new())).unwrap();
    let mut batch = SinkBatchWriter::new();
    batch.push("t", 0, 0, 0, None, Some(b"{}"), std::iter::empty());
    let error = task.put(&batch.finish()).unwrap_err();
    assert!(!error.is_retriable(), "{error}");
    assert!(error.message().contains("unavailable natively"), "{error}");
}
