//! Inputs of a run (contract §6): pdadmin command files, CSV lists and policy plans, each
//! read as a stream of [`Job`]s. Every job becomes exactly one result, in input order.

pub(crate) mod csv_list;
pub mod retry;
pub mod sniff;

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::command::reader::{CommandReader, Entry};
use crate::command::{Command, parse};
use crate::message::{self as msg, Message};

pub use csv_list::{CsvDefaults, CsvSource};

/// What a job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// A command to execute (shared with its result, which formats it only when written).
    Command(Arc<Command>),
    /// A line or row that is not a command: an error result, with its message and detail.
    Invalid {
        message: &'static Message,
        detail: String,
    },
}

/// One unit of work: a command (or a bad line) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// 1-based line in the input (the first physical line of a continued command, the
    /// physical line of a CSV row, the ordinal of a planned command).
    pub line: u64,
    /// The text as read, shown for lines that are not commands.
    pub raw: String,
    pub kind: JobKind,
}

impl Job {
    pub fn command(line: u64, cmd: Command) -> Self {
        Self {
            line,
            raw: String::new(),
            kind: JobKind::Command(Arc::new(cmd)),
        }
    }

    pub fn invalid(
        line: u64,
        raw: impl Into<String>,
        message: &'static Message,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            line,
            raw: raw.into(),
            kind: JobKind::Invalid {
                message,
                detail: detail.into(),
            },
        }
    }
}

/// A reader that counts the bytes read through it, for progress.
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        Self { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.consume(n);
    }
}

/// The jobs of a pdadmin command file.
pub struct CommandSource<R> {
    reader: CommandReader<R>,
}

impl<R: BufRead> CommandSource<R> {
    pub fn new(input: R) -> Self {
        Self {
            reader: CommandReader::new(input),
        }
    }
}

impl<R: BufRead> Iterator for CommandSource<R> {
    type Item = io::Result<Job>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.reader.next()?.map(|entry| match entry {
            Entry::NotUtf8 { line } => {
                Job::invalid(line, "", &msg::SYNTAX_ERROR, "the line is not valid UTF-8")
            }
            Entry::TooLong { line } => Job::invalid(
                line,
                "",
                &msg::SYNTAX_ERROR,
                format!(
                    "the line is longer than {} MiB",
                    crate::lines::MAX_LINE >> 20
                ),
            ),
            Entry::Command { line, text } => match parse(&text) {
                Ok(cmd) => Job::command(line, cmd),
                Err(e) => Job::invalid(line, text, &msg::SYNTAX_ERROR, e.message),
            },
        }))
    }
}
