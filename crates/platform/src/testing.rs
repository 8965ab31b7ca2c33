//! Helpers for integration tests against the real PostgreSQL, Redis and broker: each
//! test gets its own database and its own topic names, so tests never see each other's
//! data. Addresses come from `TEST_DATABASE_URL` (a server URL whose database is
//! replaced), `TEST_KAFKA_BOOTSTRAP_SERVERS` and `TEST_REDIS_URL`, with local defaults.
//!
//! Names are `<prefix>_<32 hex>` ([`unique_name`]), the form `scripts/test.sh` sweeps
//! (`^(platform|cfs|oms|pgw|ops|chaos)_[0-9a-f]{32}$`), and a test drops the databases
//! it made with a [`DatabaseGuard`].

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;

/// The PostgreSQL server tests use.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The broker tests use.
pub fn kafka_bootstrap() -> String {
    std::env::var("TEST_KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// The Redis tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A port nothing listens on right now, for a process a test starts itself.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A name no other test run uses: `<prefix>_<random>`, safe as a database or topic name.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The test broker, reached in plaintext.
pub fn kafka_brokers() -> crate::kafka::Brokers {
    crate::kafka::Brokers::plaintext(kafka_bootstrap())
}

/// A consumer in a group of its own, reading `topic` on the test broker from its
/// first record, without committing: how a test sees what was published.
pub fn reader(topic: &str) -> rdkafka::error::KafkaResult<rdkafka::consumer::StreamConsumer> {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique_name("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Creates an empty database with a unique name and returns options that connect to it.
pub async fn fresh_database(prefix: &str) -> anyhow::Result<PgConnectOptions> {
    let server = PgConnectOptions::from_str(&server_url())?;
    let name = unique_name(prefix);
    let mut connection = server.clone().connect().await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(server.database(&name))
}

/// Drops `names` on a thread of its own: dropping is slow and tests do not wait for it.
/// What a finished test process leaves behind, the next `scripts/test.sh` run removes.
pub fn drop_databases_in_background(names: Vec<String>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut server) = sqlx::postgres::PgConnection::connect(&server_url()).await else {
                return;
            };
            for name in names {
                let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                if let Err(e) = sqlx::query(&statement).execute(&mut server).await {
                    eprintln!("test database {name} not dropped: {e}");
                }
            }
        });
    });
}

/// A database a test made; dropped (in the background) when the guard is.
#[derive(Debug)]
pub struct DatabaseGuard {
    name: String,
}

impl DatabaseGuard {
    /// Guards the database `options` connect to; `None` when they name none.
    pub fn of(options: &PgConnectOptions) -> Option<Self> {
        options.get_database().map(|name| Self {
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        drop_databases_in_background(vec![std::mem::take(&mut self.name)]);
    }
}

/// The Prometheus exposition (`/actuator/prometheus`) of the service at `base_url`.
pub async fn metrics(client: &reqwest::Client, base_url: &str) -> reqwest::Result<String> {
    client
        .get(format!("{base_url}/actuator/prometheus"))
        .send()
        .await?
        .text()
        .await
}

/// The sum of the series `name` whose labels include all of `labels`, from a
/// Prometheus text exposition; 0 when there is none.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The value of the series `name` whose labels include all of `labels`, from a
/// Prometheus text exposition (`/actuator/prometheus`).
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            if series_name != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse().ok())
                .flatten()
        })
}

/// The files of a private certificate authority and of a server certificate it signed,
/// for tests of TLS to a server they start themselves.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA's certificate (PEM): what a client is told to trust.
    pub ca: std::path::PathBuf,
    /// The server's certificate (PEM), for the DNS name given.
    pub cert: std::path::PathBuf,
    /// The server's private key (PEM).
    pub key: std::path::PathBuf,
}

/// Makes, with the `openssl` command, a private CA and a certificate it signed for the
/// DNS name `name`, in `dir` (P-256 keys, valid for a day).
pub fn private_ca_and_certificate(dir: &std::path::Path, name: &str) -> anyhow::Result<TlsFiles> {
    let openssl = |args: &[&str]| -> anyhow::Result<()> {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run openssl: {e}"))?;
        anyhow::ensure!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let ca = [
        "req",
        "-x509",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test private CA",
    ];
    openssl(&[&ca[..], &ec, &["-keyout", "ca.key", "-out", "ca.pem"]].concat())?;
    let subject = format!("/CN={name}");
    let csr = ["req", "-nodes", "-subj", &subject];
    openssl(
        &[
            &csr[..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    )?;
    std::fs::write(
        dir.join("server.ext"),
        format!("subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n"),
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ])?;
    Ok(TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    })
}
