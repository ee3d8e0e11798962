//! Every kind of bad input and origin failure gets a clear status with a short body: never a
//! panic, a hang, a truncated 200, or a cached error.

use std::time::{Duration, Instant};

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_failures() {
    let origin = Origin::start_with_slow(Duration::from_secs(4)).await;
    let server = Server::start().await;
    let o = origin.host();
    let closed = format!("127.0.0.1:{}", free_port());
    let cases = [
        (format!("/unsafe/100x100/{o}/missing.jpg"), 404),
        (format!("/unsafe/100x100/{o}/status/404/x.jpg"), 404),
        (format!("/unsafe/100x100/{o}/status/403/x.jpg"), 404),
        (format!("/unsafe/100x100/{o}/status/410/x.jpg"), 404),
        (format!("/unsafe/100x100/{o}/status/500/x.jpg"), 502),
        (format!("/unsafe/100x100/{o}/status/503/x.jpg"), 502),
        (format!("/unsafe/100x100/{o}/empty.jpg"), 502),
        (format!("/unsafe/100x100/{o}/abort/landscape.jpg"), 502),
        (format!("/unsafe/100x100/{o}/wrong-length/landscape.jpg"), 502),
        (format!("/unsafe/100x100/{closed}/x.jpg"), 502),
        (format!("/unsafe/100x100/{o}/slow/landscape.jpg"), 504),
        (format!("/unsafe/100x100/{o}/silent/x.jpg"), 504),
        // One byte every 200 ms: each read is quick, the whole fetch is not (the total timeout).
        (format!("/unsafe/100x100/{o}/trickle/landscape.jpg"), 504),
        (format!("/unsafe/100x100/{o}/redirect/9/landscape.jpg"), 404),
        (format!("/unsafe/100x100/{o}/text.jpg"), 400),
        (format!("/unsafe/100x100/{o}/image.svg"), 400),
        (format!("/unsafe/100x100/{o}/image.tiff"), 400),
        ("/unsafe/100x100/nonexistent.invalid/x.jpg".to_string(), 504),
    ];
    for (path, status) in &cases {
        let started = Instant::now();
        let r = server.get(path).await;
        assert_eq!(r.status, *status, "{path}: {}", r.text());
        assert!(r.body.len() < 200, "{path}: short body");
        assert!(started.elapsed() < Duration::from_secs(6), "{path}: answered within the timeouts");
    }
    // A redirect chain within the limit is followed.
    assert_eq!(server.get(&format!("/unsafe/100x100/{o}/redirect/3/landscape.jpg")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_never_cached() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let path = format!("/unsafe/100x100/{}/status/500/x.jpg", origin.host());
    for _ in 0..3 {
        assert_eq!(server.get(&path).await.status, 502);
    }
    assert_eq!(origin.hits("/status/500/x.jpg"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests() {
    let origin = Origin::start().await;
    let mut server = Server::start().await;
    let o = origin.host();
    let cases: Vec<(reqwest::Method, String, u16)> = vec![
        (reqwest::Method::POST, format!("/unsafe/100x100/{o}/landscape.jpg"), 405),
        (reqwest::Method::PUT, format!("/unsafe/100x100/{o}/landscape.jpg"), 405),
        (reqwest::Method::DELETE, "/healthcheck".into(), 405),
        (reqwest::Method::GET, "/".into(), 400),
        (reqwest::Method::GET, format!("/unsafe/100x100/{o}/%FF.jpg"), 400),
        (reqwest::Method::GET, format!("/unsafe/99999x0/{o}/pixel.png"), 400),
        (reqwest::Method::GET, format!("/unsafe/fit-in/99999x99999/filters:upscale()/{o}/pixel.png"), 400),
        (reqwest::Method::GET, format!("/unsafe/20000x20000/{o}/small.jpg"), 400),
        (reqwest::Method::GET, format!("/unsafe/origx0/{o}/landscape.jpg"), 500),
    ];
    for (method, path, status) in cases {
        let r = server.request(method.clone(), &path, &[]).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
    // Sizes over the caps are refused from the URL alone; only `origx0` needs the source.
    assert_eq!(origin.total_hits(), 1, "refusals before the fetch never reach the origin");
    assert!(server.is_running(), "no input brings the server down");
    assert!(server.peak_rss_kib() < 512 * 1024, "memory stayed bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_sources_are_refused_before_decoding() {
    let origin = Origin::start().await;
    // A PNG header claiming 50000x50000 pixels (a decompression bomb).
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&50_000u32.to_be_bytes());
    png.extend_from_slice(&50_000u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    origin.put("/bomb.png", png);
    let server = Server::start_with(Settings::with_sources("    max_bytes: 100000\n", "")).await;
    let o = origin.host();
    let started = Instant::now();
    assert_eq!(server.get(&format!("/unsafe/100x100/{o}/bomb.png")).await.status, 400);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.get(&format!("/unsafe/100x100/{o}/huge")).await.status, 400, "body over max_bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_failures_as_thumbor_answers_them() {
    let origin = Origin::start().await;
    let server = Server::start_with(Settings::with_sources("    thumbor_error_statuses: true\n", "")).await;
    let o = origin.host();
    let closed = format!("127.0.0.1:{}", free_port());
    let cases = [
        (format!("/unsafe/100x100/{o}/status/500/x.jpg"), 404),
        // tornado's 599 (its own code for a failed connection), from the origin or from tornado.
        (format!("/unsafe/100x100/{o}/status/599/x.jpg"), 504),
        (format!("/unsafe/100x100/{o}/abort/landscape.jpg"), 504),
        (format!("/unsafe/100x100/{o}/wrong-length/landscape.jpg"), 504),
        (format!("/unsafe/100x100/{closed}/x.jpg"), 500),
    ];
    for (path, status) in &cases {
        let r = server.get(path).await;
        assert_eq!(r.status, *status, "{path}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorities_tornado_cannot_use() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    // An empty port: the name "127.0.0.1:" does not resolve (504); a port past 65535: Python's
    // OverflowError (500); credentials: tornado's assertion (500), and nothing is fetched.
    let cases = [
        ("/unsafe/100x100/127.0.0.1:/landscape.jpg".to_string(), 504),
        ("/unsafe/100x100/127.0.0.1:99999/landscape.jpg".to_string(), 500),
        (format!("/unsafe/100x100/user:secret@{o}/landscape.jpg"), 500),
        (format!("/unsafe/100x100/http://user@{o}/landscape.jpg"), 500),
    ];
    for (path, status) in &cases {
        let r = server.get(path).await;
        assert_eq!(r.status, *status, "{path}: {}", r.text());
    }
    assert_eq!(origin.total_hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_encoded_originals_are_decoded_within_the_size_limit() {
    let origin = Origin::start().await;
    let server = Server::start_with(Settings::with_sources("    max_bytes: 1048576\n", "")).await;
    let o = origin.host();
    let r = server.get(&format!("/unsafe/100x100/{o}/gzip/landscape.jpg")).await;
    assert_eq!((r.status, r.dims()), (200, (100, 100)));
    // 8 MiB once inflated, 8 KiB on the wire: the limit applies to the inflated bytes.
    let r = server.get(&format!("/unsafe/100x100/{o}/gzip-bomb")).await;
    assert_eq!(r.status, 400, "{}", r.text());
}
