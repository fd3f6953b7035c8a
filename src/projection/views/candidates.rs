//! Candidates for a demand, or for ad-hoc criteria: who could take a post
//! of those hours over that period, and where.
//!
//! The view keeps the write side's promise by asking the write side's own
//! rules: the posts and hours rule is [`commissioner_load`] and the
//! capacity rule [`workstation_load`], fed with the post terms the views
//! hold at the asked position, as `decide` feeds them from its state. The
//! SQL only gathers the terms; it decides nothing.

use std::collections::HashMap;

use rusqlite::{named_params, Connection, OptionalExtension};

use super::{invalid, page_size, resolve_position, PageToken, QueryError, Views};
use crate::domain::{
    commissioner_load, overlaps, parse_date, parse_wanted_tags, period_within, workstation_load,
    CityCode, CommissionerLoad, Date, DemandId, HoursPerMonth, Policy,
};
use crate::projection::rows::from_json;
use crate::wire::pb;

/// What a candidate must be able to take.
struct Criteria {
    expertise: Vec<String>,
    city: String,
    hours: u32,
    from: Date,
    to: Date,
}

/// A post term as the load rules take it: first day, last day of service,
/// hours per month.
type Term = (Date, Date, u32);

/// A post of a candidate, for the load rule and the duplicate rule.
struct HeldPost {
    term: Term,
    workstation_id: String,
    serving_city: String,
}

impl Views {
    /// The candidates for `q`, ranked, one page. With a `demand_id` the
    /// criteria are the demand's (the other criteria must then be empty);
    /// `policy` holds the limits `decide` applies.
    pub fn candidates(
        &self,
        q: &pb::CandidatesQuery,
        policy: &Policy,
    ) -> Result<pb::CandidatesPage, QueryError> {
        let page_size = page_size(q.page_size)?;
        let (token, asked) = PageToken::resume(&q.page_token, q.as_of_position, |v| {
            v.parse::<u32>()
                .map(|n| n.to_string())
                .map_err(|_| crate::domain::FieldError::new("page_token", "is not a page offset"))
        })?;
        let offset: usize = token
            .map(|t| t.key.parse().unwrap_or(0))
            .unwrap_or_default();

        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, asked)?;
        let criteria = match q.demand_id.as_str() {
            "" => ad_hoc(q, policy)?,
            id => {
                refuse_with_demand(q)?;
                of_demand(&tx, &DemandId::parse("demand_id", id)?.to_string(), at)?
            }
        };
        if let Err(rejection) = period_within(criteria.from, criteria.to, policy.max_term_months) {
            return Err(invalid("end_date", rejection.to_string()));
        }

        // The seat count reads a hundred thousand post terms at scale and
        // does not depend on who the candidates are: another thread counts
        // the first part of the workstations while this one finds the
        // people (about a third of the work), then counts the rest.
        let mut stations = open_stations(&tx, at, &criteria)?;
        let rest = stations.split_off(stations.len() * 3 / 5);
        let (mut seats, (mut ranked, more_seats)) = self.beside(
            |side| with_free_seats(side, at, &criteria, stations),
            || {
                let ranked = candidates(&tx, at, &criteria, policy)?;
                Ok((ranked, with_free_seats(&tx, at, &criteria, rest)?))
            },
        )?;
        seats.extend(more_seats);
        ranked.sort_by(|a, b| rank(&a.0, &b.0));
        let page_len = usize::try_from(page_size).unwrap_or(usize::MAX);
        let total = ranked.len();
        // Only the page's candidates get their workstation lists: the
        // ranking does not depend on them, and thousands of candidates
        // times every seat would cost more than the rest of the answer.
        let candidates: Vec<pb::Candidate> = ranked
            .into_iter()
            .skip(offset)
            .take(page_len)
            .map(|(mut candidate, posts)| {
                candidate.workstations = options(&seats, &posts, &criteria);
                candidate
            })
            .collect();
        let next = offset + candidates.len();
        let next_page_token = if next < total {
            PageToken {
                position: at,
                key: next.to_string(),
            }
            .encode()
        } else {
            String::new()
        };
        Ok(pb::CandidatesPage {
            candidates,
            next_page_token,
            as_of_position: at,
        })
    }
}

/// Criteria given in the query.
fn ad_hoc(q: &pb::CandidatesQuery, policy: &Policy) -> Result<Criteria, QueryError> {
    let city = CityCode::parse("city", &q.city)?;
    if !policy.region.contains(&city) {
        return Err(invalid(
            "city",
            format!(
                "city {city} is not in the region ({})",
                policy.region_list()
            ),
        ));
    }
    Ok(Criteria {
        expertise: parse_wanted_tags("expertise", &q.expertise)?
            .iter()
            .map(|t| t.to_string())
            .collect(),
        city: city.to_string(),
        hours: HoursPerMonth::parse("hours_per_month", q.hours_per_month)?.get(),
        from: parse_date("start_date", &q.start_date)?,
        to: parse_date("end_date", &q.end_date)?,
    })
}

/// A demand names its own criteria; any given beside it would be ignored,
/// so they are refused instead.
fn refuse_with_demand(q: &pb::CandidatesQuery) -> Result<(), QueryError> {
    let given = [
        ("expertise", !q.expertise.is_empty()),
        ("city", !q.city.is_empty()),
        ("hours_per_month", q.hours_per_month != 0),
        ("start_date", !q.start_date.is_empty()),
        ("end_date", !q.end_date.is_empty()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(invalid(
            field,
            "must be empty with demand_id: the demand gives it",
        )),
        None => Ok(()),
    }
}

/// The criteria of demand `id` as of `at`.
fn of_demand(conn: &Connection, id: &str, at: u64) -> Result<Criteria, QueryError> {
    let found = conn
        .prepare_cached(
            "SELECT expertise, city, hours_per_month, start_date, end_date FROM demands
             WHERE demand_id = :id
               AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)",
        )?
        .query_row(named_params! {":id": id, ":at": at}, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let (expertise, city, hours, from, to) = found.ok_or_else(|| {
        QueryError::NotFound(format!("demand {id} is not known at position {at}"))
    })?;
    Ok(Criteria {
        expertise: from_json(&expertise)?,
        city,
        hours,
        from: stored_date(&from)?,
        to: stored_date(&to)?,
    })
}

/// Column `i` of `row` as text, borrowed from the row.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, QueryError> {
    row.get_ref(i)?
        .as_str()
        .map_err(|e| QueryError::Storage(format!("column {i} is not text: {e}")))
}

fn stored_date(text: &str) -> Result<Date, QueryError> {
    parse_date("date", text)
        .map_err(|e| QueryError::Storage(format!("a stored date is not a date: {e}")))
}

/// Every candidate, unranked, with the posts they hold in the period.
fn candidates(
    conn: &Connection,
    at: u64,
    criteria: &Criteria,
    policy: &Policy,
) -> Result<Vec<(pb::Candidate, Vec<HeldPost>)>, QueryError> {
    let wanted = serde_json::Value::from(criteria.expertise.clone()).to_string();
    let (from, to) = (criteria.from.to_string(), criteria.to.to_string());

    // Active commissioners holding a wanted tag, found through the tag
    // rows of their versions; the version valid at the position decides.
    let mut people = conn.prepare_cached(
        "SELECT DISTINCT c.commissioner_id, c.name, c.home_city, c.employer, c.expertise
         FROM json_each(:wanted) w
         CROSS JOIN commissioner_tags t ON t.tag = w.value AND t.valid_from <= :at
         CROSS JOIN commissioners c
             ON c.commissioner_id = t.commissioner_id AND c.valid_from = t.valid_from
         WHERE (c.valid_to IS NULL OR c.valid_to > :at)
           AND c.status = :active",
    )?;
    let mut rows = people.query(named_params! {
        ":at": at,
        ":active": pb::CommissionerStatus::CommissionerActive as i32,
        ":wanted": wanted,
    })?;
    let mut found: Vec<pb::Candidate> = Vec::new();
    while let Some(r) = rows.next()? {
        let expertise = from_json(&r.get::<_, String>(4)?)?;
        let home_city: String = r.get(2)?;
        found.push(pb::Candidate {
            commissioner_id: r.get(0)?,
            name: r.get(1)?,
            cross_city: home_city != criteria.city,
            home_city,
            employer: r.get(3)?,
            matched_expertise: criteria
                .expertise
                .iter()
                .filter(|t| expertise.contains(t))
                .cloned()
                .collect(),
            expertise,
            ..Default::default()
        });
    }
    drop(rows);

    let ids = serde_json::Value::from(
        found
            .iter()
            .map(|c| c.commissioner_id.clone())
            .collect::<Vec<_>>(),
    )
    .to_string();
    let mut held: HashMap<String, Vec<HeldPost>> = HashMap::new();
    let mut posts = conn.prepare_cached(
        "SELECT p.commissioner_id, p.start_date, p.end_date, p.hours_per_month,
             p.workstation_id, p.serving_city
         FROM json_each(:ids) i
         CROSS JOIN posts p ON p.commissioner_id = i.value
         WHERE p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)
           AND p.start_date <= :to AND p.end_date >= :from",
    )?;
    let mut rows = posts.query(named_params! {":ids": ids, ":at": at, ":from": from, ":to": to})?;
    while let Some(r) = rows.next()? {
        held.entry(r.get(0)?).or_default().push(HeldPost {
            term: (
                stored_date(&r.get::<_, String>(1)?)?,
                stored_date(&r.get::<_, String>(2)?)?,
                r.get(3)?,
            ),
            workstation_id: r.get(4)?,
            serving_city: r.get(5)?,
        });
    }
    drop(rows);
    let satisfaction = satisfaction(conn, at, &ids)?;

    let mut out = Vec::with_capacity(found.len());
    for mut candidate in found {
        let posts = held.remove(&candidate.commissioner_id).unwrap_or_default();
        let load = commissioner_load(
            posts.iter().map(|p| p.term),
            criteria.from,
            criteria.to,
            criteria.hours,
            policy,
        );
        let CommissionerLoad::Fits {
            peak_posts,
            peak_hours,
        } = load
        else {
            continue;
        };
        candidate.peak_posts = peak_posts;
        candidate.peak_hours_per_month = peak_hours;
        candidate.spare_hours_per_month = policy.max_hours_per_month.saturating_sub(peak_hours);
        if let Some((total, count)) = satisfaction.get(&candidate.commissioner_id) {
            candidate.satisfaction_total = *total;
            candidate.demands_resolved = *count;
            candidate.average_satisfaction = f64::from(*total) / f64::from(*count);
        }
        out.push((candidate, posts));
    }
    Ok(out)
}

/// The seats a candidate holding `posts` may take: all of them but where
/// the duplicate rule forbids a second post of theirs at a workstation for
/// the city on overlapping days.
fn options(
    seats: &[pb::WorkstationOption],
    posts: &[HeldPost],
    criteria: &Criteria,
) -> Vec<pb::WorkstationOption> {
    seats
        .iter()
        .filter(|seat| {
            !posts.iter().any(|p| {
                p.workstation_id == seat.workstation_id
                    && p.serving_city == criteria.city
                    && overlaps(p.term.0, p.term.1, criteria.from, criteria.to)
            })
        })
        .cloned()
        .collect()
}

/// An open workstation serving the city, before its seats are counted.
struct Station {
    option: pb::WorkstationOption,
    capacity: u32,
}

/// The open workstations serving the city as of `at`, in id order.
fn open_stations(
    conn: &Connection,
    at: u64,
    criteria: &Criteria,
) -> Result<Vec<Station>, QueryError> {
    let mut open = conn.prepare_cached(
        "SELECT w.workstation_id, w.name, w.host_city, w.capacity FROM workstations w
         WHERE w.valid_from <= :at AND (w.valid_to IS NULL OR w.valid_to > :at)
           AND w.status = :open
           AND EXISTS (SELECT 1 FROM json_each(w.served_cities) s WHERE s.value = :city)
         ORDER BY w.workstation_id",
    )?;
    let mut rows = open.query(named_params! {
        ":at": at,
        ":open": pb::WorkstationStatus::WorkstationOpen as i32,
        ":city": criteria.city,
    })?;
    let mut stations = Vec::new();
    while let Some(r) = rows.next()? {
        stations.push(Station {
            option: pb::WorkstationOption {
                workstation_id: r.get(0)?,
                name: r.get(1)?,
                host_city: r.get(2)?,
                free_seats: 0,
            },
            capacity: r.get(3)?,
        });
    }
    Ok(stations)
}

/// Those of `stations` with a seat on every day of the period, each with
/// the seats free on its fullest day, in the order given.
fn with_free_seats(
    conn: &Connection,
    at: u64,
    criteria: &Criteria,
    stations: Vec<Station>,
) -> Result<Vec<pb::WorkstationOption>, QueryError> {
    let (from, to) = (criteria.from.to_string(), criteria.to.to_string());
    let index: HashMap<&str, usize> = stations
        .iter()
        .enumerate()
        .map(|(i, s)| (s.option.workstation_id.as_str(), i))
        .collect();
    let ids = serde_json::Value::from(
        stations
            .iter()
            .map(|s| s.option.workstation_id.as_str())
            .collect::<Vec<_>>(),
    )
    .to_string();
    let mut terms: Vec<Vec<Term>> = vec![Vec::new(); stations.len()];
    let mut running = conn.prepare_cached(
        "SELECT p.workstation_id, p.start_date, p.end_date
         FROM json_each(:ids) i
         CROSS JOIN posts p ON p.workstation_id = i.value
         WHERE p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)
           AND p.start_date <= :to AND p.end_date >= :from",
    )?;
    let mut rows =
        running.query(named_params! {":ids": ids, ":at": at, ":from": from, ":to": to})?;
    // Rows come grouped by workstation (the join follows the id list), and
    // there are a hundred thousand of them at scale: the text is read in
    // place, and the index is looked up only when the workstation changes.
    let mut current: Option<(String, usize)> = None;
    while let Some(r) = rows.next()? {
        let id = text(r, 0)?;
        let slot = match &current {
            Some((running_id, slot)) if running_id == id => *slot,
            _ => {
                let slot = *index.get(id).ok_or_else(|| {
                    QueryError::Storage(format!("workstation {id} was not asked"))
                })?;
                current = Some((id.to_owned(), slot));
                slot
            }
        };
        // Capacity counts posts, not hours.
        terms[slot].push((stored_date(text(r, 1)?)?, stored_date(text(r, 2)?)?, 0));
    }
    drop(rows);
    Ok(stations
        .into_iter()
        .zip(terms)
        .filter_map(|(station, terms)| {
            let free =
                workstation_load(terms, criteria.from, criteria.to, station.capacity).ok()?;
            Some(pb::WorkstationOption {
                free_seats: free,
                ..station.option
            })
        })
        .collect())
}

/// For each commissioner of `ids` (a JSON array): the sum and count of the
/// satisfaction of the demands resolved by position `at` that their posts
/// served, each demand once. The joins here and above are CROSS JOINs,
/// which SQLite never reorders: left to itself it may scan a whole table
/// once per id.
fn satisfaction(
    conn: &Connection,
    at: u64,
    ids: &str,
) -> Result<HashMap<String, (u32, u32)>, QueryError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.commissioner_id, SUM(s.satisfaction), COUNT(*)
         FROM json_each(:ids) i
         CROSS JOIN served_demands s ON s.commissioner_id = i.value
         WHERE s.position <= :at
         GROUP BY s.commissioner_id",
    )?;
    let mut rows = stmt.query(named_params! {":at": at, ":ids": ids})?;
    let mut out: HashMap<String, (u32, u32)> = HashMap::new();
    while let Some(r) = rows.next()? {
        out.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
    }
    Ok(out)
}

/// Matched tags (most first), spare hours on the tightest day (most
/// first), average satisfaction (highest first, compared exactly as
/// fractions; none counts as 0), then name and id.
fn rank(a: &pb::Candidate, b: &pb::Candidate) -> std::cmp::Ordering {
    let mean = |c: &pb::Candidate| {
        (
            u64::from(c.satisfaction_total),
            u64::from(c.demands_resolved.max(1)),
        )
    };
    let ((at, an), (bt, bn)) = (mean(a), mean(b));
    b.matched_expertise
        .len()
        .cmp(&a.matched_expertise.len())
        .then(b.spare_hours_per_month.cmp(&a.spare_hours_per_month))
        .then((bt * an).cmp(&(at * bn)))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.commissioner_id.cmp(&b.commissioner_id))
}
