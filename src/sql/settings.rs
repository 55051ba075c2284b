//! Session settings: what `SET`, `SHOW`, `RESET` and `current_setting` read and write.
//!
//! The settings cloudpg acts on are typed fields, checked when set (a bad value is an error
//! naming the parameter and what it accepts); PostgreSQL's fixed parameters answer SHOW and
//! refuse SET; any other name a client sets (`extra_float_digits`, `application_name`…) is
//! kept as text, so drivers' connection setup works. A typo in a `cloudpg.` name is an error.

use std::collections::BTreeMap;
use std::time::Duration;

use super::compat::parameters;
use super::datetime::{DateStyle, TimeFormat, Zone};
use crate::auth::Role;
use crate::config::{Config, DefaultRegions};
use crate::error::{closest, Error, Result};

/// What `server_version` reports: clients parse it to choose their catalog queries.
pub const SERVER_VERSION: &str = "16.6";
/// What `server_version_num` reports.
pub const SERVER_VERSION_NUM: &str = "160006";

/// Parameters PostgreSQL reports to the client with ParameterStatus whenever they change.
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "intervalstyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "timezone",
];

/// How often progress NOTICEs come unless a session says otherwise.
const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(2);
/// More often would be noise on the wire.
const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The settings of one session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None`: each account reads its own regions (they differ between accounts).
    pub regions: Option<DefaultRegions>,
    /// `cloudpg.cache_ttl = 0`: every read goes to Cloud Control.
    pub bypass_cache: bool,
    /// `cloudpg.allow_bulk_mutations`: UPDATE/DELETE may select their resources by any WHERE.
    pub allow_bulk: bool,
    /// `cloudpg.nowait`: return once Cloud Control accepted the requests.
    pub nowait: bool,
    /// `cloudpg.autocommit_mutations`: a mutation inside a transaction block runs at once.
    pub autocommit_mutations: bool,
    /// `cloudpg.max_api_calls`: Cloud Control calls one statement may make.
    pub max_api_calls: u64,
    /// `cloudpg.progress`: NOTICEs on how far a long scan has got, while the client waits.
    pub progress: bool,
    /// `cloudpg.on_error = 'warn'`: a region (or parent) whose calls fail gives a WARNING and
    /// no rows, and the statement returns the rest, instead of failing.
    pub warn_on_error: bool,
    /// `cloudpg.progress_interval`: how often those NOTICEs come.
    pub progress_interval: Duration,
    pub statement_timeout: Duration,
    pub idle_session_timeout: Duration,
    pub idle_in_transaction_session_timeout: Duration,
    pub default_transaction_read_only: bool,
    /// Every other parameter, by lower-cased name.
    other: BTreeMap<String, String>,
    /// The session's settings as it started (config, then startup parameters): what RESET
    /// returns to, as in PostgreSQL.
    initial: Option<Box<Settings>>,
    /// Whether the session's role may widen what it does (writers only).
    privileged: bool,
    /// The server's bounds, for checking values.
    cache_ttl: Duration,
    api_call_ceiling: u64,
    /// Names these values: a fresh number from a process-wide counter at every change, so
    /// copies that hold the same stamp hold the same values (a snapshot restored by ROLLBACK
    /// brings back its own stamp). What is derived from the settings is redone only when it moves.
    stamp: u64,
    /// The zone and style parsed from `timezone` and `datestyle`, kept beside their text so
    /// each statement does not parse them again.
    time: TimeFormat,
    /// What a plan depends on of them (see [`Settings::time_key`]).
    time_key: String,
}

/// Where stamps come from; never repeats within a process.
static STAMPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A value as SET gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Default,
    Text(String),
}

/// How a parameter is named and what it accepts, for SHOW ALL and error hints.
struct Known {
    name: &'static str,
    description: &'static str,
}

const CLOUDPG: &[Known] = &[
    Known {
        name: "cloudpg.regions",
        description: "Regions a query reads when its WHERE names none: a list like 'us-east-1,eu-west-1', or '*' for all.",
    },
    Known {
        name: "cloudpg.cache_ttl",
        description: "0 bypasses the cache for this session; otherwise the server's cache TTL applies.",
    },
    Known {
        name: "cloudpg.allow_bulk_mutations",
        description: "Allows UPDATE and DELETE whose WHERE does not name identifiers.",
    },
    Known {
        name: "cloudpg.nowait",
        description: "INSERT, UPDATE and DELETE return once Cloud Control accepted the requests.",
    },
    Known {
        name: "cloudpg.autocommit_mutations",
        description: "Runs INSERT, UPDATE and DELETE inside a transaction block at once (they cannot be rolled back).",
    },
    Known {
        name: "cloudpg.max_api_calls",
        description: "Cloud Control calls one statement may make; at most the server's limits.max_api_calls.",
    },
    Known {
        name: "cloudpg.progress",
        description: "Sends NOTICEs on how far a running scan has got (regions listed, resources read).",
    },
    Known {
        name: "cloudpg.on_error",
        description:
            "What a failing region does to a scan: 'error' fails the statement, 'warn' returns the other regions' rows with a WARNING.",
    },
    Known {
        name: "cloudpg.progress_interval",
        description: "How often progress NOTICEs come while a statement runs (at least 100ms).",
    },
];

const TIMEOUTS: &[Known] = &[
    Known {
        name: "statement_timeout",
        description: "Cancels any statement that runs longer (0 is off).",
    },
    Known {
        name: "idle_session_timeout",
        description: "Closes a connection idle this long outside a transaction (0 is off).",
    },
    Known {
        name: "idle_in_transaction_session_timeout",
        description: "Closes a connection idle this long inside a transaction (0 is off).",
    },
];

/// Settings that widen what a session may do: only writers may turn them on.
const WIDENING: &[&str] = &["cloudpg.allow_bulk_mutations", "cloudpg.autocommit_mutations"];

/// PostgreSQL's parameters that cannot change, with their value.
const FIXED: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_version_num", SERVER_VERSION_NUM),
    ("server_encoding", "UTF8"),
    ("integer_datetimes", "on"),
    ("is_superuser", "off"),
    ("in_hot_standby", "off"),
    ("max_identifier_length", "63"),
    ("block_size", "8192"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("data_checksums", "off"),
    ("standard_conforming_strings", "on"),
];

impl Settings {
    /// The defaults of a new session: the server's config, then what the client sent at startup.
    pub fn new(config: &Config, startup: &BTreeMap<String, String>, role: Role) -> Settings {
        let mut s = Settings {
            privileged: role == Role::Writer,
            regions: config.regions.clone(),
            bypass_cache: false,
            allow_bulk: false,
            nowait: false,
            autocommit_mutations: false,
            max_api_calls: config.limits.max_api_calls,
            progress: true,
            warn_on_error: false,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            statement_timeout: config.limits.statement_timeout,
            idle_session_timeout: config.limits.idle_session_timeout,
            idle_in_transaction_session_timeout: config.limits.idle_in_transaction_session_timeout,
            default_transaction_read_only: false,
            other: BTreeMap::new(),
            initial: None,
            cache_ttl: config.cache.ttl,
            api_call_ceiling: config.limits.max_api_calls,
            stamp: 0,
            time: TimeFormat::default(),
            time_key: String::new(),
        };
        for (k, v) in [
            ("client_encoding", "UTF8"),
            ("datestyle", "ISO, MDY"),
            ("intervalstyle", "postgres"),
            ("timezone", "UTC"),
            ("search_path", "\"$user\", public"),
            ("application_name", ""),
            ("extra_float_digits", "1"),
            ("client_min_messages", "notice"),
            ("transaction_isolation", "read committed"),
            ("default_transaction_isolation", "read committed"),
            ("bytea_output", "hex"),
        ] {
            s.other.insert(k.into(), v.into());
        }
        for (k, v) in startup {
            let name = k.to_ascii_lowercase();
            // Connection parameters, not settings.
            if matches!(name.as_str(), "user" | "database" | "options" | "replication") {
                continue;
            }
            // A bad value at startup is ignored (the default stays), rather than refusing the login.
            let _ = s.set(&name, SetValue::Text(v.clone()));
        }
        s.changed();
        s.initial = Some(Box::new(s.clone()));
        s
    }

    /// After any change: a new stamp, and the derived time format redone.
    fn changed(&mut self) {
        self.stamp = STAMPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.time = TimeFormat {
            zone: self.other.get("timezone").and_then(|z| Zone::parse(z)).unwrap_or_else(Zone::utc),
            style: self
                .other
                .get("datestyle")
                .and_then(|s| DateStyle::parse(s, DateStyle::default()).ok())
                .unwrap_or_default(),
        };
        self.time_key = format!("{}|{}", self.time.zone.arrow_name(), self.time.style.shown());
    }

    /// What a plan depends on of the time settings: its `timestamptz` values carry the zone,
    /// and casts to text read the DateStyle.
    pub fn time_key(&self) -> &str {
        &self.time_key
    }

    /// Equal stamps, equal settings: see the field.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// `SET name = value`. Returns the new value when clients must be told (ParameterStatus).
    pub fn set(&mut self, name: &str, value: SetValue) -> Result<Option<String>> {
        let name = canonical(name);
        if let Some((_, v)) = FIXED.iter().find(|(n, _)| *n == name) {
            if name == "standard_conforming_strings" && matches!(&value, SetValue::Text(t) if parse_bool(t) == Some(true)) {
                return Ok(None);
            }
            return Err(Error::CantChangeParameter {
                message: format!("parameter \"{name}\" cannot be changed"),
                hint: Some(format!("cloudpg's {name} is always {v}")),
            });
        }
        let text = match value {
            SetValue::Default => return self.reset(&name),
            SetValue::Text(t) => t,
        };
        if WIDENING.contains(&name.as_str()) && !self.privileged && parse_bool(&text) != Some(false) {
            return Err(Error::PermissionDenied(format!(
                "permission denied to set parameter \"{name}\": it lets a session change resources, and this user's role is reader"
            )));
        }
        match name.as_str() {
            "cloudpg.regions" => self.regions = Some(parse_regions(&text)?),
            "cloudpg.cache_ttl" => self.bypass_cache = parse_duration(&name, &text, Unit::Seconds)?.is_zero(),
            "cloudpg.allow_bulk_mutations" => self.allow_bulk = bool_setting(&name, &text)?,
            "cloudpg.nowait" => self.nowait = bool_setting(&name, &text)?,
            "cloudpg.autocommit_mutations" => self.autocommit_mutations = bool_setting(&name, &text)?,
            "cloudpg.max_api_calls" => self.max_api_calls = self.api_calls(&text)?,
            "cloudpg.progress" => self.progress = bool_setting(&name, &text)?,
            "cloudpg.on_error" => {
                self.warn_on_error = match text.to_ascii_lowercase().as_str() {
                    "error" => false,
                    "warn" => true,
                    _ => {
                        return Err(Error::InvalidParameter {
                            message: format!("invalid value for parameter \"cloudpg.on_error\": \"{text}\""),
                            hint: Some("Available values: error, warn.".into()),
                        })
                    }
                }
            }
            "cloudpg.progress_interval" => {
                let every = parse_duration(&name, &text, Unit::Millis)?;
                if every < MIN_PROGRESS_INTERVAL {
                    return Err(Error::invalid_parameter(
                        format!(
                            "{} is below the minimum of parameter \"cloudpg.progress_interval\" (100ms)",
                            show_duration(every)
                        ),
                        Some("SET cloudpg.progress = off stops the NOTICEs".into()),
                    ));
                }
                self.progress_interval = every;
            }
            "statement_timeout" => self.statement_timeout = parse_duration(&name, &text, Unit::Millis)?,
            "idle_session_timeout" => self.idle_session_timeout = parse_duration(&name, &text, Unit::Millis)?,
            "idle_in_transaction_session_timeout" => self.idle_in_transaction_session_timeout = parse_duration(&name, &text, Unit::Millis)?,
            "default_transaction_read_only" => self.default_transaction_read_only = bool_setting(&name, &text)?,
            "client_encoding" => {
                let upper = text.to_ascii_uppercase().replace(['-', '_'], "");
                if !matches!(upper.as_str(), "UTF8" | "UNICODE") {
                    return Err(Error::NotSupported(format!(
                        "client_encoding \"{text}\": cloudpg sends and receives UTF8 only"
                    )));
                }
                self.other.insert(name.clone(), "UTF8".into());
            }
            "datestyle" => {
                let style = DateStyle::parse(&text, self.time_format().style).map_err(|why| {
                    Error::invalid_parameter(
                        format!("invalid value for parameter \"DateStyle\": \"{text}\""),
                        Some(format!(
                            "{why} Give a style (ISO, SQL, Postgres, German) and an order (MDY, DMY, YMD), such as 'ISO, MDY'."
                        )),
                    )
                })?;
                self.other.insert(name.clone(), style.shown());
            }
            "timezone" => {
                let zone = Zone::parse(&text).ok_or_else(|| {
                    Error::invalid_parameter(
                        format!("invalid value for parameter \"TimeZone\": \"{text}\""),
                        Some("give an IANA zone name such as 'UTC' or 'America/New_York', or hours east of UTC such as '-8'".into()),
                    )
                })?;
                self.other.insert(name.clone(), zone.shown().to_string());
            }
            other if other.starts_with("cloudpg.") => {
                return Err(Error::UndefinedParameter {
                    name: other.to_string(),
                    suggestions: closest(other, CLOUDPG.iter().map(|k| k.name)),
                });
            }
            "role" | "session_authorization" => {
                return Err(Error::NotSupported(format!(
                    "SET {name} is not supported: a connection keeps the user it logged in as"
                )))
            }
            other if !parameters::is_settable(other) => return Err(unknown(other)),
            _ => {
                self.other.insert(name.clone(), text);
            }
        }
        self.changed();
        Ok(REPORTED.contains(&name.as_str()).then(|| self.get(&name).unwrap_or_default()))
    }

    /// `RESET name`: back to the server's default.
    pub fn reset(&mut self, name: &str) -> Result<Option<String>> {
        let name = canonical(name);
        let defaults = self.defaults();
        match name.as_str() {
            "cloudpg.regions" => self.regions = defaults.regions,
            "cloudpg.cache_ttl" => self.bypass_cache = false,
            "cloudpg.allow_bulk_mutations" => self.allow_bulk = false,
            "cloudpg.nowait" => self.nowait = false,
            "cloudpg.autocommit_mutations" => self.autocommit_mutations = false,
            "cloudpg.max_api_calls" => self.max_api_calls = defaults.max_api_calls,
            "cloudpg.progress" => self.progress = defaults.progress,
            "cloudpg.on_error" => self.warn_on_error = false,
            "cloudpg.progress_interval" => self.progress_interval = defaults.progress_interval,
            "statement_timeout" => self.statement_timeout = defaults.statement_timeout,
            "idle_session_timeout" => self.idle_session_timeout = defaults.idle_session_timeout,
            "idle_in_transaction_session_timeout" => {
                self.idle_in_transaction_session_timeout = defaults.idle_in_transaction_session_timeout
            }
            "default_transaction_read_only" => self.default_transaction_read_only = false,
            other if other.starts_with("cloudpg.") => {
                return Err(Error::UndefinedParameter {
                    name: other.to_string(),
                    suggestions: closest(other, CLOUDPG.iter().map(|k| k.name)),
                })
            }
            other => match defaults.other.get(other) {
                Some(v) => {
                    self.other.insert(other.to_string(), v.clone());
                }
                None => {
                    self.other.remove(other);
                }
            },
        }
        self.changed();
        Ok(REPORTED.contains(&name.as_str()).then(|| self.get(&name).unwrap_or_default()))
    }

    /// `RESET ALL`; returns the reported parameters that changed.
    pub fn reset_all(&mut self) -> Vec<(String, String)> {
        let before: Vec<Option<String>> = REPORTED.iter().map(|n| self.get(n)).collect();
        *self = self.defaults();
        self.changed();
        REPORTED
            .iter()
            .zip(before)
            .filter_map(|(n, old)| {
                let new = self.get(n);
                (new != old).then(|| (n.to_string(), new.unwrap_or_default()))
            })
            .collect()
    }

    /// The session's value of a parameter, as SHOW prints it; `None` when unknown.
    pub fn get(&self, name: &str) -> Option<String> {
        let name = canonical(name);
        if let Some((_, v)) = FIXED.iter().find(|(n, _)| *n == name) {
            return Some(v.to_string());
        }
        Some(match name.as_str() {
            "cloudpg.regions" => match &self.regions {
                Some(DefaultRegions::All) => "*".to_string(),
                Some(DefaultRegions::List(l)) => l.join(","),
                None => "per account".to_string(),
            },
            "cloudpg.cache_ttl" if self.bypass_cache => "0".into(),
            "cloudpg.cache_ttl" => format!("{}s", self.cache_ttl.as_secs()),
            "cloudpg.allow_bulk_mutations" => on_off(self.allow_bulk),
            "cloudpg.nowait" => on_off(self.nowait),
            "cloudpg.autocommit_mutations" => on_off(self.autocommit_mutations),
            "cloudpg.max_api_calls" => self.max_api_calls.to_string(),
            "cloudpg.progress" => on_off(self.progress),
            "cloudpg.on_error" => if self.warn_on_error { "warn" } else { "error" }.into(),
            "cloudpg.progress_interval" => show_duration(self.progress_interval),
            "statement_timeout" => show_duration(self.statement_timeout),
            "idle_session_timeout" => show_duration(self.idle_session_timeout),
            "idle_in_transaction_session_timeout" => show_duration(self.idle_in_transaction_session_timeout),
            "default_transaction_read_only" => on_off(self.default_transaction_read_only),
            other => {
                return self
                    .other
                    .get(other)
                    .cloned()
                    .or_else(|| parameters::parameter(other).map(|p| p.default.to_string()))
            }
        })
    }

    /// `application_name`, borrowed: every statement reports it to `pg_stat_activity`.
    pub fn application_name(&self) -> &str {
        self.other.get("application_name").map(String::as_str).unwrap_or_default()
    }

    /// Every parameter with its value and description, by lower-case name (PostgreSQL's
    /// case-insensitive order); shown with [`display_name`].
    pub fn all(&self) -> Vec<[String; 3]> {
        let mut rows: BTreeMap<String, [String; 3]> = BTreeMap::new();
        let mut add = |name: &str, description: &str| {
            if let Some(v) = self.get(name) {
                rows.insert(name.to_string(), [name.to_string(), v, description.to_string()]);
            }
        };
        for k in CLOUDPG.iter().chain(TIMEOUTS) {
            add(k.name, k.description);
        }
        for (n, _) in FIXED {
            add(n, "Fixed by cloudpg.");
        }
        add("default_transaction_read_only", "Whether new transactions are read-only.");
        for n in self.other.keys() {
            add(n, "");
        }
        rows.into_values().collect()
    }

    /// The zone and style date-time values are read and printed in.
    pub fn time_format(&self) -> &TimeFormat {
        &self.time
    }

    /// The reported parameters and their values, for the startup ParameterStatus messages.
    pub fn reported(&self) -> Vec<(String, String)> {
        REPORTED
            .iter()
            .filter_map(|n| Some((display_name(n).to_string(), self.get(n)?)))
            .collect()
    }

    fn defaults(&self) -> Settings {
        let mut d = self.initial.as_deref().cloned().unwrap_or_else(|| self.clone());
        d.initial = self.initial.clone();
        d
    }

    fn api_calls(&self, text: &str) -> Result<u64> {
        let n: u64 = text.trim().parse().map_err(|_| {
            Error::invalid_parameter(
                format!("invalid value for parameter \"cloudpg.max_api_calls\": \"{text}\""),
                Some("give a whole number of calls, like 500".into()),
            )
        })?;
        if n == 0 || n > self.api_call_ceiling {
            return Err(Error::invalid_parameter(
                format!(
                    "{n} is outside the valid range for parameter \"cloudpg.max_api_calls\" (1 .. {})",
                    self.api_call_ceiling
                ),
                Some("the server's limits.max_api_calls is the highest a session may set".into()),
            ));
        }
        Ok(n)
    }
}

/// A parameter as ParameterStatus names it (`timezone` → `TimeZone`).
pub fn reported_name(name: &str) -> String {
    display_name(&canonical(name)).to_string()
}

/// PostgreSQL's spellings of the same parameter.
fn canonical(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "time zone" | "time_zone" => "timezone".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        "session authorization" => "session_authorization".into(),
        "names" => "client_encoding".into(),
        _ => lower,
    }
}

/// How PostgreSQL spells a parameter in `SHOW ALL`, `pg_settings` and ParameterStatus.
pub fn display_name(name: &str) -> &str {
    match name {
        "datestyle" => "DateStyle",
        "intervalstyle" => "IntervalStyle",
        "timezone" => "TimeZone",
        other => other,
    }
}

fn parse_regions(text: &str) -> Result<DefaultRegions> {
    let registry = resource_schemas::Registry::shared().map_err(|e| Error::Config(e.to_string()))?;
    if text.trim() == "*" {
        return Ok(DefaultRegions::All);
    }
    let list: Vec<String> = text
        .split(',')
        .map(|r| r.trim().trim_matches('\'').to_string())
        .filter(|r| !r.is_empty())
        .collect();
    if list.is_empty() {
        return Err(Error::invalid_parameter(
            "invalid value for parameter \"cloudpg.regions\": the list is empty",
            Some("name at least one region, like 'us-east-1', or '*' for all".into()),
        ));
    }
    if let Some(bad) = list.iter().find(|r| !registry.is_region(r)) {
        return Err(Error::invalid_parameter(
            format!("invalid value for parameter \"cloudpg.regions\": region '{bad}' does not exist"),
            Some(format!("valid regions are {}", registry.regions.join(", "))),
        ));
    }
    Ok(DefaultRegions::List(list))
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

fn bool_setting(name: &str, text: &str) -> Result<bool> {
    parse_bool(text).ok_or_else(|| {
        Error::invalid_parameter(
            format!("parameter \"{name}\" requires a Boolean value, not '{text}'"),
            Some("use on or off".into()),
        )
    })
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

/// The unit of a bare number.
#[derive(Clone, Copy)]
enum Unit {
    Millis,
    Seconds,
}

/// A duration in PostgreSQL's syntax: `200`, `'200ms'`, `'1s'`, `'5min'`, `'1h'`, `'1d'`.
fn parse_duration(name: &str, text: &str, unit: Unit) -> Result<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let bad = || {
        Error::invalid_parameter(
            format!("invalid value for parameter \"{name}\": \"{text}\""),
            Some("valid units for this parameter are \"ms\", \"s\", \"min\", \"h\", and \"d\"".into()),
        )
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let millis_per = match suffix.trim() {
        "" => match unit {
            Unit::Millis => 1.0,
            Unit::Seconds => 1000.0,
        },
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(bad()),
    };
    let millis = n * millis_per;
    // PostgreSQL's ceiling for timeouts (INT_MAX milliseconds).
    if !(0.0..=2_147_483_647.0).contains(&millis) {
        return Err(Error::invalid_parameter(
            format!("{text} is outside the valid range for parameter \"{name}\" (0 .. 2147483647 ms)"),
            None,
        ));
    }
    Ok(Duration::from_micros((millis * 1000.0).round() as u64))
}

fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// 42704 for a parameter PostgreSQL does not have, with the closest names.
pub fn unknown(name: &str) -> Error {
    Error::UndefinedParameter {
        name: name.to_string(),
        suggestions: closest(
            name,
            parameters::PARAMETERS.iter().map(|p| p.name).chain(CLOUDPG.iter().map(|k| k.name)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new(&Config::default(), &BTreeMap::new(), Role::Writer)
    }

    #[test]
    fn durations_take_postgres_units() {
        let cases = [
            ("200", 200),
            ("'200ms'", 0),
            ("200ms", 200),
            ("1s", 1000),
            ("1.5s", 1500),
            ("5min", 300_000),
            ("1h", 3_600_000),
            ("0", 0),
        ];
        for (text, ms) in cases {
            let got = parse_duration("statement_timeout", text, Unit::Millis);
            if text.starts_with('\'') {
                assert!(got.is_err(), "{text}");
            } else {
                assert_eq!(got.unwrap(), Duration::from_millis(ms), "{text}");
            }
        }
        assert_eq!(parse_duration("x", "5", Unit::Seconds).unwrap(), Duration::from_secs(5));
        let e = parse_duration("statement_timeout", "5 fortnights", Unit::Millis).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        assert!(e.hint().unwrap().contains("\"ms\""));
        assert!(parse_duration("statement_timeout", "-1", Unit::Millis).is_err());
    }

    #[test]
    fn set_show_reset_round_trip() {
        let mut s = settings();
        s.set("statement_timeout", SetValue::Text("1500ms".into())).unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "1500ms");
        s.set("STATEMENT_TIMEOUT", SetValue::Text("2min".into())).unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "2min");
        s.reset("statement_timeout").unwrap();
        assert_eq!(s.get("statement_timeout").unwrap(), "0");
        assert_eq!(
            s.set("application_name", SetValue::Text("psql".into())).unwrap(),
            Some("psql".into()),
            "application_name is reported"
        );
        assert_eq!(s.application_name(), "psql");
        s.set("Application_Name", SetValue::Text("grafana".into())).unwrap();
        assert_eq!(s.application_name(), "grafana");
        assert_eq!(s.set("extra_float_digits", SetValue::Text("3".into())).unwrap(), None);
        assert_eq!(s.get("extra_float_digits").unwrap(), "3");
        s.set("cloudpg.regions", SetValue::Text("eu-west-1, us-east-1".into())).unwrap();
        assert_eq!(s.get("cloudpg.regions").unwrap(), "eu-west-1,us-east-1");
        s.set("cloudpg.regions", SetValue::Default).unwrap();
        assert_eq!(s.get("cloudpg.regions").unwrap(), "per account", "the server configures no regions");
        s.set("TimeZone", SetValue::Text("Europe/Paris".into())).unwrap();
        assert_eq!(s.get("time zone").unwrap(), "Europe/Paris");
        let changed = s.reset_all();
        assert!(changed.contains(&("timezone".to_string(), "UTC".to_string())), "{changed:?}");
    }

    #[test]
    fn bad_values_are_named() {
        let mut s = settings();
        let e = s.set("cloudpg.regoins", SetValue::Text("x".into())).unwrap_err();
        assert_eq!(e.sqlstate(), "42704");
        assert!(e.hint().unwrap().contains("cloudpg.regions"), "{:?}", e.hint());
        let e = s.set("cloudpg.nowait", SetValue::Text("maybe".into())).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        let e = s.set("server_version", SetValue::Text("9.6".into())).unwrap_err();
        assert_eq!(e.sqlstate(), "55P02");
        let e = s.set("client_encoding", SetValue::Text("LATIN1".into())).unwrap_err();
        assert_eq!(e.sqlstate(), "0A000");
        assert!(s.set("client_encoding", SetValue::Text("utf-8".into())).is_ok());
        let e = s.set("cloudpg.max_api_calls", SetValue::Text("99999999".into())).unwrap_err();
        assert!(e.to_string().contains("1 .. 10000"), "{e}");
        assert!(s.set("cloudpg.max_api_calls", SetValue::Text("50".into())).is_ok());
        let e = s.set("DateStyle", SetValue::Text("ISO, SQL".into())).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        assert!(e.hint().unwrap().contains("Conflicting"), "{:?}", e.hint());
        assert_eq!(
            s.set("DateStyle", SetValue::Text("german".into())).unwrap(),
            Some("German, DMY".into())
        );
        let e = s.set("TimeZone", SetValue::Text("Mars/Olympus".into())).unwrap_err();
        assert_eq!((e.sqlstate(), e.to_string().contains("\"Mars/Olympus\"")), ("22023", true));
        assert_eq!(s.set("TimeZone", SetValue::Text("-8".into())).unwrap(), Some("<-08>+08".into()));
        assert_eq!(s.time_format().zone.arrow_name(), "-08:00");
        assert!(s.set("standard_conforming_strings", SetValue::Text("on".into())).is_ok());
    }

    #[test]
    fn readers_cannot_widen_what_they_may_do() {
        let mut s = Settings::new(&Config::default(), &BTreeMap::new(), Role::Reader);
        for name in WIDENING {
            let e = s.set(name, SetValue::Text("on".into())).unwrap_err();
            assert_eq!(e.sqlstate(), "42501", "{name}");
            assert!(s.set(name, SetValue::Text("off".into())).is_ok(), "turning it off is fine");
        }
        assert!(s.set("search_path", SetValue::Text("public".into())).is_ok());
        assert!(s.set("cloudpg.nowait", SetValue::Text("on".into())).is_ok());
    }

    #[test]
    fn startup_parameters_become_settings() {
        let startup: BTreeMap<String, String> = [
            ("user".to_string(), "alice".to_string()),
            ("application_name".to_string(), "Metabase".to_string()),
            ("TimeZone".to_string(), "UTC".to_string()),
            ("statement_timeout".to_string(), "nonsense".to_string()),
        ]
        .into_iter()
        .collect();
        let s = Settings::new(&Config::default(), &startup, Role::Writer);
        assert_eq!(s.get("application_name").unwrap(), "Metabase");
        assert_eq!(s.get("statement_timeout").unwrap(), "0");
        assert_eq!(s.get("user"), None);
        let reported: Vec<String> = s.reported().into_iter().map(|(n, _)| n).collect();
        assert!(reported.contains(&"DateStyle".to_string()) && reported.contains(&"TimeZone".to_string()));
    }
}
