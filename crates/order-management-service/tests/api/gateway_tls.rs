//! The payment gateway over HTTPS: the real test gateway behind a TLS front whose
//! certificate a private CA signed (as an ingress would serve it), reached with
//! ORDER_SERVICE_PAYMENT_GATEWAY_CA_FILE and refused without it.

use order_management_service::payment::breaker::{BreakerConfig, CircuitBreaker};
use order_management_service::payment::client::{ChargeOrder, ChargeOutcome, GatewayClient};
use platform::config::Secret;
use rust_decimal::Decimal;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use uuid::Uuid;

/// Serves TLS on a free port with `cert`/`key`, passing each connection's bytes to
/// `backend` (host:port); returns the port.
async fn tls_front(cert: &Path, key: &Path, backend: String) -> u16 {
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to pass on.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

fn client(url: &str, ca_file: Option<&Path>) -> anyhow::Result<GatewayClient> {
    let metrics = platform::metrics::Metrics::new("oms-test", "test").expect("metrics");
    let breaker = CircuitBreaker::new(
        &platform::testing::unique_name("breaker"),
        BreakerConfig::payment_service(Duration::from_secs(30)),
        &metrics,
    )
    .expect("breaker");
    GatewayClient::new(
        url,
        &Secret::new(payment_gateway::testing::SERVICE_TOKEN),
        ca_file,
        Duration::from_secs(5),
        1,
        Duration::from_millis(10),
        breaker,
    )
}

fn order() -> ChargeOrder {
    ChargeOrder {
        order_id: Uuid::new_v4(),
        order_number: "ORD-TLS-1".into(),
        amount: Decimal::new(1999, 2),
        customer_email: "tls@example.com".into(),
    }
}

#[tokio::test]
async fn an_https_gateway_signed_by_a_private_ca_is_reached_with_its_ca_file_only() {
    let dir = std::env::temp_dir().join(platform::testing::unique_name("oms"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let platform::testing::TlsFiles { ca, cert, key } =
        platform::testing::private_ca_and_certificate(&dir, "localhost").expect("certificates");
    let (gateway, _stop) = payment_gateway::testing::spawn()
        .await
        .expect("a test gateway");
    let backend = gateway.trim_start_matches("http://").to_owned();
    let port = tls_front(&cert, &key, backend).await;
    let url = format!("https://localhost:{port}");

    let trusted = client(&url, Some(&ca)).expect("a client trusting the private CA");
    let outcome = trusted.charge(&order()).await;
    assert!(
        matches!(outcome, ChargeOutcome::Approved { .. }),
        "charged over HTTPS: {outcome:?}"
    );

    let untrusted = client(&url, None).expect("a client trusting Mozilla's roots only");
    let outcome = untrusted.charge(&order()).await;
    assert!(
        matches!(outcome, ChargeOutcome::Unavailable { .. }),
        "an unknown CA is refused: {outcome:?}"
    );

    let missing = dir.join("missing.pem");
    let err = client(&url, Some(&missing))
        .err()
        .expect("an unreadable CA file stops start-up");
    assert!(
        err.to_string()
            .contains("ORDER_SERVICE_PAYMENT_GATEWAY_CA_FILE"),
        "{err}"
    );
    std::fs::write(&missing, "not a certificate").expect("write");
    let err = client(&url, Some(&missing))
        .err()
        .expect("a CA file without a certificate stops start-up");
    assert!(
        err.to_string()
            .contains("ORDER_SERVICE_PAYMENT_GATEWAY_CA_FILE"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
