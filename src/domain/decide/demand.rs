//! The rules of a demand (需求对接): submit, dispatch to a post, resolve,
//! withdraw; and what a post appointed for a demand, or service recorded
//! for one, must satisfy.

use super::Ctx;
use crate::domain::command::{DispatchDemand, ResolveDemand, SubmitDemand, WithdrawDemand};
use crate::domain::event::Event;
use crate::domain::rejection::Rejection;
use crate::domain::state::{Demand, DemandStatus, Post};
use crate::domain::types::{DemandId, PostId, Text};

/// The longest wanted period, in months (SPEC: at most three years).
pub(crate) const DEMAND_MAX_MONTHS: u32 = 36;

impl<'a> Ctx<'a> {
    fn demand(&self, id: DemandId) -> Result<&'a Demand, Rejection> {
        self.state
            .demand(id)
            .ok_or(Rejection::NotFound(id.stream()))
    }

    /// Refuses a resolved or withdrawn demand.
    fn require_not_final(
        id: DemandId,
        demand: &Demand,
        action: &'static str,
    ) -> Result<(), Rejection> {
        if demand.status.is_final() {
            return Err(Rejection::DemandClosed {
                demand: label(id, demand),
                status: demand.status.as_str(),
                action,
            });
        }
        Ok(())
    }

    pub(super) fn submit_demand(&self, c: &SubmitDemand) -> Result<Vec<Event>, Rejection> {
        if self.state.demand(c.demand_id).is_some() {
            return Err(Rejection::AlreadyExists(c.demand_id.stream()));
        }
        self.in_region("city", c.city)?;
        Self::require_period_within(c.start_date, c.end_date, DEMAND_MAX_MONTHS)?;
        Ok(vec![Event::DemandSubmitted {
            demand_id: c.demand_id,
            title: c.title.clone(),
            enterprise: c.enterprise.clone(),
            city: c.city,
            expertise: c.expertise.clone(),
            hours_per_month: c.hours_per_month,
            start_date: c.start_date,
            end_date: c.end_date,
            description: c.description.clone(),
        }])
    }

    pub(super) fn dispatch_demand(&self, c: &DispatchDemand) -> Result<Vec<Event>, Rejection> {
        self.demand(c.demand_id)?;
        let post = self.post(c.post_id)?;
        Ok(vec![self.dispatch(c.demand_id, c.post_id, post)?])
    }

    /// The dispatch of demand `demand_id` to `post` (which may be one being
    /// appointed in the same command), or the rule it breaks: the post
    /// serves the demand's city, is not ended, its term overlaps the wanted
    /// period, and its commissioner is active with a wanted tag.
    pub(super) fn dispatch(
        &self,
        demand_id: DemandId,
        post_id: PostId,
        post: &Post,
    ) -> Result<Event, Rejection> {
        let demand = self.demand(demand_id)?;
        Self::require_not_final(demand_id, demand, "be dispatched")?;
        let named = || label(demand_id, demand);
        if demand.posts.contains(&post_id) {
            return Err(Rejection::AlreadyDispatched {
                demand: named(),
                post: post_id,
            });
        }
        if post.serving_city != demand.city {
            return Err(Rejection::PostServesAnotherCity {
                demand: named(),
                city: demand.city,
                post: post_id,
                serving_city: post.serving_city,
            });
        }
        if let Some(end_date) = post.ended_on {
            return Err(Rejection::PostAlreadyEnded {
                post: post_id,
                end_date,
            });
        }
        if post.start > demand.end || post.last_day() < demand.start {
            return Err(Rejection::PostOutsidePeriod {
                demand: named(),
                wanted_start: demand.start,
                wanted_end: demand.end,
                post: post_id,
                start: post.start,
                end: post.last_day(),
            });
        }
        let commissioner = self.commissioner(post.commissioner)?;
        Self::require_active(commissioner, "be dispatched to a demand")?;
        if !demand
            .expertise
            .iter()
            .any(|wanted| commissioner.expertise.contains(wanted))
        {
            return Err(Rejection::ExpertiseMismatch {
                demand: named(),
                post: post_id,
                name: commissioner.name.to_string(),
                wanted: list(&demand.expertise),
                has: list(&commissioner.expertise),
            });
        }
        Ok(Event::DemandDispatched { demand_id, post_id })
    }

    pub(super) fn resolve_demand(&self, c: &ResolveDemand) -> Result<Vec<Event>, Rejection> {
        let demand = self.demand(c.demand_id)?;
        Self::require_not_final(c.demand_id, demand, "be resolved")?;
        if demand.status == DemandStatus::Open {
            return Err(Rejection::DemandNotDispatched {
                demand: label(c.demand_id, demand),
            });
        }
        let resolved_on = c.resolved_on.unwrap_or(self.today);
        if resolved_on > self.today {
            return Err(Rejection::ResolvedInFuture {
                date: resolved_on,
                today: self.today,
            });
        }
        Ok(vec![Event::DemandResolved {
            demand_id: c.demand_id,
            outcome: c.outcome.clone(),
            satisfaction: c.satisfaction,
            resolved_on,
        }])
    }

    pub(super) fn withdraw_demand(&self, c: &WithdrawDemand) -> Result<Vec<Event>, Rejection> {
        let demand = self.demand(c.demand_id)?;
        Self::require_not_final(c.demand_id, demand, "be withdrawn")?;
        if demand.served {
            return Err(Rejection::DemandHasService {
                demand: label(c.demand_id, demand),
            });
        }
        Ok(vec![Event::DemandWithdrawn {
            demand_id: c.demand_id,
            reason: c.reason.clone(),
        }])
    }

    /// Service may be recorded for a demand dispatched to the post and not
    /// withdrawn (a resolved demand still takes late records of its service).
    pub(super) fn require_dispatched_to(
        &self,
        demand_id: DemandId,
        post_id: PostId,
    ) -> Result<(), Rejection> {
        let demand = self.demand(demand_id)?;
        if demand.status == DemandStatus::Withdrawn {
            return Err(Rejection::DemandClosed {
                demand: label(demand_id, demand),
                status: demand.status.as_str(),
                action: "have service recorded for it",
            });
        }
        if !demand.posts.contains(&post_id) {
            return Err(Rejection::NotDispatchedToPost {
                demand: label(demand_id, demand),
                post: post_id,
            });
        }
        Ok(())
    }
}

/// A demand as a clerk recognises it: its title, and its id to be sure.
fn label(id: DemandId, demand: &Demand) -> String {
    format!("{} ({id})", demand.title)
}

/// Tags as a readable list.
fn list(tags: &[Text]) -> String {
    if tags.is_empty() {
        return "none".into();
    }
    tags.iter().map(Text::as_str).collect::<Vec<_>>().join(", ")
}
