//! The credential a session carries: an ordered map from attribute name (compared
//! case-insensitively, spelled as first written) to a string or a list of strings.
//!
//! A credential is one immutable byte string behind an `Arc`, so the sessions of a user share
//! it, cloning is a reference count, equality is a byte comparison, and a refresh merges two
//! credentials by copying whole attribute entries. Attribute names and list elements (group
//! names) are interned [`Sym`]s; single values are stored inline.
//!
//! Encoding (LEB128 varints): `count`, then per attribute `name-sym`, a tag, and the value:
//! tag 0 `len bytes` (a string), tag 1 `n sym…` (a list of interned strings).

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::intern::{self, Sym, canonical, intern, resolve};

pub const PRINCIPAL_NAME: &str = "AZN_CRED_PRINCIPAL_NAME";
pub const GROUPS: &str = "AZN_CRED_GROUPS";
pub const AUTH_METHOD: &str = "AZN_CRED_AUTH_METHOD";

const TAG_STR: u8 = 0;
const TAG_LIST: u8 = 1;

/// An owned attribute value: one string or a list of strings.
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

fn put_varint(out: &mut Vec<u8>, v: u32) {
    crate::leb128::put(out, u64::from(v));
}

/// Reads a varint at `*pos`; a malformed blob reads as 0 (blobs are only made here).
fn get_varint(b: &[u8], pos: &mut usize) -> u32 {
    u32::try_from(crate::leb128::get(b, pos)).unwrap_or(0)
}

/// A borrowed attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    Str(&'a str),
    /// A list of interned strings, still encoded: `n sym…`.
    List(ListRef<'a>),
}

/// An encoded list of syms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRef<'a> {
    bytes: &'a [u8],
    len: u32,
}

impl<'a> ListRef<'a> {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn syms(&self) -> impl Iterator<Item = Sym> + 'a {
        let bytes = self.bytes;
        let mut pos = 0;
        (0..self.len).map(move |_| Sym(get_varint(bytes, &mut pos)))
    }

    pub fn strs(&self) -> impl Iterator<Item = &'static str> + 'a {
        self.syms().map(resolve)
    }
}

impl ValueRef<'_> {
    pub fn to_owned(&self) -> AttrValue {
        match self {
            ValueRef::Str(s) => AttrValue::One((*s).to_owned()),
            ValueRef::List(l) => AttrValue::Many(l.strs().map(str::to_owned).collect()),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            ValueRef::Str(s) => Some(s),
            ValueRef::List(_) => None,
        }
    }
}

/// One attribute of an encoded credential. The value is decoded on demand: a merge only
/// copies whole entries and never needs it.
#[derive(Debug, Clone, Copy)]
pub struct AttrRef<'a> {
    pub name: Sym,
    tag: u8,
    /// The encoded value: `len bytes` or `n sym…` without the leading number.
    payload: &'a [u8],
    count: u32,
    /// The whole encoded entry (name, tag and value), for copying into another credential.
    pub raw: &'a [u8],
}

impl<'a> AttrRef<'a> {
    pub fn value(&self) -> ValueRef<'a> {
        if self.tag == TAG_LIST {
            ValueRef::List(ListRef {
                bytes: self.payload,
                len: self.count,
            })
        } else {
            // Blobs are built from `&str`s or checked on load.
            ValueRef::Str(std::str::from_utf8(self.payload).unwrap_or(""))
        }
    }
}

impl AttrRef<'_> {
    pub fn name_str(&self) -> &'static str {
        resolve(self.name)
    }

    /// The sym two names share when they differ only in case.
    pub fn key(&self) -> Sym {
        canonical(self.name)
    }
}

/// Iterates the attributes of a credential in order.
pub struct Attrs<'a> {
    bytes: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = AttrRef<'a>;

    fn next(&mut self) -> Option<AttrRef<'a>> {
        if self.left == 0 || self.pos >= self.bytes.len() {
            return None;
        }
        self.left -= 1;
        let b = self.bytes;
        let start = self.pos;
        let name = Sym(get_varint(b, &mut self.pos));
        let tag = b.get(self.pos).copied().unwrap_or(TAG_STR);
        self.pos += 1;
        let (payload, count) = if tag == TAG_LIST {
            let n = get_varint(b, &mut self.pos);
            let list_start = self.pos;
            for _ in 0..n {
                get_varint(b, &mut self.pos);
            }
            (&b[list_start.min(b.len())..self.pos.min(b.len())], n)
        } else {
            let len = get_varint(b, &mut self.pos) as usize;
            let end = (self.pos + len).min(b.len());
            let s = &b[self.pos.min(end)..end];
            self.pos = end;
            (s, 0)
        };
        Some(AttrRef {
            name,
            tag,
            payload,
            count,
            raw: &b[start..self.pos.min(b.len())],
        })
    }
}

/// A credential: attributes in order, names unique under case folding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credential(Arc<[u8]>);

impl Default for Credential {
    fn default() -> Self {
        Self(Arc::from(&[0u8][..]))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|a| (a.name_str(), a.value().to_owned())))
            .finish()
    }
}

/// Builds a credential attribute by attribute.
#[derive(Default)]
pub struct CredentialBuilder {
    body: Vec<u8>,
    keys: Vec<Sym>,
}

impl CredentialBuilder {
    pub fn with_capacity(attrs: usize, bytes: usize) -> Self {
        Self {
            body: Vec::with_capacity(bytes),
            keys: Vec::with_capacity(attrs),
        }
    }

    fn claim(&mut self, name: Sym) -> Result<(), DuplicateAttr> {
        let key = canonical(name);
        if self.keys.contains(&key) {
            return Err(DuplicateAttr(resolve(name).to_owned()));
        }
        self.keys.push(key);
        Ok(())
    }

    pub fn push_str(&mut self, name: &str, value: &str) -> Result<(), DuplicateAttr> {
        self.push_str_sym(intern(name), value)
    }

    /// As [`CredentialBuilder::push_str`], with the name already interned: for building many
    /// credentials with the same names.
    pub fn push_str_sym(&mut self, name: Sym, value: &str) -> Result<(), DuplicateAttr> {
        self.claim(name)?;
        put_varint(&mut self.body, name.0);
        self.body.push(TAG_STR);
        put_varint(&mut self.body, value.len() as u32);
        self.body.extend_from_slice(value.as_bytes());
        Ok(())
    }

    pub fn push_list<'s>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = &'s str>,
    ) -> Result<(), DuplicateAttr> {
        let syms: Vec<Sym> = values.into_iter().map(intern).collect();
        self.push_list_syms(intern(name), &syms)
    }

    /// A list attribute whose name and values are already interned.
    pub fn push_list_syms(&mut self, name: Sym, values: &[Sym]) -> Result<(), DuplicateAttr> {
        self.claim(name)?;
        put_varint(&mut self.body, name.0);
        self.body.push(TAG_LIST);
        put_varint(&mut self.body, values.len() as u32);
        for s in values {
            put_varint(&mut self.body, s.0);
        }
        Ok(())
    }

    pub fn push(&mut self, name: &str, value: &AttrValue) -> Result<(), DuplicateAttr> {
        match value {
            AttrValue::One(s) => self.push_str(name, s),
            AttrValue::Many(v) => self.push_list(name, v.iter().map(String::as_str)),
        }
    }

    /// Copies an encoded attribute whose name the caller knows is new.
    pub fn push_raw(&mut self, attr: &AttrRef<'_>) {
        self.push_encoded(attr.key(), attr.raw);
    }

    /// Copies an encoded attribute entry (`raw`, from [`AttrRef::raw`]) with its name's key.
    pub fn push_encoded(&mut self, key: Sym, raw: &[u8]) {
        self.keys.push(key);
        self.body.extend_from_slice(raw);
    }

    /// Whether what is built so far encodes exactly `c`.
    pub fn same_as(&self, c: &Credential) -> bool {
        let bytes = c.bytes();
        let mut pos = 0;
        let count = get_varint(bytes, &mut pos) as usize;
        count == self.keys.len() && bytes[pos..] == self.body[..]
    }

    pub fn build(&self) -> Credential {
        let mut out = Vec::with_capacity(self.body.len() + 2);
        put_varint(&mut out, self.keys.len() as u32);
        out.extend_from_slice(&self.body);
        Credential(Arc::from(out))
    }

    /// Empties the builder for reuse.
    pub fn clear(&mut self) {
        self.body.clear();
        self.keys.clear();
    }
}

impl Credential {
    pub fn new() -> Self {
        Self::default()
    }

    /// A credential from owned attributes; a name given twice (in any case) is an error.
    pub fn from_attrs<'a>(
        attrs: impl IntoIterator<Item = (&'a str, &'a AttrValue)>,
    ) -> Result<Self, DuplicateAttr> {
        let mut b = CredentialBuilder::default();
        for (name, value) in attrs {
            b.push(name, value)?;
        }
        Ok(b.build())
    }

    /// The encoded form.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether two credentials share one allocation.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    pub fn iter(&self) -> Attrs<'_> {
        let mut pos = 0;
        let left = get_varint(&self.0, &mut pos);
        Attrs {
            bytes: &self.0,
            pos,
            left,
        }
    }

    pub fn len(&self) -> usize {
        let mut pos = 0;
        get_varint(&self.0, &mut pos) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The attribute named `name` (any case).
    pub fn attr(&self, name: &str) -> Option<AttrRef<'_>> {
        let key = canonical(intern::get(name).or_else(|| intern::get(&crate::fold::fold(name)))?);
        self.iter().find(|a| a.key() == key)
    }

    /// The value of `name` (any case), owned.
    pub fn get(&self, name: &str) -> Option<AttrValue> {
        self.attr(name).map(|a| a.value().to_owned())
    }

    /// The value of `name` when it is a single string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.attr(name)?.value() {
            ValueRef::Str(s) => Some(s),
            ValueRef::List(_) => None,
        }
    }

    /// The groups (`AZN_CRED_GROUPS`), empty when absent.
    pub fn groups(&self) -> Vec<&'static str> {
        match self.attr(GROUPS).map(|a| a.value()) {
            Some(ValueRef::List(l)) => l.strs().collect(),
            Some(ValueRef::Str(s)) => vec![intern::resolve(intern(s))],
            None => Vec::new(),
        }
    }

    /// Heap bytes held by this credential (shared between its holders).
    pub fn heap_bytes(&self) -> usize {
        self.0.len() + 16
    }

    /// The address of the shared bytes: equal for credentials that share one allocation.
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// The encoding with every sym passed through `map` (for snapshots, whose syms are
    /// numbered per file).
    pub fn remapped(&self, map: impl FnMut(Sym) -> u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len());
        let mut map = map;
        // A blob made here is always well-formed.
        let _ = remap(&self.0, |s, _| Ok(Sym(map(Sym(s)))), &mut out);
        out
    }

    /// A credential from an encoding whose syms are numbered by `syms` (file-local), checking
    /// every length, index and string: a corrupted blob is an error, never a panic.
    pub fn from_remapped(bytes: &[u8], syms: &[Sym]) -> Result<Self, &'static str> {
        let mut out = Vec::with_capacity(bytes.len() + 8);
        // Names must stay unique under case folding: checked as they are read.
        let mut keys: SmallVec<[Sym; 24]> = SmallVec::new();
        let map = |s: u32, is_name: bool| {
            if !is_name {
                return syms.get(s as usize).copied().ok_or("unknown value");
            }
            let sym = *syms.get(s as usize).ok_or("unknown name")?;
            let key = canonical(sym);
            if keys.contains(&key) {
                return Err("an attribute is given twice");
            }
            keys.push(key);
            Ok(sym)
        };
        remap(bytes, map, &mut out)?;
        Ok(Credential(Arc::from(out)))
    }
}

/// Rewrites an encoding through a sym map, validating its structure; `map` is told whether
/// the sym is an attribute's name (true) or one of a list's values.
fn remap(
    b: &[u8],
    mut map: impl FnMut(u32, bool) -> Result<Sym, &'static str>,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    fn varint(b: &[u8], pos: &mut usize) -> Result<u32, &'static str> {
        let mut v: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = *b.get(*pos).ok_or("truncated")?;
            *pos += 1;
            v |= u32::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or("bad number")?;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("bad number")
    }
    let mut pos = 0;
    let count = varint(b, &mut pos)?;
    put_varint(out, count);
    for _ in 0..count {
        let name = map(varint(b, &mut pos)?, true)?;
        put_varint(out, name.0);
        let tag = *b.get(pos).ok_or("truncated")?;
        pos += 1;
        out.push(tag);
        match tag {
            TAG_STR => {
                let len = varint(b, &mut pos)? as usize;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated")?;
                std::str::from_utf8(&b[pos..end]).map_err(|_| "a value is not UTF-8")?;
                put_varint(out, len as u32);
                out.extend_from_slice(&b[pos..end]);
                pos = end;
            }
            TAG_LIST => {
                let n = varint(b, &mut pos)?;
                put_varint(out, n);
                for _ in 0..n {
                    let s = map(varint(b, &mut pos)?, false)?;
                    put_varint(out, s.0);
                }
            }
            _ => return Err("unknown value kind"),
        }
    }
    if pos == b.len() {
        Ok(())
    } else {
        Err("trailing bytes")
    }
}

struct Syms<'a>(ListRef<'a>);

impl Serialize for Syms<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0.strs() {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for a in self.iter() {
            match a.value() {
                ValueRef::Str(v) => map.serialize_entry(a.name_str(), v)?,
                ValueRef::List(l) => map.serialize_entry(a.name_str(), &Syms(l))?,
            }
        }
        map.end()
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

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Credential;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to strings or lists of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credential, A::Error> {
                let mut b = CredentialBuilder::with_capacity(16, 256);
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value = map.next_value::<AttrValue>()?;
                    b.push(&name, &value).map_err(de::Error::custom)?;
                }
                Ok(b.build())
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
            Some(AttrValue::One("1".into()))
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
        assert_eq!(c.get("n"), Some(AttrValue::One("1".into())));
        assert_eq!(
            c.get("l"),
            Some(AttrValue::Many(vec!["1".into(), "x".into()]))
        );
        assert!(serde_json::from_str::<Credential>(r#"{"l":[["x"]]}"#).is_err());
        assert!(serde_json::from_str::<Credential>(r#"{"l":null}"#).is_err());
    }

    #[test]
    fn encoding_round_trips_long_values_and_many_attributes() {
        let long = "v".repeat(70_000);
        let mut b = CredentialBuilder::default();
        for i in 0..300 {
            b.push_str(&format!("attr{i}"), if i == 7 { &long } else { "x" })
                .unwrap();
        }
        b.push_list("list", ["g1", "g2", "ß"]).unwrap();
        let c = b.build();
        assert_eq!(c.len(), 301);
        assert_eq!(c.get_str("ATTR7").map(str::len), Some(70_000));
        assert_eq!(
            c.get("list"),
            Some(AttrValue::Many(vec!["g1".into(), "g2".into(), "ß".into()]))
        );
        let json = serde_json::to_string(&c).unwrap();
        let back: Credential = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert_eq!(Credential::new().len(), 0);
        assert!(Credential::new().get("x").is_none());
    }
}
