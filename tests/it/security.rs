//! Who gets in and what they see: SCRAM logins through tokio-postgres, psql and pgjdbc, the
//! same 28P01 for a wrong password and an unknown user, failures slowed down, TLS with
//! verify-full and `require`, roles, and a secret that appears nowhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cloudpg::auth::{Method, Role, ScramVerifier, User, Verifier};
use cloudpg::config::{Config, RawTls, TlsMode};
use cloudpg_emulator::EmulatorConfig;
use tokio_postgres::NoTls;

use crate::common::{db_error, rows, Process, Stack};

const ALICE: &str = "alice-pass-1";
const BOB: &str = "bob-pass-2";

fn user(name: &str, password: &str, role: Role) -> User {
    User {
        name: name.into(),
        verifier: Verifier::Scram(ScramVerifier::from_password(password)),
        role,
        accounts: None,
        max_calls_per_minute: None,
    }
}

/// alice (writer) and bob (reader), SCRAM.
fn with_users(mut config: Config) -> Config {
    config.auth.method = Method::ScramSha256;
    config.auth.users = vec![user("alice", ALICE, Role::Writer), user("bob", BOB, Role::Reader)];
    config.auth.max_failure_delay = Duration::from_millis(300);
    config
}

async fn login(stack: &Stack, user: &str, password: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conn = format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=awscc",
        stack.addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs psql off the test's thread (the server's accept loop runs on it).
async fn psql(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new("psql");
    c.args(args).env_remove("PGPASSWORD").stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::task::spawn_blocking(move || c.output().expect("psql is installed (scripts/install-test-deps.sh)"))
        .await
        .unwrap()
}

/// psql printed `expected` (its stderr shown when it did not).
fn assert_printed(out: &std::process::Output, expected: &str) {
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        expected,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn scram_logins_need_the_right_password() {
    let stack = Stack::start_with(EmulatorConfig::default(), with_users(Config::default())).await;
    let alice = login(&stack, "alice", ALICE).await.expect("alice logs in");
    assert_eq!(rows(&alice, "SELECT 'in'").await.unwrap()[0].get(0), Some("in"));

    let wrong = db_error(login(&stack, "alice", "nope").await.expect_err("refused"));
    let unknown = db_error(login(&stack, "mallory", "nope").await.expect_err("refused"));
    assert_eq!(wrong.0, "28P01");
    assert_eq!(unknown.0, "28P01");
    assert_eq!(wrong.1, "password authentication failed for user \"alice\"");
    assert_eq!(
        unknown.1, "password authentication failed for user \"mallory\"",
        "the same words for both"
    );

    // psql (libpq) and pgjdbc speak SCRAM too.
    let port = stack.addr.port().to_string();
    let ok = psql(
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "bob",
            "-d",
            "awscc",
            "-Atc",
            "SELECT 'psql-in'",
        ],
        &[("PGPASSWORD", BOB)],
    )
    .await;
    assert_printed(&ok, "psql-in");
    let bad = psql(
        &["-h", "127.0.0.1", "-p", &port, "-U", "bob", "-d", "awscc", "-Atc", "SELECT 1"],
        &[("PGPASSWORD", "wrong")],
    )
    .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("password authentication failed"));
    let jdbc = crate::jdbc::run_java_with(&stack, "Login", &["alice", ALICE, BOB]).await;
    assert_eq!(jdbc, "alice=ok wrong=28P01");
    stack.stop().await;
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_slowed_down() {
    let stack = Stack::start_with(EmulatorConfig::default(), with_users(Config::default())).await;
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let e = login(&stack, "alice", "guess").await.expect_err("refused");
        took.push(started.elapsed());
        assert_eq!(db_error(e).0, "28P01");
    }
    assert!(took[..5].iter().all(|t| *t < Duration::from_millis(250)), "{took:?}");
    assert!(took[10..].iter().all(|t| *t >= Duration::from_millis(290)), "{took:?}");
    // The right password still works, and clears the slate.
    login(&stack, "alice", ALICE).await.expect("alice logs in");
    let started = Instant::now();
    let _ = login(&stack, "alice", "guess").await;
    assert!(started.elapsed() < Duration::from_millis(250));
    stack.stop().await;
}

#[tokio::test]
async fn readers_cannot_change_anything_writers_can() {
    let stack = Stack::start_with(EmulatorConfig::default(), with_users(Config::default())).await;
    let bob = login(&stack, "bob", BOB).await.unwrap();
    for sql in [
        "INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('bobs', 'us-east-1')",
        "UPDATE awscc.logs.log_groups SET retention_in_days = 1 WHERE identifier = 'x' AND region = 'us-east-1'",
        "DELETE FROM awscc.logs.log_groups WHERE identifier = 'x' AND region = 'us-east-1'",
        "SET cloudpg.allow_bulk_mutations = on",
        "SET cloudpg.autocommit_mutations = on",
    ] {
        let (code, message, _) = db_error(bob.simple_query(sql).await.unwrap_err());
        assert_eq!(code, "42501", "{sql}: {message}");
    }
    let err = bob
        .execute(
            "DELETE FROM awscc.logs.log_groups WHERE identifier = $1 AND region = 'us-east-1'",
            &[&"x"],
        )
        .await
        .unwrap_err();
    assert_eq!(db_error(err).0, "42501", "prepared statements too");
    // Ordinary settings stay allowed.
    bob.simple_query("SET search_path = public; SET application_name = 'bi'; SET TimeZone = 'UTC'")
        .await
        .unwrap();
    let mutations = |s: &Stack| {
        let c = s.emulator.counters();
        c.calls("CreateResource") + c.calls("UpdateResource") + c.calls("DeleteResource")
    };
    assert_eq!(mutations(&stack), 0);
    let alice = login(&stack, "alice", ALICE).await.unwrap();
    alice
        .simple_query("INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('alices', 'us-east-1')")
        .await
        .unwrap();
    assert_eq!(mutations(&stack), 1);
    stack.stop().await;
}

/// A test CA and a certificate for localhost and 127.0.0.1 signed by it, made with openssl.
pub(crate) fn certificates(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed (scripts/install-test-deps.sh)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let subject = format!("/CN={ca_name}");
    run(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &subject,
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("server.crt"), dir.join("server.key"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudpg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn tls_verifies_and_require_refuses_plaintext() {
    let dir = temp_dir("tls");
    let (ca, cert, key) = certificates(&dir, "cloudpg test CA");
    let mut config = with_users(Config::default());
    config.tls = RawTls {
        mode: TlsMode::Require,
        cert: Some(cert),
        key: Some(key),
    };
    let stack = Stack::start_with(EmulatorConfig::default(), config).await;
    let port = stack.addr.port().to_string();
    let ca = ca.to_string_lossy().to_string();
    let verified = psql(
        &[
            &format!("host=localhost port={port} user=alice dbname=awscc sslmode=verify-full sslrootcert={ca}"),
            "-Atc",
            "SELECT 'secure'",
        ],
        &[("PGPASSWORD", ALICE)],
    )
    .await;
    assert_printed(&verified, "secure");
    let plaintext = psql(
        &[
            &format!("host=localhost port={port} user=alice dbname=awscc sslmode=disable"),
            "-Atc",
            "SELECT 1",
        ],
        &[("PGPASSWORD", ALICE)],
    )
    .await;
    assert!(!plaintext.status.success());
    assert!(
        String::from_utf8_lossy(&plaintext.stderr).contains("accepts TLS connections only"),
        "{}",
        String::from_utf8_lossy(&plaintext.stderr)
    );
    // A CA that did not sign the certificate is refused by the client.
    let (other_ca, _, _) = certificates(&dir.join("other"), "someone else");
    let other = psql(
        &[
            &format!(
                "host=localhost port={port} user=alice dbname=awscc sslmode=verify-full sslrootcert={}",
                other_ca.display()
            ),
            "-Atc",
            "SELECT 1",
        ],
        &[("PGPASSWORD", ALICE)],
    )
    .await;
    assert!(!other.status.success());
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let dir = temp_dir("reload");
    let (ca, cert, key) = certificates(&dir, "first CA");
    let first_ca = dir.join("first-ca.pem");
    std::fs::copy(&ca, &first_ca).unwrap();
    let server = Process::serve(&format!(
        "[tls]\nmode = \"require\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let port = server.addr.port().to_string();
    let connect = |ca: PathBuf| {
        let port = port.clone();
        async move {
            psql(
                &[
                    &format!(
                        "host=localhost port={port} user=postgres dbname=awscc sslmode=verify-full sslrootcert={}",
                        ca.display()
                    ),
                    "-Atc",
                    "SELECT 'tls'",
                ],
                &[],
            )
            .await
            .status
            .success()
        }
    };
    assert!(connect(first_ca.clone()).await, "the first certificate is served");
    let (second_ca, _, _) = certificates(&dir, "second CA");
    assert!(connect(first_ca.clone()).await, "nothing changes before SIGHUP");
    server.signal("HUP");
    crate::common::eventually(Duration::from_secs(10), "the second certificate", || {
        std::process::Command::new("psql")
            .arg(format!(
                "host=localhost port={port} user=postgres dbname=awscc sslmode=verify-full sslrootcert={}",
                second_ca.display()
            ))
            .args(["-Atc", "SELECT 1"])
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .await;
    assert!(!connect(first_ca).await, "the old certificate is gone");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_that_does_not_load_stops_the_server_at_startup() {
    let dir = temp_dir("badtls");
    let (_, cert, _) = certificates(&dir, "cloudpg test CA");
    let missing = dir.join("missing.key");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nmode = \"require\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            missing.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cloudpg"))
        .args(["serve", "--emulator", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls.key") && stderr.contains("missing.key"), "{stderr}");
    // A file that is not a key is named too.
    std::fs::write(&missing, "not a key\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cloudpg"))
        .args(["serve", "--emulator", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PEM private key"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Opens a raw socket and sends a startup message for `user` (auth not completed).
async fn startup_as(addr: std::net::SocketAddr, user: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&crate::raw::startup_message(user)).await.unwrap();
    s
}

/// Reads messages until the server closes; returns the SQLSTATE of the first ErrorResponse.
async fn error_then_close(s: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all)).await;
    let mut i = 0;
    while i + 5 <= all.len() {
        let kind = all[i];
        let len = i32::from_be_bytes(all[i + 1..i + 5].try_into().ok()?) as usize;
        let body = all.get(i + 5..i + 1 + len)?;
        if kind == b'E' {
            let text = String::from_utf8_lossy(body);
            return text.split('\0').find_map(|f| f.strip_prefix('C').map(str::to_string));
        }
        i += 1 + len;
    }
    None
}

#[tokio::test]
async fn garbled_logins_end_that_connection_only() {
    use tokio::io::AsyncWriteExt;
    let stack = Stack::start_with(EmulatorConfig::default(), with_users(Config::default())).await;
    let alice = login(&stack, "alice", ALICE).await.unwrap();

    // A password (cleartext) where a SASL response is due.
    let mut s = startup_as(stack.addr, "alice").await;
    s.write_all(&[b'p', 0, 0, 0, 7, b'a', b'b', 0]).await.unwrap();
    assert_eq!(error_then_close(&mut s).await.as_deref(), Some("08P01"));
    // A SASLInitialResponse with garbage for the client-first-message.
    let mut s = startup_as(stack.addr, "alice").await;
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(b"garbage");
    let mut msg = vec![b'p'];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend(body);
    s.write_all(&msg).await.unwrap();
    assert_eq!(error_then_close(&mut s).await.as_deref(), Some("08P01"));
    // An unknown mechanism.
    let mut s = startup_as(stack.addr, "alice").await;
    let mut body = b"PLAIN\0".to_vec();
    body.extend_from_slice(&(-1i32).to_be_bytes());
    let mut msg = vec![b'p'];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend(body);
    s.write_all(&msg).await.unwrap();
    assert_eq!(error_then_close(&mut s).await.as_deref(), Some("28000"));
    // An over-long user name.
    let mut s = startup_as(stack.addr, &"u".repeat(200)).await;
    assert_eq!(error_then_close(&mut s).await.as_deref(), Some("28000"));

    assert_eq!(rows(&alice, "SELECT 1").await.unwrap().len(), 1, "others keep being served");
    stack.stop().await;
}

/// Sends `POST path` with a JSON body to the emulator.
async fn emulator_post(addr: &str, path: &str, body: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_secret_appears_nowhere() {
    const SECRET: &str = "sekrit-9f3a-d1e0";
    let log = std::env::temp_dir().join(format!("cloudpg-secret-log-{}.txt", std::process::id()));
    let server = Process::serve_with_log("[emulator]\nmutation_delay = \"20ms\"\n", &log, "trace");
    // The embedded emulator says where it listens; throttle half of its CreateResource calls so
    // the SDK's and the server's retry paths run (and log).
    let text = std::fs::read_to_string(&log).unwrap();
    let emulator = text
        .lines()
        .find_map(|l| l.split("Cloud Control emulator listening addr=").nth(1))
        .map(|a| a.trim().to_string())
        .expect("the emulator's address in the log");
    let emulator: String = emulator.chars().filter(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
    emulator_post(
        &emulator,
        "/_emulator/config",
        r#"{"faults": {"global": {}, "rules": {"CreateResource": {"throttle": 0.5}}}}"#,
    )
    .await;

    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", server.addr.port());
    let (c, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    let auth = format!(r#"{{"ApiKeyAuthParameters": {{"ApiKeyName": "x-api-key", "ApiKeyValue": "{SECRET}"}}}}"#);
    let mut seen = String::new();
    let mut show = |messages: Vec<tokio_postgres::SimpleQueryMessage>| {
        for m in messages {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                for i in 0..r.len() {
                    seen.push_str(r.get(i).unwrap_or(""));
                    seen.push('\n');
                }
            }
        }
    };
    for i in 0..4 {
        let insert = format!(
            "INSERT INTO awscc.events.connections (Name, AuthorizationType, AuthParameters, region) \
             VALUES ('secret-{i}', 'API_KEY', '{auth}', 'us-east-1') RETURNING *, ResourceModel"
        );
        show(c.simple_query(&insert).await.unwrap_or_else(|e| panic!("{e:?}")));
    }
    show(c.simple_query(&format!("EXPLAIN INSERT INTO awscc.events.connections (Name, AuthorizationType, AuthParameters, region) VALUES ('x', 'API_KEY', '{auth}', 'us-east-1')")).await.unwrap());
    for sql in [
        "SELECT * FROM awscc.events.connections WHERE region = 'us-east-1'",
        "SELECT * FROM awscc.events.connections WHERE identifier = 'secret-0' AND region = 'us-east-1'",
        "SELECT * FROM cloudpg.requests",
        "SELECT * FROM awscc.cloudcontrol.resource_requests WHERE region = 'us-east-1'",
        "SELECT * FROM pg_catalog.pg_settings",
    ] {
        show(c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")));
    }
    // A bad value for the secret's property is refused without quoting it.
    let err = c
        .simple_query(&format!(
            "INSERT INTO awscc.events.connections (Name, AuthorizationType, AuthParameters, region) VALUES ('y', 'API_KEY', '[\"{SECRET}\"]', 'us-east-1')"
        ))
        .await
        .unwrap_err();
    let (_, message, hint) = db_error(err);
    seen.push_str(&message);
    seen.push_str(&hint);
    assert!(seen.contains("x-api-key"), "the rest of the property is shown");
    assert!(!seen.contains(SECRET), "the secret was shown:\n{seen}");
    drop(c);
    drop(server);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.len() > 10_000, "the server logged at trace level");
    assert!(!log_text.contains(SECRET), "the secret is in the log");
    let _ = std::fs::remove_file(&log);
}
