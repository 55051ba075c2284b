//! The accept loop: a connection limit, the worker threads connections run on, and graceful
//! shutdown. [`engine`] wires the parts a server runs on: config → API client (AWS or the
//! embedded emulator) → cache → catalog → engine.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::catalog::accounts::{Account, Accounts};
use crate::catalog::provider::Backend;
use crate::catalog::snapshots::ScanCache;
use crate::catalog::Catalog;
use crate::cloudcontrol::cache::CachedApi;
use crate::cloudcontrol::client::{SdkApi, Target};
use crate::cloudcontrol::journal::Journal;
use crate::cloudcontrol::requests::{PollSettings, RequestLog};
use crate::cloudcontrol::scrub::Scrubber;
use crate::cloudcontrol::usage::Usage;
use crate::config::{Config, DefaultRegions};
use crate::error::{Error, Result};
use crate::sql::Engine;
use crate::wire::{Access, Connection, ConnectionLimits};

/// Stack of each worker thread. Parsing, planning and evaluating an expression recurse once per
/// nesting level in sqlparser and DataFusion; `limits.max_expression_depth` (at most
/// `config::MAX_EXPRESSION_DEPTH`) is what this is sized for, with a wide margin. Only the
/// pages a thread touches are ever committed.
pub const WORKER_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Builds the engine for a config and an API target.
pub async fn engine(config: Arc<Config>, target: Target) -> Result<Arc<Engine>> {
    let mut config = config;
    crate::catalog::overrides::prepare(&config, &target).await?;
    let registry = resource_schemas::Registry::shared().map_err(|e| Error::Config(e.to_string()))?;
    let catalog = Arc::new(Catalog::build(registry).restrict(&config.catalog)?);
    let scrubber = Arc::new(Scrubber::new(registry, redacted_properties(&config, &catalog)?));
    let calls = Arc::new(crate::cloudcontrol::calls::CallLog::default());
    let sdk = SdkApi::connect(&config, target.clone(), scrubber.clone(), calls.clone()).await?;
    if matches!(target, Target::Aws) {
        check_credentials(&config, &sdk).await?;
    }
    let accounts = Arc::new(resolve_accounts(&config, &sdk));
    if config.regions.is_none() {
        // Accounts that all read the same regions make that the session default `SHOW
        // cloudpg.regions` prints; otherwise each account reads its own.
        let mut shared = accounts.iter().map(|a| &a.regions);
        if let Some(first) = shared.next().filter(|first| shared.all(|r| r == *first)) {
            let mut with_default = (*config).clone();
            with_default.regions = Some(first.clone());
            config = Arc::new(with_default);
        }
    }
    let api = Arc::new(CachedApi::with_stale(
        Arc::new(sdk),
        config.cache.ttl,
        config.cache.stale_while_revalidate,
        config.cache.max_bytes,
    ));
    let poll = PollSettings {
        initial: config.mutations.poll_initial,
        max: config.mutations.poll_max,
    };
    // The emulator is a sandbox; real accounts are read-only unless the config says otherwise.
    let mutations_allowed = config.mutations.allow.unwrap_or(matches!(target, Target::Emulator(_)));
    let journal = match journal_path(&config, &target, mutations_allowed)? {
        Some(path) => Some(Journal::open(&path)?),
        None => None,
    };
    let requests = RequestLog::new(api.clone(), poll, journal.as_ref().map(|(j, _)| j.clone()), scrubber);
    if let Some((_, opened)) = journal {
        requests.resume(opened);
    }
    let scans = Arc::new(ScanCache::new(api.ttl(), config.cache.max_bytes));
    let backend = Arc::new(Backend {
        scans,
        catalog,
        requests,
        api,
        config: config.clone(),
        mutations_allowed,
        calls,
        accounts,
        usage: Arc::new(Usage::new(
            config
                .auth
                .users
                .iter()
                .filter_map(|u| u.max_calls_per_minute.map(|n| (u.name.clone(), n))),
        )),
    });
    let engine = Arc::new(Engine::new(backend)?);
    crate::allocator::release_free_memory();
    Ok(engine)
}

/// Each account with the regions it reads by default: its own `regions`, else the server's,
/// else its profile's region or `AWS_REGION`, else us-east-1.
pub fn resolve_accounts(config: &Config, sdk: &SdkApi) -> Accounts {
    Accounts::new(
        config
            .accounts
            .iter()
            .map(|a| {
                let regions =
                    a.regions.clone().or_else(|| config.regions.clone()).unwrap_or_else(|| {
                        DefaultRegions::List(vec![sdk.profile_region(&a.name).unwrap_or_else(|| "us-east-1".to_string())])
                    });
                Account::new(a.name.clone(), a.credentials.describe(), regions)
            })
            .collect(),
    )
}

/// Fails at startup, not on the first query, when no credentials can be had. With several
/// accounts, one whose credentials fail is logged and the others are served: its queries fail
/// naming it, and `/readyz` reports it.
async fn check_credentials(config: &Config, sdk: &SdkApi) -> Result<()> {
    let problems = sdk.credential_problems().await;
    if problems.is_empty() {
        return Ok(());
    }
    if problems.len() == config.accounts.len() {
        let (_, first) = &problems[0];
        return Err(no_credentials(config, first));
    }
    for (account, e) in &problems {
        tracing::warn!(account, cause = %e, "an account's credentials cannot be had; its queries will fail until they can");
    }
    Ok(())
}

/// Where mutations are journaled (`[mutations] journal`): a path, "off", or by default the
/// user's state directory against AWS and nowhere on the embedded emulator, whose resources
/// end with the process.
fn journal_path(config: &Config, target: &Target, mutations_allowed: bool) -> Result<Option<std::path::PathBuf>> {
    match config.mutations.journal.as_deref() {
        Some("off") => Ok(None),
        Some("") => Err(Error::Config(
            "[mutations] journal is empty: give a file path, or \"off\" to keep requests in memory only".into(),
        )),
        Some(path) => Ok(Some(path.into())),
        None if matches!(target, Target::Emulator(_)) => Ok(None),
        None => match crate::cloudcontrol::journal::default_path() {
            Some(path) => Ok(Some(path)),
            None if !mutations_allowed => Ok(None),
            None => Err(Error::Config(
                "mutations are allowed but there is no state directory for the mutation journal (neither \
                 XDG_STATE_HOME nor HOME is set): set [mutations] journal to a file path, or \"off\""
                    .into(),
            )),
        },
    }
}

/// Startup without AWS credentials: where the SDK looked and how to try cloudpg without AWS.
fn no_credentials(config: &Config, cause: &Error) -> Error {
    let profile = config.aws.profile.as_deref().unwrap_or("default");
    if config.accounts.len() > 1 {
        return Error::Config(format!("no account's AWS credentials could be had; the first: {cause}"));
    }
    Error::Config(format!(
        "no AWS credentials could be found ({cause}). Looked in: the environment (AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), the shared files ~/.aws/credentials and ~/.aws/config \
         (profile {profile:?}, including SSO and credential_process), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), \
         the ECS container endpoint and EC2 instance metadata. Give credentials one of those ways, set \
         [aws] profile, or run `cloudpg serve --emulator` to try cloudpg on its built-in emulator without AWS"
    ))
}

/// `[redact] columns` as the properties they show, by type; an unknown column is an error.
fn redacted_properties(config: &Config, catalog: &Catalog) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for name in &config.redact.columns {
        let bad = |why: String| Error::Config(format!("redact.columns: {name:?} {why}"));
        let (table_name, column) = name
            .rsplit_once('.')
            .ok_or_else(|| bad("is not <table>.<column> (awscc.lambda.functions.environment)".into()))?;
        let table = catalog.resolve(&table_name.to_ascii_lowercase()).ok_or_else(|| {
            bad(format!(
                "names no table (closest: {})",
                catalog.closest_tables(table_name, 3).join(", ")
            ))
        })?;
        let property = table
            .column(&column.to_ascii_lowercase())
            .and_then(|c| c.property())
            .ok_or_else(|| bad(format!("names no property column of {}", table.qualified_name())))?;
        out.entry(table.type_name().to_string()).or_default().push(property.to_string());
    }
    Ok(out)
}

/// The threads connections and their statements run on, with stacks deep enough for the
/// expression depth the server accepts (whatever runtime the caller has).
struct Workers(Option<tokio::runtime::Runtime>);

impl Workers {
    fn start(threads: usize) -> std::io::Result<Workers> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("cloudpg-worker")
            .thread_stack_size(WORKER_STACK_BYTES)
            .enable_all()
            .build()?;
        Ok(Workers(Some(runtime)))
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this may run inside another runtime, so let it go.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Serves connections on `listener` until `shutdown` completes. Then it stops accepting,
/// tells idle connections and closes them, lets running statements finish, and keeps
/// tracking started mutations, all up to `shutdown_timeout`; what is left is closed.
pub async fn run(listener: TcpListener, engine: Arc<Engine>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let config = engine.backend.config.clone();
    let workers = Workers::start(config.limits.workers)?;
    let Some(handle) = workers.handle().cloned() else {
        return Ok(());
    };
    let limits = ConnectionLimits {
        startup_timeout: config.limits.startup_timeout,
        tcp_keepalive: config.limits.tcp_keepalive,
        max_message_size: config.limits.max_message_size,
    };
    let access = Arc::new(Access::new(&config).map_err(|e| std::io::Error::other(e.to_string()))?);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let cancels = Arc::new(pgwire::api::ConnectionManager::new());
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    // SIGHUP reloads the TLS certificate; where it cannot be listened for, nothing does.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = next_signal(&mut hangup) => match access.tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                Err(e) => tracing::error!(cause = %e, "SIGHUP: keeping the current TLS certificate"),
            },
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(cause = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection refused: max_connections reached");
                    connections.spawn(refuse(socket));
                    continue;
                };
                // The socket moves to the workers' reactor.
                let Ok(std_socket) = socket.into_std() else { continue };
                let handlers = Connection::new(engine.clone(), cancels.clone(), access.clone());
                let span = tracing::info_span!("connection", %peer);
                let (limits, stopping) = (limits.clone(), stopping.clone());
                connections.spawn_on(tracing::Instrument::instrument(async move {
                    let _open = crate::observe::metrics::ConnectionGauge::open();
                    match tokio::net::TcpStream::from_std(std_socket) {
                        Ok(tcp) => {
                            if let Err(e) = crate::wire::serve(tcp, peer, handlers, limits, stopping).await {
                                tracing::debug!(cause = %e, "connection ended with an error");
                            }
                        }
                        Err(e) => tracing::warn!(cause = %e, "could not take over an accepted socket"),
                    }
                    drop(permit);
                }, span), &handle);
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    stopping.cancel();
    let requests = engine.backend.requests.clone();
    let drained = tokio::time::timeout(config.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
        requests.settled().await;
    })
    .await;
    if drained.is_err() {
        tracing::info!(open = connections.len(), "closing what is still running after shutdown_timeout");
        connections.shutdown().await;
    }
    drop(workers);
    Ok(())
}

async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => futures::future::pending().await,
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` for `engine` on `listener` until `shutdown`.
/// Installs the process's metrics recorder; without this nothing records.
pub async fn serve_metrics(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(handle) = crate::observe::metrics::install() else {
        return Err(std::io::Error::other("another metrics recorder is installed in this process"));
    };
    let api = engine.backend.api.clone();
    let ready: crate::observe::http::ReadyCheck = Arc::new(move || {
        let api = api.clone();
        Box::pin(async move { api.ready().await.map_err(|e| e.to_string()) })
    });
    let api = engine.backend.api.clone();
    let refresh: crate::observe::http::Refresh = Arc::new(move || {
        let api = api.clone();
        Box::pin(async move {
            let (entries, bytes) = api.size().await;
            crate::observe::metrics::cache_size(entries, bytes);
        })
    });
    crate::observe::http::serve(listener, handle, ready, refresh, shutdown).await
}

/// Tells a client over the limit why, as PostgreSQL does (53300), then closes.
async fn refuse(mut socket: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut body = Vec::new();
    body.push(b'S');
    body.extend_from_slice(b"FATAL\0");
    body.push(b'C');
    body.extend_from_slice(b"53300\0");
    body.push(b'M');
    body.extend_from_slice(b"sorry, too many clients already (max_connections)\0");
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&((body.len() as u32 + 4).to_be_bytes()));
    msg.extend_from_slice(&body);
    let _ = socket.write_all(&msg).await;
}
