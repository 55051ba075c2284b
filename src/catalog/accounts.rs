//! The accounts a server reads, with the regions each reads by default, and the one decision
//! of which (account, region) places a scan or a mutation calls: `WHERE account` / `region`,
//! then the session's `cloudpg.regions`, then each account's own. Global types (IAM,
//! Organizations, CloudFront, Route 53) are called once per account, in the home region of the
//! account's partition.

use resource_schemas::geography::{home_of, is_global_type, Partition};
use resource_schemas::ResourceType;

use crate::cloudcontrol::Place;
use crate::config::DefaultRegions;
use crate::error::Error;

/// One account as scans see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: String,
    /// Where its credentials come from (`profile prod`), for `cloudpg.accounts`.
    pub source: String,
    /// What it reads when neither the statement nor the session names regions.
    pub regions: DefaultRegions,
    /// The partition `"*"` expands in: that of its first region.
    pub partition: Partition,
}

impl Account {
    /// An account reading `regions` by default.
    pub fn new(name: impl Into<String>, source: impl Into<String>, regions: DefaultRegions) -> Account {
        let partition = match &regions {
            DefaultRegions::List(list) => list.first().map_or(Partition::Aws, |r| Partition::of(r)),
            DefaultRegions::All => Partition::Aws,
        };
        Account {
            name: name.into(),
            source: source.into(),
            regions,
            partition,
        }
    }
}

/// One place a scan calls; `optional` when it came from `"*"`, so a region the account has
/// not enabled is skipped with a NOTICE instead of failing the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlace {
    pub place: Place,
    pub optional: bool,
}

/// Which accounts a statement is about: those it names (`WHERE account`, an INSERT's
/// `account` column), within those the session's user may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chosen<'a> {
    pub named: Option<&'a [String]>,
    /// `[[auth.users]] accounts` of the session's user; `None`: every account.
    pub allowed: Option<&'a [String]>,
}

impl Chosen<'_> {
    fn allows(&self, name: &str) -> bool {
        self.allowed.is_none_or(|a| a.iter().any(|n| n == name))
    }
}

/// Every account of the server, in configuration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Accounts {
    list: Vec<Account>,
}

impl Accounts {
    pub fn new(list: Vec<Account>) -> Accounts {
        Accounts { list }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.list.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.name == name)
    }

    fn names(&self) -> String {
        self.list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The accounts a statement reads: those it names (each must exist, and be one the user
    /// may use: 42501 otherwise), else all the user may use.
    pub fn chosen(&self, chosen: Chosen) -> Result<Vec<&Account>, Error> {
        match chosen.named {
            None => Ok(self.list.iter().filter(|a| chosen.allows(&a.name)).collect()),
            Some(names) => names
                .iter()
                .map(|n| match self.get(n) {
                    None => Err(Error::invalid_parameter(
                        format!("account '{n}' is not configured"),
                        Some(format!("configured accounts are {}", self.names())),
                    )),
                    Some(_) if !chosen.allows(n) => Err(Error::PermissionDenied(format!(
                        "permission denied for account '{n}': this user may use {}",
                        chosen.allowed.unwrap_or_default().join(", ")
                    ))),
                    Some(a) => Ok(a),
                })
                .collect(),
        }
    }

    /// The one account a mutation goes to: the one it names, or the only one there is (of
    /// those the user may use).
    pub fn for_mutation(&self, chosen: Chosen) -> Result<&Account, Error> {
        let usable = self.chosen(Chosen { named: None, ..chosen })?;
        let names = usable.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ");
        match chosen.named {
            Some([one]) => Ok(self.chosen(Chosen {
                named: Some(std::slice::from_ref(one)),
                ..chosen
            })?[0]),
            Some(_) => Err(Error::MissingFilter {
                message: "a mutation goes to one account; name exactly one".into(),
                hint: Some(format!("accounts are {names}")),
            }),
            None if usable.len() == 1 => Ok(usable[0]),
            None => Err(Error::MissingFilter {
                message: format!("this server reads {} accounts; say which one the mutation is for", usable.len()),
                hint: Some(format!(
                    "add account = '…' (INSERT: an account column; UPDATE/DELETE: WHERE account = '…'); accounts are {names}"
                )),
            }),
        }
    }

    /// The places a read calls. `regions`: the statement's; `session`: the session's
    /// `cloudpg.regions` when it set one; `all_regions`: what `"*"` means for a read without a
    /// schema to say where its type exists.
    ///
    /// A global type (by its name, schema or not) is read once per account, from its home
    /// region, whose rows are the only ones it has. A table's type is read only where it
    /// exists, and under `"*"` a region the account may not have enabled is optional (skipped
    /// with a NOTICE when it answers so); reads without a schema leave opt-in regions out of
    /// `"*"` instead.
    pub fn places(
        &self,
        of: ReadOf,
        accounts: Chosen,
        regions: Option<&[String]>,
        session: Option<&DefaultRegions>,
        all_regions: &[String],
    ) -> Result<Vec<ScanPlace>, Error> {
        let type_name = match of {
            ReadOf::Type(t) => Some(t.type_name.as_str()),
            ReadOf::TypeNamed(name) => Some(name),
            ReadOf::NoType => None,
        };
        let global = type_name.is_some_and(is_global_type);
        let exists = |r: &str| match of {
            ReadOf::Type(t) => t.exists_in(r),
            _ => true,
        };
        let home = |r: &str| type_name.map_or(r.to_string(), |t| home_of(t, r).to_string());
        let mut out: Vec<ScanPlace> = Vec::new();
        for account in self.chosen(accounts)? {
            let place = |region: String, optional: bool| ScanPlace {
                place: Place::new(account.name.clone(), region),
                optional,
            };
            let candidates: Vec<ScanPlace> = match (regions, session.unwrap_or(&account.regions)) {
                // Named regions: a global type's rows are those of its home region.
                (Some(named), _) => named
                    .iter()
                    .filter(|r| exists(r) && (!global || home(r) == **r))
                    .map(|r| place(r.clone(), false))
                    .collect(),
                (None, DefaultRegions::List(list)) => list.iter().filter(|r| exists(r)).map(|r| place(home(r), false)).collect(),
                (None, DefaultRegions::All) => {
                    let in_partition = |r: &&String| Partition::of(r) == account.partition;
                    match of {
                        // A global type's home region is always enabled.
                        ReadOf::Type(t) => t.regions.iter().filter(in_partition).map(|r| place(home(r), !global)).collect(),
                        _ => all_regions
                            .iter()
                            .filter(in_partition)
                            .filter(|r| !resource_schemas::geography::is_opt_in(r))
                            .map(|r| place(home(r), false))
                            .collect(),
                    }
                }
            };
            for c in candidates {
                if !out.iter().any(|o| o.place == c.place) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

/// What a read is about, for choosing the places it calls.
#[derive(Debug, Clone, Copy)]
pub enum ReadOf<'a> {
    /// A table's type, whose schema says where it exists.
    Type(&'a ResourceType),
    /// A type read by name (`awscc.cloudcontrol.resources`): no schema need exist.
    TypeNamed(&'a str),
    /// No type (ListResourceRequests).
    NoType,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts::new(vec![
            Account::new(
                "prod",
                "profile prod",
                DefaultRegions::List(vec!["us-east-1".into(), "eu-west-1".into()]),
            ),
            Account::new("dev", "profile dev", DefaultRegions::All),
        ])
    }

    fn resource(name: &str) -> &'static ResourceType {
        resource_schemas::Registry::shared().unwrap().get(name).unwrap()
    }

    fn places(p: &[ScanPlace]) -> Vec<String> {
        p.iter().map(|p| format!("{}/{}", p.place.account, p.place.region)).collect()
    }

    #[test]
    fn each_account_reads_its_own_regions_unless_told_otherwise() {
        let a = accounts();
        let vpc = resource("AWS::EC2::VPC");
        let all = a.places(ReadOf::Type(vpc), Chosen::default(), None, None, &[]).unwrap();
        assert_eq!(places(&all[..2]), vec!["prod/us-east-1", "prod/eu-west-1"]);
        let dev: Vec<&ScanPlace> = all.iter().filter(|p| p.place.account == "dev").collect();
        assert!(
            dev.len() > 20 && dev.iter().all(|p| p.optional && !p.place.region.starts_with("cn-")),
            "{dev:?}"
        );
        let dev = ["dev".to_string()];
        let named = a
            .places(ReadOf::Type(vpc), named_(&dev), Some(&["eu-west-1".into()]), None, &[])
            .unwrap();
        assert_eq!(places(&named), vec!["dev/eu-west-1"]);
        let session = a
            .places(
                ReadOf::Type(vpc),
                Chosen::default(),
                None,
                Some(&DefaultRegions::List(vec!["ap-south-1".into()])),
                &[],
            )
            .unwrap();
        assert_eq!(places(&session), vec!["prod/ap-south-1", "dev/ap-south-1"]);
        let e = a
            .places(ReadOf::Type(vpc), named_(&["nope".to_string()]), None, None, &[])
            .unwrap_err();
        assert!(e.hint().unwrap().contains("prod, dev"), "{e:?}");
    }

    fn named_(names: &[String]) -> Chosen<'_> {
        Chosen {
            named: Some(names),
            allowed: None,
        }
    }

    #[test]
    fn a_user_reads_and_changes_only_the_accounts_it_may_use() {
        let a = accounts();
        let vpc = resource("AWS::EC2::VPC");
        let only_dev = ["dev".to_string()];
        let mine = Chosen {
            named: None,
            allowed: Some(&only_dev),
        };
        let all = a.places(ReadOf::Type(vpc), mine, Some(&["us-east-1".into()]), None, &[]).unwrap();
        assert_eq!(places(&all), vec!["dev/us-east-1"]);
        let prod = ["prod".to_string()];
        let e = a
            .places(
                ReadOf::Type(vpc),
                Chosen {
                    named: Some(&prod),
                    ..mine
                },
                None,
                None,
                &[],
            )
            .unwrap_err();
        assert_eq!(e.sqlstate(), "42501");
        assert_eq!(a.for_mutation(mine).unwrap().name, "dev", "the one account the user may use");
    }

    #[test]
    fn global_types_are_read_once_per_account_from_the_home_region() {
        let a = accounts();
        let roles = resource("AWS::IAM::Role");
        let all = a.places(ReadOf::Type(roles), Chosen::default(), None, None, &[]).unwrap();
        assert_eq!(places(&all), vec!["prod/us-east-1", "dev/us-east-1"]);
        assert!(all.iter().all(|p| !p.optional));
        let elsewhere = a
            .places(ReadOf::Type(roles), Chosen::default(), Some(&["eu-west-1".into()]), None, &[])
            .unwrap();
        assert!(elsewhere.is_empty(), "rows of a global type are in its home region only");
    }

    #[test]
    fn types_read_by_name_and_reads_of_no_type_go_where_the_accounts_read() {
        let a = accounts();
        let all = [
            "us-east-1".to_string(),
            "eu-west-1".to_string(),
            "af-south-1".to_string(),
            "cn-north-1".to_string(),
        ];
        let dev = ["dev".to_string()];
        // `"*"`: the partition's regions without opt-in ones; a global type by name, once.
        let any = a.places(ReadOf::NoType, named_(&dev), None, None, &all).unwrap();
        assert_eq!(places(&any), vec!["dev/us-east-1", "dev/eu-west-1"]);
        let roles = a
            .places(ReadOf::TypeNamed("AWS::IAM::Role"), named_(&dev), None, None, &all)
            .unwrap();
        assert_eq!(places(&roles), vec!["dev/us-east-1"]);
        let elsewhere = a
            .places(
                ReadOf::TypeNamed("AWS::IAM::Role"),
                Chosen::default(),
                Some(&["eu-west-1".into()]),
                None,
                &all,
            )
            .unwrap();
        assert!(elsewhere.is_empty());
        let private = a
            .places(ReadOf::TypeNamed("Acme::Thing::Widget"), Chosen::default(), None, None, &all)
            .unwrap();
        assert_eq!(&places(&private)[..2], ["prod/us-east-1", "prod/eu-west-1"]);
        assert!(private.iter().all(|p| !p.optional));
    }

    #[test]
    fn a_mutation_names_its_account_when_there_are_several() {
        let a = accounts();
        assert_eq!(a.for_mutation(named_(&["dev".to_string()])).unwrap().name, "dev");
        let e = a.for_mutation(Chosen::default()).unwrap_err();
        assert_eq!(e.sqlstate(), "42P10");
        assert!(e.hint().unwrap().contains("prod, dev"));
        let single = Accounts::new(vec![Account::new("default", "default credential chain", DefaultRegions::All)]);
        assert_eq!(single.for_mutation(Chosen::default()).unwrap().name, "default");
    }
}
