//! The accept loop: one task per connection, a connection limit, and graceful shutdown.
//! [`engine`] wires the parts a server runs on: config → API client (AWS or the embedded
//! emulator) → cache → catalog → engine.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::catalog::provider::Backend;
use crate::catalog::Catalog;
use crate::cloudcontrol::cache::CachedApi;
use crate::cloudcontrol::client::{SdkApi, Target};
use crate::cloudcontrol::requests::{PollSettings, RequestLog};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sql::Engine;
use crate::wire::Connection;

/// Builds the engine for a config and an API target.
pub async fn engine(config: Arc<Config>, target: Target) -> Result<Arc<Engine>> {
    let registry = resource_schemas::Registry::shared().map_err(|e| Error::Config(e.to_string()))?;
    let sdk = SdkApi::connect(&config, target.clone()).await?;
    let api = Arc::new(CachedApi::new(Arc::new(sdk), config.cache.ttl, config.cache.max_bytes));
    let poll = PollSettings {
        initial: config.mutations.poll_initial,
        max: config.mutations.poll_max,
    };
    // The emulator is a sandbox; real accounts are read-only unless the config says otherwise.
    let mutations_allowed = config.mutations.allow.unwrap_or(matches!(target, Target::Emulator(_)));
    let backend = Arc::new(Backend {
        catalog: Arc::new(Catalog::build(registry)),
        requests: RequestLog::new(api.clone(), poll),
        api,
        config: config.clone(),
        mutations_allowed,
    });
    Ok(Arc::new(Engine::new(backend)?))
}

/// Serves connections on `listener` until `shutdown` completes; then stops accepting, gives
/// open connections `shutdown_timeout` to end, and closes the rest.
pub async fn run(listener: TcpListener, engine: Arc<Engine>, shutdown: impl Future<Output = ()>) {
    let config = engine.backend.config.clone();
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let cancels = Arc::new(pgwire::api::ConnectionManager::new());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(cause = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection refused: max_connections reached");
                    connections.spawn(refuse(socket));
                    continue;
                };
                let handlers = Arc::new(Connection::new(engine.clone(), cancels.clone()));
                let span = tracing::info_span!("connection", %peer);
                connections.spawn(tracing::Instrument::instrument(async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                        tracing::debug!(cause = %e, "connection ended with an error");
                    }
                    drop(permit);
                }, span));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(config.shutdown_timeout, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::info!(open = connections.len(), "closing connections still open after shutdown_timeout");
        connections.shutdown().await;
    }
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
