//! The Kafka headers every event carries, built in one place so that each producer
//! writes the same names in the same order: Spring's `__TypeId__`, `eventId`,
//! `eventType`, then the request's `X-Correlation-ID` and W3C `traceparent` when there
//! are any.

use crate::TYPE_ID_HEADER;
use platform::context::{RequestContext, TraceContext};
use platform::context::{CORRELATION_HEADER, TRACEPARENT_HEADER};
use uuid::Uuid;

/// The headers of one event, in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeaders(Vec<(String, String)>);

impl EventHeaders {
    /// The headers that name the event: its Spring type id, its id and its type.
    pub fn new(type_id: &str, event_id: Uuid, event_type: &str) -> Self {
        Self(vec![
            (TYPE_ID_HEADER.to_owned(), type_id.to_owned()),
            ("eventId".to_owned(), event_id.to_string()),
            ("eventType".to_owned(), event_type.to_owned()),
        ])
    }

    /// Adds the correlation id.
    #[must_use]
    pub fn correlation(mut self, correlation_id: &str) -> Self {
        self.0
            .push((CORRELATION_HEADER.to_owned(), correlation_id.to_owned()));
        self
    }

    /// Adds the trace the event continues.
    #[must_use]
    pub fn trace(mut self, trace: &TraceContext) -> Self {
        self.0
            .push((TRACEPARENT_HEADER.to_owned(), trace.traceparent()));
        self
    }

    /// Adds the correlation id and trace of the request the event comes from, if any.
    #[must_use]
    pub fn request(self, request: Option<&RequestContext>) -> Self {
        match request {
            Some(ctx) => self.correlation(&ctx.correlation_id).trace(&ctx.trace),
            None => self,
        }
    }

    /// The headers as a JSON object, as an outbox row stores them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }

    /// The headers in the order they are written, as a message carries them.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_naming_headers_come_first_and_the_request_ones_after() {
        let id = Uuid::nil();
        let headers = EventHeaders::new("T", id, "E").correlation("c-1");
        let names: Vec<String> = headers
            .clone()
            .into_vec()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            names,
            [TYPE_ID_HEADER, "eventId", "eventType", CORRELATION_HEADER]
        );
        assert_eq!(headers.to_json()["eventType"], "E");
        assert_eq!(
            EventHeaders::new("T", id, "E")
                .request(None)
                .into_vec()
                .len(),
            3
        );
    }
}
