//! Settings of the gateway: where to listen, where its ledger lives
//! (`payment_gateway_db`), and the fault knobs it starts with.
//!
//! Every setting is a flag and a `PAYMENT_GATEWAY_*` variable
//! (`PAYMENT_GATEWAY_DATABASE_URL`, `PAYMENT_GATEWAY_SUCCESS_RATE`, ...). The knobs can
//! be changed later through `PUT /admin/faults`.

use crate::faults::Faults;
use platform::config::{CommonSettings, DatabaseSettings, Secret};
use sqlx::postgres::PgConnectOptions;

/// The gateway's settings.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "payment-gateway",
    version,
    about = "Payment gateway stub: idempotent charges, a ledger and fault knobs"
)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Share of charges that succeed, from 0.0 (all declined) to 1.0 (all succeed).
    #[arg(long = "success-rate", env = "SUCCESS_RATE", default_value_t = 1.0,
          value_parser = parse_rate)]
    pub success_rate: f64,
    /// Delay added to every new charge and every refund, in milliseconds.
    #[arg(long = "latency-ms", env = "LATENCY_MS", default_value_t = 20)]
    pub latency_ms: u64,
    /// When set (e.g. 503), every charge and refund request answers this status and changes nothing.
    #[arg(long = "error-status", env = "ERROR_STATUS",
          value_parser = clap::value_parser!(u16).range(400..=599))]
    pub error_status: Option<u16>,
    /// When true, charge and refund requests hang until the fault is cleared.
    #[arg(long = "hang", env = "HANG", default_value_t = false, action = clap::ArgAction::Set)]
    pub hang: bool,
    /// Bearer token that `/admin/faults` requires (at least 16 characters), in every
    /// environment; it also reads the ledger (`GET /api/v1/*`), for operators.
    #[arg(long = "admin-token", env = "ADMIN_TOKEN")]
    pub admin_token: Secret,
    /// Bearer token the order service sends on every `/api/v1/*` call (at least 32
    /// characters): nobody else may charge, refund or read the ledger.
    #[arg(long = "service-token", env = "SERVICE_TOKEN")]
    pub service_token: Secret,
    /// Comma-separated earlier service tokens still accepted during a rotation.
    #[arg(
        long = "previous-service-tokens",
        env = "PREVIOUS_SERVICE_TOKENS",
        value_delimiter = ','
    )]
    pub previous_service_tokens: Vec<Secret>,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err("must be between 0.0 and 1.0".into())
    }
}

impl Settings {
    /// The fault knobs the gateway starts with.
    pub fn initial_faults(&self) -> Faults {
        Faults {
            success_rate: self.success_rate,
            latency_ms: self.latency_ms,
            error_status: self.error_status,
            hang: self.hang,
        }
    }

    /// Settings for a test instance keeping its ledger in `database`: port 0,
    /// environment `test`, no faults, a small pool, the tokens of [`crate::testing`].
    pub fn for_tests(database: PgConnectOptions) -> anyhow::Result<Self> {
        let mut settings = platform::config::parse_from::<Self>(
            crate::ENV_PREFIX,
            [
                "payment-gateway",
                "--server-port=0",
                "--server-host=127.0.0.1",
                "--environment=test",
                "--database-max-connections=5",
                &format!("--admin-token={}", crate::testing::ADMIN_TOKEN),
                &format!("--service-token={}", crate::testing::SERVICE_TOKEN),
            ],
            |_| None,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        settings.database.database_url = Some(database);
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(env: &[(&str, &str)]) -> Result<Settings, platform::config::ConfigError> {
        let mut env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (name, value) in [
            ("ENVIRONMENT", "test"),
            ("PAYMENT_GATEWAY_ADMIN_TOKEN", crate::testing::ADMIN_TOKEN),
            (
                "PAYMENT_GATEWAY_SERVICE_TOKEN",
                crate::testing::SERVICE_TOKEN,
            ),
        ] {
            env.entry(name.into()).or_insert_with(|| value.into());
        }
        platform::config::parse_from::<Settings>(crate::ENV_PREFIX, ["pg"], |name| {
            env.get(name).cloned()
        })
    }

    #[test]
    fn defaults_always_succeed_after_a_short_delay() {
        let s = parse(&[]).expect("defaults parse");
        let f = s.initial_faults();
        assert!((f.success_rate - 1.0).abs() < f64::EPSILON);
        assert_eq!(f.latency_ms, 20);
        assert_eq!(f.error_status, None);
        assert!(!f.hang);
    }

    #[test]
    fn fault_knobs_are_read_from_prefixed_variables() {
        let s = parse(&[
            ("PAYMENT_GATEWAY_SUCCESS_RATE", "0.25"),
            ("PAYMENT_GATEWAY_LATENCY_MS", "5"),
            ("PAYMENT_GATEWAY_ERROR_STATUS", "503"),
            ("PAYMENT_GATEWAY_HANG", "true"),
        ])
        .expect("knobs parse");
        let f = s.initial_faults();
        assert!((f.success_rate - 0.25).abs() < f64::EPSILON);
        assert_eq!(f.latency_ms, 5);
        assert_eq!(f.error_status, Some(503));
        assert!(f.hang);
    }

    #[test]
    fn the_database_url_is_read_from_its_prefixed_variable() {
        let s = parse(&[(
            "PAYMENT_GATEWAY_DATABASE_URL",
            "postgres://gw@db.internal:5432/payment_gateway_db",
        )])
        .expect("database url parses");
        let url = s.database.database_url.expect("set");
        assert_eq!(url.get_database(), Some("payment_gateway_db"));
        assert_eq!(url.get_host(), "db.internal");
        assert!(parse(&[("PAYMENT_GATEWAY_DATABASE_URL", "mysql://nope")]).is_err());
    }

    #[test]
    fn the_gateway_does_not_start_without_its_credentials() {
        for missing in [
            "PAYMENT_GATEWAY_ADMIN_TOKEN",
            "PAYMENT_GATEWAY_SERVICE_TOKEN",
        ] {
            let err = platform::config::parse_from::<Settings>(crate::ENV_PREFIX, ["pg"], |name| {
                match name {
                    "ENVIRONMENT" => Some("local".into()),
                    "PAYMENT_GATEWAY_ADMIN_TOKEN" if missing != name => {
                        Some(crate::testing::ADMIN_TOKEN.into())
                    }
                    "PAYMENT_GATEWAY_SERVICE_TOKEN" if missing != name => {
                        Some(crate::testing::SERVICE_TOKEN.into())
                    }
                    _ => None,
                }
            })
            .unwrap_err();
            assert!(err.to_string().contains(missing), "{missing}: {err}");
        }
    }

    #[test]
    fn an_out_of_range_success_rate_is_a_configuration_error() {
        assert!(parse(&[("PAYMENT_GATEWAY_SUCCESS_RATE", "1.5")]).is_err());
        assert!(parse(&[("PAYMENT_GATEWAY_ERROR_STATUS", "200")]).is_err());
    }
}
