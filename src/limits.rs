//! Every bound on what tepai takes in, in one place. `docs/limits.md` has
//! the table; this module is its source.
//!
//! Two kinds of limits:
//!
//! - **Operational** ones, in [`Limits`]: how many bytes a request may
//!   carry, how much work is in flight, how large a page is. An operator
//!   tunes them per deployment (flag or environment variable), so they
//!   travel through the node's configuration.
//! - **Contract** ones, compile-time constants: the lengths of text fields
//!   ([`crate::domain::limits`]), actor and correlation ids
//!   ([`crate::wire::MAX_ACTOR_LEN`], [`crate::wire::MAX_CORRELATION_LEN`]),
//!   numeric ranges and dates ([`crate::domain`]), the length of one HTTP
//!   parameter ([`MAX_HTTP_PARAM_CHARS`]) and the default page
//!   ([`crate::projection::DEFAULT_PAGE_SIZE`]). They decide which
//!   commands are valid, and a command valid on one node must be valid on
//!   every node and on a rebuild, so they are not configurable.
//!
//! nats-server bounds every message first with its own `max_payload`
//! (1 MiB by default): a publisher cannot send more, whatever tepai says.
//! tepai's byte limits sit below it, so a request between the two is
//! answered `INVALID_ARGUMENT` instead of being refused by the server.

use clap::builder::RangedU64ValueParser;

/// Default of [`Limits::max_envelope_bytes`]. A valid command is well under
/// 16 KiB even with every text field at its limit in 4-byte characters.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Default of [`Limits::max_commands_in_flight`].
pub const DEFAULT_MAX_COMMANDS_IN_FLIGHT: usize = 4096;
/// Default of [`Limits::max_query_bytes`]. The largest valid query (an
/// assignments query with every filter and a page token) is under 1 KiB.
pub const DEFAULT_MAX_QUERY_BYTES: usize = 16 * 1024;
/// Default of [`Limits::max_queries_in_flight`].
pub const DEFAULT_MAX_QUERIES_IN_FLIGHT: usize = 64;
/// Default of [`Limits::max_page_size`]: the views' own ceiling.
pub const DEFAULT_MAX_PAGE_SIZE: u32 = crate::projection::MAX_PAGE_SIZE;
/// Most commands in one `CommandBatch` (SPEC Part 2, "Bulk submission"): a
/// contract limit, the same on every node, so a producer can size its
/// batches without asking.
pub const MAX_BATCH_COMMANDS: usize = 1000;
/// Default of [`Limits::max_batch_bytes`]: nats-server's default
/// `max_payload`, so a default node takes every batch a default server
/// delivers.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Longest value of one HTTP query parameter or path id, in characters.
/// No valid value comes near it (a page token is about 120), so it only
/// stops garbage early and keeps error messages short.
pub const MAX_HTTP_PARAM_CHARS: usize = 256;

/// Operational limits, configurable by flag or environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct Limits {
    /// Largest command envelope decoded, in bytes; a larger one is answered
    /// INVALID_ARGUMENT / REQUEST_TOO_LARGE without being decoded. At least
    /// 16 KiB so every valid command fits; above nats-server's max_payload
    /// it has no effect.
    #[arg(
        long,
        env = "TEPAI_MAX_ENVELOPE_BYTES",
        default_value_t = DEFAULT_MAX_ENVELOPE_BYTES,
        value_parser = RangedU64ValueParser::<usize>::new().range(16 * 1024..=64 * 1024 * 1024)
    )]
    pub max_envelope_bytes: usize,
    /// Largest command batch decoded, in bytes; a larger one is refused
    /// whole, INVALID_ARGUMENT / BATCH_TOO_LARGE, before anything in it is
    /// decided. The command node refuses to start when it is above the NATS
    /// server's max_payload, since such a batch could never arrive.
    #[arg(
        long,
        env = "TEPAI_MAX_BATCH_BYTES",
        default_value_t = DEFAULT_MAX_BATCH_BYTES,
        value_parser = RangedU64ValueParser::<usize>::new().range(64 * 1024..=64 * 1024 * 1024)
    )]
    pub max_batch_bytes: usize,
    /// Commands being decided at once; beyond it the command service stops
    /// reading from NATS until one is answered.
    #[arg(
        long,
        env = "TEPAI_MAX_COMMANDS_IN_FLIGHT",
        default_value_t = DEFAULT_MAX_COMMANDS_IN_FLIGHT,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
    )]
    pub max_commands_in_flight: usize,
    /// Largest query request decoded on NATS, in bytes; a larger one is a
    /// 400 error.
    #[arg(
        long,
        env = "TEPAI_MAX_QUERY_BYTES",
        default_value_t = DEFAULT_MAX_QUERY_BYTES,
        value_parser = RangedU64ValueParser::<usize>::new().range(1024..=64 * 1024 * 1024)
    )]
    pub max_query_bytes: usize,
    /// Queries answered at once, NATS and HTTP together (each holds a
    /// SQLite connection on a blocking thread). NATS requests beyond it
    /// wait; HTTP requests beyond it get 503 UNAVAILABLE at once.
    #[arg(
        long,
        env = "TEPAI_MAX_QUERIES_IN_FLIGHT",
        default_value_t = DEFAULT_MAX_QUERIES_IN_FLIGHT,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000)
    )]
    pub max_queries_in_flight: usize,
    /// Largest page of assignments a query may ask for; more is
    /// INVALID_ARGUMENT. At most the views' ceiling of 500.
    #[arg(
        long,
        env = "TEPAI_MAX_PAGE_SIZE",
        default_value_t = DEFAULT_MAX_PAGE_SIZE,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(DEFAULT_MAX_PAGE_SIZE))
    )]
    pub max_page_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_commands_in_flight: DEFAULT_MAX_COMMANDS_IN_FLIGHT,
            max_query_bytes: DEFAULT_MAX_QUERY_BYTES,
            max_queries_in_flight: DEFAULT_MAX_QUERIES_IN_FLIGHT,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        limits: Limits,
    }

    #[test]
    fn the_flags_default_to_the_constants() {
        let cli = Cli::try_parse_from(["tepai"]).expect("no flags parse");
        assert_eq!(cli.limits, Limits::default());
    }

    #[test]
    fn flags_set_limits_within_their_ranges_and_refuse_others() {
        let cli = Cli::try_parse_from([
            "tepai",
            "--max-envelope-bytes",
            "20000",
            "--max-commands-in-flight",
            "8",
            "--max-page-size",
            "100",
        ])
        .expect("in range");
        assert_eq!(cli.limits.max_envelope_bytes, 20_000);
        assert_eq!(cli.limits.max_commands_in_flight, 8);
        assert_eq!(cli.limits.max_page_size, 100);
        for bad in [
            ["--max-envelope-bytes", "100"],
            ["--max-commands-in-flight", "0"],
            ["--max-batch-bytes", "1000"],
            ["--max-page-size", "501"],
            ["--max-queries-in-flight", "-1"],
        ] {
            assert!(
                Cli::try_parse_from(["tepai", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }
}
