use weir_connector_sdk::batch::{Headers, SinkRecordRef};
use weir_connector_sdk::config::parse;

use crate::body::{Batches, Encoding, encoding_of};
use crate::config::{AuthType, BodyFormat, HttpSinkConfig};

fn config(extra: &str) -> HttpSinkConfig {
    let mut json: serde_json::Value =
        serde_json::from_str(r#"{"topics":"orders","http.api.url":"http://127.0.0.1:8080/ingest"}"#).unwrap();
    let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
    for (key, value) in extra.as_object().unwrap() {
        json[key] = value.clone();
    }
    parse::<HttpSinkConfig>(&json.to_string()).unwrap()
}

fn record<'a>(offset: i64, value: &'a [u8]) -> SinkRecordRef<'a> {
    SinkRecordRef {
        topic: "orders",
        partition: 0,
        offset,
        timestamp: 0,
        key: None,
        value: Some(value),
        headers: Headers::EMPTY,
    }
}

fn bodies(mut batches: Batches) -> Vec<String> {
    let mut out = Vec::new();
    while batches.close_front().is_some() {
        let batch = batches.pop_front().unwrap();
        out.push(String::from_utf8(batch.body).unwrap());
    }
    out
}

#[test]
fn defaults_follow_confluents_names() {
    let config = config("{}");
    assert!(config.check().is_empty(), "{:?}", config.check());
    assert_eq!(config.method.as_str(), "POST");
    assert_eq!(config.batch_max_size, 500);
    assert_eq!(config.max_retries, 10);
    assert_eq!(config.auth_type, AuthType::None);
    let upper = self::config(r#"{"request.method":"PUT","auth.type":"BEARER","bearer.token":"t"}"#);
    assert_eq!(upper.method.as_str(), "PUT");
    assert!(upper.check().is_empty());
}

#[test]
fn bad_keys_are_named() {
    let fields = |extra: &str| -> Vec<String> { config(extra).check().into_iter().map(|error| error.field).collect() };
    assert_eq!(fields(r#"{"http.api.url":"ftp://x"}"#), ["http.api.url"]);
    assert_eq!(fields(r#"{"headers":"X-A:1|broken"}"#), ["headers"]);
    assert_eq!(fields(r#"{"retry.on.status.codes":"5xx"}"#), ["retry.on.status.codes"]);
    assert_eq!(fields(r#"{"auth.type":"basic"}"#), ["connection.user"]);
    assert_eq!(fields(r#"{"auth.type":"oauth2"}"#), ["oauth2.token.url", "oauth2.client.id", "oauth2.client.secret"]);
    assert_eq!(fields(r#"{"retry.backoff.ms":5000,"retry.backoff.max.ms":100}"#), ["retry.backoff.max.ms"]);
    let unknown = parse::<HttpSinkConfig>(r#"{"topics":"t","http.api.url":"http://x","http.url":"x"}"#).unwrap_err();
    assert_eq!(unknown.field, "http.url");
}

#[test]
fn a_header_value_that_is_a_secret_is_not_echoed() {
    let error = config(r#"{"headers":"Authorization Bearer s3cret"}"#).check().remove(0);
    assert!(!error.message.contains("s3cret"), "{}", error.message);
    let pairs = config(r#"{"headers":"X-A: 1 ; X-B:two:parts","header.separator":";"}"#).header_pairs().unwrap();
    assert_eq!(pairs, [("X-A".to_owned(), "1".to_owned()), ("X-B".to_owned(), "two:parts".to_owned())]);
}

#[test]
fn values_are_json_as_is_text_as_strings_and_binary_refused() {
    assert_eq!(encoding_of(br#"{"a":1}"#), Ok(Encoding::Json));
    assert_eq!(encoding_of(b"42"), Ok(Encoding::Json));
    assert_eq!(encoding_of(b"plain \"text\""), Ok(Encoding::Text));
    assert!(encoding_of(&[0xff, 0xfe]).is_err());
}

#[test]
fn json_batches_are_arrays_cut_by_count_and_bytes() {
    let mut batches = Batches::new(BodyFormat::Json, 2, 1 << 20);
    for (offset, value) in [br#"{"n":1}"#.as_slice(), b"2", b"three"].into_iter().enumerate() {
        let encoding = encoding_of(value).unwrap();
        batches.push(&record(offset as i64, value), value, encoding);
    }
    assert_eq!(batches.records(), 3);
    assert!(batches.front_full());
    assert_eq!(bodies(batches), [r#"[{"n":1},2]"#, r#"["three"]"#]);

    let mut by_bytes = Batches::new(BodyFormat::Json, 100, 10);
    for offset in 0..3 {
        by_bytes.push(&record(offset, b"12345"), b"12345", Encoding::Json);
    }
    assert_eq!(bodies(by_bytes), ["[12345]", "[12345]", "[12345]"]);
}

#[test]
fn one_record_per_request_sends_the_value_alone_and_ndjson_lines() {
    let mut single = Batches::new(BodyFormat::Json, 1, 1 << 20);
    single.push(&record(0, b"{}"), b"{}", Encoding::Json);
    single.push(&record(1, b"[1]"), b"[1]", Encoding::Json);
    assert_eq!(bodies(single), ["{}", "[1]"]);

    let mut lines = Batches::new(BodyFormat::Ndjson, 10, 1 << 20);
    lines.push(&record(0, b"{}"), b"{}", Encoding::Json);
    lines.push(&record(1, b"x"), b"x", Encoding::Text);
    let front = lines.front().unwrap();
    assert_eq!(front.records.iter().map(|origin| origin.offset).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(bodies(lines), ["{}\n\"x\"\n"]);
}

#[test]
fn a_closed_batch_takes_no_more_records() {
    let mut batches = Batches::new(BodyFormat::Json, 10, 1 << 20);
    batches.push(&record(0, b"1"), b"1", Encoding::Json);
    batches.close_front();
    batches.push(&record(1, b"2"), b"2", Encoding::Json);
    assert_eq!(bodies(batches), ["[1]", "[2]"]);
}
