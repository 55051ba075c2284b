//! Test scaffolding: the emulator and the server on 127.0.0.1 port 0, a tokio-postgres client,
//! and a stop that always ends both.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use cloudpg::cloudcontrol::client::Target;
use cloudpg::config::Config;
use cloudpg_emulator::{Emulator, EmulatorConfig};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, SimpleQueryRow};

pub struct Stack {
    pub emulator: Emulator,
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with(EmulatorConfig::default(), Config::default()).await
    }

    pub async fn start_with(emulator_config: EmulatorConfig, mut config: Config) -> Stack {
        config.shutdown_timeout = Duration::from_secs(1);
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), emulator_config).await.unwrap();
        let engine = cloudpg::server::engine(Arc::new(config), Target::Emulator(emulator.endpoint_url()))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(cloudpg::server::run(listener, engine, async {
            let _ = rx.await;
        }));
        Stack {
            emulator,
            addr,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// `host=127.0.0.1 port=… user=postgres dbname=awscc`
    pub fn conn_string(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=awscc", self.addr.port())
    }

    pub async fn client(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.conn_string(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.emulator.shutdown().await;
    }
}

/// A client whose NOTICEs and WARNINGs arrive on the receiver as the server sends them.
pub async fn client_with_notices(conn: &str) -> (Client, tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::error::DbError>) {
    let (client, mut connection) = tokio_postgres::connect(conn, NoTls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notice(notice) = message {
                let _ = tx.send(notice);
            }
        }
    });
    (client, rx)
}

/// The data rows of a simple query.
pub async fn rows(c: &Client, sql: &str) -> Result<Vec<SimpleQueryRow>, tokio_postgres::Error> {
    Ok(c.simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect())
}

/// The text of column `i` of every row.
pub fn column(rows: &[SimpleQueryRow], i: usize) -> Vec<Option<String>> {
    rows.iter().map(|r| r.get(i).map(str::to_string)).collect()
}

/// SQLSTATE, message and hint of a failed statement.
pub fn db_error(e: tokio_postgres::Error) -> (String, String, String) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a database error: {e}"));
    (
        db.code().code().to_string(),
        db.message().to_string(),
        db.hint().unwrap_or_default().to_string(),
    )
}

/// The `cloudpg` binary serving on the embedded emulator (or one at a URL), as its own process (so a crash or
/// its memory is its own, not the test's). Killed when dropped.
pub struct Process {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    config: std::path::PathBuf,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Process {
    /// `cloudpg serve --emulator` with `config` (TOML) on 127.0.0.1, port 0.
    pub fn serve(config: &str) -> Process {
        Self::spawn(config, std::process::Stdio::null(), None, &[], None)
    }

    /// `cloudpg serve --emulator` with more environment variables (`AWS_CONFIG_FILE`).
    pub fn serve_with_env(config: &str, env: &[(&str, &str)]) -> Process {
        Self::spawn_with_env(config, std::process::Stdio::null(), None, &[], None, env)
    }

    /// `cloudpg serve` against an emulator at `endpoint` (as against AWS, with fixed
    /// credentials), logging to `log`.
    pub fn serve_against(endpoint: &str, config: &str, log: &std::path::Path) -> Process {
        Self::serve_against_with_env(endpoint, config, log, &[])
    }

    /// The same, with more environment variables (`AWS_CONFIG_FILE` for profiles).
    pub fn serve_against_with_env(endpoint: &str, config: &str, log: &std::path::Path, env: &[(&str, &str)]) -> Process {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn_with_env(config, std::process::Stdio::from(file), Some("info"), &[], Some(endpoint), env)
    }

    /// The same, logging to `log` at `level` (a RUST_LOG filter).
    pub fn serve_with_log(config: &str, log: &std::path::Path, level: &str) -> Process {
        Self::serve_with_log_args(config, log, level, &[])
    }

    /// The same, with more command-line arguments.
    pub fn serve_with_log_args(config: &str, log: &std::path::Path, level: &str, args: &[&str]) -> Process {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn(config, std::process::Stdio::from(file), Some(level), args, None)
    }

    /// The next line the server printed on stdout after `listening on …`.
    pub fn next_line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn spawn(config: &str, stderr: std::process::Stdio, level: Option<&str>, args: &[&str], endpoint: Option<&str>) -> Process {
        Self::spawn_with_env(config, stderr, level, args, endpoint, &[])
    }

    fn spawn_with_env(
        config: &str,
        stderr: std::process::Stdio,
        level: Option<&str>,
        args: &[&str],
        endpoint: Option<&str>,
        env: &[(&str, &str)],
    ) -> Process {
        use std::io::BufRead;
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("cloudpg-test-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, config).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cloudpg"));
        match endpoint {
            Some(url) => command
                .args(["serve", "--listen", "127.0.0.1:0", "--config"])
                .env("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("CLOUDPG_AWS__ENDPOINT_URL", url),
            None => command.args(["serve", "--emulator", "--listen", "127.0.0.1:0", "--config"]),
        };
        command
            .arg(&path)
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr);
        if let Some(level) = level {
            command.env("RUST_LOG", level);
        }
        let mut child = command.spawn().expect("the cloudpg binary starts");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        Process {
            child,
            addr,
            config: path,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/<pid>/status in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `HUP`).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{name} failed");
    }

    /// The exit status, if the process ended within `wait`.
    pub async fn exited_within(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Waits until `check` holds, polling; panics with `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
