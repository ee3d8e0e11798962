//! The URL playground on the admin listener: the page and its assets (plain HTML, CSS and JS
//! compiled into the binary), and `GET /playground/render/<thumbor path>`, which fetches that
//! path from this server's own first `thumbora.listen` address on loopback.
//!
//! The page signs URLs in the browser (the key never reaches the server) and reads the result
//! through the render path, so that the result comes from the page's own origin: its status,
//! `Content-Type`, bytes and timing are readable without CORS on the public listener, and the
//! public listener stays exactly as it is. The render path is no open proxy: the request's path
//! is appended to our own address (never a host from the request), only `Accept` is passed on,
//! the body is bounded (`playground.max_result_bytes`) and so is the wait (`playground.timeout_ms`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use pingora_http::RequestHeader;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};

/// Where the page lives; everything of the playground is under it.
const PAGE: &str = "/playground";
/// The render path's prefix: what follows it is a thumbor path (`/<signature>/...`).
const RENDER: &str = "/playground/render";

/// One file of the page.
#[derive(Debug, PartialEq, Eq)]
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The page and what it loads; no build step, nothing from another origin.
const ASSETS: &[Asset] = &[
    Asset { path: PAGE, content_type: "text/html; charset=utf-8", body: include_str!("assets/index.html") },
    Asset {
        path: "/playground/playground.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/playground.css"),
    },
    Asset {
        path: "/playground/sign.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/sign.js"),
    },
    Asset {
        path: "/playground/playground.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/playground.js"),
    },
];

/// The page may load scripts and styles from itself only and talk to itself only; images come
/// from anywhere (the original is loaded from its own URL) and from `blob:` (the result).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                           img-src * data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A forwarded result is data for the page's script, never a document of this origin.
const RESULT_POLICY: &str = "default-src 'none'; sandbox";

/// What a request under `/playground` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Asset(&'static Asset),
    Render,
    NotFound,
}

/// The route of `path` (the request's path, without the query); `None`: not the playground's.
fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix(PAGE)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    if path.starts_with(RENDER) && path[RENDER.len()..].starts_with('/') {
        return Some(Route::Render);
    }
    Some(ASSETS.iter().find(|a| a.path == path).map_or(Route::NotFound, Route::Asset))
}

/// The address to reach a listener on `listen` from this host: an unspecified address
/// (`0.0.0.0`, `[::]`) becomes the loopback address of its family.
fn own_address(listen: &str) -> Option<SocketAddr> {
    let mut addr: SocketAddr = listen.parse().ok()?;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    Some(addr)
}

/// Where renders go: this server's first plain listener, under the site's image prefix, or with
/// the first image host as `Host` (`thumbora.site`), so that the request is an image request.
#[derive(Debug)]
struct Target {
    /// `http://host:port`, from our own configuration only.
    origin: String,
    /// `site.image_prefix` when no `site.image_hosts` names the request instead.
    prefix: String,
    host: Option<HeaderValue>,
}

impl Target {
    fn new(config: &Config) -> Result<Target> {
        let listen = config.listen.first().map(String::as_str).unwrap_or_default();
        let addr = own_address(listen).ok_or_else(|| {
            Error::new(ErrorKind::Internal, format!("thumbora.playground: no address to render on in `{listen}`"))
        })?;
        let host = config.site.image_hosts.first().and_then(|h| HeaderValue::from_str(h.trim()).ok());
        let prefix = if host.is_some() { String::new() } else { config.site.image_prefix.clone() };
        Ok(Target { origin: format!("http://{addr}"), prefix, host })
    }

    /// The URL of the thumbor path `path` (`/<signature>/...`, as the page sent it).
    fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin, self.prefix)
    }
}

/// The page, its assets and the render path.
pub struct Playground {
    target: Target,
    client: reqwest::Client,
    max_bytes: usize,
}

impl Playground {
    pub fn new(config: &Config) -> Result<Playground> {
        let target = Target::new(config)?;
        let timeout = Duration::from_millis(config.playground.timeout_ms);
        // reqwest is built without a TLS crypto provider; this client only speaks plain HTTP
        // to loopback, but building one needs a provider installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // The result's bytes as the public listener sends them.
            .no_gzip()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("thumbora-playground/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Internal, "thumbora.playground: building the HTTP client").with_source(e)
            })?;
        Ok(Playground { target, client, max_bytes: config.playground.max_result_bytes })
    }

    /// The answer to `req` when it is the playground's (`None`: not under `/playground`).
    pub async fn response(&self, req: &RequestHeader) -> Option<http::Response<Vec<u8>>> {
        let route = route(req.uri.path())?;
        if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
            return Some(text(405, "method not allowed\n"));
        }
        Some(match route {
            Route::Asset(asset) => page_response(asset),
            Route::NotFound => text(404, "not found: the playground is at /playground\n"),
            Route::Render => match std::str::from_utf8(req.raw_path()).ok().and_then(|p| p.strip_prefix(RENDER)) {
                Some(path) if path.starts_with('/') => self.render(path, req.headers.get(ACCEPT)).await,
                _ => text(400, "bad request: /playground/render/<thumbor path>\n"),
            },
        })
    }

    /// `path` fetched from our own listener: its status, `Content-Type`, `X-Cache` and body.
    async fn render(&self, path: &str, accept: Option<&HeaderValue>) -> http::Response<Vec<u8>> {
        let mut request = self.client.get(self.target.url(path));
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(host) = &self.target.host {
            request = request.header(HOST, host);
        }
        let mut upstream = match request.send().await {
            Ok(upstream) => upstream,
            Err(e) => return self.failure(&e),
        };
        if upstream.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return self.too_large();
        }
        let mut body = Vec::new();
        loop {
            match upstream.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > self.max_bytes => return self.too_large(),
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return self.failure(&e),
            }
        }
        let mut response = http::Response::builder()
            .status(upstream.status().as_u16())
            .header(CONTENT_LENGTH, body.len())
            .header(CACHE_CONTROL, "no-store")
            .header("x-content-type-options", "nosniff")
            .header("content-security-policy", RESULT_POLICY);
        for name in [CONTENT_TYPE.as_str(), "x-cache"] {
            if let Some(value) = upstream.headers().get(name) {
                response = response.header(name, value);
            }
        }
        response.body(body).unwrap_or_default()
    }

    fn failure(&self, e: &reqwest::Error) -> http::Response<Vec<u8>> {
        log::warn!("playground: render through {}: {e}", self.target.origin);
        match e.is_timeout() {
            true => text(504, "the render took longer than thumbora.playground.timeout_ms\n"),
            false => text(502, "the render failed: Thumbora's own listener did not answer in full\n"),
        }
    }

    fn too_large(&self) -> http::Response<Vec<u8>> {
        text(502, &format!("the result is larger than thumbora.playground.max_result_bytes ({})\n", self.max_bytes))
    }
}

fn page_response(asset: &Asset) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header(CONTENT_TYPE, asset.content_type)
        .header(CONTENT_LENGTH, asset.body.len())
        .header(CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("content-security-policy", PAGE_POLICY)
        .body(asset.body.as_bytes().to_vec())
        .unwrap_or_default()
}

fn text(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(CONTENT_LENGTH, body.len())
        .header(CACHE_CONTROL, "no-store")
        .body(body.as_bytes().to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/playground"), Some(Route::Asset(&ASSETS[0])));
        assert!(
            matches!(route("/playground/sign.js"), Some(Route::Asset(a)) if a.content_type.starts_with("text/javascript"))
        );
        assert_eq!(route("/playground/render/unsafe/10x10/h/i.jpg"), Some(Route::Render));
        assert_eq!(route("/playground/render"), Some(Route::NotFound));
        assert_eq!(route("/playground/renderx/a"), Some(Route::NotFound));
        assert_eq!(route("/playground/nope.js"), Some(Route::NotFound));
        assert_eq!(route("/playgroundx"), None);
        assert_eq!(route("/metrics"), None);
        assert_eq!(route("/"), None);
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        let page = ASSETS[0].body;
        for asset in &ASSETS[1..] {
            assert!(page.contains(&format!("\"{}\"", asset.path)), "{} not loaded by the page", asset.path);
        }
        for attr in ["src=\"", "href=\""] {
            for (at, _) in page.match_indices(attr) {
                assert!(page[at + attr.len()..].starts_with("/playground/"), "nothing from elsewhere: {}", &page[at..]);
            }
        }
    }

    #[test]
    fn renders_go_to_our_own_listener() {
        assert_eq!(own_address("0.0.0.0:8888"), Some("127.0.0.1:8888".parse().unwrap()));
        assert_eq!(own_address("[::]:8888"), Some("[::1]:8888".parse().unwrap()));
        assert_eq!(own_address("10.1.2.3:80"), Some("10.1.2.3:80".parse().unwrap()));
        let mut config = Config::default();
        let target = Target::new(&config).unwrap();
        assert_eq!(target.url("/unsafe/1x1/h/i.jpg"), "http://127.0.0.1:8888/unsafe/1x1/h/i.jpg");
        assert_eq!(target.url("//evil.example/x"), "http://127.0.0.1:8888//evil.example/x", "a path, not a host");
        config.listen = vec!["[::]:80".into()];
        config.site.image_prefix = "/img".into();
        assert_eq!(Target::new(&config).unwrap().url("/s/h/i"), "http://[::1]:80/img/s/h/i");
        config.site.image_hosts = vec!["img.example.com".into()];
        let target = Target::new(&config).unwrap();
        assert_eq!(target.url("/s/h/i"), "http://[::1]:80/s/h/i", "the host makes it an image request");
        assert_eq!(target.host.unwrap(), "img.example.com");
    }
}
