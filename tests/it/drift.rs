//! Types as AWS answers them, not only as the shipped schemas say: any type by name
//! (`awscc.cloudcontrol.resources`), and `_extra` for what a schema does not declare.

use cloudpg_emulator::EmulatorConfig;

use crate::common::{client_with_notices, column, db_error, rows, Stack};

const LOG_GROUP: &str = "AWS::Logs::LogGroup";

async fn drifting() -> Stack {
    let emulator = EmulatorConfig {
        schema_drift: vec![LOG_GROUP.into()],
        ..EmulatorConfig::default()
    };
    Stack::start_with(emulator, cloudpg::config::Config::default()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn any_type_is_read_by_name_with_its_properties_whole() {
    let stack = drifting().await;
    let c = stack.client().await;
    let listed = rows(
        &c,
        "SELECT type_name, region, account, identifier FROM awscc.cloudcontrol.resources WHERE type_name = 'AWS::Logs::LogGroup' ORDER BY identifier",
    )
    .await
    .unwrap();
    let typed = rows(&c, "SELECT log_group_name FROM awscc.logs.log_groups_list_only ORDER BY 1")
        .await
        .unwrap();
    assert_eq!(column(&listed, 3), column(&typed, 0), "the same resources as the typed table");
    assert!(column(&listed, 0).iter().all(|t| t.as_deref() == Some(LOG_GROUP)));
    assert!(column(&listed, 2).iter().all(|a| a.as_deref() == Some("default")));
    let first = column(&listed, 3)[0].clone().unwrap();
    let one = rows(
        &c,
        &format!(
            "SELECT properties->>'LogGroupName', properties->'EmulatorUndeclared'->>'added' FROM awscc.cloudcontrol.resources \
             WHERE type_name = 'AWS::Logs::LogGroup' AND identifier = '{first}'"
        ),
    )
    .await
    .unwrap();
    assert_eq!(column(&one, 0), vec![Some(first.clone())]);
    assert_eq!(column(&one, 1), vec![Some("after the schema".into())], "properties are kept whole");
    let (code, _, hint) = db_error(c.simple_query("SELECT * FROM awscc.cloudcontrol.resources").await.unwrap_err());
    assert_eq!(code, "42P10");
    assert!(hint.contains("type_name"), "{hint}");
    drop(c);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_schema_does_not_declare_is_kept_in_extra_with_a_warning() {
    let stack = drifting().await;
    let (c, mut notices) = client_with_notices(&stack.conn_string()).await;
    let r = rows(&c, "SELECT * FROM awscc.logs.log_groups").await.unwrap();
    assert!(!r.is_empty());
    let extra_index = r[0]
        .columns()
        .iter()
        .position(|col| col.name() == "_extra")
        .expect("an _extra column");
    let extras: Vec<serde_json::Value> = column(&r, extra_index)
        .into_iter()
        .map(|e| serde_json::from_str(&e.expect("every drifted row has extras")).unwrap())
        .collect();
    for e in &extras {
        assert_eq!(e["EmulatorUndeclared"]["added"], "after the schema", "{e}");
        let wrong: Vec<&String> = e.as_object().unwrap().keys().filter(|k| *k != "EmulatorUndeclared").collect();
        assert_eq!(wrong.len(), 1, "the wrong-typed value is kept too: {e}");
        assert_eq!(e[wrong[0]], "not-a-number");
    }
    let warnings: Vec<String> = std::iter::from_fn(|| notices.try_recv().ok())
        .map(|n| n.message().to_string())
        .collect();
    let about_type: Vec<&String> = warnings.iter().filter(|w| w.contains("another type")).collect();
    assert_eq!(about_type.len(), 1, "one WARNING per column and scan: {warnings:?}");
    assert!(about_type[0].contains("_extra"), "{warnings:?}");
    // Types without drift: _extra is NULL.
    let vpcs = rows(&c, "SELECT count(*) FROM awscc.ec2.vpcs WHERE _extra IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(column(&vpcs, 0), vec![Some("0".into())]);
    drop(c);
    stack.stop().await;
}
