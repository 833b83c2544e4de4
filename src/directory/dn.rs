//! Distinguished names compared as directories compare them (RFC 4514, contract §12).
//!
//! A member attribute may spell a user's DN differently from the user entry itself
//! (`UID=JohnQ, OU=People,dc=example,dc=com`): attribute types and values compare
//! case-insensitively, values after unescaping (`\,`, `\2C`), without surrounding spaces and
//! with inner runs of spaces as one (the insignificant-space rule of `caseIgnoreMatch`), and
//! the values of a multi-valued RDN (`cn=a+sn=b`) in any order. [`Dn::parse`] turns a DN into
//! one canonical string so that equal DNs are equal strings and "under a base" is a suffix
//! test.

use std::fmt;

use crate::fold::fold;

/// A DN in canonical form: RDNs from the entry up, `type=value` with the value folded and
/// re-escaped, the AVAs of an RDN sorted and joined by `+`, RDNs joined by `,`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dn(String);

/// Why a DN does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnError(pub String);

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Dn {
    /// The root DN (`""`): every entry is under it.
    pub fn root() -> Self {
        Dn(String::new())
    }

    /// Parses a DN string (RFC 4514 §3); the empty string is the root.
    pub fn parse(text: &str) -> Result<Self, DnError> {
        let mut out = String::with_capacity(text.len());
        Self::canonical_into(text, &mut out)?;
        Ok(Dn(out))
    }

    /// Writes the canonical form of `text` into `out` (cleared first): for looking up
    /// hundreds of thousands of member DNs without an allocation each.
    pub fn canonical_into(text: &str, out: &mut String) -> Result<(), DnError> {
        out.clear();
        if !plain(text, out) {
            out.clear();
            out.push_str(&Self::parse_any(text)?.0);
        }
        Ok(())
    }

    /// The general parser: escapes, `#` values, multi-valued RDNs, non-ASCII text.
    fn parse_any(text: &str) -> Result<Self, DnError> {
        let mut rdns: Vec<String> = Vec::new();
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
        };
        p.skip_spaces();
        if p.at_end() {
            return Ok(Self::root());
        }
        loop {
            let mut avas = vec![p.ava()?];
            let more = loop {
                p.skip_spaces();
                match p.peek() {
                    Some(b'+') => {
                        p.i += 1;
                        avas.push(p.ava()?);
                    }
                    Some(b',' | b';') => {
                        p.i += 1;
                        break true;
                    }
                    None => break false,
                    Some(c) => {
                        return Err(DnError(format!(
                            "unexpected `{}` at byte {} (an RDN ends with `,` or `+`)",
                            char::from(c).escape_default(),
                            p.i + 1
                        )));
                    }
                }
            };
            avas.sort();
            rdns.push(avas.join("+"));
            if !more {
                break;
            }
        }
        Ok(Dn(rdns.join(",")))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this DN is `base` or an entry below it (a subtree search's scope).
    pub fn is_under(&self, base: &Dn) -> bool {
        if base.is_root() || self.0 == base.0 {
            return true;
        }
        self.0.len() > base.0.len()
            && self.0.ends_with(&base.0)
            && self.0.as_bytes()[self.0.len() - base.0.len() - 1] == b','
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes the canonical form of a plain DN — ASCII, one value per RDN, nothing to
/// unescape — into `out` in one pass, as [`Dn::parse_any`] would give it; false for
/// anything else (which the general parser then reads, or reports).
fn plain(text: &str, out: &mut String) -> bool {
    let b = text.as_bytes();
    if b.iter()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || b"\\\"+#;<>".contains(c))
    {
        return false;
    }
    for (i, rdn) in text.split(',').enumerate() {
        let Some((ty, value)) = rdn.split_once('=') else {
            return false;
        };
        let ty = ty.trim_matches(' ');
        let valid_type = match ty.as_bytes().first() {
            Some(c) if c.is_ascii_alphabetic() => ty
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.'),
            Some(c) if c.is_ascii_digit() => ty.bytes().all(|c| c.is_ascii_digit() || c == b'.'),
            _ => false,
        };
        if !valid_type {
            return false;
        }
        if i > 0 {
            out.push(',');
        }
        out.extend(ty.bytes().map(|c| char::from(c.to_ascii_lowercase())));
        out.push('=');
        for (j, word) in value.split(' ').filter(|w| !w.is_empty()).enumerate() {
            if j > 0 {
                out.push(' ');
            }
            for c in word.bytes() {
                if c == b'=' {
                    out.push('\\');
                }
                out.push(char::from(c.to_ascii_lowercase()));
            }
        }
    }
    true
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// `type=value`, canonical: the type in lower case, the value folded and escaped.
    fn ava(&mut self) -> Result<String, DnError> {
        self.skip_spaces();
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
                self.i += 1;
            } else {
                break;
            }
        }
        let ty = &self.b[start..self.i];
        let valid_type = match ty.first() {
            Some(c) if c.is_ascii_alphabetic() => true,
            Some(c) if c.is_ascii_digit() => ty.iter().all(|c| c.is_ascii_digit() || *c == b'.'),
            _ => false,
        };
        self.skip_spaces();
        if !valid_type || self.peek() != Some(b'=') {
            return Err(DnError(format!(
                "expected `type=value` at byte {}",
                start + 1
            )));
        }
        self.i += 1;
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') {
            self.hex_value()?
        } else {
            self.string_value()?
        };
        let mut out = String::with_capacity(ty.len() + value.len() + 1);
        out.push_str(&String::from_utf8_lossy(ty).to_ascii_lowercase());
        out.push('=');
        escape_into(&mut out, &normalise(&value));
        Ok(out)
    }

    /// `#` and the hex of a BER value: kept as its hex digits, in lower case.
    fn hex_value(&mut self) -> Result<String, DnError> {
        let start = self.i;
        self.i += 1;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.i += 1;
        }
        let len = self.i - start - 1;
        if len == 0 || !len.is_multiple_of(2) {
            return Err(DnError(format!(
                "a `#` value needs an even number of hex digits (byte {})",
                start + 1
            )));
        }
        Ok(String::from_utf8_lossy(&self.b[start..self.i]).to_ascii_lowercase())
    }

    /// A string value up to an unescaped `,`, `;` or `+`, unescaped; trailing unescaped
    /// spaces are not part of it.
    fn string_value(&mut self) -> Result<String, DnError> {
        let mut bytes: Vec<u8> = Vec::new();
        let mut kept = 0; // length up to the last escaped or non-space byte
        while let Some(c) = self.peek() {
            match c {
                b',' | b';' | b'+' => break,
                b'\\' => {
                    self.i += 1;
                    match (self.peek(), self.b.get(self.i + 1).copied()) {
                        (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                            bytes.push((hex_digit(h) << 4) | hex_digit(l));
                            self.i += 2;
                        }
                        (Some(s), _) if b" \"#+,;<=>\\".contains(&s) => {
                            bytes.push(s);
                            self.i += 1;
                        }
                        _ => {
                            return Err(DnError(format!(
                                "a bad escape `\\` at byte {} (a special character or two hex digits must follow)",
                                self.i
                            )));
                        }
                    }
                    kept = bytes.len();
                }
                b'"' | b'<' | b'>' | 0 => {
                    return Err(DnError(format!(
                        "`{}` must be escaped in a DN value (byte {})",
                        char::from(c).escape_default(),
                        self.i + 1
                    )));
                }
                _ => {
                    bytes.push(c);
                    self.i += 1;
                    if c != b' ' {
                        kept = bytes.len();
                    }
                }
            }
        }
        bytes.truncate(kept);
        String::from_utf8(bytes).map_err(|_| DnError("a DN value is not valid UTF-8".into()))
    }
}

/// The value of an ASCII hex digit (the caller checked it is one).
pub(super) fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Case-folded, with runs of spaces as one and none at either end (`caseIgnoreMatch`):
/// how DN values and, in a file, filter values compare.
pub(super) fn normalise(value: &str) -> String {
    let folded = fold(value);
    let mut out = String::with_capacity(folded.len());
    for word in folded.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Escapes what would make the canonical string ambiguous: the separators, `\`, `=` and
/// control characters.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            ',' | '+' | '\\' | '=' | ';' | '"' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn equal_as_directories_compare() {
        let a = dn("uid=johnq,ou=people,dc=example,dc=com");
        for same in [
            "UID=JohnQ,OU=People,DC=Example,DC=COM",
            " uid = johnq , ou=people,dc=example,dc=com ",
            "uid=john\\71,ou=people;dc=example,dc=com",
            "uid=johnq  ,ou=people,dc=example,dc=com",
        ] {
            assert_eq!(dn(same), a, "{same}");
        }
        assert_ne!(dn("uid=johnq,ou=people,dc=example,dc=org"), a);
        assert_eq!(dn("cn=Mary  Jones,o=x"), dn("cn=mary jones,o=x"));
        assert_eq!(dn("cn=a+sn=b,o=x"), dn("SN=B+cn=A,o=x"));
        assert_eq!(dn("cn=ZOË,o=x"), dn("cn=zoë,o=x"));
        assert_eq!(dn("cn=Smith\\, John,o=x"), dn("cn=smith\\2C john,o=x"));
        assert_ne!(dn("cn=Smith\\, John,o=x"), dn("cn=Smith,cn=John,o=x"));
        assert_eq!(dn("cn=\\ lead,o=x").as_str(), "cn=lead,o=x");
    }

    #[test]
    fn the_plain_path_agrees_with_the_general_parser() {
        for text in [
            "uid=johnq,ou=people,dc=example,dc=com",
            " UID = JohnQ ,  OU=People  ,DC=Example",
            "cn=Mary   Jones,o=x",
            "cn=a=b,o=x",
            "2.5.4.3=X,o=Y",
            "uid=,o=x",
            "cn= spaced  out ,o=x",
        ] {
            let mut out = String::new();
            assert!(plain(text, &mut out), "{text}");
            assert_eq!(out, Dn::parse_any(text).unwrap().0, "{text}");
        }
        for text in [
            "uid",
            "uid=a,",
            "=a",
            "uid=a,,o=x",
            "cn=a+sn=b",
            "cn=\\41",
            "cn=zoë",
        ] {
            assert!(!plain(text, &mut String::new()), "{text}");
        }
    }

    #[test]
    fn under_a_base() {
        let base = dn("ou=People,dc=example,dc=com");
        assert!(dn("uid=a,ou=people,dc=example,dc=com").is_under(&base));
        assert!(dn("ou=people,dc=example,dc=com").is_under(&base));
        assert!(!dn("uid=a,ou=xpeople,dc=example,dc=com").is_under(&base));
        assert!(!dn("dc=example,dc=com").is_under(&base));
        assert!(dn("dc=example,dc=com").is_under(&Dn::root()));
        assert!(dn("").is_root());
    }

    #[test]
    fn bad_dns() {
        for bad in [
            "uid",
            "=x",
            "uid=a,",
            "uid=a\\",
            "uid=a\\zz",
            "uid=#abc",
            "uid=a\"b",
            "1x=a",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
        assert!(Dn::parse("2.5.4.3=x,o=y").is_ok());
        assert!(Dn::parse("cn=#04024869").is_ok());
    }
}
