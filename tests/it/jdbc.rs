//! pgjdbc (Debian's libpostgresql-jdbc-java) against the server: `executeUpdate` returns
//! PostgreSQL's row counts for INSERT, UPDATE and DELETE, with and without parameters;
//! transactions, savepoints and portions fetched through suspended portals with autocommit off;
//! DatabaseMetaData as JDBC tools browse with it, and prepared statements past the threshold.

use std::process::Command;

use crate::common::Stack;

const DRIVER: &str = "/usr/share/java/postgresql.jar";

/// Runs `tests/it/jdbc/<program>.java` against the stack; returns what it printed.
async fn run_java(stack: &Stack, program: &str) -> String {
    run_java_with(stack, program, &[]).await
}

/// The same, with more arguments after the port.
pub async fn run_java_with(stack: &Stack, program: &str, args: &[&str]) -> String {
    let port = stack.addr.port().to_string();
    let source = format!("{}/tests/it/jdbc/{program}.java", env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("java")
            .args(["-cp", DRIVER, &source, &port])
            .args(&args)
            .output()
            .expect("java is installed (scripts/install-test-deps.sh)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgjdbc program {program} failed:\n{stdout}\n{stderr}");
    stdout.trim().to_string()
}

#[tokio::test]
async fn execute_update_returns_row_counts() {
    let stack = Stack::start().await;
    assert_eq!(
        run_java(&stack, "ExecuteUpdate").await,
        "insert=1 multi=2 update=1 retention=90 delete=3 again=0 bad=22P02"
    );
    stack.stop().await;
}

#[tokio::test]
async fn transactions_savepoints_and_fetch_sizes_with_autocommit_off() {
    let stack = Stack::start().await;
    assert_eq!(
        run_java(&stack, "Transactions").await,
        "fetched=25 fetched_max=25 delete=25001 after=25P02 bad=42P01 recovered=ok autocommit_delete=0"
    );
    assert_eq!(
        stack.emulator.counters().calls("DeleteResource"),
        1,
        "only the autocommit DELETE reached Cloud Control"
    );
    stack.stop().await;
}

#[tokio::test]
async fn database_metadata_prepared_statements_and_fetch_sizes() {
    let stack = Stack::start().await;
    let out = run_java(&stack, "Metadata").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "product=PostgreSQL major=16",
            "schemas.ec2=true",
            "table=ec2.vpcs type=TABLE remarks=true",
            "columns=cidr_block:text:VARCHAR:null,enable_dns_hostnames:bool:BIT:null,ipv4_netmask_length:int8:BIGINT:null,\
             tags:jsonb:OTHER:null,region:text:VARCHAR:notnull",
            "keys=1:region:vpcs_pkey,2:identifier:vpcs_pkey",
            "types=bool:BIT,int8:BIGINT,jsonb:OTHER,text:VARCHAR",
            "functions=true constraintdef=true",
            "prepared=5,5,5,5,5",
            "typed=42/true/true/1.5 same=1",
            "fetch10=1000/500500",
            "fetchmax=1000",
        ],
        "{out}"
    );
    stack.stop().await;
}
