//! Field validation of request bodies: one message per field, the original's wording.

use crate::error::Error;
use platform::FieldErrors;

/// Collects field errors; the first message of a field wins.
#[derive(Debug, Default)]
pub struct Validator {
    errors: FieldErrors,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, field: &str, ok: bool, message: &str) -> &mut Self {
        if !ok {
            self.errors
                .entry(field.to_owned())
                .or_insert_with(|| message.to_owned());
        }
        self
    }

    /// A required text: present and not blank (`required`), at most `max` characters
    /// and at least `min` (`length`).
    pub fn required_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        (min, max): (usize, usize),
        required: &str,
        length: &str,
    ) -> &mut Self {
        match value {
            None => self.check(field, false, required),
            Some(v) if v.trim().is_empty() => self.check(field, false, required),
            Some(v) => {
                let len = v.chars().count();
                self.check(field, (min..=max).contains(&len), length)
            }
        }
    }

    /// An optional text of at most `max` characters (and at least `min` when given).
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        (min, max): (usize, usize),
        length: &str,
    ) -> &mut Self {
        match value {
            None => self,
            Some(v) => {
                let len = v.chars().count();
                self.check(field, (min..=max).contains(&len), length)
            }
        }
    }

    /// `Ok` when no field failed, else a 400 validation-failed.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

/// Parses a path or query id; a malformed one reads as not found, as the original does.
pub fn path_id(raw: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| Error::NotFound(format!("Resource not found with id: {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_of_a_field_wins_and_lengths_count_characters() {
        let mut v = Validator::new();
        v.required_text("name", Some("  "), (1, 3), "Name is required", "Too long")
            .required_text("name", Some("abcd"), (1, 3), "Name is required", "Too long")
            .required_text("city", Some("äöü"), (1, 3), "City is required", "Too long");
        let Err(Error::Validation(errors)) = v.finish() else {
            panic!("validation error expected")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors["name"], "Name is required");
    }
}
