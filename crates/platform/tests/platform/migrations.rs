use sqlx::migrate::Migrator;
use std::time::Duration;

async fn migrator(dir: &std::path::Path) -> Migrator {
    Migrator::new(dir).await.unwrap()
}

#[tokio::test]
async fn migrations_apply_once_and_an_edited_one_stops_start_up() {
    let options = platform::testing::fresh_database("platform").await.unwrap();
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let dir = tempdir();
    std::fs::write(
        dir.join("0001_create_things.sql"),
        "CREATE TABLE things (id INT PRIMARY KEY);",
    )
    .unwrap();
    platform::db::migrate(&pool, &migrator(&dir).await, Duration::from_secs(5))
        .await
        .unwrap();
    // Applying again is a no-op.
    platform::db::migrate(&pool, &migrator(&dir).await, Duration::from_secs(5))
        .await
        .unwrap();
    sqlx::query("INSERT INTO things VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();

    std::fs::write(
        dir.join("0001_create_things.sql"),
        "CREATE TABLE things (id BIGINT PRIMARY KEY);",
    )
    .unwrap();
    let error = platform::db::migrate(&pool, &migrator(&dir).await, Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("migration 1 was changed after it was applied"),
        "{error}"
    );
    assert!(!error.contains('\n'));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn migrating_an_unreachable_database_gives_up_with_a_clear_error() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nothing")
        .unwrap();
    let dir = tempdir();
    std::fs::write(dir.join("0001_x.sql"), "SELECT 1;").unwrap();
    let error = platform::db::migrate(&pool, &migrator(&dir).await, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("database migration failed"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(platform::testing::unique_name("migrations"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
