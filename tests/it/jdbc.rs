//! pgjdbc (Debian's libpostgresql-jdbc-java) against the server: `executeUpdate` returns
//! PostgreSQL's row counts for INSERT, UPDATE and DELETE, with and without parameters.



use std::process::Command;

use crate::common::Stack;

const DRIVER: &str = "/usr/share/java/postgresql.jar";

#[tokio::test]
async fn execute_update_returns_row_counts() {
    let stack = Stack::start().await;
    let port = stack.addr.port().to_string();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/jdbc/ExecuteUpdate.java");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("java")
            .args(["-cp", DRIVER, source, &port])
            .output()
            .expect("java is installed (scripts/install-test-deps.sh)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgjdbc program failed:\n{stdout}\n{stderr}");
    assert_eq!(
        stdout.trim(),
        "insert=1 multi=2 update=1 retention=90 delete=3 again=0 bad=22P02",
        "{stderr}"
    );
    stack.stop().await;
}
