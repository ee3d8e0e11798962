//! Client connections: a cap on how many are open at once, and a deadline for each request head,
//! around Pingora's HTTP/1 service loop. Pingora bounds each read of a head (its keep-alive and
//! read timeouts) but not the whole head, so a client sending one header line every few seconds
//! kept a connection forever; and it accepts connections without limit.
//!
//! [`Guarded`] wraps the HTTP application: over the cap, a connection gets `503` and is closed;
//! below it, the stream is wrapped in [`Clocked`], which notes when the first byte of a request
//! head arrives, and each request is raced against `request_head_timeout_ms` from that byte (from
//! the accept, for a connection's first request) until the proxy's first hook reports the head
//! complete ([`head_received`]). The keep-alive wait between requests stays Pingora's.
//!
//! A TLS connection takes its place under the cap before its handshake, which must end within the
//! same deadline ([`handshake`]).
//!
//! With one runtime per thread, a plain-TCP connection's socket is also moved to the IO driver of
//! the thread that serves it ([`adopt`]), so that its readiness does not go through the thread
//! that accepted it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest,
    UniqueID, UniqueIDType, ALPN,
};
use pingora_core::server::ShutdownWatch;
use pingora_timeout::fast_timeout::fast_timeout;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

pub mod handshake;

use handshake::HandshakeGate;

use crate::metrics::Closed;

/// What [`Guarded`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    /// Seconds an idle keep-alive connection waits for its next request (Pingora enforces it).
    pub keepalive_seconds: u64,
    /// Bytes of a client connection's write buffer (`thumbora.write_buffer_bytes`).
    pub write_buffer_bytes: usize,
    /// A write to the client that makes no progress for this long fails, and the connection
    /// closes (`thumbora.send_timeout_seconds`).
    pub send_timeout: Duration,
    /// Register each plain-TCP connection with the IO driver of the thread that serves it
    /// ([`adopt`]): on with one runtime per thread and more than one thread.
    pub adopt_sockets: bool,
}

/// An HTTP application behind the connection cap and the request-head deadline.
pub struct Guarded<A> {
    app: Arc<A>,
    limits: Limits,
    open: Arc<AtomicUsize>,
    fast: Option<Arc<dyn FastPath>>,
    gate: Option<Arc<HandshakeGate>>,
}

impl<A> Guarded<A> {
    pub fn new(app: A, limits: Limits) -> Self {
        Guarded { app: Arc::new(app), limits, open: Arc::new(AtomicUsize::new(0)), fast: None, gate: None }
    }

    /// The pre-TLS callback for this application's TLS listeners: their connections count
    /// against the cap from the accept, and their handshakes end by the head deadline.
    pub fn handshake_gate(&mut self) -> Arc<HandshakeGate> {
        let limits = &self.limits;
        let gate = self.gate.get_or_insert_with(|| {
            Arc::new(HandshakeGate::new(self.open.clone(), limits.max_connections, limits.head_timeout))
        });
        gate.clone()
    }

    /// Offer each HTTP/1.1 request head to `fast` before Pingora's session (see [`FastPath`]).
    pub fn with_fast_path(self, fast: Arc<dyn FastPath>) -> Self {
        Guarded { fast: Some(fast), ..self }
    }

    /// The number of client connections open now (the shutdown waits for it to reach zero).
    pub fn open_connections(&self) -> Arc<AtomicUsize> {
        self.open.clone()
    }
}

/// A place under the connection cap, given back on drop.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where the current request head is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Waiting for the next request (Pingora's keep-alive timeout applies).
    Idle,
    /// Bytes of a head have arrived since this instant.
    Receiving(Instant),
    /// The proxy has the whole head.
    Received,
}

/// A connection's head state, shared by its stream (which sees bytes arrive), its loop (which
/// enforces the deadline) and the proxy (which reports the head complete).
#[derive(Debug)]
struct HeadClock {
    head: Mutex<Head>,
    changed: Notify,
    /// Bytes read from the client's socket so far (an HTTP/2 connection's preface deadline reads
    /// it from outside the stream).
    read: AtomicUsize,
}

impl HeadClock {
    fn new(head: Head) -> Arc<Self> {
        Arc::new(HeadClock { head: Mutex::new(head), changed: Notify::new(), read: AtomicUsize::new(0) })
    }

    fn set(&self, head: Head) {
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
        self.changed.notify_one();
    }

    fn get(&self) -> Head {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived: a head starts, unless one is already under way or complete.
    fn bytes_arrived(&self) {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if *head == Head::Idle {
            *head = Head::Receiving(Instant::now());
            self.changed.notify_one();
        }
    }
}

tokio::task_local! {
    static CURRENT: Arc<HeadClock>;
}

/// Called by the proxy's first hook: the request head has arrived whole.
pub fn head_received() {
    let _ = CURRENT.try_with(|clock| clock.set(Head::Received));
}

/// Move a plain-TCP client connection's socket onto the IO driver of the runtime this task runs
/// on; `Err` gives back a stream that is not plain TCP (TLS), untouched.
///
/// With one runtime per thread, Pingora accepts on one thread and runs each connection on a
/// random one, but the socket stays registered with the accepting thread's driver: that driver
/// then reports every read and write readiness of the connection, and each report wakes the
/// other thread. The move is a `dup` of the descriptor registered with this runtime; dropping the
/// old stream deregisters and closes the accepted descriptor. Nothing was read from it yet.
fn adopt(stream: Stream) -> std::result::Result<Stream, Stream> {
    let Some(accepted) = stream.as_any().downcast_ref::<L4Stream>() else { return Err(stream) };
    // SAFETY: `stream` owns the descriptor and outlives this borrow, which only duplicates it.
    #[allow(unsafe_code)]
    let fd = unsafe { BorrowedFd::borrow_raw(accepted.as_raw_fd()) };
    let tcp = fd.try_clone_to_owned().map(std::net::TcpStream::from).and_then(tokio::net::TcpStream::from_std);
    let Ok(tcp) = tcp else { return Err(stream) };
    let mut adopted = L4Stream::from(tcp);
    let digest = SocketDigest::from_raw_fd(adopted.as_raw_fd());
    let _ = digest.peer_addr.set(accepted.get_socket_digest().and_then(|d| d.peer_addr().cloned()));
    adopted.set_socket_digest(digest);
    adopted.established_ts = accepted.established_ts;
    Ok(Box::new(adopted))
}

/// A request head as the fast path sees it: an HTTP/1.1 `GET` or `HEAD` with no body, no `Via`,
/// and nothing after it on the connection yet.
#[derive(Debug)]
pub struct FastRequest<'a> {
    pub head_only: bool,
    /// The request target, as sent (origin form).
    pub target: &'a str,
    pub host: Option<&'a str>,
    pub accept: Option<&'a str>,
    /// Every header, for the access log (`Referer`, `User-Agent`, `X-Forwarded-For`).
    pub headers: &'a [httparse::Header<'a>],
    /// The whole head's size in bytes.
    pub head_bytes: usize,
    /// `Connection: close`: the connection ends after this response.
    pub close: bool,
    /// A conditional or range request (which a fast hit leaves to Pingora).
    pub conditional: bool,
}

/// What the fast path answered, for its log line.
pub struct FastAnswer {
    /// The status sent (499: none, the client left first).
    pub status: u16,
    pub body_bytes: usize,
    /// Forwarded to an app server ([`FastPath::forward`]), not answered from memory.
    pub forwarded: bool,
}

/// How a request forwarded at the connection ended.
pub struct FastForwarded {
    pub answer: FastAnswer,
    /// The connection can take the next request.
    pub keep_alive: bool,
    /// The answer went out whole (a connection that ends is shut down cleanly).
    pub complete: bool,
    /// Bytes the client sent meanwhile (its next request), answered next by Pingora.
    pub early: Vec<u8>,
}

/// A forward under way.
pub type Forwarding<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = FastForwarded> + Send + 'a>>;

/// Answers some requests at the connection, before Pingora builds a session for them: fresh
/// results in memory (`fast_hit`), whose answer needs no I/O but the client's, and plain site
/// requests, forwarded to an app server (`site::direct`). Anything it declines goes to
/// Pingora's session, replayed; the connection comes back to the fast path after it when
/// Pingora read nothing but that one head (see `Clocked::read_only_replay`).
pub trait FastPath: Send + Sync {
    /// The whole response (head in `head`, body in the returned bytes), or `None` to let Pingora
    /// answer. Adds nothing to `head` when it declines.
    fn answer(&self, request: &FastRequest<'_>, head: &mut Vec<u8>) -> Option<(FastAnswer, bytes::Bytes)>;

    /// Forward the request and relay the answer to `client`, or `None` (deciding at once) to
    /// let Pingora answer.
    fn forward<'a>(&'a self, request: &'a FastRequest<'a>, client: &'a mut ClientIo<'_>) -> Option<Forwarding<'a>>;

    /// The request is answered (or the client left while it was written): metrics and log line.
    fn done(&self, request: &FastRequest<'_>, answer: &FastAnswer, peer: Option<std::net::IpAddr>, took: Duration);
}

enum Fast {
    /// The connection is over: the client closed it or went quiet, asked to close, or the
    /// server is shutting down.
    Closed,
    /// Pingora takes the connection from here, the bytes read so far replayed to it; `one_head`:
    /// they are one whole request head with no body, so the connection can come back.
    Declined { one_head: bool },
}

/// Conditional and range requests: a fast hit leaves them to Pingora (`FastRequest::conditional`).
const CONDITIONAL_HEADERS: [&str; 6] =
    ["range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range"];

/// Headers that bring a body or a protocol change: Pingora may read past the head for them.
const FRAMING_HEADERS: [&str; 4] = ["content-length", "transfer-encoding", "expect", "upgrade"];

/// Headers a fast request may carry at most once (a second is Pingora's to judge).
const SINGLE_HEADERS: [&str; 3] = ["host", "accept", "connection"];

/// A parsed head in `bytes`: the request when the fast path may answer it (see
/// [`FastRequest`]), and whether `bytes` are one whole head with no body or protocol change (a
/// connection Pingora answers it on can then come back to the fast path).
fn fast_request<'a>(bytes: &'a [u8], headers: &'a mut [httparse::Header<'a>]) -> (Option<FastRequest<'a>>, bool) {
    let mut parsed = httparse::Request::new(headers);
    let Ok(httparse::Status::Complete(head_bytes)) = parsed.parse(bytes) else { return (None, false) };
    if head_bytes != bytes.len() {
        return (None, false);
    }
    let headers: &'a [httparse::Header<'a>] = parsed.headers;
    let (mut framing, mut declined, mut conditional) = (false, false, false);
    let mut single = [None::<&str>; 3];
    for header in headers {
        let is = |names: &[&str]| names.iter().any(|n| header.name.eq_ignore_ascii_case(n));
        framing |= is(&FRAMING_HEADERS);
        // The loop guard's `Via` is Pingora's to judge.
        declined |= is(&["via"]);
        conditional |= is(&CONDITIONAL_HEADERS);
        if let Some(i) = SINGLE_HEADERS.iter().position(|h| header.name.eq_ignore_ascii_case(h)) {
            // As `HeaderValue::to_str`, which the proxy reads these with: visible ASCII only.
            let visible = header.value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
            declined |= single[i].is_some() || !visible;
            single[i] = std::str::from_utf8(header.value).ok();
        }
    }
    let one_head = !framing && parsed.method != Some("CONNECT");
    let head_only = match parsed.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return (None, one_head),
    };
    let target = parsed.path.filter(|t| t.starts_with('/'));
    let [host, accept, connection] = single;
    let close = match connection.map(str::trim) {
        None => Some(false),
        Some(c) if c.eq_ignore_ascii_case("keep-alive") => Some(false),
        Some(c) if c.eq_ignore_ascii_case("close") => Some(true),
        Some(_) => None,
    };
    let (Some(target), Some(close), Some(1), false, false) = (target, close, parsed.version, framing, declined) else {
        return (None, one_head);
    };
    (Some(FastRequest { head_only, target, host, accept, headers, head_bytes, close, conditional }), one_head)
}

/// The longest head the fast path reads before leaving the request to Pingora.
const FAST_HEAD_BYTES: usize = 4096;

/// A connection's buffers for the fast path, kept across its requests: the head read, and the
/// response head written.
struct FastBuffers {
    head: Vec<u8>,
    response: Vec<u8>,
}

/// Answer the connection's requests on `fast` for as long as it takes them.
async fn serve_fast(
    clocked: &mut Clocked,
    fast: &dyn FastPath,
    limits: &Limits,
    shutdown: &mut ShutdownWatch,
    buffers: &mut FastBuffers,
) -> Fast {
    let FastBuffers { head: buf, response: head } = buffers;
    // A connection's first request has the head deadline from the accept; between requests,
    // the wait is the keep-alive's.
    let (mut deadline, mut head_deadline) = match clocked.clock.get() {
        Head::Receiving(since) => (since + limits.head_timeout, true),
        _ => (Instant::now() + Duration::from_secs(limits.keepalive_seconds), false),
    };
    // One wait for the shutdown for all the requests this serves, not one per request (each
    // is a registration with the watch's `Notify` and its removal, 900 instructions).
    let mut watch = shutdown.clone();
    let stop = watch.changed();
    tokio::pin!(stop);
    loop {
        if *shutdown.borrow() {
            return Fast::Closed;
        }
        buf.clear();
        let read = tokio::select! {
            biased;
            // Pingora's timer wheel, as its own keep-alive wait uses: registered only when the
            // read has to wait, and cheaper than tokio's timer for a wait that is always cancelled.
            read = fast_timeout(deadline.saturating_duration_since(Instant::now()), clocked.read_buf(buf)) => read,
            // As Pingora's accept loop: only a change to `true` is the shutdown. Any other (none
            // is sent) leaves the connection to Pingora's session, which watches on its own;
            // nothing was read.
            changed = &mut stop => {
                if changed.is_err() || *shutdown.borrow() {
                    return Fast::Closed;
                }
                return clocked.decline(&[], false);
            }
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            Err(_) if head_deadline => {
                crate::metrics::connection_closed(Closed::HeadTimeout);
                return Fast::Closed;
            }
            // Quiet past the keep-alive, closed by the client, or a socket error.
            _ => return Fast::Closed,
        }
        let started = std::time::Instant::now();
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let (request, one_head) = fast_request(buf, &mut headers);
        let Some(request) = request else { return clocked.decline(buf, one_head) };
        head.clear();
        let (keep_alive, complete) = if let Some((answer, body)) = fast.answer(&request, head) {
            let body = if request.head_only { &[][..] } else { &body[..] };
            let written = write_all_vectored(&mut ClientIo(clocked), head, body).await;
            fast.done(&request, &answer, clocked.peer_ip(), started.elapsed());
            (written.is_ok() && !request.close, written.is_ok())
        } else {
            let mut client = ClientIo(clocked);
            let Some(forwarding) = fast.forward(&request, &mut client) else { return clocked.decline(buf, one_head) };
            let forwarded = forwarding.await;
            fast.done(&request, &forwarded.answer, clocked.peer_ip(), started.elapsed());
            if forwarded.keep_alive && !forwarded.early.is_empty() {
                // The client's next request arrived while the app worked: Pingora answers it.
                return clocked.decline(&forwarded.early, false);
            }
            (forwarded.keep_alive, forwarded.complete)
        };
        if !keep_alive {
            // A client that stopped reading is not waited for again.
            if complete {
                Shutdown::shutdown(&mut **clocked.inner.get_mut()).await;
            }
            return Fast::Closed;
        }
        clocked.clock.set(Head::Idle);
        (deadline, head_deadline) = (Instant::now() + Duration::from_secs(limits.keepalive_seconds), false);
    }
}

/// Write `head` then `body` with as few system calls as the socket allows (no copy into a buffer).
async fn write_all_vectored(stream: &mut (impl AsyncWrite + Unpin), head: &[u8], body: &[u8]) -> io::Result<()> {
    let (mut head, mut body) = (head, body);
    while !head.is_empty() || !body.is_empty() {
        let n = stream.write_vectored(&[io::IoSlice::new(head), io::IoSlice::new(body)]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    stream.flush().await
}

/// An HTTP/2 client's connection preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4).
const H2_PREFACE_BYTES: usize = 24;

/// Ends when an HTTP/2 connection has not sent its whole preface within `timeout`, as an HTTP/1
/// head must arrive within it: the h2 handshake waits for the preface with no deadline (a client
/// could hold a connection by sending nothing, or a byte now and then). Never ends otherwise.
async fn preface_deadline(clock: &HeadClock, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if clock.read.load(Ordering::Relaxed) >= H2_PREFACE_BYTES {
        std::future::pending::<()>().await;
    }
    log::info!("HTTP/2 client preface not received within {timeout:?}: connection closed");
    crate::metrics::connection_closed(Closed::HeadTimeout);
}

const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

#[async_trait]
impl<A> ServerApp for Guarded<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        // A TLS connection has had its place since its accept (the gate gives it back).
        let mut _slot = None;
        if !self.gate.as_ref().is_some_and(|gate| gate.handshake_done(&stream)) {
            let admitted = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_connections).then_some(n + 1)
            });
            if admitted.is_err() {
                log::warn!("connection refused: {} open, thumbora.max_connections", self.limits.max_connections);
                crate::metrics::connection_closed(Closed::MaxConnections);
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(OVER_CAPACITY)).await;
                Shutdown::shutdown(&mut *stream).await;
                return None;
            }
            _slot = Some(Slot(&self.open));
        }
        let h2c = self.app.server_options().is_some_and(|o| o.h2c);
        if h2c || matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 has its own framing: Pingora's loop, on the connection under the send
            // timeout (a client that stops reading the socket). Each stream's body writes are
            // under it too, for a client that keeps its window shut (`early_request_filter`);
            // an idle connection closes after the keep-alive timeout (`h2_idle_timeout`).
            let clock = HeadClock::new(Head::Received);
            let guarded = Box::new(Clocked::new(stream, 0, clock.clone(), self.limits.send_timeout));
            return tokio::select! {
                served = ServerApp::process_new(&self.app, guarded, shutdown) => served,
                () = preface_deadline(&clock, self.limits.head_timeout) => None,
            };
        }
        let clock = HeadClock::new(Head::Receiving(Instant::now()));
        // An adopted socket lost the listener's write buffer (Pingora sizes it at accept): the
        // buffer is here instead. Any other stream keeps its own, and this one stays empty.
        let (stream, write_buffer) = match self.limits.adopt_sockets {
            true => adopt(stream).map_or_else(|stream| (stream, 0), |stream| (stream, self.limits.write_buffer_bytes)),
            false => (stream, 0),
        };
        let mut clocked = Box::new(Clocked::new(stream, write_buffer, clock.clone(), self.limits.send_timeout));
        // A cap on requests per connection is counted by Pingora's session: none with it set.
        let request_limit = self.app.server_options().and_then(|o| o.keepalive_request_limit);
        let fast = self.fast.as_deref().filter(|_| request_limit.is_none());
        let mut watch = shutdown.clone();
        let mut buffers = FastBuffers { head: Vec::new(), response: Vec::new() };
        if fast.is_some() {
            buffers = FastBuffers { head: Vec::with_capacity(FAST_HEAD_BYTES), response: Vec::with_capacity(1024) };
        }
        loop {
            let mut clean = false;
            if let Some(fast) = fast {
                match serve_fast(&mut clocked, fast, &self.limits, &mut watch, &mut buffers).await {
                    Fast::Closed => return None,
                    // The head read so far is replayed to Pingora; its bytes already started
                    // the clock.
                    Fast::Declined { one_head } => clean = one_head,
                }
            }
            let keepalive = if *shutdown.borrow() { None } else { Some(self.limits.keepalive_seconds) };
            let mut stream: Stream = clocked;
            // Pingora's HTTP/1 loop (pingora-core apps/mod.rs), each request under the deadline.
            let mut session = ServerSession::new_http1(stream);
            session.set_keepalive(keepalive);
            session.set_keepalive_reuses_remaining(request_limit);
            loop {
                let (reused, settings) = self.one_request(session, &clock, shutdown).await?.consume();
                clock.set(Head::Idle);
                stream = reused;
                // Back to the fast path when Pingora read nothing but the one head replayed to
                // it: then it holds no bytes of a next request (its settings would carry them).
                if clean && stream.as_any().downcast_ref::<Clocked>().is_some_and(Clocked::read_only_replay) {
                    break;
                }
                clean = false;
                session = ServerSession::new_http1(stream);
                if let Some(settings) = settings {
                    settings.apply_to_session(&mut session);
                }
            }
            clocked = stream.into_any().downcast::<Clocked>().ok()?;
        }
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

impl<A> Guarded<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    /// One request on the connection; `None` (the connection closes) when its head is not whole
    /// within the deadline.
    async fn one_request(
        &self,
        session: ServerSession,
        clock: &Arc<HeadClock>,
        shutdown: &ShutdownWatch,
    ) -> Option<pingora_core::apps::ReusedHttpStream> {
        let request = CURRENT.scope(clock.clone(), self.app.process_new_http(session, shutdown));
        tokio::pin!(request);
        loop {
            let changed = clock.changed.notified();
            tokio::pin!(changed);
            match clock.get() {
                Head::Receiving(since) => {
                    tokio::select! {
                        reused = &mut request => return reused,
                        _ = tokio::time::sleep_until(since + self.limits.head_timeout) => {
                            if matches!(clock.get(), Head::Receiving(_)) {
                                log::info!("request head not complete within {:?}: connection closed", self.limits.head_timeout);
                                crate::metrics::connection_closed(Closed::HeadTimeout);
                                return None;
                            }
                        }
                        _ = &mut changed => {}
                    }
                }
                Head::Idle | Head::Received => {
                    tokio::select! {
                        reused = &mut request => return reused,
                        _ = &mut changed => {}
                    }
                }
            }
        }
    }
}

/// A client stream that tells its [`HeadClock`] when bytes arrive.
#[derive(Debug)]
pub struct Clocked {
    inner: BufWriter<Stream>,
    clock: Arc<HeadClock>,
    /// Bytes the fast path read and declined, read again before the socket's (from `replayed`).
    replay: Vec<u8>,
    replayed: usize,
    /// Bytes read from the socket since the fast path last declined a request.
    from_socket: usize,
    /// Every write to the client, buffered or not, fails once the client has taken nothing for
    /// the send timeout.
    stall: Stall,
}

/// The send timeout of one client connection: it runs from the first write that finds the
/// client's socket full until a write goes through; once it expires, every write fails at once.
#[derive(Debug)]
struct Stall {
    timeout: Duration,
    /// Allocated on the first write that waits (most connections never have one).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A write found the socket full and none has gone through since: `timer` runs.
    waiting: bool,
    expired: bool,
}

impl Stall {
    fn new(timeout: Duration) -> Self {
        Stall { timeout, timer: None, waiting: false, expired: false }
    }

    /// Run one poll of a write under the timeout.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.expired {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")));
        }
        match write(cx) {
            Poll::Ready(outcome) => {
                self.waiting = false;
                Poll::Ready(outcome)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if !self.waiting {
                    timer.as_mut().reset(tokio::time::Instant::now() + timeout);
                    self.waiting = true;
                }
                if std::future::Future::poll(timer.as_mut(), cx).is_ready() {
                    log::info!("client took none of its answer for {timeout:?}: connection closed");
                    crate::metrics::connection_closed(Closed::SendTimeout);
                    self.expired = true;
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "send timeout")));
                }
                Poll::Pending
            }
        }
    }
}

/// The client's connection as the fast path uses it: reads as [`Clocked`]'s, writes straight to
/// the socket (no copy into the write buffer, which it leaves empty) under the send timeout.
pub struct ClientIo<'a>(&'a mut Clocked);

impl ClientIo<'_> {
    /// The client's address.
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.0.peer_ip()
    }

    /// The client came over TLS.
    pub fn tls(&self) -> bool {
        self.0.get_ssl_digest().is_some()
    }
}

impl AsyncRead for ClientIo<'_> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientIo<'_> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let Clocked { inner, stall, .. } = &mut *self.0;
        stall.guard(cx, |cx| Pin::new(&mut **inner.get_mut()).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Clocked { inner, stall, .. } = &mut *self.0;
        stall.guard(cx, |cx| Pin::new(&mut **inner.get_mut()).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Clocked { inner, stall, .. } = &mut *self.0;
        stall.guard(cx, |cx| Pin::new(&mut **inner.get_mut()).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Clocked { inner, stall, .. } = &mut *self.0;
        stall.guard(cx, |cx| Pin::new(&mut **inner.get_mut()).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.0.inner.get_ref().is_write_vectored()
    }
}

impl Clocked {
    fn new(stream: Stream, write_buffer: usize, clock: Arc<HeadClock>, send_timeout: Duration) -> Self {
        let inner = BufWriter::with_capacity(write_buffer, stream);
        Clocked { inner, clock, replay: Vec::new(), replayed: 0, from_socket: 0, stall: Stall::new(send_timeout) }
    }

    /// Whether everything read since the fast path declined came from the replayed head.
    fn read_only_replay(&self) -> bool {
        self.from_socket == 0 && self.replay.is_empty()
    }

    /// Leave the connection to Pingora, which reads `read` (the bytes the fast path read) first.
    fn decline(&mut self, read: &[u8], one_head: bool) -> Fast {
        self.replay.clear();
        self.replay.extend_from_slice(read);
        self.replayed = 0;
        self.from_socket = 0;
        Fast::Declined { one_head }
    }

    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.get_socket_digest().and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()))
    }
}

impl AsyncRead for Clocked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.replayed < self.replay.len() {
            let this = &mut *self;
            let n = buf.remaining().min(this.replay.len() - this.replayed);
            buf.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                // Emptied, its capacity kept for the next head replayed.
                this.replay.clear();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.from_socket += buf.filled().len() - before;
            self.clock.bytes_arrived();
            self.clock.read.fetch_add(buf.filled().len() - before, Ordering::Relaxed);
        }
        polled
    }
}

/// Every write under the connection's send timeout ([`Stall`]).
impl AsyncWrite for Clocked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let Clocked { inner, stall, .. } = &mut *self;
        stall.guard(cx, |cx| Pin::new(inner).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Clocked { inner, stall, .. } = &mut *self;
        stall.guard(cx, |cx| Pin::new(inner).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Clocked { inner, stall, .. } = &mut *self;
        stall.guard(cx, |cx| Pin::new(inner).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Clocked { inner, stall, .. } = &mut *self;
        stall.guard(cx, |cx| Pin::new(inner).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Drop for Clocked {
    /// Send what is buffered if the socket takes it now, as Pingora's own stream does on drop: a
    /// connection closed after an error still delivers the head and body already written.
    fn drop(&mut self) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = Pin::new(&mut self.inner).poll_flush(&mut cx);
    }
}

#[async_trait]
impl Shutdown for Clocked {
    async fn shutdown(&mut self) {
        // Under the send timeout: a client that stopped reading gets no more waits.
        if AsyncWriteExt::flush(self).await.is_ok() {
            Shutdown::shutdown(&mut **self.inner.get_mut()).await
        }
    }
}

impl UniqueID for Clocked {
    fn id(&self) -> UniqueIDType {
        self.inner.get_ref().id()
    }
}

impl Ssl for Clocked {
    fn get_ssl(&self) -> Option<&pingora_core::protocols::tls::TlsRef> {
        self.inner.get_ref().get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora_core::protocols::tls::SslDigest>> {
        self.inner.get_ref().get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.get_ref().selected_alpn_proto()
    }
}

impl GetTimingDigest for Clocked {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_ref().get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_ref().get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_ref().get_write_pending_time()
    }
}

impl GetProxyDigest for Clocked {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_ref().get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.get_mut().set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Clocked {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_ref().get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.get_mut().set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for Clocked {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.get_mut().try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use tokio::io::AsyncReadExt;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// A connection accepted on one runtime, as Pingora's listener gives it, and its client.
    fn accepted_on(accepting: &tokio::runtime::Runtime) -> (Stream, std::net::TcpStream) {
        accepting.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (tcp, peer) = listener.accept().await.unwrap();
            let mut stream = L4Stream::from(tcp);
            let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
            digest.peer_addr.set(Some(peer.into())).unwrap();
            stream.set_socket_digest(digest);
            (Box::new(stream) as Stream, client)
        })
    }

    #[test]
    fn an_adopted_socket_works_without_the_runtime_that_accepted_it() {
        let accepting = runtime();
        let (stream, mut client) = accepted_on(&accepting);
        let serving = runtime();
        let mut adopted = serving.block_on(async { adopt(stream) }).expect("a plain TCP stream is adopted");
        // The accepting thread's driver is gone: only a socket registered with `serving` can
        // still be read and written.
        drop(accepting);
        let peer = adopted.get_socket_digest().and_then(|d| d.peer_addr().cloned());
        assert_eq!(peer.and_then(|p| p.as_inet().copied()), Some(client.local_addr().unwrap()), "peer address kept");
        client.write_all(b"ping").unwrap();
        let echoed = serving.block_on(async {
            let mut got = [0u8; 4];
            adopted.read_exact(&mut got).await.unwrap();
            adopted.write_all(&got).await.unwrap();
            adopted.flush().await.unwrap();
            got
        });
        assert_eq!(&echoed, b"ping");
        let mut back = [0u8; 4];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
        // One descriptor is left for the connection: the client sees EOF once it is dropped.
        drop(adopted);
        assert_eq!(client.read(&mut back).unwrap(), 0);
    }

    #[test]
    fn without_adoption_the_accepting_runtime_still_drives_the_socket() {
        // What `adopt` fixes: the accepted stream belongs to the accepting runtime's driver.
        let accepting = runtime();
        let (mut stream, mut client) = accepted_on(&accepting);
        drop(accepting);
        client.write_all(b"ping").unwrap();
        let read = runtime().block_on(async { stream.read(&mut [0u8; 4]).await });
        assert!(read.is_err(), "a socket of a stopped runtime cannot be read: {read:?}");
    }

    /// `fast_request` on `head`: (taken, head only, close, one bodiless head).
    fn fast(head: &[u8]) -> (bool, bool, bool, bool) {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let (request, one_head) = fast_request(head, &mut headers);
        match request {
            Some(r) => (true, r.head_only, r.close, one_head),
            None => (false, false, false, one_head),
        }
    }

    #[test]
    fn the_fast_path_takes_plain_gets_and_heads_only() {
        let get = |extra: &str| format!("GET /unsafe/a.jpg HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes();
        assert_eq!(fast(&get("")), (true, false, false, true));
        assert_eq!(fast(&get("Connection: close\r\n")), (true, false, true, true));
        assert_eq!(fast(&get("Connection: Keep-Alive\r\nAccept: image/webp\r\n")), (true, false, false, true));
        assert_eq!(fast(b"HEAD /a.jpg HTTP/1.1\r\n\r\n"), (true, true, false, true));
        // Conditional and range requests are taken, marked (a fast hit leaves them to Pingora;
        // a site request is forwarded with them).
        for conditional in
            [get("If-None-Match: \"x\"\r\n"), get("Range: bytes=0-1\r\n"), get("if-modified-since: x\r\n")]
        {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let (request, _) = fast_request(&conditional, &mut headers);
            assert!(request.is_some_and(|r| r.conditional), "{}", String::from_utf8_lossy(&conditional));
        }
        let (plain, mut headers) = (get(""), [httparse::EMPTY_HEADER; 64]);
        assert!(fast_request(&plain, &mut headers).0.is_some_and(|r| !r.conditional));
        // Declined, and a connection Pingora answers them on can come back.
        for declined in [
            get("Via: 1.1 thumbora\r\n"),
            get("Host: y\r\n"),
            get("Accept: café\r\n"),
            get("Connection: foo\r\n"),
            b"GET /a.jpg HTTP/1.0\r\n\r\n".to_vec(),
            b"PURGE /a.jpg HTTP/1.1\r\n\r\n".to_vec(),
            b"GET http://x/a.jpg HTTP/1.1\r\n\r\n".to_vec(),
        ] {
            assert_eq!(fast(&declined), (false, false, false, true), "{}", String::from_utf8_lossy(&declined));
        }
        // Declined, and the connection stays Pingora's: a body or protocol change may follow the
        // head, or more than one head (or less than one) was read.
        for pingoras in [
            get("Content-Length: 0\r\n"),
            get("Transfer-Encoding: chunked\r\n"),
            get("Upgrade: websocket\r\nConnection: upgrade\r\n"),
            get("Expect: 100-continue\r\n"),
            b"CONNECT x:443 HTTP/1.1\r\n\r\n".to_vec(),
            [get(""), get("")].concat(),
            get("")[..20].to_vec(),
            b"NOT HTTP\r\n\r\n".to_vec(),
        ] {
            assert_eq!(fast(&pingoras), (false, false, false, false), "{}", String::from_utf8_lossy(&pingoras));
        }
    }

    /// Write 16-byte chunks to `to` under `stall` until a write fails; the bytes written.
    async fn write_until_refused(stall: &mut Stall, to: &mut tokio::io::DuplexStream, limit: usize) -> (usize, bool) {
        let mut written = 0;
        let failed = std::future::poll_fn(|cx| loop {
            if written >= limit {
                return Poll::Ready(false);
            }
            match stall.guard(cx, |cx| Pin::new(&mut *to).poll_write(cx, &[0u8; 16])) {
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(e.kind() == io::ErrorKind::TimedOut),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await;
        (written, failed)
    }

    #[tokio::test]
    async fn a_write_the_client_never_takes_fails_after_the_send_timeout_and_so_do_later_ones() {
        let (mut near, mut far) = tokio::io::duplex(64);
        let mut stall = Stall::new(Duration::from_millis(200));
        let started = std::time::Instant::now();
        assert_eq!(write_until_refused(&mut stall, &mut near, 1 << 20).await, (64, true));
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Room again, but the connection is done with.
        let mut buf = [0u8; 64];
        far.read_exact(&mut buf).await.unwrap();
        assert_eq!(write_until_refused(&mut stall, &mut near, 16).await, (0, true));
    }

    #[tokio::test]
    async fn a_client_that_reads_slowly_is_not_cut() {
        let (mut near, mut far) = tokio::io::duplex(64);
        // Takes 64 bytes every 50 ms: each wait is shorter than the timeout, the whole far longer.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 1024 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                total += far.read(&mut buf).await.unwrap();
            }
        });
        let mut stall = Stall::new(Duration::from_millis(200));
        assert_eq!(write_until_refused(&mut stall, &mut near, 1024).await, (1024, false));
        reader.await.unwrap();
    }

    #[test]
    fn a_stream_that_is_not_plain_tcp_is_given_back() {
        let accepting = runtime();
        let (stream, _client) = accepted_on(&accepting);
        let wrapped: Stream = Box::new(Clocked::new(stream, 0, HeadClock::new(Head::Idle), Duration::from_secs(60)));
        let given_back = accepting.block_on(async { adopt(wrapped) });
        assert!(given_back.is_err_and(|s| s.as_any().is::<Clocked>()));
    }
}
