//! Resource schemas as SQL tables: naming (`naming`), table and column definitions (`model`),
//! the person-readable description of a table (`describe`), Arrow schemas and batches
//! (`arrow`), DataFusion providers (`provider`), filter pushdown decisions (`pushdown`), which
//! accounts and regions a statement calls (`accounts`), the IAM policy tables need (`policy`), the scan that turns them into Cloud
//! Control calls (`scan`), the tables of mutation requests (`requests`:
//! `cloudpg.requests`, `awscc.cloudcontrol.resource_requests`), and any type by name
//! (`any_type`: `awscc.cloudcontrol.resources`).

pub mod accounts;
pub mod any_type;
pub mod arrow;
pub mod assumptions;
pub mod describe;
pub mod fanout;
pub mod jsonb;
pub mod live;
pub mod lock;
pub mod model;
pub mod naming;
pub mod overrides;
pub mod policy;
pub mod progress;
pub mod provider;
pub mod pushdown;
pub mod refresh;
pub mod replan;
pub mod requests;
pub mod scan;
pub mod snapshots;
pub mod stackql;
pub mod system;
pub mod timestamps;

pub use model::{Catalog, ColumnDef, ColumnSource, PgType, SqlOperation, TableDef, TableKind};
