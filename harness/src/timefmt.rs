//! RFC 3339 UTC timestamps ("2026-11-25T20:15:42Z", llama-bench's `test_time` form)
//! without a date crate: the proleptic Gregorian calendar via Howard Hinnant's
//! days-from-civil algorithms, which are exact for every day in range.

use std::time::{SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// Formats `t` as "YYYY-MM-DDTHH:MM:SSZ", truncating to whole seconds (floor, also
/// before 1970). Years past 9999 print with more digits; RFC 3339 cannot express them.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
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
    let days = secs.div_euclid(SECS_PER_DAY);
    let rem = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" into seconds since the epoch
/// (fractions dropped). Also accepts a space or lowercase 't' for 'T' and 'z' for 'Z',
/// as RFC 3339 allows. `None` for anything else or an impossible date.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !b.is_ascii() {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[range];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // A leap second (60) is accepted and folds into the next minute.
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if day < 1 || day > i64::from(days_in_month(year, month as u32)) {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let sign = match r[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits = |p: &str| -> Option<i64> {
                if p.bytes().all(|c| c.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            };
            let (oh, om) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    Some(days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1
    let mp = (5 * doy + 2) / 153; // 0 = March .. 11 = February
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month 1..=12, day) → days since 1970-01-01; the inverse of
/// [`civil_from_days`] for valid dates.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
            assert_eq!(parse_rfc3339(text), Some(secs), "{text}");
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
        assert!(parse_rfc3339(&now).is_some());
    }

    #[test]
    fn civil_round_trips_over_four_centuries() {
        // 146097 days = one full Gregorian cycle, from before the epoch to after.
        let mut prev = civil_from_days(-73_000);
        for days in -72_999..73_098 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            // Consecutive days: next day of month, or day 1 of the next month.
            if d != prev.2 + 1 {
                assert_eq!(d, 1, "{days}");
                assert_eq!(prev.2, days_in_month(prev.0, prev.1));
            }
            prev = (y, m, d);
        }
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert!(!is_leap(1900) && is_leap(2000) && is_leap(2024) && !is_leap(2100));
    }

    #[test]
    fn parses_offsets_fractions_and_rejects_garbage() {
        let t = 1_795_637_742;
        assert_eq!(parse_rfc3339("2026-11-25T20:15:42.123456Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-25 20:15:42z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-25T21:15:42+01:00"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-25T15:15:42-05:00"), Some(t));
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T20:15:42",
            "2026-13-25T20:15:42Z",
            "2025-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T20:15:42.Z",
            "2026-11-25T20:15:42+0100",
            "2026-11-25T20:15:42+01:00x",
            "+026-11-25T20:15:42Z",
            "2026-11-25T20:15:4ZZ",
            "2026-11-25T20:15:42Zé",
            "20é6-11-25T20:15:42Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let _ = rfc3339_from_unix(i64::MAX);
        let _ = rfc3339_from_unix(i64::MIN);
        let _ = rfc3339(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4));
    }
}
