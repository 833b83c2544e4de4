//! Command-file rules (contract §4, §10): which physical lines make which commands.
//!
//! Blank lines and lines whose first non-blank character is `#` are skipped; a trailing `\`
//! continues the command on the next line; a leading `pdadmin>` or `pdadmin sec_master>`
//! prompt is stripped so that a transcript replays; `exit` or `quit` ends the file. A
//! command's `line` is its first physical line. A UTF-8 BOM and CRLF line ends are tolerated.

use std::io::{self, BufRead};

use crate::lines::{Lines, Physical};

/// One logical line of a command file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A command to parse and run: its first physical line (1-based) and its text.
    Command { line: u64, text: String },
    /// A physical line that is not UTF-8: an error result for that line only.
    NotUtf8 { line: u64 },
    /// A line longer than [`crate::lines::MAX_LINE`]: an error result, the line skipped.
    TooLong { line: u64 },
}

/// Reads the entries of a command file in order, stopping at `exit` / `quit`.
pub struct CommandReader<R> {
    lines: Lines<R>,
    done: bool,
}

impl<R: BufRead> CommandReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            lines: Lines::new(input),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for CommandReader<R> {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let first = match self.lines.next_line() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(Physical::NotUtf8)) => {
                    return Some(Ok(Entry::NotUtf8 {
                        line: self.lines.line,
                    }));
                }
                Ok(Some(Physical::TooLong)) => {
                    return Some(Ok(Entry::TooLong {
                        line: self.lines.line,
                    }));
                }
                Ok(Some(Physical::Text(text))) => text,
            };
            let start = self.lines.line;
            let trimmed = first.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut text = strip_prompt(trimmed).to_string();
            while let Some(head) = text.strip_suffix('\\') {
                text.truncate(head.len());
                text.push(' ');
                match self.lines.next_line() {
                    Err(e) => return Some(Err(e)),
                    Ok(None) => break,
                    Ok(Some(Physical::NotUtf8)) => return Some(Ok(Entry::NotUtf8 { line: start })),
                    Ok(Some(Physical::TooLong)) => return Some(Ok(Entry::TooLong { line: start })),
                    Ok(Some(Physical::Text(next))) => {
                        if text.len() + next.len() > crate::lines::MAX_LINE {
                            return Some(Ok(Entry::TooLong { line: start }));
                        }
                        text.push_str(&next);
                    }
                }
            }
            let bare = text.trim();
            if bare.is_empty() {
                continue;
            }
            if bare.eq_ignore_ascii_case("exit") || bare.eq_ignore_ascii_case("quit") {
                self.done = true;
                return None;
            }
            return Some(Ok(Entry::Command {
                line: start,
                text: bare.to_string(),
            }));
        }
        None
    }
}

/// Strips a leading `pdadmin>` or `pdadmin <user>>` prompt.
pub fn strip_prompt(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("pdadmin") else {
        return line;
    };
    if let Some(after) = rest.strip_prefix('>') {
        return after.trim_start();
    }
    let Some(rest) = rest.strip_prefix(' ') else {
        return line;
    };
    match rest.split_once('>') {
        Some((user, after)) if !user.is_empty() && !user.contains(char::is_whitespace) => {
            after.trim_start()
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(input: &[u8]) -> Vec<Entry> {
        CommandReader::new(input).map(|e| e.unwrap()).collect()
    }

    fn cmd(line: u64, text: &str) -> Entry {
        Entry::Command {
            line,
            text: text.into(),
        }
    }

    #[test]
    fn comments_blanks_and_line_numbers() {
        let got = entries(
            b"# header\n\n   \nserver list\n  # indented comment\nerrtext 1 # not a comment\n",
        );
        assert_eq!(
            got,
            [cmd(4, "server list"), cmd(6, "errtext 1 # not a comment")]
        );
    }

    #[test]
    fn continuation_joins_lines_and_keeps_the_first_line_number() {
        let got = entries(
            b"server task s sms session refresh session 678 \\\n  -realm ibm.com\nserver list\n",
        );
        assert_eq!(
            got,
            [
                cmd(
                    1,
                    "server task s sms session refresh session 678    -realm ibm.com"
                ),
                cmd(3, "server list")
            ]
        );
    }

    #[test]
    fn prompts_are_stripped() {
        let got = entries(b"pdadmin> server list\npdadmin sec_master> errtext 1\npdadmin>\n");
        assert_eq!(got, [cmd(1, "server list"), cmd(2, "errtext 1")]);
        assert_eq!(strip_prompt("pdadminx> a"), "pdadminx> a");
    }

    #[test]
    fn exit_and_quit_end_the_file() {
        assert_eq!(
            entries(b"server list\nEXIT\nserver list\n"),
            [cmd(1, "server list")]
        );
        assert_eq!(entries(b"quit\nserver list\n"), []);
        assert_eq!(entries(b"exit now\n"), [cmd(1, "exit now")]);
    }

    #[test]
    fn bom_crlf_and_invalid_utf8() {
        let got = entries(b"\xEF\xBB\xBFserver list\r\n\xff\xfe\r\nerrtext 1\r\n");
        assert_eq!(
            got,
            [
                cmd(1, "server list"),
                Entry::NotUtf8 { line: 2 },
                cmd(3, "errtext 1")
            ]
        );
    }
}
