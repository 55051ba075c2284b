//! `[[accounts]]`: the AWS accounts one server reads, each with its own credentials and
//! regions, checked once at startup. Without `[[accounts]]` the server has one account named
//! `default`, with `aws.profile` or the standard credential chain.

use serde::{Deserialize, Serialize};

use super::DefaultRegions;
use crate::error::{Error, Result};

/// The account a server has when its config names none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One `[[accounts]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: String,
    /// A named profile of the shared AWS config files.
    pub profile: Option<String>,
    /// A role to assume (`arn:aws:iam::123456789012:role/Name`).
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    /// Where the credentials that assume `role_arn` come from: a profile, or another account
    /// of this config by name. Neither: the standard chain.
    pub source_profile: Option<String>,
    pub source_account: Option<String>,
    /// Regions read when a query names none; `["*"]` for every region of the partition.
    pub regions: Option<Vec<String>>,
    /// This account's ceiling on calls per second per region, over `api.max_calls_per_second`.
    pub max_calls_per_second: Option<f64>,
}

/// Where an account's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The standard chain: environment, shared config, SSO, web identity, container and
    /// instance metadata.
    DefaultChain,
    Profile(String),
    Role(AssumedRole),
}

/// A role assumed through STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub source: RoleSource,
}

/// The credentials that assume a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleSource {
    DefaultChain,
    Profile(String),
    /// Another configured account's credentials (itself not a role).
    Account(String),
}

/// One checked account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountConfig {
    pub name: String,
    pub credentials: CredentialSource,
    /// `None`: the server's `regions`, else the profile's or `AWS_REGION`, else us-east-1.
    pub regions: Option<DefaultRegions>,
    /// Calls per second per region at most; `None`: `api.max_calls_per_second`.
    pub max_calls_per_second: Option<f64>,
}

impl CredentialSource {
    /// How `cloudpg.accounts` and error messages describe it; names, never secrets.
    pub fn describe(&self) -> String {
        match self {
            CredentialSource::DefaultChain => "default credential chain".into(),
            CredentialSource::Profile(p) => format!("profile {p}"),
            CredentialSource::Role(r) => {
                let from = match &r.source {
                    RoleSource::DefaultChain => "the default credential chain".to_string(),
                    RoleSource::Profile(p) => format!("profile {p}"),
                    RoleSource::Account(a) => format!("account {a}"),
                };
                format!("role {} assumed from {from}", r.role_arn)
            }
        }
    }
}

/// Checks `[[accounts]]`; with none, the one `default` account of `aws.profile`.
pub fn check(raw: &[RawAccount], aws_profile: Option<&str>) -> Result<Vec<AccountConfig>> {
    if raw.is_empty() {
        let credentials = match aws_profile {
            Some(p) => CredentialSource::Profile(p.to_string()),
            None => CredentialSource::DefaultChain,
        };
        return Ok(vec![AccountConfig {
            name: DEFAULT_ACCOUNT.to_string(),
            credentials,
            regions: None,
            max_calls_per_second: None,
        }]);
    }
    let mut out: Vec<AccountConfig> = Vec::with_capacity(raw.len());
    for a in raw {
        let account = check_one(a).map_err(|why| Error::Config(format!("accounts: account {:?}: {why}", a.name)))?;
        if out.iter().any(|o| o.name == account.name) {
            return Err(Error::Config(format!(
                "accounts: account {:?} is named twice; each account needs its own name",
                a.name
            )));
        }
        out.push(account);
    }
    for a in &out {
        if let CredentialSource::Role(AssumedRole {
            source: RoleSource::Account(from),
            ..
        }) = &a.credentials
        {
            let source = out.iter().find(|o| &o.name == from);
            let why = match source {
                None => Some(format!("source_account {from:?} is not one of the configured accounts")),
                Some(s) if s.name == a.name => Some("source_account names the account itself".to_string()),
                Some(s) if matches!(s.credentials, CredentialSource::Role(_)) => Some(format!(
                    "source_account {from:?} itself assumes a role; name a profile or the default chain instead"
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                return Err(Error::Config(format!("accounts: account {:?}: {why}", a.name)));
            }
        }
    }
    Ok(out)
}

fn check_one(a: &RawAccount) -> std::result::Result<AccountConfig, String> {
    let valid_name = !a.name.is_empty() && a.name.len() <= 64 && a.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err("the name must be 1 to 64 letters, digits, '-' or '_'".into());
    }
    let role_only = [
        ("external_id", a.external_id.is_some()),
        ("session_name", a.session_name.is_some()),
        ("source_profile", a.source_profile.is_some()),
        ("source_account", a.source_account.is_some()),
    ];
    let credentials = match (&a.profile, &a.role_arn) {
        (Some(_), Some(_)) => return Err("set profile or role_arn, not both".into()),
        (profile, None) => {
            if let Some((key, _)) = role_only.iter().find(|(_, set)| *set) {
                return Err(format!("{key} applies only with role_arn"));
            }
            match profile {
                Some(p) if p.is_empty() => return Err("profile is empty".into()),
                Some(p) => CredentialSource::Profile(p.clone()),
                None => CredentialSource::DefaultChain,
            }
        }
        (None, Some(arn)) => {
            check_role_arn(arn)?;
            let source = match (&a.source_profile, &a.source_account) {
                (Some(_), Some(_)) => return Err("set source_profile or source_account, not both".into()),
                (Some(p), None) => RoleSource::Profile(p.clone()),
                (None, Some(acc)) => RoleSource::Account(acc.clone()),
                (None, None) => RoleSource::DefaultChain,
            };
            let session_name = a.session_name.clone().unwrap_or_else(|| format!("cloudpg-{}", a.name));
            let valid_session =
                (2..=64).contains(&session_name.len()) && session_name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
            if !valid_session {
                return Err(format!("session_name {session_name:?} must be 2 to 64 letters, digits or +=,.@-_"));
            }
            CredentialSource::Role(AssumedRole {
                role_arn: arn.clone(),
                external_id: a.external_id.clone(),
                session_name,
                source,
            })
        }
    };
    let regions = a.regions.as_deref().map(|r| check_regions(r, "regions")).transpose()?;
    Ok(AccountConfig {
        name: a.name.clone(),
        credentials,
        regions,
        max_calls_per_second: a.max_calls_per_second,
    })
}

fn check_role_arn(arn: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws") && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && resource.starts_with("role/") && resource.len() > 5);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "role_arn {arn:?} is not a role ARN like arn:aws:iam::123456789012:role/Name"
        ))
    }
}

/// A region list as written: names of regions, or `["*"]` alone.
pub fn check_regions(regions: &[String], key: &str) -> std::result::Result<DefaultRegions, String> {
    if regions.iter().any(|r| r == "*") {
        return if regions.len() == 1 {
            Ok(DefaultRegions::All)
        } else {
            Err(format!("{key}: \"*\" means every region and stands alone"))
        };
    }
    if regions.is_empty() {
        return Err(format!("{key} is empty; name at least one region, or \"*\" for all"));
    }
    let registry = resource_schemas::Registry::shared().map_err(|e| e.to_string())?;
    for r in regions {
        if !registry.is_region(r) {
            return Err(format!(
                "{key}: {r:?} is not an AWS region; valid regions are {}",
                registry.regions.join(", ")
            ));
        }
    }
    Ok(DefaultRegions::List(regions.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> RawAccount {
        RawAccount {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn no_accounts_is_one_default_account() {
        let a = check(&[], Some("inventory")).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name, "default");
        assert_eq!(a[0].credentials, CredentialSource::Profile("inventory".into()));
    }

    #[test]
    fn roles_profiles_and_regions_are_checked_naming_the_account() {
        let mut both = account("prod");
        both.profile = Some("p".into());
        both.role_arn = Some("arn:aws:iam::111111111111:role/R".into());
        let e = check(&[both], None).unwrap_err().to_string();
        assert!(e.contains("\"prod\"") && e.contains("not both"), "{e}");

        let mut region = account("dev");
        region.regions = Some(vec!["us-east-9".into()]);
        let e = check(&[region], None).unwrap_err().to_string();
        assert!(e.contains("\"dev\"") && e.contains("us-east-9"), "{e}");

        let e = check(&[account("a"), account("a")], None).unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("twice"), "{e}");

        let mut bad_arn = account("x");
        bad_arn.role_arn = Some("arn:aws:iam::1:role/R".into());
        assert!(check(&[bad_arn], None).unwrap_err().to_string().contains("not a role ARN"));

        let mut orphan = account("y");
        orphan.external_id = Some("e".into());
        assert!(check(&[orphan], None).unwrap_err().to_string().contains("only with role_arn"));

        let mut role = account("audit");
        role.role_arn = Some("arn:aws:iam::222222222222:role/Audit".into());
        role.source_account = Some("nope".into());
        assert!(check(&[role.clone()], None)
            .unwrap_err()
            .to_string()
            .contains("not one of the configured"));
        role.source_account = Some("base".into());
        let ok = check(&[account("base"), role], None).unwrap();
        assert!(ok[1].credentials.describe().contains("assumed from account base"));
    }
}
