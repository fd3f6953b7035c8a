//! The annual assessment (年度考核): each commissioner's or workstation's
//! year in figures, points and a grade, as of any position.
//!
//! The figures come from aggregate SQL over the views (every value bound),
//! one statement per kind of figure; the points and grade come from the
//! pure [`crate::domain::score`] under the node's policy. Ranking needs the
//! points, so every row of the year is scored before a page is cut from
//! the ranked list; the page token pins the position and names the last
//! row returned, and at a pinned position the ranking is the same on every
//! page.

use std::collections::BTreeMap;

use chrono::Datelike;
use rusqlite::{Connection, ToSql};

use super::{invalid, optional, page_size, resolve_position, PageToken, QueryError, Views};
use crate::domain::{
    score, AssessmentPolicy, CityCode, CommissionerId, Date, Figures, Grade, WorkstationId,
    MAX_DATE, MIN_DATE,
};
use crate::wire::pb;

impl Views {
    /// One page of the assessment of `q.year` (0: the year of `today`),
    /// ranked by points (most first), then name, then id.
    pub fn assessment(
        &self,
        q: &pb::AssessmentQuery,
        today: Date,
        policy: &AssessmentPolicy,
    ) -> Result<pb::AssessmentPage, QueryError> {
        let page_size = page_size(q.page_size)?;
        let subject = Subject::of(q.subject)?;
        let (token, asked) = PageToken::resume(&q.page_token, q.as_of_position, |v| {
            subject.parse_id("page_token", v)
        })?;
        let Ranked {
            rows,
            year,
            city,
            at,
        } = self.ranked(q, asked, today, policy)?;
        let start = match token {
            None => 0,
            Some(token) => rows
                .iter()
                .position(|r| r.subject_id == token.key)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    invalid(
                        "page_token",
                        "is not a token from a previous page of this listing",
                    )
                })?,
        };
        let page_len = usize::try_from(page_size).unwrap_or(usize::MAX);
        let end = start.saturating_add(page_len).min(rows.len());
        let page: Vec<pb::AssessmentRow> = rows.get(start..end).unwrap_or_default().to_vec();
        let next_page_token = match page.last() {
            Some(last) if end < rows.len() => PageToken {
                position: at,
                key: last.subject_id.clone(),
            }
            .encode(),
            _ => String::new(),
        };
        Ok(pb::AssessmentPage {
            rows: page,
            year,
            city: city.unwrap_or_default(),
            next_page_token,
            as_of_position: at,
        })
    }

    /// Every row of the assessment in one answer, ranked as
    /// [`Views::assessment`] pages them: for the CSV export, which would
    /// otherwise score the whole year once per page. `page_size` is not
    /// looked at; a `page_token` is refused.
    pub fn assessment_all(
        &self,
        q: &pb::AssessmentQuery,
        today: Date,
        policy: &AssessmentPolicy,
    ) -> Result<pb::AssessmentPage, QueryError> {
        if !q.page_token.is_empty() {
            return Err(invalid(
                "page_token",
                "the export holds every row; it takes no page token",
            ));
        }
        let Ranked {
            rows,
            year,
            city,
            at,
        } = self.ranked(q, q.as_of_position, today, policy)?;
        Ok(pb::AssessmentPage {
            rows,
            year,
            city: city.unwrap_or_default(),
            next_page_token: String::new(),
            as_of_position: at,
        })
    }

    /// Every row of the year `q` asks for, as of `asked`, scored and ranked.
    fn ranked(
        &self,
        q: &pb::AssessmentQuery,
        asked: u64,
        today: Date,
        policy: &AssessmentPolicy,
    ) -> Result<Ranked, QueryError> {
        let year = assessed_year(q.year, today)?;
        let subject = Subject::of(q.subject)?;
        let city = optional(&q.city, |v| CityCode::parse("city", v))?;
        let only = subject.only(q)?;
        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, asked)?;
        let filter = YearFilter {
            at,
            from: format!("{year:04}-01-01"),
            to: format!("{year:04}-12-31"),
            city: city.clone(),
            only,
        };
        let rows = ranked_rows(&tx, subject, &filter, policy)?;
        Ok(Ranked {
            rows,
            year,
            city,
            at,
        })
    }
}

/// The whole ranking of a year, before paging.
struct Ranked {
    rows: Vec<pb::AssessmentRow>,
    year: u32,
    city: Option<String>,
    at: u64,
}

/// The grade as the protobuf enum.
fn grade_to_pb(grade: Grade) -> pb::Grade {
    match grade {
        Grade::Excellent => pb::Grade::Excellent,
        Grade::Good => pb::Grade::Good,
        Grade::Pass => pb::Grade::Pass,
        Grade::Fail => pb::Grade::Fail,
    }
}

/// The year asked for, within the dates tepai accepts.
fn assessed_year(asked: u32, today: Date) -> Result<u32, QueryError> {
    let (first, last) = (MIN_DATE.year(), MAX_DATE.year());
    if asked == 0 {
        return u32::try_from(today.year()).map_err(|_| invalid("year", "today has no year"));
    }
    match i32::try_from(asked) {
        Ok(year) if (first..=last).contains(&year) => Ok(asked),
        _ => Err(invalid(
            "year",
            format!("{asked} is outside {first} to {last}"),
        )),
    }
}

/// What a row is about: the columns and table that differ between
/// commissioners and workstations. Fixed fragments, never values.
#[derive(Debug, Clone, Copy)]
struct Subject {
    /// The id column, the same name in `posts`, `services` and the entity
    /// table.
    id: &'static str,
    /// The temporal entity table.
    table: &'static str,
    /// The entity's own city column (home or host city).
    city: &'static str,
}

const COMMISSIONERS: Subject = Subject {
    id: "commissioner_id",
    table: "commissioners",
    city: "home_city",
};

const WORKSTATIONS: Subject = Subject {
    id: "workstation_id",
    table: "workstations",
    city: "host_city",
};

impl Subject {
    fn of(value: i32) -> Result<Self, QueryError> {
        match pb::AssessmentSubject::try_from(value) {
            Ok(pb::AssessmentSubject::Unspecified | pb::AssessmentSubject::Commissioners) => {
                Ok(COMMISSIONERS)
            }
            Ok(pb::AssessmentSubject::Workstations) => Ok(WORKSTATIONS),
            Err(_) => Err(invalid(
                "subject",
                format!("{value} is not an AssessmentSubject"),
            )),
        }
    }

    fn is_commissioners(self) -> bool {
        self.table == COMMISSIONERS.table
    }

    /// The id of a subject of this kind, canonically spelled.
    fn parse_id(
        self,
        field: &'static str,
        value: &str,
    ) -> Result<String, crate::domain::FieldError> {
        if self.is_commissioners() {
            CommissionerId::parse(field, value).map(|id| id.to_string())
        } else {
            WorkstationId::parse(field, value).map(|id| id.to_string())
        }
    }

    /// The one subject asked for, if any. The other kind's id filter is
    /// refused rather than ignored: a clerk asking for a commissioner's
    /// row among workstations would otherwise get every workstation.
    fn only(self, q: &pb::AssessmentQuery) -> Result<Option<String>, QueryError> {
        let (mine, mine_field, other, other_field, other_subject) = if self.is_commissioners() {
            (
                &q.commissioner_id,
                "commissioner_id",
                &q.workstation_id,
                "workstation_id",
                "WORKSTATIONS",
            )
        } else {
            (
                &q.workstation_id,
                "workstation_id",
                &q.commissioner_id,
                "commissioner_id",
                "COMMISSIONERS",
            )
        };
        if !other.is_empty() {
            return Err(invalid(
                other_field,
                format!("filters only the assessment of subject {other_subject}"),
            ));
        }
        optional(mine, |v| self.parse_id(mine_field, v))
    }
}

/// The year, city and subject every figure is limited to.
struct YearFilter {
    at: u64,
    from: String,
    to: String,
    city: Option<String>,
    only: Option<String>,
}

impl YearFilter {
    /// `sql` with the optional clauses appended where `{city}` and `{only}`
    /// stand, and the bound values for all of them.
    fn compose<'a>(
        &'a self,
        sql: &str,
        city_clause: &str,
        only_clause: &str,
    ) -> (String, Vec<(&'static str, &'a dyn ToSql)>) {
        let mut args: Vec<(&'static str, &'a dyn ToSql)> =
            vec![(":at", &self.at), (":from", &self.from), (":to", &self.to)];
        let city = match &self.city {
            Some(city) => {
                args.push((":city", city));
                city_clause
            }
            None => "",
        };
        let only = match &self.only {
            Some(only) => {
                args.push((":only", only));
                only_clause
            }
            None => "",
        };
        let sql = sql.replace("{city}", city).replace("{only}", only);
        (sql, args)
    }
}

/// A subject's figures before scoring.
#[derive(Debug, Default)]
struct Tally {
    posts_held: u32,
    service_days: u32,
    service_records: u32,
    service_minutes: u64,
    cross_city_minutes: u64,
    demands_resolved: u32,
    satisfaction_total: u32,
}

/// Every row of the year, scored and ranked.
fn ranked_rows(
    conn: &Connection,
    subject: Subject,
    filter: &YearFilter,
    policy: &AssessmentPolicy,
) -> Result<Vec<pb::AssessmentRow>, QueryError> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    posts_held(conn, subject, filter, &mut tallies)?;
    service(conn, subject, filter, &mut tallies)?;
    demands_resolved(conn, subject, filter, &mut tallies)?;
    let names = names(conn, subject, filter)?;

    let mut rows: Vec<pb::AssessmentRow> = tallies
        .into_iter()
        .map(|(subject_id, t)| {
            let (name, city) = names.get(&subject_id).cloned().unwrap_or_default();
            let figures = Figures {
                service_days: t.service_days,
                demands_resolved: t.demands_resolved,
                satisfaction_total: t.satisfaction_total,
            };
            let (points, grade) = score(&figures, policy);
            let average_satisfaction = if t.demands_resolved == 0 {
                0.0
            } else {
                f64::from(t.satisfaction_total) / f64::from(t.demands_resolved)
            };
            pb::AssessmentRow {
                subject_id,
                name,
                city,
                service_days: t.service_days,
                service_records: t.service_records,
                service_minutes: t.service_minutes,
                cross_city_minutes: t.cross_city_minutes,
                demands_resolved: t.demands_resolved,
                average_satisfaction,
                posts_held: t.posts_held,
                points,
                grade: grade_to_pb(grade) as i32,
                satisfaction_total: t.satisfaction_total,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.points
            .cmp(&a.points)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.subject_id.cmp(&b.subject_id))
    });
    Ok(rows)
}

/// Posts held (run) on any day of the year: the term overlaps it. A post
/// ended before its start never ran, so it does not count.
fn posts_held(
    conn: &Connection,
    subject: Subject,
    filter: &YearFilter,
    tallies: &mut BTreeMap<String, Tally>,
) -> Result<(), QueryError> {
    let id = subject.id;
    let sql = format!(
        "SELECT p.{id}, COUNT(*) FROM posts p
         WHERE p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)
           AND p.start_date <= :to AND p.end_date >= :from AND p.start_date <= p.end_date
           {{city}} {{only}}
         GROUP BY p.{id}"
    );
    let (sql, args) = filter.compose(
        &sql,
        "AND p.serving_city = :city",
        &format!("AND p.{id} = :only"),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args.as_slice())?;
    while let Some(r) = rows.next()? {
        tallies.entry(r.get(0)?).or_default().posts_held = r.get(1)?;
    }
    Ok(())
}

/// Service in the year: days, records, minutes, and the minutes whose
/// beneficiary is outside the subject's own city. Service records carry
/// their position, so "as of" is `position <= :at`.
fn service(
    conn: &Connection,
    subject: Subject,
    filter: &YearFilter,
    tallies: &mut BTreeMap<String, Tally>,
) -> Result<(), QueryError> {
    let Subject { id, table, city } = subject;
    let sql = format!(
        "SELECT s.{id}, COUNT(DISTINCT s.date), COUNT(*), SUM(s.minutes),
                SUM(CASE WHEN s.beneficiary_city <> e.{city} THEN s.minutes ELSE 0 END)
         FROM services s
         JOIN {table} e ON e.{id} = s.{id}
             AND e.valid_from <= :at AND (e.valid_to IS NULL OR e.valid_to > :at)
         WHERE s.position <= :at AND s.date BETWEEN :from AND :to {{city}} {{only}}
         GROUP BY s.{id}"
    );
    let (sql, args) = filter.compose(
        &sql,
        "AND s.beneficiary_city = :city",
        &format!("AND s.{id} = :only"),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args.as_slice())?;
    while let Some(r) = rows.next()? {
        let tally = tallies.entry(r.get(0)?).or_default();
        tally.service_days = r.get(1)?;
        tally.service_records = r.get(2)?;
        tally.service_minutes = r.get(3)?;
        tally.cross_city_minutes = r.get(4)?;
    }
    Ok(())
}

/// Demands resolved in the year (by `resolved_on`) that were dispatched to
/// the subject's posts. A demand served by two of one subject's posts
/// counts once for it (DISTINCT), and counts for each subject whose post
/// served it. Only subjects with a row (a post held or service in the year)
/// get the credit, as SPEC's "a row for each" says.
fn demands_resolved(
    conn: &Connection,
    subject: Subject,
    filter: &YearFilter,
    tallies: &mut BTreeMap<String, Tally>,
) -> Result<(), QueryError> {
    let id = subject.id;
    let sql = format!(
        "SELECT subject, COUNT(*), SUM(satisfaction) FROM (
             SELECT DISTINCT p.{id} AS subject, d.demand_id, d.satisfaction
             FROM demands d CROSS JOIN json_each(d.post_ids) j
             CROSS JOIN posts p ON p.post_id = j.value
                 AND p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)
             WHERE d.valid_from <= :at AND (d.valid_to IS NULL OR d.valid_to > :at)
               AND d.status = {RESOLVED} AND d.resolved_on BETWEEN :from AND :to
               {{city}} {{only}}
         ) GROUP BY subject"
    );
    let (sql, args) = filter.compose(&sql, "AND d.city = :city", &format!("AND p.{id} = :only"));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(args.as_slice())?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        if let Some(tally) = tallies.get_mut(&key) {
            tally.demands_resolved = r.get(1)?;
            tally.satisfaction_total = r.get(2)?;
        }
    }
    Ok(())
}

/// Each subject's name and own city as of the position.
fn names(
    conn: &Connection,
    subject: Subject,
    filter: &YearFilter,
) -> Result<BTreeMap<String, (String, String)>, QueryError> {
    let Subject { id, table, city } = subject;
    let sql = format!(
        "SELECT e.{id}, e.name, e.{city} FROM {table} e
         WHERE e.valid_from <= :at AND (e.valid_to IS NULL OR e.valid_to > :at) {{only}}"
    );
    let (sql, mut args) = filter.compose(&sql, "", &format!("AND e.{id} = :only"));
    // The statement never names these; SQLite refuses unused named
    // parameters, so only the ones the text uses are bound.
    args.retain(|(name, _)| sql.contains(name));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args.as_slice(), |r| {
        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `DemandStatus::DemandResolved` as the `demands.status` column holds it.
const RESOLVED: i32 = pb::DemandStatus::DemandResolved as i32;
