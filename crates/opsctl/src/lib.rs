//! `opsctl`: the operator's CLI. The runbook's procedures as commands, against the same
//! configuration as the services (flags, `OPSCTL_*` variables and the services' own
//! variable names as fallbacks).
//!
//! - [`cli`]: the command line: settings and subcommands.
//! - [`kafka`]: consumer-group lag and description (what `rpk group describe` shows), for
//!   one group or every group of the platform.
//! - [`dlq`]: reading dead-letter topics and replaying them exactly once.
//! - [`outbox`]: status and requeue of both transactional outboxes.
//! - [`idempotency`]: listing and pruning `checkout_idempotency`.
//! - [`reconcile`]: checkouts vs orders (payments, refunds) vs stock returns vs the
//!   payment gateway's ledger, and `--repair`, which re-drives what it can.
//! - [`smoke`]: the quickstart journey against a running platform.
//! - [`managers`]: creating managers and rotating their passwords.
//! - [`output`], [`duration`], [`db`]: tables and JSON, `10m`-style durations, pools.
//!
//! Every command prints a human table by default and JSON with `--json`; a failure is
//! one line on stderr (`error: ...`) and exit code 1; `reconcile` also exits 1 when it
//! finds something wrong.

pub mod cli;
pub mod db;
pub mod dlq;
pub mod duration;
pub mod idempotency;
pub mod kafka;
pub mod managers;
pub mod outbox;
pub mod output;
pub mod reconcile;
pub mod smoke;

use cli::{Cli, Command};
use output::Output;
use std::process::ExitCode;

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All is well: exit code 0.
    Ok,
    /// The command ran and found problems (reconcile): exit code 1.
    ProblemsFound,
}

/// Parses the process's arguments and environment, runs the command, and turns the
/// result into an exit code: 0 on success, 1 on failure or findings, 2 on bad usage.
pub fn main() -> ExitCode {
    let parsed = cli::parse_from(std::env::args_os(), |name| std::env::var(name).ok());
    platform::app::run(parsed, |cli| async move {
        Ok(match run(cli).await? {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::ProblemsFound => ExitCode::FAILURE,
        })
    })
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let out = Output::new(cli.settings.json);
    let settings = &cli.settings;
    match cli.command {
        Command::Kafka { command } => kafka::run(settings, command, &out).await,
        Command::Dlq { command } => dlq::run(settings, command, &out).await,
        Command::Outbox { command } => outbox::run(settings, command, &out).await,
        Command::Idempotency { command } => idempotency::run(settings, command, &out).await,
        Command::Reconcile(args) => reconcile::run(settings, args, &out).await,
        Command::Smoke(args) => smoke::run(settings, args, &out).await,
        Command::Manager { command } => managers::run(settings, command, &out).await,
    }
}
