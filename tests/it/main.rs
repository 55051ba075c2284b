//! The integration tests, one binary (each test binary links DataFusion and the AWS SDK, so
//! one binary keeps the build fast): the server and the emulator on 127.0.0.1 port 0, driven
//! through real clients and the raw protocol.

mod accounts;
mod catalog_cli;
mod common;
mod compat;
mod cost;
mod credentials;
mod dml;
mod drift;
mod durability;
mod faults;
mod hostile;
mod jdbc;
mod observe;
mod pipeline;
mod protocol;
mod psql;
mod raw;
mod reuse;
mod schemas;
mod security;
mod select;
mod soak;
mod time;
