//! The message catalog: every message ID the tool prints, its text and its status code.
//!
//! IBM's published IDs and codes are used where the meaning matches (`HPDMG0754W` entry not
//! found, `DPWAP0059E` unknown server, `DPWWA2043I` credential updated). Everything else is
//! ours, with the `SMR` product prefix (components `CM` commands, `SS` sessions,
//! `TP` topology, `RL` refresh rules, `IN` input rows, `TG` a target) and codes of the form `0x534d52nn` ("SMR" in ASCII),
//! a range no IBM component uses. `docs/messages.md` lists the catalog; a test keeps the two
//! equal. Texts use `%s` and `%d` placeholders, as IBM's catalogs do.

use std::fmt::Write as _;

/// A message's severity, the last letter of its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One catalog entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub id: &'static str,
    pub code: u32,
    pub text: &'static str,
    /// Whether the ID and code are IBM's own (otherwise they are ours).
    pub ibm: bool,
}

impl Message {
    pub fn severity(&self) -> Severity {
        match self.id.as_bytes().last() {
            Some(b'W') => Severity::Warning,
            Some(b'E') => Severity::Error,
            _ => Severity::Info,
        }
    }

    /// The text with its `%s` / `%d` placeholders filled in order.
    pub fn render(&self, args: &[&str]) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut args = args.iter();
        let mut rest = self.text;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            let tail = &rest[pos + 1..];
            if tail.starts_with('s') || tail.starts_with('d') {
                out.push_str(args.next().copied().unwrap_or(""));
                rest = &tail[1..];
            } else {
                out.push('%');
                rest = tail;
            }
        }
        out.push_str(rest);
        out
    }

    /// `0x%08x`, as pdadmin prints status codes.
    pub fn code_hex(&self) -> String {
        let mut s = String::with_capacity(10);
        let _ = write!(s, "0x{:08x}", self.code);
        s
    }
}

macro_rules! catalog {
    ($($name:ident = ($id:literal, $code:literal, $ibm:literal, $text:literal);)*) => {
        $(pub static $name: Message = Message { id: $id, code: $code, text: $text, ibm: $ibm };)*
        /// Every message, in catalog order.
        pub static CATALOG: &[&Message] = &[$(&$name),*];
    };
}

catalog! {
    CREDENTIAL_UPDATED = ("DPWWA2043I", 0x534d_5201, true, "The user's credential was updated. Sessions refreshed: %d.");
    ENTRY_NOT_FOUND = ("HPDMG0754W", 0x14c0_12f2, true, "The entry was not found.");
    UNKNOWN_SERVER = ("DPWAP0059E", 0x3898_f03b, true, "The supplied authorization server name, %s, is not a known server.");
    SESSIONS_TERMINATED = ("SMRSS0001I", 0x534d_5202, false, "The sessions were terminated. Sessions terminated: %d.");
    LIST_SHOWN = ("SMRSS0002I", 0x534d_5203, false, "Matching sessions shown: %d of %d.");
    LISTED = ("SMRCM0003I", 0x534d_5204, false, "Entries listed: %d.");
    REPLICA_SET_SHOWN = ("SMRSS0004I", 0x534d_5205, false, "Replica set %s: %d servers, %d live sessions.");
    NO_LIVE_SESSIONS = ("SMRSS0101W", 0x534d_5265, false, "The user %s has no live sessions in realm %s.");
    NO_SESSIONS_ON_SERVER = ("SMRSS0102W", 0x534d_5266, false, "The user %s has no live sessions on server %s.");
    AZN_PRESERVED = ("SMRRL0103W", 0x534d_5267, false, "The credential refresh rule %s preserves AZN_ attributes, which are internal to authorization decisions.");
    UNKNOWN_REALM = ("SMRTP0201E", 0x534d_52c9, false, "The realm %s is not known.");
    SESSION_NOT_FOUND = ("SMRSS0202E", 0x534d_52ca, false, "The session %s was not found in realm %s.");
    SESSION_NOT_ON_SERVER = ("SMRSS0203E", 0x534d_52cb, false, "The session %s was not found on server %s.");
    UNKNOWN_REPLICA_SET = ("SMRTP0204E", 0x534d_52cc, false, "The replica set %s is not known.");
    SYNTAX_ERROR = ("SMRCM0205E", 0x534d_52cd, false, "The command is not valid: %s");
    UNKNOWN_CODE = ("SMRCM0206E", 0x534d_52ce, false, "No message has the status code or ID %s.");
    BAD_ROW = ("SMRIN0207E", 0x534d_52cf, false, "The input row is not valid: %s");
    NOT_RUN = ("SMRCM0208E", 0x534d_52d0, false, "The command was not run: an earlier command failed and --fail-fast is set.");
    STORE_UNAVAILABLE = ("SMRST0209E", 0x534d_52d1, false, "The session store could not complete the command; nothing was changed: %s");
    WOULD_SEND = ("SMRTG0005I", 0x534d_5206, false, "Dry run: the command would be sent to %s; nothing was sent.");
    TARGET_FAILED = ("SMRTG0210E", 0x534d_52d2, false, "The target %s did not run the command: %s");
    TARGET_NOT_API = ("SMRTG0211E", 0x534d_52d3, false, "The target answered HTTP %s with something other than the pdadmin API's JSON: %s");
    TARGET_NOT_RUN = ("SMRTG0212E", 0x534d_52d4, false, "The command was not run: %s");
    PDADMIN_LOGIN_FAILED = ("SMRTG0213E", 0x534d_52d5, false, "The pdadmin login of %s failed: the user name or password is not valid.");
}

/// Looks a message up by ID (any case) or by status code (`0x…` hex or decimal).
pub fn lookup(key: &str) -> Option<&'static Message> {
    let key = key.trim();
    if let Some(m) = CATALOG.iter().find(|m| m.id.eq_ignore_ascii_case(key)) {
        return Some(m);
    }
    let code = if let Some(hex) = key.strip_prefix("0x").or_else(|| key.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else {
        key.parse::<u32>().ok()?
    };
    CATALOG.iter().copied().find(|m| m.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_unique() {
        for (i, m) in CATALOG.iter().enumerate() {
            assert_eq!(m.id.len(), 10, "{}", m.id);
            assert!(
                m.id[..5].bytes().all(|b| b.is_ascii_uppercase()),
                "{}",
                m.id
            );
            assert!(m.id[5..9].bytes().all(|b| b.is_ascii_digit()), "{}", m.id);
            assert!(matches!(&m.id[9..], "I" | "W" | "E"), "{}", m.id);
            assert_eq!(m.ibm, !m.id.starts_with("SMR"), "{}", m.id);
            for other in &CATALOG[i + 1..] {
                assert_ne!(m.id, other.id);
                assert_ne!(m.code, other.code, "{} and {}", m.id, other.id);
            }
        }
    }

    #[test]
    fn lookup_by_id_hex_and_decimal() {
        assert_eq!(lookup("hpdmg0754w").unwrap().id, "HPDMG0754W");
        assert_eq!(lookup("0x14c012f2").unwrap().id, "HPDMG0754W");
        assert_eq!(lookup("348132082").unwrap().id, "HPDMG0754W");
        assert_eq!(lookup("0x3898F03B").unwrap().id, "DPWAP0059E");
        assert!(lookup("0x12345678").is_none());
        assert!(lookup("nonsense").is_none());
    }

    #[test]
    fn render_fills_placeholders_in_order() {
        assert_eq!(
            UNKNOWN_SERVER.render(&["x-webseald-y"]),
            "The supplied authorization server name, x-webseald-y, is not a known server."
        );
        assert_eq!(
            LIST_SHOWN.render(&["2", "9"]),
            "Matching sessions shown: 2 of 9."
        );
        assert_eq!(ENTRY_NOT_FOUND.code_hex(), "0x14c012f2");
    }
}
