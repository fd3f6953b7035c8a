//! The configurable limits the rules apply: the region and the defaults of
//! SPEC.md ("at most 3 posts, 80 hours a month, a term of 3 years").

use std::collections::BTreeSet;

use super::types::CityCode;

/// Limits and the region, fixed for the life of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Cities tepai serves; a code outside is an invalid argument.
    pub region: BTreeSet<CityCode>,
    /// Posts a commissioner may hold on any one day.
    pub max_posts_per_commissioner: u32,
    /// Hours per month a commissioner's posts may add up to on any one day.
    pub max_hours_per_month: u32,
    /// Longest term of a post, in calendar months.
    pub max_term_months: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            region: [CityCode::HOHHOT, CityCode::BAOTOU].into_iter().collect(),
            max_posts_per_commissioner: 3,
            max_hours_per_month: 80,
            max_term_months: 36,
        }
    }
}

impl Policy {
    /// The region as a readable list, for messages.
    pub fn region_list(&self) -> String {
        self.region
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
