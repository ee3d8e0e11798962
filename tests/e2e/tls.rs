//! TLS termination: listeners from certificate and key files made in the test. HTTP/2 (ALPN h2)
//! and HTTP/1.1 clients get the same image bytes; `http2: false` offers HTTP/1.1 only; plaintext
//! sent to a TLS port is answered by closing, not by a hang; a renewed certificate is served after
//! a graceful upgrade.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::*;

/// A self-signed certificate for 127.0.0.1, written as `<name>.crt` and `<name>.key` in `dir`;
/// the certificate itself (DER) to trust.
fn certificate_files(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.der().to_vec())
}

/// [`certificate_files`], the certificate as reqwest's client takes it.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, reqwest::Certificate) {
    let (cert, key, der) = certificate_files(dir, name);
    (cert, key, reqwest::Certificate::from_der(&der).unwrap())
}

/// A client that trusts only `root`; `http1` keeps it to HTTP/1.1 (else it takes h2 when offered).
fn client(root: &reqwest::Certificate, http1: bool) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([root.clone()])
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0);
    let builder = if http1 { builder.http1_only() } else { builder };
    builder.build().unwrap()
}

fn tls_section(listeners: &[(u16, &Path, &Path, bool)]) -> String {
    let mut yaml = String::from("  tls:\n");
    for (port, cert, key, http2) in listeners {
        yaml.push_str(&format!(
            "    - listen: \"127.0.0.1:{port}\"\n      cert_file: {}\n      key_file: {}\n      http2: {http2}\n",
            cert.display(),
            key.display()
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_and_http1_get_the_same_image_and_plaintext_is_refused() {
    let origin = Origin::start().await;
    origin.put("/photo.jpg", photo(800, 600, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(dir.path(), "site");
    let (h2_port, h1_port) = (free_port(), free_port());
    let tls = tls_section(&[(h2_port, &cert, &key, true), (h1_port, &cert, &key, false)]);
    let server = Server::start_with(Settings::with_sources("", &tls)).await;
    let path = format!("/unsafe/300x200/{}/photo.jpg", origin.host());

    let mut bodies = Vec::new();
    for (port, http1, version) in [
        (h2_port, false, reqwest::Version::HTTP_2),
        (h2_port, true, reqwest::Version::HTTP_11),
        // `http2: false`: a client that would take h2 is offered HTTP/1.1 only.
        (h1_port, false, reqwest::Version::HTTP_11),
    ] {
        let r = client(&root, http1).get(format!("https://127.0.0.1:{port}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "port {port}");
        assert_eq!(r.version(), version, "port {port}, http1 only: {http1}");
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        bodies.push(r.bytes().await.unwrap().to_vec());
    }
    let plain = server.get(&path).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.dims(), (300, 200));
    assert!(bodies.iter().all(|b| *b == plain.body), "every protocol serves the same bytes");

    // Plaintext HTTP to the TLS port: the connection ends (a TLS alert at most), promptly.
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", h2_port)).await.unwrap();
    raw.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "plaintext to the TLS port hung for 5 s");
    assert!(!answer.starts_with(b"HTTP/"), "no HTTP answer over plaintext: {answer:?}");
    eprintln!("plaintext to the TLS port: closed after {:?} with {} bytes", started.elapsed(), answer.len());
    // The server still serves TLS after the bad client.
    let r = client(&root, false).get(format!("https://127.0.0.1:{h2_port}/healthcheck")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The certificate files are read by each new process: replace them, upgrade (`-u` + SIGQUIT),
/// and the new certificate is served on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_is_served_after_a_graceful_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, old_root) = certificate(dir.path(), "live");
    let port = free_port();
    let mut old = Server::start_with(Settings::with_sources("", &tls_section(&[(port, &cert, &key, true)]))).await;
    let url = format!("https://127.0.0.1:{port}/healthcheck");
    assert_eq!(client(&old_root, false).get(&url).send().await.unwrap().status(), 200);

    // Renewal: new files in place (as certbot does), then the upgrade.
    let (renewed_cert, renewed_key, new_root) = certificate(dir.path(), "renewed");
    std::fs::rename(renewed_cert, &cert).unwrap();
    std::fs::rename(renewed_key, &key).unwrap();
    assert!(client(&new_root, false).get(&url).send().await.is_err(), "the old process still has the old one");

    let new = old.start_upgrade();
    tokio::time::sleep(Duration::from_millis(800)).await;
    old.signal(libc::SIGQUIT);
    assert!(old.wait_exit(Duration::from_secs(15)), "the old process handed over and exited");
    let deadline = Instant::now() + Duration::from_secs(10);
    let served = loop {
        match client(&new_root, false).get(&url).send().await {
            Ok(r) => break r.status(),
            Err(e) if Instant::now() > deadline => panic!("the renewed certificate is not served: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(served, 200);
    assert!(client(&old_root, false).get(&url).send().await.is_err(), "the old certificate is gone");
    drop(new);
}

/// The site proxy behind a TLS listener tells the app the client came over HTTPS (and over h2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_requests_over_tls_are_forwarded_as_https() {
    let app = super::app::App::start("one").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(dir.path(), "site");
    let port = free_port();
    let site = format!("  site:\n    upstreams: [\"{}\"]\n    image_prefix: /img\n", app.upstream());
    let _server = Server::start_with(Settings {
        thumbora: format!("{}{site}", tls_section(&[(port, &cert, &key, true)])),
        ..Settings::default()
    })
    .await;
    let r = client(&root, false).get(format!("https://127.0.0.1:{port}/about")).send().await.unwrap();
    assert_eq!((r.status(), r.version()), (reqwest::StatusCode::OK, reqwest::Version::HTTP_2));
    let text = r.text().await.unwrap();
    assert!(text.starts_with("app one\nGET /about HTTP/1.1\n"), "{text}");
    assert!(text.contains("proto=https\n"), "{text}");
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to `port` that chose h2 by ALPN, trusting `root` (DER), whose socket
/// receives into a 4 KiB buffer.
async fn h2_tls(port: u16, root: &[u8]) -> TlsStream {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(root.to_vec())).unwrap();
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

/// An HTTP/2 client over [`h2_tls`] with `window` bytes of flow-control window per stream and for
/// the connection. The connection future is the caller's to drive: while it is not polled,
/// nothing is read.
async fn h2_client(
    port: u16,
    root: &[u8],
    window: u32,
) -> (h2::client::SendRequest<bytes::Bytes>, h2::client::Connection<TlsStream>) {
    let tls = h2_tls(port, root).await;
    h2::client::Builder::new()
        .initial_window_size(window)
        .initial_connection_window_size(window.max(65_535))
        .handshake(tls)
        .await
        .unwrap()
}

/// HTTP/2 clients are under `send_timeout_seconds` as HTTP/1 clients are: one that never opens
/// a stream's flow-control window gets that stream reset, and one that stops reading its socket
/// gets its connection closed, instead of holding the answer (and the connection) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_clients_that_stop_taking_an_answer_are_dropped_after_the_send_timeout() {
    let origin = Origin::start().await;
    // A result of about 6 MB, larger than what the sockets buffer.
    origin.put("/noise.png", noise_png(1400, 1400));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate_files(dir.path(), "h2");
    let port = free_port();
    let tls = tls_section(&[(port, &cert, &key, true)]);
    let server = Server::start_with(Settings::with_sources("", &format!("  send_timeout_seconds: 1\n{tls}"))).await;
    let path = format!("/unsafe/filters:format(png)/{}/noise.png", origin.host());
    let size = server.get(&path).await.body.len();
    assert!(size > 4 << 20, "{size}");
    let request = || http::Request::get(format!("https://127.0.0.1:{port}{path}")).body(()).unwrap();

    // 1. A window of 1 KiB, never opened again: the connection is read, the stream stalls.
    let (mut send, connection) = h2_client(port, &root, 1024).await;
    let connection = tokio::spawn(connection);
    let (response, _) = send.send_request(request(), true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = 0;
    let started = Instant::now();
    let ended = loop {
        // No `release_capacity`: the stream's window stays shut.
        match tokio::time::timeout(Duration::from_secs(10), body.data()).await {
            Ok(Some(Ok(chunk))) => received += chunk.len(),
            Ok(Some(Err(e))) => break Some(e),
            Ok(None) => break None,
            Err(_) => panic!("the stream still waits after {:?}, {received} bytes in", started.elapsed()),
        }
    };
    let reset = ended.expect("the stream ends with an error, not as a whole answer");
    assert!(reset.is_reset() || reset.is_io() || reset.is_go_away(), "{reset:?}");
    assert!(received <= 1024, "received {received} bytes through a 1 KiB window");
    drop(send);
    connection.abort();

    // 2. The windows open (32 MiB), but the client stops reading its socket once the head is in.
    let (mut send, connection) = h2_client(port, &root, 32 << 20).await;
    let mut connection = Box::pin(connection);
    let (response, _) = send.send_request(request(), true).unwrap();
    let response = tokio::select! {
        response = response => response.unwrap(),
        ended = &mut connection => panic!("the connection ended before the head: {ended:?}"),
    };
    assert_eq!(response.status(), 200);
    // Past the 1 s send timeout, with room for a loaded machine; then read again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let connection = tokio::spawn(connection);
    let mut body = response.into_body();
    let mut received = 0;
    for _ in 0..100_000 {
        match tokio::time::timeout(Duration::from_secs(10), body.data()).await {
            Ok(Some(Ok(chunk))) => {
                received += chunk.len();
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Ok(Some(Err(_))) | Ok(None) => break,
            Err(_) => panic!("the body still waits, {received} of {size} bytes in"),
        }
    }
    assert!(received < size, "received {received} of {size} bytes: the whole answer waited for the client");
    let closed = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(closed.is_ok(), "the server closed the stalled connection");

    // A client that reads gets the whole answer, over HTTP/2 too.
    let (mut send, connection) = h2_client(port, &root, 32 << 20).await;
    let connection = tokio::spawn(connection);
    let (response, _) = send.send_request(request(), true).unwrap();
    let mut body = tokio::time::timeout(Duration::from_secs(10), response).await.unwrap().unwrap().into_body();
    let mut received = 0;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        received += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    assert_eq!(received, size);
    connection.abort();
}

/// An HTTP/2 connection must send its preface within `request_head_timeout_ms`, as an HTTP/1 head
/// must arrive within it, and one with no stream open closes after `keepalive_seconds`, as an
/// idle HTTP/1 connection does: connections that send nothing cannot pile up to
/// `max_connections`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_connections_that_send_nothing_are_closed_like_http1_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate_files(dir.path(), "h2");
    let port = free_port();
    let tls = tls_section(&[(port, &cert, &key, true)]);
    let timeouts = "  request_head_timeout_ms: 1000\n  keepalive_seconds: 2\n";
    let _server = Server::start_with(Settings::with_sources("", &format!("{timeouts}{tls}"))).await;
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An empty SETTINGS frame: the client's side of the handshake, whole.
    const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
    // Closed after about the timeout, as this client measures it: its clock starts after its
    // own handshake, a little after the server's (hence the lower bounds' slack).
    let ms = Duration::from_millis;
    for (what, sent, within) in [
        ("nothing after TLS", Vec::new(), ms(500)..ms(5000)),
        ("part of the preface", PREFACE[..10].to_vec(), ms(500)..ms(5000)),
        ("the preface, then no request", [PREFACE, SETTINGS].concat(), ms(1500)..ms(6000)),
    ] {
        let mut tls = h2_tls(port, &root).await;
        tls.write_all(&sent).await.unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 4096];
        let mut closed = false;
        for _ in 0..1000 {
            match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                // The server's SETTINGS, its acknowledgement, a GOAWAY.
                Ok(Ok(_)) => {}
                Err(_) => break,
            }
        }
        let after = started.elapsed();
        assert!(closed, "{what}: still open after {after:?}");
        assert!(within.contains(&after), "{what}: closed after {after:?}, expected {within:?}");
    }
}

/// HTTP/2 connections are under the config's header and request limits, as HTTP/1 ones are: a
/// header block is taken up to `max_request_header_bytes` and gets 431 past it (the connection
/// goes on serving), and each connection advertises `http2_max_streams` as the requests it takes
/// at once (Pingora's own limits, 64 KiB and 100, ignored both keys). Over either protocol, a
/// miss whose head is over 64 KiB renders (it was a 502: the renderer's pipe refused the head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_header_blocks_and_streams_are_under_the_configured_limits() {
    let origin = Origin::start().await;
    origin.put("/photo.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate_files(dir.path(), "h2");
    let port = free_port();
    let tls = tls_section(&[(port, &cert, &key, true)]);
    // Over Pingora's own HTTP/2 limit (64 KiB), so that both directions are the config's.
    let limits = "  max_request_header_bytes: 100000\n  http2_max_streams: 3\n";
    let server = Server::start_with(Settings::with_sources("", &format!("{limits}{tls}"))).await;
    let path = format!("/unsafe/100x75/{}/photo.jpg", origin.host());
    let (mut send, connection) = h2_client(port, &root, 1 << 20).await;
    let connection = tokio::spawn(connection);
    let mut status_with = async |padding: usize| {
        let request = http::Request::get(format!("https://127.0.0.1:{port}{path}"))
            .header("x-padding", "p".repeat(padding))
            .body(())
            .unwrap();
        send = send.clone().ready().await.unwrap();
        let (response, _) = send.send_request(request, true).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), response).await.unwrap().unwrap();
        let status = response.status();
        let mut body = response.into_body();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.data()).await.unwrap() {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        status
    };
    assert_eq!(status_with(80_000).await, 200);
    assert_eq!(status_with(120_000).await, 431);
    assert_eq!(status_with(100).await, 200, "the connection serves on after a 431");
    assert_eq!(send.current_max_send_streams(), 3, "the server's SETTINGS_MAX_CONCURRENT_STREAMS");
    drop(send);
    connection.abort();

    // HTTP/1 alike. Both 200s above and this one are misses: a head over 64 KiB renders (the
    // renderer gets the request line, not the client's fields).
    let padding = "p".repeat(80_000);
    let path = format!("/unsafe/101x75/{}/photo.jpg", origin.host());
    let r = server.request(reqwest::Method::GET, &path, &[("x-padding", &padding)]).await;
    assert_eq!((r.status, r.headers.get("x-cache").map(|v| v.to_str().unwrap())), (200, Some("MISS")));
    let padding = "p".repeat(120_000);
    assert_eq!(server.request(reqwest::Method::GET, &path, &[("x-padding", &padding)]).await.status, 431);
}

/// When a raw connection's peer closes it: the time from `started`, or `None` if it is still
/// open after 10 s.
async fn closed_after(raw: &mut tokio::net::TcpStream, started: Instant) -> Option<Duration> {
    let mut buf = vec![0u8; 4096];
    for _ in 0..1000 {
        match tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // A TLS alert.
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
    None
}

/// A TLS handshake must end within `request_head_timeout_ms` of the accept (Pingora's own bound
/// is 60 s), and a connection counts against `max_connections` from its accept, handshake
/// included: connections that open and send nothing cannot pile up beyond the cap, nor hold a
/// place for longer than a slow HTTP/1 head could. Places are given back when connections end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_are_under_the_head_deadline_and_the_connection_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = certificate(dir.path(), "cap");
    let port = free_port();
    let tls = tls_section(&[(port, &cert, &key, true)]);
    let limits = "  request_head_timeout_ms: 1500\n  max_connections: 2\n";
    let metrics_port = free_port();
    let metrics = format!("  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n");
    let server = Server::start_with(Settings::with_sources("", &format!("{limits}{metrics}{tls}"))).await;
    let closed = |scrape: &std::collections::HashMap<String, f64>, reason: &str| {
        scrape.get(&format!("thumbora_client_connections_closed_total{{reason=\"{reason}\"}}")).copied()
    };
    let ms = Duration::from_millis;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));

    // Nothing sent, or a ClientHello's first bytes only: closed after about the deadline.
    for (what, sent) in [("nothing", &b""[..]), ("a ClientHello's record header", &[0x16, 0x03, 0x01, 0x02, 0x00][..])]
    {
        let mut raw = connect().await.unwrap();
        let started = Instant::now();
        raw.write_all(sent).await.unwrap();
        let after = closed_after(&mut raw, started).await;
        let after = after.unwrap_or_else(|| panic!("{what} sent: the TLS connection is still open after 10 s"));
        assert!((ms(1000)..ms(6000)).contains(&after), "{what} sent: closed after {after:?}, expected about 1.5 s");
    }

    // Two connections in their handshake fill the cap: a plain client is turned away with a 503,
    // and a third TLS client's connection is closed before any handshake.
    let (mut first, mut second) = (connect().await.unwrap(), connect().await.unwrap());
    let started = Instant::now();
    // Both are accepted, and past the gate, once the server has answered something later.
    tokio::time::sleep(ms(200)).await;
    // Read without writing, so that the answer cannot race a request into a reset.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await.expect("closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "two TLS handshakes under way hold both places: {answer}");
    let third = client(&root, true).get(format!("https://127.0.0.1:{port}/healthcheck")).send().await;
    assert!(third.is_err(), "a TLS client past the cap is refused: {third:?}");
    // The metrics listener is not under the cap: it sees both places taken, both refusals.
    let held = super::metrics::scrape(&server, metrics_port).await;
    assert_eq!(held.get("thumbora_client_connections"), Some(&2.0));
    assert_eq!(closed(&held, "max_connections"), Some(2.0), "the plain 503 and the TLS refusal");
    assert_eq!(closed(&held, "tls_handshake_timeout"), Some(2.0), "the first two clients");
    // The deadline closes both, and gives their places back.
    for raw in [&mut first, &mut second] {
        let after = closed_after(raw, started).await.expect("a held handshake is closed by the deadline");
        assert!(after < ms(6000), "closed after {after:?}");
    }
    let mut served = None;
    for _ in 0..50 {
        served = Some(server.get("/healthcheck").await.status);
        if served == Some(200) {
            break;
        }
        tokio::time::sleep(ms(100)).await;
    }
    assert_eq!(served, Some(200), "the expired handshakes' places are given back");

    // Finished connections give their places back: more TLS connections, one after another,
    // than the cap, over HTTP/1.1 and HTTP/2, then a plain one.
    for i in 0..6 {
        let r = client(&root, i % 2 == 0).get(format!("https://127.0.0.1:{port}/healthcheck")).send().await;
        assert_eq!(r.map(|r| r.status()).ok(), Some(reqwest::StatusCode::OK), "TLS connection {i}");
        // The server drops a connection a moment after its client closes it.
        tokio::time::sleep(ms(100)).await;
    }
    assert_eq!(server.get("/healthcheck").await.status, 200);
    let after = super::metrics::scrape(&server, metrics_port).await;
    assert_eq!(closed(&after, "tls_handshake_timeout"), Some(4.0));
    assert_eq!(closed(&after, "max_connections"), Some(2.0));
    // Every connection the test made has ended (the server drops each a moment after).
    let open = super::metrics::series_reaches(&server, metrics_port, "thumbora_client_connections", 0.0).await;
    assert_eq!(open, Some(0.0), "every place given back");
}
