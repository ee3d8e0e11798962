//! An in-process HTTP/1.1 origin for the tests: fixture files, generated images, fault paths and
//! a per-path hit counter. Binds 127.0.0.1 only; every wait is bounded.
//!
//! Routes (the same as scripts/compat/origin.py, plus fault switches):
//! `/<file>` from the fixture directory or the in-memory table, `/status/<code>/..`,
//! `/empty.jpg`, `/slow/<file>` (sleeps `slow`), `/delay/<ms>/<file>`, `/redirect/<n>/<file>`,
//! `/redirect-to/<percent-encoded URL>`, `/as-text/<file>`, `/no-type/<file>`, `/qs/<file>`
//! (only with `ok=1`), `/trickle/<file>` (one byte every 200 ms), `/abort/<file>` (half the body,
//! then close), `/close-delimited-half/<file>` (half the body without a length, then close),
//! `/wrong-length/<file>` (Content-Length larger than the body), `/silent/..`
//! (never answers, for 30 s), `/huge` (an endless chunked body, bounded at 256 MiB),
//! `/gzip/<file>` (sent with `Content-Encoding: gzip`), `/gzip-bomb` (8 MiB of zeros, gzipped).
//! A plain `/<file>` carries an `ETag` (a hash of its bytes) and is answered `304 Not Modified`
//! when the request's `If-None-Match` names it (counted: [`Origin::not_modified`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    /// Paths answered with a 302 to a fixed location.
    redirects: HashMap<String, String>,
    hits: HashMap<String, usize>,
    total: usize,
    /// Requests answered 304 Not Modified.
    not_modified: usize,
}

/// A running origin; stops when dropped.
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compat/images")
}

impl Origin {
    pub async fn start() -> Origin {
        Self::start_with_slow(Duration::from_secs(3)).await
    }

    /// `slow` is how long `/slow/..` waits before answering.
    pub async fn start_with_slow(slow: Duration) -> Origin {
        Self::start_on("127.0.0.1:0", slow).await
    }

    /// An origin on the IPv6 loopback address (`[::1]:PORT`).
    pub async fn start_v6() -> Origin {
        Self::start_on("[::1]:0", Duration::from_secs(3)).await
    }

    async fn start_on(bind: &str, slow: Duration) -> Origin {
        let listener = TcpListener::bind(bind).await.expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { break };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(stream, state, slow)).await;
                });
            }
        });
        Origin { addr, state, task }
    }

    /// `127.0.0.1:PORT` (or `[::1]:PORT`), as it appears in image URLs.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Serve `bytes` at `path` (e.g. `/gen/a.jpg`).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.to_string(), bytes);
    }

    /// Answer `path` with a redirect to `location`.
    pub fn put_redirect(&self, path: &str, location: &str) {
        self.state.lock().unwrap().redirects.insert(path.to_string(), location.to_string());
    }

    /// Requests received for `path` (path and query as sent).
    pub fn hits(&self, path: &str) -> usize {
        self.state.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    /// Requests answered `304 Not Modified` (a conditional request for unchanged bytes).
    pub fn not_modified(&self) -> usize {
        self.state.lock().unwrap().not_modified
    }

    /// Requests received in all.
    pub fn total_hits(&self) -> usize {
        self.state.lock().unwrap().total
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn load_file(state: &Arc<Mutex<State>>, rel: &str) -> Option<Vec<u8>> {
    let rel = percent_decode(rel);
    if let Some(bytes) = state.lock().unwrap().files.get(&format!("/{}", rel.trim_start_matches('/'))) {
        return Some(bytes.clone());
    }
    if rel.split('/').any(|p| p == ".." || p.is_empty()) && !rel.is_empty() {
        return None;
    }
    std::fs::read(fixture_dir().join(rel.trim_start_matches('/'))).ok().filter(|_| !rel.is_empty())
}

/// A strong ETag for `bytes`: a hash of them, quoted.
fn etag(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: &[u8], head: bool) {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    if !head {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.shutdown().await;
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, slow: Duration) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // Not HTTP (a TLS handshake, say): close, as a plain HTTP server would.
        if !buf[0].is_ascii_uppercase() || buf.len() > 65536 {
            return;
        }
    }
    let head_text = String::from_utf8_lossy(&buf).into_owned();
    let mut first = head_text.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let head = method == "HEAD";
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    {
        let mut s = state.lock().unwrap();
        s.total += 1;
        *s.hits.entry(target.clone()).or_default() += 1;
    }

    let ok = |bytes: Vec<u8>, ctype: &str| (200u16, vec![("Content-Type", ctype.to_string())], bytes);
    let not_found = || (404u16, vec![("Content-Type", "text/plain".to_string())], b"not found\n".to_vec());

    let redirect = state.lock().unwrap().redirects.get(&path).cloned();
    if let Some(location) = redirect {
        return respond(&mut stream, 302, &[("Location", location)], b"", head).await;
    }
    if let Some(rest) = path.strip_prefix("/status/") {
        let code: u16 = rest.split('/').next().and_then(|c| c.parse().ok()).unwrap_or(400);
        return respond(
            &mut stream,
            code,
            &[("Content-Type", "text/plain".into())],
            b"status\n",
            head || code == 204 || code == 304,
        )
        .await;
    }
    if path == "/empty.jpg" {
        return respond(&mut stream, 200, &[("Content-Type", "image/jpeg".into())], b"", head).await;
    }
    if let Some(rest) = path.strip_prefix("/slow/") {
        tokio::time::sleep(slow).await;
        let (status, headers, body) =
            load_file(&state, rest).map(|b| ok(b, content_type(rest))).unwrap_or_else(not_found);
        return respond(&mut stream, status, &headers, &body, head).await;
    }
    if let Some(rest) = path.strip_prefix("/delay/") {
        let (ms, file) = rest.split_once('/').unwrap_or((rest, ""));
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0).min(30_000))).await;
        let (status, headers, body) =
            load_file(&state, file).map(|b| ok(b, content_type(file))).unwrap_or_else(not_found);
        return respond(&mut stream, status, &headers, &body, head).await;
    }
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let (n, file) = rest.split_once('/').unwrap_or((rest, ""));
        let n: u32 = n.parse().unwrap_or(0).min(20);
        let mut location = if n > 1 { format!("/redirect/{}/{file}", n - 1) } else { format!("/{file}") };
        if !query.is_empty() {
            location.push('?');
            location.push_str(&query);
        }
        return respond(&mut stream, 302, &[("Location", location)], b"", head).await;
    }
    if let Some(rest) = path.strip_prefix("/redirect-to/") {
        return respond(&mut stream, 302, &[("Location", percent_decode(rest))], b"", head).await;
    }
    if let Some(rest) = path.strip_prefix("/gzip/") {
        let (status, mut headers, body) =
            load_file(&state, rest).map(|b| ok(b, content_type(rest))).unwrap_or_else(not_found);
        let body = gzip(&body);
        headers.push(("Content-Encoding", "gzip".into()));
        return respond(&mut stream, status, &headers, &body, head).await;
    }
    if path == "/gzip-bomb" {
        let body = gzip(&vec![0u8; 8 << 20]);
        let headers = [("Content-Type", "image/png".to_string()), ("Content-Encoding", "gzip".into())];
        return respond(&mut stream, 200, &headers, &body, head).await;
    }
    if let Some(rest) = path.strip_prefix("/as-text/") {
        let (status, headers, body) = load_file(&state, rest).map(|b| ok(b, "text/plain")).unwrap_or_else(not_found);
        return respond(&mut stream, status, &headers, &body, head).await;
    }
    if let Some(rest) = path.strip_prefix("/no-type/") {
        let (status, _, body) = load_file(&state, rest).map(|b| ok(b, "")).unwrap_or_else(not_found);
        return respond(&mut stream, status, &[], &body, head).await;
    }
    if let Some(rest) = path.strip_prefix("/qs/") {
        let (status, headers, body) = if query.split('&').any(|kv| kv == "ok=1") {
            load_file(&state, rest).map(|b| ok(b, content_type(rest))).unwrap_or_else(not_found)
        } else {
            not_found()
        };
        return respond(&mut stream, status, &headers, &body, head).await;
    }
    if let Some(rest) = path.strip_prefix("/trickle/") {
        let Some(body) = load_file(&state, rest) else { return respond(&mut stream, 404, &[], b"", head).await };
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            content_type(rest),
            body.len()
        );
        let _ = stream.write_all(header.as_bytes()).await;
        for byte in body.iter().take(200) {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return;
    }
    if let Some(rest) = path.strip_prefix("/abort/") {
        let Some(body) = load_file(&state, rest) else { return respond(&mut stream, 404, &[], b"", head).await };
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            content_type(rest),
            body.len()
        );
        let _ = stream.write_all(header.as_bytes()).await;
        let _ = stream.write_all(&body[..body.len() / 2]).await;
        return; // dropped: connection closed mid-body
    }
    if let Some(rest) = path.strip_prefix("/close-delimited-half/") {
        // An HTTP/1.0-style body ended by closing the connection, cut in half: nothing in the
        // framing says it is incomplete.
        let Some(body) = load_file(&state, rest) else { return respond(&mut stream, 404, &[], b"", head).await };
        let header = format!("HTTP/1.0 200 OK\r\nContent-Type: {}\r\n\r\n", content_type(rest));
        let _ = stream.write_all(header.as_bytes()).await;
        let _ = stream.write_all(&body[..body.len() / 2]).await;
        let _ = stream.shutdown().await;
        return;
    }
    if let Some(rest) = path.strip_prefix("/wrong-length/") {
        let Some(body) = load_file(&state, rest) else { return respond(&mut stream, 404, &[], b"", head).await };
        let len = (body.len() + 1000).to_string();
        return respond(
            &mut stream,
            200,
            &[("Content-Type", content_type(rest).into()), ("Content-Length", len)],
            &body,
            head,
        )
        .await;
    }
    if path.starts_with("/silent/") {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    if path == "/huge" {
        let header =
            "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(header.as_bytes()).await;
        let block = vec![0xFFu8; 64 * 1024];
        for _ in 0..4096 {
            let frame = format!("{:x}\r\n", block.len());
            if stream.write_all(frame.as_bytes()).await.is_err()
                || stream.write_all(&block).await.is_err()
                || stream.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        return;
    }
    let rel = path.trim_start_matches('/');
    let (status, mut headers, body) =
        load_file(&state, rel).map(|b| ok(b, content_type(rel))).unwrap_or_else(not_found);
    if status == 200 {
        let etag = etag(&body);
        let if_none_match = head_text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("if-none-match"))
            .map(|(_, value)| value.trim().to_string());
        if if_none_match.is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
            state.lock().unwrap().not_modified += 1;
            return respond(&mut stream, 304, &[("ETag", etag)], b"", true).await;
        }
        headers.push(("ETag", etag));
    }
    respond(&mut stream, status, &headers, &body, head).await;
}
