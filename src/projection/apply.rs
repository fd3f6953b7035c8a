//! Events into the views, folded in memory and written once per batch.
//!
//! An update never overwrites: it closes the entity's current row at the
//! event's position and adds the changed copy from that position, so every
//! earlier position can still be read (see `schema`). An event about an
//! entity the views do not hold is [`ProjectionError::Inconsistent`]: the
//! store never writes one, so it means the stream is broken and skipping it
//! would make the views silently disagree with a rebuild.
//!
//! [`Rows`] holds the current version of every entity a batch touches, read
//! from the file at most once, and every version the batch made. Events
//! change only that memory; [`Rows::write`] then inserts each new version
//! once, already closed when a later event of the batch replaced it, in key
//! order, and closes a stored version with one update. Per event that is
//! about one statement instead of three or four, and a rebuild, which
//! applies tens of thousands of events per batch, writes each table nearly
//! in key order. After a commit the current versions stay cached (up to
//! [`CACHED_ENTITIES`]), so a live batch seldom reads what the previous one
//! wrote. The live projector and a rebuild run this same code, so they
//! cannot disagree on a row.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::ProjectionError;
use crate::domain::{CommissionerKind, Event, Text};
use crate::wire::pb;

/// Entities whose current version stays in memory between batches; past
/// it the cache is dropped whole. About 0.5 KB each, so at most ~25 MB.
const CACHED_ENTITIES: usize = 50_000;

/// One entity as a batch sees it: its current version, the versions it
/// replaced during the batch, and whether the oldest of those (or the
/// current one, if none) is already stored in the file.
#[derive(Debug)]
struct Slot<R> {
    stored: bool,
    /// Replaced versions, oldest first, with the position each became valid.
    earlier: Vec<(u64, R)>,
    /// The position the current version became valid.
    from: u64,
    current: R,
}

impl<R: Clone> Slot<R> {
    fn new(from: u64, current: R, stored: bool) -> Self {
        Self {
            stored,
            earlier: Vec::new(),
            from,
            current,
        }
    }

    /// Replaces the current version by `change` applied to it, from `at`.
    fn revise(&mut self, at: u64, change: impl FnOnce(&mut R)) {
        let previous = self.current.clone();
        change(&mut self.current);
        self.earlier
            .push((std::mem::replace(&mut self.from, at), previous));
    }

    /// Whether the batch made anything that is not in the file yet.
    fn is_dirty(&self) -> bool {
        !self.stored || !self.earlier.is_empty()
    }

    /// Writes what the batch made: closes the stored version if it was
    /// replaced, then inserts each new version with the position that
    /// ended it.
    fn write(
        &self,
        key: &str,
        close: impl FnOnce(&str, u64) -> rusqlite::Result<usize>,
        mut insert: impl FnMut(&str, u64, Option<u64>, &R) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let versions: Vec<(u64, &R)> = self
            .earlier
            .iter()
            .map(|(from, row)| (*from, row))
            .chain(std::iter::once((self.from, &self.current)))
            .collect();
        // Each version ends where the next one starts; the last is current.
        let mut ends = versions
            .iter()
            .skip(1)
            .map(|(from, _)| Some(*from))
            .chain([None]);
        let mut starts = versions.iter();
        if self.stored {
            // The oldest version is the file's current row: close it if the
            // batch replaced it, and insert only what came after.
            starts.next();
            if let Some(Some(to)) = ends.next() {
                close(key, to)?;
            }
        }
        for ((from, row), to) in starts.zip(ends) {
            insert(key, *from, to, row)?;
        }
        Ok(())
    }

    /// After a commit: only the current version remains, and it is stored.
    fn settle(&mut self) {
        self.earlier.clear();
        self.stored = true;
    }
}

/// The slots of one table, and the keys the batch changed: writing and
/// settling a batch visit those only, not the whole cache.
#[derive(Debug)]
struct Table<R> {
    slots: HashMap<String, Slot<R>>,
    changed: Vec<String>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            changed: Vec::new(),
        }
    }
}

impl<R: Clone> Table<R> {
    /// Adds an entity the batch creates.
    fn create(&mut self, key: String, from: u64, row: R) {
        self.changed.push(key.clone());
        self.slots.insert(key, Slot::new(from, row, false));
    }

    /// The changed slots, in key order, so inserts walk the table's primary
    /// key from left to right.
    fn changed(&mut self) -> Vec<(&str, &Slot<R>)> {
        self.changed.sort_unstable();
        self.changed.dedup();
        self.changed
            .iter()
            .filter_map(|key| Some((key.as_str(), self.slots.get(key)?)))
            .filter(|(_, slot)| slot.is_dirty())
            .collect()
    }

    fn settle(&mut self) {
        for key in self.changed.drain(..) {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.settle();
            }
        }
    }
}

/// The rows a batch reads and makes, and the cache between batches.
#[derive(Debug, Default)]
pub(super) struct Rows {
    commissioners: Table<CommissionerRow>,
    workstations: Table<WorkstationRow>,
    posts: Table<PostRow>,
    /// Service records of the batch, in position order.
    services: Vec<ServiceRow>,
}

impl Rows {
    /// Forgets everything: after a rolled-back batch nothing in memory can
    /// be trusted to match the file.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// After a commit: keeps the current versions as a cache of the file,
    /// unless there are too many of them.
    pub(super) fn settle(&mut self) {
        self.services.clear();
        let cached =
            self.commissioners.slots.len() + self.workstations.slots.len() + self.posts.slots.len();
        if cached > CACHED_ENTITIES {
            self.clear();
            return;
        }
        self.commissioners.settle();
        self.workstations.settle();
        self.posts.settle();
    }

    /// Applies `event`, recorded at global `position`, to the batch in
    /// memory, reading from `conn` what the batch does not hold yet.
    pub(super) fn apply(
        &mut self,
        conn: &Connection,
        position: u64,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        let at = At(position);
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
                if self.commissioner(conn, &key)?.is_some() {
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
                self.commissioners.create(key, position, row);
                Ok(())
            }
            Event::CommissionerProfileUpdated {
                commissioner_id,
                name,
                employer,
                expertise,
            } => self.revise_commissioner(conn, at, commissioner_id.to_string(), |c| {
                c.name = name.to_string();
                c.employer = employer.to_string();
                c.expertise = strings(expertise);
            }),
            Event::CommissionerSuspended {
                commissioner_id, ..
            } => self.set_commissioner_status(
                conn,
                at,
                commissioner_id.to_string(),
                pb::CommissionerStatus::CommissionerSuspended,
            ),
            Event::CommissionerReinstated {
                commissioner_id, ..
            } => self.set_commissioner_status(
                conn,
                at,
                commissioner_id.to_string(),
                pb::CommissionerStatus::CommissionerActive,
            ),
            // Its running posts end through their own PostEnded events in
            // the same commit; here only the status changes.
            Event::CommissionerRetired {
                commissioner_id, ..
            } => self.set_commissioner_status(
                conn,
                at,
                commissioner_id.to_string(),
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
                if self.workstation(conn, &key)?.is_some() {
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
                self.workstations.create(key, position, row);
                Ok(())
            }
            Event::WorkstationServiceExtended {
                workstation_id,
                city,
            } => self.revise_workstation(conn, at, workstation_id.to_string(), |w| {
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
            } => self.revise_workstation(conn, at, workstation_id.to_string(), |w| {
                let city = city.to_string();
                w.served_cities.retain(|c| *c != city);
            }),
            Event::WorkstationCapacityChanged {
                workstation_id,
                capacity,
                ..
            } => self.revise_workstation(conn, at, workstation_id.to_string(), |w| {
                w.capacity = capacity.get();
            }),
            Event::WorkstationClosed { workstation_id, .. } => {
                self.revise_workstation(conn, at, workstation_id.to_string(), |w| {
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
                if self.post(conn, &key)?.is_some() {
                    return Err(at.inconsistent(format!("post {key} is appointed twice")));
                }
                let commissioner_key = commissioner_id.to_string();
                let home_city = self
                    .commissioner(conn, &commissioner_key)?
                    .map(|c| c.current.home_city.clone())
                    .ok_or_else(|| {
                        at.inconsistent(format!(
                            "post {key} names unknown commissioner {commissioner_key}"
                        ))
                    })?;
                let workstation_key = workstation_id.to_string();
                if self.workstation(conn, &workstation_key)?.is_none() {
                    return Err(at.inconsistent(format!(
                        "post {key} names unknown workstation {workstation_key}"
                    )));
                }
                let serving_city = serving_city.to_string();
                let row = PostRow {
                    commissioner_id: commissioner_key,
                    workstation_id: workstation_key,
                    cross_city: serving_city != home_city,
                    home_city,
                    serving_city,
                    role: role.to_string(),
                    hours_per_month: hours_per_month.get(),
                    start_date: start_date.to_string(),
                    term_end: end_date.to_string(),
                    ended_on: None,
                };
                self.posts.create(key, position, row);
                Ok(())
            }
            Event::PostTermExtended {
                post_id, end_date, ..
            } => self.revise_post(conn, at, post_id.to_string(), |p| {
                p.term_end = end_date.to_string();
            }),
            Event::PostEnded {
                post_id, end_date, ..
            } => self.revise_post(conn, at, post_id.to_string(), |p| {
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
                let post = &self
                    .post(conn, &key)?
                    .ok_or_else(|| {
                        at.inconsistent(format!("service {service_id} names unknown post {key}"))
                    })?
                    .current;
                let row = ServiceRow {
                    service_id: service_id.to_string(),
                    position,
                    commissioner_id: post.commissioner_id.clone(),
                    workstation_id: post.workstation_id.clone(),
                    home_city: post.home_city.clone(),
                    post_id: key,
                    date: date.to_string(),
                    minutes: minutes.get(),
                    beneficiary: beneficiary.to_string(),
                    beneficiary_city: beneficiary_city.to_string(),
                    summary: summary.to_string(),
                };
                self.services.push(row);
                Ok(())
            }
        }
    }

    /// Writes everything the batch made into `conn`, table by table in key
    /// order. Call inside the batch's transaction, then [`Rows::settle`]
    /// after the commit or [`Rows::clear`] on any error.
    pub(super) fn write(&mut self, conn: &Connection) -> Result<(), ProjectionError> {
        for (key, slot) in self.commissioners.changed() {
            slot.write(
                key,
                |key, to| {
                    conn.prepare_cached(
                        "UPDATE commissioners SET valid_to = ?2
                         WHERE commissioner_id = ?1 AND valid_to IS NULL",
                    )?
                    .execute(params![key, to])
                },
                |key, from, to, row| insert_commissioner(conn, key, from, to, row),
            )?;
        }
        for (key, slot) in self.workstations.changed() {
            slot.write(
                key,
                |key, to| {
                    conn.prepare_cached(
                        "UPDATE workstations SET valid_to = ?2
                         WHERE workstation_id = ?1 AND valid_to IS NULL",
                    )?
                    .execute(params![key, to])
                },
                |key, from, to, row| insert_workstation(conn, key, from, to, row),
            )?;
        }
        for (key, slot) in self.posts.changed() {
            slot.write(
                key,
                |key, to| {
                    conn.prepare_cached(
                        "UPDATE posts SET valid_to = ?2 WHERE post_id = ?1 AND valid_to IS NULL",
                    )?
                    .execute(params![key, to])
                },
                |key, from, to, row| insert_post(conn, key, from, to, row),
            )?;
        }
        // Stable: of two records with one id, the later one is refused, as
        // if they had been inserted in position order.
        self.services
            .sort_by(|a, b| a.service_id.cmp(&b.service_id));
        for service in &self.services {
            insert_service(conn, service)?;
        }
        Ok(())
    }

    /// The commissioner's slot, read from the file if the batch does not
    /// hold it yet; `None` if the views do not know it.
    fn commissioner(
        &mut self,
        conn: &Connection,
        key: &str,
    ) -> Result<Option<&mut Slot<CommissionerRow>>, ProjectionError> {
        if !self.commissioners.slots.contains_key(key) {
            let Some((from, row)) = load_commissioner(conn, key)? else {
                return Ok(None);
            };
            self.commissioners
                .slots
                .insert(key.to_owned(), Slot::new(from, row, true));
        }
        Ok(self.commissioners.slots.get_mut(key))
    }

    /// As [`Rows::commissioner`], for a workstation.
    fn workstation(
        &mut self,
        conn: &Connection,
        key: &str,
    ) -> Result<Option<&mut Slot<WorkstationRow>>, ProjectionError> {
        if !self.workstations.slots.contains_key(key) {
            let Some((from, row)) = load_workstation(conn, key)? else {
                return Ok(None);
            };
            self.workstations
                .slots
                .insert(key.to_owned(), Slot::new(from, row, true));
        }
        Ok(self.workstations.slots.get_mut(key))
    }

    /// As [`Rows::commissioner`], for a post.
    fn post(
        &mut self,
        conn: &Connection,
        key: &str,
    ) -> Result<Option<&mut Slot<PostRow>>, ProjectionError> {
        if !self.posts.slots.contains_key(key) {
            let Some((from, row)) = load_post(conn, key)? else {
                return Ok(None);
            };
            self.posts
                .slots
                .insert(key.to_owned(), Slot::new(from, row, true));
        }
        Ok(self.posts.slots.get_mut(key))
    }

    fn set_commissioner_status(
        &mut self,
        conn: &Connection,
        at: At,
        key: String,
        status: pb::CommissionerStatus,
    ) -> Result<(), ProjectionError> {
        self.revise_commissioner(conn, at, key, |c| c.status = status as i32)
    }

    fn revise_commissioner(
        &mut self,
        conn: &Connection,
        at: At,
        key: String,
        change: impl FnOnce(&mut CommissionerRow),
    ) -> Result<(), ProjectionError> {
        self.commissioner(conn, &key)?
            .ok_or_else(|| at.missing("commissioner", &key))?
            .revise(at.0, change);
        self.commissioners.changed.push(key);
        Ok(())
    }

    fn revise_workstation(
        &mut self,
        conn: &Connection,
        at: At,
        key: String,
        change: impl FnOnce(&mut WorkstationRow),
    ) -> Result<(), ProjectionError> {
        self.workstation(conn, &key)?
            .ok_or_else(|| at.missing("workstation", &key))?
            .revise(at.0, change);
        self.workstations.changed.push(key);
        Ok(())
    }

    fn revise_post(
        &mut self,
        conn: &Connection,
        at: At,
        key: String,
        change: impl FnOnce(&mut PostRow),
    ) -> Result<(), ProjectionError> {
        self.post(conn, &key)?
            .ok_or_else(|| at.missing("post", &key))?
            .revise(at.0, change);
        self.posts.changed.push(key);
        Ok(())
    }
}

/// The position an event is applied at.
#[derive(Clone, Copy)]
struct At(u64);

impl At {
    fn inconsistent(self, reason: String) -> ProjectionError {
        ProjectionError::Inconsistent {
            position: self.0,
            reason,
        }
    }

    fn missing(self, what: &str, key: &str) -> ProjectionError {
        self.inconsistent(format!("{what} {key} is not in the views"))
    }
}

/// The current version of a commissioner, minus its key and validity.
#[derive(Debug, Clone)]
struct CommissionerRow {
    name: String,
    home_city: String,
    employer: String,
    kind: i32,
    expertise: Vec<String>,
    status: i32,
}

/// The stored current version of a commissioner, with its `valid_from`.
fn load_commissioner(
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

fn insert_commissioner(
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
    Ok(())
}

/// The current version of a workstation, minus its key and validity.
#[derive(Debug, Clone)]
struct WorkstationRow {
    name: String,
    host_org: String,
    host_city: String,
    capacity: u32,
    fields: Vec<String>,
    served_cities: Vec<String>,
    status: i32,
}

/// The stored current version of a workstation, with its `valid_from`.
fn load_workstation(
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

fn insert_workstation(
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

/// The current version of a post, minus its key, validity and the derived
/// `end_date`.
#[derive(Debug, Clone)]
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

/// The stored current version of a post, with its `valid_from`.
fn load_post(conn: &Connection, key: &str) -> Result<Option<(u64, PostRow)>, ProjectionError> {
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

fn insert_post(
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

/// A service record; commissioner, workstation and home city come from its
/// post.
#[derive(Debug)]
struct ServiceRow {
    service_id: String,
    position: u64,
    post_id: String,
    commissioner_id: String,
    workstation_id: String,
    home_city: String,
    date: String,
    minutes: u32,
    beneficiary: String,
    beneficiary_city: String,
    summary: String,
}

fn insert_service(conn: &Connection, row: &ServiceRow) -> Result<(), ProjectionError> {
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
        return Err(
            At(row.position).inconsistent(format!("service {} is recorded twice", row.service_id))
        );
    }
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
