//! CSV (RFC 4180) of the views that export it: the assessment, the demands,
//! the candidates and a page of assignments. Shared by `GET /v1/assessment.csv` and
//! `tepai query … --output csv`, so both print the same bytes.

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

/// A page of assignments: the protobuf field names of `Assignment`, the
/// status by its protobuf name (`ACTIVE` …).
pub fn assignments(rows: &[pb::Assignment]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        [
            "post_id",
            "commissioner_id",
            "commissioner_name",
            "home_city",
            "workstation_id",
            "workstation_name",
            "host_city",
            "serving_city",
            "cross_city",
            "role",
            "hours_per_month",
            "start_date",
            "end_date",
            "status",
        ]
        .map(str::to_owned),
    );
    for r in rows {
        let status = pb::AssignmentStatus::try_from(r.status)
            .map_or_else(|_| r.status.to_string(), |s| s.as_str_name().to_owned());
        line(
            &mut out,
            [
                r.post_id.clone(),
                r.commissioner_id.clone(),
                r.commissioner_name.clone(),
                r.home_city.clone(),
                r.workstation_id.clone(),
                r.workstation_name.clone(),
                r.host_city.clone(),
                r.serving_city.clone(),
                r.cross_city.to_string(),
                r.role.clone(),
                r.hours_per_month.to_string(),
                r.start_date.clone(),
                r.end_date.clone(),
                status,
            ],
        );
    }
    out
}

/// The demands board: the protobuf field names of `DemandSummary`; the
/// tags and post ids joined by `;`.
pub fn demands(rows: &[pb::DemandSummary]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        [
            "demand_id",
            "title",
            "enterprise",
            "city",
            "expertise",
            "hours_per_month",
            "start_date",
            "end_date",
            "status",
            "post_ids",
            "service_minutes",
            "satisfaction",
        ]
        .map(str::to_owned),
    );
    for d in rows {
        let status = pb::DemandStatus::try_from(d.status)
            .map_or_else(|_| d.status.to_string(), |s| s.as_str_name().to_owned());
        line(
            &mut out,
            [
                d.demand_id.clone(),
                d.title.clone(),
                d.enterprise.clone(),
                d.city.clone(),
                d.expertise.join(";"),
                d.hours_per_month.to_string(),
                d.start_date.clone(),
                d.end_date.clone(),
                status,
                d.post_ids.join(";"),
                d.service_minutes.to_string(),
                d.satisfaction.to_string(),
            ],
        );
    }
    out
}

/// The candidates, in rank order: one line per candidate, the
/// workstations as `id:free seats` joined by `;`.
pub fn candidates(rows: &[pb::Candidate]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        [
            "commissioner_id",
            "name",
            "home_city",
            "employer",
            "matched_expertise",
            "cross_city",
            "peak_posts",
            "peak_hours_per_month",
            "spare_hours_per_month",
            "demands_resolved",
            "satisfaction_total",
            "workstations",
        ]
        .map(str::to_owned),
    );
    for c in rows {
        let seats: Vec<String> = c
            .workstations
            .iter()
            .map(|w| format!("{}:{}", w.workstation_id, w.free_seats))
            .collect();
        line(
            &mut out,
            [
                c.commissioner_id.clone(),
                c.name.clone(),
                c.home_city.clone(),
                c.employer.clone(),
                c.matched_expertise.join(";"),
                c.cross_city.to_string(),
                c.peak_posts.to_string(),
                c.peak_hours_per_month.to_string(),
                c.spare_hours_per_month.to_string(),
                c.demands_resolved.to_string(),
                c.satisfaction_total.to_string(),
                seats.join(";"),
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

    #[test]
    fn demands_and_candidates_join_their_lists_and_quote_their_text() {
        let demand = pb::DemandSummary {
            demand_id: "d1".into(),
            title: "回收, 试验".into(),
            enterprise: "北方稀土".into(),
            city: "150200".into(),
            expertise: vec!["稀土".into(), "新材料".into()],
            hours_per_month: 10,
            start_date: "2027-01-01".into(),
            end_date: "2027-06-30".into(),
            status: pb::DemandStatus::DemandResolved as i32,
            post_ids: vec!["p1".into(), "p2".into()],
            service_minutes: 240,
            satisfaction: 5,
        };
        let text = demands(&[demand]);
        assert_eq!(
            text.lines().nth(1),
            Some("d1,\"回收, 试验\",北方稀土,150200,稀土;新材料,10,2027-01-01,2027-06-30,DEMAND_RESOLVED,p1;p2,240,5")
        );
        let candidate = pb::Candidate {
            commissioner_id: "c1".into(),
            name: "陈立新".into(),
            home_city: "150100".into(),
            employer: "内蒙古工业大学".into(),
            matched_expertise: vec!["新材料".into()],
            cross_city: true,
            peak_posts: 2,
            peak_hours_per_month: 50,
            spare_hours_per_month: 30,
            workstations: vec![pb::WorkstationOption {
                workstation_id: "w4".into(),
                free_seats: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            candidates(&[candidate]).lines().nth(1),
            Some("c1,陈立新,150100,内蒙古工业大学,新材料,true,2,50,30,0,0,w4:4")
        );
    }

    #[test]
    fn an_assignment_is_a_line_with_its_status_name() {
        let post = pb::Assignment {
            post_id: "p1".into(),
            commissioner_id: "c1".into(),
            commissioner_name: "陈立新".into(),
            home_city: "150100".into(),
            workstation_id: "w6".into(),
            workstation_name: "包钢集团特派员工作站".into(),
            host_city: "150200".into(),
            serving_city: "150200".into(),
            cross_city: true,
            role: "顾问, 兼职".into(),
            hours_per_month: 20,
            start_date: "2026-03-01".into(),
            end_date: "2027-02-28".into(),
            status: pb::AssignmentStatus::Active as i32,
        };
        let csv = assignments(&[post]);
        assert!(csv.starts_with("post_id,commissioner_id,commissioner_name,"));
        assert_eq!(
            csv.lines().nth(1),
            Some("p1,c1,陈立新,150100,w6,包钢集团特派员工作站,150200,150200,true,\"顾问, 兼职\",20,2026-03-01,2027-02-28,ACTIVE")
        );
    }
}
