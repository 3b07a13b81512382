//! Column values from Postgres' text form (what pgoutput and the snapshot read send) to JSON,
//! the way Debezium's JSON events carry them.
//!
//! Both sessions pin `TimeZone=UTC`, `DateStyle=ISO` and `IntervalStyle=iso_8601`, so the text
//! forms parsed here do not depend on the server's defaults.

use base64::Engine as _;
use serde_json::Value;

pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT4: u32 = 23;
pub const OID: u32 = 26;
pub const JSON: u32 = 114;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const NUMERIC: u32 = 1700;
pub const JSONB: u32 = 3802;

/// The element type of an array type, for the common built-in array types.
fn array_element(type_oid: u32) -> Option<u32> {
    Some(match type_oid {
        1000 => BOOL,
        1001 => BYTEA,
        1005 => INT2,
        1007 => INT4,
        1016 => INT8,
        1021 => FLOAT4,
        1022 => FLOAT8,
        1231 => NUMERIC,
        1009 | 1015 | 1014 | 2951 | 1182 | 1183 | 1115 | 1185 | 199 | 3807 => match type_oid {
            199 => JSON,
            3807 => JSONB,
            1115 => TIMESTAMP,
            1185 => TIMESTAMPTZ,
            _ => 25, // text-like: kept as strings
        },
        _ => return None,
    })
}

/// Convert one value in text form of type `type_oid` to JSON.
pub fn convert(type_oid: u32, text: &str) -> Value {
    if let Some(element) = array_element(type_oid) {
        return match parse_array(text) {
            Some(items) => array_to_json(element, &items),
            None => Value::String(text.to_owned()),
        };
    }
    match type_oid {
        BOOL => Value::Bool(text == "t" || text == "true"),
        INT2 | INT4 | INT8 | OID => text.parse::<i64>().map_or_else(|_| Value::String(text.to_owned()), Value::from),
        FLOAT4 | FLOAT8 => match text.parse::<f64>() {
            // NaN and the infinities are not JSON numbers: their text form, as a string.
            Ok(number) if number.is_finite() => {
                serde_json::Number::from_f64(number).map_or_else(|| Value::String(text.to_owned()), Value::Number)
            }
            _ => Value::String(text.to_owned()),
        },
        BYTEA => match text.strip_prefix("\\x").and_then(decode_hex) {
            Some(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            None => Value::String(text.to_owned()),
        },
        TIMESTAMP => Value::String(text.replacen(' ', "T", 1)),
        TIMESTAMPTZ => Value::String(iso_timestamptz(text)),
        JSON | JSONB => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        // numeric stays a string (exact); date, time, uuid, enums and the rest: their text form.
        _ => Value::String(text.to_owned()),
    }
}

/// Append the JSON of one value in text form of type `type_oid` to `out`: the same JSON as
/// [`convert`], written without building a [`Value`] for the common scalar types (the per-change
/// hot path of the connector).
pub fn write_json(out: &mut Vec<u8>, type_oid: u32, text: &str) {
    match type_oid {
        BOOL => out.extend_from_slice(if text == "t" || text == "true" { b"true" } else { b"false" }),
        // Postgres writes integers canonically: the text is the JSON number, exact at any size.
        INT2 | INT4 | INT8 | OID if is_integer(text) => out.extend_from_slice(text.as_bytes()),
        // numeric text is digits, sign, point, `NaN` or `Infinity`: nothing to escape.
        NUMERIC => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        // ISO 8601: `T` for the first space; UTC (`+00`, pinned on both sessions) as `Z`. No
        // character of a timestamp's text needs escaping.
        TIMESTAMP | TIMESTAMPTZ => {
            let (text, utc) = match text.strip_suffix("+00") {
                Some(base) if type_oid == TIMESTAMPTZ => (base, true),
                _ => (text, false),
            };
            out.push(b'"');
            match text.find(' ') {
                Some(space) => {
                    out.extend_from_slice(&text.as_bytes()[..space]);
                    out.push(b'T');
                    out.extend_from_slice(&text.as_bytes()[space + 1..]);
                }
                None => out.extend_from_slice(text.as_bytes()),
            }
            if utc {
                out.push(b'Z');
            }
            out.push(b'"');
        }
        INT2 | INT4 | INT8 | OID | FLOAT4 | FLOAT8 | BYTEA | JSON | JSONB => write_value(out, &convert(type_oid, text)),
        _ if array_element(type_oid).is_some() => write_value(out, &convert(type_oid, text)),
        // Everything else (text, varchar, date, time, uuid, enums, ...) is its text form.
        _ => serde_json::to_writer(out, text).expect("writing JSON to a Vec cannot fail"),
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    serde_json::to_writer(out, value).expect("writing JSON to a Vec cannot fail");
}

/// `-?[0-9]+`, as Postgres writes every integer.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
}

fn iso_timestamptz(text: &str) -> String {
    let with_t = text.replacen(' ', "T", 1);
    match with_t.strip_suffix("+00") {
        Some(base) => format!("{base}Z"),
        None => with_t,
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|index| u8::from_str_radix(hex.get(index..index + 2)?, 16).ok()).collect()
}

/// An array element: a value, NULL, or a nested array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Null,
    Text(String),
    Nested(Vec<Item>),
}

fn array_to_json(element: u32, items: &[Item]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|item| match item {
                Item::Null => Value::Null,
                Item::Text(text) => convert(element, text),
                Item::Nested(items) => array_to_json(element, items),
            })
            .collect(),
    )
}

/// Parse Postgres' array text form (`{1,2,NULL}`, `{"a b","c\"d"}`, `{{1,2},{3,4}}`).
pub(crate) fn parse_array(text: &str) -> Option<Vec<Item>> {
    // A lower bound decoration (`[0:2]={...}`) is dropped.
    let text = match text.find('=') {
        Some(index) if text.starts_with('[') => &text[index + 1..],
        _ => text,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut position = 0;
    let items = parse_level(&chars, &mut position)?;
    (position == chars.len()).then_some(items)
}

fn parse_level(chars: &[char], position: &mut usize) -> Option<Vec<Item>> {
    if chars.get(*position) != Some(&'{') {
        return None;
    }
    *position += 1;
    let mut items = Vec::new();
    if chars.get(*position) == Some(&'}') {
        *position += 1;
        return Some(items);
    }
    loop {
        match chars.get(*position)? {
            '{' => items.push(Item::Nested(parse_level(chars, position)?)),
            '"' => {
                *position += 1;
                let mut value = String::new();
                loop {
                    match chars.get(*position)? {
                        '\\' => {
                            value.push(*chars.get(*position + 1)?);
                            *position += 2;
                        }
                        '"' => {
                            *position += 1;
                            break;
                        }
                        other => {
                            value.push(*other);
                            *position += 1;
                        }
                    }
                }
                items.push(Item::Text(value));
            }
            _ => {
                let start = *position;
                while !matches!(chars.get(*position)?, ',' | '}') {
                    *position += 1;
                }
                let value: String = chars[start..*position].iter().collect();
                items.push(if value == "NULL" { Item::Null } else { Item::Text(value) });
            }
        }
        match chars.get(*position)? {
            ',' => *position += 1,
            '}' => {
                *position += 1;
                return Some(items);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_the_common_types() {
        assert_eq!(convert(BOOL, "t"), json!(true));
        assert_eq!(convert(INT8, "9007199254740993"), json!(9_007_199_254_740_993_i64));
        assert_eq!(convert(NUMERIC, "12.3400"), json!("12.3400"));
        assert_eq!(convert(FLOAT8, "1.5"), json!(1.5));
        assert_eq!(convert(FLOAT8, "NaN"), json!("NaN"));
        assert_eq!(convert(BYTEA, "\\x0102ff"), json!("AQL/"));
        assert_eq!(convert(TIMESTAMP, "2024-01-02 03:04:05.5"), json!("2024-01-02T03:04:05.5"));
        assert_eq!(convert(TIMESTAMPTZ, "2024-01-02 03:04:05+00"), json!("2024-01-02T03:04:05Z"));
        assert_eq!(convert(JSONB, "{\"a\": [1, 2]}"), json!({"a": [1, 2]}));
        assert_eq!(convert(1082, "2024-01-02"), json!("2024-01-02"));
    }

    /// The hot-path writer and the `Value` conversion agree on every type, edge cases included.
    #[test]
    fn write_json_matches_convert() {
        let cases: &[(u32, &str)] = &[
            (BOOL, "t"),
            (BOOL, "f"),
            (INT2, "-32768"),
            (INT4, "0"),
            (INT8, "9223372036854775807"),
            (INT8, "-9007199254740993"),
            (OID, "4294967295"),
            (NUMERIC, "-12.3400"),
            (NUMERIC, "NaN"),
            (FLOAT8, "1.5"),
            (FLOAT8, "-Infinity"),
            (FLOAT4, "NaN"),
            (BYTEA, "\\x00ff"),
            (TIMESTAMP, "2024-01-02 03:04:05.5"),
            (TIMESTAMP, "infinity"),
            (TIMESTAMPTZ, "2024-01-02 03:04:05.123456+00"),
            (TIMESTAMPTZ, "2024-01-02 03:04:05+05:30"),
            (TIMESTAMPTZ, "-infinity"),
            (JSONB, "{\"a\": [1, null]}"),
            (JSON, "not json"),
            (25, "quote \" backslash \\ newline \n tab \t \u{1}"),
            (1082, "2024-01-02"),
            (2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            (1007, "{1,NULL,3}"),
            (1009, "{\"a b\",c}"),
        ];
        for &(type_oid, text) in cases {
            let mut out = Vec::new();
            write_json(&mut out, type_oid, text);
            let written: Value = serde_json::from_slice(&out).unwrap_or_else(|error| {
                panic!("{type_oid} {text:?} wrote {:?}: {error}", String::from_utf8_lossy(&out))
            });
            assert_eq!(written, convert(type_oid, text), "type {type_oid}, text {text:?}");
        }
        // Beyond 2^53: the exact digits, not a rounded double.
        let mut out = Vec::new();
        write_json(&mut out, INT8, "9007199254740993");
        assert_eq!(out, b"9007199254740993");
    }

    #[test]
    fn converts_arrays() {
        assert_eq!(convert(1007, "{1,2,NULL}"), json!([1, 2, null]));
        assert_eq!(convert(1009, "{\"a b\",\"c\\\"d\",e}"), json!(["a b", "c\"d", "e"]));
        assert_eq!(convert(1007, "{{1,2},{3,4}}"), json!([[1, 2], [3, 4]]));
        assert_eq!(convert(1007, "{}"), json!([]));
    }
}
