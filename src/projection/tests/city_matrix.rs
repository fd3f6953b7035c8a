//! The city matrix: active posts, hours and service minutes by home and
//! served city.

use super::*;

fn cell(home: &str, serving: &str, posts: u32, hours: u32, minutes: u64) -> pb::CityMatrixCell {
    pb::CityMatrixCell {
        home_city: home.to_owned(),
        serving_city: serving.to_owned(),
        active_posts: posts,
        hours_per_month: hours,
        service_minutes: minutes,
    }
}

#[test]
fn city_matrix_counts_active_posts_and_minutes_by_home_and_served_city() {
    let f = fed(26);
    let matrix = f
        .views
        .city_matrix(
            &pb::CityMatrixQuery {
                on_date: "2025-04-15".into(),
                from_date: "2025-03-01".into(),
                to_date: "2025-04-30".into(),
                as_of_position: 0,
            },
            today(),
        )
        .unwrap();
    assert_eq!(
        matrix.cells,
        [
            cell(HOHHOT, HOHHOT, 1, 20, 60),
            cell(HOHHOT, BAOTOU, 1, 30, 120 + 45),
            cell(BAOTOU, HOHHOT, 1, 10, 90),
        ]
    );
    assert_eq!(matrix.as_of_position, 26);
}

#[test]
fn city_matrix_defaults_to_today_and_its_month_so_far() {
    let f = fed(26);
    let matrix = f
        .views
        .city_matrix(&pb::CityMatrixQuery::default(), today())
        .unwrap();
    assert_eq!(
        (
            matrix.on_date.as_str(),
            matrix.from_date.as_str(),
            matrix.to_date.as_str()
        ),
        ("2025-04-15", "2025-04-01", "2025-04-15")
    );
    // The 45 minutes of 2025-04-20 are after to_date.
    assert_eq!(
        matrix.cells,
        [
            cell(HOHHOT, HOHHOT, 1, 20, 0),
            cell(HOHHOT, BAOTOU, 1, 30, 0),
            cell(BAOTOU, HOHHOT, 1, 10, 90),
        ]
    );
}
