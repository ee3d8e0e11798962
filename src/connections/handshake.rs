//! TLS handshakes under the connection cap and the request-head deadline. Pingora runs each
//! handshake before Thumbora sees the connection, bounded only by its fixed 60 s and counted
//! nowhere: a client could hold any number of sockets for a minute each by opening them and
//! sending nothing. [`HandshakeGate`] is Pingora's pre-TLS callback, run on the accepted socket:
//! it takes the connection's place under `max_connections` there (over the cap, the socket is
//! closed: there is no TLS session yet to carry a `503`), holds it for the connection's whole life
//! (released when Pingora drops the socket, through the socket's tracer), and shuts the socket
//! down if the handshake has not ended within `request_head_timeout_ms` of the accept.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::{GetSocketDigest, Stream};
use pingora_core::upstreams::peer::{Tracer, Tracing};
use pingora_error::{Error, ErrorType};

use crate::metrics::Closed;

/// Where one TLS connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    /// The handshake ended and Thumbora serves the connection.
    Served,
    /// The deadline passed first: the socket was shut down.
    Expired,
    /// Pingora dropped the socket (its descriptor is about to be closed).
    Closed,
}

/// One TLS connection, from its accept to its close.
#[derive(Debug)]
struct Connection {
    fd: RawFd,
    phase: Mutex<Phase>,
}

impl Connection {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The deadline: a connection still in its handshake is shut down, which ends the handshake
    /// at once (its next read sees the end of the stream).
    fn expire(&self, timeout: Duration) {
        let mut phase = self.phase();
        if *phase != Phase::Handshaking {
            return;
        }
        // SAFETY: the descriptor is open: the phase is not `Closed`, which the socket's tracer
        // sets (under this lock) before the socket closes it. `shutdown` only ends its traffic.
        #[allow(unsafe_code)]
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
        *phase = Phase::Expired;
        log::info!("TLS handshake not finished within {timeout:?}: connection closed");
        crate::metrics::connection_closed(Closed::TlsHandshakeTimeout);
    }
}

/// Pingora's pre-TLS callback for every TLS listener (see the module's documentation).
#[derive(Debug)]
pub struct HandshakeGate {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The connections open, plain and TLS ([`super::Guarded`]'s count).
    open: Arc<AtomicUsize>,
    max_connections: usize,
    timeout: Duration,
    /// Connections in their handshake, by their socket digest's address: the TLS stream that
    /// reaches [`super::Guarded`] carries the same digest. An entry leaves the map before its
    /// socket closes, so an address is never mistaken for a later socket's.
    handshaking: Mutex<HashMap<usize, Arc<Connection>>>,
}

impl Shared {
    fn handshaking(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Arc<Connection>>> {
        self.handshaking.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The map key of a socket: the address of its digest, which the socket holds until it closes.
fn key(digest: &Arc<pingora_core::protocols::SocketDigest>) -> usize {
    Arc::as_ptr(digest) as usize
}

impl HandshakeGate {
    pub(super) fn new(open: Arc<AtomicUsize>, max_connections: usize, timeout: Duration) -> Self {
        let handshaking = Mutex::new(HashMap::new());
        HandshakeGate { shared: Arc::new(Shared { open, max_connections, timeout, handshaking }) }
    }

    /// A TLS stream whose handshake this gate watched has reached Thumbora: it keeps the place
    /// it took at the accept, and the deadline no longer applies. False for any other stream
    /// (plain TCP), which takes its place now.
    pub(super) fn handshake_done(&self, stream: &Stream) -> bool {
        if stream.get_ssl_digest().is_none() {
            return false;
        }
        let Some(digest) = stream.get_socket_digest() else { return false };
        let Some(connection) = self.shared.handshaking().remove(&key(&digest)) else { return false };
        let mut phase = connection.phase();
        // Shut down a moment ago: the connection is served no further than its first read.
        if *phase == Phase::Handshaking {
            *phase = Phase::Served;
        }
        true
    }
}

#[async_trait]
impl PreTlsProcess for HandshakeGate {
    async fn process(&self, stream: &mut L4Stream) -> pingora_error::Result<()> {
        let shared = &self.shared;
        // Every accepted socket has a digest; one without would be counted by `Guarded` instead.
        let Some(key) = stream.get_socket_digest().as_ref().map(key) else { return Ok(()) };
        let admitted = shared
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < shared.max_connections).then_some(n + 1));
        if admitted.is_err() {
            log::warn!("TLS connection refused: {} open, thumbora.max_connections", shared.max_connections);
            crate::metrics::connection_closed(Closed::MaxConnections);
            return Error::e_explain(ErrorType::ConnectRefused, "thumbora.max_connections reached");
        }
        let connection = Arc::new(Connection { fd: stream.as_raw_fd(), phase: Mutex::new(Phase::Handshaking) });
        shared.handshaking().insert(key, connection.clone());
        // The place is given back when the socket is dropped, whatever ends it.
        let release = Release { shared: shared.clone(), connection: connection.clone(), key };
        stream.tracer = Some(Tracer(Box::new(release)));
        let timeout = shared.timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            connection.expire(timeout);
        });
        Ok(())
    }
}

/// A TLS socket's tracer: when Pingora drops the socket (before it closes the descriptor), the
/// connection's place under the cap is given back and the deadline disarmed.
#[derive(Debug)]
struct Release {
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    key: usize,
}

impl Tracing for Release {
    fn on_connected(&self) {}

    fn on_disconnected(&self) {
        *self.connection.phase() = Phase::Closed;
        let mut handshaking = self.shared.handshaking();
        if handshaking.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.connection)) {
            handshaking.remove(&self.key);
        }
        drop(handshaking);
        self.shared.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Pingora clones tracers of upstream peers only; a clone releases nothing (one place, one
    /// release).
    fn boxed_clone(&self) -> Box<dyn Tracing> {
        Box::new(Inert)
    }
}

#[derive(Debug)]
struct Inert;

impl Tracing for Inert {
    fn on_connected(&self) {}
    fn on_disconnected(&self) {}
    fn boxed_clone(&self) -> Box<dyn Tracing> {
        Box::new(Inert)
    }
}
