//! Managers of the customer-facing service (`managers` in `customer_db`): passwords are
//! argon2id PHC strings with the argon2 crate's default parameters, which is what the
//! service writes and verifies.

use crate::cli::{read_password_from_stdin, ManagerCommand, Settings};
use crate::output::Output;
use crate::Outcome;
use platform::auth::hash_password;
use rand::Rng as _;
use sqlx::PgPool;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// A random 20-character password of letters and digits.
pub fn generate_password() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

fn check_password(password: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD_LEN,
        "the password must have at least {MIN_PASSWORD_LEN} characters"
    );
    Ok(())
}

async fn hash_off_thread(password: &str) -> anyhow::Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password)).await?
}

/// Creates a manager; fails when the username is taken.
pub async fn create(
    pool: &PgPool,
    username: &str,
    roles: &[String],
    password: &str,
) -> anyhow::Result<uuid::Uuid> {
    anyhow::ensure!(
        !username.trim().is_empty(),
        "the username must not be empty"
    );
    anyhow::ensure!(
        username.len() <= 100,
        "the username must have at most 100 characters"
    );
    anyhow::ensure!(!roles.is_empty(), "give at least one --role");
    check_password(password)?;
    let hash = hash_off_thread(password).await?;
    let id = uuid::Uuid::new_v4();
    let result = sqlx::query!(
        "INSERT INTO managers (id, username, password_hash, roles) VALUES ($1, $2, $3, $4)",
        id,
        username,
        hash,
        roles
    )
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(id),
        Err(e) if platform::db::is_unique_violation(&e, "uk_manager_username") => {
            anyhow::bail!("a manager named {username} exists already (use rotate-password)")
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets a new password; fails when there is no such manager.
pub async fn rotate_password(pool: &PgPool, username: &str, password: &str) -> anyhow::Result<()> {
    check_password(password)?;
    let hash = hash_off_thread(password).await?;
    let result = sqlx::query!(
        "UPDATE managers SET password_hash = $2 WHERE username = $1",
        username,
        hash
    )
    .execute(pool)
    .await?;
    anyhow::ensure!(result.rows_affected() == 1, "no manager named {username}");
    Ok(())
}

/// Runs `opsctl manager ...`.
pub async fn run(
    settings: &Settings,
    command: ManagerCommand,
    out: &Output,
) -> anyhow::Result<Outcome> {
    let pool = crate::db::connect(&settings.customer_database_url, "customer_db").await?;
    let password_for = |from_stdin: bool| -> anyhow::Result<(String, bool)> {
        if from_stdin {
            Ok((read_password_from_stdin()?, false))
        } else {
            Ok((generate_password(), true))
        }
    };
    let (username, generated, password) = match command {
        ManagerCommand::Create {
            username,
            roles,
            password_stdin,
        } => {
            let roles: Vec<String> = roles
                .iter()
                .map(|r| r.trim().to_ascii_uppercase())
                .collect();
            let (password, generated) = password_for(password_stdin)?;
            create(&pool, &username, &roles, &password).await?;
            if !out.json() {
                println!("manager {username} created with roles {}", roles.join(","));
            }
            (username, generated, password)
        }
        ManagerCommand::RotatePassword {
            username,
            password_stdin,
        } => {
            let (password, generated) = password_for(password_stdin)?;
            rotate_password(&pool, &username, &password).await?;
            if !out.json() {
                println!("password of {username} changed");
            }
            (username, generated, password)
        }
    };
    if out.json() {
        let mut value = serde_json::json!({ "username": username, "ok": true });
        if generated {
            value["generatedPassword"] = serde_json::Value::String(password);
        }
        out.print_json(&value)?;
    } else if generated {
        println!("generated password (shown once): {password}");
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::auth::verify_password;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let hash = hash_password("s3cret-pass").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("s3cret-pass", &hash));
        assert!(!verify_password("other-pass", &hash));
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
