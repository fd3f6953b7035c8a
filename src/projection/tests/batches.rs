//! Applying batches: redeliveries are skipped; a gap, an undecodable or an
//! inconsistent event stops the whole batch; the checkpoint survives a
//! reopen.

use super::*;

#[test]
fn redelivered_batches_are_skipped_and_change_nothing() {
    let all = envelopes(&history());
    let once = fed(26);

    let mut f = fixture();
    let first = f.projection.apply_batch(&all[..10]).unwrap();
    assert_eq!(
        first,
        ApplyOutcome {
            applied: 10,
            skipped: 0,
            checkpoint: 10
        }
    );
    // Overlapping redelivery, then a batch with an in-batch duplicate.
    let overlap = f.projection.apply_batch(&all[5..20]).unwrap();
    assert_eq!((overlap.applied, overlap.skipped), (10, 5));
    let mut tail = all[20..].to_vec();
    tail.insert(2, all[21].clone());
    let dup = f.projection.apply_batch(&tail).unwrap();
    assert_eq!((dup.applied, dup.skipped, dup.checkpoint), (6, 1, 26));
    let again = f.projection.apply_batch(&all).unwrap();
    assert_eq!(
        again,
        ApplyOutcome {
            applied: 0,
            skipped: 26,
            checkpoint: 26
        }
    );
    assert_eq!(f.views.checkpoint().unwrap(), 26);
    assert_eq!(snapshot(&f.views, 0), snapshot(&once.views, 0));
}

#[test]
fn a_gap_is_reported_and_nothing_of_the_batch_is_applied() {
    let all = envelopes(&history());
    let mut f = fed(3);
    let batch = [all[3].clone(), all[4].clone(), all[6].clone()];
    let result = f.projection.apply_batch(&batch);
    assert!(matches!(
        result,
        Err(ProjectionError::Gap {
            expected: 6,
            got: 7
        })
    ));
    assert_eq!(f.projection.checkpoint(), 3);
    assert_eq!(f.views.checkpoint().unwrap(), 3);
    // Position 4 established w(1); it must not be visible.
    let w1 = f.views.workstation(
        &pb::WorkstationQuery {
            workstation_id: w(1).to_string(),
            ..Default::default()
        },
        today(),
    );
    assert!(matches!(w1, Err(QueryError::NotFound(_))));
    let resumed = f.projection.apply_batch(&all[3..]).unwrap();
    assert_eq!(resumed.checkpoint, 26);
}

#[test]
fn an_envelope_without_a_valid_event_is_undecodable_and_stops_the_batch() {
    let all = envelopes(&history());
    let mut f = fed(3);
    let mut missing = all[3].clone();
    missing.event = None;
    let mut bad_id = all[3].clone();
    if let Some(pb::event_envelope::Event::WorkstationEstablished(e)) = &mut bad_id.event {
        e.workstation_id = "not-a-uuid".into();
    }
    for bad in [missing, bad_id] {
        let result = f.projection.apply_batch(&[bad]);
        assert!(
            matches!(
                result,
                Err(ProjectionError::Undecodable { position: 4, .. })
            ),
            "{result:?}"
        );
        assert_eq!(f.projection.checkpoint(), 3);
    }
}

#[test]
fn an_event_about_an_unknown_post_is_inconsistent() {
    let mut f = fed(3);
    let stray = envelope(4, &end_post(p(42), "2025-05-01"));
    let result = f.projection.apply_batch(&[stray]);
    assert!(matches!(
        result,
        Err(ProjectionError::Inconsistent { position: 4, .. })
    ));
    assert_eq!(f.projection.checkpoint(), 3);
}

#[test]
fn the_checkpoint_survives_a_reopen() {
    let all = envelopes(&history());
    let mut f = fed(10);
    drop(f.projection);
    f.projection = Projection::open(&f.path).unwrap();
    assert_eq!(f.projection.checkpoint(), 10);
    let outcome = f.projection.apply_batch(&all).unwrap();
    assert_eq!((outcome.applied, outcome.skipped), (16, 10));
    drop(f.views);
    let views = Views::open(&f.path).unwrap();
    assert_eq!(views.checkpoint().unwrap(), 26);
}
