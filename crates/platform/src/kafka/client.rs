//! The settings every Kafka client of ours starts from: the services' producers,
//! consumers and admin clients, and the operator's tool, so they time out and log alike.

use rdkafka::config::ClientConfig;

/// A client configuration for `bootstrap` with our timeouts and quiet librdkafka logs;
/// each kind of client adds its own settings to it.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    config
}
