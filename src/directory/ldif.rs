//! The LDIF reader (RFC 2849): the entries of an export, as `ldapsearch -LLL` or `slapcat`
//! write them.
//!
//! Read: an optional `version: 1`, `#` comments, folded lines (a line that starts with one
//! space continues the one before), `attr: value` and `attr:: base64`, CRLF line ends and a
//! UTF-8 byte-order mark. Refused, with the line: `attr:< URL` (a value from a file or the
//! network) and change records (`changetype:`, `control:`), since an export holds entries.
//! Attribute types are case-insensitive. Only the types the caller wants are kept.
//!
//! Large files are read in parallel: the file is cut at blank lines (always the end of a
//! record), each piece is counted for line numbers and then parsed on its own; the first
//! error in file order is the one reported.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rayon::prelude::*;

use super::entry::{Attr, Entry, Wanted};

/// A problem at a line of an LDIF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifError {
    pub line: u64,
    pub message: String,
}

/// Pieces of about this many bytes are parsed in parallel.
const PIECE: usize = 1 << 20;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parses the entries of an LDIF file, keeping the values of the `wanted` types. Entries
/// borrow from `bytes` wherever a value is written plainly on one line.
pub fn parse<'a>(bytes: &'a [u8], wanted: &Wanted) -> Result<Vec<Entry<'a>>, LdifError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let pieces = split(bytes);
    let newlines: Vec<u64> = pieces
        .par_iter()
        .map(|p| memchr::memchr_iter(b'\n', p).count() as u64)
        .collect();
    let mut first_lines = Vec::with_capacity(pieces.len());
    let mut line = 1;
    for n in &newlines {
        first_lines.push(line);
        line += n;
    }
    let parsed: Vec<Result<Vec<Entry<'a>>, LdifError>> = pieces
        .par_iter()
        .zip(first_lines.par_iter())
        .enumerate()
        .map(|(i, (piece, first))| Piece::new(*first, i == 0, wanted).parse(piece))
        .collect();
    let mut out = Vec::with_capacity(parsed.iter().map(|p| p.as_ref().map_or(0, Vec::len)).sum());
    for p in parsed {
        out.extend(p?);
    }
    Ok(out)
}

/// Cuts the file into pieces that begin at the start of a blank line.
fn split(bytes: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(bytes.len() / PIECE + 1);
    let mut start = 0;
    while bytes.len() - start > PIECE {
        let from = start + PIECE;
        let blank_next = |i: usize| {
            bytes.get(i + 1) == Some(&b'\n') || bytes.get(i + 1..i + 3) == Some(&b"\r\n"[..])
        };
        let cut = memchr::memchr_iter(b'\n', &bytes[from..])
            .map(|i| from + i)
            .find(|i| blank_next(*i))
            .map(|i| i + 1);
        match cut {
            Some(cut) => {
                pieces.push(&bytes[start..cut]);
                start = cut;
            }
            None => break,
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// Part of a line: borrowed from the file when the line is, else copied.
fn sub<'a>(line: &Cow<'a, [u8]>, range: std::ops::Range<usize>) -> Cow<'a, [u8]> {
    match line {
        Cow::Borrowed(b) => Cow::Borrowed(&b[range]),
        Cow::Owned(o) => Cow::Owned(o[range].to_vec()),
    }
}

/// The parsing state of one piece.
struct Piece<'w, 'a> {
    line: u64,
    /// The file's first piece: `version:` may open it.
    first: bool,
    /// Nothing but comments and blank lines seen yet in the file.
    at_start: bool,
    wanted: &'w Wanted,
    /// The entry being read: its line and DN; its attributes gather in `attrs`.
    entry: Option<(u64, Cow<'a, str>)>,
    attrs: Vec<Attr<'a>>,
    entries: Vec<Entry<'a>>,
}

impl<'w, 'a> Piece<'w, 'a> {
    fn new(line: u64, first: bool, wanted: &'w Wanted) -> Self {
        Self {
            line,
            first,
            at_start: first,
            wanted,
            entry: None,
            attrs: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn err(line: u64, message: impl Into<String>) -> LdifError {
        LdifError {
            line,
            message: message.into(),
        }
    }

    fn parse(mut self, piece: &'a [u8]) -> Result<Vec<Entry<'a>>, LdifError> {
        self.entries.reserve(piece.len() / 256);
        // The logical line being assembled from folded physical lines, and where it began.
        let mut logical: Option<(Cow<'a, [u8]>, u64)> = None;
        let mut in_comment = false;
        let mut pos = 0;
        let mut n = self.line;
        while pos < piece.len() {
            let end = memchr::memchr(b'\n', &piece[pos..]).map_or(piece.len(), |i| pos + i);
            let raw = &piece[pos..end];
            pos = end + 1;
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let this = n;
            n += 1;
            if line.is_empty() {
                self.take_line(logical.take())?;
                self.end_record();
                in_comment = false;
                continue;
            }
            if line[0] == b' ' {
                match &mut logical {
                    _ if in_comment => {}
                    None => {
                        return Err(Self::err(
                            this,
                            "a continuation line (one that starts with a space) follows no line",
                        ));
                    }
                    Some((text, _)) => text.to_mut().extend_from_slice(&line[1..]),
                }
                continue;
            }
            self.take_line(logical.take())?;
            in_comment = line[0] == b'#';
            if !in_comment {
                logical = Some((Cow::Borrowed(line), this));
            }
        }
        self.take_line(logical.take())?;
        self.end_record();
        Ok(self.entries)
    }

    fn end_record(&mut self) {
        if let Some((line, dn)) = self.entry.take() {
            // One exact allocation per entry; the scratch vector is reused.
            let attrs = self.attrs.drain(..).collect();
            self.entries.push(Entry { line, dn, attrs });
        }
    }

    /// Handles one complete logical line.
    fn take_line(&mut self, logical: Option<(Cow<'a, [u8]>, u64)>) -> Result<(), LdifError> {
        match logical {
            Some((line, at)) => self.line_of(&line, at),
            None => Ok(()),
        }
    }

    #[allow(
        clippy::ptr_arg,
        reason = "whether the line is borrowed decides whether values are"
    )]
    fn line_of(&mut self, line: &Cow<'a, [u8]>, at: u64) -> Result<(), LdifError> {
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(Self::err(
                at,
                "expected `attribute: value` (no colon on the line)",
            ));
        };
        let desc = std::str::from_utf8(&line[..colon])
            .ok()
            .filter(|d| is_description(d))
            .ok_or_else(|| {
                Self::err(
                    at,
                    format!(
                        "`{}` is not an attribute description (RFC 4512: a type — a letter, then letters, digits and hyphens, or a numeric OID — and `;options`); is this a comment that lost its `#`?",
                        String::from_utf8_lossy(&line[..colon]).escape_debug()
                    ),
                )
            })?;
        if std::str::from_utf8(&line[colon + 1..]).is_err() {
            return Err(Self::err(
                at,
                format!(
                    "the value of `{desc}:` is not valid UTF-8: write text in UTF-8, and binary values as `{desc}::` and base64"
                ),
            ));
        }
        if line.get(colon + 1) == Some(&b'<') {
            return Err(Self::err(
                at,
                format!(
                    "`{desc}:<` takes the value from a URL, which is refused: put the value in the file (`{desc}::` and base64 for binary values)"
                ),
            ));
        }
        let at_start = std::mem::replace(&mut self.at_start, false);
        if self.entry.is_none() {
            return self.first_line(line, colon, desc, at, at_start);
        }
        if desc.eq_ignore_ascii_case("changetype") || desc.eq_ignore_ascii_case("control") {
            return Err(Self::err(
                at,
                format!(
                    "`{desc}:` begins a change record, which is refused: give the entries themselves, as `ldapsearch -LLL` or `slapcat` export them"
                ),
            ));
        }
        if desc.eq_ignore_ascii_case("dn") {
            return Err(Self::err(
                at,
                "a second `dn:` in one entry (entries are separated by a blank line)",
            ));
        }
        if self.wanted.keeps(desc) {
            let v = value(desc, line, colon).map_err(|m| Self::err(at, m))?;
            let desc: &'a str = match line {
                Cow::Borrowed(b) => std::str::from_utf8(&b[..colon]).unwrap_or_default(),
                Cow::Owned(_) => crate::intern::resolve(crate::intern::intern(desc)),
            };
            self.attrs.push((desc, v));
        }
        Ok(())
    }

    /// The first line of a record: `dn:`, or `version:` at the start of the file.
    #[allow(
        clippy::ptr_arg,
        reason = "whether the line is borrowed decides whether values are"
    )]
    fn first_line(
        &mut self,
        line: &Cow<'a, [u8]>,
        colon: usize,
        desc: &str,
        at: u64,
        at_start: bool,
    ) -> Result<(), LdifError> {
        if at_start && self.first && desc.eq_ignore_ascii_case("version") {
            let v = value(desc, line, colon).map_err(|m| Self::err(at, m))?;
            return if &*v == b"1" {
                Ok(())
            } else {
                Err(Self::err(at, "only LDIF `version: 1` is known"))
            };
        }
        if desc.eq_ignore_ascii_case("search") || desc.eq_ignore_ascii_case("result") {
            return Err(Self::err(
                at,
                format!(
                    "expected `dn:` to begin an entry, found `{desc}:`: this is the summary `ldapsearch` prints after the entries; save exports with `ldapsearch -LLL`, which leaves it out"
                ),
            ));
        }
        if !desc.eq_ignore_ascii_case("dn") {
            return Err(Self::err(
                at,
                format!("expected `dn:` to begin an entry, found `{desc}:`"),
            ));
        }
        let dn = match value(desc, line, colon).map_err(|m| Self::err(at, m))? {
            Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed).ok(),
            Cow::Owned(o) => String::from_utf8(o).map(Cow::Owned).ok(),
        }
        .ok_or_else(|| Self::err(at, "the DN is not valid UTF-8"))?;
        self.entry = Some((at, dn));
        Ok(())
    }
}

/// Whether `d` is an attribute description (RFC 4512 §2.5): `type *(";" option)`, where a
/// type is a keystring (a letter, then letters, digits and hyphens) or a numeric OID
/// (`2.5.4.3`), and an option is one or more letters, digits and hyphens.
fn is_description(d: &str) -> bool {
    let mut parts = d.split(';');
    let ty = parts.next().unwrap_or_default().as_bytes();
    let keychar = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-';
    let keystring = ty.first().is_some_and(u8::is_ascii_alphabetic) && ty.iter().all(keychar);
    let number = |n: &str| {
        !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    let oid = {
        let text = std::str::from_utf8(ty).unwrap_or_default();
        text.contains('.') && text.split('.').all(number)
    };
    (keystring || oid) && parts.all(|o| !o.is_empty() && o.as_bytes().iter().all(keychar))
}

/// The value after `desc:` at `colon`: base64 after a second colon, else the text after
/// leading spaces (borrowed when the line is).
fn value<'a>(desc: &str, line: &Cow<'a, [u8]>, colon: usize) -> Result<Cow<'a, [u8]>, String> {
    let rest = &line[colon + 1..];
    if let Some(b64) = rest.strip_prefix(b":") {
        let text: Vec<u8> = b64.iter().copied().filter(|b| *b != b' ').collect();
        return BASE64
            .decode(&text)
            .map(Cow::Owned)
            .map_err(|_| format!("the base64 value of `{desc}::` does not decode"));
    }
    let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    if memchr::memchr(0, &rest[start..]).is_some() {
        return Err(format!(
            "a NUL byte in the value of `{desc}:` (write such values as `{desc}::` and base64)"
        ));
    }
    Ok(sub(line, colon + 1 + start..line.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted::new(["uid", "cn", "objectclass", "member", "description"].map(String::from))
    }

    fn ok(text: &str) -> Vec<Entry<'_>> {
        parse(text.as_bytes(), &wanted()).unwrap_or_else(|e| panic!("{}: {}", e.line, e.message))
    }

    fn err(text: &str) -> (u64, String) {
        let e = parse(text.as_bytes(), &wanted()).unwrap_err();
        (e.line, e.message)
    }

    #[test]
    fn reads_entries() {
        let text = "\u{feff}version: 1\r\n# a comment\r\n#  folded\r\n  comment\r\ndn: uid=a,o=x\r\nobjectClass: inetOrgPerson\r\nUID: a\r\ncn:: w4lsb2TDrWU=\r\nmail: ignored@x\r\ndescription: fol\r\n ded \r\n\r\n\r\ndn:: dWlkPWIsbz14\ncn:    b  \nmember:\n";
        let e = ok(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].dn, "uid=a,o=x");
        assert_eq!(e[0].line, 5);
        let attrs: Vec<(&str, &[u8])> = e[0].attrs.iter().map(|(d, v)| (&**d, &**v)).collect();
        assert_eq!(
            attrs,
            [
                ("objectClass", &b"inetOrgPerson"[..]),
                ("UID", b"a"),
                ("cn", "Élodíe".as_bytes()),
                ("description", b"folded "),
            ]
        );
        assert_eq!(e[1].dn, "uid=b,o=x");
        assert_eq!(e[1].line, 14);
        assert_eq!(e[1].attrs[0].1.as_ref(), b"b  ");
        assert_eq!(e[1].attrs[1].1.as_ref(), b"");
        assert!(
            matches!(e[1].attrs[0].1, Cow::Borrowed(_)),
            "plain values are not copied"
        );
    }

    #[test]
    fn refuses_what_is_not_an_export() {
        assert_eq!(err("dn: o=x\ncn:< file:///etc/passwd\n").0, 2);
        assert!(err("dn: o=x\ncn:< file:///etc/passwd\n").1.contains("URL"));
        assert_eq!(err("dn: o=x\nchangetype: modify\n").0, 2);
        assert!(
            err("dn: o=x\nchangetype: add\ncn: a\n")
                .1
                .contains("change record")
        );
        assert_eq!(err("version: 2\ndn: o=x\n").0, 1);
        assert_eq!(err("dn: o=x\n\ncn: a\n").0, 3);
        assert_eq!(err(" folded\ndn: o=x\n").0, 1);
        assert_eq!(err("dn: o=x\ncn a\n").0, 2);
        assert_eq!(err("dn: o=x\ncn:: !!!\n").0, 2);
        assert_eq!(err("dn: o=x\ndn: o=y\n").0, 2);
        assert_eq!(err("dn: o=x\n\nversion: 1\n").0, 3);
        assert_eq!(err("dn: o=x\nc n: a\n").0, 2);
        assert_eq!(err("dn: o=x\ncn: a\0b\n").0, 2);
        assert_eq!(err("dn:: //79\n").0, 1);
    }

    #[test]
    fn attribute_descriptions_are_rfc_4512() {
        for good in [
            "cn",
            "CN",
            "cn;lang-fr",
            "x-attr-2",
            "2.5.4.3",
            "2.5.4.3;binary",
            "0.9",
        ] {
            assert!(is_description(good), "{good}");
        }
        for bad in [
            "eptance directory (bars/ldap)",
            "1cn",
            "-cn",
            "cn;",
            "cn;;x",
            "c.n",
            "2.05.4",
            "2..5",
            "2.5.",
            "",
            "cn_x",
        ] {
            assert!(!is_description(bad), "{bad}");
        }
        let (line, message) =
            err("dn: o=x\ncn: a\n\n# comment\neptance directory (bars/ldap): x\n");
        assert_eq!(line, 5);
        assert!(message.contains("attribute description"), "{message}");
    }

    #[test]
    fn an_ldapsearch_summary_asks_for_lll() {
        let text = "# extended LDIF\n#\n\n# a, x\ndn: uid=a,o=x\nuid: a\n\n# search result\nsearch: 2\nresult: 0 Success\n\n# numResponses: 2\n";
        let (line, message) = err(text);
        assert_eq!(line, 9);
        assert!(message.contains("ldapsearch -LLL"), "{message}");
    }

    #[test]
    fn plain_values_are_utf8() {
        let bytes = b"dn: o=x\ncn: caf\xe9\n";
        let e = parse(bytes, &wanted()).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not valid UTF-8"), "{}", e.message);
        // Also in an attribute that is not kept: the file is wrong either way.
        let e = parse(b"dn: o=x\nmail: \xff\n", &wanted()).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            ok("dn: o=x\ncn: caf\u{e9}\n")[0].attrs[0].1.as_ref(),
            "caf\u{e9}".as_bytes()
        );
    }

    #[test]
    fn pieces_keep_line_numbers() {
        let mut text = String::from("version: 1\n\n");
        for i in 0..60_000 {
            text.push_str(&format!("dn: uid=u{i},o=x\nuid: u{i}\ncn: User {i}\n\n"));
        }
        text.push_str("dn: uid=last,o=x\nbroken line\n");
        assert!(text.len() > 2 * PIECE);
        let (line, _) = err(&text);
        assert_eq!(line, 2 + 60_000 * 4 + 2);
        let good = &text[..text.find("dn: uid=last").unwrap()];
        let e = ok(good);
        assert_eq!(e.len(), 60_000);
        assert_eq!(e[59_999].line, 2 + 59_999 * 4 + 1);
        assert_eq!(e[59_999].dn, "uid=u59999,o=x");
    }
}
