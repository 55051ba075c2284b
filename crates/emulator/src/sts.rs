//! STS as the SDK's credential providers use it: `GetCallerIdentity` and `AssumeRole`, over
//! the awsQuery protocol (a form-encoded POST, an XML answer).
//!
//! A role can be assumed when it exists in its account as an `AWS::IAM::Role` (seeded or
//! created through Cloud Control) and its trust policy lets the caller's account assume it,
//! with the right `sts:ExternalId` when the policy asks for one: what AWS checks. Assumed
//! credentials carry the role's account in their last 12 characters, so the calls made with
//! them land in that account.

use serde_json::Value;

use crate::ops::{Caller, Emulator};

/// How long assumed credentials last unless `DurationSeconds` says otherwise.
const DEFAULT_SESSION_SECONDS: u64 = 3600;

/// An awsQuery answer (STS, CloudFormation): HTTP status and XML body.
pub struct QueryAnswer {
    pub status: u16,
    pub body: String,
}

/// Runs one STS call for `caller`, whose access key id is `access_key_id`.
pub fn call(emu: &Emulator, caller: &Caller, access_key_id: &str, form: &[(String, String)]) -> QueryAnswer {
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let result = match param("Action") {
        Some("GetCallerIdentity") => Ok(caller_identity(caller, access_key_id)),
        Some("AssumeRole") => assume_role(emu, caller, access_key_id, &param),
        Some(other) => Err(sts_error(
            400,
            "InvalidAction",
            &format!("Could not find operation {other} for version 2011-06-15"),
        )),
        None => Err(sts_error(400, "MissingAction", "Missing Action")),
    };
    result.unwrap_or_else(|e| e)
}

fn caller_identity(caller: &Caller, access_key_id: &str) -> QueryAnswer {
    let arn = if access_key_id.starts_with("ASIA") {
        format!("arn:aws:sts::{}:assumed-role/emulated/{access_key_id}", caller.account)
    } else {
        format!("arn:aws:iam::{}:user/emulator", caller.account)
    };
    ok(
        "GetCallerIdentity",
        &format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
            xml_escape(&arn),
            xml_escape(access_key_id),
            caller.account
        ),
    )
}

/// What an AssumeRole-like call names: the role's ARN, account and name, the session name
/// and how long the credentials last; checked as STS checks them.
struct RoleRequest<'a> {
    role_arn: &'a str,
    account: &'a str,
    role_name: &'a str,
    session: &'a str,
    duration: u64,
}

fn role_request<'a>(param: &dyn Fn(&str) -> Option<&'a str>) -> Result<RoleRequest<'a>, QueryAnswer> {
    let missing = |name: &str| {
        sts_error(
            400,
            "ValidationError",
            &format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"),
        )
    };
    let role_arn = param("RoleArn").ok_or_else(|| missing("roleArn"))?;
    let session = param("RoleSessionName").ok_or_else(|| missing("roleSessionName"))?;
    if session.is_empty() || session.len() > 64 || !session.chars().all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c)) {
        return Err(sts_error(
            400,
            "ValidationError",
            &format!("1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
        ));
    }
    let (account, role_name) =
        parse_role_arn(role_arn).ok_or_else(|| sts_error(400, "ValidationError", &format!("{role_arn} is invalid")))?;
    let duration = match param("DurationSeconds") {
        Some(d) => d
            .parse::<u64>()
            .ok()
            .filter(|d| (900..=43_200).contains(d))
            .ok_or_else(|| sts_error(400, "ValidationError", &format!("1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200")))?,
        None => DEFAULT_SESSION_SECONDS,
    };
    Ok(RoleRequest {
        role_arn,
        account,
        role_name,
        session,
        duration,
    })
}

fn assume_role<'a>(
    emu: &Emulator,
    caller: &Caller,
    access_key_id: &str,
    param: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<QueryAnswer, QueryAnswer> {
    let request = role_request(param)?;
    let caller_arn = if access_key_id.starts_with("ASIA") {
        format!("arn:aws:sts::{}:assumed-role/emulated/{access_key_id}", caller.account)
    } else {
        format!("arn:aws:iam::{}:user/emulator", caller.account)
    };
    let denied = || {
        sts_error(
            403,
            "AccessDenied",
            &format!(
                "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
                request.role_arn
            ),
        )
    };
    let trust = emu
        .role_trust_policy(&Caller::new(request.account, caller.region.clone()), request.role_name)
        .ok_or_else(denied)?;
    if !trusts(&trust, &caller.account, param("ExternalId")) {
        return Err(denied());
    }
    Ok(ok("AssumeRole", &issued(&request, "")))
}

/// `AssumeRoleWithWebIdentity` (unsigned: the token is the proof), as EKS's IRSA uses it: the
/// role must exist and trust a federated principal with this action; the token must not be
/// empty (the emulator has no identity provider to check it against).
pub fn assume_role_with_web_identity(emu: &Emulator, region: &str, form: &[(String, String)]) -> QueryAnswer {
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let run = || -> Result<QueryAnswer, QueryAnswer> {
        let request = role_request(&param)?;
        let token = param("WebIdentityToken").unwrap_or_default();
        if token.trim().is_empty() {
            return Err(sts_error(
                400,
                "InvalidIdentityToken",
                "The web identity token that was passed is not valid",
            ));
        }
        let denied = || sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
        let trust = emu
            .role_trust_policy(&Caller::new(request.account, region.to_string()), request.role_name)
            .ok_or_else(denied)?;
        if !trusts_web_identity(&trust) {
            return Err(denied());
        }
        let extra = "<SubjectFromWebIdentityToken>system:serviceaccount:emulated</SubjectFromWebIdentityToken>\
             <Provider>emulated-oidc</Provider><Audience>sts.amazonaws.com</Audience>";
        Ok(ok("AssumeRoleWithWebIdentity", &issued(&request, extra)))
    };
    run().unwrap_or_else(|e| e)
}

/// Whether a trust policy lets a federated (OIDC) principal assume the role with a token.
fn trusts_web_identity(policy: &Value) -> bool {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements.into_iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && strings(s.get("Action"))
                .iter()
                .any(|a| matches!(a.as_str(), "sts:AssumeRoleWithWebIdentity" | "sts:*" | "*"))
            && s.get("Principal").and_then(|p| p.get("Federated")).is_some()
    })
}

/// Fresh credentials of the role's account, as the result element's members.
fn issued(request: &RoleRequest, extra: &str) -> String {
    let account = request.account;
    let session = request.session;
    let key_id = format!(
        "ASIA{}{account}",
        &uuid::Uuid::new_v4().simple().to_string()[..4].to_ascii_uppercase()
    );
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let token = format!("FwoGZXIvYXdzE{}", uuid::Uuid::new_v4().simple());
    let expiration = iso8601(crate::store::epoch_seconds() as u64 + request.duration);
    format!(
        "<Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
         <SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
         <AssumedRoleUser><AssumedRoleId>AROA{account}:{session}</AssumedRoleId>\
         <Arn>arn:aws:sts::{account}:assumed-role/{}/{session}</Arn></AssumedRoleUser>{extra}",
        xml_escape(request.role_name),
    )
}

/// `arn:aws:iam::222222222222:role/path/Name` → (`222222222222`, `Name`).
fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let (_partition, service, _region, account, resource) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    let valid = service == "iam" && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty();
    valid.then_some((account, name))
}

/// Whether a trust policy lets `account` assume the role (with `external_id` when the policy
/// conditions on one).
fn trusts(policy: &Value, account: &str, external_id: Option<&str>) -> bool {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    statements.into_iter().any(|s| {
        let allows = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let action = strings(s.get("Action"))
            .iter()
            .any(|a| matches!(a.as_str(), "sts:AssumeRole" | "sts:*" | "*"));
        let principal = match s.get("Principal") {
            Some(Value::String(p)) => p == "*",
            Some(p) => strings(p.get("AWS"))
                .iter()
                .any(|p| p == "*" || p == account || p.starts_with(&format!("arn:aws:iam::{account}:"))),
            None => false,
        };
        let wanted_id = s
            .get("Condition")
            .and_then(|c| c.get("StringEquals"))
            .and_then(|c| c.get("sts:ExternalId"))
            .and_then(Value::as_str);
        let condition = wanted_id.is_none_or(|w| external_id == Some(w));
        allows && action && principal && condition
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn ok(action: &str, result: &str) -> QueryAnswer {
    query_ok(STS_NAMESPACE, action, result)
}

/// STS's error body (awsQuery).
pub fn sts_error(status: u16, code: &str, message: &str) -> QueryAnswer {
    query_error(STS_NAMESPACE, status, code, message)
}

/// An awsQuery answer: `<ActionResponse><ActionResult>…` in the service's namespace.
pub(crate) fn query_ok(namespace: &str, action: &str, result: &str) -> QueryAnswer {
    QueryAnswer {
        status: 200,
        body: format!(
            "<{action}Response xmlns=\"{namespace}\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
            uuid::Uuid::new_v4()
        ),
    }
}

/// An awsQuery error body.
pub(crate) fn query_error(namespace: &str, status: u16, code: &str, message: &str) -> QueryAnswer {
    QueryAnswer {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(message),
            uuid::Uuid::new_v4()
        ),
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `2026-12-02T10:00:00Z` for seconds since the epoch.
pub(crate) fn iso8601(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_are_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_796_169_600), "2026-12-02T00:00:00Z");
        assert_eq!(iso8601(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn role_arns_name_account_and_role() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::222222222222:role/ops/Reader"),
            Some(("222222222222", "Reader"))
        );
        assert_eq!(parse_role_arn("arn:aws:iam::2222:role/Reader"), None);
        assert_eq!(parse_role_arn("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn trust_policies_name_who_may_assume() {
        let policy = json!({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Condition": {"StringEquals": {"sts:ExternalId": "xyz"}}}]});
        assert!(trusts(&policy, "111111111111", Some("xyz")));
        assert!(!trusts(&policy, "111111111111", None));
        assert!(!trusts(&policy, "333333333333", Some("xyz")));
        let service =
            json!({"Statement": {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Principal": {"Service": "ec2.amazonaws.com"}}});
        assert!(!trusts(&service, "111111111111", None));
    }
}
