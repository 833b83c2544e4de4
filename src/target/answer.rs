//! Reading the appliance's answer to one command (contract §14): the body is JSON whose
//! `result` (or, on errors, `message`) is pdadmin's text; the HTTP status and the text decide
//! whether the command succeeded, since pdadmin exits 0 even when WebSEAL could not do the
//! task.

/// What a command's answer says, by the target's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warning,
    Error,
}

/// An answer read: its verdict, pdadmin's text (trimmed), and the first message ID and status
/// code in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub verdict: Verdict,
    pub text: String,
    pub message_id: Option<String>,
    pub code: Option<String>,
}

/// How much of a body that is not the API's JSON a result quotes.
const QUOTED: usize = 160;

/// The start of a body, as text on one line, for a message.
pub fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED * 4)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(QUOTED) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// The pdadmin text of a body: `result`, else `message`, when the body is a JSON object
/// that has one as a string.
pub fn text_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    obj.get("result")
        .or_else(|| obj.get("message"))
        .and_then(|t| t.as_str())
        .map(|t| t.trim().to_string())
}

/// What a command asks for, where it changes how its answer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Most commands: their text reports their outcome.
    Command,
    /// `errtext CODE` shows a message instead of reporting one: its message ID and status
    /// code are the message shown, and only an HTTP error or an `Error:` line fails it.
    Errtext,
}

/// Reads pdadmin's text under an HTTP status; `None` when the body is not the API's JSON.
pub fn read(http_status: u16, body: &[u8], asked: Asked) -> Option<Reading> {
    let text = text_of(body)?;
    let ids = message_ids(&text);
    let error_line = text.lines().any(|l| l.trim_start().starts_with("Error:"));
    let failed = !(200..300).contains(&http_status) || error_line;
    if asked == Asked::Errtext {
        let verdict = if failed { Verdict::Error } else { Verdict::Ok };
        return Some(Reading {
            verdict,
            message_id: ids.first().map(|s| (*s).to_string()),
            code: (verdict != Verdict::Ok).then(|| last_code(&text)).flatten(),
            text,
        });
    }
    let verdict = if failed || ids.iter().any(|id| id.ends_with('E')) {
        Verdict::Error
    } else if ids.iter().any(|id| id.ends_with('W')) {
        Verdict::Warning
    } else {
        Verdict::Ok
    };
    Some(Reading {
        verdict,
        message_id: ids.first().map(|s| (*s).to_string()),
        code: first_code(&text),
        text,
    })
}

/// Every message ID in `text`, in order: `[A-Z]{3,5}[0-9]{4}[IWE]` standing as a word.
pub fn message_ids(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if word_start && b[i].is_ascii_uppercase() {
            let letters = b[i..].iter().take_while(|c| c.is_ascii_uppercase()).count();
            let digits_at = i + letters;
            let digits = b[digits_at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let end = digits_at + digits;
            let ends_word = b.get(end + 1).is_none_or(|c| !c.is_ascii_alphanumeric());
            if (3..=5).contains(&letters)
                && digits == 4
                && matches!(b.get(end), Some(b'I' | b'W' | b'E'))
                && ends_word
            {
                out.push(&text[i..=end]);
                i = end + 1;
                continue;
            }
            i += letters.max(1);
            continue;
        }
        i += 1;
    }
    out
}

/// The first status code `0x` + eight hex digits in `text`, in lower case.
pub fn first_code(text: &str) -> Option<String> {
    codes(text).next()
}

/// The last status code in `text`: pdadmin ends a message line with its own code.
fn last_code(text: &str) -> Option<String> {
    codes(text).last()
}

/// Every status code `0x` + eight hex digits in `text`, in order, in lower case.
fn codes(text: &str) -> impl Iterator<Item = String> + '_ {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(9)).filter_map(move |i| {
        let hex = b.get(i + 2..i + 10)?;
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let ends = b.get(i + 10).is_none_or(|c| !c.is_ascii_hexdigit());
        (word_start
            && b[i] == b'0'
            && (b[i + 1] == b'x' || b[i + 1] == b'X')
            && hex.iter().all(u8::is_ascii_hexdigit)
            && ends)
            .then(|| format!("0x{}", text[i + 2..i + 10].to_ascii_lowercase()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_codes_and_verdicts() {
        let ok = read(
            200,
            br#"{"result": "DPWWA2043I   The user's credential was updated.\n"}"#,
            Asked::Command,
        )
        .unwrap();
        assert_eq!(ok.verdict, Verdict::Ok);
        assert_eq!(ok.message_id.as_deref(), Some("DPWWA2043I"));
        assert_eq!(ok.text, "DPWWA2043I   The user's credential was updated.");
        let warn = read(
            200,
            br#"{"result": "HPDMG0754W   Entry not found (0x14C012F2)"}"#,
            Asked::Command,
        )
        .unwrap();
        assert_eq!(warn.verdict, Verdict::Warning);
        assert_eq!(warn.code.as_deref(), Some("0x14c012f2"));
        let err_text = read(
            200,
            br#"{"result": "Error: HPDBA0219E   Not found (0x13212073)"}"#,
            Asked::Command,
        )
        .unwrap();
        assert_eq!(err_text.verdict, Verdict::Error);
        assert_eq!(err_text.message_id.as_deref(), Some("HPDBA0219E"));
        let error_line = read(
            200,
            br#"{"result": "Error: the server did not answer"}"#,
            Asked::Command,
        )
        .unwrap();
        assert_eq!(error_line.verdict, Verdict::Error);
        assert_eq!(error_line.message_id, None);
        let by_status = read(500, br#"{"message": "DPWWA2043I   done"}"#, Asked::Command).unwrap();
        assert_eq!(by_status.verdict, Verdict::Error);
        assert_eq!(by_status.text, "DPWWA2043I   done");
        assert!(
            read(
                502,
                b"<html><body>Bad Gateway</body></html>",
                Asked::Command
            )
            .is_none()
        );
        assert!(read(200, b"[1,2]", Asked::Command).is_none());
        assert!(read(200, br#"{"result": 3}"#, Asked::Command).is_none());
        let shown = read(
            200,
            br#"{"result": "DPWAP0059E   Not a known server (0x3898f03b)"}"#,
            Asked::Errtext,
        )
        .unwrap();
        assert_eq!((shown.verdict, shown.code), (Verdict::Ok, None));
        assert_eq!(shown.message_id.as_deref(), Some("DPWAP0059E"));
        let unknown = read(
            200,
            br#"{"result": "Error: SMRCM0206E   No message has the status code or ID 0x12345678. (0x534d52ce)"}"#,
            Asked::Errtext,
        )
        .unwrap();
        assert_eq!(unknown.verdict, Verdict::Error);
        assert_eq!(unknown.code.as_deref(), Some("0x534d52ce"));
    }

    #[test]
    fn ids_stand_as_words() {
        assert_eq!(
            message_ids("xHPDMG0754W HPDMG0754Wx ABC1234I, AB1234E ABCDEF1234E DPWAP0059E"),
            vec!["ABC1234I", "DPWAP0059E"]
        );
        assert_eq!(
            first_code("a 0x1234 b 0xDEADBEEF1 0x3898F03B)"),
            Some("0x3898f03b".into())
        );
        assert_eq!(
            quote(b"<html>\n  <b>Bad</b>\n</html>"),
            "<html> <b>Bad</b> </html>"
        );
    }
}
