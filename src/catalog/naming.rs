//! How CloudFormation names become SQL names: snake_case with acronyms kept whole, and the
//! English plurals StackQL's table names use (`Policy` → `policies`, `Alias` → `aliases`).
//!
//! Pure functions only; which name wins when two collide is decided in `catalog::model`.

/// Mixed-case words that are one word to a reader but would split under the acronym rule
/// (`OAuth` would become `o_auth`). Replaced by a capitalised form before splitting.
const COMPOUND_WORDS: &[(&str, &str)] = &[("OAuth", "Oauth"), ("IPv4", "Ipv4"), ("IPv6", "Ipv6")];

/// `IAMServiceRole` → `iam_service_role`, `Ipv6CidrBlock` → `ipv6_cidr_block`, `ARNs` → `arns`.
///
/// Word boundaries: before an upper-case letter that follows a lower-case letter or a digit,
/// and before the last capital of an acronym when a lower-case letter follows it (`DBInstance`
/// → `db` + `instance`), except for an acronym's plural `s` (`ARNsList` → `arns` + `list`).
/// Digits stay with the word before them. Other characters separate words.
pub fn snake_case(name: &str) -> String {
    let mut prepared = name.to_string();
    for (from, to) in COMPOUND_WORDS {
        prepared = prepared.replace(from, to);
    }
    let chars: Vec<char> = prepared.chars().collect();
    let mut out = String::with_capacity(chars.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if i > 0 && c.is_ascii_uppercase() && starts_word(&chars, i) && !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

fn starts_word(chars: &[char], i: usize) -> bool {
    let prev = chars[i - 1];
    let next = chars.get(i + 1).copied();
    if prev.is_ascii_lowercase() || prev.is_ascii_digit() {
        return true;
    }
    if prev.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()) {
        // `ARNs` / `IDsList`: the `s` pluralises the acronym, it does not start a word.
        let after = chars.get(i + 2).copied();
        let plural_s = next == Some('s') && after.is_none_or(|a| !a.is_ascii_lowercase());
        return !plural_s;
    }
    false
}

/// Words whose plural is the word itself.
const UNCOUNTABLE: &[&str] = &[
    "data",
    "metadata",
    "information",
    "software",
    "hardware",
    "equipment",
    "feedback",
    "news",
    "series",
    "species",
    "staff",
];

/// Plural of the last word of a snake_case name: `policy` → `policies`, `key` → `keys`,
/// `alias` → `aliases`, `analysis` → `analyses`; already-plural names (`settings`) stay.
pub fn pluralize(snake: &str) -> String {
    let (head, last) = match snake.rfind('_') {
        Some(i) => (&snake[..=i], &snake[i + 1..]),
        None => ("", snake),
    };
    format!("{head}{}", pluralize_word(last))
}

fn pluralize_word(word: &str) -> String {
    if word.is_empty() || UNCOUNTABLE.contains(&word) || word.chars().last().is_some_and(|c| c.is_ascii_digit()) {
        return word.to_string();
    }
    if word == "lens" {
        return "lenses".to_string();
    }
    if let Some(stem) = word.strip_suffix("is") {
        // analysis → analyses, thesis → theses
        return format!("{stem}es");
    }
    if word.ends_with("ss") || word.ends_with("us") || word.ends_with("as") {
        return format!("{word}es");
    }
    if word.ends_with('s') {
        // settings, permissions, options: the CloudFormation name is already plural.
        return word.to_string();
    }
    if word.ends_with('x') || word.ends_with("ch") || word.ends_with("sh") || word.ends_with('z') {
        return format!("{word}es");
    }
    if let Some(stem) = word.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    format!("{word}s")
}

/// Words a PostgreSQL client must quote when used as a column name.
pub fn is_reserved_word(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ];
    RESERVED.contains(&name)
}

/// A column name as a user must type it: quoted when it is a reserved word.
pub fn quote_if_needed(name: &str) -> String {
    if is_reserved_word(name) || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_real_property_names() {
        let cases = [
            ("IAMServiceRole", "iam_service_role"),
            ("DBInstanceIdentifier", "db_instance_identifier"),
            ("KMSKeyId", "kms_key_id"),
            ("SSESpecification", "sse_specification"),
            ("Ipv6CidrBlock", "ipv6_cidr_block"),
            ("VPCId", "vpc_id"),
            ("ARN", "arn"),
            ("EC2InstanceType", "ec2_instance_type"),
            ("S3Bucket", "s3_bucket"),
            ("OAuthParameters", "oauth_parameters"),
            ("PreserveClientIp", "preserve_client_ip"),
            ("ArnForPolicy", "arn_for_policy"),
            ("SubnetId", "subnet_id"),
            ("SecurityGroupIds", "security_group_ids"),
            ("InstanceConnectEndpointArn", "instance_connect_endpoint_arn"),
            ("IdentityManagementType", "identity_management_type"),
            ("InvocationConnectivityParameters", "invocation_connectivity_parameters"),
            ("KmsKeyIdentifier", "kms_key_identifier"),
            ("ConnectionArn", "connection_arn"),
            ("DBClusterIdentifier", "db_cluster_identifier"),
            ("AWSAccountId", "aws_account_id"),
            ("IPv6Address", "ipv6_address"),
            ("Ipv6CidrBlocks", "ipv6_cidr_blocks"),
            ("SSLSupportMethod", "ssl_support_method"),
            ("HTTPSPort", "https_port"),
            ("TTL", "ttl"),
            ("CidrIp", "cidr_ip"),
            ("MaxAllocatedStorage", "max_allocated_storage"),
            ("EnableIAMDatabaseAuthentication", "enable_iam_database_authentication"),
            ("S3KeyPrefix", "s3_key_prefix"),
            ("Route53HealthCheckId", "route53_health_check_id"),
            ("Http2Enabled", "http2_enabled"),
            ("ARNs", "arns"),
            ("SubnetIDs", "subnet_ids"),
            ("RoleARNsList", "role_arns_list"),
            ("X509CertificateData", "x509_certificate_data"),
            ("DNSName", "dns_name"),
            ("Tags", "tags"),
            ("ClientID", "client_id"),
            ("MultiAZ", "multi_az"),
            ("NumberOfCacheNodes", "number_of_cache_nodes"),
            ("GPUCount", "gpu_count"),
            ("IsValueSecret", "is_value_secret"),
            ("ApiKeyAuthParameters", "api_key_auth_parameters"),
            ("KMSMasterKeyID", "kms_master_key_id"),
            ("Ec2SubnetIds", "ec2_subnet_ids"),
            ("engine_version", "engine_version"),
            ("some-name.with dots", "some_name_with_dots"),
        ];
        for (input, expected) in cases {
            assert_eq!(snake_case(input), expected, "snake_case({input})");
        }
    }

    #[test]
    fn plural_table_names() {
        let cases = [
            ("policy", "policies"),
            ("address", "addresses"),
            ("alias", "aliases"),
            ("status", "statuses"),
            ("analysis", "analyses"),
            ("key", "keys"),
            ("proxy", "proxies"),
            ("data", "data"),
            ("information", "information"),
            ("instance_connect_endpoint", "instance_connect_endpoints"),
            ("connection", "connections"),
            ("instance", "instances"),
            ("vpc", "vpcs"),
            ("security_group_ingress", "security_group_ingresses"),
            ("event_bus", "event_buses"),
            ("data_lake_settings", "data_lake_settings"),
            ("dhcp_options", "dhcp_options"),
            ("storage_lens", "storage_lenses"),
            ("index", "indexes"),
            ("gateway", "gateways"),
            ("branch", "branches"),
            ("vpc_endpoint_service_permissions", "vpc_endpoint_service_permissions"),
            ("route53", "route53"),
        ];
        for (input, expected) in cases {
            assert_eq!(pluralize(input), expected, "pluralize({input})");
        }
    }

    #[test]
    fn reserved_words_are_quoted() {
        assert_eq!(quote_if_needed("order"), "\"order\"");
        assert_eq!(quote_if_needed("subnet_id"), "subnet_id");
        assert!(is_reserved_word("user"));
    }
}
