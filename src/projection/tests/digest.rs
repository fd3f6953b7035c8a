//! The views of the history, pinned by their table digests.

use super::*;

fn hex(digest: &crate::projection::digest::TableDigest) -> String {
    let bytes: String = digest.digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{} {} {bytes}", digest.table, digest.rows)
}

/// The views of `history()`, pinned as the event-by-event projection wrote
/// them before batches were folded in memory: a change of any row of any
/// version shows here.
#[test]
fn the_views_of_the_history_are_the_rows_they_always_were() {
    let f = fed(history().len());
    let found: Vec<String> = digests_of(&f.path).iter().map(hex).collect();
    assert_eq!(found, PINNED_HISTORY_DIGESTS);
}

/// The Part 1 tables' digests are the ones they had before the demand
/// tables came (empty here: the history has no demands); the tag index
/// holds each commissioner version's tags.
const PINNED_HISTORY_DIGESTS: [&str; 9] = [
    "checkpoint 1 513cd4f1258674a91bf0d7096b3767da5af9702dd40fed54b55766895c9d31e1",
    "commissioner_tags 15 9cc38456b9579bca0eb99d371e6061e7647d2ecd2c272fa8945dcc48b019bc93",
    "commissioners 7 248e28975580c4bad2ec6b0d8a0d7fe8d09a5c896d2649915d55f26358217bd3",
    "demand_services 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "demands 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "posts 9 f104574068edf9b264190c7f152f1c442d75ffce997cb3fded176f5f197cace2",
    "served_demands 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "services 4 ea3e02819d9c86f1f0922b5912a8695ad780387fedc4f523c190a18dd8ccb6fb",
    "workstations 6 3ad0b80ebeb42f5925c60ae18a2255e02d635a11b18415e79a0da897f4392d89",
];
