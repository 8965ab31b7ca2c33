//! Time stamps as the original writes them on HTTP: ISO-8601 local date-time in UTC,
//! no offset, fractional seconds with trailing zeros removed (`2025-10-06T14:03:27.51234`).
//! Databases hold them as `TIMESTAMP` (UTC wall-clock time).

use chrono::{DateTime, Datelike, NaiveDateTime, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt::Write as _;

/// Now, in UTC, at the microsecond precision PostgreSQL keeps.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// `2025-10-06T14:03:27.51234` for a UTC wall-clock time.
///
/// Written field by field: chrono's `format("%Y-...")` parses its pattern on every
/// call, which was an eighth of the customer service's CPU when serving the catalogue.
pub fn format(t: NaiveDateTime) -> String {
    let mut text = String::with_capacity(26);
    let _ = write!(
        text,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let mut micros = t.nanosecond() / 1_000;
    if micros > 0 {
        let mut digits = 6;
        while micros % 10 == 0 {
            micros /= 10;
            digits -= 1;
        }
        let _ = write!(text, ".{micros:0digits$}");
    }
    text
}

/// Serde adapter: `#[serde(serialize_with = "platform::time::serialize")]`.
pub fn serialize<S: Serializer>(t: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*t))
}

/// Serde adapter for an optional time (null when absent).
pub fn serialize_option<S: Serializer>(
    t: &Option<NaiveDateTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serializer.serialize_str(&format(*t)),
        None => serializer.serialize_none(),
    }
}

/// Serde adapter for an instant, written as its UTC wall-clock time.
pub fn serialize_utc<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(t.naive_utc()))
}

/// A UTC wall-clock time as stored in `TIMESTAMP` columns and shown on HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct LocalTime(pub NaiveDateTime);

impl From<NaiveDateTime> for LocalTime {
    fn from(t: NaiveDateTime) -> Self {
        Self(t)
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        // `FromStr` reads exactly this ISO form without parsing a pattern each time.
        text.parse::<NaiveDateTime>()
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    }

    #[test]
    fn trailing_zeros_of_the_fraction_are_trimmed_and_no_zone_is_written() {
        assert_eq!(
            format(at("2025-10-06T14:03:27.512340")),
            "2025-10-06T14:03:27.51234"
        );
        assert_eq!(format(at("2025-10-06T14:03:27")), "2025-10-06T14:03:27");
        assert_eq!(
            format(at("2025-10-06T14:03:27.000001")),
            "2025-10-06T14:03:27.000001"
        );
    }

    #[test]
    fn a_written_local_time_reads_back_the_same() {
        let t = LocalTime(at("2025-10-06T14:03:27.5"));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2025-10-06T14:03:27.5\"");
        assert_eq!(serde_json::from_str::<LocalTime>(&json).unwrap(), t);
    }

    #[test]
    fn now_keeps_microseconds_only() {
        assert_eq!(now().nanosecond() % 1_000, 0);
    }
}
