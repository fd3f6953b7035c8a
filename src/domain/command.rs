//! Commands: what a producer asks for, already parsed into domain types.
//! Names are imperative; each command names its target by id.

use super::types::{
    Capacity, CityCode, CommissionerId, Date, DemandId, HoursPerMonth, Minutes, PostId,
    Satisfaction, ServiceId, StreamId, Text, WorkstationId,
};

/// The kind of employer a commissioner comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommissionerKind {
    /// An enterprise.
    Enterprise,
    /// A university.
    University,
    /// A research institute.
    ResearchInstitute,
    /// Self-employed.
    Individual,
}

/// Registers a new commissioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterCommissioner {
    /// New id.
    pub commissioner_id: CommissionerId,
    /// Full name.
    pub name: Text,
    /// City the commissioner lives and is employed in.
    pub home_city: CityCode,
    /// Enterprise, university or institute.
    pub employer: Text,
    /// Kind of employer.
    pub kind: CommissionerKind,
    /// Expertise tags.
    pub expertise: Vec<Text>,
}

/// Changes a commissioner's profile; `None` leaves a field unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateCommissionerProfile {
    /// Target.
    pub commissioner_id: CommissionerId,
    /// New name.
    pub name: Option<Text>,
    /// New employer.
    pub employer: Option<Text>,
    /// New expertise tags (replacing the old).
    pub expertise: Option<Vec<Text>>,
}

/// Suspends an active commissioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspendCommissioner {
    /// Target.
    pub commissioner_id: CommissionerId,
    /// Why, for the record.
    pub reason: Text,
}

/// Reinstates a suspended commissioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReinstateCommissioner {
    /// Target.
    pub commissioner_id: CommissionerId,
    /// Why, for the record.
    pub reason: Text,
}

/// Retires a commissioner and ends their posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetireCommissioner {
    /// Target.
    pub commissioner_id: CommissionerId,
    /// Last day of the commissioner's posts; `None` means today.
    pub effective_date: Option<Date>,
}

/// Establishes a workstation, serving its host city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishWorkstation {
    /// New id.
    pub workstation_id: WorkstationId,
    /// Name of the workstation.
    pub name: Text,
    /// Organisation that hosts it.
    pub host_org: Text,
    /// City it stands in.
    pub host_city: CityCode,
    /// Posts it may run at once.
    pub capacity: Capacity,
    /// Field tags.
    pub fields: Vec<Text>,
}

/// Extends a workstation's service to another city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendWorkstationService {
    /// Target.
    pub workstation_id: WorkstationId,
    /// City to serve.
    pub city: CityCode,
}

/// Withdraws a workstation's service from a city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawWorkstationService {
    /// Target.
    pub workstation_id: WorkstationId,
    /// City no longer served.
    pub city: CityCode,
    /// End the posts serving that city instead of refusing.
    pub end_posts: bool,
    /// Last day of those posts; `None` means today.
    pub effective_date: Option<Date>,
}

/// Changes how many posts a workstation may run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeWorkstationCapacity {
    /// Target.
    pub workstation_id: WorkstationId,
    /// New capacity.
    pub capacity: Capacity,
}

/// Closes a workstation and ends its posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseWorkstation {
    /// Target.
    pub workstation_id: WorkstationId,
    /// Last day of its posts; `None` means today.
    pub effective_date: Option<Date>,
}

/// Appoints a commissioner to a part-time post at a workstation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointPost {
    /// New id.
    pub post_id: PostId,
    /// Who serves.
    pub commissioner_id: CommissionerId,
    /// Where.
    pub workstation_id: WorkstationId,
    /// City served through the post; one of the workstation's served cities.
    pub serving_city: CityCode,
    /// Role at the workstation.
    pub role: Text,
    /// Hours the post takes per month.
    pub hours_per_month: HoursPerMonth,
    /// First day.
    pub start_date: Date,
    /// Last day.
    pub end_date: Date,
    /// A demand the post is appointed for: dispatched to the post in the
    /// same commit, or the whole command is refused.
    pub demand_id: Option<DemandId>,
}

/// Moves a post's last day later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendPostTerm {
    /// Target.
    pub post_id: PostId,
    /// New last day.
    pub end_date: Date,
}

/// Ends a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndPost {
    /// Target.
    pub post_id: PostId,
    /// Last day of service (before the start: the post never runs).
    pub end_date: Date,
    /// Why, for the record.
    pub reason: Text,
}

/// Records a unit of service delivered through a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordService {
    /// New id.
    pub service_id: ServiceId,
    /// Post it was delivered through.
    pub post_id: PostId,
    /// Day it was delivered.
    pub date: Date,
    /// Duration.
    pub minutes: Minutes,
    /// Enterprise that benefited.
    pub beneficiary: Text,
    /// City of the beneficiary; one of the workstation's served cities.
    pub beneficiary_city: CityCode,
    /// What was done.
    pub summary: Text,
    /// The demand the service was for; it must be dispatched to the post.
    pub demand_id: Option<DemandId>,
}

/// Publishes an enterprise's technical demand, to be served in a city.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitDemand {
    /// New id.
    pub demand_id: DemandId,
    /// What is needed, in a line.
    pub title: Text,
    /// The enterprise that needs it.
    pub enterprise: Text,
    /// City where the need is; posts serving it can be dispatched.
    pub city: CityCode,
    /// Expertise wanted (1 to 8 tags); a commissioner with any one matches.
    pub expertise: Vec<Text>,
    /// Hours per month of service wanted.
    pub hours_per_month: HoursPerMonth,
    /// First day of the wanted period.
    pub start_date: Date,
    /// Last day of the wanted period (at most three years on).
    pub end_date: Date,
    /// The need in detail.
    pub description: Text,
}

/// Dispatches a demand to an existing post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchDemand {
    /// Target.
    pub demand_id: DemandId,
    /// The post that will serve it.
    pub post_id: PostId,
}

/// Closes a dispatched demand as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveDemand {
    /// Target.
    pub demand_id: DemandId,
    /// What came of it.
    pub outcome: Text,
    /// The enterprise's satisfaction.
    pub satisfaction: Satisfaction,
    /// The day it was resolved; `None` means today.
    pub resolved_on: Option<Date>,
}

/// Withdraws a demand that no service was recorded for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawDemand {
    /// Target.
    pub demand_id: DemandId,
    /// Why, for the record.
    pub reason: Text,
}

/// Every command tepai decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// See [`RegisterCommissioner`].
    RegisterCommissioner(RegisterCommissioner),
    /// See [`UpdateCommissionerProfile`].
    UpdateCommissionerProfile(UpdateCommissionerProfile),
    /// See [`SuspendCommissioner`].
    SuspendCommissioner(SuspendCommissioner),
    /// See [`ReinstateCommissioner`].
    ReinstateCommissioner(ReinstateCommissioner),
    /// See [`RetireCommissioner`].
    RetireCommissioner(RetireCommissioner),
    /// See [`EstablishWorkstation`].
    EstablishWorkstation(EstablishWorkstation),
    /// See [`ExtendWorkstationService`].
    ExtendWorkstationService(ExtendWorkstationService),
    /// See [`WithdrawWorkstationService`].
    WithdrawWorkstationService(WithdrawWorkstationService),
    /// See [`ChangeWorkstationCapacity`].
    ChangeWorkstationCapacity(ChangeWorkstationCapacity),
    /// See [`CloseWorkstation`].
    CloseWorkstation(CloseWorkstation),
    /// See [`AppointPost`].
    AppointPost(AppointPost),
    /// See [`ExtendPostTerm`].
    ExtendPostTerm(ExtendPostTerm),
    /// See [`EndPost`].
    EndPost(EndPost),
    /// See [`RecordService`].
    RecordService(RecordService),
    /// See [`SubmitDemand`].
    SubmitDemand(SubmitDemand),
    /// See [`DispatchDemand`].
    DispatchDemand(DispatchDemand),
    /// See [`ResolveDemand`].
    ResolveDemand(ResolveDemand),
    /// See [`WithdrawDemand`].
    WithdrawDemand(WithdrawDemand),
}

impl Command {
    /// The stream the command names; `expected_version` refers to it.
    pub fn target(&self) -> StreamId {
        match self {
            Command::RegisterCommissioner(c) => c.commissioner_id.stream(),
            Command::UpdateCommissionerProfile(c) => c.commissioner_id.stream(),
            Command::SuspendCommissioner(c) => c.commissioner_id.stream(),
            Command::ReinstateCommissioner(c) => c.commissioner_id.stream(),
            Command::RetireCommissioner(c) => c.commissioner_id.stream(),
            Command::EstablishWorkstation(c) => c.workstation_id.stream(),
            Command::ExtendWorkstationService(c) => c.workstation_id.stream(),
            Command::WithdrawWorkstationService(c) => c.workstation_id.stream(),
            Command::ChangeWorkstationCapacity(c) => c.workstation_id.stream(),
            Command::CloseWorkstation(c) => c.workstation_id.stream(),
            Command::AppointPost(c) => c.post_id.stream(),
            Command::ExtendPostTerm(c) => c.post_id.stream(),
            Command::EndPost(c) => c.post_id.stream(),
            Command::RecordService(c) => c.post_id.stream(),
            Command::SubmitDemand(c) => c.demand_id.stream(),
            Command::DispatchDemand(c) => c.demand_id.stream(),
            Command::ResolveDemand(c) => c.demand_id.stream(),
            Command::WithdrawDemand(c) => c.demand_id.stream(),
        }
    }

    /// The command's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterCommissioner(_) => "RegisterCommissioner",
            Command::UpdateCommissionerProfile(_) => "UpdateCommissionerProfile",
            Command::SuspendCommissioner(_) => "SuspendCommissioner",
            Command::ReinstateCommissioner(_) => "ReinstateCommissioner",
            Command::RetireCommissioner(_) => "RetireCommissioner",
            Command::EstablishWorkstation(_) => "EstablishWorkstation",
            Command::ExtendWorkstationService(_) => "ExtendWorkstationService",
            Command::WithdrawWorkstationService(_) => "WithdrawWorkstationService",
            Command::ChangeWorkstationCapacity(_) => "ChangeWorkstationCapacity",
            Command::CloseWorkstation(_) => "CloseWorkstation",
            Command::AppointPost(_) => "AppointPost",
            Command::ExtendPostTerm(_) => "ExtendPostTerm",
            Command::EndPost(_) => "EndPost",
            Command::RecordService(_) => "RecordService",
            Command::SubmitDemand(_) => "SubmitDemand",
            Command::DispatchDemand(_) => "DispatchDemand",
            Command::ResolveDemand(_) => "ResolveDemand",
            Command::WithdrawDemand(_) => "WithdrawDemand",
        }
    }
}
