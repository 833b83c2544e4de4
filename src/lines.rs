//! Reading physical lines with a bounded buffer, for every line-oriented input (command files,
//! CSV lists, standard input).
//!
//! A line longer than [`MAX_LINE`] is skipped up to its end without being held in memory, so
//! a 100 MB line with no newline costs a scan, not 100 MB; the caller reports it as a bad
//! line. Line ends (`\n`, `\r\n`) are removed, and a UTF-8 byte-order mark on the first line.

use std::io::{self, BufRead};

/// The longest line kept: ample for several 1 MB names in one command.
pub const MAX_LINE: usize = 16 << 20;

/// One physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Physical {
    Text(String),
    NotUtf8,
    /// Longer than [`MAX_LINE`]: skipped.
    TooLong,
}

/// Physical lines of an input, numbered from 1.
pub struct Lines<R> {
    input: R,
    /// The number of the line last returned.
    pub line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            buf: Vec::with_capacity(256),
        }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<Physical>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let avail = match self.input.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match avail.iter().position(|b| *b == b'\n') {
                Some(i) => (&avail[..i], Some(i + 1)),
                None => (avail, None),
            };
            if !too_long && self.buf.len() + chunk.len() > MAX_LINE {
                too_long = true;
                self.buf = Vec::new();
            }
            if !too_long {
                self.buf.extend_from_slice(chunk);
            }
            let used = done.unwrap_or(avail.len());
            self.input.consume(used);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        if too_long {
            return Ok(Some(Physical::TooLong));
        }
        let mut bytes = &self.buf[..];
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if self.line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        Ok(Some(match std::str::from_utf8(bytes) {
            Ok(s) => Physical::Text(s.to_owned()),
            Err(_) => Physical::NotUtf8,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Physical> {
        let mut l = Lines::new(input);
        let mut out = Vec::new();
        while let Some(p) = l.next_line().unwrap() {
            out.push(p);
        }
        out
    }

    #[test]
    fn splits_strips_and_flags() {
        assert_eq!(
            all(b"\xEF\xBB\xBFa\r\nb\n\xff\nlast"),
            [
                Physical::Text("a".into()),
                Physical::Text("b".into()),
                Physical::NotUtf8,
                Physical::Text("last".into())
            ]
        );
        assert!(all(b"").is_empty());
        assert_eq!(all(b"\n"), [Physical::Text(String::new())]);
    }

    #[test]
    fn an_overlong_line_is_skipped_without_holding_it() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\n");
        let mut l = Lines::new(std::io::BufReader::with_capacity(4096, &input[..]));
        assert_eq!(l.next_line().unwrap(), Some(Physical::TooLong));
        assert!(
            l.buf.capacity() <= MAX_LINE + 8192,
            "the line was not held whole"
        );
        assert_eq!(l.next_line().unwrap(), Some(Physical::Text("next".into())));
        assert_eq!(l.line, 2);
    }
}
