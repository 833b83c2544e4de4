//! LDAP search filters (RFC 4515): parsed once when `directory.yaml` is read, so a filter
//! that does not parse stops the run before anything changes (contract §12), sent to a live
//! directory in canonical form, and evaluated over the entries of an LDIF file.
//!
//! A file has no schema, so evaluation uses the rule most directory attributes have
//! (`caseIgnoreMatch`, and object classes compare by name the same way): values compare
//! case-folded, with runs of spaces as one and none at either end. `objectClass=x` matches the
//! entries that list `x`, not its subclasses. `~=` is equality; `>=` and `<=` compare numbers
//! as numbers and anything else as folded text. A filter on `cn` also sees `cn;lang-fr`
//! (RFC 4512 §2.5). Extensible matches (`:=`) are for a live directory only.

use std::fmt::{self, Write as _};

use super::dn::hex_digit;
use crate::fold::fold;

/// Filters nest at most this deep: a hostile `directory.yaml` cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// An attribute description: a type and its options (`cn;lang-fr`), in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrDesc {
    pub ty: String,
    pub options: Vec<String>,
    /// As written, for the canonical text.
    written: String,
}

impl AttrDesc {
    /// Parses `type(;option)*`; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(';');
        let ty = parts.next()?;
        let ok_type = match ty.as_bytes().first() {
            Some(c) if c.is_ascii_alphabetic() => {
                ty.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            }
            Some(c) if c.is_ascii_digit() => ty.bytes().all(|c| c.is_ascii_digit() || c == b'.'),
            _ => false,
        };
        let options: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
        let ok_options = options
            .iter()
            .all(|o| !o.is_empty() && o.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
        (ok_type && ok_options).then(|| Self {
            ty: ty.to_ascii_lowercase(),
            options,
            written: text.to_string(),
        })
    }

    /// Whether a stored attribute description (`cn;lang-fr`, any case) holds values for
    /// this one: the same type, with at least these options.
    pub fn covers(&self, stored: &str) -> bool {
        let mut parts = stored.split(';');
        parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case(&self.ty))
            && self
                .options
                .iter()
                .all(|o| stored.split(';').skip(1).any(|s| s.eq_ignore_ascii_case(o)))
    }
}

/// A parsed search filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Equal(AttrDesc, Vec<u8>),
    Approx(AttrDesc, Vec<u8>),
    GreaterOrEqual(AttrDesc, Vec<u8>),
    LessOrEqual(AttrDesc, Vec<u8>),
    Present(AttrDesc),
    Substrings {
        attr: AttrDesc,
        initial: Option<Vec<u8>>,
        any: Vec<Vec<u8>>,
        last: Option<Vec<u8>>,
    },
    /// `attr:dn:rule:=value`, kept as written for a live directory.
    Extensible(String),
}

/// The values an entry holds, as a filter sees them.
pub trait Values {
    /// Calls `f` with every value of every stored description that `attr` covers, until
    /// `f` returns true; whether it did.
    fn any_value(&self, attr: &AttrDesc, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl Filter {
    /// Parses a filter; the outer parentheses may be left out of a single item
    /// (`objectClass=person`), as `ldapsearch` allows.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let owned;
        let text = if text.starts_with('(') {
            text
        } else {
            owned = format!("({text})");
            &owned
        };
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let f = p.filter(0)?;
        if p.i != p.s.len() {
            return Err(format!(
                "unexpected text after the filter at character {}",
                p.i + 1
            ));
        }
        Ok(f)
    }

    /// Whether the filter can be evaluated over a file's entries.
    pub fn check_for_files(&self) -> Result<(), String> {
        match self {
            Filter::And(v) | Filter::Or(v) => v.iter().try_for_each(Filter::check_for_files),
            Filter::Not(f) => f.check_for_files(),
            Filter::Extensible(text) => Err(format!(
                "the extensible match `{text}` can only be evaluated by a live directory"
            )),
            _ => Ok(()),
        }
    }

    /// Every attribute type the filter reads (lower case).
    pub fn attribute_types(&self, out: &mut Vec<String>) {
        match self {
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|f| f.attribute_types(out)),
            Filter::Not(f) => f.attribute_types(out),
            Filter::Equal(a, _)
            | Filter::Approx(a, _)
            | Filter::GreaterOrEqual(a, _)
            | Filter::LessOrEqual(a, _)
            | Filter::Present(a)
            | Filter::Substrings { attr: a, .. } => out.push(a.ty.clone()),
            Filter::Extensible(_) => {}
        }
    }

    /// Whether an entry matches.
    pub fn matches(&self, e: &dyn Values) -> bool {
        match self {
            Filter::And(v) => v.iter().all(|f| f.matches(e)),
            Filter::Or(v) => v.iter().any(|f| f.matches(e)),
            Filter::Not(f) => !f.matches(e),
            Filter::Present(a) => e.any_value(a, &mut |_| true),
            Filter::Equal(a, v) | Filter::Approx(a, v) => e.any_value(a, &mut |x| same_value(x, v)),
            Filter::GreaterOrEqual(a, v) => {
                e.any_value(a, &mut |x| order(x, v) != std::cmp::Ordering::Less)
            }
            Filter::LessOrEqual(a, v) => {
                e.any_value(a, &mut |x| order(x, v) != std::cmp::Ordering::Greater)
            }
            Filter::Substrings {
                attr,
                initial,
                any,
                last,
            } => e.any_value(attr, &mut |x| {
                substrings(&normalise(x), initial.as_deref(), any, last.as_deref())
            }),
            Filter::Extensible(_) => false,
        }
    }
}

/// Whether two values are equal as `caseIgnoreMatch` compares them; ASCII values (nearly
/// all) without allocating.
fn same_value(stored: &[u8], asserted: &[u8]) -> bool {
    if stored.is_ascii() && asserted.is_ascii() {
        fn words(v: &[u8]) -> smallvec::SmallVec<[&[u8]; 4]> {
            v.split(|c| *c == b' ').filter(|w| !w.is_empty()).collect()
        }
        let (a, b) = (words(stored), words(asserted));
        return a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.eq_ignore_ascii_case(y));
    }
    normalise(stored) == normalise(asserted)
}

/// The folded value with runs of spaces as one and none at either end.
fn normalise(v: &[u8]) -> String {
    super::dn::normalise(&String::from_utf8_lossy(v))
}

fn order(stored: &[u8], asserted: &[u8]) -> std::cmp::Ordering {
    let num = |v: &[u8]| std::str::from_utf8(v).ok()?.trim().parse::<i128>().ok();
    match (num(stored), num(asserted)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => normalise(stored).cmp(&normalise(asserted)),
    }
}

fn substrings(value: &str, initial: Option<&[u8]>, any: &[Vec<u8>], last: Option<&[u8]>) -> bool {
    let piece = |p: &[u8]| fold(&String::from_utf8_lossy(p)).to_string();
    let mut rest = value;
    if let Some(i) = initial {
        let i = piece(i);
        match rest.strip_prefix(i.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for a in any {
        let a = piece(a);
        match rest.find(a.as_str()) {
            Some(at) => rest = &rest[at + a.len()..],
            None => return false,
        }
    }
    last.is_none_or(|l| rest.ends_with(piece(l).as_str()))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at character {}",
                char::from(c),
                self.i + 1
            ))
        }
    }

    fn filter(&mut self, depth: usize) -> Result<Filter, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the filter nests deeper than {MAX_DEPTH} levels"));
        }
        self.expect(b'(')?;
        let f = match self.s.get(self.i) {
            Some(b'&') => {
                self.i += 1;
                Filter::And(self.list(depth)?)
            }
            Some(b'|') => {
                self.i += 1;
                Filter::Or(self.list(depth)?)
            }
            Some(b'!') => {
                self.i += 1;
                Filter::Not(Box::new(self.filter(depth + 1)?))
            }
            _ => self.item()?,
        };
        self.expect(b')')?;
        Ok(f)
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Filter>, String> {
        let mut v = Vec::new();
        while self.s.get(self.i) == Some(&b'(') {
            v.push(self.filter(depth + 1)?);
        }
        Ok(v)
    }

    fn item(&mut self) -> Result<Filter, String> {
        let start = self.i;
        let end = self.s[start..]
            .iter()
            .position(|c| *c == b')')
            .map_or(self.s.len(), |p| start + p);
        let body = std::str::from_utf8(&self.s[start..end])
            .map_err(|_| "the filter is not valid UTF-8".to_string())?;
        self.i = end;
        let at = |m: &str| format!("{m} in `({body})`");
        let Some(eq) = body.find('=') else {
            return Err(at("expected `attribute=value`"));
        };
        let (lhs, value) = (&body[..eq], &body[eq + 1..]);
        if lhs.ends_with(':') {
            unescape(value).map_err(|m| at(&m))?;
            return Ok(Filter::Extensible(body.to_string()));
        }
        let (name, kind) = match lhs.as_bytes().last() {
            Some(b'~') => (&lhs[..lhs.len() - 1], b'~'),
            Some(b'>') => (&lhs[..lhs.len() - 1], b'>'),
            Some(b'<') => (&lhs[..lhs.len() - 1], b'<'),
            _ => (lhs, b'='),
        };
        let attr = AttrDesc::parse(name)
            .ok_or_else(|| at(&format!("`{name}` is not an attribute description")))?;
        let one = |v: &str| unescape(v).map_err(|m| at(&m));
        Ok(match kind {
            b'~' => Filter::Approx(attr, one(value)?),
            b'>' => Filter::GreaterOrEqual(attr, one(value)?),
            b'<' => Filter::LessOrEqual(attr, one(value)?),
            _ if value == "*" => Filter::Present(attr),
            _ if value.contains('*') => {
                let pieces: Vec<&str> = value.split('*').collect();
                let opt = |p: &str| -> Result<Option<Vec<u8>>, String> {
                    if p.is_empty() {
                        Ok(None)
                    } else {
                        one(p).map(Some)
                    }
                };
                let n = pieces.len();
                let mut any = Vec::new();
                for p in &pieces[1..n - 1] {
                    if p.is_empty() {
                        return Err(at("`**` is not a substring filter"));
                    }
                    any.push(one(p)?);
                }
                Filter::Substrings {
                    attr,
                    initial: opt(pieces[0])?,
                    any,
                    last: opt(pieces[n - 1])?,
                }
            }
            _ => Filter::Equal(attr, one(value)?),
        })
    }
}

/// An assertion value: `\XX` escapes; `(`, `)`, `*` and `\` may not stand bare.
fn unescape(v: &str) -> Result<Vec<u8>, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let pair = b
                    .get(i + 1..i + 3)
                    .filter(|p| p.iter().all(u8::is_ascii_hexdigit));
                let Some(p) = pair else {
                    return Err("`\\` must be followed by two hex digits".into());
                };
                out.push(p.iter().fold(0u8, |acc, d| (acc << 4) | hex_digit(*d)));
                i += 3;
            }
            b'(' | b')' | b'*' | 0 => {
                return Err(format!(
                    "`{}` must be written as a `\\XX` escape",
                    char::from(b[i]).escape_default()
                ));
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn escape(out: &mut String, v: &[u8]) {
    match std::str::from_utf8(v) {
        Ok(s) => {
            for c in s.chars() {
                match c {
                    '(' | ')' | '*' | '\\' | '\0' => {
                        let _ = write!(out, "\\{:02x}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
        }
        Err(_) => v.iter().for_each(|b| {
            let _ = write!(out, "\\{b:02x}");
        }),
    }
}

/// The canonical RFC 4515 text, which a live directory is sent.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let simple = |s: &mut String, a: &AttrDesc, op: &str, v: &[u8]| {
            s.push_str(&a.written);
            s.push_str(op);
            escape(s, v);
        };
        match self {
            Filter::And(v) | Filter::Or(v) => {
                s.push(if matches!(self, Filter::And(_)) {
                    '&'
                } else {
                    '|'
                });
                for x in v {
                    s.push_str(&x.to_string());
                }
            }
            Filter::Not(x) => {
                s.push('!');
                s.push_str(&x.to_string());
            }
            Filter::Equal(a, v) => simple(&mut s, a, "=", v),
            Filter::Approx(a, v) => simple(&mut s, a, "~=", v),
            Filter::GreaterOrEqual(a, v) => simple(&mut s, a, ">=", v),
            Filter::LessOrEqual(a, v) => simple(&mut s, a, "<=", v),
            Filter::Present(a) => {
                s.push_str(&a.written);
                s.push_str("=*");
            }
            Filter::Substrings {
                attr,
                initial,
                any,
                last,
            } => {
                s.push_str(&attr.written);
                s.push('=');
                if let Some(i) = initial {
                    escape(&mut s, i);
                }
                s.push('*');
                for a in any {
                    escape(&mut s, a);
                    s.push('*');
                }
                if let Some(l) = last {
                    escape(&mut s, l);
                }
            }
            Filter::Extensible(text) => s.push_str(text),
        }
        write!(f, "({s})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as (description, value) pairs.
    struct E(Vec<(&'static str, &'static str)>);

    impl Values for E {
        fn any_value(&self, attr: &AttrDesc, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
            self.0
                .iter()
                .any(|(d, v)| attr.covers(d) && f(v.as_bytes()))
        }
    }

    fn m(filter: &str, e: &E) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|x| panic!("{filter}: {x}"))
            .matches(e)
    }

    #[test]
    fn evaluates_like_a_directory() {
        let e = E(vec![
            ("objectClass", "top"),
            ("objectClass", "inetOrgPerson"),
            ("uid", "JohnQ"),
            ("cn;lang-fr", "Jean  Q"),
            ("uidNumber", "1000"),
        ]);
        assert!(m("(objectClass=inetorgperson)", &e));
        assert!(!m("(objectClass=person)", &e));
        assert!(m("objectClass=*", &e));
        assert!(m("(&(uid=johnq)(!(uid=x))(|(mail=*)(cn=jean q)))", &e));
        assert!(m("(cn;lang-fr=JEAN Q)", &e));
        assert!(!m("(cn;lang-de=jean q)", &e));
        assert!(m("(uid=jo*q)", &e));
        assert!(m("(uid=*h*)", &e));
        assert!(!m("(uid=*x*)", &e));
        assert!(m("(uidNumber>=999)", &e));
        assert!(!m("(uidNumber<=999)", &e));
        assert!(m("(uid~=JOHNQ)", &e));
        assert!(m("(&)", &e));
        assert!(!m("(|)", &e));
        assert!(m("(uid=john\\51)", &e));
    }

    #[test]
    fn canonical_text_parses_back() {
        for f in [
            "(&(objectClass=inetOrgPerson)(!(uid=a\\2ab)))",
            "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
            "(cn=a*b*c)",
            "(cn=*b)",
            "(memberOf:1.2.840.113556.1.4.1941:=cn=x,dc=y)",
        ] {
            let parsed = Filter::parse(f).unwrap();
            assert_eq!(parsed.to_string(), f);
            assert_eq!(Filter::parse(&parsed.to_string()).unwrap(), parsed);
        }
        assert_eq!(
            Filter::parse("uid=a").unwrap().to_string(),
            "(uid=a)".to_string()
        );
    }

    #[test]
    fn bad_filters() {
        for bad in [
            "(uid=a",
            "(uid=a))",
            "(&(uid=a)",
            "((uid=a))",
            "(=a)",
            "(u id=a)",
            "(uid=a(b)",
            "(uid=a\\zz)",
            "(uid=a**b)",
            "uid",
            "",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        let deep = "(!".repeat(100) + "(a=b)" + &")".repeat(100);
        assert!(Filter::parse(&deep).unwrap_err().contains("deeper"));
        assert!(
            Filter::parse("(memberOf:1.2.3:=x)")
                .unwrap()
                .check_for_files()
                .is_err()
        );
    }
}
