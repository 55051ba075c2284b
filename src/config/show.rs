//! The effective configuration as TOML, for `cloudpg config check`: every key with the value
//! the server will use, passwords masked.

use super::RawConfig;
use crate::error::{Error, Result};

const MASK: &str = "[masked]";

/// The configuration as a TOML document, with every user's `password` and the values of the
/// OTLP headers (API keys) masked.
pub fn effective_toml(raw: &RawConfig) -> Result<String> {
    let mut shown = raw.clone();
    for value in shown.tracing.otlp_headers.values_mut() {
        *value = MASK.into();
    }
    for user in &mut shown.auth.users {
        if user.password.is_some() {
            user.password = Some(MASK.into());
        }
    }
    toml::to_string(&shown).map_err(|e| Error::Config(format!("printing the configuration: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_the_rest_round_trips() {
        let verifier = crate::auth::ScramVerifier::from_password("pw").to_string();
        let raw: RawConfig = toml::from_str(&format!(
            "max_connections = 9\n[[auth.users]]\nname = \"alice\"\npassword = \"{verifier}\"\n"
        ))
        .unwrap();
        let text = effective_toml(&raw).unwrap();
        assert!(!text.contains(&verifier), "{text}");
        assert!(
            text.contains(MASK) && text.contains("max_connections = 9") && text.contains("ttl = \"5m\""),
            "{text}"
        );
        let back: RawConfig = toml::from_str(&text.replace(MASK, &verifier)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{raw:?}"));
    }

    #[test]
    fn otlp_header_values_are_masked() {
        let raw: RawConfig =
            toml::from_str("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/v1/traces\"\notlp_headers = { x-api-key = \"k-123\" }\n")
                .unwrap();
        let text = effective_toml(&raw).unwrap();
        assert!(
            !text.contains("k-123") && text.contains("x-api-key") && text.contains(MASK),
            "{text}"
        );
    }
}
