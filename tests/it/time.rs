//! `date-time` properties as `timestamptz`: printed in the session's TimeZone and DateStyle
//! (text) or sent as instants (binary), compared with timestamps, written back as RFC 3339,
//! read from the other shapes handlers send, and Grafana's time-series queries on them.

use chrono::{DateTime, Utc};
use cloudpg_emulator::EmulatorConfig;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::common::{client_with_notices, column, db_error, rows, Stack};

const SCHEDULES: &str = "awscc.scheduler.schedules";

async fn texts(c: &Client, sql: &str) -> Vec<Option<String>> {
    column(&rows(c, sql).await.unwrap(), 0)
}

/// The text of one value.
async fn one(c: &Client, sql: &str) -> String {
    texts(c, sql).await.remove(0).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn date_time_properties_print_in_the_session_zone_and_style() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let read = format!("SELECT start_date FROM {SCHEDULES} WHERE region = 'us-east-1' ORDER BY identifier");
    let statement = c.prepare(&read).await.unwrap();
    assert_eq!(statement.columns()[0].type_(), &Type::TIMESTAMPTZ);
    let declared = one(
        &c,
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'scheduler' AND table_name = 'schedules' AND column_name = 'start_date'",
    )
    .await;
    assert_eq!(declared, "timestamp with time zone");

    // Binary results are instants; text is PostgreSQL's ISO output in UTC.
    let instants: Vec<Option<DateTime<Utc>>> = c.query(&statement, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let utc = texts(&c, &read).await;
    assert!(instants.iter().filter(|i| i.is_some()).count() >= 3, "{instants:?}");
    let expected: Vec<Option<String>> = instants
        .iter()
        .map(|i| i.map(|i| i.format("%Y-%m-%d %H:%M:%S+00").to_string()))
        .collect();
    assert_eq!(utc, expected);

    // The session's zone moves the wall clock and the offset, never the instant.
    rows(&c, "SET TimeZone = 'asia/kolkata'").await.unwrap();
    assert_eq!(one(&c, "SHOW TimeZone").await, "Asia/Kolkata");
    let kolkata = texts(&c, &read).await;
    let local = |i: &DateTime<Utc>| (*i + chrono::Duration::minutes(330)).format("%Y-%m-%d %H:%M:%S+05:30").to_string();
    assert_eq!(kolkata, instants.iter().map(|i| i.as_ref().map(local)).collect::<Vec<_>>());
    let binary: Vec<Option<DateTime<Utc>>> = c.query(&statement, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(binary, instants, "binary values do not depend on the zone");
    assert_eq!(
        one(&c, "SELECT '2025-01-02 03:04:05'::timestamptz").await,
        "2025-01-02 03:04:05+05:30",
        "text without an offset is read in the session zone"
    );
    assert_eq!(one(&c, "SELECT pg_typeof(now())::text").await, "timestamp with time zone");
    // Calendar functions see a column's instants where the session is.
    let days = texts(
        &c,
        &format!("SELECT date_trunc('day', start_date) FROM {SCHEDULES} WHERE region = 'us-east-1' ORDER BY identifier"),
    )
    .await;
    let day = |i: &DateTime<Utc>| (*i + chrono::Duration::minutes(330)).format("%Y-%m-%d 00:00:00+05:30").to_string();
    assert_eq!(days, instants.iter().map(|i| i.as_ref().map(day)).collect::<Vec<_>>());
    let walls = texts(
        &c,
        &format!("SELECT start_date::timestamp FROM {SCHEDULES} WHERE region = 'us-east-1' ORDER BY identifier"),
    )
    .await;
    let wall = |i: &DateTime<Utc>| (*i + chrono::Duration::minutes(330)).format("%Y-%m-%d %H:%M:%S").to_string();
    assert_eq!(walls, instants.iter().map(|i| i.as_ref().map(wall)).collect::<Vec<_>>());
    let as_text = texts(
        &c,
        &format!("SELECT start_date::text FROM {SCHEDULES} WHERE region = 'us-east-1' ORDER BY identifier"),
    )
    .await;
    assert_eq!(as_text, kolkata, "::text is the text the value prints as");
    let now = one(&c, "SELECT now()").await;
    assert!(now.ends_with("+05:30"), "{now}");

    rows(&c, "SET DateStyle = 'German'").await.unwrap();
    assert_eq!(one(&c, "SHOW DateStyle").await, "German, DMY");
    assert_eq!(
        one(&c, "SELECT '2025-01-02 03:04:05.25+00'::timestamptz").await,
        "02.01.2025 08:34:05.25 IST"
    );
    rows(&c, "SET TIME ZONE -8").await.unwrap();
    rows(&c, "SET DateStyle = 'Postgres, MDY'").await.unwrap();
    assert_eq!(one(&c, "SHOW TimeZone").await, "<-08>+08");
    assert_eq!(
        one(&c, "SELECT '2025-01-02 03:04:05+00'::timestamptz").await,
        "Wed Jan 01 19:04:05 2025 -08"
    );
    rows(&c, "RESET ALL").await.unwrap();
    assert_eq!(
        one(&c, "SELECT '2025-01-02 03:04:05+00'::timestamptz").await,
        "2025-01-02 03:04:05+00"
    );

    // Input as PostgreSQL reads it: minutes without seconds, a zone name, words.
    assert_eq!(one(&c, "SELECT timestamptz '2025-01-02 10:00'").await, "2025-01-02 10:00:00+00");
    assert_eq!(
        one(&c, "SELECT '2025-01-02 10:00 America/New_York'::timestamptz").await,
        "2025-01-02 15:00:00+00"
    );
    assert_eq!(one(&c, "SELECT 'epoch'::timestamptz").await, "1970-01-01 00:00:00+00");
    let filtered = format!("SELECT count(*) >= 0 FROM {SCHEDULES} WHERE region = 'us-east-1' AND start_date > '2025-06-01 10:00'");
    assert_eq!(one(&c, &filtered).await, "t");
    for (sql, code, named) in [
        ("SELECT 'soon'::timestamptz", "22007", "\"soon\""),
        ("SELECT '2025-13-01'::timestamptz", "22008", "\"2025-13-01\""),
        ("SET TimeZone = 'Mars/Olympus_Mons'", "22023", "Mars/Olympus_Mons"),
        ("SET DateStyle = 'ISO, SQL'", "22023", "ISO, SQL"),
    ] {
        let (got, message, hint) = db_error(c.simple_query(sql).await.unwrap_err());
        assert_eq!(got, code, "{sql}");
        assert!(message.contains(named), "{message}");
        assert!(code == "22008" || !hint.is_empty(), "{sql}: a hint says how to write it");
    }
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamps_compare_and_are_written_back_as_rfc3339() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let id = one(
        &c,
        &format!("SELECT identifier FROM {SCHEDULES} WHERE region = 'us-east-1' ORDER BY identifier LIMIT 1"),
    )
    .await;
    let read = format!("SELECT end_date FROM {SCHEDULES} WHERE region = 'us-east-1' AND identifier = '{id}'");
    // An offset in the value is honoured; the property gets UTC.
    let update = format!("UPDATE {SCHEDULES} SET end_date = '2030-01-01 02:00:00+02' WHERE region = 'us-east-1' AND identifier = '{id}'");
    rows(&c, &update).await.unwrap();
    assert_eq!(one(&c, &read).await, "2030-01-01 00:00:00+00");
    let stored = one(
        &c,
        &format!("SELECT properties ->> 'EndDate' FROM awscc.cloudcontrol.resources WHERE type_name = 'AWS::Scheduler::Schedule' AND region = 'us-east-1' AND identifier = '{id}'"),
    )
    .await;
    assert_eq!(stored, "2030-01-01T00:00:00Z", "Cloud Control is sent RFC 3339");
    // Text without an offset is a time in the session's zone, as PostgreSQL reads it.
    rows(&c, "SET TimeZone = 'Asia/Kolkata'").await.unwrap();
    let update = format!("UPDATE {SCHEDULES} SET end_date = '2030-01-01 05:30' WHERE region = 'us-east-1' AND identifier = '{id}'");
    rows(&c, &update).await.unwrap();
    assert_eq!(one(&c, &read).await, "2030-01-01 05:30:00+05:30");
    rows(&c, "RESET TimeZone").await.unwrap();
    assert_eq!(one(&c, &read).await, "2030-01-01 00:00:00+00");
    // Timestamps from expressions work as values too.
    let update = format!("UPDATE {SCHEDULES} SET end_date = TIMESTAMPTZ '2031-06-01 12:00:00+00' + INTERVAL '1 day' WHERE region = 'us-east-1' AND identifier = '{id}'");
    rows(&c, &update).await.unwrap();
    assert_eq!(one(&c, &read).await, "2031-06-02 12:00:00+00");
    // Comparisons: with literals, with now(), and between columns.
    let later = format!("SELECT count(*) FROM {SCHEDULES} WHERE region = 'us-east-1' AND identifier = '{id}' AND end_date > now() AND end_date >= '2031-06-02' AND end_date > start_date");
    assert_eq!(one(&c, &later).await, "1");

    let bad = format!("UPDATE {SCHEDULES} SET end_date = 'whenever' WHERE region = 'us-east-1' AND identifier = '{id}'");
    let (code, message, _) = db_error(c.simple_query(&bad).await.unwrap_err());
    assert_eq!(code, "22007");
    assert!(message.contains("\"whenever\"") && message.contains("end_date"), "{message}");
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_shapes_are_read_and_an_unreadable_one_is_null_with_a_warning() {
    let emulator = EmulatorConfig {
        schema_drift: vec!["AWS::AccessAnalyzer::ArchiveRule".into()],
        ..EmulatorConfig::default()
    };
    let stack = Stack::start_with(emulator, cloudpg::config::Config::default()).await;
    let (c, mut notices) = client_with_notices(&stack.conn_string()).await;
    let r = rows(
        &c,
        "SELECT created_at, updated_at, _extra ->> 'UpdatedAt' FROM awscc.accessanalyzer.archive_rules WHERE region = 'us-east-1'",
    )
    .await
    .unwrap();
    assert!(!r.is_empty());
    for row in &r {
        // Epoch seconds from the handler become the instant they count.
        let created = row.get(0).expect("epoch seconds are read");
        assert!(
            created.len() == "2025-01-01 00:00:00+00".len() && created.ends_with("+00"),
            "{created}"
        );
        assert_eq!(row.get(1), None, "text that is no time is NULL");
        assert_eq!(row.get(2), Some("sometime last week"), "and kept in _extra");
    }
    let warnings: Vec<String> = std::iter::from_fn(|| notices.try_recv().ok())
        .map(|n| n.message().to_string())
        .collect();
    assert!(warnings.iter().any(|w| w.contains("updated_at")), "{warnings:?}");
    assert!(
        !warnings.iter().any(|w| w.contains("created_at")),
        "epoch seconds are no misfit: {warnings:?}"
    );
    drop(c);
    stack.stop().await;
}

/// Grafana's PostgreSQL data source expands `$__timeFilter(col)`, `$__timeGroupAlias` and
/// `$__unixEpochFilter` into these shapes (lib/pq, simple Query).
#[tokio::test(flavor = "multi_thread")]
async fn grafana_time_series_queries_return_rows() {
    let stack = Stack::start().await;
    let c = stack.client().await;
    let within = one(
        &c,
        &format!(
            "SELECT count(*) FROM {SCHEDULES} WHERE region = 'us-east-1' AND start_date >= '2025-01-01' AND start_date <= '2026-01-01'"
        ),
    )
    .await;
    let within: i64 = within.parse().unwrap();
    assert!(within > 0, "the emulator's schedules start in 2025");

    let grouped = rows(
        &c,
        &format!(
            "SELECT\n  floor(extract(epoch from start_date)/86400)*86400 AS \"time\",\n  count(*) AS \"schedules\"\nFROM {SCHEDULES}\nWHERE\n  region = 'us-east-1' AND start_date BETWEEN '2025-01-01T00:00:00Z' AND '2026-01-01T00:00:00Z'\nGROUP BY 1\nORDER BY 1"
        ),
    )
    .await
    .unwrap();
    let counts: i64 = column(&grouped, 1)
        .iter()
        .map(|n| n.as_deref().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(counts, within);
    let buckets: Vec<f64> = column(&grouped, 0).iter().map(|t| t.as_deref().unwrap().parse().unwrap()).collect();
    assert!(
        buckets.windows(2).all(|w| w[0] < w[1]) && buckets.iter().all(|b| b % 86400.0 == 0.0),
        "{buckets:?}"
    );

    let series = rows(
        &c,
        &format!("SELECT start_date AS \"time\", state AS metric, 1 AS value FROM {SCHEDULES} WHERE region = 'us-east-1' AND start_date >= '2025-01-01T00:00:00Z' AND start_date <= '2026-01-01T00:00:00Z' ORDER BY 1"),
    )
    .await
    .unwrap();
    assert_eq!(series.len() as i64, within);
    assert_eq!(series[0].columns()[0].name(), "time");

    let epoch = rows(
        &c,
        &format!("SELECT extract(epoch from start_date) as \"time\", name FROM {SCHEDULES} WHERE region = 'us-east-1' AND extract(epoch from start_date) >= 1735689600 AND extract(epoch from start_date) <= 1767225600"),
    )
    .await
    .unwrap();
    assert_eq!(epoch.len() as i64, within);
    drop(c);
    stack.stop().await;
}
