//! Ages as `kubectl get` shows them (apimachinery's `duration.HumanDuration`).

use chrono::{DateTime, Duration, Utc};

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_MINUTE: i128 = 60 * NANOS_PER_SECOND;
const NANOS_PER_HOUR: i128 = 60 * NANOS_PER_MINUTE;

/// A succinct duration with about two to three significant figures: `"5s"`, `"3m20s"`, `"2d3h"`,
/// `"10y"`.
///
/// Up to two seconds in the future still reads `"0s"` so that small clock skew between
/// machines does not show as `"<invalid>"`.
pub fn human_duration(d: Duration) -> String {
    let nanos = go_duration_nanos(d);
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / NANOS_PER_MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / NANOS_PER_HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        if days == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, days);
    }
    format!("{}y", hours / 24 / 365)
}

/// Go's `time.Duration` is an i64 of nanoseconds and `time.Since` saturates at its bounds, so
/// very old timestamps print as about 292 years there; clamp the same way to print the same.
fn go_duration_nanos(d: Duration) -> i128 {
    let nanos = i128::from(d.num_seconds()) * NANOS_PER_SECOND + i128::from(d.subsec_nanos());
    nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX))
}

/// `translateTimestampSince`: the age of a timestamp, or `"<unknown>"` when it is unset.
pub(crate) fn age_since(timestamp: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match timestamp {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> Duration {
        Duration::seconds(s)
    }
    fn ms(m: i64) -> Duration {
        Duration::milliseconds(m)
    }
    const MIN: i64 = 60;
    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;
    const YEAR: i64 = 365 * DAY;

    #[test]
    fn upstream_human_duration_cases() {
        let cases = [
            (secs(1), "1s"),
            (secs(70), "70s"),
            (secs(190), "3m10s"),
            (secs(70 * MIN), "70m"),
            (secs(47 * HOUR), "47h"),
            (secs(49 * HOUR), "2d1h"),
            (secs((8 * 24 + 2) * HOUR), "8d"),
            (secs(367 * DAY), "367d"),
            (secs(2 * YEAR + 25 * HOUR), "2y1d"),
            (secs(8 * YEAR + 2 * HOUR), "8y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn upstream_human_duration_boundaries() {
        let cases = [
            (secs(-2), "<invalid>"),
            (secs(-2) + Duration::nanoseconds(1), "0s"),
            (secs(0), "0s"),
            (secs(1) - ms(1), "0s"),
            (secs(2 * MIN) - ms(1), "119s"),
            (secs(2 * MIN), "2m"),
            (secs(2 * MIN + 1), "2m1s"),
            (secs(10 * MIN) - ms(1), "9m59s"),
            (secs(10 * MIN), "10m"),
            (secs(10 * MIN + 1), "10m"),
            (secs(3 * HOUR) - ms(1), "179m"),
            (secs(3 * HOUR), "3h"),
            (secs(3 * HOUR + MIN), "3h1m"),
            (secs(8 * HOUR) - ms(1), "7h59m"),
            (secs(8 * HOUR), "8h"),
            (secs(8 * HOUR + 59 * MIN), "8h"),
            (secs(2 * DAY) - ms(1), "47h"),
            (secs(2 * DAY), "2d"),
            (secs(2 * DAY + HOUR), "2d1h"),
            (secs(8 * DAY) - ms(1), "7d23h"),
            (secs(8 * DAY), "8d"),
            (secs(8 * DAY + 23 * HOUR), "8d"),
            (secs(2 * YEAR) - ms(1), "729d"),
            (secs(2 * YEAR), "2y"),
            (secs(2 * YEAR + 23 * HOUR), "2y"),
            (secs(2 * YEAR + 23 * HOUR + 59 * MIN), "2y"),
            (secs(2 * YEAR + DAY) - ms(1), "2y"),
            (secs(2 * YEAR + DAY), "2y1d"),
            (secs(3 * YEAR), "3y"),
            (secs(4 * YEAR), "4y"),
            (secs(5 * YEAR), "5y"),
            (secs(6 * YEAR), "6y"),
            (secs(7 * YEAR), "7y"),
            (secs(8 * YEAR) - ms(1), "7y364d"),
            (secs(8 * YEAR), "8y"),
            (secs(8 * YEAR + 364 * DAY), "8y"),
            (secs(9 * YEAR), "9y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn slight_future_and_saturation() {
        assert_eq!(human_duration(ms(-1500)), "0s");
        assert_eq!(human_duration(ms(-500)), "0s");
        // Go's Duration tops out at ~292 years.
        assert_eq!(human_duration(secs(1000 * YEAR)), "292y");
    }

    #[test]
    fn unset_timestamp_is_unknown() {
        assert_eq!(age_since(None, Utc::now()), "<unknown>");
    }
}
