//! The site's short path: a plain GET or HEAD (no body, no upgrade, nothing hop-by-hop to
//! sanitise) sent to an app server over a kept-alive connection (kept by each thread, `pool`)
//! with Pingora's HTTP/1 client, and its answer streamed back, without Pingora's general proxy machinery
//! (cache phases, task channels, upgrade handling), which costs more than the forwarding itself.
//! Every other site request takes Pingora's proxy; both send the same request and answer the same.
//! Most plain requests never get here: the connection path (`direct`) takes them first, but with
//! `site.fast_forward: false`, from HTTP/1.0 clients, and when pipelined.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header;
use http::{Method, Version};
use pingora_core::connectors::{ConnectorOptions, TransportConnector};
use pingora_core::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora_error::{Error as PingoraError, ErrorType, Result as PingoraResult};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

use super::pool::AppPool;
use super::Site;

/// Headers whose presence sends a request down Pingora's proxy, which sanitises them: the
/// hop-by-hop fields besides `Connection` (which the short path takes only as `keep-alive` or
/// `close`, nominating nothing), and the framing and upgrade fields of a request with a body or a
/// protocol switch.
pub(super) const NEEDS_THE_FULL_PROXY: [&str; 11] = [
    "content-length",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "http2-settings",
    "expect",
];

/// Both short paths' connections to the app servers: opened by Pingora's transport connector,
/// kept idle in a pool of each thread's own ([`AppPool`]); spoken to with Pingora's HTTP/1 client
/// here, and with httparse at the connection (`direct`).
pub struct Forwarder {
    pub(super) transport: TransportConnector,
    pub(super) pool: Arc<AppPool>,
}

impl Forwarder {
    /// `per_thread`: idle connections each thread keeps (`site.keepalive`); `idle_timeout`: how
    /// long one is kept (`site.keepalive_timeout_seconds`).
    pub fn new(per_thread: usize, idle_timeout: Duration) -> Self {
        // The transport's own pool is not used.
        Forwarder {
            transport: TransportConnector::new(Some(ConnectorOptions::new(0))),
            pool: AppPool::new(per_thread, idle_timeout),
        }
    }
}

/// Whether `req` can take the short path: GET or HEAD over HTTP/1.x with no body and no field
/// that Pingora's proxy would have to sanitise.
pub fn is_plain(req: &RequestHeader) -> bool {
    if !(req.method == Method::GET || req.method == Method::HEAD) {
        return false;
    }
    if !(req.version == Version::HTTP_11 || req.version == Version::HTTP_10) {
        return false;
    }
    let mut connections = 0;
    for (name, value) in req.headers.iter() {
        if name == header::CONNECTION {
            connections += 1;
            let v = value.as_bytes().trim_ascii();
            if connections > 1 || !(v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")) {
                return false;
            }
        } else if NEEDS_THE_FULL_PROXY.iter().any(|n| name.as_str() == *n) {
            return false;
        }
    }
    true
}

impl Site {
    /// The request an app server gets: the client's, as HTTP/1.1, without `Connection`, then
    /// as on Pingora's path ([`Site::prepare_request`]).
    fn upstream_request(&self, req: &RequestHeader, client: Option<IpAddr>, tls: bool) -> PingoraResult<RequestHeader> {
        let mut up = req.clone();
        up.set_version(Version::HTTP_11);
        up.remove_header(&header::CONNECTION);
        self.prepare_request(&mut up, client, tls)?;
        Ok(up)
    }

    /// Forward a plain request ([`is_plain`]) and stream the answer to the client. An app server
    /// that refuses the connection is replaced by the next (each tried once); a kept-alive
    /// connection the app closed before answering is replaced by a new one. Errors carry their
    /// side (upstream: 502; downstream: the client is gone). `response_filter` is the
    /// proxy's, applied to the answer's head as on Pingora's path.
    pub async fn forward(
        &self,
        session: &mut Session,
        client: Option<IpAddr>,
        tls: bool,
        response_filter: impl FnOnce(&mut Session, &mut ResponseHeader) -> PingoraResult<()>,
    ) -> PingoraResult<()> {
        let head_only = session.req_header().method == Method::HEAD;
        let mut tries = Tries::default();
        let (mut upstream, app) = loop {
            // Built again for a second attempt (rare): a write consumes the request, and
            // building it from the client's request costs no more than keeping a copy.
            let request = self.upstream_request(session.req_header(), client, tls)?;
            let attempt = self.attempt(request, &mut tries);
            tokio::pin!(attempt);
            // While the app works on its answer, watch the client as Pingora's proxy does: one
            // that leaves (or sends what is not a pipelined request) ends the exchange, and the
            // app's connection is closed rather than kept waiting for an answer nobody will
            // read. The watch starts after `WATCH_AFTER`: most answers come sooner, and the
            // watch costs a read of the client's socket (started at once, about 5% of a fast
            // request's CPU). Pingora's coarse timer, made for a timeout on every request.
            let outcome = match pingora_timeout::fast_timeout::fast_timeout(WATCH_AFTER, &mut attempt).await {
                Ok(outcome) => outcome,
                Err(_) => tokio::select! {
                    outcome = &mut attempt => outcome,
                    gone = session.downstream_session.read_body_or_idle(true) => {
                        return Err(match gone {
                            Err(e) => e.into_down(),
                            Ok(_) => PingoraError::explain(ErrorType::ConnectionClosed, "client left").into_down(),
                        });
                    }
                },
            };
            if let Some(answered) = outcome? {
                break answered;
            }
        };
        let mut response = upstream
            .resp_header()
            .cloned()
            .ok_or_else(|| PingoraError::explain(ErrorType::InvalidHTTPHeader, "no response header"))?;
        let end = upstream.is_body_done() || head_only;
        let no_body = head_only || matches!(response.status.as_u16(), 204 | 304);
        if !no_body
            && !end
            && !response.headers.contains_key(header::TRANSFER_ENCODING)
            && !response.headers.contains_key(header::CONTENT_LENGTH)
        {
            // An answer delimited by closing the connection goes on chunked, so that the
            // client's connection stays open (as Pingora's proxy does).
            response.set_version(Version::HTTP_11);
            response.insert_header(header::TRANSFER_ENCODING, "chunked")?;
        }
        response_filter(session, &mut response)?;
        // The app's connection goes back to the pool as soon as its answer has been read, before
        // the client has the last of it: a client that sends its next request the moment the
        // answer is complete (on this connection or another) finds the app's connection idle.
        if end {
            self.release(upstream, app.key).await;
            return session.write_response_header(Box::new(response), true).await.map_err(|e| e.into_down());
        }
        session.write_response_header(Box::new(response), false).await.map_err(|e| e.into_down())?;
        loop {
            let body = upstream.read_body_bytes().await.map_err(|e| e.into_up())?;
            if body.is_none() || upstream.is_body_done() {
                self.release(upstream, app.key).await;
                return session.write_response_body(body, true).await.map_err(|e| e.into_down());
            }
            session.write_response_body(body, false).await.map_err(|e| e.into_down())?;
        }
    }

    /// Give the app's connection, its answer read to the end, back to the pool (or close it
    /// when `keepalive: 0` or the app asked for it).
    async fn release(&self, mut upstream: UpstreamSession, key: u64) {
        upstream.respect_keepalive();
        if let Some(stream) = upstream.reuse().await {
            self.forwarder.pool.put(key, stream);
        }
    }

    /// One attempt: send `request` and read the final response head. `None` when another
    /// attempt should follow: the app server refused the connection and there is another one to
    /// try, or a kept-alive connection had been closed under us (each one found so leaves the
    /// pool; at most a few are retried).
    async fn attempt(
        &self,
        request: RequestHeader,
        tries: &mut Tries,
    ) -> PingoraResult<Option<(UpstreamSession, &super::Upstream)>> {
        let app =
            self.upstream().map_err(|e| PingoraError::explain(ErrorType::HTTPStatus(e.status()), e.to_string()))?;
        let peer = &app.peer;
        let kept = self.forwarder.pool.take(app.key);
        let reused = kept.is_some();
        let connected = match kept {
            Some(stream) => Ok(stream),
            None => self.forwarder.transport.new_stream(peer).await,
        };
        let mut upstream = match connected {
            Ok(stream) => UpstreamSession::new_with_options(stream, peer),
            Err(e) => {
                tries.refused += 1;
                if tries.refused < self.upstream_count().max(1) {
                    return Ok(None);
                }
                return Err(e.into_up());
            }
        };
        upstream.read_timeout = peer.options.read_timeout;
        upstream.write_timeout = peer.options.write_timeout;
        match send_and_read_head(&mut upstream, request).await {
            Ok(()) => Ok(Some((upstream, app))),
            // Nothing of the answer arrived on a connection the app may have closed while it sat
            // in the pool: a GET or HEAD is safe to send again.
            Err(e)
                if reused && upstream.resp_header().is_none() && tries.stale < MAX_STALE && is_stale_connection(&e) =>
            {
                tries.stale += 1;
                Ok(None)
            }
            Err(e) => Err(e.into_up()),
        }
    }
}

/// What the attempts at one request have met so far.
#[derive(Default)]
pub(super) struct Tries {
    /// App servers that refused the connection.
    pub(super) refused: usize,
    /// Kept-alive connections found closed.
    pub(super) stale: usize,
}

async fn send_and_read_head(upstream: &mut UpstreamSession, request: RequestHeader) -> PingoraResult<()> {
    upstream.write_request_header(Box::new(request)).await?;
    // An app may send a few interim answers; one that sends them without end is broken.
    for _ in 0..MAX_INTERIM_ANSWERS {
        upstream.read_response().await?;
        match upstream.resp_header().map(|r| r.status.as_u16()) {
            // An app answering a plain request with a protocol switch is broken.
            Some(101) => {
                return Err(PingoraError::explain(ErrorType::InvalidHTTPHeader, "101 to a request without Upgrade"))
            }
            // Interim answers (100, 103) are dropped, as nginx does.
            Some(100..=199) => continue,
            _ => return Ok(()),
        }
    }
    Err(PingoraError::explain(ErrorType::InvalidHTTPHeader, "too many interim answers"))
}

/// How long an app may take before the short path starts watching for the client leaving.
pub(super) const WATCH_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// Kept-alive connections found closed that one request retries past.
pub(super) const MAX_STALE: usize = 4;

/// Interim (1xx) answers read before the final one.
pub(super) const MAX_INTERIM_ANSWERS: usize = 16;

/// A write or read failure of the kind a kept-alive connection closed by its peer gives.
fn is_stale_connection(e: &PingoraError) -> bool {
    matches!(e.etype(), ErrorType::ConnectionClosed | ErrorType::WriteError | ErrorType::ReadError | ErrorType::H1Error)
}
