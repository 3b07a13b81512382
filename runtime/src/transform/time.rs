//! Dates for `TimestampRouter`: UTC, from epoch milliseconds, with the `SimpleDateFormat`
//! letters its users write, and no date crate for one pure function.

/// Format epoch milliseconds (UTC) with the `SimpleDateFormat` letters Kafka Connect's
/// `TimestampRouter` users write: `yyyy`, `yy`, `MM`, `dd`, `HH`, `mm`, `ss`, `SSS`; other
/// characters are copied, text in single quotes literally.
pub(super) fn format_timestamp(millis: i64, format: &str) -> String {
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let letter = chars[index];
        let mut run = 1;
        while index + run < chars.len() && chars[index + run] == letter {
            run += 1;
        }
        match letter {
            '\'' => {
                let end = chars[index + 1..].iter().position(|&c| c == '\'').map_or(chars.len(), |at| index + 1 + at);
                out.extend(&chars[index + 1..end]);
                index = end + 1;
                continue;
            }
            'y' if run == 2 => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            'y' => out.push_str(&format!("{year:0run$}")),
            'M' => out.push_str(&format!("{month:0run$}")),
            'd' => out.push_str(&format!("{day:0run$}")),
            'H' => out.push_str(&format!("{:0run$}", in_day / 3_600_000)),
            'm' => out.push_str(&format!("{:0run$}", in_day / 60_000 % 60)),
            's' => out.push_str(&format!("{:0run$}", in_day / 1000 % 60)),
            'S' => out.push_str(&format!("{:0run$}", in_day % 1000)),
            other => (0..run).for_each(|_| out.push(other)),
        }
        index += run;
    }
    out
}

/// Howard Hinnant's days-from-civil inverse: (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::Chain;
    use crate::transform::test_support::{record, spec};

    #[test]
    fn timestamp_router_formats_utc_dates() {
        let chain = Chain::new(
            &[spec("ts", "TimestampRouter", serde_json::json!({ "timestamp.format": "yyyy-MM-dd'T'HH" }))],
            &[],
        )
        .expect("valid");
        let out = chain.apply(record("logs", None, None)).expect("ok").expect("kept");
        // 1_700_000_000_123 ms is 2023-11-14T22:13:20.123Z.
        assert_eq!(out.topic, "logs-2023-11-14T22");
        assert_eq!(format_timestamp(0, "yyyyMMdd HH:mm:ss.SSS"), "19700101 00:00:00.000");
        assert_eq!(format_timestamp(951_782_400_000, "yyMMdd"), "000229", "a leap day");
    }
}
