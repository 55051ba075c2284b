//! Memory the query engine may hold: a per-statement limit inside a server-wide pool.
//!
//! DataFusion asks its memory pool before it buffers (sort, join build sides, aggregates). The
//! server's [`GreedyMemoryPool`] bounds all statements together (`limits.memory_pool`); each
//! statement gets a [`StatementMemory`] in front of it that also bounds that statement alone
//! (`limits.query_memory`). Going past either fails the statement with 53200 naming the limit;
//! nothing spills to disk.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnv;

use crate::error::Error;

/// The server-wide pool.
pub fn server_pool(bytes: usize) -> Arc<dyn MemoryPool> {
    Arc::new(GreedyMemoryPool::new(bytes))
}

/// One statement's share of the server's pool.
#[derive(Debug)]
pub struct StatementMemory {
    limit: usize,
    used: AtomicUsize,
    server: Arc<dyn MemoryPool>,
}

impl StatementMemory {
    pub fn new(limit: usize, server: Arc<dyn MemoryPool>) -> Arc<StatementMemory> {
        Arc::new(StatementMemory {
            limit,
            used: AtomicUsize::new(0),
            server,
        })
    }

    /// A runtime for one statement: the server's runtime with this statement's pool.
    pub fn runtime(self: &Arc<Self>, base: &RuntimeEnv) -> Arc<RuntimeEnv> {
        Arc::new(RuntimeEnv {
            memory_pool: self.clone(),
            disk_manager: base.disk_manager.clone(),
            cache_manager: base.cache_manager.clone(),
            object_store_registry: base.object_store_registry.clone(),
        })
    }
}

impl fmt::Display for StatementMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "statement memory ({} of {} bytes)",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for StatementMemory {
    fn name(&self) -> &str {
        "cloudpg statement memory"
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.server.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used
            .fetch_sub(shrink.min(self.used.load(Ordering::Relaxed)), Ordering::Relaxed);
        self.server.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let before = self.used.fetch_add(additional, Ordering::Relaxed);
        if before + additional > self.limit {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(out_of_memory(format!(
                "this statement needs more than {} of memory (limits.query_memory), for {}",
                human(self.limit),
                reservation.consumer().name()
            )));
        }
        if self.server.try_grow(reservation, additional).is_err() {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            let total = match self.server.memory_limit() {
                MemoryLimit::Finite(n) => human(n),
                _ => "the pool".into(),
            };
            return Err(out_of_memory(format!(
                "the server's query memory ({total}, limits.memory_pool) is taken by other statements; this one needed {} more",
                human(additional)
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

fn out_of_memory(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(Error::OutOfMemory(message)))
}

fn human(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    #[test]
    fn a_statement_is_held_to_its_limit_and_the_server_to_its_pool() {
        let server = server_pool(3000);
        let a = StatementMemory::new(2000, server.clone());
        let b = StatementMemory::new(2000, server.clone());
        let pa: Arc<dyn MemoryPool> = a.clone();
        let pb: Arc<dyn MemoryPool> = b.clone();
        let ra = MemoryConsumer::new("sort").register(&pa);
        let rb = MemoryConsumer::new("join").register(&pb);
        ra.try_grow(1500).unwrap();
        let e = Error::from(ra.try_grow(600).unwrap_err());
        assert_eq!(e.sqlstate(), "53200");
        assert!(e.to_string().contains("limits.query_memory"), "{e}");
        let e = Error::from(rb.try_grow(1600).unwrap_err());
        assert!(e.to_string().contains("limits.memory_pool"), "{e}");
        rb.try_grow(1500).unwrap();
        drop(ra);
        assert_eq!(a.reserved(), 0);
        assert_eq!(server.reserved(), 1500);
    }
}
