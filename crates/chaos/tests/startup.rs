//! The three binaries as an operator starts them: bad settings stop them with one
//! readable line, and with their dependencies up they migrate and become ready.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const SERVICES: [&str; 3] = [
    "customer-facing-service",
    "order-management-service",
    "payment-gateway",
];

fn run(binary: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(chaos::bin_dir().join(binary))
        .args(args)
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_setting_with_its_service_prefixed_variable() {
    for (binary, prefix) in
        SERVICES
            .iter()
            .zip(["CUSTOMER_SERVICE_", "ORDER_SERVICE_", "PAYMENT_GATEWAY_"])
    {
        let (code, stdout, _) = run(binary, &["--help"]);
        assert_eq!(code, Some(0), "{binary}");
        assert!(
            stdout.contains(&format!("{prefix}SERVER_PORT")),
            "{binary}: {stdout}"
        );
    }
    let (_, stdout, _) = run("order-management-service", &["--help"]);
    assert!(stdout.contains("ORDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS"));
}

#[test]
fn an_unparsable_database_url_stops_start_up_with_one_line_naming_it() {
    for binary in SERVICES {
        let (code, _, stderr) = run(binary, &["--database-url", "not a url"]);
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{binary}: {stderr}");
        assert!(stderr.contains("--database-url"), "{binary}: {stderr}");
    }
}

#[test]
fn a_malformed_database_url_is_reported_without_its_password() {
    for binary in SERVICES {
        let (code, _, stderr) = run(
            binary,
            &[
                "--database-url",
                "postgres://user:Hunter2pw@host:notaport/db",
            ],
        );
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{binary}: {stderr}");
        assert!(stderr.contains("--database-url"), "{binary}: {stderr}");
        assert!(
            !stderr.contains("Hunter2pw"),
            "{binary} echoes the password: {stderr}"
        );
    }
}

#[test]
fn no_service_starts_without_being_told_its_environment_and_the_line_names_the_choices() {
    for binary in SERVICES {
        let (code, _, stderr) = run(binary, &[]);
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{binary}: {stderr}");
        assert!(stderr.contains("ENVIRONMENT"), "{binary}: {stderr}");
        assert!(stderr.contains("local, dev"), "{binary}: {stderr}");
        assert!(stderr.contains("production"), "{binary}: {stderr}");
    }
}

#[test]
fn outside_local_development_the_demo_jwt_secret_and_placeholder_tokens_stop_start_up() {
    // Refused before any connection is tried: nothing listens on port 1.
    let nowhere = "postgres://postgres@127.0.0.1:1/never_used";
    let (code, _, stderr) = run(
        "order-management-service",
        &[
            "--environment",
            "production",
            "--database-url",
            nowhere,
            "--payment-gateway-token",
            "a-real-looking-service-token-0123456789",
        ],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("demo JWT secret"), "{stderr}");
    let (code, _, stderr) = run(
        "payment-gateway",
        &[
            "--environment",
            "production",
            "--database-url",
            nowhere,
            "--admin-token",
            "REPLACE-ME-with-openssl-rand-hex-32",
            "--service-token",
            "a-real-looking-service-token-0123456789",
        ],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("PAYMENT_GATEWAY_ADMIN_TOKEN"), "{stderr}");
    assert!(!stderr.contains("openssl-rand"), "never echoed: {stderr}");
}

#[test]
fn a_port_in_use_stops_start_up_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, stderr) = run(
        "payment-gateway",
        &[
            "--environment",
            "local",
            "--admin-token",
            "a-local-admin-token-0123",
            "--service-token",
            "a-local-service-token-0123456789abcdef",
            "--server-host",
            "127.0.0.1",
            "--server-port",
            &port,
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_services_migrate_and_become_ready_and_stop_cleanly() {
    let platform = chaos::Platform::start(&[]).await.unwrap();
    for service in [&platform.customer, &platform.order, &platform.gateway] {
        assert_eq!(
            service.readiness().await,
            Some(200),
            "{}",
            service.process.name
        );
        let metrics = reqwest::get(format!("{}/actuator/prometheus", service.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("process_resident_memory_bytes"),
            "{}",
            service.process.name
        );
    }
    platform.stop().await.unwrap();
}

#[test]
fn every_setting_of_every_binary_is_documented_in_the_env_example() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example"),
    )
    .unwrap();
    let documented: std::collections::BTreeSet<&str> = example
        .lines()
        .filter_map(|l| {
            l.trim_start_matches(['#', ' '])
                .split_once('=')
                .map(|(name, _)| name)
        })
        .collect();
    for binary in SERVICES.iter().chain(["opsctl"].iter()) {
        let (_, help, _) = run(binary, &["--help"]);
        for name in help
            .split("[env: ")
            .skip(1)
            .filter_map(|rest| rest.split('=').next())
        {
            assert!(
                documented.contains(name),
                "{binary}: {name} is missing from .env.example"
            );
        }
    }
}

/// The checkout this test file lives in, read at run time (a test binary may outlive the
/// checkout that built it).
fn checkout_root() -> std::path::PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    std::path::Path::new(&manifest).join("../..")
}

async fn product_count(customer: &str) -> i64 {
    let page: serde_json::Value = reqwest::get(format!("{customer}/api/v1/products?size=1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["totalElements"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_catalogue_gets_the_demo_shop_once_and_a_filled_one_is_left_alone() {
    let platform = chaos::Platform::start(&[]).await.unwrap();
    let customer = platform.customer.url();
    let demo = |with_password: bool| {
        let mut command = Command::new("bash");
        command
            .arg(checkout_root().join("scripts/demo-catalogue.sh"))
            .args(["--customer-base", &customer]);
        if with_password {
            command.env("OPSCTL_SMOKE_PASSWORD", "manager123");
        } else {
            command.env_remove("OPSCTL_SMOKE_PASSWORD");
        }
        command.output().unwrap()
    };
    let refused = demo(false);
    assert_eq!(refused.status.code(), Some(2), "no password, no catalogue");
    assert_eq!(product_count(&customer).await, 0);

    let first = demo(true);
    assert!(first.status.success(), "{first:?}");
    let catalogue: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(checkout_root().join("infrastructure/demo/catalogue.json"))
            .unwrap(),
    )
    .unwrap();
    let listed: usize = catalogue["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["products"].as_array().unwrap().len())
        .sum();
    assert!(listed >= 24, "a few dozen products: {listed}");
    assert_eq!(product_count(&customer).await, listed as i64);

    let second = demo(true);
    assert!(second.status.success(), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("left as it is"),
        "{second:?}"
    );
    assert_eq!(
        product_count(&customer).await,
        listed as i64,
        "nothing added twice"
    );
    platform.stop().await.unwrap();
}
