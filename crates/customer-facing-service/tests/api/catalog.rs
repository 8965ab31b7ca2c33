use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn a_manager_creates_reads_updates_and_deletes_a_category() {
    let app = spawn_app().await;
    let created = app.create_category("Books").await;
    assert_eq!(created["name"], "Books");
    assert_eq!(created["description"], "things");
    let created_at = created["createdAt"].as_str().expect("createdAt");
    assert!(
        !created_at.ends_with('Z') && created_at.contains('T'),
        "{created_at}"
    );
    let id = created["id"].as_str().expect("id");

    let read = app.get_json(&format!("/api/v1/categories/{id}")).await;
    assert_eq!(read, created);
    let all = app.get_json("/api/v1/categories").await;
    assert_eq!(all.as_array().map(Vec::len), Some(1));

    let updated = app
        .as_manager(
            Method::PUT,
            &format!("/api/v1/categories/{id}"),
            Some(json!({"description": "paper"})),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.expect("JSON");
    assert_eq!(updated["name"], "Books");
    assert_eq!(updated["description"], "paper");

    let deleted = app
        .as_manager(Method::DELETE, &format!("/api/v1/categories/{id}"), None)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/api/v1/categories/{id}")).await;
    let body = assert_problem(gone, StatusCode::NOT_FOUND).await;
    assert_eq!(body["detail"], format!("Category not found with id: {id}"));
}

#[tokio::test]
async fn a_duplicate_category_name_is_a_409() {
    let app = spawn_app().await;
    app.create_category("Books").await;
    let again = app
        .as_manager(
            Method::POST,
            "/api/v1/categories",
            Some(json!({"name": "Books"})),
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT).await;
}

#[tokio::test]
async fn deleting_a_category_with_products_is_a_409_conflict() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let category_id = product["categoryId"].as_str().expect("id");
    let response = app
        .as_manager(
            Method::DELETE,
            &format!("/api/v1/categories/{category_id}"),
            None,
        )
        .await;
    let body = assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(
        body["detail"],
        format!("Cannot delete category with associated products. Category ID: {category_id}")
    );
    assert_eq!(app.count("categories").await, 1);
}

#[tokio::test]
async fn a_created_product_has_the_originals_fields_and_is_always_active() {
    let app = spawn_app().await;
    let category = app.create_category("Tools").await;
    let response = app
        .as_manager(
            Method::POST,
            "/api/v1/products",
            Some(json!({"sku": "HAM-1", "name": "Hammer", "price": 19.99,
                        "inventoryQuantity": 7, "categoryId": category["id"], "isActive": false})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let product: Value = response.json().await.expect("JSON");
    assert_eq!(product["sku"], "HAM-1");
    assert_eq!(product["price"], 19.99);
    assert_eq!(product["inventoryQuantity"], 7);
    assert_eq!(product["isActive"], true);
    assert!(product["description"].is_null());
    for field in ["id", "name", "categoryId", "createdAt", "updatedAt"] {
        assert!(!product[field].is_null(), "{field}");
    }
    assert!(product.get("version").is_none());
    let read = app
        .get_json(&format!(
            "/api/v1/products/{}",
            product["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(read, product);
}

#[tokio::test]
async fn product_rules_give_the_originals_answers() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let duplicate = app
        .as_manager(
            Method::POST,
            "/api/v1/products",
            Some(
                json!({"sku": "SKU-1", "name": "Again", "price": 1, "inventoryQuantity": 1,
                        "categoryId": product["categoryId"]}),
            ),
        )
        .await;
    let body = assert_problem(duplicate, StatusCode::CONFLICT).await;
    assert_eq!(body["detail"], "Product with SKU 'SKU-1' already exists");
    assert!(body["type"]
        .as_str()
        .is_some_and(|t| t.ends_with("duplicate-resource")));

    let invalid = app
        .as_manager(
            Method::POST,
            "/api/v1/products",
            Some(
                json!({"sku": "lower-case", "name": "", "price": 0, "inventoryQuantity": -1,
                        "categoryId": product["categoryId"]}),
            ),
        )
        .await;
    let body = assert_problem(invalid, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        body["fieldErrors"]["sku"],
        "SKU must contain only uppercase letters, numbers, and hyphens"
    );
    assert_eq!(body["fieldErrors"]["name"], "Product name is required");
    assert_eq!(body["fieldErrors"]["price"], "Price must be at least 0.01");
    assert_eq!(
        body["fieldErrors"]["inventoryQuantity"],
        "Inventory quantity cannot be negative"
    );

    let unknown_category = app
        .as_manager(
            Method::POST,
            "/api/v1/products",
            Some(
                json!({"sku": "SKU-2", "name": "X", "price": 1, "inventoryQuantity": 1,
                        "categoryId": uuid::Uuid::new_v4()}),
            ),
        )
        .await;
    assert_problem(unknown_category, StatusCode::NOT_FOUND).await;
    assert_eq!(app.count("products").await, 1);
}

#[tokio::test]
async fn listings_are_paginated_filtered_and_sorted() {
    let app = spawn_app().await;
    let category = app.create_category("Tools").await;
    let other = app.create_category("Toys").await;
    for (sku, price) in [("A-1", 3.0), ("B-1", 1.0), ("C-1", 2.0)] {
        app.create_product_in(&category["id"], sku, price, 5).await;
    }
    app.create_product_in(&other["id"], "D-1", 9.0, 5).await;

    let page = app.get_json("/api/v1/products?size=2").await;
    assert_eq!(page["totalElements"], 4);
    assert_eq!(page["totalPages"], 2);
    assert_eq!(page["size"], 2);
    assert_eq!(page["number"], 0);
    assert_eq!(page["content"].as_array().map(Vec::len), Some(2));

    let category_id = category["id"].as_str().expect("id");
    let by_price = app
        .get_json(&format!(
            "/api/v1/products?categoryId={category_id}&sortBy=price&sortDir=DESC"
        ))
        .await;
    let skus: Vec<&str> = by_price["content"]
        .as_array()
        .expect("content")
        .iter()
        .filter_map(|p| p["sku"].as_str())
        .collect();
    assert_eq!(skus, ["A-1", "C-1", "B-1"]);

    let last = app
        .get_json(&format!(
            "/api/v1/products?categoryId={category_id}&page=1&size=2&sortBy=sku"
        ))
        .await;
    assert_eq!(last["content"][0]["sku"], "C-1");
    assert_eq!(last["number"], 1);

    let unknown_sort = app.get("/api/v1/products?sortBy=nope").await;
    assert_problem(unknown_sort, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_deleted_product_is_discontinued_not_removed() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let id = product["id"].as_str().expect("id");
    for _ in 0..2 {
        let deleted = app
            .as_manager(Method::DELETE, &format!("/api/v1/products/{id}"), None)
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    }
    let read = app.get_json(&format!("/api/v1/products/{id}")).await;
    assert_eq!(read["isActive"], false);
    let active = app.get_json("/api/v1/products").await;
    assert_eq!(active["totalElements"], 0);
    let discontinued = app.get_json("/api/v1/products?isActive=false").await;
    assert_eq!(discontinued["totalElements"], 1);

    let reactivated = app
        .as_manager(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            Some(json!({"isActive": true, "sku": "IGNORED"})),
        )
        .await;
    assert_eq!(reactivated.status(), StatusCode::OK);
    let reactivated: Value = reactivated.json().await.expect("JSON");
    assert_eq!(reactivated["isActive"], true);
    assert_eq!(reactivated["sku"], "SKU-1");
    let missing = app
        .as_manager(
            Method::DELETE,
            &format!("/api/v1/products/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_problem(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_lost_update_is_a_409() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let id: uuid::Uuid = serde_json::from_value(product["id"].clone()).expect("id");
    // Another writer holds the row and bumps its version while our update waits.
    let mut other = app.db.begin().await.expect("tx");
    sqlx::query("UPDATE products SET version = version + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *other)
        .await
        .expect("update");
    let path = format!("/api/v1/products/{id}");
    let token = app.manager_token().await;
    let request = app
        .request(Method::PUT, &path)
        .bearer_auth(token)
        .json(&json!({"price": 12.5}))
        .send();
    let (response, ()) = tokio::join!(request, async {
        // Commit only once the update waits on our row lock, having read the old version.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&app.db)
            .await
            .expect("waiters");
            if waiting > 0 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        other.commit().await.expect("commit");
    });
    let response = response.expect("response");
    let body = assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(
        body["detail"],
        "The resource was modified by another request. Please retry."
    );
}

#[tokio::test]
async fn a_managers_price_change_is_visible_on_the_next_read_through_the_cache() {
    // Redis alone: the near cache in front of it has tests of its own (cache.rs).
    let app = spawn_app_with(|s| s.redis.near_cache_ttl_secs = 0).await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    // Fill both caches, then read again: the second reads are hits.
    for _ in 0..2 {
        assert_eq!(app.get_json(&path).await["price"], 10.0);
        assert_eq!(
            app.get_json("/api/v1/products").await["content"][0]["price"],
            10.0
        );
    }
    for cache in ["product", "product_page"] {
        let hits = app
            .metric(
                "cache_requests_total",
                &[("cache", cache), ("result", "hit")],
            )
            .await;
        assert!(hits >= 1.0, "{cache} hits: {hits}");
    }
    let updated = app
        .as_manager(Method::PUT, &path, Some(json!({"price": 12.5})))
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(app.get_json(&path).await["price"], 12.5);
    assert_eq!(
        app.get_json("/api/v1/products").await["content"][0]["price"],
        12.5
    );
}

#[tokio::test]
async fn with_redis_unreachable_the_catalogue_is_served_from_postgres() {
    let app = spawn_app_with(|s| s.redis.port = 1).await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    assert_eq!(app.get_json(&path).await["sku"], "SKU-1");
    assert_eq!(app.get_json("/api/v1/products").await["totalElements"], 1);
    assert_eq!(
        app.get_json("/api/v1/categories")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn search_finds_products_by_words_of_their_name_or_description() {
    let app = spawn_app().await;
    let category = app.create_category("Computers").await;
    for (sku, name, description) in [
        ("LAPTOP-1", "Travel Laptop", "Light and fast"),
        ("BAG-1", "Laptop Bag", "Padded, fits 15 inch"),
        (
            "MOUSE-1",
            "Wireless Mouse",
            "Quiet clicks for a laptop user",
        ),
        ("DESK-1", "Standing Desk", "Oak top"),
    ] {
        let response = app
            .as_manager(
                Method::POST,
                "/api/v1/products",
                Some(json!({"sku": sku, "name": name, "description": description,
                    "price": 10.0, "inventoryQuantity": 1, "categoryId": category["id"]})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let skus = |page: Value| -> Vec<String> {
        page["content"]
            .as_array()
            .expect("content")
            .iter()
            .map(|p| p["sku"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    // A word prefix, in any case, in the name or the description; sorted as asked.
    let page = app.get_json("/api/v1/products?search=LAP&sortBy=sku").await;
    assert_eq!(skus(page.clone()), ["BAG-1", "LAPTOP-1", "MOUSE-1"]);
    assert_eq!(page["totalElements"], 3);
    // Every word must match; stemming finds plurals.
    let page = app.get_json("/api/v1/products?search=laptop%20bags").await;
    assert_eq!(skus(page), ["BAG-1"]);
    // Query syntax is only text: nothing to match, not an error.
    let page = app
        .get_json("/api/v1/products?search=%21%26%7C%3A%2A")
        .await;
    assert_eq!(page["totalElements"], 0);
    // Odd text is words or nothing, never an error.
    for odd in ["x²y", "ǅ ٣", "'a'", "\\", "a:*|b", "the", "ß", "🦀"] {
        let response = app
            .request(Method::GET, "/api/v1/products")
            .query(&[("search", odd)])
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{odd}");
    }
    // Blank is no filter.
    let page = app.get_json("/api/v1/products?search=%20").await;
    assert_eq!(page["totalElements"], 4);
    // Paging counts the matches only.
    let page = app
        .get_json("/api/v1/products?search=laptop&size=2&page=1&sortBy=sku")
        .await;
    assert_eq!(skus(page.clone()), ["MOUSE-1"]);
    assert_eq!(page["totalPages"], 2);

    let too_long = app
        .get(&format!("/api/v1/products?search={}", "a".repeat(201)))
        .await;
    let problem = assert_problem(too_long, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["detail"], "Search must not exceed 200 characters");
}
