//! The customer-facing service binary: settings in, [`Application`] out.

use customer_facing_service::{Application, Settings, SERVICE_NAME};
use platform::app::{service_main, Service};

fn main() -> std::process::ExitCode {
    service_main(Service {
        env_prefix: "CUSTOMER_SERVICE",
        name: SERVICE_NAME,
        log_level: |settings: &Settings| settings.common.log_level.as_str(),
        build: Application::build,
        shutdown_token: Application::shutdown_token,
        run_until_stopped: Application::run_until_stopped,
    })
}
