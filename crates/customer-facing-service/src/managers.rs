//! The people who may log in: the `managers` table, argon2id password hashes, and the
//! demo users that exist outside production.

use crate::error::Result;
use platform::auth::verify_password;
use platform::db::Db;

/// The demo users of the original, `manager`/`manager123` and `guest`/`guest123`:
/// `(username, argon2id hash of the password, roles)`. The hashes are precomputed so
/// start-up does not spend a second hashing well-known passwords.
pub const DEMO_USERS: &[(&str, &str, &[&str])] = &[
    (
        "manager",
        "$argon2id$v=19$m=19456,t=2,p=1$RWCq/zX3QFermy1+gGkP/A$olh3umRl+sWPzDPqjnA1He6a4aj7YNHpYNDwbmlF1DY",
        &["MANAGER"],
    ),
    (
        "guest",
        "$argon2id$v=19$m=19456,t=2,p=1$NMGg0sCJ1466CNGEZ7b8cQ$WsPlwKOOlYy4WWNfArgvJBuomUyA8N82iblzEDfa7RM",
        &["GUEST"],
    ),
];

/// Hash compared against when the user does not exist, so an unknown name costs as
/// much time as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8HnvBB3Td4EAp4Wy6UoOKZ6sv3wN8xAxfOPNBz7ih5c";

/// Creates the demo users that do not exist yet.
pub async fn seed_demo_users(db: &Db) -> anyhow::Result<()> {
    for (username, hash, roles) in DEMO_USERS {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let created = sqlx::query!(
            "INSERT INTO managers (id, username, password_hash, roles) VALUES ($1, $2, $3, $4)
             ON CONFLICT (username) DO NOTHING",
            uuid::Uuid::new_v4(),
            username,
            hash,
            &roles
        )
        .execute(db.pool())
        .await?;
        if created.rows_affected() > 0 {
            tracing::info!(username, "demo user created");
        }
    }
    Ok(())
}

/// The roles of `username` when `password` is theirs.
pub async fn authenticate(db: &Db, username: &str, password: &str) -> Result<Option<Vec<String>>> {
    let row = sqlx::query!(
        "SELECT password_hash, roles FROM managers WHERE username = $1",
        username
    )
    .fetch_optional(&mut *db.acquire().await?)
    .await?;
    let (hash, roles) = match row {
        Some(row) => (row.password_hash, Some(row.roles)),
        None => (DUMMY_HASH.to_owned(), None),
    };
    let password = password.to_owned();
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(roles.filter(|_| valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_matches_the_dummy_hash() {
        assert!(!verify_password("anything", DUMMY_HASH));
        assert!(!verify_password("", DUMMY_HASH));
    }

    #[test]
    fn the_demo_hashes_are_the_demo_passwords() {
        assert!(verify_password("manager123", DEMO_USERS[0].1));
        assert!(verify_password("guest123", DEMO_USERS[1].1));
    }
}
