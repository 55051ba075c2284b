//! `cloudpg catalog` as a user runs it: the seed pages' columns, counts, and bad names.

use std::collections::BTreeSet;
use std::process::Command;

fn cloudpg(args: &[&str]) -> (bool, String, String) {
    // The shipped schemas only: no schema directory of the user's is read.
    let out = Command::new(env!("CARGO_BIN_EXE_cloudpg"))
        .args(args)
        .env("CLOUDPG_SCHEMAS__DIRECTORY", "off")
        .output()
        .expect("cloudpg runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The column names of a `catalog describe` output.
fn described_columns(table: &str) -> BTreeSet<String> {
    let (ok, out, err) = cloudpg(&["catalog", "describe", table]);
    assert!(ok, "describe {table} failed: {err}");
    let section = out.split("\nColumns\n").nth(1).expect("a Columns section");
    section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The seed page's columns, plus what today's schema adds (read-only properties the older page
/// did not show), the `account` column cloudpg adds to every table, and the `identifier` and
/// `_extra` columns it adds to every full table (and `tag_map` to every full table with tags).
fn assert_seed_columns(table: &str, seed: &[&str], additions: &[&str]) {
    let mut expected: BTreeSet<String> = set(seed).union(&set(additions)).cloned().collect();
    expected.insert("account".to_string());
    if !table.ends_with("_list_only") {
        expected.insert("_extra".to_string());
    }
    assert_eq!(described_columns(table), expected, "{table}");
}

#[test]
fn seed_000_instance_connect_endpoints() {
    assert_seed_columns(
        "awscc.ec2.instance_connect_endpoints",
        &[
            "id",
            "subnet_id",
            "client_token",
            "preserve_client_ip",
            "tags",
            "security_group_ids",
            "region",
        ],
        &[
            "availability_zone",
            "availability_zone_id",
            "created_at",
            "instance_connect_endpoint_arn",
            "network_interface_ids",
            "owner_id",
            "public_dns_names",
            "state",
            "state_message",
            "vpc_id",
            "identifier",
            "tag_map",
        ],
    );
}

#[test]
fn seed_001_connect_instances() {
    assert_seed_columns(
        "aws.connect.instances",
        &[
            "id",
            "arn",
            "identity_management_type",
            "instance_alias",
            "created_time",
            "service_role",
            "instance_status",
            "directory_id",
            "attributes",
            "tags",
            "region",
        ],
        &["identifier", "tag_map"],
    );
}

#[test]
fn seed_002_events_connections() {
    assert_seed_columns(
        "awscc.events.connections",
        &[
            "name",
            "arn",
            "arn_for_policy",
            "secret_arn",
            "description",
            "authorization_type",
            "auth_parameters",
            "invocation_connectivity_parameters",
            "kms_key_identifier",
            "region",
        ],
        &["identifier"],
    );
    assert_seed_columns("awscc.events.connections_list_only", &["name", "region"], &[]);
}

#[test]
fn seed_003_codeconnections_connections() {
    assert_seed_columns("aws.codeconnections.connections_list_only", &["connection_arn", "region"], &[]);
    let full = described_columns("aws.codeconnections.connections");
    assert!(full.contains("connection_arn") && full.contains("region"), "{full:?}");
}

#[test]
fn describe_shows_insert_columns_statements_and_permissions() {
    let (ok, out, _) = cloudpg(&["catalog", "describe", "awscc.ec2.instance_connect_endpoints"]);
    assert!(ok);
    for expected in [
        "Type        AWS::EC2::InstanceConnectEndpoint",
        "Statements  SELECT, INSERT, UPDATE, DELETE",
        "* SubnetId (subnet_id)",
        "  PreserveClientIp (preserve_client_ip)",
        "create  ec2:CreateInstanceConnectEndpoint, ec2:DescribeInstanceConnectEndpoints, ec2:CreateTags, ec2:CreateNetworkInterface, iam:CreateServiceLinkedRole",
        "list    ec2:DescribeInstanceConnectEndpoints",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let (_, out, _) = cloudpg(&["catalog", "describe", "awscc.eks.nodegroups"]);
    assert!(
        out.contains("List needs  WHERE region = 'us-east-1' AND cluster_name = '...'"),
        "{out}"
    );
}

#[test]
fn list_counts_tables_per_service() {
    let (ok, out, _) = cloudpg(&["catalog", "list"]);
    assert!(ok);
    let full = out
        .lines()
        .filter(|l| l.starts_with("awscc.") && !l.split_whitespace().next().unwrap().ends_with("_list_only"))
        .count();
    let list_only = out
        .lines()
        .filter(|l| l.split_whitespace().next().is_some_and(|n| n.ends_with("_list_only")))
        .count();
    println!("catalog list: {full} resource tables, {list_only} _list_only tables");
    assert!(full >= 1700, "{full}");
    assert!(list_only >= 1600, "{list_only}");
    let (ok, out, _) = cloudpg(&["catalog", "list", "--service", "codeconnections"]);
    assert!(ok);
    assert!(
        out.contains("awscc.codeconnections.connections ") && out.contains("awscc.codeconnections.connections_list_only"),
        "{out}"
    );
}

#[test]
fn unknown_names_get_the_closest_ones() {
    let (ok, _, err) = cloudpg(&["catalog", "describe", "awscc.ec2.instance_connect_endpoint"]);
    assert!(!ok);
    assert!(
        err.contains("relation \"awscc.ec2.instance_connect_endpoint\" does not exist"),
        "{err}"
    );
    assert!(err.contains("\"awscc.ec2.instance_connect_endpoints\""), "{err}");
    let (ok, _, err) = cloudpg(&["catalog", "list", "--service", "ec3"]);
    assert!(!ok);
    assert!(err.contains("schema \"ec3\" does not exist") && err.contains("\"ec2\""), "{err}");
}

#[test]
fn iam_policy_lists_what_the_chosen_tables_need() {
    let (ok, out, err) = cloudpg(&["catalog", "iam-policy", "--read-only", "--service", "ec2"]);
    assert!(ok, "{err}");
    let policy: serde_json::Value = serde_json::from_str(&out).expect("the policy is JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let actions: Vec<&str> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().filter_map(|a| a.as_str()))
        .collect();
    for needed in [
        "cloudformation:ListResources",
        "cloudformation:GetResource",
        "ec2:DescribeVpcs",
        "ec2:DescribeInstances",
    ] {
        assert!(actions.contains(&needed), "{needed} missing from {actions:?}");
    }
    // Create handlers' permissions are left out (some read handlers declare a write action of
    // their own, which stays: Cloud Control needs it to read).
    for create_only in ["cloudformation:CreateResource", "ec2:CreateVpc", "ec2:RunInstances"] {
        assert!(!actions.contains(&create_only), "read-only, but {create_only}: {actions:?}");
    }
    let (ok, _, err) = cloudpg(&["catalog", "iam-policy", "--table", "ec2.vpc"]);
    assert!(!ok && err.contains("ec2.vpcs"), "an unknown table is named with the closest: {err}");
}
