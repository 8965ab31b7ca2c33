//! JSON logs: one object per line with `timestamp`, `level`, `message`, `target`,
//! `service`, `correlationId`, `traceId`, `spanId` and the event's own fields.
//!
//! Fields recorded on enclosing spans (the HTTP middleware records the request's ids on
//! its span, the Kafka consumer the record's) are copied onto every line logged inside
//! them, which is how every line of a request carries its correlation id.

use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where log lines go: stdout in services, a buffer in tests.
pub type Sink = Box<dyn Write + Send>;

/// Installs the JSON logger as the global subscriber. `filter` uses `RUST_LOG` syntax
/// (`info`, `info,sqlx=warn`); a bad filter is a configuration error.
pub fn init(service: &str, filter: &str) -> anyhow::Result<()> {
    init_with_sink(service, filter, Box::new(std::io::stdout()))
}

/// As [`init`], writing to `sink`.
pub fn init_with_sink(service: &str, filter: &str, sink: Sink) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid log filter '{filter}': {e}"))?;
    tracing_subscriber::registry()
        .with(JsonLayer::new(service, sink).with_filter(filter))
        .try_init()
        .map_err(|e| anyhow::anyhow!("logger already installed: {e}"))
}

/// The layer that formats events as JSON lines.
pub struct JsonLayer {
    service: String,
    sink: Mutex<Sink>,
}

impl JsonLayer {
    pub fn new(service: &str, sink: Sink) -> Self {
        Self {
            service: service.to_owned(),
            sink: Mutex::new(sink),
        }
    }
}

/// Fields recorded on a span, kept in the span's extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut chain = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().to_owned(), Value::String(chain));
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("message".into(), Value::String(String::new()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        line.insert("service".into(), Value::String(self.service.clone()));
        for key in ["correlationId", "traceId", "spanId"] {
            line.insert(key.into(), Value::Null);
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        // The task's context names the innermost unit of work (a transaction or call
        // inside a request has its own span id, the one exported): it wins over the
        // request span's fields, and work outside any span still names its context.
        if let Some(current) = crate::context::current() {
            if line["correlationId"].is_null() {
                line.insert(
                    "correlationId".into(),
                    Value::String(current.correlation_id),
                );
            }
            line.insert("traceId".into(), Value::String(current.trace.trace_id));
            line.insert("spanId".into(), Value::String(current.trace.span_id));
        }
        event.record(&mut JsonVisitor(&mut line));
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        if let Ok(mut sink) = self.sink.lock() {
            // A log line that cannot be written has nowhere else to go.
            let _ = sink.write_all(&bytes);
            let _ = sink.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_carries_the_ids_of_the_span_it_was_logged_in() {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new("svc", Box::new(buffer.clone())));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                correlationId = "abc",
                traceId = "t1",
                spanId = "s1"
            );
            let _guard = span.enter();
            tracing::info!(orderNumber = "ORD-1", "order stored");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["correlationId"], "abc");
        assert_eq!(line["traceId"], "t1");
        assert_eq!(line["spanId"], "s1");
        assert_eq!(line["message"], "order stored");
        assert_eq!(line["orderNumber"], "ORD-1");
        assert_eq!(line["service"], "svc");
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    #[tokio::test]
    async fn a_line_inside_a_child_span_names_the_child_not_the_request() {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new("svc", Box::new(buffer.clone())));
        let _default = tracing::subscriber::set_default(subscriber);
        let mut ctx = crate::context::RequestContext::new_root();
        ctx.correlation_id = "abc".into();
        let request_span = ctx.trace.span_id.clone();
        let span = tracing::info_span!(
            "request",
            correlationId = "abc",
            traceId = %ctx.trace.trace_id,
            spanId = %request_span
        );
        let mut child = ctx.clone();
        child.trace = ctx.trace.child();
        let child_span = child.trace.span_id.clone();
        let _guard = span.enter();
        crate::context::scope(child, async { tracing::info!("in the transaction") }).await;
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["spanId"], child_span.as_str());
        assert_ne!(line["spanId"], request_span.as_str());
        assert_eq!(line["traceId"], ctx.trace.trace_id.as_str());
        assert_eq!(line["correlationId"], "abc");
    }

    #[test]
    fn lines_outside_a_request_have_null_ids() {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new("svc", Box::new(buffer.clone())));
        tracing::subscriber::with_default(subscriber, || tracing::warn!("started"));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert!(line["correlationId"].is_null());
        assert_eq!(line["level"], "WARN");
    }
}
