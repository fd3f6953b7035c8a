//! One event into the views, inside the batch's transaction.
//!
//! An update never overwrites: it closes the entity's current row at the
//! event's position and inserts the changed copy from that position, so
//! every earlier position can still be read (see `schema`). An event about
//! an entity the views do not hold is [`ProjectionError::Inconsistent`]:
//! the store never writes one, so it means the stream is broken and
//! skipping it would make the views silently disagree with a rebuild.

use rusqlite::{params, Connection, OptionalExtension};

use super::ProjectionError;
use crate::domain::{CommissionerKind, Event, Text};
use crate::wire::pb;

/// Applies `event`, recorded at global `position`.
pub(super) fn apply(
    conn: &Connection,
    position: u64,
    event: &Event,
) -> Result<(), ProjectionError> {
    let at = Versioning { conn, position };
    match event {
        Event::CommissionerRegistered {
            commissioner_id,
            name,
            home_city,
            employer,
            kind,
            expertise,
        } => {
            let key = commissioner_id.to_string();
            if load_commissioner(conn, &key)?.is_some() {
                return Err(at.inconsistent(format!("commissioner {key} is registered twice")));
            }
            let row = CommissionerRow {
                name: name.to_string(),
                home_city: home_city.to_string(),
                employer: employer.to_string(),
                kind: kind_to_pb(*kind) as i32,
                expertise: strings(expertise),
                status: pb::CommissionerStatus::CommissionerActive as i32,
            };
            insert_commissioner(conn, &key, position, &row)
        }
        Event::CommissionerProfileUpdated {
            commissioner_id,
            name,
            employer,
            expertise,
        } => at.revise_commissioner(&commissioner_id.to_string(), |c| {
            c.name = name.to_string();
            c.employer = employer.to_string();
            c.expertise = strings(expertise);
        }),
        Event::CommissionerSuspended {
            commissioner_id, ..
        } => at.set_commissioner_status(
            &commissioner_id.to_string(),
            pb::CommissionerStatus::CommissionerSuspended,
        ),
        Event::CommissionerReinstated {
            commissioner_id, ..
        } => at.set_commissioner_status(
            &commissioner_id.to_string(),
            pb::CommissionerStatus::CommissionerActive,
        ),
        // Its running posts end through their own PostEnded events in the
        // same commit; here only the status changes.
        Event::CommissionerRetired {
            commissioner_id, ..
        } => at.set_commissioner_status(
            &commissioner_id.to_string(),
            pb::CommissionerStatus::CommissionerRetired,
        ),
        Event::WorkstationEstablished {
            workstation_id,
            name,
            host_org,
            host_city,
            capacity,
            fields,
        } => {
            let key = workstation_id.to_string();
            if load_workstation(conn, &key)?.is_some() {
                return Err(at.inconsistent(format!("workstation {key} is established twice")));
            }
            let row = WorkstationRow {
                name: name.to_string(),
                host_org: host_org.to_string(),
                host_city: host_city.to_string(),
                capacity: capacity.get(),
                fields: strings(fields),
                served_cities: vec![host_city.to_string()],
                status: pb::WorkstationStatus::WorkstationOpen as i32,
            };
            insert_workstation(conn, &key, position, &row)
        }
        Event::WorkstationServiceExtended {
            workstation_id,
            city,
        } => at.revise_workstation(&workstation_id.to_string(), |w| {
            let city = city.to_string();
            if !w.served_cities.contains(&city) {
                w.served_cities.push(city);
                // Codes are fixed-width digits, so text order is code order.
                w.served_cities.sort();
            }
        }),
        Event::WorkstationServiceWithdrawn {
            workstation_id,
            city,
            ..
        } => at.revise_workstation(&workstation_id.to_string(), |w| {
            let city = city.to_string();
            w.served_cities.retain(|c| *c != city);
        }),
        Event::WorkstationCapacityChanged {
            workstation_id,
            capacity,
            ..
        } => at.revise_workstation(&workstation_id.to_string(), |w| {
            w.capacity = capacity.get();
        }),
        Event::WorkstationClosed { workstation_id, .. } => {
            at.revise_workstation(&workstation_id.to_string(), |w| {
                w.status = pb::WorkstationStatus::WorkstationClosed as i32;
            })
        }
        Event::PostAppointed {
            post_id,
            commissioner_id,
            workstation_id,
            serving_city,
            role,
            hours_per_month,
            start_date,
            end_date,
        } => {
            let key = post_id.to_string();
            if load_post(conn, &key)?.is_some() {
                return Err(at.inconsistent(format!("post {key} is appointed twice")));
            }
            let commissioner_key = commissioner_id.to_string();
            let commissioner = load_commissioner(conn, &commissioner_key)?.ok_or_else(|| {
                at.inconsistent(format!(
                    "post {key} names unknown commissioner {commissioner_key}"
                ))
            })?;
            let workstation_key = workstation_id.to_string();
            if load_workstation(conn, &workstation_key)?.is_none() {
                return Err(at.inconsistent(format!(
                    "post {key} names unknown workstation {workstation_key}"
                )));
            }
            let serving_city = serving_city.to_string();
            let row = PostRow {
                commissioner_id: commissioner_key,
                workstation_id: workstation_key,
                cross_city: serving_city != commissioner.home_city,
                home_city: commissioner.home_city,
                serving_city,
                role: role.to_string(),
                hours_per_month: hours_per_month.get(),
                start_date: start_date.to_string(),
                term_end: end_date.to_string(),
                ended_on: None,
            };
            insert_post(conn, &key, position, &row)
        }
        Event::PostTermExtended {
            post_id, end_date, ..
        } => at.revise_post(&post_id.to_string(), |p| {
            p.term_end = end_date.to_string();
        }),
        Event::PostEnded {
            post_id, end_date, ..
        } => at.revise_post(&post_id.to_string(), |p| {
            p.ended_on = Some(end_date.to_string());
        }),
        Event::ServiceRecorded {
            service_id,
            post_id,
            date,
            minutes,
            beneficiary,
            beneficiary_city,
            summary,
        } => {
            let key = post_id.to_string();
            let post = load_post(conn, &key)?.ok_or_else(|| {
                at.inconsistent(format!("service {service_id} names unknown post {key}"))
            })?;
            let inserted = conn.prepare_cached(
                "INSERT INTO services (service_id, position, post_id, commissioner_id,
                     workstation_id, home_city, date, minutes, beneficiary, beneficiary_city, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (service_id) DO NOTHING",
            )?
            .execute(
                params![
                    service_id.to_string(),
                    position,
                    key,
                    post.commissioner_id,
                    post.workstation_id,
                    post.home_city,
                    date.to_string(),
                    minutes.get(),
                    beneficiary.as_str(),
                    beneficiary_city.to_string(),
                    summary.as_str(),
                ],
            )?;
            if inserted == 0 {
                return Err(at.inconsistent(format!("service {service_id} is recorded twice")));
            }
            Ok(())
        }
    }
}

/// The position an event is applied at, with the connection it writes to.
struct Versioning<'c> {
    conn: &'c Connection,
    position: u64,
}

impl Versioning<'_> {
    fn inconsistent(&self, reason: String) -> ProjectionError {
        ProjectionError::Inconsistent {
            position: self.position,
            reason,
        }
    }

    fn missing(&self, what: &str, key: &str) -> ProjectionError {
        self.inconsistent(format!("{what} {key} is not in the views"))
    }

    fn set_commissioner_status(
        &self,
        key: &str,
        status: pb::CommissionerStatus,
    ) -> Result<(), ProjectionError> {
        self.revise_commissioner(key, |c| c.status = status as i32)
    }

    fn revise_commissioner(
        &self,
        key: &str,
        change: impl FnOnce(&mut CommissionerRow),
    ) -> Result<(), ProjectionError> {
        let mut row =
            load_commissioner(self.conn, key)?.ok_or_else(|| self.missing("commissioner", key))?;
        change(&mut row);
        self.conn.prepare_cached(
            "UPDATE commissioners SET valid_to = ?2 WHERE commissioner_id = ?1 AND valid_to IS NULL",
        )?
        .execute(
            params![key, self.position],
        )?;
        insert_commissioner(self.conn, key, self.position, &row)
    }

    fn revise_workstation(
        &self,
        key: &str,
        change: impl FnOnce(&mut WorkstationRow),
    ) -> Result<(), ProjectionError> {
        let mut row =
            load_workstation(self.conn, key)?.ok_or_else(|| self.missing("workstation", key))?;
        change(&mut row);
        self.conn.prepare_cached(
            "UPDATE workstations SET valid_to = ?2 WHERE workstation_id = ?1 AND valid_to IS NULL",
        )?
        .execute(
            params![key, self.position],
        )?;
        insert_workstation(self.conn, key, self.position, &row)
    }

    fn revise_post(
        &self,
        key: &str,
        change: impl FnOnce(&mut PostRow),
    ) -> Result<(), ProjectionError> {
        let mut row = load_post(self.conn, key)?.ok_or_else(|| self.missing("post", key))?;
        change(&mut row);
        self.conn
            .prepare_cached(
                "UPDATE posts SET valid_to = ?2 WHERE post_id = ?1 AND valid_to IS NULL",
            )?
            .execute(params![key, self.position])?;
        insert_post(self.conn, key, self.position, &row)
    }
}

/// The current version of a commissioner, minus its key and validity.
struct CommissionerRow {
    name: String,
    home_city: String,
    employer: String,
    kind: i32,
    expertise: Vec<String>,
    status: i32,
}

fn load_commissioner(
    conn: &Connection,
    key: &str,
) -> Result<Option<CommissionerRow>, ProjectionError> {
    let row = conn
        .prepare_cached(
            "SELECT name, home_city, employer, kind, expertise, status FROM commissioners
             WHERE commissioner_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok((
                CommissionerRow {
                    name: r.get(0)?,
                    home_city: r.get(1)?,
                    employer: r.get(2)?,
                    kind: r.get(3)?,
                    expertise: Vec::new(),
                    status: r.get(5)?,
                },
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    row.map(|(mut row, expertise)| {
        row.expertise = from_json(&expertise)?;
        Ok(row)
    })
    .transpose()
}

fn insert_commissioner(
    conn: &Connection,
    key: &str,
    from: u64,
    row: &CommissionerRow,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT INTO commissioners (commissioner_id, valid_from, name, home_city, employer, kind,
             expertise, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        key,
        from,
        row.name,
        row.home_city,
        row.employer,
        row.kind,
        to_json(&row.expertise),
        row.status,
    ])?;
    Ok(())
}

/// The current version of a workstation, minus its key and validity.
struct WorkstationRow {
    name: String,
    host_org: String,
    host_city: String,
    capacity: u32,
    fields: Vec<String>,
    served_cities: Vec<String>,
    status: i32,
}

fn load_workstation(
    conn: &Connection,
    key: &str,
) -> Result<Option<WorkstationRow>, ProjectionError> {
    let row = conn
        .prepare_cached(
            "SELECT name, host_org, host_city, capacity, fields, served_cities, status
             FROM workstations WHERE workstation_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok((
                WorkstationRow {
                    name: r.get(0)?,
                    host_org: r.get(1)?,
                    host_city: r.get(2)?,
                    capacity: r.get(3)?,
                    fields: Vec::new(),
                    served_cities: Vec::new(),
                    status: r.get(6)?,
                },
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    row.map(|(mut row, fields, served)| {
        row.fields = from_json(&fields)?;
        row.served_cities = from_json(&served)?;
        Ok(row)
    })
    .transpose()
}

fn insert_workstation(
    conn: &Connection,
    key: &str,
    from: u64,
    row: &WorkstationRow,
) -> Result<(), ProjectionError> {
    conn.prepare_cached(
        "INSERT INTO workstations (workstation_id, valid_from, name, host_org, host_city,
             capacity, fields, served_cities, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        key,
        from,
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

/// The current version of a post, minus its key, validity and the derived
/// `end_date`.
struct PostRow {
    commissioner_id: String,
    workstation_id: String,
    home_city: String,
    serving_city: String,
    cross_city: bool,
    role: String,
    hours_per_month: u32,
    start_date: String,
    term_end: String,
    ended_on: Option<String>,
}

fn load_post(conn: &Connection, key: &str) -> Result<Option<PostRow>, ProjectionError> {
    Ok(conn
        .prepare_cached(
            "SELECT commissioner_id, workstation_id, home_city, serving_city, cross_city, role,
                 hours_per_month, start_date, term_end, ended_on
             FROM posts WHERE post_id = ?1 AND valid_to IS NULL",
        )?
        .query_row([key], |r| {
            Ok(PostRow {
                commissioner_id: r.get(0)?,
                workstation_id: r.get(1)?,
                home_city: r.get(2)?,
                serving_city: r.get(3)?,
                cross_city: r.get(4)?,
                role: r.get(5)?,
                hours_per_month: r.get(6)?,
                start_date: r.get(7)?,
                term_end: r.get(8)?,
                ended_on: r.get(9)?,
            })
        })
        .optional()?)
}

fn insert_post(
    conn: &Connection,
    key: &str,
    from: u64,
    row: &PostRow,
) -> Result<(), ProjectionError> {
    // The last day of service, as the domain's `Post::last_day`. ISO dates
    // order as text, so no parsing is needed.
    let end_date = match &row.ended_on {
        Some(ended) if *ended < row.term_end => ended,
        _ => &row.term_end,
    };
    conn.prepare_cached(
        "INSERT INTO posts (post_id, valid_from, commissioner_id, workstation_id, home_city,
             serving_city, cross_city, role, hours_per_month, start_date, term_end, ended_on,
             end_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        key,
        from,
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

fn kind_to_pb(kind: CommissionerKind) -> pb::CommissionerKind {
    match kind {
        CommissionerKind::Enterprise => pb::CommissionerKind::Enterprise,
        CommissionerKind::University => pb::CommissionerKind::University,
        CommissionerKind::ResearchInstitute => pb::CommissionerKind::ResearchInstitute,
        CommissionerKind::Individual => pb::CommissionerKind::Individual,
    }
}

fn strings(values: &[Text]) -> Vec<String> {
    values.iter().map(Text::to_string).collect()
}

/// Tags as a JSON array: one column, and no separator character to forbid.
fn to_json(values: &[String]) -> String {
    // Serialising a list of strings cannot fail; "[]" keeps the column valid
    // should serde_json ever disagree.
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

/// The inverse of [`to_json`].
pub(super) fn from_json(text: &str) -> Result<Vec<String>, ProjectionError> {
    serde_json::from_str(text)
        .map_err(|e| ProjectionError::Corrupt(format!("tag list {text}: {e}")))
}
