//! Swagger UI at `/swagger-ui.html`, pointing at the service's own `/v3/api-docs`, as
//! the original (springdoc) served it. The assets are swagger-ui-dist from the npm
//! registry, vendored under `assets/swagger-ui/` (version and origin in its README)
//! and built into the binary: nothing is fetched at run time, so it works offline.

use crate::web::{get_file, Caching, StaticFile};
use axum::Router;

/// The vendored swagger-ui-dist version; part of the asset URLs, so a new version is a
/// new URL and the year-long cache never serves a stale bundle.
pub const VERSION: &str = "5.35.0";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API documentation</title>
<link rel="icon" type="image/png" href="/swagger-ui/VERSION/favicon-32x32.png">
<link rel="stylesheet" href="/swagger-ui/VERSION/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/swagger-ui/VERSION/swagger-ui-bundle.js"></script>
<script src="/swagger-ui/VERSION/swagger-initializer.js"></script>
</body>
</html>
"#;

/// Kept out of the page so a strict Content-Security-Policy (no inline scripts) works.
/// `validatorUrl: null`: no badge fetched from validator.swagger.io, so nothing leaves
/// the machine.
const INITIALIZER: &str = r##"window.ui = SwaggerUIBundle({
  url: "/v3/api-docs",
  dom_id: "#swagger-ui",
  deepLinking: true,
  tryItOutEnabled: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"##;

/// `/swagger-ui.html` (and `/swagger-ui/index.html`, springdoc's other address) and
/// the versioned assets under `/swagger-ui/<version>/`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let page = StaticFile::new(
        PAGE.replace("VERSION", VERSION),
        "text/html; charset=utf-8",
        Caching::Revalidate,
    )
    .with_policy(crate::headers::page_policy(&[]));
    let asset = |name: &str| format!("/swagger-ui/{VERSION}/{name}");
    Router::new()
        .route("/swagger-ui.html", get_file(page.clone()))
        .route("/swagger-ui/index.html", get_file(page))
        .route(
            &asset("swagger-ui-bundle.js"),
            get_file(StaticFile::new(
                &include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js")[..],
                "text/javascript; charset=utf-8",
                Caching::Immutable,
            )),
        )
        .route(
            &asset("swagger-initializer.js"),
            get_file(StaticFile::new(
                INITIALIZER,
                "text/javascript; charset=utf-8",
                // Ours, not the vendored version's: may change without VERSION.
                Caching::Revalidate,
            )),
        )
        .route(
            &asset("swagger-ui.css"),
            get_file(StaticFile::new(
                &include_bytes!("../assets/swagger-ui/swagger-ui.css")[..],
                "text/css; charset=utf-8",
                Caching::Immutable,
            )),
        )
        .route(
            &asset("favicon-32x32.png"),
            get_file(StaticFile::new(
                &include_bytes!("../assets/swagger-ui/favicon-32x32.png")[..],
                "image/png",
                Caching::Immutable,
            )),
        )
}
