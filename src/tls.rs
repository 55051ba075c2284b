//! TLS for client connections: the server certificate and key from PEM files (PKCS#1, PKCS#8
//! or SEC1 keys) as a rustls configuration, reloadable on SIGHUP. A file that fails to load
//! is an error naming it: at startup the server does not start (fail closed), on reload the
//! running configuration stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use pgwire::tokio::tokio_rustls::rustls::pki_types::pem::PemObject;
use pgwire::tokio::tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use pgwire::tokio::tokio_rustls::rustls::{self, ServerConfig};
use pgwire::tokio::TlsAcceptor;

use crate::config::{RawTls, TlsMode};
use crate::error::{Error, Result};

/// The ALPN protocol of PostgreSQL 17's direct TLS connections.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A rustls server configuration from a certificate chain and a key in PEM files.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|e| Error::Config(format!("tls.{what} = {}: cannot read it: {e}", path.display())))
    };
    let cert_pem = read(cert, "cert")?;
    let key_pem = read(key, "key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Config(format!("tls.cert = {}: not a PEM certificate chain: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(Error::Config(format!("tls.cert = {}: holds no certificate", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        Error::Config(format!(
            "tls.key = {}: not a PEM private key (PKCS#1, PKCS#8 or SEC1): {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            Error::Config(format!(
                "tls.cert = {} and tls.key = {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Arc::new(config))
}

/// The server's TLS settings and current acceptor.
pub struct Tls {
    pub mode: TlsMode,
    paths: Option<(PathBuf, PathBuf)>,
    acceptor: RwLock<Option<TlsAcceptor>>,
}

impl Tls {
    pub fn new(raw: &RawTls) -> Result<Tls> {
        let paths = match (raw.mode, &raw.cert, &raw.key) {
            (TlsMode::Off, ..) => None,
            (_, Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => return Err(Error::Config("tls.mode needs tls.cert and tls.key (PEM files)".into())),
        };
        let acceptor = match &paths {
            Some((c, k)) => Some(TlsAcceptor::from(load(c, k)?)),
            None => None,
        };
        Ok(Tls {
            mode: raw.mode,
            paths,
            acceptor: RwLock::new(acceptor),
        })
    }

    /// The acceptor for a new connection; `None` when TLS is off.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the certificate and key again (SIGHUP); a failure keeps the running ones.
    pub fn reload(&self) -> Result<()> {
        let Some((c, k)) = &self.paths else { return Ok(()) };
        let fresh = TlsAcceptor::from(load(c, k)?);
        *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) = Some(fresh);
        Ok(())
    }
}
