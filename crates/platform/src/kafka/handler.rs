//! What a service's consumer handler is given (a [`Record`]) and how its failures tell
//! the consumer loop what to do: retry ([`HandlerError::Retryable`]), wait out the
//! database's trouble, or dead-letter at once ([`HandlerError::Poison`]).

use futures::future::BoxFuture;
use rdkafka::message::{Headers, Message};

/// A consumed record, detached from the client.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// A header's value as text, if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    pub(super) fn from_message<M: Message>(message: &M) -> Self {
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// What a consumer does with each record.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Why a record could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The record can never succeed (undecodable, invalid): dead-letter it now.
    #[error("{class}: {message}")]
    Poison { class: String, message: String },
    /// It may succeed later (a database blip): retry with backoff, then dead-letter.
    #[error(transparent)]
    Retryable(#[from] anyhow::Error),
}

impl HandlerError {
    pub fn poison(class: &str, message: impl std::fmt::Display) -> Self {
        Self::Poison {
            class: class.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Decodes a JSON record value, or says why it is poison.
pub fn decode<T: serde::de::DeserializeOwned>(record: &Record) -> Result<T, HandlerError> {
    let payload = record
        .payload
        .as_deref()
        .ok_or_else(|| HandlerError::poison("DeserializationException", "record has no value"))?;
    serde_json::from_slice(payload).map_err(|e| HandlerError::poison("DeserializationException", e))
}

/// Maps a database error of a handler working on `database`: data errors can never
/// succeed (poison), the rest may (retryable).
pub fn db_error(database: &'static str) -> impl Fn(sqlx::Error) -> HandlerError {
    move |e| {
        if crate::db::is_data_error(&e) {
            HandlerError::poison("DataIntegrityViolationException", e)
        } else {
            HandlerError::Retryable(anyhow::Error::new(e).context(database))
        }
    }
}

/// Whether a handler's error was caused by a transient database error.
pub fn caused_by_transient_db_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .is_some_and(crate::db::is_transient)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_database_trouble_is_transient() {
        assert!(caused_by_transient_db_error(&anyhow::Error::new(
            sqlx::Error::PoolTimedOut
        )));
        let wrapped = anyhow::Error::new(sqlx::Error::PoolClosed).context("order_db");
        assert!(caused_by_transient_db_error(&wrapped));
        assert!(!caused_by_transient_db_error(&anyhow::Error::new(
            sqlx::Error::RowNotFound
        )));
        assert!(!caused_by_transient_db_error(&anyhow::anyhow!(
            "payment gateway said no"
        )));
    }

    #[test]
    fn an_undecodable_record_is_poison() {
        let record = Record {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(b"{not json".to_vec()),
            headers: Vec::new(),
        };
        assert!(matches!(
            decode::<serde_json::Value>(&record),
            Err(HandlerError::Poison { .. })
        ));
    }
}
