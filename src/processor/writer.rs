//! The writer thread: owns the [`Processor`] and turns a queue of commands
//! into group commits. It takes whatever is waiting (up to a bound) as one
//! batch, so under load many commands share one fsync, while a lone command
//! goes through at once. SQLite work stays off the async threads.

use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use super::Processor;
use crate::domain::RejectCode;
use crate::store::Position;
use crate::wire::{self, pb, Envelope};

/// Tuning of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Most commands in one batch (one transaction).
    pub max_batch: usize,
    /// Commands that may wait in the queue; senders wait beyond that.
    pub queue: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue: 8192,
        }
    }
}

struct Job {
    envelope: Envelope,
    reply: oneshot::Sender<pb::CommandResult>,
}

/// Submits commands to the writer thread. Cheap to clone; the thread stops
/// when every handle is gone.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    committed: watch::Receiver<Position>,
}

/// The running writer thread.
#[derive(Debug)]
pub struct CommandWriter {
    handle: WriterHandle,
    thread: JoinHandle<Processor>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn writer_gone(envelope_id: uuid::Uuid) -> pb::CommandResult {
    wire::rejected(
        envelope_id.hyphenated().to_string(),
        RejectCode::Unavailable,
        "UNAVAILABLE",
        "the command writer has stopped; retry with the same command_id",
    )
}

impl CommandWriter {
    /// Starts the writer thread over `processor`.
    pub fn spawn(processor: Processor, options: WriterOptions) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::channel(options.queue.max(1));
        let (committed_tx, committed) = watch::channel(processor.head());
        let thread = std::thread::Builder::new()
            .name("tepai-writer".into())
            .spawn(move || run(processor, receiver, committed_tx, options.max_batch.max(1)))?;
        Ok(Self {
            handle: WriterHandle { jobs, committed },
            thread,
        })
    }

    /// A handle to submit commands with.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Waits until every other handle is dropped and the queue is drained,
    /// then returns the processor.
    pub fn join(self) -> std::thread::Result<Processor> {
        drop(self.handle);
        self.thread.join()
    }
}

fn run(
    mut processor: Processor,
    mut receiver: mpsc::Receiver<Job>,
    committed: watch::Sender<Position>,
    max_batch: usize,
) -> Processor {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        jobs.push(first);
        while jobs.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (envelopes, replies): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|j| (j.envelope, j.reply)).unzip();
        let span = tracing::debug_span!("batch", commands = envelopes.len());
        let results = span.in_scope(|| processor.process_batch(envelopes, now_ms()));
        committed.send_replace(processor.head());
        metrics::histogram!("tepai_commit_batch_size").record(replies.len() as f64);
        metrics::gauge!("tepai_store_head").set(processor.head() as f64);
        for (reply, result) in replies.into_iter().zip(results) {
            // A producer that stopped waiting is no reason to stop.
            let _ = reply.send(result);
        }
    }
    processor
}

impl WriterHandle {
    /// Submits a decoded command and waits for its result, given only after
    /// its events are durable.
    pub async fn submit(&self, envelope: Envelope) -> pb::CommandResult {
        let command_id = envelope.command_id;
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { envelope, reply }).await.is_err() {
            return writer_gone(command_id);
        }
        answer.await.unwrap_or_else(|_| writer_gone(command_id))
    }

    /// Like [`WriterHandle::submit`], for threads outside an async runtime.
    pub fn submit_blocking(&self, envelope: Envelope) -> pb::CommandResult {
        let command_id = envelope.command_id;
        let (reply, answer) = oneshot::channel();
        if self.jobs.blocking_send(Job { envelope, reply }).is_err() {
            return writer_gone(command_id);
        }
        answer
            .blocking_recv()
            .unwrap_or_else(|_| writer_gone(command_id))
    }

    /// Decodes envelope bytes and submits them. Bytes that do not decode are
    /// answered `INVALID_ARGUMENT` here, without reaching the writer.
    pub async fn submit_bytes(&self, bytes: &[u8]) -> pb::CommandResult {
        match wire::decode_envelope(bytes) {
            Ok(envelope) => self.submit(envelope).await,
            Err(error) => invalid_request(bytes, &error),
        }
    }

    /// The position of the last committed event; changes after each commit.
    pub fn committed(&self) -> watch::Receiver<Position> {
        self.committed.clone()
    }
}

/// The answer to bytes that are not a valid envelope. Echoes the command id
/// when it can be read, so the producer can match the answer.
pub fn invalid_request(bytes: &[u8], error: &wire::DecodeError) -> pb::CommandResult {
    use prost::Message;
    let command_id = pb::CommandEnvelope::decode(bytes)
        .map(|e| e.command_id)
        .ok()
        .filter(|id| id.len() <= 36)
        .unwrap_or_default();
    wire::rejected(
        command_id,
        RejectCode::InvalidArgument,
        error.rule(),
        error.to_string(),
    )
}
