//! The HTTP listener of `[metrics] listen`: `/metrics` in Prometheus' text format, `/healthz`
//! (the process answers) and `/readyz` (the catalog is loaded and Cloud Control credentials
//! can be had; 503 with the reason otherwise).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

/// Whether the server can answer queries; `Err` says why not.
pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;
/// Updates gauges that are read rather than recorded (cache size) before a scrape.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Endpoints {
    handle: PrometheusHandle,
    ready: ReadyCheck,
    refresh: Refresh,
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    ready: ReadyCheck,
    refresh: Refresh,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Endpoints { handle, ready, refresh });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn metrics(State(e): State<Endpoints>) -> impl IntoResponse {
    (e.refresh)().await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        e.handle.render(),
    )
}

async fn readyz(State(e): State<Endpoints>) -> impl IntoResponse {
    match (e.ready)().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}
