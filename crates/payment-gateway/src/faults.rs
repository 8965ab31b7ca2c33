//! Fault knobs: how the gateway misbehaves, for tests and drills.
//!
//! The knobs live in a `watch` channel so a hanging request wakes the moment an
//! operator clears `hang`, and every request reads one consistent set of knobs.

use platform::rules::Int;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::Object;
use utoipa::ToSchema;

/// The current fault knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Share of new charges that succeed (0.0 to 1.0); the rest are declined.
    pub success_rate: f64,
    /// Delay added to every new charge and every refund, in milliseconds.
    pub latency_ms: u64,
    /// When set, every charge and refund request answers this HTTP status and changes nothing.
    pub error_status: Option<u16>,
    /// When true, charge and refund requests do not answer until it is cleared.
    pub hang: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            success_rate: 1.0,
            latency_ms: 20,
            error_status: None,
            hang: false,
        }
    }
}

/// Longest added latency, in milliseconds.
const LATENCY_MS: Int = Int {
    min: 0,
    max: 600_000,
};
/// Statuses the `errorStatus` knob can answer with: HTTP errors.
const ERROR_STATUS: Int = Int { min: 400, max: 599 };

/// A change to the knobs: absent fields keep their value; `errorStatus: null` clears it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultsUpdate {
    #[schema(schema_with = success_rate_schema)]
    pub success_rate: Option<f64>,
    #[schema(schema_with = latency_schema)]
    pub latency_ms: Option<u64>,
    #[serde(default, deserialize_with = "explicit_null")]
    #[schema(schema_with = error_status_schema)]
    pub error_status: Option<Option<u16>>,
    #[schema(schema_with = hang_schema)]
    pub hang: Option<bool>,
}

fn success_rate_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .minimum(Some(0))
        .maximum(Some(1))
        .build()
}

fn latency_schema() -> Object {
    LATENCY_MS.nullable_schema()
}

fn error_status_schema() -> Object {
    ERROR_STATUS.nullable_schema()
}

fn hang_schema() -> Object {
    platform::rules::boolean_schema(true)
}

/// Tells "absent" (`None`) from "explicitly null" (`Some(None)`).
fn explicit_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u16>>, D::Error> {
    Option::<u16>::deserialize(d).map(Some)
}

impl FaultsUpdate {
    /// Applies the update to `faults`, or says which field is out of range.
    pub fn apply(&self, faults: &Faults) -> Result<Faults, (String, String)> {
        let mut next = *faults;
        if let Some(rate) = self.success_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(("successRate".into(), "must be between 0.0 and 1.0".into()));
            }
            next.success_rate = rate;
        }
        if let Some(latency) = self.latency_ms {
            if i64::try_from(latency).map_or(true, |l| !LATENCY_MS.contains(l)) {
                return Err((
                    "latencyMs".into(),
                    format!("must be at most {}", LATENCY_MS.max),
                ));
            }
            next.latency_ms = latency;
        }
        if let Some(status) = self.error_status {
            if status.is_some_and(|s| !ERROR_STATUS.contains(i64::from(s))) {
                return Err((
                    "errorStatus".into(),
                    "must be an HTTP error status (400-599)".into(),
                ));
            }
            next.error_status = status;
        }
        if let Some(hang) = self.hang {
            next.hang = hang;
        }
        Ok(next)
    }
}

/// The shared, switchable knobs.
#[derive(Clone)]
pub struct FaultSwitch {
    sender: watch::Sender<Faults>,
}

impl FaultSwitch {
    pub fn new(initial: Faults) -> Self {
        Self {
            sender: watch::Sender::new(initial),
        }
    }

    /// The knobs now.
    pub fn current(&self) -> Faults {
        *self.sender.borrow()
    }

    /// Replaces the knobs; hanging requests re-check at once.
    pub fn set(&self, faults: Faults) {
        self.sender.send_replace(faults);
    }

    /// Waits until `hang` is off and returns the knobs at that moment.
    pub async fn wait_unless_hanging(&self) -> Faults {
        let mut receiver = self.sender.subscribe();
        let faults = match receiver.wait_for(|f| !f.hang).await {
            Ok(faults) => *faults,
            // The sender lives as long as `self`; this is unreachable in practice.
            Err(_) => self.current(),
        };
        faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_changes_only_the_fields_it_names() {
        let update: FaultsUpdate =
            serde_json::from_str(r#"{"errorStatus": 503}"#).expect("valid update");
        let next = update.apply(&Faults::default()).expect("in range");
        assert_eq!(next.error_status, Some(503));
        assert_eq!(next.latency_ms, 20);
        let clear: FaultsUpdate =
            serde_json::from_str(r#"{"errorStatus": null}"#).expect("valid update");
        assert_eq!(clear.apply(&next).expect("in range").error_status, None);
        let keep: FaultsUpdate = serde_json::from_str(r#"{"hang": false}"#).expect("valid");
        assert_eq!(keep.apply(&next).expect("in range").error_status, Some(503));
    }

    #[test]
    fn out_of_range_knobs_are_refused() {
        let update: FaultsUpdate = serde_json::from_str(r#"{"successRate": 2}"#).expect("valid");
        assert!(update.apply(&Faults::default()).is_err());
        let update: FaultsUpdate = serde_json::from_str(r#"{"errorStatus": 200}"#).expect("valid");
        assert!(update.apply(&Faults::default()).is_err());
    }

    #[tokio::test]
    async fn a_hanging_request_wakes_when_hang_is_cleared() {
        let switch = FaultSwitch::new(Faults {
            hang: true,
            ..Faults::default()
        });
        let waiter = tokio::spawn({
            let switch = switch.clone();
            async move { switch.wait_unless_hanging().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        switch.set(Faults::default());
        let faults = waiter.await.expect("joined");
        assert!(!faults.hang);
    }
}
