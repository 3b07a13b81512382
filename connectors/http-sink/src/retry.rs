//! When a send is tried again: which statuses are worth it (`retry.on.status.codes`), how long
//! to wait (a `Retry-After` header, or exponential backoff from `retry.backoff.ms` up to
//! `retry.backoff.max.ms`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weir_connector_sdk::calendar::days_from_civil;

/// The statuses worth a retry, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCodes(Vec<(u16, u16)>);

impl StatusCodes {
    /// Parse `408,429,500-` (a code, `a-b`, or `a-` open at the top); empty retries no status.
    ///
    /// # Errors
    /// The first entry that is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        let code = |text: &str| -> Result<u16, String> {
            match text.trim().parse::<u16>() {
                Ok(code) if (100..=999).contains(&code) => Ok(code),
                _ => Err(format!("`{}` is not a status code (100-999)", text.trim())),
            }
        };
        let mut ranges = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let range = match entry.split_once('-') {
                Some((low, high)) if high.trim().is_empty() => (code(low)?, 999),
                Some((low, high)) => (code(low)?, code(high)?),
                None => {
                    let code = code(entry)?;
                    (code, code)
                }
            };
            if range.0 > range.1 {
                return Err(format!("`{entry}` is an empty range"));
            }
            ranges.push(range);
        }
        Ok(Self(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(low, high)| (*low..=*high).contains(&status))
    }
}

/// The wait before retry number `retry` (1 for the first): `base` doubled per retry, at most `max`.
pub fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// What a `Retry-After` header asks for: delta seconds, or an HTTP date (IMF-fixdate, e.g.
/// `Wed, 21 Oct 2015 07:28:00 GMT`) measured from `now`. `None` when it is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the Unix epoch of an IMF-fixdate.
fn http_date(value: &str) -> Option<u64> {
    // `Sun, 06 Nov 1994 08:49:37 GMT`
    let (_, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|part| part.parse::<u64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    u64::try_from(days).ok().map(|days| days * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_take_codes_and_ranges() {
        let codes = StatusCodes::parse("408, 429,500-").unwrap();
        assert!(codes.contains(408) && codes.contains(429) && codes.contains(503) && codes.contains(599));
        assert!(!codes.contains(400) && !codes.contains(404) && !codes.contains(200));
        let closed = StatusCodes::parse("502-504").unwrap();
        assert!(closed.contains(503) && !closed.contains(500) && !closed.contains(505));
        assert!(!StatusCodes::parse("").unwrap().contains(500));
        for bad in ["abc", "500-400", "42", "5000", "-5"] {
            assert!(StatusCodes::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=6).map(|retry| backoff(base, max, retry).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(base, max, 200), max);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(http_date("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(http_date("Wed, 29 Feb 2024 00:00:00 GMT"), Some(1_709_164_800));
    }
}
