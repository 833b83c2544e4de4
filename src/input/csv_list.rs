//! CSV lists of user/realm pairs (contract §6.1).
//!
//! Columns `user,realm[,server]`; the first row is a header only if it reads `user,realm` or
//! `user,realm,server` (any case, trimmed). RFC 4180 quoting, a UTF-8 BOM, CRLF line ends,
//! blank lines and `#` comment lines (in the first column of an unquoted line) are
//! tolerated. Each row becomes `refresh all_sessions` (or `terminate all_sessions`); a bad
//! row is an error result naming its line, and the other rows still run.

use std::io::{self, BufRead};

use crate::command::{Command, Task};
use crate::input::Job;
use crate::lines::{Lines, Physical};
use crate::message as msg;
use crate::site::Topology;

/// What a row does not say: the action, and the server and realm to use when it names none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvDefaults {
    /// Terminate instead of refresh (`--action terminate`).
    pub terminate: bool,
    /// The server for rows that name none (`--server`, else the policy's).
    pub server: Option<String>,
    /// The realm for rows with only a user column (`--realm`, else the policy's).
    pub realm: Option<String>,
}

/// The jobs of a CSV list.
///
/// Records are assembled from physical lines here rather than by the `csv` crate, because
/// every result must name the physical line of its row, and the crate's positions do not
/// count the comment and blank lines it skips. A record continues over line ends while a
/// quoted field is open (RFC 4180).
pub struct CsvSource<'t, R> {
    lines: Lines<R>,
    defaults: CsvDefaults,
    topology: &'t Topology,
    first: bool,
}

/// Splits one record into trimmed fields: `"…"` quotes a field, `""` inside it is a quote.
pub fn split_record(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::with_capacity(3);
    let mut chars = record.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a quoted field is not closed".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(c) => return Err(format!("`{c}` after a closing quote; expected a comma")),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
            let trimmed = field.trim_end_matches([' ', '\t']).len();
            field.truncate(trimmed);
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

impl<'t, R: BufRead> CsvSource<'t, R> {
    pub fn new(input: R, defaults: CsvDefaults, topology: &'t Topology) -> Self {
        Self {
            lines: Lines::new(input),
            defaults,
            topology,
            first: true,
        }
    }

    /// The next physical line: `Ok(text)`, or `Err(why)` for a line that cannot be a row.
    fn physical(&mut self) -> io::Result<Option<Result<String, &'static str>>> {
        Ok(self.lines.next_line()?.map(|p| match p {
            Physical::Text(t) => Ok(t),
            Physical::NotUtf8 => Err("the row is not valid UTF-8"),
            Physical::TooLong => Err("the row is longer than 16 MiB"),
        }))
    }

    /// The command for one record, or why the row is bad.
    fn row(&self, fields: &[String]) -> Result<Command, String> {
        if fields.len() > 3 {
            return Err(format!(
                "{} columns; expected user,realm[,server]",
                fields.len()
            ));
        }
        let user = fields.first().map_or("", String::as_str);
        if user.is_empty() {
            return Err("the user is empty; expected user,realm[,server]".into());
        }
        let realm = match fields.get(1).filter(|r| !r.is_empty()) {
            Some(r) => r.clone(),
            None => self
                .defaults
                .realm
                .clone()
                .ok_or("the realm is missing; expected user,realm[,server]")?,
        };
        let server = match fields.get(2).filter(|s| !s.is_empty()) {
            Some(s) => s.clone(),
            None => self.default_server(&realm),
        };
        let user = user.to_string();
        let task = if self.defaults.terminate {
            Task::SmsTerminateAll { user, realm }
        } else {
            Task::SmsRefreshAll { user, realm }
        };
        Ok(Command::Task { server, task })
    }

    /// `--server`, else the first server in topology order that serves the realm. For an
    /// unknown realm, the first server: the command then fails on the realm, as it should.
    fn default_server(&self, realm: &str) -> String {
        if let Some(s) = &self.defaults.server {
            return s.clone();
        }
        self.topology.default_server_name(realm).to_string()
    }
}

fn is_header(fields: &[String]) -> bool {
    let cells: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
    matches!(
        cells
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["user", "realm"] | ["user", "realm", "server"]
    )
}

impl<R: BufRead> Iterator for CsvSource<'_, R> {
    type Item = io::Result<Job>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = match self.physical() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(Err(why))) => {
                    let line = self.lines.line;
                    return Some(Ok(Job::invalid(
                        line,
                        "",
                        &msg::BAD_ROW,
                        format!("line {line}: {why}"),
                    )));
                }
                Ok(Some(Ok(text))) => text,
            };
            let start = self.lines.line;
            let first = std::mem::take(&mut self.first);
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let record = text;
            // Names hold no line breaks, so a quoted field never spans lines (contract §13):
            // an unbalanced quote is this row's error, and the next line is the next row.
            if record.matches('"').count() % 2 == 1 {
                return Some(Ok(Job::invalid(
                    start,
                    record,
                    &msg::BAD_ROW,
                    format!(
                        "line {start}: a quote is not closed on this line (a quoted field never spans lines)"
                    ),
                )));
            }
            let job = match split_record(&record) {
                Err(why) => {
                    Job::invalid(start, record, &msg::BAD_ROW, format!("line {start}: {why}"))
                }
                Ok(fields) if first && is_header(&fields) => continue,
                Ok(fields) => match self.row(&fields) {
                    Ok(cmd) => Job::command(start, cmd),
                    Err(why) => {
                        Job::invalid(start, record, &msg::BAD_ROW, format!("line {start}: {why}"))
                    }
                },
            };
            return Some(Ok(job));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::JobKind;
    use std::path::Path;

    const TOPO: &str = "realms:\n  ibm.com: {replica_sets: [www]}\n  b.org: {replica_sets: [b]}\nservers:\n  s1-webseald-h: {replica_sets: [b]}\n  s2-webseald-h: {replica_sets: [www]}\n";

    fn jobs(text: &str, defaults: CsvDefaults) -> Vec<Job> {
        let t = Topology::parse(Path::new("t.yaml"), TOPO).unwrap();
        CsvSource::new(text.as_bytes(), defaults, &t)
            .map(|j| j.unwrap())
            .collect()
    }

    fn cmd(j: &Job) -> String {
        match &j.kind {
            JobKind::Command(c) => c.to_string(),
            JobKind::Invalid { detail, .. } => format!("invalid: {detail}"),
        }
    }

    #[test]
    fn header_bom_comments_blank_lines_and_quotes() {
        let text = "\u{feff}User , REALM\r\n# comment\r\n\r\njohnq,ibm.com\r\n\"Jones, Mary\",b.org,s1-webseald-h\r\n";
        let got = jobs(text, CsvDefaults::default());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, 4);
        assert_eq!(
            cmd(&got[0]),
            "server task s2-webseald-h sms session refresh all_sessions johnq -realm ibm.com"
        );
        assert_eq!(got[1].line, 5);
        assert_eq!(
            cmd(&got[1]),
            "server task s1-webseald-h sms session refresh all_sessions \"Jones, Mary\" -realm b.org"
        );
    }

    #[test]
    fn first_row_is_data_unless_it_is_exactly_a_header() {
        let got = jobs(
            "user,realm,extra-webseald-x\njohnq,ibm.com\n",
            CsvDefaults::default(),
        );
        assert_eq!(
            cmd(&got[0]),
            "server task extra-webseald-x sms session refresh all_sessions user -realm realm"
        );
        let got = jobs("johnq,ibm.com\n", CsvDefaults::default());
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn bad_rows_are_results_and_the_rest_runs() {
        let text = "a,ibm.com\n,ibm.com\nb\nc,ibm.com,s1-webseald-h,x\nd,ibm.com\n";
        let got = jobs(text, CsvDefaults::default());
        let texts: Vec<String> = got.iter().map(cmd).collect();
        assert_eq!(
            texts[1],
            "invalid: line 2: the user is empty; expected user,realm[,server]"
        );
        assert_eq!(
            texts[2],
            "invalid: line 3: the realm is missing; expected user,realm[,server]"
        );
        assert_eq!(
            texts[3],
            "invalid: line 4: 4 columns; expected user,realm[,server]"
        );
        assert!(texts[4].ends_with("all_sessions d -realm ibm.com"));
    }

    #[test]
    fn defaults_action_server_and_realm() {
        let d = CsvDefaults {
            terminate: true,
            server: Some("s1-webseald-h".into()),
            realm: Some("b.org".into()),
        };
        let got = jobs("x\ny,ibm.com,s2-webseald-h\n", d);
        assert_eq!(
            cmd(&got[0]),
            "server task s1-webseald-h sms session terminate all_sessions x -realm b.org"
        );
        assert_eq!(
            cmd(&got[1]),
            "server task s2-webseald-h sms session terminate all_sessions y -realm ibm.com"
        );
    }

    #[test]
    fn quotes_double_and_never_span_lines() {
        let got = jobs(
            "\"a \"\"b\"\"\",ibm.com\n\"multi\nline\",ibm.com\nnext,ibm.com\n\"open,ibm.com\njo\"hn,ibm.com\nlast,ibm.com\n",
            CsvDefaults::default(),
        );
        assert_eq!(
            cmd(&got[0]),
            r#"server task s2-webseald-h sms session refresh all_sessions "a \"b\"" -realm ibm.com"#
        );
        // A quote left open is that line's error; the next physical line is the next row.
        let open = "a quote is not closed on this line (a quoted field never spans lines)";
        assert_eq!(
            (got[1].line, cmd(&got[1])),
            (2, format!("invalid: line 2: {open}"))
        );
        assert_eq!(got[2].line, 3);
        assert!(
            cmd(&got[2]).starts_with("invalid: line 3:"),
            "{}",
            cmd(&got[2])
        );
        assert_eq!(got[3].line, 4);
        assert!(cmd(&got[3]).ends_with("next -realm ibm.com"));
        assert_eq!(cmd(&got[4]), format!("invalid: line 5: {open}"));
        assert_eq!(cmd(&got[5]), format!("invalid: line 6: {open}"));
        assert_eq!(got[6].line, 7);
        assert!(cmd(&got[6]).ends_with("last -realm ibm.com"));
        assert_eq!(got.len(), 7);
        assert_eq!(split_record(" a , \"b c\" ,").unwrap(), ["a", "b c", ""]);
        assert!(split_record("\"a\"x,b").is_err());
    }

    #[test]
    fn invalid_utf8_is_a_bad_row() {
        let t = Topology::parse(Path::new("t.yaml"), TOPO).unwrap();
        let got: Vec<Job> = CsvSource::new(
            &b"a,ibm.com\n\xff\xfe,ibm.com\nb,ibm.com\n"[..],
            CsvDefaults::default(),
            &t,
        )
        .map(|j| j.unwrap())
        .collect();
        assert_eq!(cmd(&got[1]), "invalid: line 2: the row is not valid UTF-8");
        assert_eq!(got.len(), 3);
    }
}
