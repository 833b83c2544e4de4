//! Streaming jobs through the executor in chunks: results rendered in parallel, written in
//! input order, counted, and reported to the progress bar.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

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
///
/// The three stages overlap (issue 24): this thread reads and parses the next chunk, and
/// renders and writes the results of the one before, while a second thread executes the
/// current one. One chunk waits between the stages at most, so the memory in flight is three
/// chunks; the results still reach the output in input order, and only what ran is written.
pub(super) struct Pump<'a, 'e> {
    executor: Box<dyn Runner + Send + 'e>,
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
    /// Whether the executor's results are flushed to the output chunk by chunk.
    executor_streams: bool,
}

/// A chunk back from the executing thread: its jobs, and what ran (`None`: an interrupt came
/// first, and none ran).
type Executed = (Vec<Job>, Option<Ran>);

/// A chunk's results, rendered on the executing thread (in parallel, while this thread reads
/// and writes: the CPU-heavy stages share one thread's turn, so two cores are not asked to
/// run four busy threads).
struct Ran {
    results: Vec<crate::exec::CommandResult>,
    rendered: Vec<Vec<u8>>,
    execute: Duration,
    render: Duration,
}

/// Executes a chunk and renders its results.
fn execute_and_render(
    executor: &mut (dyn Runner + Send + '_),
    format: Format,
    source: &Arc<str>,
    jobs: &[Job],
) -> Ran {
    let t = Instant::now();
    let results = executor.run_chunk(source, jobs);
    let execute = t.elapsed();
    let t = Instant::now();
    let rendered: Vec<Vec<u8>> = results
        .par_chunks(1024)
        .map(|slice| {
            let mut buf = Vec::with_capacity(slice.len() * 160);
            output::render(format, slice, &mut buf);
            buf
        })
        .collect();
    Ran {
        results,
        rendered,
        execute,
        render: t.elapsed(),
    }
}

impl<'a, 'e> Pump<'a, 'e> {
    pub(super) fn new(
        executor: Box<dyn Runner + Send + 'e>,
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
            executor_streams: false,
        }
    }

    /// Keeps this shard's jobs of a chunk.
    fn retain_shard(&mut self, jobs: &mut Vec<Job>) {
        if let Some((shard, store)) = self.shard {
            let before = jobs.len();
            shard.retain(jobs, store);
            if let Some((_, others)) = &mut self.summary.shard {
                *others += (before - jobs.len()) as u64;
            }
        }
    }

    /// Counts what did not run of a chunk, and where the first of it is.
    fn not_run_from(&mut self, source: &Arc<str>, jobs: &[Job], ran: usize) {
        if let Some(first) = jobs.get(ran) {
            if self.resume_at.is_none() {
                self.resume_at = Some((source.to_string(), first.line));
            }
            self.not_run += (jobs.len() - ran) as u64;
        }
    }

    /// Writes one executed chunk's rendered results, in order, and counts them.
    fn write(&mut self, source: &Arc<str>, executed: Executed) -> Result<(), RunError> {
        let (jobs, ran) = executed;
        let Some(ran) = ran else {
            self.not_run_from(source, &jobs, 0);
            return Ok(());
        };
        self.summary.execute += ran.execute;
        // An interrupt stopped a run that goes one by one: the rest did not run.
        self.not_run_from(source, &jobs, ran.results.len());
        let t = Instant::now();
        for b in &ran.rendered {
            self.out.write_all(b).map_err(RunError::Output)?;
        }
        if self.executor_streams {
            // A target's results reach the output as the run goes, whole lines only.
            self.out.flush().map_err(RunError::Output)?;
        }
        for r in &ran.results {
            self.summary.add(r);
        }
        self.summary.write += ran.render + t.elapsed();
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
        self.executor_streams = self.executor.streams();
        let started = Instant::now();
        // The executor works on its own thread for this input; it is handed back after.
        let mut executor = std::mem::replace(&mut self.executor, Box::new(Idle));
        let interrupt = self.interrupt.clone();
        let format = self.format;
        // Set when the run cannot go on (an input or output error): no chunk starts after.
        let halted = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            let (to_execute, chunks) = mpsc::sync_channel::<Vec<Job>>(1);
            let (executed, done) = mpsc::channel::<Executed>();
            let (executor, interrupt, halt) = (&mut executor, &interrupt, &halted);
            let worker = scope.spawn(move || {
                for jobs in chunks {
                    let go = interrupt.requested().is_none() && !halt.load(Ordering::SeqCst);
                    let ran =
                        go.then(|| execute_and_render(&mut **executor, format, source, &jobs));
                    if executed.send((jobs, ran)).is_err() {
                        break;
                    }
                }
            });
            let fed = self.feed(source, jobs, size, &to_execute, &done);
            if fed.is_err() {
                halted.store(true, Ordering::SeqCst);
            }
            drop(to_execute);
            // What is executing is written once it is done, whatever stopped the input; what
            // waited to start did not run.
            let mut written = Ok(());
            for chunk in done {
                if written.is_ok() {
                    written = self.write(source, chunk);
                    if written.is_err() {
                        halted.store(true, Ordering::SeqCst);
                    }
                }
            }
            // A panic while executing is not a short run: it goes on as the panic it was.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
            fed.and(written)
        });
        self.executor = executor;
        self.summary.streamed += started.elapsed();
        result
    }

    /// Reads `jobs` into chunks and hands each to the executing thread, writing whatever
    /// results have come back meanwhile.
    fn feed(
        &mut self,
        source: &Arc<str>,
        jobs: impl Iterator<Item = io::Result<Job>>,
        size: usize,
        to_execute: &mpsc::SyncSender<Vec<Job>>,
        done: &mpsc::Receiver<Executed>,
    ) -> Result<(), RunError> {
        let mut chunk: Vec<Job> = Vec::with_capacity(size);
        let mut reading = Instant::now();
        let mut send = |pump: &mut Self, mut chunk: Vec<Job>| -> Result<(), RunError> {
            pump.retain_shard(&mut chunk);
            pump.summary.read += reading.elapsed();
            while let Ok(ready) = done.try_recv() {
                pump.write(source, ready)?;
            }
            // The executing thread ends only after this sender is dropped.
            let _ = to_execute.send(chunk);
            reading = Instant::now();
            Ok(())
        };
        for job in jobs {
            self.seen += 1;
            chunk.push(job.map_err(|e| RunError::Input {
                path: source.to_string(),
                cause: e,
            })?);
            if chunk.len() == size {
                send(
                    self,
                    std::mem::replace(&mut chunk, Vec::with_capacity(size)),
                )?;
            }
        }
        if !chunk.is_empty() {
            send(self, chunk)?;
        }
        Ok(())
    }
}

/// Stands in for the executor while it works on its own thread.
struct Idle;

impl Runner for Idle {
    fn run_chunk(&mut self, _: &Arc<str>, _: &[Job]) -> Vec<crate::exec::CommandResult> {
        Vec::new()
    }

    fn threads(&self) -> usize {
        0
    }
}
