//! Telling the platform's metric names apart from the rest of a PromQL-bearing text
//! (rules, panels, runbook lines): what the runbook test and the monitoring test both
//! need to find the series a text asks for.

/// Metric families the platform exports: an identifier starting with one of these is a
/// metric name, anything else (functions, label names, keywords) is not.
const FAMILIES: [&str; 14] = [
    "checkout_",
    "orders_",
    "payments_",
    "payment_",
    "order_",
    "kafka_",
    "resilience4j_",
    "hikaricp_",
    "http_server_",
    "outbox_",
    "dlq_",
    "cache_",
    "cart_",
    "process_",
];

/// How every exported metric name ends (histograms: their series, and the family name
/// itself, which returns nothing and so must not be written as a query).
const SUFFIXES: [&str; 14] = [
    "_total",
    "_seconds_bucket",
    "_seconds_count",
    "_seconds_sum",
    "_seconds",
    "_rows",
    "_lag_max",
    "_state",
    "_bytes",
    "_active",
    "_idle",
    "_pending",
    "_max",
    "_min",
];

/// Whether `word` (an identifier) is one of the platform's metric names.
pub fn is_metric(word: &str) -> bool {
    FAMILIES.iter().any(|f| word.starts_with(f)) && SUFFIXES.iter().any(|s| word.ends_with(s))
}

/// The metric names in `text`, a histogram's series (`_bucket`, `_count`, `_sum`) under
/// its family's name.
pub fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut word = String::new();
    for c in text.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if is_metric(&word) {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| word.strip_suffix(s).filter(|b| b.ends_with("_seconds")))
                .unwrap_or(&word)
                .to_owned();
            names.insert(base);
        }
        word.clear();
    }
    names
}
