//! Parsed value types of the domain: ids, city codes, dates, bounded numbers
//! and text. Each is built by a `parse` that checks its invariant once, so
//! the rest of the domain can rely on it.

use std::fmt;

use chrono::NaiveDate;
use uuid::Uuid;

/// Why a field of a command could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    /// The protobuf field name, so a producer can find it.
    pub field: &'static str,
    /// What is wrong with the value, in plain words.
    pub problem: String,
}

impl FieldError {
    /// A field error for `field`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

fn parse_uuid(field: &'static str, value: &str) -> Result<Uuid, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required (a UUID)"));
    }
    // Only the hyphenated form: other systems must agree on one spelling of
    // an id, since ids become stream names and NATS subjects.
    if value.len() != 36 {
        return Err(FieldError::new(
            field,
            format!("'{}' is not a UUID", excerpt(value)),
        ));
    }
    let id = Uuid::try_parse(value)
        .map_err(|_| FieldError::new(field, format!("'{}' is not a UUID", excerpt(value))))?;
    if id.is_nil() {
        return Err(FieldError::new(field, "must not be the nil UUID"));
    }
    Ok(id)
}

/// The first characters of a bad value, safe to echo in a message.
pub fn excerpt(value: &str) -> String {
    const MAX: usize = 40;
    let clean: String = value
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().count() > MAX {
        format!("{clean}…")
    } else {
        clean
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Parses a hyphenated, non-nil UUID.
            pub fn parse(field: &'static str, value: &str) -> Result<Self, FieldError> {
                parse_uuid(field, value).map(Self)
            }

            /// The id of this entity's event stream.
            pub fn stream(self) -> StreamId {
                StreamId::$name(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies a commissioner (科技特派员); chosen by the producer.
    CommissionerId
);
id_type!(
    /// Identifies a workstation (特派员工作站); chosen by the producer.
    WorkstationId
);
id_type!(
    /// Identifies a post (兼职); chosen by the producer.
    PostId
);
id_type!(
    /// Identifies an enterprise's technical demand (技术需求); chosen by the
    /// producer.
    DemandId
);

/// Identifies a service record; chosen by the producer. Service records live
/// in their post's stream, so this id has no stream of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub Uuid);

impl ServiceId {
    /// Parses a hyphenated, non-nil UUID.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, FieldError> {
        parse_uuid(field, value).map(Self)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The event stream an event belongs to: `commissioner-<id>`,
/// `workstation-<id>`, `post-<id>` or `demand-<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamId {
    /// A commissioner's stream.
    CommissionerId(CommissionerId),
    /// A workstation's stream.
    WorkstationId(WorkstationId),
    /// A post's stream, which also holds its service records.
    PostId(PostId),
    /// A demand's stream.
    DemandId(DemandId),
}

impl StreamId {
    /// The category used in stream names and NATS subjects.
    pub fn category(&self) -> &'static str {
        match self {
            StreamId::CommissionerId(_) => "commissioner",
            StreamId::WorkstationId(_) => "workstation",
            StreamId::PostId(_) => "post",
            StreamId::DemandId(_) => "demand",
        }
    }

    /// The entity's id.
    pub fn uuid(&self) -> Uuid {
        match self {
            StreamId::CommissionerId(id) => id.0,
            StreamId::WorkstationId(id) => id.0,
            StreamId::PostId(id) => id.0,
            StreamId::DemandId(id) => id.0,
        }
    }

    /// Parses `category-uuid`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                "stream_id",
                format!(
                    "'{}' is not a stream id (commissioner-, workstation-, post- or demand- and a UUID)",
                    excerpt(value)
                ),
            )
        };
        let (category, id) = value.split_once('-').ok_or_else(bad)?;
        let id = parse_uuid("stream_id", id).map_err(|_| bad())?;
        match category {
            "commissioner" => Ok(StreamId::CommissionerId(CommissionerId(id))),
            "workstation" => Ok(StreamId::WorkstationId(WorkstationId(id))),
            "post" => Ok(StreamId::PostId(PostId(id))),
            "demand" => Ok(StreamId::DemandId(DemandId(id))),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.category(), self.uuid().hyphenated())
    }
}

/// A 6-digit administrative division code, e.g. `150100` (Hohhot). Whether
/// it lies in the configured region is a policy question, asked in `decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CityCode(u32);

impl CityCode {
    /// Hohhot, 呼和浩特.
    pub const HOHHOT: CityCode = CityCode(150100);
    /// Baotou, 包头.
    pub const BAOTOU: CityCode = CityCode(150200);
    /// Ordos, 鄂尔多斯.
    pub const ORDOS: CityCode = CityCode(150600);
    /// Ulanqab, 乌兰察布.
    pub const ULANQAB: CityCode = CityCode(150900);

    /// Parses exactly six ASCII digits, not starting with 0.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, FieldError> {
        let ok = value.len() == 6
            && value.bytes().all(|b| b.is_ascii_digit())
            && !value.starts_with('0');
        if !ok {
            return Err(FieldError::new(
                field,
                format!(
                    "'{}' is not a city code (six digits, e.g. 150100)",
                    excerpt(value)
                ),
            ));
        }
        value
            .parse()
            .map(CityCode)
            .map_err(|_| FieldError::new(field, "is not a city code"))
    }

    /// The numeric code.
    pub fn code(self) -> u32 {
        self.0
    }

    /// The city's name where tepai knows it.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            150100 => Some("呼和浩特"),
            150200 => Some("包头"),
            150600 => Some("鄂尔多斯"),
            150900 => Some("乌兰察布"),
            _ => None,
        }
    }
}

impl fmt::Display for CityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// A calendar date (no time zone: the region lives in UTC+8).
pub type Date = NaiveDate;

/// Earliest date tepai accepts; older dates are typing mistakes.
pub const MIN_DATE: Date = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(d) => d,
    None => panic!("valid constant"),
};
/// Latest date tepai accepts.
pub const MAX_DATE: Date = match NaiveDate::from_ymd_opt(2199, 12, 31) {
    Some(d) => d,
    None => panic!("valid constant"),
};

/// Parses a `YYYY-MM-DD` date between [`MIN_DATE`] and [`MAX_DATE`].
pub fn parse_date(field: &'static str, value: &str) -> Result<Date, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required (YYYY-MM-DD)"));
    }
    let bad = || {
        FieldError::new(
            field,
            format!("'{}' is not a date (YYYY-MM-DD)", excerpt(value)),
        )
    };
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(bad());
    }
    // The shape is fixed, so the digits are read directly: views parse
    // hundreds of thousands of stored dates per query, and a format-string
    // parser costs several times more per date.
    let number = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'))
    };
    let year = i32::try_from(number(0..4)).map_err(|_| bad())?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)).ok_or_else(bad)?;
    if !(MIN_DATE..=MAX_DATE).contains(&date) {
        return Err(FieldError::new(
            field,
            format!("{date} is outside {MIN_DATE} to {MAX_DATE}"),
        ));
    }
    Ok(date)
}

/// Parses an optional date: empty means `default`.
pub fn parse_date_or(field: &'static str, value: &str, default: Date) -> Result<Date, FieldError> {
    if value.is_empty() {
        Ok(default)
    } else {
        parse_date(field, value)
    }
}

/// The day after `date`, saturating at the end of the calendar.
pub(crate) fn next_day(date: Date) -> Date {
    date.succ_opt().unwrap_or(date)
}

/// The day before `date`, saturating at the start of the calendar.
pub(crate) fn previous_day(date: Date) -> Date {
    date.pred_opt().unwrap_or(date)
}

/// Adds calendar months, clamping to the month's last day (Jan 31 + 1 = Feb 28).
pub(crate) fn add_months(date: Date, months: u32) -> Date {
    date.checked_add_months(chrono::Months::new(months))
        .unwrap_or(MAX_DATE)
}

macro_rules! bounded_number {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $unit:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// Smallest allowed value.
            pub const MIN: u32 = $min;
            /// Largest allowed value.
            pub const MAX: u32 = $max;

            /// Parses a value in `MIN..=MAX`.
            pub fn parse(field: &'static str, value: u32) -> Result<Self, FieldError> {
                if (Self::MIN..=Self::MAX).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(FieldError::new(
                        field,
                        format!("{} {} is out of range {}–{}", value, $unit, Self::MIN, Self::MAX),
                    ))
                }
            }

            /// The number.
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded_number!(
    /// How many posts a workstation may run at once.
    Capacity, 1, 500, "posts"
);
bounded_number!(
    /// Hours a post takes per month (744 = every hour of a 31-day month).
    HoursPerMonth, 1, 744, "hours/month"
);
bounded_number!(
    /// Minutes of one service record (at most one day).
    Minutes, 1, 1440, "minutes"
);
bounded_number!(
    /// The enterprise's satisfaction with a resolved demand (满意度), 1 (poor)
    /// to 5 (excellent).
    Satisfaction, 1, 5, "points"
);

/// Free text with a length bound. Stored and returned verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text(String);

/// Whether a text field may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, roles, organisations: no control characters at all.
    Single,
    /// Summaries and reasons: newlines and tabs allowed.
    Multi,
}

/// Length bounds (in characters) of text fields.
pub mod limits {
    /// Names of people, workstations, organisations, roles, beneficiaries.
    pub const NAME: usize = 200;
    /// Reasons and summaries.
    pub const NOTE: usize = 2000;
    /// One expertise or field tag.
    pub const TAG: usize = 64;
    /// Tags on one commissioner or workstation.
    pub const TAGS: usize = 32;
    /// Expertise tags a demand may want: few, so that matching stays
    /// meaningful.
    pub const DEMAND_TAGS: usize = 8;
}

impl Text {
    /// Parses a text of at most `max` characters. `required` rejects empty
    /// or blank text.
    pub fn parse(
        field: &'static str,
        value: &str,
        max: usize,
        lines: Lines,
        required: bool,
    ) -> Result<Self, FieldError> {
        if required && value.trim().is_empty() {
            return Err(FieldError::new(field, "is required"));
        }
        let count = value.chars().count();
        if count > max {
            return Err(FieldError::new(
                field,
                format!("is {count} characters long; the limit is {max}"),
            ));
        }
        let allowed =
            |c: char| !c.is_control() || (lines == Lines::Multi && matches!(c, '\n' | '\t'));
        if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
            return Err(FieldError::new(
                field,
                format!("contains the control character U+{:04X}", bad as u32),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A required single-line name.
    pub fn name(field: &'static str, value: &str) -> Result<Self, FieldError> {
        Self::parse(field, value, limits::NAME, Lines::Single, true)
    }

    /// An optional multi-line note.
    pub fn note(field: &'static str, value: &str) -> Result<Self, FieldError> {
        Self::parse(field, value, limits::NOTE, Lines::Multi, false)
    }

    /// Text that needs no check: written by tepai itself, or read back
    /// from its own store (checked when written; the limits may have
    /// tightened since, and old events must still load).
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses a list of tags (expertise, fields): bounded count and length.
pub fn parse_tags(field: &'static str, values: &[String]) -> Result<Vec<Text>, FieldError> {
    if values.len() > limits::TAGS {
        return Err(FieldError::new(
            field,
            format!("has {} tags; the limit is {}", values.len(), limits::TAGS),
        ));
    }
    values
        .iter()
        .map(|v| Text::parse(field, v, limits::TAG, Lines::Single, true))
        .collect()
}

/// Parses the expertise a demand wants: 1 to [`limits::DEMAND_TAGS`] tags.
pub fn parse_wanted_tags(field: &'static str, values: &[String]) -> Result<Vec<Text>, FieldError> {
    if values.is_empty() || values.len() > limits::DEMAND_TAGS {
        return Err(FieldError::new(
            field,
            format!(
                "has {} tags; a demand wants 1 to {}",
                values.len(),
                limits::DEMAND_TAGS
            ),
        ));
    }
    parse_tags(field, values)
}
