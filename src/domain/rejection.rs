//! Why a command was refused. Each variant names the rule it broke, carries
//! the numbers, and maps to a stable code of the public contract. A rejection
//! is an answer, not an error: nothing went wrong, the rules said no.

use super::authorize::Unauthorized;
use super::types::{CityCode, Date, FieldError, PostId, ServiceId, StreamId};

/// The public code of a rejection (`RejectCode` in the protobuf contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// The command itself is malformed or outside the region.
    InvalidArgument,
    /// The target does not exist.
    NotFound,
    /// The id is already taken.
    AlreadyExists,
    /// A business rule forbids it.
    RuleViolated,
    /// `expected_version` did not match.
    Conflict,
    /// The actor may not do this.
    Unauthorized,
    /// tepai could not decide or store it now; retry with the same command id.
    Unavailable,
}

impl RejectCode {
    /// The name in the contract, e.g. `RULE_VIOLATED`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::InvalidArgument => "INVALID_ARGUMENT",
            RejectCode::NotFound => "NOT_FOUND",
            RejectCode::AlreadyExists => "ALREADY_EXISTS",
            RejectCode::RuleViolated => "RULE_VIOLATED",
            RejectCode::Conflict => "CONFLICT",
            RejectCode::Unauthorized => "UNAUTHORIZED",
            RejectCode::Unavailable => "UNAVAILABLE",
        }
    }
}

/// A refused command, with what a clerk needs to understand why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A field could not be parsed.
    #[error("{0}")]
    InvalidField(FieldError),
    /// A city code outside the configured region.
    #[error("{field}: city {city} is not in the region ({region})")]
    CityOutsideRegion {
        /// Field holding the city.
        field: &'static str,
        /// The city asked for.
        city: CityCode,
        /// The configured region, as a list.
        region: String,
    },
    /// A term that ends before it starts.
    #[error("the term ends on {end}, before it starts on {start}")]
    TermReversed {
        /// First day.
        start: Date,
        /// Last day.
        end: Date,
    },
    /// A term longer than policy allows.
    #[error(
        "the term {start} to {end} is longer than {max_months} months; it may last until {latest}"
    )]
    TermTooLong {
        /// First day.
        start: Date,
        /// Last day asked for.
        end: Date,
        /// The limit.
        max_months: u32,
        /// The latest allowed last day.
        latest: Date,
    },
    /// An extension that does not move the end later.
    #[error("post {post} already runs until {current_end}; the new end {requested} must be later")]
    ExtensionNotLater {
        /// The post.
        post: PostId,
        /// Its current last day.
        current_end: Date,
        /// What was asked.
        requested: Date,
    },
    /// Ending a post after its term's end.
    #[error("post {post} runs only until {term_end}; it cannot end later, on {requested}")]
    EndAfterTerm {
        /// The post.
        post: PostId,
        /// Its last day.
        term_end: Date,
        /// What was asked.
        requested: Date,
    },
    /// A profile update that changes nothing.
    #[error("the profile update names no field to change (name, employer or expertise)")]
    NothingToUpdate,
    /// Service recorded for a day that has not come yet.
    #[error("service cannot be recorded for {date}; today is {today}")]
    ServiceInFuture {
        /// The day asked for.
        date: Date,
        /// Today in the region.
        today: Date,
    },
    /// A demand resolved on a day that has not come yet.
    #[error("a demand cannot be resolved on {date}; today is {today}")]
    ResolvedInFuture {
        /// The day asked for.
        date: Date,
        /// Today in the region.
        today: Date,
    },

    /// No such stream.
    #[error("{0} does not exist")]
    NotFound(StreamId),

    /// The id is taken.
    #[error("{0} already exists")]
    AlreadyExists(StreamId),
    /// The service id is taken.
    #[error("service record {0} already exists")]
    ServiceExists(ServiceId),

    /// The commissioner is suspended or retired.
    #[error("commissioner {name} is {status}; only an active commissioner can {action}")]
    CommissionerNotActive {
        /// Commissioner's name.
        name: String,
        /// "suspended" or "retired".
        status: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// Reinstating a commissioner who is not suspended.
    #[error("commissioner {name} is {status}, not suspended; only a suspended commissioner can be reinstated")]
    CommissionerNotSuspended {
        /// Commissioner's name.
        name: String,
        /// Current status.
        status: &'static str,
    },
    /// The workstation is closed.
    #[error("workstation {name} is closed; only an open workstation can {action}")]
    WorkstationNotOpen {
        /// Workstation's name.
        name: String,
        /// What was attempted.
        action: &'static str,
    },
    /// A city the workstation does not serve.
    #[error("workstation {name} does not serve city {city}; it serves {served}")]
    CityNotServed {
        /// Workstation's name.
        name: String,
        /// The city asked for.
        city: CityCode,
        /// The cities it serves.
        served: String,
    },
    /// Extending service to a city already served.
    #[error("workstation {name} already serves city {city}")]
    CityAlreadyServed {
        /// Workstation's name.
        name: String,
        /// The city.
        city: CityCode,
    },
    /// Withdrawing the host city.
    #[error("workstation {name} stands in city {city}; its host city cannot be withdrawn (close the workstation instead)")]
    HostCityNotWithdrawable {
        /// Workstation's name.
        name: String,
        /// The host city.
        city: CityCode,
    },
    /// Withdrawing a city that posts still serve.
    #[error("workstation {name} has {posts} post(s) serving city {city} after {effective_date}; end them first or withdraw with end_posts")]
    CityHasPosts {
        /// Workstation's name.
        name: String,
        /// The city.
        city: CityCode,
        /// How many posts still serve it.
        posts: usize,
        /// The day asked for.
        effective_date: Date,
    },
    /// Too many posts for one commissioner on a day.
    #[error("commissioner {name} would hold {posts} posts on {day}; the limit is {limit}")]
    PostLimitExceeded {
        /// Commissioner's name.
        name: String,
        /// First day over the limit.
        day: Date,
        /// Posts on that day, the new one included.
        posts: u32,
        /// The limit.
        limit: u32,
    },
    /// Too many hours for one commissioner on a day.
    #[error("commissioner {name} would hold {hours} hours/month on {day}; the limit is {limit}")]
    HoursOverLimit {
        /// Commissioner's name.
        name: String,
        /// First day over the limit.
        day: Date,
        /// Hours per month on that day, the new post included.
        hours: u32,
        /// The limit.
        limit: u32,
    },
    /// Too many posts at one workstation on a day.
    #[error("workstation {name} would run {posts} posts on {day}; its capacity is {capacity}")]
    CapacityExceeded {
        /// Workstation's name.
        name: String,
        /// First day over capacity.
        day: Date,
        /// Posts on that day, the new one included.
        posts: u32,
        /// The capacity.
        capacity: u32,
    },
    /// A capacity below what the workstation already runs.
    #[error(
        "workstation {name} runs {posts} posts on {day}; capacity {requested} would be below that"
    )]
    CapacityBelowRunningPosts {
        /// Workstation's name.
        name: String,
        /// The busiest day from today on.
        day: Date,
        /// Posts on that day.
        posts: u32,
        /// The capacity asked for.
        requested: u32,
    },
    /// Two posts of one commissioner, workstation and city at once.
    #[error("commissioner {name} already holds post {existing} at workstation {workstation} for city {city} on {day}; terms of such posts may not overlap")]
    DuplicatePost {
        /// Commissioner's name.
        name: String,
        /// Workstation's name.
        workstation: String,
        /// The serving city.
        city: CityCode,
        /// The post already there.
        existing: PostId,
        /// First day of overlap.
        day: Date,
    },
    /// The post has been ended.
    #[error("post {post} was ended (its last day is {end_date})")]
    PostAlreadyEnded {
        /// The post.
        post: PostId,
        /// Its last day.
        end_date: Date,
    },
    /// Service on a day the post does not cover.
    #[error("post {post} runs from {start} to {end}; service on {date} is outside it")]
    ServiceOutsideTerm {
        /// The post.
        post: PostId,
        /// Day asked for.
        date: Date,
        /// First day of the post.
        start: Date,
        /// Last day of the post.
        end: Date,
    },
    /// Acting on a demand that was resolved or withdrawn.
    #[error("demand {demand} is {status}; resolved and withdrawn demands are final, so it cannot {action}")]
    DemandClosed {
        /// The demand, by title and id.
        demand: String,
        /// "resolved" or "withdrawn".
        status: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// Resolving a demand no post serves.
    #[error("demand {demand} is still open: no post serves it, so it cannot be resolved; dispatch it to a post first")]
    DemandNotDispatched {
        /// The demand, by title and id.
        demand: String,
    },
    /// Withdrawing a demand that was served.
    #[error("service was recorded for demand {demand}; it can be resolved, not withdrawn")]
    DemandHasService {
        /// The demand, by title and id.
        demand: String,
    },
    /// Dispatching a demand to a post it is already dispatched to.
    #[error("demand {demand} is already dispatched to post {post}")]
    AlreadyDispatched {
        /// The demand, by title and id.
        demand: String,
        /// The post.
        post: PostId,
    },
    /// Dispatching a demand to a post that serves another city.
    #[error("post {post} serves city {serving_city}, but demand {demand} is in city {city}")]
    PostServesAnotherCity {
        /// The demand, by title and id.
        demand: String,
        /// The demand's city.
        city: CityCode,
        /// The post.
        post: PostId,
        /// The city the post serves.
        serving_city: CityCode,
    },
    /// Dispatching a demand to a post whose term misses the wanted period.
    #[error("post {post} runs from {start} to {end}, outside the period {wanted_start} to {wanted_end} that demand {demand} wants")]
    PostOutsidePeriod {
        /// The demand, by title and id.
        demand: String,
        /// First day wanted.
        wanted_start: Date,
        /// Last day wanted.
        wanted_end: Date,
        /// The post.
        post: PostId,
        /// The post's first day.
        start: Date,
        /// The post's last day.
        end: Date,
    },
    /// The post's commissioner has none of the wanted expertise.
    #[error("commissioner {name} of post {post} has none of the expertise demand {demand} wants ({wanted}); their expertise: {has}")]
    ExpertiseMismatch {
        /// The demand, by title and id.
        demand: String,
        /// The post.
        post: PostId,
        /// Commissioner's name.
        name: String,
        /// The wanted tags, as a list.
        wanted: String,
        /// The commissioner's tags, as a list ("none" when empty).
        has: String,
    },
    /// Service recorded for a demand the post does not serve.
    #[error("demand {demand} is not dispatched to post {post}; dispatch it before recording service for it")]
    NotDispatchedToPost {
        /// The demand, by title and id.
        demand: String,
        /// The post.
        post: PostId,
    },

    /// The actor may not send this command.
    #[error("{0}")]
    Unauthorized(Unauthorized),

    /// `expected_version` did not match the stream.
    #[error("{stream} is at version {actual}, not the expected {expected}")]
    WrongExpectedVersion {
        /// The target stream.
        stream: StreamId,
        /// What the producer expected.
        expected: u64,
        /// What it is.
        actual: u64,
    },
}

impl From<FieldError> for Rejection {
    fn from(error: FieldError) -> Self {
        Rejection::InvalidField(error)
    }
}

impl Rejection {
    /// The public code.
    pub fn code(&self) -> RejectCode {
        use Rejection::*;
        match self {
            InvalidField(_)
            | CityOutsideRegion { .. }
            | TermReversed { .. }
            | TermTooLong { .. }
            | ExtensionNotLater { .. }
            | EndAfterTerm { .. }
            | NothingToUpdate
            | ServiceInFuture { .. }
            | ResolvedInFuture { .. } => RejectCode::InvalidArgument,
            NotFound(_) => RejectCode::NotFound,
            AlreadyExists(_) | ServiceExists(_) => RejectCode::AlreadyExists,
            CommissionerNotActive { .. }
            | CommissionerNotSuspended { .. }
            | WorkstationNotOpen { .. }
            | CityNotServed { .. }
            | CityAlreadyServed { .. }
            | HostCityNotWithdrawable { .. }
            | CityHasPosts { .. }
            | PostLimitExceeded { .. }
            | HoursOverLimit { .. }
            | CapacityExceeded { .. }
            | CapacityBelowRunningPosts { .. }
            | DuplicatePost { .. }
            | PostAlreadyEnded { .. }
            | ServiceOutsideTerm { .. }
            | DemandClosed { .. }
            | DemandNotDispatched { .. }
            | DemandHasService { .. }
            | AlreadyDispatched { .. }
            | PostServesAnotherCity { .. }
            | PostOutsidePeriod { .. }
            | ExpertiseMismatch { .. }
            | NotDispatchedToPost { .. } => RejectCode::RuleViolated,
            WrongExpectedVersion { .. } => RejectCode::Conflict,
            Unauthorized(_) => RejectCode::Unauthorized,
        }
    }

    /// A stable machine name of the broken rule, e.g. `HOURS_OVER_LIMIT`.
    pub fn rule(&self) -> &'static str {
        use Rejection::*;
        match self {
            InvalidField(_) => "INVALID_FIELD",
            CityOutsideRegion { .. } => "CITY_OUTSIDE_REGION",
            TermReversed { .. } => "TERM_REVERSED",
            TermTooLong { .. } => "TERM_TOO_LONG",
            ExtensionNotLater { .. } => "EXTENSION_NOT_LATER",
            EndAfterTerm { .. } => "END_AFTER_TERM",
            NothingToUpdate => "NOTHING_TO_UPDATE",
            ServiceInFuture { .. } => "SERVICE_IN_FUTURE",
            NotFound(_) => "NOT_FOUND",
            AlreadyExists(_) => "ALREADY_EXISTS",
            ServiceExists(_) => "SERVICE_EXISTS",
            CommissionerNotActive { .. } => "COMMISSIONER_NOT_ACTIVE",
            CommissionerNotSuspended { .. } => "COMMISSIONER_NOT_SUSPENDED",
            WorkstationNotOpen { .. } => "WORKSTATION_NOT_OPEN",
            CityNotServed { .. } => "CITY_NOT_SERVED",
            CityAlreadyServed { .. } => "CITY_ALREADY_SERVED",
            HostCityNotWithdrawable { .. } => "HOST_CITY_NOT_WITHDRAWABLE",
            CityHasPosts { .. } => "CITY_HAS_POSTS",
            PostLimitExceeded { .. } => "POST_LIMIT_EXCEEDED",
            HoursOverLimit { .. } => "HOURS_OVER_LIMIT",
            CapacityExceeded { .. } => "CAPACITY_EXCEEDED",
            CapacityBelowRunningPosts { .. } => "CAPACITY_BELOW_RUNNING_POSTS",
            DuplicatePost { .. } => "DUPLICATE_POST",
            PostAlreadyEnded { .. } => "POST_ALREADY_ENDED",
            ServiceOutsideTerm { .. } => "SERVICE_OUTSIDE_TERM",
            ResolvedInFuture { .. } => "RESOLVED_IN_FUTURE",
            DemandClosed { .. } => "DEMAND_CLOSED",
            DemandNotDispatched { .. } => "DEMAND_NOT_DISPATCHED",
            DemandHasService { .. } => "DEMAND_HAS_SERVICE",
            AlreadyDispatched { .. } => "ALREADY_DISPATCHED",
            PostServesAnotherCity { .. } => "POST_SERVES_ANOTHER_CITY",
            PostOutsidePeriod { .. } => "POST_OUTSIDE_PERIOD",
            ExpertiseMismatch { .. } => "EXPERTISE_MISMATCH",
            NotDispatchedToPost { .. } => "NOT_DISPATCHED_TO_POST",
            WrongExpectedVersion { .. } => "WRONG_EXPECTED_VERSION",
            Unauthorized(refusal) => refusal.rule(),
        }
    }
}
