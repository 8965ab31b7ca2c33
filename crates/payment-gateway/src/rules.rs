//! What the fields of a charge or refund request may hold: the checks the handlers make,
//! and the schemas the request types document them with.

use platform::rules::{Pattern, Text};
use rust_decimal::Decimal;

/// Largest amount a ledger column (`NUMERIC(12, 2)`) holds.
pub fn max_amount() -> Decimal {
    Decimal::new(999_999_999_999, 2)
}

/// Order numbers a charge may carry.
pub const ORDER_NUMBER: Text = Text::up_to(100);
/// Why a refund was asked for.
pub const REFUND_REASON: Text = Text::up_to(500);
/// Currency codes: three ASCII letters.
pub const CURRENCY: Text = Text::non_blank(3, 3).with_pattern(Pattern {
    regex: "^[A-Za-z]{3}$",
    matches: |c| c.bytes().all(|b| b.is_ascii_alphabetic()),
    message: "Currency must be a 3-letter ISO code",
});

/// Schemas of the request fields, from the rules the handlers check.
pub mod schema {
    use super::{max_amount, CURRENCY, ORDER_NUMBER, REFUND_REASON};
    use platform::rules::{self, Text};
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::Object;

    fn amount_schema(kind: SchemaType) -> Object {
        use rust_decimal::prelude::ToPrimitive;
        ObjectBuilder::new()
            .schema_type(kind)
            .exclusive_minimum(Some(0))
            .maximum(max_amount().to_f64())
            .multiple_of(Some(0.01))
            .description(Some("At most two decimals"))
            .examples([299.98])
            .build()
    }
    pub fn amount() -> Object {
        amount_schema(SchemaType::new(Type::Number))
    }
    pub fn amount_or_null() -> Object {
        amount_schema(SchemaType::from_iter([Type::Number, Type::Null]))
    }
    pub fn order_number() -> Object {
        ORDER_NUMBER.nullable_schema()
    }
    pub fn currency() -> Object {
        CURRENCY.nullable_schema()
    }
    pub fn customer_email() -> Object {
        Text::any().nullable_schema()
    }
    pub fn payment_key() -> Object {
        rules::IDEMPOTENCY_KEY.schema()
    }
    pub fn reason() -> Object {
        REFUND_REASON.nullable_schema()
    }
}

/// Why `amount` cannot be charged or refunded, if it cannot.
pub fn amount_error(amount: Decimal) -> Option<String> {
    if amount <= Decimal::ZERO {
        Some("Amount must be greater than 0".into())
    } else if amount.normalize().scale() > 2 {
        Some("Amount must have at most 2 decimal places".into())
    } else if amount > max_amount() {
        Some(format!("Amount must be at most {}", max_amount()))
    } else {
        None
    }
}
