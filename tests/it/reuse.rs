//! What repeated statements reuse, and what they must not: kept scan results (whole lists as
//! Arrow batches) and prepared statements' optimized plans, checked through the wire against
//! the emulator's call counters.

use std::time::{Duration, Instant};

use crate::common::{client_with_notices, rows, Stack};
use crate::raw::Raw;
use cloudpg::config::Config;
use cloudpg_emulator::EmulatorConfig;
use tokio_postgres::SimpleQueryRow;

const QUEUES: &str = "SELECT * FROM awscc.sqs.queues WHERE region = 'us-east-1' ORDER BY identifier";

fn texts(r: &[SimpleQueryRow]) -> Vec<Vec<Option<String>>> {
    r.iter()
        .map(|row| (0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
        .collect()
}

async fn cache_hits(c: &tokio_postgres::Client) -> i64 {
    let r = rows(c, "SELECT hits FROM cloudpg.cache").await.unwrap();
    r[0].get(0).unwrap().parse().unwrap()
}

fn with_ttl(ttl: Duration) -> Config {
    let mut config = Config::default();
    config.cache.ttl = ttl;
    config
}

/// `column` of the first us-east-1 queue, prepared as a lookup by its literal identifier.
async fn prepared_queue_lookup(c: &tokio_postgres::Client, column: &str) -> tokio_postgres::Statement {
    let id: String = c
        .query_one(
            "SELECT identifier FROM awscc.sqs.queues WHERE region = 'us-east-1' ORDER BY identifier LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    c.prepare(&format!(
        "SELECT {column} FROM awscc.sqs.queues WHERE region = 'us-east-1' AND identifier = '{id}'"
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_scan_sends_the_list_it_kept_until_a_mutation() {
    let stack = Stack::start_with(EmulatorConfig::default(), with_ttl(Duration::from_secs(600))).await;
    let c = stack.client().await;
    let first = texts(&rows(&c, QUEUES).await.unwrap());
    assert!(first.len() >= 3, "{first:?}");

    // The same rows again, without a call, from one kept list: one cache hit, not one per
    // page and resource.
    stack.emulator.reset_counters();
    let hits = cache_hits(&c).await;
    let again = texts(&rows(&c, QUEUES).await.unwrap());
    assert_eq!(again, first);
    assert_eq!(stack.emulator.counters().total_calls(), 0);
    assert_eq!(cache_hits(&c).await - hits, 1, "one kept list served the scan");

    // Other columns, a LIMIT, a filter: the same kept answers, still no call.
    let names = rows(
        &c,
        "SELECT queue_name FROM awscc.sqs.queues WHERE region = 'us-east-1' AND queue_name IS NOT NULL ORDER BY 1 LIMIT 2",
    )
    .await
    .unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(stack.emulator.counters().total_calls(), 0);

    // A mutation invalidates the type: the next scan lists again and sees the new queue.
    c.simple_query("INSERT INTO awscc.sqs.queues (queue_name, region) VALUES ('kept-then-new', 'us-east-1')")
        .await
        .unwrap();
    stack.emulator.reset_counters();
    let after = texts(&rows(&c, QUEUES).await.unwrap());
    assert_eq!(after.len(), first.len() + 1);
    assert!(stack.emulator.counters().calls("ListResources") >= 1);
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_list_expires_with_the_oldest_answer_it_was_built_from() {
    let ttl = Duration::from_secs(2);
    let stack = Stack::start_with(EmulatorConfig::default(), with_ttl(ttl)).await;
    let c = stack.client().await;
    let ids = rows(
        &c,
        "SELECT identifier FROM awscc.sqs.queues WHERE region = 'us-east-1' ORDER BY identifier LIMIT 1",
    )
    .await
    .unwrap();
    let id = ids[0].get(0).unwrap().to_string();
    // One resource read now; the whole list (and the other resources) half a TTL later.
    let read_at = Instant::now();
    rows(
        &c,
        &format!("SELECT * FROM awscc.sqs.queues WHERE region = 'us-east-1' AND identifier = '{id}'"),
    )
    .await
    .unwrap();
    tokio::time::sleep(ttl / 2).await;
    rows(&c, QUEUES).await.unwrap();
    // Past the first read's TTL (but not the list's): the kept list is as old as its oldest
    // answer, so that resource is read again.
    tokio::time::sleep((read_at + ttl + Duration::from_millis(200)).saturating_duration_since(Instant::now())).await;
    stack.emulator.reset_counters();
    rows(&c, QUEUES).await.unwrap();
    assert!(
        stack.emulator.counters().calls("GetResource") >= 1,
        "{:?}",
        stack.emulator.counters()
    );
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_list_warns_of_its_misfits_every_time() {
    let emulator = EmulatorConfig {
        schema_drift: vec!["AWS::AccessAnalyzer::ArchiveRule".into()],
        ..EmulatorConfig::default()
    };
    let stack = Stack::start_with(emulator, with_ttl(Duration::from_secs(600))).await;
    let (c, mut notices) = client_with_notices(&stack.conn_string()).await;
    let sql = "SELECT updated_at FROM awscc.accessanalyzer.archive_rules WHERE region = 'us-east-1'";
    for run in 0..2 {
        stack.emulator.reset_counters();
        let r = rows(&c, sql).await.unwrap();
        assert!(!r.is_empty());
        let warnings: Vec<String> = std::iter::from_fn(|| notices.try_recv().ok())
            .map(|n| n.message().to_string())
            .collect();
        assert!(warnings.iter().any(|w| w.contains("updated_at")), "run {run}: {warnings:?}");
    }
    assert_eq!(
        stack.emulator.counters().total_calls(),
        0,
        "the second run was served from the kept list"
    );

    // A lookup by identifier answered from its kept read warns as its first answer did.
    let id = rows(
        &c,
        "SELECT identifier FROM awscc.accessanalyzer.archive_rules WHERE region = 'us-east-1' LIMIT 1",
    )
    .await
    .unwrap()[0]
        .get(0)
        .unwrap()
        .to_string();
    let lookup = format!("{sql} AND identifier = '{id}'");
    for run in 0..3 {
        while notices.try_recv().is_ok() {}
        stack.emulator.reset_counters();
        assert_eq!(rows(&c, &lookup).await.unwrap().len(), 1);
        let warnings: Vec<String> = std::iter::from_fn(|| notices.try_recv().ok())
            .map(|n| n.message().to_string())
            .collect();
        assert!(warnings.iter().any(|w| w.contains("updated_at")), "lookup {run}: {warnings:?}");
        if run > 0 {
            assert_eq!(stack.emulator.counters().total_calls(), 0, "lookup {run} used the kept read");
        }
    }
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_statements_reuse_their_plan_but_not_their_clock_zone_or_style() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let now = c.prepare("SELECT now()::text").await.unwrap();
    let a: String = c.query_one(&now, &[]).await.unwrap().get(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b: String = c.query_one(&now, &[]).await.unwrap().get(0);
    assert_ne!(a, b, "now() is the statement's start, not the prepare's");

    let shown = c
        .prepare("SELECT '2025-01-02 03:04:05+00'::timestamptz::text, 1 + 1")
        .await
        .unwrap();
    let text = |r: tokio_postgres::Row| r.get::<_, String>(0);
    assert_eq!(text(c.query_one(&shown, &[]).await.unwrap()), "2025-01-02 03:04:05+00");
    c.simple_query("SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    assert_eq!(text(c.query_one(&shown, &[]).await.unwrap()), "2025-01-02 12:04:05+09");
    c.simple_query("SET DateStyle = 'SQL, DMY'").await.unwrap();
    assert_eq!(text(c.query_one(&shown, &[]).await.unwrap()), "02/01/2025 12:04:05 JST");

    // A lookup by literal identifier keeps its pushdown: one GetResource, then none.
    let lookup = prepared_queue_lookup(&c, "identifier").await;
    stack.emulator.reset_counters();
    for _ in 0..3 {
        assert_eq!(c.query(&lookup, &[]).await.unwrap().len(), 1);
    }
    assert_eq!(stack.emulator.counters().calls("ListResources"), 0);
    assert!(stack.emulator.counters().calls("GetResource") <= 1);
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn simple_queries_sent_again_run_as_planned_but_follow_the_session() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let first = |r: Vec<SimpleQueryRow>| r[0].get(0).map(str::to_string);
    let shown = "SELECT '2025-01-02 03:04:05+00'::timestamptz::text";
    assert_eq!(first(rows(&c, shown).await.unwrap()).as_deref(), Some("2025-01-02 03:04:05+00"));
    assert_eq!(first(rows(&c, shown).await.unwrap()).as_deref(), Some("2025-01-02 03:04:05+00"));
    // The zone and style the text was planned under changed: planned again.
    c.simple_query("SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    assert_eq!(first(rows(&c, shown).await.unwrap()).as_deref(), Some("2025-01-02 12:04:05+09"));
    c.simple_query("SET DateStyle = 'SQL, DMY'").await.unwrap();
    assert_eq!(first(rows(&c, shown).await.unwrap()).as_deref(), Some("02/01/2025 12:04:05 JST"));
    // Back to the zone a kept plan was made in, after another statement ran elsewhere: the
    // kept plan runs in its own zone, not the one the engine was last moved to.
    c.simple_query("RESET DateStyle; SET TimeZone = 'UTC'").await.unwrap();
    let at_utc = "SELECT '2025-06-01 00:30:00'::timestamptz::text, date_trunc('day', '2025-06-01 00:30:00+00'::timestamptz)::text";
    let expected = (
        Some("2025-06-01 00:30:00+00".to_string()),
        Some("2025-06-01 00:00:00+00".to_string()),
    );
    let pair = |r: Vec<SimpleQueryRow>| (r[0].get(0).map(str::to_string), r[0].get(1).map(str::to_string));
    assert_eq!(pair(rows(&c, at_utc).await.unwrap()), expected);
    c.simple_query("SET TimeZone = 'America/New_York'").await.unwrap();
    assert_eq!(
        first(rows(&c, "SELECT '2025-06-01 00:30:00+00'::timestamptz::text").await.unwrap()).as_deref(),
        Some("2025-05-31 20:30:00-04")
    );
    c.simple_query("SET TimeZone = 'UTC'").await.unwrap();
    assert_eq!(pair(rows(&c, at_utc).await.unwrap()), expected);
    c.simple_query("SET TimeZone = 'America/New_York'").await.unwrap();
    assert_eq!(
        pair(rows(&c, at_utc).await.unwrap()),
        (
            Some("2025-06-01 00:30:00-04".to_string()),
            Some("2025-05-31 00:00:00-04".to_string())
        )
    );

    // What changes between runs is never kept: now() moves, an error stays an error.
    let a = first(rows(&c, "SELECT now()::text").await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_ne!(a, first(rows(&c, "SELECT now()::text").await.unwrap()));
    for _ in 0..2 {
        let e = rows(&c, "SELECT * FROM awscc.sqs.no_such_table").await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("42P01"), "{e}");
    }

    // A kept lookup still reads the cache as of now: a queue created since is found.
    let count = "SELECT count(*) FROM awscc.sqs.queues WHERE region = 'us-east-1'";
    let before: i64 = first(rows(&c, count).await.unwrap()).unwrap().parse().unwrap();
    c.simple_query("INSERT INTO awscc.sqs.queues (queue_name, region) VALUES ('planned-once', 'us-east-1')")
        .await
        .unwrap();
    let after: i64 = first(rows(&c, count).await.unwrap()).unwrap().parse().unwrap();
    assert_eq!(after, before + 1);
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_physical_plan_scans_with_each_executions_settings() {
    // No cache: every execution calls, so its own call budget and regions show.
    let stack = Stack::start_with(EmulatorConfig::default(), with_ttl(Duration::ZERO)).await;
    let c = stack.client().await;
    // No region: every region of the session is listed, one call each at least.
    c.simple_query("SET cloudpg.regions = 'us-east-1, us-west-2, eu-west-1'")
        .await
        .unwrap();
    let scan = c
        .prepare("SELECT region, queue_url FROM awscc.sqs.queues_list_only ORDER BY region, queue_url")
        .await
        .unwrap();
    let regions = |rows: Vec<tokio_postgres::Row>| {
        let mut r: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        r.dedup();
        r
    };
    let first = c.query(&scan, &[]).await.unwrap();
    assert_eq!(regions(first.clone()), vec!["eu-west-1", "us-east-1", "us-west-2"]);
    let again = c.query(&scan, &[]).await.unwrap();
    assert_eq!(again.len(), first.len(), "run again from the kept plan");

    c.simple_query("SET cloudpg.max_api_calls = 2").await.unwrap();
    let e = c.query(&scan, &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("54000"), "the budget of this execution: {e}");
    c.simple_query("RESET cloudpg.max_api_calls").await.unwrap();
    assert_eq!(c.query(&scan, &[]).await.unwrap().len(), first.len());

    c.simple_query("SET cloudpg.regions = 'eu-west-1'").await.unwrap();
    assert_eq!(regions(c.query(&scan, &[]).await.unwrap()), vec!["eu-west-1".to_string()]);
    drop(c);
    stack.stop().await;
}

/// The result format code of each column of a RowDescription.
fn described_formats(body: &[u8]) -> Vec<i16> {
    let count = i16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut formats = Vec::with_capacity(count);
    for _ in 0..count {
        at += body[at..].iter().position(|b| *b == 0).unwrap() + 1;
        // table oid, attnum, type oid, typlen, typmod, then the format code
        at += 4 + 2 + 4 + 2 + 4;
        formats.push(i16::from_be_bytes([body[at], body[at + 1]]));
        at += 2;
    }
    formats
}

/// The values of a DataRow as sent, `None` for NULL.
fn sent_values(body: &[u8]) -> Vec<Option<Vec<u8>>> {
    let count = i16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len < 0 {
            values.push(None);
        } else {
            values.push(Some(body[at..at + len as usize].to_vec()));
            at += len as usize;
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prepared_statement_describes_and_sends_each_format_it_is_bound_with() {
    let stack = Stack::start().await;
    let mut raw = Raw::connect(stack.addr).await;
    raw.parse("pair", "SELECT 42::int4 AS a, 'x'::text AS b, 7::int8 AS c").await;
    raw.sync().await;
    assert!(raw.answer().await.errors.is_empty());
    // Every way of asking, each more than once and in an order that would show a description
    // kept for one format and sent for another.
    for formats in [
        vec![],
        vec![1],
        vec![1, 0, 1],
        vec![0, 1, 0],
        vec![1],
        vec![0],
        vec![0, 1, 0],
        vec![1, 1, 0],
        vec![],
    ] {
        raw.bind("", "pair", &[], &formats).await;
        raw.describe_portal("").await;
        raw.execute("", 0).await;
        raw.sync().await;
        let expected: Vec<i16> = (0..3)
            .map(|i| match formats.len() {
                0 => 0,
                1 => formats[0],
                _ => formats[i],
            })
            .collect();
        let (mut described, mut sent) = (None, Vec::new());
        while let Some(m) = raw.read().await {
            match m.kind {
                b'T' => described = Some(described_formats(&m.body)),
                b'D' => sent.push(sent_values(&m.body)),
                b'E' => panic!("{formats:?}: {:?}", m.field(b'M')),
                b'Z' => break,
                _ => {}
            }
        }
        assert_eq!(described.as_ref(), Some(&expected), "described for {formats:?}");
        let value = |i: usize, text: &str, binary: Vec<u8>| Some(if expected[i] == 1 { binary } else { text.as_bytes().to_vec() });
        assert_eq!(
            sent,
            vec![vec![
                value(0, "42", 42i32.to_be_bytes().to_vec()),
                value(1, "x", b"x".to_vec()),
                value(2, "7", 7i64.to_be_bytes().to_vec()),
            ]],
            "sent for {formats:?}"
        );
    }
    stack.stop().await;
}

async fn retention(c: &tokio_postgres::Client, prepared: &tokio_postgres::Statement, sql: &str) -> (Vec<String>, Vec<Option<String>>) {
    let by_prepared = c.query(prepared, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let by_simple = rows(c, sql).await.unwrap().iter().map(|r| r.get(0).map(str::to_string)).collect();
    (by_prepared, by_simple)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_point_lookup_is_answered_from_its_kept_read_until_the_resource_changes() {
    let stack = Stack::start_with(EmulatorConfig::default(), with_ttl(Duration::from_secs(600))).await;
    let c = stack.client().await;
    let other = stack.client().await;
    c.simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('kept-read', 3, 'us-east-1')")
        .await
        .unwrap();
    let sql = "SELECT retention_in_days::text FROM awscc.logs.log_groups WHERE region = 'us-east-1' AND identifier = 'kept-read'";
    let prepared = c.prepare(sql).await.unwrap();
    let three = (vec!["3".to_string()], vec![Some("3".to_string())]);
    assert_eq!(retention(&c, &prepared, sql).await, three);

    // Again and again, by both protocols: the kept read, no call.
    stack.emulator.reset_counters();
    let hits = cache_hits(&c).await;
    for _ in 0..3 {
        assert_eq!(retention(&c, &prepared, sql).await, three);
    }
    assert_eq!(stack.emulator.counters().total_calls(), 0, "{:?}", stack.emulator.counters());
    assert!(cache_hits(&c).await - hits >= 6, "each lookup counted as a hit");

    // Another region's lookup of the same identifier is its own read, not this one.
    let west = "SELECT retention_in_days::text FROM awscc.logs.log_groups WHERE region = 'us-west-2' AND identifier = 'kept-read'";
    assert!(rows(&c, west).await.unwrap().is_empty());
    assert_eq!(stack.emulator.counters().calls("GetResource"), 1);

    // A change made by another session is seen by the next lookup, then a deletion.
    other
        .simple_query("UPDATE awscc.logs.log_groups SET retention_in_days = 7 WHERE identifier = 'kept-read' AND region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(
        retention(&c, &prepared, sql).await,
        (vec!["7".to_string()], vec![Some("7".to_string())])
    );
    other
        .simple_query("DELETE FROM awscc.logs.log_groups WHERE identifier = 'kept-read' AND region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(retention(&c, &prepared, sql).await, (vec![], vec![]));
    drop((c, other));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_read_expires_with_the_cache() {
    let ttl = Duration::from_secs(1);
    let stack = Stack::start_with(EmulatorConfig::default(), with_ttl(ttl)).await;
    let c = stack.client().await;
    let lookup = prepared_queue_lookup(&c, "queue_name").await;
    assert_eq!(c.query(&lookup, &[]).await.unwrap().len(), 1);
    stack.emulator.reset_counters();
    assert_eq!(c.query(&lookup, &[]).await.unwrap().len(), 1);
    assert_eq!(stack.emulator.counters().total_calls(), 0);
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_eq!(c.query(&lookup, &[]).await.unwrap().len(), 1);
    assert_eq!(stack.emulator.counters().calls("GetResource"), 1, "read again once expired");
    drop(c);
    stack.stop().await;
}

/// (timestamp as text, `current_setting('TimeZone')`, application name) by a prepared statement,
/// then by a simple query, then the time zone as `pg_settings` has it.
async fn zone_seen(c: &tokio_postgres::Client, prepared: &tokio_postgres::Statement) -> Vec<String> {
    let p = c.query_one(prepared, &[]).await.unwrap();
    let mut seen: Vec<String> = (0..3).map(|i| p.get(i)).collect();
    let s = rows(c, ZONE_SHOWN).await.unwrap();
    seen.extend((0..3).map(|i| s[0].get(i).unwrap().to_string()));
    let v = rows(c, "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'TimeZone'")
        .await
        .unwrap();
    seen.push(v[0].get(0).unwrap().to_string());
    seen
}

const ZONE_SHOWN: &str =
    "SELECT '2025-01-02 03:04:05+00'::timestamptz::text, current_setting('TimeZone'), current_setting('application_name')";

fn zone_expected(text: &str, zone: &str, app: &str) -> Vec<String> {
    [text, zone, app, text, zone, app, zone].map(str::to_string).to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_see_the_settings_a_savepoint_or_rollback_brought_back() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let prepared = c.prepare(ZONE_SHOWN).await.unwrap();
    let tokyo = "2025-01-02 12:04:05+09";
    let utc = "2025-01-02 03:04:05+00";
    let new_york = "2025-01-01 22:04:05-05";
    let steps: [(&str, &str, &str, &str); 9] = [
        (
            "SET TimeZone = 'Asia/Tokyo'; SET application_name = 'one'",
            tokyo,
            "Asia/Tokyo",
            "one",
        ),
        ("BEGIN; SET TimeZone = 'UTC'", utc, "UTC", "one"),
        (
            "SAVEPOINT a; SET LOCAL TimeZone = 'America/New_York'; SET application_name = 'two'",
            new_york,
            "America/New_York",
            "two",
        ),
        ("ROLLBACK TO SAVEPOINT a", utc, "UTC", "one"),
        ("SET TimeZone = 'America/New_York'; RELEASE a", new_york, "America/New_York", "one"),
        ("ROLLBACK", tokyo, "Asia/Tokyo", "one"),
        ("BEGIN; SET LOCAL TimeZone = 'UTC'", utc, "UTC", "one"),
        ("COMMIT", tokyo, "Asia/Tokyo", "one"),
        (
            "BEGIN; SET TimeZone = 'UTC'; SET application_name = 'three'; COMMIT",
            utc,
            "UTC",
            "three",
        ),
    ];
    for (sql, text, zone, app) in steps {
        c.simple_query(sql).await.unwrap();
        assert_eq!(zone_seen(&c, &prepared).await, zone_expected(text, zone, app), "after {sql}");
    }
    // Another session's settings move independently of this one's.
    let other = stack.client().await;
    other.simple_query("SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    assert_eq!(zone_seen(&c, &prepared).await, zone_expected(utc, "UTC", "three"));
    drop((c, other));
    stack.stop().await;
}

/// A connection to `stack` as `application_name = app`.
async fn client_named(stack: &Stack, app: &str) -> tokio_postgres::Client {
    let conn = format!("{} application_name={app}", stack.conn_string());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// `sql`'s first column, prepared (extended protocol) or sent as text (simple).
async fn first_column(c: &tokio_postgres::Client, sql: &str, prepared: bool) -> Vec<Option<String>> {
    if prepared {
        let statement = c.prepare(sql).await.unwrap();
        c.query(&statement, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
    } else {
        rows(c, sql).await.unwrap().iter().map(|r| r.get(0).map(str::to_string)).collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_another_connection_planned_answers_for_the_session_running_it() {
    let stack = Stack::start_with(EmulatorConfig::default(), with_ttl(Duration::ZERO)).await;
    let first = client_named(&stack, "first").await;
    let second = client_named(&stack, "second").await;
    let in_tokyo = client_named(&stack, "first").await;
    in_tokyo.simple_query("SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    let some = |s: &str| vec![Some(s.to_string())];
    for prepared in [true, false] {
        // Planned by the first connection, then prepared again by the others.
        let app = "SELECT current_setting('application_name')";
        assert_eq!(first_column(&first, app, prepared).await, some("first"));
        assert_eq!(first_column(&second, app, prepared).await, some("second"), "prepared: {prepared}");
        let time = "SELECT '2025-01-02 03:04:05+00'::timestamptz::text";
        assert_eq!(first_column(&first, time, prepared).await, some("2025-01-02 03:04:05+00"));
        assert_eq!(first_column(&in_tokyo, time, prepared).await, some("2025-01-02 12:04:05+09"));
        assert_eq!(first_column(&second, time, prepared).await, some("2025-01-02 03:04:05+00"));
    }

    // A scan kept by one session lists the regions, and spends the call budget, of the
    // session running it.
    second.simple_query("SET cloudpg.regions = 'eu-west-1'").await.unwrap();
    first
        .simple_query("SET cloudpg.regions = 'us-east-1, us-west-2, eu-west-1'")
        .await
        .unwrap();
    let scan = "SELECT region, queue_url FROM awscc.sqs.queues_list_only ORDER BY region, queue_url";
    let regions = |mut listed: Vec<Option<String>>| {
        listed.dedup();
        listed
    };
    for prepared in [true, false] {
        let all = regions(first_column(&first, scan, prepared).await);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(
            regions(first_column(&second, scan, prepared).await),
            some("eu-west-1"),
            "prepared: {prepared}"
        );
        assert_eq!(regions(first_column(&first, scan, prepared).await), all);
    }
    first.simple_query("SET cloudpg.max_api_calls = 2").await.unwrap();
    let e = first.simple_query(scan).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("54000"), "the budget of this execution: {e}");
    assert_eq!(regions(first_column(&second, scan, true).await), some("eu-west-1"));
    drop((first, second, in_tokyo));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_over_no_table_answers_the_same_every_time_but_never_keeps_a_failure() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let constant = c
        .prepare("SELECT 1 AS one, 'a' || 'b' AS ab, 2.5::float8 * 2 AS five")
        .await
        .unwrap();
    for _ in 0..3 {
        let row = c.query_one(&constant, &[]).await.unwrap();
        assert_eq!(
            (row.get::<_, i64>(0), row.get::<_, String>(1), row.get::<_, f64>(2)),
            (1, "ab".to_string(), 5.0)
        );
    }
    // Text results of the same statement, through the simple protocol.
    for _ in 0..2 {
        let got = texts(&rows(&c, "SELECT 1 AS one, 'a' || 'b' AS ab").await.unwrap());
        assert_eq!(got, vec![vec![Some("1".to_string()), Some("ab".to_string())]]);
    }
    let none = c.prepare("SELECT 1 AS one WHERE 1 > 2").await.unwrap();
    for _ in 0..2 {
        assert!(c.query(&none, &[]).await.unwrap().is_empty());
        assert_eq!(none.columns()[0].name(), "one");
    }
    let failing = c.prepare("SELECT 1 / 0 AS never").await.unwrap();
    for _ in 0..3 {
        let e = c.query(&failing, &[]).await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("22012"), "fails every time: {e}");
    }
    // Another connection sharing the statement gets the same rows.
    let other = stack.client().await;
    let shared = other
        .prepare("SELECT 1 AS one, 'a' || 'b' AS ab, 2.5::float8 * 2 AS five")
        .await
        .unwrap();
    assert_eq!(other.query_one(&shared, &[]).await.unwrap().get::<_, String>(1), "ab");
    drop((c, other));
    stack.stop().await;
}
