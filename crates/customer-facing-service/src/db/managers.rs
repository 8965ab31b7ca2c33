//! The `managers` table: who may log in, with their password hash and roles.

use sqlx::PgConnection;
use uuid::Uuid;

/// A user's password hash and roles.
pub struct Credentials {
    pub password_hash: String,
    pub roles: Vec<String>,
}

/// Inserts a user unless one has `username`; `false` when one had.
pub async fn insert_if_absent(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
    roles: &[String],
) -> sqlx::Result<bool> {
    let created = sqlx::query!(
        "INSERT INTO managers (id, username, password_hash, roles) VALUES ($1, $2, $3, $4)
             ON CONFLICT (username) DO NOTHING",
        Uuid::new_v4(),
        username,
        password_hash,
        roles
    )
    .execute(conn)
    .await?;
    Ok(created.rows_affected() > 0)
}

/// The credentials of `username`, or `None`.
pub async fn credentials(
    conn: &mut PgConnection,
    username: &str,
) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(
        Credentials,
        "SELECT password_hash, roles FROM managers WHERE username = $1",
        username
    )
    .fetch_optional(conn)
    .await
}
