//! Settings from flags and environment variables.
//!
//! Settings are declared once, with clap, by their plain name (`env = "DATABASE_URL"`).
//! [`parse`] gives every one its service-prefixed variable (`ORDER_SERVICE_DATABASE_URL`),
//! which `--help` lists, and lets the shared ones fall back to the original's plain names
//! ([`PLAIN_FALLBACKS`]). A bad value stops start-up with one line naming the setting.

use clap::{Args, Parser};
use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

/// Settings also read from their plain, unprefixed name when the prefixed one is unset.
pub const PLAIN_FALLBACKS: &[&str] = &[
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TOPIC_MIN_INSYNC_REPLICAS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "JWT_SECRET",
    "JWT_PREVIOUS_SECRETS",
    "JWT_ISSUER",
    "JWT_EXPIRATION_MINUTES",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_TLS",
    "REDIS_CA_FILE",
    "SERVER_PORT",
    "SERVER_HOST",
    "ENVIRONMENT",
    "LOG_LEVEL",
    "KAFKA_TOPICS_ORDERS_CREATED",
    "KAFKA_TOPICS_PAYMENTS_COMPLETED",
    "KAFKA_CONSUMER_GROUP_ID",
];

/// Spring's names for some settings, read after the prefixed and the plain name, so
/// deployments written for the original keep working.
pub const SPRING_NAMES: &[(&str, &str)] = &[
    ("KAFKA_BOOTSTRAP_SERVERS", "SPRING_KAFKA_BOOTSTRAP_SERVERS"),
    ("KAFKA_CONSUMER_GROUP_ID", "SPRING_KAFKA_CONSUMER_GROUP_ID"),
];

/// Why the settings could not be read: `--help`/`--version` (exit 0) or a bad value.
#[derive(Debug)]
pub enum ConfigError {
    Display(String),
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Display(text) | Self::Invalid(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses the process's arguments and environment for a service whose variables carry
/// `prefix` (`CUSTOMER_SERVICE`).
pub fn parse<T: Parser>(prefix: &str) -> Result<T, ConfigError> {
    parse_from(prefix, std::env::args_os(), |name| std::env::var(name).ok())
}

/// [`parse`] with explicit arguments and environment, for tests.
pub fn parse_from<T: Parser>(
    prefix: &str,
    args: impl IntoIterator<Item = impl Into<OsString>>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let mut command = T::command().args_override_self(true).after_help(format!(
        "Every variable above is read with the prefix {prefix}_ (as shown); \
         {} also accept their plain names.",
        PLAIN_FALLBACKS.join(", ")
    ));
    // Resolve every variable ourselves (prefixed, then plain fallback) and hand clap the
    // values as leading flags: explicit flags given later still win.
    let mut resolved: Vec<OsString> = Vec::new();
    let mut ids = Vec::new();
    let mut longs = Vec::new();
    for arg in command.get_arguments() {
        let (Some(name), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let prefixed = format!("{prefix}_{name}");
        let value = env(&prefixed)
            .or_else(|| {
                PLAIN_FALLBACKS
                    .contains(&name.as_str())
                    .then(|| env(&name))
                    .flatten()
            })
            .or_else(|| {
                SPRING_NAMES
                    .iter()
                    .find(|(setting, _)| *setting == name)
                    .and_then(|(_, spring)| env(spring))
            });
        if let Some(value) = value {
            resolved.push(format!("--{long}={value}").into());
        }
        longs.push((format!("--{long}"), prefixed.clone()));
        ids.push((arg.get_id().clone(), prefixed));
    }
    for (id, prefixed) in ids {
        command = command.mut_arg(id, |a| a.env(prefixed));
    }
    let mut args = args.into_iter().map(Into::into);
    let argv: Vec<OsString> = args
        .next()
        .into_iter()
        .chain(resolved)
        .chain(args)
        .collect();
    let error = |e| clap_error(e, &longs);
    let matches = command.try_get_matches_from(argv).map_err(error)?;
    T::from_arg_matches(&matches).map_err(error)
}

/// One line for a clap error; `longs` maps each flag to its variable, so that a missing
/// setting is named the way an operator sets it.
fn clap_error(error: clap::Error, longs: &[(String, String)]) -> ConfigError {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            ConfigError::Display(error.render().to_string())
        }
        ErrorKind::MissingRequiredArgument => {
            let text = error.render().to_string();
            let missing: Vec<String> = text
                .lines()
                .skip(1)
                .map(str::trim)
                .take_while(|l| l.starts_with("--"))
                .map(|line| {
                    let flag = line.split_whitespace().next().unwrap_or(line);
                    match longs.iter().find(|(long, _)| long == flag) {
                        Some((_, variable)) => format!("{variable} ({flag})"),
                        None => flag.to_owned(),
                    }
                })
                .collect();
            let mut message = format!(
                "configuration error: required setting missing: {}",
                missing.join(", ")
            );
            if missing.iter().any(|m| m.contains("--environment")) {
                message.push_str(&format!(
                    "; set ENVIRONMENT to one of {}",
                    Environment::choices()
                ));
            }
            ConfigError::Invalid(message)
        }
        _ => {
            if let Some(line) = without_the_value(&error) {
                return ConfigError::Invalid(format!("configuration error: {line}"));
            }
            let text = error.render().to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid configuration")
                .trim_start_matches("error: ")
                .to_owned();
            ConfigError::Invalid(format!("configuration error: {line}"))
        }
    }
}

/// Words in a setting's flag that mark its value as secret, or as a URL that may carry
/// a password: a bad value of such a setting is never echoed.
const SENSITIVE: &[&str] = &["url", "password", "secret", "token", "key", "sasl"];

/// The one-line error of a rejected value that must not be printed (clap's own message
/// quotes the value): the setting and the reason, with anything of the value that
/// the reason repeats masked. `None` for other errors, which clap words well enough.
fn without_the_value(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let Some(ContextValue::String(value)) = error.get(ContextKind::InvalidValue) else {
        return None;
    };
    let flag = arg.to_ascii_lowercase();
    if !(SENSITIVE.iter().any(|word| flag.contains(word)) || value.contains("://")) {
        return None;
    }
    let reason = std::error::Error::source(error)
        .map(|e| e.to_string())
        .unwrap_or_else(|| "the value is not accepted".to_owned());
    let reason = mask(&reason, value);
    Some(format!(
        "invalid value for '{arg}' (not shown: it may hold a secret): {}",
        reason.lines().next().unwrap_or_default()
    ))
}

/// `text` with `value`, and the password of the URL `value` may be, replaced by `***`.
fn mask(text: &str, value: &str) -> String {
    let mut masked = text.to_owned();
    if !value.is_empty() {
        masked = masked.replace(value, "***");
    }
    if let Some(password) = url_password(value) {
        masked = masked.replace(password, "***");
        if let Ok(decoded) = percent_decode(password) {
            if !decoded.is_empty() {
                masked = masked.replace(&decoded, "***");
            }
        }
    }
    masked
}

/// The password of `scheme://user:password@host…`, found by hand: the value may be no
/// valid URL at all (which is why it is being reported).
fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The text every placeholder secret of the example files carries (`REPLACE-ME-...`).
pub const PLACEHOLDER_MARK: &str = "REPLACE-ME";

impl Secret {
    /// Whether this is an example file's placeholder rather than a real secret.
    pub fn is_placeholder(&self) -> bool {
        self.0.to_ascii_uppercase().contains(PLACEHOLDER_MARK)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Where the service runs. Only the names below are accepted, so a typo
/// (`prodution`, `live`) stops start-up instead of quietly turning the development
/// conveniences (the demo JWT secret, the demo logins) on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment(String);

/// Environments on a developer's own machine or a throwaway test: the demo JWT secret
/// and the demo users are allowed there, and nowhere else.
const LOCAL_DEVELOPMENT: &[&str] = &["local", "dev", "development", "test", "ci", "docker"];
/// Shared environments: real secrets, no demo users.
const SHARED: &[&str] = &["staging", "production", "prod"];

impl Environment {
    /// Whether development conveniences (the demo secret, the demo users) are allowed.
    pub fn is_local_development(&self) -> bool {
        LOCAL_DEVELOPMENT.contains(&self.0.as_str())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Every accepted name, for messages.
    pub fn choices() -> String {
        LOCAL_DEVELOPMENT
            .iter()
            .chain(SHARED)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Refuses `secret` (the setting `name`) outside local development when it is an
    /// example file's placeholder: a deployment that copied `secrets.example.yaml`
    /// without filling it in must not start with a secret the whole world can read.
    pub fn check_secret(&self, name: &str, secret: &Secret) -> Result<(), String> {
        if !self.is_local_development() && secret.is_placeholder() {
            return Err(format!(
                "{name} is an example placeholder ({PLACEHOLDER_MARK}); set a secret of your own \
                 outside local development"
            ));
        }
        Ok(())
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        if LOCAL_DEVELOPMENT.contains(&s.as_str()) || SHARED.contains(&s.as_str()) {
            Ok(Self(s))
        } else {
            Err(format!(
                "unknown environment '{s}': use one of {}",
                Self::choices()
            ))
        }
    }
}

/// Settings every service has: where to listen, where it runs, how much to log.
#[derive(Args, Clone, Debug)]
pub struct CommonSettings {
    /// Port for the HTTP API and the actuator (0 picks a free port).
    #[arg(long = "server-port", env = "SERVER_PORT")]
    pub server_port: Option<u16>,
    /// Address to listen on: loopback unless set, so nothing beyond this machine reaches
    /// a service by accident (containers and pods set 0.0.0.0).
    #[arg(long = "server-host", env = "SERVER_HOST", default_value = "127.0.0.1")]
    pub server_host: std::net::IpAddr,
    /// Environment name, required: local, dev, development, test, ci, docker (local
    /// development: demo secret and demo users allowed), staging, production or prod; a
    /// metric label too.
    #[arg(long, env = "ENVIRONMENT")]
    pub environment: Environment,
    /// Log filter in RUST_LOG syntax, e.g. `info` or `info,sqlx=warn`.
    #[arg(
        long = "log-level",
        env = "LOG_LEVEL",
        default_value = "info,sqlx=warn,rdkafka=warn"
    )]
    pub log_level: String,
    /// How the HTTP server holds its connections, and the headers it adds.
    #[command(flatten)]
    pub http: HttpServerSettings,
}

/// The HTTP server's connection limits and optional headers (see `platform::connections`).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct HttpServerSettings {
    /// Seconds a client has from the first byte of a request to the end of its headers;
    /// a connection that takes longer is closed.
    #[arg(id = "http_header_read_timeout_secs", long = "http-header-read-timeout-secs", env = "HTTP_HEADER_READ_TIMEOUT_SECS",
          default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in flight and no byte moving
    /// (a keep-alive connection between requests, a client that stops reading); then closed.
    #[arg(id = "http_idle_timeout_secs", long = "http-idle-timeout-secs", env = "HTTP_IDLE_TIMEOUT_SECS",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones wait in the listen queue until one closes.
    #[arg(id = "http_max_connections", long = "http-max-connections", env = "HTTP_MAX_CONNECTIONS",
          default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// `max-age` of the `Strict-Transport-Security` header; unset sends none. Set it only
    /// where browsers reach the service over HTTPS (behind a TLS-terminating ingress).
    #[arg(id = "http_hsts_max_age_secs", long = "hsts-max-age-secs", env = "HSTS_MAX_AGE_SECS",
          value_parser = clap::value_parser!(u64).range(0..=63_072_000))]
    pub hsts_max_age_secs: Option<u64>,
}

impl Default for HttpServerSettings {
    /// The defaults of the settings above.
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
            hsts_max_age_secs: None,
        }
    }
}

impl HttpServerSettings {
    /// The connection limits these settings ask for.
    pub fn limits(&self) -> crate::connections::ConnectionLimits {
        crate::connections::ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// PostgreSQL connection settings.
#[derive(Args, Clone, Debug)]
pub struct DatabaseSettings {
    /// PostgreSQL URL, e.g. postgres://user:password@host:5432/customer_db.
    #[arg(long = "database-url", env = "DATABASE_URL", value_parser = parse_database_url)]
    pub database_url: Option<sqlx::postgres::PgConnectOptions>,
    /// Largest number of pooled connections.
    #[arg(long = "database-max-connections", env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: u32,
    /// Seconds a request waits for a pooled connection before failing.
    #[arg(
        long = "database-acquire-timeout-secs",
        env = "DATABASE_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 5
    )]
    pub acquire_timeout_secs: u64,
}

fn parse_database_url(value: &str) -> Result<sqlx::postgres::PgConnectOptions, String> {
    if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
        return Err("must start with postgres:// or postgresql://".into());
    }
    // sqlx's message may quote parts of the URL: mask the password in it.
    sqlx::postgres::PgConnectOptions::from_str(value).map_err(|e| mask(&e.to_string(), value))
}

/// Kafka-protocol broker settings.
#[derive(Args, Clone, Debug)]
pub struct KafkaSettings {
    /// Comma-separated host:port list of brokers.
    #[arg(long = "kafka-bootstrap-servers", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = "127.0.0.1:9092",
          value_parser = parse_bootstrap)]
    pub bootstrap_servers: String,
    /// Create missing topics at start-up.
    #[arg(long = "kafka-create-topics", env = "KAFKA_CREATE_TOPICS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub create_topics: bool,
    /// Replicas of each topic created at start-up: 1 for a single development broker,
    /// 3 on a real cluster, so losing one broker loses no acknowledged event.
    #[arg(long = "kafka-topic-replication-factor", env = "KAFKA_TOPIC_REPLICATION_FACTOR",
          default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub replication_factor: i32,
    /// `min.insync.replicas` of each topic created at start-up (2 with 3 replicas: a
    /// write is acknowledged by two brokers); the broker's default when unset.
    #[arg(long = "kafka-topic-min-insync-replicas", env = "KAFKA_TOPIC_MIN_INSYNC_REPLICAS",
          value_parser = clap::value_parser!(i32).range(1..=16))]
    pub min_insync_replicas: Option<i32>,
    /// How clients talk to the brokers: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[arg(
        long = "kafka-security-protocol",
        env = "KAFKA_SECURITY_PROTOCOL",
        default_value = "plaintext",
        ignore_case = true
    )]
    pub security_protocol: crate::kafka::SecurityProtocol,
    /// SASL mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512); required with sasl_*.
    #[arg(
        long = "kafka-sasl-mechanism",
        env = "KAFKA_SASL_MECHANISM",
        ignore_case = true
    )]
    pub sasl_mechanism: Option<crate::kafka::SaslMechanism>,
    /// SASL user name; required with sasl_*.
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// SASL password; required with sasl_*.
    #[arg(long = "kafka-sasl-password", env = "KAFKA_SASL_PASSWORD")]
    pub sasl_password: Option<Secret>,
    /// PEM file of the CA that signed the brokers' certificates (ssl and sasl_ssl); the
    /// system's roots when unset.
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<std::path::PathBuf>,
}

impl KafkaSettings {
    /// Refuses, outside local development, a SASL password that is an example
    /// placeholder.
    pub fn check_secrets(&self, environment: &Environment) -> Result<(), String> {
        match &self.sasl_password {
            Some(password) => environment.check_secret("KAFKA_SASL_PASSWORD", password),
            None => Ok(()),
        }
    }

    /// The brokers and how to reach them, every client's starting point; an
    /// inconsistent combination of the security settings is an error naming the setting.
    pub fn brokers(&self) -> Result<crate::kafka::Brokers, String> {
        use crate::kafka::{Brokers, KafkaSecurity, SaslCredentials};
        let protocol = self.security_protocol;
        let sasl = if protocol.is_sasl() {
            let missing =
                |name: &str| format!("KAFKA_SECURITY_PROTOCOL={} needs {name}", protocol.as_str());
            Some(SaslCredentials {
                mechanism: self.sasl_mechanism.ok_or_else(|| {
                    missing("KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
                })?,
                username: self
                    .sasl_username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| missing("KAFKA_SASL_USERNAME"))?,
                password: self
                    .sasl_password
                    .clone()
                    .filter(|p| !p.expose().is_empty())
                    .ok_or_else(|| missing("KAFKA_SASL_PASSWORD"))?,
            })
        } else {
            // Credentials that would silently not be used point at a mistyped protocol.
            for (name, set) in [
                ("KAFKA_SASL_MECHANISM", self.sasl_mechanism.is_some()),
                ("KAFKA_SASL_USERNAME", self.sasl_username.is_some()),
                ("KAFKA_SASL_PASSWORD", self.sasl_password.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{name} is set but KAFKA_SECURITY_PROTOCOL={} does not use SASL: \
                         use sasl_ssl (or sasl_plaintext)",
                        protocol.as_str()
                    ));
                }
            }
            None
        };
        if let Some(ca) = &self.ssl_ca_location {
            if !protocol.is_tls() {
                return Err(format!(
                    "KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL={} does not use TLS: \
                     use ssl or sasl_ssl",
                    protocol.as_str()
                ));
            }
            if let Err(e) = std::fs::File::open(ca) {
                return Err(format!(
                    "KAFKA_SSL_CA_LOCATION {} cannot be read: {e}",
                    ca.display()
                ));
            }
        }
        Ok(Brokers {
            servers: self.bootstrap_servers.clone(),
            security: KafkaSecurity {
                protocol,
                sasl,
                ssl_ca_location: self.ssl_ca_location.clone(),
            },
        })
    }
}

fn parse_bootstrap(value: &str) -> Result<String, String> {
    for server in value.split(',') {
        let (host, port) = server
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| format!("'{server}' is not host:port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("'{server}' is not host:port"));
        }
    }
    Ok(value.replace(' ', ""))
}

/// The development secret of the original: the default of [`JwtSettings::secret`],
/// refused outside local development (see `auth::JwtKeys::from_settings`).
pub const DEMO_SECRET: &str = "demo-secret-key-for-local-development-only-do-not-use-in-production";

/// JWT settings shared by both services, so a token from one works on the other.
#[derive(Args, Clone, Debug)]
pub struct JwtSettings {
    /// HS256 secret (at least 32 bytes) that signs new tokens.
    #[arg(long = "jwt-secret", env = "JWT_SECRET",
          default_value = DEMO_SECRET, hide_default_value = true)]
    pub secret: Secret,
    /// Comma-separated earlier secrets that still verify tokens during a rotation.
    #[arg(
        long = "jwt-previous-secrets",
        env = "JWT_PREVIOUS_SECRETS",
        value_delimiter = ','
    )]
    pub previous_secrets: Vec<Secret>,
    /// Issuer (`iss`) put in and required of every token.
    #[arg(
        long = "jwt-issuer",
        env = "JWT_ISSUER",
        default_value = "ecommerce-platform-dev"
    )]
    pub issuer: String,
    /// Lifetime of issued tokens in minutes.
    #[arg(long = "jwt-expiration-minutes", env = "JWT_EXPIRATION_MINUTES", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub expiration_minutes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Parser, Debug)]
    struct Settings {
        #[command(flatten)]
        common: CommonSettings,
        #[command(flatten)]
        db: DatabaseSettings,
        #[command(flatten)]
        kafka: KafkaSettings,
    }

    /// Parses with `ENVIRONMENT=test` unless `env` names one (or asks for none with "").
    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("ENVIRONMENT".into())
            .or_insert_with(|| "test".into());
        env.retain(|_, v| !v.is_empty());
        let argv = std::iter::once("svc").chain(args.iter().copied());
        parse_from("ORDER_SERVICE", argv, |name| env.get(name).cloned())
    }

    #[test]
    fn the_service_prefixed_variable_is_read() {
        let s = parse_with(
            &[],
            &[(
                "ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS",
                "broker-1:9092,broker-2:9093",
            )],
        )
        .unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "broker-1:9092,broker-2:9093");
    }

    #[test]
    fn a_shared_setting_falls_back_to_its_plain_name_and_the_prefixed_one_wins() {
        let s = parse_with(&[], &[("KAFKA_BOOTSTRAP_SERVERS", "plain:9092")]).unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "plain:9092");
        let s = parse_with(
            &[],
            &[
                ("KAFKA_BOOTSTRAP_SERVERS", "plain:9092"),
                ("ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS", "pref:9092"),
            ],
        )
        .unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "pref:9092");
    }

    #[test]
    fn spring_names_are_the_last_fallback() {
        let s = parse_with(&[], &[("SPRING_KAFKA_BOOTSTRAP_SERVERS", "spring:9092")]).unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "spring:9092");
        let s = parse_with(
            &[],
            &[
                ("SPRING_KAFKA_BOOTSTRAP_SERVERS", "spring:9092"),
                ("KAFKA_BOOTSTRAP_SERVERS", "plain:9092"),
            ],
        )
        .unwrap();
        assert_eq!(s.kafka.bootstrap_servers, "plain:9092");
    }

    #[test]
    fn a_flag_beats_the_environment() {
        let s = parse_with(
            &["--server-port", "9999"],
            &[("ORDER_SERVICE_SERVER_PORT", "1234")],
        )
        .unwrap();
        assert_eq!(s.common.server_port, Some(9999));
    }

    #[test]
    fn a_service_specific_setting_has_no_plain_fallback() {
        let s = parse_with(&[], &[("DATABASE_URL", "postgres://x@h/db")]).unwrap();
        assert!(s.db.database_url.is_none());
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_setting() {
        let err = parse_with(&[], &[("ORDER_SERVICE_DATABASE_URL", "mysql://nope")]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Invalid(_)));
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("--database-url"), "{text}");
        let err = parse_with(&[], &[("ORDER_SERVICE_SERVER_PORT", "99999")]).unwrap_err();
        assert!(err.to_string().contains("--server-port"), "{err}");
        let err =
            parse_with(&[], &[("ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS", "nohost")]).unwrap_err();
        assert!(
            err.to_string().contains("--kafka-bootstrap-servers"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_database_url_names_the_setting_and_never_its_password() {
        for url in [
            "postgres://user:Hunter2pw@host:notaport/db",
            "postgres://user:Hunter2pw@[::1/db",
            "postgres://user:Hunter2%40pw@host:99999/db",
        ] {
            let err = parse_with(&[], &[("ORDER_SERVICE_DATABASE_URL", url)]).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, ConfigError::Invalid(_)), "{text}");
            assert!(text.contains("--database-url"), "{text}");
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.contains("Hunter2"), "the password is echoed: {text}");
        }
    }

    #[test]
    fn other_bad_values_are_still_quoted() {
        let err = parse_with(&[], &[("ORDER_SERVICE_SERVER_PORT", "eighty")]).unwrap_err();
        assert!(err.to_string().contains("eighty"), "{err}");
    }

    #[test]
    fn help_lists_the_prefixed_variables() {
        let err = parse_with(&["--help"], &[]).unwrap_err();
        let ConfigError::Display(help) = err else {
            panic!("help expected")
        };
        assert!(help.contains("ORDER_SERVICE_DATABASE_URL"), "{help}");
        assert!(help.contains("ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS"));
    }

    #[test]
    fn an_unknown_environment_stops_start_up_and_only_local_ones_allow_demo_conveniences() {
        let err = parse_with(&[], &[("ENVIRONMENT", "prodution")]).unwrap_err();
        assert!(
            err.to_string().contains("unknown environment 'prodution'"),
            "{err}"
        );
        for (name, local) in [
            ("local", true),
            ("Docker", true),
            ("staging", false),
            ("prod", false),
        ] {
            let s = parse_with(&[], &[("ENVIRONMENT", name)]).unwrap();
            assert_eq!(s.common.environment.is_local_development(), local, "{name}");
        }
    }

    #[test]
    fn start_up_without_an_environment_names_the_choices() {
        let err = parse_with(&[], &[("ENVIRONMENT", "")]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Invalid(_)));
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("--environment"), "{text}");
        assert!(text.contains("local, dev"), "{text}");
        assert!(text.contains("production"), "{text}");
    }

    #[test]
    fn services_listen_on_loopback_unless_told_otherwise() {
        let s = parse_with(&[], &[]).unwrap();
        assert_eq!(s.common.server_host.to_string(), "127.0.0.1");
        let s = parse_with(&[], &[("ORDER_SERVICE_SERVER_HOST", "0.0.0.0")]).unwrap();
        assert_eq!(s.common.server_host.to_string(), "0.0.0.0");
    }

    #[test]
    fn an_example_placeholder_secret_is_refused_outside_local_development() {
        let placeholder = Secret::new("REPLACE-ME-with-32-random-bytes-of-your-own");
        let real = Secret::new("4f1c0e5d9a8b7c6d5e4f3a2b1c0d9e8f");
        let production: Environment = "production".parse().unwrap();
        let local: Environment = "local".parse().unwrap();
        let err = production
            .check_secret("JWT_SECRET", &placeholder)
            .unwrap_err();
        assert!(err.contains("JWT_SECRET"), "{err}");
        assert!(
            !err.contains("random-bytes"),
            "the secret is never echoed: {err}"
        );
        assert!(production.check_secret("JWT_SECRET", &real).is_ok());
        assert!(local.check_secret("JWT_SECRET", &placeholder).is_ok());
    }

    #[test]
    fn topic_replication_is_the_deployments() {
        let s = parse_with(
            &[],
            &[
                ("KAFKA_TOPIC_REPLICATION_FACTOR", "3"),
                ("ORDER_SERVICE_KAFKA_TOPIC_MIN_INSYNC_REPLICAS", "2"),
            ],
        )
        .unwrap();
        assert_eq!(s.kafka.replication_factor, 3);
        assert_eq!(s.kafka.min_insync_replicas, Some(2));
        let local = parse_with(&[], &[]).unwrap();
        assert_eq!(local.kafka.replication_factor, 1);
        assert!(local.kafka.min_insync_replicas.is_none());
        assert!(parse_with(&[], &[("KAFKA_TOPIC_REPLICATION_FACTOR", "0")]).is_err());
    }

    #[test]
    fn kafka_security_settings_are_shared_and_reach_the_brokers() {
        let ca = std::env::temp_dir().join(format!("kafka-ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&ca, "not checked here").unwrap();
        let s = parse_with(
            &[],
            &[
                ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
                ("KAFKA_SASL_MECHANISM", "scram-sha-512"),
                ("KAFKA_SASL_USERNAME", "orders"),
                ("ORDER_SERVICE_KAFKA_SASL_PASSWORD", "s3cret"),
                ("KAFKA_SSL_CA_LOCATION", ca.to_str().unwrap()),
            ],
        )
        .unwrap();
        let brokers = s.kafka.brokers().unwrap();
        let _ = std::fs::remove_file(&ca);
        let config = crate::kafka::client_config(&brokers);
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("orders"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(config.get("ssl.ca.location"), ca.to_str());

        let plain = parse_with(&[], &[]).unwrap().kafka.brokers().unwrap();
        assert_eq!(
            plain.security.protocol,
            crate::kafka::SecurityProtocol::Plaintext
        );
        assert!(parse_with(&[], &[("KAFKA_SECURITY_PROTOCOL", "tls")]).is_err());
        assert!(parse_with(&[], &[("KAFKA_SASL_MECHANISM", "GSSAPI")]).is_err());
    }

    #[test]
    fn inconsistent_kafka_security_settings_name_the_setting() {
        let brokers = |env: &[(&str, &str)]| parse_with(&[], env).unwrap().kafka.brokers();
        let sasl = [
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "PLAIN"),
            ("KAFKA_SASL_USERNAME", "orders"),
            ("KAFKA_SASL_PASSWORD", "s3cret"),
        ];
        assert!(brokers(&sasl).is_ok());
        for (i, missing) in [
            "KAFKA_SASL_MECHANISM",
            "KAFKA_SASL_USERNAME",
            "KAFKA_SASL_PASSWORD",
        ]
        .iter()
        .enumerate()
        {
            let mut env = sasl.to_vec();
            env.remove(i + 1);
            let err = brokers(&env).unwrap_err();
            assert!(err.contains(missing), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = brokers(&[("KAFKA_SASL_USERNAME", "orders")]).unwrap_err();
        assert!(
            err.contains("KAFKA_SASL_USERNAME") && err.contains("plaintext"),
            "{err}"
        );
        let err = brokers(&[(
            "KAFKA_SSL_CA_LOCATION",
            "/etc/ssl/certs/ca-certificates.crt",
        )])
        .unwrap_err();
        assert!(err.contains("KAFKA_SSL_CA_LOCATION"), "{err}");
        let err = brokers(&[
            ("KAFKA_SECURITY_PROTOCOL", "ssl"),
            ("KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        assert!(
            err.contains("KAFKA_SSL_CA_LOCATION /nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
