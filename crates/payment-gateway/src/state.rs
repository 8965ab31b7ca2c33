//! [`AppState`]: what the HTTP handlers share, built once by [`crate::app`].

use crate::faults::FaultSwitch;
use crate::metrics::GatewayMetrics;
use crate::settings::Settings;
use platform::config::Secret;
use platform::db::Db;
use std::sync::Arc;

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub faults: FaultSwitch,
    pub metrics: GatewayMetrics,
    pub credentials: Arc<Credentials>,
}

/// Who may call the gateway: the order service (its current and previous service
/// tokens) and operators (the admin token).
#[derive(Debug)]
pub struct Credentials {
    pub service_tokens: Vec<Secret>,
    pub admin_token: Secret,
}

impl Credentials {
    /// The credentials of `settings`, refusing tokens too short to resist guessing, and
    /// outside local development the example files' placeholders.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let environment = &settings.common.environment;
        let admin = &settings.admin_token;
        anyhow::ensure!(
            admin.expose().len() >= MIN_ADMIN_TOKEN,
            "PAYMENT_GATEWAY_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN} characters"
        );
        environment
            .check_secret("PAYMENT_GATEWAY_ADMIN_TOKEN", admin)
            .map_err(anyhow::Error::msg)?;
        let service_tokens: Vec<Secret> = std::iter::once(&settings.service_token)
            .chain(&settings.previous_service_tokens)
            .cloned()
            .collect();
        for token in &service_tokens {
            anyhow::ensure!(
                token.expose().len() >= MIN_SERVICE_TOKEN,
                "PAYMENT_GATEWAY_SERVICE_TOKEN and PAYMENT_GATEWAY_PREVIOUS_SERVICE_TOKENS must be \
                 at least {MIN_SERVICE_TOKEN} characters each"
            );
            environment
                .check_secret("PAYMENT_GATEWAY_SERVICE_TOKEN", token)
                .map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                token != admin,
                "PAYMENT_GATEWAY_SERVICE_TOKEN must differ from PAYMENT_GATEWAY_ADMIN_TOKEN: \
                 the order service's credential must not turn the fault knobs"
            );
        }
        Ok(Self {
            service_tokens,
            admin_token: admin.clone(),
        })
    }
}

/// Shortest admin token accepted.
const MIN_ADMIN_TOKEN: usize = 16;
/// Shortest service token accepted: 32 random characters cannot be guessed online.
const MIN_SERVICE_TOKEN: usize = 32;
