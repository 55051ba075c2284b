//! Credentials as production hands them out: from a container credentials endpoint (ECS, EKS
//! Pod Identity) and `credential_process`, through an HTTP proxy and a TLS endpoint signed by a
//! private CA; and what happens when they expire: `/readyz` fails, statements fail naming the
//! account and where its credentials come from, and both recover without a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudpg_emulator::{ContainerCredentials, Emulator, EmulatorConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{db_error, rows, Process};
use crate::observe::http_get;

const SQL: &str = "SELECT count(*) FROM awscc.ec2.vpcs WHERE region = 'us-east-1'";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudpg-credentials-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The environment of a server whose credentials come only from where the test says: no
/// keys in the environment, no shared files, no instance metadata.
fn isolated(dir: &Path, more: &[(&str, String)]) -> Vec<(String, String)> {
    let none = dir.join("none");
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), String::new()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), String::new()),
        ("AWS_SHARED_CREDENTIALS_FILE".to_string(), none.display().to_string()),
        ("AWS_CONFIG_FILE".to_string(), none.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    env.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

async fn serve(endpoint: String, config: &str, dir: &Path, env: Vec<(String, String)>) -> Process {
    let (config, log) = (config.to_string(), dir.join("server.log"));
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::serve_against_with_env(&endpoint, &config, &log, &env)
    })
    .await
    .unwrap()
}

async fn connect(process: &Process) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=postgres dbname=awscc", process.addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// While the account's credentials cannot be had: a statement fails with 28000 naming the
/// account and `says`, and `/readyz` answers 503 naming the account.
async fn assert_unavailable(c: &tokio_postgres::Client, base: &str, says: &str) {
    let e = db_error(
        rows(c, "SELECT count(*) FROM awscc.ec2.subnets WHERE region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(e.0, "28000", "{e:?}");
    assert!(e.1.contains("account default") && e.1.contains(says), "{e:?}");
    let (status, body) = http_get(base, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("account default"), "{body}");
}

fn container(key: &str) -> Option<ContainerCredentials> {
    Some(ContainerCredentials {
        access_key_id: key.to_string(),
        // Inside the SDK's refresh margin: every call asks the endpoint again, as once a
        // long-lived session nears its end.
        expires_in_seconds: 2,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_credentials_fail_readiness_and_statements_and_recover_without_a_restart() {
    const KEY: &str = "ASIACONTAINER0444444444444";
    let emu = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig {
            container_credentials: container(KEY),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = temp_dir("expiry");
    let uri = format!("{}/_emulator/credentials", emu.endpoint_url());
    let env = isolated(&dir, &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)]);
    let mut server = serve(emu.endpoint_url(), "[metrics]\nlisten = \"127.0.0.1:0\"\n", &dir, env).await;
    let base = server.next_line().strip_prefix("metrics on ").unwrap().to_string();
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    assert!(
        emu.counters().calls_by_account.keys().any(|k| k.starts_with("444444444444 ")),
        "calls are signed with the container's credentials"
    );
    assert_eq!(http_get(&base, "/readyz").await.0, 200);

    // The agent stops handing out credentials: the cached ones run out.
    let mut cfg = emu.config();
    cfg.container_credentials = None;
    emu.set_config(cfg.clone());
    assert_unavailable(&c, &base, "cannot be had").await;

    // Credentials AWS has expired answer ExpiredToken: the message says whose and what to do.
    cfg.container_credentials = container(KEY);
    cfg.expired_keys = vec![KEY.to_string()];
    emu.set_config(cfg.clone());
    let e = db_error(
        rows(&c, "SELECT count(*) FROM awscc.ec2.route_tables WHERE region = 'us-east-1'")
            .await
            .unwrap_err(),
    );
    assert_eq!(e.0, "28000", "{e:?}");
    assert!(
        e.1.contains("the credentials of account default") && e.1.contains("have expired"),
        "{e:?}"
    );

    // Refreshed: the same server answers again.
    cfg.expired_keys.clear();
    emu.set_config(cfg);
    rows(&c, "SELECT count(*) FROM awscc.ec2.route_tables WHERE region = 'us-east-1'")
        .await
        .unwrap();
    let mut ready = false;
    for _ in 0..50 {
        if http_get(&base, "/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz recovers");
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_process_profiles_are_read() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let dir = temp_dir("process");
    let script = dir.join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESS0555555555555\", \"SecretAccessKey\": \"s\"}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_file = dir.join("config");
    std::fs::write(
        &config_file,
        format!("[profile tool]\ncredential_process = {}\nregion = us-east-1\n", script.display()),
    )
    .unwrap();
    let mut env = isolated(&dir, &[]);
    env.retain(|(k, _)| k != "AWS_CONFIG_FILE");
    env.push(("AWS_CONFIG_FILE".into(), config_file.display().to_string()));
    let server = serve(emu.endpoint_url(), "[aws]\nprofile = \"tool\"\n", &dir, env).await;
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    let accounts = rows(&c, "SELECT account_id, credentials FROM cloudpg.accounts").await.unwrap();
    assert_eq!(accounts[0].get(0), Some("555555555555"));
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A forward proxy for plain HTTP: reads the request line (absolute-form), connects to its
/// host and relays both ways. Counts the requests it relayed.
async fn http_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let relayed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = relayed.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head).to_string();
                let Some(target) = line.split_whitespace().nth(1).and_then(|u| u.strip_prefix("http://")) else {
                    return;
                };
                let host = target.split('/').next().unwrap_or_default().to_string();
                let Ok(mut upstream) = TcpStream::connect(&host).await else {
                    return;
                };
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if upstream.write_all(&head).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (url, relayed)
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_go_through_the_proxy_the_environment_names() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let (proxy, relayed) = http_proxy().await;
    let dir = temp_dir("proxy");
    let env = vec![("HTTP_PROXY".to_string(), proxy), ("NO_PROXY".to_string(), String::new())];
    let server = serve(emu.endpoint_url(), "", &dir, env).await;
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    assert!(
        relayed.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no call went through the proxy"
    );
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// TLS in front of the emulator, with a certificate a private CA signed.
async fn tls_front(emu: &Emulator, cert: &Path, key: &Path) -> String {
    // cloudpg's own TLS setup, without the `postgresql` ALPN protocol it offers clients.
    let mut config = (*cloudpg::tls::load(cert, key).unwrap()).clone();
    config.alpn_protocols.clear();
    let acceptor = pgwire::tokio::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let upstream = emu.addr();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (acceptor.accept(socket).await, TcpStream::connect(upstream).await) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_through_the_ca_bundle() {
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let dir = temp_dir("ca");
    let (ca, cert, key) = crate::security::certificates(&dir.join("pki"), "cloudpg proxy CA");
    let endpoint = tls_front(&emu, &cert, &key).await;

    // Not trusted: the call fails, naming the network failure.
    let server = serve(endpoint.clone(), "[api]\nmax_attempts = 1\n", &dir, Vec::new()).await;
    let c = connect(&server).await;
    let e = db_error(rows(&c, SQL).await.unwrap_err());
    assert!(
        e.1.contains("NetworkFailure") || e.1.to_lowercase().contains("certificate"),
        "{e:?}"
    );
    drop(server);

    let env = vec![("AWS_CA_BUNDLE".to_string(), ca.display().to_string())];
    let server = serve(endpoint.clone(), "", &dir, env).await;
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    drop(server);

    // A bundle that is no bundle stops the server, naming the file.
    let bogus = dir.join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudpg"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("CLOUDPG_AWS__ENDPOINT_URL", &endpoint)
        .env("CLOUDPG_AWS__CA_BUNDLE", bogus.display().to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("bogus.pem") && stderr.contains("no PEM certificate"), "{stderr}");
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_identity_assumes_the_role_as_on_eks() {
    const ACCOUNT: &str = "666666666666";
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EMULATED")},
        "Action": "sts:AssumeRoleWithWebIdentity"}]});
    let role = serde_json::json!({"RoleName": "IrsaReader", "AssumeRolePolicyDocument": trust}).to_string();
    crate::accounts::create(&emu, &format!("AKIAIRSA{ACCOUNT}"), "us-east-1", "AWS::IAM::Role", &role).await;
    let dir = temp_dir("web-identity");
    let token = dir.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.emulated.token").unwrap();
    let env = isolated(
        &dir,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
            ("AWS_ROLE_ARN", format!("arn:aws:iam::{ACCOUNT}:role/IrsaReader")),
            ("AWS_ROLE_SESSION_NAME", "cloudpg".to_string()),
            ("AWS_ENDPOINT_URL_STS", emu.endpoint_url()),
            ("AWS_REGION", "us-east-1".to_string()),
        ],
    );
    let server = serve(emu.endpoint_url(), "", &dir, env).await;
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    let accounts = rows(&c, "SELECT account_id FROM cloudpg.accounts").await.unwrap();
    assert_eq!(accounts[0].get(0), Some(ACCOUNT));
    assert!(emu.counters().calls.get("sts:AssumeRoleWithWebIdentity").is_some_and(|n| *n >= 1));
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `~/.aws/sso/cache/<sha1 of the start URL>.json`, as `aws sso login` writes it.
fn sso_login(home: &Path, start_url: &str, token: &str) {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{start_url}' | sha1sum")])
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let body = serde_json::json!({"accessToken": token, "expiresAt": "2099-01-01T00:00:00Z", "region": "us-east-1", "startUrl": start_url});
    std::fs::write(cache.join(format!("{hash}.json")), body.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_sso_session_fails_clearly_and_a_new_login_recovers_without_a_restart() {
    const ACCOUNT: &str = "777777777777";
    const START: &str = "https://emulated.awsapps.com/start";
    let emu = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig {
            sso_access_tokens: vec!["session-1".into()],
            sso_credentials_seconds: 2,
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let home = temp_dir("sso");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let config_file = home.join(".aws/config");
    std::fs::write(
        &config_file,
        format!("[profile sso]\nsso_start_url = {START}\nsso_region = us-east-1\nsso_account_id = {ACCOUNT}\nsso_role_name = Reader\nregion = us-east-1\n"),
    )
    .unwrap();
    sso_login(&home, START, "session-1");
    let mut env = isolated(
        &home,
        &[("HOME", home.display().to_string()), ("AWS_ENDPOINT_URL_SSO", emu.endpoint_url())],
    );
    env.retain(|(k, _)| k != "AWS_CONFIG_FILE");
    env.push(("AWS_CONFIG_FILE".into(), config_file.display().to_string()));
    let mut server = serve(
        emu.endpoint_url(),
        "[aws]\nprofile = \"sso\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        &home,
        env,
    )
    .await;
    let base = server.next_line().strip_prefix("metrics on ").unwrap().to_string();
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    let accounts = rows(&c, "SELECT account_id FROM cloudpg.accounts").await.unwrap();
    assert_eq!(accounts[0].get(0), Some(ACCOUNT));

    // The Identity Center session ends.
    let mut cfg = emu.config();
    cfg.sso_access_tokens.clear();
    emu.set_config(cfg.clone());
    assert_unavailable(&c, &base, "profile sso").await;

    // `aws sso login` again: the running server reads the new session.
    cfg.sso_access_tokens = vec!["session-2".into()];
    emu.set_config(cfg);
    sso_login(&home, START, "session-2");
    rows(&c, "SELECT count(*) FROM awscc.ec2.subnets WHERE region = 'us-east-1'")
        .await
        .unwrap();
    assert_eq!(http_get(&base, "/readyz").await.0, 200);
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_instance_role_is_read_through_imdsv2() {
    let emu = Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        EmulatorConfig {
            instance_credentials: Some(ContainerCredentials {
                access_key_id: "ASIAINSTANCE888888888888".into(),
                expires_in_seconds: 3600,
            }),
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = temp_dir("imds");
    let mut env = isolated(
        &dir,
        &[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", emu.endpoint_url()),
            ("AWS_REGION", "us-east-1".into()),
        ],
    );
    env.retain(|(k, _)| k != "AWS_EC2_METADATA_DISABLED");
    let server = serve(emu.endpoint_url(), "", &dir, env).await;
    let c = connect(&server).await;
    rows(&c, SQL).await.unwrap();
    assert!(
        emu.counters().calls_by_account.keys().any(|k| k.starts_with("888888888888 ")),
        "calls are signed with the instance role's credentials"
    );
    drop(server);
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
