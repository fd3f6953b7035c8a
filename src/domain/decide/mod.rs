//! `decide`: a command and the state in, events or a rejection out. Pure:
//! no clock (today arrives as an argument), no IO, no randomness. The
//! rules of commissioners, workstations and posts are here; a demand's in
//! `demand.rs`.

mod demand;

use super::command::*;
use super::event::Event;
use super::load::{commissioner_load, overlaps, peak, workstation_load, CommissionerLoad};
use super::policy::Policy;
use super::rejection::Rejection;
use super::state::{Commissioner, CommissionerStatus, Post, State, Workstation, WorkstationStatus};
use super::types::{
    add_months, next_day, previous_day, CityCode, CommissionerId, Date, PostId, Text,
    WorkstationId, MAX_DATE,
};

/// Decides `command` against `state` under `policy`, on `today` (the date in
/// the region when the command is processed). Returns the events to append,
/// all of them or none, or the rule it broke.
pub fn decide(
    state: &State,
    policy: &Policy,
    command: &Command,
    today: Date,
) -> Result<Vec<Event>, Rejection> {
    let ctx = Ctx {
        state,
        policy,
        today,
    };
    match command {
        Command::RegisterCommissioner(c) => ctx.register_commissioner(c),
        Command::UpdateCommissionerProfile(c) => ctx.update_commissioner_profile(c),
        Command::SuspendCommissioner(c) => ctx.suspend_commissioner(c),
        Command::ReinstateCommissioner(c) => ctx.reinstate_commissioner(c),
        Command::RetireCommissioner(c) => ctx.retire_commissioner(c),
        Command::EstablishWorkstation(c) => ctx.establish_workstation(c),
        Command::ExtendWorkstationService(c) => ctx.extend_workstation_service(c),
        Command::WithdrawWorkstationService(c) => ctx.withdraw_workstation_service(c),
        Command::ChangeWorkstationCapacity(c) => ctx.change_workstation_capacity(c),
        Command::CloseWorkstation(c) => ctx.close_workstation(c),
        Command::AppointPost(c) => ctx.appoint_post(c),
        Command::ExtendPostTerm(c) => ctx.extend_post_term(c),
        Command::EndPost(c) => ctx.end_post(c),
        Command::RecordService(c) => ctx.record_service(c),
        Command::SubmitDemand(c) => ctx.submit_demand(c),
        Command::DispatchDemand(c) => ctx.dispatch_demand(c),
        Command::ResolveDemand(c) => ctx.resolve_demand(c),
        Command::WithdrawDemand(c) => ctx.withdraw_demand(c),
    }
}

/// The term rule: `[start, end]` runs forwards and lasts at most
/// `max_months` calendar months. Shared with the candidates view, which
/// must not offer a period an appointment would be refused for.
pub fn period_within(start: Date, end: Date, max_months: u32) -> Result<(), Rejection> {
    if end < start {
        return Err(Rejection::TermReversed { start, end });
    }
    let latest = previous_day(add_months(start, max_months));
    if end > latest {
        return Err(Rejection::TermTooLong {
            start,
            end,
            max_months,
            latest,
        });
    }
    Ok(())
}

struct Ctx<'a> {
    state: &'a State,
    policy: &'a Policy,
    today: Date,
}

/// A term being added to a commissioner's and a workstation's load: a new
/// post, or the days an extension adds.
struct NewTerm<'a> {
    commissioner: &'a Commissioner,
    workstation_id: WorkstationId,
    workstation: &'a Workstation,
    /// The post itself, left out of the existing load when extending.
    post_id: PostId,
    serving_city: CityCode,
    hours: u32,
    from: Date,
    to: Date,
}

impl<'a> Ctx<'a> {
    fn commissioner(&self, id: CommissionerId) -> Result<&'a Commissioner, Rejection> {
        self.state
            .commissioner(id)
            .ok_or(Rejection::NotFound(id.stream()))
    }

    fn workstation(&self, id: WorkstationId) -> Result<&'a Workstation, Rejection> {
        self.state
            .workstation(id)
            .ok_or(Rejection::NotFound(id.stream()))
    }

    fn post(&self, id: PostId) -> Result<&'a Post, Rejection> {
        self.state.post(id).ok_or(Rejection::NotFound(id.stream()))
    }

    fn in_region(&self, field: &'static str, city: CityCode) -> Result<(), Rejection> {
        if self.policy.region.contains(&city) {
            Ok(())
        } else {
            Err(Rejection::CityOutsideRegion {
                field,
                city,
                region: self.policy.region_list(),
            })
        }
    }

    fn require_active(c: &Commissioner, action: &'static str) -> Result<(), Rejection> {
        match c.status {
            CommissionerStatus::Active => Ok(()),
            other => Err(Rejection::CommissionerNotActive {
                name: c.name.to_string(),
                status: other.as_str(),
                action,
            }),
        }
    }

    fn require_open(w: &Workstation, action: &'static str) -> Result<(), Rejection> {
        match w.status {
            WorkstationStatus::Open => Ok(()),
            WorkstationStatus::Closed => Err(Rejection::WorkstationNotOpen {
                name: w.name.to_string(),
                action,
            }),
        }
    }

    fn require_served(w: &Workstation, city: CityCode) -> Result<(), Rejection> {
        if w.served.contains(&city) {
            Ok(())
        } else {
            Err(Rejection::CityNotServed {
                name: w.name.to_string(),
                city,
                served: w.served_list(),
            })
        }
    }

    fn require_term_length(&self, start: Date, end: Date) -> Result<(), Rejection> {
        Self::require_period_within(start, end, self.policy.max_term_months)
    }

    fn require_period_within(start: Date, end: Date, max_months: u32) -> Result<(), Rejection> {
        period_within(start, end, max_months)
    }

    fn posts_of<'p>(
        &'p self,
        ids: &'p [PostId],
        except: Option<PostId>,
    ) -> impl Iterator<Item = (PostId, &'a Post)> + 'p {
        ids.iter()
            .filter(move |id| Some(**id) != except)
            .filter_map(|id| self.state.post(*id).map(|p| (*id, p)))
    }

    /// Checks every day of `term` against the duplicate rule, the
    /// commissioner's post and hour limits and the workstation's capacity.
    fn check_load(&self, term: &NewTerm<'_>) -> Result<(), Rejection> {
        let (from, to) = (term.from, term.to);
        let commissioner_posts: Vec<(PostId, &Post)> = self
            .posts_of(&term.commissioner.posts, Some(term.post_id))
            .collect();

        // The duplicate rule: same commissioner, workstation and city.
        for (existing, p) in &commissioner_posts {
            let same_seat =
                p.workstation == term.workstation_id && p.serving_city == term.serving_city;
            if same_seat && overlaps(p.start, p.last_day(), from, to) {
                return Err(Rejection::DuplicatePost {
                    name: term.commissioner.name.to_string(),
                    workstation: term.workstation.name.to_string(),
                    city: term.serving_city,
                    existing: *existing,
                    day: p.start.max(from),
                });
            }
        }

        let spans = commissioner_posts
            .iter()
            .map(|(_, p)| (p.start, p.last_day(), p.hours.get()));
        match commissioner_load(spans, from, to, term.hours, self.policy) {
            CommissionerLoad::Fits { .. } => {}
            CommissionerLoad::TooManyPosts { day, posts } => {
                return Err(Rejection::PostLimitExceeded {
                    name: term.commissioner.name.to_string(),
                    day,
                    posts,
                    limit: self.policy.max_posts_per_commissioner,
                })
            }
            CommissionerLoad::TooManyHours { day, hours } => {
                return Err(Rejection::HoursOverLimit {
                    name: term.commissioner.name.to_string(),
                    day,
                    hours,
                    limit: self.policy.max_hours_per_month,
                })
            }
        }

        let capacity = term.workstation.capacity.get();
        let spans = self
            .posts_of(&term.workstation.posts, Some(term.post_id))
            .map(|(_, p)| (p.start, p.last_day(), p.hours.get()));
        if let Err((day, posts)) = workstation_load(spans, from, to, capacity) {
            return Err(Rejection::CapacityExceeded {
                name: term.workstation.name.to_string(),
                day,
                posts,
                capacity,
            });
        }
        Ok(())
    }

    /// `PostEnded` for every post in `ids` still running after `last_day`
    /// (one already ended, but on a later day, included), in appointment
    /// order.
    fn end_running_posts<'p>(
        &self,
        ids: impl IntoIterator<Item = &'p PostId>,
        last_day: Date,
        reason: &str,
    ) -> Vec<Event> {
        ids.into_iter()
            .filter_map(|id| self.state.post(*id).map(|p| (id, p)))
            .filter(|(_, p)| p.last_day() > last_day)
            .map(|(id, _)| Event::PostEnded {
                post_id: *id,
                end_date: last_day,
                reason: Text::trusted(reason),
            })
            .collect()
    }

    fn register_commissioner(&self, c: &RegisterCommissioner) -> Result<Vec<Event>, Rejection> {
        if self.state.commissioner(c.commissioner_id).is_some() {
            return Err(Rejection::AlreadyExists(c.commissioner_id.stream()));
        }
        self.in_region("home_city", c.home_city)?;
        Ok(vec![Event::CommissionerRegistered {
            commissioner_id: c.commissioner_id,
            name: c.name.clone(),
            home_city: c.home_city,
            employer: c.employer.clone(),
            kind: c.kind,
            expertise: c.expertise.clone(),
        }])
    }

    fn update_commissioner_profile(
        &self,
        c: &UpdateCommissionerProfile,
    ) -> Result<Vec<Event>, Rejection> {
        let current = self.commissioner(c.commissioner_id)?;
        if current.status == CommissionerStatus::Retired {
            return Err(Rejection::CommissionerNotActive {
                name: current.name.to_string(),
                status: CommissionerStatus::Retired.as_str(),
                action: "change their profile",
            });
        }
        if c.name.is_none() && c.employer.is_none() && c.expertise.is_none() {
            return Err(Rejection::NothingToUpdate);
        }
        Ok(vec![Event::CommissionerProfileUpdated {
            commissioner_id: c.commissioner_id,
            name: c.name.clone().unwrap_or_else(|| current.name.clone()),
            employer: c
                .employer
                .clone()
                .unwrap_or_else(|| current.employer.clone()),
            expertise: c
                .expertise
                .clone()
                .unwrap_or_else(|| current.expertise.clone()),
        }])
    }

    fn suspend_commissioner(&self, c: &SuspendCommissioner) -> Result<Vec<Event>, Rejection> {
        let current = self.commissioner(c.commissioner_id)?;
        Self::require_active(current, "be suspended")?;
        Ok(vec![Event::CommissionerSuspended {
            commissioner_id: c.commissioner_id,
            reason: c.reason.clone(),
        }])
    }

    fn reinstate_commissioner(&self, c: &ReinstateCommissioner) -> Result<Vec<Event>, Rejection> {
        let current = self.commissioner(c.commissioner_id)?;
        if current.status != CommissionerStatus::Suspended {
            return Err(Rejection::CommissionerNotSuspended {
                name: current.name.to_string(),
                status: current.status.as_str(),
            });
        }
        Ok(vec![Event::CommissionerReinstated {
            commissioner_id: c.commissioner_id,
            reason: c.reason.clone(),
        }])
    }

    fn retire_commissioner(&self, c: &RetireCommissioner) -> Result<Vec<Event>, Rejection> {
        let current = self.commissioner(c.commissioner_id)?;
        if current.status == CommissionerStatus::Retired {
            return Err(Rejection::CommissionerNotActive {
                name: current.name.to_string(),
                status: CommissionerStatus::Retired.as_str(),
                action: "retire",
            });
        }
        let effective_date = c.effective_date.unwrap_or(self.today);
        let mut events = vec![Event::CommissionerRetired {
            commissioner_id: c.commissioner_id,
            effective_date,
        }];
        events.extend(self.end_running_posts(
            &current.posts,
            effective_date,
            "commissioner retired",
        ));
        Ok(events)
    }

    fn establish_workstation(&self, c: &EstablishWorkstation) -> Result<Vec<Event>, Rejection> {
        if self.state.workstation(c.workstation_id).is_some() {
            return Err(Rejection::AlreadyExists(c.workstation_id.stream()));
        }
        self.in_region("host_city", c.host_city)?;
        Ok(vec![Event::WorkstationEstablished {
            workstation_id: c.workstation_id,
            name: c.name.clone(),
            host_org: c.host_org.clone(),
            host_city: c.host_city,
            capacity: c.capacity,
            fields: c.fields.clone(),
        }])
    }

    fn extend_workstation_service(
        &self,
        c: &ExtendWorkstationService,
    ) -> Result<Vec<Event>, Rejection> {
        let w = self.workstation(c.workstation_id)?;
        Self::require_open(w, "extend its service")?;
        self.in_region("city", c.city)?;
        if w.served.contains(&c.city) {
            return Err(Rejection::CityAlreadyServed {
                name: w.name.to_string(),
                city: c.city,
            });
        }
        Ok(vec![Event::WorkstationServiceExtended {
            workstation_id: c.workstation_id,
            city: c.city,
        }])
    }

    fn withdraw_workstation_service(
        &self,
        c: &WithdrawWorkstationService,
    ) -> Result<Vec<Event>, Rejection> {
        let w = self.workstation(c.workstation_id)?;
        Self::require_open(w, "withdraw service")?;
        self.in_region("city", c.city)?;
        Self::require_served(w, c.city)?;
        if c.city == w.host_city {
            return Err(Rejection::HostCityNotWithdrawable {
                name: w.name.to_string(),
                city: c.city,
            });
        }
        let effective_date = c.effective_date.unwrap_or(self.today);
        let serving_city: Vec<PostId> = self
            .posts_of(&w.posts, None)
            .filter(|(_, p)| p.serving_city == c.city)
            .map(|(id, _)| id)
            .collect();
        let ended = self.end_running_posts(
            &serving_city,
            effective_date,
            "workstation withdrew its service from the city",
        );
        if !ended.is_empty() && !c.end_posts {
            return Err(Rejection::CityHasPosts {
                name: w.name.to_string(),
                city: c.city,
                posts: ended.len(),
                effective_date,
            });
        }
        let mut events = vec![Event::WorkstationServiceWithdrawn {
            workstation_id: c.workstation_id,
            city: c.city,
            effective_date,
        }];
        events.extend(ended);
        Ok(events)
    }

    fn change_workstation_capacity(
        &self,
        c: &ChangeWorkstationCapacity,
    ) -> Result<Vec<Event>, Rejection> {
        let w = self.workstation(c.workstation_id)?;
        Self::require_open(w, "change its capacity")?;
        let spans = self
            .posts_of(&w.posts, None)
            .map(|(_, p)| (p.start, p.last_day(), p.hours.get()));
        let busiest = peak(spans, self.today, MAX_DATE);
        if c.capacity.get() < busiest.posts {
            return Err(Rejection::CapacityBelowRunningPosts {
                name: w.name.to_string(),
                day: busiest.day,
                posts: busiest.posts,
                requested: c.capacity.get(),
            });
        }
        Ok(vec![Event::WorkstationCapacityChanged {
            workstation_id: c.workstation_id,
            capacity: c.capacity,
            previous_capacity: w.capacity,
        }])
    }

    fn close_workstation(&self, c: &CloseWorkstation) -> Result<Vec<Event>, Rejection> {
        let w = self.workstation(c.workstation_id)?;
        Self::require_open(w, "be closed")?;
        let effective_date = c.effective_date.unwrap_or(self.today);
        let mut events = vec![Event::WorkstationClosed {
            workstation_id: c.workstation_id,
            effective_date,
        }];
        events.extend(self.end_running_posts(&w.posts, effective_date, "workstation closed"));
        Ok(events)
    }

    fn appoint_post(&self, c: &AppointPost) -> Result<Vec<Event>, Rejection> {
        if self.state.post(c.post_id).is_some() {
            return Err(Rejection::AlreadyExists(c.post_id.stream()));
        }
        let commissioner = self.commissioner(c.commissioner_id)?;
        let workstation = self.workstation(c.workstation_id)?;
        self.in_region("serving_city", c.serving_city)?;
        self.require_term_length(c.start_date, c.end_date)?;
        Self::require_active(commissioner, "be appointed")?;
        Self::require_open(workstation, "take posts")?;
        Self::require_served(workstation, c.serving_city)?;
        self.check_load(&NewTerm {
            commissioner,
            workstation_id: c.workstation_id,
            workstation,
            post_id: c.post_id,
            serving_city: c.serving_city,
            hours: c.hours_per_month.get(),
            from: c.start_date,
            to: c.end_date,
        })?;
        let mut events = vec![Event::PostAppointed {
            post_id: c.post_id,
            commissioner_id: c.commissioner_id,
            workstation_id: c.workstation_id,
            serving_city: c.serving_city,
            role: c.role.clone(),
            hours_per_month: c.hours_per_month,
            start_date: c.start_date,
            end_date: c.end_date,
        }];
        if let Some(demand_id) = c.demand_id {
            let post = Post {
                commissioner: c.commissioner_id,
                workstation: c.workstation_id,
                serving_city: c.serving_city,
                hours: c.hours_per_month,
                start: c.start_date,
                end: c.end_date,
                ended_on: None,
                version: 0,
            };
            events.push(self.dispatch(demand_id, c.post_id, &post)?);
        }
        Ok(events)
    }

    fn extend_post_term(&self, c: &ExtendPostTerm) -> Result<Vec<Event>, Rejection> {
        let post = self.post(c.post_id)?;
        if let Some(end_date) = post.ended_on {
            return Err(Rejection::PostAlreadyEnded {
                post: c.post_id,
                end_date,
            });
        }
        if c.end_date <= post.end {
            return Err(Rejection::ExtensionNotLater {
                post: c.post_id,
                current_end: post.end,
                requested: c.end_date,
            });
        }
        self.require_term_length(post.start, c.end_date)?;
        let commissioner = self.commissioner(post.commissioner)?;
        let workstation = self.workstation(post.workstation)?;
        Self::require_active(commissioner, "have a term extended")?;
        Self::require_open(workstation, "extend a term")?;
        Self::require_served(workstation, post.serving_city)?;
        self.check_load(&NewTerm {
            commissioner,
            workstation_id: post.workstation,
            workstation,
            post_id: c.post_id,
            serving_city: post.serving_city,
            hours: post.hours.get(),
            from: next_day(post.end),
            to: c.end_date,
        })?;
        Ok(vec![Event::PostTermExtended {
            post_id: c.post_id,
            end_date: c.end_date,
            previous_end_date: post.end,
        }])
    }

    fn end_post(&self, c: &EndPost) -> Result<Vec<Event>, Rejection> {
        let post = self.post(c.post_id)?;
        if let Some(end_date) = post.ended_on {
            return Err(Rejection::PostAlreadyEnded {
                post: c.post_id,
                end_date,
            });
        }
        if c.end_date > post.end {
            return Err(Rejection::EndAfterTerm {
                post: c.post_id,
                term_end: post.end,
                requested: c.end_date,
            });
        }
        Ok(vec![Event::PostEnded {
            post_id: c.post_id,
            end_date: c.end_date,
            reason: c.reason.clone(),
        }])
    }

    fn record_service(&self, c: &RecordService) -> Result<Vec<Event>, Rejection> {
        if self.state.has_service(c.service_id) {
            return Err(Rejection::ServiceExists(c.service_id));
        }
        let post = self.post(c.post_id)?;
        self.in_region("beneficiary_city", c.beneficiary_city)?;
        if c.date > self.today {
            return Err(Rejection::ServiceInFuture {
                date: c.date,
                today: self.today,
            });
        }
        let commissioner = self.commissioner(post.commissioner)?;
        let workstation = self.workstation(post.workstation)?;
        Self::require_active(commissioner, "record service")?;
        if !post.covers(c.date) {
            if let Some(end_date) = post.ended_on.filter(|end| c.date > *end) {
                return Err(Rejection::PostAlreadyEnded {
                    post: c.post_id,
                    end_date,
                });
            }
            return Err(Rejection::ServiceOutsideTerm {
                post: c.post_id,
                date: c.date,
                start: post.start,
                end: post.last_day(),
            });
        }
        Self::require_served(workstation, c.beneficiary_city)?;
        if let Some(demand_id) = c.demand_id {
            self.require_dispatched_to(demand_id, c.post_id)?;
        }
        Ok(vec![Event::ServiceRecorded {
            service_id: c.service_id,
            post_id: c.post_id,
            date: c.date,
            minutes: c.minutes,
            beneficiary: c.beneficiary.clone(),
            beneficiary_city: c.beneficiary_city,
            summary: c.summary.clone(),
            demand_id: c.demand_id,
        }])
    }
}
