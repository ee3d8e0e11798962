//! Fresh hits answered at the connection (`thumbora.fast_hits`, on by default): byte for byte the
//! response Pingora's session sends, and every request the fast path does not take still gets
//! Pingora's answer, on the same connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::*;
use super::metrics::settled_scrape;

/// One response read off `stream`: its head (with the values of `Date`, `Age` and `Expires`
/// blanked: they tell the second of the render or the answer, not the path) and its body (none for `HEAD` and 304). `None` when the server closed
/// the connection before a response.
async fn response(stream: &mut TcpStream, head_only: bool) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.expect("a response");
        match n.unwrap_or(0) {
            0 => return None,
            n => bytes.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let body_length = if head_only || head.starts_with("HTTP/1.1 304") { 0 } else { length };
    let mut body = bytes[head_end..].to_vec();
    while body.len() < body_length {
        let mut chunk = vec![0u8; body_length - body.len()];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.expect("the body").unwrap();
        assert!(n > 0, "connection closed {} bytes into a {body_length}-byte body", body.len());
        body.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(body.len(), body_length, "nothing past the body: {head}");
    let blank = |l: &str| match l.split_once(": ") {
        Some((name @ ("Date" | "Age" | "Expires"), _)) => format!("{name}: *"),
        _ => l.to_string(),
    };
    Some((head.lines().map(blank).collect::<Vec<_>>().join("\n"), body))
}

/// Whether the server closed `stream` (read returns 0 within a second).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
}

/// What one server answers to a fixed sequence of requests for a result it holds, on a few
/// connections: the plain requests the fast path takes, and those it leaves to Pingora.
async fn answers(server: &Server, path: &str, etag: &str) -> Vec<(String, Vec<u8>)> {
    let get = |extra: &str| format!("GET {path} HTTP/1.1\r\nHost: thumbora\r\n{extra}\r\n");
    let mut out = Vec::new();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let sequence = [
        (get(""), false),
        (format!("HEAD {path} HTTP/1.1\r\nHost: thumbora\r\n\r\n"), true),
        (get("Accept: image/webp,*/*\r\n"), false),
        (get("Connection: keep-alive\r\nUser-Agent: e2e\r\n"), false),
        // Left to Pingora: a conditional and a range request; the connection comes back to the
        // fast path after each.
        (get(&format!("If-None-Match: {etag}\r\n")), false),
        (get("Range: bytes=0-9\r\n"), false),
        (get(""), false),
    ];
    for (request, head_only) in &sequence {
        stream.write_all(request.as_bytes()).await.unwrap();
        out.push(response(&mut stream, *head_only).await.expect(request));
    }
    // Two pipelined requests in one write: Pingora answers both, in order.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream.write_all(format!("{}{}", get(""), get("Accept: image/webp\r\n")).as_bytes()).await.unwrap();
    out.push(response(&mut stream, false).await.unwrap());
    out.push(response(&mut stream, false).await.unwrap());
    // `Connection: close` is answered, then the connection ends.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream.write_all(get("Connection: close\r\n").as_bytes()).await.unwrap();
    out.push(response(&mut stream, false).await.unwrap());
    assert!(closed(&mut stream).await, "Connection: close");
    // HTTP/1.0 goes to Pingora, which closes after it.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).await.unwrap();
    out.push(response(&mut stream, false).await.unwrap());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_hits_answer_byte_for_byte_what_pingora_answers() {
    let origin = Origin::start().await;
    let rest = |fast: bool, metrics_port: u16| {
        format!("  fast_hits: {fast}\n  image:\n    auto_webp: true\n  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n")
    };
    let path = format!("/unsafe/300x200/{}/landscape.jpg", origin.host());
    let mut all = Vec::new();
    for fast in [true, false] {
        let metrics_port = free_port();
        let settings = Settings { thumbora: rest(fast, metrics_port), ..Default::default() };
        let server = Server::start_with(settings).await;
        // Rendered and cached through Pingora: the JPEG and the WebP variant.
        let jpeg = server.get(&path).await;
        assert_eq!(jpeg.status, 200);
        let webp = server.request(reqwest::Method::GET, &path, &[("Accept", "image/webp")]).await;
        assert_eq!(webp.content_type(), "image/webp");
        let before = settled_scrape(&server, metrics_port, 0.0).await;
        let answers = answers(&server, &path, &jpeg.header("etag").unwrap()).await;
        let after = settled_scrape(&server, metrics_port, 0.0).await;
        let fast_hits = after["thumbora_fast_hits_total"] - before["thumbora_fast_hits_total"];
        // GET, HEAD, the WebP GET, the keep-alive GET, the GET after the range request, and the
        // `Connection: close` GET (not the pipelined pair, nor HTTP/1.0).
        assert_eq!(fast_hits, if fast { 6.0 } else { 0.0 }, "fast_hits: {fast}");
        for (head, body) in &answers {
            assert!(head.contains("X-Cache: HIT memory") || head.starts_with("HTTP/1.1 304"), "{head}");
            if head.starts_with("HTTP/1.1 200") {
                let wanted = if head.contains("image/webp") { &webp.body } else { &jpeg.body };
                assert!(body.is_empty() || body == wanted, "{head}");
            }
        }
        all.push(answers);
        drop(server);
    }
    assert_eq!(origin.hits("/landscape.jpg"), 2, "one fetch per server");
    let (fast, pingora) = (&all[0], &all[1]);
    assert_eq!(fast.len(), pingora.len());
    for (i, (f, p)) in fast.iter().zip(pingora).enumerate() {
        assert_eq!(f.0, p.0, "response {i}: heads differ");
        assert!(f.1 == p.1, "response {i}: bodies differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_keeps_the_connection_rules() {
    let origin = Origin::start().await;
    let metrics_port = free_port();
    let settings = Settings {
        thumbora: format!(
            "  keepalive_seconds: 1\n  request_head_timeout_ms: 1000\n  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n"
        ),
        ..Default::default()
    };
    let server = Server::start_with(settings).await;
    let path = format!("/unsafe/200x100/{}/landscape.jpg", origin.host());
    let first = server.get(&path).await;
    assert_eq!(first.status, 200);
    let get = format!("GET {path} HTTP/1.1\r\nHost: thumbora\r\n\r\n");

    // A head that arrives in two writes is read whole (by Pingora) and answered.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let (a, b) = get.split_at(get.len() / 2);
    stream.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b.as_bytes()).await.unwrap();
    assert_eq!(response(&mut stream, false).await.unwrap().1, first.body);

    // Between requests, an idle connection is closed after keepalive_seconds.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream.write_all(get.as_bytes()).await.unwrap();
    assert_eq!(response(&mut stream, false).await.unwrap().1, first.body);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(closed(&mut stream).await, "idle past keepalive_seconds");

    // A miss after a hit on one connection is rendered (by Pingora), and the hits after it are
    // answered at the connection again.
    let before = settled_scrape(&server, metrics_port, 0.0).await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let other = format!("/unsafe/120x60/{}/landscape.jpg", origin.host());
    for target in [&path, &other, &path, &other] {
        stream.write_all(format!("GET {target} HTTP/1.1\r\nHost: thumbora\r\n\r\n").as_bytes()).await.unwrap();
        let (head, body) = response(&mut stream, false).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{target}: {head}");
        assert_eq!(image::load_from_memory(&body).unwrap().width(), if target == &path { 200 } else { 120 });
    }
    assert_eq!(origin.hits("/landscape.jpg"), 1);
    let after = settled_scrape(&server, metrics_port, 0.0).await;
    assert_eq!(after["thumbora_fast_hits_total"] - before["thumbora_fast_hits_total"], 3.0, "all but the miss");

    // A client that connects and says nothing is dropped at the head deadline, as before.
    let mut quiet = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), quiet.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}
