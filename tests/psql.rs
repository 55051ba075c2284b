//! The real psql client: the seed pages' SELECTs from a script, and psql's own catalog
//! commands (`\dn`, `\dt`, `\d`), which run its pg_catalog queries.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::Stack;

/// psql against a server address; run off the async runtime because it blocks.
struct Psql(SocketAddr);

impl Psql {
    /// (success, stdout, stderr)
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("psql")
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.0.port().to_string(),
                "-U",
                "postgres",
                "awscc",
            ])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql is installed (scripts/install-test-deps.sh)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

async fn psql(stack: &Stack, args: &[&str]) -> (bool, String, String) {
    let (p, args) = (Psql(stack.addr), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || p.run(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .expect("psql task")
}

const SEED_SCRIPT: &str = "SELECT\nregion,\nname\nFROM awscc.events.connections_list_only\nWHERE region = 'us-east-1';\n\
SELECT\nregion,\nconnection_arn\nFROM aws.codeconnections.connections\nWHERE region = 'us-east-1'\n;\n\
SELECT\nregion,\nid,\narn,\nidentity_management_type,\ninstance_alias,\ncreated_time,\nservice_role,\ninstance_status,\ndirectory_id,\nattributes,\ntags\nFROM aws.connect.instances\nWHERE region = 'us-east-1';\n\
SELECT\nregion,\nid,\nsubnet_id,\nclient_token,\npreserve_client_ip,\ntags,\nsecurity_group_ids\nFROM awscc.ec2.instance_connect_endpoints\nWHERE region = 'us-east-1' AND data__Identifier = '<Id>';\n";

#[tokio::test(flavor = "multi_thread")]
async fn seed_selects_from_a_psql_script() {
    let stack = Stack::start().await;
    let script = std::env::temp_dir().join(format!("cloudpg-seeds-{}.sql", std::process::id()));
    std::fs::write(&script, SEED_SCRIPT).unwrap();
    let (ok, out, err) = psql(&stack, &["-f", &script.to_string_lossy()]).await;
    let _ = std::fs::remove_file(&script);
    assert!(ok, "{err}");
    assert!(out.contains("connection-0000"), "{out}");
    assert!(out.contains("arn:aws:codeconnections:us-east-1:123456789012:"), "{out}");
    assert!(out.contains("(0 rows)"), "the <Id> placeholder finds nothing: {out}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_catalog_commands() {
    let stack = Stack::start().await;
    let schemas = psql(&stack, &["-c", "\\dn"]).await;
    assert!(schemas.0 && schemas.1.contains(" ec2 "), "{schemas:?}");
    let tables = psql(&stack, &["-c", "\\dt ec2.*"]).await;
    assert!(tables.0 && tables.1.contains("instance_connect_endpoints"), "{tables:?}");
    let table = psql(&stack, &["-c", "\\d ec2.vpcs"]).await;
    assert!(
        table.0 && table.1.contains("Table \"ec2.vpcs\"") && table.1.contains("| boolean"),
        "{table:?}"
    );
    let error = psql(&stack, &["-c", "SELECT * FROM awscc.ec2.vpc"]).await;
    assert!(
        !error.0 && error.2.contains("relation \"awscc.ec2.vpc\" does not exist"),
        "{error:?}"
    );
    stack.stop().await;
}
