//! The command processor over a real SQLite store: decisions, group
//! commit, idempotency, atomic multi-stream commands, optimistic
//! concurrency, and rebuilding state on reopen.

use tepai::domain::{evolve, State};
use tepai::processor::writer::{CommandWriter, WriterOptions};
use tepai::wire::{self, pb};

use crate::support::*;

fn command_log_rows(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(store_path(dir)).unwrap();
    conn.query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_accepted_command_reports_its_stream_version_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let commissioner = id();

    let result = processor.process(
        decoded(envelope(register(&commissioner, "张涛", HOHHOT))),
        NOW_MS,
    );

    let written = accepted(&result);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].stream_id, format!("commissioner-{commissioner}"));
    assert_eq!(
        (written[0].stream_version, written[0].global_position),
        (1, 1)
    );
    let stored = processor
        .store()
        .read_stream(&written[0].stream_id)
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event_id.to_string(), written[0].event_id);
    assert_eq!(stored[0].event_type, "CommissionerRegistered");
    assert_eq!(stored[0].causation_id, result.command_id);
    assert_eq!(stored[0].actor, "test");
}

#[test]
fn a_resent_command_returns_the_first_answer_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let first = envelope(register(&id(), "张涛", HOHHOT));
    let rejected_first = envelope(register(&id(), "王芳", "150300"));

    let answer = processor.process(decoded(first.clone()), NOW_MS);
    let rejection = processor.process(decoded(rejected_first.clone()), NOW_MS);
    let head = processor.head();
    let again = processor.process(decoded(first), NOW_MS + 1000);
    let rejection_again = processor.process(decoded(rejected_first), NOW_MS + 1000);

    assert_eq!(again, answer);
    assert_eq!(rejection_again, rejection);
    assert_eq!(processor.head(), head);
    assert_eq!(command_log_rows(dir.path()), 2);
}

#[test]
fn a_rejection_in_a_batch_does_not_affect_the_other_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let (a, b) = (id(), id());
    let batch = vec![
        decoded(envelope(register(&a, "张涛", HOHHOT))),
        decoded(envelope(register(&a, "张涛", HOHHOT))),
        decoded(envelope(register(&b, "李强", BAOTOU))),
    ];

    let results = processor.process_batch(batch, NOW_MS);

    assert_eq!(accepted(&results[0])[0].global_position, 1);
    assert_eq!(rejected(&results[1]).0, pb::RejectCode::AlreadyExists);
    assert_eq!(accepted(&results[2])[0].global_position, 2);
    assert_eq!(processor.head(), 2);
}

#[test]
fn the_same_command_id_twice_in_one_batch_is_decided_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let e = envelope(register(&id(), "张涛", HOHHOT));

    let results = processor.process_batch(vec![decoded(e.clone()), decoded(e)], NOW_MS);

    assert_eq!(results[0], results[1]);
    assert_eq!(processor.head(), 1);
}

#[test]
fn retiring_ends_every_running_post_in_the_same_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let (c, w1, w2, p1, p2) = (id(), id(), id(), id(), id());
    for command in [
        register(&c, "张涛", HOHHOT),
        establish(&w1, "金宇生物工作站", HOHHOT, 5),
        establish(&w2, "包头稀土工作站", BAOTOU, 5),
        appoint(&p1, &c, &w1, HOHHOT, 20),
        appoint(&p2, &c, &w2, BAOTOU, 20),
    ] {
        accepted(&processor.process(decoded(envelope(command)), NOW_MS));
    }

    let result = processor.process(decoded(envelope(retire(&c, "2025-06-30"))), NOW_MS);

    let streams: Vec<&str> = accepted(&result)
        .iter()
        .map(|e| e.stream_id.as_str())
        .collect();
    assert_eq!(
        streams,
        [
            format!("commissioner-{c}"),
            format!("post-{p1}"),
            format!("post-{p2}")
        ]
    );
    let positions: Vec<u64> = accepted(&result)
        .iter()
        .map(|e| e.global_position)
        .collect();
    assert_eq!(positions, [6, 7, 8]);
    for post in [&p1, &p2] {
        let post = processor
            .state()
            .post(tepai::domain::PostId::parse("p", post).unwrap())
            .unwrap();
        assert_eq!(post.last_day().to_string(), "2025-06-30");
    }
}

#[test]
fn expected_version_must_match_the_target_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let c = id();
    accepted(&processor.process(decoded(envelope(register(&c, "张涛", HOHHOT))), NOW_MS));
    let suspend = |version: u64| {
        let mut e = envelope(pb::command_envelope::Command::SuspendCommissioner(
            pb::SuspendCommissioner {
                commissioner_id: c.clone(),
                reason: "审查".into(),
            },
        ));
        e.expected_version = Some(version);
        decoded(e)
    };

    let stale = processor.process(suspend(0), NOW_MS);
    let (code, rule, message) = rejected(&stale);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Conflict, "WRONG_EXPECTED_VERSION")
    );
    assert!(
        message.contains("version 1, not the expected 0"),
        "{message}"
    );

    let current = processor.process(suspend(1), NOW_MS);
    assert_eq!(accepted(&current)[0].stream_version, 2);
}

#[test]
fn reopening_rebuilds_the_same_state_and_continues_the_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (c, w, p) = (id(), id(), id());
    let state_before = {
        let mut processor = open_processor(dir.path());
        for command in [
            register(&c, "张涛", HOHHOT),
            establish(&w, "蒙草种业工作站", HOHHOT, 2),
            appoint(&p, &c, &w, HOHHOT, 40),
            retire(&c, "2025-05-31"),
        ] {
            accepted(&processor.process(decoded(envelope(command)), NOW_MS));
        }
        processor.state().clone()
    };

    let mut reopened = open_processor(dir.path());

    assert_eq!(reopened.state(), &state_before);
    let mut folded = State::default();
    for stored in reopened.store().read_from(0, usize::MAX).unwrap() {
        evolve(
            &mut folded,
            &wire::decode_event_payload(&stored.payload).unwrap(),
        );
    }
    assert_eq!(folded, state_before);
    let next = reopened.process(decoded(envelope(register(&id(), "李强", BAOTOU))), NOW_MS);
    assert_eq!(accepted(&next)[0].global_position, 6);
}

#[test]
fn concurrent_producers_share_commits_and_each_gets_its_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let writer =
        CommandWriter::spawn(open_processor(dir.path()), WriterOptions::default()).unwrap();
    const PRODUCERS: usize = 8;
    const EACH: usize = 40;

    let threads: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let handle = writer.handle();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|_| {
                        let e = envelope(register(&id(), "张涛", HOHHOT));
                        let command_id = e.command_id.clone();
                        let result = handle.submit_blocking(decoded(e));
                        assert_eq!(result.command_id, command_id);
                        accepted(&result)[0].global_position
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut positions: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let processor = writer.join().unwrap();

    positions.sort_unstable();
    let all = (PRODUCERS * EACH) as u64;
    assert_eq!(positions, (1..=all).collect::<Vec<_>>());
    assert!(
        processor.commits() < all,
        "{} commits for {all} commands: no group commit happened",
        processor.commits()
    );
    assert!(processor.store().verify_chain().unwrap().is_clean());
}

#[tokio::test]
async fn a_producers_batch_is_one_commit_even_past_the_writers_group_size() {
    let dir = tempfile::tempdir().unwrap();
    // Groups of at most 2 commands: a batch of 5 must still go alone, whole.
    let options = WriterOptions {
        max_batch: 2,
        ..WriterOptions::default()
    };
    let writer = CommandWriter::spawn(open_processor(dir.path()), options).unwrap();
    let handle = writer.handle();
    let alone = handle
        .submit(decoded(envelope(register(&id(), "张涛", HOHHOT))))
        .await;
    let batch: Vec<_> = (0..5)
        .map(|_| envelope(register(&id(), "李娜", BAOTOU)))
        .collect();
    let ids: Vec<String> = batch.iter().map(|e| e.command_id.clone()).collect();
    let results = handle
        .submit_batch(batch.into_iter().map(decoded).collect())
        .await;
    drop(handle);
    let processor = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();

    assert_eq!(accepted(&alone)[0].global_position, 1);
    let answered: Vec<(String, u64)> = results
        .iter()
        .map(|r| (r.command_id.clone(), accepted(r)[0].global_position))
        .collect();
    let expected: Vec<(String, u64)> = ids.into_iter().zip(2..=6).collect();
    assert_eq!(answered, expected, "in order, one result per command");
    assert_eq!(processor.commits(), 2, "the lone command, then the batch");
}
