//! The annual assessment (年度考核): the policy that turns a year's figures
//! into whole points and a grade.
//!
//! Pure and integer-only: points are sums of whole weights times counts,
//! each capped, so two nodes (or a clerk with a spreadsheet) add them up to
//! the same number. Satisfaction enters as the sum of the scores, never as
//! an average. The view gathers the figures; the configuration reads the
//! policy from a file; both call in here.

use std::fmt;

/// Weights, caps and thresholds of the assessment, fixed for the life of a
/// process. `docs/assessment.md` lists the keys of the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessmentPolicy {
    /// Points for each distinct day with service (`points.per_service_day`).
    pub per_service_day: u32,
    /// Most points service days can earn (`points.service_day_cap`).
    pub service_day_cap: u32,
    /// Points for each demand resolved in the year
    /// (`points.per_resolved_demand`).
    pub per_resolved_demand: u32,
    /// Most points resolved demands can earn (`points.resolved_demand_cap`).
    pub resolved_demand_cap: u32,
    /// Points for each satisfaction point (1 to 5 per resolved demand)
    /// (`points.per_satisfaction_point`).
    pub per_satisfaction_point: u32,
    /// Most points satisfaction can earn (`points.satisfaction_cap`).
    pub satisfaction_cap: u32,
    /// Points for 优秀 (`grades.excellent`).
    pub excellent: u32,
    /// Points for 良好 (`grades.good`); below `excellent`.
    pub good: u32,
    /// Points for 合格 (`grades.pass`); below `good`.
    pub pass: u32,
    /// Service days a year needs for any grade above 不合格, whatever the
    /// points (`grades.pass_service_days`).
    pub pass_service_days: u32,
}

impl Default for AssessmentPolicy {
    /// The defaults of `docs/assessment.md`: a service day a month (12) is
    /// the floor, and exactly a pass (12 × 5 = 60 points); 30 days, or
    /// fewer days with demands resolved well, make 良好.
    fn default() -> Self {
        Self {
            per_service_day: 5,
            service_day_cap: 200,
            per_resolved_demand: 20,
            resolved_demand_cap: 100,
            per_satisfaction_point: 4,
            satisfaction_cap: 100,
            excellent: 240,
            good: 150,
            pass: 60,
            pass_service_days: 12,
        }
    }
}

/// What is wrong with a policy: the file key and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct PolicyError {
    /// The key as the policy file spells it, e.g. `grades.good`.
    pub key: &'static str,
    /// What is wrong, in plain words.
    pub problem: String,
}

impl AssessmentPolicy {
    /// The policy's own consistency: grade thresholds strictly descending,
    /// the best grade reachable under the caps, and a day floor a year can
    /// meet.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |key, problem: String| Err(PolicyError { key, problem });
        if self.good >= self.excellent {
            return bad(
                "grades.good",
                format!(
                    "{} must be below grades.excellent ({})",
                    self.good, self.excellent
                ),
            );
        }
        if self.pass >= self.good {
            return bad(
                "grades.pass",
                format!("{} must be below grades.good ({})", self.pass, self.good),
            );
        }
        let most = self.most_points();
        if u64::from(self.excellent) > most {
            return bad(
                "grades.excellent",
                format!(
                    "{} is more than the caps allow in all ({most})",
                    self.excellent
                ),
            );
        }
        if self.pass_service_days > DAYS_IN_LEAP_YEAR {
            return bad(
                "grades.pass_service_days",
                format!(
                    "{} is more days than a year has ({DAYS_IN_LEAP_YEAR})",
                    self.pass_service_days
                ),
            );
        }
        Ok(())
    }

    /// The most points anyone can earn: the caps together.
    fn most_points(&self) -> u64 {
        u64::from(self.service_day_cap)
            + u64::from(self.resolved_demand_cap)
            + u64::from(self.satisfaction_cap)
    }
}

/// One subject's figures for the year, as the view counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Distinct dates with service.
    pub service_days: u32,
    /// Demands resolved in the year that the subject's posts served.
    pub demands_resolved: u32,
    /// The sum of those demands' satisfaction scores.
    pub satisfaction_total: u32,
}

/// The grade of a year (考核等级).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    /// 优秀.
    Excellent,
    /// 良好.
    Good,
    /// 合格.
    Pass,
    /// 不合格: below the pass threshold, or too few service days.
    Fail,
}

impl Grade {
    /// The grade as a clerk reads it.
    pub fn chinese(self) -> &'static str {
        match self {
            Grade::Excellent => "优秀",
            Grade::Good => "良好",
            Grade::Pass => "合格",
            Grade::Fail => "不合格",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.chinese())
    }
}

/// The points `figures` earn under `policy` and the grade they make. Each
/// part is capped on its own, so no one kind of work buys the whole grade;
/// fewer service days than the floor is 不合格 whatever the points.
pub fn score(figures: &Figures, policy: &AssessmentPolicy) -> (u32, Grade) {
    let part = |count: u32, weight: u32, cap: u32| {
        (u64::from(count) * u64::from(weight)).min(u64::from(cap))
    };
    let total = part(
        figures.service_days,
        policy.per_service_day,
        policy.service_day_cap,
    ) + part(
        figures.demands_resolved,
        policy.per_resolved_demand,
        policy.resolved_demand_cap,
    ) + part(
        figures.satisfaction_total,
        policy.per_satisfaction_point,
        policy.satisfaction_cap,
    );
    // Three capped u32 parts always fit a u64; the sum of three caps can
    // pass u32::MAX only with absurd caps, where saturating is the answer.
    let points = u32::try_from(total).unwrap_or(u32::MAX);
    let grade = if figures.service_days < policy.pass_service_days {
        Grade::Fail
    } else if points >= policy.excellent {
        Grade::Excellent
    } else if points >= policy.good {
        Grade::Good
    } else if points >= policy.pass {
        Grade::Pass
    } else {
        Grade::Fail
    };
    (points, grade)
}

/// The most days a calendar year has.
const DAYS_IN_LEAP_YEAR: u32 = 366;

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(service_days: u32, demands_resolved: u32, satisfaction_total: u32) -> Figures {
        Figures {
            service_days,
            demands_resolved,
            satisfaction_total,
        }
    }

    /// Each row: figures, then the points and grade the defaults give.
    #[test]
    fn the_default_policy_grades_each_edge_as_documented() {
        let policy = AssessmentPolicy::default();
        let cases = [
            // No service at all.
            (figures(0, 0, 0), 0, Grade::Fail),
            // One day short of the floor, however many points.
            (figures(11, 5, 25), 55 + 100 + 100, Grade::Fail),
            // The floor exactly: 12 days are 60 points, a pass.
            (figures(12, 0, 0), 60, Grade::Pass),
            (figures(29, 0, 0), 145, Grade::Pass),
            (figures(30, 0, 0), 150, Grade::Good),
            // Service days stop counting at the cap (200 = 40 days).
            (figures(40, 0, 0), 200, Grade::Good),
            (figures(300, 0, 0), 200, Grade::Good),
            // Demands and satisfaction lift a year past the next threshold.
            (figures(12, 1, 5), 60 + 20 + 20, Grade::Pass),
            (figures(13, 2, 8), 65 + 40 + 32, Grade::Pass),
            (figures(14, 2, 9), 70 + 40 + 36, Grade::Pass),
            (figures(14, 2, 10), 70 + 40 + 40, Grade::Good),
            (figures(40, 1, 5), 200 + 20 + 20, Grade::Excellent),
            (figures(39, 1, 5), 195 + 20 + 20, Grade::Good),
            // Every part capped: the most anyone earns.
            (figures(366, 50, 250), 400, Grade::Excellent),
        ];
        for (figures, points, grade) in cases {
            assert_eq!(score(&figures, &policy), (points, grade), "{figures:?}");
        }
    }

    #[test]
    fn a_zero_day_floor_lets_points_alone_decide() {
        let policy = AssessmentPolicy {
            pass_service_days: 0,
            pass: 20,
            ..AssessmentPolicy::default()
        };
        assert_eq!(score(&figures(0, 1, 0), &policy), (20, Grade::Pass));
        assert_eq!(score(&figures(0, 0, 4), &policy), (16, Grade::Fail));
    }

    #[test]
    fn huge_weights_saturate_instead_of_wrapping() {
        let policy = AssessmentPolicy {
            per_service_day: u32::MAX,
            service_day_cap: u32::MAX,
            resolved_demand_cap: u32::MAX,
            per_resolved_demand: u32::MAX,
            ..AssessmentPolicy::default()
        };
        assert_eq!(
            score(&figures(12, 3, 0), &policy),
            (u32::MAX, Grade::Excellent)
        );
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(AssessmentPolicy::default().validate(), Ok(()));
    }

    /// Each row: a change to the defaults and the key the refusal names.
    #[test]
    fn validate_names_the_key_that_breaks_the_order_or_the_caps() {
        let d = AssessmentPolicy::default;
        let cases = [
            (AssessmentPolicy { good: 240, ..d() }, "grades.good"),
            (AssessmentPolicy { good: 300, ..d() }, "grades.good"),
            (AssessmentPolicy { pass: 150, ..d() }, "grades.pass"),
            (
                AssessmentPolicy {
                    excellent: 401,
                    ..d()
                },
                "grades.excellent",
            ),
            (
                AssessmentPolicy {
                    satisfaction_cap: 0,
                    resolved_demand_cap: 0,
                    ..d()
                },
                "grades.excellent",
            ),
            (
                AssessmentPolicy {
                    pass_service_days: 367,
                    ..d()
                },
                "grades.pass_service_days",
            ),
        ];
        for (policy, key) in cases {
            let error = policy.validate().expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
        let error = AssessmentPolicy { good: 240, ..d() }
            .validate()
            .expect_err("good equals excellent");
        assert_eq!(
            error.to_string(),
            "grades.good: 240 must be below grades.excellent (240)"
        );
    }

    #[test]
    fn grades_read_in_chinese() {
        let all = [Grade::Excellent, Grade::Good, Grade::Pass, Grade::Fail];
        assert_eq!(all.map(Grade::chinese), ["优秀", "良好", "合格", "不合格"]);
    }
}
