//! Column values as Debezium's PostgresConnector writes them in JSON, under its handling modes
//! (`time.precision.mode`, `decimal.handling.mode`, `binary.handling.mode`,
//! `interval.handling.mode`, `hstore.handling.mode`).
//!
//! Each column is classified once per table ([`Kind::classify`], from its type, type modifier
//! and type name); each value is then written straight from Postgres' text form to JSON bytes
//! ([`write`]), the per-change hot path. The text forms parsed here are stable because both
//! sessions pin `TimeZone=UTC`, `DateStyle=ISO` and `IntervalStyle=iso_8601`.

use crate::config::{
    BinaryHandlingMode, CdcConfig, DecimalHandlingMode, HstoreHandlingMode, IntervalHandlingMode, TimePrecisionMode,
};
use crate::temporal;
use crate::values;

/// Which of Debezium's two read paths a value takes. Debezium reads snapshot rows through JDBC
/// and streamed rows from pgoutput's text, and the two differ on a few values (`infinity` dates):
/// weir writes what Debezium writes on each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ReadPath {
    #[default]
    Streaming,
    Snapshot,
}

/// The handling modes, copied out of the configuration, and the read path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Modes {
    pub(crate) read: ReadPath,
    pub(crate) time: TimePrecisionMode,
    pub(crate) decimal: DecimalHandlingMode,
    pub(crate) binary: BinaryHandlingMode,
    pub(crate) interval: IntervalHandlingMode,
    pub(crate) hstore: HstoreHandlingMode,
}

impl Modes {
    pub(crate) fn of(config: &CdcConfig) -> Self {
        Modes {
            read: ReadPath::Streaming,
            time: config.time_precision_mode,
            decimal: config.decimal_handling_mode,
            binary: config.binary_handling_mode,
            interval: config.interval_handling_mode,
            hstore: config.hstore_handling_mode,
        }
    }
}

/// Debezium's `skipped.operations`: which of `c`, `u`, `d`, `t` are not emitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) create: bool,
    pub(crate) update: bool,
    pub(crate) delete: bool,
    pub(crate) truncate: bool,
}

impl Skipped {
    /// # Errors
    /// A message naming the operation that is not one of `c`, `u`, `d`, `t`, `none`.
    pub(crate) fn parse(list: &str) -> Result<Self, String> {
        let mut skipped = Skipped::default();
        for operation in list.split(',').map(str::trim).filter(|operation| !operation.is_empty()) {
            match operation {
                "c" => skipped.create = true,
                "u" => skipped.update = true,
                "d" => skipped.delete = true,
                "t" => skipped.truncate = true,
                "none" => {}
                other => return Err(format!("unknown operation {other:?}: use c, u, d, t or none")),
            }
        }
        Ok(skipped)
    }
}

/// How a column's values are converted: decided once per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    /// int2, int4, int8, oid: the text is the JSON number.
    Integer,
    /// float4, float8.
    Float,
    /// numeric with a declared scale, or unconstrained (`None`: Debezium's variable scale).
    Numeric {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    /// money: a decimal of scale 2.
    Money,
    /// Everything written as its text: text, varchar, char, uuid, json, jsonb, xml, inet, cidr,
    /// macaddr, enums and unknown types.
    Text,
    Bytea,
    /// bit(n) / varbit(n): bit(1) is a boolean, others little-endian bytes.
    Bits {
        length: u32,
        varying: bool,
    },
    Date,
    /// time with its fractional precision (6 when unset).
    Time {
        precision: u32,
    },
    TimeTz,
    Timestamp {
        precision: u32,
    },
    TimestampTz,
    Interval,
    Hstore,
    Array(Box<Kind>),
}

/// Built-in type OIDs (pg_type.dat).
pub(crate) mod oid {
    pub(crate) const BOOL: u32 = 16;
    pub(crate) const BYTEA: u32 = 17;
    pub(crate) const INT8: u32 = 20;
    pub(crate) const INT2: u32 = 21;
    pub(crate) const INT4: u32 = 23;
    pub(crate) const OID: u32 = 26;
    pub(crate) const FLOAT4: u32 = 700;
    pub(crate) const FLOAT8: u32 = 701;
    pub(crate) const MONEY: u32 = 790;
    pub(crate) const DATE: u32 = 1082;
    pub(crate) const TIME: u32 = 1083;
    pub(crate) const TIMESTAMP: u32 = 1114;
    pub(crate) const TIMESTAMPTZ: u32 = 1184;
    pub(crate) const INTERVAL: u32 = 1186;
    pub(crate) const TIMETZ: u32 = 1266;
    pub(crate) const BIT: u32 = 1560;
    pub(crate) const VARBIT: u32 = 1562;
    pub(crate) const NUMERIC: u32 = 1700;
}

/// The element type of the built-in array types.
fn array_element(type_oid: u32) -> Option<u32> {
    Some(match type_oid {
        1000 => oid::BOOL,
        1001 => oid::BYTEA,
        1005 => oid::INT2,
        1007 => oid::INT4,
        1016 => oid::INT8,
        1028 => oid::OID,
        1021 => oid::FLOAT4,
        1022 => oid::FLOAT8,
        791 => oid::MONEY,
        1231 => oid::NUMERIC,
        1182 => oid::DATE,
        1183 => oid::TIME,
        1115 => oid::TIMESTAMP,
        1185 => oid::TIMESTAMPTZ,
        1187 => oid::INTERVAL,
        1270 => oid::TIMETZ,
        1561 => oid::BIT,
        1563 => oid::VARBIT,
        // text-like arrays: text, varchar, bpchar, name, uuid, json, jsonb, xml, inet, cidr, macaddr
        1009 | 1015 | 1014 | 1003 | 2951 | 199 | 3807 | 143 | 1041 | 651 | 1040 => 25,
        _ => return None,
    })
}

impl Kind {
    /// The kind of a column of type `type_oid` with modifier `typmod` (-1: none); `type_name`
    /// and `element_oid` (pg_type.typelem of an array type, else 0) for types without a fixed OID.
    pub(crate) fn classify(type_oid: u32, typmod: i32, type_name: &str, element_oid: u32) -> Kind {
        let precision =
            |default: u32| u32::try_from(typmod).ok().filter(|precision| *precision <= 6).unwrap_or(default);
        match type_oid {
            oid::BOOL => Kind::Bool,
            oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => Kind::Integer,
            oid::FLOAT4 | oid::FLOAT8 => Kind::Float,
            oid::NUMERIC => {
                if typmod >= 4 {
                    let packed = u32::try_from(typmod - 4).unwrap_or(0);
                    Kind::Numeric { precision: Some(packed >> 16), scale: Some(packed & 0x7ff) }
                } else {
                    Kind::Numeric { precision: None, scale: None }
                }
            }
            oid::MONEY => Kind::Money,
            oid::BYTEA => Kind::Bytea,
            oid::BIT | oid::VARBIT => Kind::Bits {
                length: u32::try_from(typmod).unwrap_or(if type_oid == oid::BIT { 1 } else { 0 }),
                varying: type_oid == oid::VARBIT,
            },
            oid::DATE => Kind::Date,
            oid::TIME => Kind::Time { precision: precision(6) },
            oid::TIMETZ => Kind::TimeTz,
            oid::TIMESTAMP => Kind::Timestamp { precision: precision(6) },
            oid::TIMESTAMPTZ => Kind::TimestampTz,
            oid::INTERVAL => Kind::Interval,
            _ if type_name == "hstore" => Kind::Hstore,
            _ => match array_element(type_oid) {
                Some(element) => Kind::Array(Box::new(Kind::classify(element, typmod, "", 0))),
                None if element_oid != 0 && type_name == "_hstore" => Kind::Array(Box::new(Kind::Hstore)),
                None if element_oid != 0 => Kind::Array(Box::new(Kind::classify(element_oid, typmod, "", 0))),
                None => Kind::Text,
            },
        }
    }
}

/// Append the JSON of one value of `kind` in Postgres' text form.
pub(crate) fn write(out: &mut Vec<u8>, kind: &Kind, text: &str, modes: &Modes) {
    match kind {
        Kind::Bool => out.extend_from_slice(if text == "t" || text == "true" { b"true" } else { b"false" }),
        Kind::Integer if is_integer(text) => out.extend_from_slice(text.as_bytes()),
        Kind::Integer | Kind::Float => values::write_json(out, oid::FLOAT8, text),
        Kind::Text => write_string(out, text),
        Kind::Numeric { scale, .. } => write_decimal(out, text, *scale, modes.decimal),
        Kind::Money => write_decimal(out, &money_digits(text), Some(2), modes.decimal),
        Kind::Bytea => match text.strip_prefix("\\x").and_then(decode_hex) {
            Some(bytes) => write_binary(out, &bytes, modes.binary),
            None => write_string(out, text),
        },
        Kind::Bits { length, varying } => {
            if *length == 1 && !*varying {
                out.extend_from_slice(if text == "1" { b"true" } else { b"false" });
            } else {
                write_base64(out, &bits_little_endian(text), base64::engine::general_purpose::STANDARD);
            }
        }
        Kind::Date => temporal::write_date(out, text, modes.time, modes.read),
        Kind::Time { precision } => temporal::write_time(out, text, *precision, modes.time),
        Kind::TimeTz => temporal::write_timetz(out, text, modes.time),
        Kind::Timestamp { precision } => temporal::write_timestamp(out, text, *precision, modes.time),
        Kind::TimestampTz => temporal::write_timestamptz(out, text, modes.time),
        Kind::Interval => temporal::write_interval(out, text, modes.interval),
        Kind::Hstore => write_hstore(out, text, modes.hstore),
        Kind::Array(element) => match values::parse_array(text) {
            Some(items) => write_items(out, element, &items, modes),
            None => write_string(out, text),
        },
    }
}

fn write_items(out: &mut Vec<u8>, element: &Kind, items: &[values::Item], modes: &Modes) {
    out.push(b'[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        match item {
            values::Item::Null => out.extend_from_slice(b"null"),
            values::Item::Text(text) => write(out, element, text, modes),
            values::Item::Nested(items) => write_items(out, element, items, modes),
        }
    }
    out.push(b']');
}

pub(crate) fn write_string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing JSON to a Vec cannot fail");
}

/// `-?[0-9]+`, as Postgres writes every integer.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|index| u8::from_str_radix(hex.get(index..index + 2)?, 16).ok()).collect()
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8], engine: impl base64::Engine) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
    let written = engine.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

fn write_binary(out: &mut Vec<u8>, bytes: &[u8], mode: BinaryHandlingMode) {
    match mode {
        BinaryHandlingMode::Bytes | BinaryHandlingMode::Base64 => {
            write_base64(out, bytes, base64::engine::general_purpose::STANDARD);
        }
        BinaryHandlingMode::Base64UrlSafe => write_base64(out, bytes, base64::engine::general_purpose::URL_SAFE),
        BinaryHandlingMode::Hex => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            out.push(b'"');
            for byte in bytes {
                out.push(DIGITS[usize::from(byte >> 4)]);
                out.push(DIGITS[usize::from(byte & 0xf)]);
            }
            out.push(b'"');
        }
    }
}

/// A bit string (`1010`, first character the most significant bit) as Debezium's bytes: little
/// endian, trailing zero bytes dropped (a value of zero is no bytes at all).
fn bits_little_endian(text: &str) -> Vec<u8> {
    let mut bytes = vec![0u8; text.len().div_ceil(8)];
    for (index, bit) in text.bytes().rev().enumerate() {
        if bit == b'1' {
            bytes[index / 8] |= 1 << (index % 8);
        }
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// money's text (`$1,234.56`, `-$0.50`; lc_monetary C) as a plain decimal.
fn money_digits(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-').collect()
}

/// A decimal's text under `decimal.handling.mode`. `scale` is the column's (none: unconstrained).
fn write_decimal(out: &mut Vec<u8>, text: &str, scale: Option<u32>, mode: DecimalHandlingMode) {
    let special = matches!(text, "NaN" | "Infinity" | "-Infinity");
    match mode {
        DecimalHandlingMode::String => match text {
            "NaN" => write_string(out, "NAN"),
            "Infinity" => write_string(out, "POSITIVE_INFINITY"),
            "-Infinity" => write_string(out, "NEGATIVE_INFINITY"),
            _ => write_string(out, text),
        },
        DecimalHandlingMode::Double => values::write_json(out, oid::FLOAT8, text),
        DecimalHandlingMode::Precise if special => out.extend_from_slice(b"null"),
        DecimalHandlingMode::Precise => {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let value_scale = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
            let mut unscaled: Vec<u8> = whole.bytes().chain(fraction.bytes()).map(|digit| digit - b'0').collect();
            let target = scale.unwrap_or(value_scale);
            // A constrained numeric's text already has its scale's digits; pad if not.
            unscaled.resize(unscaled.len() + target.saturating_sub(value_scale) as usize, 0);
            let bytes = twos_complement(&unscaled, negative);
            match scale {
                Some(_) => write_base64(out, &bytes, base64::engine::general_purpose::STANDARD),
                None => {
                    out.extend_from_slice(b"{\"scale\":");
                    out.extend_from_slice(value_scale.to_string().as_bytes());
                    out.extend_from_slice(b",\"value\":");
                    write_base64(out, &bytes, base64::engine::general_purpose::STANDARD);
                    out.push(b'}');
                }
            }
        }
    }
}

/// Java's `BigInteger.toByteArray()` of the decimal digits (most significant first): the
/// shortest big-endian two's complement.
fn twos_complement(digits: &[u8], negative: bool) -> Vec<u8> {
    // Base 10 to base 256, little endian.
    let mut magnitude: Vec<u8> = Vec::with_capacity(digits.len() / 2 + 1);
    for &digit in digits {
        let mut carry = u32::from(digit);
        for byte in &mut magnitude {
            let value = u32::from(*byte) * 10 + carry;
            *byte = (value & 0xff) as u8;
            carry = value >> 8;
        }
        while carry > 0 {
            magnitude.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    while magnitude.last() == Some(&0) {
        magnitude.pop();
    }
    if magnitude.is_empty() {
        return vec![0];
    }
    if negative {
        // Two's complement: invert and add one.
        let mut carry = 1u16;
        for byte in &mut magnitude {
            let value = u16::from(!*byte) + carry;
            *byte = (value & 0xff) as u8;
            carry = value >> 8;
        }
        // The sign bit must be set: extend with 0xff unless it already is.
        if magnitude.last().is_some_and(|top| top & 0x80 == 0) {
            magnitude.push(0xff);
        }
        // Drop redundant sign bytes (0xff followed by a byte with the sign bit set).
        while magnitude.len() > 1
            && magnitude[magnitude.len() - 1] == 0xff
            && magnitude[magnitude.len() - 2] & 0x80 != 0
        {
            magnitude.pop();
        }
    } else if magnitude.last().is_some_and(|top| top & 0x80 != 0) {
        magnitude.push(0);
    }
    magnitude.reverse();
    magnitude
}

/// hstore's text (`"a"=>"1", "b c"=>NULL`) as its pairs, in order.
fn parse_hstore(text: &str) -> Vec<(String, Option<String>)> {
    fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => value.push(chars.next()?),
                '"' => return Some(value),
                other => value.push(other),
            }
        }
    }
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        let Some(key) = quoted(&mut chars) else { break };
        if chars.next() != Some('=') || chars.next() != Some('>') {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            quoted(&mut chars)
        } else {
            let word: String = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            if word.trim() == "NULL" { None } else { Some(word) }
        };
        pairs.push((key, value));
    }
    pairs
}

fn write_hstore(out: &mut Vec<u8>, text: &str, mode: HstoreHandlingMode) {
    let mut object = Vec::with_capacity(text.len() + 2);
    object.push(b'{');
    for (index, (key, value)) in parse_hstore(text).iter().enumerate() {
        if index > 0 {
            object.push(b',');
        }
        write_string(&mut object, key);
        object.push(b':');
        match value {
            Some(value) => write_string(&mut object, value),
            None => object.extend_from_slice(b"null"),
        }
    }
    object.push(b'}');
    match mode {
        HstoreHandlingMode::Map => out.extend_from_slice(&object),
        HstoreHandlingMode::Json => write_string(out, std::str::from_utf8(&object).expect("JSON is UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(kind: &Kind, text: &str, modes: &Modes) -> String {
        let mut out = Vec::new();
        write(&mut out, kind, text, modes);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn decimals_are_javas_big_integer_bytes() {
        let precise = Modes::default();
        let numeric = Kind::Numeric { precision: Some(12), scale: Some(3) };
        assert_eq!(written(&numeric, "123456789.125", &precise), "\"HL6ZGoU=\"");
        assert_eq!(written(&numeric, "-0.001", &precise), "\"/w==\"");
        assert_eq!(written(&numeric, "0.500", &precise), "\"AfQ=\"");
        assert_eq!(written(&Kind::Money, "$1,234.56", &precise), "\"AeJA\"");
        assert_eq!(written(&Kind::Money, "-$0.50", &precise), "\"zg==\"");
        assert_eq!(written(&Kind::Money, "$0.00", &precise), "\"AA==\"");
        let free = Kind::Numeric { precision: None, scale: None };
        assert_eq!(written(&free, "3.14159265358979323846", &precise), "{\"scale\":20,\"value\":\"EQfV61tbpNfG\"}");
        assert_eq!(written(&free, "NaN", &precise), "null");
        // -128 fits one byte, 128 and -129 need two.
        assert_eq!(twos_complement(&[1, 2, 8], true), vec![0x80]);
        assert_eq!(twos_complement(&[1, 2, 8], false), vec![0x00, 0x80]);
        assert_eq!(twos_complement(&[1, 2, 9], true), vec![0xff, 0x7f]);
        assert_eq!(twos_complement(&[2, 5, 6], true), vec![0xff, 0x00]);
    }

    #[test]
    fn bits_binary_and_hstore_follow_the_modes() {
        let modes = Modes::default();
        let bits = Kind::Bits { length: 4, varying: false };
        assert_eq!(written(&bits, "1010", &modes), "\"Cg==\"");
        assert_eq!(written(&bits, "0000", &modes), "\"\"");
        assert_eq!(written(&Kind::Bits { length: 1, varying: false }, "1", &modes), "true");
        assert_eq!(written(&Kind::Bits { length: 16, varying: true }, "0000000100000000", &modes), "\"AAE=\"");
        assert_eq!(written(&Kind::Bytea, "\\x00ff10", &modes), "\"AP8Q\"");
        let hex = Modes { binary: BinaryHandlingMode::Hex, ..Modes::default() };
        assert_eq!(written(&Kind::Bytea, "\\x00ff10", &hex), "\"00ff10\"");
        let url = Modes { binary: BinaryHandlingMode::Base64UrlSafe, ..Modes::default() };
        assert_eq!(written(&Kind::Bytea, "\\xfbff", &url), "\"-_8=\"");
        assert_eq!(
            written(&Kind::Hstore, "\"a\"=>\"1\", \"b c\"=>NULL", &modes),
            "\"{\\\"a\\\":\\\"1\\\",\\\"b c\\\":null}\""
        );
        let map = Modes { hstore: HstoreHandlingMode::Map, ..Modes::default() };
        assert_eq!(written(&Kind::Hstore, "\"k\"=>\"v\"", &map), "{\"k\":\"v\"}");
        assert_eq!(written(&Kind::Hstore, "", &map), "{}");
    }

    #[test]
    fn skipped_operations_parse() {
        assert_eq!(Skipped::parse("t"), Ok(Skipped { truncate: true, ..Skipped::default() }));
        assert_eq!(Skipped::parse("none"), Ok(Skipped::default()));
        assert_eq!(Skipped::parse("c, u"), Ok(Skipped { create: true, update: true, ..Skipped::default() }));
        assert!(Skipped::parse("x").is_err());
    }

    #[test]
    fn classifies_type_modifiers() {
        assert_eq!(
            Kind::classify(oid::NUMERIC, (12 << 16) + 3 + 4, "numeric", 0),
            Kind::Numeric { precision: Some(12), scale: Some(3) }
        );
        assert_eq!(Kind::classify(oid::TIME, 3, "time", 0), Kind::Time { precision: 3 });
        assert_eq!(Kind::classify(oid::TIMESTAMP, -1, "timestamp", 0), Kind::Timestamp { precision: 6 });
        assert_eq!(Kind::classify(1182, -1, "_date", oid::DATE), Kind::Array(Box::new(Kind::Date)));
        assert_eq!(Kind::classify(16_400, -1, "hstore", 0), Kind::Hstore);
        assert_eq!(Kind::classify(16_500, -1, "mood", 0), Kind::Text);
    }
}
