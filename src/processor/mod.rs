//! The command processor: envelopes in, results out. It holds the state
//! decisions need in memory (rebuilt from the store when it opens), decides
//! each command, and appends the events of a whole batch of commands in one
//! store transaction — group commit: one fsync for many commands, each still
//! answered on its own, none answered before the transaction is durable.
//!
//! It knows nothing of NATS: [`writer`] runs it on its own thread behind a
//! channel, and the bus module feeds that channel.

pub mod writer;

use std::collections::HashMap;

use prost::Message;
use uuid::Uuid;

use crate::domain::{
    authorize, decide, evolve, region_date, Actor, Policy, RejectCode, Rejection, State,
};
use crate::store::{chain, CommandRecord, EventStore, NewEvent, Position, StoreError, StoredEvent};
use crate::wire::{self, pb, DecodeError, Envelope};

/// Why the processor could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// The store failed.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// A stored event could not be read back.
    #[error("event at position {position} cannot be decoded: {source}")]
    Undecodable {
        /// Where.
        position: Position,
        /// Why.
        source: DecodeError,
    },
    /// The integrity chain is broken; the store was changed outside tepai.
    #[error("event at position {position} breaks the integrity chain; run `tepai ops verify`")]
    ChainBroken {
        /// The first bad event.
        position: Position,
    },
}

/// Decides commands and appends their events; the single writer of a store.
pub struct Processor {
    store: EventStore,
    state: State,
    policy: Policy,
    /// Transactions committed since opening; fewer than commands under load.
    commits: u64,
    /// False after a failed commit left `state` ahead of the store; the next
    /// batch rebuilds it first.
    state_in_sync: bool,
    /// Whether each envelope's actor is checked with `authorize` before its
    /// command is decided. The bus sets that actor from the NATS subject.
    authorization: bool,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("head", &self.store.head().position)
            .finish_non_exhaustive()
    }
}

/// Rebuilds the decision state from every stored event, checking the
/// integrity chain on the way: a node must not decide on a history that was
/// changed behind its back.
pub fn load_state(store: &EventStore) -> Result<State, ProcessorError> {
    let mut state = State::default();
    let mut previous = chain::GENESIS;
    let mut expected = 1;
    store.for_each_from(0, |stored: StoredEvent| {
        if stored.position != expected
            || chain::link_hash(&previous, &stored.fields()) != stored.hash
        {
            return Err(ProcessorError::ChainBroken {
                position: stored.position,
            });
        }
        let event = wire::decode_event_payload(&stored.payload).map_err(|source| {
            ProcessorError::Undecodable {
                position: stored.position,
                source,
            }
        })?;
        evolve(&mut state, &event);
        previous = stored.hash;
        expected += 1;
        Ok(())
    })?;
    Ok(state)
}

/// Counts decided commands by outcome and code, for `/metrics`.
fn count_outcomes(answers: &[Answer]) {
    for answer in answers {
        let Answer::Decided(_, result) = answer else {
            continue;
        };
        match &result.outcome {
            Some(pb::command_result::Outcome::Rejected(r)) => {
                metrics::counter!("tepai_commands_total", "outcome" => "rejected", "code" => r.code().as_str_name())
                    .increment(1);
            }
            _ => metrics::counter!("tepai_commands_total", "outcome" => "accepted", "code" => "OK")
                .increment(1),
        }
    }
}

/// How one command of a batch was answered.
enum Answer {
    /// Decided now; stored with the batch. Becomes UNAVAILABLE if the
    /// commit fails.
    Decided(Uuid, pb::CommandResult),
    /// Answered before (a resent command id); nothing to store.
    Replayed(pb::CommandResult),
    /// The store could not be asked.
    Unavailable(Uuid, String),
}

fn unavailable(command_id: Uuid, message: &str) -> pb::CommandResult {
    wire::rejected(
        command_id.hyphenated().to_string(),
        RejectCode::Unavailable,
        "UNAVAILABLE",
        format!("{message}; nothing was written, retry with the same command_id"),
    )
}

/// Why a commit failed, in words an operator can act on: a full disk or a
/// read-only data directory is named as such, since both heal without a
/// restart once space or write access returns.
fn commit_failure(error: &StoreError) -> String {
    use rusqlite::ErrorCode;
    let code = match error {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => Some(e.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DiskFull) => "the event store cannot write: the disk is full".into(),
        Some(ErrorCode::ReadOnly) => {
            "the event store cannot write: its data directory is read-only".into()
        }
        Some(ErrorCode::SystemIoFailure) => {
            format!("the event store cannot write: i/o error ({error})")
        }
        _ => format!("the event store could not commit ({error})"),
    }
}

impl Processor {
    /// Opens a processor over `store`, rebuilding the state from it.
    pub fn open(store: EventStore, policy: Policy) -> Result<Self, ProcessorError> {
        let state = load_state(&store)?;
        Ok(Self {
            store,
            state,
            policy,
            commits: 0,
            state_in_sync: true,
            authorization: false,
        })
    }

    /// Turns authorization on or off: when on, a command is decided only if
    /// its envelope's actor may send it (`UNAUTHORIZED` otherwise, stored
    /// in the command log like any rule's refusal).
    pub fn with_authorization(mut self, on: bool) -> Self {
        self.authorization = on;
        self
    }

    /// The decision state, for inspection.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Position of the last committed event.
    pub fn head(&self) -> Position {
        self.store.head().position
    }

    /// Transactions committed since opening.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// The store, for reads.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Processes one command on its own (a batch of one).
    pub fn process(&mut self, envelope: Envelope, now_ms: i64) -> pb::CommandResult {
        self.process_batch(vec![envelope], now_ms)
            .pop()
            .unwrap_or_else(|| unavailable(Uuid::nil(), "the processor gave no answer"))
    }

    /// Decides every envelope in order, each seeing the effects of those
    /// before it, and commits all their events and results in one
    /// transaction. Returns one result per envelope, in order. `now_ms` is
    /// the processing time: it stamps the events and sets "today".
    pub fn process_batch(&mut self, batch: Vec<Envelope>, now_ms: i64) -> Vec<pb::CommandResult> {
        if !self.state_in_sync {
            match load_state(&self.store) {
                Ok(state) => {
                    self.state = state;
                    self.state_in_sync = true;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot rebuild the state; refusing commands");
                    return batch
                        .iter()
                        .map(|e| unavailable(e.command_id, "the command state cannot be rebuilt"))
                        .collect();
                }
            }
        }

        let today = region_date(now_ms);
        let mut next_position = self.store.head().position + 1;
        let mut events: Vec<NewEvent> = Vec::new();
        let mut records: Vec<CommandRecord> = Vec::new();
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let mut decided_here: HashMap<Uuid, usize> = HashMap::new();

        for envelope in batch {
            let command_id = envelope.command_id;
            let span = tracing::info_span!(
                "command",
                command_id = %command_id,
                correlation_id = %envelope.correlation_id,
                command = envelope.command.name(),
            );
            let _entered = span.enter();

            // A command id seen earlier in this batch gets the same answer.
            if let Some(&index) = decided_here.get(&command_id) {
                let again = match &answers[index] {
                    Answer::Decided(id, result) => Answer::Decided(*id, result.clone()),
                    Answer::Replayed(result) => Answer::Replayed(result.clone()),
                    Answer::Unavailable(id, message) => Answer::Unavailable(*id, message.clone()),
                };
                answers.push(again);
                continue;
            }
            decided_here.insert(command_id, answers.len());

            match self.store.command_result(&command_id) {
                Ok(Some(bytes)) => {
                    let answer = match pb::CommandResult::decode(bytes.as_slice()) {
                        Ok(result) => Answer::Replayed(result),
                        Err(_) => Answer::Unavailable(
                            command_id,
                            "its stored result is unreadable".into(),
                        ),
                    };
                    tracing::debug!("resent command; returning the first answer");
                    answers.push(answer);
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "cannot look up the command log");
                    answers.push(Answer::Unavailable(
                        command_id,
                        "the command log cannot be read".into(),
                    ));
                    continue;
                }
            }

            let result = match self.decide_one(&envelope, today) {
                Err(rejection) => {
                    tracing::debug!(rule = rejection.rule(), "rejected");
                    wire::rejection_result(command_id.hyphenated().to_string(), &rejection)
                }
                Ok(decided) => {
                    let mut written = Vec::with_capacity(decided.len());
                    for event in decided {
                        let stream = event.stream();
                        let stream_version = self.state.version(stream) + 1;
                        evolve(&mut self.state, &event);
                        let new_event = NewEvent {
                            position: next_position,
                            event_id: Uuid::now_v7(),
                            stream_id: stream.to_string(),
                            stream_version,
                            event_type: event.type_name().to_owned(),
                            schema_version: wire::EVENT_SCHEMA_VERSION,
                            payload: wire::encode_event_payload(&event),
                            correlation_id: envelope.correlation_id.clone(),
                            causation_id: command_id.hyphenated().to_string(),
                            actor: envelope.actor.clone(),
                            recorded_at: now_ms,
                        };
                        written.push(pb::WrittenEvent {
                            stream_id: new_event.stream_id.clone(),
                            stream_version,
                            global_position: next_position,
                            event_id: new_event.event_id.hyphenated().to_string(),
                        });
                        events.push(new_event);
                        next_position += 1;
                    }
                    tracing::debug!(events = written.len(), "accepted");
                    wire::accepted(command_id.hyphenated().to_string(), written)
                }
            };
            records.push(CommandRecord {
                command_id,
                result: result.encode_to_vec(),
                recorded_at: now_ms,
            });
            answers.push(Answer::Decided(command_id, result));
        }

        let failure = if records.is_empty() {
            None
        } else {
            self.commit(&events, &records).err()
        };
        if failure.is_none() {
            count_outcomes(&answers);
        }
        answers
            .into_iter()
            .map(|answer| match (answer, &failure) {
                (Answer::Decided(_, result), None) => result,
                (Answer::Decided(id, _), Some(why)) => unavailable(id, why),
                (Answer::Replayed(result), _) => result,
                (Answer::Unavailable(id, message), _) => unavailable(id, &message),
            })
            .collect()
    }

    fn decide_one(
        &self,
        envelope: &Envelope,
        today: crate::domain::Date,
    ) -> Result<Vec<crate::domain::Event>, Rejection> {
        // Before anything about the target, even its version, is revealed.
        if self.authorization {
            authorize(
                &self.state,
                &Actor::parse(&envelope.actor),
                &envelope.command,
            )?;
        }
        if let Some(expected) = envelope.expected_version {
            let stream = envelope.command.target();
            let actual = self.state.version(stream);
            if expected != actual {
                return Err(Rejection::WrongExpectedVersion {
                    stream,
                    expected,
                    actual,
                });
            }
        }
        decide(&self.state, &self.policy, &envelope.command, today)
    }

    /// Commits the batch; on failure returns what producers are told.
    fn commit(&mut self, events: &[NewEvent], records: &[CommandRecord]) -> Result<(), String> {
        match self.store.append(events, records) {
            Ok(_) => {
                self.commits += 1;
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, commands = records.len(), "commit failed; the batch is answered UNAVAILABLE");
                // The state already holds the batch's events; rebuild it
                // from the store before deciding anything else.
                self.state_in_sync = events.is_empty();
                Err(commit_failure(&error))
            }
        }
    }
}
