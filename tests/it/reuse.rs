//! What repeated statements reuse, and what they must not: kept scan results (whole lists as
//! Arrow batches) and prepared statements' optimized plans, checked through the wire against
//! the emulator's call counters.

use std::time::{Duration, Instant};

use crate::common::{client_with_notices, rows, Stack};
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
    let id: String = c
        .query_one(
            "SELECT identifier FROM awscc.sqs.queues WHERE region = 'us-east-1' ORDER BY identifier LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let lookup = c
        .prepare(&format!(
            "SELECT identifier FROM awscc.sqs.queues WHERE region = 'us-east-1' AND identifier = '{id}'"
        ))
        .await
        .unwrap();
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
