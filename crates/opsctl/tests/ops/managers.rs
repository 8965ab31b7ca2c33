use crate::helpers::customer_db;
use opsctl::managers;

async fn stored(pool: &sqlx::PgPool, username: &str) -> (String, Vec<String>) {
    sqlx::query_as("SELECT password_hash, roles FROM managers WHERE username = $1")
        .bind(username)
        .fetch_one(pool)
        .await
        .expect("manager stored")
}

#[tokio::test]
async fn a_created_manager_has_an_argon2id_hash_of_the_password_and_the_roles() {
    let (pool, _) = customer_db().await;
    managers::create(&pool, "alice", &["MANAGER".into()], "first-password")
        .await
        .expect("created");
    let (hash, roles) = stored(&pool, "alice").await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(platform::auth::verify_password("first-password", &hash));
    assert_eq!(roles, ["MANAGER"]);

    let err = managers::create(&pool, "alice", &["MANAGER".into()], "another-password")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
}

#[tokio::test]
async fn rotating_a_password_replaces_the_hash_and_the_old_password_stops_working() {
    let (pool, _) = customer_db().await;
    managers::create(&pool, "bob", &["MANAGER".into()], "first-password")
        .await
        .expect("created");
    managers::rotate_password(&pool, "bob", "second-password")
        .await
        .expect("rotated");
    let (hash, _) = stored(&pool, "bob").await;
    assert!(platform::auth::verify_password("second-password", &hash));
    assert!(!platform::auth::verify_password("first-password", &hash));

    assert!(managers::rotate_password(&pool, "nobody", "whatever-pass")
        .await
        .is_err());
    assert!(managers::rotate_password(&pool, "bob", "short")
        .await
        .is_err());
}
