//! The rows of the views' tables as the fold keeps them, each with its SQL:
//! read the stored current version, insert a version, close the current
//! one at a position. Tag lists are stored as JSON arrays.

use rusqlite::{params, Connection, OptionalExtension};

use super::ProjectionError;

/// The current version of a commissioner, minus its key and validity.
#[derive(Debug, Clone)]
pub(super) struct CommissionerRow {
    pub(super) name: String,
    pub(super) home_city: String,
    pub(super) employer: String,
    pub(super) kind: i32,
    pub(super) expertise: Vec<String>,
    pub(super) status: i32,
}

/// The stored current version of a commissioner, with its `valid_from`.
pub(super) fn load_commissioner(
    conn: &Connection,
    key: &str,
) -> Result<Option<(u64, CommissionerRow)>, ProjectionError> {
    let row = conn
        .prepare_cached(
            "SELECT valid_from, name, home_city, employer, kind, expertise, status
             FROM commissioners WHERE commissioner_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                CommissionerRow {
                    name: r.get(1)?,
                    home_city: r.get(2)?,
                    employer: r.get(3)?,
                    kind: r.get(4)?,
                    expertise: Vec::new(),
                    status: r.get(6)?,
                },
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    row.map(|(from, mut row, expertise)| {
        row.expertise = from_json(&expertise)?;
        Ok((from, row))
    })
    .transpose()
}

pub(super) fn insert_commissioner(
    conn: &Connection,
    key: &str,
    from: u64,
    to: Option<u64>,
    row: &CommissionerRow,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT INTO commissioners (commissioner_id, valid_from, valid_to, name, home_city,
             employer, kind, expertise, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        key,
        from,
        to,
        row.name,
        row.home_city,
        row.employer,
        row.kind,
        to_json(&row.expertise),
        row.status,
    ])?;
    let mut tag = conn.prepare_cached(
        "INSERT INTO commissioner_tags (tag, commissioner_id, valid_from) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    for expertise in &row.expertise {
        tag.execute(params![expertise, key, from])?;
    }
    Ok(())
}

/// Closes the stored current version of a commissioner at position `to`.
pub(super) fn close_commissioner(conn: &Connection, key: &str, to: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE commissioners SET valid_to = ?2
         WHERE commissioner_id = ?1 AND valid_to IS NULL",
    )?
    .execute(params![key, to])
}

/// The current version of a workstation, minus its key and validity.
#[derive(Debug, Clone)]
pub(super) struct WorkstationRow {
    pub(super) name: String,
    pub(super) host_org: String,
    pub(super) host_city: String,
    pub(super) capacity: u32,
    pub(super) fields: Vec<String>,
    pub(super) served_cities: Vec<String>,
    pub(super) status: i32,
}

/// The stored current version of a workstation, with its `valid_from`.
pub(super) fn load_workstation(
    conn: &Connection,
    key: &str,
) -> Result<Option<(u64, WorkstationRow)>, ProjectionError> {
    let row = conn
        .prepare_cached(
            "SELECT valid_from, name, host_org, host_city, capacity, fields, served_cities, status
             FROM workstations WHERE workstation_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                WorkstationRow {
                    name: r.get(1)?,
                    host_org: r.get(2)?,
                    host_city: r.get(3)?,
                    capacity: r.get(4)?,
                    fields: Vec::new(),
                    served_cities: Vec::new(),
                    status: r.get(7)?,
                },
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()?;
    row.map(|(from, mut row, fields, served)| {
        row.fields = from_json(&fields)?;
        row.served_cities = from_json(&served)?;
        Ok((from, row))
    })
    .transpose()
}

pub(super) fn insert_workstation(
    conn: &Connection,
    key: &str,
    from: u64,
    to: Option<u64>,
    row: &WorkstationRow,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT INTO workstations (workstation_id, valid_from, valid_to, name, host_org,
             host_city, capacity, fields, served_cities, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        key,
        from,
        to,
        row.name,
        row.host_org,
        row.host_city,
        row.capacity,
        to_json(&row.fields),
        to_json(&row.served_cities),
        row.status,
    ])?;
    Ok(())
}

/// Closes the stored current version of a workstation at position `to`.
pub(super) fn close_workstation(conn: &Connection, key: &str, to: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE workstations SET valid_to = ?2
         WHERE workstation_id = ?1 AND valid_to IS NULL",
    )?
    .execute(params![key, to])
}

/// The current version of a post, minus its key, validity and the derived
/// `end_date`.
#[derive(Debug, Clone)]
pub(super) struct PostRow {
    pub(super) commissioner_id: String,
    pub(super) workstation_id: String,
    pub(super) home_city: String,
    pub(super) serving_city: String,
    pub(super) cross_city: bool,
    pub(super) role: String,
    pub(super) hours_per_month: u32,
    pub(super) start_date: String,
    pub(super) term_end: String,
    pub(super) ended_on: Option<String>,
}

/// The stored current version of a post, with its `valid_from`.
pub(super) fn load_post(
    conn: &Connection,
    key: &str,
) -> Result<Option<(u64, PostRow)>, ProjectionError> {
    Ok(conn
        .prepare_cached(
            "SELECT valid_from, commissioner_id, workstation_id, home_city, serving_city,
                 cross_city, role, hours_per_month, start_date, term_end, ended_on
             FROM posts WHERE post_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                PostRow {
                    commissioner_id: r.get(1)?,
                    workstation_id: r.get(2)?,
                    home_city: r.get(3)?,
                    serving_city: r.get(4)?,
                    cross_city: r.get(5)?,
                    role: r.get(6)?,
                    hours_per_month: r.get(7)?,
                    start_date: r.get(8)?,
                    term_end: r.get(9)?,
                    ended_on: r.get(10)?,
                },
            ))
        })
        .optional()?)
}

pub(super) fn insert_post(
    conn: &Connection,
    key: &str,
    from: u64,
    to: Option<u64>,
    row: &PostRow,
) -> Result<(), ProjectionError> {
    // The last day of service, as the domain's `Post::last_day`. ISO dates
    // order as text, so no parsing is needed.
    let end_date = match &row.ended_on {
        Some(ended) if *ended < row.term_end => ended,
        _ => &row.term_end,
    };
    conn.prepare_cached(
        "INSERT INTO posts (post_id, valid_from, valid_to, commissioner_id, workstation_id,
             home_city, serving_city, cross_city, role, hours_per_month, start_date, term_end,
             ended_on, end_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        key,
        from,
        to,
        row.commissioner_id,
        row.workstation_id,
        row.home_city,
        row.serving_city,
        row.cross_city,
        row.role,
        row.hours_per_month,
        row.start_date,
        row.term_end,
        row.ended_on,
        end_date,
    ])?;
    Ok(())
}

/// Closes the stored current version of a post at position `to`.
pub(super) fn close_post(conn: &Connection, key: &str, to: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached("UPDATE posts SET valid_to = ?2 WHERE post_id = ?1 AND valid_to IS NULL")?
        .execute(params![key, to])
}

/// A service record; commissioner, workstation and home city come from its
/// post.
#[derive(Debug)]
pub(super) struct ServiceRow {
    pub(super) service_id: String,
    pub(super) position: u64,
    pub(super) post_id: String,
    pub(super) commissioner_id: String,
    pub(super) workstation_id: String,
    pub(super) home_city: String,
    pub(super) date: String,
    pub(super) minutes: u32,
    pub(super) beneficiary: String,
    pub(super) beneficiary_city: String,
    pub(super) summary: String,
}

/// Inserts a service record. Its id is recorded once: the store never
/// writes a second one, so a second one is inconsistent.
pub(super) fn insert_service(conn: &Connection, row: &ServiceRow) -> Result<(), ProjectionError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO services (service_id, position, post_id, commissioner_id,
                 workstation_id, home_city, date, minutes, beneficiary, beneficiary_city, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (service_id) DO NOTHING",
        )?
        .execute(params![
            row.service_id,
            row.position,
            row.post_id,
            row.commissioner_id,
            row.workstation_id,
            row.home_city,
            row.date,
            row.minutes,
            row.beneficiary,
            row.beneficiary_city,
            row.summary,
        ])?;
    if inserted == 0 {
        return Err(ProjectionError::Inconsistent {
            position: row.position,
            reason: format!("service {} is recorded twice", row.service_id),
        });
    }
    Ok(())
}

/// The current version of a demand, minus its key and validity.
#[derive(Debug, Clone)]
pub(super) struct DemandRow {
    pub(super) title: String,
    pub(super) enterprise: String,
    pub(super) city: String,
    pub(super) expertise: Vec<String>,
    pub(super) hours_per_month: u32,
    pub(super) start_date: String,
    pub(super) end_date: String,
    pub(super) description: String,
    pub(super) status: i32,
    pub(super) post_ids: Vec<String>,
    pub(super) outcome: String,
    pub(super) satisfaction: u32,
    pub(super) resolved_on: Option<String>,
    pub(super) withdrawal_reason: String,
}

/// The stored current version of a demand, with its `valid_from`.
pub(super) fn load_demand(
    conn: &Connection,
    key: &str,
) -> Result<Option<(u64, DemandRow)>, ProjectionError> {
    let row = conn
        .prepare_cached(
            "SELECT valid_from, title, enterprise, city, expertise, hours_per_month, start_date,
                 end_date, description, status, post_ids, outcome, satisfaction, resolved_on,
                 withdrawal_reason
             FROM demands WHERE demand_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                DemandRow {
                    title: r.get(1)?,
                    enterprise: r.get(2)?,
                    city: r.get(3)?,
                    expertise: Vec::new(),
                    hours_per_month: r.get(5)?,
                    start_date: r.get(6)?,
                    end_date: r.get(7)?,
                    description: r.get(8)?,
                    status: r.get(9)?,
                    post_ids: Vec::new(),
                    outcome: r.get(11)?,
                    satisfaction: r.get(12)?,
                    resolved_on: r.get(13)?,
                    withdrawal_reason: r.get(14)?,
                },
                r.get::<_, String>(4)?,
                r.get::<_, String>(10)?,
            ))
        })
        .optional()?;
    row.map(|(from, mut row, expertise, post_ids)| {
        row.expertise = from_json(&expertise)?;
        row.post_ids = from_json(&post_ids)?;
        Ok((from, row))
    })
    .transpose()
}

pub(super) fn insert_demand(
    conn: &Connection,
    key: &str,
    from: u64,
    to: Option<u64>,
    row: &DemandRow,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT INTO demands (demand_id, valid_from, valid_to, title, enterprise, city,
             expertise, hours_per_month, start_date, end_date, description, status, post_ids,
             outcome, satisfaction, resolved_on, withdrawal_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        key,
        from,
        to,
        row.title,
        row.enterprise,
        row.city,
        to_json(&row.expertise),
        row.hours_per_month,
        row.start_date,
        row.end_date,
        row.description,
        row.status,
        to_json(&row.post_ids),
        row.outcome,
        row.satisfaction,
        row.resolved_on,
        row.withdrawal_reason,
    ])?;
    Ok(())
}

/// Closes the stored current version of a demand at position `to`.
pub(super) fn close_demand(conn: &Connection, key: &str, to: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE demands SET valid_to = ?2 WHERE demand_id = ?1 AND valid_to IS NULL",
    )?
    .execute(params![key, to])
}

/// Service recorded for a demand.
#[derive(Debug)]
pub(super) struct DemandServiceRow {
    pub(super) demand_id: String,
    pub(super) service_id: String,
    pub(super) position: u64,
    pub(super) minutes: u32,
}

/// Links a service record to its demand; once, as [`insert_service`].
pub(super) fn insert_demand_service(
    conn: &Connection,
    row: &DemandServiceRow,
) -> Result<(), ProjectionError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO demand_services (demand_id, service_id, position, minutes)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (demand_id, service_id) DO NOTHING",
        )?
        .execute(params![
            row.demand_id,
            row.service_id,
            row.position,
            row.minutes
        ])?;
    if inserted == 0 {
        return Err(ProjectionError::Inconsistent {
            position: row.position,
            reason: format!("service {} is recorded twice", row.service_id),
        });
    }
    Ok(())
}

/// A resolved demand that a commissioner served, for their satisfaction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ServedDemandRow {
    pub(super) commissioner_id: String,
    pub(super) demand_id: String,
    pub(super) position: u64,
    pub(super) satisfaction: u32,
}

/// Records that a commissioner served a resolved demand. A demand is
/// resolved once, and the fold lists each commissioner of it once.
pub(super) fn insert_served_demand(
    conn: &Connection,
    row: &ServedDemandRow,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT INTO served_demands (commissioner_id, demand_id, position, satisfaction)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        row.commissioner_id,
        row.demand_id,
        row.position,
        row.satisfaction
    ])?;
    Ok(())
}

/// The inverse of [`to_json`].
pub(super) fn from_json(text: &str) -> Result<Vec<String>, ProjectionError> {
    serde_json::from_str(text)
        .map_err(|e| ProjectionError::Corrupt(format!("tag list {text}: {e}")))
}

/// Tags as a JSON array: one column, and no separator character to forbid.
fn to_json(values: &[String]) -> String {
    // Serialising a list of strings cannot fail; "[]" keeps the column valid
    // should serde_json ever disagree.
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}
