//! Durations as operators type them: `90s`, `10m`, `24h`, `7d`, or plain seconds.

use std::time::Duration;

/// Parses `30s`, `10m`, `24h`, `7d`, `1h30m` or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty; use e.g. 30s, 10m, 24h or 7d".into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "'{text}' is not a duration such as 30s, 10m, 24h or 7d"
                ))
            }
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("'{text}' is not a duration such as 30s, 10m, 24h or 7d"))?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("'{text}' is too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("'{text}' needs a unit after {number} (s, m, h, d)"));
    }
    Ok(Duration::from_secs(total))
}

/// A duration as a short human string: `45s`, `12m 3s`, `5h 2m`, `3d 4h`.
pub fn human(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `now - duration` as a UTC wall-clock time, the form the `TIMESTAMP` columns hold.
pub fn ago(duration: Duration) -> chrono::NaiveDateTime {
    let now = platform::time::now();
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(chrono::NaiveDateTime::MIN)
}

/// How long ago a UTC wall-clock time was (zero if it is in the future).
pub fn age(since: chrono::NaiveDateTime) -> Duration {
    (platform::time::now() - since).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds_are_understood() {
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn nonsense_is_refused_with_a_hint() {
        assert!(parse("ten minutes").is_err());
        assert!(parse("10").is_ok());
        assert!(parse("10x").unwrap_err().contains("10m"));
        assert!(parse("5m3").unwrap_err().contains("unit"));
    }

    #[test]
    fn durations_print_short() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(723)), "12m 3s");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3d 4h");
    }
}
