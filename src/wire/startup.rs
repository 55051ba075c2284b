//! The startup exchange: protocol negotiation, authentication (trust, SCRAM-SHA-256, md5),
//! the cancel key, the connection's [`Session`] with the authenticated user's role, and the
//! ParameterStatus values clients read.
//!
//! A failed login answers 28P01 with the same words whether the user exists or not (an
//! unknown user gets a stand-in SCRAM challenge), after the address's throttle delay. Every
//! protocol fault during startup ends the connection with a FATAL error.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::LazyLock;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, ServerParameterProvider, StartupHandler,
};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use super::Connection;
use crate::auth::{self, Challenge, Role, ScramError, ScramExchange, ScramVerifier};
use crate::config::TlsMode;

static PIDS: LazyLock<RandomPidSecretKeyGenerator> = LazyLock::new(RandomPidSecretKeyGenerator::default);

/// The only SASL mechanism offered (channel binding, `-PLUS`, is not).
const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Where one connection's login stands.
enum Login {
    Start,
    /// AuthenticationSASL sent; waiting for SASLInitialResponse.
    ScramOffered {
        user: String,
        role: Role,
        verifier: ScramVerifier,
    },
    /// server-first-message sent; waiting for the client's proof.
    ScramProving {
        user: String,
        role: Role,
        exchange: Box<ScramExchange>,
    },
    Md5Asked {
        user: String,
        role: Role,
        verifier: String,
        salt: [u8; 4],
    },
    Done,
}

pub struct Startup {
    connection: Connection,
    login: Mutex<Login>,
}

impl Startup {
    pub fn new(connection: Connection) -> Startup {
        Startup {
            connection,
            login: Mutex::new(Login::Start),
        }
    }
}

/// The session's reported parameters.
struct Reported(Vec<(String, String)>);

impl ServerParameterProvider for Reported {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.iter().cloned().collect())
    }
}

fn fatal(code: &str, message: impl Into<String>, hint: Option<&str>) -> PgWireError {
    let mut info = ErrorInfo::new("FATAL".into(), code.into(), message.into());
    info.hint = hint.map(str::to_string);
    PgWireError::UserError(Box::new(info))
}

fn protocol(what: impl std::fmt::Display) -> PgWireError {
    fatal("08P01", format!("invalid authentication message: {what}"), None)
}

/// The body of a password-family message: pgwire leaves it raw until told which it is.
/// (pgwire's own readers of these bodies panic on short input, so they are read here.)
fn raw_body(m: PasswordMessageFamily) -> PgWireResult<Vec<u8>> {
    match m {
        PasswordMessageFamily::Raw(body) => Ok(body.to_vec()),
        _ => Err(protocol("an authentication message of an unexpected kind")),
    }
}

/// SASLInitialResponse: the mechanism's name, then the length of the data (-1 for none)
/// and the data.
pub(crate) fn sasl_initial_response(body: &[u8]) -> PgWireResult<(String, Option<Vec<u8>>)> {
    let end = body
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| protocol("SASLInitialResponse without a mechanism name"))?;
    let mechanism = String::from_utf8_lossy(&body[..end]).into_owned();
    let rest = &body[end + 1..];
    let length_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| protocol("SASLInitialResponse without a data length"))?;
    let length = i32::from_be_bytes(length_bytes);
    let data = &rest[4..];
    match length {
        -1 if data.is_empty() => Ok((mechanism, None)),
        n if n >= 0 && n as usize == data.len() => Ok((mechanism, Some(data.to_vec()))),
        _ => Err(protocol("SASLInitialResponse data length does not match")),
    }
}

/// A NUL-terminated string (a PasswordMessage).
pub(crate) fn cstring(body: &[u8]) -> PgWireResult<String> {
    match body.split_last() {
        Some((0, text)) if !text.contains(&0) => Ok(String::from_utf8_lossy(text).into_owned()),
        _ => Err(protocol("a password message that is not one string")),
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut login = self.login.lock().await;
        let state = std::mem::replace(&mut *login, Login::Done);
        match (state, message) {
            (Login::Start, PgWireFrontendMessage::Startup(startup)) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                *login = self.begin(client).await?;
                Ok(())
            }
            (Login::ScramOffered { user, role, verifier }, PgWireFrontendMessage::PasswordMessageFamily(m)) => {
                let (mechanism, data) = sasl_initial_response(&raw_body(m)?)?;
                if mechanism != SCRAM_SHA_256 {
                    return Err(fatal(
                        "28000",
                        format!("SASL mechanism {mechanism:?} is not offered; use SCRAM-SHA-256"),
                        None,
                    ));
                }
                let data = data.ok_or_else(|| protocol("SASLInitialResponse without data"))?;
                match ScramExchange::start(verifier, &data) {
                    Ok((exchange, server_first)) => {
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASLContinue(Bytes::from(
                                server_first,
                            ))))
                            .await?;
                        *login = Login::ScramProving {
                            user,
                            role,
                            exchange: Box::new(exchange),
                        };
                        Ok(())
                    }
                    Err(e) => Err(self.scram_failed(client.socket_addr().ip(), &user, e).await),
                }
            }
            (Login::ScramProving { user, role, exchange }, PgWireFrontendMessage::PasswordMessageFamily(m)) => {
                let response = raw_body(m)?;
                match exchange.finish(&response) {
                    Ok(server_final) => {
                        client
                            .feed(PgWireBackendMessage::Authentication(Authentication::SASLFinal(Bytes::from(
                                server_final,
                            ))))
                            .await?;
                        self.complete(client, &user, role).await
                    }
                    Err(e) => Err(self.scram_failed(client.socket_addr().ip(), &user, e).await),
                }
            }
            (
                Login::Md5Asked {
                    user,
                    role,
                    verifier,
                    salt,
                },
                PgWireFrontendMessage::PasswordMessageFamily(m),
            ) => {
                let password = cstring(&raw_body(m)?)?;
                if auth::md5_matches(&verifier, &salt, &password) {
                    self.complete(client, &user, role).await
                } else {
                    Err(self.wrong_password(client.socket_addr().ip(), &user).await)
                }
            }
            (Login::Start | Login::Done, PgWireFrontendMessage::PasswordMessageFamily(_)) => {
                Err(protocol("a password message before the server asked for one"))
            }
            (_, other) => Err(protocol(
                format!("unexpected message during startup ({other:?})")
                    .chars()
                    .take(120)
                    .collect::<String>(),
            )),
        }
    }
}

impl Startup {
    /// After the startup message: decide how this user logs in.
    async fn begin<C>(&self, client: &mut C) -> PgWireResult<Login>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let access = &self.connection.shared.access;
        if access.tls.mode == TlsMode::Require && !client.is_secure() {
            return Err(fatal(
                "28000",
                "this server accepts TLS connections only",
                Some("connect with sslmode=require (or verify-full)"),
            ));
        }
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        if user.is_empty() {
            return Err(fatal("28000", "no PostgreSQL user name specified in startup packet", None));
        }
        if user.len() > auth::MAX_NAME_BYTES {
            return Err(fatal(
                "28000",
                format!("user name is longer than {} bytes", auth::MAX_NAME_BYTES),
                None,
            ));
        }
        // Trust without configured users lets everyone write (the server's [mutations] still
        // decide whether anything may change); effective_role narrows that.
        match access.users.challenge(&user, Role::Writer) {
            Challenge::Accept(role) => {
                self.complete(client, &user, access.effective_role(&user, role)).await?;
                Ok(Login::Done)
            }
            Challenge::Refuse => Err(fatal("28000", format!("role \"{user}\" does not exist"), None)),
            Challenge::Scram(verifier) => {
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(vec![
                        SCRAM_SHA_256.into()
                    ])))
                    .await?;
                let role = access.effective_role(&user, access.users.get(&user).map_or(Role::Reader, |u| u.role));
                Ok(Login::ScramOffered { user, role, verifier })
            }
            Challenge::Md5(verifier) => {
                let mut salt = [0u8; 4];
                auth::random(&mut salt);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::MD5Password(salt.to_vec())))
                    .await?;
                let role = access.effective_role(&user, access.users.get(&user).map_or(Role::Reader, |u| u.role));
                Ok(Login::Md5Asked {
                    user,
                    role,
                    verifier,
                    salt,
                })
            }
        }
    }

    async fn scram_failed(&self, ip: IpAddr, user: &str, e: ScramError) -> PgWireError {
        match e {
            ScramError::WrongPassword => self.wrong_password(ip, user).await,
            ScramError::Protocol(why) => protocol(why),
        }
    }

    /// 28P01 after the address's throttle delay; the same words for an unknown user.
    async fn wrong_password(&self, ip: IpAddr, user: &str) -> PgWireError {
        let delay = self.connection.shared.access.throttle.failed(ip);
        tracing::info!(%ip, user, delay_ms = delay.as_millis() as u64, "password authentication failed");
        tokio::time::sleep(delay).await;
        fatal("28P01", format!("password authentication failed for user \"{user}\""), None)
    }

    /// Logged in: the cancel key, the session, the parameters, ReadyForQuery.
    async fn complete<C>(&self, client: &mut C, user: &str, role: Role) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let shared = &self.connection.shared;
        shared.access.throttle.succeeded(client.socket_addr().ip());
        let parameters: BTreeMap<String, String> = client.metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let database = parameters.get("database").cloned().unwrap_or_else(|| user.to_string());
        let (pid, key) = PIDS.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = shared.cancels.register(pid, key);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);

        let session = shared.engine.session(user, &database, &parameters, role);
        session.connected(pid, Some(client.socket_addr()));
        let mut reported = session.settings.reported();
        reported.push(("session_authorization".into(), user.to_string()));
        *shared.session.lock().await = Some(session);
        tracing::info!(user, %database, role = role.name(), "session started");
        finish_authentication(client, &Reported(reported)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_messages_are_read_without_trusting_their_lengths() {
        let mut ok = b"SCRAM-SHA-256\0".to_vec();
        ok.extend_from_slice(&3i32.to_be_bytes());
        ok.extend_from_slice(b"abc");
        assert_eq!(
            sasl_initial_response(&ok).unwrap(),
            ("SCRAM-SHA-256".to_string(), Some(b"abc".to_vec()))
        );
        let mut none = b"X\0".to_vec();
        none.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(sasl_initial_response(&none).unwrap().1, None);
        for bad in [
            &b"SCRAM"[..],
            b"SCRAM\0",
            b"SCRAM\0\0\0",
            b"S\0\0\0\0\x09abc",
            b"S\0\xff\xff\xff\xfe",
        ] {
            assert!(sasl_initial_response(bad).is_err(), "{bad:?}");
        }
        assert_eq!(cstring(b"md5abc\0").unwrap(), "md5abc");
        assert!(cstring(b"no-nul").is_err() && cstring(b"a\0b\0").is_err());
    }
}
