//! A bounded soak: mixed clients for about three minutes (`CLOUDPG_TEST_SOAK_SECS`) against a
//! server in its own process, with the cache churning, throttling and 5xx injected, mutations
//! and cancels. Every statement must return the right rows or a clear error, and the server's
//! memory and open file descriptors must stay flat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudpg_emulator::{Emulator, EmulatorConfig, FaultRule};
use tokio_postgres::NoTls;

use crate::common::{column, rows, Process};

/// Tables only read (their counts never change during the soak).
const READ_TABLES: &[&str] = &[
    "awscc.ec2.vpcs",
    "awscc.ec2.subnets",
    "awscc.s3.buckets",
    "awscc.iam.roles",
    "awscc.sqs.queues",
];

fn soak_duration() -> Duration {
    let secs = std::env::var("CLOUDPG_TEST_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    cancelled: AtomicU64,
    /// Errors that are not what the worker allows: the soak fails on any.
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn wrong(&self, what: String) {
        self.wrong.lock().unwrap().push(what);
    }
}

async fn connect(addr: std::net::SocketAddr, app: &str) -> tokio_postgres::Client {
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=awscc application_name={app}",
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn count(client: &tokio_postgres::Client, table: &str) -> Result<String, tokio_postgres::Error> {
    let r = rows(client, &format!("SELECT count(*) FROM {table} WHERE region = 'us-east-1'")).await?;
    Ok(column(&r, 0)[0].clone().unwrap_or_default())
}

/// Simple-protocol counts, checked against the counts before faults were injected.
async fn reader(addr: std::net::SocketAddr, expected: Arc<HashMap<&'static str, String>>, until: Instant, tally: Arc<Tally>) {
    let client = connect(addr, "soak-reader").await;
    let mut i = 0;
    while Instant::now() < until {
        let table = READ_TABLES[i % READ_TABLES.len()];
        i += 1;
        match count(&client, table).await {
            Ok(n) if n == expected[table] => tally.ok.fetch_add(1, Ordering::Relaxed),
            Ok(n) => {
                tally.wrong(format!("{table}: {n} rows, expected {}", expected[table]));
                0
            }
            Err(e) => {
                tally.wrong(format!("{table}: {e:?}"));
                0
            }
        };
    }
}

/// Extended-protocol reads with a parameter, over fresh connections (connection churn).
async fn extended_reader(addr: std::net::SocketAddr, expected: Arc<HashMap<&'static str, String>>, until: Instant, tally: Arc<Tally>) {
    while Instant::now() < until {
        let client = connect(addr, "soak-extended").await;
        for table in READ_TABLES {
            let sql = format!("SELECT identifier FROM {table} WHERE region = $1");
            match client.query(&sql, &[&"us-east-1"]).await {
                Ok(r) if r.len().to_string() == expected[table] => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => tally.wrong(format!("{table} (extended): {} rows, expected {}", r.len(), expected[table])),
                Err(e) => tally.wrong(format!("{table} (extended): {e:?}")),
            }
        }
    }
}

/// Creates and deletes log groups; each must succeed and be visible to the next read.
async fn mutator(addr: std::net::SocketAddr, worker: usize, until: Instant, tally: Arc<Tally>) {
    let client = connect(addr, "soak-mutator").await;
    let mut n = 0;
    while Instant::now() < until {
        let name = format!("soak-{worker}-{n}");
        n += 1;
        let steps = [
            format!("INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('{name}', 7, 'us-east-1')"),
            format!("UPDATE awscc.logs.log_groups SET retention_in_days = 14 WHERE identifier = '{name}' AND region = 'us-east-1'"),
            format!("DELETE FROM awscc.logs.log_groups WHERE identifier = '{name}' AND region = 'us-east-1'"),
        ];
        for sql in steps {
            match client.simple_query(&sql).await {
                Ok(_) => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tally.wrong(format!("{sql}: {e:?}")),
            }
        }
        let left = rows(
            &client,
            &format!("SELECT count(*) FROM awscc.logs.log_groups WHERE region = 'us-east-1' AND identifier = '{name}'"),
        )
        .await;
        match left.map(|r| column(&r, 0)[0].clone()) {
            Ok(Some(n)) if n == "0" => {}
            other => tally.wrong(format!("{name} still there after DELETE: {other:?}")),
        }
    }
}

/// Slow scans cancelled mid-way: each ends 57014, and the connection goes on.
async fn canceller(addr: std::net::SocketAddr, until: Instant, tally: Arc<Tally>) {
    let client = connect(addr, "soak-cancel").await;
    while Instant::now() < until {
        let token = client.cancel_token();
        let (result, _) = tokio::join!(
            client.simple_query("/*+ NOCACHE */ SELECT count(*) FROM awscc.ec2.instances WHERE region = 'us-east-1'"),
            async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let _ = token.cancel_query(NoTls).await;
            }
        );
        match result {
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
                tally.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tally.wrong(format!("cancelled scan: {e:?}")),
            // The cancel came after the scan ended: allowed, and rare.
            Ok(_) => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_clients_under_faults_keep_correct_and_flat() {
    let duration = soak_duration();
    let dir = std::env::temp_dir().join(format!("cloudpg-soak-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let quiet = EmulatorConfig {
        mutation_delay_ms: 20,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), quiet.clone()).await.unwrap();
    // A short TTL so reads keep missing the cache and refilling it.
    let config = format!(
        "[cache]\nttl = \"1s\"\n[mutations]\nallow = true\njournal = {:?}\npoll_initial = \"20ms\"\npoll_max = \"200ms\"\n",
        dir.join("journal").display().to_string()
    );
    let server = {
        let (url, log) = (emulator.endpoint_url(), dir.join("server.log"));
        tokio::task::spawn_blocking(move || Process::serve_against(&url, &config, &log))
            .await
            .unwrap()
    };
    let addr = server.addr;

    // The truth, read before any fault.
    let probe = connect(addr, "soak-probe").await;
    let mut expected = HashMap::new();
    for table in READ_TABLES {
        expected.insert(*table, count(&probe, table).await.unwrap());
    }
    let expected = Arc::new(expected);

    let mut faulty = quiet;
    faulty.faults.global = FaultRule {
        throttle: Some(0.10),
        server_error: Some(0.05),
        latency_ms: Some(2),
        jitter_ms: Some(8),
        ..FaultRule::default()
    };
    faulty.faults.rules.insert(
        "ListResources AWS::EC2::Instance".into(),
        FaultRule {
            latency_ms: Some(2_000),
            ..FaultRule::default()
        },
    );
    emulator.set_config(faulty);

    let started = Instant::now();
    let until = started + duration;
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(tokio::spawn(reader(addr, expected.clone(), until, tally.clone())));
    }
    workers.push(tokio::spawn(extended_reader(addr, expected.clone(), until, tally.clone())));
    for w in 0..2 {
        workers.push(tokio::spawn(mutator(addr, w, until, tally.clone())));
    }
    workers.push(tokio::spawn(canceller(addr, until, tally.clone())));

    // Memory and descriptors once warm (a fifth of the way), then at the end.
    tokio::time::sleep(duration / 5).await;
    let (warm_rss, warm_fds) = (server.status_kb("VmRSS"), open_fds(server.pid()));
    let mut peak_rss = warm_rss;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(server.status_kb("VmRSS"));
    }
    for w in workers {
        w.await.unwrap();
    }
    let (end_rss, end_fds) = (server.status_kb("VmRSS"), open_fds(server.pid()));
    let wrong = tally.wrong.lock().unwrap().clone();
    let ok = tally.ok.load(Ordering::Relaxed);
    let cancelled = tally.cancelled.load(Ordering::Relaxed);
    let counters = emulator.counters();
    eprintln!(
        "soak {:?}: {ok} statements right, {cancelled} cancelled, {} wrong; RSS warm {warm_rss} kB, peak {peak_rss} kB, \
         end {end_rss} kB; fds warm {warm_fds}, end {end_fds}; emulator calls {}, faults {}",
        started.elapsed(),
        wrong.len(),
        counters.calls.values().sum::<u64>(),
        counters.faults.values().sum::<u64>(),
    );
    assert!(
        wrong.is_empty(),
        "{} statements went wrong, first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(ok > 100 && cancelled > 5, "the soak did work: {ok} ok, {cancelled} cancelled");
    assert!(counters.faults.values().sum::<u64>() > 50, "faults were injected: {counters:?}");
    assert!(
        end_rss <= warm_rss + warm_rss / 2 + 64 * 1024,
        "RSS grew from {warm_rss} kB to {end_rss} kB"
    );
    assert!(end_fds <= warm_fds + 16, "open descriptors grew from {warm_fds} to {end_fds}");
    drop(probe);
    drop(server);
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
