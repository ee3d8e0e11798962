//! HTTP responses as thumbor sends them: image headers (`Content-Type`, `Cache-Control`,
//! `Expires`, `ETag`, `Vary`), short error bodies, and their HTTP/1.1 serialisation.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha1::{Digest, Sha1};

use crate::config::ResponseConfig;
use crate::error::{Error, ErrorKind};
use crate::fetched::Validators;
use crate::job::Rendered;

/// A header between the renderer and the proxy only: the result must not be stored (its source
/// was truncated). Removed before the response leaves.
pub const NO_STORE: &str = "x-thumbora-no-store";
/// `max-age=N` from a Cache-Control value.
pub fn max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').find_map(|d| d.trim().strip_prefix("max-age=")).and_then(|n| n.trim().parse().ok())
}

/// Internal header on a render's reply that came from the shared tier instead of a render: its
/// value is the unix time the result was first rendered (freshness counts from then). Removed
/// before the response leaves.
pub const FROM_SHARED: &str = "x-thumbora-shared-created";
/// Internal headers on a rendered reply: the origin's `ETag` and `Last-Modified` for the source it
/// was made from. Stored with the result (to revalidate it once expired), removed before the
/// response leaves.
pub const SOURCE_ETAG: &str = "x-thumbora-source-etag";
pub const SOURCE_LAST_MODIFIED: &str = "x-thumbora-source-last-modified";
/// What the proxy's response filter removes from every answer before it leaves: the virtual
/// upstream's `Connection` and the internal headers above (and, for images, `FROM_SHARED`, which
/// it reads as it removes it).
/// Names rather than text: a removal by name skips parsing it (every site answer goes through
/// these).
pub static NEVER_SENT: [http::HeaderName; 4] = [
    http::header::CONNECTION,
    http::HeaderName::from_static(NO_STORE),
    http::HeaderName::from_static(SOURCE_ETAG),
    http::HeaderName::from_static(SOURCE_LAST_MODIFIED),
];

/// The header of a stored result as a fresh hit from memory sends it, built once when the result
/// is stored: without [`NEVER_SENT`] and [`FROM_SHARED`], with `Accept-Ranges: bytes` (pingora-cache's hits say it)
/// and `X-Cache: HIT memory`. The hit adds `Age`.
pub fn fresh_hit_header(stored: &pingora_http::ResponseHeader) -> pingora_http::ResponseHeader {
    let mut header = stored.clone();
    for name in NEVER_SENT.iter().chain([&http::HeaderName::from_static(FROM_SHARED)]) {
        header.remove_header(name);
    }
    // Neither insert can fail: static names and values.
    let _ = header.insert_header(http::header::ACCEPT_RANGES, "bytes");
    let _ = header.insert_header("X-Cache", crate::metrics::CacheOutcome::Hit.x_cache());
    header
}

/// Internal request headers from the proxy to the renderer when it revalidates an expired
/// result: the source validators stored with it. The proxy removes any a client sent.
pub const IF_SOURCE_NONE_MATCH: &str = "x-thumbora-if-none-match";
pub const IF_SOURCE_MODIFIED_SINCE: &str = "x-thumbora-if-modified-since";

/// The last second an HTTP date can name: 9999-12-31T23:59:59Z.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// The `Expires` value `max_age` seconds after `now`, or the error thumbor gives past year 9999.
fn expires_after(now: SystemTime, max_age: u64) -> Result<String, Error> {
    let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match now_secs.checked_add(max_age) {
        Some(at) if at <= LAST_HTTP_DATE => Ok(httpdate::fmt_http_date(now + Duration::from_secs(max_age))),
        _ => Err(Error::new(ErrorKind::Internal, format!("max_age {max_age}: Expires after the year 9999"))),
    }
}

/// A complete response: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    /// A rendered image (or `meta/` JSON) with thumbor's headers. A `max_age` whose `Expires`
    /// falls after the year 9999 fails as in thumbor (Python's datetime overflows: 500).
    pub fn image(rendered: Rendered, cfg: &ResponseConfig) -> Result<Reply, Error> {
        let mut headers: Vec<(&'static str, String)> = vec![("Content-Type", rendered.content_type.to_string())];
        if rendered.max_age > 0 {
            headers.push(("Cache-Control", format!("max-age={},public", rendered.max_age)));
            headers.push(("Expires", expires_after(SystemTime::now(), rendered.max_age)?));
        }
        if cfg.etags {
            headers.push(("ETag", etag(&rendered.body)));
        }
        if cfg.last_modified {
            // Stored with the result: its hits answer `If-Modified-Since` (pingora's conditional
            // filter), as thumbor's result storage does.
            headers.push(("Last-Modified", httpdate::fmt_http_date(SystemTime::now())));
        }
        if rendered.vary_accept {
            headers.push(("Vary", "Accept".to_string()));
        }
        if let Some(origin) = &cfg.cors_allow_origin {
            headers.push(("Access-Control-Allow-Origin", origin.clone()));
        }
        if rendered.source_truncated {
            headers.push((NO_STORE, "1".to_string()));
        }
        Ok(Reply { status: 200, headers, body: Bytes::from(rendered.body) })
    }

    /// The source validators, as internal headers stored with the result ([`SOURCE_ETAG`],
    /// [`SOURCE_LAST_MODIFIED`]).
    pub fn with_source_validators(mut self, validators: &Validators) -> Reply {
        if let Some(etag) = &validators.etag {
            self.headers.push((SOURCE_ETAG, etag.clone()));
        }
        if let Some(since) = &validators.last_modified {
            self.headers.push((SOURCE_LAST_MODIFIED, since.clone()));
        }
        self
    }

    /// The source did not change since the cached result was made from it: `304 Not Modified`
    /// with a fresh `Cache-Control`/`Expires` (`max_age` > 0), which pingora-cache merges into the
    /// stored header before serving the stored body again.
    pub fn not_modified(max_age: u64, validators: &Validators) -> Result<Reply, Error> {
        let headers = vec![
            ("Cache-Control", format!("max-age={max_age},public")),
            ("Expires", expires_after(SystemTime::now(), max_age)?),
        ];
        Ok(Reply { status: 304, headers, body: Bytes::new() }.with_source_validators(validators))
    }

    /// An error: its status from the kind and a one-line public message. Like thumbor, no
    /// `Cache-Control` (CDNs do not cache 5xx without one; Thumbora's own cache never stores errors).
    pub fn error(err: &Error) -> Reply {
        let kind = err.kind();
        let mut headers: Vec<(&'static str, String)> = vec![("Content-Type", "text/plain; charset=utf-8".into())];
        if matches!(kind, ErrorKind::Overloaded | ErrorKind::MemoryBudget) {
            headers.push(("Retry-After", "1".into()));
        }
        Reply { status: kind.status(), headers, body: Bytes::from(format!("{}\n", kind.public_message())) }
    }

    /// `/healthcheck`: thumbor's `200 WORKING` with tornado's default content type and ETag; its
    /// HEAD handler writes nothing, so HEAD gets an empty body (`Content-Length: 0`).
    /// A short plain-text answer (admin endpoints).
    pub fn text(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into()), ("Cache-Control", "no-store".into())],
            body: Bytes::from(body),
        }
    }

    pub fn healthcheck(head: bool) -> Reply {
        let body = if head { Bytes::new() } else { Bytes::from_static(b"WORKING") };
        Reply {
            status: 200,
            headers: vec![
                ("Content-Type", "text/html; charset=UTF-8".into()),
                ("Cache-Control", "no-cache".into()),
                ("ETag", etag(&body)),
            ],
            body,
        }
    }

    /// This reply as `304 Not Modified`: its headers without the representation's
    /// (`Content-Type`), and no body.
    pub fn into_not_modified(mut self) -> Reply {
        self.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("Content-Type"));
        Reply { status: 304, body: Bytes::new(), ..self }
    }

    /// The value of a header, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The response as HTTP/1.1 bytes on a connection that closes after it. A reply to HEAD keeps
    /// its `Content-Length` and omits the body.
    pub fn to_http1(&self, head_only: bool) -> Vec<u8> {
        let reason =
            http::StatusCode::from_u16(self.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown");
        let mut out = Vec::with_capacity(256 + if head_only { 0 } else { self.body.len() });
        out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", self.status).as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        // A 304 has no body, and a Content-Length there would describe the stored one.
        if self.status != 304 {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// tornado's ETag: the SHA-1 of the body, quoted.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    let mut s = String::with_capacity(42);
    s.push('"');
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_headers() {
        let r = Reply::image(
            Rendered {
                body: b"abc".to_vec(),
                content_type: "image/jpeg",
                max_age: 86400,
                vary_accept: true,
                source_truncated: false,
            },
            &ResponseConfig::default(),
        )
        .unwrap();
        assert_eq!(r.header("Cache-Control"), Some("max-age=86400,public"));
        assert!(r.header("Expires").unwrap().ends_with("GMT"));
        assert_eq!(r.header("ETag"), Some("\"a9993e364706816aba3e25717850c26c9cd0d89d\""));
        assert_eq!(r.header("Vary"), Some("Accept"));
        let no_age = Reply::image(
            Rendered {
                body: vec![],
                content_type: "image/png",
                max_age: 0,
                vary_accept: false,
                source_truncated: false,
            },
            &ResponseConfig::default(),
        )
        .unwrap();
        assert_eq!(no_age.header("Cache-Control"), None);
        assert_eq!(no_age.header("Expires"), None);
    }

    #[test]
    fn source_validators_and_not_modified() {
        let validators = Validators { etag: Some("\"v1\"".into()), last_modified: None };
        let r = Reply::text(200, String::new()).with_source_validators(&validators);
        assert_eq!(r.header(SOURCE_ETAG), Some("\"v1\""));
        assert_eq!(r.header(SOURCE_LAST_MODIFIED), None);
        let r = Reply::not_modified(60, &validators).unwrap();
        assert_eq!((r.status, r.header("Cache-Control")), (304, Some("max-age=60,public")));
        assert_eq!(r.header("ETag"), None, "the stored result keeps its own ETag");
        let text = String::from_utf8(r.to_http1(false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{text}");
        assert!(!text.contains("Content-Length"), "{text}");
    }

    #[test]
    fn expires_is_exact_up_to_the_year_9999() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(expires_after(now, 1_000_000_000).unwrap(), "Sat, 27 Jul 2058 12:53:20 GMT");
        assert_eq!(expires_after(now, LAST_HTTP_DATE - 1_795_000_000).unwrap(), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(expires_after(now, LAST_HTTP_DATE - 1_795_000_000 + 1).unwrap_err().status(), 500);
        assert_eq!(expires_after(now, u64::MAX).unwrap_err().status(), 500);
    }

    #[test]
    fn errors_are_short_and_typed() {
        let r = Reply::error(&Error::new(ErrorKind::Overloaded, "queue"));
        assert_eq!(r.status, 503);
        assert_eq!(r.header("Retry-After"), Some("1"));
        assert_eq!(r.header("Cache-Control"), None);
        let r = Reply::error(&Error::new(ErrorKind::MemoryBudget, "budget"));
        assert_eq!((r.status, r.header("Retry-After")), (503, Some("1")));
        let r = Reply::error(&Error::new(ErrorKind::BadSignature, "secret detail"));
        assert_eq!(r.status, 400);
        assert!(!String::from_utf8_lossy(&r.body).contains("secret"));
    }

    #[test]
    fn http1_serialisation() {
        let text = String::from_utf8(Reply::healthcheck(false).to_http1(false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("ETag: \"92263e087855af5c050ad1ff7a821310056cdbbf\"\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 7\r\nConnection: close\r\n\r\nWORKING"));
        let head = String::from_utf8(Reply::healthcheck(true).to_http1(true)).unwrap();
        assert!(head.contains("ETag: \"da39a3ee5e6b4b0d3255bfef95601890afd80709\"\r\n"), "{head}");
        assert!(head.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"), "{head}");
    }
}
