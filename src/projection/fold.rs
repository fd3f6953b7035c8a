//! Events into the views, folded in memory and written once per batch.
//!
//! Every update is a new version of the entity's row (see `versioned`). An
//! event about an entity the views do not hold is
//! [`ProjectionError::Inconsistent`]: the store never writes one, so it
//! means the stream is broken and skipping it would make the views
//! silently disagree with a rebuild.
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

use rusqlite::Connection;

use super::rows::{
    close_commissioner, close_demand, close_post, close_workstation, insert_commissioner,
    insert_demand, insert_demand_service, insert_post, insert_served_demand, insert_service,
    insert_workstation, load_commissioner, load_demand, load_post, load_workstation,
    CommissionerRow, DemandRow, DemandServiceRow, PostRow, ServedDemandRow, ServiceRow,
    WorkstationRow,
};
use super::versioned::{Slot, Table};
use super::ProjectionError;
use crate::domain::{Event, Text};
use crate::wire::{self, pb};

/// The rows a batch reads and makes, and the cache between batches.
#[derive(Debug, Default)]
pub(super) struct Rows {
    commissioners: Table<CommissionerRow>,
    workstations: Table<WorkstationRow>,
    posts: Table<PostRow>,
    demands: Table<DemandRow>,
    /// Service records of the batch, in position order.
    services: Vec<ServiceRow>,
    /// Which of them were for a demand.
    demand_services: Vec<DemandServiceRow>,
    /// Who served the demands the batch resolved.
    served_demands: Vec<ServedDemandRow>,
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
        self.demand_services.clear();
        self.served_demands.clear();
        let cached = self.commissioners.slots.len()
            + self.workstations.slots.len()
            + self.posts.slots.len()
            + self.demands.slots.len();
        if cached > CACHED_ENTITIES {
            self.clear();
            return;
        }
        self.commissioners.settle();
        self.workstations.settle();
        self.posts.settle();
        self.demands.settle();
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
                    kind: wire::kind_to_pb(*kind) as i32,
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
                demand_id,
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
                if let Some(demand_id) = demand_id {
                    let demand_key = demand_id.to_string();
                    if self.demand(conn, &demand_key)?.is_none() {
                        return Err(at.missing("demand", &demand_key));
                    }
                    self.demand_services.push(DemandServiceRow {
                        demand_id: demand_key,
                        service_id: service_id.to_string(),
                        position,
                        minutes: minutes.get(),
                    });
                }
                Ok(())
            }
            Event::DemandSubmitted {
                demand_id,
                title,
                enterprise,
                city,
                expertise,
                hours_per_month,
                start_date,
                end_date,
                description,
            } => {
                let key = demand_id.to_string();
                if self.demand(conn, &key)?.is_some() {
                    return Err(at.inconsistent(format!("demand {key} is submitted twice")));
                }
                let row = DemandRow {
                    title: title.to_string(),
                    enterprise: enterprise.to_string(),
                    city: city.to_string(),
                    expertise: expertise.iter().map(Text::to_string).collect(),
                    hours_per_month: hours_per_month.get(),
                    start_date: start_date.to_string(),
                    end_date: end_date.to_string(),
                    description: description.to_string(),
                    status: pb::DemandStatus::DemandOpen as i32,
                    post_ids: Vec::new(),
                    outcome: String::new(),
                    satisfaction: 0,
                    resolved_on: None,
                    withdrawal_reason: String::new(),
                };
                self.demands.create(key, position, row);
                Ok(())
            }
            Event::DemandDispatched { demand_id, post_id } => {
                self.revise_demand(conn, at, demand_id.to_string(), |d| {
                    d.post_ids.push(post_id.to_string());
                    if d.status == pb::DemandStatus::DemandOpen as i32 {
                        d.status = pb::DemandStatus::DemandDispatched as i32;
                    }
                })
            }
            Event::DemandResolved {
                demand_id,
                outcome,
                satisfaction,
                resolved_on,
            } => {
                let key = demand_id.to_string();
                self.revise_demand(conn, at, key.clone(), |d| {
                    d.status = pb::DemandStatus::DemandResolved as i32;
                    d.outcome = outcome.to_string();
                    d.satisfaction = satisfaction.get();
                    d.resolved_on = Some(resolved_on.to_string());
                })?;
                let post_ids = self
                    .demand(conn, &key)?
                    .map(|d| d.current.post_ids.clone())
                    .unwrap_or_default();
                let mut served = Vec::with_capacity(post_ids.len());
                for post_id in post_ids {
                    let post = self
                        .post(conn, &post_id)?
                        .ok_or_else(|| at.missing("post", &post_id))?;
                    served.push(post.current.commissioner_id.clone());
                }
                // Two posts of one commissioner served the demand once.
                served.sort_unstable();
                served.dedup();
                self.served_demands
                    .extend(served.into_iter().map(|commissioner_id| ServedDemandRow {
                        commissioner_id,
                        demand_id: key.clone(),
                        position,
                        satisfaction: satisfaction.get(),
                    }));
                Ok(())
            }
            Event::DemandWithdrawn { demand_id, reason } => {
                self.revise_demand(conn, at, demand_id.to_string(), |d| {
                    d.status = pb::DemandStatus::DemandWithdrawn as i32;
                    d.withdrawal_reason = reason.to_string();
                })
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
                |key, to| close_commissioner(conn, key, to),
                |key, from, to, row| insert_commissioner(conn, key, from, to, row),
            )?;
        }
        for (key, slot) in self.workstations.changed() {
            slot.write(
                key,
                |key, to| close_workstation(conn, key, to),
                |key, from, to, row| insert_workstation(conn, key, from, to, row),
            )?;
        }
        for (key, slot) in self.posts.changed() {
            slot.write(
                key,
                |key, to| close_post(conn, key, to),
                |key, from, to, row| insert_post(conn, key, from, to, row),
            )?;
        }
        for (key, slot) in self.demands.changed() {
            slot.write(
                key,
                |key, to| close_demand(conn, key, to),
                |key, from, to, row| insert_demand(conn, key, from, to, row),
            )?;
        }
        // Stable: of two records with one id, the later one is refused, as
        // if they had been inserted in position order.
        self.services
            .sort_by(|a, b| a.service_id.cmp(&b.service_id));
        for service in &self.services {
            insert_service(conn, service)?;
        }
        self.demand_services
            .sort_by(|a, b| (&a.demand_id, &a.service_id).cmp(&(&b.demand_id, &b.service_id)));
        for link in &self.demand_services {
            insert_demand_service(conn, link)?;
        }
        self.served_demands.sort_unstable();
        for served in &self.served_demands {
            insert_served_demand(conn, served)?;
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

    /// As [`Rows::commissioner`], for a demand.
    fn demand(
        &mut self,
        conn: &Connection,
        key: &str,
    ) -> Result<Option<&mut Slot<DemandRow>>, ProjectionError> {
        if !self.demands.slots.contains_key(key) {
            let Some((from, row)) = load_demand(conn, key)? else {
                return Ok(None);
            };
            self.demands
                .slots
                .insert(key.to_owned(), Slot::new(from, row, true));
        }
        Ok(self.demands.slots.get_mut(key))
    }

    fn revise_demand(
        &mut self,
        conn: &Connection,
        at: At,
        key: String,
        change: impl FnOnce(&mut DemandRow),
    ) -> Result<(), ProjectionError> {
        self.demand(conn, &key)?
            .ok_or_else(|| at.missing("demand", &key))?
            .revise(at.0, change);
        self.demands.changed.push(key);
        Ok(())
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

/// Entities whose current version stays in memory between batches; past
/// it the cache is dropped whole. About 0.5 KB each, so at most ~25 MB.
const CACHED_ENTITIES: usize = 50_000;

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

fn strings(values: &[Text]) -> Vec<String> {
    values.iter().map(Text::to_string).collect()
}
