//! Bad query parameters are invalid arguments that name their field.

use super::*;

fn invalid_field<T: std::fmt::Debug>(result: Result<T, QueryError>) -> &'static str {
    match result {
        Err(QueryError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn bad_assignment_parameters_are_invalid_arguments_naming_the_field() {
    let f = fed(26);
    let table: Vec<(&str, pb::AssignmentsQuery)> = vec![
        ("on_date", query("2025-13-01")),
        (
            "commissioner_id",
            pb::AssignmentsQuery {
                commissioner_id: "nope".into(),
                ..Default::default()
            },
        ),
        (
            "workstation_id",
            pb::AssignmentsQuery {
                workstation_id: "00000000-0000-0000-0000-000000000000".into(),
                ..Default::default()
            },
        ),
        (
            "home_city",
            pb::AssignmentsQuery {
                home_city: "1501".into(),
                ..Default::default()
            },
        ),
        (
            "serving_city",
            pb::AssignmentsQuery {
                serving_city: "Baotou".into(),
                ..Default::default()
            },
        ),
        (
            "status",
            pb::AssignmentsQuery {
                status: 9,
                ..Default::default()
            },
        ),
        (
            "page_size",
            pb::AssignmentsQuery {
                page_size: 501,
                ..Default::default()
            },
        ),
        (
            "page_token",
            pb::AssignmentsQuery {
                page_token: "zz".into(),
                ..Default::default()
            },
        ),
        (
            "page_token",
            pb::AssignmentsQuery {
                page_token: "3a".into(),
                ..Default::default()
            },
        ),
        (
            "as_of_position",
            pb::AssignmentsQuery {
                as_of_position: 27,
                ..Default::default()
            },
        ),
    ];
    for (field, q) in table {
        assert_eq!(
            invalid_field(f.views.assignments(&q, today())),
            field,
            "{q:?}"
        );
    }
}

#[test]
fn bad_detail_and_matrix_parameters_are_invalid_arguments_naming_the_field() {
    let f = fed(26);
    let commissioner = |id: &str, on: &str| pb::CommissionerQuery {
        commissioner_id: id.into(),
        on_date: on.into(),
        as_of_position: 0,
    };
    let matrix = |from: &str, to: &str| pb::CityMatrixQuery {
        on_date: "2025-04-15".into(),
        from_date: from.into(),
        to_date: to.into(),
        as_of_position: 0,
    };
    let cases = [
        (
            "commissioner_id",
            invalid_field(f.views.commissioner(&commissioner("", ""), today())),
        ),
        (
            "on_date",
            invalid_field(
                f.views
                    .commissioner(&commissioner(&c(1).to_string(), "15/04/2025"), today()),
            ),
        ),
        (
            "workstation_id",
            invalid_field(f.views.workstation(
                &pb::WorkstationQuery {
                    workstation_id: "W1".into(),
                    ..Default::default()
                },
                today(),
            )),
        ),
        (
            "from_date",
            invalid_field(f.views.city_matrix(&matrix("2025-4-1", ""), today())),
        ),
        (
            "to_date",
            invalid_field(f.views.city_matrix(&matrix("", "tomorrow"), today())),
        ),
        (
            "from_date",
            invalid_field(
                f.views
                    .city_matrix(&matrix("2025-05-01", "2025-04-01"), today()),
            ),
        ),
    ];
    for (expected, got) in cases {
        assert_eq!(got, expected);
    }
}

#[test]
fn asking_beyond_the_checkpoint_says_where_the_views_are() {
    let f = fed(26);
    let result = f.views.city_matrix(
        &pb::CityMatrixQuery {
            as_of_position: 30,
            ..Default::default()
        },
        today(),
    );
    match result {
        Err(QueryError::InvalidArgument { field, message }) => {
            assert_eq!(field, "as_of_position");
            assert!(message.contains("views are at position 26"), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}
