//! The settings every Kafka client of ours starts from: the services' producers,
//! consumers and admin clients, and the operator's tool, so they time out, log and
//! authenticate alike.
//!
//! A client is built from [`Brokers`], never from a bare address, so none can be made
//! without the deployment's security settings (TLS, SASL).

use crate::config::Secret;
use rdkafka::config::ClientConfig;
use std::path::PathBuf;

/// How clients talk to the brokers: librdkafka's `security.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProtocol {
    /// No TLS, no authentication (a development broker).
    #[default]
    #[value(name = "plaintext")]
    Plaintext,
    /// TLS; the broker's certificate is verified.
    #[value(name = "ssl")]
    Ssl,
    /// SASL authentication without TLS: the password crosses the network in the clear
    /// with PLAIN.
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The value librdkafka's `security.protocol` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether the protocol runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// The SASL mechanisms the bundled librdkafka supports without Kerberos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The value librdkafka's `sasl.mechanisms` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A SASL identity.
#[derive(Clone, Debug)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

/// The security half of a connection to the brokers.
#[derive(Clone, Debug, Default)]
pub struct KafkaSecurity {
    pub protocol: SecurityProtocol,
    /// Present exactly when the protocol is a SASL one.
    pub sasl: Option<SaslCredentials>,
    /// PEM file of the CA that signed the brokers' certificates; the system's roots
    /// when unset.
    pub ssl_ca_location: Option<PathBuf>,
}

/// Where the brokers are and how to talk to them: what every client is built from.
/// Made by `KafkaSettings::brokers`, which checks the combination.
#[derive(Clone, Debug)]
pub struct Brokers {
    /// Comma-separated host:port list.
    pub servers: String,
    pub security: KafkaSecurity,
}

impl Brokers {
    /// Brokers reached without TLS or authentication (development brokers, tests).
    pub fn plaintext(servers: impl Into<String>) -> Self {
        Self {
            servers: servers.into(),
            security: KafkaSecurity::default(),
        }
    }
}

/// A client configuration for `brokers` with our timeouts, quiet librdkafka logs and the
/// deployment's security settings; each kind of client adds its own settings to it.
pub fn client_config(brokers: &Brokers) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &brokers.servers)
        .set("socket.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "3");
    let security = &brokers.security;
    // Plaintext leaves librdkafka's defaults alone, as before these settings existed.
    if security.protocol != SecurityProtocol::Plaintext {
        config.set("security.protocol", security.protocol.as_str());
    }
    if let Some(sasl) = &security.sasl {
        config
            .set("sasl.mechanisms", sasl.mechanism.as_str())
            .set("sasl.username", &sasl.username)
            .set("sasl.password", sasl.password.expose());
    }
    if let Some(ca) = &security.ssl_ca_location {
        config.set("ssl.ca.location", ca.to_string_lossy());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_brokers_get_no_security_settings() {
        let config = client_config(&Brokers::plaintext("broker:9092"));
        assert_eq!(config.get("bootstrap.servers"), Some("broker:9092"));
        for key in [
            "security.protocol",
            "sasl.mechanisms",
            "sasl.username",
            "sasl.password",
            "ssl.ca.location",
        ] {
            assert_eq!(config.get(key), None, "{key}");
        }
    }

    #[test]
    fn sasl_over_tls_sets_the_protocol_the_identity_and_the_ca() {
        let brokers = Brokers {
            servers: "b-1:9096,b-2:9096".into(),
            security: KafkaSecurity {
                protocol: SecurityProtocol::SaslSsl,
                sasl: Some(SaslCredentials {
                    mechanism: SaslMechanism::ScramSha512,
                    username: "orders".into(),
                    password: Secret::new("s3cret"),
                }),
                ssl_ca_location: Some("/etc/kafka/ca.pem".into()),
            },
        };
        let config = client_config(&brokers);
        assert_eq!(config.get("bootstrap.servers"), Some("b-1:9096,b-2:9096"));
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("orders"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        assert!(
            !format!("{brokers:?}").contains("s3cret"),
            "the password is never printed"
        );
    }

    #[test]
    fn every_client_kind_accepts_the_security_settings() {
        // librdkafka checks the names and values when a client is created: a typo or a
        // feature missing from the build (SSL, SCRAM) fails here, not in production.
        let brokers = Brokers {
            servers: "127.0.0.1:1".into(),
            security: KafkaSecurity {
                protocol: SecurityProtocol::SaslSsl,
                sasl: Some(SaslCredentials {
                    mechanism: SaslMechanism::ScramSha256,
                    username: "u".into(),
                    password: Secret::new("p"),
                }),
                ssl_ca_location: None,
            },
        };
        let _: rdkafka::producer::BaseProducer = client_config(&brokers)
            .create()
            .expect("a SASL_SSL client can be created");
    }
}
