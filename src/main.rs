//! The `cloudpg` command: parses the command line, sets up logging, and runs a subcommand.

use std::process::ExitCode;

mod cli;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use cloudpg::catalog::{describe, Catalog};
use cloudpg::config::{Config, LogFormat};
use cloudpg::observe::logging;

#[derive(Parser)]
#[command(name = "cloudpg", version, about = "AWS Cloud Control resources as PostgreSQL tables")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or as JSON objects; overrides `[log] format` in the config.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the tables cloudpg serves.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Run the PostgreSQL wire server.
    Serve(ServeArgs),
    /// Run the Cloud Control emulator alone (for the AWS SDKs, boto3 and the AWS CLI).
    Emulator(EmulatorArgs),
    /// Manage users of [[auth.users]].
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Run SQL once and print what it returns.
    Query(QueryArgs),
    /// Check configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Keep the resource schemas current.
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
    },
}

#[derive(Subcommand)]
enum SchemasCommand {
    /// Read every resource type's current schema from an account (CloudFormation ListTypes and
    /// DescribeType: public types, and the account's private and third-party ones) and write
    /// those that differ from the shipped ones to the schema directory, which the server reads
    /// at startup. Table and column names already given never change.
    Refresh(RefreshArgs),
}

#[derive(clap::Args)]
struct RefreshArgs {
    /// Configuration file (accounts, credentials, endpoint, `[schemas] directory`).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Where to write; default: `[schemas] directory`, else ~/.local/share/cloudpg/schemas.
    #[arg(long)]
    directory: Option<std::path::PathBuf>,
    /// The region to read; default: the account's first region, else us-east-1.
    #[arg(long)]
    region: Option<String>,
    /// The account (its name in [[accounts]]) to read; default: the first.
    #[arg(long)]
    account: Option<String>,
    /// Only types matching these patterns, e.g. `--type 'AWS::Logs::*'`.
    #[arg(long = "type")]
    types: Vec<String>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a file with the CLOUDPG_… environment over it, and print the configuration the
    /// server would run with (passwords masked); exits 1 when it is invalid.
    Check {
        /// The TOML file (config/default.toml documents every key).
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Read a password from standard input and print its verifier, to paste as `password`.
    Hash {
        /// Print an md5 verifier for this user name instead (old drivers; needs auth.method = "md5").
        #[arg(long, value_name = "USER")]
        md5_for: Option<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (config/default.toml documents every key).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Address to listen on; overrides `listen` in the config.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Start the Cloud Control emulator in-process and query it instead of AWS.
    #[arg(long)]
    emulator: bool,
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The statement(s) to run.
    sql: String,
    /// A running cloudpg (or any PostgreSQL), as a libpq connection string or postgres:// URL.
    #[arg(long, conflicts_with_all = ["emulator", "config"])]
    url: Option<String>,
    /// Run on an in-process server over the embedded emulator instead of AWS.
    #[arg(long)]
    emulator: bool,
    /// Configuration file of the in-process server.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// How to print rows.
    #[arg(long, value_enum, default_value = "table")]
    format: cli::query::Format,
}

#[derive(clap::Args)]
struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: std::net::SocketAddr,
    /// Demo resources seeded per (region, type) on first use.
    #[arg(long, default_value_t = 5)]
    resources_per_type: usize,
    /// ListResources page size.
    #[arg(long, default_value_t = 20)]
    page_size: usize,
    /// Latency added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Up to this much more latency, uniformly at random, in milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// How long a mutation stays IN_PROGRESS, in milliseconds.
    #[arg(long, default_value_t = 50)]
    mutation_delay_ms: u64,
    /// Seed of the generated demo data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Probability (0-1) that a call is answered with ThrottlingException.
    #[arg(long, default_value_t = 0.0)]
    throttle: f64,
    /// Probability (0-1) that a call is answered with a 5xx error.
    #[arg(long, default_value_t = 0.0)]
    server_error: f64,
    /// Probability (0-1) that a mutation ends FAILED.
    #[arg(long, default_value_t = 0.0)]
    fail_async: f64,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List tables, with the statements each supports.
    List {
        /// Only the tables of this service (schema), e.g. `ec2`.
        #[arg(long)]
        service: Option<String>,
        /// Configuration file: its `[schemas] directory` overrides the shipped schemas.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Describe one table: columns, identifier, INSERT columns, statements, permissions.
    Describe {
        /// `awscc.ec2.instance_connect_endpoints` (the `awscc.`/`aws.` prefix is optional).
        table: String,
        /// Configuration file: its `[schemas] directory` overrides the shipped schemas.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Print the IAM policy (JSON) the chosen tables need: Cloud Control's actions and each
    /// type's handler permissions. Without --service or --table: every table.
    IamPolicy {
        /// Only what SELECT needs (the read and list handlers).
        #[arg(long)]
        read_only: bool,
        /// Every table of these services (schemas), e.g. `--service ec2 --service s3`.
        #[arg(long = "service")]
        services: Vec<String>,
        /// These tables, e.g. `--table ec2.vpcs`.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Configuration file: its `[schemas] directory` overrides the shipped schemas.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Check the catalog's assumptions against a real account, read-only: list a sample of
    /// types in every configured account and region, and report where AWS disagrees (a type
    /// missing from a region, a list that needs no parent, a type that answers as global),
    /// writing the findings, each with the call it rests on, to facts.json in the schema
    /// directory, which the server applies at startup.
    LiveCheck(LiveCheckArgs),
}

#[derive(clap::Args)]
struct LiveCheckArgs {
    /// Configuration file (accounts, regions, credentials, `[schemas] directory`).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// How many types to check (the same spread over services on every run).
    #[arg(long, default_value_t = 40)]
    sample: usize,
    /// Check these types instead, e.g. `--type 'AWS::S3::*'`.
    #[arg(long = "type")]
    types: Vec<String>,
    /// Where facts.json goes; default: the schema directory.
    #[arg(long)]
    directory: Option<std::path::PathBuf>,
    /// Report only; write nothing.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudpg: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by RUST_LOG (default `info`), as `format` says.
fn init_tracing(format: LogFormat) -> anyhow::Result<logging::Guard> {
    logging::init(format, "info", None).map_err(|e| anyhow::anyhow!("{e}"))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let log_format = cli.log_format;
    match cli.command {
        Command::Catalog { command } => {
            let _logs = init_tracing(log_format.unwrap_or_default())?;
            run_catalog(command)
        }
        Command::User { command } => {
            let _logs = init_tracing(log_format.unwrap_or_default())?;
            run_user(command)
        }
        Command::Config { command } => run_config(command),
        Command::Schemas {
            command: SchemasCommand::Refresh(args),
        } => {
            let _logs = init_tracing(log_format.unwrap_or_default())?;
            runtime()?.block_on(run_refresh(args))
        }
        Command::Emulator(args) => {
            let _logs = init_tracing(log_format.unwrap_or_default())?;
            runtime()?.block_on(run_emulator(args))
        }
        Command::Query(args) => {
            // Its output is the result; the in-process server's own lines only when they matter.
            let _logs = logging::init(log_format.unwrap_or_default(), "warn", None).map_err(|e| anyhow::anyhow!("{e}"))?;
            runtime()?.block_on(run_query(args))
        }
        Command::Serve(args) => {
            let config = Config::load_layered(args.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            // Declared before the runtime so it is dropped after it: the last spans are sent
            // once every task has finished.
            let _logs = logging::init(log_format.unwrap_or(config.log.format), "info", Some(&config.tracing))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            runtime()?.block_on(run_serve(args, config))
        }
    }
}

fn run_config(command: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check { file } = command;
    let raw = cloudpg::config::sources::read(Some(&file), std::env::vars()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Config::from_raw(raw.clone()).map_err(|e| anyhow::anyhow!("config file {}: {e}", file.display()))?;
    let text = cloudpg::config::effective_toml(&raw).map_err(|e| anyhow::anyhow!("{e}"))?;
    print_stdout(&format!("# {} is valid; the effective configuration:\n{text}", file.display())).context("writing to standard output")
}

async fn run_live_check(args: LiveCheckArgs) -> anyhow::Result<()> {
    use cloudpg::catalog::{assumptions, overrides};
    let config = Config::load_layered(args.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = cloudpg::cloudcontrol::client::Target::Aws;
    let registry = resource_schemas::Registry::shipped().map_err(|e| anyhow::anyhow!("{e}"))?;
    let sdk = cloudpg::cloudcontrol::client::SdkApi::connect_for_command(&config, target.clone())
        .await
        .map_err(with_hint)?;
    let accounts = cloudpg::server::resolve_accounts(&config, &sdk);
    let places = assumptions::places(&accounts, registry);
    let types = assumptions::sample(registry, args.sample, &args.types);
    let facts = assumptions::live_check(&sdk, registry, &types, &places).await;
    let mut out = format!(
        "Checked {} types in {} places ({}).\n",
        types.len(),
        places.len(),
        places.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
    );
    if facts.findings.is_empty() {
        out.push_str("AWS agrees with every assumption checked.\n");
    }
    for f in &facts.findings {
        out.push_str(&format!("- {}\n", f.describe()));
    }
    if !args.dry_run {
        let dir = args
            .directory
            .or_else(|| overrides::directory(&config, &target))
            .ok_or_else(|| anyhow::anyhow!("no schema directory: give --directory"))?;
        let path = dir.join(assumptions::FACTS_FILE);
        let text = serde_json::to_string_pretty(&facts)?;
        overrides::write_atomically(&path, format!("{text}\n").as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        out.push_str(&format!(
            "Findings written to {} (the server applies them at startup).\n",
            path.display()
        ));
    }
    print_stdout(&out).context("writing to standard output")
}

async fn run_refresh(args: RefreshArgs) -> anyhow::Result<()> {
    use cloudpg::catalog::{overrides, refresh};
    let config = Config::load_layered(args.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = cloudpg::cloudcontrol::client::Target::Aws;
    let dir = args
        .directory
        .or_else(|| overrides::directory(&config, &target))
        .ok_or_else(|| anyhow::anyhow!("no schema directory: [schemas] directory is \"off\" and HOME is not set; give --directory"))?;
    let sdk = cloudpg::cloudcontrol::client::SdkApi::connect_for_command(&config, target)
        .await
        .map_err(with_hint)?;
    let options = refresh::RefreshOptions {
        dir,
        place: refresh::place_for(&config, &sdk, args.account.as_deref(), args.region.as_deref()).map_err(with_hint)?,
        types: args.types,
    };
    let report = refresh::refresh(&sdk, &options).await.map_err(with_hint)?;
    print_stdout(&report.render(&options)).context("writing to standard output")?;
    if report.failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} types could not be read", report.failed.len())
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.url {
        let out = cli::query::run(url, &args.sql, args.format).await?;
        return print_stdout(&out).context("writing to standard output");
    }
    let mut config = Config::load_layered(args.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Its own server, for this process alone: loopback, any port, no password, no metrics.
    config.listen = "127.0.0.1:0".parse()?;
    config.auth = cloudpg::config::AuthConfig {
        method: cloudpg::auth::Method::Trust,
        users: Vec::new(),
        max_failure_delay: config.auth.max_failure_delay,
    };
    config.metrics_listen = None;
    config.shutdown_timeout = std::time::Duration::from_secs(1);
    let (emulator, target) = start_target(&config, args.emulator).await?;
    let engine = cloudpg::server::engine(std::sync::Arc::new(config), target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on a loopback port")?;
    let port = listener.local_addr()?.port();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(cloudpg::server::run(listener, engine, stop.clone().cancelled_owned()));
    let conninfo = format!("host=127.0.0.1 port={port} user=cloudpg dbname=awscc application_name=cloudpg-query");
    let out = cli::query::run(&conninfo, &args.sql, args.format).await;
    stop.cancel();
    let _ = server.await;
    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    print_stdout(&out?).context("writing to standard output")
}

/// Where Cloud Control calls go: an embedded emulator started here, or AWS.
async fn start_target(
    config: &Config,
    emulator: bool,
) -> anyhow::Result<(Option<cloudpg_emulator::Emulator>, cloudpg::cloudcontrol::client::Target)> {
    if !emulator {
        return Ok((None, cloudpg::cloudcontrol::client::Target::Aws));
    }
    let e = &config.emulator;
    let emu_config = cloudpg_emulator::EmulatorConfig {
        resources_per_type: e.resources_per_type,
        page_size: e.page_size,
        seed: e.seed,
        mutation_delay_ms: e.mutation_delay.as_millis() as u64,
        faults: cloudpg_emulator::FaultConfig {
            global: cloudpg_emulator::FaultRule {
                latency_ms: Some(e.latency_ms),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let emu = cloudpg_emulator::Emulator::start("127.0.0.1:0".parse()?, emu_config)
        .await
        .context("starting the embedded emulator")?;
    let url = emu.endpoint_url();
    Ok((Some(emu), cloudpg::cloudcontrol::client::Target::Emulator(url)))
}

async fn run_serve(args: ServeArgs, mut config: Config) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    for warning in config.check_exposure(args.emulator).map_err(|e| anyhow::anyhow!("{e}"))? {
        tracing::warn!("{warning}");
    }
    let (emulator, target) = start_target(&config, args.emulator).await?;
    let config = std::sync::Arc::new(config);
    let engine = cloudpg::server::engine(config.clone(), target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics = match config.metrics_listen {
        Some(metrics_addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr} (metrics.listen)"))?;
            let bound = metrics_listener.local_addr()?;
            let shutdown = stop.clone().cancelled_owned();
            let task = tokio::spawn(cloudpg::server::serve_metrics(engine.clone(), metrics_listener, shutdown));
            Some((bound, task))
        }
        None => None,
    };
    tracing::info!(%addr, emulator = args.emulator, metrics = ?metrics.as_ref().map(|m| m.0), "cloudpg listening");
    print_stdout(&format!("listening on {addr}\n"))?;
    if let Some((bound, _)) = &metrics {
        print_stdout(&format!("metrics on http://{bound}\n"))?;
    }
    let stopper = stop.clone();
    tokio::spawn(async move {
        stop_signal().await;
        stopper.cancel();
    });
    cloudpg::server::run(listener, engine, stop.clone().cancelled_owned())
        .await
        .context("serving connections")?;
    stop.cancel();
    if let Some((_, task)) = metrics {
        match task.await {
            Ok(Err(e)) => tracing::warn!(cause = %e, "the metrics listener failed"),
            Err(e) => tracing::warn!(cause = %e, "the metrics listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    Ok(())
}

async fn run_emulator(args: EmulatorArgs) -> anyhow::Result<()> {
    let probability = |name: &str, p: f64| {
        anyhow::ensure!((0.0..=1.0).contains(&p), "--{name} must be between 0 and 1, got {p}");
        Ok((p > 0.0).then_some(p))
    };
    let config = cloudpg_emulator::EmulatorConfig {
        resources_per_type: args.resources_per_type,
        page_size: args.page_size.max(1),
        seed: args.seed,
        mutation_delay_ms: args.mutation_delay_ms,
        faults: cloudpg_emulator::FaultConfig {
            global: cloudpg_emulator::FaultRule {
                latency_ms: Some(args.latency_ms),
                jitter_ms: Some(args.jitter_ms),
                throttle: probability("throttle", args.throttle)?,
                server_error: probability("server-error", args.server_error)?,
                fail_async: probability("fail-async", args.fail_async)?,
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let emulator = cloudpg_emulator::Emulator::start(args.listen, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    print_stdout(&format!("listening on {}\n", emulator.endpoint_url()))?;
    stop_signal().await;
    emulator.shutdown().await;
    Ok(())
}

/// SIGTERM (from a container runtime or systemd) or SIGINT (Ctrl-C): both stop gracefully.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(cause = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                futures::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: no new connections; running statements and started mutations may finish");
}

fn run_user(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Hash { md5_for } = command;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "the password is empty: write it to standard input, e.g. `cloudpg user hash < file`"
    );
    let verifier = match md5_for {
        Some(user) => cloudpg::auth::md5_verifier(&user, password),
        None => cloudpg::auth::ScramVerifier::from_password(password).to_string(),
    };
    print_stdout(&format!("{verifier}\n")).context("writing to standard output")
}

/// The tables a server against AWS with this configuration serves: the shipped schemas with
/// the schema directory's overrides (`[schemas] directory`, else the user's data directory).
fn catalog(config: Option<&std::path::Path>) -> anyhow::Result<Catalog> {
    use cloudpg::catalog::overrides;
    let config = Config::load_layered(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = cloudpg::cloudcontrol::client::Target::Aws;
    if let Some(dir) = overrides::directory(&config, &target) {
        overrides::use_directory(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let registry = resource_schemas::Registry::shared().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Catalog::build(registry))
}

fn run_catalog(command: CatalogCommand) -> anyhow::Result<()> {
    let config = match &command {
        CatalogCommand::LiveCheck(_) => None,
        CatalogCommand::List { config, .. } | CatalogCommand::Describe { config, .. } | CatalogCommand::IamPolicy { config, .. } => {
            config.clone()
        }
    };
    let text = match command {
        CatalogCommand::LiveCheck(args) => return runtime()?.block_on(run_live_check(args)),
        CatalogCommand::List { service, .. } => describe::list_text(&catalog(config.as_deref())?, service.as_deref()).map_err(with_hint)?,
        CatalogCommand::Describe { table, .. } => {
            let catalog = catalog(config.as_deref())?;
            let t = catalog.resolve(&table.to_ascii_lowercase()).ok_or_else(|| {
                with_hint(cloudpg::Error::UndefinedTable {
                    name: table.clone(),
                    suggestions: catalog.closest_tables(&table, 5),
                })
            })?;
            describe::describe_text(t)
        }
        CatalogCommand::IamPolicy {
            read_only,
            services,
            tables,
            ..
        } => {
            let catalog = catalog(config.as_deref())?;
            let scope = cloudpg::catalog::policy::PolicyScope {
                read_only,
                services,
                tables,
            };
            let policy = cloudpg::catalog::policy::iam_policy(&catalog, &scope).map_err(with_hint)?;
            format!("{}\n", serde_json::to_string_pretty(&policy)?)
        }
    };
    print_stdout(&text).context("writing to standard output")
}

fn with_hint(e: cloudpg::Error) -> anyhow::Error {
    match e.hint() {
        Some(h) => anyhow::anyhow!("{e}\nhint: {h}"),
        None => anyhow::anyhow!("{e}"),
    }
}

/// Writes the command's result; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
