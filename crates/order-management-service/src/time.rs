//! HTTP timestamps as the original writes them: ISO-8601 local date-time in UTC, with
//! no zone and fractional seconds trimmed of trailing zeros.

use chrono::NaiveDateTime;

/// `2025-10-06T14:03:27.51234` for a UTC wall-clock time.
pub fn format(instant: NaiveDateTime) -> String {
    let base = instant.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = instant.and_utc().timestamp_subsec_micros();
    if micros == 0 {
        return base;
    }
    let fraction = format!("{micros:06}");
    format!("{base}.{}", fraction.trim_end_matches('0'))
}

/// Serde adapter for `#[serde(serialize_with = "time::serialize")]`.
pub fn serialize<S: serde::Serializer>(
    instant: &NaiveDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*instant))
}

/// Serde adapter for an optional time.
pub fn serialize_option<S: serde::Serializer>(
    instant: &Option<NaiveDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match instant {
        Some(instant) => serializer.serialize_str(&format(*instant)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn trailing_zeros_are_trimmed_and_no_zone_is_written() {
        let t = DateTime::parse_from_rfc3339("2025-10-06T14:03:27.512340Z")
            .expect("valid")
            .with_timezone(&Utc)
            .naive_utc();
        assert_eq!(format(t), "2025-10-06T14:03:27.51234");
        let whole = DateTime::parse_from_rfc3339("2025-10-06T14:03:27Z")
            .expect("valid")
            .with_timezone(&Utc)
            .naive_utc();
        assert_eq!(format(whole), "2025-10-06T14:03:27");
    }
}
