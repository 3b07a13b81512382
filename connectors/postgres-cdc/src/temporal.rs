//! Dates, times, timestamps and intervals from Postgres' text form (`DateStyle=ISO`,
//! `TimeZone=UTC`, `IntervalStyle=iso_8601`, pinned on both sessions) to Debezium's JSON under
//! `time.precision.mode` and `interval.handling.mode`, or weir's `iso` form.

use crate::config::{IntervalHandlingMode, TimePrecisionMode};
use crate::convert::{ReadPath, write_string};
use crate::position::write_i64;
use crate::values;
use weir_connector_sdk::calendar::days_from_civil;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Debezium's average month (365.25 / 12 days) for interval microseconds.
const DAYS_PER_MONTH_AVG: f64 = 365.25 / 12.0;
/// What Debezium writes for `infinity` / `-infinity` timestamps, in milliseconds (pgjdbc's
/// `PGStatement.DATE_POSITIVE_INFINITY` / `DATE_NEGATIVE_INFINITY` divided by 1000).
const POSITIVE_INFINITY_MILLIS: i64 = 9_223_372_036_825_200;
const NEGATIVE_INFINITY_MILLIS: i64 = -9_223_372_036_832_400;

/// `YYYY-MM-DD[ BC]` as days since the epoch.
fn parse_date(text: &str) -> Option<i64> {
    let (text, bc) = match text.strip_suffix(" BC") {
        Some(text) => (text, true),
        None => (text, false),
    };
    let mut parts = text.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    // 1 BC is year 0 of the proleptic calendar.
    let year = if bc { 1 - year } else { year };
    Some(days_from_civil(year, month, day))
}

/// `HH:MM:SS[.ffffff]` as microseconds since midnight; the rest of the text after it.
fn parse_time(text: &str) -> Option<(i64, &str)> {
    let bytes = text.as_bytes();
    if bytes.len() < 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let hours: i64 = text.get(0..2)?.parse().ok()?;
    let minutes: i64 = text.get(3..5)?.parse().ok()?;
    let seconds: i64 = text.get(6..8)?.parse().ok()?;
    let mut micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000;
    let mut rest = &text[8..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let mut value: i64 = fraction[..digits].parse().ok()?;
        for _ in digits..6 {
            value *= 10;
        }
        micros += value;
        rest = &fraction[digits..];
    }
    Some((micros, rest))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+zz][ BC]` as microseconds since the epoch and the offset text.
fn parse_timestamp(text: &str) -> Option<(i64, &str)> {
    let (date, time) = text.split_once(' ')?;
    let (time, bc) = match time.strip_suffix(" BC") {
        Some(time) => (time, " BC"),
        None => (time, ""),
    };
    let days = parse_date(&format!("{date}{bc}"))?;
    let (micros, offset) = parse_time(time)?;
    Some((days * MICROS_PER_DAY + micros, offset))
}

/// `+HH[:MM[:SS]]` / `-HH...` as seconds east of UTC (empty: 0).
fn parse_offset(text: &str) -> Option<i64> {
    if text.is_empty() {
        return Some(0);
    }
    let sign = match text.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut seconds = 0;
    let mut unit = 3600;
    for part in text[1..].split(':') {
        seconds += part.parse::<i64>().ok()? * unit;
        unit /= 60;
    }
    Some(sign * seconds)
}

/// `HH:MM:SS[.fraction]` with the fraction's trailing zeros dropped (Java's ISO_LOCAL_TIME).
fn format_time(out: &mut Vec<u8>, micros: i64) {
    let seconds = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    out.extend_from_slice(format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60).as_bytes());
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push(b'.');
        out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
}

/// Days from 1970-01-01 to 2000-01-01, Postgres' date epoch.
const POSTGRES_EPOCH_DAYS: i32 = 10_957;

/// The days Debezium streams for `infinity` / `-infinity` dates: Postgres stores them as the
/// largest and smallest `int4` days after 2000-01-01, and Debezium shifts those to the Unix epoch
/// in `int4` arithmetic, which wraps.
const STREAMED_POSITIVE_INFINITY_DAYS: i32 = i32::MAX.wrapping_add(POSTGRES_EPOCH_DAYS);
const STREAMED_NEGATIVE_INFINITY_DAYS: i32 = i32::MIN.wrapping_add(POSTGRES_EPOCH_DAYS);
/// The days Debezium's snapshot writes for them: pgjdbc's `DATE_POSITIVE_INFINITY` /
/// `DATE_NEGATIVE_INFINITY` instants taken through `java.sql.Date`'s (Julian before 1582)
/// calendar to a day count cut to `int4`. Both pairs as Debezium 3.6.3 wrote them in the oracle
/// test (tests/oracle/).
const SNAPSHOT_POSITIVE_INFINITY_DAYS: i32 = -622_191_234;
const SNAPSHOT_NEGATIVE_INFINITY_DAYS: i32 = -625_821_272;

pub(crate) fn write_date(out: &mut Vec<u8>, text: &str, mode: TimePrecisionMode, read: ReadPath) {
    let days = match (text, read) {
        ("infinity", ReadPath::Streaming) => Some(i64::from(STREAMED_POSITIVE_INFINITY_DAYS)),
        ("-infinity", ReadPath::Streaming) => Some(i64::from(STREAMED_NEGATIVE_INFINITY_DAYS)),
        ("infinity", ReadPath::Snapshot) => Some(i64::from(SNAPSHOT_POSITIVE_INFINITY_DAYS)),
        ("-infinity", ReadPath::Snapshot) => Some(i64::from(SNAPSHOT_NEGATIVE_INFINITY_DAYS)),
        _ => parse_date(text),
    };
    match (mode, days) {
        (TimePrecisionMode::Iso, _) | (_, None) => write_string(out, text),
        (_, Some(days)) => write_i64(out, days),
    }
}

pub(crate) fn write_time(out: &mut Vec<u8>, text: &str, precision: u32, mode: TimePrecisionMode) {
    let Some((micros, _)) = parse_time(text).filter(|_| mode != TimePrecisionMode::Iso) else {
        return write_string(out, text);
    };
    let millis = match mode {
        TimePrecisionMode::Adaptive => precision <= 3,
        TimePrecisionMode::Connect => true,
        TimePrecisionMode::AdaptiveTimeMicroseconds | TimePrecisionMode::Iso => false,
    };
    write_i64(out, if millis { micros / 1000 } else { micros });
}

/// `time with time zone` as Debezium's ZonedTime: the time in UTC, `HH:MM:SS[.f]Z`.
pub(crate) fn write_timetz(out: &mut Vec<u8>, text: &str, mode: TimePrecisionMode) {
    let parsed = parse_time(text).and_then(|(micros, offset)| Some((micros, parse_offset(offset)?)));
    match parsed.filter(|_| mode != TimePrecisionMode::Iso) {
        Some((micros, offset)) => {
            let utc = (micros - offset * 1_000_000).rem_euclid(MICROS_PER_DAY);
            out.push(b'"');
            format_time(out, utc);
            out.extend_from_slice(b"Z\"");
        }
        None => write_string(out, text),
    }
}

pub(crate) fn write_timestamp(out: &mut Vec<u8>, text: &str, precision: u32, mode: TimePrecisionMode) {
    if mode == TimePrecisionMode::Iso {
        return values::write_json(out, values::TIMESTAMP, text);
    }
    let millis = mode == TimePrecisionMode::Connect || precision <= 3;
    let value = match text {
        "infinity" => Some(if millis { POSITIVE_INFINITY_MILLIS } else { POSITIVE_INFINITY_MILLIS * 1000 }),
        "-infinity" => Some(if millis { NEGATIVE_INFINITY_MILLIS } else { NEGATIVE_INFINITY_MILLIS * 1000 }),
        _ => parse_timestamp(text).map(|(micros, _)| if millis { micros.div_euclid(1000) } else { micros }),
    };
    match value {
        Some(value) => write_i64(out, value),
        None => write_string(out, text),
    }
}

/// `timestamptz` as Debezium's ZonedTimestamp: ISO 8601 in UTC with six fractional digits.
pub(crate) fn write_timestamptz(out: &mut Vec<u8>, text: &str, mode: TimePrecisionMode) {
    if mode == TimePrecisionMode::Iso {
        return values::write_json(out, values::TIMESTAMPTZ, text);
    }
    let parsed = parse_timestamp(text).and_then(|(micros, offset)| Some(micros - parse_offset(offset)? * 1_000_000));
    let Some(micros) = parsed else { return write_string(out, text) };
    let days = micros.div_euclid(MICROS_PER_DAY);
    let time = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = time / 1_000_000;
    out.extend_from_slice(
        format!(
            "\"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z\"",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            time % 1_000_000
        )
        .as_bytes(),
    );
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The fields of an ISO 8601 interval (`P1Y2M3DT4H5M6.789S`, `P-1DT-1S`, `PT0S`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Interval {
    years: i64,
    months: i64,
    days: i64,
    hours: i64,
    minutes: i64,
    /// Whole seconds and microseconds, with the same sign.
    seconds: i64,
    micros: i64,
}

fn parse_interval(text: &str) -> Option<Interval> {
    let mut interval = Interval::default();
    let mut rest = text.strip_prefix('P')?;
    let mut in_time = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('T') {
            in_time = true;
            rest = after;
            continue;
        }
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, unit) = (&rest[..end], rest.as_bytes()[end]);
        rest = &rest[end + 1..];
        match (in_time, unit) {
            (false, b'Y') => interval.years = number.parse().ok()?,
            (false, b'M') => interval.months = number.parse().ok()?,
            (false, b'D') => interval.days = number.parse().ok()?,
            (true, b'H') => interval.hours = number.parse().ok()?,
            (true, b'M') => interval.minutes = number.parse().ok()?,
            (true, b'S') => {
                let negative = number.starts_with('-');
                let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
                interval.seconds = whole.parse().ok()?;
                if !fraction.is_empty() {
                    let digits = fraction.len().min(6);
                    let mut micros: i64 = fraction[..digits].parse().ok()?;
                    for _ in digits..6 {
                        micros *= 10;
                    }
                    interval.micros = if negative { -micros } else { micros };
                }
            }
            _ => return None,
        }
    }
    Some(interval)
}

pub(crate) fn write_interval(out: &mut Vec<u8>, text: &str, mode: IntervalHandlingMode) {
    let Some(interval) = parse_interval(text) else { return write_string(out, text) };
    match mode {
        IntervalHandlingMode::Numeric => {
            // Debezium's MicroDuration arithmetic, in doubles and in its order, so it rounds alike.
            let seconds = interval.seconds as f64 + interval.micros as f64 / 1_000_000.0;
            let days = (interval.years * 12 + interval.months) as f64 * DAYS_PER_MONTH_AVG + interval.days as f64;
            let total = (((days * 24.0 + interval.hours as f64) * 60.0) + interval.minutes as f64) * 60.0 + seconds;
            write_i64(out, (total * 1e6) as i64);
        }
        IntervalHandlingMode::String => {
            let mut seconds = interval.seconds.to_string();
            if interval.micros != 0 {
                if interval.seconds == 0 && interval.micros < 0 {
                    seconds = "-0".into();
                }
                let fraction = format!("{:06}", interval.micros.unsigned_abs());
                seconds.push('.');
                seconds.push_str(fraction.trim_end_matches('0'));
            }
            write_string(
                out,
                &format!(
                    "P{}Y{}M{}DT{}H{}M{}S",
                    interval.years, interval.months, interval.days, interval.hours, interval.minutes, seconds
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn adaptive_dates_times_and_timestamps() {
        let adaptive = TimePrecisionMode::Adaptive;
        assert_eq!(written(|out| write_date(out, "2024-02-29", adaptive, ReadPath::Streaming)), "19782");
        assert_eq!(written(|out| write_date(out, "1969-12-31", adaptive, ReadPath::Streaming)), "-1");
        assert_eq!(written(|out| write_date(out, "0001-01-01", adaptive, ReadPath::Streaming)), "-719162");
        assert_eq!(written(|out| write_date(out, "infinity", adaptive, ReadPath::Streaming)), "-2147472692");
        assert_eq!(written(|out| write_date(out, "-infinity", adaptive, ReadPath::Streaming)), "-2147472691");
        assert_eq!(written(|out| write_date(out, "infinity", adaptive, ReadPath::Snapshot)), "-622191234");
        assert_eq!(written(|out| write_time(out, "13:14:15.123456", 6, adaptive)), "47655123456");
        assert_eq!(written(|out| write_time(out, "13:14:15.123", 3, adaptive)), "47655123");
        assert_eq!(written(|out| write_time(out, "24:00:00", 6, adaptive)), "86400000000");
        assert_eq!(written(|out| write_timetz(out, "13:14:15.5+02:30", adaptive)), "\"10:44:15.5Z\"");
        assert_eq!(written(|out| write_timetz(out, "23:59:59-11", adaptive)), "\"10:59:59Z\"");
        assert_eq!(written(|out| write_timestamp(out, "1969-12-31 23:59:59.5", 6, adaptive)), "-500000");
        assert_eq!(written(|out| write_timestamp(out, "1900-01-01 00:00:00", 3, adaptive)), "-2208988800000");
        assert_eq!(
            written(|out| write_timestamptz(out, "2024-02-29 12:14:15.123456+00", adaptive)),
            "\"2024-02-29T12:14:15.123456Z\""
        );
        assert_eq!(
            written(|out| write_timestamptz(out, "1970-01-01 00:00:00+00", adaptive)),
            "\"1970-01-01T00:00:00.000000Z\""
        );
        let connect = TimePrecisionMode::Connect;
        assert_eq!(written(|out| write_time(out, "13:14:15.123456", 6, connect)), "47655123");
        assert_eq!(written(|out| write_timestamp(out, "1969-12-31 23:59:59.5", 6, connect)), "-500");
        let micros = TimePrecisionMode::AdaptiveTimeMicroseconds;
        assert_eq!(written(|out| write_time(out, "13:14:15.123", 3, micros)), "47655123000");
    }

    #[test]
    fn intervals_as_debezium_writes_them() {
        let numeric = IntervalHandlingMode::Numeric;
        assert_eq!(written(|out| write_interval(out, "P1Y2M3DT4H5M6.789S", numeric)), "37091106789000");
        assert_eq!(written(|out| write_interval(out, "P-1DT-1S", numeric)), "-86401000000");
        assert_eq!(written(|out| write_interval(out, "P178000000Y", numeric)), i64::MAX.to_string());
        let string = IntervalHandlingMode::String;
        assert_eq!(written(|out| write_interval(out, "P1Y2M3DT4H5M6.789S", string)), "\"P1Y2M3DT4H5M6.789S\"");
        assert_eq!(written(|out| write_interval(out, "P-1DT-1S", string)), "\"P0Y0M-1DT0H0M-1S\"");
        assert_eq!(written(|out| write_interval(out, "PT-3H", string)), "\"P0Y0M0DT-3H0M0S\"");
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_162, -1, 0, 19_782, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
