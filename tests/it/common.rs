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
