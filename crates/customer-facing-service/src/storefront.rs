//! The pages people use: the storefront at `/` and the back office at `/admin`. Each is
//! a small HTML shell with one stylesheet, the helpers both pages share (`common.js`)
//! and its own script (vanilla JavaScript over the public API, no build step), all
//! under `assets/web/` and built into the binary.
//!
//! The shells are rendered once at start-up: they get the fingerprinted URLs of their
//! assets (`/assets/shop.<hash>.js`, cached for a year; a new build is a new URL) and
//! the back office also gets the base URL of the order service in
//! `<meta name="order-api">`, which it calls from the browser to manage orders. The
//! storefront follows orders through this service's own lookup. Serving a page costs
//! no more than serving any other constant.

use crate::state::AppState;
use axum::http::HeaderValue;
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use platform::web::{get_file, Caching, StaticFile};

const CSS: &str = include_str!("../assets/web/app.css");
const COMMON_JS: &str = include_str!("../assets/web/common.js");
const SHOP_HTML: &str = include_str!("../assets/web/shop.html");
const SHOP_JS: &str = include_str!("../assets/web/shop.js");
const ADMIN_HTML: &str = include_str!("../assets/web/admin.html");
const ADMIN_JS: &str = include_str!("../assets/web/admin.js");

/// The routes of both pages and their assets. `order_api` is the base URL of the
/// order service as the back office's browser should call it; empty means this origin.
pub fn router(order_api: &str) -> Router<AppState> {
    let css = StaticFile::new(CSS, "text/css; charset=utf-8", Caching::Immutable);
    let common_js = StaticFile::new(
        COMMON_JS,
        "text/javascript; charset=utf-8",
        Caching::Immutable,
    );
    let shop_js = StaticFile::new(
        SHOP_JS,
        "text/javascript; charset=utf-8",
        Caching::Immutable,
    );
    let admin_js = StaticFile::new(
        ADMIN_JS,
        "text/javascript; charset=utf-8",
        Caching::Immutable,
    );
    let css_path = format!("/assets/app.{}.css", css.fingerprint());
    let common_js_path = format!("/assets/common.{}.js", common_js.fingerprint());
    let shop_js_path = format!("/assets/shop.{}.js", shop_js.fingerprint());
    let admin_js_path = format!("/assets/admin.{}.js", admin_js.fingerprint());
    // The back office calls the order service from the browser: its origin is the one
    // other place the pages may fetch from.
    let admin_policy = platform::headers::page_policy(
        &platform::headers::origin_of(order_api)
            .into_iter()
            .collect::<Vec<_>>(),
    );
    let shop_policy = platform::headers::page_policy(&[]);
    let order_api = escape_attribute(order_api.trim_end_matches('/'));
    let page = |shell: &str, js: &str, policy: &HeaderValue| {
        StaticFile::new(
            shell
                .replace("__CSS__", &css_path)
                .replace("__COMMON_JS__", &common_js_path)
                .replace("__JS__", js)
                .replace("__ORDER_API__", &order_api),
            "text/html; charset=utf-8",
            Caching::Revalidate,
        )
        .with_policy(policy.clone())
    };
    Router::new()
        .route("/", get_file(page(SHOP_HTML, &shop_js_path, &shop_policy)))
        .route(
            "/admin",
            get_file(page(ADMIN_HTML, &admin_js_path, &admin_policy)),
        )
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route(&css_path, get_file(css))
        .route(&common_js_path, get_file(common_js))
        .route(&shop_js_path, get_file(shop_js))
        .route(&admin_js_path, get_file(admin_js))
}

/// `value` safe inside a double-quoted HTML attribute.
fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_url_cannot_break_out_of_its_attribute() {
        assert_eq!(
            escape_attribute(r#"http://x/"><script>"#),
            "http://x/&quot;&gt;&lt;script&gt;"
        );
    }
}
