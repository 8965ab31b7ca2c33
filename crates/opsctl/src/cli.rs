//! The command line: global settings (databases, broker, service URLs, `--json`) and
//! the subcommands.
//!
//! Settings are read like the services read theirs ([`platform::config::parse_from`]
//! with the prefix `OPSCTL`): a flag, else `OPSCTL_<NAME>`, else, for the broker, the
//! plain `KAFKA_BOOTSTRAP_SERVERS`. On top of that opsctl falls back to the names an
//! operator already has on a service's host ([`FALLBACKS`]): `CUSTOMER_DATABASE_URL`
//! then `CUSTOMER_SERVICE_DATABASE_URL`, and so on.

use crate::duration;
use clap::{Args, Parser, Subcommand};
use platform::config::{ConfigError, KafkaSettings};
use std::ffi::OsString;
use std::time::Duration;

/// Prefix of opsctl's own variables.
pub const ENV_PREFIX: &str = "OPSCTL";

/// For each opsctl setting, the unprefixed variables read when `OPSCTL_<NAME>` is unset,
/// in order.
pub const FALLBACKS: &[(&str, &[&str])] = &[
    (
        "CUSTOMER_DATABASE_URL",
        &["CUSTOMER_DATABASE_URL", "CUSTOMER_SERVICE_DATABASE_URL"],
    ),
    (
        "ORDER_DATABASE_URL",
        &["ORDER_DATABASE_URL", "ORDER_SERVICE_DATABASE_URL"],
    ),
    ("CUSTOMER_BASE_URL", &["CUSTOMER_BASE_URL"]),
    ("ORDER_BASE_URL", &["ORDER_BASE_URL"]),
    (
        "GATEWAY_BASE_URL",
        &["GATEWAY_BASE_URL", "ORDER_SERVICE_PAYMENT_GATEWAY_URL"],
    ),
];

/// Default URLs of a local run.
pub const DEFAULT_CUSTOMER_BASE: &str = "http://127.0.0.1:8080";
pub const DEFAULT_ORDER_BASE: &str = "http://127.0.0.1:8081";
pub const DEFAULT_GATEWAY_BASE: &str = "http://127.0.0.1:9090";

/// Parses arguments with `env` as the environment (see the module documentation).
pub fn parse_from(
    args: impl IntoIterator<Item = impl Into<OsString>>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Cli, ConfigError> {
    platform::config::parse_from::<Cli>(ENV_PREFIX, args, |name| {
        env(name).or_else(|| {
            let own = name.strip_prefix("OPSCTL_")?;
            let (_, names) = FALLBACKS.iter().find(|(setting, _)| *setting == own)?;
            names.iter().find_map(|n| env(n))
        })
    })
}

/// The operator's CLI of the e-commerce platform: the runbook's procedures as commands.
#[derive(Parser, Debug)]
#[command(name = "opsctl", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the platform is.
#[derive(Args, Debug, Clone)]
pub struct Settings {
    /// PostgreSQL URL of the customer-facing service's database (also read from
    /// CUSTOMER_DATABASE_URL or CUSTOMER_SERVICE_DATABASE_URL).
    #[arg(
        long = "customer-database-url",
        env = "CUSTOMER_DATABASE_URL",
        global = true,
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/customer_db",
        hide_default_value = true
    )]
    pub customer_database_url: String,
    /// PostgreSQL URL of the order service's database (also read from ORDER_DATABASE_URL
    /// or ORDER_SERVICE_DATABASE_URL).
    #[arg(
        long = "order-database-url",
        env = "ORDER_DATABASE_URL",
        global = true,
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/order_db",
        hide_default_value = true
    )]
    pub order_database_url: String,
    #[command(flatten)]
    pub kafka: KafkaSettings,
    /// Base URL of the customer-facing service [default: http://127.0.0.1:8080].
    #[arg(long = "customer-base", env = "CUSTOMER_BASE_URL", global = true)]
    pub customer_base: Option<String>,
    /// Base URL of the order service [default: http://127.0.0.1:8081].
    #[arg(long = "order-base", env = "ORDER_BASE_URL", global = true)]
    pub order_base: Option<String>,
    /// Base URL of the payment gateway [default: http://127.0.0.1:9090]; its ledger is read
    /// with the admin token in the environment variable PAYMENT_GATEWAY_ADMIN_TOKEN.
    #[arg(long = "gateway-base", env = "GATEWAY_BASE_URL", global = true)]
    pub gateway_base: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Settings {
    pub fn gateway_base(&self) -> &str {
        self.gateway_base.as_deref().unwrap_or(DEFAULT_GATEWAY_BASE)
    }

    /// The gateway's admin token, which reads its ledger: from the environment
    /// (`PAYMENT_GATEWAY_ADMIN_TOKEN`) only, never a flag, so it stays out of shell
    /// histories and process lists.
    pub fn gateway_token(&self) -> Option<String> {
        std::env::var(GATEWAY_TOKEN_VARIABLE)
            .ok()
            .filter(|token| !token.is_empty())
    }
}

/// Where opsctl reads the gateway's admin token from.
pub const GATEWAY_TOKEN_VARIABLE: &str = "PAYMENT_GATEWAY_ADMIN_TOKEN";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Consumer groups: committed offsets, end offsets and lag.
    Kafka {
        #[command(subcommand)]
        command: KafkaCommand,
    },
    /// Dead-letter topics: list, show and replay records.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The transactional outboxes (order_created_outbox, payment_completed_outbox).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Checkout idempotency keys (checkout_idempotency).
    Idempotency {
        #[command(subcommand)]
        command: IdempotencyCommand,
    },
    /// Compare checkouts, orders, stock returns and the payment gateway's ledger; exit 1
    /// on mismatches (--repair re-drives what it can).
    Reconcile(ReconcileArgs),
    /// The quickstart journey against a running platform: login, catalogue, cart,
    /// checkout with replay, order PAID.
    Smoke(SmokeArgs),
    /// Managers who may log in to the customer-facing service.
    Manager {
        #[command(subcommand)]
        command: ManagerCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum KafkaCommand {
    /// Lag of a consumer group per partition (committed offset, end offset, lag).
    Lag {
        /// The consumer group: order-service-group (orders.created, payments.completed)
        /// or customer-service-group (orders.released).
        #[arg(long, default_value = events::ORDER_SERVICE_GROUP, conflicts_with = "all")]
        group: String,
        /// Every consumer group of the platform, one after the other.
        #[arg(long)]
        all: bool,
    },
    /// Consumer groups.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// What `rpk group describe <group>` shows: state, members and per-partition lag.
    Describe {
        /// The consumer group: order-service-group or customer-service-group.
        group: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// A summary of dead letters: where each came from and why it failed.
    List {
        /// Dead-letter topic: orders.created.dlq, payments.completed.dlq or
        /// orders.released.dlq; without it, every one of them.
        topic: Option<String>,
        /// Records to read, from the oldest.
        #[arg(long, short = 'n', default_value_t = 50)]
        num: usize,
    },
    /// Dead letters in full: payload and headers (like `rpk topic consume <topic> --num N`).
    Show {
        /// Dead-letter topic: orders.created.dlq, payments.completed.dlq or
        /// orders.released.dlq.
        topic: String,
        /// Records to read, from the oldest.
        #[arg(long, short = 'n', default_value_t = 5)]
        num: usize,
    },
    /// Re-publish dead letters to their original topic, exactly once per record.
    Replay(ReplayArgs),
}

/// `opsctl dlq replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Dead-letter topic: orders.created.dlq, payments.completed.dlq or
    /// orders.released.dlq.
    pub topic: String,
    /// Show what would be replayed; publish and commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay only matching records: key=<k>, error=<substring of class or message>,
    /// original-offset=<n>. Repeat to require several. Records a filter skips stay
    /// eligible for later runs.
    #[arg(long, value_parser = Filter::parse)]
    pub filter: Vec<Filter>,
    /// Consumer group whose committed offsets record what was already replayed.
    #[arg(long, default_value = REPLAY_GROUP)]
    pub group: String,
}

/// The consumer group that records what was replayed.
pub const REPLAY_GROUP: &str = "opsctl-dlq-replay";

/// Which dead letters a replay takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The record's key equals this.
    Key(String),
    /// The error class or message contains this.
    Error(String),
    /// The offset the record had on its original topic.
    OriginalOffset(i64),
}

impl Filter {
    /// Parses `key=<k>`, `error=<substring>` or `original-offset=<n>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage = "use key=<k>, error=<substring> or original-offset=<n>";
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| format!("'{text}': {usage}"))?;
        match name.trim() {
            "key" => Ok(Self::Key(value.to_owned())),
            "error" => Ok(Self::Error(value.to_owned())),
            "original-offset" => value
                .trim()
                .parse()
                .map(Self::OriginalOffset)
                .map_err(|_| format!("'{value}' is not an offset")),
            _ => Err(format!("unknown filter '{name}': {usage}")),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Rows by status and the age of the oldest pending row, for both outboxes.
    Status {
        /// Which outbox.
        #[arg(long, value_enum, default_value_t = OutboxChoice::All)]
        outbox: OutboxChoice,
    },
    /// Make rows due again: FAILED → PENDING with the backoff reset (and, without
    /// --failed, PENDING rows waiting on a backoff too). The services' relays pick them up.
    Requeue {
        /// Only FAILED rows.
        #[arg(long)]
        failed: bool,
        /// Only rows created at least this long ago (e.g. 10m).
        #[arg(long, value_parser = duration::parse)]
        older_than: Option<Duration>,
        /// Which outbox.
        #[arg(long, value_enum, default_value_t = OutboxChoice::All)]
        outbox: OutboxChoice,
    },
}

/// Which outbox a command works on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxChoice {
    /// order_created_outbox in customer_db.
    Customer,
    /// payment_completed_outbox in order_db.
    Order,
    All,
}

#[derive(Subcommand, Debug)]
pub enum IdempotencyCommand {
    /// The most recent keys (the runbook's section 5.3 query).
    List {
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
    /// Delete keys created longer ago than --older-than.
    Prune {
        #[arg(long, value_parser = duration::parse, default_value = "24h")]
        older_than: Duration,
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `opsctl reconcile`.
#[derive(Args, Debug, Clone)]
pub struct ReconcileArgs {
    /// A checkout with no order after this long is missing; an order that ended this
    /// long ago must have its stock back; a refund pending longer is a mismatch.
    #[arg(long, value_parser = duration::parse, default_value = "5m")]
    pub grace: Duration,
    /// A PENDING or PROCESSING order older than this is stuck.
    #[arg(long, value_parser = duration::parse, default_value = "10m")]
    pub stuck_after: Duration,
    /// Only checkouts and orders created within this window.
    #[arg(long, value_parser = duration::parse, default_value = "7d")]
    pub window: Duration,
    /// Skip the payment gateway's ledger (double charges, amounts and orphan charges are
    /// then not checked).
    #[arg(long)]
    pub no_ledger: bool,
    /// Re-drive what can be: requeue a missing order's checkout event, make a stuck
    /// payment or a pending refund due now, requeue the orders.released event of an
    /// order whose stock did not come back. Prints what it did per finding; safe to repeat.
    #[arg(long)]
    pub repair: bool,
}

/// `opsctl smoke`.
#[derive(Args, Debug, Clone)]
pub struct SmokeArgs {
    /// local, compose, or an env file setting CUSTOMER_BASE_URL and ORDER_BASE_URL;
    /// --customer-base and --order-base override it.
    #[arg(long, default_value = "local")]
    pub target: String,
    /// How long to wait for the order to be PAID.
    #[arg(long, value_parser = duration::parse, default_value = "30s")]
    pub timeout: Duration,
    /// Manager login used to create the catalogue entries.
    #[arg(long, default_value = "manager")]
    pub username: String,
    /// Read the password of --username from the first line of stdin; without this flag
    /// it is read from the variable OPSCTL_SMOKE_PASSWORD. Never from the command line
    /// (which `ps` and shell histories show), and there is no default.
    #[arg(long)]
    pub password_stdin: bool,
}

/// The variable `opsctl smoke` (and `scripts/validate-quickstart.sh`) read the manager's
/// password from, unless `--password-stdin` is given.
pub const SMOKE_PASSWORD_VAR: &str = "OPSCTL_SMOKE_PASSWORD";

#[derive(Subcommand, Debug)]
pub enum ManagerCommand {
    /// Create a manager (argon2id hash in customer_db's managers table).
    Create {
        username: String,
        /// Role; repeat for several.
        #[arg(long = "role", default_value = "MANAGER")]
        roles: Vec<String>,
        /// Read the password from the first line of stdin; without it a random
        /// password is generated and printed once.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for a manager.
    RotatePassword {
        username: String,
        /// Read the password from the first line of stdin; without it a random
        /// password is generated and printed once.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// The first line of stdin, without its line end.
pub fn read_password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on stdin");
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_from(
            std::iter::once("opsctl").chain(args.iter().copied()),
            |name| env.get(name).cloned(),
        )
    }

    #[test]
    fn the_broker_comes_from_the_prefixed_or_the_plain_variable() {
        let cli = parse(
            &["kafka", "lag"],
            &[("KAFKA_BOOTSTRAP_SERVERS", "plain:9092")],
        )
        .unwrap();
        assert_eq!(cli.settings.kafka.bootstrap_servers, "plain:9092");
        let cli = parse(
            &["kafka", "lag"],
            &[
                ("KAFKA_BOOTSTRAP_SERVERS", "plain:9092"),
                ("OPSCTL_KAFKA_BOOTSTRAP_SERVERS", "own:9092"),
            ],
        )
        .unwrap();
        assert_eq!(cli.settings.kafka.bootstrap_servers, "own:9092");
    }

    #[test]
    fn database_urls_fall_back_to_the_services_variables() {
        let cli = parse(
            &["outbox", "status"],
            &[("CUSTOMER_SERVICE_DATABASE_URL", "postgres://x@h/c")],
        )
        .unwrap();
        assert_eq!(cli.settings.customer_database_url, "postgres://x@h/c");
        assert!(cli.settings.order_database_url.ends_with("/order_db"));
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = parse(&["kafka", "lag", "--json", "--group", "g"], &[]).unwrap();
        assert!(cli.settings.json);
        assert!(
            matches!(cli.command, Command::Kafka { command: KafkaCommand::Lag { group, all: false } } if group == "g")
        );
    }

    #[test]
    fn help_exists_for_every_subcommand() {
        for args in [
            &["--help"][..],
            &["kafka", "group", "describe", "--help"],
            &["dlq", "replay", "--help"],
            &["outbox", "requeue", "--help"],
            &["manager", "rotate-password", "--help"],
        ] {
            assert!(
                matches!(parse(args, &[]), Err(ConfigError::Display(_))),
                "{args:?}"
            );
        }
    }

    #[test]
    fn lag_of_every_group_and_dead_letters_of_every_topic_need_no_name() {
        let cli = parse(&["kafka", "lag", "--all"], &[]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kafka {
                command: KafkaCommand::Lag { all: true, .. }
            }
        ));
        assert!(parse(&["kafka", "lag", "--all", "--group", "g"], &[]).is_err());
        let cli = parse(&["dlq", "list"], &[]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Dlq {
                command: DlqCommand::List { topic: None, .. }
            }
        ));
    }

    #[test]
    fn reconcile_repairs_only_when_asked() {
        let cli = parse(&["reconcile"], &[]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Reconcile(ReconcileArgs { repair: false, .. })
        ));
        let cli = parse(&["reconcile", "--repair", "--no-ledger"], &[]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Reconcile(ReconcileArgs {
                repair: true,
                no_ledger: true,
                ..
            })
        ));
    }

    #[test]
    fn a_bad_duration_is_one_line() {
        let Err(ConfigError::Invalid(line)) =
            parse(&["idempotency", "prune", "--older-than", "soon"], &[])
        else {
            panic!("expected an error")
        };
        assert!(!line.contains('\n'), "{line}");
    }
}
