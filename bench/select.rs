//! SELECT throughput and latency, measured through the wire (tokio-postgres) against the
//! emulator. Run with `cargo bench --bench select`.
//!
//! - rows/s of a 100,000-row scan served from the cache;
//! - a cold list + hydrate of 2,000 resources with 20 ms emulated latency per call, against
//!   the lower bound max(pages, N / concurrency) × latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudpg::cloudcontrol::client::Target;
use cloudpg::config::Config;
use cloudpg_emulator::{Emulator, EmulatorConfig, FaultRule};
use tokio_postgres::{NoTls, SimpleQueryMessage};

async fn serve(emu: EmulatorConfig) -> (Emulator, tokio_postgres::Client, tokio::sync::oneshot::Sender<()>, Arc<Config>) {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), emu).await.unwrap();
    let config = Arc::new(Config::default());
    let engine = cloudpg::server::engine(config.clone(), Target::Emulator(emulator.endpoint_url()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(cloudpg::server::run(listener, engine, async {
        let _ = rx.await;
    }));
    let (client, conn) = tokio_postgres::connect(&format!("host=127.0.0.1 port={port} user=postgres dbname=awscc"), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    (emulator, client, tx, config)
}

async fn count_rows(c: &tokio_postgres::Client, sql: &str) -> (usize, Duration) {
    let t = Instant::now();
    let n = c
        .simple_query(sql)
        .await
        .unwrap()
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    (n, t.elapsed())
}

async fn cached_scan() {
    const N: usize = 100_000;
    let mut emu = EmulatorConfig::default();
    emu.resources_per_type_overrides.insert("AWS::SQS::Queue".into(), N);
    emu.page_size_overrides.insert("AWS::SQS::Queue".into(), 100);
    let (emulator, c, stop, _) = serve(emu).await;
    let sql = "SELECT queue_url, region FROM awscc.sqs.queues WHERE region = 'us-east-1'";
    let (n, cold) = count_rows(&c, sql).await;
    assert_eq!(n, N);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (n, d) = count_rows(&c, sql).await;
        assert_eq!(n, N);
        best = best.min(d);
    }
    println!(
        "cached scan: {N} rows in {best:.2?} = {:.0} rows/s (cold, with {} list pages: {cold:.2?})",
        N as f64 / best.as_secs_f64(),
        N / 100
    );
    let _ = stop.send(());
    emulator.shutdown().await;
}

async fn cold_hydrate() {
    const N: usize = 2_000;
    let latency = Duration::from_millis(20);
    let mut emu = EmulatorConfig::default();
    emu.resources_per_type_overrides.insert("AWS::Logs::LogGroup".into(), N);
    emu.faults.global = FaultRule {
        latency_ms: Some(latency.as_millis() as u64),
        ..Default::default()
    };
    let page = emu.page_size;
    let (emulator, c, stop, config) = serve(emu).await;
    // Seed the emulator first so seeding time is not counted as API latency.
    count_rows(
        &c,
        "SELECT /*+ NOCACHE */ log_group_name FROM awscc.logs.log_groups_list_only WHERE region = 'us-east-1' LIMIT 1",
    )
    .await;
    let (n, took) = count_rows(&c, "SELECT /*+ NOCACHE */ * FROM awscc.logs.log_groups WHERE region = 'us-east-1'").await;
    assert_eq!(n, N);
    let pages = N.div_ceil(page);
    let concurrency = config.api.hydrate_concurrency.min(config.api.concurrency_per_region);
    let bound_calls = pages.max(N / concurrency);
    let bound = latency * bound_calls as u32;
    println!(
        "cold list + hydrate: {N} resources, {pages} pages, concurrency {concurrency}, {latency:?}/call: {took:.2?}; \
         lower bound max({pages}, {N}/{concurrency}) x {latency:?} = {bound:.2?}; ratio {:.2}",
        took.as_secs_f64() / bound.as_secs_f64()
    );
    let _ = stop.send(());
    emulator.shutdown().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        cached_scan().await;
        cold_hydrate().await;
    });
}
