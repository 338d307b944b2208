//! `ssm-audit`: ingest Session Manager logs, CloudTrail and inventories into an index, and ask it
//! who ran what, where, as whom, with the evidence.

mod anchoring;
mod backfill;
mod bundle;
mod cli;
mod look;
mod output;
mod remote;
mod report;
mod show;
mod sources;
mod when;

/// Ingest allocates many small strings per command; mimalloc serves them several times faster
/// than the system allocator and does not fragment over a long run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use indexer::ingest::{self, Outcome};
use indexer::model::SourceObject;
use indexer::store::{Batch, Index, Reader, Writer};
use indexer::trail_check::Keyring;
use sources::Sources;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The AWS SDK reads the standard environment: the options are that environment, set
    // before any client or thread exists.
    if let Some(p) = &cli.profile {
        std::env::set_var("AWS_PROFILE", p);
    }
    if let Some(r) = &cli.region {
        std::env::set_var("AWS_REGION", r);
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(
                std::io::stderr(),
                "ssm-audit: {}",
                output::visible(&said_once(&e))
            );
            ExitCode::from(2)
        }
    }
}

/// Where CloudTrail's public keys come from: the `list-public-keys` output given, else the
/// CloudTrail API, asked when a digest needs it.
fn cloudtrail_keys(path: Option<&std::path::Path>) -> Result<Keyring> {
    let Some(path) = path else {
        return Ok(remote::cloudtrail_keys());
    };
    let bytes = indexer::files::read_regular(path, Some(64 << 20))
        .with_context(|| format!("--cloudtrail-keys {}", path.display()))?;
    indexer::trail_check::PublicKeys::parse(&bytes)
        .map(Keyring::given)
        .map_err(|why| anyhow::anyhow!("--cloudtrail-keys {}: {why}", path.display()))
}

/// An error and its causes in one line, each said once: a cause whose words its parent
/// already holds (an error that prints its source, and names it as its source too) is left out.
fn said_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Generated from the definitions of the options: they cannot drift from them.
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut Cli::command(), "ssm-audit", &mut out);
            out.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            use clap::CommandFactory as _;
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            for sub in Cli::command().get_subcommands() {
                // Each command's own section, after the page's list of them.
                let name = format!("ssm-audit-{}", sub.get_name());
                let sub = sub.clone().name(name);
                clap_mangen::Man::new(sub).render(&mut out)?;
            }
            out.flush()?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let index = cli::index_dir(cli.index.as_deref())?;
    let look = look::Look::of(cli.tz.as_deref(), cli.color)?;
    match cli.command {
        Command::Ingest(args) => ingest(&index, args, &look),
        Command::Completions { .. } | Command::Man => unreachable!("answered above"),
        Command::Backfill(args) => {
            let since = args
                .since
                .as_deref()
                .map(|s| when::since(s, &look.tz))
                .transpose()?;
            backfill::run(&args, since.map(|s| s * 1000))
        }
        Command::Search(args) => {
            let config = cli::SearchConfig::of(args, &look.tz)?;
            let store = Index::open(&index)?.reader()?;
            one_principal(&store, config.filter.user.as_deref())?;
            let mut records = store.search(&config.filter)?;
            for r in &mut records {
                indexer::derive::apply_rules(r, &config.rules);
            }
            if config.privileged {
                records.retain(|r| !r.rule.is_empty());
            }
            // The search was asked for one more than the limit: whether it cut is known.
            if records.len() > config.limit {
                records.truncate(config.limit);
                writeln!(
                    std::io::stderr(),
                    "ssm-audit: showing the first {} {}; more match (--limit N to see more)",
                    config.limit,
                    if config.filter.abandoned {
                        "abandoned lines"
                    } else {
                        "commands"
                    },
                )?;
            }
            let mut out = std::io::stdout().lock();
            output::commands(
                &mut out,
                &records,
                config.format,
                config.filter.with_output,
                &look,
            )?;
            out.flush()?;
            if records.is_empty() {
                hint_names(
                    &store,
                    config.filter.user.as_deref(),
                    config.filter.instance.as_deref(),
                )?;
            }
            Ok(found(!records.is_empty()))
        }
        Command::Sessions(args) => {
            let window = args.scope.window(&look.tz)?;
            let store = Index::open(&index)?.reader()?;
            let mut rows = sessions_of(&store, args.user.as_deref(), &args.scope, window)?;
            // Sessions only: a call refused before any session began names none.
            rows.retain(|c| !c.session_id.is_empty());
            let rules = cli::rules(args.rules.as_deref())?;
            // Only the records of the sessions asked for are read.
            let scope = indexer::store::Filter {
                user: args.user.clone(),
                instance: args.scope.instance.clone(),
                since: window.0,
                until: window.1,
                ..Default::default()
            };
            let rows = session_rows(&store, rows, &rules, &scope)?;
            let mut out = std::io::stdout().lock();
            output::sessions(&mut out, &rows, args.scope.format, &look)?;
            out.flush()?;
            if rows.is_empty() {
                hint_names(&store, args.user.as_deref(), args.scope.instance.as_deref())?;
            }
            Ok(found(!rows.is_empty()))
        }
        Command::Coverage(args) => {
            let window = args.scope.window(&look.tz)?;
            let store = Index::open(&index)?.reader()?;
            let rows = sessions_of(&store, args.user.as_deref(), &args.scope, window)?;
            let mut out = std::io::stdout().lock();
            output::coverage(&mut out, &rows, args.gaps, args.scope.format, &look)?;
            out.flush()?;
            Ok(found(!rows.is_empty()))
        }
        Command::Report(args) => report(&index, args, &look),
        Command::Show(args) => {
            let target = show::Target::parse(&args.target)?;
            let rules = cli::rules(args.rules.as_deref())?;
            let store = Index::open(&index)?.reader()?;
            let mut out = std::io::stdout().lock();
            show::run(
                &store,
                &index,
                &target,
                &show::Options {
                    raw: args.raw,
                    offline: args.offline,
                    json: args.format == cli::ShowFormat::Json,
                    rules: &rules,
                },
                &look,
                &mut out,
            )?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => {
            if let Some(dir) = &args.bundle {
                let found = bundle::check(dir, &index)?;
                let mut out = std::io::stdout().lock();
                bundle::print(&mut out, dir, &found, args.format, &look)?;
                out.flush()?;
                return Ok(if found.0.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let store = Index::open(&index)?.reader()?;
            let refetch = std::cell::RefCell::new(remote::Refetch::new()?);
            // Each source fetched again is a step, on a terminal.
            let bar = std::io::stderr().is_terminal().then(progress_bar);
            let mut fetch = |e: &indexer::ledger::Entry| {
                if let Some(bar) = &bar {
                    bar.set_message(output::visible(&e.source));
                    bar.inc(1);
                }
                refetch.borrow_mut().fetch(e)
            };
            let mut upcoming = |order: &[&indexer::ledger::Entry]| {
                if let Some(bar) = &bar {
                    bar.set_length(order.len() as u64);
                }
                refetch.borrow_mut().upcoming(order)
            };
            let mut anchor = anchoring::Anchor::of(&args.anchor, None)?;
            let mut keys = cloudtrail_keys(args.cloudtrail_keys.as_deref())?;
            let report = indexer::verify::verify(
                &store,
                &index,
                &mut fetch,
                indexer::verify::Checks {
                    only: args.source.as_deref(),
                    anchor: anchor.as_mut().map(anchoring::Anchor::check),
                    cloudtrail_keys: Some(&mut keys),
                    upcoming: Some(&mut upcoming),
                },
            )?;
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let mut out = std::io::stdout().lock();
            output::verify(&mut out, &report, args.format, &look)?;
            out.flush()?;
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Who(args) => {
            let limit = args.limit;
            let (filter, format) = args.into_filter(&look.tz)?;
            let store = Index::open(&index)?.reader()?;
            one_principal(&store, filter.user.as_deref())?;
            let mut rows = output::who_rows(&store.who(&filter)?);
            if let Some(n) = limit.and_then(|n| usize::try_from(n).ok()) {
                if rows.len() > n {
                    writeln!(
                        std::io::stderr(),
                        "ssm-audit: showing {n} of {} principals (--limit)",
                        rows.len()
                    )?;
                    rows.truncate(n);
                }
            }
            let mut out = std::io::stdout().lock();
            output::who(&mut out, &rows, format, &look)?;
            out.flush()?;
            if rows.is_empty() {
                hint_names(&store, filter.user.as_deref(), filter.instance.as_deref())?;
            }
            Ok(found(!rows.is_empty()))
        }
    }
}

/// The coverage rows of one principal's sessions (refused when the name is two principals'),
/// on the scope's instance, in `since..until`.
fn sessions_of(
    store: &Reader,
    user: Option<&str>,
    scope: &cli::Scope,
    (since, until): (Option<i64>, Option<i64>),
) -> Result<Vec<indexer::store::SessionCoverage>> {
    let mut rows = store.coverage()?;
    one_principal_among(&rows, user)?;
    rows.retain(|c| c.matches(user, scope.instance.as_deref(), since, until));
    Ok(rows)
}

/// Each session with what its records hold: commands, privileged, suspicious, abandoned.
fn session_rows(
    store: &Reader,
    sessions: Vec<indexer::store::SessionCoverage>,
    rules: &indexer::rules::Rules,
    scope: &indexer::store::Filter,
) -> Result<Vec<output::SessionRow>> {
    #[derive(Default)]
    struct Held {
        commands: usize,
        privileged: usize,
        suspicious: usize,
        abandoned: usize,
    }
    let mut held: std::collections::HashMap<String, Held> = Default::default();
    for abandoned in [false, true] {
        let filter = indexer::store::Filter {
            abandoned,
            ..scope.clone()
        };
        for mut r in store.search(&filter)? {
            indexer::derive::apply_rules(&mut r, rules);
            let h = held.entry(r.session_id.clone()).or_default();
            if abandoned {
                h.abandoned += 1;
            } else {
                h.commands += 1;
                h.privileged += usize::from(!r.rule.is_empty());
                h.suspicious += usize::from(!r.suspicious.is_empty());
            }
        }
    }
    Ok(sessions
        .into_iter()
        .map(|c| {
            let h = held.remove(&c.session_id).unwrap_or_default();
            let w = &c.who;
            let at = |t: &Option<String>| t.as_deref().and_then(indexer::model::parse_time);
            output::SessionRow {
                duration_seconds: at(&w.session_start)
                    .zip(at(&w.session_end))
                    .map(|(s, e)| e - s)
                    .filter(|d| *d >= 0),
                status: c.status().as_str().to_string(),
                flags: c.flags().iter().map(|f| f.as_str().to_string()).collect(),
                session_id: c.session_id.clone(),
                principal: w.principal.clone(),
                principal_arn: w.principal_arn.clone(),
                instance_id: w.instance_id.clone(),
                instance_name: w.instance_name.clone(),
                session_start: w.session_start.clone(),
                session_end: w.session_end.clone(),
                mfa: w.mfa,
                commands: h.commands,
                privileged: h.privileged,
                suspicious: h.suspicious,
                abandoned: h.abandoned,
            }
        })
        .collect())
}

fn ingest(index: &std::path::Path, args: cli::IngestArgs, look: &look::Look) -> Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| when::since(s, &look.tz))
        .transpose()?;
    let anchor = anchoring::Anchor::of(&args.anchor, args.anchor_retain_days)?;
    let keys = cloudtrail_keys(args.cloudtrail_keys.as_deref())?;
    let (inputs, quiet, commit_bytes) = (&args.paths, args.quiet, args.commit_kib << 10);
    // Take the writer lock before reading anything: a second ingest fails at once.
    let mut store = Index::open_or_create(index)
        .with_context(|| format!("opening the index at {}", index.display()))?
        .writer()?;
    // The runtime the anchor blocks on, kept until the ingest ends.
    let _anchor_rt = match anchor {
        Some(a) => a.attach(&mut store)?,
        None => None,
    };
    let mut run = Run {
        commit_bytes,
        bar: (!quiet && std::io::stderr().is_terminal()).then(progress_bar),
        quiet,
        keys,
        ..Run::default()
    };
    let settled = store.settled();
    if settled.uncommitted > 0 || settled.torn {
        run.say(&format!(
            "note: an earlier ingest of this index was interrupted before its last commit: {} ledger entr{} it wrote for that commit{} removed; its sources are read again if given",
            settled.uncommitted,
            if settled.uncommitted == 1 { "y" } else { "ies" },
            if settled.torn { " and a line cut short were" } else { " were" },
        ))?;
    }
    let mut batch = Batch::default();
    let started = std::time::Instant::now();
    let sources = Sources::list(inputs, since.map(|s| s * 1000), &mut |location| {
        if let Some(bar) = &run.bar {
            bar.set_message(format!("listing {}", output::visible(location)));
        }
    });
    for w in sources.warnings() {
        run.say(&format!("warning: {}", output::visible(w)))?;
    }
    let total = sources.total();
    for (n, source) in sources.enumerate() {
        run.show_progress(n, total, &source.name);
        run.take(&source.name, source.provenance, source.object, &mut batch)?;
        run.add(&mut store, &mut batch)?;
    }
    if let Some(bar) = &run.bar {
        bar.set_message("indexing…");
    }
    run.commit(&mut store)?;
    run.validate_cloudtrail()?;
    if args.resolve_names {
        let names = remote::instance_names(&store.reader().instances_to_name()?, &mut |warning| {
            run.say(&format!("warning: {}", output::visible(warning)))
        })?;
        if !names.is_empty() {
            run.add(
                &mut store,
                &mut Batch {
                    instances: names,
                    ..Batch::default()
                },
            )?;
            run.commit(&mut store)?;
        }
    }
    // Queries then visit fewer segments: the commits' small ones are merged into one.
    store.finish_compacted()?;
    // Distinct sessions as they now stand: a session written again (its CloudTrail after its
    // transcript, a second copy) counts once.
    let (sessions, commands, abandoned) = run.changes.distinct();
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    run.finish_bar();
    if !quiet {
        let s =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            std::io::stderr(),
            "ingested {} of {} sources ({} skipped, {} failed, {:.1} MB at {:.1} MB/s): {} with {} and {} written to {}",
            run.read,
            run.read + run.skipped + run.failed,
            run.skipped,
            run.failed,
            run.bytes as f64 / 1e6,
            run.bytes as f64 / 1e6 / secs,
            s(sessions, "session", "sessions"),
            s(commands, "command", "commands"),
            s(abandoned, "abandoned line", "abandoned lines"),
            index.display()
        )?;
    }
    Ok(if run.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Counts and reporting of one `ingest` run.
#[derive(Default)]
struct Run {
    /// The progress bar, on a terminal.
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    read: usize,
    skipped: usize,
    failed: usize,
    bytes: u64,
    /// Bytes read since the last commit.
    pending: u64,
    /// What the commits so far changed.
    changes: indexer::store::Changes,
    /// Raw bytes read between commits: a crash loses at most this much work (what was
    /// committed stays, and ingesting again completes the rest).
    commit_bytes: u64,
    /// CloudTrail's public keys: digests are checked as they are read.
    keys: Keyring,
    /// CloudTrail files read, and digests read: validated at the end of the run.
    trails: Vec<indexer::trail_check::TrailRead>,
    digests: Vec<indexer::trail_check::DigestRead>,
}

impl Run {
    /// Validate the CloudTrail files read against the digests read (see `verify`): a line for
    /// each file changed or unlisted, each failed as a source, and a summary.
    fn validate_cloudtrail(&mut self) -> Result<()> {
        if self.digests.is_empty() {
            if !self.trails.is_empty() && !self.quiet {
                self.say(&format!(
                    "note: {} CloudTrail files read, no CloudTrail digest file: they are not validated (ingest the trail's CloudTrail-Digest/ files too)",
                    self.trails.len()
                ))?;
            }
            return Ok(());
        }
        let found = indexer::trail_check::validate(&self.digests, &self.trails, &mut self.keys);
        for (source, _, why) in &found.problems {
            self.failed += 1;
            self.say(&format!(
                "error: {}: {}",
                output::visible(source),
                output::visible(why)
            ))?;
        }
        if !self.quiet && self.trails.is_empty() {
            self.say(&format!(
                "CloudTrail: {} of {} digests read have a valid signature{}; the files they list were not read in this run (sessions already indexed from them were derived again)",
                found.valid_digests,
                self.digests.len(),
                match self.keys.wanting() {
                    Some(why) => format!(" (signatures not checked: {})", output::visible(&why)),
                    None => String::new(),
                }
            ))?;
        } else if !self.quiet {
            self.say(&format!(
                "CloudTrail: {} of {} files validated by {} signed digests{}",
                found.validated.len(),
                self.trails.len(),
                found.valid_digests,
                match self.keys.wanting() {
                    Some(why) => format!(" (signatures not checked: {})", output::visible(&why)),
                    None => String::new(),
                }
            ))?;
        }
        Ok(())
    }
}

impl Run {
    fn show_progress(&self, n: usize, total: usize, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(n as u64);
            bar.set_message(format!(
                "{:.1} MB/s  {}",
                self.bytes as f64 / 1e6 / bar.elapsed().as_secs_f64().max(1e-3),
                output::visible(name)
            ));
        }
    }

    /// Clear the bar before the summary line.
    fn finish_bar(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// One line of report, above the bar when there is one.
    fn say(&self, line: &str) -> Result<()> {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => writeln!(std::io::stderr().lock(), "{line}")?,
        }
        Ok(())
    }

    /// Hand what was read to the index, and commit once `commit_bytes` were read since the
    /// last commit.
    fn add(&mut self, store: &mut Writer, batch: &mut Batch) -> Result<()> {
        let c = store.add(std::mem::take(batch))?;
        self.changes.absorb(c);
        if self.pending >= self.commit_bytes {
            self.commit(store)?;
        }
        Ok(())
    }

    fn commit(&mut self, store: &mut Writer) -> Result<()> {
        store.commit()?;
        self.pending = 0;
        Ok(())
    }

    /// Read one source into the batch, reporting what became of it.
    fn take(
        &mut self,
        name: &str,
        provenance: ingest::Provenance,
        object: std::result::Result<SourceObject, sources::Unread>,
        batch: &mut Batch,
    ) -> Result<()> {
        let object = match object {
            Ok(o) => o,
            Err(sources::Unread::Skipped(_)) if self.quiet => {
                self.skipped += 1;
                return Ok(());
            }
            Err(sources::Unread::Skipped(why)) => {
                self.skipped += 1;
                return self.say(&format!(
                    "skipped: {}: {}",
                    output::visible(name),
                    output::visible(&why)
                ));
            }
            Err(sources::Unread::Failed(why)) => {
                self.failed += 1;
                return self.say(&format!(
                    "error: {}: {}",
                    output::visible(name),
                    output::visible(&why)
                ));
            }
        };
        self.bytes += object.bytes.len() as u64;
        self.pending += object.bytes.len() as u64;
        let outcome = ingest::read_checked(&object, provenance, &mut self.keys, batch);
        // CloudTrail files and digests, for log file validation at the end of the run.
        self.trails.append(&mut batch.trail_files);
        if let Outcome::Read {
            kind: indexer::kinds::SourceKind::CloudtrailDigest,
            ..
        } = &outcome
        {
            let read = indexer::formats::inflated(&object.bytes)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    indexer::trail_check::DigestRead::read(&object.name, &b, &object.metadata)
                });
            match read {
                Ok(d) => self.digests.push(d),
                Err(why) => self.say(&format!(
                    "warning: {}: {}",
                    output::visible(name),
                    output::visible(&why)
                ))?,
            }
        }
        let prefix = match &outcome {
            Outcome::Read { .. } => {
                self.read += 1;
                return Ok(());
            }
            Outcome::Skipped(_) if self.quiet => {
                self.skipped += 1;
                return Ok(());
            }
            Outcome::Skipped(_) => {
                self.skipped += 1;
                "skipped: "
            }
            Outcome::Failed(_) => {
                self.failed += 1;
                "error: "
            }
        };
        self.say(&format!(
            "{prefix}{}: {}",
            output::visible(name),
            output::visible(&outcome.describe())
        ))
    }
}

/// Exit status of a question: 0 when it found something, 1 when not.
fn found(any: bool) -> ExitCode {
    if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Files read of all, elapsed time and the file being read; drawn on stderr about ten times a
/// second, and only on a terminal.
fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} files, eta {eta}  {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Refuse a `--user` name that more than one principal ARN answers to (a role session may
/// choose any name): each is named, and one of them can be asked for by its ARN.
fn one_principal(store: &Reader, user: Option<&str>) -> Result<()> {
    let Some(user) = user.filter(|u| !u.starts_with("arn:")) else {
        return Ok(());
    };
    // The `who` fast field names the principal of every session with commands: no document is
    // loaded, as `search` itself reads it.
    let sessions = store.who(&indexer::store::Filter {
        user: Some(user.to_string()),
        ..Default::default()
    })?;
    refuse_two_arns(
        user,
        sessions
            .iter()
            .filter_map(|(k, _)| k.principal_arn.as_deref()),
    )
}

/// When a question found nothing and named a principal or an instance that the index does not
/// know by that name, say so on stderr with the closest names it does know (a name that
/// begins or holds what was given first, then the most alike): `--user hyejin` finds nothing,
/// and `hyejin@corp.example` is what the index calls her.
fn hint_names(store: &Reader, user: Option<&str>, instance: Option<&str>) -> Result<()> {
    if user.is_none() && instance.is_none() {
        return Ok(());
    }
    let rows = store.coverage()?;
    let mut principals = std::collections::BTreeSet::new();
    let mut instances = std::collections::BTreeSet::new();
    for c in &rows {
        principals.extend(c.who.principal.clone());
        principals.extend(c.who.principal_arn.clone());
        instances.extend(c.who.instance_name.clone());
        instances.extend(c.who.instance_id.clone());
    }
    for (what, given, known) in [
        ("principal", user, &principals),
        ("instance", instance, &instances),
    ] {
        let Some(given) = given else { continue };
        if known.iter().any(|k| k.eq_ignore_ascii_case(given)) {
            continue;
        }
        let candidates: Vec<&str> = known
            .iter()
            .filter(|k| !k.starts_with("arn:") || given.starts_with("arn:"))
            .map(String::as_str)
            .collect();
        let closest = closest(given, &candidates);
        writeln!(
            std::io::stderr(),
            "ssm-audit: no {what} is named {}{}",
            output::visible(given),
            if closest.is_empty() {
                let names = known
                    .iter()
                    .filter(|k| !k.starts_with("arn:") || given.starts_with("arn:"))
                    .count();
                format!("; none of the {names} the index knows is close (`sessions` lists them)")
            } else {
                format!("; the closest: {}", closest.join(", "))
            }
        )?;
    }
    Ok(())
}

/// The names among `known` closest to `given` (at most three, escaped): those that begin with
/// it, then those that hold it, then those alike (Jaro-Winkler 0.8 or more), case aside.
fn closest(given: &str, known: &[&str]) -> Vec<String> {
    let g = given.to_lowercase();
    let mut ranked: Vec<(u8, f64, &str)> = known
        .iter()
        .map(|k| {
            let l = k.to_lowercase();
            let holds = if l.starts_with(&g) {
                0
            } else if l.contains(&g) {
                1
            } else {
                2
            };
            (holds, strsim::jaro_winkler(&g, &l), *k)
        })
        .filter(|(holds, alike, _)| *holds < 2 || *alike >= 0.8)
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    ranked.dedup_by(|a, b| a.2 == b.2);
    ranked
        .iter()
        .take(3)
        .map(|(_, _, k)| output::visible(k))
        .collect()
}

/// [`one_principal`] over coverage rows already read.
fn one_principal_among(rows: &[indexer::store::SessionCoverage], user: Option<&str>) -> Result<()> {
    let Some(user) = user.filter(|u| !u.starts_with("arn:")) else {
        return Ok(());
    };
    refuse_two_arns(
        user,
        rows.iter()
            .filter(|c| c.matches(Some(user), None, None, None))
            .filter_map(|c| c.who.principal_arn.as_deref()),
    )
}

/// Fail naming every ARN among `arns` when there are several.
fn refuse_two_arns<'a>(user: &str, arns: impl Iterator<Item = &'a str>) -> Result<()> {
    let arns: std::collections::BTreeSet<&str> = arns.collect();
    if arns.len() > 1 {
        anyhow::bail!(
            "--user {} names {} different principals: {}; give the ARN of the one you mean",
            output::visible(user),
            arns.len(),
            arns.iter()
                .map(|a| output::visible(a))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn report(index: &std::path::Path, args: cli::ReportArgs, look: &look::Look) -> Result<ExitCode> {
    if let Some(given) = &args.output {
        anyhow::bail!(
            "`report` has no --output{}: -o/--out FILE names the file to write; --format html|md|csv|json chooses the format",
            given.as_deref().map(|g| format!(" {g}")).unwrap_or_default()
        );
    }
    let store = Index::open(index)?.reader()?;
    let (since, until) = when::window(args.since.as_deref(), args.until.as_deref(), &look.tz)?;
    let rules = cli::rules(args.rules.as_deref())?;
    let coverage = store.coverage()?;
    one_principal_among(&coverage, args.user.as_deref())?;
    // One report per principal ARN (per name where no ARN is known): two principals that share
    // a name are never one report.
    let users: Vec<String> = match &args.user {
        Some(u) => vec![u.clone()],
        None => coverage
            .iter()
            .filter_map(|c| c.who.principal_arn.clone().or(c.who.principal.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let ledger = indexer::ledger::Ledger::of_index(index).read()?;
    let context = report::Context {
        generated: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        command_line: command_line(),
        filters: report::Filters {
            principal: args.user.clone().unwrap_or_default(),
            instance: args.instance.clone(),
            since: args.since.clone(),
            until: args.until.clone(),
        },
        ledger: indexer::ledger::Head::of(ledger.entries.last()),
        sources_in_index: ledger
            .entries
            .iter()
            .map(|e| (&e.source, &e.version_id))
            .collect::<std::collections::HashSet<_>>()
            .len(),
        time_zone: look.tz_name.clone(),
    };
    let mut written = 0;
    // The file names of this run, folded to lower case (a file system may not tell `A` from
    // `a`): a second principal whose name would land on a file already written is an error.
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    let mut collided = 0;
    for user in &users {
        let filter = indexer::store::Filter {
            user: Some(user.clone()),
            instance: args.instance.clone(),
            since,
            until,
            with_output: true,
            ..Default::default()
        };
        // Its commands and its abandoned lines: a report leaves no line of a session out.
        let mut records = store.search(&filter)?;
        records.extend(store.search(&indexer::store::Filter {
            abandoned: true,
            ..filter
        })?);
        let rows: Vec<_> = coverage
            .iter()
            .filter(|c| c.matches(Some(user), args.instance.as_deref(), since, until))
            .cloned()
            .collect();
        if rows.is_empty() && args.user.is_some() {
            anyhow::bail!(
                "no session of {user:?} in the index{}",
                if since.is_some() || until.is_some() {
                    " in that period"
                } else {
                    ""
                }
            );
        }
        let mut context = context.clone();
        context.filters.principal = user.clone();
        let r = report::build(user, context, records, rows, &rules, !args.no_redact);
        if let Some(dir) = &args.bundle {
            let n = bundle::write(dir, &r, &ledger.entries, look)?;
            writeln!(
                std::io::stderr(),
                "wrote {} files and manifest.json into {} ({n} sources named with their SHA-256); `ssm-audit verify --bundle {}` checks them",
                bundle::FILES.len(),
                dir.display(),
                dir.display()
            )?;
            written += 1;
            continue;
        }
        let buf = report::render(&r, args.format, look)?;
        let dest = match (&args.out_dir, &args.out) {
            (Some(dir), _) => {
                std::fs::create_dir_all(dir)?;
                let name = format!("{}.{}", report_file_name(user), args.format.extension());
                if let Some(first) = files.insert(name.to_lowercase(), user.clone()) {
                    writeln!(
                        std::io::stderr(),
                        "error: the reports of {} and {} would both be {}: the second is not written",
                        output::visible(&first),
                        output::visible(user),
                        dir.join(&name).display()
                    )?;
                    collided += 1;
                    continue;
                }
                Some(dir.join(name))
            }
            (None, Some(f)) => Some(f.clone()),
            (None, None) => None,
        };
        match dest {
            Some(path) => {
                std::fs::write(&path, &buf)
                    .with_context(|| format!("writing {}", path.display()))?;
                writeln!(std::io::stderr(), "wrote {}", path.display())?;
            }
            None => std::io::stdout().lock().write_all(&buf)?,
        }
        written += 1;
    }
    if collided > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(found(written > 0))
}

/// This run's command line, each argument quoted as a POSIX shell would need it.
fn command_line() -> String {
    // The program by its name: where it was installed is no business of the report.
    std::iter::once("ssm-audit".to_string())
        .chain(std::env::args().skip(1))
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A report's file name for a principal: its ARN (or name) with every byte other than ASCII
/// letters, digits, `-`, `_` and `@` percent-encoded (`.` too, so that no name is hidden or
/// `..`): distinct principals get distinct names, and the name decodes back to the ARN. An
/// ARN too long for a file name keeps its head and ends with a hash of the whole.
fn report_file_name(user: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'@');
    let name = percent_encoding::utf8_percent_encode(user, KEEP).to_string();
    if name.len() <= 200 {
        return name;
    }
    let mut head = 160;
    while !name.is_char_boundary(head) {
        head -= 1;
    }
    format!(
        "{}~{}",
        &name[..head],
        &indexer::model::sha256_hex(user.as_bytes())[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::said_once;

    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "no index at /x: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(Outer(io)).context("opening the index");
        assert_eq!(said_once(&e), "opening the index: no index at /x: gone");
        let plain = anyhow::anyhow!("a").context("b");
        assert_eq!(said_once(&plain), "b: a");
    }
}
