//! The pdadmin tokenizer.
//!
//! Rules (contract §4, after IBM's "command option processing" page): whitespace separates
//! tokens; double quotes group a token and are removed; inside quotes `\"` and `\\` stand for
//! `"` and `\` (our extension, so that every name can be written; outside quotes a backslash
//! is an ordinary character, as in `DOMAIN\user`). A token that starts with `-`, or with the
//! en dash `–` that IBM's HTML pages print, is an option even when quoted; a lone `-` ends
//! option processing.

/// One token of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// Whether any part of the token was inside double quotes.
    pub quoted: bool,
}

/// A tokenizing failure: only an unterminated quote can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnterminatedQuote;

/// Splits a command line into tokens.
pub fn tokenize(line: &str) -> Result<Vec<Token>, UnterminatedQuote> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut text = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        while let Some(&c) = chars.peek() {
            if !in_quotes && c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => {
                    in_quotes = !in_quotes;
                    quoted = true;
                }
                '\\' if in_quotes && matches!(chars.peek(), Some('"' | '\\')) => {
                    text.push(chars.next().unwrap_or('\\'));
                }
                _ => text.push(c),
            }
        }
        if in_quotes {
            return Err(UnterminatedQuote);
        }
        tokens.push(Token { text, quoted });
    }
}

/// The option name of a token (`-realm`, `–REALM` → `realm`), if it is an option.
pub fn option_name(token: &str) -> Option<&str> {
    token
        .strip_prefix('-')
        .or_else(|| token.strip_prefix('\u{2013}'))
        .filter(|name| !name.is_empty())
}

/// Writes one token so that [`tokenize`] reads it back unchanged.
pub fn quote(token: &str) -> String {
    let mut out = String::with_capacity(token.len() + 2);
    let _ = write_quoted(&mut out, token);
    out
}

/// Writes `token` to `out`, quoted only when it must be (no allocation).
pub fn write_quoted(out: &mut impl std::fmt::Write, token: &str) -> std::fmt::Result {
    let needs = token.is_empty()
        || token.chars().any(|c| c.is_whitespace() || c == '"')
        || token.ends_with('\\')
        || token.starts_with('#');
    if !needs {
        return out.write_str(token);
    }
    out.write_char('"')?;
    for c in token.chars() {
        if c == '"' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn whitespace_separates() {
        assert_eq!(texts("  server \t list  "), ["server", "list"]);
        assert!(texts("   ").is_empty());
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(texts(r#"a "Mary Jones" b"#), ["a", "Mary Jones", "b"]);
        assert_eq!(texts(r#"ab"c d"e"#), ["abc de"]);
        assert_eq!(texts(r#""""#), [""]);
        let t = tokenize(r#""x""#).unwrap();
        assert!(t[0].quoted);
    }

    #[test]
    fn backslash_escapes_only_inside_quotes() {
        assert_eq!(texts(r#""say \"hi\"""#), [r#"say "hi""#]);
        assert_eq!(texts(r#""a\\b""#), [r"a\b"]);
        assert_eq!(texts(r"DOMAIN\user"), [r"DOMAIN\user"]);
        assert_eq!(texts(r#""a\b""#), [r"a\b"]);
    }

    #[test]
    fn unterminated_quote_fails() {
        assert_eq!(tokenize(r#"a "b"#), Err(UnterminatedQuote));
    }

    #[test]
    fn options_and_en_dash() {
        assert_eq!(option_name("-realm"), Some("realm"));
        assert_eq!(option_name("\u{2013}realm"), Some("realm"));
        assert_eq!(option_name("-"), None);
        assert_eq!(option_name("realm"), None);
    }

    #[test]
    fn quote_round_trips() {
        for s in [
            "plain",
            "Mary Jones",
            "",
            r#"a"b"#,
            r"a\",
            r"x\y",
            "#x",
            "tab\there",
        ] {
            let q = quote(s);
            assert_eq!(texts(&q), [s], "{q}");
        }
    }
}
