//! One client connection from its first byte to its last: our own loop around pgwire's codec
//! and handlers, so that every bound on a connection is ours to set.
//!
//! pgwire's `process_socket` drives the same handlers, but with a fixed 60 s startup
//! deadline, no idle timeout, no message size bound below 1 GiB, and a panic in a handler
//! would end the task with no answer. Here: TLS negotiation (SSLRequest and direct TLS),
//! a startup deadline, the message size guard ([`super::guard`]), idle-session timeouts, TCP
//! keepalive, a watcher that notices a client gone mid-statement, graceful shutdown (idle
//! connections are told and closed, a running statement finishes first), and panics caught
//! per message: a bug fails that statement with XX000 and the connection goes on.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, DefaultClient, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{process_error, process_message, PgWireMessageServerCodec};
use pgwire::tokio::tokio_rustls::server::TlsStream;
use pgwire::tokio::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::guard::{GuardShared, Guarded, Oversized};
use super::Connection;

/// The SSLRequest and GSSENCRequest codes (the second 4 bytes of those startup packets).
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
/// First byte of a TLS ClientHello: a client starting TLS without asking (PostgreSQL 17 direct SSL).
const TLS_HANDSHAKE: u8 = 0x16;

/// Bounds of one connection, from config.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub startup_timeout: Duration,
    pub tcp_keepalive: Duration,
    pub max_message_size: usize,
}

type Socket = Framed<Guarded<ClientStream>, PgWireMessageServerCodec<super::extended::PreparedStatement>>;

/// A client's byte stream, with or without TLS.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, data),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Serves one accepted socket until the client leaves, a limit closes it, or `shutdown`
/// fires while it is idle.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    handlers: Connection,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    configure_socket(&tcp, &limits);
    let watcher = Disconnect::watch(&tcp);
    let startup_deadline = Instant::now() + limits.startup_timeout;
    let acceptor = handlers.shared.access.tls.acceptor();
    let Ok(negotiated) = tokio::time::timeout_at(startup_deadline, negotiate(tcp, acceptor)).await else {
        tracing::debug!("closed: no startup message within limits.startup_timeout");
        return Ok(());
    };
    let Some((stream, prefix)) = negotiated? else { return Ok(()) };
    let secure = matches!(stream, ClientStream::Tls(_));
    let guard = GuardShared::new(limits.max_message_size);
    let mut socket: Socket = Framed::new(
        Guarded::new(stream, guard.clone(), &prefix),
        PgWireMessageServerCodec::new(DefaultClient::new(peer, secure)),
    );
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    if let Some(w) = watcher {
        socket.session_extensions().insert(w);
    }
    let result = message_loop(&mut socket, &handlers, &guard, startup_deadline, &shutdown).await;
    let _ = socket.close().await;
    result
}

/// Keepalive so a client that vanished without a FIN frees its slot; no Nagle delay.
fn configure_socket(tcp: &TcpStream, limits: &ConnectionLimits) {
    let _ = tcp.set_nodelay(true);
    if !limits.tcp_keepalive.is_zero() {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(limits.tcp_keepalive)
            .with_interval(Duration::from_secs(10));
        if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
            tracing::debug!(cause = %e, "could not enable TCP keepalive");
        }
    }
}

/// The encryption exchange before the startup message: SSLRequest is answered `S` and TLS
/// begins when TLS is configured, `N` otherwise; GSSENCRequest always `N`; a TLS handshake
/// without a request (PostgreSQL 17's direct TLS, which must name the `postgresql` ALPN
/// protocol) is accepted when TLS is configured. Returns the stream with the first bytes of
/// the startup message already read; `None` when the client gave up.
async fn negotiate(mut tcp: TcpStream, acceptor: Option<TlsAcceptor>) -> io::Result<Option<(ClientStream, Vec<u8>)>> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    if first[0] == TLS_HANDSHAKE {
        let Some(acceptor) = acceptor else {
            tracing::debug!("closed: direct TLS handshake, but TLS is not configured");
            return Ok(None);
        };
        let tls = acceptor.accept(tcp).await?;
        if tls.get_ref().1.alpn_protocol() != Some(crate::tls::ALPN_POSTGRESQL) {
            tracing::debug!("closed: direct TLS without the postgresql ALPN protocol");
            return Ok(None);
        }
        return Ok(Some((ClientStream::Tls(Box::new(tls)), Vec::new())));
    }
    // libpq tries GSS, then SSL, then plaintext: two requests at most.
    for _ in 0..3 {
        let mut head = [0u8; 8];
        let mut filled = 0;
        while filled < head.len() {
            let n = tcp.read(&mut head[filled..]).await?;
            if n == 0 {
                return Ok(None);
            }
            filled += n;
        }
        let length = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if length == 8 && code == SSL_REQUEST {
            if let Some(acceptor) = &acceptor {
                tcp.write_all(b"S").await?;
                let tls = acceptor.accept(tcp).await?;
                return Ok(Some((ClientStream::Tls(Box::new(tls)), Vec::new())));
            }
            tcp.write_all(b"N").await?;
            continue;
        }
        if length == 8 && code == GSSENC_REQUEST {
            tcp.write_all(b"N").await?;
            continue;
        }
        return Ok(Some((ClientStream::Plain(tcp), head.to_vec())));
    }
    Ok(None)
}

/// Reads and handles messages until the connection ends.
async fn message_loop(
    socket: &mut Socket,
    handlers: &Connection,
    guard: &GuardShared,
    startup_deadline: Instant,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    // The concrete handlers: the codec's statement type must be the extended handler's.
    let startup = Arc::new(super::startup::Startup::new(handlers.clone()));
    let simple = Arc::new(super::simple::Simple(handlers.clone()));
    let extended = Arc::new(super::extended::Extended::new(handlers.clone()));
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let mut handled: u64 = 0;
    loop {
        if let Some(big) = guard.take_due(handled) {
            handled += 1;
            let extended_protocol = big.kind != b'Q';
            process_error(
                socket,
                PgWireError::UserError(Box::new(oversized_error(big, guard.limit))),
                extended_protocol,
            )
            .await?;
            continue;
        }
        let in_startup = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
        );
        let idle = if in_startup {
            Some((startup_deadline, IdleEnd::Startup))
        } else {
            handlers.idle_deadline(socket.transaction_status()).await
        };
        // Messages already sent come first: a connection is idle, and may be closed by a
        // shutdown, only when nothing waits to be read.
        let message = tokio::select! {
            biased;
            _ = guard.notify.notified(), if !guard.malformed() => continue,
            message = next_message(socket) => message,
            _ = shutdown.cancelled() => {
                if !in_startup {
                    send_fatal(socket, "57P01", "terminating connection due to administrator command", Some("the server is shutting down; reconnect to another instance or later".into())).await;
                }
                return Ok(());
            }
            _ = sleep_until(idle.map(|(at, _)| at)) => {
                if let Some((_, why)) = idle {
                    why.close(socket).await;
                }
                return Ok(());
            }
        };
        if guard.malformed() {
            send_fatal(
                socket,
                "08P01",
                "invalid message length",
                Some("the client broke the protocol's framing; the connection cannot go on".into()),
            )
            .await;
            return Ok(());
        }
        let message = match message {
            None => return Ok(()),
            Some(Err(e)) => {
                // A malformed message: the stream can no longer be trusted to be in sync.
                tracing::debug!(cause = %e, "closing a connection that sent an invalid message");
                send_fatal(socket, "08P01", &format!("invalid frontend message: {e}"), None).await;
                return Ok(());
            }
            Some(Ok(PgWireFrontendMessage::Terminate(_))) => return Ok(()),
            Some(Ok(m)) => m,
        };
        handled += 1;
        let extended_protocol = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let run = process_message(
            message,
            socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        );
        let error = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(panic) => Some(panic_error(panic.as_ref())),
        };
        if let Some(e) = error {
            let fatal = in_startup || matches!(&e, PgWireError::UserError(info) if info.severity == "FATAL");
            handlers.statement_failed().await;
            process_error(socket, e, extended_protocol).await?;
            if fatal {
                return Ok(());
            }
        }
    }
}

/// Why an idle connection is closed when its deadline passes.
#[derive(Debug, Clone, Copy)]
pub enum IdleEnd {
    Startup,
    Session,
    InTransaction,
}

impl IdleEnd {
    async fn close(self, socket: &mut Socket) {
        match self {
            // PostgreSQL closes these silently (the client never completed a handshake).
            IdleEnd::Startup => tracing::debug!("closed: startup not finished within limits.startup_timeout"),
            IdleEnd::Session => {
                send_fatal(
                    socket,
                    "57P05",
                    "terminating connection due to idle-session timeout",
                    Some("idle_session_timeout closes idle connections; reconnect, or SET idle_session_timeout = 0".into()),
                )
                .await
            }
            IdleEnd::InTransaction => {
                send_fatal(
                    socket,
                    "25P03",
                    "terminating connection due to idle-in-transaction timeout",
                    Some("end transaction blocks with COMMIT or ROLLBACK, or SET idle_in_transaction_session_timeout = 0".into()),
                )
                .await
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

fn oversized_error(big: Oversized, limit: usize) -> ErrorInfo {
    let kind = match big.kind {
        b'Q' => "query".to_string(),
        b'P' => "Parse message".to_string(),
        b'B' => "Bind message".to_string(),
        b'd' => "COPY data message".to_string(),
        other => format!("message of type '{}'", char::from(other).escape_default()),
    };
    let mut info = ErrorInfo::new(
        "ERROR".into(),
        "54000".into(),
        format!("{kind} of {} bytes exceeds the server's limit of {limit} bytes", big.length),
    );
    info.hint =
        Some("send a shorter statement (fewer values per statement), or raise limits.max_message_size in the server's config".into());
    info
}

/// The next message. pgwire's decoder trusts some length fields inside a message (a Bind
/// parameter longer than the message panics it): such a message is an invalid one, which
/// closes this connection with 08P01 as any other does, not a dead task.
async fn next_message(socket: &mut Socket) -> Option<Result<PgWireFrontendMessage, String>> {
    match std::panic::AssertUnwindSafe(socket.next()).catch_unwind().await {
        Ok(message) => message.map(|m| m.map_err(|e| e.to_string())),
        Err(panic) => Some(Err(format!("it cannot be decoded ({})", panic_text(panic.as_ref())))),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

/// A handler panicked: that message fails with XX000; the connection and server go on.
fn panic_error(panic: &(dyn std::any::Any + Send)) -> PgWireError {
    let what = panic_text(panic);
    tracing::error!(cause = %what, "a statement hit a bug in the server and was stopped");
    let mut info = ErrorInfo::new(
        "ERROR".into(),
        "XX000".into(),
        format!("internal error: the server hit a bug and stopped this statement ({what})"),
    );
    info.hint = Some("the connection is still usable; please report this with the statement that caused it".into());
    PgWireError::UserError(Box::new(info))
}

async fn send_fatal(socket: &mut Socket, code: &str, message: &str, hint: Option<String>) {
    let mut info = ErrorInfo::new("FATAL".into(), code.into(), message.into());
    info.hint = hint;
    let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
}

/// Notices a client that closed its side while a statement runs, so the statement stops and
/// the connection's slot is freed (PostgreSQL's `client_connection_check_interval`).
pub struct Disconnect {
    /// A second handle on the socket, only ever polled for readiness, never read.
    probe: TcpStream,
}

impl Disconnect {
    fn watch(tcp: &TcpStream) -> Option<Arc<Disconnect>> {
        let std = socket2::SockRef::from(tcp).try_clone().ok()?;
        let std: std::net::TcpStream = std.into();
        std.set_nonblocking(true).ok()?;
        let probe = TcpStream::from_std(std).ok()?;
        Some(Arc::new(Disconnect { probe }))
    }

    /// Completes when the peer has closed or reset the connection.
    pub async fn closed(&self) {
        loop {
            match self.probe.ready(tokio::io::Interest::READABLE).await {
                Ok(ready) if ready.is_read_closed() || ready.is_error() => return,
                Ok(_) => {
                    // Data waiting for the real reader: forget this readiness and wait for the
                    // next event (edge-triggered), without consuming anything.
                    let _ = self
                        .probe
                        .try_io(tokio::io::Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
                }
                Err(_) => return,
            }
        }
    }
}
