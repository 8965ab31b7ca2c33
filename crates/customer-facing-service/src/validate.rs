//! Field validation of request bodies: one message per field, the original's wording.
//! The limits come from [`platform::rules`], which the OpenAPI schemas are built from too.

use crate::error::Error;
use platform::rules::{Text, TextViolation};
use platform::FieldErrors;

/// Told about a NUL in a field whose rule has no pattern of its own.
const NUL_MESSAGE: &str = "must not contain NUL (\\u0000) characters";

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

    /// A text that must be present: absent or blank is `required`, a length out of the
    /// rule is `length`, and a pattern mismatch is the pattern's message.
    pub fn required_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        rule: &Text,
        required: &str,
        length: &str,
    ) -> &mut Self {
        match value {
            None => self.check(field, false, required),
            Some(v) => self.text(field, v, rule, required, length),
        }
    }

    /// A text that may be absent; present, it follows `rule` (blank counts as `length`).
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        rule: &Text,
        length: &str,
    ) -> &mut Self {
        match value {
            None => self,
            Some(v) => self.text(field, v, rule, length, length),
        }
    }

    fn text(
        &mut self,
        field: &str,
        value: &str,
        rule: &Text,
        blank: &str,
        length: &str,
    ) -> &mut Self {
        match rule.check(value) {
            Ok(()) => self,
            Err(TextViolation::Blank) => self.check(field, false, blank),
            Err(TextViolation::Length) => self.check(field, false, length),
            Err(TextViolation::Pattern) => {
                let message = rule.pattern.map_or(NUL_MESSAGE, |p| p.message);
                self.check(field, false, message)
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
        let rule = Text::non_blank(1, 3);
        let mut v = Validator::new();
        v.required_text("name", Some("  "), &rule, "Name is required", "Too long")
            .required_text("name", Some("abcd"), &rule, "Name is required", "Too long")
            .required_text("city", Some("äöü"), &rule, "City is required", "Too long");
        let Err(Error::Validation(errors)) = v.finish() else {
            panic!("validation error expected")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors["name"], "Name is required");
    }
}
