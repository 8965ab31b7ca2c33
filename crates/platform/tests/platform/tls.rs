//! TLS to PostgreSQL: the `sslmode` and `sslrootcert` of DATABASE_URL decide whether the
//! pool's connections are encrypted and whose certificate they accept, against the test
//! server's own self-signed certificate for the name `localhost` (what
//! `scripts/lib/common.sh` turns TLS on with; Debian's snakeoil one where the machine is
//! called localhost).
//!
//! sqlx 0.8.6 with rustls >= 0.23.24 checks the host name in `verify-ca` too (sqlx issue
//! 3793), so these tests, like the runbook, use `verify-full` with the certificate's name.

use platform::config::DatabaseSettings;
use platform::kafka::{
    ensure_topics, Brokers, KafkaSecurity, Producer, SecurityProtocol, TopicSpec,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};
use std::path::PathBuf;
use std::str::FromStr;

#[derive(clap::Parser)]
struct Settings {
    #[command(flatten)]
    database: DatabaseSettings,
}

/// The database settings a service reads from `DATABASE_URL=<url>`.
fn database_settings(url: &str) -> DatabaseSettings {
    platform::config::parse_from::<Settings>("PLATFORM_TEST", ["platform-test"], |name| {
        (name == "PLATFORM_TEST_DATABASE_URL").then(|| url.to_owned())
    })
    .expect("the URL parses")
    .database
}

/// The test server's URL with `query` added.
fn url_with(query: &str) -> String {
    let server = platform::testing::server_url();
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}{query}")
}

/// The test server's URL, addressed as `localhost` (the name its certificate is for),
/// with `query` added.
fn localhost_url_with(query: &str) -> String {
    let server = PgConnectOptions::from_str(&platform::testing::server_url()).expect("URL");
    let host = server.get_host().to_owned();
    let url = url_with(query);
    assert!(
        url.contains(&format!("@{host}:")),
        "TEST_DATABASE_URL has the form postgres://user:password@host:port/database"
    );
    url.replacen(&format!("@{host}:"), "@localhost:", 1)
}

/// The certificate the test server presents, self-signed, so it is its own CA.
async fn server_certificate() -> PathBuf {
    let mut connection = PgConnectOptions::from_str(&platform::testing::server_url())
        .expect("server URL")
        .connect()
        .await
        .expect("PostgreSQL");
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut connection)
        .await
        .expect("SHOW ssl");
    assert_eq!(
        ssl, "on",
        "the test PostgreSQL runs without TLS: scripts/lib/common.sh (ensure_postgres) turns it on"
    );
    let file: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut connection)
        .await
        .expect("SHOW ssl_cert_file");
    let path = PathBuf::from(file);
    assert!(
        path.is_absolute(),
        "ssl_cert_file {} is relative to the server's data directory",
        path.display()
    );
    path
}

/// Whether the connection a pooled query runs on is encrypted, by the server's account.
async fn encrypted(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_encrypts_every_pooled_connection() {
    let ca = server_certificate().await;
    let settings = database_settings(&localhost_url_with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca.display()
    )));
    let pool = platform::db::pool(&settings, PgConnectOptions::new());
    let (first, second) = tokio::join!(encrypted(&pool), encrypted(&pool));
    assert!(
        first.expect("connected over TLS"),
        "the connection is encrypted"
    );
    assert!(
        second.expect("connected over TLS"),
        "the connection is encrypted"
    );
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_servers_certificate_is_refused() {
    server_certificate().await;
    let dir = std::env::temp_dir().join(platform::testing::unique_name("platform"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A CA of the test's own, which signed nothing the server holds.
    let ca = platform::testing::private_ca_and_certificate(&dir, "localhost")
        .expect("a private CA")
        .ca;
    let mut settings = database_settings(&localhost_url_with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca.display()
    )));
    settings.acquire_timeout_secs = 2;
    let pool = platform::db::pool(&settings, PgConnectOptions::new());
    let refused = encrypted(&pool).await;
    let _ = std::fs::remove_dir_all(&dir);
    let err = refused.expect_err("an unknown issuer is refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "refused for the certificate: {err}"
    );
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_name() {
    let ca = server_certificate().await;
    // The test server is addressed by IP; its certificate names a host, not the address.
    let server = PgConnectOptions::from_str(&platform::testing::server_url()).expect("URL");
    assert!(
        server.get_host().parse::<std::net::IpAddr>().is_ok(),
        "TEST_DATABASE_URL names the server by address"
    );
    let mut settings = database_settings(&url_with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca.display()
    )));
    settings.acquire_timeout_secs = 2;
    let pool = platform::db::pool(&settings, PgConnectOptions::new());
    let err = encrypted(&pool)
        .await
        .expect_err("a certificate for another name is refused");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "refused for the certificate: {err}"
    );

    // The same CA for the certificate's name is accepted: the name, not the CA, was refused.
    let by_name = database_settings(&localhost_url_with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca.display()
    )));
    let pool = platform::db::pool(&by_name, PgConnectOptions::new());
    assert!(encrypted(&pool)
        .await
        .expect("verify-full to localhost connects"));
}

/// A nisshi broker of the test's own that accepts only TLS, with a certificate for
/// `localhost` signed by a private CA; killed on drop.
struct TlsBroker {
    process: std::process::Child,
    port: u16,
    files: platform::testing::TlsFiles,
    dir: PathBuf,
}

impl TlsBroker {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(platform::testing::unique_name("platform"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let files =
            platform::testing::private_ca_and_certificate(&dir, "localhost").expect("certificates");
        let port = platform::testing::free_port().expect("a free port");
        let process = std::process::Command::new("nisshi")
            .arg("broker")
            .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args([
                "--advertised-listener-url",
                &format!("tcp://localhost:{port}"),
            ])
            .arg("--cert")
            .arg(&files.cert)
            .arg("--key")
            .arg(&files.key)
            // The SQLite engine is the one the platform's broker build has.
            .args(["--storage-engine", "sqlite://broker.db"])
            .arg("--silent")
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the nisshi broker (scripts/broker.sh installs it)");
        let broker = Self {
            process,
            port,
            files,
            dir,
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the TLS broker never listened"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        broker
    }

    fn brokers(&self, security: KafkaSecurity) -> Brokers {
        Brokers {
            servers: format!("localhost:{}", self.port),
            security,
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn kafka_clients_reach_a_tls_only_broker_with_its_ca_location() {
    let broker = TlsBroker::start().await;
    let ssl = broker.brokers(KafkaSecurity {
        protocol: SecurityProtocol::Ssl,
        sasl: None,
        ssl_ca_location: Some(broker.files.ca.clone()),
    });
    let topic = platform::testing::unique_name("platform");
    ensure_topics(&ssl, &[TopicSpec::events(&topic)])
        .await
        .expect("the admin client creates a topic over TLS");
    let producer = Producer::new(&ssl, std::time::Duration::from_secs(10)).expect("producer");
    producer
        .send(&topic, Some("k"), b"over TLS", &[])
        .await
        .expect("the producer's record is acknowledged over TLS");

    // In plaintext the broker is unreachable: the same record is never acknowledged.
    let plaintext = broker.brokers(KafkaSecurity::default());
    let producer = Producer::new(&plaintext, std::time::Duration::from_secs(2)).expect("producer");
    producer
        .send(&topic, Some("k"), b"in the clear", &[])
        .await
        .expect_err("a plaintext client gets nowhere with a TLS listener");
}
