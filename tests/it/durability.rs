//! Mutations survive the server: journaled before they are sent, resumed after a crash, never
//! created twice; a journal that cannot be read is kept aside and nothing in it is resent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudpg::config::Config;
use cloudpg_emulator::{Emulator, EmulatorConfig, FaultRule, ALWAYS_SEEDED_MIN};

use crate::common::{client_with_notices, column, eventually, rows, Process, Stack};

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cloudpg-durability-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An emulator with as few VPCs as it seeds ([`ALWAYS_SEEDED_MIN`]), and slow or quick
/// mutations.
fn no_vpcs(mutation_delay_ms: u64) -> EmulatorConfig {
    EmulatorConfig {
        resources_per_type_overrides: HashMap::from([("AWS::EC2::VPC".to_string(), 0)]),
        mutation_delay_ms,
        ..EmulatorConfig::default()
    }
}

fn server_config(journal: &Path) -> String {
    format!(
        "[mutations]\nallow = true\njournal = {:?}\npoll_initial = \"50ms\"\npoll_max = \"200ms\"\n",
        journal.display().to_string()
    )
}

async fn connect(addr: std::net::SocketAddr) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Starts `n` single-row INSERTs of VPCs `10.<first..first+n>.0.0/16`, each on its own
/// connection; they run until they finish or the server dies.
async fn start_inserts(addr: std::net::SocketAddr, first: usize, n: usize) {
    for i in first..first + n {
        let client = connect(addr).await;
        tokio::spawn(async move {
            let sql = format!(
                "INSERT INTO awscc.ec2.vpcs (cidr_block, region) VALUES ('{}', 'us-east-1')",
                test_cidr(i)
            );
            let _ = client.simple_query(&sql).await;
        });
    }
}

/// The `i`th VPC a test creates: outside what the emulator seeds.
fn test_cidr(i: usize) -> String {
    format!("192.{i}.0.0/16")
}

/// How many VPCs have each CIDR block, of those in us-east-1.
async fn vpcs_by_cidr(client: &tokio_postgres::Client) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for c in column(
        &rows(client, "SELECT cidr_block FROM awscc.ec2.vpcs WHERE region = 'us-east-1'")
            .await
            .unwrap(),
        0,
    ) {
        *out.entry(c.unwrap_or_default()).or_default() += 1;
    }
    out
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    let r = rows(client, sql).await.unwrap();
    column(&r, 0)[0].as_deref().unwrap().parse().unwrap()
}

/// Polls `sql` (one count) until it is `want`, for up to a minute.
async fn wait_for_count(addr: std::net::SocketAddr, sql: &str, want: i64) {
    let client = connect(addr).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(&client, sql).await;
        if n == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{sql}: {n}, waited for {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inserts_in_flight_survive_kill_9_exactly_once() {
    let dir = temp_dir();
    let journal = dir.join("state").join("mutations.journal");
    // Accepted requests stay IN_PROGRESS long enough for the server to die under them.
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), no_vpcs(3_000)).await.unwrap();
    let url = emulator.endpoint_url();
    let config = server_config(&journal);
    let mut server = {
        let (url, config, log) = (url.clone(), config.clone(), dir.join("first.log"));
        tokio::task::spawn_blocking(move || Process::serve_against(&url, &config, &log))
            .await
            .unwrap()
    };
    let accepted = "SELECT count(*) FROM cloudpg.requests WHERE request_token IS NOT NULL";

    // Ten requests Cloud Control accepted: the journal has their RequestTokens.
    start_inserts(server.addr, 0, 10).await;
    wait_for_count(server.addr, accepted, 10).await;

    // Ten more that Cloud Control starts but whose answers are held back until the server is
    // gone: the journal has them as sent, never acknowledged.
    let mut held = no_vpcs(3_000);
    held.faults.rules.insert(
        "CreateResource".into(),
        FaultRule {
            reply_latency_ms: Some(60_000),
            ..FaultRule::default()
        },
    );
    emulator.set_config(held);
    start_inserts(server.addr, 10, 10).await;
    eventually(Duration::from_secs(30), "20 CreateResource calls", || {
        emulator.counters().calls("CreateResource") == 20
    })
    .await;
    server.signal("KILL");
    assert!(
        server.exited_within(Duration::from_secs(10)).await.is_some(),
        "kill -9 ends the server"
    );
    emulator.set_config(no_vpcs(100));

    let restarting = std::time::Instant::now();
    let restarted = {
        let (url, log) = (url.clone(), dir.join("second.log"));
        tokio::task::spawn_blocking(move || Process::serve_against(&url, &config, &log))
            .await
            .unwrap()
    };
    wait_for_count(
        restarted.addr,
        "SELECT count(*) FROM cloudpg.requests WHERE operation_status = 'SUCCESS'",
        20,
    )
    .await;
    let recovered_in = restarting.elapsed();
    let client = connect(restarted.addr).await;
    let vpcs = vpcs_by_cidr(&client).await;
    for i in 0..20 {
        assert_eq!(vpcs.get(&test_cidr(i)), Some(&1), "VPC {} exactly once: {vpcs:?}", test_cidr(i));
    }
    assert_eq!(vpcs.values().sum::<usize>(), ALWAYS_SEEDED_MIN + 20, "{vpcs:?}");
    let counters = emulator.counters();
    assert_eq!(counters.succeeded.get("CREATE AWS::EC2::VPC"), Some(&20), "{counters:?}");
    // The ten never acknowledged were sent once more, with their ClientTokens.
    assert_eq!(counters.calls("CreateResource"), 30, "{counters:?}");
    let r = rows(&client, "SELECT count(DISTINCT client_token), count(*) FROM cloudpg.requests")
        .await
        .unwrap();
    assert_eq!(column(&r, 0)[0].as_deref(), Some("20"));
    assert_eq!(column(&r, 1)[0].as_deref(), Some("20"));
    eprintln!(
        "fault scenario: kill -9 with 20 INSERTs in flight: 20/20 VPCs exactly once, {} CreateResource calls \
         (10 resent with their ClientTokens), 20 SUCCESS {:.1} s after the restart",
        counters.calls("CreateResource"),
        recovered_in.as_secs_f64()
    );
    drop(restarted);
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// One journal line per record, as the server writes them.
fn journal_text(records: &[serde_json::Value]) -> String {
    let mut out = String::from("{\"cloudpg_mutation_journal\":1}\n");
    for r in records {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    out
}

fn submitted(token: &str, cidr: &str, submitted_at: f64) -> serde_json::Value {
    submitted_body(token, &format!("{{\"CidrBlock\":\"{cidr}\"}}"), submitted_at)
}

/// A journaled CREATE of a VPC with this DesiredState, never acknowledged.
fn submitted_body(token: &str, body: &str, submitted_at: f64) -> serde_json::Value {
    serde_json::json!({
        "record": "submitted", "client_token": token, "account": "default", "region": "us-east-1",
        "type_name": "AWS::EC2::VPC", "operation": "CREATE", "identifier": null, "digest": "00",
        "user": "postgres", "submitted_at": submitted_at,
        "resend": {"body": body, "role_arn": null, "type_version_id": null}
    })
}

async fn stack_with_journal(journal: &Path) -> Stack {
    let mut config = Config::default();
    config.mutations.journal = Some(journal.display().to_string());
    config.mutations.poll_initial = Duration::from_millis(20);
    config.mutations.poll_max = Duration::from_millis(100);
    Stack::start_with(no_vpcs(50), config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn unacknowledged_requests_are_resent_unless_their_token_expired() {
    let dir = temp_dir();
    let journal = dir.join("mutations.journal");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expired = now - 37.0 * 3600.0;
    let finished = serde_json::json!({
        "record": "ended", "client_token": "done", "status": "SUCCESS", "identifier": "vpc-old",
        "error_code": null, "message": null, "event_time": now - 60.0
    });
    std::fs::write(
        &journal,
        journal_text(&[
            submitted("fresh", &test_cidr(1), now - 60.0),
            submitted("stale", &test_cidr(2), expired),
            submitted("done", &test_cidr(3), now - 120.0),
            finished,
            submitted_body("refused", "{\"NoSuchProperty\":1}", now - 30.0),
            {
                let mut elsewhere = submitted("gone", &test_cidr(4), now - 30.0);
                elsewhere["account"] = serde_json::json!("retired");
                elsewhere
            },
        ]),
    )
    .unwrap();
    let stack = stack_with_journal(&journal).await;
    let client = stack.client().await;
    wait_for_count(
        stack.addr,
        "SELECT count(*) FROM cloudpg.requests WHERE client_token = 'fresh' AND operation_status = 'SUCCESS'",
        1,
    )
    .await;
    // Cloud Control refuses one when it is sent again: no statement waits for it, so the
    // table says so.
    wait_for_count(
        stack.addr,
        "SELECT count(*) FROM cloudpg.requests WHERE client_token = 'refused' AND operation_status = 'FAILED'",
        1,
    )
    .await;
    let r = rows(
        &client,
        "SELECT client_token, operation_status, error_code, status_message FROM cloudpg.requests ORDER BY submitted_at",
    )
    .await
    .unwrap();
    let by_token: HashMap<_, _> = r
        .iter()
        .map(|row| {
            (
                row.get(0).unwrap().to_string(),
                (
                    row.get(1).unwrap().to_string(),
                    row.get(2).map(str::to_string),
                    row.get(3).map(str::to_string),
                ),
            )
        })
        .collect();
    assert_eq!(by_token["done"].0, "SUCCESS");
    let (status, code, message) = &by_token["stale"];
    assert_eq!((status.as_str(), code.as_deref()), ("UNKNOWN", Some("NeedsDecision")));
    let message = message.as_deref().unwrap();
    assert!(
        message.contains("ClientToken expired") && message.contains("AWS::EC2::VPC"),
        "{message}"
    );
    // Sent as an account the configuration no longer has: not resent anywhere, and said so.
    let (status, code, message) = &by_token["gone"];
    assert_eq!((status.as_str(), code.as_deref()), ("UNKNOWN", Some("NeedsDecision")));
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("\"retired\"") && m.contains("no longer has")),
        "{message:?}"
    );
    let (_, code, message) = &by_token["refused"];
    assert!(
        code.is_some() && message.as_deref().is_some_and(|m| m.contains("NoSuchProperty")),
        "{code:?} {message:?}"
    );
    // Only the fresh and the refused ones were sent: the expired one could start twice, the
    // finished one is done.
    assert_eq!(stack.emulator.counters().calls("CreateResource"), 2);
    let vpcs = vpcs_by_cidr(&client).await;
    assert_eq!(vpcs.get(&test_cidr(1)), Some(&1), "{vpcs:?}");
    assert_eq!(vpcs.values().sum::<usize>(), ALWAYS_SEEDED_MIN + 1, "{vpcs:?}");
    drop(client);
    stack.stop().await;
    // What was resent and how it ended is in the journal now: nothing is sent on the next start.
    let stack = stack_with_journal(&journal).await;
    let client = stack.client().await;
    assert_eq!(
        count(&client, "SELECT count(*) FROM cloudpg.requests WHERE operation_status = 'SUCCESS'").await,
        2
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM cloudpg.requests WHERE operation_status = 'FAILED'").await,
        1,
        "the refusal was journaled as the request's end"
    );
    assert_eq!(stack.emulator.counters().calls("CreateResource"), 0);
    drop(client);
    stack.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_or_newer_journal_is_kept_aside_and_nothing_is_resent() {
    for (what, text) in [
        (
            "corrupt",
            format!(
                "{}{{\"record\":\"accepted\",\"client_token\":",
                journal_text(&[submitted("a", "10.1.0.0/16", 0.0)])
            ) + "\n",
        ),
        ("newer", "{\"cloudpg_mutation_journal\":99}\n{\"anything\":1}\n".to_string()),
    ] {
        let dir = temp_dir();
        let journal = dir.join("mutations.journal");
        std::fs::write(&journal, &text).unwrap();
        let stack = stack_with_journal(&journal).await;
        let client = stack.client().await;
        let r = rows(
            &client,
            "SELECT d.description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid \
             WHERE c.relname = 'requests' AND d.objsubid = 0",
        )
        .await
        .unwrap();
        let comment = column(&r, 0)[0].clone().unwrap();
        assert!(
            comment.contains("could not be read") && comment.contains(".unreadable-"),
            "{what}: {comment}"
        );
        let aside: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".unreadable-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}");
        assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), text, "{what}: kept as it was");
        assert_eq!(stack.emulator.counters().calls("CreateResource"), 0, "{what}");
        if what == "corrupt" {
            let r = rows(&client, "SELECT operation_status, error_code FROM cloudpg.requests")
                .await
                .unwrap();
            assert_eq!(column(&r, 0), vec![Some("UNKNOWN".to_string())], "{what}");
            assert_eq!(column(&r, 1), vec![Some("NeedsDecision".to_string())], "{what}");
        }
        // The new journal works.
        client
            .simple_query("INSERT INTO awscc.ec2.vpcs (cidr_block, region) VALUES ('10.9.0.0/16', 'us-east-1')")
            .await
            .unwrap();
        assert!(std::fs::read_to_string(&journal).unwrap().contains("\"ended\""), "{what}");
        drop(client);
        stack.stop().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notice_names_the_tokens_while_the_insert_still_waits() {
    let stack = Stack::start_with(no_vpcs(1_500), Config::default()).await;
    let (client, mut notices) = client_with_notices(&stack.conn_string()).await;
    let message = {
        let insert = client.simple_query("INSERT INTO awscc.ec2.vpcs (cidr_block, region) VALUES ('10.5.0.0/16', 'us-east-1')");
        let mut insert = std::pin::pin!(insert);
        let notice = tokio::select! {
            n = notices.recv() => n.unwrap(),
            done = &mut insert => panic!("the INSERT ended before any NOTICE: {done:?}"),
        };
        assert_eq!(notice.severity(), "NOTICE");
        insert.await.unwrap();
        notice.message().to_string()
    };
    assert!(message.contains("ClientToken") && message.contains("RequestToken"), "{message}");
    let r = rows(&client, "SELECT client_token, request_token FROM cloudpg.requests")
        .await
        .unwrap();
    let (ct, rt) = (column(&r, 0)[0].clone().unwrap(), column(&r, 1)[0].clone().unwrap());
    assert!(message.contains(&ct) && message.contains(&rt), "{message} names {ct} and {rt}");
    drop(client);
    stack.stop().await;
}

#[tokio::test]
async fn a_journal_that_cannot_be_written_or_an_empty_path_is_a_startup_error() {
    use cloudpg::cloudcontrol::client::Target;
    for (path, expect) in [
        ("/proc/cloudpg-none/mutations.journal", "mutation journal"),
        ("", "journal is empty"),
    ] {
        let mut config = Config::default();
        config.mutations.journal = Some(path.to_string());
        let Err(e) = cloudpg::server::engine(std::sync::Arc::new(config), Target::Emulator("http://127.0.0.1:1".into())).await else {
            panic!("{path:?} should not start");
        };
        assert!(e.to_string().contains(expect), "{path:?}: {e}");
    }
}
