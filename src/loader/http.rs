//! The HTTP(S) loader: thumbor's URL normalisation, the allow-list (with ports), an SSRF guard
//! that checks every address at resolution time and every redirect hop, a refusal of this
//! server's own addresses and a `Via` mark that lets it recognise its own fetches coming back
//! (loops); every timeout set; a cap on fetches in flight per origin; bodies capped and counted
//! against the fetch memory as they arrive.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::BytesMut;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{redirect, StatusCode, Url};

use super::{Reservation, Source, Validators};
use crate::config::SourcesConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::security::ssrf::{AddressPolicy, Blocked};
use crate::security::SourcePolicy;

/// This server's listen addresses, which it never fetches from, and the mark its fetches carry
/// (`Via: 1.1 <token>`) so that one coming back to it through a name, a redirect or another proxy
/// is recognised and refused.
#[derive(Debug, Clone, Default)]
pub struct OwnAddresses {
    listen: Vec<SocketAddr>,
    token: String,
}

impl OwnAddresses {
    /// The addresses in `listen`; the token is the same for every process of this host and
    /// configuration, so that a graceful upgrade's new process recognises the old one's fetches.
    pub fn new(listen: &[SocketAddr]) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (host.trim(), listen).hash(&mut hasher);
        OwnAddresses { listen: listen.to_vec(), token: format!("thumbora-{:016x}", hasher.finish()) }
    }

    /// The `Via` value this server's fetches carry.
    pub fn via(&self) -> String {
        format!("1.1 {}", self.token)
    }

    /// Whether a request's `Via` header shows it was sent by this server (a loop).
    pub fn sent_by_us(&self, via: &str) -> bool {
        !self.token.is_empty() && via.contains(&self.token)
    }

    /// Whether `url` names one of this server's listen addresses (as an address literal or
    /// `localhost`, with the listen port).
    fn is_own(&self, url: &Url) -> bool {
        let Some(port) = url.port_or_known_default() else { return false };
        let local = |ip: IpAddr, listen: IpAddr| {
            ip == listen
                || (ip.is_loopback() || ip.is_unspecified()) && (listen.is_unspecified() || listen.is_loopback())
        };
        self.listen.iter().filter(|l| l.port() == port).any(|l| match url.host() {
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => local(IpAddr::V4(ip), l.ip()),
            Some(url::Host::Ipv6(ip)) => local(ip.to_canonical(), l.ip()),
            None => false,
        })
    }
}

/// Fetches in flight per origin (`host:port`), capped.
#[derive(Debug, Default)]
struct PerHost {
    cap: usize,
    counts: Mutex<HashMap<String, usize>>,
}

/// A fetch's place among its origin's; given back on drop.
struct HostSlot<'a> {
    per_host: &'a PerHost,
    key: String,
}

impl PerHost {
    fn enter(&self, url: &Url) -> Result<Option<HostSlot<'_>>> {
        if self.cap == 0 {
            return Ok(None);
        }
        let key = format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(0));
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key.clone()).or_default();
        if *count >= self.cap {
            return Err(Error::new(
                ErrorKind::Overloaded,
                format!("{key}: {} fetches in flight, sources.max_fetches_per_host", self.cap),
            ));
        }
        *count += 1;
        Ok(Some(HostSlot { per_host: self, key }))
    }
}

impl Drop for HostSlot<'_> {
    fn drop(&mut self) {
        let mut counts = self.per_host.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Raised inside reqwest (resolver, redirect policy) and recognised again on the way out, so the
/// client sees the right status rather than a generic connection failure.
#[derive(Debug)]
enum Refused {
    /// The address or host is refused by the source policy.
    Policy(String),
    /// The name does not resolve.
    Unresolved(String),
    /// The redirect chain is longer than `max_redirects`.
    TooManyRedirects(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Policy(why) => write!(f, "refused origin: {why}"),
            Refused::Unresolved(host) => write!(f, "{host} does not resolve"),
            Refused::TooManyRedirects(max) => write!(f, "more than {max} redirects"),
        }
    }
}

impl std::error::Error for Refused {}

impl Refused {
    fn kind(&self) -> ErrorKind {
        match self {
            Refused::Policy(_) => ErrorKind::SourceNotAllowed,
            Refused::Unresolved(_) => ErrorKind::SourceUnresolved,
            // thumbor (tornado) reports an over-long chain as the last 3xx: not found.
            Refused::TooManyRedirects(_) => ErrorKind::SourceNotFound,
        }
    }
}

/// A resolver that drops every address the policy refuses, so a name can never lead to a
/// private address (including through a redirect: every hop resolves here).
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Box::new(Refused::Unresolved(host.clone())) as Box<dyn std::error::Error + Send + Sync>)?;
            let mut refused: Option<Blocked> = None;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|addr| match policy.check(addr.ip()) {
                    Ok(()) => true,
                    Err(b) => {
                        refused = Some(b);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.map(|b| b.to_string()).unwrap_or_else(|| "no address".into());
                return Err(Box::new(Refused::Policy(format!("{host} resolves to a refused address ({why})")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

pub struct HttpLoader {
    client: reqwest::Client,
    policy: Arc<SourcePolicy>,
    own: Arc<OwnAddresses>,
    per_host: PerHost,
    max_bytes: u64,
}

static CRYPTO: Once = Once::new();

impl HttpLoader {
    pub fn new(cfg: &SourcesConfig, policy: SourcePolicy, own: OwnAddresses) -> Result<Self> {
        CRYPTO.call_once(|| {
            // Another part of the process may have installed one already: either is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let policy = Arc::new(policy);
        let own = Arc::new(own);
        let redirect_policy = if cfg.follow_redirects {
            let max = cfg.max_redirects;
            let (policy, own) = (policy.clone(), own.clone());
            redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    return attempt.error(Refused::TooManyRedirects(max));
                }
                match check_url(&policy, &own, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(Refused::Policy(e.context().to_string())),
                }
            })
        } else {
            redirect::Policy::none()
        };
        let extra_roots = match &cfg.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::new(ErrorKind::Internal, format!("thumbora.sources.ca_file: cannot read {}", path.display()))
                        .with_source(e)
                })?;
                let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::new(ErrorKind::Internal, format!("thumbora.sources.ca_file: {} is not PEM", path.display()))
                        .with_source(e)
                })?;
                if roots.is_empty() {
                    let what = format!("thumbora.sources.ca_file: no certificate in {}", path.display());
                    return Err(Error::new(ErrorKind::Internal, what));
                }
                roots
            }
            None => Vec::new(),
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(via) = reqwest::header::HeaderValue::from_str(&own.via()) {
            headers.insert(reqwest::header::VIA, via);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .tls_certs_merge(extra_roots)
            .no_proxy()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .read_timeout(Duration::from_millis(cfg.request_timeout_ms))
            .redirect(redirect_policy)
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.addresses().clone() }))
            .user_agent(cfg.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| Error::new(ErrorKind::Internal, "building the HTTP client").with_source(e))?;
        Ok(HttpLoader {
            client,
            policy,
            own,
            per_host: PerHost { cap: cfg.max_fetches_per_host, counts: Mutex::default() },
            max_bytes: cfg.max_bytes,
        })
    }

    /// Normalise and check an image URL without fetching it. A URL that only Python's lenient
    /// parser accepts (a host with an invalid port, say) passes here and fails at fetch time with
    /// 504, as in thumbor; one with no host at all is refused (thumbor's `validate`: 400).
    pub fn precheck(&self, image: &str) -> Result<Target> {
        let normalized = normalize_url(image);
        // thumbor's `validate`: Python's urlparse must find a host (`//h/i`, `http:/h/i` and
        // `https:h/i` have none), whatever a WHATWG parser would make of the URL.
        let Some(host) = python_hostname(&normalized) else {
            return Err(Error::new(ErrorKind::SourceNotAllowed, format!("no host in image URL {image}")));
        };
        // Authorities tornado cannot connect to, answered as thumbor 7.8 answers them.
        let authority = authority_of(&normalized);
        if authority.contains('@') {
            // tornado asserts there is no userinfo (500); nor do we send credentials anywhere.
            return Err(Error::new(ErrorKind::Internal, format!("credentials in image URL {image}")));
        }
        match host_and_port(authority).1 {
            // `host:` — the lookup of "host:" fails (504).
            Some("") => return Ok(Target::Unreachable(host)),
            // Beyond 65535 — Python's socket raises OverflowError (500).
            Some(port) if port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_err() => {
                return Err(Error::new(ErrorKind::Internal, format!("port {port} out of range in {image}")));
            }
            _ => {}
        }
        match Url::parse(&normalized) {
            Ok(url) => {
                check_url(&self.policy, &self.own, &url)?;
                Ok(Target::Url(url))
            }
            Err(_) if self.policy.host_allowed(&host, None) => Ok(Target::Unreachable(host)),
            Err(_) => Err(Error::new(ErrorKind::SourceNotAllowed, format!("host {host} is not allowed"))),
        }
    }

    /// Fetch `image` (a thumbor image URL, percent-decoded once), its bytes counted against
    /// `memory` as they arrive.
    pub async fn load(&self, image: &str, memory: Reservation) -> Result<Source> {
        match self.load_if_changed(image, memory, &Validators::default()).await? {
            Some(source) => Ok(source),
            // Unreachable: a 304 is only taken as "unchanged" for a conditional request.
            None => Err(Error::new(ErrorKind::Internal, format!("{image}: 304 to an unconditional fetch"))),
        }
    }

    /// Fetch `image` unless the origin says it still matches `known` (`If-None-Match`,
    /// `If-Modified-Since`): `None` when it answers 304 Not Modified. Without validators this is
    /// [`Self::load`].
    pub async fn load_if_changed(
        &self,
        image: &str,
        mut memory: Reservation,
        known: &Validators,
    ) -> Result<Option<Source>> {
        let url = match self.precheck(image)? {
            Target::Url(url) => url,
            Target::Unreachable(host) => {
                return Err(Error::new(ErrorKind::SourceUnresolved, format!("{host}: not a reachable host")))
            }
        };
        let _slot = self.per_host.enter(&url)?;
        let mut request = self.client.get(url.clone()).header(reqwest::header::ACCEPT, "image/*;q=0.9,*/*;q=0.1");
        if let Some(etag) = &known.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(since) = &known.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, since);
        }
        let response = request.send().await.map_err(|e| self.classify(e, &url))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && !known.is_empty() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(status, &url));
        }
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators =
            Validators { etag: header(reqwest::header::ETAG), last_modified: header(reqwest::header::LAST_MODIFIED) };
        let announced = response.content_length();
        if let Some(len) = announced {
            if len > self.max_bytes {
                return Err(Error::new(ErrorKind::TooLarge, format!("{url}: {len} bytes, above sources.max_bytes")));
            }
            memory.grow_to(len)?;
        }
        // The announced length (when there is one) sizes the buffer once: no doubling while the
        // body streams in, no slack kept in memory while the source waits for its render.
        let mut body = BytesMut::with_capacity(announced.unwrap_or(64 * 1024) as usize);
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e, &url))? {
            let len = (body.len() + chunk.len()) as u64;
            if len > self.max_bytes {
                return Err(Error::new(ErrorKind::TooLarge, format!("{url}: body above sources.max_bytes")));
            }
            // Without a length, memory is taken in steps as the body grows.
            memory.grow_to(len.max(len.next_power_of_two().min(self.max_bytes)))?;
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Err(Error::new(ErrorKind::EmptySource, format!("{url}: empty body")));
        }
        Ok(Some(memory.into_source(body.freeze()).with_validators(validators)))
    }

    /// What an origin's error status means (thumbor's reading of it is applied later, in
    /// [`Error::fetch_failure`]).
    fn status_error(&self, status: StatusCode, url: &Url) -> Error {
        let kind = if status.as_u16() == 599 {
            // tornado's own "599 connection failed": thumbor cannot tell it from a broken fetch.
            ErrorKind::UpstreamFailed
        } else if status.is_client_error() || status.is_redirection() {
            ErrorKind::SourceNotFound
        } else {
            ErrorKind::OriginError
        };
        Error::new(kind, format!("{url}: origin answered {status}"))
    }

    fn classify(&self, e: reqwest::Error, url: &Url) -> Error {
        let refused = std::iter::successors(Some(&e as &dyn std::error::Error), |err| err.source())
            .find_map(|err| err.downcast_ref::<Refused>());
        let kind = if let Some(refused) = refused {
            refused.kind()
        } else if e.is_timeout() {
            ErrorKind::UpstreamTimeout
        } else if e.is_connect() {
            ErrorKind::UpstreamUnreachable
        } else {
            // A dropped connection, a short or malformed body, garbage instead of HTTP.
            ErrorKind::UpstreamFailed
        };
        Error::new(kind, format!("fetching {url}")).with_source(e)
    }
}

/// Where an image URL leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Url(Url),
    /// A host Python's `urlparse` sees but no HTTP client can reach (e.g. `h:notaport`).
    Unreachable(String),
}

/// The authority (`userinfo@host:port`) of an absolute URL, as Python's `urlsplit` cuts it.
fn authority_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// The host and the port text of an authority as Python's `urlsplit` cuts them: userinfo
/// dropped, IPv6 brackets removed, `Some("")` for `host:`, `None` without a colon.
fn host_and_port(authority: &str) -> (&str, Option<&str>) {
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => (v6, None),
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    }
}

/// The host Python's `urlparse(url).hostname` would report for a URL the `url` crate rejects.
fn python_hostname(url: &str) -> Option<String> {
    if !url.contains("://") {
        return None;
    }
    let (host, _) = host_and_port(authority_of(url));
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Scheme, allow-list, own-address and literal-address checks for a URL (the first and every
/// redirect).
fn check_url(policy: &SourcePolicy, own: &OwnAddresses, url: &Url) -> Result<()> {
    let refuse = |why: String| Err(Error::new(ErrorKind::SourceNotAllowed, why));
    if !matches!(url.scheme(), "http" | "https") {
        return refuse(format!("scheme {} not allowed", url.scheme()));
    }
    let Some(host) = url.host_str() else {
        return refuse("image URL has no host".into());
    };
    if !policy.host_allowed(host, url.port_or_known_default()) {
        return refuse(format!("{host}:{} is not in sources.allowed", url.port_or_known_default().unwrap_or(0)));
    }
    if own.is_own(url) {
        return refuse(format!("{url} is this server's own address"));
    }
    // An http(s) URL's host is already parsed the WHATWG way: every spelling of an IPv4
    // address (`0x7f.1`, `2130706433`) arrives as `Host::Ipv4`, never as a domain.
    let literal: Option<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) | None => None,
    };
    if let Some(ip) = literal {
        if let Err(blocked) = policy.addresses().check(ip) {
            return refuse(format!("address {ip} refused ({blocked})"));
        }
    }
    Ok(())
}

/// thumbor's `_normalize_url`: quote the URL unless it already carries escapes, and default the
/// scheme to `http://`.
pub fn normalize_url(image: &str) -> String {
    const SAFE: &[u8] = b"~@#$&()*!+=:;,.?/'_-";
    let already_escaped = crate::url::percent_decode_utf8(image).is_none_or(|d| d != image);
    // The brackets of an IPv6 literal stay (thumbor quotes them and can never fetch such a URL).
    let authority_end = {
        let after_scheme = image.find("://").map_or(0, |i| i + 3);
        after_scheme + image[after_scheme..].find('/').unwrap_or(image.len() - after_scheme)
    };
    let quoted = if already_escaped {
        image.to_string()
    } else {
        let mut out = String::with_capacity(image.len());
        for (i, b) in image.bytes().enumerate() {
            let bracket = i < authority_end && (b == b'[' || b == b']');
            if b.is_ascii_alphanumeric() || SAFE.contains(&b) || bracket {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    if super::has_http_scheme(&quoted) {
        quoted
    } else {
        format!("http://{quoted}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_thumbor() {
        assert_eq!(normalize_url("host/a b.jpg"), "http://host/a%20b.jpg");
        assert_eq!(normalize_url("http://host/a.jpg?x=1"), "http://host/a.jpg?x=1");
        assert_eq!(normalize_url("host/a%20b.jpg"), "http://host/a%20b.jpg");
        assert_eq!(normalize_url("https://host:8080/caf\u{e9}.jpg"), "https://host:8080/caf%C3%A9.jpg");
    }

    fn loader(allowed: &[&str], allow_private: bool) -> HttpLoader {
        let cfg = SourcesConfig {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            allow_private_networks: allow_private,
            ..SourcesConfig::default()
        };
        HttpLoader::new(&cfg, SourcePolicy::new(&cfg), OwnAddresses::new(&["127.0.0.1:8888".parse().unwrap()])).unwrap()
    }

    #[test]
    fn literal_private_addresses_are_refused_before_connecting() {
        let l = loader(&[], false);
        for evil in [
            "127.0.0.1/x.jpg",
            "http://2130706433/x.jpg",
            "http://0x7f.1/x.jpg",
            "127.1/x.jpg",
            "169.254.169.254/latest/meta-data",
            "[::1]/x.jpg",
            "[::ffff:127.0.0.1]/x.jpg",
            "0.0.0.0/x.jpg",
            "10.0.0.1:8080/x.jpg",
        ] {
            // Refused, or (bracketed IPv6, which thumbor's quoting mangles) unreachable: never a
            // URL that would be fetched.
            match l.precheck(evil) {
                Err(err) => assert_eq!(err.kind(), ErrorKind::SourceNotAllowed, "{evil}: {err}"),
                Ok(Target::Unreachable(_)) if evil.starts_with('[') => {}
                Ok(target) => panic!("{evil} would be fetched: {target:?}"),
            }
        }
        assert!(l.precheck("example.com/x.jpg").is_ok());
        // Like thumbor, anything not starting with `http` gets `http://`: `ftp:` is never a scheme,
        // but the host `ftp` with an empty port, which tornado looks up as "ftp:" and fails (504).
        assert_eq!(l.precheck("ftp://example.com/x").unwrap(), Target::Unreachable("ftp".into()));
        assert_eq!(l.precheck("127.0.0.1:/x.jpg").unwrap(), Target::Unreachable("127.0.0.1".into()));
        assert_eq!(l.precheck("127.0.0.1:99999/x.jpg").unwrap_err().kind(), ErrorKind::Internal);
        assert_eq!(l.precheck("user:pw@example.com/x.jpg").unwrap_err().kind(), ErrorKind::Internal);
        assert!(l.precheck("example.com:8080/x.jpg@2x.png").is_ok(), "an @ in the path is no userinfo");
        // Python's urlparse sees a host in `h:notaport`: fetched, it fails (504), not refused.
        assert_eq!(l.precheck("10x10:-200x200/h/i.jpg").unwrap(), Target::Unreachable("10x10".into()));
        assert_eq!(l.precheck("/").unwrap_err().kind(), ErrorKind::SourceNotAllowed);
        // Hosts only a WHATWG parser would find: thumbor refuses them (400).
        for no_host in ["/h/i.jpg", "http:/h/i.jpg", "https:h/i.jpg", "http:///h/i.jpg"] {
            assert_eq!(l.precheck(no_host).unwrap_err().kind(), ErrorKind::SourceNotAllowed, "{no_host}");
        }
    }

    #[test]
    fn allow_list_and_private_switch() {
        let l = loader(&["127.0.0.1"], false);
        assert!(l.precheck("127.0.0.1:9000/x.jpg").is_ok());
        assert_eq!(python_hostname("http://u@[::1]:80/x"), Some("::1".into()));
        assert!(l.precheck("example.com/x.jpg").is_err());
        let open = loader(&[], true);
        assert!(open.precheck("127.0.0.1/x.jpg").is_ok());
        assert!(open.precheck("169.254.169.254/x").is_err(), "metadata stays refused");
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_refused() {
        let l = loader(&[], false);
        let memory = super::super::FetchMemory::new(1 << 20);
        let err = l.load("localhost:1/x.jpg", memory.reservation()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SourceNotAllowed, "{err}");
    }

    #[test]
    fn own_addresses_are_refused_and_own_fetches_recognised() {
        let open = loader(&[], true);
        for own in [
            "127.0.0.1:8888/x.jpg",
            "localhost:8888/x.jpg",
            "http://127.1:8888/x",
            "[::1]:8888/x.jpg",
            "0.0.0.0:8888/x",
        ] {
            assert_eq!(open.precheck(own).unwrap_err().kind(), ErrorKind::SourceNotAllowed, "{own}");
        }
        assert!(open.precheck("127.0.0.1:8889/x.jpg").is_ok(), "another port");
        let own = OwnAddresses::new(&["0.0.0.0:8888".parse().unwrap()]);
        assert!(own.sent_by_us(&format!("1.0 cdn, {}", own.via())));
        assert!(!own.sent_by_us("1.1 thumbora-0000000000000000"));
        assert_eq!(own.via(), OwnAddresses::new(&["0.0.0.0:8888".parse().unwrap()]).via(), "stable across processes");
    }

    #[test]
    fn ipv6_literals_keep_their_brackets() {
        assert_eq!(normalize_url("[2001:db8::1]:8080/a b.jpg"), "http://[2001:db8::1]:8080/a%20b.jpg");
        let l = loader(&[], false);
        assert!(
            matches!(l.precheck("[2001:db8::1]:8080/a.jpg"), Err(e) if e.kind() == ErrorKind::SourceNotAllowed),
            "documentation range refused"
        );
        assert!(matches!(l.precheck("[2606:4700::1111]/a.jpg"), Ok(Target::Url(_))));
    }
}
