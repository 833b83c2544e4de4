//! Escaping names so that no input can forge or split an output line, or reach a terminal
//! as a control sequence (contract §7).
//!
//! Control characters (C0, DEL, C1), line and paragraph separators and the bidirectional
//! controls that reorder displayed text are written as `\n`, `\r`, `\t` or `\u{…}`.

use std::borrow::Cow;
use std::fmt::Write as _;

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` with every dangerous character escaped; borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    // ASCII text (nearly all) is dangerous only through its control characters: a byte scan.
    let clean = if s.is_ascii() {
        !s.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        !s.chars().any(is_dangerous)
    };
    if clean {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_dangerous(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with the dangerous characters that JSON allows raw (C1 controls, line
/// separators, bidirectional controls) written as `\uXXXX` escapes. Such characters can
/// only stand inside JSON strings, so the document means the same.
pub fn json_safe(json: String) -> String {
    // Only non-ASCII characters are rewritten: ASCII text (nearly all) is returned at once.
    if json.is_ascii() || !json.chars().any(|c| is_dangerous(c) && !c.is_ascii()) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_dangerous(c) && !c.is_ascii() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A CSV cell that a spreadsheet would read as a formula gets a leading `'`.
pub fn neutralise_formula(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi() {
        assert_eq!(escape("plain Zoë"), "plain Zoë");
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("x\u{202e}y\u{0}"), "x\\u{202e}y\\u{0}");
        assert_eq!(escape("back\\slash"), "back\\slash");
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let raw = serde_json::to_string(&"a\u{202e}b\u{85}c\u{1b}").unwrap();
        let safe = json_safe(raw);
        assert_eq!(safe, r#""a\u202eb\u0085c\u001b""#);
        assert_eq!(
            serde_json::from_str::<String>(&safe).unwrap(),
            "a\u{202e}b\u{85}c\u{1b}"
        );
    }

    #[test]
    fn neutralises_formulas() {
        assert_eq!(neutralise_formula("=1+1"), "'=1+1");
        assert_eq!(neutralise_formula("-bob"), "'-bob");
        assert_eq!(neutralise_formula("bob"), "bob");
    }
}
