//! The events of each quickstart, derived from the event id alone, written as JSON by hand.
//!
//! Every field comes from a splitmix64 stream seeded with the id, so the same id always gives
//! the same bytes, on every platform and in every run. Writing by hand instead of through
//! serde_json keeps generation at a few tens of nanoseconds per event.

use crate::config::Quickstart;

/// The earliest and latest event time (milliseconds since the epoch), Confluent's range.
const TIME_MIN: u64 = 1_487_715_775_521;
const TIME_MAX: u64 = 1_519_273_364_600;

/// What the `"pad"` field adds around its content: `,"pad":""`.
pub(crate) const PAD_OVERHEAD: usize = 9;

/// splitmix64: a tiny, well-mixed generator; each `next` is one step of the sequence.
struct SplitMix64(u64);

impl SplitMix64 {
    fn for_id(id: u64) -> Self {
        let mut seeded = SplitMix64(id);
        SplitMix64(seeded.next())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `low..=high`, by multiply-shift rather than modulo: wasm has no 64-bit
    /// multiply-high for a division by a constant, so a modulo costs a real division.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        let range = u128::from(high - low + 1);
        low + ((u128::from(self.next()) * range) >> 64) as u64
    }
}

/// One event's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Order { id: u64, time: u64, item: u64, units_hundredths: u64, city: u64, state: u64, zipcode: u64 },
    User { id: u64, time: u64, user: u64, region: u64, gender: &'static str },
    Pageview { id: u64, time: u64, user: u64, page: u64 },
}

const GENDERS: [&str; 3] = ["MALE", "FEMALE", "OTHER"];

impl Event {
    fn of(quickstart: Quickstart, id: u64) -> Self {
        let mut random = SplitMix64::for_id(id);
        let time = random.between(TIME_MIN, TIME_MAX);
        match quickstart {
            Quickstart::Orders => Event::Order {
                id,
                time,
                item: random.between(1, 999),
                units_hundredths: random.between(10, 999),
                city: random.between(1, 99),
                state: random.between(1, 99),
                zipcode: random.between(10_000, 99_999),
            },
            Quickstart::Users => Event::User {
                id,
                time,
                user: random.between(1, 9),
                region: random.between(1, 9),
                gender: GENDERS[random.between(0, 2) as usize],
            },
            Quickstart::Pageviews => {
                Event::Pageview { id, time, user: random.between(1, 9), page: random.between(10, 99) }
            }
        }
    }

    /// The widest event of a quickstart with ids up to `max_id`.
    fn widest(quickstart: Quickstart, max_id: u64) -> Self {
        match quickstart {
            Quickstart::Orders => Event::Order {
                id: max_id,
                time: TIME_MAX,
                item: 999,
                units_hundredths: 999,
                city: 99,
                state: 99,
                zipcode: 99_999,
            },
            Quickstart::Users => Event::User { id: max_id, time: TIME_MAX, user: 9, region: 9, gender: "FEMALE" },
            Quickstart::Pageviews => Event::Pageview { id: max_id, time: TIME_MAX, user: 9, page: 99 },
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Event::Order { id, time, item, units_hundredths, city, state, zipcode } => {
                out.extend_from_slice(b"{\"id\":");
                push_u64(out, id);
                out.extend_from_slice(b",\"ordertime\":");
                push_u64(out, time);
                out.extend_from_slice(b",\"itemid\":\"Item_");
                push_u64(out, item);
                out.extend_from_slice(b"\",\"orderunits\":");
                push_u64(out, units_hundredths / 100);
                out.push(b'.');
                out.push(b'0' + (units_hundredths / 10 % 10) as u8);
                out.push(b'0' + (units_hundredths % 10) as u8);
                out.extend_from_slice(b",\"address\":{\"city\":\"City_");
                push_u64(out, city);
                out.extend_from_slice(b"\",\"state\":\"State_");
                push_u64(out, state);
                out.extend_from_slice(b"\",\"zipcode\":");
                push_u64(out, zipcode);
                out.extend_from_slice(b"}}");
            }
            Event::User { id, time, user, region, gender } => {
                out.extend_from_slice(b"{\"id\":");
                push_u64(out, id);
                out.extend_from_slice(b",\"registertime\":");
                push_u64(out, time);
                out.extend_from_slice(b",\"userid\":\"User_");
                push_u64(out, user);
                out.extend_from_slice(b"\",\"regionid\":\"Region_");
                push_u64(out, region);
                out.extend_from_slice(b"\",\"gender\":\"");
                out.extend_from_slice(gender.as_bytes());
                out.extend_from_slice(b"\"}");
            }
            Event::Pageview { id, time, user, page } => {
                out.extend_from_slice(b"{\"id\":");
                push_u64(out, id);
                out.extend_from_slice(b",\"viewtime\":");
                push_u64(out, time);
                out.extend_from_slice(b",\"userid\":\"User_");
                push_u64(out, user);
                out.extend_from_slice(b"\",\"pageid\":\"Page_");
                push_u64(out, page);
                out.extend_from_slice(b"\"}");
            }
        }
    }
}

/// Append the event `id` of `quickstart` to `out` as a JSON object; with `size`, padded with a
/// `"pad"` field of `x`s to exactly `size` bytes. `size` must be at least
/// [`max_len`]` + `[`PAD_OVERHEAD`] for the ids in use (checked when the config is validated).
pub(crate) fn write_event(quickstart: Quickstart, id: u64, size: Option<usize>, out: &mut Vec<u8>) {
    let start = out.len();
    Event::of(quickstart, id).write(out);
    if let Some(size) = size {
        let written = out.len() - start;
        let pad = size.saturating_sub(written + PAD_OVERHEAD);
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"pad\":\"");
        out.resize(out.len() + pad, b'x');
        out.extend_from_slice(b"\"}");
    }
}

/// The length of the longest event of `quickstart` with ids up to `max_id`.
pub(crate) fn max_len(quickstart: Quickstart, max_id: u64) -> usize {
    let mut out = Vec::with_capacity(256);
    Event::widest(quickstart, max_id).write(&mut out);
    out.len()
}

/// Append `value` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(quickstart: Quickstart, id: u64, size: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        write_event(quickstart, id, size, &mut out);
        out
    }

    #[test]
    fn push_u64_writes_decimal() {
        for value in [0, 7, 10, 1234567890, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string().into_bytes());
        }
    }

    #[test]
    fn same_id_same_event_and_ids_differ() {
        for quickstart in [Quickstart::Orders, Quickstart::Users, Quickstart::Pageviews] {
            assert_eq!(event(quickstart, 17, None), event(quickstart, 17, None));
            assert_ne!(event(quickstart, 17, None), event(quickstart, 18, None));
        }
    }

    #[test]
    fn events_are_json_with_the_quickstart_fields() {
        let order: serde_json::Value = serde_json::from_slice(&event(Quickstart::Orders, 17, None)).unwrap();
        assert_eq!(order["id"], 17);
        assert!(order["ordertime"].as_u64().unwrap() >= TIME_MIN);
        assert!(order["itemid"].as_str().unwrap().starts_with("Item_"));
        let units = order["orderunits"].as_f64().unwrap();
        assert!((0.1..10.0).contains(&units), "{units}");
        assert!(order["address"]["city"].as_str().unwrap().starts_with("City_"));
        assert!(order["address"]["state"].as_str().unwrap().starts_with("State_"));
        assert!((10_000..100_000).contains(&order["address"]["zipcode"].as_u64().unwrap()));

        let user: serde_json::Value = serde_json::from_slice(&event(Quickstart::Users, 3, None)).unwrap();
        assert_eq!(user["id"], 3);
        assert!(GENDERS.contains(&user["gender"].as_str().unwrap()));
        assert!(user["regionid"].as_str().unwrap().starts_with("Region_"));

        let view: serde_json::Value = serde_json::from_slice(&event(Quickstart::Pageviews, 5, None)).unwrap();
        assert!(view["pageid"].as_str().unwrap().starts_with("Page_"));
        assert!(view["viewtime"].is_u64());
    }

    #[test]
    fn widest_event_bounds_every_event() {
        for quickstart in [Quickstart::Orders, Quickstart::Users, Quickstart::Pageviews] {
            let bound = max_len(quickstart, 9_999);
            for id in 0..10_000 {
                assert!(event(quickstart, id, None).len() <= bound);
            }
        }
    }

    #[test]
    fn padding_gives_exact_sizes_and_valid_json() {
        for (quickstart, size) in [(Quickstart::Pageviews, 100), (Quickstart::Orders, 1024), (Quickstart::Users, 200)] {
            let minimum = max_len(quickstart, u64::MAX) + PAD_OVERHEAD;
            assert!(size >= minimum, "{size} < {minimum}");
            for id in [0, 1, 99, 12_345, u64::MAX] {
                let value = event(quickstart, id, Some(size));
                assert_eq!(value.len(), size);
                let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
                assert!(json["pad"].as_str().unwrap().bytes().all(|byte| byte == b'x'));
            }
        }
    }
}
