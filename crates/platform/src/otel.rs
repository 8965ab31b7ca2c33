//! Exports the platform's spans to an OpenTelemetry collector over OTLP (HTTP/protobuf).
//!
//! The ids are the platform's own: every request, consumed record, transaction and
//! outgoing call already has a [`TraceContext`] whose ids are logged and sent in
//! `traceparent`; [`start`] hands those very ids to the OpenTelemetry SDK, so what a
//! log line names is what the trace backend shows. The SDK reads the standard
//! variables itself: `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! (where), `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (who), `OTEL_TRACES_SAMPLER`
//! and `OTEL_TRACES_SAMPLER_ARG` (how many). With neither endpoint set nothing is built:
//! [`start`] returns an inert span after one atomic load.

use crate::context::{self, TraceContext};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{IdGenerator, SdkTracer, SdkTracerProvider};
use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;

pub use opentelemetry::trace::SpanKind;

/// The environment variables that switch exporting on, in the SDK's order of precedence.
pub const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Every standard variable the services honour, for `--help` and the ops checks.
pub const VARIABLES: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

/// The text `--help` ends with: the OpenTelemetry variables are read by the SDK, not clap.
pub const HELP: &str = "Tracing (OpenTelemetry, read by the SDK; unset endpoint = no export):\n  \
OTEL_EXPORTER_OTLP_ENDPOINT         collector base URL, spans POSTed to <url>/v1/traces\n  \
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full traces URL, wins over the above\n  \
OTEL_SERVICE_NAME                   service.name (default: the binary's service name)\n  \
OTEL_RESOURCE_ATTRIBUTES            extra resource attributes, key=value,key=value\n  \
OTEL_TRACES_SAMPLER                 e.g. parentbased_traceidratio (default parentbased_always_on)\n  \
OTEL_TRACES_SAMPLER_ARG             the ratio for *traceidratio samplers, 0.0-1.0";

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

thread_local! {
    /// The ids the next span started on this thread must carry (see [`PlatformIds`]).
    static NEXT_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Hands the SDK the platform's ids: [`start`] puts them here right before it starts
/// the span, on the same thread, and the SDK asks for them while starting it.
#[derive(Debug)]
struct PlatformIds;

impl IdGenerator for PlatformIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS
            .with(Cell::get)
            .map_or_else(|| TraceId::from(rand::random::<u128>().max(1)), |(t, _)| t)
    }
    fn new_span_id(&self) -> SpanId {
        NEXT_IDS
            .with(Cell::get)
            .map_or_else(|| SpanId::from(rand::random::<u64>().max(1)), |(_, s)| s)
    }
}

/// Flushes and stops the exporter when dropped (at the end of `main`).
#[must_use = "dropping the guard stops exporting"]
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            // Spans that cannot be flushed at exit have nowhere else to go.
            let _ = provider.shutdown();
        }
    }
}

/// Whether the environment asks for export.
pub fn configured() -> bool {
    ENDPOINT_VARIABLES
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// Starts exporting when an OTLP endpoint is configured; `service` names the resource
/// unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` does. Must run inside the
/// Tokio runtime: the exporter's HTTP calls run on it.
pub fn init(service: &str) -> anyhow::Result<Guard> {
    if !configured() {
        return Ok(Guard(None));
    }
    let client = RuntimeClient {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?,
        runtime: tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("tracing export must start inside the runtime"))?,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| anyhow::anyhow!("OTLP exporter: {e}"))?;
    let named_by_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|s| !s.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|s| {
            s.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !named_by_env {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(PlatformIds)
        .with_resource(resource.build())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "platform");
    TRACER
        .set(tracer)
        .map_err(|_| anyhow::anyhow!("tracing export already started"))?;
    Ok(Guard(Some(provider)))
}

/// One exported span; ends (and is queued for export) when dropped. Inert when export is off
/// or the trace is not sampled.
pub struct Span(Option<opentelemetry_sdk::trace::Span>);

impl Span {
    /// A span that is not exported.
    pub fn inert() -> Self {
        Self(None)
    }

    /// Marks the span failed with `description`.
    pub fn error(&mut self, description: impl Into<String>) {
        if let Some(span) = &mut self.0 {
            span.set_status(opentelemetry::trace::Status::error(description.into()));
        }
    }

    /// Adds an attribute.
    pub fn attribute(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(key, value.into()));
        }
    }

    /// Records an HTTP status: 5xx fails a server span, 4xx and 5xx a client span, as
    /// the OpenTelemetry HTTP conventions say.
    pub fn http_status(&mut self, kind: &SpanKind, status: u16) {
        self.attribute("http.response.status_code", i64::from(status));
        let failed = match kind {
            SpanKind::Client => status >= 400,
            _ => status >= 500,
        };
        if failed {
            self.error(format!("HTTP {status}"));
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut span) = self.0.take() {
            span.end();
        }
    }
}

/// Starts a span with the ids of `trace` (its parent: `trace.parent_span_id`) and sets
/// `trace.sampled` to the sampler's decision, so `traceparent` tells the next hop.
pub fn start(
    name: impl Into<std::borrow::Cow<'static, str>>,
    kind: SpanKind,
    trace: &mut TraceContext,
) -> Span {
    let Some(tracer) = TRACER.get() else {
        return Span(None);
    };
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&trace.trace_id),
        SpanId::from_hex(&trace.span_id),
    ) else {
        return Span(None);
    };
    let parent = match trace.parent_span_id.as_deref().map(SpanId::from_hex) {
        Some(Ok(parent)) => {
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                parent,
                if trace.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            ))
        }
        _ => opentelemetry::Context::new(),
    };
    NEXT_IDS.with(|ids| ids.set(Some((trace_id, span_id))));
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .start_with_context(tracer, &parent);
    NEXT_IDS.with(|ids| ids.set(None));
    trace.sampled = span.span_context().is_sampled();
    Span(Some(span))
}

/// Runs `work` as a child span of the current context (a transaction, a charge, a stock
/// return): its logs and the calls it makes carry the child's span id. A failure marks
/// the span failed. Outside any context, or with export off, the work runs as is.
pub async fn in_span<T, E, F>(name: &'static str, kind: SpanKind, work: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    in_span_judged(name, kind, work, |result, span| {
        if let Err(e) = result {
            span.error(e.to_string());
        }
    })
    .await
}

/// As [`in_span`], with `judge` telling from the outcome whether the span failed (a
/// declined charge is an answer, not an error, yet its span shows the failure).
pub async fn in_span_judged<T, F>(
    name: &'static str,
    kind: SpanKind,
    work: F,
    judge: impl FnOnce(&T, &mut Span),
) -> T
where
    F: Future<Output = T>,
{
    let Some(mut ctx) = context::current().filter(|_| TRACER.get().is_some()) else {
        return work.await;
    };
    ctx.trace = ctx.trace.child();
    let mut span = start(name, kind, &mut ctx.trace);
    let outcome = context::scope(ctx, work).await;
    judge(&outcome, &mut span);
    outcome
}

/// Sends an HTTP request as a client span, child of the current context, carrying the
/// correlation id and the child's `traceparent`.
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    if TRACER.get().is_none() {
        return context::propagate(request).send().await;
    }
    let Some(mut ctx) = context::current() else {
        return request.send().await;
    };
    ctx.trace = ctx.trace.child();
    let name = request
        .try_clone()
        .and_then(|r| r.build().ok())
        .map(|r| format!("{} {}", r.method(), r.url().path()))
        .unwrap_or_else(|| "HTTP".to_owned());
    let mut span = start(name, SpanKind::Client, &mut ctx.trace);
    let request = request
        .header(context::CORRELATION_HEADER, &ctx.correlation_id)
        .header(context::TRACEPARENT_HEADER, ctx.trace.traceparent());
    let response = context::scope(ctx, request.send()).await;
    match &response {
        Ok(r) => span.http_status(&SpanKind::Client, r.status().as_u16()),
        Err(e) => span.error(e.to_string()),
    }
    response
}

/// The exporter's HTTP client: the workspace's reqwest, its calls run on the service's
/// runtime (the SDK's batch thread has none of its own).
#[derive(Debug)]
struct RuntimeClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let response = self
            .runtime
            .spawn(async move {
                let response = http.execute(request).await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            })
            .await??;
        let (status, headers, body) = response;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}
