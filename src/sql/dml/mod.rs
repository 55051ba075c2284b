//! INSERT, UPDATE and DELETE on resource tables, intercepted before DataFusion (whose DML
//! hooks would read a missing WHERE as "every row").
//!
//! A statement becomes one Cloud Control request per row: `insert` builds DesiredStates,
//! `update` JSON Patches (`patch`), `delete` identifiers; `values` turns SQL values into the
//! JSON each property needs and `target` decides which resources a WHERE clause names. Every
//! check happens before the first call. Requests go through the server's
//! [`RequestLog`](crate::cloudcontrol::requests::RequestLog), which keeps their tokens and polls
//! them to the end; the statement waits for that unless NOWAIT, then answers with PostgreSQL's
//! command tag or the `RETURNING` rows (`returning`).

mod delete;
mod insert;
pub mod patch;
mod returning;
pub mod target;
mod update;
pub mod values;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    Expr, FromTable, ObjectName, SelectItem, SetExpr, Statement, TableFactor, TableObject, TableWithJoins,
};
use futures::{StreamExt, TryStreamExt};

use super::{Outcome, Output, Session};
use crate::catalog::model::{
    is_catalog_name, ColumnSource, PgType, SqlOperation, TableDef, TableKind, ACCOUNT_COLUMN, IDENTIFIER_ALIAS, REGION_COLUMN,
    SYSTEM_SCHEMAS,
};
use crate::cloudcontrol::requests::{RequestLog, TrackedRequest};
use crate::cloudcontrol::{MutationRequest, Place, ProgressEvent};
use crate::config::DefaultRegions;
use crate::error::{AwsError, Error, Result};

/// Requests of one statement submitted and awaited at once.
const CONCURRENCY: usize = 16;

/// The three statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Insert,
    Update,
    Delete,
}

impl Verb {
    pub fn of(stmt: &Statement) -> Option<Verb> {
        match stmt {
            Statement::Insert(_) => Some(Verb::Insert),
            Statement::Update(_) => Some(Verb::Update),
            Statement::Delete(_) => Some(Verb::Delete),
            _ => None,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Verb::Insert => "INSERT",
            Verb::Update => "UPDATE",
            Verb::Delete => "DELETE",
        }
    }

    fn operation(self) -> SqlOperation {
        match self {
            Verb::Insert => SqlOperation::Insert,
            Verb::Update => SqlOperation::Update,
            Verb::Delete => SqlOperation::Delete,
        }
    }

    fn past(self) -> &'static str {
        match self {
            Verb::Insert => "created",
            Verb::Update => "updated",
            Verb::Delete => "deleted",
        }
    }
}

/// What became of one row's request.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    /// The account and region the request went to.
    pub place: Place,
    pub event: ProgressEvent,
}

/// A column an INSERT or UPDATE sets: a property, or one of the request's own parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Property { column: String, property: String },
    Region,
    Account,
    ClientToken,
    RoleArn,
    TypeVersionId,
}

/// The resource table a DML statement changes, or why it cannot.
pub fn target_table(stmt: &Statement, catalog: &crate::catalog::Catalog) -> Result<Arc<TableDef>> {
    let verb = Verb::of(stmt).ok_or_else(|| Error::internal("not a DML statement"))?;
    let name = target_name(stmt)?;
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
    let (schema, table) = match parts.as_slice() {
        [c, s, t] if is_catalog_name(c) => (s.as_str(), t.as_str()),
        [s, t] => (s.as_str(), t.as_str()),
        [t] => ("public", t.as_str()),
        _ => ("", ""),
    };
    if let Some(def) = catalog.table(schema, table) {
        return Ok(def.clone());
    }
    let shown = parts.join(".");
    if SYSTEM_SCHEMAS.contains(&schema) && !table.is_empty() {
        return Err(Error::WrongObjectType {
            message: format!(
                "cannot {} {shown}: only the resource tables of awscc accept INSERT, UPDATE and DELETE",
                verb.tag()
            ),
            hint: None,
        });
    }
    Err(Error::UndefinedTable {
        suggestions: catalog.closest_tables(&shown, 3),
        name: shown,
    })
}

fn target_name(stmt: &Statement) -> Result<ObjectName> {
    let single = |tables: &[TableWithJoins], what: &str| -> Result<ObjectName> {
        match tables {
            [TableWithJoins {
                relation: TableFactor::Table { name, .. },
                joins,
            }] if joins.is_empty() => Ok(name.clone()),
            _ => Err(Error::NotSupported(format!(
                "{what} changes one resource table at a time, without joins"
            ))),
        }
    };
    match stmt {
        Statement::Insert(i) => match &i.table {
            TableObject::TableName(name) => Ok(name.clone()),
            TableObject::TableFunction(_) | TableObject::TableQuery(_) => Err(Error::NotSupported(
                "INSERT INTO a function or subquery: name a resource table".into(),
            )),
        },
        Statement::Update(u) => {
            if u.from.is_some() {
                return Err(Error::NotSupported(
                    "UPDATE … FROM: give the values directly, or select them in a subquery".into(),
                ));
            }
            single(std::slice::from_ref(&u.table), "UPDATE")
        }
        Statement::Delete(d) => {
            if d.using.is_some() {
                return Err(Error::NotSupported("DELETE … USING: use WHERE identifier IN (SELECT …)".into()));
            }
            match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => single(t, "DELETE"),
            }
        }
        _ => Err(Error::internal("not a DML statement")),
    }
}

/// A DML statement translated as far as it goes without reading anything: its table, its
/// parameters' types, the resources its WHERE names, and with `vals` standing in for its
/// values, the DesiredState or patch it would send. Never calls AWS; the fuzz target's way in.
pub fn translate_offline(stmt: &Statement, catalog: &crate::catalog::Catalog, vals: &[ScalarValue]) -> Result<()> {
    let table = target_table(stmt, catalog)?;
    let _ = returning_items(stmt);
    let _ = parameter_types(stmt, &table, 8);
    match stmt {
        Statement::Insert(i) => {
            insert::offline_desired_state(&table, i, vals)?;
        }
        Statement::Update(u) => {
            let _ = target::named(u.selection.as_ref());
            update::offline_request(&table, u, vals)?;
        }
        Statement::Delete(d) => {
            let _ = target::named(d.selection.as_ref());
        }
        _ => {}
    }
    Ok(())
}

pub fn returning_items(stmt: &Statement) -> Option<&Vec<SelectItem>> {
    match stmt {
        Statement::Insert(i) => i.returning.as_ref(),
        Statement::Update(u) => u.returning.as_ref(),
        Statement::Delete(d) => d.returning.as_ref(),
        _ => None,
    }
}

/// Which column or request parameter `name` means. Properties may be named by their
/// CloudFormation name (`SubnetId`) or their column (`subnet_id`); a property wins over a
/// request parameter of the same name (`AWS::EC2::InstanceConnectEndpoint` has `ClientToken`).
pub fn resolve_field(table: &TableDef, name: &str) -> Result<Field> {
    let props = table.resource.properties();
    let property = |p: &str| -> Result<Field> {
        let column = table.column_of_property(p).map_or_else(|| p.to_string(), |c| c.name.clone());
        Ok(Field::Property {
            column,
            property: p.to_string(),
        })
    };
    if props.contains_key(name) {
        return property(name);
    }
    let lower = name.to_lowercase();
    if lower == REGION_COLUMN {
        return Ok(Field::Region);
    }
    if lower == ACCOUNT_COLUMN {
        return Ok(Field::Account);
    }
    let column_name = if lower == IDENTIFIER_ALIAS { "identifier" } else { lower.as_str() };
    if let Some(c) = table.column(column_name) {
        return match &c.source {
            ColumnSource::Property(p) => property(p),
            ColumnSource::Region => Ok(Field::Region),
            ColumnSource::Account => Ok(Field::Account),
            ColumnSource::Identifier => Err(Error::GeneratedColumn {
                message: format!("column \"identifier\" of {} is assigned by Cloud Control", table.qualified_name()),
                hint: Some(format!(
                    "set the primary identifier properties ({}) instead",
                    table.resource.primary_identifier_names().join(", ")
                )),
            }),
            ColumnSource::TagMap(p) => Err(Error::GeneratedColumn {
                message: format!("column \"{}\" of {} is derived from {p}", c.name, table.qualified_name()),
                hint: Some(format!("set column \"tags\" ({p}) instead")),
            }),
            ColumnSource::Extra(_) => Err(Error::GeneratedColumn {
                message: format!(
                    "column \"{}\" of {} shows what the schema does not declare",
                    c.name,
                    table.qualified_name()
                ),
                hint: Some("set properties through their own columns, or PatchDocument for any path".into()),
            }),
            ColumnSource::ListParam(p) => Err(Error::GeneratedColumn {
                message: format!(
                    "column \"{}\" of {} is a list filter ({p}), not a property",
                    c.name,
                    table.qualified_name()
                ),
                hint: None,
            }),
        };
    }
    if let Some(p) = props.keys().find(|k| k.to_lowercase() == lower) {
        return property(p);
    }
    match lower.as_str() {
        "clienttoken" | "client_token" => return Ok(Field::ClientToken),
        "rolearn" | "role_arn" => return Ok(Field::RoleArn),
        "typeversionid" | "type_version_id" => return Ok(Field::TypeVersionId),
        _ => {}
    }
    Err(Error::UndefinedColumn {
        column: name.to_string(),
        table: Some(table.qualified_name()),
        suggestions: closest_columns(table, &lower),
    })
}

fn closest_columns(table: &TableDef, name: &str) -> Vec<String> {
    crate::error::closest(name, table.columns().iter().map(|c| c.name.as_str()))
}

/// The property schema of a top-level property (an empty schema when unknown).
fn property_schema<'a>(table: &'a TableDef, property: &str) -> &'a serde_json::Value {
    static EMPTY: serde_json::Value = serde_json::Value::Null;
    table.resource.properties().get(property).unwrap_or(&EMPTY)
}

/// The Arrow type a `$n` bound to a column of this type should decode to.
fn parameter_type(pg: PgType) -> DataType {
    match pg {
        PgType::Bigint => DataType::Int64,
        PgType::Double => DataType::Float64,
        PgType::Boolean => DataType::Boolean,
        // Read as text: `values` takes every shape of timestamp text a client sends.
        PgType::Text | PgType::Json | PgType::Timestamptz => DataType::Utf8,
    }
}

/// Parameter types of a DML statement using `count` parameters, in `$n` order: a placeholder
/// that is a column's value takes the column's type, any other is text.
pub fn parameter_types(stmt: &Statement, table: &TableDef, count: usize) -> Vec<DataType> {
    let mut types = vec![DataType::Utf8; count];
    let mut set = |expr: &Expr, field: Result<Field>| {
        if let (Some(n), Ok(Field::Property { column, .. })) = (target::placeholder_index(expr), field) {
            if let (Some(slot), Some(c)) = (types.get_mut(n - 1), table.column(&column)) {
                *slot = parameter_type(c.pg_type);
            }
        }
    };
    match stmt {
        Statement::Insert(i) => {
            if let Some(SetExpr::Values(values)) = i.source.as_ref().map(|q| q.body.as_ref()) {
                for row in &values.rows {
                    for (expr, col) in row.iter().zip(&i.columns) {
                        set(expr, resolve_field(table, &last_name(col)));
                    }
                }
            }
        }
        Statement::Update(u) => {
            for a in &u.assignments {
                if let datafusion::sql::sqlparser::ast::AssignmentTarget::ColumnName(name) = &a.target {
                    set(&a.value, resolve_field(table, &last_name(name)));
                }
            }
        }
        _ => {}
    }
    types
}

/// Every row of `batches` as scalar values.
fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>> {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let row: Vec<ScalarValue> = batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, r))
                .collect::<std::result::Result<_, _>>()
                .map_err(Error::from)?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `SELECT <projection> [FROM <from>] [WHERE <selection>]` as a statement.
fn select(projection: Vec<SelectItem>, from: Option<TableWithJoins>, selection: Option<Expr>) -> Result<Statement> {
    let mut stmt = super::parse::parse_checked("SELECT 1")?
        .pop()
        .ok_or_else(|| Error::internal("empty parse"))?;
    if let Statement::Query(q) = &mut stmt {
        if let SetExpr::Select(s) = q.body.as_mut() {
            s.projection = projection;
            s.from = from.into_iter().collect();
            s.selection = selection;
        }
    }
    Ok(stmt)
}

/// The last part of a column name as written (`t.SubnetId` → `SubnetId`).
fn last_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_else(|| name.to_string())
}

fn item(expr: Expr) -> SelectItem {
    SelectItem::UnnamedExpr(expr)
}

fn column_expr(name: &str) -> Expr {
    Expr::Identifier(datafusion::sql::sqlparser::ast::Ident::with_quote('"', name))
}

impl Session {
    /// Runs an INSERT, UPDATE or DELETE on a resource table.
    pub(super) async fn execute_dml(&mut self, stmt: Statement, nowait_hint: bool) -> Result<Output> {
        let verb = Verb::of(&stmt).ok_or_else(|| Error::internal("not a DML statement"))?;
        let table = target_table(&stmt, &self.engine.backend.catalog)?;
        self.check_may_mutate(verb, &table)?;
        let requests = self.plan_requests(&table, &stmt).await?;
        let nowait = nowait_hint || self.settings.nowait;
        let outcomes = self.run_mutations(verb, requests, nowait).await?;
        match returning_items(&stmt) {
            Some(items) => self.returning(&table, items, &outcomes, verb).await,
            None => Ok(Output::command(match verb {
                Verb::Insert => format!("INSERT 0 {}", outcomes.len()),
                other => format!("{} {}", other.tag(), outcomes.len()),
            })),
        }
    }

    /// The requests a statement sends, one per row, after every check.
    async fn plan_requests(&mut self, table: &TableDef, stmt: &Statement) -> Result<Vec<MutationRequest>> {
        match stmt {
            Statement::Insert(i) => self.plan_insert(table, i).await,
            Statement::Update(u) => self.plan_update(table, u).await,
            Statement::Delete(d) => self.plan_delete(table, d).await,
            _ => Err(Error::internal("not a DML statement")),
        }
    }

    /// `EXPLAIN INSERT/UPDATE/DELETE`: the requests the statement would send, one per row,
    /// without sending them (reads an INSERT … SELECT or a bulk WHERE needs still happen).
    pub(super) async fn explain_dml(&mut self, stmt: Statement) -> Result<Output> {
        let table = target_table(&stmt, &self.engine.backend.catalog)?;
        let requests = self.plan_requests(&table, &stmt).await?;
        let mut lines = vec![format!("{} request(s) to Cloud Control for {}", requests.len(), table.type_name())];
        lines.extend(requests.iter().map(|r| {
            let detail = match &r.change {
                crate::cloudcontrol::Change::Create { desired_state } => format!("DesiredState={desired_state}"),
                crate::cloudcontrol::Change::Update { identifier, patch } => format!("Identifier={identifier} PatchDocument={patch}"),
                crate::cloudcontrol::Change::Delete { identifier } => format!("Identifier={identifier}"),
            };
            // Write-only values (passwords, keys) are not shown, even to who typed them.
            let detail = crate::cloudcontrol::scrub::conceal(&detail, &crate::cloudcontrol::scrub::secrets_of(r));
            format!("  {} in {}: {detail}", r.change.api_operation(), r.place)
        }));
        let mut out = super::meta::rows(&["QUERY PLAN"], lines.into_iter().map(|l| vec![l]).collect());
        if let Outcome::Rows { tag, counted, .. } = &mut out.result {
            *tag = "EXPLAIN";
            *counted = false;
        }
        Ok(out)
    }

    /// Refusals that need no API call: the table cannot take this statement, or the user may
    /// not mutate.
    fn check_may_mutate(&self, verb: Verb, table: &TableDef) -> Result<()> {
        if !table.supports(verb.operation()) {
            if table.kind == TableKind::ListOnly {
                let full = table.name.trim_end_matches(crate::catalog::model::LIST_ONLY_SUFFIX);
                return Err(Error::WrongObjectType {
                    message: format!(
                        "cannot {} {}: a _list_only table shows the list response and cannot be changed",
                        verb.tag(),
                        table.qualified_name()
                    ),
                    hint: Some(format!("use awscc.{}.{full}", table.schema)),
                });
            }
            let handler = match verb {
                Verb::Insert => "create",
                Verb::Update => "update",
                Verb::Delete => "delete",
            };
            return Err(Error::NotSupported(format!(
                "cannot {} {}: {} has no {handler} handler in Cloud Control",
                verb.tag(),
                table.qualified_name(),
                table.type_name()
            )));
        }
        let backend = &self.engine.backend;
        let why = if !backend.mutations_allowed {
            "this server is read-only (set [mutations] allow = true in its config to allow changes)"
        } else if self.role != crate::auth::Role::Writer {
            "the user's role is reader (role = \"writer\" in the server's [[auth.users]] allows changes)"
        } else {
            return Ok(());
        };
        Err(Error::PermissionDenied(format!(
            "user \"{}\" may not {} {}: {why}",
            self.user,
            verb.tag(),
            table.qualified_name()
        )))
    }

    /// The account a mutation goes to: the one its row or WHERE clause names, or the
    /// server's only one (42P10 listing them when there are several and none is named).
    fn mutation_account(&self, named: Option<&[String]>) -> Result<String> {
        let chosen = crate::catalog::accounts::Chosen {
            named,
            allowed: self.accounts.as_deref(),
        };
        Ok(self.engine.backend.accounts.for_mutation(chosen)?.name.clone())
    }

    /// The region a row without one goes to: the session's (else the account's), when it
    /// has exactly one.
    fn default_region(&self, table: &TableDef, verb: Verb, account: &str) -> Result<String> {
        let own = self.engine.backend.accounts.get(account).map(|a| a.regions.clone());
        let regions = self.settings.regions.clone().or(own).unwrap_or(DefaultRegions::All);
        match &regions {
            DefaultRegions::List(list) if list.len() == 1 => self.mutation_region(table, &list[0]),
            other => {
                let regions = match other {
                    DefaultRegions::List(l) => l.join(", "),
                    DefaultRegions::All => "every region".to_string(),
                };
                Err(Error::MissingFilter {
                    message: format!(
                        "{} on {} needs a region: this session reads {regions}",
                        verb.tag(),
                        table.qualified_name()
                    ),
                    hint: Some(match verb {
                        Verb::Insert => "add region to the column list".to_string(),
                        _ => "add AND region = '…' to the WHERE clause".to_string(),
                    }),
                })
            }
        }
    }

    /// The region a mutation named `region` is sent to, checked: a global type's home region.
    fn mutation_region(&self, table: &TableDef, region: &str) -> Result<String> {
        self.check_region(table, region)?;
        Ok(resource_schemas::geography::home_of(table.type_name(), region).to_string())
    }

    /// 22023 for a region that does not exist or where the type is not available.
    fn check_region(&self, table: &TableDef, region: &str) -> Result<()> {
        self.engine.backend.catalog.check_region(region)?;
        if !table.resource.exists_in(region) {
            return Err(Error::invalid_parameter(
                format!("{} is not available in region '{region}'", table.type_name()),
                None,
            ));
        }
        Ok(())
    }

    /// The places an UPDATE or DELETE that names its resources acts in: its WHERE clause's
    /// account and regions, or the server's one account and the session's one region.
    fn named_places(&self, table: &TableDef, named: &target::Named, verb: Verb) -> Result<Vec<Place>> {
        let account = self.mutation_account(named.accounts.as_deref())?;
        let regions = match &named.regions {
            Some(list) => list.iter().map(|r| self.mutation_region(table, r)).collect::<Result<Vec<_>>>()?,
            None => vec![self.default_region(table, verb, &account)?],
        };
        Ok(regions.into_iter().map(|r| Place::new(account.clone(), r)).collect())
    }

    /// Runs a query the statement needs (an INSERT's source, the rows an UPDATE reads). Each
    /// row becomes one request, so rows beyond the statement's call budget are refused while
    /// they are read, before any request is sent. Read past the cache: a change is computed
    /// from what is there now, not from what was there when another statement looked.
    async fn query_batches(&mut self, stmt: Statement) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let plan = self.plan_query(stmt).await?;
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let mut stream = self.run_plan(plan, true).await?;
        let mut batches = Vec::new();
        let mut rows: u64 = 0;
        while let Some(batch) = stream.try_next().await.map_err(Error::from)? {
            rows += batch.num_rows() as u64;
            self.scope
                .budget
                .check_planned(rows, "one request per row, and more rows to come")?;
            batches.push(batch);
        }
        Ok((schema, batches))
    }

    /// Submits every request (at most [`CONCURRENCY`] at once), waits for each unless
    /// `nowait`, and reports the first failure after all have run.
    async fn run_mutations(&self, verb: Verb, requests: Vec<MutationRequest>, nowait: bool) -> Result<Vec<RowOutcome>> {
        self.scope
            .budget
            .check_planned(requests.len() as u64, &format!("{} request(s), one per row", requests.len()))?;
        let log = self.engine.backend.requests.clone();
        let timeout = self.engine.backend.config.mutations.await_timeout;
        let total = requests.len();
        let accepted = Accepted {
            live: self.live.clone(),
            told: std::sync::atomic::AtomicUsize::new(0),
        };
        let results: Vec<Result<Option<RowOutcome>>> = futures::stream::iter(requests)
            .map(|request| {
                let (log, accepted, usage) = (log.clone(), &accepted, self.engine.backend.usage.clone());
                let user = self.user.clone();
                async move {
                    // A mutation spends its user's budget of calls too (its polling is the
                    // server's own).
                    usage.take(&user, &request.place, &request.type_name)?;
                    run_one(&log, request, &user, nowait, timeout, accepted).await
                }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        let mut outcomes = Vec::with_capacity(total);
        let mut first_error = None;
        for r in results {
            match r {
                Ok(Some(o)) => outcomes.push(o),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if total > 1 => Err(with_summary(e, verb, total, failed, outcomes.len())),
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }
}

/// NOTICEs naming each request's tokens the moment Cloud Control accepts it, so a client that
/// stops waiting (or loses the connection) still knows what to look up.
struct Accepted {
    live: Arc<crate::sql::LiveNotices>,
    told: std::sync::atomic::AtomicUsize,
}

/// Requests of one statement named in their own NOTICE; the rest are summed up in one.
const ACCEPTED_NOTICES: usize = 10;

impl Accepted {
    fn tell(&self, tracked: &TrackedRequest, operation: &str) {
        let n = self.told.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let latest = tracked.latest();
        let message = match n {
            n if n < ACCEPTED_NOTICES => format!(
                "{operation} of {} in {} accepted: ClientToken {}, RequestToken {} (SELECT * FROM cloudpg.requests \
                 WHERE client_token = '{}')",
                tracked.type_name, tracked.place, tracked.client_token, latest.request_token, tracked.client_token
            ),
            n if n == ACCEPTED_NOTICES => {
                "more requests were accepted; their tokens are in cloudpg.requests (ORDER BY submitted_at DESC)".to_string()
            }
            _ => return,
        };
        self.live.push(crate::sql::Notice::info(message));
    }
}

/// One request: submitted, then awaited. `None` when the resource was not there to change
/// (UPDATE and DELETE of a missing resource affect no row, as in PostgreSQL).
async fn run_one(
    log: &Arc<RequestLog>,
    request: MutationRequest,
    user: &str,
    nowait: bool,
    timeout: Duration,
    accepted: &Accepted,
) -> Result<Option<RowOutcome>> {
    let place = request.place.clone();
    let operation = request.change.api_operation();
    let tracked = log.submit(request, user).await?;
    accepted.tell(&tracked, operation);
    let event = if nowait {
        tracked.latest()
    } else {
        tracked
            .wait(timeout)
            .await
            .ok_or_else(|| timeout_error(&tracked, operation, timeout))?
    };
    let failure = |code: String, message: String| {
        Error::Aws(Box::new(AwsError {
            code,
            message,
            operation: operation.to_string(),
            account: place.account.clone(),
            region: place.region.clone(),
            type_name: Some(tracked.type_name.clone()),
            request_token: Some(event.request_token.clone()),
        }))
    };
    match event.operation_status.as_str() {
        "FAILED" => {
            let code = event.error_code.clone().unwrap_or_else(|| "InternalFailure".into());
            if code == "NotFound" && operation != "CreateResource" {
                return Ok(None);
            }
            Err(failure(code, event.status_message.clone().unwrap_or_default()))
        }
        "CANCEL_COMPLETE" => Err(failure(
            "RequestCancelled".into(),
            "the request was cancelled before it finished".into(),
        )),
        _ => Ok(Some(RowOutcome { place, event })),
    }
}

fn timeout_error(tracked: &TrackedRequest, operation: &str, timeout: Duration) -> Error {
    let latest = tracked.latest();
    Error::Timeout {
        message: format!(
            "{operation} for {} in {} did not finish within {} (mutations.await_timeout); it goes on in Cloud Control \
             (RequestToken: {}, status {})",
            tracked.type_name,
            tracked.place,
            format_args!("{timeout:?}"),
            latest.request_token,
            latest.operation_status
        ),
        hint: Some(format!(
            "cloudpg keeps polling it: SELECT * FROM cloudpg.requests WHERE request_token = '{}'",
            latest.request_token
        )),
    }
}

/// A failure of one row of many, with how the others fared.
fn with_summary(e: Error, verb: Verb, total: usize, failed: usize, done: usize) -> Error {
    let summary = format!(
        " [{failed} of {total} rows failed, {done} {}; every request is listed in cloudpg.requests]",
        verb.past()
    );
    match e {
        Error::Aws(mut a) => {
            a.message.push_str(&summary);
            Error::Aws(a)
        }
        Error::Timeout { message, hint } => Error::Timeout {
            message: message + &summary,
            hint,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn catalog() -> Catalog {
        Catalog::build(resource_schemas::Registry::shared().unwrap())
    }

    fn stmt(sql: &str) -> Statement {
        crate::sql::parse::parse_checked(sql).unwrap().pop().unwrap()
    }

    #[test]
    fn targets_resolve_or_are_refused() {
        let c = catalog();
        let t = target_table(&stmt("DELETE FROM aws.connect.instances WHERE identifier = 'x'"), &c).unwrap();
        assert_eq!(t.type_name(), "AWS::Connect::Instance");
        let e = target_table(&stmt("DELETE FROM pg_catalog.pg_class"), &c).unwrap_err();
        assert_eq!(e.sqlstate(), "42809");
        let e = target_table(&stmt("INSERT INTO cloudpg.requests (x) VALUES (1)"), &c).unwrap_err();
        assert_eq!(e.sqlstate(), "42809");
        let e = target_table(&stmt("DELETE FROM awscc.ec2.vpc WHERE identifier = 'x'"), &c).unwrap_err();
        assert_eq!(e.sqlstate(), "42P01");
        assert!(e.hint().unwrap().contains("awscc.ec2.vpcs"), "{:?}", e.hint());
    }

    #[test]
    fn fields_resolve_by_either_name() {
        let c = catalog();
        let t = c.resolve("awscc.ec2.instance_connect_endpoints").unwrap();
        let prop = |p: &str, col: &str| Field::Property {
            property: p.into(),
            column: col.into(),
        };
        assert_eq!(resolve_field(t, "SubnetId").unwrap(), prop("SubnetId", "subnet_id"));
        assert_eq!(resolve_field(t, "subnet_id").unwrap(), prop("SubnetId", "subnet_id"));
        assert_eq!(resolve_field(t, "subnetid").unwrap(), prop("SubnetId", "subnet_id"));
        // This type has a ClientToken property; it wins over the request parameter.
        assert_eq!(resolve_field(t, "ClientToken").unwrap(), prop("ClientToken", "client_token"));
        assert_eq!(resolve_field(t, "region").unwrap(), Field::Region);
        assert_eq!(resolve_field(t, "RoleArn").unwrap(), Field::RoleArn);
        let vpcs = c.resolve("awscc.ec2.vpcs").unwrap();
        assert_eq!(resolve_field(vpcs, "ClientToken").unwrap(), Field::ClientToken);
        let e = resolve_field(t, "subnet_idd").unwrap_err();
        assert_eq!(e.sqlstate(), "42703");
        assert!(e.hint().unwrap().contains("subnet_id"), "{:?}", e.hint());
        assert_eq!(resolve_field(t, "identifier").unwrap_err().sqlstate(), "428C9");
    }

    #[test]
    fn parameters_take_their_column_type() {
        let c = catalog();
        let t = c.resolve("awscc.logs.log_groups").unwrap();
        let s = stmt("INSERT INTO awscc.logs.log_groups (LogGroupName, RetentionInDays, region) VALUES ($1, $2, $3)");
        assert_eq!(parameter_types(&s, t, 3), vec![DataType::Utf8, DataType::Int64, DataType::Utf8]);
        let s = stmt("UPDATE awscc.logs.log_groups SET retention_in_days = $1 WHERE identifier = $2");
        assert_eq!(parameter_types(&s, t, 2), vec![DataType::Int64, DataType::Utf8]);
    }
}
