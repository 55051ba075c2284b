//! The names StackQL's awscc provider gives tables and columns, so SQL written for StackQL
//! runs unchanged. They are accepted as aliases of ours; catalogs list only ours.
//!
//! StackQL derives them with its own rules, which split acronyms differently from
//! [`super::naming`]: `GraphQLApi` is `graphql_apis` (ours `graph_ql_apis`), `VPNGatewayId` is
//! `v_pn_gateway_id` (ours `vpn_gateway_id`), `Index` is `indices`. The rules here reproduce
//! its generator's: a table is the type's resource name snake-cased by one rule and
//! pluralised as the npm `pluralize` package does; a column is the property with a list of
//! acronyms folded, then split before every capital that follows a word character, with a
//! few reserved words prefixed by `_`. The node test `tests/node/stackql_names.mjs` checks
//! this against StackQL's own functions over every type.

use std::sync::LazyLock;

use regex::Regex;

/// The table StackQL gives a resource name (the third part of `AWS::EC2::EC2Fleet`).
pub fn table_name(resource_name: &str) -> String {
    plural(&resource_snake_case(resource_name))
}

/// The column StackQL gives a top-level property.
pub fn column_name(property: &str) -> String {
    nested_column_name(&[property])
}

/// The column StackQL gives a nested primary identifier (`Schedule/ScheduleId` →
/// `schedule__schedule_id`): the parts' acronyms folded, joined by `_`, then split as a column.
pub fn nested_column_name(parts: &[&str]) -> String {
    let joined: Vec<String> = parts.iter().map(|p| fold_acronyms(p)).collect();
    let column = column_snake_case(&joined.join("_"));
    if RESERVED_COLUMNS.contains(&column.as_str()) {
        format!("_{column}")
    } else {
        column
    }
}

/// Column names StackQL prefixes with `_` because its SQL backends reserve them.
const RESERVED_COLUMNS: &[&str] = &["values", "schema", "database", "format", "update", "force", "match"];

/// `LocationFSxLustre` → `locationf_sx_lustre`: a run of capitals before a capitalised word
/// splits before that word's capital (and both lower-case), then a lower-case letter before
/// a capital splits; runs of `_` collapse.
fn resource_snake_case(name: &str) -> String {
    static RUN_BEFORE_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new("([A-Z]+)([A-Z][a-z])").expect("valid regex"));
    static LOWER_UPPER: LazyLock<Regex> = LazyLock::new(|| Regex::new("([a-z])([A-Z])").expect("valid regex"));
    let step = RUN_BEFORE_WORD.replace_all(name, |c: &regex::Captures| {
        format!("{}_{}", c[1].to_ascii_lowercase(), c[2].to_ascii_lowercase())
    });
    let step = LOWER_UPPER.replace_all(&step, "${1}_${2}").to_ascii_lowercase();
    let mut out = String::with_capacity(step.len());
    for c in step.chars() {
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out
}

/// Acronyms StackQL writes as one capitalised word before splitting, applied in this order,
/// each to the result of the ones before (so `IPAM` is already `IpAM` when its own turn comes).
const ACRONYMS: &[(&str, &str)] = &[
    ("DB", "Db"),
    ("ARN", "Arn"),
    ("WAN", "Wan"),
    ("URL", "Url"),
    ("VPCDHCP", "VpcDhcp"),
    ("EC2Fleet", "Ec2_Fleet"),
    ("VPC", "Vpc"),
    ("DHCP", "Dhcp"),
    ("DNS", "Dns"),
    ("IP", "Ip"),
    ("IAM", "Iam"),
    ("IPAM", "Ipam"),
    ("TLS", "Tls"),
    ("SSM", "Ssm"),
    ("CNAME", "Cname"),
    ("SQ", "Sq"),
    ("ML", "Ml"),
    ("SKU", "Sku"),
    ("KMS", "Kms"),
    ("OK", "Ok"),
    ("CA", "Ca"),
    ("ID", "Id"),
    ("TTL", "Ttl"),
    ("URI", "Uri"),
    ("LB", "Lb"),
    ("SNS", "Sns"),
    ("AWS", "Aws"),
    ("ACL", "Acl"),
    ("AZ", "Az"),
    ("API", "Api"),
    ("MSK", "Msk"),
    ("ECS", "Ecs"),
    ("EBS", "Ebs"),
    ("CWE", "Cwe"),
    ("SSE", "Sse"),
    ("HPO", "Hpo"),
    ("LF", "Lf"),
    ("WAL", "Wal"),
    ("MFA", "Mfa"),
    ("OAuth", "Oauth"),
];

fn fold_acronyms(property: &str) -> String {
    ACRONYMS
        .iter()
        .fold(property.to_string(), |name, (from, to)| name.replace(from, to))
}

/// `VPNGatewayId` → `v_pn_gateway_id`: scanning left to right, a word character followed by
/// a capital becomes the pair split by `_`; the pair is consumed, so in `VPN` only `VP`
/// splits. Then everything is lower-cased.
fn column_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(chars.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match chars.get(i + 1) {
            Some(&next) if (c.is_ascii_alphanumeric() || c == '_') && next.is_ascii_uppercase() => {
                out.push(c);
                out.push('_');
                out.push(next);
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.to_lowercase()
}

/// Whole names whose plural is irregular.
const IRREGULAR: &[(&str, &str)] = &[
    ("schema", "schemata"),
    ("person", "people"),
    ("child", "children"),
    ("foot", "feet"),
    ("tooth", "teeth"),
    ("goose", "geese"),
    ("ox", "oxen"),
    ("quiz", "quizzes"),
    ("echo", "echoes"),
    ("canvas", "canvases"),
    ("axe", "axes"),
    ("die", "dice"),
    ("valve", "valves"),
    ("groove", "grooves"),
];

/// Whole names that are their own plural.
const UNCOUNTABLE: &[&str] = &[
    "advice",
    "aircraft",
    "analytics",
    "audio",
    "chassis",
    "commerce",
    "equipment",
    "firmware",
    "hardware",
    "information",
    "media",
    "news",
    "research",
    "series",
    "software",
    "staff",
    "traffic",
];

/// Endings that are their own plural (`…fish`, `…sheep`, `…ious`, Chinese-style `…ese`).
const UNCOUNTABLE_ENDINGS: &[&str] = &["deer", "fish", "measles", "pox", "sheep", "ois", "ous", "ius"];

/// The plural StackQL's generator gets from npm `pluralize` for a snake_case resource name:
/// whole-name exceptions first, then the ending decides.
fn plural(name: &str) -> String {
    if UNCOUNTABLE.contains(&name) || UNCOUNTABLE_ENDINGS.iter().any(|e| name.ends_with(e)) || ends_in_plain_ese(name) {
        return name.to_string();
    }
    if let Some((_, plural)) = IRREGULAR.iter().find(|(single, _)| *single == name) {
        return plural.to_string();
    }
    plural_by_ending(name)
}

fn ends_in_plain_ese(name: &str) -> bool {
    name.strip_suffix("ese")
        .and_then(|stem| stem.chars().last())
        .is_some_and(|c| !"aeiou".contains(c))
}

/// (ending, replacement of that ending), the first that matches wins.
const ENDINGS: &[(&str, &str)] = &[
    ("man", "men"),
    ("men", "men"),
    ("matrix", "matrices"),
    ("appendix", "appendices"),
    ("index", "indices"),
    ("vertex", "vertices"),
    ("codex", "codices"),
    ("mouse", "mice"),
    ("datum", "data"),
    ("data", "data"),
    ("stratum", "strata"),
    ("criterion", "criteria"),
    ("criteria", "criteria"),
    ("phenomenon", "phenomena"),
    ("axis", "axes"),
    ("testis", "testes"),
    ("knife", "knives"),
    ("wife", "wives"),
    ("life", "lives"),
    ("leaf", "leaves"),
    ("loaf", "loaves"),
    ("hoof", "hooves"),
    ("half", "halves"),
    ("hero", "heroes"),
    ("potato", "potatoes"),
    ("tomato", "tomatoes"),
    ("alias", "aliases"),
    ("focus", "foci"),
    ("radius", "radii"),
    ("nucleus", "nuclei"),
    ("syllabus", "syllabi"),
    ("stimulus", "stimuli"),
    ("terminus", "termini"),
    ("locus", "loci"),
    ("cactus", "cacti"),
    ("fungus", "fungi"),
    ("virus", "viri"),
    ("alumnus", "alumni"),
    ("alumna", "alumnae"),
    ("vertebra", "vertebrae"),
];

fn plural_by_ending(name: &str) -> String {
    if let Some((stem, plural)) = ENDINGS
        .iter()
        .find_map(|(ending, plural)| name.strip_suffix(ending).map(|stem| (stem, plural)))
    {
        return format!("{stem}{plural}");
    }
    if let Some(stem) = name.strip_suffix("sis") {
        return format!("{stem}ses");
    }
    if ["x", "ch", "ss", "sh", "zz"].iter().any(|e| name.ends_with(e)) {
        return format!("{name}es");
    }
    if name.strip_suffix("us").is_some_and(|stem| !stem.ends_with(['a', 'o', 'u'])) {
        return format!("{name}es");
    }
    if ["tlas", "tmas", "gas", "ris"].iter().any(|e| name.ends_with(e)) {
        return format!("{name}es");
    }
    if let Some(stem) = name.strip_suffix('y') {
        // `policy` → `policies`, `soliloquy` → `soliloquies`; `key` → `keys`.
        if stem.ends_with("qu") || !stem.ends_with(['a', 'e', 'i', 'o', 'u', 'y']) {
            return format!("{stem}ies");
        }
    }
    if name.ends_with('s') {
        // `settings`, `lens`: a name ending in s takes no other.
        return name.to_string();
    }
    format!("{name}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (resource name, StackQL's table) for names where acronyms, digits, V2 and plurals
    /// trip simpler rules; the expected names are StackQL's published ones.
    const TABLES: &[(&str, &str)] = &[
        ("GraphQLApi", "graphql_apis"),
        ("GraphQLSchema", "graphql_schemas"),
        ("Index", "indices"),
        ("PlaceIndex", "place_indices"),
        ("CollectionIndex", "collection_indices"),
        ("Schema", "schemata"),
        ("LocationS3", "location_s3s"),
        ("LocationFSxLustre", "locationf_sx_lustres"),
        ("LocationFSxONTAP", "locationf_sx_ontaps"),
        ("LocationFSxOpenZFS", "locationf_sx_open_zfs"),
        ("LocationFSxWindows", "locationf_sx_windows"),
        ("EC2Fleet", "ec2fleets"),
        ("EnvironmentEC2", "environment_ec2s"),
        ("VirtualMFADevice", "virtualmfa_devices"),
        ("DomainNameV2", "domain_name_v2s"),
        ("BasePathMappingV2", "base_path_mapping_v2s"),
        ("TopicV2", "topic_v2s"),
        ("HubV2", "hub_v2s"),
        ("IPv4Pool", "i_pv4pools"),
        ("OAuth2CredentialProvider", "o_auth2credential_providers"),
        ("OAuthClientApplication", "o_auth_client_applications"),
        ("UserPoolUICustomizationAttachment", "user_poolui_customization_attachments"),
        ("LocalGatewayRouteTableVPCAssociation", "local_gateway_route_tablevpc_associations"),
        ("S3AccessPointAttachment", "s3access_point_attachments"),
        ("CustomDBEngineVersion", "customdb_engine_versions"),
        ("QEV2IdcApplication", "qev2idc_applications"),
        ("ResolverDNSSECConfig", "resolverdnssec_configs"),
        ("StorageLens", "storage_lens"),
        ("Lens", "lens"),
        ("InfluxDBCluster", "influxdb_clusters"),
        ("WebACLAssociation", "webacl_associations"),
        ("Policy", "policies"),
        ("Alias", "aliases"),
        ("Analysis", "analyses"),
        ("Gateway", "gateways"),
        ("Proxy", "proxies"),
        ("AccessPolicy", "access_policies"),
        ("Instance", "instances"),
        ("VPC", "vpcs"),
        ("DBInstance", "db_instances"),
        ("Address", "addresses"),
        ("Status", "statuses"),
        ("Settings", "settings"),
        ("Hash", "hashes"),
        ("Match", "matches"),
        ("Box", "boxes"),
        ("Dataset", "datasets"),
        ("Key", "keys"),
    ];

    #[test]
    fn table_names_follow_stackql() {
        for (resource, expected) in TABLES {
            assert_eq!(table_name(resource), *expected, "{resource}");
        }
    }

    /// (property, StackQL's column).
    const COLUMNS: &[(&str, &str)] = &[
        ("VPNGatewayId", "v_pn_gateway_id"),
        ("AIGuardrailId", "a_iguardrail_id"),
        ("EC2InboundPermissions", "e_c2_inbound_permissions"),
        ("EIP", "e_ip"),
        ("MaxACU", "max_ac_u"),
        ("SamlProviderUUID", "saml_provider_uu_id"),
        ("ClientIdsForOIDC", "client_ids_for_oid_c"),
        ("VpcId", "vpc_id"),
        ("VPCId", "vpc_id"),
        ("DBInstanceIdentifier", "db_instance_identifier"),
        ("Arn", "arn"),
        ("KmsKeyArn", "kms_key_arn"),
        ("IPAMPoolId", "ip_am_pool_id"),
        ("EC2FleetId", "ec2__fleet_id"),
        ("Ipv6CidrBlock", "ipv6_cidr_block"),
        ("SSESpecification", "sse_specification"),
        ("Values", "_values"),
        ("Schema", "_schema"),
        ("Format", "_format"),
        ("Tags", "tags"),
        ("Identifier", "identifier"),
    ];

    #[test]
    fn nested_identifiers_are_named_by_their_path() {
        assert_eq!(nested_column_name(&["Schedule", "ScheduleId"]), "schedule__schedule_id");
        assert_eq!(
            nested_column_name(&["StorageLensConfiguration", "Id"]),
            "storage_lens_configuration__id"
        );
    }

    #[test]
    fn column_names_follow_stackql() {
        for (property, expected) in COLUMNS {
            assert_eq!(column_name(property), *expected, "{property}");
        }
    }
}
