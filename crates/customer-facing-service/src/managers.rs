//! The people who may log in: the `managers` table, argon2id password hashes, the demo
//! users of local development, and the [`LoginGuard`] that bounds what logins cost.

use crate::db;
use crate::error::{Error, Result};
use platform::auth::verify_password;
use platform::db::Db;
use platform::limit::RateLimiter;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Password verifications running at once. Each argon2id verification holds 19 MiB
/// (`m=19456`) for about 50 ms of one core. One at a time keeps the service's peak near
/// its working set plus one block (about 43 MB, inside the 50 MB target); two let two
/// managers logging in at the same moment take it to 61-63 MB (measured with the
/// benchmark's two load generators logging in together). Twenty logins a second per
/// replica is far more than a back office needs.
pub const MAX_VERIFICATIONS: usize = 1;
/// How long a login waits for a verification slot before it is refused with 503.
const VERIFICATION_WAIT: Duration = Duration::from_secs(2);

/// What bounds logins: attempts per user name from one client address and per client
/// address (429 with `Retry-After` once spent), and the verifications in flight (503
/// when none frees up). An attempt takes its tokens before its password is checked, so
/// parallel guesses get no more than the tokens there are, and a refused attempt (bad
/// input, 503) costs them too; a login that succeeds gives them back. The name is
/// counted per client, so a guesser elsewhere cannot lock the real user out; the
/// per-client limit bounds one client's guesses over every name, and the email of an
/// order lookup is counted there too: it is a password of sorts.
pub struct LoginGuard {
    pub per_user_and_client: RateLimiter,
    pub per_client: RateLimiter,
    verifications: Semaphore,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self {
            // Ten attempts a minute for one name from one address, thirty for one
            // address: a person mistyping never meets the limit, a guesser crawls.
            per_user_and_client: RateLimiter::new(10, 10),
            per_client: RateLimiter::new(30, 30),
            verifications: Semaphore::new(MAX_VERIFICATIONS),
        }
    }
}

impl LoginGuard {
    /// The key of `username` tried from `client` (an address has no spaces).
    pub fn user_key(client: &str, username: &str) -> String {
        format!("{client} {username}")
    }
}

/// The demo users of the original, `manager`/`manager123` and `guest`/`guest123`:
/// `(username, password, argon2id hash of the password, roles)`. The hashes are
/// precomputed so start-up does not spend a second hashing well-known passwords; the
/// passwords are what [`refuse_demo_passwords`] looks for outside local development.
pub const DEMO_USERS: &[(&str, &str, &str, &[&str])] = &[
    (
        "manager",
        "manager123",
        "$argon2id$v=19$m=19456,t=2,p=1$RWCq/zX3QFermy1+gGkP/A$olh3umRl+sWPzDPqjnA1He6a4aj7YNHpYNDwbmlF1DY",
        &["MANAGER"],
    ),
    (
        "guest",
        "guest123",
        "$argon2id$v=19$m=19456,t=2,p=1$NMGg0sCJ1466CNGEZ7b8cQ$WsPlwKOOlYy4WWNfArgvJBuomUyA8N82iblzEDfa7RM",
        &["GUEST"],
    ),
];

/// Refuses to serve, outside local development, a database where a demo user still has
/// its demo password: a `customer_db` first used for a local trial, or a copy of one, would
/// otherwise let anybody in as `manager`.
pub async fn refuse_demo_passwords(db: &Db) -> anyhow::Result<()> {
    let mut conn = db.acquire().await?;
    for (username, password, _, _) in DEMO_USERS {
        let Some(row) = db::managers::credentials(&mut conn, username).await? else {
            continue;
        };
        let password = (*password).to_owned();
        let hash = row.password_hash;
        let known = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await?;
        anyhow::ensure!(
            !known,
            "the user '{username}' still has its demo password: change it (opsctl manager \
             rotate-password) or remove the user before starting outside local development"
        );
    }
    Ok(())
}

/// Hash compared against when the user does not exist, so an unknown name costs as
/// much time as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8HnvBB3Td4EAp4Wy6UoOKZ6sv3wN8xAxfOPNBz7ih5c";

/// Creates the demo users that do not exist yet.
pub async fn seed_demo_users(db: &Db) -> anyhow::Result<()> {
    let mut conn = db.acquire().await?;
    for (username, _, hash, roles) in DEMO_USERS {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        if db::managers::insert_if_absent(&mut conn, username, hash, &roles).await? {
            tracing::info!(username, "demo user created");
        }
    }
    Ok(())
}

/// The roles of `username` when `password` is theirs; at most [`MAX_VERIFICATIONS`]
/// verifications run at once.
pub async fn authenticate(
    db: &Db,
    guard: &LoginGuard,
    username: &str,
    password: &str,
) -> Result<Option<Vec<String>>> {
    let row = db::managers::credentials(&mut *db.acquire().await?, username).await?;
    let (hash, roles) = match row {
        Some(row) => (row.password_hash, Some(row.roles)),
        None => (DUMMY_HASH.to_owned(), None),
    };
    let Ok(Ok(_slot)) =
        tokio::time::timeout(VERIFICATION_WAIT, guard.verifications.acquire()).await
    else {
        return Err(Error::Busy(
            "Too many logins in progress. Please retry shortly.".into(),
        ));
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
        assert!(verify_password("manager123", DEMO_USERS[0].2));
        assert!(verify_password("guest123", DEMO_USERS[1].2));
        for (user, password, hash, _) in DEMO_USERS {
            assert!(verify_password(password, hash), "{user}");
        }
    }
}
