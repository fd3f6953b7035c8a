//! Versioned migrations of the views file, and the checkpoint row.
//!
//! As in the event store, `PRAGMA user_version` holds the schema version and
//! each migration runs in its own transaction with the version bump. Views
//! can always be rebuilt from the store, but a migration still beats schema
//! created ad hoc: readers can tell which layout they are looking at.
//!
//! The entity tables are temporal: a row is one version of an entity,
//! current from global position `valid_from` until the event at `valid_to`
//! replaced it (NULL: still current). The view as of position P is the rows
//! with `valid_from <= P AND (valid_to IS NULL OR valid_to > P)`. Service
//! records are insert-only and carry their own position.

use rusqlite::{Connection, TransactionBehavior};

use super::ProjectionError;

/// Migration 1: checkpoint, temporal entity tables, service records.
const V1: &str = "
CREATE TABLE checkpoint (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO checkpoint (id, position) VALUES (1, 0);

CREATE TABLE commissioners (
    commissioner_id TEXT    NOT NULL,
    valid_from      INTEGER NOT NULL,
    valid_to        INTEGER CHECK (valid_to IS NULL OR valid_to > valid_from),
    name            TEXT    NOT NULL,
    home_city       TEXT    NOT NULL,
    employer        TEXT    NOT NULL,
    kind            INTEGER NOT NULL,
    expertise       TEXT    NOT NULL, -- JSON array of strings
    status          INTEGER NOT NULL, -- tepai.v1.CommissionerStatus
    PRIMARY KEY (commissioner_id, valid_from)
) WITHOUT ROWID;
CREATE UNIQUE INDEX commissioners_current ON commissioners (commissioner_id) WHERE valid_to IS NULL;

CREATE TABLE workstations (
    workstation_id TEXT    NOT NULL,
    valid_from     INTEGER NOT NULL,
    valid_to       INTEGER CHECK (valid_to IS NULL OR valid_to > valid_from),
    name           TEXT    NOT NULL,
    host_org       TEXT    NOT NULL,
    host_city      TEXT    NOT NULL,
    capacity       INTEGER NOT NULL,
    fields         TEXT    NOT NULL, -- JSON array of strings
    served_cities  TEXT    NOT NULL, -- JSON array of city codes, sorted
    status         INTEGER NOT NULL, -- tepai.v1.WorkstationStatus
    PRIMARY KEY (workstation_id, valid_from)
) WITHOUT ROWID;
CREATE UNIQUE INDEX workstations_current ON workstations (workstation_id) WHERE valid_to IS NULL;

-- home_city is the commissioner's, copied at appointment: it never changes,
-- and having it here lets the home-city and cross-city filters use an index
-- without a join.
CREATE TABLE posts (
    post_id         TEXT    NOT NULL,
    valid_from      INTEGER NOT NULL,
    valid_to        INTEGER CHECK (valid_to IS NULL OR valid_to > valid_from),
    commissioner_id TEXT    NOT NULL,
    workstation_id  TEXT    NOT NULL,
    home_city       TEXT    NOT NULL,
    serving_city    TEXT    NOT NULL,
    cross_city      INTEGER NOT NULL,
    role            TEXT    NOT NULL,
    hours_per_month INTEGER NOT NULL,
    start_date      TEXT    NOT NULL,
    term_end        TEXT    NOT NULL,
    ended_on        TEXT,             -- set by PostEnded
    end_date        TEXT    NOT NULL, -- last day of service: min(term_end, ended_on)
    PRIMARY KEY (post_id, valid_from)
) WITHOUT ROWID;
CREATE UNIQUE INDEX posts_current ON posts (post_id) WHERE valid_to IS NULL;
CREATE INDEX posts_commissioner ON posts (commissioner_id, post_id);
CREATE INDEX posts_workstation ON posts (workstation_id, post_id);
CREATE INDEX posts_home_city ON posts (home_city, post_id);
CREATE INDEX posts_serving_city ON posts (serving_city, post_id);

-- Commissioner, workstation and home city are copied from the post (none of
-- them ever changes) so totals and the city matrix need no join.
CREATE TABLE services (
    service_id       TEXT    PRIMARY KEY,
    position         INTEGER NOT NULL,
    post_id          TEXT    NOT NULL,
    commissioner_id  TEXT    NOT NULL,
    workstation_id   TEXT    NOT NULL,
    home_city        TEXT    NOT NULL,
    date             TEXT    NOT NULL,
    minutes          INTEGER NOT NULL,
    beneficiary      TEXT    NOT NULL,
    beneficiary_city TEXT    NOT NULL,
    summary          TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX services_commissioner ON services (commissioner_id, position);
CREATE INDEX services_workstation ON services (workstation_id, position);
CREATE INDEX services_date ON services (date);
";

/// Migration 2: demands (temporal, like the entities of V1) and the service
/// recorded for each. The link from a service record to its demand is a
/// table of its own rather than a column of `services`, so the Part 1
/// tables keep the rows (and digests) they always had.
const V2: &str = "
CREATE TABLE demands (
    demand_id         TEXT    NOT NULL,
    valid_from        INTEGER NOT NULL,
    valid_to          INTEGER CHECK (valid_to IS NULL OR valid_to > valid_from),
    title             TEXT    NOT NULL,
    enterprise        TEXT    NOT NULL,
    city              TEXT    NOT NULL,
    expertise         TEXT    NOT NULL, -- JSON array of strings
    hours_per_month   INTEGER NOT NULL,
    start_date        TEXT    NOT NULL,
    end_date          TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    status            INTEGER NOT NULL, -- tepai.v1.DemandStatus
    post_ids          TEXT    NOT NULL, -- JSON array, in dispatch order
    outcome           TEXT    NOT NULL,
    satisfaction      INTEGER NOT NULL, -- 1 to 5 once resolved, else 0
    resolved_on       TEXT,
    withdrawal_reason TEXT    NOT NULL,
    PRIMARY KEY (demand_id, valid_from)
) WITHOUT ROWID;
CREATE UNIQUE INDEX demands_current ON demands (demand_id) WHERE valid_to IS NULL;
CREATE INDEX demands_city ON demands (city, demand_id);
-- The candidates view's seat count reads every post of the workstations
-- serving a city whose term meets the period: from this index alone.
CREATE INDEX posts_workstation_terms ON posts (workstation_id, start_date, end_date, valid_from, valid_to);
-- The seat index begins with V1's posts_workstation column and serves its
-- lookups too (a workstation's listing sorts its posts by id itself): one
-- index fewer to write per post version, and to sort in a rebuild. V1's
-- posts_commissioner stays: without it, a commissioner's listing paged by
-- post id is planned as a walk of every post in id order.
DROP INDEX posts_workstation;

CREATE TABLE demand_services (
    demand_id  TEXT    NOT NULL,
    service_id TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    minutes    INTEGER NOT NULL,
    PRIMARY KEY (demand_id, service_id)
) WITHOUT ROWID;

-- The candidates view's tag match: one row per tag of each version of a
-- commissioner (the version is the commissioners row with that valid_from),
-- so a wanted tag finds its few thousand holders without reading every
-- commissioner's JSON list.
CREATE TABLE commissioner_tags (
    tag             TEXT    NOT NULL,
    commissioner_id TEXT    NOT NULL,
    valid_from      INTEGER NOT NULL,
    PRIMARY KEY (tag, commissioner_id, valid_from)
) WITHOUT ROWID;

-- The resolved demands each commissioner served (through any post of theirs
-- the demand was dispatched to), from the position it was resolved: the
-- candidates' average satisfaction without walking every demand.
CREATE TABLE served_demands (
    commissioner_id TEXT    NOT NULL,
    demand_id       TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    satisfaction    INTEGER NOT NULL,
    PRIMARY KEY (commissioner_id, demand_id)
) WITHOUT ROWID;
";

/// All migrations in order; the schema version after all of them is
/// `MIGRATIONS.len()`. Append-only: never edit a released entry.
const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build writes and reads.
pub(super) fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The schema version recorded in the file (0 for a new file).
pub(super) fn current_version(conn: &Connection) -> Result<i64, ProjectionError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the file up to [`latest_version`], one transaction per migration.
/// Refuses a file written by a newer build.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), ProjectionError> {
    let known = latest_version();
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read under the write lock: another process may have migrated first.
        let found = current_version(&tx)?;
        if found > known {
            return Err(ProjectionError::SchemaVersion { found, known });
        }
        if found >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "applied views migration");
    }
    Ok(())
}

/// The secondary indexes, each as (name, drop, create) with the create text
/// exactly as [`V1`] or [`V2`] has it (a test compares them with a migrated file). A
/// rebuild into a new file drops them before loading and creates them at
/// the end: one sort per index is cheaper than inserting every row into
/// each of them as it comes.
const SECONDARY_INDEXES: [(&str, &str, &str); 12] = [
    (
        "commissioners_current",
        "DROP INDEX IF EXISTS commissioners_current",
        "CREATE UNIQUE INDEX commissioners_current ON commissioners (commissioner_id) WHERE valid_to IS NULL",
    ),
    (
        "workstations_current",
        "DROP INDEX IF EXISTS workstations_current",
        "CREATE UNIQUE INDEX workstations_current ON workstations (workstation_id) WHERE valid_to IS NULL",
    ),
    (
        "posts_current",
        "DROP INDEX IF EXISTS posts_current",
        "CREATE UNIQUE INDEX posts_current ON posts (post_id) WHERE valid_to IS NULL",
    ),
    (
        "posts_commissioner",
        "DROP INDEX IF EXISTS posts_commissioner",
        "CREATE INDEX posts_commissioner ON posts (commissioner_id, post_id)",
    ),
    (
        "posts_home_city",
        "DROP INDEX IF EXISTS posts_home_city",
        "CREATE INDEX posts_home_city ON posts (home_city, post_id)",
    ),
    (
        "posts_serving_city",
        "DROP INDEX IF EXISTS posts_serving_city",
        "CREATE INDEX posts_serving_city ON posts (serving_city, post_id)",
    ),
    (
        "services_commissioner",
        "DROP INDEX IF EXISTS services_commissioner",
        "CREATE INDEX services_commissioner ON services (commissioner_id, position)",
    ),
    (
        "services_workstation",
        "DROP INDEX IF EXISTS services_workstation",
        "CREATE INDEX services_workstation ON services (workstation_id, position)",
    ),
    (
        "services_date",
        "DROP INDEX IF EXISTS services_date",
        "CREATE INDEX services_date ON services (date)",
    ),
    (
        "demands_current",
        "DROP INDEX IF EXISTS demands_current",
        "CREATE UNIQUE INDEX demands_current ON demands (demand_id) WHERE valid_to IS NULL",
    ),
    (
        "demands_city",
        "DROP INDEX IF EXISTS demands_city",
        "CREATE INDEX demands_city ON demands (city, demand_id)",
    ),
    (
        "posts_workstation_terms",
        "DROP INDEX IF EXISTS posts_workstation_terms",
        "CREATE INDEX posts_workstation_terms ON posts (workstation_id, start_date, end_date, valid_from, valid_to)",
    ),
];

/// Drops the secondary indexes, for a bulk load; [`create_secondary_indexes`]
/// puts them back.
pub(super) fn drop_secondary_indexes(conn: &mut Connection) -> Result<(), ProjectionError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (_, drop, _) in SECONDARY_INDEXES {
        tx.execute(drop, [])?;
    }
    tx.commit()?;
    Ok(())
}

/// Creates whichever secondary index is missing.
pub(super) fn create_secondary_indexes(conn: &mut Connection) -> Result<(), ProjectionError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (name, _, create) in SECONDARY_INDEXES {
        let present: bool = tx.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [name],
            |row| row.get(0),
        )?;
        if !present {
            tx.execute(create, [])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The last global position applied to the views.
pub(super) fn read_checkpoint(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT position FROM checkpoint WHERE id = 1", [], |row| {
        row.get(0)
    })
}

/// Records `position` as the last applied; call inside the batch's transaction.
pub(super) fn write_checkpoint(conn: &Connection, position: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE checkpoint SET position = ?1 WHERE id = 1")?
        .execute([position])?;
    Ok(())
}
