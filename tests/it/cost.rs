//! Cost controls: a hard ceiling on calls per second to each account and region, users'
//! budgets of calls per minute, and `cloudpg.api_usage`.

use cloudpg_emulator::{Emulator, EmulatorConfig};
use tokio_postgres::NoTls;

use crate::accounts::{start_server, two_accounts, Profiles};
use crate::common::{column, db_error, rows, Process};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ceiling_on_calls_per_second_holds_for_each_account_and_region() {
    let mut emulator_config = EmulatorConfig::default();
    emulator_config
        .resources_per_type_overrides
        .insert("AWS::Logs::LogGroup".into(), 200);
    emulator_config.page_size_overrides.insert("AWS::Logs::LogGroup".into(), 10);
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), emulator_config).await.unwrap();
    let profiles = Profiles::write();
    let config = two_accounts(r#"["us-east-1"]"#).replace("[mutations]", "[api]\nmax_calls_per_second = 5.0\n[mutations]");
    let (process, _log) = start_server(&emu, &profiles, &config).await;
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port());
    // Two scans of prod's 200 log groups at once (20 pages each), and one of dev's.
    let scans = [("prod", 2), ("dev", 1)].into_iter().flat_map(|(account, n)| {
        let conn = conn.clone();
        (0..n).map(move |_| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let (c, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
                tokio::spawn(connection);
                let sql = format!("SELECT count(*) FROM awscc.logs.log_groups_list_only WHERE account = '{account}'");
                column(&rows(&c, &sql).await.unwrap(), 0)[0].clone()
            })
        })
    });
    let counts: Vec<Option<String>> = futures::future::join_all(scans.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(counts, vec![Some("200".to_string()); 3], "every row, however slowly");
    let log = emu.counters().call_log;
    for (account, expected) in [("111111111111", 40), ("222222222222", 20)] {
        let times: Vec<f64> = log
            .iter()
            .filter(|c| c.account == account && c.operation == "ListResources")
            .map(|c| c.at)
            .collect();
        assert_eq!(times.len(), expected, "{account}");
        let rate = (times.len() - 1) as f64 / (times[times.len() - 1] - times[0]);
        assert!(rate <= 5.0 * 1.05, "{account}: {rate:.2} calls/s over the scan");
        // No second holds more than the ceiling (and one call of slack for where it starts).
        for (i, start) in times.iter().enumerate() {
            let within = times[i..].iter().take_while(|t| **t < start + 1.0).count();
            assert!(within <= 6, "{account}: {within} calls within a second from {start}");
        }
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_past_its_budget_is_refused_and_usage_shows_who_called() {
    let config = "[cache]\nttl = \"0s\"\n[auth]\nmethod = \"trust\"\n\
                  [[auth.users]]\nname = \"alice\"\npassword_env = \"HOME\"\nmax_calls_per_minute = 3\n\n\
                  [[auth.users]]\nname = \"bob\"\npassword_env = \"HOME\"\n";
    let process = tokio::task::spawn_blocking(move || Process::serve(config)).await.unwrap();
    let as_user = |user: &str| format!("host=127.0.0.1 port={} user={user} dbname=awscc", process.addr.port());
    let (alice, connection) = tokio_postgres::connect(&as_user("alice"), NoTls).await.unwrap();
    tokio::spawn(connection);
    let (bob, connection) = tokio_postgres::connect(&as_user("bob"), NoTls).await.unwrap();
    tokio::spawn(connection);
    for _ in 0..3 {
        rows(&alice, "SELECT count(*) FROM awscc.ec2.vpcs_list_only").await.unwrap();
    }
    let (code, message, hint) = db_error(
        alice
            .simple_query("SELECT count(*) FROM awscc.ec2.vpcs_list_only")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "53400", "{message}");
    assert!(
        message.contains("\"alice\"") && message.contains("max_calls_per_minute"),
        "{message}"
    );
    assert!(hint.contains("next call fits"), "{hint}");
    for _ in 0..5 {
        rows(&bob, "SELECT count(*) FROM awscc.ec2.vpcs_list_only").await.unwrap();
    }
    let usage = rows(
        &bob,
        "SELECT user_name, account, region, type_name, calls FROM cloudpg.api_usage ORDER BY 1",
    )
    .await
    .unwrap();
    assert_eq!(column(&usage, 0), vec![Some("alice".into()), Some("bob".into())]);
    assert_eq!(column(&usage, 1), vec![Some("default".into()); 2]);
    assert_eq!(column(&usage, 3), vec![Some("AWS::EC2::VPC".into()); 2]);
    assert_eq!(
        column(&usage, 4),
        vec![Some("3".into()), Some("5".into())],
        "the refused call is not counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_lists_are_served_while_one_call_refreshes_them() {
    let raw: cloudpg::config::RawConfig = toml::from_str("[cache]\nttl = \"1s\"\nstale_while_revalidate = \"1m\"\n").unwrap();
    let stack = crate::common::Stack::start_with(EmulatorConfig::default(), cloudpg::config::Config::from_raw(raw).unwrap()).await;
    let c = stack.client().await;
    let sql = "SELECT count(*) FROM awscc.ec2.vpcs_list_only";
    let count = |r: Vec<tokio_postgres::SimpleQueryRow>| column(&r, 0)[0].clone().unwrap();
    let before = count(rows(&c, sql).await.unwrap());
    assert_eq!(stack.emulator.counters().calls("ListResources"), 1);
    // A VPC appears behind cloudpg's back, and the page goes stale.
    crate::accounts::create(
        &stack.emulator,
        "AKIDTEST",
        "us-east-1",
        "AWS::EC2::VPC",
        r#"{"CidrBlock":"10.42.0.0/16"}"#,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let stale = count(rows(&c, sql).await.unwrap());
    assert_eq!(stale, before, "served from the cache although past its TTL");
    // The background call is counted when the emulator receives it and cached when its answer
    // is back: until then the stale page is still what is served.
    let wanted = (before.parse::<u32>().unwrap() + 1).to_string();
    let mut fresh = String::new();
    for _ in 0..100 {
        fresh = count(rows(&c, sql).await.unwrap());
        if fresh == wanted {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(fresh, wanted, "the refreshed page");
    assert_eq!(
        stack.emulator.counters().calls("ListResources"),
        2,
        "one background call refreshed it, however often it was read meanwhile"
    );
    drop(c);
    stack.stop().await;
}
