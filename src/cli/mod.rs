//! Parts of the `cloudpg` command line too big for `main.rs` (binary only; the library knows
//! nothing of them).

pub mod query;
