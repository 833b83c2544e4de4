//! The credential a session carries: an ordered map from attribute name (compared
//! case-insensitively, spelled as first written) to a string or a list of strings.
//!
//! Credentials hold a dozen or two attributes, so a `Vec` scanned linearly is both smaller
//! and faster than a hash map; sessions of one user share one credential through an `Arc`.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::fold::eq_folded;

pub const PRINCIPAL_NAME: &str = "AZN_CRED_PRINCIPAL_NAME";
pub const GROUPS: &str = "AZN_CRED_GROUPS";
pub const AUTH_METHOD: &str = "AZN_CRED_AUTH_METHOD";

/// An attribute value: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    One(String),
    Many(Vec<String>),
}

impl AttrValue {
    /// The value as a single string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::One(s) => Some(s),
            AttrValue::Many(_) => None,
        }
    }
}

/// One credential attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub name: String,
    pub value: AttrValue,
}

/// A credential: attributes in order, names unique under case folding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credential {
    attrs: Vec<Attr>,
}

/// Two attributes whose names differ only in case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateAttr(pub String);

impl fmt::Display for DuplicateAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the attribute `{}` is given twice (names compare case-insensitively)",
            self.0
        )
    }
}

impl Credential {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            attrs: Vec::with_capacity(n),
        }
    }

    /// Adds an attribute; a name already present (in any case) is an error.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: AttrValue,
    ) -> Result<(), DuplicateAttr> {
        let name = name.into();
        if self.get(&name).is_some() {
            return Err(DuplicateAttr(name));
        }
        self.attrs.push(Attr { name, value });
        Ok(())
    }

    /// Adds an attribute the caller knows is absent.
    pub(crate) fn push_unchecked(&mut self, attr: Attr) {
        self.attrs.push(attr);
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.attr(name).map(|a| &a.value)
    }

    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| eq_folded(&a.name, name))
    }

    pub fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// The groups (`AZN_CRED_GROUPS`), empty when absent.
    pub fn groups(&self) -> &[String] {
        match self.get(GROUPS) {
            Some(AttrValue::Many(g)) => g,
            Some(AttrValue::One(g)) => std::slice::from_ref(g),
            None => &[],
        }
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::One(v) => s.serialize_str(v),
            AttrValue::Many(v) => v.serialize(s),
        }
    }
}

/// Accepts a string, a number or a boolean (kept as written), or a list of those: registry
/// files written by hand say `authentication_level: 1`.
impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttrValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
                Ok(AttrValue::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
                Ok(AttrValue::One(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
                Ok(AttrValue::One(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
                Ok(AttrValue::One(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<AttrValue, E> {
                Ok(AttrValue::One(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
                Ok(AttrValue::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrValue, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(Scalar(v)) = seq.next_element()? {
                    out.push(v);
                }
                Ok(AttrValue::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One list element of an attribute value.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match AttrValue::deserialize(d)? {
            AttrValue::One(s) => Ok(Scalar(s)),
            AttrValue::Many(_) => Err(de::Error::custom(
                "expected a string inside the list, found a nested list",
            )),
        }
    }
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.attrs.len()))?;
        for a in &self.attrs {
            map.serialize_entry(&a.name, &a.value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Credential;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to strings or lists of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credential, A::Error> {
                let mut c = Credential::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(name) = map.next_key::<String>()? {
                    let value = map.next_value::<AttrValue>()?;
                    c.insert(name, value).map_err(de::Error::custom)?;
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively_and_keep_spelling() {
        let c: Credential =
            serde_json::from_str(r#"{"AZN_CRED_GROUPS":["a","b"],"Authentication_Level":"1"}"#)
                .unwrap();
        assert_eq!(c.groups(), ["a", "b"]);
        assert_eq!(
            c.get("authentication_level"),
            Some(&AttrValue::One("1".into()))
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"AZN_CRED_GROUPS":["a","b"],"Authentication_Level":"1"}"#
        );
    }

    #[test]
    fn duplicate_names_in_any_case_are_rejected() {
        let e = serde_json::from_str::<Credential>(r#"{"x":"1","X":"2"}"#).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn scalars_become_strings_and_nested_lists_fail() {
        let c: Credential = serde_json::from_str(r#"{"n":1,"b":true,"l":[1,"x"]}"#).unwrap();
        assert_eq!(c.get("n"), Some(&AttrValue::One("1".into())));
        assert_eq!(
            c.get("l"),
            Some(&AttrValue::Many(vec!["1".into(), "x".into()]))
        );
        assert!(serde_json::from_str::<Credential>(r#"{"l":[["x"]]}"#).is_err());
        assert!(serde_json::from_str::<Credential>(r#"{"l":null}"#).is_err());
    }
}
