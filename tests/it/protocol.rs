//! The protocol under hostile and heavy input, against the `cloudpg` binary as its own process:
//! crafted messages fail one statement and never the server; a million rows stream through
//! the extended protocol in bounded memory; SIGTERM drains.

use std::time::Duration;

use tokio_postgres::NoTls;

use crate::common::{eventually, Process};
use crate::raw::Raw;

async fn client(server: &Process) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", server.addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// The other connection still answers, and the server is the same process.
async fn still_serving(server: &mut Process, pid: u32, other: &tokio_postgres::Client, after: &str) {
    let one: i64 = other
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap_or_else(|e| panic!("after {after}: {e}"))
        .get(0);
    assert_eq!(one, 1);
    assert!(server.alive() && server.pid() == pid, "after {after} the server process is gone");
}

#[tokio::test]
async fn crafted_messages_fail_one_statement_not_the_server() {
    let mut server = Process::serve("");
    let pid = server.pid();
    let other = client(&server).await;
    let mut raw = Raw::connect(server.addr).await;

    // A `$n` that would size an array of 2.4 TB, and `$0`.
    for sql in [
        "DELETE FROM awscc.logs.log_groups WHERE identifier = $99999999999",
        "SELECT $0",
        "SELECT $65536",
    ] {
        raw.parse("", sql).await;
        raw.sync().await;
        let a = raw.answer().await;
        assert_eq!(a.error_code(), Some("42P02"), "{sql}: {a:?}");
        assert!(a.errors[0].1.starts_with("there is no parameter $"), "{a:?}");
        assert_eq!(a.status, b'I');
        still_serving(&mut server, pid, &other, sql).await;
    }

    // max_rows of 2^31-1 (pgjdbc's setFetchSize(Integer.MAX_VALUE)) and a negative one: all rows.
    for max_rows in [i32::MAX, -1, 0] {
        raw.parse("", "SELECT value FROM generate_series(1, 10)").await;
        raw.bind("", "", &[], &[]).await;
        raw.execute("", max_rows).await;
        raw.sync().await;
        let a = raw.answer().await;
        assert!(a.errors.is_empty(), "{a:?}");
        assert_eq!((a.rows, a.tags.clone()), (10, vec!["SELECT 10".to_string()]), "max_rows {max_rows}");
        still_serving(&mut server, pid, &other, "a huge max_rows").await;
    }

    // A BI tool's 2,000-term filter plans; one far deeper is refused, not a stack overflow.
    let or_2000 = format!("SELECT 1 WHERE {}", vec!["1=1"; 2000].join(" OR "));
    let a = raw.simple(&or_2000).await;
    assert!(a.errors.is_empty(), "{a:?}");
    assert_eq!(a.rows, 1);
    let or_100k = format!("SELECT 1 WHERE {}", vec!["1=1"; 100_000].join(" OR "));
    let a = raw.simple(&or_100k).await;
    assert_eq!(a.error_code(), Some("54001"), "{a:?}");
    let parens = format!("SELECT {}1{}", "(".repeat(1000), ")".repeat(1000));
    assert_eq!(raw.simple(&parens).await.error_code(), Some("54001"));
    still_serving(&mut server, pid, &other, "deep expressions").await;

    // Bind counts that do not match the statement.
    raw.parse("s1", "SELECT value FROM generate_series(1, 3)").await;
    raw.bind("", "s1", &[Some("x")], &[]).await;
    raw.sync().await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("08P01"), "{a:?}");
    assert!(a.errors[0].1.contains("supplies 1 parameters"), "{a:?}");
    raw.bind("", "s1", &[], &[0, 1]).await;
    raw.sync().await;
    assert_eq!(raw.answer().await.error_code(), Some("08P01"));
    raw.bind("", "s1", &[], &[7]).await;
    raw.sync().await;
    assert_eq!(raw.answer().await.error_code(), Some("08P01"));
    raw.bind("", "nope", &[], &[]).await;
    raw.sync().await;
    assert_eq!(raw.answer().await.error_code(), Some("26000"));
    raw.execute("no_such_portal", 0).await;
    raw.sync().await;
    assert_eq!(raw.answer().await.error_code(), Some("34000"));

    // A message over max_message_size is skipped with 54000; the connection goes on.
    let big = format!("SELECT '{}'", "x".repeat(5 * 1024 * 1024));
    let a = raw.simple(&big).await;
    assert_eq!(a.error_code(), Some("54000"), "{:?}", a.errors);
    assert!(a.errors[0].1.contains("exceeds the server's limit"), "{:?}", a.errors);
    // In the extended protocol the rest of the batch is skipped up to Sync.
    raw.parse("", &big).await;
    raw.bind("", "", &[], &[]).await;
    raw.execute("", 0).await;
    raw.sync().await;
    let a = raw.answer().await;
    assert_eq!((a.error_code(), a.errors.len()), (Some("54000"), 1), "{a:?}");
    let a = raw.simple("SELECT 42").await;
    assert_eq!(a.values, vec![Some("42".to_string())]);
    still_serving(&mut server, pid, &other, "oversized messages").await;

    // A value the encoder cannot send fails the statement (it used to repeat the error without
    // end, filling memory).
    for sql in ["SELECT arrow_cast(1, 'Float16')", "SELECT map(['a'], [1])"] {
        let a = tokio::time::timeout(Duration::from_secs(30), raw.simple(sql))
            .await
            .expect("an answer, not a hang");
        assert_eq!(a.errors.len(), 1, "{sql}: {a:?}");
        still_serving(&mut server, pid, &other, sql).await;
    }

    // A malformed message ends that connection only.
    raw.send_raw(&[b'Q', 0, 0, 0, 2]).await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("08P01"), "{a:?}");
    assert!(raw.closed_within(Duration::from_secs(5)).await);
    still_serving(&mut server, pid, &other, "a malformed length").await;
}

/// Resets the process's peak RSS, then returns its RSS now (kB).
fn reset_peak(server: &Process) -> u64 {
    std::fs::write(format!("/proc/{}/clear_refs", server.pid()), "5").expect("clear_refs resets VmHWM");
    server.status_kb("VmRSS")
}

#[tokio::test]
async fn a_million_rows_stream_through_the_extended_protocol_in_bounded_memory() {
    let server = Process::serve("");
    let mut raw = Raw::connect(server.addr).await;
    // Warm up the planner and the encoders.
    let warm = raw.simple("SELECT value FROM generate_series(1, 100000)").await;
    assert_eq!(warm.rows, 100_000);
    for max_rows in [1000, 0] {
        let before = reset_peak(&server);
        raw.parse("", "SELECT value, 'row ' || value FROM generate_series(1, 1000000)")
            .await;
        raw.bind("", "", &[], &[]).await;
        let mut rows = 0;
        let mut executes = 0;
        loop {
            raw.execute("", max_rows).await;
            raw.flush().await;
            executes += 1;
            let a = raw.answer_until(|m| matches!(m.kind, b's' | b'C' | b'E')).await;
            assert!(a.errors.is_empty(), "{a:?}");
            rows += a.rows;
            if let Some(tag) = a.tags.first() {
                let last = if max_rows == 0 { 1_000_000 } else { 0 };
                assert_eq!(tag, &format!("SELECT {last}"));
                break;
            }
            assert_eq!(a.rows, max_rows as usize, "PortalSuspended after exactly max_rows");
        }
        raw.sync().await;
        raw.answer().await;
        assert_eq!(rows, 1_000_000);
        assert_eq!(executes, if max_rows == 0 { 1 } else { 1001 });
        let growth_kb = server.status_kb("VmHWM").saturating_sub(before);
        assert!(
            growth_kb < 50 * 1024,
            "peak RSS grew {growth_kb} kB reading 1,000,000 rows with max_rows {max_rows}"
        );
    }
}

#[tokio::test]
async fn sigterm_lets_running_statements_finish_and_tells_idle_connections() {
    // Each call takes 500 ms: listing and reading 20 resources takes 1.5 s.
    let mut server = Process::serve("shutdown_timeout = \"20s\"\n[emulator]\nlatency_ms = 500\nresources_per_type = 20\n");
    let busy = client(&server).await;
    let mut idle = Raw::connect(server.addr).await;
    let statement = busy
        .prepare("SELECT log_group_name, arn FROM awscc.logs.log_groups WHERE region = 'us-east-1'")
        .await
        .unwrap();
    let running = tokio::spawn(async move { busy.query(&statement, &[]).await.map(|rows| rows.len()) });
    // Mid-way through the list call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let a = idle.answer().await;
    assert_eq!(a.error_code(), Some("57P01"), "the idle connection is told why: {a:?}");
    assert!(!running.is_finished(), "the statement was still running at SIGTERM");
    assert_eq!(running.await.unwrap().expect("the running statement finishes"), 20);
    let status = server.exited_within(Duration::from_secs(10)).await.expect("the server exits");
    assert!(status.success(), "{status:?}");
    // Nothing listens any more.
    eventually(Duration::from_secs(2), "the port to close", || {
        std::net::TcpStream::connect(server.addr).is_err()
    })
    .await;
}
