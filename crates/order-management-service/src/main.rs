//! The order management service binary; everything lives in the library.

use order_management_service::{Application, Settings, ENV_PREFIX, SERVICE_NAME};

fn main() -> std::process::ExitCode {
    platform::app::main::<Settings, _, _>(ENV_PREFIX, |settings| async move {
        platform::telemetry::init(SERVICE_NAME, &settings.common.log_level)?;
        let app = Application::build(settings).await?;
        platform::shutdown::cancel_on_signal(app.shutdown_token());
        app.run_until_stopped().await
    })
}
