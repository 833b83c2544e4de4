//! Looking at an input before it runs (contract §13): a file that is not text is refused,
//! saying what it looks like, and an input with no command at all can be told apart.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// How much of a file is looked at.
const PEEK: usize = 8 * 1024;

/// `Err(what it looks like)` when more than one byte in 16 of the file's start is a NUL or
/// not UTF-8: an executable, an archive, a UTF-16 export.
pub fn check_text(path: &Path) -> io::Result<Result<(), String>> {
    let mut head = Vec::with_capacity(PEEK);
    File::open(path)?.take(PEEK as u64).read_to_end(&mut head)?;
    Ok(classify(&head))
}

/// The verdict on a file's first bytes.
pub fn classify(head: &[u8]) -> Result<(), String> {
    let bad = head.iter().filter(|b| **b == 0).count() + invalid_utf8_bytes(head);
    if bad * 16 <= head.len() {
        return Ok(());
    }
    let looks = match head {
        [0x7f, b'E', b'L', b'F', ..] => "an executable (ELF)",
        [b'M', b'Z', ..] => "a Windows executable",
        [b'P', b'K', 3, 4, ..] => "a ZIP archive (or an .xlsx or .docx file)",
        [0x1f, 0x8b, ..] => "a gzip-compressed file",
        [b'%', b'P', b'D', b'F', ..] => "a PDF document",
        [0xff, 0xfe, ..] | [0xfe, 0xff, ..] => {
            "UTF-16 text (convert it to UTF-8, e.g. with `iconv -f UTF-16 -t UTF-8`)"
        }
        _ if head.iter().skip(1).step_by(2).filter(|b| **b == 0).count() * 4 > head.len() => {
            "UTF-16 text without a byte order mark (convert it to UTF-8)"
        }
        _ => "binary data",
    };
    Err(format!("not a text file: it looks like {looks}"))
}

/// Bytes that are not part of valid UTF-8 (a sequence cut by the end of `head` is not
/// counted: the rest of it lies beyond what was read).
fn invalid_utf8_bytes(mut head: &[u8]) -> usize {
    let mut bad = 0;
    loop {
        match std::str::from_utf8(head) {
            Ok(_) => return bad,
            Err(e) => match e.error_len() {
                None => return bad,
                Some(n) => {
                    bad += n;
                    head = &head[e.valid_up_to() + n..];
                }
            },
        }
    }
}

/// Whether a file holds at least one line that is a command (or a CSV row): not blank, not
/// a `#` comment, not a CSV header. Stops at the first one.
pub fn has_commands(path: &Path, csv: bool) -> io::Result<bool> {
    let mut first = true;
    for line in BufReader::new(File::open(path)?).split(b'\n') {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let t = text.trim_start_matches('\u{feff}').trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let header = csv && first && {
            let cells: Vec<String> = t
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            cells == ["user", "realm"] || cells == ["user", "realm", "server"]
        };
        first = false;
        if !header {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_passes_and_binaries_say_what_they_look_like() {
        assert!(classify(b"server list\n# comment\n").is_ok());
        assert!(classify("Zoë Ångström,ibm.com\n".as_bytes()).is_ok());
        assert!(classify(b"").is_ok());
        let elf = [&[0x7f, b'E', b'L', b'F'][..], &[0u8; 200]].concat();
        assert!(classify(&elf).unwrap_err().contains("ELF"));
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("user,realm\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert!(classify(&utf16).unwrap_err().contains("UTF-16"));
        let latin1 = b"caf\xe9 cr\xe8me,ibm.com\n".repeat(4);
        assert!(classify(&latin1).is_err(), "8 bad bytes in 68");
        let one = [b"x".repeat(100), vec![0xe9]].concat();
        assert!(
            classify(&one).is_ok(),
            "one bad byte in 101 is a bad line, not a binary"
        );
    }
}
