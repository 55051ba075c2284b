//! Where the configuration comes from, later sources winning: built-in defaults, the TOML file
//! given with `--config`, then `CLOUDPG_…` environment variables (command-line flags, applied
//! by the caller, win over all). `CLOUDPG_CACHE__TTL=1m` sets `ttl` of `[cache]`: the name after
//! the prefix, lower-cased, with `__` between a table and its key. A value is read as TOML
//! (`10`, `true`, `["us-east-1", "eu-west-1"]`) and as a plain string when it is not TOML or
//! the key wants a string (`CLOUDPG_LISTEN=0.0.0.0:5433`).
//!
//! Each source is checked on its own before they are merged, so an error names the file (with
//! line and column) or the variable that caused it.

use std::path::Path;

use serde::Deserialize;

use super::RawConfig;
use crate::error::{Error, Result};

/// Environment variables with this prefix configure the server.
pub const ENV_PREFIX: &str = "CLOUDPG_";
/// Variables with this prefix belong to the test scripts, not the server.
pub const RESERVED_PREFIX: &str = "CLOUDPG_TEST_";

/// The file (if any) with the configuring variables of `env` over it.
pub fn read(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<RawConfig> {
    let mut table = match path {
        Some(p) => file_table(p)?,
        None => toml::Table::new(),
    };
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !k.starts_with(RESERVED_PREFIX))
        .collect();
    vars.sort();
    for (name, value) in &vars {
        let key = key_path(name)?;
        let value = env_value(name, &key, value)?;
        insert(&mut table, &key, value).map_err(|e| Error::Config(format!("environment variable {name}: {e}")))?;
    }
    RawConfig::deserialize(toml::Value::Table(table)).map_err(|e| Error::Config(format!("configuration: {}", one_line(&e))))
}

/// The file as a table, after checking it alone so its errors carry line and column.
fn file_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str::<RawConfig>(&text).map_err(|e| Error::Config(format!("config file {}: {}", path.display(), one_line(&e))))?;
    toml::from_str::<toml::Table>(&text).map_err(|e| Error::Config(format!("config file {}: {}", path.display(), one_line(&e))))
}

/// `CLOUDPG_CACHE__TTL` → `["cache", "ttl"]`.
fn key_path(name: &str) -> Result<Vec<String>> {
    let rest = &name[ENV_PREFIX.len()..];
    let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
    if parts.iter().any(String::is_empty) {
        return Err(Error::Config(format!(
            "environment variable {name}: expected CLOUDPG_KEY or CLOUDPG_TABLE__KEY, e.g. CLOUDPG_LISTEN or CLOUDPG_CACHE__TTL"
        )));
    }
    Ok(parts)
}

/// The value of one variable, as TOML when that fits its key and as a string otherwise;
/// checked alone against the defaults so an unknown key or a bad value names the variable.
fn env_value(name: &str, key: &[String], value: &str) -> Result<toml::Value> {
    let typed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let mut last_error = None;
    for candidate in typed.into_iter().chain([toml::Value::String(value.to_string())]) {
        let mut alone = toml::Table::new();
        if let Err(e) = insert(&mut alone, key, candidate.clone()) {
            return Err(Error::Config(format!("environment variable {name}: {e}")));
        }
        match RawConfig::deserialize(toml::Value::Table(alone)) {
            Ok(_) => return Ok(candidate),
            Err(e) => last_error = Some(one_line(&e)),
        }
    }
    let shown = if is_secret(key) {
        "[masked]".to_string()
    } else {
        format!("{value:?}")
    };
    Err(Error::Config(format!(
        "environment variable {name} = {shown}: {}",
        last_error.unwrap_or_default()
    )))
}

fn is_secret(key: &[String]) -> bool {
    key.iter().any(|k| k.contains("password") || k.contains("secret"))
}

fn insert(table: &mut toml::Table, key: &[String], value: toml::Value) -> std::result::Result<(), String> {
    let Some((last, parents)) = key.split_last() else {
        return Err("empty key".into());
    };
    let mut at = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = at.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{} is a value, not a table", parents[..=depth].join("."))),
        };
    }
    at.insert(last.clone(), value);
    Ok(())
}

/// A TOML error on one line (its own messages span several, with a caret under the span).
fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c.is_whitespace()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_environment_overrides_the_file_and_is_typed_by_its_key() {
        let dir = std::env::temp_dir().join(format!("cloudpg-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:6000\"\nmax_connections = 5\n[cache]\nttl = \"1m\"\n").unwrap();
        let raw = read(
            Some(&file),
            vars(&[
                ("CLOUDPG_CACHE__TTL", "2m"),
                ("CLOUDPG_MAX_CONNECTIONS", "7"),
                ("CLOUDPG_REGIONS", "[\"eu-west-1\"]"),
                ("CLOUDPG_AWS__PROFILE", "123"),
                ("CLOUDPG_TEST_BIN", "/x"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(raw.listen, "127.0.0.1:6000", "the file's value stays");
        assert_eq!(raw.cache.ttl, std::time::Duration::from_secs(120));
        assert_eq!(raw.max_connections, 7);
        assert_eq!(raw.regions, Some(vec!["eu-west-1".to_string()]));
        assert_eq!(raw.aws.profile.as_deref(), Some("123"), "a string key takes digits as a string");
    }

    #[test]
    fn errors_name_the_variable_or_the_file() {
        let e = read(None, vars(&[("CLOUDPG_LISTN", "x")])).unwrap_err().to_string();
        assert!(e.contains("CLOUDPG_LISTN") && e.contains("listn"), "{e}");
        let e = read(None, vars(&[("CLOUDPG_MAX_CONNECTIONS", "many")])).unwrap_err().to_string();
        assert!(e.contains("CLOUDPG_MAX_CONNECTIONS") && e.contains("\"many\""), "{e}");
        let e = read(None, vars(&[("CLOUDPG_AUTH__USERS", "secret-password")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CLOUDPG_AUTH__USERS"), "{e}");
        let e = read(None, vars(&[("CLOUDPG_CACHE____TTL", "1m")])).unwrap_err().to_string();
        assert!(e.contains("CLOUDPG_CACHE__TTL"), "{e}");
        let e = read(Some(Path::new("/nonexistent/cloudpg.toml")), vec![]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/cloudpg.toml") && e.contains("No such file"), "{e}");

        let dir = std::env::temp_dir().join(format!("cloudpg-sources-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:6000\"\n[cache]\nttl = \"1m\"\nsize = 3\n").unwrap();
        let e = read(Some(&file), vec![]).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(e.contains("bad.toml") && e.contains("size") && e.contains("line 4"), "{e}");
    }
}
