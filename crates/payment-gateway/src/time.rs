//! HTTP timestamps as the original writes them: ISO-8601 local date-time in UTC, with
//! no zone and fractional seconds trimmed of trailing zeros.

use chrono::{DateTime, Utc};

/// `2025-10-06T14:03:27.51234` for a UTC instant.
pub fn format(instant: DateTime<Utc>) -> String {
    let base = instant.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = instant.timestamp_subsec_micros();
    if micros == 0 {
        return base;
    }
    let fraction = format!("{micros:06}");
    format!("{base}.{}", fraction.trim_end_matches('0'))
}

/// Serde adapter for `#[serde(serialize_with = "time::serialize")]`.
pub fn serialize<S: serde::Serializer>(
    instant: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*instant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_zeros_are_trimmed_and_no_zone_is_written() {
        let t = DateTime::parse_from_rfc3339("2025-10-06T14:03:27.512340Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(format(t), "2025-10-06T14:03:27.51234");
        let whole = DateTime::parse_from_rfc3339("2025-10-06T14:03:27Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(format(whole), "2025-10-06T14:03:27");
    }
}
