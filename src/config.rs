//! Configuration, by flag or environment variable (the flag wins), with the
//! defaults of SPEC.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::domain::{AssessmentPolicy, CityCode, Policy};

/// How to reach NATS.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsOptions {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "TEPAI_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NATS credentials file (JWT + nkey seed).
    #[arg(long, env = "TEPAI_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// NATS token. Never logged.
    #[arg(long, env = "TEPAI_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// NATS user (with --nats-password).
    #[arg(long, env = "TEPAI_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password. Never logged.
    #[arg(long, env = "TEPAI_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// CA certificate (PEM) to verify the NATS server; turns TLS on.
    #[arg(long, env = "TEPAI_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, env = "TEPAI_NATS_TLS_CERT", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, env = "TEPAI_NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
    /// Subject prefix of this connection's reply inboxes (default
    /// `_INBOX`). NATS permissions can then let a user receive only its
    /// own replies, e.g. `_INBOX.dashboard.>`.
    #[arg(long, env = "TEPAI_NATS_INBOX_PREFIX")]
    pub nats_inbox_prefix: Option<String>,
}

impl NatsOptions {
    /// Plain connection options: a URL, no credentials or TLS.
    pub fn plain(url: impl Into<String>) -> Self {
        Self {
            nats_url: url.into(),
            nats_creds: None,
            nats_token: None,
            nats_user: None,
            nats_password: None,
            nats_tls_ca: None,
            nats_tls_cert: None,
            nats_tls_key: None,
            nats_inbox_prefix: None,
        }
    }
}

/// Authorization on NATS (docs/authorization.md).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct AuthOptions {
    /// Commands go on `tepai.cmd.<actor>.submit`; the command service takes
    /// the actor from the subject (never the envelope) and refuses what that
    /// actor may not do with UNAUTHORIZED. Off: `tepai.cmd.submit`, the
    /// envelope's actor recorded as given.
    #[arg(
        long,
        env = "TEPAI_AUTHORIZATION",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub authorization: bool,
}

/// The region and the rule limits.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyOptions {
    /// City codes of the region, comma-separated.
    #[arg(
        long,
        env = "TEPAI_CITIES",
        default_value = "150100,150200",
        value_delimiter = ','
    )]
    pub cities: Vec<String>,
    /// Posts a commissioner may hold on any one day.
    #[arg(long, env = "TEPAI_MAX_POSTS", default_value_t = 3)]
    pub max_posts: u32,
    /// Hours per month a commissioner's posts may add up to on any one day.
    #[arg(long, env = "TEPAI_MAX_HOURS", default_value_t = 80)]
    pub max_hours: u32,
    /// Longest term of a post, in months.
    #[arg(long, env = "TEPAI_MAX_TERM_MONTHS", default_value_t = 36)]
    pub max_term_months: u32,
}

impl PolicyOptions {
    /// The domain policy, or what is wrong with the options.
    pub fn policy(&self) -> Result<Policy, String> {
        let mut region = std::collections::BTreeSet::new();
        for city in &self.cities {
            let city = CityCode::parse("cities", city.trim()).map_err(|e| e.to_string())?;
            region.insert(city);
        }
        if region.is_empty() {
            return Err("cities: name at least one city code".into());
        }
        if self.max_posts == 0 || self.max_hours == 0 || self.max_term_months == 0 {
            return Err("policy limits must be at least 1".into());
        }
        Ok(Policy {
            region,
            max_posts_per_commissioner: self.max_posts,
            max_hours_per_month: self.max_hours,
            max_term_months: self.max_term_months,
        })
    }
}

/// The annual assessment's policy (docs/assessment.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AssessmentOptions {
    /// TOML file of the assessment's points, caps and grade thresholds;
    /// every key is optional, with the defaults of docs/assessment.md.
    /// Checked at start: a bad file stops the node, naming the key.
    #[arg(long, env = "TEPAI_ASSESSMENT_POLICY")]
    pub assessment_policy: Option<PathBuf>,
}

impl AssessmentOptions {
    /// The policy in the file, or the defaults when none is named; the
    /// error names the file and the key.
    pub fn policy(&self) -> Result<AssessmentPolicy, String> {
        let Some(path) = &self.assessment_policy else {
            return Ok(AssessmentPolicy::default());
        };
        let at = |problem: String| format!("assessment policy {}: {problem}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
        parse_assessment_policy(&text).map_err(at)
    }
}

/// The assessment policy a TOML text describes, validated. Unknown keys
/// are refused (a misspelt key would otherwise silently keep its default).
pub fn parse_assessment_policy(text: &str) -> Result<AssessmentPolicy, String> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        match e.span().map(|span| line_of(text, span.start)) {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        }
    })?;
    let policy = AssessmentPolicy {
        per_service_day: file.points.per_service_day,
        service_day_cap: file.points.service_day_cap,
        per_resolved_demand: file.points.per_resolved_demand,
        resolved_demand_cap: file.points.resolved_demand_cap,
        per_satisfaction_point: file.points.per_satisfaction_point,
        satisfaction_cap: file.points.satisfaction_cap,
        excellent: file.grades.excellent,
        good: file.grades.good,
        pass: file.grades.pass,
        pass_service_days: file.grades.pass_service_days,
    };
    policy.validate().map_err(|e| e.to_string())?;
    Ok(policy)
}

/// Where a node keeps its state and serves HTTP.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeOptions {
    /// Directory for all of the node's state.
    #[arg(long, env = "TEPAI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address of the HTTP query service.
    #[arg(long, env = "TEPAI_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
}

impl NodeOptions {
    /// The event store file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }

    /// The relay's checkpoint file.
    pub fn relay_path(&self) -> PathBuf {
        self.data_dir.join("relay.db")
    }

    /// The directory of the views' generations.
    pub fn views_dir(&self) -> crate::projection::ViewsDir {
        crate::projection::ViewsDir::new(&self.data_dir)
    }
}

/// Running on a NATS cluster (docs/cluster.md).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterOptions {
    /// Copies JetStream keeps of the events stream (1 to 5; 3 on a
    /// three-server cluster). The command node sets it on the stream.
    #[arg(
        long,
        env = "TEPAI_STREAM_REPLICAS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(1..=5)
    )]
    pub stream_replicas: u8,
    /// This node's name among the cluster's nodes, 1 to 32 of A-Z, a-z,
    /// 0-9, '-', '_'; it names the node's JetStream consumer. Default: a
    /// random id made on first start and kept in the data directory.
    #[arg(long, env = "TEPAI_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,
    /// Answer an accepted command only once JetStream has acknowledged its
    /// events (with replicas, a quorum of the cluster holds them). On by
    /// itself when --stream-replicas is above 1.
    #[arg(
        long,
        env = "TEPAI_AWAIT_STREAM_ACK",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub await_stream_ack: bool,
    /// How long a command waits for JetStream's acknowledgement before it
    /// is answered UNAVAILABLE (it is stored; a resend gets the answer).
    #[arg(long, env = "TEPAI_STREAM_ACK_TIMEOUT_MS", default_value_t = 5000)]
    pub stream_ack_timeout_ms: u64,
    /// Command-node failover: start as a standby that follows the stream
    /// into its own store, and write only while holding the writer's lease
    /// (docs/cluster.md). Implies --await-stream-ack.
    #[arg(
        long,
        env = "TEPAI_FAILOVER",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub failover: bool,
    /// The writer's lease period: a standby takes over once the lease has
    /// gone this long without renewal (measured on the standby's clock).
    #[arg(
        long,
        env = "TEPAI_LEASE_MS",
        default_value_t = 3000,
        value_parser = clap::value_parser!(u64).range(300..=600_000)
    )]
    pub lease_ms: u64,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            stream_replicas: 1,
            node_id: None,
            await_stream_ack: false,
            stream_ack_timeout_ms: 5000,
            failover: false,
            lease_ms: 3000,
        }
    }
}

impl ClusterOptions {
    /// Whether the command service waits for JetStream's acknowledgement.
    /// Failover needs it: what the writer committed but JetStream never
    /// acknowledged is not in the history a standby takes over.
    pub fn awaits_stream_ack(&self) -> bool {
        self.await_stream_ack || self.stream_replicas > 1 || self.failover
    }
}

/// This node's id: the configured one, else the one kept in `data_dir`,
/// made (random) on first start. It names the node's JetStream consumer
/// and its hold on the writer's lease, so it must stay the same across
/// restarts on the same data.
pub fn node_id(cluster: &ClusterOptions, data_dir: &Path) -> std::io::Result<String> {
    if let Some(id) = &cluster.node_id {
        return Ok(id.clone());
    }
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_node_id(text.trim()).map_err(|reason| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {reason}", path.display()),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut id = uuid::Uuid::new_v4().simple().to_string();
            id.truncate(12);
            // Written aside then renamed, so a crash leaves no half an id.
            let fresh = path.with_extension("new");
            std::fs::write(&fresh, format!("{id}\n"))?;
            std::fs::rename(&fresh, &path)?;
            tracing::info!(node_id = %id, "new node id");
            Ok(id)
        }
        Err(error) => Err(error),
    }
}

/// A node id as [`ClusterOptions::node_id`] describes it.
pub fn parse_node_id(value: &str) -> Result<String, String> {
    let plain = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if plain {
        Ok(value.to_owned())
    } else {
        Err("1 to 32 of A-Z, a-z, 0-9, '-', '_'".into())
    }
}

/// The file in the data directory that keeps a node's generated id.
const NODE_ID_FILE: &str = "node-id";

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// The policy file as TOML spells it; a missing key keeps the default.
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PolicyFile {
    points: PointsSection,
    grades: GradesSection,
}

impl Default for PolicyFile {
    fn default() -> Self {
        let d = AssessmentPolicy::default();
        Self {
            points: PointsSection {
                per_service_day: d.per_service_day,
                service_day_cap: d.service_day_cap,
                per_resolved_demand: d.per_resolved_demand,
                resolved_demand_cap: d.resolved_demand_cap,
                per_satisfaction_point: d.per_satisfaction_point,
                satisfaction_cap: d.satisfaction_cap,
            },
            grades: GradesSection {
                excellent: d.excellent,
                good: d.good,
                pass: d.pass,
                pass_service_days: d.pass_service_days,
            },
        }
    }
}

/// `[points]`: weights and caps.
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PointsSection {
    per_service_day: u32,
    service_day_cap: u32,
    per_resolved_demand: u32,
    resolved_demand_cap: u32,
    per_satisfaction_point: u32,
    satisfaction_cap: u32,
}

impl Default for PointsSection {
    fn default() -> Self {
        PolicyFile::default().points
    }
}

/// `[grades]`: thresholds and the service-day floor.
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GradesSection {
    excellent: u32,
    good: u32,
    pass: u32,
    pass_service_days: u32,
}

impl Default for GradesSection {
    fn default() -> Self {
        PolicyFile::default().grades
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_policy_file_is_the_defaults() {
        assert_eq!(parse_assessment_policy(""), Ok(AssessmentPolicy::default()));
    }

    #[test]
    fn a_policy_file_sets_only_the_keys_it_names() {
        let text = "[points]\nper_service_day = 4\n\n[grades]\npass_service_days = 10\n";
        let expected = AssessmentPolicy {
            per_service_day: 4,
            pass_service_days: 10,
            ..AssessmentPolicy::default()
        };
        assert_eq!(parse_assessment_policy(text), Ok(expected));
    }

    #[test]
    fn the_example_policy_file_spells_out_the_defaults() {
        let text = include_str!("../assessment-policy.example.toml");
        assert_eq!(
            parse_assessment_policy(text),
            Ok(AssessmentPolicy::default())
        );
    }

    /// Each row: a file, then a piece the refusal must contain.
    #[test]
    fn a_bad_policy_file_is_refused_naming_the_key() {
        let cases = [
            (
                "[grades]\ngood = 300\n",
                "grades.good: 300 must be below grades.excellent (240)",
            ),
            ("[grades]\npass = 150\n", "grades.pass:"),
            ("[grades]\nexcellent = 1000\n", "grades.excellent:"),
            (
                "[points]\nper_service_dai = 5\n",
                "line 2: unknown field `per_service_dai`",
            ),
            ("[point]\n", "line 1: unknown field `point`"),
            ("[points]\nservice_day_cap = -1\n", "line 2:"),
            ("[grades]\npass = \"sixty\"\n", "line 2:"),
            ("[grades\n", "line 1:"),
        ];
        for (text, expected) in cases {
            let error = parse_assessment_policy(text).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_options_name_the_file_in_the_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[grades]\ngood = 300\n").unwrap();
        let options = AssessmentOptions {
            assessment_policy: Some(path.clone()),
        };
        assert_eq!(
            options.policy(),
            Err(format!(
                "assessment policy {}: grades.good: 300 must be below grades.excellent (240)",
                path.display()
            ))
        );
        let missing = AssessmentOptions {
            assessment_policy: Some(dir.path().join("missing.toml")),
        };
        assert!(missing.policy().is_err());
        assert_eq!(
            AssessmentOptions::default().policy(),
            Ok(AssessmentPolicy::default())
        );
    }
}
