//! Streaming jobs through the executor in chunks: results rendered in parallel, written in
//! input order, counted, and reported to the progress bar.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::{Input, Interrupt, Progress, RunError, Shard, Summary};
use crate::engine::Runner;
use crate::input::retry::Failed;
use crate::input::{Counting, Job, sniff};
use crate::output::{self, Format};
use crate::store::SessionStore;

pub type Reader = Counting<Box<dyn BufRead>>;

/// The checks of contract §13 on a file input, before anything runs.
fn check(path: &std::path::Path, csv: bool, require_input: bool) -> Result<(), RunError> {
    let name = path.display().to_string();
    let io_err = |e| RunError::Input {
        path: name.clone(),
        cause: e,
    };
    if let Err(what) = sniff::check_text(path).map_err(io_err)? {
        return Err(RunError::NotText { path: name, what });
    }
    if require_input && !sniff::has_commands(path, csv).map_err(io_err)? {
        return Err(RunError::NoCommands { path: name });
    }
    Ok(())
}

/// Every input of a run, opened, with the count of bytes read from them so far.
pub struct Inputs {
    pub(super) readers: Vec<(Input, Reader)>,
    pub(super) bytes: Arc<AtomicU64>,
    /// `--retry-failed`: the failed commands to run first.
    pub retry: Option<Vec<Failed>>,
}

impl Inputs {
    /// Opens every input; any that cannot be opened, or is not text (or, with
    /// `require_input`, has no command), stops the run before it starts.
    pub fn open(inputs: &[Input], require_input: bool) -> Result<Self, RunError> {
        for input in inputs {
            if let Input::Commands(p) | Input::Csv(p) = input {
                check(p, matches!(input, Input::Csv(_)), require_input)?;
            }
        }
        let bytes = Arc::new(AtomicU64::new(0));
        let readers = inputs
            .iter()
            .map(|i| Ok((i.clone(), open(i, &bytes)?)))
            .collect::<Result<_, RunError>>()?;
        Ok(Self {
            readers,
            bytes,
            retry: None,
        })
    }
}

fn open(input: &Input, counter: &Arc<AtomicU64>) -> Result<Reader, RunError> {
    let inner: Box<dyn BufRead> = match input {
        Input::Stdin { .. } => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        Input::Commands(p) | Input::Csv(p) => Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(p).map_err(|e| RunError::Input {
                path: p.display().to_string(),
                cause: e,
            })?,
        )),
    };
    Ok(Counting::new(inner, counter.clone()))
}

pub(super) fn input_size(input: &Input) -> u64 {
    match input {
        Input::Commands(p) | Input::Csv(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
        Input::Stdin { .. } => 0,
    }
}

/// Streams jobs through the executor in chunks, writing results in order. Once an
/// interrupt is requested, no further chunk starts: the rest of the input is only counted.
pub(super) struct Pump<'a, 'e> {
    executor: Box<dyn Runner + 'e>,
    format: Format,
    out: &'a mut dyn Write,
    summary: &'a mut Summary,
    progress: &'a dyn Progress,
    bytes: Arc<AtomicU64>,
    interrupt: Interrupt,
    /// Commands left unrun after an interrupt, and where the first of them is.
    pub(super) not_run: u64,
    pub(super) resume_at: Option<(String, u64)>,
    /// Jobs read so far, from every input.
    pub(super) seen: u64,
    /// `--shard K/N`: only this shard's jobs run.
    pub(super) shard: Option<(Shard, &'e dyn SessionStore)>,
}

impl<'a, 'e> Pump<'a, 'e> {
    pub(super) fn new(
        executor: Box<dyn Runner + 'e>,
        format: Format,
        out: &'a mut dyn Write,
        summary: &'a mut Summary,
        progress: &'a dyn Progress,
        bytes: Arc<AtomicU64>,
        interrupt: Interrupt,
    ) -> Self {
        Self {
            executor,
            format,
            out,
            summary,
            progress,
            bytes,
            interrupt,
            not_run: 0,
            resume_at: None,
            seen: 0,
            shard: None,
        }
    }

    /// Runs a chunk, unless an interrupt came: then its jobs are counted as not run.
    fn chunk_or_stop(&mut self, source: &Arc<str>, jobs: &mut Vec<Job>) -> Result<(), RunError> {
        if let Some((shard, store)) = self.shard {
            let before = jobs.len();
            shard.retain(jobs, store);
            if let Some((_, others)) = &mut self.summary.shard {
                *others += (before - jobs.len()) as u64;
            }
        }
        if self.interrupt.requested().is_none() {
            return self.chunk(source, jobs);
        }
        if let (None, Some(first)) = (&self.resume_at, jobs.first()) {
            self.resume_at = Some((source.to_string(), first.line));
        }
        self.not_run += jobs.len() as u64;
        Ok(())
    }

    fn chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Result<(), RunError> {
        let t = Instant::now();
        let results = self.executor.run_chunk(source, jobs);
        self.summary.execute += t.elapsed();
        // An interrupt stopped a run that goes one by one: the rest did not run.
        if let Some(first) = jobs.get(results.len()) {
            if self.resume_at.is_none() {
                self.resume_at = Some((source.to_string(), first.line));
            }
            self.not_run += (jobs.len() - results.len()) as u64;
        }
        let t = Instant::now();
        // Render slices in parallel, write them in order.
        let format = self.format;
        let buffers: Vec<Vec<u8>> = {
            results
                .par_chunks(1024)
                .map(|slice| {
                    let mut buf = Vec::with_capacity(slice.len() * 160);
                    output::render(format, slice, &mut buf);
                    buf
                })
                .collect()
        };
        for b in &buffers {
            self.out.write_all(b).map_err(RunError::Output)?;
        }
        if self.executor.streams() {
            // A target's results reach the output as the run goes, whole lines only.
            self.out.flush().map_err(RunError::Output)?;
        }
        for r in &results {
            self.summary.add(r);
        }
        self.summary.write += t.elapsed();
        self.progress
            .advance(jobs.len() as u64, self.bytes.load(Ordering::Relaxed));
        Ok(())
    }

    pub(super) fn drain(
        &mut self,
        source: &Arc<str>,
        jobs: impl Iterator<Item = io::Result<Job>>,
    ) -> Result<(), RunError> {
        let size = self.executor.chunk_size();
        let mut chunk: Vec<Job> = Vec::with_capacity(size);
        for job in jobs {
            self.seen += 1;
            chunk.push(job.map_err(|e| RunError::Input {
                path: source.to_string(),
                cause: e,
            })?);
            if chunk.len() == size {
                self.chunk_or_stop(source, &mut chunk)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            self.chunk_or_stop(source, &mut chunk)?;
        }
        Ok(())
    }
}
