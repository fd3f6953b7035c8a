//! Every view as of a position is the view of a projection fed up to it.

use super::*;

#[test]
fn every_view_as_of_a_position_equals_a_projection_fed_up_to_it() {
    let full = fed(26);
    for k in 1..=26 {
        let partial = fed(k);
        assert_eq!(
            snapshot(&full.views, k as u64),
            snapshot(&partial.views, 0),
            "as of position {k}"
        );
    }
}
