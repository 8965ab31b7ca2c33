use crate::helpers::{customer_db, minutes_ago};
use opsctl::idempotency;
use std::time::Duration;

#[tokio::test]
async fn list_shows_the_newest_keys_first_and_prune_deletes_only_old_ones() {
    let (pool, _) = customer_db().await;
    for (key, minutes) in [
        ("old-1", 48 * 60),
        ("old-2", 25 * 60),
        ("new-1", 10),
        ("new-2", 1),
    ] {
        sqlx::query(
            "INSERT INTO checkout_idempotency
               (idempotency_key, request_fingerprint, status, response_status, response_body, created_at, expires_at)
             VALUES ($1, 'fp', 'COMPLETED', 201, '{}', $2, $2 + interval '24 hours')",
        )
        .bind(key)
        .bind(minutes_ago(minutes))
        .execute(&pool)
        .await
        .expect("key inserted");
    }

    let keys = idempotency::list(&pool, 2).await.expect("listed");
    let names: Vec<_> = keys.iter().map(|k| k.idempotency_key.as_str()).collect();
    assert_eq!(names, ["new-2", "new-1"]);
    assert_eq!(keys[0].status, "COMPLETED");
    assert_eq!(keys[0].response_status, Some(201));

    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        idempotency::prune(&pool, day, true).await.expect("dry run"),
        2
    );
    assert_eq!(idempotency::list(&pool, 10).await.expect("listed").len(), 4);
    assert_eq!(
        idempotency::prune(&pool, day, false).await.expect("pruned"),
        2
    );
    let left: Vec<_> = idempotency::list(&pool, 10)
        .await
        .expect("listed")
        .into_iter()
        .map(|k| k.idempotency_key)
        .collect();
    assert_eq!(left, ["new-2", "new-1"]);
}
