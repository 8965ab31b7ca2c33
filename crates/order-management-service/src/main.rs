//! The order management service binary; everything lives in the library.

use order_management_service::{Application, Settings, ENV_PREFIX, SERVICE_NAME};
use platform::app::{service_main, Service};

fn main() -> std::process::ExitCode {
    service_main(Service {
        env_prefix: ENV_PREFIX,
        name: SERVICE_NAME,
        log_level: |settings: &Settings| settings.common.log_level.as_str(),
        build: Application::build,
        shutdown_token: Application::shutdown_token,
        run_until_stopped: Application::run_until_stopped,
    })
}
