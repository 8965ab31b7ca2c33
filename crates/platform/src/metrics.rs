//! The Prometheus registry of one service instance, and the process collector.
//!
//! Every series carries `application` and `environment` labels, as the original's
//! Micrometer setup does. Each app instance owns its registry, so tests can run many
//! instances in one process without their counters mixing.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;

/// Latency buckets in seconds, fine enough to read a p99 under 5 ms.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// A service's metrics registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry whose series carry `application` and `environment`, with the process
    /// collector registered.
    pub fn new(application: &str, environment: &str) -> prometheus::Result<Self> {
        let labels = HashMap::from([
            ("application".to_owned(), application.to_owned()),
            ("environment".to_owned(), environment.to_owned()),
        ]);
        let registry = Registry::new_custom(None, Some(labels))?;
        registry.register(Box::new(ProcessCollector::new()))?;
        Ok(Self { registry })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a collector; a name registered twice is an error.
    pub fn register(&self, collector: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(collector)
    }

    pub fn counter(&self, name: &str, help: &str) -> prometheus::Result<IntCounter> {
        let counter = IntCounter::with_opts(Opts::new(name, help))?;
        self.register(Box::new(counter.clone()))?;
        Ok(counter)
    }

    pub fn counter_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.register(Box::new(counter.clone()))?;
        Ok(counter)
    }

    pub fn gauge(&self, name: &str, help: &str) -> prometheus::Result<IntGauge> {
        let gauge = IntGauge::with_opts(Opts::new(name, help))?;
        self.register(Box::new(gauge.clone()))?;
        Ok(gauge)
    }

    pub fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntGaugeVec> {
        let gauge = IntGaugeVec::new(Opts::new(name, help), labels)?;
        self.register(Box::new(gauge.clone()))?;
        Ok(gauge)
    }

    /// A latency histogram in seconds with [`LATENCY_BUCKETS`].
    pub fn histogram(&self, name: &str, help: &str) -> prometheus::Result<Histogram> {
        let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
        let histogram = Histogram::with_opts(opts)?;
        self.register(Box::new(histogram.clone()))?;
        Ok(histogram)
    }

    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<HistogramVec> {
        let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
        let histogram = HistogramVec::new(opts, labels)?;
        self.register(Box::new(histogram.clone()))?;
        Ok(histogram)
    }

    /// The Prometheus text exposition of every registered series.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds` and
/// `process_start_time_seconds`, read from `/proc/self` at scrape time.
struct ProcessCollector {
    descs: Vec<Desc>,
    start_time: f64,
}

impl ProcessCollector {
    fn new() -> Self {
        let desc =
            |name: &str, help: &str| Desc::new(name.into(), help.into(), vec![], HashMap::new());
        let descs = [
            desc(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            desc(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            ),
            desc("process_open_fds", "Number of open file descriptors."),
            desc(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
        ]
        .into_iter()
        .filter_map(Result::ok)
        .collect();
        Self {
            descs,
            start_time: chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
        }
    }
}

/// Reads (resident bytes, cpu seconds) of this process from procfs.
pub fn process_usage() -> Option<(f64, f64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may itself contain spaces, in parentheses.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    const PAGE_SIZE: f64 = 4096.0;
    const CLOCK_TICKS: f64 = 100.0;
    Some((resident_pages * PAGE_SIZE, (utime + stime) / CLOCK_TICKS))
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = Vec::new();
        let mut push = |name: &str, help: &str, value: f64| {
            if let Ok(gauge) = Gauge::new(name, help) {
                gauge.set(value);
                families.extend(gauge.collect());
            }
        };
        if let Some((rss, cpu)) = process_usage() {
            push(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss,
            );
            push(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            push(
                "process_open_fds",
                "Number of open file descriptors.",
                dir.count() as f64,
            );
        }
        push(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.start_time,
        );
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_application_and_environment_labels() {
        let metrics = Metrics::new("customer-facing-service", "test").unwrap();
        metrics
            .counter("checkout_attempt_total", "Checkouts started.")
            .unwrap()
            .inc();
        let text = metrics.encode();
        let labels = [
            ("application", "customer-facing-service"),
            ("environment", "test"),
        ];
        assert_eq!(
            crate::testing::metric_value(&text, "checkout_attempt_total", &labels),
            Some(1.0),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes{"));
    }
}
