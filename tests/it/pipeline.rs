//! The statement pipeline as clients see it: cancel, statement_timeout and a vanished client
//! stop a scan and its Cloud Control calls; transactions and savepoints; multi-statement
//! queries stop at the first error; PostgreSQL's column names; per-statement limits (calls,
//! memory); idle and startup timeouts; settings.

use std::time::{Duration, Instant};

use cloudpg::config::Config;
use cloudpg_emulator::{EmulatorConfig, FaultRule};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::common::{db_error, eventually, rows, Stack};
use crate::raw::Raw;

/// A type with 10,000 resources behind 50 ms per call: reading it all takes half a minute.
async fn slow_stack(config: Config) -> Stack {
    let mut emu = EmulatorConfig::default();
    emu.resources_per_type_overrides.insert("AWS::Logs::LogGroup".into(), 10_000);
    emu.faults.global = FaultRule {
        latency_ms: Some(50),
        ..Default::default()
    };
    Stack::start_with(emu, config).await
}

const SLOW_SCAN: &str = "SELECT log_group_name, retention_in_days FROM awscc.logs.log_groups WHERE region = 'us-east-1'";

/// Asserts the emulator sees no new call from 200 ms after the statement stopped on.
async fn calls_stop(stack: &Stack) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let settled = stack.emulator.counters().total_calls();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.emulator.counters().total_calls(),
        settled,
        "Cloud Control calls went on after the statement stopped"
    );
}

#[tokio::test]
async fn cancel_stops_a_scan_and_its_calls() {
    let stack = slow_stack(Config::default()).await;
    let c = stack.client().await;
    let token = c.cancel_token();
    let cancel = async {
        eventually(Duration::from_secs(10), "the scan to start reading", || {
            stack.emulator.counters().calls("GetResource") > 0
        })
        .await;
        token.cancel_query(NoTls).await.unwrap();
        Instant::now()
    };
    let query = async {
        let err = c.simple_query(SLOW_SCAN).await.unwrap_err();
        (err, Instant::now())
    };
    let (sent, (err, answered)) = tokio::join!(cancel, query);
    let (code, message, _) = db_error(err);
    assert_eq!(code, "57014");
    assert_eq!(message, "canceling statement due to user request");
    assert!(answered - sent < Duration::from_secs(1), "57014 took {:?}", answered - sent);
    calls_stop(&stack).await;
    // The connection is fine afterwards, and a cancel with nothing running does nothing.
    c.cancel_token().cancel_query(NoTls).await.unwrap();
    assert_eq!(rows(&c, "SELECT 1").await.unwrap().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn statement_timeout_stops_a_scan_and_its_calls() {
    let stack = slow_stack(Config::default()).await;
    let c = stack.client().await;
    c.simple_query("SET statement_timeout = '200ms'").await.unwrap();
    let started = Instant::now();
    let err = c.simple_query(SLOW_SCAN).await.unwrap_err();
    let took = started.elapsed();
    let (code, message, _) = db_error(err);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("57014", "canceling statement due to statement timeout")
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(1),
        "timed out after {took:?}"
    );
    calls_stop(&stack).await;
    // Through the extended protocol too, and the config default applies to new sessions.
    let err = c.query(SLOW_SCAN, &[]).await.unwrap_err();
    assert_eq!(db_error(err).0, "57014");
    c.simple_query("RESET statement_timeout").await.unwrap();
    assert_eq!(rows(&c, "SHOW statement_timeout").await.unwrap()[0].get(0), Some("0"));
    stack.stop().await;

    let mut config = Config::default();
    config.limits.statement_timeout = Duration::from_millis(300);
    let stack = slow_stack(config).await;
    let c = stack.client().await;
    assert_eq!(rows(&c, "SHOW statement_timeout").await.unwrap()[0].get(0), Some("300ms"));
    assert_eq!(db_error(c.simple_query(SLOW_SCAN).await.unwrap_err()).0, "57014");
    stack.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_statement_stops_it_and_frees_its_slot() {
    let stack = slow_stack(Config {
        max_connections: 1,
        ..Config::default()
    })
    .await;
    let mut raw = Raw::connect(stack.addr).await;
    raw.query(SLOW_SCAN).await;
    eventually(Duration::from_secs(5), "the scan to start reading", || {
        stack.emulator.counters().calls("GetResource") > 0
    })
    .await;
    drop(raw);
    calls_stop(&stack).await;
    // The only slot is free again.
    let c = stack.client().await;
    assert_eq!(rows(&c, "SELECT 1").await.unwrap().len(), 1);
    stack.stop().await;
}

/// The status byte of the ReadyForQuery after `sql`.
async fn status_after(raw: &mut Raw, sql: &str) -> (u8, Option<String>) {
    let a = raw.simple(sql).await;
    (a.status, a.error_code().map(str::to_string))
}

#[tokio::test]
async fn transactions_report_their_state_and_refuse_mutations() {
    let stack = Stack::start().await;
    let mut raw = Raw::connect(stack.addr).await;
    let delete = "DELETE FROM awscc.logs.log_groups WHERE identifier = 'x' AND region = 'us-east-1'";
    assert_eq!(status_after(&mut raw, "BEGIN").await, (b'T', None));
    assert_eq!(status_after(&mut raw, "SELECT 1").await, (b'T', None));
    assert_eq!(status_after(&mut raw, delete).await, (b'E', Some("25001".into())));
    assert_eq!(status_after(&mut raw, "SELECT 1").await, (b'E', Some("25P02".into())));
    assert_eq!(status_after(&mut raw, "ROLLBACK").await, (b'I', None));
    assert_eq!(stack.emulator.counters().calls("DeleteResource"), 0, "no mutation ran");

    // Savepoints: an error rolls back to the savepoint, the block goes on.
    for (sql, expected) in [
        ("BEGIN", (b'T', None)),
        ("SAVEPOINT a", (b'T', None)),
        ("SELECT * FROM awscc.ec2.nope", (b'E', Some("42P01"))),
        ("ROLLBACK TO SAVEPOINT a", (b'T', None)),
        ("RELEASE a", (b'T', None)),
        ("RELEASE a", (b'E', Some("3B001"))),
        ("COMMIT", (b'I', None)),
        ("SAVEPOINT b", (b'I', Some("25P01"))),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", (b'I', None)),
        ("START TRANSACTION READ ONLY", (b'T', None)),
        (delete, (b'E', Some("25006"))),
        ("END", (b'I', None)),
    ] {
        let got = status_after(&mut raw, sql).await;
        assert_eq!((got.0, got.1.as_deref()), expected, "{sql}");
    }
    // COMMIT of a failed block answers ROLLBACK; BEGIN twice warns.
    raw.simple("BEGIN").await;
    let twice = raw.simple("BEGIN").await;
    assert_eq!(twice.notices[0].0, "25001", "{twice:?}");
    raw.simple("SELECT 1/0").await;
    let commit = raw.simple("COMMIT").await;
    assert_eq!((commit.tags.clone(), commit.status), (vec!["ROLLBACK".to_string()], b'I'));

    // With autocommit_mutations on, a mutation inside a block runs at once, with a warning.
    raw.simple("SET cloudpg.autocommit_mutations = on").await;
    raw.simple("BEGIN").await;
    let a = raw.simple(delete).await;
    assert!(a.errors.is_empty(), "{a:?}");
    assert!(a.notices.iter().any(|(_, m)| m.contains("cannot roll it back")), "{a:?}");
    assert_eq!(a.tags, vec!["DELETE 0"]);
    raw.simple("ROLLBACK").await;
    assert_eq!(stack.emulator.counters().calls("DeleteResource"), 1);
    stack.stop().await;
}

#[tokio::test]
async fn rollback_undoes_set_and_a_failed_statement_stops_the_query_string() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    c.batch_execute("BEGIN; SET statement_timeout = '5s'; SET LOCAL cloudpg.nowait = on")
        .await
        .unwrap();
    assert_eq!(rows(&c, "SHOW cloudpg.nowait").await.unwrap()[0].get(0), Some("on"));
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(rows(&c, "SHOW statement_timeout").await.unwrap()[0].get(0), Some("0"));
    assert_eq!(rows(&c, "SHOW cloudpg.nowait").await.unwrap()[0].get(0), Some("off"));

    // PostgreSQL stops a multi-statement query at its first error: the DELETE never runs.
    let err = c
        .simple_query("SELECT * FROM awscc.ec2.vpcz; DELETE FROM awscc.logs.log_groups WHERE identifier = 'x' AND region = 'us-east-1'")
        .await
        .unwrap_err();
    assert_eq!(db_error(err).0, "42P01");
    let messages = c.simple_query("SELECT 1; SELECT 1/0; SELECT 3").await;
    assert_eq!(db_error(messages.unwrap_err()).0, "22012");
    assert_eq!(stack.emulator.counters().calls("DeleteResource"), 0);
    stack.stop().await;
}

/// The names PostgreSQL 16 gives these select items.
const COLUMN_NAMES: &[(&str, &str)] = &[
    ("1", "?column?"),
    ("'text'", "?column?"),
    ("1 + 2", "?column?"),
    ("NULL", "?column?"),
    ("true", "bool"),
    ("count(*)", "count"),
    ("max(region)", "max"),
    ("min(identifier)", "min"),
    ("region", "region"),
    ("v.region", "region"),
    ("region::text", "region"),
    ("cidr_block::varchar", "cidr_block"),
    ("1::text", "text"),
    ("'1'::integer", "int4"),
    ("CAST(2 AS bigint)", "int8"),
    ("upper(region)", "upper"),
    ("coalesce(cidr_block, 'none')", "coalesce"),
    ("CASE WHEN true THEN 1 END", "case"),
    ("(region)", "region"),
    ("region AS \"Where\"", "Where"),
    ("length(region) AS n", "n"),
    ("now()::date", "now"),
];

#[tokio::test]
async fn result_columns_are_named_as_postgres_names_them() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    for (item, expected) in COLUMN_NAMES {
        let sql = format!("SELECT {item} FROM awscc.ec2.vpcs v WHERE region = 'us-east-1'");
        let statement = c.prepare(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(statement.columns()[0].name(), *expected, "SELECT {item}");
    }
    // Repeated names are allowed, as PostgreSQL allows them.
    let statement = c
        .prepare("SELECT 'a', 'a', 1 AS x, 2 AS x, region, region FROM awscc.ec2.vpcs WHERE region = 'us-east-1'")
        .await
        .unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["?column?", "?column?", "x", "x", "region", "region"]);
    let got = c.simple_query("SELECT 'a', 'a'").await.unwrap();
    let SimpleQueryMessage::Row(row) = &got[1] else { panic!("{got:?}") };
    assert_eq!((row.get(0), row.get(1)), (Some("a"), Some("a")));
    // And INSERT … SELECT of repeated values plans.
    let err = c
        .simple_query("EXPLAIN INSERT INTO awscc.logs.log_groups (LogGroupName, LogGroupClass, region) SELECT 'x', 'x', 'us-east-1'")
        .await;
    assert!(err.is_ok(), "{err:?}");
    stack.stop().await;
}

#[tokio::test]
async fn statements_are_held_to_their_call_and_memory_limits() {
    let mut config = Config::default();
    config.limits.query_memory = 4 * 1024 * 1024;
    config.limits.memory_pool = 8 * 1024 * 1024;
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    let c = stack.client().await;
    c.simple_query("SET cloudpg.max_api_calls = 3").await.unwrap();
    // Known up front: four GetResource calls, refused before any is made.
    let err = c
        .simple_query("SELECT * FROM awscc.logs.log_groups WHERE identifier IN ('a', 'b', 'c', 'd') AND region = 'us-east-1'")
        .await
        .unwrap_err();
    let (code, message, hint) = db_error(err);
    assert_eq!(code, "54000");
    assert!(
        message.contains("needs 4") && message.contains("cloudpg.max_api_calls = 3"),
        "{message}"
    );
    assert!(hint.contains("SET cloudpg.max_api_calls"), "{hint}");
    assert_eq!(stack.emulator.counters().total_calls(), 0);
    // Known only from the list: the reads stop at the limit.
    let err = c
        .simple_query("SELECT retention_in_days FROM awscc.logs.log_groups WHERE region = 'us-east-1'")
        .await
        .unwrap_err();
    assert_eq!(db_error(err).0, "54000");
    assert_eq!(stack.emulator.counters().total_calls(), 3);
    let err = c.simple_query("SET cloudpg.max_api_calls = 999999").await.unwrap_err();
    assert_eq!(db_error(err).0, "22023");

    // A sort bigger than limits.query_memory fails with 53200, through an aggregate too.
    let err = c
        .simple_query("SELECT value FROM generate_series(1, 2000000) ORDER BY value DESC LIMIT 5 OFFSET 1999990")
        .await
        .unwrap_err();
    let (code, message, _) = db_error(err);
    assert_eq!(code, "53200", "{message}");
    assert!(message.contains("limits.query_memory"), "{message}");
    let err = c
        .simple_query("SELECT count(*) FROM (SELECT value % 1000000 AS v FROM generate_series(1, 2000000) GROUP BY 1) s")
        .await
        .unwrap_err();
    assert_eq!(db_error(err).0, "53200");
    assert_eq!(rows(&c, "SELECT 1").await.unwrap().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn idle_and_unfinished_connections_are_closed() {
    let mut config = Config::default();
    config.limits.startup_timeout = Duration::from_millis(300);
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    // No startup message: closed after the startup deadline.
    let mut bare = Raw::bare(stack.addr).await;
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut bare, &mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());

    // idle_session_timeout, off by default, closes an idle connection with 57P05.
    let mut raw = Raw::connect(stack.addr).await;
    assert!(raw.simple("SHOW idle_session_timeout").await.values == vec![Some("0".to_string())]);
    raw.simple("SET idle_session_timeout = '200ms'").await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("57P05"), "{a:?}");
    assert!(raw.closed_within(Duration::from_secs(2)).await);

    let mut raw = Raw::connect(stack.addr).await;
    raw.simple("SET idle_in_transaction_session_timeout = 200").await;
    raw.simple("BEGIN").await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("25P03"), "{a:?}");
    stack.stop().await;
}

#[tokio::test]
async fn settings_are_checked_and_reported() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let err = c.simple_query("SET cloudpg.regoins = 'us-east-1'").await.unwrap_err();
    let (code, _, hint) = db_error(err);
    assert_eq!(code, "42704");
    assert!(hint.contains("cloudpg.regions"), "{hint}");
    let err = c.simple_query("SET statement_timeout = 'soon'").await.unwrap_err();
    assert_eq!(db_error(err).0, "22023");
    let err = c.simple_query("SET server_version = '9.6'").await.unwrap_err();
    assert_eq!(db_error(err).0, "55P02");
    c.simple_query("SET extra_float_digits = 3").await.unwrap();
    assert_eq!(rows(&c, "SHOW extra_float_digits").await.unwrap()[0].get(0), Some("3"));
    assert_eq!(rows(&c, "SHOW server_version").await.unwrap()[0].get(0), Some("16.6"));
    let all = rows(&c, "SHOW ALL").await.unwrap();
    assert!(all.len() > 20);
    // PostgreSQL's spelling and order: case-insensitive, `DateStyle` among the `d`s.
    let names: Vec<String> = all.iter().map(|r| r.get(0).unwrap().to_string()).collect();
    for spelled in ["DateStyle", "IntervalStyle", "TimeZone", "application_name"] {
        assert!(names.iter().any(|n| n == spelled), "{spelled} in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(names, sorted);
    c.simple_query("RESET ALL").await.unwrap();
    assert_eq!(rows(&c, "SHOW extra_float_digits").await.unwrap()[0].get(0), Some("1"));
    for sql in [
        "DISCARD ALL",
        "UNLISTEN *",
        "LISTEN x",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
    ] {
        c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let err = c.simple_query("CREATE TABLE t (a int)").await.unwrap_err();
    assert_eq!(db_error(err).0, "0A000");
    let err = c.simple_query("DEALLOCATE nope").await.unwrap_err();
    assert_eq!(db_error(err).0, "26000");
    // A query with a $n and no Bind names the missing parameter.
    let err = c.simple_query("SELECT $1").await.unwrap_err();
    assert_eq!(db_error(err).0, "42P02");
    stack.stop().await;
}

#[tokio::test]
async fn a_connection_keeps_a_bounded_number_of_statements_and_portals() {
    let stack = Stack::start().await;
    let mut raw = Raw::connect(stack.addr).await;
    // Empty statements plan nothing, so ten thousand of them are quick to send.
    for i in 0..10_000 {
        raw.parse(&format!("s{i}"), "").await;
    }
    raw.parse("one_too_many", "").await;
    raw.sync().await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("54000"), "{:?}", a.errors);
    assert!(a.errors[0].1.contains("10000 prepared statements"), "{:?}", a.errors);
    // Closing one makes room; re-parsing an existing name does not count twice.
    raw.send(b'C', b"Ss0\0").await;
    raw.parse("one_more", "").await;
    raw.parse("s1", "").await;
    raw.sync().await;
    assert!(raw.answer().await.errors.is_empty());
    raw.simple("DEALLOCATE ALL").await;

    // Named portals live until their transaction ends.
    raw.simple("BEGIN").await;
    raw.parse("p", "").await;
    for i in 0..10_000 {
        raw.bind(&format!("portal{i}"), "p", &[], &[]).await;
    }
    raw.bind("portal_too_many", "p", &[], &[]).await;
    raw.sync().await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("54000"), "{:?}", a.errors);
    assert_eq!(a.status, b'E');
    raw.simple("ROLLBACK").await;
    raw.bind("portal_after", "p", &[], &[]).await;
    raw.sync().await;
    let a = raw.answer().await;
    assert!(a.errors.is_empty(), "{a:?}");
    stack.stop().await;
}

#[tokio::test]
async fn extended_protocol_answers_wait_for_sync_or_flush_and_come_together() {
    let stack = Stack::start().await;
    let mut raw = Raw::connect(stack.addr).await;
    let kinds = |msgs: &[crate::raw::Msg]| msgs.iter().map(|m| m.kind as char).collect::<String>();
    for round in 0..2 {
        raw.parse("s", "SELECT 7::int4 AS n").await;
        raw.describe_statement("s").await;
        raw.bind("", "s", &[], &[]).await;
        raw.describe_portal("").await;
        raw.execute("", 0).await;
        // As from PostgreSQL: nothing is written until the client asks with Flush or Sync.
        let early = tokio::time::timeout(Duration::from_millis(300), raw.read()).await;
        assert!(early.is_err(), "round {round}: answered before Flush: {early:?}");
        raw.flush().await;
        let mut got = Vec::new();
        while got.len() < 7 {
            got.push(raw.read().await.expect("the answers after Flush"));
        }
        // ParseComplete, ParameterDescription, RowDescription, BindComplete, RowDescription,
        // DataRow, CommandComplete.
        assert_eq!(kinds(&got), "1tT2TDC", "round {round}");
        assert_eq!(got[6].text(), "SELECT 1");
        raw.sync().await;
        let ready = raw.read().await.unwrap();
        assert_eq!(ready.kind, b'Z');
        // Close, then Sync alone: CloseComplete and ReadyForQuery together.
        let mut body = vec![b'S'];
        body.extend_from_slice(b"s\0");
        raw.send(b'C', &body).await;
        raw.sync().await;
        let closed = [raw.read().await.unwrap(), raw.read().await.unwrap()];
        assert_eq!(kinds(&closed), "3Z", "round {round}");
    }
    // An unknown statement or portal is still an error naming it.
    raw.describe_statement("nope").await;
    raw.sync().await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("26000"), "{a:?}");
    assert_eq!(a.errors[0].1, "prepared statement \"nope\" does not exist");
    raw.describe_portal("nope").await;
    raw.sync().await;
    let a = raw.answer().await;
    assert_eq!(a.error_code(), Some("34000"), "{a:?}");
    assert_eq!(a.errors[0].1, "portal \"nope\" does not exist");
    stack.stop().await;
}
