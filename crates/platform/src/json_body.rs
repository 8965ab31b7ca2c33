//! How a parsed JSON body is handed to a request type: a deserializer over
//! [`serde_json::Value`] that
//!
//! - refuses NUL (`\u0000`) only in the strings the request type reads, because
//!   PostgreSQL cannot store it; properties the type ignores may hold anything, as they
//!   always could (unknown properties are ignored, as the original's Jackson does);
//! - reads a whole number written with a zero fraction (`5.0`, `1e2`) as an integer, as
//!   JSON Schema and Jackson do.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

type Error = serde_json::Error;

/// Message of a NUL found in a string the request reads.
pub const NUL_MESSAGE: &str = "must not contain NUL (\\u0000) characters";

/// Deserializes from a borrowed value, with the rules above.
pub struct Guarded<'a>(pub &'a Value);

impl Guarded<'_> {
    /// The number as an `i64` when it is a whole one written as a float.
    fn whole_float(&self) -> Option<i64> {
        let f = self.0.as_f64().filter(|_| self.0.is_f64())?;
        // 2^63 is exactly representable; anything from there up does not fit.
        let fits = (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f);
        (f.fract() == 0.0 && fits).then_some(f as i64)
    }
}

macro_rules! integers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.whole_float() {
                Some(n) => visitor.visit_i64(n),
                None => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Guarded<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) if s.contains('\0') => Err(de::Error::custom(NUL_MESSAGE)),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Seq(items.iter())),
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => de::Deserializer::deserialize_any(other, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Variant names are fixed words: NUL can only make them unknown.
        de::Deserializer::deserialize_enum(self.0, name, variants, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // serde would also fill a struct from an array of its fields in order; a body
        // is an object.
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            other => Err(de::Error::invalid_type(unexpected(other), &"an object")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    integers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
              deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map identifier
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Guarded(item)))
            .transpose()
    }
}

struct Fields<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            entries: map.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(de::value::BorrowedStrDeserializer::<Error>::new(key))
                    .map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("value requested before its key"))?;
        seed.deserialize(Guarded(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Line {
        name: Option<String>,
        quantity: Option<i64>,
        tags: Vec<String>,
    }

    fn parse(json: &str) -> Result<Line, Error> {
        let value: Value = serde_json::from_str(json)?;
        Line::deserialize(Guarded(&value))
    }

    #[test]
    fn nul_is_refused_where_the_type_reads_it_and_ignored_elsewhere() {
        assert!(parse(r#"{"name":"a\u0000","tags":[]}"#).is_err());
        assert!(parse(r#"{"tags":["\u0000"]}"#).is_err());
        let line = parse(r#"{"name":"a","tags":[],"x\u0000":{"y":"\u0000"}}"#);
        assert_eq!(line.ok().and_then(|l| l.name), Some("a".to_owned()));
    }

    #[test]
    fn whole_floats_read_as_integers_and_fractions_do_not() {
        let line = parse(r#"{"quantity":5.0,"tags":[]}"#);
        assert_eq!(line.ok().and_then(|l| l.quantity), Some(5));
        assert!(parse(r#"{"quantity":5.5,"tags":[]}"#).is_err());
        assert!(parse(r#"{"quantity":1e300,"tags":[]}"#).is_err());
    }
}
