//! The day-by-day load of a set of post terms: how many posts and how many
//! hours a month run on each day of a window. Rules about "every day of the
//! term" ask this instead of looking only at today, so a post dated next
//! year counts on the days it covers.
//!
//! [`commissioner_load`] and [`workstation_load`] are the posts, hours and
//! capacity rules themselves. `decide` refuses with them, and the
//! candidates view lists with them, so the two cannot drift apart.

use super::policy::Policy;
use super::types::{next_day, Date};

/// What one more post would make of a commissioner's load over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommissionerLoad {
    /// It fits on every day. The peaks are of the posts already held, each
    /// the most on any one day of the period.
    Fits {
        /// Most posts held on one day.
        peak_posts: u32,
        /// Most hours per month held on one day.
        peak_hours: u32,
    },
    /// On `day` (the first such) the commissioner would hold `posts` posts,
    /// the new one included, more than the limit.
    TooManyPosts {
        /// First day over the limit.
        day: Date,
        /// Posts on that day, the new one included.
        posts: u32,
    },
    /// On `day` (the first such) the commissioner would hold `hours` hours
    /// per month, the new post's included, more than the limit.
    TooManyHours {
        /// First day over the limit.
        day: Date,
        /// Hours per month on that day, the new post's included.
        hours: u32,
    },
}

/// Whether a term `[first, last]` shares a day with `[from, to]`. A term
/// whose last day is before its first (a post ended before it started)
/// shares none. The duplicate rule asks this.
pub fn overlaps(first: Date, last: Date, from: Date, to: Date) -> bool {
    first.max(from) <= last.min(to)
}

/// The posts and hours rules: whether a commissioner holding the posts
/// `held` (first day, last day, hours per month) can take one more post of
/// `hours` over `[from, to]` under `policy`. Posts are checked before hours
/// on each day, days in order.
pub fn commissioner_load(
    held: impl IntoIterator<Item = (Date, Date, u32)>,
    from: Date,
    to: Date,
    hours: u32,
    policy: &Policy,
) -> CommissionerLoad {
    let (mut peak_posts, mut peak_hours) = (0, 0);
    for level in levels(held, from, to) {
        let posts = level.posts + 1;
        if posts > policy.max_posts_per_commissioner {
            return CommissionerLoad::TooManyPosts {
                day: level.day,
                posts,
            };
        }
        let total = level.hours + hours;
        if total > policy.max_hours_per_month {
            return CommissionerLoad::TooManyHours {
                day: level.day,
                hours: total,
            };
        }
        peak_posts = peak_posts.max(level.posts);
        peak_hours = peak_hours.max(level.hours);
    }
    CommissionerLoad::Fits {
        peak_posts,
        peak_hours,
    }
}

/// The capacity rule: whether a workstation running the posts `running`
/// has a seat for one more over `[from, to]`. `Ok` holds the seats free on
/// the fullest day (at least 1); `Err` the first day without a seat and the
/// posts it would then run.
pub fn workstation_load(
    running: impl IntoIterator<Item = (Date, Date, u32)>,
    from: Date,
    to: Date,
    capacity: u32,
) -> Result<u32, (Date, u32)> {
    let mut fullest = 0;
    for level in levels(running, from, to) {
        let posts = level.posts + 1;
        if posts > capacity {
            return Err((level.day, posts));
        }
        fullest = fullest.max(level.posts);
    }
    Ok(capacity - fullest)
}

/// The load on one stretch of days, from `day` until the next level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Level {
    /// First day at this level.
    pub day: Date,
    /// Posts running.
    pub posts: u32,
    /// Their hours per month.
    pub hours: u32,
}

/// The levels over `[from, to]` of the intervals `(first day, last day,
/// hours)`: one entry per day on which the level changes, the first at
/// `from`. A sweep over the interval ends, O(n log n) in the intervals that
/// touch the window, independent of the window's length.
pub(crate) fn levels(
    intervals: impl IntoIterator<Item = (Date, Date, u32)>,
    from: Date,
    to: Date,
) -> Vec<Level> {
    let mut changes: Vec<(Date, i64, i64)> = vec![(from, 0, 0)];
    for (first, last, hours) in intervals {
        let start = first.max(from);
        let end = last.min(to);
        if start > end {
            continue;
        }
        changes.push((start, 1, i64::from(hours)));
        if end < to {
            changes.push((next_day(end), -1, -i64::from(hours)));
        }
    }
    changes.sort_unstable_by_key(|c| c.0);

    let mut levels: Vec<Level> = Vec::new();
    let (mut posts, mut hours) = (0i64, 0i64);
    for (day, d_posts, d_hours) in changes {
        posts += d_posts;
        hours += d_hours;
        let level = Level {
            day,
            posts: u32::try_from(posts).unwrap_or(0),
            hours: u32::try_from(hours).unwrap_or(0),
        };
        match levels.last_mut() {
            Some(last) if last.day == day => *last = level,
            _ => levels.push(level),
        }
    }
    levels
}

/// The busiest stretch by posts over `[from, to]` (the first one on a tie).
pub(crate) fn peak(
    intervals: impl IntoIterator<Item = (Date, Date, u32)>,
    from: Date,
    to: Date,
) -> Level {
    let all = levels(intervals, from, to);
    let mut best = Level {
        day: from,
        posts: 0,
        hours: 0,
    };
    for level in all {
        if level.posts > best.posts {
            best = level;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn levels_count_only_days_inside_the_window() {
        let intervals = [
            (d("2025-01-01"), d("2025-01-31"), 10),
            (d("2025-01-15"), d("2025-02-15"), 20),
            (d("2025-03-01"), d("2025-03-31"), 40),
        ];
        let got = levels(intervals, d("2025-01-10"), d("2025-02-28"));
        let want = vec![
            Level {
                day: d("2025-01-10"),
                posts: 1,
                hours: 10,
            },
            Level {
                day: d("2025-01-15"),
                posts: 2,
                hours: 30,
            },
            Level {
                day: d("2025-02-01"),
                posts: 1,
                hours: 20,
            },
            Level {
                day: d("2025-02-16"),
                posts: 0,
                hours: 0,
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_interval_ending_the_day_before_another_starts_does_not_overlap_it() {
        let intervals = [
            (d("2025-01-01"), d("2025-01-31"), 10),
            (d("2025-02-01"), d("2025-02-28"), 10),
        ];
        assert_eq!(peak(intervals, d("2025-01-01"), d("2025-12-31")).posts, 1);
    }

    #[test]
    fn peak_finds_the_first_busiest_day() {
        let intervals = [
            (d("2025-01-01"), d("2025-12-31"), 10),
            (d("2025-06-01"), d("2025-06-30"), 10),
            (d("2025-09-01"), d("2025-09-30"), 10),
        ];
        let p = peak(intervals, d("2025-01-01"), d("2025-12-31"));
        assert_eq!((p.day, p.posts, p.hours), (d("2025-06-01"), 2, 20));
    }

    #[test]
    fn empty_intervals_are_ignored() {
        let intervals = [(d("2025-02-01"), d("2025-01-31"), 10)];
        assert_eq!(peak(intervals, d("2025-01-01"), d("2025-12-31")).posts, 0);
    }
}
