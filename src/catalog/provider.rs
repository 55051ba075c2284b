//! DataFusion's view of the catalog: the `awscc` catalog, a schema per service, a
//! [`ResourceTable`] per table. Providers are created on lookup and cost only a few pointers,
//! so a `pg_class` scan over ~3,400 tables makes no API call and parses no JSON schema.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use serde_json::{Map, Value};

use super::accounts::{Chosen, ReadOf};
use super::fanout::{self, FanOut};
use super::model::{Catalog, ColumnSource, TableDef, TableKind};
use super::pushdown;
use super::scan::{ModelFilter, ResourceScanExec, ScanSpec};
use crate::cloudcontrol::budget::CallBudget;
use crate::cloudcontrol::cache::CachedApi;
use crate::cloudcontrol::requests::RequestLog;
use crate::config::{Config, DefaultRegions};
use crate::error::Error;

/// What every resource table needs to run a scan, and the statements need to mutate.
pub struct Backend {
    pub catalog: Arc<Catalog>,
    pub api: Arc<CachedApi>,
    pub config: Arc<Config>,
    /// Every mutation this server started.
    pub requests: Arc<RequestLog>,
    /// Whether this server mutates at all (`mutations.allow`, defaulted by target).
    pub mutations_allowed: bool,
    /// The most recent Cloud Control calls (`cloudpg.api_calls`).
    pub calls: Arc<crate::cloudcontrol::calls::CallLog>,
    /// The accounts read, and their default regions.
    pub accounts: Arc<super::accounts::Accounts>,
    /// Users' call budgets and the last hour's calls (`cloudpg.api_usage`).
    pub usage: Arc<crate::cloudcontrol::usage::Usage>,
    /// Whole lists as scans sent them, so cached scans skip building rows from JSON.
    pub scans: Arc<super::snapshots::ScanCache>,
}

/// Per-statement settings a session passes to scans through DataFusion's config extensions.
#[derive(Debug, Clone)]
pub struct QuerySettings {
    /// The session's `cloudpg.regions`, when it set one; else each account's own.
    pub regions: Option<DefaultRegions>,
    pub bypass_cache: bool,
    pub budget: Arc<CallBudget>,
    /// Where the statement's scans count how far they have got.
    pub progress: Arc<crate::catalog::progress::Progress>,
    /// `cloudpg.on_error = 'warn'`: a failing region gives a warning instead of an error.
    pub warn_on_error: bool,
    /// The statement's span: scans run on tasks of their own, and their spans (with the API
    /// calls under them) belong to the statement.
    pub span: tracing::Span,
    /// The accounts the session's user may read; `None`: all.
    pub accounts: Option<Arc<[String]>>,
}

impl QuerySettings {
    /// The settings the session put in a query's config, or the server's defaults.
    pub fn of(state: &dyn Session, backend: &Backend) -> QuerySettings {
        state
            .config()
            .get_extension::<QuerySettings>()
            .map(|s| (*s).clone())
            .unwrap_or_else(|| QuerySettings {
                regions: None,
                bypass_cache: false,
                budget: Arc::new(CallBudget::new(backend.config.limits.max_api_calls)),
                progress: Arc::default(),
                warn_on_error: false,
                span: tracing::Span::current(),
                accounts: None,
            })
    }
}

pub struct ResourceCatalog {
    backend: Arc<Backend>,
    /// `public` and `pg_catalog`: schemas the session registers beside the services.
    extra: std::sync::RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl ResourceCatalog {
    pub fn new(backend: Arc<Backend>) -> ResourceCatalog {
        ResourceCatalog {
            backend,
            extra: std::sync::RwLock::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for ResourceCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResourceCatalog")
    }
}

impl CatalogProvider for ResourceCatalog {
    fn schema_names(&self) -> Vec<String> {
        let extra = self.extra.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = extra.keys().cloned().collect();
        names.extend(self.backend.catalog.schema_names().map(str::to_string));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.extra.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Some(s.clone());
        }
        self.backend.catalog.tables_in(name)?;
        Some(Arc::new(ServiceSchema {
            name: name.to_string(),
            backend: self.backend.clone(),
        }))
    }

    fn register_schema(&self, name: &str, schema: Arc<dyn SchemaProvider>) -> DfResult<Option<Arc<dyn SchemaProvider>>> {
        // Service schemas are fixed by the resource registry; others (public, pg_catalog) may be added.
        if self.backend.catalog.tables_in(name).is_some() {
            return Err(DataFusionError::Plan(format!(
                "schema {name} holds resource tables and cannot be replaced"
            )));
        }
        Ok(self
            .extra
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), schema))
    }
}

/// One service's tables. Lookups accept StackQL's spellings too; listings show ours only.
struct ServiceSchema {
    name: String,
    backend: Arc<Backend>,
}

impl std::fmt::Debug for ServiceSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceSchema")
    }
}

#[async_trait]
impl SchemaProvider for ServiceSchema {
    fn table_names(&self) -> Vec<String> {
        self.backend
            .catalog
            .tables_in(&self.name)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.backend.catalog.table(&self.name, name).map(|t| {
            Arc::new(ResourceTable {
                def: t.clone(),
                backend: self.backend.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.backend.catalog.table(&self.name, name).is_some()
    }
}

/// A table over one Cloud Control type.
pub struct ResourceTable {
    def: Arc<TableDef>,
    backend: Arc<Backend>,
}

impl std::fmt::Debug for ResourceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResourceTable({})", self.def.qualified_name())
    }
}

#[async_trait]
impl TableProvider for ResourceTable {
    fn schema(&self) -> SchemaRef {
        super::arrow::schema(&self.def)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown::support(filters, &self.def))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let settings = QuerySettings::of(state, &self.backend);
        // What the filters name does not change between executions of a kept plan; only
        // the places and budget, which depend on the statement's settings, are decided again.
        let pushed = pushdown::collect(filters, &self.def);
        let spec = plan_scan(&self.def, &self.backend, &settings, projection, &pushed, limit)?;
        let schema = self.schema();
        let projected = Arc::new(schema.project(&spec.projection)?);
        let (def, backend) = (self.def.clone(), self.backend.clone());
        let projection = projection.cloned();
        let replan: super::scan::Replan =
            Arc::new(move |settings: &QuerySettings| Ok(plan_scan(&def, &backend, settings, projection.as_ref(), &pushed, limit)?));
        let exec = ResourceScanExec::new(spec, self.backend.api.clone(), self.backend.scans.clone(), projected);
        Ok(Arc::new(exec.with_replan(replan)))
    }
}

/// The places a table that is not one type's (`resource_requests`, `resources`) calls: the
/// accounts and regions its WHERE clause names (equalities by column), else the session's and
/// each account's own.
pub fn places_named(
    backend: &Backend,
    of: ReadOf,
    eq: &BTreeMap<String, Vec<String>>,
    settings: &QuerySettings,
) -> Result<Vec<crate::cloudcontrol::Place>, Error> {
    let catalog = &backend.catalog;
    for r in eq.get("region").into_iter().flatten() {
        catalog.check_region(r)?;
    }
    let places = backend.accounts.places(
        of,
        Chosen {
            named: eq.get("account").map(Vec::as_slice),
            allowed: settings.accounts.as_deref(),
        },
        eq.get("region").map(Vec::as_slice),
        settings.regions.as_ref(),
        &catalog.registry.regions,
    )?;
    Ok(places.into_iter().map(|p| p.place).collect())
}

/// Decides regions, identifiers, list models, hydration and limit for one scan.
pub fn plan_scan(
    table: &Arc<TableDef>,
    backend: &Backend,
    settings: &QuerySettings,
    projection: Option<&Vec<usize>>,
    pushed: &pushdown::Pushdown,
    limit: Option<usize>,
) -> Result<ScanSpec, Error> {
    for r in pushed.regions.iter().flatten() {
        backend.catalog.check_region(r)?;
    }
    let mut places = backend.accounts.places(
        ReadOf::Type(table.resource),
        Chosen {
            named: pushed.accounts.as_deref(),
            allowed: settings.accounts.as_deref(),
        },
        pushed.regions.as_deref(),
        settings.regions.as_ref(),
        &backend.catalog.registry.regions,
    )?;
    // Regions an account was found not to have enabled are skipped for the cache TTL.
    places.retain(|p| !(p.optional && backend.api.known_not_enabled(&p.place)));
    let identifiers = if table.kind == TableKind::Full {
        pushed.identifiers.clone()
    } else {
        None
    };
    let (models, fan_out) = if identifiers.is_some() {
        (Vec::new(), None)
    } else {
        list_models(&backend.catalog, table, &pushed.parents)?
    };
    check_planned_calls(&settings.budget, places.len(), identifiers.as_deref(), models.len())?;
    let projection: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..table.columns().len()).collect());
    let hydrate = table.kind == TableKind::Full && identifiers.is_none() && !projection_served_by_list(table, &projection);
    Ok(ScanSpec {
        table: table.clone(),
        places,
        identifiers,
        models,
        hydrate,
        limit,
        projection,
        bypass_cache: settings.bypass_cache,
        hydrate_concurrency: backend.config.api.hydrate_concurrency,
        budget: settings.budget.clone(),
        progress: settings.progress.clone(),
        span: settings.span.clone(),
        warn_on_error: settings.warn_on_error,
        fan_out,
    })
}

/// 54000 before any call when the calls a scan names up front are already too many:
/// a GetResource per place (account and region) and identifier, or at least one ListResources
/// per place and combination of parent values.
fn check_planned_calls(budget: &CallBudget, places: usize, identifiers: Option<&[String]>, models: usize) -> Result<(), Error> {
    let r = places as u64;
    let (calls, what) = match identifiers {
        Some(ids) => (
            r * ids.len() as u64,
            format!("{r} region(s) x {} identifier(s), a GetResource each", ids.len()),
        ),
        None => (
            r * models as u64,
            format!("{r} region(s) x {models} list(s), at least one ListResources each"),
        ),
    };
    budget.check_planned(calls, &what)
}

/// True when every projected column comes with the list response: primary identifier
/// columns, `region`, `identifier`, and parent columns (echoed from WHERE).
fn projection_served_by_list(table: &TableDef, projection: &[usize]) -> bool {
    let ids: Vec<&str> = table.resource.primary_identifier_names();
    let parents: Vec<String> = table.parent_columns().into_iter().map(|p| p.column).collect();
    projection.iter().all(|&i| {
        table.columns().get(i).is_some_and(|c| match &c.source {
            ColumnSource::Property(p) => ids.contains(&p.as_str()) || parents.contains(&c.name),
            ColumnSource::TagMap(_) | ColumnSource::Extra(_) => false,
            ColumnSource::ListParam(_) | ColumnSource::Region | ColumnSource::Account | ColumnSource::Identifier => true,
        })
    })
}

/// 42P10 for a list whose keys neither the WHERE clause nor a parent type can give, naming
/// their columns, why no parent serves, and an example WHERE clause.
fn keys_needed(table: &TableDef, columns: &[super::model::ParentColumn], missing: &[String], why: &str) -> Error {
    let named: Vec<String> = missing
        .iter()
        .map(|k| columns.iter().find(|c| &c.model_key == k).map_or(k.clone(), |c| c.column.clone()))
        .collect();
    Error::MissingFilter {
        message: format!(
            "listing {} needs {} in the WHERE clause ({} lists only the children of a parent, and {why})",
            table.qualified_name(),
            named.join(", "),
            table.type_name()
        ),
        hint: Some(format!(
            "for example: SELECT * FROM {} WHERE {}",
            table.qualified_name(),
            super::describe::list_where_example(table)
        )),
    }
}

/// The `ResourceModel`s a list needs, one per combination of the parent values given, and the
/// fan-out over parents that supplies the keys the WHERE clause does not give; an error naming
/// the missing columns (with an example WHERE clause) when no parent type can supply them.
fn list_models(
    catalog: &Catalog,
    table: &TableDef,
    parents: &BTreeMap<String, Vec<String>>,
) -> Result<(Vec<ModelFilter>, Option<Arc<FanOut>>), Error> {
    if !table.can_list() {
        return Err(Error::MissingFilter {
            message: format!(
                "{} cannot be listed: {} has no list handler in Cloud Control",
                table.qualified_name(),
                table.type_name()
            ),
            hint: Some("name the resources: add WHERE identifier = '...' (or identifier IN (...))".into()),
        });
    }
    let columns = table.parent_columns();
    let mut fan_out = None;
    if let Some(hs) = table.list_handler_schema() {
        let given: Vec<&str> = columns
            .iter()
            .filter(|c| parents.contains_key(&c.column))
            .map(|c| c.model_key.as_str())
            .collect();
        let missing = fanout::missing_keys(hs, &given);
        if !missing.is_empty() {
            // Keys given one value each can narrow the parents' own lists too.
            let single: Map<String, Value> = columns
                .iter()
                .filter_map(|c| match parents.get(&c.column).map(Vec::as_slice) {
                    Some([one]) => Some((c.model_key.clone(), Value::String(one.clone()))),
                    _ => None,
                })
                .collect();
            let planned = fanout::plan(catalog, table, &missing, &single, 0).map_err(|why| keys_needed(table, &columns, &missing, &why))?;
            fan_out = Some(Arc::new(planned));
        }
    }
    // Cartesian product of the given parent values.
    let mut combos: Vec<(Map<String, Value>, HashMap<String, String>)> = vec![(Map::new(), HashMap::new())];
    for c in &columns {
        let Some(values) = parents.get(&c.column) else { continue };
        let mut next = Vec::new();
        for (model, cols) in &combos {
            for v in values {
                let mut m = model.clone();
                m.insert(c.model_key.clone(), Value::String(v.clone()));
                let mut cs = cols.clone();
                cs.insert(c.column.clone(), v.clone());
                next.push((m, cs));
            }
        }
        combos = next;
    }
    let models = combos
        .into_iter()
        .map(|(model, parents)| ModelFilter {
            model: (!model.is_empty()).then(|| Value::Object(model).to_string()),
            parents,
        })
        .collect();
    Ok((models, fan_out))
}
