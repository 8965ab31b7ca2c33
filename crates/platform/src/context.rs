//! The correlation id and W3C trace context of the work a task is doing.
//!
//! The HTTP middleware and the Kafka consumer enter a [`scope`] for each request or
//! record; problem details, outgoing HTTP calls and produced records read [`current`]
//! so the ids follow the work across services without being passed by hand.

use rand::Rng;
use std::future::Future;

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Header carrying the correlation id, as the original system names it.
pub const CORRELATION_HEADER: &str = "X-Correlation-ID";
/// W3C trace context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Longest correlation id we accept from a client; longer ones are replaced.
const MAX_CORRELATION_ID_LEN: usize = 128;

/// W3C trace context: the trace we belong to and the span id of this unit of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits: the span of this service's work.
    pub span_id: String,
    /// The caller's span, when the trace came from a `traceparent` header.
    pub parent_span_id: Option<String>,
    /// The sampled flag: the caller's, then the sampler's decision once a span is
    /// exported for this work (see `otel::start`).
    pub sampled: bool,
}

impl TraceContext {
    /// A new root trace.
    pub fn new_root() -> Self {
        Self {
            trace_id: new_trace_id(),
            span_id: new_span_id(),
            parent_span_id: None,
            sampled: true,
        }
    }

    /// A span inside this one (a transaction, an outgoing call): same trace, new span
    /// id, this span as its parent.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id.clone(),
            span_id: new_span_id(),
            parent_span_id: Some(self.span_id.clone()),
            sampled: self.sampled,
        }
    }

    /// Continues the trace of a `traceparent` header (version 00), or starts a new one
    /// when the header is absent or malformed.
    pub fn from_traceparent(header: Option<&str>) -> Self {
        header
            .and_then(parse_traceparent)
            .map(|(trace_id, parent, sampled)| Self {
                trace_id,
                span_id: new_span_id(),
                parent_span_id: Some(parent),
                sampled,
            })
            .unwrap_or_else(Self::new_root)
    }

    /// The `traceparent` value to send downstream: this span becomes their parent.
    pub fn traceparent(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", self.trace_id, self.span_id)
    }
}

/// Trace id, parent span id and sampled flag of a version-00 `traceparent`.
fn parse_traceparent(value: &str) -> Option<(String, String, bool)> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let all_zero = |s: &str| s.bytes().all(|b| b == b'0');
    if version != "00" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    if all_zero(trace) || all_zero(span) {
        return None;
    }
    let sampled = u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1);
    Some((
        trace.to_ascii_lowercase(),
        span.to_ascii_lowercase(),
        sampled,
    ))
}

// Ids come from the thread's user-space generator, seeded from the OS: every request
// needs three, and asking the kernel for each (uuid's v4) cost a system call apiece.
// W3C forbids all-zero ids.

fn new_trace_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>().max(1))
}

fn new_span_id() -> String {
    format!("{:016x}", rand::rng().random::<u64>().max(1))
}

fn new_correlation_id() -> String {
    uuid::Builder::from_random_bytes(rand::rng().random())
        .into_uuid()
        .to_string()
}

/// Everything that identifies one request or consumed record across services.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub correlation_id: String,
    pub trace: TraceContext,
    /// The request path (no query), used as a problem's `instance`.
    pub path: Option<String>,
}

impl RequestContext {
    /// A context for work that started here (a scheduled job, a consumed record without ids).
    pub fn new_root() -> Self {
        Self {
            correlation_id: new_correlation_id(),
            trace: TraceContext::new_root(),
            path: None,
        }
    }
}

/// Takes a client's correlation id if it is usable, or makes one.
pub fn correlation_id_or_new(header: Option<&str>) -> String {
    match header.map(str::trim) {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_CORRELATION_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            id.to_owned()
        }
        _ => new_correlation_id(),
    }
}

/// Runs `fut` with `ctx` as the current context.
pub async fn scope<F: Future>(ctx: RequestContext, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// The context of the running task, if it is serving a request or record.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Adds `X-Correlation-ID` and `traceparent` of the current context to an outgoing call.
pub fn propagate(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match current() {
        Some(ctx) => request
            .header(CORRELATION_HEADER, ctx.correlation_id)
            .header(TRACEPARENT_HEADER, ctx.trace.traceparent()),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_continues_the_callers_trace() {
        let ctx = TraceContext::from_traceparent(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert!(ctx
            .traceparent()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(ctx.traceparent().ends_with("-01"));
    }

    #[test]
    fn an_unsampled_caller_stays_unsampled_downstream_and_children_keep_the_trace() {
        let ctx = TraceContext::from_traceparent(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ));
        assert!(!ctx.sampled);
        assert!(ctx.traceparent().ends_with("-00"));
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_eq!(child.parent_span_id.as_deref(), Some(ctx.span_id.as_str()));
        assert_ne!(child.span_id, ctx.span_id);
        assert!(!child.sampled);
    }

    #[test]
    fn a_malformed_or_zero_traceparent_starts_a_new_trace() {
        for bad in [
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-zzzzzzzzzzzzzzzz-01",
        ] {
            let ctx = TraceContext::from_traceparent(Some(bad));
            assert_eq!(ctx.parent_span_id, None, "{bad}");
            assert_eq!(ctx.trace_id.len(), 32);
        }
    }

    #[test]
    fn correlation_ids_are_taken_when_sane_and_replaced_otherwise() {
        assert_eq!(correlation_id_or_new(Some("abc")), "abc");
        assert_ne!(correlation_id_or_new(Some("")), "");
        assert_ne!(correlation_id_or_new(Some("has space")), "has space");
        let long = "x".repeat(200);
        assert_ne!(correlation_id_or_new(Some(&long)), long);
    }

    #[test]
    fn new_ids_have_the_w3c_and_uuid_shapes_and_differ() {
        let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
        assert!(parse_traceparent(&a.traceparent()).is_some());
        let id = correlation_id_or_new(None);
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(id, correlation_id_or_new(None));
    }

    #[tokio::test]
    async fn the_current_context_is_visible_inside_its_scope_only() {
        assert!(current().is_none());
        let mut ctx = RequestContext::new_root();
        ctx.correlation_id = "abc".into();
        let seen = scope(ctx, async { current().map(|c| c.correlation_id) }).await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }
}
