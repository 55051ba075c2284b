//! What operators watch: Prometheus metrics recorded along the statement, API-call, cache and
//! connection paths (`metrics`), and the HTTP listener serving them with health checks
//! (`http`).

pub mod http;
pub mod metrics;
