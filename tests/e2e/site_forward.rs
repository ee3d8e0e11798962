//! The site's two short paths for plain GETs and HEADs, at the connection (src/site/direct.rs,
//! `fast_forward: true`, the default) and in Pingora's session (src/site/forward.rs), against
//! Pingora's proxy, which takes every other site request: all send the app the same request and
//! give the client the same answer; every way an app can frame or fail an answer reaches the
//! client whole or as an error, never as a truncated success; kept-alive app connections are
//! pooled as configured.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::app::App;
use super::harness::*;

/// Both short paths: the `site:` lines that choose each.
const SHORT_PATHS: [(&str, &str); 2] = [("at the connection", ""), ("in the session", "    fast_forward: false\n")];

fn settings(upstream: &str, extra: &str) -> Settings {
    Settings {
        thumbora: format!(
            "  site:\n    upstreams: [\"{upstream}\"]\n    image_prefix: /img\n    health_check_seconds: 0\n    read_timeout_ms: 500\n{extra}"
        ),
        ..Settings::default()
    }
}

/// Send raw `bytes` on a new connection and read what comes back until the server closes or
/// stays quiet for `quiet`.
async fn raw(port: u16, bytes: &[u8], quiet: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 16384];
    let closed = loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
        assert!(received.len() < 1 << 20);
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// An app that answers each request with bytes chosen by its path, for the framings and failures
/// a real app produces. Counts connections; 127.0.0.1 only; every connection ends within 10 s.
struct Scripted {
    addr: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// `/hang` requests whose connection the proxy closed before the app answered.
    abandoned: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    async fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let abandoned = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (count, left) = (connections.clone(), abandoned.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let left = left.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), Self::serve(stream, left)).await;
                });
            }
        });
        Scripted { addr, connections, abandoned, task }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn abandoned(&self) -> usize {
        self.abandoned.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn serve(mut stream: TcpStream, abandoned: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        for served in 0..100 {
            // One request head (these requests have no body).
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end);
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let answer: &[u8] = match path.as_str() {
                "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                "/trailers" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;v=1\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n",
                "/bad-chunk" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n").await;
                    return;
                }
                "/coded" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot gzip").await;
                    return;
                }
                "/two-lengths" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
                "/endless-head" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
                    for _ in 0..20_000 {
                        if stream.write_all(b"X-More: yes\r\n").await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                "/slow" => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"
                }
                // Within the proxy's `read_timeout_ms` (500).
                "/slower" => {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nslower"
                }
                "/interim" => b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                "/empty" => b"HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n",
                "/eof" => {
                    // No length: the body ends when the connection does.
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end").await;
                    return;
                }
                // Answered as the first request on a connection; as a later one, the app closes
                // the connection without answering (as an app does whose keep-alive timeout ran
                // out as the request arrived): the proxy must send it again on a new connection.
                "/once" if served > 0 => return,
                "/once" => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce",
                "/truncated" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b").await;
                    return;
                }
                "/interim-forever" => {
                    for _ in 0..1000 {
                        if stream.write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n").await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                "/switch" => b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                "/hang" => {
                    // Never answers; counts the proxy closing the connection within 5 s.
                    if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
                        abandoned.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    return;
                }
                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nplain",
            };
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_short_paths_and_pingoras_proxy_send_and_answer_alike() {
    for (path, extra) in SHORT_PATHS {
        short_path_and_proxy_alike(path, extra).await;
    }
}

async fn short_path_and_proxy_alike(path: &str, extra: &str) {
    let app = App::start("one").await;
    let server = Server::start_with(settings(&app.upstream(), extra)).await;
    // The same GET, plain (short path) and with a hop-by-hop `Keep-Alive` (Pingora's proxy,
    // which drops it): the app must see the same head, and the client the same answer.
    let headers = [("Host", "www.example.test"), ("X-Forwarded-For", "203.0.113.7"), ("Accept", "text/html")];
    let plain = server.request(reqwest::Method::GET, "/page?a=1", &headers).await;
    let mut sanitised = headers.to_vec();
    sanitised.push(("Keep-Alive", "300"));
    let full = server.request(reqwest::Method::GET, "/page?a=1", &sanitised).await;
    let heads = app.heads();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[0], heads[1], "{path}: the app saw different requests");
    let head = heads[0].join("\n").to_ascii_lowercase();
    for line in ["x-forwarded-for: 203.0.113.7, 127.0.0.1", "x-real-ip: 127.0.0.1", "x-forwarded-proto: http"] {
        assert!(head.contains(line), "{line} missing: {head}");
    }
    assert!(head.contains("x-forwarded-host: www.example.test"), "{head}");
    assert!(!head.contains("keep-alive") && !head.contains("connection:"), "{head}");
    assert_eq!((plain.status, &plain.body), (full.status, &full.body));
    let names = |r: &Resp| {
        let mut n: Vec<String> =
            r.headers.iter().map(|(k, v)| format!("{k}: {v:?}")).filter(|h| !h.starts_with("date")).collect();
        n.sort();
        n
    };
    assert_eq!(names(&plain), names(&full), "{path}");

    // HEAD takes the short path too: the app's head, no body.
    let head = server.request(reqwest::Method::HEAD, "/page", &[]).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(app.request_lines().last().map(String::as_str), Some("HEAD /page HTTP/1.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_of_an_app_answer_arrives_whole() {
    for (path, extra) in SHORT_PATHS {
        every_framing_arrives_whole(path, extra).await;
    }
}

async fn every_framing_arrives_whole(path: &str, extra: &str) {
    let app = Scripted::start().await;
    let server = Server::start_with(settings(&app.addr, extra)).await;
    let r = server.get("/chunked").await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"), "{path}");
    // Chunk extensions and trailers: the body whole, the trailers (nobody asked for) dropped.
    let (text, closed) =
        raw(server.port, b"GET /trailers HTTP/1.1\r\nHost: a\r\n\r\n", Duration::from_millis(300)).await;
    assert!(!closed && text.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {text}");
    assert!(
        text.ends_with("\r\n\r\n5;v=1\r\nhello\r\n0\r\n\r\n") || text.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        "{path}: {text}"
    );
    assert!(!text.contains("X-Sum"), "{path}: {text}");
    let r = server.get("/interim").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "the 103 is dropped, the 200 passes");
    let r = server.get("/empty").await;
    assert_eq!((r.status, r.body.len(), r.header("x-empty").as_deref()), (204, 0, Some("yes")));
    let r = server.get("/page").await;
    assert_eq!((r.status, r.text().as_str()), (200, "plain"));

    // An answer delimited by the app closing goes on chunked: the client's connection stays open
    // for the next request.
    let (text, closed) = raw(
        server.port,
        b"GET /eof HTTP/1.1\r\nHost: a\r\n\r\nGET /page HTTP/1.1\r\nHost: a\r\n\r\n",
        Duration::from_secs(1),
    )
    .await;
    assert!(!closed, "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked"), "{text}");
    assert!(lower.contains("\r\n\r\nd\r\nuntil the end\r\n0\r\n\r\n"), "{text}");
    assert!(!lower.contains("keep-alive: timeout"), "the app's Keep-Alive is about its connection to us: {text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");

    // An HTTP/1.0 client cannot read chunked framing: on either path (plain, and with a
    // `Keep-Alive` field for Pingora's proxy) it gets the bare body and the connection's end.
    for extra in ["", "Keep-Alive: 300\r\n"] {
        for (path, body) in [("/chunked", "hello world"), ("/eof", "until the end")] {
            let request = format!("GET {path} HTTP/1.0\r\nHost: a\r\n{extra}\r\n");
            let (text, closed) = raw(server.port, request.as_bytes(), Duration::from_secs(3)).await;
            assert!(closed, "{path} {extra:?}: {text}");
            assert!(!text.to_ascii_lowercase().contains("transfer-encoding"), "{path} {extra:?}: {text}");
            assert!(
                text.starts_with("HTTP/1.1 200") && text.ends_with(&format!("\r\n\r\n{body}")),
                "{path} {extra:?}: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_failing_gives_an_error_never_a_short_success() {
    for (path, extra) in SHORT_PATHS {
        failing_app(path, extra).await;
    }
}

async fn failing_app(path: &str, extra: &str) {
    let app = Scripted::start().await;
    let server = Server::start_with(settings(&app.addr, extra)).await;
    // A body shorter than its Content-Length: the head has gone out, so the client's connection
    // is closed before the promised length (reqwest reports the body as failed).
    let answer = server.client.get(server.url("/truncated")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.bytes().await.is_err(), "{path}: a truncated body must not read as complete");
    // Chunk framing that breaks off: the client's connection is closed before a last chunk.
    let (text, closed) = raw(server.port, b"GET /bad-chunk HTTP/1.1\r\nHost: a\r\n\r\n", Duration::from_secs(3)).await;
    assert!(closed && !text.ends_with("0\r\n\r\n"), "{path}: {text}");
    // No answer within read_timeout_ms: 502, promptly.
    let started = std::time::Instant::now();
    assert_eq!(server.get("/hang").await.status, 502);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(app.abandoned(), 1, "{path}: the app's connection is closed once the request failed");
    // A client that leaves while the app works: the app's connection is closed at once, not
    // kept until the read timeout (500 ms here) or the app's answer.
    let mut client = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    client.write_all(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left = std::time::Instant::now();
    drop(client);
    for _ in 0..100 {
        if app.abandoned() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(app.abandoned(), 2, "{path}");
    assert!(left.elapsed() < Duration::from_millis(400), "{path}: noticed after {:?}", left.elapsed());
    // A protocol switch nobody asked for; interim answers without end.
    assert_eq!(server.get("/switch").await.status, 502);
    assert_eq!(server.get("/interim-forever").await.status, 502);
    assert_eq!(server.get("/page").await.status, 200, "{path}: and the next request is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_an_answer_framed_two_ways_is_refused() {
    // A transfer coding that is not chunked, Content-Length fields that disagree: nginx refuses
    // both (502), and so does the connection path, rather than guess where the answer ends; and
    // a head past 64 KiB.
    let app = Scripted::start().await;
    let server = Server::start_with(settings(&app.addr, "")).await;
    for path in ["/coded", "/two-lengths", "/endless-head"] {
        let r = server.get(path).await;
        assert_eq!((r.status, r.body.len()), (502, 0), "{path}");
    }
    assert_eq!(server.get("/page").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_while_the_app_works_is_answered_after() {
    // The client sends its next request while the app still works on the first (after the
    // proxy started watching the client): both are answered, in order, on the one connection.
    let app = Scripted::start().await;
    let server = Server::start_with(settings(&app.addr, "")).await;
    let mut client = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    client.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    client.write_all(b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while received.windows(5).filter(|w| w == b"plain").count() == 0 {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0 && received.len() < 65536, "{}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(text.find("\r\n\r\nslow").unwrap() < text.find("\r\n\r\nplain").unwrap(), "{text}");
    // And the connection goes on.
    client.write_all(b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with("\r\n\r\nplain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_sent_after_a_graceful_stop_began_says_the_connection_closes() {
    // SIGTERM while the app works on a kept-alive client's request: the answer still goes out
    // whole, says `Connection: close` (the client will not send its next request into a closing
    // connection), and the connection then closes, as nginx does when it exits.
    for (path, extra) in SHORT_PATHS {
        let app = Scripted::start().await;
        let mut server = Server::start_with(settings(&app.addr, extra)).await;
        let stop = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            server.signal(libc::SIGTERM);
        };
        let request = raw(server.port, b"GET /slower HTTP/1.1\r\nHost: a\r\n\r\n", Duration::from_secs(5));
        let ((text, closed), ()) = tokio::join!(request, stop);
        let text = text.to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200 ") && text.ends_with("\r\n\r\nslower"), "{path}: {text}");
        assert_eq!(text.matches("\r\nconnection: ").count(), 1, "{path}: {text}");
        assert!(text.contains("\r\nconnection: close\r\n"), "{path}: {text}");
        assert!(closed, "{path}: the connection closes after the answer");
        assert!(server.wait_exit(Duration::from_secs(10)), "{path}: exits once drained");
    }
}

/// One client connection kept alive across requests: each request is served by the proxy
/// thread that holds the connection.
struct KeptAlive(TcpStream);

impl KeptAlive {
    async fn open(port: u16) -> KeptAlive {
        KeptAlive(TcpStream::connect(("127.0.0.1", port)).await.unwrap())
    }

    /// GET `path`; the status and body of an answer framed by `Content-Length`.
    async fn get(&mut self, path: &str) -> (u16, String) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        self.0.write_all(request.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.0.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0 && received.len() < 65536, "the proxy closed or sent an endless head");
            received.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a Content-Length answer");
        while received.len() < head_end + length {
            let n = tokio::time::timeout(Duration::from_secs(5), self.0.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "body cut short");
            received.extend_from_slice(&buf[..n]);
        }
        assert_eq!(received.len(), head_end + length, "nothing after the answer");
        (status, String::from_utf8_lossy(&received[head_end..]).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_app_connections_are_reused_as_configured() {
    for (path, extra) in SHORT_PATHS {
        app_connections_reused(path, extra).await;
    }
}

async fn app_connections_reused(path: &str, extra: &str) {
    // Default pool: ten sequential requests on one client connection share one connection to
    // the app (each proxy thread keeps its own idle connections, as each nginx worker does).
    let app = Scripted::start().await;
    let server = Server::start_with(settings(&app.addr, extra)).await;
    let mut client = KeptAlive::open(server.port).await;
    for _ in 0..10 {
        assert_eq!(client.get("/page").await.0, 200);
    }
    assert_eq!(app.connections(), 1, "{path}");
    // Clients on new connections, whichever thread takes them: at most one app connection for
    // each of the server's two threads.
    for _ in 0..10 {
        assert_eq!(KeptAlive::open(server.port).await.get("/page").await.0, 200);
    }
    assert!(app.connections() <= 2, "{} app connections", app.connections());

    // A kept-alive connection the app closes as the request arrives: the GET goes again on a
    // new connection, and the client never knows.
    let before = app.connections();
    for i in 0..4 {
        assert_eq!(client.get("/once").await, (200, "once".to_string()), "request {i}");
    }
    // The first /once reused the /page connection (closed: +1); each later one found the
    // previous /once connection pooled, which closed (+1 each).
    assert_eq!(app.connections(), before + 4, "{path}");

    // `keepalive: 0`: no idle connection is kept, each request opens its own.
    let app = Scripted::start().await;
    let server = Server::start_with(settings(&app.addr, &format!("    keepalive: 0\n{extra}"))).await;
    let mut client = KeptAlive::open(server.port).await;
    for _ in 0..5 {
        assert_eq!(client.get("/page").await.0, 200);
    }
    assert_eq!(app.connections(), 5, "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_settings_are_checked() {
    for (extra, key) in [
        ("    keepalive: 70000\n", "thumbora.site.keepalive"),
        ("    keepalive_timeout_seconds: 0\n", "thumbora.site.keepalive_timeout_seconds"),
    ] {
        let yaml = format!(
            "thumbora:\n  listen: [\"127.0.0.1:{}\"]\n  site:\n    upstreams: [\"127.0.0.1:9\"]\n    image_prefix: /img\n{extra}",
            free_port()
        );
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("thumbora.yaml");
        std::fs::write(&conf, yaml).unwrap();
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_thumbora")).arg("-t").arg("-c").arg(&conf).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(key), "{extra}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_closes_connections_idle_on_the_connection_path() {
    // A client kept alive after an answer from the connection path, now idle: SIGTERM closes
    // its connection at once (the connection path waits on the shutdown too), and the server
    // exits as soon as it is drained, not after the keep-alive timeout (60 s).
    let app = Scripted::start().await;
    let mut server = Server::start_with(settings(&app.addr, "")).await;
    let mut client = KeptAlive::open(server.port).await;
    assert_eq!(client.get("/page").await.0, 200);
    let signalled = std::time::Instant::now();
    server.signal(libc::SIGTERM);
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), client.0.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the idle connection is closed: {read:?}");
    assert!(server.wait_exit(Duration::from_secs(10)), "exits once drained");
    eprintln!("SIGTERM to exit with an idle kept-alive client: {:?}", signalled.elapsed());
}
