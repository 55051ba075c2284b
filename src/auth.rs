//! Who may connect, and what they may do: users with PostgreSQL password verifiers, the
//! server side of SCRAM-SHA-256 (and md5 for old drivers), roles, and a slowdown for an
//! address that keeps failing.
//!
//! Verifiers are PostgreSQL's own formats (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
//! and `md5<hex>`), so the config never holds a password or anything that logs in by itself.
//! pgwire 0.41's SCRAM handler needs the salted password (which does log in), so the exchange
//! is driven here, on aws-lc-rs's HMAC, SHA-256 and constant-time comparison; the wire layer
//! (`wire::startup`) carries its messages.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// SCRAM iterations of verifiers `cloudpg user hash` makes (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;
/// PostgreSQL's NAMEDATALEN - 1: the longest user name.
pub const MAX_NAME_BYTES: usize = 63;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// SELECT only; settings that widen what a session may do are refused.
    Reader,
    /// Also INSERT, UPDATE and DELETE, when the server allows mutations.
    Writer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
        }
    }
}

/// A stored password verifier.
#[derive(Clone, PartialEq, Eq)]
pub enum Verifier {
    Scram(ScramVerifier),
    /// `md5` followed by the hex md5 of password and user name.
    Md5(String),
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Verifiers stay out of logs and `config check` output.
        match self {
            Verifier::Scram(_) => f.write_str("Verifier::Scram(..)"),
            Verifier::Md5(_) => f.write_str("Verifier::Md5(..)"),
        }
    }
}

impl Verifier {
    /// Parses a verifier; a plaintext password is refused with how to make a verifier.
    pub fn parse(text: &str) -> Result<Verifier, String> {
        if text.starts_with("SCRAM-SHA-256$") {
            return ScramVerifier::parse(text).map(Verifier::Scram);
        }
        if let Some(hex) = text.strip_prefix("md5") {
            if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Verifier::Md5(hex.to_ascii_lowercase()));
            }
        }
        Err(
            "this is not a password verifier (plaintext passwords are not accepted): run `cloudpg user hash` and paste what it prints"
                .into(),
        )
    }
}

/// SCRAM-SHA-256 keys, as PostgreSQL stores them.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramVerifier {
    pub fn parse(text: &str) -> Result<ScramVerifier, String> {
        let bad =
            |why: &str| format!("malformed SCRAM verifier ({why}); expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>");
        let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(|| bad("prefix"))?;
        let (params, keys) = rest.split_once('$').ok_or_else(|| bad("no keys"))?;
        let (iterations, salt) = params.split_once(':').ok_or_else(|| bad("no salt"))?;
        let (stored, server) = keys.split_once(':').ok_or_else(|| bad("no server key"))?;
        let iterations: u32 = iterations.parse().map_err(|_| bad("iterations"))?;
        if iterations < 4096 {
            return Err(bad("fewer than 4096 iterations"));
        }
        let decode = |s: &str, what: &str| B64.decode(s).map_err(|_| bad(what));
        let v = ScramVerifier {
            iterations,
            salt: decode(salt, "salt")?,
            stored_key: decode(stored, "StoredKey")?,
            server_key: decode(server, "ServerKey")?,
        };
        if v.stored_key.len() != 32 || v.server_key.len() != 32 || v.salt.is_empty() {
            return Err(bad("key lengths"));
        }
        Ok(v)
    }

    /// The verifier of `password` with a fresh random salt.
    pub fn from_password(password: &str) -> ScramVerifier {
        let mut salt = vec![0u8; 16];
        random(&mut salt);
        ScramVerifier::with_salt(password, salt, SCRAM_ITERATIONS)
    }

    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> ScramVerifier {
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, iterations as usize);
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramVerifier {
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
            salt,
        }
    }

    /// A stand-in for a user that does not exist, the same for every attempt with that name,
    /// so the exchange looks the same whether the user exists or not.
    fn mock(user: &str, secret: &[u8]) -> ScramVerifier {
        ScramVerifier {
            iterations: SCRAM_ITERATIONS,
            salt: hmac_sha256(secret, format!("salt {user}").as_bytes())[..16].to_vec(),
            stored_key: hmac_sha256(secret, format!("stored {user}").as_bytes()),
            server_key: hmac_sha256(secret, format!("server {user}").as_bytes()),
        }
    }
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }
}

/// The md5 verifier of a password (`md5` + hex md5 of password and user name).
pub fn md5_verifier(user: &str, password: &str) -> String {
    format!("md5{:x}", md5::compute(format!("{password}{user}")))
}

/// Whether an md5 PasswordMessage answers the `salt` challenge for this verifier.
pub fn md5_matches(verifier_hex: &str, salt: &[u8; 4], response: &str) -> bool {
    let mut bytes = verifier_hex.as_bytes().to_vec();
    bytes.extend_from_slice(salt);
    let expected = format!("md5{:x}", md5::compute(bytes));
    verify_slices_are_equal(expected.as_bytes(), response.as_bytes()).is_ok()
}

/// Why an exchange failed: the client broke the protocol, or the proof did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    Protocol(String),
    WrongPassword,
}

/// The server's side of one SCRAM-SHA-256 exchange, after its first message.
pub struct ScramExchange {
    verifier: ScramVerifier,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ScramExchange {
    /// Reads the client-first-message and answers with the server-first-message.
    pub fn start(verifier: ScramVerifier, client_first: &[u8]) -> Result<(ScramExchange, String), ScramError> {
        let mut server_nonce = [0u8; 18];
        random(&mut server_nonce);
        Self::start_with_nonce(verifier, client_first, &B64.encode(server_nonce))
    }

    fn start_with_nonce(verifier: ScramVerifier, client_first: &[u8], server_nonce: &str) -> Result<(ScramExchange, String), ScramError> {
        let text = std::str::from_utf8(client_first).map_err(|_| protocol("client-first-message is not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or_else(|| protocol("client-first-message has no GS2 header"))?;
        let bare = parts.next().ok_or_else(|| protocol("client-first-message has no body"))?;
        match flag {
            // "y": the client could bind to the channel but thinks we cannot; we do not offer
            // SCRAM-SHA-256-PLUS, so that is right.
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(protocol("channel binding was not offered")),
            _ => return Err(protocol("malformed GS2 header")),
        }
        if !authzid.is_empty() {
            return Err(protocol("authorization identities are not supported"));
        }
        let mut attributes = bare.split(',');
        let user = attributes.next().unwrap_or_default();
        if !user.starts_with("n=") {
            return Err(protocol("client-first-message has no user name attribute"));
        }
        let client_nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or_else(|| protocol("client-first-message has no valid nonce"))?;
        if attributes.any(|a| a.starts_with("m=")) {
            return Err(protocol("mandatory extensions are not supported"));
        }
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&verifier.salt), verifier.iterations);
        Ok((
            ScramExchange {
                verifier,
                gs2_header: format!("{flag},{authzid},"),
                client_first_bare: bare.to_string(),
                server_first: server_first.clone(),
                nonce,
            },
            server_first,
        ))
    }

    /// Checks the client-final-message's proof; answers with the server-final-message.
    pub fn finish(self, client_final: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(client_final).map_err(|_| protocol("client-final-message is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| protocol("client-final-message has no proof"))?;
        let mut attributes = without_proof.split(',');
        let binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| protocol("client-final-message has no channel binding"))?;
        if B64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(protocol("channel binding does not match the GS2 header"));
        }
        let nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| protocol("client-final-message has no nonce"))?;
        if nonce != self.nonce {
            return Err(protocol("the nonce does not match"));
        }
        let proof = B64.decode(proof).map_err(|_| protocol("the proof is not base64"))?;
        if proof.len() != 32 {
            return Err(protocol("the proof has the wrong length"));
        }
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let client_signature = hmac_sha256(&self.verifier.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        if verify_slices_are_equal(&sha256(&client_key), &self.verifier.stored_key).is_err() {
            return Err(ScramError::WrongPassword);
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

fn protocol(why: &str) -> ScramError {
    ScramError::Protocol(why.to_string())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// Bytes from the kernel's random source (getrandom). Not aws-lc's generator: its first use
/// seeds itself from CPU jitter, a tenth of a second at every start.
pub fn random(buf: &mut [u8]) {
    use rand::TryRngCore;
    // The system's random source failing is not something a login can recover from; a
    // zeroed buffer would make a weak nonce, so fail loudly instead.
    if rand::rngs::OsRng.try_fill_bytes(buf).is_err() {
        panic!("the system random source failed");
    }
}

/// One configured user.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub verifier: Verifier,
    pub role: Role,
    /// Accounts the user may use; `None` for all.
    pub accounts: Option<Vec<String>>,
    /// Cloud Control calls per minute the user's statements may make; `None`: no budget.
    pub max_calls_per_minute: Option<u32>,
}

/// The users of the server and how they log in.
#[derive(Debug)]
pub struct Users {
    pub method: Method,
    users: HashMap<String, User>,
    /// Makes stand-in salts for unknown users; random per process.
    mock_secret: [u8; 32],
}

/// How clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Method {
    #[serde(rename = "trust")]
    Trust,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// md5 for users with md5 verifiers, SCRAM for the others.
    #[serde(rename = "md5")]
    Md5,
}

/// What a login attempt must do next.
pub enum Challenge {
    /// Trust: in, with this role.
    Accept(Role),
    Scram(ScramVerifier),
    Md5(String),
    /// Unknown under trust with configured users.
    Refuse,
}

impl Users {
    pub fn new(method: Method, users: Vec<User>) -> Users {
        let mut mock_secret = [0u8; 32];
        random(&mut mock_secret);
        Users {
            method,
            users: users.into_iter().map(|u| (u.name.clone(), u)).collect(),
            mock_secret,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// What a client logging in as `user` must answer. An unknown user gets a stand-in SCRAM
    /// challenge that can never succeed, so it cannot tell that the user does not exist.
    pub fn challenge(&self, user: &str, trust_role: Role) -> Challenge {
        let known = self.users.get(user);
        match (self.method, known) {
            (Method::Trust, Some(u)) => Challenge::Accept(u.role),
            (Method::Trust, None) if self.users.is_empty() => Challenge::Accept(trust_role),
            (Method::Trust, None) => Challenge::Refuse,
            (
                Method::Md5,
                Some(User {
                    verifier: Verifier::Md5(hex),
                    ..
                }),
            ) => Challenge::Md5(hex.clone()),
            (
                _,
                Some(User {
                    verifier: Verifier::Scram(v),
                    ..
                }),
            ) => Challenge::Scram(v.clone()),
            (_, _) => Challenge::Scram(ScramVerifier::mock(user, &self.mock_secret)),
        }
    }
}

/// Slows down an address that keeps failing to log in: the first few failures are free, then
/// each answer waits twice as long as the one before, up to a ceiling; a minute without
/// failures forgets them.
#[derive(Debug)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    max_delay: Duration,
}

/// Failures answered at once.
const FREE_FAILURES: u32 = 5;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the oldest go first.
const MAX_ADDRESSES: usize = 10_000;

impl Throttle {
    /// `max_delay`: the longest any answer waits (`auth.max_failure_delay`).
    pub fn new(max_delay: Duration) -> Throttle {
        Throttle {
            failures: Mutex::new(HashMap::new()),
            max_delay,
        }
    }

    /// Records a failure; returns how long to wait before answering it.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
            if map.len() >= MAX_ADDRESSES {
                if let Some(oldest) = map.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) > FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now;
        delay_for(entry.0, self.max_delay)
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&ip);
    }
}

fn delay_for(failures: u32, max: Duration) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side of SCRAM, as libpq computes it (RFC 5802).
    fn client_final(password: &str, client_first_bare: &str, server_first: &str, gs2: &str) -> String {
        let fields: HashMap<&str, &str> = server_first.split(',').filter_map(|f| f.split_once('=')).collect();
        let salt = B64.decode(fields["s"]).unwrap();
        let iterations: usize = fields["i"].parse().unwrap();
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored = sha256(&client_key);
        let without_proof = format!("c={},r={}", B64.encode(gs2), fields["r"]);
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    fn exchange(verifier: ScramVerifier, password: &str) -> Result<String, ScramError> {
        let bare = "n=,r=rOprNGfwEbeRWgbNEkqO";
        let (ex, server_first) = ScramExchange::start(verifier, format!("n,,{bare}").as_bytes())?;
        ex.finish(client_final(password, bare, &server_first, "n,,").as_bytes())
    }

    #[test]
    fn verifiers_round_trip_and_refuse_plaintext() {
        let v = ScramVerifier::from_password("pencil");
        let text = v.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_eq!(Verifier::parse(&text).unwrap(), Verifier::Scram(v));
        assert!(Verifier::parse("pencil").unwrap_err().contains("cloudpg user hash"));
        assert!(Verifier::parse("SCRAM-SHA-256$10:c2FsdA==$a:b").is_err());
        assert_eq!(
            Verifier::parse(&md5_verifier("alice", "pencil")).unwrap(),
            Verifier::Md5(md5_verifier("alice", "pencil")[3..].to_string())
        );
    }

    #[test]
    fn the_rfc_7677_test_vector_passes() {
        // RFC 7677, section 3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::with_salt("pencil", salt, 4096);
        let (ex, server_first) =
            ScramExchange::start_with_nonce(v, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let server_final = ex
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn the_right_password_passes_and_a_wrong_one_fails() {
        let v = ScramVerifier::from_password("pencil");
        let server_final = exchange(v.clone(), "pencil").unwrap();
        assert!(server_final.starts_with("v="));
        assert_eq!(exchange(v, "pen").unwrap_err(), ScramError::WrongPassword);
    }

    #[test]
    fn broken_exchanges_are_protocol_errors() {
        let v = ScramVerifier::from_password("pencil");
        for first in [
            "",
            "n,,",
            "x,,n=,r=abc",
            "p=tls-server-end-point,,n=,r=abc",
            "n,a=bob,n=,r=abc",
            "n,,n=,r=",
            "n,,m=ext,r=abc",
        ] {
            assert!(
                matches!(ScramExchange::start(v.clone(), first.as_bytes()), Err(ScramError::Protocol(_))),
                "{first:?}"
            );
        }
        let (ex, _) = ScramExchange::start(v.clone(), b"n,,n=,r=abc").unwrap();
        assert!(matches!(ex.finish(b"c=biws,r=wrong,p=AAAA"), Err(ScramError::Protocol(_))));
        let (ex, _) = ScramExchange::start(v, b"n,,n=,r=abc").unwrap();
        assert!(matches!(ex.finish(b"garbage"), Err(ScramError::Protocol(_))));
    }

    #[test]
    fn unknown_users_get_a_stable_challenge_that_never_passes() {
        let users = Users::new(Method::ScramSha256, vec![]);
        let Challenge::Scram(a) = users.challenge("mallory", Role::Reader) else {
            panic!()
        };
        let Challenge::Scram(b) = users.challenge("mallory", Role::Reader) else {
            panic!()
        };
        assert_eq!(a.salt, b.salt, "the same salt every time, like a real user's");
        assert_eq!(exchange(a, "anything").unwrap_err(), ScramError::WrongPassword);
    }

    #[test]
    fn md5_answers_are_checked() {
        let v = md5_verifier("alice", "pencil");
        let salt = [1, 2, 3, 4];
        let response = pgwire::api::auth::md5pass::hash_md5_password("alice", "pencil", &salt);
        assert!(md5_matches(&v[3..], &salt, &response));
        assert!(!md5_matches(&v[3..], &salt, "md5deadbeef"));
    }

    #[test]
    fn failures_slow_down_after_a_few() {
        let t = Throttle::new(Duration::from_secs(5));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let delays: Vec<Duration> = (0..20).map(|_| t.failed(ip)).collect();
        assert!(delays[..5].iter().all(Duration::is_zero));
        assert_eq!(delays[5], FIRST_DELAY);
        assert_eq!(delays[19], Duration::from_secs(5));
        t.succeeded(ip);
        assert!(t.failed(ip).is_zero());
    }
}
