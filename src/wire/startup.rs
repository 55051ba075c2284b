//! The startup exchange: protocol negotiation, the cancel key, the connection's [`Session`]
//! created from the startup parameters, and the ParameterStatus values clients read
//! (`server_version`, `DateStyle`, `client_encoding`… as the session has them).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, ServerParameterProvider, StartupHandler,
};
use pgwire::api::{ClientInfo, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::Connection;

static PIDS: LazyLock<RandomPidSecretKeyGenerator> = LazyLock::new(RandomPidSecretKeyGenerator::default);

pub struct Startup {
    connection: Connection,
}

impl Startup {
    pub fn new(connection: Connection) -> Startup {
        Startup { connection }
    }
}

/// The session's reported parameters.
struct Reported(Vec<(String, String)>);

impl ServerParameterProvider for Reported {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.iter().cloned().collect())
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
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let parameters: BTreeMap<String, String> = client.metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let Some(user) = parameters.get("user").filter(|u| !u.is_empty()).cloned() else {
            return Err(fatal("28000", "no PostgreSQL user name specified in startup packet"));
        };
        let database = parameters.get("database").cloned().unwrap_or_else(|| user.clone());
        let (pid, key) = PIDS.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let (handle, guard) = self.connection.shared.cancels.register(pid, key);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);

        let session = self.connection.shared.engine.session(&user, &database, &parameters);
        let mut reported = session.settings.reported();
        reported.push(("session_authorization".into(), user.clone()));
        *self.connection.shared.session.lock().await = Some(session);
        tracing::debug!(%user, %database, "session started");
        finish_authentication(client, &Reported(reported)).await
    }
}

fn fatal(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message.into())))
}
