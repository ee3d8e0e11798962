//! Request smuggling and framing over raw sockets (reliability plan T12), with the site proxy in
//! front of an app server: ambiguous or malformed framing is refused and the connection closed,
//! the app never sees a request hidden in another, and honest pipelining is answered in order.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::app::App;
use super::harness::*;

/// What came back on one connection: the status of each response, and whether the server
/// closed the connection (rather than the 3 s read limit running out).
struct Exchange {
    statuses: Vec<u16>,
    closed: bool,
}

async fn exchange(port: u16, bytes: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // The server may refuse and close before reading everything: a failed write is an answer too.
    let _ = stream.write_all(bytes).await;
    let mut received = Vec::new();
    let mut buf = [0u8; 16384];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
        if received.len() > 1 << 20 {
            break false;
        }
    };
    let text = String::from_utf8_lossy(&received);
    let statuses =
        text.split("HTTP/1.1 ").skip(1).filter_map(|s| s.get(..3).and_then(|code| code.parse().ok())).collect();
    Exchange { statuses, closed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_and_nothing_is_smuggled() {
    let app = App::start("app").await;
    let server = Server::start_with(Settings {
        thumbora: format!("  site:\n    upstreams: [\"{}\"]\n    image_prefix: /img\n", app.upstream()),
        ..Settings::default()
    })
    .await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    // Content-Length beside Transfer-Encoding: the chunked framing wins (RFC 9112 §6.3), the
    // request is answered, and the connection closes (§6.1), so what follows is never read.
    for te_cl in [
        format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n{smuggled}"),
    ] {
        let got = exchange(server.port, te_cl.as_bytes()).await;
        assert_eq!(got.statuses, vec![200], "{te_cl:?}");
        assert!(got.closed, "{te_cl:?}: the connection must close");
    }
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "duplicate Content-Length",
            format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n{smuggled}"),
            400,
        ),
        ("obs-fold", format!("GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n{smuggled}"), 400),
        (
            "obfuscated Transfer-Encoding",
            format!("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}"),
            400,
        ),
        (
            "space before colon",
            format!("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{smuggled}"),
            400,
        ),
        (
            "negative Content-Length",
            format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n{smuggled}"),
            400,
        ),
        ("signed Content-Length", format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n{smuggled}"), 400),
        (
            "oversized header",
            format!("GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n{smuggled}", "a".repeat(100_000)),
            431,
        ),
    ];
    for (name, bytes, status) in &cases {
        let got = exchange(server.port, bytes.as_bytes()).await;
        assert_eq!(got.statuses, vec![*status], "{name}");
        assert!(got.closed, "{name}: the connection must close after a refusal");
    }
    // A body Thumbora answers without reading (405 on an image route, 400 on a bad image URL)
    // is still consumed as a body, never parsed as the next request.
    for target in ["/img/unsafe/10x10/h/x.jpg", "/healthcheck"] {
        let body = smuggled;
        let request = format!("POST {target} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let got = exchange(server.port, request.as_bytes()).await;
        assert_eq!(got.statuses, vec![405], "POST {target}");
    }
    // Bare LF line ends (RFC 9112 §2.2 lets a server take them): a request written all in LF is
    // one request, and a bare LF inside a CRLF head splits fields, never hides a second request:
    // what reaches the app is re-framed with CRLF from what Thumbora parsed.
    // (`Connection: close` ends each exchange at once.)
    let n = smuggled.len();
    for (name, bytes) in [
        ("all LF", "GET /lf HTTP/1.1\nHost: a\nConnection: close\n\n".to_string()),
        (
            "LF inside CRLF",
            format!(
                "GET /lf HTTP/1.1\r\nHost: a\r\nX-A: b\nContent-Length: {n}\r\nConnection: close\r\n\r\n{smuggled}"
            ),
        ),
        (
            "LF before the body",
            format!("POST /lf HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: {n}\n\n{smuggled}"),
        ),
    ] {
        let got = exchange(server.port, bytes.as_bytes()).await;
        assert_eq!((got.statuses, got.closed), (vec![200], true), "{name}");
    }
    let lf: Vec<String> = app.request_lines().into_iter().filter(|line| line.contains("/lf")).collect();
    assert_eq!(lf.len(), 3, "each reached the app as one request: {lf:?}");
    // A malformed chunk size: the request may have started towards the app, but it is cut off
    // and nothing after it is taken as a request.
    let got = exchange(
        server.port,
        format!("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n{smuggled}").as_bytes(),
    )
    .await;
    assert!(got.closed && !got.statuses.contains(&200), "bad chunk: {:?}", got.statuses);
    assert!(
        app.request_lines().iter().all(|line| !line.contains("smuggled")),
        "smuggled request reached the app: {:?}",
        app.request_lines()
    );
    // The server is healthy afterwards.
    assert_eq!(server.get("/healthcheck").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let origin = Origin::start().await;
    let app = App::start("app").await;
    let server = Server::start_with(Settings {
        thumbora: format!("  site:\n    upstreams: [\"{}\"]\n    image_prefix: /img\n", app.upstream()),
        ..Settings::default()
    })
    .await;
    let origin = origin.host();
    let image = format!("/img/unsafe/40x30/{origin}/landscape.jpg");
    let requests = format!(
        "GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n\
         GET {image} HTTP/1.1\r\nHost: a\r\n\r\n\
         POST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
         GET /img/unsafe/40x30/{origin}/missing.jpg HTTP/1.1\r\nHost: a\r\n\r\n\
         GET /healthcheck HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    );
    let got = exchange(server.port, requests.as_bytes()).await;
    assert_eq!(got.statuses, vec![200, 200, 200, 404, 200]);
    assert!(got.closed);
    assert_eq!(app.request_lines(), vec!["GET /p1 HTTP/1.1", "POST /p2 HTTP/1.1"]);
}
