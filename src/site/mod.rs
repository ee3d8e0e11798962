//! The rest of the site: which requests are image requests, and the app servers the others are
//! reverse-proxied to (round robin over the healthy ones, with the usual forwarding headers);
//! plain GETs and HEADs take a short path: at the client's connection (`direct`), or else in
//! Pingora's session (`forward`).

mod direct;
mod forward;
mod pool;

pub use direct::{is_direct, DirectRequest};
pub use forward::is_plain;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pingora_core::services::background::{background_service, GenBackgroundService};
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_http::RequestHeader;
use pingora_load_balancing::health_check::TcpHealthCheck;
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};

use crate::config::SiteConfig;
use crate::error::{Error, ErrorKind, Result};

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// A thumbor URL: the request target with the image prefix removed.
    Image(&'a str),
    /// Anything else: the app servers, or 404 when there are none.
    Site,
}

/// Tells image requests from the site's, from the `Host` header and the path prefix.
#[derive(Debug, Clone)]
pub struct Router {
    prefix: String,
    hosts: Vec<String>,
}

impl Router {
    pub fn new(config: &SiteConfig) -> Self {
        Router {
            prefix: config.image_prefix.clone(),
            hosts: config.image_hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
        }
    }

    /// Route `target` (path and query, as received) sent with `host`. With neither a prefix nor
    /// hosts configured, every request is an image request, as in thumbor.
    pub fn route<'a>(&self, host: Option<&str>, target: &'a str) -> Route<'a> {
        if self.prefix.is_empty() && self.hosts.is_empty() {
            return Route::Image(target);
        }
        if let Some(host) = host {
            let name = host_name(host);
            if self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                return Route::Image(target);
            }
        }
        if !self.prefix.is_empty() {
            if let Some(rest) = target.strip_prefix(self.prefix.as_str()) {
                if rest.is_empty() || rest.starts_with(['/', '?']) {
                    return Route::Image(rest);
                }
            }
        }
        Route::Site
    }
}

/// The host name of a `Host` header value: without its port, and without the brackets of an
/// IPv6 literal.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
}

/// The app servers behind the site.
pub struct Site {
    /// Keeps the app servers' health (checked by its background service).
    balancer: Arc<LoadBalancer<RoundRobin>>,
    /// Each app server's peer, built once.
    upstreams: Vec<Upstream>,
    /// Round robin over `upstreams`.
    next: AtomicUsize,
    health_checked: bool,
    read_timeout: Duration,
    /// `keepalive` > 0: connections to the apps are kept for reuse.
    keep_alive: bool,
    forwarder: forward::Forwarder,
}

impl Site {
    /// The site's app servers, and the background service that health-checks them (to be added
    /// to the server). `None` when no upstream is configured. The short path keeps `keepalive`
    /// idle connections for each proxy thread, as Pingora's proxy does.
    pub fn new(config: &SiteConfig) -> Result<Option<(Site, GenBackgroundService<LoadBalancer<RoundRobin>>)>> {
        if config.upstreams.is_empty() {
            return Ok(None);
        }
        let mut balancer = LoadBalancer::try_from_iter(config.upstreams.iter().map(String::as_str)).map_err(|e| {
            Error::new(ErrorKind::Internal, format!("thumbora.site.upstreams: cannot resolve an upstream: {e}"))
        })?;
        if config.health_check_seconds > 0 {
            let mut check = TcpHealthCheck::new();
            check.peer_template.options.connection_timeout = Some(Duration::from_millis(config.connect_timeout_ms));
            balancer.set_health_check(check);
            balancer.health_check_frequency = Some(Duration::from_secs(config.health_check_seconds));
        }
        let service = background_service("site health check", balancer);
        let balancer = service.task();
        let (connect_timeout, read_timeout) =
            (Duration::from_millis(config.connect_timeout_ms), Duration::from_millis(config.read_timeout_ms));
        let idle_timeout = Duration::from_secs(config.keepalive_timeout_seconds);
        // The backends are the configured addresses, resolved once (static discovery).
        let mut backends: Vec<Backend> = balancer.backends().get_backend().iter().cloned().collect();
        backends.sort_by_key(|b| b.addr.to_string());
        let upstreams = backends
            .into_iter()
            .map(|backend| {
                let mut peer = HttpPeer::new(backend.clone(), false, String::new());
                peer.options.connection_timeout = Some(connect_timeout);
                peer.options.read_timeout = Some(read_timeout);
                // An app that stops reading a request body must not hold the request forever either.
                peer.options.write_timeout = Some(read_timeout);
                // Kept-alive connections to the apps are dropped after `keepalive_timeout_seconds`
                // idle (nginx's upstream `keepalive_timeout`); one an app closed sooner fails on
                // reuse, and the request goes again on a fresh connection.
                peer.options.idle_timeout = Some(idle_timeout);
                let key = peer.reuse_hash();
                Upstream { backend, peer, key }
            })
            .collect();
        let site = Site {
            balancer,
            upstreams,
            next: AtomicUsize::new(0),
            health_checked: config.health_check_seconds > 0,
            read_timeout,
            keep_alive: config.keepalive > 0,
            forwarder: forward::Forwarder::new(config.keepalive, idle_timeout),
        };
        Ok(Some((site, service)))
    }

    /// The next healthy app server, round robin; when none passes the health check, the next
    /// one anyway (as nginx tries every server when all are marked failed: the check may be
    /// behind).
    pub fn upstream(&self) -> Result<&Upstream> {
        let count = self.upstreams.len();
        if count == 0 {
            return Err(Error::new(ErrorKind::UpstreamFailed, "no app server"));
        }
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let nth = |i: usize| &self.upstreams[first.wrapping_add(i) % count];
        if self.health_checked {
            if let Some(healthy) = (0..count).map(nth).find(|u| self.balancer.backends().ready(&u.backend)) {
                return Ok(healthy);
            }
        }
        Ok(nth(0))
    }

    /// The next app server's peer, for Pingora's proxy ([`Self::upstream`]).
    pub fn peer(&self) -> Result<HttpPeer> {
        self.upstream().map(|u| u.peer.clone())
    }

    /// The request an app server gets, on either path, once hop-by-hop fields are gone: the
    /// forwarding headers, and `Connection: close` when no connection is kept (`keepalive: 0`),
    /// so that the app closes it rather than wait for another request.
    pub fn prepare_request(
        &self,
        req: &mut RequestHeader,
        client: Option<IpAddr>,
        tls: bool,
    ) -> pingora_error::Result<()> {
        add_forwarding_headers(req, client, tls)?;
        if !self.keep_alive {
            req.insert_header(http::header::CONNECTION, "close")?;
        }
        Ok(())
    }

    /// How many app servers there are (the most connection attempts one request makes).
    pub fn upstream_count(&self) -> usize {
        self.upstreams.len()
    }
}

/// An app server: its peer (with the site's timeouts) and the key of its idle connections.
pub struct Upstream {
    backend: Backend,
    pub peer: HttpPeer,
    /// The peer's `reuse_hash`.
    pub key: u64,
}

/// nginx's usual `proxy_set_header` lines: the client's address appended to `X-Forwarded-For`,
/// `X-Real-IP`, `X-Forwarded-Proto` (`https` when the client came over TLS) and
/// `X-Forwarded-Host`; `Host` is passed unchanged.
pub fn add_forwarding_headers(req: &mut RequestHeader, client: Option<IpAddr>, tls: bool) -> pingora_error::Result<()> {
    if let Some(ip) = client {
        let ip = ip_text(ip);
        let forwarded = match req.headers.get("X-Forwarded-For").map(|v| v.as_bytes()) {
            Some(earlier) if !earlier.trim_ascii().is_empty() => {
                let mut list = Vec::with_capacity(earlier.len() + 2 + ip.len());
                list.extend_from_slice(earlier);
                list.extend_from_slice(b", ");
                list.extend_from_slice(ip.as_bytes());
                list
            }
            _ => ip.as_bytes().to_vec(),
        };
        // The earlier value was a valid header value and an address adds only ASCII.
        let forwarded = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(forwarded)).map_err(|_| {
            pingora_error::Error::explain(pingora_error::ErrorType::InvalidHTTPHeader, "X-Forwarded-For")
        })?;
        req.insert_header("X-Forwarded-For", forwarded)?;
        req.insert_header("X-Real-IP", ip)?;
    }
    req.insert_header("X-Forwarded-Proto", if tls { "https" } else { "http" })?;
    let host = req.headers.get(http::header::HOST).cloned();
    if let Some(host) = host {
        req.insert_header("X-Forwarded-Host", host)?;
    }
    Ok(())
}

/// An address as text; IPv4 without `fmt`, which costs more than the rest of a forwarding
/// header (this runs on every site request).
fn ip_text(ip: IpAddr) -> String {
    let mut buf = [0u8; 48];
    String::from_utf8_lossy(ip_bytes(ip, &mut buf)).into_owned()
}

/// An address as text in `buf`, without allocating.
fn ip_bytes(ip: IpAddr, buf: &mut [u8; 48]) -> &[u8] {
    let mut len = 0;
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                let text = digits.format(octet).as_bytes();
                buf[len..len + text.len()].copy_from_slice(text);
                len += text.len();
            }
        }
        IpAddr::V6(_) => {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cursor, "{ip}");
            len = cursor.position() as usize;
        }
    }
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(prefix: &str, hosts: &[&str]) -> Router {
        Router::new(&SiteConfig {
            image_prefix: prefix.into(),
            image_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..SiteConfig::default()
        })
    }

    #[test]
    fn without_prefix_or_hosts_everything_is_an_image() {
        let r = router("", &[]);
        assert_eq!(r.route(Some("a"), "/about"), Route::Image("/about"));
        assert_eq!(r.route(None, "/unsafe/1x1/a.jpg"), Route::Image("/unsafe/1x1/a.jpg"));
    }

    #[test]
    fn the_prefix_is_removed_only_at_a_segment_boundary() {
        let r = router("/img", &[]);
        assert_eq!(r.route(None, "/img/unsafe/1x1/a.jpg"), Route::Image("/unsafe/1x1/a.jpg"));
        assert_eq!(r.route(None, "/img"), Route::Image(""));
        assert_eq!(r.route(None, "/img?x=1"), Route::Image("?x=1"));
        assert_eq!(r.route(None, "/images/a.jpg"), Route::Site);
        assert_eq!(r.route(None, "/"), Route::Site);
        assert_eq!(r.route(None, "/unsafe/1x1/a.jpg"), Route::Site);
    }

    #[test]
    fn image_hosts_match_without_port_and_case() {
        let r = router("", &["img.example.com", "::1"]);
        assert_eq!(r.route(Some("IMG.example.com:8888"), "/x"), Route::Image("/x"));
        assert_eq!(r.route(Some("img.example.com"), "/x"), Route::Image("/x"));
        assert_eq!(r.route(Some("[::1]:80"), "/x"), Route::Image("/x"));
        assert_eq!(r.route(Some("www.example.com"), "/x"), Route::Site);
        assert_eq!(r.route(None, "/x"), Route::Site);
    }

    #[test]
    fn forwarding_headers_append_the_client() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("Host", "www.example.com").unwrap();
        req.insert_header("X-Forwarded-For", "203.0.113.9").unwrap();
        add_forwarding_headers(&mut req, Some("192.0.2.1".parse().unwrap()), false).unwrap();
        let get = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(get("X-Forwarded-Proto"), "http");
        assert_eq!(get("X-Forwarded-For"), "203.0.113.9, 192.0.2.1");
        assert_eq!(get("X-Real-IP"), "192.0.2.1");
        assert_eq!(get("X-Forwarded-Host"), "www.example.com");
        assert_eq!(get("Host"), "www.example.com");
        add_forwarding_headers(&mut req, None, true).unwrap();
        assert_eq!(req.headers.get("X-Forwarded-Proto").unwrap(), "https");
    }

    #[test]
    fn addresses_as_text() {
        let longest = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
        for ip in ["0.0.0.0", "192.0.2.1", "255.255.255.255", "10.20.0.9", "::1", "2001:db8::8a2e:370:7334", longest] {
            assert_eq!(ip_text(ip.parse().unwrap()), ip);
        }
    }
}
