//! Journeys through the storefront and the back office in a real browser (headless
//! Chromium through WebDriver), against the real services, broker and databases:
//! what a customer and a shop manager do, checked by what the page shows them and by
//! what the APIs say afterwards. With `UPDATE_SCREENSHOTS=1` the tests also refresh
//! the screenshots in `docs/screenshots/`.

mod shop;

use browser_tests::Browser;
use serde_json::json;
use shop::{screenshot_path, Shop};

/// A desktop window.
const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's screen.
const PHONE: (u32, u32) = (390, 844);

/// Fills the checkout form with a valid customer, except for `email`.
async fn fill_checkout(browser: &Browser, email: &str) -> anyhow::Result<()> {
    for (field, value) in [
        ("customerInfo-name", "Ada Lovelace"),
        ("customerInfo-email", email),
        ("customerInfo-phone", "+14155551234"),
        ("customerInfo-shippingAddress-street", "1 Market St"),
        ("customerInfo-shippingAddress-city", "San Francisco"),
        ("customerInfo-shippingAddress-state", "CA"),
        ("customerInfo-shippingAddress-postalCode", "94105"),
        ("customerInfo-shippingAddress-country", "USA"),
    ] {
        browser.fill(&format!("#{field}"), value).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_customer_finds_two_products_checks_out_and_sees_the_order_paid() -> anyhow::Result<()> {
    let shop = Shop::start().await?;
    let computers = shop.category("Computers").await?;
    let office = shop.category("Office").await?;
    shop.product(
        &computers,
        "LAPTOP-14",
        "Travel Laptop",
        "A light 14 inch laptop for work on the road",
        999.0,
        3,
    )
    .await?;
    let mouse = shop
        .product(
            &computers,
            "MOUSE-W",
            "Wireless Mouse",
            "Quiet clicks, two years on one battery",
            25.0,
            50,
        )
        .await?;
    shop.product(
        &office,
        "DESK-OAK",
        "Standing Desk",
        "Oak top, electric lift",
        450.0,
        0,
    )
    .await?;
    shop.product(
        &office,
        "LAMP-LED",
        "Desk Lamp",
        "Warm light that dims",
        39.5,
        12,
    )
    .await?;
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await?;

    // Browse: every product with its stock, as a customer sees the shop first.
    browser.goto(&format!("{}/", shop.url)).await?;
    let listing = browser
        .wait_for_text("#products", |t| t.contains("Wireless Mouse"))
        .await?;
    assert!(listing.contains("Only 3 left"), "{listing}");
    assert!(listing.contains("Out of stock"), "{listing}");
    browser.screenshot(&screenshot_path("storefront")).await?;
    browser.resize(PHONE.0, PHONE.1).await?;
    browser
        .screenshot(&screenshot_path("storefront-phone"))
        .await?;
    browser.resize(DESKTOP.0, DESKTOP.1).await?;

    // Search by a word of a description, add the product from the results.
    browser.fill("#search", "battery").await?;
    browser.click("#search-form button").await?;
    browser
        .wait_for_text("#result-count", |t| t == "1 product")
        .await?;
    browser
        .click(r#"button[aria-label="Add Wireless Mouse to cart"]"#)
        .await?;
    browser.wait_for_text("#cart-count", |t| t == "1").await?;

    // Search by name, open the product page, add it from there.
    browser.fill("#search", "laptop").await?;
    browser.click("#search-form button").await?;
    // The previous search also found one product: wait for this one's.
    browser
        .wait_for_text("#products", |t| {
            t.contains("Travel Laptop") && !t.contains("Wireless Mouse")
        })
        .await?;
    browser.click("#products h2 a").await?;
    browser
        .wait_for_text("main h1", |t| t == "Travel Laptop")
        .await?;
    browser.screenshot(&screenshot_path("product")).await?;
    browser.click("#add").await?;
    browser.wait_for_text("#cart-count", |t| t == "2").await?;

    // The cart: two mice instead of one, totals follow.
    browser.click("#cart-link").await?;
    browser
        .fill(r#"tr[data-product="MOUSE-W"] input.quantity"#, "2")
        .await?;
    browser.click("main h1").await?;
    browser
        .wait_for_text("#cart-total", |t| t.contains("1,049.00"))
        .await?;
    browser.wait_for_text("#cart-count", |t| t == "3").await?;
    browser.screenshot(&screenshot_path("cart")).await?;

    // Checkout: the API's field error shows next to its field.
    browser.click("#to-checkout").await?;
    fill_checkout(&browser, "ada-at-example.com").await?;
    browser.click("#place-order").await?;
    let error = browser
        .wait_for_text("#customerInfo-email-error", |t| !t.is_empty())
        .await?;
    assert_eq!(error, "Invalid email format");
    browser
        .wait_for_property("#customerInfo-email", "ariaInvalid", &json!("true"))
        .await?;
    browser
        .screenshot(&screenshot_path("checkout-error"))
        .await?;

    browser
        .fill("#customerInfo-email", "ada@example.com")
        .await?;
    browser.click("#place-order").await?;
    let number = browser
        .wait_for_text("#order-number", |t| t.starts_with("ORD-"))
        .await?;
    browser
        .wait_for_text("#confirmation", |t| t.contains("Thank you"))
        .await?;
    browser
        .wait_for_text("#order-status", |t| t == "PAID")
        .await?;
    let details = browser
        .wait_for_text("#order-details", |t| t.contains("ada@example.com"))
        .await?;
    assert!(
        details.contains("Travel Laptop") && details.contains("Wireless Mouse"),
        "{details}"
    );
    browser.screenshot(&screenshot_path("order-paid")).await?;

    // What the page said is what the platform did: one order, paid; stock taken.
    shop.wait_for_order(&number, "ada@example.com", "PAID")
        .await?;
    assert_eq!(shop.stock(&mouse).await?, 48);
    browser.quit().await?;
    shop.stop().await
}

#[tokio::test]
async fn a_declined_payment_is_shown_as_failed() -> anyhow::Result<()> {
    let shop = Shop::start().await?;
    shop.gateway_faults(json!({"successRate": 0.0})).await?;
    let books = shop.category("Books").await?;
    let book = shop
        .product(
            &books,
            "BOOK-RUST",
            "The Rust Book",
            "Ownership, borrowing and lifetimes",
            39.0,
            5,
        )
        .await?;
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await?;
    let id = book["id"].as_str().unwrap_or_default();
    browser
        .goto(&format!("{}/#/product/{id}", shop.url))
        .await?;
    browser.click("#add").await?;
    browser.wait_for_text("#cart-count", |t| t == "1").await?;
    browser.goto(&format!("{}/#/checkout", shop.url)).await?;
    fill_checkout(&browser, "declined@example.com").await?;
    browser.click("#place-order").await?;
    let number = browser
        .wait_for_text("#order-number", |t| t.starts_with("ORD-"))
        .await?;
    browser
        .wait_for_text("#order-status", |t| t == "FAILED")
        .await?;
    let explanation = browser
        .wait_for_text("#order-explanation", |t| !t.is_empty())
        .await?;
    assert!(explanation.contains("declined"), "{explanation}");
    browser.screenshot(&screenshot_path("order-failed")).await?;
    shop.wait_for_order(&number, "declined@example.com", "FAILED")
        .await?;
    browser.quit().await?;
    shop.stop().await
}

#[tokio::test]
async fn a_manager_logs_in_changes_stock_cancels_one_order_and_fulfils_another(
) -> anyhow::Result<()> {
    let shop = Shop::start().await?;
    let garden = shop.category("Garden").await?;
    let hose = shop
        .product(
            &garden,
            "HOSE-25",
            "Garden Hose",
            "25 m, kink-free",
            29.0,
            10,
        )
        .await?;
    let number = shop.order(&hose, 2, "grace@example.com").await?;
    let shipped = shop.order(&hose, 1, "alan@example.com").await?;
    // Paid orders: cancelling one refunds its payment, the other is shipped.
    shop.wait_for_order(&number, "grace@example.com", "PAID")
        .await?;
    shop.wait_for_order(&shipped, "alan@example.com", "PAID")
        .await?;
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await?;

    browser.goto(&format!("{}/admin", shop.url)).await?;
    browser.fill("#login-username", "manager").await?;
    browser.fill("#login-password", "wrong-password").await?;
    browser.click("#login-form button[type=submit]").await?;
    browser
        .wait_for_text("#login-form .form-error", |t| !t.is_empty())
        .await?;
    browser.fill("#login-password", "manager123").await?;
    browser.click("#login-form button[type=submit]").await?;

    // Stock: 7 left after the orders; the manager counts 42 on the shelf.
    browser
        .wait_for_property("#stock-HOSE-25", "value", &json!("7"))
        .await?;
    browser
        .screenshot(&screenshot_path("admin-products"))
        .await?;
    browser.fill("#stock-HOSE-25", "42").await?;
    browser
        .click(r#"tr[data-sku="HOSE-25"] button.save-stock"#)
        .await?;
    browser
        .wait_for_text("#toast", |t| t.contains("is now 42"))
        .await?;
    assert_eq!(shop.stock(&hose).await?, 42);

    // Orders: cancel one paid order, fulfil the other.
    browser.click(r##"#admin-nav a[href="#/orders"]"##).await?;
    let row = format!(r#"tr[data-order="{number}"]"#);
    browser
        .wait_for_text(&format!("{row} .status"), |t| t == "PAID")
        .await?;
    browser.screenshot(&screenshot_path("admin-orders")).await?;
    browser.click(&format!("{row} button.cancel")).await?;
    browser
        .wait_for_text(&format!("{row} .status"), |t| t == "CANCELLED")
        .await?;
    shop.wait_for_order(&number, "grace@example.com", "CANCELLED")
        .await?;
    let row = format!(r#"tr[data-order="{shipped}"]"#);
    browser.click(&format!("{row} button.fulfil")).await?;
    browser
        .wait_for_text(&format!("{row} .status"), |t| t == "FULFILLED")
        .await?;
    shop.wait_for_order(&shipped, "alan@example.com", "FULFILLED")
        .await?;

    // The operational view counts it.
    browser
        .click(r##"#admin-nav a[href="#/operations"]"##)
        .await?;
    browser
        .wait_for_text("#count-CANCELLED b", |t| t == "1")
        .await?;
    browser
        .wait_for_text("#count-FULFILLED b", |t| t == "1")
        .await?;
    for count in [
        "#order-outbox-failed b",
        "#order-dlq b",
        "#customer-outbox-failed b",
    ] {
        browser.wait_for_text(count, |t| t == "0").await?;
    }
    browser
        .screenshot(&screenshot_path("admin-operations"))
        .await?;
    browser.quit().await?;
    shop.stop().await
}
