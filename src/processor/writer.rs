//! The writer thread: owns the [`Processor`] and turns a queue of commands
//! into group commits. It takes whatever is waiting (up to a bound) as one
//! batch, so under load many commands share one fsync, while a lone command
//! goes through at once. SQLite work stays off the async threads.
//!
//! A producer's batch (`tepai.cmd.submit_batch`) is one job and is never
//! split: its commands share one transaction with whatever else is
//! waiting, so a batch of 500 costs one fsync, not 500.

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
    /// Most commands in one group commit (one transaction); a producer's
    /// batch larger than it is committed alone, never split.
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

/// What waits in the writer's queue: one command, or a producer's batch,
/// answered together once their transaction is durable.
enum Job {
    One {
        envelope: Envelope,
        reply: oneshot::Sender<pb::CommandResult>,
    },
    Batch {
        envelopes: Vec<Envelope>,
        reply: oneshot::Sender<Vec<pb::CommandResult>>,
    },
}

impl Job {
    fn commands(&self) -> usize {
        match self {
            Job::One { .. } => 1,
            Job::Batch { envelopes, .. } => envelopes.len(),
        }
    }
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
    // A job that did not fit in the last group: it starts the next one, so
    // a producer's batch is never split across transactions.
    let mut carried: Option<Job> = None;
    loop {
        let Some(first) = carried.take().or_else(|| receiver.blocking_recv()) else {
            break;
        };
        let mut commands = first.commands();
        jobs.push(first);
        while commands < max_batch {
            match receiver.try_recv() {
                Ok(job) if commands + job.commands() > max_batch => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => {
                    commands += job.commands();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut envelopes = Vec::with_capacity(commands);
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match job {
                Job::One { envelope, reply } => {
                    envelopes.push(envelope);
                    replies.push(Reply::One(reply));
                }
                Job::Batch {
                    envelopes: batch,
                    reply,
                } => {
                    replies.push(Reply::Batch(batch.len(), reply));
                    envelopes.extend(batch);
                }
            }
        }
        let span = tracing::debug_span!("batch", commands = envelopes.len());
        let results = span.in_scope(|| processor.process_batch(envelopes, now_ms()));
        committed.send_replace(processor.head());
        metrics::histogram!("tepai_commit_batch_size").record(results.len() as f64);
        metrics::gauge!("tepai_store_head").set(processor.head() as f64);
        let mut results = results.into_iter();
        for reply in replies {
            // A producer that stopped waiting is no reason to stop.
            match reply {
                Reply::One(reply) => {
                    if let Some(result) = results.next() {
                        let _ = reply.send(result);
                    }
                }
                Reply::Batch(count, reply) => {
                    let _ = reply.send(results.by_ref().take(count).collect());
                }
            }
        }
    }
    processor
}

/// Where a group's results go back to, in the group's order.
enum Reply {
    One(oneshot::Sender<pb::CommandResult>),
    Batch(usize, oneshot::Sender<Vec<pb::CommandResult>>),
}

impl WriterHandle {
    /// Submits a decoded command and waits for its result, given only after
    /// its events are durable.
    pub async fn submit(&self, envelope: Envelope) -> pb::CommandResult {
        let command_id = envelope.command_id;
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job::One { envelope, reply }).await.is_err() {
            return writer_gone(command_id);
        }
        answer.await.unwrap_or_else(|_| writer_gone(command_id))
    }

    /// Submits a producer's batch as one job, decided in order in one
    /// transaction, and waits for one result per envelope, in order, given
    /// only after their events are durable.
    pub async fn submit_batch(&self, envelopes: Vec<Envelope>) -> Vec<pb::CommandResult> {
        let ids: Vec<uuid::Uuid> = envelopes.iter().map(|e| e.command_id).collect();
        let (reply, answer) = oneshot::channel();
        if self
            .jobs
            .send(Job::Batch { envelopes, reply })
            .await
            .is_err()
        {
            return ids.into_iter().map(writer_gone).collect();
        }
        answer
            .await
            .unwrap_or_else(|_| ids.into_iter().map(writer_gone).collect())
    }

    /// Like [`WriterHandle::submit`], for threads outside an async runtime.
    pub fn submit_blocking(&self, envelope: Envelope) -> pb::CommandResult {
        let command_id = envelope.command_id;
        let (reply, answer) = oneshot::channel();
        if self
            .jobs
            .blocking_send(Job::One { envelope, reply })
            .is_err()
        {
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
