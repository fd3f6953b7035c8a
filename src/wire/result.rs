//! Building `CommandResult`s.

use super::pb;
use crate::domain::{RejectCode, Rejection};

impl From<RejectCode> for pb::RejectCode {
    fn from(code: RejectCode) -> Self {
        match code {
            RejectCode::InvalidArgument => pb::RejectCode::InvalidArgument,
            RejectCode::NotFound => pb::RejectCode::NotFound,
            RejectCode::AlreadyExists => pb::RejectCode::AlreadyExists,
            RejectCode::RuleViolated => pb::RejectCode::RuleViolated,
            RejectCode::Conflict => pb::RejectCode::Conflict,
            RejectCode::Unauthorized => pb::RejectCode::Unauthorized,
            RejectCode::Unavailable => pb::RejectCode::Unavailable,
        }
    }
}

/// An accepted result listing the events written.
pub fn accepted(command_id: String, events: Vec<pb::WrittenEvent>) -> pb::CommandResult {
    pb::CommandResult {
        command_id,
        outcome: Some(pb::command_result::Outcome::Accepted(pb::Accepted {
            events,
        })),
    }
}

/// A rejected result.
pub fn rejected(
    command_id: String,
    code: RejectCode,
    rule: &str,
    message: impl Into<String>,
) -> pb::CommandResult {
    pb::CommandResult {
        command_id,
        outcome: Some(pb::command_result::Outcome::Rejected(pb::Rejected {
            code: pb::RejectCode::from(code) as i32,
            message: message.into(),
            rule: rule.to_owned(),
        })),
    }
}

/// The result for a domain rejection.
pub fn rejection_result(command_id: String, rejection: &Rejection) -> pb::CommandResult {
    rejected(
        command_id,
        rejection.code(),
        rejection.rule(),
        rejection.to_string(),
    )
}
