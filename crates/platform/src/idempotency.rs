//! Idempotency keys: the `Idempotency-Key` header checked into an [`IdempotencyKey`],
//! and the statements of the `checkout_idempotency` table of `customer_db`, which the
//! customer service claims keys in and `opsctl idempotency` audits and prunes.
//!
//! A key's row is its lock: [`claim`] inserts it (or takes over one that expired), and
//! a second request with the key waits for the first one's transaction only briefly.
//! The reply stored on a key is written by the customer service's checkout, in the same
//! statement that numbers the order.

use crate::rules::{TextViolation, IDEMPOTENCY_KEY};
use chrono::NaiveDateTime;
use http::HeaderMap;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::fmt;

/// The header that makes a request safe to retry.
pub const HEADER: &str = "Idempotency-Key";
/// Longest key (the column's length).
pub const MAX_KEY_CHARS: usize = 255;

/// A checked idempotency key: 1 to [`MAX_KEY_CHARS`] visible ASCII characters, spaces
/// only inside ([`IDEMPOTENCY_KEY`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Why a request carries no usable key; the message names the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    Missing,
    NotPrintable,
    Blank,
    TooLong,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "Missing required header '{HEADER}'"),
            Self::NotPrintable => write!(f, "Header '{HEADER}' must be printable ASCII"),
            Self::Blank => write!(f, "Header '{HEADER}' must not be blank"),
            Self::TooLong => write!(
                f,
                "Header '{HEADER}' must not exceed {MAX_KEY_CHARS} characters"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl IdempotencyKey {
    /// The key `value` holds once trimmed.
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        let key = value.trim();
        match IDEMPOTENCY_KEY.check(key) {
            Ok(()) => Ok(Self(key.to_owned())),
            Err(TextViolation::Blank) => Err(KeyError::Blank),
            Err(TextViolation::Length) => Err(KeyError::TooLong),
            Err(TextViolation::Pattern) => Err(KeyError::NotPrintable),
        }
    }

    /// The key of a request's [`HEADER`].
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, KeyError> {
        let value = headers.get(HEADER).ok_or(KeyError::Missing)?;
        Self::parse(value.to_str().map_err(|_| KeyError::NotPrintable)?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's now (a new key, or one that had expired).
    Claimed,
    /// Another request has the key: the fingerprint of its request, and its stored
    /// reply (status and body) once it completed.
    Taken {
        fingerprint: String,
        response: Option<(i32, String)>,
    },
    /// Another request's transaction holds the key still (or it vanished meanwhile).
    InFlight,
}

/// Claims `key` for a request with `fingerprint` at `at` until `expires_at`, waiting at
/// most `lock_wait` (a PostgreSQL interval such as `500ms`) for another transaction that
/// holds it. The wait stays set for the rest of the transaction: the caller lifts it
/// before its next lock.
pub async fn claim(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    fingerprint: &str,
    at: NaiveDateTime,
    expires_at: NaiveDateTime,
    lock_wait: &str,
) -> sqlx::Result<Claim> {
    // The key's row lock is waited for only `lock_wait`, set in the same statement: the
    // materialized CTE runs before the insert can wait on the row.
    let claimed = sqlx::query_scalar!(
        "WITH wait AS MATERIALIZED (SELECT set_config('lock_timeout', $5, true))
         INSERT INTO checkout_idempotency
             (idempotency_key, request_fingerprint, status, created_at, expires_at)
         SELECT $1, $2, 'IN_PROGRESS', $3, $4 FROM wait
         ON CONFLICT (idempotency_key) DO UPDATE
         SET request_fingerprint = EXCLUDED.request_fingerprint, status = 'IN_PROGRESS',
             response_status = NULL, response_body = NULL,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
         WHERE checkout_idempotency.expires_at <= EXCLUDED.created_at
         RETURNING idempotency_key",
        key.as_str(),
        fingerprint,
        at,
        expires_at,
        lock_wait
    )
    .fetch_optional(&mut *conn)
    .await;
    let claimed = match claimed {
        Err(e) if is_lock_timeout(&e) => return Ok(Claim::InFlight),
        other => other?,
    };
    if claimed.is_some() {
        return Ok(Claim::Claimed);
    }
    let row = sqlx::query!(
        "SELECT request_fingerprint, status, response_status, response_body
         FROM checkout_idempotency WHERE idempotency_key = $1",
        key.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        // Deleted between the insert and the read (cleanup): another try will claim it.
        None => Claim::InFlight,
        Some(row) => Claim::Taken {
            fingerprint: row.request_fingerprint,
            response: match (row.status.as_str(), row.response_status, row.response_body) {
                ("COMPLETED", Some(status), Some(body)) => Some((status, body)),
                _ => None,
            },
        },
    })
}

fn is_lock_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}

/// Deletes the keys that expired by `at`; returns how many.
pub async fn delete_expired(pool: &PgPool, at: NaiveDateTime) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "DELETE FROM checkout_idempotency WHERE expires_at <= $1",
        at
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// One key as an audit lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub idempotency_key: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub response_status: Option<i32>,
}

/// The `limit` most recent keys, newest first.
pub async fn list_recent(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<KeyRecord>> {
    sqlx::query_as!(
        KeyRecord,
        "SELECT idempotency_key, status, created_at, expires_at, response_status
         FROM checkout_idempotency
         ORDER BY created_at DESC LIMIT $1",
        limit
    )
    .fetch_all(pool)
    .await
}

/// How many keys were created before `cutoff`.
pub async fn count_created_before(pool: &PgPool, cutoff: NaiveDateTime) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM checkout_idempotency WHERE created_at < $1"#,
        cutoff
    )
    .fetch_one(pool)
    .await
}

/// Deletes the keys created before `cutoff`; returns how many.
pub async fn delete_created_before(pool: &PgPool, cutoff: NaiveDateTime) -> sqlx::Result<u64> {
    let result = sqlx::query!(
        "DELETE FROM checkout_idempotency WHERE created_at < $1",
        cutoff
    )
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_trimmed_and_checked() {
        assert_eq!(
            IdempotencyKey::parse("  k-1 ").map(|k| k.to_string()),
            Ok("k-1".to_owned())
        );
        assert_eq!(IdempotencyKey::parse("   "), Err(KeyError::Blank));
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(MAX_KEY_CHARS + 1)),
            Err(KeyError::TooLong)
        );
        assert_eq!(
            IdempotencyKey::parse("k\u{7f}"),
            Err(KeyError::NotPrintable)
        );
        assert_eq!(
            IdempotencyKey::from_headers(&HeaderMap::new()),
            Err(KeyError::Missing)
        );
    }
}
