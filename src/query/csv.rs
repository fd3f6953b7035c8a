//! CSV (RFC 4180) of the views that export it: the assessment. Shared by
//! `GET /v1/assessment.csv` and `tepai query assessment --output csv`, so
//! both print the same bytes.

use std::fmt::Write as _;

use crate::wire::pb;

/// The media type of the CSV answers.
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// The columns of [`assessment`]: the protobuf field names of
/// `AssessmentRow`, in field order.
pub const ASSESSMENT_COLUMNS: [&str; 13] = [
    "subject_id",
    "name",
    "city",
    "service_days",
    "service_records",
    "service_minutes",
    "cross_city_minutes",
    "demands_resolved",
    "average_satisfaction",
    "posts_held",
    "points",
    "grade",
    "satisfaction_total",
];

/// A header line and one line per row, each ended by CRLF. The grade is
/// its protobuf name (`EXCELLENT` …); the average satisfaction has two
/// decimals (the exact figures are `satisfaction_total` and
/// `demands_resolved`).
pub fn assessment(rows: &[pb::AssessmentRow]) -> String {
    let mut out = String::new();
    line(&mut out, ASSESSMENT_COLUMNS.iter().map(|c| (*c).to_owned()));
    for r in rows {
        let grade = pb::Grade::try_from(r.grade)
            .map_or_else(|_| r.grade.to_string(), |g| g.as_str_name().to_owned());
        line(
            &mut out,
            [
                r.subject_id.clone(),
                r.name.clone(),
                r.city.clone(),
                r.service_days.to_string(),
                r.service_records.to_string(),
                r.service_minutes.to_string(),
                r.cross_city_minutes.to_string(),
                r.demands_resolved.to_string(),
                format!("{:.2}", r.average_satisfaction),
                r.posts_held.to_string(),
                r.points.to_string(),
                grade,
                r.satisfaction_total.to_string(),
            ],
        );
    }
    out
}

/// Appends one record: fields joined by commas, CRLF at the end.
fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", quoted(&field));
    }
    out.push_str("\r\n");
}

/// A field as RFC 4180 wants it: in double quotes, with its quotes
/// doubled, when it holds a comma, a quote or a line break; else as is.
fn quoted(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_line_breaks_are_quoted() {
        let cases = [
            ("王敏", "王敏"),
            ("Wang, Min", "\"Wang, Min\""),
            ("the \"dairy\" one", "\"the \"\"dairy\"\" one\""),
            ("two\nlines", "\"two\nlines\""),
            ("", ""),
        ];
        for (field, expected) in cases {
            assert_eq!(quoted(field), expected, "{field:?}");
        }
    }

    #[test]
    fn the_assessment_is_a_header_and_a_line_per_row() {
        let row = pb::AssessmentRow {
            subject_id: "c1".into(),
            name: "Wang, \"Min\"".into(),
            city: "150100".into(),
            service_days: 12,
            service_records: 13,
            service_minutes: 900,
            cross_city_minutes: 120,
            demands_resolved: 3,
            average_satisfaction: 14.0 / 3.0,
            posts_held: 2,
            points: 136,
            grade: pb::Grade::Pass as i32,
            satisfaction_total: 14,
        };
        let text = assessment(&[row]);
        let expected = "subject_id,name,city,service_days,service_records,service_minutes,\
cross_city_minutes,demands_resolved,average_satisfaction,posts_held,points,grade,satisfaction_total\r\n\
c1,\"Wang, \"\"Min\"\"\",150100,12,13,900,120,3,4.67,2,136,PASS,14\r\n";
        assert_eq!(text, expected);
        assert_eq!(assessment(&[]).lines().count(), 1);
    }
}
