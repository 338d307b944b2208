//! Command-line options, parsed once into validated configurations.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indexer::store::Filter;
use std::path::{Path, PathBuf};

/// Who ran what on which instance, rebuilt from AWS Session Manager logs, with evidence.
#[derive(Debug, Parser)]
#[command(name = "ssm-audit", version, about, long_about = None)]
pub struct Cli {
    /// The index folder [default: $SSM_AUDIT_INDEX, else $XDG_DATA_HOME/ssm-audit/index,
    /// else ~/.local/share/ssm-audit/index]
    #[arg(long, global = true, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// The AWS profile for S3, CloudWatch Logs, EC2, CloudTrail and KMS [default:
    /// $AWS_PROFILE, else the default profile]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The AWS region [default: $AWS_REGION, else the profile's]
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// The time zone tables, `show` and reports show times in, and in which a day, month,
    /// quarter or year of --since/--until is taken: an IANA name (Asia/Seoul) or UTC [default:
    /// $TZ, else the system's]. JSON and CSV keep UTC
    #[arg(long, global = true, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Colour in tables and `show` [default: auto: on a terminal, unless NO_COLOR is set]
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t = crate::look::ColorWhen::Auto, hide_default_value = true)]
    pub color: crate::look::ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read session logs, CloudWatch streams, CloudTrail files and describe-instances output
    /// (files or folders, recursively) into the index
    Ingest(IngestArgs),
    /// List commands, optionally matching a full-text query, in session order
    Search(SearchArgs),
    /// Name the principals who ran a program (or a query), with counts
    Who(WhoArgs),
    /// One session as its user saw it (prompts, lines, output), each line marked (number, run
    /// as, directory, rules, suspicious, abandoned) with its evidence; SESSION#SEQ for one line,
    /// --raw for its evidence bytes
    Show(ShowArgs),
    /// List sessions: id, principal, instance, start, duration, commands, privileged
    /// commands, and what to look at (no transcript, conflicts, suspicious or abandoned lines)
    Sessions(SessionsArgs),
    /// Sessions CloudTrail saw with no transcript, transcripts with no CloudTrail record,
    /// sessions without MFA
    Coverage(CoverageArgs),
    /// An evidence report of one principal (or of every principal, one file each)
    Report(ReportArgs),
    /// Fetch every ingested source again (local path, or S3 at its version), recompute its
    /// SHA-256, re-derive its commands, and compare with the index and the ledger
    Verify(VerifyArgs),
    /// Write the records, state and quarantine the ingest Lambda would have written for
    /// sources that were there before it was deployed (session logs, CloudTrail, streams), so
    /// that Athena and the Lambda's later events continue from them
    Backfill(BackfillArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell): for
    /// example `ssm-audit completions bash > /etc/bash_completion.d/ssm-audit`
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), every command and option: `ssm-audit man | man -l -`
    Man,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Session logs, CloudTrail files and digests, inventories: folders (recursively),
    /// s3://bucket/prefix (every version of each object), cloudwatch://LOG-GROUP[/STREAM-PREFIX]
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Where the Lambda writes: its SSM_AUDIT_OUTPUT, s3://<records bucket>/<OutputPrefix>
    /// (`scripts/deploy` prints it), or a folder
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    pub to: String,
    /// Sources read at once
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,
    /// With cloudwatch://, only events at or after T (RFC 3339, a day, month, quarter or year,
    /// or an age like 30d, 3mo)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Print errors only
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The principal (name or ARN)
    #[arg(
        long,
        value_name = "PRINCIPAL",
        required_unless_present = "all_users",
        conflicts_with = "all_users"
    )]
    pub user: Option<String>,
    /// One report per principal, written into --out-dir
    #[arg(long)]
    pub all_users: bool,
    /// Only sessions started at or after T
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only sessions started before T
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only sessions on this instance (id or Name tag)
    #[arg(long, value_name = "ID|NAME")]
    pub instance: Option<String>,
    /// Report format
    #[arg(long, value_enum, default_value_t = crate::report::ReportFormat::Html)]
    pub format: crate::report::ReportFormat,
    /// Write to FILE instead of standard output
    #[arg(
        long = "out",
        short = 'o',
        value_name = "FILE",
        conflicts_with = "all_users"
    )]
    pub out: Option<PathBuf>,
    /// Not an option of `report`: refused with what to use (-o/--out FILE, --format)
    #[arg(long, hide = true, value_name = "X", num_args = 0..=1)]
    pub output: Option<Option<String>>,
    /// Write the HTML, CSV and JSON reports into DIR with manifest.json: the SHA-256 of each
    /// file and of each source cited, and the ledger head (`verify --bundle DIR` checks them)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["all_users", "out", "out_dir"])]
    pub bundle: Option<PathBuf>,
    /// With --all-users: the folder to write the reports into, one file per principal named
    /// after its ARN, percent-encoded (`arn%3Aaws%3Aiam%3A%3A111122223333%3Auser%2Fops%2Badmin.html`)
    #[arg(long, value_name = "DIR", required_if_eq("all_users", "true"))]
    pub out_dir: Option<PathBuf>,
    /// Show secrets typed in command lines (they are masked by default)
    #[arg(long)]
    pub no_redact: bool,
    /// Rules to add to the built-in privileged-command rules
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check a report bundle (`report --bundle DIR`) instead: each file against its manifest,
    /// the ledger head it names against the index, each source it cites fetched again
    #[arg(long, value_name = "DIR", conflicts_with = "source")]
    pub bundle: Option<PathBuf>,
    /// Only sources whose name contains this
    #[arg(long, value_name = "TEXT")]
    pub source: Option<String>,
    #[command(flatten)]
    pub anchor: AnchorArgs,
    /// CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them, to check the
    /// signatures of the CloudTrail digest files ingested. Without it they are asked of the
    /// CloudTrail API (cloudtrail:ListPublicKeys, in each digest's region) for digests read
    /// from S3; where neither is had, digests still check the CloudTrail files' hashes and
    /// their own chain, but not who signed them, and that is said
    #[arg(long, value_name = "FILE")]
    pub cloudtrail_keys: Option<std::path::PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A session id (`sessions` lists them), or SESSION#SEQ for one of its lines
    #[arg(value_name = "SESSION[#SEQ]")]
    pub target: String,
    /// Print the line's evidence bytes (SESSION#SEQ) after reading its source again and
    /// checking its SHA-256; bytes a reader cannot see are shown as \xNN
    #[arg(long)]
    pub raw: bool,
    /// From the index alone: do not read the sources again (no prompts, no check, no stream
    /// times)
    #[arg(long, conflicts_with = "raw")]
    pub offline: bool,
    /// Output format: text for people, json (one object: session, sources, lines)
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
    /// Rules to add to the built-in privileged-command rules
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Only this principal's (name or ARN)
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Rules to add to the built-in privileged-command rules
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    #[command(flatten)]
    pub scope: Scope,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Only this principal (name or ARN)
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// List only sessions with a gap (no transcript, no CloudTrail record, no MFA)
    #[arg(long)]
    pub gaps: bool,
    #[command(flatten)]
    pub scope: Scope,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or folders (recursively), s3://bucket/prefix (raw logs, CloudTrail, inventories,
    /// or the Lambda's JSON Lines records), cloudwatch://LOG-GROUP[/STREAM-PREFIX]
    #[arg(required = true, value_name = "SOURCE")]
    pub paths: Vec<String>,
    /// With cloudwatch://, only events at or after T (RFC 3339, a day, month, quarter or year,
    /// or an age like 30d, 3mo)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Print errors only
    #[arg(long, short)]
    pub quiet: bool,
    /// Commit to the index after this many KiB of input (bounds the work an interrupted run
    /// loses; memory does not depend on it)
    #[arg(long, value_name = "KIB", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_kib: u64,
    /// Ask the EC2 API (ec2:DescribeTags, in each session's region) for the Name tag of every
    /// instance that no inventory or CloudTrail tag record names, once per instance
    #[arg(long)]
    pub resolve_names: bool,
    #[command(flatten)]
    pub anchor: AnchorArgs,
    /// CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them: a CloudTrail
    /// digest file whose signature they do not validate is refused. Without it they are asked
    /// of the CloudTrail API (cloudtrail:ListPublicKeys, in each digest's region) for digests
    /// read from S3
    #[arg(long, value_name = "FILE")]
    pub cloudtrail_keys: Option<std::path::PathBuf>,
    /// With an s3:// --anchor, keep each head under S3 Object Lock (compliance mode) for this
    /// many days (the bucket must have Object Lock enabled; without this, its default
    /// retention applies, if any)
    #[arg(long, value_name = "DAYS", requires = "anchor")]
    pub anchor_retain_days: Option<u32>,
}

/// Where the ledger's heads are anchored, and the key that signs them.
#[derive(Debug, Clone, Default, Args)]
pub struct AnchorArgs {
    /// The ledger's heads outside the index: a folder or s3://BUCKET/PREFIX, for one index
    /// only. `ingest` writes the new head there after each commit, as a new object never
    /// overwritten; `verify` checks the ledger against every head there
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub anchor: Option<String>,
    /// A KMS asymmetric key (id, ARN or alias) that signs each head (kms:Sign); `verify` then
    /// requires every head to carry a valid signature by it (kms:Verify)
    #[arg(long, value_name = "KMS-KEY", requires = "anchor")]
    pub sign_key: Option<String>,
}

/// `show`'s formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// The session as it was seen, each line marked
    Text,
    /// One JSON object: the session, its sources and how they checked, its lines
    Json,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people
    Table,
    /// JSON Lines, one object per row
    Json,
    /// CSV with a header row
    Csv,
}

/// Filters shared by `search` and `who`.
#[derive(Debug, Args)]
pub struct Scope {
    /// Only commands on this instance (id or Name tag)
    #[arg(long, value_name = "ID|NAME")]
    pub instance: Option<String>,
    /// Only sessions started at or after T: RFC 3339, a day (2026-02-10), a month (2026-02), a
    /// quarter (2026-Q3), a year (2026), from its start; or an age (45min, 12h, 30d, 2w, 3mo, 1y)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only sessions started before T; a day, month, quarter or year is taken whole (until its
    /// end)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Full-text query over commands: words, "a phrase", AND/OR/NOT, and the fields
    /// principal:, instance:, session:, program:, run_as: (as the options of those names);
    /// none lists all
    pub query: Option<String>,
    /// Only this principal (name or ARN)
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Only commands run as this user (ssm-user, root, …)
    #[arg(long, value_name = "U")]
    pub run_as: Option<String>,
    /// Only commands that ran this program (as a pipeline or list part, or under sudo)
    #[arg(long, value_name = "NAME")]
    pub program: Option<String>,
    /// Search the commands' output too, and show it
    #[arg(long)]
    pub with_output: bool,
    /// Not an option of `search`: refused with what to use (--with-output, --format)
    #[arg(long, hide = true, value_name = "X", num_args = 0..=1)]
    pub output: Option<Option<String>>,
    /// List abandoned lines (Ctrl-C'd, never run) instead of commands
    #[arg(long)]
    pub abandoned: bool,
    /// Only commands that match a privileged-command rule (sudo, credential files, sudoers,
    /// firewall, persistence, history tampering, …); each row names its rules
    #[arg(long)]
    pub privileged: bool,
    /// Rules to add to (or replace by id in) the built-in ones: a JSON file like
    /// indexer/rules/privileged.json
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// At most N rows
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub limit: usize,
    #[command(flatten)]
    pub scope: Scope,
}

#[derive(Debug, Args)]
pub struct WhoArgs {
    /// A program name (`sudo`: commands that ran sudo) or a full-text query
    #[arg(value_name = "PROGRAM_OR_QUERY")]
    pub what: String,
    /// Only this principal (name or ARN)
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Only commands run as this user (ssm-user, root, …)
    #[arg(long, value_name = "U")]
    pub run_as: Option<String>,
    /// At most N principals (it says on stderr when it cut)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub scope: Scope,
}

/// A validated search.
#[derive(Debug)]
pub struct SearchConfig {
    pub filter: Filter,
    pub limit: usize,
    pub format: Format,
    pub privileged: bool,
    pub rules: indexer::rules::Rules,
}

impl SearchConfig {
    /// The search the arguments ask for, periods taken in `tz`.
    pub fn of(a: SearchArgs, tz: &jiff::tz::TimeZone) -> Result<Self> {
        if let Some(given) = &a.output {
            bail!(
                "`search` has no --output{}: --with-output searches and shows what commands printed; --format table|json|csv chooses the format",
                given.as_deref().map(|g| format!(" {g}")).unwrap_or_default()
            );
        }
        let mut filter = scope_filter(&a.scope, tz)?;
        let SplitQuery {
            text: query,
            fields,
        } = match a.query.as_deref() {
            Some(q) => query_fields(q)?,
            None => SplitQuery::default(),
        };
        filter.query = query;
        // A field of the query and the option of the same name are one filter: given twice
        // with different values, the answer would be empty by construction.
        let set = |slot: &mut Option<String>, option: &str, name: &str, value: String| match slot {
            Some(v) if *v != value => Err(anyhow::anyhow!(
                "{name}:{value} in the query and {option} {v} ask for two different things"
            )),
            _ => {
                *slot = Some(value);
                Ok(())
            }
        };
        let (mut user, mut run_as, mut program, mut instance) =
            (a.user, a.run_as, a.program, filter.instance.take());
        for (name, value) in fields {
            match name {
                QueryField::Principal => set(&mut user, "--user", "principal", value)?,
                QueryField::Instance => set(&mut instance, "--instance", "instance", value)?,
                QueryField::Program => set(&mut program, "--program", "program", value)?,
                QueryField::RunAs => set(&mut run_as, "--run-as", "run_as", value)?,
                QueryField::Session => set(&mut filter.session, "session:", "session", value)?,
            }
        }
        filter.instance = instance;
        filter.in_output = a.with_output;
        filter.with_output = a.with_output;
        filter.user = user;
        filter.run_as = run_as;
        filter.program = program;
        filter.abandoned = a.abandoned;
        // Privileged filtering happens after the search: it needs every match.
        // One more than asked: whether the limit cut anything is then known.
        filter.limit = (!a.privileged).then_some(a.limit.saturating_add(1));
        if a.limit == 0 {
            bail!("--limit must be at least 1");
        }
        let rules = rules(a.rules.as_deref())?;
        Ok(SearchConfig {
            filter,
            limit: a.limit,
            format: a.scope.format,
            privileged: a.privileged,
            rules,
        })
    }
}

impl WhoArgs {
    /// The filter and format of a `who` question.
    pub fn into_filter(self, tz: &jiff::tz::TimeZone) -> Result<(Filter, Format)> {
        let mut filter = scope_filter(&self.scope, tz)?;
        let what = self.what.trim();
        if what.is_empty() {
            bail!("`who` needs a program name or a query");
        }
        let is_program = what
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
        if is_program {
            filter.program = Some(what.rsplit('/').next().unwrap_or(what).to_string());
        } else {
            filter.query = Some(what.to_string());
        }
        filter.user = self.user;
        filter.run_as = self.run_as;
        Ok((filter, self.scope.format))
    }
}

/// A field a query can name besides the text of commands (`command:`, `output:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryField {
    /// `principal:` (`user:`): a principal's name or ARN, as `--user`.
    Principal,
    /// `instance:`: an instance's id or Name tag, as `--instance`.
    Instance,
    /// `session:` (`session_id:`): one session.
    Session,
    /// `program:`: a program the command ran, as `--program`.
    Program,
    /// `run_as:`: the user the command ran as, as `--run-as`.
    RunAs,
}

/// The fields a query may name, for messages.
const QUERY_FIELDS: &str =
    "command:, output: (with --with-output), principal:, instance:, session:, program:, run_as:";

/// Take `principal:`, `instance:`, `session:`, `program:` and `run_as:` terms out of a query:
/// they filter as the options of the same names do. They must be plain terms of the query (a
/// conjunction); under `OR`, `NOT` or parentheses they are refused, saying so. What is left
/// (maybe nothing) is the full-text query. A `name:` that is no field is refused, listing them.
pub fn query_fields(q: &str) -> Result<SplitQuery> {
    // Whitespace-separated terms, a "quoted phrase" kept whole.
    let mut terms: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    terms.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        terms.push(cur);
    }
    let logic = terms.iter().any(|t| {
        matches!(t.as_str(), "OR" | "NOT" | "||") || t.starts_with('(') || t.ends_with(')')
    });
    let mut rest = Vec::new();
    let mut fields = Vec::new();
    for t in terms {
        let field = t.split_once(':').filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let Some((name, value)) = field else {
            rest.push(t);
            continue;
        };
        let which = match name.to_ascii_lowercase().as_str() {
            "command" | "output" => {
                rest.push(t);
                continue;
            }
            "principal" | "user" => QueryField::Principal,
            "instance" => QueryField::Instance,
            "session" | "session_id" => QueryField::Session,
            "program" => QueryField::Program,
            "run_as" | "runas" => QueryField::RunAs,
            _ => bail!(
                "the query names a field {name}: that is not one; the fields are {QUERY_FIELDS}"
            ),
        };
        if logic {
            bail!("{name}: filters the whole answer and cannot be under OR, NOT or parentheses: write it beside them (principal:alice (sudo OR su))");
        }
        let value = value.trim_matches('"');
        if value.is_empty() {
            bail!("{name}: needs a value");
        }
        fields.push((which, value.to_string()));
    }
    let rest = rest.join(" ");
    Ok(SplitQuery {
        text: (!rest.trim().is_empty()).then_some(rest),
        fields,
    })
}

/// A query taken apart: its full-text part, and the fields that filter.
#[derive(Debug, Default)]
pub struct SplitQuery {
    /// What is left for the full-text search, if anything.
    pub text: Option<String>,
    /// The filtering fields, in order.
    pub fields: Vec<(QueryField, String)>,
}

impl Scope {
    /// `--since` and `--until`, as unix seconds.
    pub fn window(&self, tz: &jiff::tz::TimeZone) -> Result<(Option<i64>, Option<i64>)> {
        crate::when::window(self.since.as_deref(), self.until.as_deref(), tz)
    }
}

/// The privileged-command rules: the built-in ones, with `--rules FILE` added.
pub fn rules(file: Option<&Path>) -> Result<indexer::rules::Rules> {
    match file {
        Some(f) => {
            indexer::rules::Rules::with_file(f).with_context(|| format!("--rules {}", f.display()))
        }
        None => Ok(indexer::rules::Rules::builtin()),
    }
}

fn scope_filter(s: &Scope, tz: &jiff::tz::TimeZone) -> Result<Filter> {
    let (since, until) = s.window(tz)?;
    Ok(Filter {
        instance: s.instance.clone(),
        since,
        until,
        ..Filter::default()
    })
}

/// The index folder: the flag, `$SSM_AUDIT_INDEX`, or the user's data folder.
pub fn index_dir(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("SSM_AUDIT_INDEX").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("ssm-audit").join("index"));
    }
    let home = std::env::var_os("HOME")
        .context("no --index, $SSM_AUDIT_INDEX or $HOME to place the index in")?;
    Ok(PathBuf::from(home).join(".local/share/ssm-audit/index"))
}
