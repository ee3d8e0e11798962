//! The site's connection path: a plain GET or HEAD forwarded to an app server straight from the
//! client's connection (`connections`' fast path, through `fast_hit`), before Pingora builds a
//! session for it. Both heads are parsed with httparse and written here, byte for byte what the
//! short path (`forward`) sends and answers:
//!
//! - the app gets the client's request line and fields as received, without `Connection`, with
//!   the forwarding fields set in place as [`super::add_forwarding_headers`] sets them;
//! - the client gets the app's answer with `Date` and `Connection` our own, without `Keep-Alive`
//!   and the internal fields, its body relayed as it arrives: framed by `Content-Length`, or
//!   chunked (each chunk checked, trailers dropped), or, when the app's close ends it, re-framed
//!   as chunked so that the client's connection stays open.
//!
//! Connections to the apps are the short path's ([`super::pool`]), and so are its retries. An app
//! that fails before the answer's head is out gets the client a 502, as Pingora's proxy answers
//! it; after that, the client's connection is closed, so a broken answer never reads as whole.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use http::HeaderName;
use pingora_core::protocols::Stream;
use pingora_timeout::fast_timeout::{fast_sleep, fast_timeout};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::forward::{Tries, MAX_INTERIM_ANSWERS, MAX_STALE, NEEDS_THE_FULL_PROXY, WATCH_AFTER};
use super::{ip_bytes, Site};

/// A client's request as the connection read it: an HTTP/1.1 GET or HEAD with no body, at most
/// one `Connection` field (`keep-alive` or `close`) and nothing hop-by-hop ([`is_direct`]).
pub struct DirectRequest<'a> {
    pub head_only: bool,
    /// The request target, as sent (origin form).
    pub target: &'a str,
    pub headers: &'a [httparse::Header<'a>],
    /// The client's address, for the forwarding fields.
    pub client: Option<IpAddr>,
    /// The client came over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
    /// The client's connection ends after this answer (`Connection: close` goes out).
    pub close: bool,
    /// The server's draining flag: an answer whose head is written once it is up says
    /// `Connection: close` too, and the connection ends after it (as nginx does when exiting).
    pub draining: Option<&'a AtomicBool>,
}

/// How a forwarded request ended.
#[derive(Debug)]
pub struct Forwarded {
    /// The status sent; 499 when nothing was (the client left first, as nginx logs it).
    pub status: u16,
    /// Body bytes written to the client.
    pub body_bytes: usize,
    /// The client's connection can take its next request: the answer went out whole and
    /// neither side asked to close.
    pub keep_alive: bool,
    /// The client's answer went out whole (a closing connection is shut down cleanly).
    pub complete: bool,
    /// Bytes the client sent while the app worked (its next request), to be answered next.
    pub early: Vec<u8>,
}

/// Whether fields that passed the connection's checks also need nothing sanitised that only
/// Pingora's proxy does (hop-by-hop fields, framing, upgrades): see `forward::is_plain`.
pub fn is_direct(headers: &[httparse::Header<'_>]) -> bool {
    !headers.iter().any(|h| NEEDS_THE_FULL_PROXY.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
}

/// The longest answer head an app may send (nginx's `proxy_buffer_size` is 4-8 KiB; Pingora
/// takes up to 1 MiB).
const MAX_ANSWER_HEAD: usize = 64 * 1024;

/// Bytes read from an app at a time (more when a head needs them).
const READ_CHUNK: usize = 16 * 1024;

/// The longest chunk-size line, and the most trailer bytes, a chunked answer may have.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

impl Site {
    /// Forward `req` to an app server and relay its answer to `client`, which is read only to
    /// notice that the client left (after `WATCH_AFTER`, as the short path does). `never_sent`:
    /// fields no answer carries to a client (`response::NEVER_SENT`). The app has
    /// `read_timeout_ms` for its answer's head, and for each read of its body.
    pub async fn forward_direct<C>(
        &self,
        req: &DirectRequest<'_>,
        never_sent: &[HeaderName],
        client: &mut C,
    ) -> Forwarded
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut lease = Lease::take();
        let Buffers { request, answer: buf, head } = &mut lease.0;
        request_head(req, self.keep_alive, request);
        let mut early = Vec::new();
        let mut tries = Tries::default();
        let context = AnswerContext { head_only: req.head_only, close: req.close, draining: req.draining, never_sent };
        let attempt = loop {
            buf.clear();
            head.clear();
            let outcome = self.attempt_direct(request, &context, buf, head, &mut tries, client, &mut early);
            match outcome.await {
                Ok(Some(answered)) => break Ok(answered),
                Ok(None) => continue,
                Err(failed) => break Err(failed),
            }
        };
        let (app, key, answer) = match attempt {
            Ok(answered) => answered,
            Err(Failed::ClientLeft) => {
                return Forwarded { status: 499, body_bytes: 0, keep_alive: false, complete: false, early }
            }
            Err(Failed::App(status, why)) => {
                log::info!("site: {status} for {}: {why}", req.target);
                head.clear();
                error_head(status, head);
                let complete = write_parts(client, &mut [IoSlice::new(head)]).await.is_ok();
                return Forwarded { status, body_bytes: 0, keep_alive: false, complete, early };
            }
        };
        match self.relay(client, app, key, head, buf, &answer).await {
            Ok(sent) => {
                Forwarded { status: answer.status, body_bytes: sent, keep_alive: !answer.close, complete: true, early }
            }
            // Nothing written yet (the body's first bytes were already wrong): a 502 still can be.
            Err(Cut { head_out: false, why, .. }) => {
                log::info!("site: 502 for {}: {why}", req.target);
                head.clear();
                error_head(502, head);
                let complete = write_parts(client, &mut [IoSlice::new(head)]).await.is_ok();
                Forwarded { status: 502, body_bytes: 0, keep_alive: false, complete, early }
            }
            Err(Cut { sent, why, .. }) => {
                log::info!("site: answer to {} cut short: {why}", req.target);
                Forwarded { status: answer.status, body_bytes: sent, keep_alive: false, complete: false, early }
            }
        }
    }

    /// One attempt: send `request` and read the final answer head, its client form into `head`
    /// and its bytes (with any body read along) in `buf`. `None` when another attempt should
    /// follow: the app server refused the connection and there is another one to try, or a
    /// kept-alive connection turned out closed (at most `MAX_STALE` are passed over).
    #[allow(clippy::too_many_arguments)]
    async fn attempt_direct<C>(
        &self,
        request: &[u8],
        context: &AnswerContext<'_>,
        buf: &mut Vec<u8>,
        head: &mut Vec<u8>,
        tries: &mut Tries,
        client: &mut C,
        early: &mut Vec<u8>,
    ) -> Result<Option<(Stream, u64, Answer)>, Failed>
    where
        C: AsyncRead + Unpin + Send,
    {
        let upstream = self.upstream().map_err(|e| Failed::App(e.status(), e.to_string()))?;
        let kept = self.forwarder.pool.take(upstream.key);
        let reused = kept.is_some();
        let mut app = match kept {
            Some(stream) => stream,
            None => match self.forwarder.transport.new_stream(&upstream.peer).await {
                Ok(stream) => stream,
                Err(e) => {
                    tries.refused += 1;
                    if tries.refused < self.upstream_count().max(1) {
                        return Ok(None);
                    }
                    return Err(Failed::App(502, e.to_string()));
                }
            },
        };
        let sent = {
            let send = async {
                app.write_all(request).await?;
                app.flush().await
            };
            tokio::pin!(send);
            // A timer only when the app's socket cannot take the request at once (rare).
            match send.as_mut().now_or_never() {
                Some(sent) => Ok(sent),
                None => fast_timeout(self.read_timeout, send).await,
            }
        };
        let stale = |tries: &mut Tries| {
            let again = reused && tries.stale < MAX_STALE;
            tries.stale += usize::from(again);
            again
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) if stale(tries) => return Ok(None),
            Ok(Err(e)) => return Err(Failed::App(502, format!("sending the request: {e}"))),
            Err(_) => return Err(Failed::App(502, "sending the request: timed out".into())),
        }
        let read = {
            let reading = read_answer_head(&mut app, buf, head, context);
            tokio::pin!(reading);
            // The whole head within `read_timeout`, on one timer (most answers need no other):
            // after `WATCH_AFTER`, the client is watched too (as the short path does), and one
            // that leaves ends the exchange, and the app's connection is closed.
            match fast_timeout(WATCH_AFTER, &mut reading).await {
                Ok(read) => read,
                Err(_) => tokio::select! {
                    read = &mut reading => read,
                    () = client_left(client, early) => return Err(Failed::ClientLeft),
                    () = fast_sleep(self.read_timeout.saturating_sub(WATCH_AFTER)) => {
                        Err(HeadError::Io(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {:?}", self.read_timeout))))
                    }
                },
            }
        };
        match read {
            Ok(answer) => Ok(Some((app, upstream.key, answer))),
            // Nothing of an answer arrived on a connection the app may have closed while it sat
            // in the pool: a GET or HEAD is safe to send again.
            Err(HeadError::Closed { received: 0 }) if stale(tries) => Ok(None),
            Err(e) => Err(Failed::App(502, e.to_string())),
        }
    }

    /// Write the answer's head and relay its body; the app's connection goes back to the pool
    /// once the answer is read whole, before the last bytes are written. The body bytes sent.
    async fn relay<C>(
        &self,
        client: &mut C,
        app: Stream,
        key: u64,
        head: &[u8],
        buf: &mut Vec<u8>,
        answer: &Answer,
    ) -> Result<usize, Cut>
    where
        C: AsyncWrite + Unpin + Send,
    {
        let timeout = self.read_timeout;
        let mut app = Some(app);
        let mut head = Some(head);
        let mut start = answer.head_len;
        let mut sent = 0;
        let release = |app: &mut Option<Stream>, reusable: bool| {
            if let Some(stream) = app.take().filter(|_| reusable) {
                self.forwarder.pool.put(key, stream);
            }
        };
        let to_client = |e: io::Error| format!("writing to the client: {e}");
        // The head goes out with the body's first bytes: `head` is `None` once it has.
        let cut = |sent: usize, head: &Option<&[u8]>, why: String| Cut { sent, head_out: head.is_none(), why };
        match answer.framing {
            Framing::Empty => {
                release(&mut app, answer.reusable && buf.len() == start);
                write_parts(client, &mut [IoSlice::new(head.unwrap_or_default())])
                    .await
                    .map_err(|e| cut(0, &None, to_client(e)))?;
            }
            Framing::Length(total) => {
                let mut remaining = total;
                loop {
                    let piece = &buf[start..];
                    let take = piece.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    remaining -= take as u64;
                    if remaining == 0 {
                        // More than the length promised: the connection is out of step.
                        release(&mut app, answer.reusable && take == piece.len());
                    }
                    let mut parts = [IoSlice::new(head.take().unwrap_or_default()), IoSlice::new(&piece[..take])];
                    write_parts(client, &mut parts).await.map_err(|e| cut(sent, &None, to_client(e)))?;
                    sent += take;
                    if remaining == 0 {
                        break;
                    }
                    start = 0;
                    read_body(app.as_mut(), buf, timeout).await.map_err(|why| cut(sent, &head, why))?;
                }
            }
            Framing::Chunked => {
                let mut chunks = Chunks::default();
                loop {
                    let piece = &buf[start..];
                    let scanned = chunks.scan(piece).map_err(|why| cut(sent, &head, format!("chunked body: {why}")))?;
                    if scanned.done {
                        release(&mut app, answer.reusable && scanned.consumed == piece.len());
                    }
                    let end: &[u8] = if scanned.done { b"\r\n" } else { b"" };
                    let mut parts = [
                        IoSlice::new(head.take().unwrap_or_default()),
                        IoSlice::new(&piece[..scanned.forward]),
                        IoSlice::new(end),
                    ];
                    write_parts(client, &mut parts).await.map_err(|e| cut(sent, &None, to_client(e)))?;
                    sent += scanned.forward + end.len();
                    if scanned.done {
                        break;
                    }
                    start = 0;
                    read_body(app.as_mut(), buf, timeout).await.map_err(|why| cut(sent, &head, why))?;
                }
            }
            Framing::UntilClose => loop {
                let piece = &buf[start..];
                let mut size = [0u8; 20];
                let size = chunk_size_line(piece.len(), &mut size);
                let (size, crlf): (&[u8], &[u8]) = if piece.is_empty() { (b"", b"") } else { (size, b"\r\n") };
                let mut parts = [
                    IoSlice::new(head.take().unwrap_or_default()),
                    IoSlice::new(size),
                    IoSlice::new(piece),
                    IoSlice::new(crlf),
                ];
                write_parts(client, &mut parts).await.map_err(|e| cut(sent, &None, to_client(e)))?;
                sent += size.len() + piece.len() + crlf.len();
                start = 0;
                buf.clear();
                let stream = app.as_mut().ok_or_else(|| cut(sent, &None, "no connection".to_string()))?;
                match read_more(stream, buf, Some(timeout)).await {
                    Ok(0) => {
                        app = None;
                        write_parts(client, &mut [IoSlice::new(b"0\r\n\r\n")])
                            .await
                            .map_err(|e| cut(sent, &None, to_client(e)))?;
                        sent += 5;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => return Err(cut(sent, &None, format!("reading the answer: {e}"))),
                }
            },
        }
        drop(app);
        client.flush().await.map_err(|e| cut(sent, &None, to_client(e)))?;
        Ok(sent)
    }
}

/// A forward's buffers: the app's request, the app's answer as read, the client's answer head.
#[derive(Default)]
struct Buffers {
    request: Vec<u8>,
    answer: Vec<u8>,
    head: Vec<u8>,
}

thread_local! {
    /// Buffers of finished forwards, for the next ones on this thread: memory the last request
    /// used is still in the CPU's cache, and nothing is allocated.
    static SPARE: RefCell<Vec<Buffers>> = const { RefCell::new(Vec::new()) };
}

/// Buffers a thread keeps, at most.
const SPARE_BUFFERS: usize = 16;

/// A forward's buffers, given back to the thread's spares when dropped (but those grown past a
/// usual answer's head, which are freed).
struct Lease(Buffers);

impl Lease {
    fn take() -> Lease {
        let spare = SPARE.try_with(|spare| spare.try_borrow_mut().ok()?.pop()).ok().flatten();
        Lease(spare.unwrap_or_else(|| Buffers {
            request: Vec::with_capacity(1024),
            answer: Vec::with_capacity(READ_CHUNK),
            head: Vec::with_capacity(1024),
        }))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut buffers = std::mem::take(&mut self.0);
        if buffers.answer.capacity() > 2 * READ_CHUNK || buffers.request.capacity() > READ_CHUNK {
            return;
        }
        buffers.request.clear();
        buffers.answer.clear();
        buffers.head.clear();
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() < SPARE_BUFFERS {
                    spare.push(buffers);
                }
            }
        });
    }
}

/// An answer relayed only in part.
struct Cut {
    /// Body bytes written to the client.
    sent: usize,
    /// The answer's head was written (or the write failed: the client cannot get a 502 either).
    head_out: bool,
    why: String,
}

/// Why an attempt failed for good.
enum Failed {
    /// The client closed its connection while the app worked.
    ClientLeft,
    /// The app (or the lack of one): the status to answer with, and why.
    App(u16, String),
}

/// Why reading an answer head failed.
#[derive(Debug)]
enum HeadError {
    /// The app closed the connection (or reset it) after `received` bytes.
    Closed {
        received: usize,
    },
    Io(io::Error),
    Invalid(String),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Closed { received } => write!(f, "the app closed the connection after {received} bytes"),
            HeadError::Io(e) => write!(f, "reading the answer: {e}"),
            HeadError::Invalid(why) => write!(f, "invalid answer: {why}"),
        }
    }
}

/// Read the app's answer head into `buf` (interim answers dropped), its client form into `head`
/// (the caller bounds the time it takes).
async fn read_answer_head(
    app: &mut Stream,
    buf: &mut Vec<u8>,
    head: &mut Vec<u8>,
    context: &AnswerContext<'_>,
) -> Result<Answer, HeadError> {
    let mut interim = 0;
    let mut received = 0;
    loop {
        match parse_answer(buf, context, head).map_err(|why| HeadError::Invalid(why.into()))? {
            Parsed::Final(answer) => return Ok(answer),
            Parsed::Interim(len) => {
                interim += 1;
                if interim > MAX_INTERIM_ANSWERS {
                    return Err(HeadError::Invalid("too many interim answers".into()));
                }
                buf.drain(..len);
            }
            Parsed::Partial if buf.len() > MAX_ANSWER_HEAD => {
                return Err(HeadError::Invalid(format!("a head over {MAX_ANSWER_HEAD} bytes")))
            }
            Parsed::Partial => match read_more(app, buf, None).await {
                Ok(0) => return Err(HeadError::Closed { received }),
                Ok(n) => received += n,
                Err(e) if is_reset(&e) => return Err(HeadError::Closed { received }),
                Err(e) => return Err(HeadError::Io(e)),
            },
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe)
}

/// Read more of an answer's body into `buf` (emptied first); an early end is an error.
async fn read_body(app: Option<&mut Stream>, buf: &mut Vec<u8>, timeout: Duration) -> Result<(), String> {
    buf.clear();
    let app = app.ok_or("no connection")?;
    match read_more(app, buf, Some(timeout)).await {
        Ok(0) => Err("the app closed the connection before the end of its answer".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("reading the answer: {e}")),
    }
}

/// One read from the app, appended to `buf`, within `timeout` if given.
async fn read_more(app: &mut Stream, buf: &mut Vec<u8>, timeout: Option<Duration>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    let Some(timeout) = timeout else { return app.read_buf(buf).await };
    match fast_timeout(timeout, app.read_buf(buf)).await {
        Ok(read) => read,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {timeout:?}"))),
    }
}

/// Completes when the client closes its connection (or it fails). Bytes it sends meanwhile (a
/// pipelined request) are kept in `early`, and the client is no longer watched.
async fn client_left<C: AsyncRead + Unpin>(client: &mut C, early: &mut Vec<u8>) {
    if early.is_empty() {
        let mut bytes = [0u8; 2048];
        match client.read(&mut bytes).await {
            Ok(0) | Err(_) => return,
            Ok(n) => early.extend_from_slice(&bytes[..n]),
        }
    }
    std::future::pending::<()>().await
}

/// Write every part, as few system calls as the client's socket allows.
async fn write_parts<C: AsyncWrite + Unpin>(client: &mut C, parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    let mut parts = parts;
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        let n = client.write_vectored(parts).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut parts, n);
    }
    Ok(())
}

/// The request an app server gets: the client's request line (as HTTP/1.1) and fields in their
/// order, byte for byte, but `Connection`; the forwarding fields (`add_forwarding_headers`)
/// each in place of the client's first of that name or after the rest; `Connection: close` when
/// no connection is kept.
fn request_head(req: &DirectRequest<'_>, keep_alive: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if req.head_only { b"HEAD " } else { b"GET " });
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let first = |name: &str| req.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let mut ip = [0u8; 48];
    let ip = req.client.map(|client| ip_bytes(client, &mut ip));
    let forwarded_for = ip.map(|ip| match first("x-forwarded-for") {
        Some(earlier) if !earlier.trim_ascii().is_empty() => [earlier, b", ", ip],
        _ => [ip, b"", b""],
    });
    let proto: &[u8] = if req.tls { b"https" } else { b"http" };
    // By the name's length, which tells these four apart.
    let set: [(&str, Option<[&[u8]; 3]>); 4] = [
        ("X-Forwarded-For", forwarded_for),
        ("X-Real-IP", ip.map(|ip| [ip, b"", b""])),
        ("X-Forwarded-Proto", Some([proto, b"", b""])),
        ("X-Forwarded-Host", first("host").map(|host| [host, b"", b""])),
    ];
    let mut written = [false; 4];
    for h in req.headers {
        let i = match h.name.len() {
            10 if h.name.eq_ignore_ascii_case("connection") => continue,
            15 => 0,
            9 => 1,
            17 => 2,
            16 => 3,
            _ => 4,
        };
        match set.get(i) {
            Some((name, Some(value))) if h.name.eq_ignore_ascii_case(name) => {
                if !written[i] {
                    field_parts(out, name.as_bytes(), value);
                    written[i] = true;
                }
            }
            _ => field(out, h.name.as_bytes(), h.value),
        }
    }
    for ((name, value), written) in set.iter().zip(written) {
        if let (Some(value), false) = (value, written) {
            field_parts(out, name.as_bytes(), value);
        }
    }
    if !keep_alive {
        field(out, b"Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

fn field_parts(out: &mut Vec<u8>, name: &[u8], value: &[&[u8]; 3]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    for part in value {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What the client's answer depends on besides the app's.
struct AnswerContext<'a> {
    head_only: bool,
    /// The client's connection closes after this answer.
    close: bool,
    /// ... and so it does when the server is draining by the time the answer's head is written.
    draining: Option<&'a AtomicBool>,
    never_sent: &'a [HeaderName],
}

impl AnswerContext<'_> {
    fn closes(&self) -> bool {
        self.close || self.draining.is_some_and(|d| d.load(Ordering::Relaxed))
    }
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// None (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// By the app closing the connection; the client gets it chunked.
    UntilClose,
}

/// An app's final answer head, read.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    /// Bytes of the app's head (what follows in the buffer is body).
    head_len: usize,
    framing: Framing,
    /// The app's connection may take another request once this answer is read whole.
    reusable: bool,
    /// The client's head says `Connection: close`.
    close: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Partial,
    /// An interim (1xx) answer of this many bytes, dropped (as nginx does).
    Interim(usize),
    Final(Answer),
}

/// Parse the answer head at the start of `buf` as Pingora's client does; for a final answer,
/// write its client form to `out`: the status line as HTTP/1.1, the app's fields in order but
/// `Connection`, `Keep-Alive` and the internal ones (and `Content-Length` beside
/// `Transfer-Encoding`, RFC 9112 §6.3), `Date` ours in place of the app's, then
/// `Transfer-Encoding: chunked` for a body the app's close ends, `Date` if the app sent none, and
/// `Connection`.
fn parse_answer(buf: &[u8], context: &AnswerContext<'_>, out: &mut Vec<u8>) -> Result<Parsed, &'static str> {
    let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_ANSWER_FIELDS];
    let mut answer = httparse::Response::new(&mut []);
    let mut parser = httparse::ParserConfig::default();
    parser.allow_spaces_after_header_name_in_responses(true);
    parser.allow_obsolete_multiline_headers_in_responses(true);
    let head_len = match parser.parse_response_with_uninit_headers(&mut answer, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err("more than 128 fields"),
        Err(_) => return Err("not an HTTP/1 answer head"),
    };
    let status = answer.code.ok_or("no status")?;
    match status {
        101 => return Err("101 to a request without Upgrade"),
        100..=199 => return Ok(Parsed::Interim(head_len)),
        _ => {}
    }
    let mut kinds = [Field::Other; MAX_ANSWER_FIELDS];
    let (mut coding, mut length, mut lengths_agree, mut close, mut keep) = (None, None, true, false, false);
    for (h, kind) in answer.headers.iter().zip(kinds.iter_mut()) {
        *kind = Field::of(h.name, context.never_sent);
        match kind {
            Field::TransferEncoding => coding = Some(h.value),
            Field::ContentLength => match parse_length(h.value) {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                _ => lengths_agree = false,
            },
            Field::Connection => {
                for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            _ => {}
        }
    }
    let framing = if context.head_only || matches!(status, 204 | 304) {
        Framing::Empty
    } else if let Some(coding) = coding {
        let last = coding.rsplit(|&b| b == b',').next().unwrap_or_default().trim_ascii();
        if !last.eq_ignore_ascii_case(b"chunked") {
            return Err("a transfer coding other than chunked");
        }
        Framing::Chunked
    } else if !lengths_agree {
        return Err("an invalid Content-Length");
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    // As Pingora's client: HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes
    // it unless told to keep it (and always after a transfer coding).
    let keeps = match answer.version {
        Some(1) => !close,
        _ => keep && coding.is_none(),
    };
    let reusable = keeps && framing != Framing::UntilClose;

    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    match answer.reason.filter(|r| !r.is_empty()) {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(
            http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("").as_bytes(),
        ),
    }
    out.extend_from_slice(b"\r\n");
    let date = pingora_core::protocols::http::date::get_cached_date();
    let mut dated = false;
    for (h, kind) in answer.headers.iter().zip(kinds) {
        match kind {
            Field::Connection | Field::KeepAlive | Field::NeverSent => {}
            Field::ContentLength if coding.is_some() => {}
            Field::Date if dated => {}
            Field::Date => {
                field(out, b"Date", date.as_bytes());
                dated = true;
            }
            _ => {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                // An obsolete line folding becomes spaces (RFC 9112 §5.2).
                if h.value.iter().any(|&b| b == b'\r' || b == b'\n') {
                    out.extend(h.value.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
                } else {
                    out.extend_from_slice(h.value);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if framing == Framing::UntilClose {
        field(out, b"Transfer-Encoding", b"chunked");
    }
    if !dated {
        field(out, b"Date", date.as_bytes());
    }
    let close = context.closes();
    field(out, b"Connection", if close { b"close" } else { b"keep-alive" });
    out.extend_from_slice(b"\r\n");
    Ok(Parsed::Final(Answer { status, head_len, framing, reusable, close }))
}

/// The most fields an answer head may have.
const MAX_ANSWER_FIELDS: usize = 128;

/// What an answer field is to the client's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Other,
    Date,
    Connection,
    KeepAlive,
    ContentLength,
    TransferEncoding,
    /// An internal field no answer carries to a client.
    NeverSent,
}

impl Field {
    /// By the name's length first: most fields are compared with no name at all.
    fn of(name: &str, never_sent: &[HeaderName]) -> Field {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        let kind = match name.len() {
            4 if is("date") => Field::Date,
            10 if is("connection") => Field::Connection,
            10 if is("keep-alive") => Field::KeepAlive,
            14 if is("content-length") => Field::ContentLength,
            17 if is("transfer-encoding") => Field::TransferEncoding,
            _ => Field::Other,
        };
        if kind == Field::Other && never_sent.iter().any(|n| n.as_str().len() == name.len() && is(n.as_str())) {
            return Field::NeverSent;
        }
        kind
    }
}

/// A Content-Length value: decimal digits only, below 2^63.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// `{size:x}\r\n` in `out`.
fn chunk_size_line(size: usize, out: &mut [u8; 20]) -> &[u8] {
    use std::io::Write;
    let mut cursor = io::Cursor::new(&mut out[..]);
    let _ = write!(cursor, "{size:x}\r\n");
    let len = cursor.position() as usize;
    &out[..len]
}

/// The answer Pingora's proxy sends when it cannot proxy (its `gen_error_response`), with the
/// client's connection closed.
fn error_head(status: u16, out: &mut Vec<u8>) {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    field(out, b"Server", b"Pingora");
    field(out, b"Date", pingora_core::protocols::http::date::get_cached_date().as_bytes());
    field(out, b"Content-Length", b"0");
    field(out, b"Cache-Control", b"private, no-store");
    field(out, b"Connection", b"close");
    out.extend_from_slice(b"\r\n");
}

/// Where a chunked body is, between reads: each chunk-size line and each chunk's end are
/// checked, so that the client gets exactly the app's chunks and never bytes past them.
#[derive(Debug, Default)]
struct Chunks {
    state: ChunkState,
    /// The chunk size read so far, then the chunk bytes left.
    size: u64,
    digits: usize,
    /// Bytes of the current size line, and of the trailers so far.
    line: usize,
    trailers: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeEnd,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
}

/// What [`Chunks::scan`] found in its input.
#[derive(Debug, PartialEq, Eq)]
struct Scanned {
    /// The input's first bytes to send the client (all of it but trailers).
    forward: usize,
    /// The input's first bytes that belong to the body (all of it until the end).
    consumed: usize,
    /// The body ended: the client needs a final `\r\n` after `forward` (trailers are dropped).
    done: bool,
}

impl Chunks {
    fn scan(&mut self, input: &[u8]) -> Result<Scanned, &'static str> {
        use ChunkState::*;
        let in_trailers = |s: ChunkState| matches!(s, TrailerStart | Trailer | TrailerLf | EndLf);
        let mut forward = if in_trailers(self.state) { Some(0) } else { None };
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err("a chunk size over 2^60");
                        }
                        self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.state = Extension,
                    b'\r' if self.digits > 0 => self.state = SizeEnd,
                    _ => return Err("a malformed chunk size"),
                },
                Extension => match b {
                    b'\r' => self.state = SizeEnd,
                    b'\t' | 0x20..=0x7e | 0x80..=0xff => {}
                    _ => return Err("a malformed chunk extension"),
                },
                SizeEnd if b == b'\n' => {
                    if self.size == 0 {
                        self.state = TrailerStart;
                        forward = Some(i + 1);
                    } else {
                        self.state = Data;
                    }
                }
                Data => {
                    let take = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    continue;
                }
                DataCr if b == b'\r' => self.state = DataLf,
                DataLf if b == b'\n' => {
                    (self.state, self.size, self.digits, self.line) = (Size, 0, 0, 0);
                    i += 1;
                    continue;
                }
                TrailerStart if b == b'\r' => self.state = EndLf,
                TrailerStart | Trailer if b != b'\r' && b != b'\n' => self.state = Trailer,
                Trailer if b == b'\r' => self.state = TrailerLf,
                TrailerLf if b == b'\n' => self.state = TrailerStart,
                EndLf if b == b'\n' => {
                    return Ok(Scanned { forward: forward.unwrap_or(0), consumed: i + 1, done: true });
                }
                _ => return Err("malformed chunk framing"),
            }
            if in_trailers(self.state) {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err("trailers too long");
                }
            } else if matches!(self.state, Size | Extension | SizeEnd) {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err("a chunk-size line too long");
                }
            }
            i += 1;
        }
        Ok(Scanned { forward: forward.unwrap_or(input.len()), consumed: input.len(), done: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<httparse::Header<'a>> {
        pairs.iter().map(|(name, value)| httparse::Header { name, value: value.as_bytes() }).collect()
    }

    fn request(fields: &[(&str, &str)], client: Option<&str>, tls: bool, keep_alive: bool) -> String {
        let headers = headers(fields);
        let req = DirectRequest {
            head_only: false,
            target: "/a?b=1",
            headers: &headers,
            client: client.map(|c| c.parse().unwrap()),
            tls,
            close: false,
            draining: None,
        };
        let mut out = Vec::new();
        request_head(&req, keep_alive, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_app_gets_the_clients_fields_and_the_forwarding_ones_in_place() {
        let head = request(
            &[
                ("host", "www.example.test"),
                ("Connection", "keep-alive"),
                ("x-forwarded-for", "203.0.113.7"),
                ("Accept", "*/*"),
            ],
            Some("192.0.2.1"),
            false,
            true,
        );
        assert_eq!(
            head,
            "GET /a?b=1 HTTP/1.1\r\nhost: www.example.test\r\nX-Forwarded-For: 203.0.113.7, 192.0.2.1\r\nAccept: */*\r\n\
             X-Real-IP: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: www.example.test\r\n\r\n"
        );
        // A client's own forwarding fields are replaced (each once); without a peer address and
        // a Host, those it sent pass; no kept connection: `Connection: close`.
        let head = request(
            &[
                ("X-Real-IP", "1.2.3.4"),
                ("X-Forwarded-Proto", "gopher"),
                ("X-Forwarded-Proto", "x"),
                ("X-Forwarded-Host", "h"),
            ],
            None,
            true,
            false,
        );
        assert_eq!(
            head,
            "GET /a?b=1 HTTP/1.1\r\nX-Real-IP: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n\
             Connection: close\r\n\r\n"
        );
        // An empty X-Forwarded-For is replaced by the address alone.
        let head = request(&[("X-Forwarded-For", " ")], Some("::1"), false, true);
        assert!(head.contains("X-Forwarded-For: ::1\r\n"), "{head}");
    }

    fn answer(bytes: &str, head_only: bool, close: bool) -> (Result<Parsed, &'static str>, String) {
        let never_sent = [HeaderName::from_static("x-internal")];
        let context = AnswerContext { head_only, close, draining: None, never_sent: &never_sent };
        let mut out = Vec::new();
        let parsed = parse_answer(bytes.as_bytes(), &context, &mut out);
        let text = String::from_utf8(out).unwrap();
        // The date is the server's own, whatever the app said.
        let text = text.lines().filter(|l| !l.starts_with("Date: ")).collect::<Vec<_>>().join("\n");
        (parsed, text)
    }

    fn framing(bytes: &str, head_only: bool) -> Result<(Framing, bool), &'static str> {
        match answer(bytes, head_only, false).0? {
            Parsed::Final(a) => Ok((a.framing, a.reusable)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_client_gets_the_apps_head_with_our_connection_fields() {
        let (parsed, text) = answer(
            "HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\nKeep-Alive: timeout=5\r\nDate: x\r\nConnection: keep-alive\r\n\
             X-Internal: 1\r\nContent-Length: 5\r\nX-Folded: a\r\n b\r\n\r\nhello",
            false,
            false,
        );
        let len = "HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\nKeep-Alive: timeout=5\r\nDate: x\r\nConnection: keep-alive\r\n\
             X-Internal: 1\r\nContent-Length: 5\r\nX-Folded: a\r\n b\r\n\r\n"
            .len();
        assert_eq!(
            parsed,
            Ok(Parsed::Final(Answer {
                status: 200,
                head_len: len,
                framing: Framing::Length(5),
                reusable: true,
                close: false
            }))
        );
        assert_eq!(
            text,
            "HTTP/1.1 200 Fine\nContent-Type: text/html\nContent-Length: 5\nX-Folded: a   b\nConnection: keep-alive\n"
        );
        // No body length: chunked for the client, and the app's connection is not kept.
        let (_, text) = answer("HTTP/1.0 404 \r\n\r\n", false, true);
        assert_eq!(text, "HTTP/1.1 404 Not Found\nTransfer-Encoding: chunked\nConnection: close\n");
        // Interim answers are passed over; a protocol switch is refused.
        let early_hints = "HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n";
        assert_eq!(answer(early_hints, false, false).0, Ok(Parsed::Interim(early_hints.len())));
        assert!(answer("HTTP/1.1 101 Switching Protocols\r\n\r\n", false, false).0.is_err());
        assert_eq!(answer("HTTP/1.1 200 OK\r\nContent-", false, false).0, Ok(Parsed::Partial));
    }

    #[test]
    fn an_answer_written_while_draining_closes_the_connection() {
        // The flag is read when the answer's head is written, not when the request was taken.
        let never_sent = [HeaderName::from_static("x-internal")];
        let draining = AtomicBool::new(false);
        let context =
            AnswerContext { head_only: false, close: false, draining: Some(&draining), never_sent: &never_sent };
        let app = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut out = Vec::new();
        let Ok(Parsed::Final(kept)) = parse_answer(app, &context, &mut out) else { panic!() };
        assert!(!kept.close && out.ends_with(b"Connection: keep-alive\r\n\r\n"));
        draining.store(true, Ordering::Relaxed);
        out.clear();
        let Ok(Parsed::Final(closed)) = parse_answer(app, &context, &mut out) else { panic!() };
        assert!(closed.close && out.ends_with(b"Connection: close\r\n\r\n"));
        assert_eq!(kept.reusable, closed.reusable, "the app's connection is the app's affair");
    }

    #[test]
    fn framing_and_reuse_follow_the_apps_head() {
        use Framing::*;
        assert_eq!(framing("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false), Ok((Length(3), true)));
        assert_eq!(framing("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true), Ok((Empty, true)));
        assert_eq!(framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", false), Ok((Empty, true)));
        assert_eq!(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false), Ok((Chunked, true)));
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false),
            Ok((Length(1), false))
        );
        assert_eq!(framing("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false), Ok((Length(1), false)));
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", false),
            Ok((Length(1), true))
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n", false), Ok((UntilClose, false)));
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", false),
            Ok((Length(2), true))
        );
        // Transfer-Encoding wins over Content-Length, which is dropped.
        let (_, text) =
            answer("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n", false, false);
        assert!(!text.contains("Content-Length"), "{text}");
        for refused in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 abc\r\n\r\n",
        ] {
            assert!(framing(refused, false).is_err(), "{refused}");
        }
    }

    /// Scan `body` split at every `step` bytes; what the client would get, and whether it ended.
    fn chunked(body: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), &'static str> {
        let mut chunks = Chunks::default();
        let mut out = Vec::new();
        let mut consumed = 0;
        for piece in body.chunks(step) {
            let s = chunks.scan(piece)?;
            out.extend_from_slice(&piece[..s.forward]);
            consumed += s.consumed;
            if s.done {
                out.extend_from_slice(b"\r\n");
                return Ok((out, consumed, true));
            }
        }
        Ok((out, consumed, false))
    }

    #[test]
    fn chunked_bodies_are_checked_and_cut_at_their_end() {
        let body = b"5\r\nhello\r\n6;name=v\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\n";
        let end = body.len() - b"GET / HTTP/1.1\r\n".len();
        for step in [1, 2, 3, 7, body.len()] {
            let (out, consumed, done) = chunked(body, step).unwrap();
            assert!(done, "{step}");
            assert_eq!(out, b"5\r\nhello\r\n6;name=v\r\n world\r\n0\r\n\r\n", "{step}: trailers dropped");
            assert_eq!(consumed, end, "{step}: the bytes after the end are not the body's");
        }
        let (out, _, done) = chunked(b"A\r\n0123456789\r\n", 4).unwrap();
        assert_eq!((out.as_slice(), done), (&b"A\r\n0123456789\r\n"[..], false));
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\r\r",
            b"1234567890123456\r\n",
            b"0\r\nTrailer\n\r\n",
            b"3;\x01\r\n",
        ] {
            assert!(chunked(bad, 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
            assert!(chunked(bad, bad.len()).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"1;".as_slice(), &[b'a'; 5000], b"\r\n"].concat();
        assert!(chunked(&long, 100).is_err());
    }

    /// A small deterministic generator for the byte soups below.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }

        /// An answer field line, mostly of the kinds that matter here, sometimes garbled.
        fn field(&mut self) -> Vec<u8> {
            const NAMES: [&str; 8] = [
                "Content-Length",
                "Transfer-Encoding",
                "Connection",
                "Date",
                "X-Internal",
                "Keep-Alive",
                "X-A",
                "content-length",
            ];
            const VALUES: [&str; 9] =
                ["12", "0", "chunked", "gzip, chunked", "close", "keep-alive", "", "a\r\n b", "1, 1"];
            let name = NAMES[self.next() as usize % NAMES.len()];
            let value = match self.next() % 4 {
                0 => self.bytes(b"0123456789 ,;abc\t", 6),
                _ => VALUES[self.next() as usize % VALUES.len()].as_bytes().to_vec(),
            };
            [name.as_bytes(), b": ", &value, b"\r\n"].concat()
        }

        /// Bytes mostly from `alphabet`, sometimes any byte.
        fn bytes(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| match self.next() % 8 {
                    0 => self.next() as u8,
                    _ => alphabet[self.next() as usize % alphabet.len()],
                })
                .collect()
        }
    }

    #[test]
    fn any_bytes_from_an_app_give_an_answer_or_an_error_never_a_panic() {
        let mut rng = Lcg(7);
        let never_sent = [HeaderName::from_static("x-internal")];
        let mut finals = 0;
        for round in 0..20_000 {
            // Chunked framing: whatever the split, the scan forwards no more than it consumed,
            // consumes no more than it was given, and stops for good at the end.
            let body = rng.bytes(b"0123456789abcdefABCDEF;= \t\r\nxX", 1 + round % 64);
            let step = 1 + rng.next() as usize % body.len();
            let mut chunks = Chunks::default();
            for piece in body.chunks(step) {
                match chunks.scan(piece) {
                    Ok(s) => {
                        assert!(s.forward <= s.consumed && s.consumed <= piece.len(), "{body:?}");
                        assert!(s.done || s.consumed == piece.len(), "{body:?}");
                        if s.done {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            // Answer heads: parsed, refused or partial; a final answer's client head is one
            // head (status line, fields, blank line) with no bare CR or LF in a field.
            let head = [
                if round % 2 == 0 { &b"HTTP/1.1 "[..] } else { b"HTTP/1.0 " },
                &rng.bytes(b"1234567890", 3),
                b" OK\r\n",
                &(0..rng.next() % 8).flat_map(|_| rng.field()).collect::<Vec<u8>>(),
                b"\r\n\r\n",
            ]
            .concat();
            let context = AnswerContext {
                head_only: round % 5 == 0,
                close: round % 3 == 0,
                draining: None,
                never_sent: &never_sent,
            };
            let mut out = Vec::new();
            if let Ok(Parsed::Final(answer)) = parse_answer(&head, &context, &mut out) {
                finals += 1;
                assert!(answer.head_len <= head.len());
                let text = String::from_utf8_lossy(&out);
                assert!(text.starts_with("HTTP/1.1 ") && text.ends_with("\r\n\r\n"), "{text:?}");
                let inner = &text[..text.len() - 4];
                assert!(!inner.contains("\r\n\r\n"), "{text:?}");
                assert!(inner.split("\r\n").all(|line| !line.contains(['\r', '\n'])), "{text:?}");
                assert_eq!(text.matches("\r\nConnection: ").count(), 1, "{text:?}");
            }
        }
        // The soup is not all refused: a good share is read as answers.
        assert!(finals > 5000, "{finals} answers read");
    }

    #[test]
    fn size_lines_and_error_heads() {
        let mut line = [0u8; 20];
        assert_eq!(chunk_size_line(0x1f3a, &mut line), b"1f3a\r\n");
        let mut out = Vec::new();
        error_head(502, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\nServer: Pingora\r\nDate: "), "{text}");
        assert!(text.ends_with("Content-Length: 0\r\nCache-Control: private, no-store\r\nConnection: close\r\n\r\n"));
    }
}
