//! The customer-facing service binary: settings in, [`Application`] out.

use customer_facing_service::{Application, Settings};
use std::process::ExitCode;

fn main() -> ExitCode {
    platform::app::main::<Settings, _, _>("CUSTOMER_SERVICE", |settings| async move {
        platform::telemetry::init(
            customer_facing_service::SERVICE_NAME,
            &settings.common.log_level,
        )?;
        let application = Application::build(settings).await?;
        platform::shutdown::cancel_on_signal(application.shutdown_token());
        application.run_until_stopped().await
    })
}
