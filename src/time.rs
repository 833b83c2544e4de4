//! Timestamps (RFC 3339, kept as whole Unix seconds) and policy durations (`45s`, `30m`,
//! `8h`, `2d`, `1h30m`).

/// Parses an RFC 3339 timestamp (`2026-11-27T08:00:00Z`, any offset) into Unix seconds.
/// Fractions of a second are truncated: session times are kept to the second.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(jiff::Timestamp::as_second)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-27T08:00:00Z ({e})"))
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-27T08:00:00Z`).
pub fn format_timestamp(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.to_string(),
        Err(_) => secs.to_string(),
    }
}

/// The wall clock, in Unix seconds.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The longest duration anything accepts: 100 years (of 365.25 days), in seconds. Longer
/// ones are mistakes, and refusing them keeps every sum with a timestamp far from overflow.
pub const MAX_DURATION_S: u64 = 3_155_760_000;

/// Parses a duration such as `45s`, `30m`, `8h`, `2d` or `1h30m` into seconds: at most
/// [`MAX_DURATION_S`], never negative.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad =
        || format!("`{s}` is not a duration such as 45s, 30m, 8h, 2d or 1h30m (at most 100 years)");
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
        any = true;
    }
    if !digits.is_empty() || !any || total > MAX_DURATION_S {
        return Err(bad());
    }
    Ok(total)
}

/// A duration given on the command line: a duration such as `10s` or `2m`, or a plain
/// number of seconds (`10`, `0.5`); finite, not negative, at most 100 years.
pub fn parse_flag_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return if secs.is_finite() && (0.0..=MAX_DURATION_S as f64).contains(&secs) {
            Ok(std::time::Duration::from_secs_f64(secs))
        } else {
            Err(format!(
                "`{s}` is not a duration: expected seconds (such as 10 or 0.5) or 45s, 30m, 8h, 2d, at most 100 years"
            ))
        };
    }
    parse_duration(t).map(std::time::Duration::from_secs)
}

/// Checks a duration given in whole seconds (a topology's session limits).
pub fn check_seconds(secs: u64) -> Result<u64, String> {
    if secs > MAX_DURATION_S {
        Err(format!("{secs} seconds is longer than 100 years"))
    } else {
        Ok(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = parse_timestamp("2026-11-27T08:00:00Z").unwrap();
        assert_eq!(format_timestamp(t), "2026-11-27T08:00:00Z");
        assert_eq!(parse_timestamp("2026-11-27T09:00:00+01:00").unwrap(), t);
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("8h"), Ok(28_800));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        for bad in [
            "",
            "8",
            "h",
            "1x",
            "1h30",
            "-1h",
            "36600d",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("36500d"), Ok(3_153_600_000));
    }

    #[test]
    fn flag_durations_refuse_what_would_panic_or_wrap() {
        use std::time::Duration;
        assert_eq!(parse_flag_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_flag_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_flag_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["inf", "-inf", "NaN", "-1", "1e300", "4e9", "forever", "-5s"] {
            assert!(parse_flag_duration(bad).is_err(), "{bad}");
        }
        assert!(check_seconds(MAX_DURATION_S + 1).is_err());
    }
}
