//! What operators watch: Prometheus metrics recorded along the statement, API-call, cache and
//! connection paths (`metrics`), the HTTP listener serving them with health checks (`http`),
//! and log lines and exported spans (`logging`).

pub mod http;
pub mod logging;
pub mod metrics;
