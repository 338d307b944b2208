//! `ssm-audit`: ingest Session Manager logs, CloudTrail and inventories into an index, and ask it
//! who ran what, where, as whom, with the evidence.

mod cli;
mod output;
mod walk;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use indexer::ingest::{self, Outcome};
use indexer::model::SourceObject;
use indexer::store::{Batch, Store};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(
                std::io::stderr(),
                "ssm-audit: {}",
                output::visible(&format!("{e:#}"))
            );
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    let index = cli::index_dir(cli.index.as_deref())?;
    match cli.command {
        Command::Ingest(args) => ingest(&index, &args.paths, args.quiet),
        Command::Search(args) => {
            let config = args.into_config()?;
            let store = Store::open(&index)?;
            let mut records = store.search(&config.filter)?;
            records.truncate(config.limit);
            let mut out = std::io::stdout().lock();
            output::commands(&mut out, &records, config.format, config.filter.with_output)?;
            out.flush()?;
            Ok(if records.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Who(args) => {
            let (filter, format) = args.into_filter()?;
            let store = Store::open(&index)?;
            let records = store.search(&filter)?;
            let rows = output::who_rows(&records);
            let mut out = std::io::stdout().lock();
            output::who(&mut out, &rows, format)?;
            out.flush()?;
            Ok(if rows.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn ingest(index: &std::path::Path, paths: &[std::path::PathBuf], quiet: bool) -> Result<ExitCode> {
    let files = walk::files(paths)?;
    let mut store = Store::open_or_create(index)
        .with_context(|| format!("opening the index at {}", index.display()))?;
    let progress = !quiet && std::io::stderr().is_terminal();
    let mut err = std::io::stderr().lock();
    let (mut read, mut skipped, mut failed, mut bytes) = (0usize, 0usize, 0usize, 0u64);
    let mut batch = Batch::default();
    let started = std::time::Instant::now();
    for (n, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        if progress {
            write!(
                err,
                "\r\x1b[Kreading {}/{}: {}",
                n + 1,
                files.len(),
                output::visible(&name)
            )?;
        }
        let bytes_read = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                failed += 1;
                writeln!(
                    err,
                    "{}error: {}: {e}",
                    clear(progress),
                    output::visible(&name)
                )?;
                continue;
            }
        };
        bytes += bytes_read.len() as u64;
        let object = SourceObject {
            name: name.clone(),
            version_id: None,
            bytes: bytes_read,
        };
        match ingest::read_object(&object, &mut batch) {
            Outcome::Read { .. } => read += 1,
            o @ Outcome::Skipped(_) => {
                skipped += 1;
                if !quiet {
                    writeln!(
                        err,
                        "{}{}: {}",
                        clear(progress),
                        output::visible(&name),
                        output::visible(&o.describe())
                    )?;
                }
            }
            o @ Outcome::Failed(_) => {
                failed += 1;
                writeln!(
                    err,
                    "{}error: {}: {}",
                    clear(progress),
                    output::visible(&name),
                    output::visible(&o.describe())
                )?;
            }
        }
    }
    if progress {
        write!(err, "\r\x1b[Kindexing…")?;
    }
    let changes = store.ingest(batch)?;
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    if !quiet {
        writeln!(
            err,
            "{}ingested {} of {} files ({} skipped, {} failed, {:.1} MB at {:.1} MB/s): {} sessions, {} commands, {} abandoned lines updated in {}",
            clear(progress),
            read,
            files.len(),
            skipped,
            failed,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            changes.sessions,
            changes.commands,
            changes.abandoned,
            index.display()
        )?;
    }
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn clear(progress: bool) -> &'static str {
    if progress {
        "\r\x1b[K"
    } else {
        ""
    }
}

impl cli::SearchArgs {
    fn into_config(self) -> Result<cli::SearchConfig> {
        cli::SearchConfig::try_from(self)
    }
}
