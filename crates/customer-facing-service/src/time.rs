//! Time stamps as the original writes them on HTTP: ISO-8601 local date-time in UTC,
//! no offset, fractional seconds with trailing zeros removed (`2025-10-06T14:03:27.51234`).

use chrono::{NaiveDateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC wall-clock time as stored in `TIMESTAMP` columns and shown on HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct LocalTime(pub NaiveDateTime);

/// Now, in UTC, at the microsecond precision PostgreSQL keeps.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

impl From<NaiveDateTime> for LocalTime {
    fn from(t: NaiveDateTime) -> Self {
        Self(t)
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::Timelike;
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S"))?;
        let micros = self.0.nanosecond() / 1_000;
        if micros > 0 {
            let digits = format!("{micros:06}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> LocalTime {
        LocalTime(NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").unwrap())
    }

    #[test]
    fn trailing_zeros_of_the_fraction_are_trimmed_and_no_zone_is_written() {
        assert_eq!(
            at("2025-10-06T14:03:27.512340").to_string(),
            "2025-10-06T14:03:27.51234"
        );
        assert_eq!(at("2025-10-06T14:03:27").to_string(), "2025-10-06T14:03:27");
        assert_eq!(
            at("2025-10-06T14:03:27.000001").to_string(),
            "2025-10-06T14:03:27.000001"
        );
    }

    #[test]
    fn a_written_time_reads_back_the_same() {
        let t = at("2025-10-06T14:03:27.5");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2025-10-06T14:03:27.5\"");
        assert_eq!(serde_json::from_str::<LocalTime>(&json).unwrap(), t);
    }
}
