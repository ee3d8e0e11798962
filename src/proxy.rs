//! The Pingora `ProxyHttp` implementation: thin glue between pingora's hooks and Thumbora.
//!
//! Request flow (see ARCHITECTURE.md), hook by hook as Pingora calls them:
//! - `request_filter` decides what the request is ([`RequestKind`]) in named steps
//!   ([`ThumboraProxy::classify`]): head checks, healthcheck, route, then for an image: parse
//!   the thumbor URL, source and signature checks, filters, limits, `Accept` negotiation.
//!   Anything refused is answered there, before any I/O.
//! - `request_cache_filter` / `cache_key_callback`: pingora-cache for images, keyed by the
//!   canonical request. A hit is served from memory and never reaches the hooks below.
//! - `upstream_peer` (miss): an image goes to the in-process renderer (`render::connector`),
//!   which fetches, renders and answers with a complete response; a site request goes to the
//!   app servers (`site`), uncached, retried on the next server when one refuses.
//! - `response_cache_filter`: successful renders with a max-age are stored; errors never are.
//! - `response_filter`: internal headers dropped, `Connection: close` when draining, 304s.
//! - `logging`: the request's metrics and its access-log line (`access_log`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use pingora_cache::CachePhase;
use pingora_cache::{CacheKey, CacheMeta, ForcedFreshness, HitHandler, NoCacheReason, RespCacheable};
use pingora_core::protocols::http::conditional_filter;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error as PingoraError, ErrorSource, ErrorType, Result as PingoraResult};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{ProxyHttp, Session};

use crate::access_log::{self, AccessLog};
use crate::admission::{AcceptClass, AdmissionMemo, MEMO_BYTES};
use crate::cache::purge::Scope;
use crate::cache::storage::{HitTier, MemoryHit};
use crate::cache::ResultCache;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::filters;
use crate::job::{Accepts, RenderJob};
use crate::loader::http::OwnAddresses;
use crate::loader::Loaders;
use crate::metrics::{self, CacheOutcome, Route as MetricsRoute};
use crate::pipeline::meta::safe_callback;
use crate::render::connector::{peer_for, PendingRender};
use crate::render::Services;
use crate::response::Reply;
use crate::security::UrlPolicy;
use crate::site::{Route, Router, Site};
use crate::url;

/// The app's `Keep-Alive` answer header, removed by name (see `site_response_filter`).
const KEEP_ALIVE: http::HeaderName = http::HeaderName::from_static("keep-alive");

/// Per-request state.
pub struct RequestCtx {
    started: Instant,
    /// When the request body started arriving (site requests with a body).
    body_started: Option<Instant>,
    /// What the request is, as `request_filter` decided.
    kind: RequestKind,
    /// The outcome of the result-cache lookup, when there was one.
    cache: Option<CacheOutcome>,
}

/// What a request is. Decided once, in `request_filter`; the later hooks act on it.
pub enum RequestKind {
    /// Before `request_filter` has run (a request Pingora refuses earlier never leaves it).
    Unclassified,
    /// `/healthcheck`, answered in `request_filter`.
    Healthcheck,
    /// Refused in `request_filter` (oversized head, loop, no route, bad URL or signature, limits).
    Refused(ErrorKind),
    /// A thumbor image request: served from the result cache, or rendered on a miss.
    Image { key: CacheKey, pending: Arc<PendingRender> },
    /// Proxied to the app servers, uncached; `attempts` counts the connections tried.
    Site { attempts: usize },
    /// A `PURGE`, answered in `request_filter`; the error when it was refused.
    Purge(Option<ErrorKind>),
}

impl RequestKind {
    /// The route the metrics and the access log name it by, and the error it was answered with.
    fn outcome(&self) -> (MetricsRoute, Option<ErrorKind>) {
        match self {
            RequestKind::Unclassified => (MetricsRoute::Unclassified, None),
            RequestKind::Healthcheck => (MetricsRoute::Healthcheck, None),
            RequestKind::Refused(kind) => (MetricsRoute::Refused, Some(*kind)),
            RequestKind::Image { pending, .. } => (MetricsRoute::Image, pending.report.error.get().copied()),
            RequestKind::Site { .. } => (MetricsRoute::Site, None),
            RequestKind::Purge(error) => (MetricsRoute::Purge, *error),
        }
    }

    /// The render's time on its thread, when this request rendered.
    fn render_time(&self) -> Option<Duration> {
        match self {
            RequestKind::Image { pending, .. } => pending.report.render_time.get().copied(),
            _ => None,
        }
    }
}

/// A request answered in `request_filter` without going further.
struct Answer {
    kind: RequestKind,
    reply: Reply,
    /// Close the connection after the reply (its head cannot be trusted to end where it says).
    close: bool,
}

impl Answer {
    fn refusal(err: &Error) -> Box<Answer> {
        Box::new(Answer { kind: RequestKind::Refused(err.kind()), reply: Reply::error(err), close: false })
    }
}

/// Thumbora's proxy.
pub struct ThumboraProxy {
    config: Arc<Config>,
    url_policy: UrlPolicy,
    services: Arc<Services>,
    cache: Option<ResultCache>,
    router: Router,
    /// The app servers behind the rest of the site, if any.
    site: Option<Arc<Site>>,
    /// Raised during a graceful upgrade or shutdown: connections close after their response.
    draining: Arc<AtomicBool>,
    /// This server's addresses and the `Via` mark of its own fetches (loops are refused).
    own: OwnAddresses,
    /// `None` when the access log is off.
    access_log: Option<Arc<AccessLog>>,
    /// `cache.purge.allowed_addresses`, parsed.
    purge_networks: Vec<ipnet::IpNet>,
    /// Image requests admitted before, by raw target: a repeat skips parsing and hashing.
    admissions: Arc<AdmissionMemo>,
}

impl ThumboraProxy {
    pub fn new(
        config: Arc<Config>,
        url_policy: UrlPolicy,
        services: Arc<Services>,
        cache: Option<ResultCache>,
        site: Option<Arc<Site>>,
        own: OwnAddresses,
    ) -> Self {
        let router = Router::new(&config.site);
        let draining = Arc::new(AtomicBool::new(false));
        let access_log = AccessLog::new(&config.access_log).unwrap_or_else(|e| {
            let file = config.access_log.file.as_deref().unwrap_or(std::path::Path::new("-"));
            log::error!("thumbora.access_log.file: cannot open {}: {e}; no access log", file.display());
            None
        });
        let access_log = access_log.map(Arc::new);
        let purge_networks =
            config.cache.purge.allowed_addresses.iter().filter_map(|n| crate::config::parse_network(n)).collect();
        let admissions = Arc::new(AdmissionMemo::new(MEMO_BYTES));
        ThumboraProxy {
            config,
            url_policy,
            services,
            cache,
            router,
            site,
            draining,
            own,
            access_log,
            purge_networks,
            admissions,
        }
    }

    /// The bucket shared by every node, when configured.
    pub fn shared_tier(&self) -> Option<&Arc<crate::cache::shared::SharedTier>> {
        self.cache.as_ref().and_then(|c| c.shared.as_ref())
    }

    /// Share the flag the server raises when it starts draining.
    pub fn set_draining_flag(&mut self, flag: Arc<AtomicBool>) {
        self.draining = flag;
    }

    /// The loaders, with their cache of originals.
    pub fn loaders(&self) -> &Loaders {
        &self.services.loaders
    }

    /// `request_filter`'s steps, in order; the first that answers ends the request there.
    fn classify(&self, req: &RequestHeader) -> std::result::Result<RequestKind, Box<Answer>> {
        self.check_head(req)?;
        self.healthcheck(req)?;
        let raw = String::from_utf8_lossy(req.raw_path());
        let host = req.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).or(req.uri.host());
        match self.router.route(host, &raw) {
            // The target without the image prefix.
            Route::Image(target) => self.image(req, target),
            Route::Site if self.site.is_some() => Ok(RequestKind::Site { attempts: 0 }),
            Route::Site => Err(Answer::refusal(&Error::new(ErrorKind::NoRoute, "no route"))),
        }
    }

    /// Refuse a head over `max_request_header_bytes` (closing the connection), and a request that
    /// came back to this server through one of its own fetches (`Via`).
    fn check_head(&self, req: &RequestHeader) -> std::result::Result<(), Box<Answer>> {
        if let Some(err) = oversized_header(req, self.config.max_request_header_bytes) {
            log::info!("refused: {err}");
            return Err(Box::new(Answer { close: true, ..*Answer::refusal(&err) }));
        }
        let via = req.headers.get(http::header::VIA).and_then(|v| v.to_str().ok());
        if via.is_some_and(|via| self.own.sent_by_us(via)) {
            let err = Error::new(ErrorKind::LoopDetected, "a fetch of this server came back to it");
            log::warn!("refused: {err}");
            return Err(Answer::refusal(&err));
        }
        Ok(())
    }

    /// Answer `healthcheck_path` (with or without a trailing slash): 200 to GET and HEAD, 304
    /// when `If-None-Match` names its ETag (tornado's check, in thumbor).
    fn healthcheck(&self, req: &RequestHeader) -> std::result::Result<(), Box<Answer>> {
        if !self.config.is_healthcheck(req.raw_path()) {
            return Ok(());
        }
        let mut reply = match req.method {
            http::Method::GET => Reply::healthcheck(false),
            http::Method::HEAD => Reply::healthcheck(true),
            _ => Reply::error(&Error::new(ErrorKind::MethodNotAllowed, "healthcheck")),
        };
        let inm = req.headers.get(http::header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        if let (Some(inm), Some(etag)) = (inm, reply.header("ETag")) {
            if reply.status == 200 && etag_matches(inm, etag) {
                reply = reply.into_not_modified();
            }
        }
        Err(Box::new(Answer { kind: RequestKind::Healthcheck, reply, close: false }))
    }

    /// An image route's target (prefix removed) admitted as a render job with its cache key, or
    /// refused: other methods than GET and HEAD are 405 on an image path, 404 elsewhere.
    fn image(&self, req: &RequestHeader, target: &str) -> std::result::Result<RequestKind, Box<Answer>> {
        let method = &req.method;
        let admitted = if matches!(*method, http::Method::GET | http::Method::HEAD) {
            let accept = accept_field(req);
            let accept = accept.as_deref();
            self.admissions.admit(target, self.accept_class(accept), || self.admit(target, accept))
        } else if url::parse(target.split('?').next().unwrap_or_default()).is_ok() {
            Err(Error::new(ErrorKind::MethodNotAllowed, format!("{method} on an image route")))
        } else {
            Err(Error::new(ErrorKind::NoRoute, "no thumbor route"))
        };
        match admitted {
            Ok(admitted) => Ok(RequestKind::Image {
                key: admitted.key.clone(),
                pending: Arc::new(PendingRender {
                    job: admitted.job.clone(),
                    services: self.services.clone(),
                    report: Default::default(),
                }),
            }),
            Err(err) => {
                log::info!("{method} {target} -> {}: {err}", err.status());
                Err(Answer::refusal(&err))
            }
        }
    }

    /// `PURGE <thumbor URL>` drops that URL's results (every `Accept` and callback variant) from
    /// every tier; `PURGE <thumbor URL>?source` drops every result of that URL's source image.
    /// Allowed with one of `cache.purge.tokens` (`Authorization: Bearer ...`) or from one of
    /// `cache.purge.allowed_addresses`; 403 otherwise. The URL's signature is not checked.
    async fn purge(&self, session: &Session) -> (RequestKind, Reply) {
        let refused = |err: Error| {
            log::info!("PURGE refused: {err}");
            (RequestKind::Purge(Some(err.kind())), Reply::error(&err))
        };
        let req = session.req_header();
        let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        if !self.purge_allowed(req, client) {
            return refused(Error::new(ErrorKind::Forbidden, "no purge token or allowed address"));
        }
        let raw = String::from_utf8_lossy(req.raw_path()).into_owned();
        let host = req.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).or(req.uri.host());
        let Route::Image(target) = self.router.route(host, &raw) else {
            return refused(Error::new(ErrorKind::NoRoute, "not an image route"));
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let request = match url::parse(path) {
            Ok(request) if !request.image.is_empty() => request,
            Ok(_) => return refused(Error::new(ErrorKind::BadUrl, "no image URL")),
            Err(err) => return refused(Error::new(ErrorKind::BadUrl, err.to_string())),
        };
        let whole_source = query.split('&').any(|p| p == "source" || p.starts_with("source="));
        // `?source=<image URL>` may name the source again, but not another one: that purge would
        // drop what the path names while its caller thinks it dropped something else.
        if let Some(named) = query_param(query, "source").filter(|named| !named.is_empty()) {
            if named != request.image && Some(&named) != url::percent_decode_utf8(&request.image).as_ref() {
                let err = format!("source={named} is not the URL's image {}", request.image);
                return refused(Error::new(ErrorKind::BadUrl, err));
            }
        }
        let scope = match whole_source {
            true => Scope::Source(request.image.clone()),
            false => Scope::Url(url::compose_unsigned(&request)),
        };
        let job = RenderJob { request, filters: vec![], accepts: Accepts::default(), meta_callback: None };
        // The original goes first (and on the other nodes, which read the journal): the next
        // render fetches it again, so a purge after the image changed at its origin shows the
        // new one even while the old bytes would still be fresh in `sources.cache_ttl_seconds`.
        // The originals cache works with the result cache off too.
        self.loaders().forget(&job.request.image).await;
        let Some(cache) = &self.cache else {
            let text = "no results cached: the result cache is off; the original was dropped\n";
            return (RequestKind::Purge(None), Reply::text(200, text.into()));
        };
        let removed = cache.purge(&job, &scope).await;
        metrics::purged(scope.label());
        log::info!("PURGE {raw}: {} dropped, {removed} local entries removed", scope.label());
        (RequestKind::Purge(None), Reply::text(200, format!("purged {}: {removed} local entries\n", scope.label())))
    }

    fn purge_allowed(&self, req: &RequestHeader, client: Option<std::net::IpAddr>) -> bool {
        let purge = &self.config.cache.purge;
        let bearer = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer {
            use subtle::ConstantTimeEq;
            if purge.tokens.iter().any(|t| bool::from(t.as_bytes().ct_eq(token.as_bytes()))) {
                return true;
            }
        }
        client.is_some_and(|ip| self.purge_networks.iter().any(|net| net.contains(&ip)))
    }

    /// A 200 whose `ETag` the request's `If-None-Match` names (thumbor's ETags): answered 304.
    fn etag_not_modified(&self, req: &RequestHeader, response: &ResponseHeader) -> bool {
        if response.status != http::StatusCode::OK || !self.config.response.etags {
            return false;
        }
        let inm = req.headers.get(http::header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        let etag = response.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok());
        matches!((inm, etag), (Some(inm), Some(etag)) if etag_matches(inm, etag))
    }

    /// The `Accept` class [`Self::admit`] can tell apart: none unless the config negotiates formats.
    fn accept_class(&self, accept: Option<&str>) -> AcceptClass {
        crate::admission::accept_class(&self.config.image, accept)
    }

    /// What answers fresh hits at the connection (`fast_hit`), sharing this proxy's memo,
    /// cache, log and draining flag; `None` without a result cache.
    /// What answers at the connection: fresh hits (`fast_hits`) and plain site requests
    /// (`site.fast_forward`); `None` when neither is on.
    pub fn fast_path(&self) -> Option<crate::fast_hit::FastAnswers> {
        let cache = self.cache.clone().filter(|_| self.config.fast_hits);
        let site = self.site.clone().filter(|_| self.config.site.fast_forward);
        if cache.is_none() && site.is_none() {
            return None;
        }
        Some(crate::fast_hit::FastAnswers {
            config: self.config.clone(),
            router: self.router.clone(),
            admissions: self.admissions.clone(),
            cache,
            site,
            draining: self.draining.clone(),
            access_log: self.access_log.clone(),
        })
    }

    /// Turn an image request into a render job, or the error that refuses it (no I/O here).
    fn admit(&self, raw_target: &str, accept: Option<&str>) -> Result<RenderJob> {
        let (path, query) = raw_target.split_once('?').unwrap_or((raw_target, ""));
        let request = url::parse(path)?;
        if request.image.is_empty() {
            return Err(Error::new(ErrorKind::BadUrl, "no image URL"));
        }
        // thumbor's order: the loader validates the image URL, then unsafe/signature.
        self.loaders().precheck(&request.image)?;
        self.url_policy.check(&request, path)?;
        let parsed_filters = filters::parse_all(&request.filters, self.config.image.strict_filters)?;
        filters::check_request(&request.filters, &parsed_filters, &self.config.image)?;
        // thumbor's META_CALLBACK_NAME, else `?callback=` (when it is a plain name).
        let meta_callback = match &self.config.response.meta_callback_name {
            Some(name) if request.meta => Some(name.clone()),
            _ => request
                .meta
                .then(|| query_param(query, "callback"))
                .flatten()
                .and_then(|cb| safe_callback(&cb).map(str::to_string)),
        };
        let mut job = RenderJob { request, filters: parsed_filters, accepts: Accepts::default(), meta_callback };
        // The Accept class is part of the cache key only when it can change the output; otherwise
        // all clients share one entry. It can also under `format()`: GIFs skip that filter (as in
        // thumbor, unless `image.gif_filters`), and the source is not known yet.
        if let Some(accept) = accept.filter(|_| self.config.image.auto_formats()) {
            job.accepts = crate::negotiate::accepts(accept);
        }
        job.check_limits(&self.config.image)?;
        Ok(job)
    }
}

impl ThumboraProxy {
    /// A plain site request (GET or HEAD, nothing to sanitise) on the site's short path.
    async fn forward_plain(&self, session: &mut Session) -> PingoraResult<()> {
        let Some(site) = &self.site else {
            return Err(PingoraError::explain(ErrorType::InternalError, "no app servers"));
        };
        let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        site.forward(session, client, tls, |session, response| self.site_response_filter(session, response)).await
    }

    /// An app's answer, on either path: as every answer, and without the app's `Keep-Alive`,
    /// which is about its connection to us, not the client's (nginx drops it too). An HTTP/1.0
    /// client cannot read chunked framing (which both paths give an answer that had none, to
    /// keep the client's connection): it gets the body delimited by the connection's end.
    fn site_response_filter(&self, session: &mut Session, response: &mut ResponseHeader) -> PingoraResult<()> {
        response.remove_header(&KEEP_ALIVE);
        if session.req_header().version < http::Version::HTTP_11
            && response.headers.contains_key(http::header::TRANSFER_ENCODING)
        {
            response.remove_header(&http::header::TRANSFER_ENCODING);
            session.set_keepalive(None);
        }
        self.any_response_filter(session, response)
    }

    /// What every answer's head goes through, the site's included: internal headers never leave
    /// (the virtual upstream closes each connection; the client's stays open), and a process
    /// handing over to another one closes the connection.
    fn any_response_filter(&self, session: &mut Session, response: &mut ResponseHeader) -> PingoraResult<()> {
        for name in &crate::response::NEVER_SENT {
            response.remove_header(name);
        }
        if self.draining.load(Ordering::Relaxed) {
            session.set_keepalive(None);
            response.insert_header("Connection", "close")?;
        }
        Ok(())
    }

    /// Answer a fresh result held in memory here, without pingora-cache's lookup, lock and hit
    /// handler: the same status, headers and body its hit path sends (`Age`, `Accept-Ranges`,
    /// 304 for a matching `If-None-Match`/`If-Modified-Since`, no body for HEAD, then
    /// `response_filter`). Range requests, background refreshes and results that are on disk
    /// only, expired or purged take the full path (`Ok(false)`). Most such hits never get here:
    /// `fast_hit` answers them at the connection with the same bytes, so a check added on the
    /// way here (in `classify` or above) must be added there too, or make it decline.
    async fn serve_fresh_hit(&self, session: &mut Session, ctx: &mut RequestCtx) -> PingoraResult<bool> {
        let (Some(cache), RequestKind::Image { key, pending }) = (&self.cache, &ctx.kind) else { return Ok(false) };
        let req = session.req_header();
        if session.subrequest_ctx.is_some() || req.headers.contains_key(http::header::RANGE) {
            return Ok(false);
        }
        let Some(hit) = cache.fresh_in_memory(key, &pending.job) else { return Ok(false) };
        // Already what `response_filter` makes of a hit from memory, but for `Age`, a 304 and
        // draining (see `response::fresh_hit_header`).
        let mut header = hit.header;
        let age = SystemTime::now().duration_since(hit.created).unwrap_or_default().as_secs();
        header.insert_header(http::header::AGE, age)?;
        header.set_version(http::Version::HTTP_11);
        let not_modified =
            conditional_filter::not_modified_filter(req, &header) || self.etag_not_modified(req, &header);
        if not_modified {
            conditional_filter::to_304(&mut header);
        }
        let header_only = not_modified || req.method == http::Method::HEAD;
        if self.draining.load(Ordering::Relaxed) {
            session.set_keepalive(None);
            header.insert_header("Connection", "close")?;
        }
        ctx.cache = Some(CacheOutcome::Hit);
        session.write_response_header(Box::new(header), header_only).await?;
        if !header_only {
            session.write_response_body(Some(hit.body), true).await?;
        }
        Ok(true)
    }
}

/// A request header block over `max_header_bytes` (Pingora itself allows up to 1 MiB).
fn oversized_header(req: &pingora_http::RequestHeader, max_header_bytes: usize) -> Option<Error> {
    let headers = &req.headers;
    let size =
        req.raw_path().len() + headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    (size > max_header_bytes).then(|| Error::new(ErrorKind::HeadersTooLarge, format!("{size} bytes of request header")))
}

/// The first value of `name` in a query string, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| url::percent_decode_utf8(&v.replace('+', " ")).unwrap_or_default())
    })
}

/// Write `reply` as the whole response.
async fn send(session: &mut Session, reply: &Reply) -> PingoraResult<()> {
    let mut header = ResponseHeader::build(reply.status, Some(reply.headers.len() + 2))?;
    for (name, value) in &reply.headers {
        header.insert_header(*name, value.as_str())?;
    }
    // A 304 has no body, and no length (it would be the length of the representation it omits).
    let bodiless = reply.status == 304;
    if !bodiless {
        header.insert_header("Content-Length", reply.body.len().to_string())?;
    }
    let head_only = bodiless || session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(header), head_only).await?;
    if !head_only {
        session.write_response_body(Some(reply.body.clone()), true).await?;
    }
    Ok(())
}

#[async_trait]
impl ProxyHttp for ThumboraProxy {
    type CTX = RequestCtx;

    /// Pingora calls this when a request starts.
    fn new_ctx(&self) -> Self::CTX {
        RequestCtx { started: Instant::now(), body_started: None, kind: RequestKind::Unclassified, cache: None }
    }

    /// Pingora calls this first, once the request head is read: we set the connection's read,
    /// keep-alive and pipelining rules.
    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Self::CTX) -> PingoraResult<()> {
        // The head is whole: the connection's head deadline no longer applies to this request.
        crate::connections::head_received();
        // No read of a body waits longer than the whole body may take (Pingora's default: a
        // minute a read); `request_body_filter` bounds the whole body.
        session.set_read_timeout(Some(Duration::from_millis(self.config.request_body_timeout_ms)));
        if session.is_http2() {
            // A stream's body waits for the client's flow-control window, which the client may
            // never open: each write waits at most the send timeout (HTTP/1 connections have it
            // on their socket, `connections::Stall`).
            session.set_write_timeout(Some(Duration::from_secs(self.config.send_timeout_seconds)));
        }
        // Bound idle keep-alive connections (Pingora's HTTP/1.1 default is to wait forever), but
        // never turn keep-alive back on where Pingora turned it off (`Connection: close`, or
        // Transfer-Encoding beside Content-Length: RFC 9112 §6.1 closes after the response).
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(self.config.keepalive_seconds));
            // Pipelined requests are answered in order, as nginx and tornado do (Pingora's
            // default closes the connection after the first and drops the rest).
            session.set_pipelining_enabled(true);
        }
        Ok(())
    }

    /// Pingora calls this once the request head is read, before any cache or upstream work: we
    /// decide what the request is, and answer at once whatever needs no I/O (see [`Self::classify`]),
    /// fresh results in memory included (see [`Self::serve_fresh_hit`]).
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PingoraResult<bool> {
        if session.req_header().method.as_str() == "PURGE" && self.check_head(session.req_header()).is_ok() {
            let (kind, reply) = self.purge(session).await;
            ctx.kind = kind;
            send(session, &reply).await?;
            return Ok(true);
        }
        match self.classify(session.req_header()) {
            Ok(RequestKind::Site { .. }) if crate::site::is_plain(session.req_header()) => {
                ctx.kind = RequestKind::Site { attempts: 1 };
                // Boxed: inline, its state would grow every request's `request_filter` future,
                // which is copied when Pingora boxes it (10k instructions a hit).
                Box::pin(self.forward_plain(session)).await?;
                Ok(true)
            }
            Ok(kind) => {
                ctx.kind = kind;
                self.serve_fresh_hit(session, ctx).await
            }
            Err(answer) => {
                let answer = *answer;
                ctx.kind = answer.kind;
                let mut reply = answer.reply;
                if answer.close {
                    session.set_keepalive(None);
                    reply.headers.push(("Connection", "close".into()));
                }
                send(session, &reply).await?;
                Ok(true)
            }
        }
    }

    /// Pingora calls this for each piece of a request body: the whole body has a deadline.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> PingoraResult<()> {
        // Called for each piece of a request body: the whole body has a deadline (a read that
        // waits for the next piece is bounded by the read timeout set in `early_request_filter`).
        let started = *ctx.body_started.get_or_insert_with(Instant::now);
        if started.elapsed() > Duration::from_millis(self.config.request_body_timeout_ms) {
            return Err(PingoraError::explain(ErrorType::ReadTimedout, "request body passed request_body_timeout_ms"));
        }
        Ok(())
    }

    /// Pingora calls this after `request_filter` lets a request through: we turn the result
    /// cache on for image requests (site requests stay uncached).
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PingoraResult<()> {
        if let (Some(cache), RequestKind::Image { .. }) = (&self.cache, &ctx.kind) {
            session.cache.enable(cache.storage, Some(cache.eviction), None, Some(cache.lock), None);
            session.cache.set_max_file_size_bytes(cache.max_object_bytes);
        }
        Ok(())
    }

    /// Pingora calls this when the cache is on, to look the request up: the key decided at
    /// admission (the canonical request and what changes the output).
    fn cache_key_callback(&self, _session: &Session, ctx: &mut Self::CTX) -> PingoraResult<CacheKey> {
        match &ctx.kind {
            RequestKind::Image { key, .. } => Ok(key.clone()),
            _ => Err(PingoraError::explain(ErrorType::InternalError, "no cache key for this request")),
        }
    }

    /// Pingora calls this when a lookup finds nothing cached (after any wait on the cache lock):
    /// we note the miss and let the response be admitted (the default).
    fn cache_miss(&self, session: &mut Session, ctx: &mut Self::CTX) {
        ctx.cache = Some(CacheOutcome::Miss);
        session.cache.cache_miss();
    }

    /// Pingora calls this when a lookup finds a cached result, fresh or expired: we note which
    /// (and the tier it came from), and treat a result purged since it was created as a miss.
    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        meta: &CacheMeta,
        hit_handler: &mut HitHandler,
        is_fresh: bool,
        ctx: &mut Self::CTX,
    ) -> PingoraResult<Option<ForcedFreshness>> {
        if let (Some(cache), RequestKind::Image { pending, .. }) = (&self.cache, &ctx.kind) {
            if cache.bans.covers(&pending.job, meta.created()) {
                ctx.cache = Some(CacheOutcome::Miss);
                return Ok(Some(ForcedFreshness::ForceMiss));
            }
        }
        let tier = hit_handler.as_any().downcast_ref::<MemoryHit>().map_or(HitTier::Memory, MemoryHit::tier);
        ctx.cache = Some(match (is_fresh, tier) {
            (true, HitTier::Memory) => CacheOutcome::Hit,
            (true, HitTier::Disk) => CacheOutcome::HitDisk,
            (false, _) => CacheOutcome::Expired,
        });
        Ok(None)
    }

    /// Pingora asks this before serving an expired result: during its stale-while-revalidate
    /// window (`error` is `None`: one request renders it again in the background), or when the
    /// render failed with a 5xx within its stale-if-error window. The windows come from
    /// `cache.stale_*_seconds`; here we only refuse stale answers for errors of our own making.
    fn should_serve_stale(&self, _session: &mut Session, ctx: &mut Self::CTX, error: Option<&PingoraError>) -> bool {
        let serve = error.is_none_or(|e| e.esource() == &ErrorSource::Upstream);
        if serve {
            ctx.cache = Some(CacheOutcome::Stale);
        }
        serve
    }

    /// Pingora calls this on a cache miss (and for each retry): an image goes to the in-process
    /// renderer, a site request to the next app server.
    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Self::CTX) -> PingoraResult<Box<HttpPeer>> {
        match (&mut ctx.kind, &self.site) {
            (RequestKind::Image { pending, .. }, _) => Ok(Box::new(peer_for(pending.clone()))),
            (RequestKind::Site { attempts }, Some(site)) => {
                *attempts += 1;
                site.peer()
                    .map(Box::new)
                    .map_err(|e| PingoraError::explain(ErrorType::HTTPStatus(e.status()), e.to_string()))
            }
            _ => Err(PingoraError::explain(ErrorType::InternalError, "no upstream for this request")),
        }
    }

    /// Pingora calls this when a connection to the peer fails: an app server that refuses is
    /// retried on the next one (each at most once).
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<PingoraError>,
    ) -> Box<PingoraError> {
        if let (RequestKind::Site { attempts }, Some(site)) = (&ctx.kind, &self.site) {
            if *attempts < site.upstream_count() {
                e.set_retry(true);
            }
        }
        e
    }

    /// Pingora calls this before sending the request upstream: forwarding headers for app
    /// servers; for the renderer, a HEAD becomes a GET, and an expired result's source
    /// validators go along so that it can answer 304 when the source has not changed.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora_http::RequestHeader,
        ctx: &mut Self::CTX,
    ) -> PingoraResult<()> {
        if let RequestKind::Site { .. } = ctx.kind {
            let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
            let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
            if let Some(site) = &self.site {
                site.prepare_request(upstream_request, client, tls)?;
            }
        } else if upstream_request.method == http::Method::HEAD {
            // A HEAD miss renders the whole image anyway (its Content-Length is the rendered
            // size): ask the renderer for the body too, so the result is cached and the next GET
            // is a hit (nginx's proxy_cache_convert_head). Pingora still answers the client's
            // HEAD without a body.
            upstream_request.set_method(http::Method::GET);
        }
        if let RequestKind::Image { .. } = ctx.kind {
            // The renderer reads the request line and the source validators, nothing else: the
            // client's own fields (cookies; up to `max_request_header_bytes` of them) stay out of
            // the pipe, whose reader takes 64 KiB of head at most.
            let method = upstream_request.method.clone();
            *upstream_request = RequestHeader::build(method, upstream_request.raw_path(), Some(2))?;
            send_source_validators(session, upstream_request)?;
        }
        Ok(())
    }

    /// Pingora calls this on an upstream response when the cache is on: only 200s with a max-age
    /// are stored (errors never are).
    fn response_cache_filter(
        &self,
        _session: &Session,
        resp: &ResponseHeader,
        _ctx: &mut Self::CTX,
    ) -> PingoraResult<RespCacheable> {
        if resp.status != http::StatusCode::OK || resp.headers.contains_key(crate::response::NO_STORE) {
            return Ok(RespCacheable::Uncacheable(NoCacheReason::OriginNotCache));
        }
        let max_age = resp
            .headers
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::response::max_age)
            .unwrap_or(0);
        if max_age == 0 {
            return Ok(RespCacheable::Uncacheable(NoCacheReason::OriginNotCache));
        }
        // A result from the shared tier is as old as its first render, on whichever node.
        let shared_created = resp
            .headers
            .get(crate::response::FROM_SHARED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|secs| std::time::UNIX_EPOCH + Duration::from_secs(secs));
        let now = shared_created.unwrap_or_else(SystemTime::now);
        // `Expires` bounds max-age at the year 9999; stay well inside SystemTime's range anyway.
        let fresh_until = now.checked_add(Duration::from_secs(max_age)).unwrap_or(now + Duration::from_secs(1 << 32));
        let mut resp = resp.clone();
        resp.remove_header(crate::response::FROM_SHARED);
        let cfg = &self.config.cache;
        let (swr, sie) = (cfg.stale_while_revalidate_seconds, cfg.stale_if_error_seconds);
        Ok(RespCacheable::Cacheable(CacheMeta::new(fresh_until, now, swr, sie, resp)))
    }

    /// Pingora calls this before a response header goes to the client, from upstream or from
    /// the cache: we drop internal headers, close when draining, and answer `If-None-Match` with 304.
    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> PingoraResult<()> {
        if let RequestKind::Site { .. } = ctx.kind {
            return self.site_response_filter(session, upstream_response);
        }
        self.any_response_filter(session, upstream_response)?;
        let from_shared = upstream_response.remove_header(crate::response::FROM_SHARED).is_some();
        let outcome = match session.cache.phase() {
            CachePhase::Stale | CachePhase::StaleUpdating => Some(CacheOutcome::Stale),
            CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => Some(CacheOutcome::Revalidated),
            CachePhase::Miss | CachePhase::Expired if from_shared => Some(CacheOutcome::HitShared),
            // A hit `serve_fresh_hit` answers never reaches pingora-cache.
            CachePhase::Disabled(NoCacheReason::NeverEnabled) if ctx.cache == Some(CacheOutcome::Hit) => ctx.cache,
            // A result that was cached but expired stays `EXPIRED` when its render failed (the
            // error is not cached, which disables the cache for the request).
            CachePhase::Disabled(_) | CachePhase::Uninit | CachePhase::Bypass
                if ctx.cache == Some(CacheOutcome::Expired) =>
            {
                ctx.cache
            }
            CachePhase::Disabled(_) | CachePhase::Uninit | CachePhase::Bypass => Some(CacheOutcome::Miss),
            _ => ctx.cache,
        };
        ctx.cache = outcome.or(ctx.cache);
        if let Some(outcome) = outcome {
            upstream_response.insert_header("X-Cache", outcome.x_cache())?;
        }
        if self.etag_not_modified(session.req_header(), upstream_response) {
            conditional_filter::to_304(upstream_response);
        }
        Ok(())
    }

    /// Pingora calls this last, for every request (hits, early answers and failures included):
    /// the request's metrics and its access-log line.
    async fn logging(&self, session: &mut Session, _e: Option<&PingoraError>, ctx: &mut Self::CTX) {
        let elapsed = ctx.started.elapsed();
        // Nothing written: the client left first (nginx's 499).
        let status = session.response_written().map_or(499, |r| r.status.as_u16());
        let (route, error) = ctx.kind.outcome();
        metrics::request_done(route, status, elapsed);
        if let Some(outcome) = ctx.cache {
            metrics::cache_lookup(outcome, elapsed);
        }
        if let Some(kind) = error {
            metrics::answered_with_error(kind);
        }
        // A background render (stale-while-revalidate) has no client: no access-log line.
        let Some(access) = self.access_log.as_ref().filter(|_| session.subrequest_ctx.is_none()) else { return };
        let req = session.req_header();
        let peer = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let forwarded_for = req.headers.get_all("x-forwarded-for").iter().map(|v| v.as_bytes());
        access.log(access_log::Entry {
            time: SystemTime::now(),
            client: access_log::client_address(peer, forwarded_for, access.trusted_proxies()),
            method: req.method.clone(),
            target: req.raw_path().to_vec(),
            version: req.version,
            status,
            body_bytes: session.body_bytes_sent(),
            referer: req.headers.get(http::header::REFERER).cloned(),
            user_agent: req.headers.get(http::header::USER_AGENT).cloned(),
            request_time: elapsed,
            cache: ctx.cache,
            render_time: ctx.kind.render_time(),
            route,
            error,
        });
    }
}

/// The renderer's revalidation headers: the source validators stored with the expired result
/// being revalidated (pingora-cache's `Stale` phase), and never what a client sent. (Pingora itself
/// adds `If-None-Match` with the result's own ETag; the renderer does not read it.)
fn send_source_validators(session: &Session, upstream_request: &mut RequestHeader) -> PingoraResult<()> {
    use crate::response::{IF_SOURCE_MODIFIED_SINCE, IF_SOURCE_NONE_MATCH, SOURCE_ETAG, SOURCE_LAST_MODIFIED};
    if session.cache.phase() != CachePhase::Stale {
        return Ok(());
    }
    let Some(meta) = session.cache.maybe_cache_meta() else { return Ok(()) };
    for (stored, sent) in [(SOURCE_ETAG, IF_SOURCE_NONE_MATCH), (SOURCE_LAST_MODIFIED, IF_SOURCE_MODIFIED_SINCE)] {
        if let Some(value) = meta.headers().get(stored) {
            upstream_request.insert_header(sent, value.clone())?;
        }
    }
    Ok(())
}

/// tornado's `check_etag_header`: `*` or any listed tag equal to ours, weak or strong.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = strip(etag);
    if_none_match.trim() == "*" || if_none_match.split(',').any(|t| strip(t) == ours)
}

/// The client's `Accept`, its field lines joined with ", " when it sent several (RFC 9110 §5.3,
/// as tornado reads them for thumbor). The connection's fast path takes only heads with one.
fn accept_field(req: &RequestHeader) -> Option<std::borrow::Cow<'_, str>> {
    let mut lines = req.headers.get_all(http::header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
    let first = lines.next()?;
    match lines.next() {
        None => Some(std::borrow::Cow::Borrowed(first)),
        Some(second) => {
            Some(std::borrow::Cow::Owned([first, second].into_iter().chain(lines).collect::<Vec<_>>().join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }

    #[test]
    fn max_age_and_query() {
        assert_eq!(query_param("a=1&callback=cb", "callback").as_deref(), Some("cb"));
        assert_eq!(query_param("callback", "callback").as_deref(), Some(""));
        assert_eq!(query_param("x=1", "callback"), None);
    }
}
