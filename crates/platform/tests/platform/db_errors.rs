//! Which database errors a consumer waits out, produced by a real PostgreSQL.

use platform::db::{is_data_error, is_transient};
use sqlx::Connection;

async fn connect() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&platform::testing::server_url())
        .await
        .expect("PostgreSQL")
}

#[tokio::test]
async fn a_statement_timeout_and_a_read_only_failover_are_transient_and_bad_data_is_not() {
    let mut conn = connect().await;
    sqlx::query("SET statement_timeout = 10")
        .execute(&mut conn)
        .await
        .expect("set");
    let timeout = sqlx::query("SELECT pg_sleep(1)")
        .execute(&mut conn)
        .await
        .expect_err("statement timeout");
    assert!(is_transient(&timeout), "{timeout}");

    let mut conn = connect().await;
    // What a client sees on a primary that was demoted to a read-only standby.
    sqlx::query("SET default_transaction_read_only = on")
        .execute(&mut conn)
        .await
        .expect("set");
    let read_only = sqlx::query("CREATE TEMP TABLE t (x int)")
        .execute(&mut conn)
        .await
        .expect_err("read-only transaction");
    assert!(is_transient(&read_only), "{read_only}");

    let mut conn = connect().await;
    let bad = sqlx::query("SELECT 'x'::int")
        .execute(&mut conn)
        .await
        .expect_err("invalid input");
    assert!(!is_transient(&bad) && is_data_error(&bad), "{bad}");
    assert!(is_transient(&sqlx::Error::PoolTimedOut));
}
