//! The demands board and a demand's detail (需求对接), as of any position.

use rusqlite::{named_params, Connection, Row, ToSql};

use super::{
    invalid, page_size, resolve_position, select_assignments, PageToken, PostFilter, QueryError,
    Views,
};
use crate::domain::{CityCode, Date, DemandId};
use crate::projection::rows::from_json;
use crate::wire::pb;

/// The columns of a demand's summary, with the service minutes recorded
/// for it up to `:at`, from `demands d` visible at `:at`.
const SUMMARY_SELECT: &str = "SELECT d.demand_id, d.title, d.enterprise, d.city, d.expertise,
        d.hours_per_month, d.start_date, d.end_date, d.status, d.post_ids, d.satisfaction,
        (SELECT COALESCE(SUM(s.minutes), 0) FROM demand_services s
         WHERE s.demand_id = d.demand_id AND s.position <= :at),
        d.description, d.outcome, d.resolved_on, d.withdrawal_reason
    FROM demands d
    WHERE d.valid_from <= :at AND (d.valid_to IS NULL OR d.valid_to > :at)";

impl Views {
    /// One page of demands, filtered by city and status, in demand-id
    /// order. The page token pins the position, as for assignments.
    pub fn demands(&self, q: &pb::DemandsQuery) -> Result<pb::DemandsPage, QueryError> {
        let page_size = page_size(q.page_size)?;
        let city = match q.city.as_str() {
            "" => None,
            city => Some(CityCode::parse("city", city)?.to_string()),
        };
        let status = match pb::DemandStatus::try_from(q.status) {
            Ok(pb::DemandStatus::Unspecified) => None,
            Ok(status) => Some(status as i32),
            Err(_) => {
                return Err(invalid(
                    "status",
                    format!("{} is not a DemandStatus", q.status),
                ))
            }
        };
        let (token, asked) = PageToken::resume(&q.page_token, q.as_of_position, |v| {
            DemandId::parse("page_token", v).map(|id| id.to_string())
        })?;
        let after = token.map(|t| t.key);
        let limit = page_size + 1;

        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, asked)?;
        let mut sql = SUMMARY_SELECT.to_owned();
        let mut args: Vec<(&str, &dyn ToSql)> = vec![(":at", &at), (":limit", &limit)];
        let clauses = [
            (" AND d.city = :city", ":city", city.as_ref()),
            (" AND d.demand_id > :after", ":after", after.as_ref()),
        ];
        for (clause, name, value) in clauses {
            if let Some(value) = value {
                sql.push_str(clause);
                args.push((name, value));
            }
        }
        if let Some(status) = &status {
            sql.push_str(" AND d.status = :status");
            args.push((":status", status));
        }
        sql.push_str(" ORDER BY d.demand_id LIMIT :limit");
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(args.as_slice())?;
        let mut demands = Vec::new();
        while let Some(row) = rows.next()? {
            demands.push(summary(row)?.0);
        }
        let page_len = usize::try_from(page_size).unwrap_or(usize::MAX);
        let next_page_token = if demands.len() > page_len {
            demands.truncate(page_len);
            demands
                .last()
                .map(|last| {
                    PageToken {
                        position: at,
                        key: last.demand_id.clone(),
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::DemandsPage {
            demands,
            next_page_token,
            as_of_position: at,
        })
    }

    /// A demand with its description, outcome and dispatched posts (their
    /// status on `today`).
    pub fn demand(&self, q: &pb::DemandQuery, today: Date) -> Result<pb::DemandDetail, QueryError> {
        let id = DemandId::parse("demand_id", &q.demand_id)?.to_string();
        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, q.as_of_position)?;
        let found = find(&tx, &id, at)?;
        let (s, rest) = found.ok_or_else(|| {
            QueryError::NotFound(format!("demand {id} is not known at position {at}"))
        })?;
        let mut posts = Vec::with_capacity(s.post_ids.len());
        for post_id in &s.post_ids {
            let filter = PostFilter {
                post_id: Some(post_id.clone()),
                ..Default::default()
            };
            posts.extend(select_assignments(&tx, at, today, &filter)?);
        }
        Ok(pb::DemandDetail {
            demand_id: s.demand_id,
            title: s.title,
            enterprise: s.enterprise,
            city: s.city,
            expertise: s.expertise,
            hours_per_month: s.hours_per_month,
            start_date: s.start_date,
            end_date: s.end_date,
            status: s.status,
            post_ids: s.post_ids,
            service_minutes: s.service_minutes,
            satisfaction: s.satisfaction,
            description: rest.description,
            outcome: rest.outcome,
            resolved_on: rest.resolved_on,
            posts,
            as_of_position: at,
            withdrawal_reason: rest.withdrawal_reason,
        })
    }
}

/// What the detail adds to the summary.
struct DetailColumns {
    description: String,
    outcome: String,
    resolved_on: String,
    withdrawal_reason: String,
}

/// The demand `id` as of `at`, if it is known then.
fn find(
    conn: &Connection,
    id: &str,
    at: u64,
) -> Result<Option<(pb::DemandSummary, DetailColumns)>, QueryError> {
    let sql = format!("{SUMMARY_SELECT} AND d.demand_id = :id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(named_params! {":at": at, ":id": id})?;
    rows.next()?.map(summary).transpose()
}

/// A row of [`SUMMARY_SELECT`].
fn summary(r: &Row<'_>) -> Result<(pb::DemandSummary, DetailColumns), QueryError> {
    let expertise: String = r.get(4)?;
    let post_ids: String = r.get(9)?;
    let summary = pb::DemandSummary {
        demand_id: r.get(0)?,
        title: r.get(1)?,
        enterprise: r.get(2)?,
        city: r.get(3)?,
        expertise: from_json(&expertise)?,
        hours_per_month: r.get(5)?,
        start_date: r.get(6)?,
        end_date: r.get(7)?,
        status: r.get(8)?,
        post_ids: from_json(&post_ids)?,
        satisfaction: r.get(10)?,
        service_minutes: r.get(11)?,
    };
    let rest = DetailColumns {
        description: r.get(12)?,
        outcome: r.get(13)?,
        resolved_on: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
        withdrawal_reason: r.get(15)?,
    };
    Ok((summary, rest))
}
