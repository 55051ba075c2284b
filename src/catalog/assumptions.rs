//! What the catalog assumes about AWS, checked against a real account
//! (`cloudpg catalog live-check`, read-only and opt-in; `scripts/live-check.sh`): whether a
//! type exists in a region, whether its list needs parent values, whether it answers the same
//! in every region (global). The shipped data says so from schemas; an account says so by how
//! ListResources answers. Where they disagree, the finding (with the call it rests on) goes to
//! `facts.json` in the schema directory, which the server applies at startup.

use std::collections::{BTreeMap, BTreeSet};

use resource_schemas::{Operation, Registry, ResourceType};
use serde::{Deserialize, Serialize};

use crate::cloudcontrol::{ListRequest, Place, ResourceApi};
use crate::error::Error;

/// The facts file's name inside the schema directory.
pub const FACTS_FILE: &str = "facts.json";

/// Types always checked, whatever the sample: one of each kind of assumption.
const ALWAYS: &[&str] = &[
    "AWS::IAM::Role",
    "AWS::S3::Bucket",
    "AWS::EC2::VPC",
    "AWS::EKS::Nodegroup",
    "AWS::Logs::LogGroup",
];

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The type exists in the region (Cloud Control knows it there).
    ExistsInRegion,
    /// ListResources needs parent values in `ResourceModel`.
    ListNeedsParent,
    /// The type lists the same resources from every region.
    Global,
}

impl Fact {
    fn describe(self, holds: bool) -> &'static str {
        match (self, holds) {
            (Fact::ExistsInRegion, true) => "exists in the region",
            (Fact::ExistsInRegion, false) => "does not exist in the region",
            (Fact::ListNeedsParent, true) => "needs parent values to list",
            (Fact::ListNeedsParent, false) => "lists without parent values",
            (Fact::Global, true) => "is global (the same resources from every region)",
            (Fact::Global, false) => "is regional",
        }
    }
}

/// Where the catalog and AWS disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub type_name: String,
    pub account: String,
    pub region: String,
    pub fact: Fact,
    /// What the shipped data assumes.
    pub catalog: bool,
    /// What AWS's answer shows.
    pub aws: bool,
    /// The call the finding rests on: operation, place, time and answer.
    pub source: String,
}

impl Finding {
    pub fn describe(&self) -> String {
        format!(
            "{} in {} of account {}: the catalog assumes it {}, AWS shows it {} ({})",
            self.type_name,
            self.region,
            self.account,
            self.fact.describe(self.catalog),
            self.fact.describe(self.aws),
            self.source
        )
    }
}

/// `facts.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsFile {
    pub format: u32,
    pub checked_at: String,
    pub findings: Vec<Finding>,
}

/// How one first ListResources page answered.
#[derive(Debug, Clone)]
pub struct Observation {
    pub type_name: String,
    pub account: String,
    pub region: String,
    pub at: String,
    /// The identifiers of the first page, or AWS's error code and message.
    pub outcome: Result<BTreeSet<String>, (String, String)>,
}

impl Observation {
    fn source(&self) -> String {
        let answer = match &self.outcome {
            Ok(ids) => format!("{} identifiers", ids.len()),
            Err((code, message)) => format!("{code}: {message}"),
        };
        format!(
            "ListResources in {} of account {} at {}: {answer}",
            self.region, self.account, self.at
        )
    }

    fn not_found(&self) -> bool {
        matches!(&self.outcome, Err((code, _)) if code.trim_end_matches("Exception") == "TypeNotFound")
    }

    fn wants_model(&self) -> bool {
        matches!(&self.outcome, Err((code, message))
            if code.trim_end_matches("Exception") == "InvalidRequest" && message.contains("ResourceModel"))
    }
}

/// Up to `n` listable types: those `patterns` name, else the always-checked ones and an even
/// spread over the rest by name (the same sample on every run).
pub fn sample<'a>(registry: &'a Registry, n: usize, patterns: &[String]) -> Vec<&'a ResourceType> {
    let listable: Vec<&ResourceType> = registry.types().filter(|t| t.supports(Operation::List)).collect();
    if !patterns.is_empty() {
        return listable
            .into_iter()
            .filter(|t| patterns.iter().any(|p| super::model::glob(p, &t.type_name)))
            .take(n)
            .collect();
    }
    let mut chosen: Vec<&ResourceType> = ALWAYS.iter().filter_map(|name| registry.get(name)).take(n).collect();
    let rest: Vec<&ResourceType> = listable.into_iter().filter(|t| !ALWAYS.contains(&t.type_name.as_str())).collect();
    let wanted = n.saturating_sub(chosen.len());
    if wanted > 0 && !rest.is_empty() {
        let step = (rest.len() / wanted).max(1);
        chosen.extend(rest.iter().step_by(step).take(wanted));
    }
    chosen
}

/// The findings a set of observations supports, against `registry`'s assumptions. An answer
/// that shows nothing about a fact (access denied, throttling) decides nothing.
pub fn judge(registry: &Registry, observations: &[Observation]) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |o: &Observation, fact, catalog, aws| Finding {
        type_name: o.type_name.clone(),
        account: o.account.clone(),
        region: o.region.clone(),
        fact,
        catalog,
        aws,
        source: o.source(),
    };
    for o in observations {
        let Some(t) = registry.get(&o.type_name) else { continue };
        let exists = t.exists_in(&o.region);
        let aws_exists = match &o.outcome {
            _ if o.not_found() => Some(false),
            Ok(_) => Some(true),
            _ if o.wants_model() => Some(true),
            _ => None,
        };
        if let Some(aws) = aws_exists.filter(|aws| *aws != exists) {
            out.push(finding(o, Fact::ExistsInRegion, exists, aws));
        }
        let needs_parent = t.list_handler_schema().is_some_and(|hs| hs.demands_model());
        let aws_needs = match &o.outcome {
            Ok(_) => Some(false),
            _ if o.wants_model() => Some(true),
            _ => None,
        };
        if let Some(aws) = aws_needs.filter(|aws| *aws != needs_parent) {
            out.push(finding(o, Fact::ListNeedsParent, needs_parent, aws));
        }
    }
    out.extend(judge_global(observations));
    out
}

/// A type is global when two regions of one account list the same, non-empty identifiers;
/// regional when they list different ones.
fn judge_global(observations: &[Observation]) -> Vec<Finding> {
    let mut by_type: BTreeMap<(&str, &str), Vec<&Observation>> = BTreeMap::new();
    for o in observations.iter().filter(|o| matches!(&o.outcome, Ok(ids) if !ids.is_empty())) {
        by_type.entry((o.type_name.as_str(), o.account.as_str())).or_default().push(o);
    }
    let mut out = Vec::new();
    for ((type_name, _), seen) in by_type {
        let [first, second, ..] = seen.as_slice() else { continue };
        let (Ok(a), Ok(b)) = (&first.outcome, &second.outcome) else {
            continue;
        };
        let aws = a == b;
        let catalog = resource_schemas::geography::is_global_type(type_name);
        if aws != catalog {
            out.push(Finding {
                type_name: type_name.to_string(),
                account: first.account.clone(),
                region: format!("{} and {}", first.region, second.region),
                fact: Fact::Global,
                catalog,
                aws,
                source: format!("{}; {}", first.source(), second.source()),
            });
        }
    }
    out
}

/// Lists the first page of each type in each place, a few at a time, uncached.
pub async fn observe(api: &dyn ResourceApi, types: &[&ResourceType], places: &[Place]) -> Vec<Observation> {
    use futures::stream::{self, StreamExt};
    let work: Vec<(String, Place)> = places
        .iter()
        .flat_map(|p| types.iter().map(move |t| (t.type_name.clone(), p.clone())))
        .collect();
    stream::iter(work)
        .map(|(type_name, place)| async move {
            let request = ListRequest {
                place: place.clone(),
                type_name: type_name.clone(),
                model: None,
            };
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let outcome = match api.list_page(&request, None).await {
                Ok(page) => Ok(page.resources.iter().map(|r| r.identifier.clone()).collect()),
                Err(Error::Aws(e)) => Err((e.code.clone(), e.message.clone())),
                Err(e) => Err(("Error".to_string(), e.to_string())),
            };
            Observation {
                type_name,
                account: place.account.clone(),
                region: place.region.clone(),
                at,
                outcome,
            }
        })
        .buffer_unordered(4)
        .collect()
        .await
}

/// Every configured account in each of its default regions (`"*"`: every region of its
/// partition the shipped data knows).
pub fn places(accounts: &super::accounts::Accounts, registry: &Registry) -> Vec<Place> {
    let mut out = Vec::new();
    for a in accounts.iter() {
        let regions: Vec<String> = match &a.regions {
            crate::config::DefaultRegions::List(list) => list.clone(),
            crate::config::DefaultRegions::All => registry
                .regions
                .iter()
                .filter(|r| resource_schemas::geography::Partition::of(r) == a.partition)
                .cloned()
                .collect(),
        };
        out.extend(regions.into_iter().map(|r| Place::new(&a.name, &r)));
    }
    out
}

/// The live check: observe, judge, and the facts file to write.
pub async fn live_check(api: &dyn ResourceApi, registry: &Registry, types: &[&ResourceType], places: &[Place]) -> FactsFile {
    let observations = observe(api, types, places).await;
    let mut findings = judge(registry, &observations);
    findings.sort_by(|a, b| (&a.type_name, &a.region, a.fact).cmp(&(&b.type_name, &b.region, b.fact)));
    FactsFile {
        format: 1,
        checked_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(type_name: &str, region: &str, outcome: Result<&[&str], (&str, &str)>) -> Observation {
        Observation {
            type_name: type_name.into(),
            account: "prod".into(),
            region: region.into(),
            at: "2026-12-02T00:00:00Z".into(),
            outcome: outcome
                .map(|ids| ids.iter().map(|s| s.to_string()).collect())
                .map_err(|(c, m)| (c.to_string(), m.to_string())),
        }
    }

    #[test]
    fn answers_decide_only_what_they_show() {
        let registry = Registry::shipped().unwrap();
        let findings = judge(
            registry,
            &[
                // Agrees: exists, lists without parents.
                seen("AWS::EC2::VPC", "us-east-1", Ok(&["vpc-1"])),
                // The schema data says it exists here; AWS does not know it.
                seen(
                    "AWS::EC2::VPC",
                    "eu-west-1",
                    Err(("TypeNotFoundException", "The type 'AWS::EC2::VPC' cannot be found.")),
                ),
                // Needs a parent per the schema, lists without one.
                seen("AWS::EKS::Nodegroup", "us-east-1", Ok(&[])),
                // Access denied decides nothing.
                seen("AWS::Logs::LogGroup", "us-east-1", Err(("AccessDeniedException", "no"))),
                // Asks for a model although the schema says none is needed.
                seen(
                    "AWS::Logs::LogGroup",
                    "eu-west-1",
                    Err((
                        "InvalidRequestException",
                        "Missing Or Invalid ResourceModel property in AWS::Logs::LogGroup list handler request input",
                    )),
                ),
                // S3 lists the same buckets everywhere: global, which the catalog does not assume.
                seen("AWS::S3::Bucket", "us-east-1", Ok(&["a", "b"])),
                seen("AWS::S3::Bucket", "eu-west-1", Ok(&["a", "b"])),
            ],
        );
        let summary: Vec<(String, String, Fact, bool)> = findings
            .iter()
            .map(|f| (f.type_name.clone(), f.region.clone(), f.fact, f.aws))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("AWS::EC2::VPC".into(), "eu-west-1".into(), Fact::ExistsInRegion, false),
                ("AWS::EKS::Nodegroup".into(), "us-east-1".into(), Fact::ListNeedsParent, false),
                ("AWS::Logs::LogGroup".into(), "eu-west-1".into(), Fact::ListNeedsParent, true),
                ("AWS::S3::Bucket".into(), "us-east-1 and eu-west-1".into(), Fact::Global, true),
            ]
        );
        assert!(findings[0]
            .source
            .contains("ListResources in eu-west-1 of account prod at 2026-12-02T00:00:00Z: TypeNotFoundException"));
        assert!(findings[0]
            .describe()
            .contains("the catalog assumes it exists in the region, AWS shows it does not exist"));
    }

    #[test]
    fn the_sample_is_stable_and_spread() {
        let registry = Registry::shipped().unwrap();
        let a: Vec<&str> = sample(registry, 30, &[]).iter().map(|t| t.type_name.as_str()).collect();
        let b: Vec<&str> = sample(registry, 30, &[]).iter().map(|t| t.type_name.as_str()).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 30);
        assert!(a.contains(&"AWS::IAM::Role") && a.contains(&"AWS::EKS::Nodegroup"));
        let services: BTreeSet<&str> = a.iter().map(|t| t.split("::").nth(1).unwrap()).collect();
        assert!(services.len() > 15, "{services:?}");
        let logs = sample(registry, 100, &["AWS::Logs::*".to_string()]);
        assert!(logs.iter().all(|t| t.type_name.starts_with("AWS::Logs::")) && !logs.is_empty());
    }
}
