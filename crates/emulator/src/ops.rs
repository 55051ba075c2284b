//! The eight Cloud Control operations, with AWS's validation, errors and messages.
//!
//! Input arrives as the decoded JSON body; output is the JSON body to send. Errors are
//! [`ApiError`]s carrying the modeled exception name and HTTP status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::SeedableRng;
use resource_schemas::geography::Partition;
use resource_schemas::{Operation, Registry, ResourceType};
use serde_json::{json, Map, Value};

use crate::faults::Counters;
use crate::generate::{stable_hash, Generator};
use crate::store::{epoch_seconds, identifier_of, Op, RegionState, Request, Status};
use crate::validate::check_model;
use crate::{EmulatorConfig, ALWAYS_SEEDED, ALWAYS_SEEDED_MIN};

/// An error response: the exception name (`__type`), its message and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status: status_of(code),
        }
    }
}

/// HTTP status of each modeled error (Smithy `@httpError`), and of the unmodeled ones we send.
fn status_of(code: &str) -> u16 {
    match code {
        "ClientTokenConflictException" | "ConcurrentOperationException" | "ResourceConflictException" => 409,
        "ConcurrentModificationException" => 500,
        "HandlerFailureException" | "HandlerInternalFailureException" | "NetworkFailureException" | "ServiceInternalErrorException" => 502,
        "InvalidCredentialsException" => 401,
        "RequestTokenNotFoundException" | "ResourceNotFoundException" | "TypeNotFoundException" => 404,
        "UnsupportedActionException" => 405,
        "RequestEntityTooLargeException" => 413,
        _ => 400,
    }
}

pub type ApiResult = Result<Value, ApiError>;

/// The emulator's state and configuration, shared by all connections.
pub struct Emulator {
    registry: &'static Registry,
    config: RwLock<EmulatorConfig>,
    /// By (account, region): a global type's resources live under its home region.
    regions: Mutex<HashMap<Caller, Arc<Mutex<RegionState>>>>,
    counters: Mutex<Counters>,
    rng: Mutex<StdRng>,
    /// Per (account, region): the tokens of `faults.max_rate`'s bucket and when they were
    /// counted.
    rate_buckets: Mutex<HashMap<Caller, (f64, std::time::Instant)>>,
    /// Seconds since the epoch when it started.
    started_at: u64,
}

/// The account id of callers whose access key does not end in one.
pub const DEFAULT_ACCOUNT_ID: &str = crate::generate::ACCOUNT_ID;

/// Who calls and where: the account (from the access key id) and the region (from the
/// signature's credential scope).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub account: String,
    pub region: String,
}

impl Caller {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Caller {
        Caller {
            account: account.into(),
            region: region.into(),
        }
    }

    /// The account an access key id belongs to: its last 12 characters when they are digits
    /// (`AKIAPROD111111111111` → `111111111111`), else [`DEFAULT_ACCOUNT_ID`].
    pub fn account_of_key(access_key_id: &str) -> String {
        let tail = access_key_id.len().checked_sub(12).and_then(|start| access_key_id.get(start..));
        match tail {
            Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => t.to_string(),
            _ => DEFAULT_ACCOUNT_ID.to_string(),
        }
    }

    /// Where a type's resources live for this caller: the home region of a global type.
    pub fn home(&self, resource: &ResourceType) -> Caller {
        Caller::new(
            self.account.clone(),
            resource_schemas::geography::home_of(&resource.type_name, &self.region),
        )
    }

    /// The seed of this account's generated data; the default account keeps `seed` itself, so
    /// its data does not change with the account rule.
    pub fn seed(&self, seed: u64) -> u64 {
        if self.account == DEFAULT_ACCOUNT_ID {
            seed
        } else {
            seed ^ stable_hash(&[&self.account])
        }
    }
}

/// The operations, by the name that follows `CloudApiService.` in `X-Amz-Target`.
pub const OPERATIONS: &[&str] = &[
    "ListResources",
    "GetResource",
    "CreateResource",
    "UpdateResource",
    "DeleteResource",
    "GetResourceRequestStatus",
    "ListResourceRequests",
    "CancelResourceRequest",
];

const TYPE_NAME_PATTERN: &str = "[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave our state half-written in a way that matters
    // more than refusing every later request would; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the fault dials decided for one call.
#[derive(Debug)]
pub struct CallPlan {
    /// How long after it arrived the call is answered (a mutation: takes effect).
    pub latency: Duration,
    /// The error to answer instead of making the call.
    pub fault: Option<ApiError>,
    /// Whether a mutation it starts ends FAILED.
    pub fails_async: bool,
    /// Wait after the call took effect, before answering.
    pub reply_latency: Duration,
}

impl Emulator {
    pub fn new(registry: &'static Registry, config: EmulatorConfig) -> Emulator {
        let seed = config.seed;
        Emulator {
            registry,
            config: RwLock::new(config),
            regions: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
            rate_buckets: Mutex::new(HashMap::new()),
            started_at: crate::store::epoch_seconds() as u64,
        }
    }

    pub fn config(&self) -> EmulatorConfig {
        self.read_config(EmulatorConfig::clone)
    }

    /// What `f` reads of the configuration, without copying the rest: every call reads a few
    /// fields, and the configuration can hold whole schemas (`described_schemas`).
    pub fn read_config<T>(&self, f: impl FnOnce(&EmulatorConfig) -> T) -> T {
        f(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn set_config(&self, config: EmulatorConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn counters(&self) -> Counters {
        let mut c = lock(&self.counters).clone();
        for state in lock(&self.regions).values() {
            for (k, v) in &lock(state).succeeded {
                *c.succeeded.entry(k.clone()).or_default() += v;
            }
        }
        c
    }

    pub fn reset_counters(&self) {
        *lock(&self.counters) = Counters::default();
        for state in lock(&self.regions).values() {
            lock(state).succeeded.clear();
        }
    }

    /// Whether a call fits `rate` calls per second in the caller's account and region now (a
    /// bucket holding a second's worth), taking its token if so: beyond it, the call is
    /// throttled, as AWS throttles an account that calls faster than its limit.
    fn take_rate_token(&self, caller: &Caller, rate: f64) -> bool {
        let now = std::time::Instant::now();
        let capacity = rate.max(1.0);
        let mut buckets = lock(&self.rate_buckets);
        let (tokens, at) = buckets.entry(caller.clone()).or_insert((capacity, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Records an SDK app name a call carried.
    pub fn saw_app_name(&self, name: String) {
        lock(&self.counters).app_names.insert(name);
    }

    /// Counts an STS call (they have no faults and no type).
    /// Counts an awsQuery call: `operation` is `service:Action` (an STS call's action alone
    /// counts as `sts:Action`).
    pub fn count_query_call(&self, operation: &str, caller: &Caller) {
        let mut c = lock(&self.counters);
        let operation = if operation.contains(':') {
            operation.to_string()
        } else {
            format!("sts:{operation}")
        };
        *c.calls_by_account.entry(format!("{} {operation}", caller.account)).or_default() += 1;
        *c.calls.entry(operation).or_default() += 1;
    }

    /// Whether `withdrawn_types` takes the type out of the region.
    fn withdrawn(&self, type_name: &str, region: &str) -> bool {
        self.read_config(|c| {
            c.withdrawn_types.iter().any(|w| match w.split_once(' ') {
                Some((t, r)) => t == type_name && r == region,
                None => w == type_name,
            })
        })
    }

    /// The schemas it emulates.
    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    /// When it started, in seconds since the epoch (the `LastUpdated` of its types).
    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    /// Forgets every resource and request (seeding starts again on next use).
    pub fn reset_state(&self) {
        lock(&self.regions).clear();
    }

    fn state(&self, at: &Caller) -> Arc<Mutex<RegionState>> {
        lock(&self.regions).entry(at.clone()).or_default().clone()
    }

    /// Whether the caller's account may call its region: opt-in regions and other partitions'
    /// regions answer as AWS answers credentials it does not know there.
    pub fn check_region_enabled(&self, caller: &Caller) -> Result<(), ApiError> {
        let region = caller.region.as_str();
        let other_partition = Partition::of(region) != Partition::Aws;
        let opted_in = self.read_config(|c| c.opted_in_regions.iter().any(|r| r == region));
        if (other_partition || resource_schemas::geography::is_opt_in(region)) && !opted_in {
            return Err(ApiError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        Ok(())
    }

    /// Counts the call and decides its injected faults. Returns the latency to add and an
    /// error to answer instead, if one was rolled.
    pub fn before_call(&self, operation: &str, type_name: Option<&str>, caller: &Caller) -> CallPlan {
        let region = caller.region.as_str();
        {
            let mut c = lock(&self.counters);
            *c.calls.entry(operation.to_string()).or_default() += 1;
            if let Some(t) = type_name {
                *c.calls_by_type.entry(format!("{operation} {t}")).or_default() += 1;
            }
            *c.calls_by_account.entry(format!("{} {operation}", caller.account)).or_default() += 1;
            if c.call_log.len() == crate::faults::CALL_LOG_LENGTH {
                c.call_log.pop_front();
            }
            c.call_log.push_back(crate::faults::CallStamp {
                at: epoch_seconds(),
                account: caller.account.clone(),
                region: region.to_string(),
                operation: operation.to_string(),
            });
        }
        let faults = self.read_config(|c| c.faults.clone());
        let over_rate = faults.max_rate.is_some_and(|rate| !self.take_rate_token(caller, rate));
        let effective = faults.effective(operation, type_name, caller);
        let mut rng = lock(&self.rng);
        let latency = effective.latency(&mut *rng);
        let fault = if effective.denies_access(&mut *rng) {
            Some(ApiError::new(
                "AccessDeniedException",
                format!("User is not authorized to perform: cloudformation:{operation} in {region} (injected fault)"),
            ))
        } else if over_rate || effective.throttles(&mut *rng) {
            Some(ApiError::new("ThrottlingException", "Rate exceeded"))
        } else if effective.server_errors(&mut *rng) {
            Some(ApiError::new(
                "ServiceInternalErrorException",
                "An internal error occurred in the emulated service (injected fault).",
            ))
        } else {
            None
        };
        let fails_async = effective.fails_async(&mut *rng);
        if fault.is_some() {
            *lock(&self.counters).faults.entry(operation.to_string()).or_default() += 1;
        }
        CallPlan {
            latency,
            fault,
            fails_async,
            reply_latency: effective.reply_latency(),
        }
    }

    /// Runs one operation for the caller on a decoded body.
    pub fn call(&self, operation: &str, at: &Caller, body: &Map<String, Value>, fails_async: bool) -> ApiResult {
        match operation {
            "ListResources" => self.list_resources(at, body),
            "GetResource" => self.get_resource(at, body),
            "CreateResource" => self.create_resource(at, body, fails_async),
            "UpdateResource" => self.update_resource(at, body, fails_async),
            "DeleteResource" => self.delete_resource(at, body, fails_async),
            "GetResourceRequestStatus" => self.get_request_status(at, body),
            "ListResourceRequests" => self.list_requests(at, body),
            "CancelResourceRequest" => self.cancel_request(at, body),
            other => Err(ApiError::new(
                "UnknownOperationException",
                format!("Operation {other} is not supported by this service."),
            )),
        }
    }

    /// The trust policy of an IAM role in the caller's account; `None` when no such role exists.
    pub fn role_trust_policy(&self, at: &Caller, role_name: &str) -> Option<Value> {
        let resource = self.registry.get("AWS::IAM::Role")?;
        let at = at.home(resource);
        let state = self.state(&at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        self.ensure_seeded(&mut state, &at, resource, 0);
        let model = state.type_state(&resource.type_name).resources.get(role_name)?;
        match model.get("AssumeRolePolicyDocument")? {
            Value::String(text) => serde_json::from_str(text).ok(),
            other => Some(other.clone()),
        }
    }

    /// A model as a type under `schema_drift` answers it: with an undeclared property and a
    /// value of the wrong type.
    fn drifted(&self, resource: &ResourceType, mut model: Map<String, Value>) -> Map<String, Value> {
        if !self.read_config(|c| c.schema_drift.contains(&resource.type_name)) {
            return model;
        }
        model.insert("EmulatorUndeclared".into(), json!({"added": "after the schema"}));
        let scalar = resource.properties().iter().find(|(name, schema)| {
            !resource.primary_identifier_names().contains(&name.as_str())
                && matches!(schema.get("type").and_then(Value::as_str), Some("integer" | "number" | "boolean"))
        });
        if let Some((name, _)) = scalar {
            model.insert(name.clone(), json!("not-a-number"));
        }
        // Handlers write date-times in other shapes than RFC 3339, and now and then in none.
        let mut date_times = resource
            .properties()
            .iter()
            .filter(|(_, schema)| schema.get("format").and_then(Value::as_str) == Some("date-time"))
            .map(|(name, _)| name.clone());
        if let Some(name) = date_times.next() {
            let seconds = model
                .get(&name)
                .and_then(Value::as_str)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(1_700_000_000, |d| d.timestamp());
            model.insert(name, json!(seconds));
        }
        if let Some(name) = date_times.next() {
            model.insert(name, json!("sometime last week"));
        }
        model
    }

    // ---- input members -------------------------------------------------------------------

    fn type_for(&self, region: &str, body: &Map<String, Value>, op: Operation) -> Result<&'static ResourceType, ApiError> {
        let name = required_string(body, "TypeName", "typeName")?;
        if name.len() < 10 || name.len() > 196 || !type_name_shape(name) {
            return Err(validation(format!(
                "Value '{name}' at 'typeName' failed to satisfy constraint: Member must satisfy regular expression pattern: {TYPE_NAME_PATTERN}"
            )));
        }
        let resource = self
            .registry
            .get(name)
            .filter(|t| t.exists_in(region) && !self.withdrawn(name, region))
            .ok_or_else(|| ApiError::new("TypeNotFoundException", format!("The type '{name}' cannot be found.")))?;
        if resource.handler(op).is_none() {
            return Err(ApiError::new(
                "UnsupportedActionException",
                format!("Resource type {name} does not support {} action", op.action_word()),
            ));
        }
        Ok(resource)
    }

    fn seed_count(&self, type_name: &str) -> usize {
        let n = self.read_config(|c| {
            c.resources_per_type_overrides
                .get(type_name)
                .copied()
                .unwrap_or(c.resources_per_type)
        });
        if ALWAYS_SEEDED.contains(&type_name) {
            n.max(ALWAYS_SEEDED_MIN)
        } else {
            n
        }
    }

    /// Seeds a type's demo resources on first use; children get parents that exist.
    fn ensure_seeded(&self, state: &mut RegionState, at: &Caller, resource: &ResourceType, depth: usize) {
        if state.type_state(&resource.type_name).seeded {
            return;
        }
        state.type_state(&resource.type_name).seeded = true;
        let count = self.seed_count(&resource.type_name);
        let seed = at.seed(self.read_config(|c| c.seed));
        let parent_values = self.parent_values(state, at, resource, depth);
        let references = self.format_references(state, at, resource, depth);
        let mut resources = std::collections::BTreeMap::new();
        let mut index = 0;
        let mut attempts = 0;
        while resources.len() < count && attempts < count * 2 + 4 {
            let fixed = match parent_values.len() {
                0 => Map::new(),
                n => parent_values[index % n].clone(),
            };
            let mut model = Generator::new(resource, at, seed, index).resource(index, &fixed);
            for (property, values, array) in &references {
                if let Some(v) = model.get_mut(property) {
                    let picked = values[index % values.len()].clone();
                    *v = if *array { Value::Array(vec![picked]) } else { picked };
                }
            }
            if let Some(id) = identifier_of(resource, &model) {
                resources.entry(id).or_insert(model);
            }
            index += 1;
            attempts += 1;
        }
        let ts = state.type_state(&resource.type_name);
        ts.resources.extend(resources);
        ts.next_index = index;
    }

    /// Properties whose schema format names another type (`VpcId`: `AWS::EC2::VPC.Id`), with
    /// values of that type's seeded resources, so demo data joins: a subnet's `vpc_id` is a VPC
    /// that exists. The flag says the property is an array of such references.
    fn format_references(
        &self,
        state: &mut RegionState,
        at: &Caller,
        resource: &ResourceType,
        depth: usize,
    ) -> Vec<(String, Vec<Value>, bool)> {
        let own_ids = resource.primary_identifier_names();
        let mut out = Vec::new();
        for (name, schema) in resource.properties() {
            if own_ids.contains(&name.as_str()) {
                continue;
            }
            let (format, array) = match (schema.get("format"), schema.get("items").and_then(|i| i.get("format"))) {
                (_, Some(Value::String(f))) => (f.as_str(), true),
                (Some(Value::String(f)), None) => (f.as_str(), false),
                _ => continue,
            };
            let Some((type_name, attribute)) = format.rsplit_once('.') else {
                continue;
            };
            let Some(target) = self
                .registry
                .get(type_name)
                .filter(|t| t.exists_in(&at.region) && t.type_name != resource.type_name)
            else {
                continue;
            };
            if depth < 3 {
                self.ensure_seeded(state, at, target, depth + 1);
            }
            let attribute = attribute.trim_end_matches('s');
            let target_ids = target.primary_identifier_names();
            let values: Vec<Value> = state
                .type_state(type_name)
                .resources
                .values()
                .filter_map(|m| {
                    let by_name = (attribute != "Id")
                        .then(|| m.iter().find(|(k, v)| k.ends_with(attribute) && v.is_string()).map(|(_, v)| v))
                        .flatten();
                    by_name.or_else(|| target_ids.first().and_then(|id| m.get(*id))).cloned()
                })
                .collect();
            if !values.is_empty() {
                out.push((name.clone(), values, array));
            }
        }
        out
    }

    /// For a type whose list needs parent values: one set of values per seeded parent, for
    /// its children to carry (`ClusterName` ← each `AWS::EKS::Cluster`'s `Name`). The parent
    /// is the registry's [`Registry::list_parents`], the one the server fans out over.
    fn parent_values(&self, state: &mut RegionState, at: &Caller, resource: &ResourceType, depth: usize) -> Vec<Map<String, Value>> {
        let Some(hs) = resource.list_handler_schema() else {
            return Vec::new();
        };
        // Keys that are the child's own properties, under the property's name.
        let keys: Vec<(String, String)> = hs
            .params
            .iter()
            .map(|p| (p.name.clone(), p.property.clone().unwrap_or_else(|| p.name.clone())))
            .filter(|(_, property)| resource.properties().contains_key(property))
            .collect();
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let Some(plan) = self.registry.list_parents(resource, &names) else {
            return Vec::new();
        };
        if !plan.parent.exists_in(&at.region) {
            return Vec::new();
        }
        if depth < 3 {
            self.ensure_seeded(state, at, plan.parent, depth + 1);
        }
        state
            .type_state(&plan.parent.type_name)
            .resources
            .values()
            .filter_map(|model| {
                plan.keys
                    .iter()
                    .zip(&keys)
                    .map(|((_, from), (_, property))| model.get(*from).map(|v| (property.clone(), v.clone())))
                    .collect::<Option<Map<String, Value>>>()
            })
            .collect()
    }

    // ---- ListResources / GetResource ------------------------------------------------------

    fn list_resources(&self, at: &Caller, body: &Map<String, Value>) -> ApiResult {
        let resource = self.type_for(&at.region, body, Operation::List)?;
        let at = &at.home(resource);
        let type_name = &resource.type_name;
        let model = match body.get("ResourceModel") {
            Some(Value::String(s)) => Some(parse_document(s, "ResourceModel")?),
            Some(Value::Null) | None => None,
            Some(_) => return Err(serialization("ResourceModel must be a string")),
        };
        let filters = list_filters(resource, model.as_ref())?;
        let after = match body.get("NextToken").and_then(Value::as_str) {
            Some(token) => Some(decode_list_token(token, type_name)?),
            None => None,
        };
        let (page_size, full) = self.read_config(|c| {
            let size = c.page_size_overrides.get(type_name.as_str()).copied().unwrap_or(c.page_size);
            (size.max(1), c.full_list_models.iter().any(|t| t == type_name))
        });
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        self.ensure_seeded(&mut state, at, resource, 0);
        let resources = &state.type_state(type_name).resources;
        let range = match &after {
            Some(last) => resources.range::<String, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded)),
            None => resources.range::<String, _>(..),
        };
        let mut page = Vec::with_capacity(page_size);
        let mut last = None;
        let mut more = false;
        for (id, m) in range.filter(|(_, m)| filters.iter().all(|(k, v)| m.get(k) == Some(v))) {
            if page.len() == page_size {
                more = true;
                break;
            }
            let props = if full {
                self.drifted(resource, visible(resource, m))
            } else {
                primary_only(resource, m)
            };
            page.push(json!({"Identifier": id, "Properties": Value::Object(props).to_string()}));
            last = Some(id.clone());
        }
        let mut out = json!({"TypeName": type_name, "ResourceDescriptions": page});
        if let (true, Some(last)) = (more, last) {
            out["NextToken"] = json!(encode_list_token(type_name, &last));
        }
        Ok(out)
    }

    fn get_resource(&self, at: &Caller, body: &Map<String, Value>) -> ApiResult {
        let resource = self.type_for(&at.region, body, Operation::Read)?;
        let at = &at.home(resource);
        let raw_id = required_string(body, "Identifier", "identifier")?;
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        self.ensure_seeded(&mut state, at, resource, 0);
        let id = resolve_identifier(resource, raw_id, &state.type_state(&resource.type_name).resources)?;
        let model = state
            .type_state(&resource.type_name)
            .resources
            .get(&id)
            .ok_or_else(|| not_found(&resource.type_name, raw_id))?;
        Ok(json!({
            "TypeName": resource.type_name,
            "ResourceDescription": {"Identifier": id, "Properties": Value::Object(self.drifted(resource, visible(resource, model))).to_string()},
        }))
    }

    // ---- mutations ------------------------------------------------------------------------

    fn mutation_delay(&self) -> Duration {
        Duration::from_millis(self.read_config(|c| c.mutation_delay_ms))
    }

    /// Handles ClientToken reuse: the same request again returns its first answer; another
    /// request under the same token is a conflict.
    fn replay(state: &RegionState, client_token: Option<&str>, fingerprint: &str) -> Option<ApiResult> {
        let token = state.client_tokens.get(client_token?)?;
        let req = state.requests.get(token)?;
        Some(if req.fingerprint == fingerprint {
            Ok(json!({"ProgressEvent": req.progress_event()}))
        } else {
            Err(ApiError::new(
                "ClientTokenConflictException",
                format!(
                    "Client token {} was already used for a different request.",
                    client_token.unwrap_or_default()
                ),
            ))
        })
    }

    fn new_request(
        &self,
        op: Op,
        resource: &'static ResourceType,
        identifier: String,
        model: Option<Map<String, Value>>,
        fingerprint: String,
        fails: bool,
    ) -> Request {
        Request {
            token: uuid::Uuid::new_v4().to_string(),
            op,
            type_name: resource.type_name.clone(),
            identifier,
            identifier_known_early: false,
            status: Status::InProgress,
            event_time: epoch_seconds(),
            due: Instant::now() + self.mutation_delay(),
            model,
            failure: fails.then(|| {
                (
                    "GeneralServiceException".to_string(),
                    format!(
                        "{} Handler returned status FAILED: the emulated handler failed (injected fault)",
                        resource.type_name
                    ),
                )
            }),
            error: None,
            fingerprint,
            resource,
        }
    }

    fn create_resource(&self, at: &Caller, body: &Map<String, Value>, fails: bool) -> ApiResult {
        let resource = self.type_for(&at.region, body, Operation::Create)?;
        let at = &at.home(resource);
        let desired = required_string(body, "DesiredState", "desiredState")?;
        let client_token = optional_token(body)?;
        let desired = parse_document(desired, "DesiredState")?;
        let Value::Object(desired) = desired else {
            return Err(ApiError::new(
                "InvalidRequestException",
                "DesiredState must be a JSON object of resource properties.",
            ));
        };
        let fingerprint = format!("CREATE {} {}", resource.type_name, Value::Object(desired.clone()));
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        if let Some(answer) = Self::replay(&state, client_token.as_deref(), &fingerprint) {
            return answer;
        }
        let problems = check_model(resource, &desired, true);
        if !problems.is_empty() {
            return Err(ApiError::new("InvalidRequestException", problems.message()));
        }
        self.ensure_seeded(&mut state, at, resource, 0);
        let index = {
            let ts = state.type_state(&resource.type_name);
            ts.next_index += 1;
            ts.next_index
        };
        // Values AWS would assign: read-only properties and identifiers the caller left out.
        let mut generator = Generator::new(resource, at, stable_hash(&[&fingerprint]), index);
        let mut model = desired.clone();
        let ids = resource.primary_identifier_names();
        let known_early = ids.iter().all(|id| desired.contains_key(*id));
        for name in resource.properties().keys() {
            let assigned = resource.is_read_only(name) || ids.contains(&name.as_str());
            if assigned && !model.contains_key(name) {
                if let Some(v) = generator.property(name, index) {
                    model.insert(name.clone(), v);
                }
            }
        }
        let identifier = identifier_of(resource, &model).unwrap_or_default();
        if state.busy(&resource.type_name, &identifier).is_some() {
            return Err(concurrent(&resource.type_name, &identifier));
        }
        let mut request = self.new_request(Op::Create, resource, identifier, Some(model), fingerprint, fails);
        request.identifier_known_early = known_early;
        let event = request.progress_event();
        state.add_request(request, client_token);
        Ok(json!({"ProgressEvent": event}))
    }

    fn update_resource(&self, at: &Caller, body: &Map<String, Value>, fails: bool) -> ApiResult {
        let resource = self.type_for(&at.region, body, Operation::Update)?;
        let at = &at.home(resource);
        let raw_id = required_string(body, "Identifier", "identifier")?;
        let patch_text = required_string(body, "PatchDocument", "patchDocument")?;
        let client_token = optional_token(body)?;
        let patch = parse_patch(patch_text)?;
        let fingerprint = format!("UPDATE {} {raw_id} {patch_text}", resource.type_name);
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        if let Some(answer) = Self::replay(&state, client_token.as_deref(), &fingerprint) {
            return answer;
        }
        self.ensure_seeded(&mut state, at, resource, 0);
        let id = resolve_identifier(resource, raw_id, &state.type_state(&resource.type_name).resources)?;
        let current = state
            .type_state(&resource.type_name)
            .resources
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(&resource.type_name, raw_id))?;
        check_patch_paths(resource, &patch)?;
        let mut doc = Value::Object(current.clone());
        json_patch::patch(&mut doc, &patch)
            .map_err(|e| ApiError::new("InvalidRequestException", format!("Invalid patch document: {e}")))?;
        let Value::Object(updated) = doc else {
            return Err(ApiError::new(
                "InvalidRequestException",
                "Invalid patch document: the result is not an object",
            ));
        };
        // Validate what the patch changed; the rest was valid when it was stored.
        let changed: Map<String, Value> = updated
            .iter()
            .filter(|(k, v)| !resource.is_read_only(k) && current.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut problems = check_model(resource, &changed, false);
        for r in &resource.required {
            if !updated.contains_key(r) {
                problems.0.push(format!("#: required key [{r}] not found"));
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::new("InvalidRequestException", problems.message()));
        }
        if state.busy(&resource.type_name, &id).is_some() {
            return Err(concurrent(&resource.type_name, &id));
        }
        let request = self.new_request(Op::Update, resource, id, Some(updated), fingerprint, fails);
        let event = request.progress_event();
        state.add_request(request, client_token);
        Ok(json!({"ProgressEvent": event}))
    }

    fn delete_resource(&self, at: &Caller, body: &Map<String, Value>, fails: bool) -> ApiResult {
        let resource = self.type_for(&at.region, body, Operation::Delete)?;
        let at = &at.home(resource);
        let raw_id = required_string(body, "Identifier", "identifier")?;
        let client_token = optional_token(body)?;
        let fingerprint = format!("DELETE {} {raw_id}", resource.type_name);
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        if let Some(answer) = Self::replay(&state, client_token.as_deref(), &fingerprint) {
            return answer;
        }
        self.ensure_seeded(&mut state, at, resource, 0);
        let id = resolve_identifier(resource, raw_id, &state.type_state(&resource.type_name).resources)?;
        if state.busy(&resource.type_name, &id).is_some() {
            return Err(concurrent(&resource.type_name, &id));
        }
        let request = self.new_request(Op::Delete, resource, id, None, fingerprint, fails);
        let event = request.progress_event();
        state.add_request(request, client_token);
        Ok(json!({"ProgressEvent": event}))
    }

    // ---- requests -------------------------------------------------------------------------

    fn get_request_status(&self, at: &Caller, body: &Map<String, Value>) -> ApiResult {
        let token = required_string(body, "RequestToken", "requestToken")?;
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        let req = state.requests.get(token).ok_or_else(|| token_not_found(token))?;
        Ok(json!({"ProgressEvent": req.progress_event()}))
    }

    fn list_requests(&self, at: &Caller, body: &Map<String, Value>) -> ApiResult {
        let max = match body.get("MaxResults") {
            None | Some(Value::Null) => 20,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=100) => n as usize,
                _ => {
                    return Err(validation(format!(
                        "Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100"
                    )))
                }
            },
        };
        let filter = body.get("ResourceRequestStatusFilter");
        let wanted = |key: &str| -> Vec<String> {
            filter
                .and_then(|f| f.get(key))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let (ops, statuses) = (wanted("Operations"), wanted("OperationStatuses"));
        let start = match body.get("NextToken").and_then(Value::as_str) {
            Some(t) => decode_offset(t)?,
            None => 0,
        };
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        let matching: Vec<&Request> = state
            .request_order
            .iter()
            .rev()
            .filter_map(|t| state.requests.get(t))
            .filter(|r| ops.is_empty() || ops.iter().any(|o| o == r.op.word()))
            .filter(|r| statuses.is_empty() || statuses.iter().any(|s| s == r.status.word()))
            .collect();
        let page: Vec<Value> = matching.iter().skip(start).take(max).map(|r| r.progress_event()).collect();
        let mut out = json!({"ResourceRequestStatusSummaries": page});
        if start + max < matching.len() {
            out["NextToken"] = json!(base64::engine::general_purpose::STANDARD.encode(format!("offset:{}", start + max)));
        }
        Ok(out)
    }

    fn cancel_request(&self, at: &Caller, body: &Map<String, Value>) -> ApiResult {
        let token = required_string(body, "RequestToken", "requestToken")?;
        let state = self.state(at);
        let mut state = lock(&state);
        state.settle(Instant::now());
        let req = state.requests.get_mut(token).ok_or_else(|| token_not_found(token))?;
        if req.status != Status::InProgress {
            return Err(ApiError::new(
                "ConcurrentModificationException",
                format!("Request with token {token} is {} and can no longer be canceled.", req.status.word()),
            ));
        }
        req.status = Status::CancelInProgress;
        req.event_time = epoch_seconds();
        Ok(json!({"ProgressEvent": req.progress_event()}))
    }
}

// ---- helpers ------------------------------------------------------------------------------

fn validation(message: String) -> ApiError {
    ApiError::new("ValidationException", format!("1 validation error detected: {message}"))
}

fn serialization(message: &str) -> ApiError {
    ApiError::new("SerializationException", message)
}

fn not_found(type_name: &str, id: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("Resource of type '{type_name}' with identifier '{id}' was not found."),
    )
}

fn token_not_found(token: &str) -> ApiError {
    ApiError::new("RequestTokenNotFoundException", format!("Request with token {token} was not found"))
}

fn concurrent(type_name: &str, id: &str) -> ApiError {
    ApiError::new(
        "ConcurrentOperationException",
        format!("Another Create, Update, or Delete request is in progress for resource of type '{type_name}' with identifier '{id}'."),
    )
}

fn type_name_shape(name: &str) -> bool {
    let parts: Vec<&str> = name.split("::").collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| (2..=64).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A required string member; AWS's ValidationException when it is absent.
fn required_string<'a>(body: &'a Map<String, Value>, key: &str, wire_name: &str) -> Result<&'a str, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(validation(format!(
            "Value '' at '{wire_name}' failed to satisfy constraint: Member must have length greater than or equal to 1"
        ))),
        None | Some(Value::Null) => Err(validation(format!(
            "Value null at '{wire_name}' failed to satisfy constraint: Member must not be null"
        ))),
        Some(_) => Err(serialization(&format!("{key} must be a string"))),
    }
}

fn optional_token(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match body.get("ClientToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-+/=".contains(c)) => {
            Ok(Some(s.clone()))
        }
        Some(v) => Err(validation(format!(
            "Value '{}' at 'clientToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [-A-Za-z0-9+/=]+",
            v.as_str().unwrap_or_default()
        ))),
    }
}

/// The second JSON layer: `DesiredState`, `ResourceModel` and `PatchDocument` are strings.
fn parse_document(text: &str, member: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::new("InvalidRequestException", format!("{member} is not valid JSON: {e}")))
}

fn parse_patch(text: &str) -> Result<json_patch::Patch, ApiError> {
    let mut doc = parse_document(text, "PatchDocument")?;
    // Some published examples leave out the leading '/' of a path; AWS accepts them.
    if let Value::Array(ops) = &mut doc {
        for op in ops.iter_mut() {
            for key in ["path", "from"] {
                if let Some(Value::String(p)) = op.get_mut(key) {
                    if !p.starts_with('/') && !p.is_empty() {
                        *p = format!("/{p}");
                    }
                }
            }
        }
    }
    serde_json::from_value(doc).map_err(|e| ApiError::new("InvalidRequestException", format!("Invalid patch document: {e}")))
}

fn patch_paths(patch: &json_patch::Patch) -> Vec<String> {
    patch
        .0
        .iter()
        .flat_map(|op| match op {
            json_patch::PatchOperation::Add(o) => vec![o.path.to_string()],
            json_patch::PatchOperation::Remove(o) => vec![o.path.to_string()],
            json_patch::PatchOperation::Replace(o) => vec![o.path.to_string()],
            json_patch::PatchOperation::Move(o) => vec![o.path.to_string(), o.from.to_string()],
            json_patch::PatchOperation::Copy(o) => vec![o.path.to_string()],
            json_patch::PatchOperation::Test(_) => vec![],
        })
        .collect()
}

/// NotUpdatable for create-only properties, InvalidRequest for read-only ones.
fn check_patch_paths(resource: &ResourceType, patch: &json_patch::Patch) -> Result<(), ApiError> {
    for path in patch_paths(patch) {
        let top = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .replace("~1", "/")
            .replace("~0", "~");
        let pointer = format!("/properties/{top}");
        let create_only = resource
            .create_only_properties
            .iter()
            .any(|p| p == &pointer || path_under(p, &pointer, &path));
        if create_only {
            return Err(ApiError::new(
                "NotUpdatableException",
                format!("Invalid patch update: createOnlyProperties [{pointer}] cannot be updated"),
            ));
        }
        if resource.is_read_only(&top) {
            return Err(ApiError::new(
                "InvalidRequestException",
                format!("Invalid patch update: readOnlyProperties [{pointer}] cannot be updated"),
            ));
        }
        if !resource.properties().contains_key(&top) {
            return Err(ApiError::new(
                "InvalidRequestException",
                format!("Model validation failed (#: extraneous key [{top}] is not permitted)"),
            ));
        }
    }
    Ok(())
}

/// Whether a nested create-only pointer (`/properties/A/B`) is touched by a patch path (`/A/B/C`).
fn path_under(create_only: &str, _top: &str, path: &str) -> bool {
    let rest = create_only.strip_prefix("/properties").unwrap_or(create_only);
    rest.contains('/') && rest.matches('/').count() > 1 && (path == rest || path.starts_with(&format!("{rest}/")))
}

/// `|`-joined identifiers as they are; JSON objects map primary (or additional) identifier
/// properties to values.
fn resolve_identifier(
    resource: &ResourceType,
    raw: &str,
    resources: &std::collections::BTreeMap<String, Map<String, Value>>,
) -> Result<String, ApiError> {
    if !raw.trim_start().starts_with('{') {
        return Ok(raw.to_string());
    }
    let Ok(Value::Object(given)) = serde_json::from_str::<Value>(raw) else {
        return Ok(raw.to_string());
    };
    if let Some(id) = identifier_of(resource, &given) {
        return Ok(id);
    }
    for extra in &resource.additional_identifiers {
        let names: Vec<&str> = extra.iter().map(|p| resource_schemas::pointer_top_level(p)).collect();
        if names.iter().all(|n| given.contains_key(*n)) {
            let found = resources.iter().find(|(_, m)| names.iter().all(|n| m.get(*n) == given.get(*n)));
            return Ok(found.map(|(id, _)| id.clone()).unwrap_or_else(|| raw.to_string()));
        }
    }
    Err(ApiError::new(
        "InvalidRequestException",
        format!("Identifier {raw} does not name the primary identifier of {}", resource.type_name),
    ))
}

/// What a ResourceModel filters on, after checking the list handler's requirements with AWS's
/// message.
fn list_filters(resource: &ResourceType, model: Option<&Value>) -> Result<Vec<(String, Value)>, ApiError> {
    let Some(hs) = resource.list_handler_schema() else {
        return Ok(Vec::new());
    };
    let given: Map<String, Value> = match model {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::new("InvalidRequestException", "ResourceModel must be a JSON object")),
        None => Map::new(),
    };
    let missing = |keys: &[String]| keys.iter().filter(|k| !given.contains_key(*k)).cloned().collect::<Vec<_>>();
    let invalid = |keys: Vec<String>| {
        ApiError::new(
            "InvalidRequestException",
            format!(
                "Missing or invalid ResourceModel property in {} list handler request input.Required property: (#: required key [{}] not found)",
                resource.type_name,
                keys.join(", ")
            ),
        )
    };
    let absent = missing(&hs.required);
    if !absent.is_empty() {
        return Err(invalid(absent));
    }
    for alternatives in [&hs.one_of, &hs.any_of] {
        if !alternatives.is_empty() && !alternatives.iter().any(|alt| missing(alt).is_empty()) {
            return Err(invalid(alternatives[0].clone()));
        }
    }
    Ok(hs
        .params
        .iter()
        .filter_map(|p| {
            let v = given.get(&p.name)?;
            let property = p.property.clone().unwrap_or_else(|| p.name.clone());
            resource.properties().contains_key(&property).then(|| (property, v.clone()))
        })
        .collect())
}

fn primary_only(resource: &ResourceType, model: &Map<String, Value>) -> Map<String, Value> {
    let ids = resource.primary_identifier_names();
    model
        .iter()
        .filter(|(k, _)| ids.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What AWS returns of a model: everything but its write-only properties, at any depth.
fn visible(resource: &ResourceType, model: &Map<String, Value>) -> Map<String, Value> {
    let mut shown = model.clone();
    resource.strip_write_only(&mut shown);
    shown
}

fn encode_list_token(type_name: &str, last: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({"t": type_name, "after": last}).to_string())
}

fn decode_list_token(token: &str, type_name: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            "InvalidRequestException",
            format!("The NextToken '{token}' is not valid for {type_name}."),
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if v.get("t").and_then(Value::as_str) != Some(type_name) {
        return Err(bad());
    }
    v.get("after").and_then(Value::as_str).map(str::to_string).ok_or_else(bad)
}

fn decode_offset(token: &str) -> Result<usize, ApiError> {
    let bad = || ApiError::new("InvalidRequestException", format!("The NextToken '{token}' is not valid."));
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    String::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(bad)
}
