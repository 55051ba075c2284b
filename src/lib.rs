//! cloudpg: a PostgreSQL wire-protocol server that shows every AWS Cloud Control resource
//! type as a typed SQL table.
//!
//! # Layout
//!
//! In the order a query flows through the server:
//!
//! - [`server`]: the accept loop, the worker threads, graceful shutdown, and the wiring of the
//!   parts below.
//! - [`wire`]: everything that knows pgwire: the message loop of a connection and its limits,
//!   startup, the simple and extended protocols (streaming, cancel, timeouts), row encoding.
//! - [`sql`]: the statement pipeline (parse once, classify once, one dispatch), sessions,
//!   settings, transactions, meta commands, compatibility rewrites; `sql::dml` turns
//!   INSERT/UPDATE/DELETE into Cloud Control requests.
//! - [`config`]: the TOML configuration, read and checked once.
//! - [`auth`]: users, password verifiers, the server side of SCRAM, roles, login throttling.
//! - [`catalog`]: resource schemas as tables (names, columns, types, supported statements),
//!   their DataFusion providers, filter pushdown, the accounts and regions a statement calls,
//!   and the scan that calls Cloud Control.
//! - [`cloudcontrol`]: the only module that knows the AWS SDK: the `ResourceApi` trait, the SDK
//!   clients per account and region (credentials, STS roles) with retries and limits, the
//!   cache, and the log that tracks every mutation.
//! - [`allocator`]: mimalloc as the process's allocator, and returning startup's garbage.
//! - [`error`]: the one error type and its SQLSTATE map.
//! - [`fuzzing`]: entry points for hostile input, for `fuzz/` and the suite's replay.

pub mod allocator;
pub mod auth;
pub mod catalog;
pub mod cloudcontrol;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod observe;
pub mod server;
pub mod sql;
pub mod tls;
pub mod wire;

pub use error::{Error, Result};
