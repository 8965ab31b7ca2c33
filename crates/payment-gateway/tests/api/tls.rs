//! The whole gateway on a DATABASE_URL that asks for TLS (`sslmode=verify-full` with the
//! test server's own certificate as the CA, addressed by the name it is for): it
//! migrates, becomes ready, and every connection of its pool is encrypted.

use crate::helpers::spawn_gateway_on;
use platform::testing::DatabaseGuard;
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use std::str::FromStr;
use std::time::Duration;

#[tokio::test]
async fn a_gateway_whose_database_url_asks_for_tls_is_ready_on_encrypted_connections() {
    let server = PgConnectOptions::from_str(&platform::testing::server_url()).expect("URL");
    let mut admin = server.connect().await.expect("PostgreSQL");
    let ca: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut admin)
        .await
        .expect("ssl_cert_file");
    let database = platform::testing::fresh_database("pgw")
        .await
        .expect("fresh database");
    let _dropped_after_the_gateway = DatabaseGuard::of(&database);
    let name = database.get_database().expect("a name").to_owned();
    let mut url = reqwest::Url::parse(&platform::testing::server_url()).expect("URL");
    url.set_host(Some("localhost")).expect("host");
    url.set_path(&name);
    url.query_pairs_mut()
        .append_pair("sslmode", "verify-full")
        .append_pair("sslrootcert", &ca);
    let options = PgConnectOptions::from_str(url.as_str()).expect("a DATABASE_URL");

    let gw = spawn_gateway_on(options).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = gw
            .client
            .get(format!("{}/actuator/health/readiness", gw.address))
            .send()
            .await
            .expect("sent")
            .status();
        if ready == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never became ready over TLS: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (connections, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl");
    assert!(connections > 0, "the gateway holds connections to {name}");
    assert_eq!(encrypted, connections, "every connection is encrypted");
}
