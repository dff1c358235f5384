//! RFC 3339 UTC timestamps ("2026-11-25T20:15:42Z", llama-bench's `test_time` form), by the
//! `jiff` crate. What is left here is the one form tessera writes: whole seconds, UTC, `Z`.
//!
//! Nothing in tessera reads a timestamp back (rows keep `test_time` as text, history sorts
//! by insertion), so there is no parser. The instant is placed on jiff's civil (UTC) calendar
//! rather than made a `Timestamp`, whose range stops a day short of 9999-12-31 to leave room
//! for offsets. That calendar spans the years -9999..=9999; an instant outside it (only a
//! corrupt clock or a forged commit date gives one) is written as the nearest end of the
//! range rather than failing a whole benchmark over a label.

use std::time::SystemTime;

use jiff::SignedDuration;
use jiff::civil::DateTime;

/// Formats `t` as "YYYY-MM-DDTHH:MM:SSZ", truncating to whole seconds (floor, also before
/// 1970).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            // Floor: 0.5 s before the epoch is 1969-12-31T23:59:59Z.
            whole
                .saturating_neg()
                .saturating_sub(i64::from(d.subsec_nanos() > 0))
        }
    };
    rfc3339_from_unix(secs)
}

/// The current time, formatted by [`rfc3339`].
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Formats seconds since 1970-01-01T00:00:00Z.
pub fn rfc3339_from_unix(secs: i64) -> String {
    let epoch = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);
    let t = match epoch.checked_add(SignedDuration::from_secs(secs)) {
        Ok(t) => t,
        Err(_) if secs > 0 => DateTime::MAX,
        Err(_) => DateTime::MIN,
    };
    // %S drops the fraction (DateTime::MAX has one), so this is always whole seconds.
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // Known instants, checked against `date -u -d @N` and Python's calendar.timegm.
    const KNOWN: &[(i64, &str)] = &[
        (0, "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (951_868_800, "2000-03-01T00:00:00Z"),
        (1_709_164_800, "2024-02-29T00:00:00Z"),
        (1_709_251_199, "2024-02-29T23:59:59Z"),
        (1_709_251_200, "2024-03-01T00:00:00Z"),
        // 1795551342 is 2026-11-24T20:15:42Z: one day earlier.
        (1_795_637_742, "2026-11-25T20:15:42Z"),
        (4_107_542_400, "2100-03-01T00:00:00Z"),
        (253_402_300_799, "9999-12-31T23:59:59Z"),
        (-62_167_219_200, "0000-01-01T00:00:00Z"),
    ];

    #[test]
    fn formats_known_instants() {
        for &(secs, text) in KNOWN {
            assert_eq!(rfc3339_from_unix(secs), text, "{secs}");
        }
    }

    #[test]
    fn formats_system_time() {
        let t = UNIX_EPOCH + Duration::new(1_795_637_742, 999_999_999);
        assert_eq!(rfc3339(t), "2026-11-25T20:15:42Z");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59Z");
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339(before), "1969-12-31T00:00:00Z");
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(
            now.ends_with('Z') && now.parse::<jiff::Timestamp>().is_ok(),
            "{now}"
        );
    }

    #[test]
    fn out_of_range_instants_clamp_to_the_range_ends() {
        assert_eq!(rfc3339_from_unix(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_from_unix(253_402_300_800), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_from_unix(i64::MIN), "-9999-01-01T00:00:00Z");
        let _ = rfc3339(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4));
    }
}
