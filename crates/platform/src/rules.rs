//! Request constraints in one place: the validators of the services check values with
//! these rules and the OpenAPI schemas are built from the same rules, so a limit cannot
//! change in one without the other.
//!
//! - [`Text`]: a string's length (in characters, as JSON Schema counts them), whether it
//!   may be blank, and an optional pattern. No text may hold NUL: PostgreSQL cannot
//!   store it.
//! - [`Int`]: an integer's range.
//! - [`string_schema`] and friends: the schemas of plain values (UUIDs, booleans).

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Object, RefOr, Schema};

/// What `char::is_whitespace` (Unicode `White_Space`) counts as blank, as the body of a
/// regex character class. Spelled out rather than `\s`, which ECMA, Python and Rust
/// regexes each read differently. A macro so that patterns can `concat!` it.
macro_rules! whitespace {
    () => {
        "\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
    };
}
const WHITESPACE: &str = whitespace!();

/// Idempotency keys (`Idempotency-Key` headers, and the gateway's `paymentKey` that
/// names one): 1 to 255 visible ASCII characters, spaces only inside. That is what a
/// header value carries as text once trimmed, and what the key columns hold.
pub const IDEMPOTENCY_KEY: Text = Text::non_blank(1, 255).with_pattern(Pattern {
    regex: "^[\\u0021-\\u007E]([\\u0020-\\u007E]*[\\u0021-\\u007E])?$",
    matches: |key| {
        key.bytes().all(|b| (0x20..=0x7E).contains(&b))
            && !key.starts_with(' ')
            && !key.ends_with(' ')
    },
    message: "must be 1 to 255 visible ASCII characters, without spaces at either end",
});

/// E-mail addresses as [`is_email`] reads them, as a regex.
pub const EMAIL_REGEX: &str = concat!(
    "^[^\\u0000",
    whitespace!(),
    "]+@[^\\u0000",
    whitespace!(),
    "@.]([^\\u0000",
    whitespace!(),
    "@]*[^\\u0000",
    whitespace!(),
    "@.])?$"
);

/// Whether `value` looks like an e-mail address: something before the last `@`, a
/// domain after it that neither starts nor ends with a dot, and no whitespace.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

/// A pattern both as a regex (for the schema) and as the check the service runs.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    /// ECMA regex; it must exclude NUL and blank values itself.
    pub regex: &'static str,
    /// The same rule in Rust.
    pub matches: fn(&str) -> bool,
    /// What a client is told when a value does not match.
    pub message: &'static str,
}

/// Why a text broke its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextViolation {
    /// Empty or only whitespace where a value is required.
    Blank,
    /// Fewer than `min` or more than `max` characters.
    Length,
    /// Does not match the pattern, or holds NUL.
    Pattern,
}

/// A text field's rule.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub min: usize,
    pub max: usize,
    /// Whether a value of only whitespace is accepted.
    pub blank_ok: bool,
    pub pattern: Option<Pattern>,
}

impl Text {
    /// A required, non-blank text of `min` to `max` characters.
    pub const fn non_blank(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            blank_ok: false,
            pattern: None,
        }
    }

    /// Any text of at most `max` characters.
    pub const fn up_to(max: usize) -> Self {
        Self {
            min: 0,
            max,
            blank_ok: true,
            pattern: None,
        }
    }

    /// Any text without NUL: for values the service only compares or logs.
    pub const fn any() -> Self {
        Self::up_to(usize::MAX)
    }

    /// This rule with `pattern` on top.
    pub const fn with_pattern(mut self, pattern: Pattern) -> Self {
        self.pattern = Some(pattern);
        self
    }

    /// Checks `value`; blankness first, then length, then the pattern.
    pub fn check(&self, value: &str) -> Result<(), TextViolation> {
        if !self.blank_ok && value.chars().all(char::is_whitespace) {
            return Err(TextViolation::Blank);
        }
        let len = value.chars().count();
        if len < self.min || len > self.max {
            return Err(TextViolation::Length);
        }
        if value.contains('\0') || self.pattern.is_some_and(|p| !(p.matches)(value)) {
            return Err(TextViolation::Pattern);
        }
        Ok(())
    }

    /// The regex the schema carries: the pattern's own, or "no NUL" (and "not blank").
    fn regex(&self) -> String {
        match (self.pattern, self.blank_ok) {
            (Some(p), _) => p.regex.to_owned(),
            (None, true) => "^[^\\u0000]*$".to_owned(),
            (None, false) => format!("^[^\\u0000]*[^\\u0000{WHITESPACE}][^\\u0000]*$"),
        }
    }

    fn builder(&self, nullable: bool) -> ObjectBuilder {
        let kind = if nullable {
            utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null])
        } else {
            utoipa::openapi::schema::SchemaType::new(Type::String)
        };
        ObjectBuilder::new()
            .schema_type(kind)
            .min_length((self.min > 0).then_some(self.min))
            .max_length((self.max < usize::MAX).then_some(self.max))
            .pattern(Some(self.regex()))
    }

    /// Schema of a value that must be a string.
    pub fn schema(&self) -> Object {
        self.builder(false).build()
    }

    /// Schema of a value that may also be `null` (meaning "absent").
    pub fn nullable_schema(&self) -> Object {
        self.builder(true).build()
    }
}

/// An integer's inclusive range.
#[derive(Debug, Clone, Copy)]
pub struct Int {
    pub min: i64,
    pub max: i64,
}

impl Int {
    /// Whether `value` is in range.
    pub fn contains(&self, value: i64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    fn builder(&self, nullable: bool) -> ObjectBuilder {
        let kind = if nullable {
            utoipa::openapi::schema::SchemaType::from_iter([Type::Integer, Type::Null])
        } else {
            utoipa::openapi::schema::SchemaType::new(Type::Integer)
        };
        let format = if self.min >= i64::from(i32::MIN) && self.max <= i64::from(i32::MAX) {
            KnownFormat::Int32
        } else {
            KnownFormat::Int64
        };
        ObjectBuilder::new()
            .schema_type(kind)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .minimum(Some(self.min))
            .maximum(Some(self.max))
    }

    /// Schema of a value that must be an integer in range.
    pub fn schema(&self) -> Object {
        self.builder(false).build()
    }

    /// Schema of an integer in range, or `null`.
    pub fn nullable_schema(&self) -> Object {
        self.builder(true).build()
    }
}

/// Quantities and stock counts: what an `INTEGER` column holds, from `min`.
pub const fn count_from(min: i64) -> Int {
    Int {
        min,
        max: i32::MAX as i64,
    }
}

/// Schema of a UUID string, nullable or not.
pub fn uuid_schema(nullable: bool) -> Object {
    typed(Type::String, nullable)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .build()
}

/// Schema of a boolean, nullable or not.
pub fn boolean_schema(nullable: bool) -> Object {
    typed(Type::Boolean, nullable).build()
}

fn typed(kind: Type, nullable: bool) -> ObjectBuilder {
    if nullable {
        ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            kind,
            Type::Null,
        ]))
    } else {
        ObjectBuilder::new().schema_type(kind)
    }
}

/// `object` as a schema reference-or-value, for builders that want one.
pub fn inline(object: Object) -> RefOr<Schema> {
    RefOr::T(Schema::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_long_and_nul_texts_break_their_rule_and_others_pass() {
        let name = Text::non_blank(1, 3);
        assert_eq!(name.check(" \u{3000}"), Err(TextViolation::Blank));
        assert_eq!(name.check("abcd"), Err(TextViolation::Length));
        assert_eq!(name.check("a\0"), Err(TextViolation::Pattern));
        assert_eq!(name.check("äöü"), Ok(()));
        assert_eq!(Text::up_to(5).check("  "), Ok(()));
    }

    #[test]
    fn the_schema_carries_the_rules_limits() {
        let schema = serde_json::to_value(Text::non_blank(2, 100).schema()).unwrap_or_default();
        assert_eq!(schema["minLength"], 2);
        assert_eq!(schema["maxLength"], 100);
        assert_eq!(schema["type"], "string");
        let nullable = serde_json::to_value(count_from(1).nullable_schema()).unwrap_or_default();
        assert_eq!(nullable["type"], serde_json::json!(["integer", "null"]));
        assert_eq!(nullable["minimum"], 1);
        assert_eq!(nullable["maximum"], 2147483647);
    }
}
