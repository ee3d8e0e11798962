//! Fresh results in memory answered at the connection, before Pingora builds a session: the
//! [`FastPath`] of `connections`, on by default (`thumbora.fast_hits`); and plain site requests
//! forwarded there (`site::direct`, `thumbora.site.fast_forward`).
//!
//! Only what `proxy` would answer from `request_filter` with no I/O is answered here: an image
//! route whose raw target and `Accept` class were admitted before (`admission`'s memo, so the
//! URL, source and signature checks already passed for exactly these bytes), and whose result
//! is fresh in memory and covered by no purge. The response is the one Pingora's writer sends
//! for `proxy`'s hit: the stored hit header, `Age`, then `Date` and `Connection`, in that order.
//! Anything else (a first request for a URL, a miss, conditional and range requests, a draining
//! server) is declined and goes through Pingora as before, which is where every decision made
//! here is also made.
//!
//! A site request is forwarded here when `proxy` would send it down the site's short path: a
//! site route (not the health check) whose fields need nothing of Pingora's proxy
//! (`site::is_direct`), on a server that is not draining.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pingora_http::ResponseHeader;

use crate::access_log::{self, AccessLog};
use crate::admission::AdmissionMemo;
use crate::cache::ResultCache;
use crate::config::Config;
use crate::connections::{ClientIo, FastAnswer, FastForwarded, FastPath, FastRequest, Forwarding};
use crate::metrics::{self, CacheOutcome, Route as MetricsRoute};
use crate::site::{DirectRequest, Route, Router, Site};

/// What the connection's answers need of the proxy: its config, router, memo, cache (when
/// `fast_hits` is on), app servers (when `site.fast_forward` is on), log and draining flag.
pub struct FastAnswers {
    pub config: Arc<Config>,
    pub router: Router,
    pub admissions: Arc<AdmissionMemo>,
    pub cache: Option<ResultCache>,
    pub site: Option<Arc<Site>>,
    pub draining: Arc<AtomicBool>,
    pub access_log: Option<Arc<AccessLog>>,
}

impl FastAnswers {
    /// As `proxy::check_head`: a head over the limit is refused there (the whole head counts
    /// here, a little more than there, so nothing refused there is taken here); a draining
    /// server closes each connection after its answer, which Pingora's session does.
    fn takes(&self, request: &FastRequest<'_>) -> bool {
        !self.draining.load(Ordering::Relaxed) && request.head_bytes <= self.config.max_request_header_bytes
    }
}

impl FastPath for FastAnswers {
    fn answer(&self, request: &FastRequest<'_>, head: &mut Vec<u8>) -> Option<(FastAnswer, Bytes)> {
        let cache = self.cache.as_ref()?;
        if request.conditional || !self.takes(request) {
            return None;
        }
        let Route::Image(target) = self.router.route(request.host, request.target) else { return None };
        let class = crate::admission::accept_class(&self.config.image, request.accept);
        let admitted = self.admissions.get(target, class)?;
        let hit = cache.fresh_in_memory(&admitted.key, &admitted.job)?;
        // `proxy::serve_fresh_hit`'s header, then what Pingora's HTTP/1 writer adds to it.
        let mut header = hit.header;
        let age = SystemTime::now().duration_since(hit.created).unwrap_or_default().as_secs();
        header.insert_header(http::header::AGE, age).ok()?;
        header.set_version(http::Version::HTTP_11);
        header.insert_header(http::header::DATE, pingora_core::protocols::http::date::get_cached_date()).ok()?;
        header.insert_header(http::header::CONNECTION, if request.close { "close" } else { "keep-alive" }).ok()?;
        wire(&header, head);
        let body_bytes = if request.head_only { 0 } else { hit.body.len() };
        Some((FastAnswer { status: header.status.as_u16(), body_bytes, forwarded: false }, hit.body))
    }

    fn forward<'a>(&'a self, request: &'a FastRequest<'a>, client: &'a mut ClientIo<'_>) -> Option<Forwarding<'a>> {
        let site = self.site.as_ref()?;
        if !self.takes(request)
            || self.router.route(request.host, request.target) != Route::Site
            || self.config.is_healthcheck(request.target.as_bytes())
            || !crate::site::is_direct(request.headers)
        {
            return None;
        }
        let direct = DirectRequest {
            head_only: request.head_only,
            target: request.target,
            headers: request.headers,
            client: client.peer_ip(),
            tls: client.tls(),
            close: request.close,
            draining: Some(&self.draining),
        };
        Some(Box::pin(async move {
            let forwarded = site.forward_direct(&direct, &crate::response::NEVER_SENT, client).await;
            FastForwarded {
                answer: FastAnswer { status: forwarded.status, body_bytes: forwarded.body_bytes, forwarded: true },
                keep_alive: forwarded.keep_alive,
                complete: forwarded.complete,
                early: forwarded.early,
            }
        }))
    }

    fn done(&self, request: &FastRequest<'_>, answer: &FastAnswer, peer: Option<IpAddr>, took: Duration) {
        let route = if answer.forwarded { MetricsRoute::Site } else { MetricsRoute::Image };
        let cache = (!answer.forwarded).then_some(CacheOutcome::Hit);
        metrics::request_done(route, answer.status, took);
        if let Some(cache) = cache {
            metrics::cache_lookup(cache, took);
            metrics::fast_hit();
        }
        let Some(access) = &self.access_log else { return };
        let header = |name: &str| request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
        let forwarded_for =
            request.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for")).map(|h| h.value);
        let value = |name: &str| header(name).and_then(|v| http::HeaderValue::from_bytes(v).ok());
        access.log(access_log::Entry {
            time: SystemTime::now(),
            client: access_log::client_address(peer, forwarded_for, access.trusted_proxies()),
            method: if request.head_only { http::Method::HEAD } else { http::Method::GET },
            target: request.target.as_bytes().to_vec(),
            version: http::Version::HTTP_11,
            status: answer.status,
            body_bytes: answer.body_bytes,
            referer: value("referer"),
            user_agent: value("user-agent"),
            request_time: took,
            cache,
            render_time: None,
            route,
            error: None,
        });
    }
}

/// The header as Pingora's HTTP/1 server writes it (status line, fields in order, blank line).
fn wire(header: &ResponseHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(header.status.as_str().as_bytes());
    out.push(b' ');
    if let Some(reason) = header.get_reason_phrase() {
        out.extend_from_slice(reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    header.header_to_h1_wire(out);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_pingoras() {
        let mut header = ResponseHeader::build(200, None).unwrap();
        header.insert_header("Content-Type", "image/jpeg").unwrap();
        header.insert_header("Content-Length", "3").unwrap();
        header.insert_header("Age", "0").unwrap();
        let mut out = Vec::new();
        wire(&header, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\nAge: 0\r\n\r\n"
        );
    }
}
