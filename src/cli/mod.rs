//! The client side of the `tepai` binary: `tepai send` (the producer CLI,
//! one command per call over `tepai.cmd.submit`) and `tepai query` (the
//! views over `tepai.query.<view>`). Both speak the same protobuf as any
//! other producer or dashboard, so they double as a reference client.
//!
//! Exit codes, for scripts: 0 when the answer is what was asked for
//! (accepted, or a view), 2 when tepai answered "no" (a rejection, or a
//! query error 400/404), 1 when there was no usable answer (NATS not
//! reachable, a timeout, a broken reply).
//!
//! The demo can print its views with [`query::print_assignments_table`]
//! and [`query::print_city_matrix`].

pub mod query;
pub mod send;
pub mod send_file;

use std::fmt::Write as _;
use std::time::Duration;

use async_nats::RequestErrorKind;

use crate::domain::CityCode;

/// How long a request waits for its answer. Long enough for a group commit
/// under load, short enough that a person at a terminal is not left
/// wondering.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How the answer is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The proto3 JSON mapping of the reply (protobuf field names), for
    /// scripts and `jq`.
    Json,
}

/// Sends `payload` on `subject` and waits [`REQUEST_TIMEOUT`] for the reply.
async fn request(
    client: &async_nats::Client,
    subject: &str,
    payload: Vec<u8>,
) -> Result<async_nats::Message, async_nats::RequestError> {
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(REQUEST_TIMEOUT));
    client.send_request(subject.to_owned(), request).await
}

/// When a failed request means "nobody is serving this subject" (as
/// opposed to a broken connection or a bad request), says so in words.
fn unanswered(kind: RequestErrorKind, subject: &str) -> Option<String> {
    match kind {
        RequestErrorKind::TimedOut => Some(format!(
            "no answer on {subject} within {}s",
            REQUEST_TIMEOUT.as_secs()
        )),
        RequestErrorKind::NoResponders => Some(format!("nothing is listening on {subject}")),
        _ => None,
    }
}

/// Prints `value` as pretty proto3 JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

/// A city code with its name where tepai knows it: `150100 呼和浩特`.
fn city_label(code: &str) -> String {
    match city_name(code) {
        Some(name) => format!("{code} {name}"),
        None => code.to_owned(),
    }
}

/// The city's name, or its code when the name is unknown (or the code is
/// not one), so a table cell is never empty for a set city.
fn city_short(code: &str) -> String {
    city_name(code).map_or_else(|| code.to_owned(), str::to_owned)
}

fn city_name(code: &str) -> Option<&'static str> {
    CityCode::parse("city", code).ok().and_then(CityCode::name)
}

/// Columns a string takes in a terminal: CJK ideographs, kana, hangul and
/// fullwidth forms take two, everything else one. Enough for the names
/// tepai shows (Chinese names with fullwidth brackets, ASCII ids and
/// numbers) without a Unicode width table.
pub fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let wide = matches!(
        u32::from(c),
        0x1100..=0x115F        // Hangul Jamo
        | 0x2E80..=0x303E      // CJK radicals, symbols and punctuation (、。「」)
        | 0x3041..=0x33FF      // kana, CJK compatibility
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xA000..=0xA4CF      // Yi
        | 0xAC00..=0xD7A3      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFE30..=0xFE4F      // CJK compatibility forms
        | 0xFF00..=0xFF60      // fullwidth forms (（）, ：)
        | 0xFFE0..=0xFFE6      // fullwidth signs
        | 0x20000..=0x3FFFD // CJK extensions B and later
    );
    if wide {
        2
    } else if c.is_control() {
        0
    } else {
        1
    }
}

/// Which side of its column a cell sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// A plain text table: a header row and aligned columns two spaces apart,
/// padded by display width so Chinese names line up.
#[derive(Debug, Clone)]
struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles, all left-aligned.
    fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            align: vec![Align::Left; header.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the given columns (numbers read best that way).
    fn right(mut self, columns: &[usize]) -> Self {
        for &column in columns {
            if let Some(align) = self.align.get_mut(column) {
                *align = Align::Right;
            }
        }
        self
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines, without trailing spaces.
    fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(display_width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(display_width(cell));
                let align = self.align.get(i).copied().unwrap_or(Align::Left);
                if align == Align::Right {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_characters_and_fullwidth_brackets_count_as_two_columns() {
        let cases = [
            ("", 0),
            ("abc", 3),
            ("150100", 6),
            ("陈立新", 6),
            ("包头", 4),
            ("蒙草生态环境（集团）", 20),
            ("呼和浩特 150100", 15),
            ("2026-01-01", 10),
            ("a\tb", 2),
        ];
        for (text, width) in cases {
            assert_eq!(display_width(text), width, "{text:?}");
        }
    }

    #[test]
    fn table_columns_line_up_by_display_width() {
        let mut table = Table::new(&["name", "city", "h/mo"]).right(&[2]);
        table.row(vec!["陈立新".into(), "呼和浩特".into(), "30".into()]);
        table.row(vec!["Zhao".into(), "包头".into(), "5".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "name    city      h/mo",
                "陈立新  呼和浩特    30",
                "Zhao    包头         5",
            ]
        );
        // Every line ends at the same terminal column.
        let widths: Vec<usize> = lines.iter().map(|l| display_width(l)).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{widths:?}");
    }

    #[test]
    fn cities_are_labelled_with_their_names_when_known() {
        assert_eq!(city_label("150100"), "150100 呼和浩特");
        assert_eq!(city_label("150900"), "150900 乌兰察布");
        assert_eq!(city_label("150300"), "150300");
        assert_eq!(city_short("150200"), "包头");
        assert_eq!(city_short("garbage"), "garbage");
    }
}
