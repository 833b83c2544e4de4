//! One directory entry as read from an LDIF file or a live search: its DN and the values of
//! the attribute types the mapping and the filters need (nothing else is kept).
//!
//! An LDIF entry borrows its DN, descriptions and plain values from the file's bytes (only
//! folded lines and base64 values are copied), so a 100k-user export is read without an
//! allocation per value; an entry from a live directory owns them.

use std::borrow::Cow;

use super::filter::{AttrDesc, Values};

/// An attribute value: (description as written, value). A description is short and
/// repeats, so one that is not in the file's bytes as written (a folded line) is interned.
pub type Attr<'a> = (&'a str, Cow<'a, [u8]>);

/// An entry: DN, and (description as written, value) pairs in the order read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The line of its `dn:` in an LDIF file; 0 for an entry from a live directory.
    pub line: u64,
    pub dn: Cow<'a, str>,
    /// Exactly as many as read: one allocation per entry, never grown.
    pub attrs: Box<[Attr<'a>]>,
}

impl<'a> Entry<'a> {
    /// The values stored under exactly `ty` (any case), without options: a mapped attribute
    /// is that type alone (contract §12).
    pub fn values_of<'s>(&'s self, ty: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.attrs
            .iter()
            .filter(move |(d, _)| d.eq_ignore_ascii_case(ty))
            .map(|(_, v)| &**v)
    }

    /// Where the entry is, for messages: its line, else its DN.
    pub fn place(&self) -> String {
        if self.line > 0 {
            format!("line {}", self.line)
        } else {
            format!("entry `{}`", self.dn)
        }
    }
}

impl Values for Entry<'_> {
    fn any_value(&self, attr: &AttrDesc, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.attrs.iter().any(|(d, v)| attr.covers(d) && f(v))
    }
}

/// The attribute types a reader keeps, in lower case: few, so a list beats a set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted(Vec<String>);

impl Wanted {
    pub fn new(types: impl IntoIterator<Item = String>) -> Self {
        let mut v: Vec<String> = types.into_iter().map(|t| t.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        Self(v)
    }

    /// Whether a description (`cn;lang-fr`, any case) is of a kept type.
    pub fn keeps(&self, desc: &str) -> bool {
        let ty = desc.split(';').next().unwrap_or(desc);
        self.0.iter().any(|w| w.eq_ignore_ascii_case(ty))
    }

    pub fn types(&self) -> &[String] {
        &self.0
    }
}
