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

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest,
    UniqueID, UniqueIDType, ALPN,
};
use pingora_core::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What [`Guarded`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    /// Seconds an idle keep-alive connection waits for its next request (Pingora enforces it).
    pub keepalive_seconds: u64,
}

/// An HTTP application behind the connection cap and the request-head deadline.
pub struct Guarded<A> {
    app: Arc<A>,
    limits: Limits,
    open: Arc<AtomicUsize>,
}

impl<A> Guarded<A> {
    pub fn new(app: A, limits: Limits) -> Self {
        Guarded { app: Arc::new(app), limits, open: Arc::new(AtomicUsize::new(0)) }
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
}

impl HeadClock {
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

const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";

#[async_trait]
impl<A> ServerApp for Guarded<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limits.max_connections).then_some(n + 1));
        if admitted.is_err() {
            log::warn!("connection refused: {} open, thumbora.max_connections", self.limits.max_connections);
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(OVER_CAPACITY)).await;
            Shutdown::shutdown(&mut *stream).await;
            return None;
        }
        let _slot = Slot(&self.open);
        let h2c = self.app.server_options().is_some_and(|o| o.h2c);
        if h2c || matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 has its own framing and timeouts: Pingora's loop as is.
            return ServerApp::process_new(&self.app, stream, shutdown).await;
        }
        let clock = Arc::new(HeadClock { head: Mutex::new(Head::Receiving(Instant::now())), changed: Notify::new() });
        let stream: Stream = Box::new(Clocked { inner: stream, clock: clock.clone() });
        // Pingora's HTTP/1 loop (pingora-core apps/mod.rs), each request under the deadline.
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(self.limits.keepalive_seconds) });
        session.set_keepalive_reuses_remaining(self.app.server_options().and_then(|o| o.keepalive_request_limit));
        let mut reused = self.one_request(session, &clock, shutdown).await;
        while let Some((stream, settings)) = reused.map(|r| r.consume()) {
            clock.set(Head::Idle);
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            reused = self.one_request(session, &clock, shutdown).await;
        }
        None
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
    inner: Stream,
    clock: Arc<HeadClock>,
}

impl AsyncRead for Clocked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Clocked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Clocked {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut *self.inner).await
    }
}

impl UniqueID for Clocked {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Clocked {
    fn get_ssl(&self) -> Option<&pingora_core::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora_core::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Clocked {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Clocked {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for Clocked {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for Clocked {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
