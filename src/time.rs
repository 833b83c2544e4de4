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

/// Parses a duration such as `45s`, `30m`, `8h`, `2d` or `1h30m` into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a duration such as 45s, 30m, 8h, 2d or 1h30m");
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
    if !digits.is_empty() || !any {
        return Err(bad());
    }
    Ok(total)
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
        for bad in ["", "8", "h", "1x", "1h30", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
