//! The storefront, back office and Swagger UI pages: built into the binary, cached by
//! the browser (revalidated with an ETag, or immutable under a fingerprinted URL).

use crate::helpers::{spawn_app, spawn_app_with};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

/// The `src` or `href` values in `html` that start with `prefix`.
fn links(html: &str, prefix: &str) -> Vec<String> {
    html.split('"')
        .filter(|part| part.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_storefront_page_and_its_assets_are_served_with_cache_headers() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[CACHE_CONTROL], "no-cache");
    assert!(page.headers()[CONTENT_TYPE]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/html")));
    let etag = page.headers()[ETAG].clone();
    let html = page.text().await.expect("the page");
    // The storefront follows orders through this service's own lookup; only the back
    // office calls the order service from the browser.
    assert!(!html.contains("order-api"));
    let admin = app
        .get("/admin")
        .await
        .text()
        .await
        .expect("the back office");
    assert!(admin.contains(r#"<meta name="order-api" content="http://127.0.0.1:8081">"#));

    let again = app
        .request(reqwest::Method::GET, "/")
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("GET /");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.expect("a body").is_empty());

    // The stylesheet, the script both pages share and the storefront's own.
    let assets = links(&html, "/assets/");
    assert_eq!(assets.len(), 3, "{assets:?}");
    let mut total = html.len();
    for asset in assets {
        let response = app.get(&asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            response.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        total += response.bytes().await.expect("the asset").len();
    }
    // The first visit stays small, even uncompressed.
    assert!(total < 100 * 1024, "first load is {total} bytes");
}

#[tokio::test]
async fn the_back_office_page_takes_the_order_api_from_the_settings() {
    let app = spawn_app_with(|s| s.order_service_url = "https://orders.example.com/".into()).await;
    let html = app.get("/admin").await.text().await.expect("the page");
    assert!(html.contains(r#"<meta name="order-api" content="https://orders.example.com">"#));
    assert_eq!(links(&html, "/assets/admin.").len(), 1);
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_and_reads_the_services_document() {
    let app = spawn_app().await;
    let html = app
        .get("/swagger-ui.html")
        .await
        .text()
        .await
        .expect("the page");
    let assets = links(&html, "/swagger-ui/");
    assert_eq!(assets.len(), 4, "{assets:?}");
    for asset in assets {
        let response = app.get(&asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let body = response.text().await.unwrap_or_default();
        if asset.ends_with("swagger-initializer.js") {
            assert!(body.contains(r#"url: "/v3/api-docs""#));
        }
    }
}

/// The directives of a Content-Security-Policy header, by name.
fn directives(policy: &str) -> std::collections::HashMap<String, String> {
    policy
        .split(';')
        .filter_map(|d| {
            let d = d.trim();
            let (name, value) = d.split_once(' ').unwrap_or((d, ""));
            (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Whether `html` has anything a strict policy refuses: an inline script or style, an
/// event-handler attribute, a `javascript:` URL.
fn has_inline_code(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    lower.split("<script").skip(1).any(|tag| {
        let open = tag.split('>').next().unwrap_or_default();
        !open.contains(" src=")
    }) || lower.contains("<style")
        || lower.contains(" style=")
        || lower.contains("javascript:")
        || lower
            .split(|c: char| c.is_whitespace())
            .any(|word| word.starts_with("on") && word.contains("=\""))
}

#[tokio::test]
async fn every_page_has_a_strict_same_origin_policy_and_no_inline_code() {
    let app = spawn_app_with(|s| s.order_service_url = "https://orders.example.com/".into()).await;
    for path in ["/", "/admin", "/swagger-ui.html"] {
        let page = app.get(path).await;
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .expect("an ASCII policy")
            .to_owned();
        let d = directives(&policy);
        assert_eq!(d["default-src"], "'self'", "{path}: {policy}");
        assert_eq!(d["script-src"], "'self'", "{path}: {policy}");
        assert_eq!(d["style-src"], "'self'", "{path}: {policy}");
        assert_eq!(d["frame-ancestors"], "'none'", "{path}: {policy}");
        assert_eq!(d["object-src"], "'none'", "{path}: {policy}");
        assert_eq!(d["base-uri"], "'none'", "{path}: {policy}");
        let connect = &d["connect-src"];
        if path == "/admin" {
            // The back office calls the order service, and only it, from the browser.
            assert_eq!(connect, "'self' https://orders.example.com", "{policy}");
        } else {
            assert_eq!(connect, "'self'", "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            page.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        let html = page.text().await.expect("the page");
        assert!(!has_inline_code(&html), "{path} has inline code:\n{html}");
    }
}

#[tokio::test]
async fn every_answer_forbids_framing_sniffing_and_referrers_and_hsts_only_when_configured() {
    let app = spawn_app().await;
    for path in ["/api/v1/products", "/no-such-page", "/actuator/health"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert!(
            headers.get("strict-transport-security").is_none(),
            "{path}: HSTS without HSTS_MAX_AGE_SECS"
        );
    }
    let app = spawn_app_with(|s| s.common.http.hsts_max_age_secs = Some(31_536_000)).await;
    for path in ["/", "/api/v1/products"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
}
