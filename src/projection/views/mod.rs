//! Reading the views: the answers to `query.proto`, as of any position.
//!
//! Each query runs in one read transaction, so the checkpoint it resolves
//! `as_of_position` against and the rows it reads come from the same
//! snapshot even while the projection commits. Rows are picked by the
//! temporal rule of `schema` (`valid_from <= P < valid_to`), so "latest" is
//! just "as of the checkpoint".

mod assessment;
mod candidates;
mod demands;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Datelike;
use rusqlite::{named_params, Connection, OpenFlags, OptionalExtension, ToSql};

use super::rows::from_json;
use super::{schema, ProjectionError, BUSY_TIMEOUT};
use crate::domain::{
    parse_date_or, CityCode, CommissionerId, Date, FieldError, PostId, WorkstationId,
};
use crate::wire::pb;

/// A read-only connection to the views file at `path`.
fn read_only(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Page size when the query asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page a query may ask for; more is an invalid argument.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter is malformed or out of range.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The protobuf field name, so the caller can find it.
        field: &'static str,
        /// What is wrong, in plain words.
        message: String,
    },
    /// The commissioner or workstation asked for does not exist at the
    /// asked position.
    #[error("{0}")]
    NotFound(String),
    /// The views file failed us.
    #[error("views storage: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Storage(e.to_string())
    }
}

impl From<ProjectionError> for QueryError {
    fn from(e: ProjectionError) -> Self {
        QueryError::Storage(e.to_string())
    }
}

impl From<FieldError> for QueryError {
    fn from(e: FieldError) -> Self {
        QueryError::InvalidArgument {
            field: e.field,
            message: e.problem,
        }
    }
}

/// A read-only connection to the views. One per thread: a connection
/// serves one query at a time, and WAL lets any number read beside the
/// writer without blocking it.
#[derive(Debug)]
pub struct Views {
    conn: Connection,
    path: PathBuf,
    /// A second connection for the part of a query that runs beside the
    /// rest on another thread (the candidates' seat count); opened on
    /// first use, lent to that thread and given back.
    side: std::cell::RefCell<Option<Connection>>,
}

impl Views {
    /// Opens existing views read-only; [`super::Projection::open`] must have
    /// created and migrated the file.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        let conn = read_only(path)?;
        let found = schema::current_version(&conn)?;
        if found != schema::latest_version() {
            return Err(ProjectionError::SchemaVersion {
                found,
                known: schema::latest_version(),
            });
        }
        Ok(Self {
            conn,
            path: path.to_owned(),
            side: std::cell::RefCell::new(None),
        })
    }

    /// Runs `job` on the side connection in another thread while `here`
    /// runs on this one, and returns both results. The side connection
    /// reads its own snapshot; a job that reads as of a position at or
    /// below the main transaction's checkpoint sees the same rows, since
    /// rows of a position, once written, only ever get closed later.
    fn beside<A: Send, B>(
        &self,
        job: impl FnOnce(&Connection) -> Result<A, QueryError> + Send,
        here: impl FnOnce() -> Result<B, QueryError>,
    ) -> Result<(A, B), QueryError> {
        let side = match self.side.borrow_mut().take() {
            Some(side) => side,
            None => read_only(&self.path)?,
        };
        std::thread::scope(|scope| {
            let running = scope.spawn(move || {
                let answer = side
                    .unchecked_transaction()
                    .map_err(QueryError::from)
                    .and_then(|tx| job(&tx));
                (side, answer)
            });
            let mine = here();
            let (side, theirs) = running
                .join()
                .map_err(|_| QueryError::Storage("a query's side thread panicked".into()))?;
            *self.side.borrow_mut() = Some(side);
            Ok((theirs?, mine?))
        })
    }

    /// The last global position applied to the views.
    pub fn checkpoint(&self) -> Result<u64, QueryError> {
        Ok(schema::read_checkpoint(&self.conn)?)
    }

    /// One page of posts with their status on `on_date` (default `today`),
    /// filtered, in post-id order.
    ///
    /// The page token pins the position the first page was read at, so a
    /// listing paged while events arrive is one consistent snapshot: no
    /// post is lost or repeated between pages.
    pub fn assignments(
        &self,
        q: &pb::AssignmentsQuery,
        today: Date,
    ) -> Result<pb::AssignmentsPage, QueryError> {
        let on_date = parse_date_or("on_date", &q.on_date, today)?;
        let page_size = page_size(q.page_size)?;
        let (token, asked) = PageToken::resume(&q.page_token, q.as_of_position, |v| {
            PostId::parse("page_token", v).map(|id| id.to_string())
        })?;
        let filter = PostFilter {
            post_id: None,
            commissioner_id: optional(&q.commissioner_id, |v| {
                CommissionerId::parse("commissioner_id", v)
            })?,
            workstation_id: optional(&q.workstation_id, |v| {
                WorkstationId::parse("workstation_id", v)
            })?,
            home_city: optional(&q.home_city, |v| CityCode::parse("home_city", v))?,
            serving_city: optional(&q.serving_city, |v| CityCode::parse("serving_city", v))?,
            cross_city_only: q.cross_city_only,
            status: status_filter(q.status)?,
            after: token.map(|t| t.key),
            limit: Some(page_size + 1),
        };

        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, asked)?;
        let mut rows = select_assignments(&tx, at, on_date, &filter)?;
        let page_len = usize::try_from(page_size).unwrap_or(usize::MAX);
        let next_page_token = if rows.len() > page_len {
            rows.truncate(page_len);
            rows.last()
                .map(|last| {
                    PageToken {
                        position: at,
                        key: last.post_id.clone(),
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::AssignmentsPage {
            assignments: rows,
            next_page_token,
            as_of_position: at,
        })
    }

    /// A commissioner with their posts and totals on `on_date`.
    pub fn commissioner(
        &self,
        q: &pb::CommissionerQuery,
        today: Date,
    ) -> Result<pb::CommissionerDetail, QueryError> {
        let id = CommissionerId::parse("commissioner_id", &q.commissioner_id)?.to_string();
        let on_date = parse_date_or("on_date", &q.on_date, today)?;
        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, q.as_of_position)?;
        let found = tx
            .prepare_cached(
                "SELECT name, home_city, employer, kind, expertise, status FROM commissioners
                 WHERE commissioner_id = :id
                   AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)",
            )?
            .query_row(named_params! {":id": id, ":at": at}, |r| {
                let detail = pb::CommissionerDetail {
                    commissioner_id: id.clone(),
                    name: r.get(0)?,
                    home_city: r.get(1)?,
                    employer: r.get(2)?,
                    kind: r.get(3)?,
                    status: r.get(5)?,
                    ..Default::default()
                };
                Ok((detail, r.get::<_, String>(4)?))
            })
            .optional()?;
        let (mut detail, expertise) = found.ok_or_else(|| {
            QueryError::NotFound(format!("commissioner {id} is not known at position {at}"))
        })?;
        detail.expertise = from_json(&expertise)?;
        let filter = PostFilter {
            commissioner_id: Some(id.clone()),
            ..Default::default()
        };
        let totals = posts_and_totals(&tx, at, on_date, &filter, COMMISSIONER_MINUTES, &id)?;
        detail.active_posts = totals.active_posts;
        detail.active_hours_per_month = totals.active_hours;
        detail.service_minutes = totals.service_minutes;
        detail.posts = totals.posts;
        detail.service_by_month = by_month(&tx, COMMISSIONER_MONTHS, &id, at)?;
        detail.on_date = on_date.to_string();
        detail.as_of_position = at;
        Ok(detail)
    }

    /// A workstation with its posts and totals on `on_date`.
    pub fn workstation(
        &self,
        q: &pb::WorkstationQuery,
        today: Date,
    ) -> Result<pb::WorkstationDetail, QueryError> {
        let id = WorkstationId::parse("workstation_id", &q.workstation_id)?.to_string();
        let on_date = parse_date_or("on_date", &q.on_date, today)?;
        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, q.as_of_position)?;
        let found = tx
            .prepare_cached(
                "SELECT name, host_org, host_city, capacity, fields, served_cities, status
                 FROM workstations
                 WHERE workstation_id = :id
                   AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)",
            )?
            .query_row(named_params! {":id": id, ":at": at}, |r| {
                let detail = pb::WorkstationDetail {
                    workstation_id: id.clone(),
                    name: r.get(0)?,
                    host_org: r.get(1)?,
                    host_city: r.get(2)?,
                    capacity: r.get(3)?,
                    status: r.get(6)?,
                    ..Default::default()
                };
                Ok((detail, r.get::<_, String>(4)?, r.get::<_, String>(5)?))
            })
            .optional()?;
        let (mut detail, fields, served_cities) = found.ok_or_else(|| {
            QueryError::NotFound(format!("workstation {id} is not known at position {at}"))
        })?;
        detail.fields = from_json(&fields)?;
        detail.served_cities = from_json(&served_cities)?;
        let filter = PostFilter {
            workstation_id: Some(id.clone()),
            ..Default::default()
        };
        let totals = posts_and_totals(&tx, at, on_date, &filter, WORKSTATION_MINUTES, &id)?;
        detail.active_posts = totals.active_posts;
        detail.active_hours_per_month = totals.active_hours;
        detail.service_minutes = totals.service_minutes;
        detail.posts = totals.posts;
        detail.service_by_month = by_month(&tx, WORKSTATION_MONTHS, &id, at)?;
        detail.on_date = on_date.to_string();
        detail.as_of_position = at;
        Ok(detail)
    }

    /// Posts active on `on_date` and service minutes over
    /// `[from_date, to_date]`, by (commissioner's home city, city served).
    pub fn city_matrix(
        &self,
        q: &pb::CityMatrixQuery,
        today: Date,
    ) -> Result<pb::CityMatrix, QueryError> {
        let on_date = parse_date_or("on_date", &q.on_date, today)?;
        let month_start = on_date.with_day(1).unwrap_or(on_date);
        let from_date = parse_date_or("from_date", &q.from_date, month_start)?;
        let to_date = parse_date_or("to_date", &q.to_date, on_date)?;
        if from_date > to_date {
            return Err(invalid(
                "from_date",
                format!("{from_date} is after to_date {to_date}"),
            ));
        }
        let tx = self.conn.unchecked_transaction()?;
        let at = resolve_position(&tx, q.as_of_position)?;

        let mut cells: BTreeMap<(String, String), pb::CityMatrixCell> = BTreeMap::new();
        let active_sql = format!(
            "SELECT p.home_city, p.serving_city, COUNT(*), SUM(p.hours_per_month)
             FROM posts p WHERE {POST_VISIBLE} AND {STATUS} = {ACTIVE}
             GROUP BY p.home_city, p.serving_city"
        );
        let mut active = tx.prepare_cached(&active_sql)?;
        let mut rows = active.query(named_params! {":at": at, ":on_date": on_date.to_string()})?;
        while let Some(r) = rows.next()? {
            let key: (String, String) = (r.get(0)?, r.get(1)?);
            let cell = cells.entry(key.clone()).or_insert_with(|| new_cell(key));
            cell.active_posts = r.get(2)?;
            cell.hours_per_month = r.get(3)?;
        }
        let mut minutes = tx.prepare_cached(
            "SELECT home_city, beneficiary_city, SUM(minutes) FROM services
             WHERE position <= :at AND date BETWEEN :from AND :to
             GROUP BY home_city, beneficiary_city",
        )?;
        let mut rows = minutes.query(named_params! {
            ":at": at,
            ":from": from_date.to_string(),
            ":to": to_date.to_string(),
        })?;
        while let Some(r) = rows.next()? {
            let key: (String, String) = (r.get(0)?, r.get(1)?);
            let cell = cells.entry(key.clone()).or_insert_with(|| new_cell(key));
            cell.service_minutes = r.get(2)?;
        }
        Ok(pb::CityMatrix {
            cells: cells.into_values().collect(),
            on_date: on_date.to_string(),
            from_date: from_date.to_string(),
            to_date: to_date.to_string(),
            as_of_position: at,
        })
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> QueryError {
    QueryError::InvalidArgument {
        field,
        message: message.into(),
    }
}

fn new_cell((home_city, serving_city): (String, String)) -> pb::CityMatrixCell {
    pb::CityMatrixCell {
        home_city,
        serving_city,
        ..Default::default()
    }
}

/// The page size a query asks for: the default for 0, at most the limit.
fn page_size(asked: u32) -> Result<u32, QueryError> {
    match asked {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n > MAX_PAGE_SIZE => Err(invalid(
            "page_size",
            format!("{n} is more than the limit of {MAX_PAGE_SIZE}"),
        )),
        n => Ok(n),
    }
}

/// The position a query reads at: the asked one, or the checkpoint for 0.
fn resolve_position(conn: &Connection, asked: u64) -> Result<u64, QueryError> {
    let checkpoint = schema::read_checkpoint(conn)?;
    if asked > checkpoint {
        return Err(invalid(
            "as_of_position",
            format!("{asked} is ahead of the views: views are at position {checkpoint}"),
        ));
    }
    Ok(if asked == 0 { checkpoint } else { asked })
}

/// Parses a filter where empty means "any"; keeps the canonical spelling.
fn optional<T: ToString>(
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Result<Option<String>, QueryError> {
    if value.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse(value)?.to_string()))
}

fn status_filter(value: i32) -> Result<Option<i32>, QueryError> {
    match pb::AssignmentStatus::try_from(value) {
        Ok(pb::AssignmentStatus::Unspecified) => Ok(None),
        Ok(status) => Ok(Some(status as i32)),
        Err(_) => Err(invalid(
            "status",
            format!("{value} is not an AssignmentStatus"),
        )),
    }
}

/// Posts active on the date, and their hours.
/// Service minutes recorded through a commissioner's posts up to `:at`.
const COMMISSIONER_MINUTES: &str = "SELECT COALESCE(SUM(minutes), 0) FROM services
     WHERE commissioner_id = :id AND position <= :at";
/// Service minutes recorded through a workstation's posts up to `:at`.
const WORKSTATION_MINUTES: &str = "SELECT COALESCE(SUM(minutes), 0) FROM services
     WHERE workstation_id = :id AND position <= :at";
/// A commissioner's service up to `:at` by month of its date.
const COMMISSIONER_MONTHS: &str = "SELECT substr(date, 1, 7) AS month, SUM(minutes), COUNT(*)
     FROM services WHERE commissioner_id = :id AND position <= :at
     GROUP BY month ORDER BY month";
/// A workstation's service up to `:at` by month of its date.
const WORKSTATION_MONTHS: &str = "SELECT substr(date, 1, 7) AS month, SUM(minutes), COUNT(*)
     FROM services WHERE workstation_id = :id AND position <= :at
     GROUP BY month ORDER BY month";

/// Service by month, from one of the `*_MONTHS` statements.
fn by_month(
    conn: &Connection,
    sql: &str,
    id: &str,
    at: u64,
) -> Result<Vec<pb::MonthlyService>, QueryError> {
    let mut statement = conn.prepare_cached(sql)?;
    let months = statement.query_map(named_params! {":id": id, ":at": at}, |r| {
        Ok(pb::MonthlyService {
            month: r.get(0)?,
            minutes: r.get(1)?,
            records: r.get(2)?,
        })
    })?;
    Ok(months.collect::<Result<_, _>>()?)
}

/// What a detail view shows besides the entity itself.
struct PostsAndTotals {
    posts: Vec<pb::Assignment>,
    active_posts: u32,
    active_hours: u32,
    service_minutes: u64,
}

/// The posts `filter` selects with their totals on `on_date`, and the
/// service minutes `minutes_sql` sums for `id`, all as of `at`.
fn posts_and_totals(
    conn: &Connection,
    at: u64,
    on_date: Date,
    filter: &PostFilter,
    minutes_sql: &str,
    id: &str,
) -> Result<PostsAndTotals, QueryError> {
    let posts = select_assignments(conn, at, on_date, filter)?;
    let (active_posts, active_hours) = active_totals(&posts);
    let service_minutes = conn
        .prepare_cached(minutes_sql)?
        .query_row(named_params! {":id": id, ":at": at}, |r| r.get(0))?;
    Ok(PostsAndTotals {
        posts,
        active_posts,
        active_hours,
        service_minutes,
    })
}

fn active_totals(posts: &[pb::Assignment]) -> (u32, u32) {
    posts
        .iter()
        .filter(|p| p.status == pb::AssignmentStatus::Active as i32)
        .fold((0, 0), |(n, hours), p| {
            (n + 1, hours.saturating_add(p.hours_per_month))
        })
}

/// The versions of posts `p` visible at `:at`.
const POST_VISIBLE: &str = "p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)";

/// A post's status on `:on_date`, as `tepai.v1.AssignmentStatus`. The one
/// definition of status; `end_date` is already the last day of service.
/// A post ended before its start is ENDED, not SCHEDULED, once that day is
/// past: it will never run.
const STATUS: &str = "(CASE
    WHEN :on_date > p.end_date THEN (CASE WHEN p.ended_on IS NULL THEN 4 ELSE 3 END)
    WHEN :on_date < p.start_date THEN 1
    ELSE 2 END)";

/// `AssignmentStatus::Active` as it appears in [`STATUS`].
const ACTIVE: i32 = pb::AssignmentStatus::Active as i32;

const ASSIGNMENT_SELECT: &str = "SELECT p.post_id, p.commissioner_id, c.name, p.home_city,
        p.workstation_id, w.name, w.host_city, p.serving_city, p.cross_city, p.role,
        p.hours_per_month, p.start_date, p.end_date";

const ASSIGNMENT_FROM: &str = "
    FROM posts p
    JOIN commissioners c ON c.commissioner_id = p.commissioner_id
        AND c.valid_from <= :at AND (c.valid_to IS NULL OR c.valid_to > :at)
    JOIN workstations w ON w.workstation_id = p.workstation_id
        AND w.valid_from <= :at AND (w.valid_to IS NULL OR w.valid_to > :at)
    WHERE ";

/// Filters of the post listing; `None` means any. Values are canonical
/// strings as stored.
#[derive(Debug, Default)]
struct PostFilter {
    post_id: Option<String>,
    commissioner_id: Option<String>,
    workstation_id: Option<String>,
    home_city: Option<String>,
    serving_city: Option<String>,
    cross_city_only: bool,
    status: Option<i32>,
    /// Only post ids after this one (the page token's).
    after: Option<String>,
    limit: Option<u32>,
}

/// Posts visible at `at` matching `filter`, with status on `on_date`, in
/// post-id order. The SQL is composed from fixed fragments, one per filter
/// present, so each shape can use its index; every value is bound.
fn select_assignments(
    conn: &Connection,
    at: u64,
    on_date: Date,
    filter: &PostFilter,
) -> Result<Vec<pb::Assignment>, QueryError> {
    let on_date = on_date.to_string();
    let mut sql = format!("{ASSIGNMENT_SELECT}, {STATUS}{ASSIGNMENT_FROM}{POST_VISIBLE}");
    let mut args: Vec<(&str, &dyn ToSql)> = vec![(":at", &at), (":on_date", &on_date)];
    let clauses: [(&str, &str, Option<&String>); 6] = [
        (
            " AND p.post_id = :post_id",
            ":post_id",
            filter.post_id.as_ref(),
        ),
        (
            " AND p.commissioner_id = :commissioner_id",
            ":commissioner_id",
            filter.commissioner_id.as_ref(),
        ),
        (
            " AND p.workstation_id = :workstation_id",
            ":workstation_id",
            filter.workstation_id.as_ref(),
        ),
        (
            " AND p.home_city = :home_city",
            ":home_city",
            filter.home_city.as_ref(),
        ),
        (
            " AND p.serving_city = :serving_city",
            ":serving_city",
            filter.serving_city.as_ref(),
        ),
        (" AND p.post_id > :after", ":after", filter.after.as_ref()),
    ];
    for (clause, name, value) in clauses {
        if let Some(value) = value {
            sql.push_str(clause);
            args.push((name, value));
        }
    }
    if filter.cross_city_only {
        sql.push_str(" AND p.cross_city = 1");
    }
    if let Some(status) = &filter.status {
        sql.push_str(" AND ");
        sql.push_str(STATUS);
        sql.push_str(" = :status");
        args.push((":status", status));
    }
    sql.push_str(" ORDER BY p.post_id");
    if let Some(limit) = &filter.limit {
        sql.push_str(" LIMIT :limit");
        args.push((":limit", limit));
    }
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args.as_slice(), |r| {
        Ok(pb::Assignment {
            post_id: r.get(0)?,
            commissioner_id: r.get(1)?,
            commissioner_name: r.get(2)?,
            home_city: r.get(3)?,
            workstation_id: r.get(4)?,
            workstation_name: r.get(5)?,
            host_city: r.get(6)?,
            serving_city: r.get(7)?,
            cross_city: r.get(8)?,
            role: r.get(9)?,
            hours_per_month: r.get(10)?,
            start_date: r.get(11)?,
            end_date: r.get(12)?,
            status: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The opaque page token: the position the listing is read at and the last
/// key returned (a post or demand id), hex-encoded so callers do not parse
/// it.
struct PageToken {
    position: u64,
    key: String,
}

impl PageToken {
    fn encode(&self) -> String {
        format!("{}:{}", self.position, self.key)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The token of `text` (none when empty) and the position to read at:
    /// the token's, which `as_of_position` may repeat but not contradict.
    /// `key` parses the token's key into its canonical spelling.
    fn resume(
        text: &str,
        as_of_position: u64,
        key: impl FnOnce(&str) -> Result<String, FieldError>,
    ) -> Result<(Option<Self>, u64), QueryError> {
        if text.is_empty() {
            return Ok((None, as_of_position));
        }
        let token = Self::decode(text, key)?;
        if as_of_position != 0 && as_of_position != token.position {
            return Err(invalid(
                "page_token",
                format!(
                    "belongs to a listing as of position {}, not {}",
                    token.position, as_of_position
                ),
            ));
        }
        let position = token.position;
        Ok((Some(token), position))
    }

    fn decode(
        token: &str,
        key: impl FnOnce(&str) -> Result<String, FieldError>,
    ) -> Result<Self, QueryError> {
        let bad = || invalid("page_token", "is not a token from a previous page");
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (position, found) = text.split_once(':').ok_or_else(bad)?;
        let position = position.parse().map_err(|_| bad())?;
        let key = key(found).map_err(|_| bad())?;
        Ok(Self { position, key })
    }
}
