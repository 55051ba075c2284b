//! A read-only view whose rows are computed each time it is scanned: the server's tables about
//! itself (`cloudpg.api_calls`, `cloudpg.cache`, `pg_stat_activity`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// The columns of a scan, in schema order.
pub type Columns = Pin<Box<dyn Future<Output = DfResult<Vec<ArrayRef>>> + Send>>;

pub struct LiveTable {
    name: &'static str,
    schema: SchemaRef,
    columns: Arc<dyn Fn() -> Columns + Send + Sync>,
}

impl LiveTable {
    pub fn new(name: &'static str, schema: SchemaRef, columns: impl Fn() -> Columns + Send + Sync + 'static) -> LiveTable {
        LiveTable {
            name,
            schema,
            columns: Arc::new(columns),
        }
    }
}

impl std::fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveTable({})", self.name)
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns = (self.columns)().await?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
