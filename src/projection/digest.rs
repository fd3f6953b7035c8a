//! Checksums of the views, table by table, to tell whether live views equal
//! a fresh rebuild, and to name a differing row when they do not. Rows are
//! compared in the order of all their columns, so the physical order of
//! insertion (rowids, batch sizes) does not matter.

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// The checksum of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    /// Table name.
    pub table: String,
    /// Rows in it.
    pub rows: u64,
    /// SHA-256 over its rows in column order.
    pub digest: [u8; 32],
}

/// Table names come from the views' own schema, never from input; they are
/// still checked before being spliced into SQL, where names cannot be bound.
fn safe_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    ok.then_some(name)
}

fn tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    names
        .filter_map(|name| match name {
            Ok(name) => safe_name(&name).map(|n| Ok(n.to_owned())),
            Err(error) => Some(Err(error)),
        })
        .collect()
}

fn ordered_rows_sql(conn: &Connection, table: &str) -> rusqlite::Result<String> {
    let columns: usize = conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1)",
        [table],
        |row| row.get(0),
    )?;
    let order: Vec<String> = (1..=columns.max(1)).map(|i| i.to_string()).collect();
    Ok(format!(
        "SELECT * FROM {table} ORDER BY {}",
        order.join(", ")
    ))
}

fn encode(value: ValueRef<'_>, out: &mut Vec<u8>) {
    match value {
        ValueRef::Null => out.push(0),
        ValueRef::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_be_bytes());
        }
        ValueRef::Real(f) => {
            out.push(2);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            out.push(if matches!(value, ValueRef::Text(_)) {
                3
            } else {
                4
            });
            out.extend_from_slice(&(t.len() as u64).to_be_bytes());
            out.extend_from_slice(t);
        }
    }
}

fn render(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

/// Every row of `table` in column order, each encoded and rendered.
fn rows(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(Vec<u8>, String)>> {
    let mut statement = conn.prepare(&ordered_rows_sql(conn, table)?)?;
    let columns = statement.column_count();
    let names: Vec<String> = statement
        .column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut out = Vec::new();
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut bytes = Vec::new();
        let mut shown = Vec::with_capacity(columns);
        for (i, name) in names.iter().enumerate() {
            let value = row.get_ref(i)?;
            encode(value, &mut bytes);
            shown.push(format!("{name}={}", render(value)));
        }
        out.push((bytes, shown.join(", ")));
    }
    Ok(out)
}

/// Digests of every table of the views behind `conn`.
pub fn digests(conn: &Connection) -> rusqlite::Result<Vec<TableDigest>> {
    let mut out = Vec::new();
    for table in tables(conn)? {
        let mut hasher = Sha256::new();
        let all = rows(conn, &table)?;
        for (bytes, _) in &all {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        out.push(TableDigest {
            table,
            rows: all.len() as u64,
            digest: hasher.finalize().into(),
        });
    }
    Ok(out)
}

/// The first row of `table` where `live` and `fresh` differ, described for
/// an operator; `None` when the table is equal.
pub fn first_difference(
    live: &Connection,
    fresh: &Connection,
    table: &str,
) -> rusqlite::Result<Option<String>> {
    let Some(table) = safe_name(table) else {
        return Ok(Some(format!("'{table}' is not a views table")));
    };
    let (a, b) = (rows(live, table)?, rows(fresh, table)?);
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x.0 == y.0 => {}
            (Some(x), Some(y)) => {
                return Ok(Some(format!(
                    "table {table}, row {}: live has ({}), a rebuild has ({})",
                    i + 1,
                    x.1,
                    y.1
                )))
            }
            (Some(x), None) => {
                return Ok(Some(format!(
                    "table {table}: live has an extra row ({})",
                    x.1
                )))
            }
            (None, Some(y)) => {
                return Ok(Some(format!("table {table}: live lacks the row ({})", y.1)))
            }
            (None, None) => {}
        }
    }
    Ok(None)
}
