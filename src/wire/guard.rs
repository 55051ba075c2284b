//! The byte stream under pgwire's codec, held to `limits.max_message_size`.
//!
//! pgwire buffers a whole Query, Parse or Bind (up to 1 GiB) before decoding it, so a client
//! announcing a huge message could make a connection hold that much. [`Guarded`] reads the
//! framing as bytes pass: a message whose length header is over the limit never reaches the
//! codec; its body is read and dropped as it arrives, and [`GuardShared`] reports it (with its
//! place in the message sequence) so the connection answers 54000 in order and goes on.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// A message that was too large, dropped instead of decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    /// Its place among the messages of the connection, counting from 0 (the startup message).
    pub sequence: u64,
    /// Its type byte (`Q`, `P`, `B`…).
    pub kind: u8,
    /// The length its header announced, in bytes.
    pub length: usize,
}

/// What the guard tells the connection loop.
pub struct GuardShared {
    pub limit: usize,
    oversized: Mutex<VecDeque<Oversized>>,
    /// A length header below 4: the stream cannot be followed any further.
    malformed: AtomicBool,
    pub notify: Notify,
}

impl GuardShared {
    pub fn new(limit: usize) -> Arc<GuardShared> {
        Arc::new(GuardShared {
            limit,
            oversized: Mutex::new(VecDeque::new()),
            malformed: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }

    /// The oversized message that comes next, once every message before it was handled.
    pub fn take_due(&self, handled: u64) -> Option<Oversized> {
        let mut queue = self.oversized.lock().unwrap_or_else(|p| p.into_inner());
        match queue.front() {
            Some(o) if o.sequence <= handled => queue.pop_front(),
            _ => None,
        }
    }

    /// Whether the client sent a length the framing cannot follow.
    pub fn malformed(&self) -> bool {
        self.malformed.load(Ordering::Relaxed)
    }

    fn report(&self, o: Oversized) {
        self.oversized.lock().unwrap_or_else(|p| p.into_inner()).push_back(o);
        self.notify.notify_one();
    }
}

/// Where the reader is in the message framing.
#[derive(Debug, Default)]
struct Framing {
    /// False until the startup message (which has no type byte) has passed.
    typed: bool,
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current message still to forward.
    forward: usize,
    /// Body bytes of an oversized message still to drop.
    skip: usize,
    sequence: u64,
}

impl Framing {
    fn header_size(&self) -> usize {
        if self.typed {
            5
        } else {
            4
        }
    }

    /// Moves `input` through the framing: kept bytes go to `out`, oversized messages are
    /// reported to `shared` and dropped.
    fn feed(&mut self, mut input: &[u8], out: &mut VecDeque<u8>, shared: &GuardShared) {
        while !input.is_empty() && !shared.malformed() {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
                continue;
            }
            if self.forward > 0 {
                let n = self.forward.min(input.len());
                out.extend(&input[..n]);
                self.forward -= n;
                input = &input[n..];
                continue;
            }
            let need = self.header_size() - self.header_len;
            let n = need.min(input.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
            self.header_len += n;
            input = &input[n..];
            if self.header_len == self.header_size() {
                self.start_message(out, shared);
            }
        }
    }

    /// A whole header has arrived: decide whether the message passes.
    fn start_message(&mut self, out: &mut VecDeque<u8>, shared: &GuardShared) {
        let size = self.header_size();
        let offset = size - 4;
        let length_bytes = [
            self.header[offset],
            self.header[offset + 1],
            self.header[offset + 2],
            self.header[offset + 3],
        ];
        // The length counts itself: below 4 the message boundaries are lost for good.
        let length = u32::from_be_bytes(length_bytes) as usize;
        if length < 4 {
            shared.malformed.store(true, Ordering::Relaxed);
            shared.notify.notify_one();
            return;
        }
        let body = length.saturating_sub(4);
        let sequence = self.sequence;
        self.sequence += 1;
        self.header_len = 0;
        if self.typed && length > shared.limit {
            self.skip = body;
            shared.report(Oversized {
                sequence,
                kind: self.header[0],
                length,
            });
            return;
        }
        out.extend(&self.header[..size]);
        self.forward = body;
        self.typed = true;
    }
}

/// A client stream whose messages are held to a size limit.
pub struct Guarded<S> {
    inner: S,
    shared: Arc<GuardShared>,
    framing: Framing,
    /// Bytes that passed the framing and wait for the codec.
    out: VecDeque<u8>,
    /// What each read from `inner` lands in: kept, so a read does not zero 16 KiB first
    /// (that was a sixth of a `SELECT 1`).
    scratch: Box<[u8]>,
}

/// How much one read from the socket takes.
const READ_SIZE: usize = 16 * 1024;

impl<S> Guarded<S> {
    /// `prefix` holds bytes already read from `inner` (while negotiating SSL).
    pub fn new(inner: S, shared: Arc<GuardShared>, prefix: &[u8]) -> Guarded<S> {
        let mut g = Guarded {
            inner,
            shared,
            framing: Framing::default(),
            out: VecDeque::new(),
            scratch: vec![0; READ_SIZE].into_boxed_slice(),
        };
        g.framing.feed(prefix, &mut g.out, &g.shared);
        g
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = this.out.len().min(buf.remaining());
                let (a, b) = this.out.as_slices();
                let from_a = n.min(a.len());
                buf.put_slice(&a[..from_a]);
                buf.put_slice(&b[..n - from_a]);
                this.out.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.scratch);
            if this.shared.malformed() {
                return Poll::Ready(Ok(())); // end of what can be read
            }
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    if filled.is_empty() {
                        return Poll::Ready(Ok(())); // end of stream
                    }
                    this.framing.feed(filled, &mut this.out, &this.shared);
                    // Everything read may have been dropped (an oversized body): read on.
                }
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup() -> Vec<u8> {
        let mut m = Vec::new();
        let body = b"\x00\x03\x00\x00user\x00u\x00\x00";
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn typed(kind: u8, body_len: usize) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body_len + 4) as u32).to_be_bytes());
        m.extend(std::iter::repeat_n(b'x', body_len));
        m
    }

    /// Feeds `input` in chunks of `chunk` bytes; returns what passed.
    fn run(input: &[u8], chunk: usize, limit: usize) -> (Vec<u8>, Arc<GuardShared>) {
        let shared = GuardShared::new(limit);
        let mut framing = Framing::default();
        let mut out = VecDeque::new();
        for c in input.chunks(chunk) {
            framing.feed(c, &mut out, &shared);
        }
        (out.into_iter().collect(), shared)
    }

    #[test]
    fn small_messages_pass_unchanged_whatever_the_chunking() {
        let mut input = startup();
        input.extend(typed(b'Q', 20));
        input.extend(typed(b'S', 0));
        for chunk in [1, 3, 7, 1000] {
            let (out, shared) = run(&input, chunk, 100);
            assert_eq!(out, input, "chunk {chunk}");
            assert_eq!(shared.take_due(10), None);
        }
    }

    #[test]
    fn an_oversized_message_is_dropped_and_reported_in_sequence() {
        let mut input = startup();
        input.extend(typed(b'P', 10));
        input.extend(typed(b'B', 500));
        input.extend(typed(b'S', 0));
        for chunk in [1, 2, 64, 4096] {
            let (out, shared) = run(&input, chunk, 100);
            let mut expected = startup();
            expected.extend(typed(b'P', 10));
            expected.extend(typed(b'S', 0));
            assert_eq!(out, expected, "chunk {chunk}");
            // Due only once the startup message and the Parse were handled.
            assert_eq!(shared.take_due(1), None);
            assert_eq!(
                shared.take_due(2),
                Some(Oversized {
                    sequence: 2,
                    kind: b'B',
                    length: 504
                })
            );
        }
    }

    #[test]
    fn a_length_below_four_stops_the_stream() {
        let mut input = startup();
        input.extend([b'Q', 0, 0, 0, 2]);
        input.extend(typed(b'S', 0));
        let (out, shared) = run(&input, 3, 100);
        assert_eq!(out, startup());
        assert!(shared.malformed());
    }

    #[test]
    fn the_startup_message_is_left_to_the_codec() {
        // Untyped, and pgwire bounds it itself (10,000 bytes).
        let mut big = Vec::new();
        big.extend_from_slice(&(5000u32).to_be_bytes());
        big.extend(std::iter::repeat_n(0u8, 4996));
        let (out, shared) = run(&big, 512, 100);
        assert_eq!(out, big);
        assert_eq!(shared.take_due(0), None);
    }
}
