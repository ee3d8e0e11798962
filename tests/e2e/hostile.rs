//! One hostile request must never take the process down or starve everyone else: each finding of
//! the hardening audit, reproduced with an input generated here (`hostile_inputs`). Each test
//! asserts what a client and an operator see: the status, that the answer came (no hang), the
//! server's peak memory, and for runaway work, the CPU the server kept burning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::*;
use super::hostile_inputs as hostile;

/// The bar from the issue: a hostile input keeps the process under this much memory.
const MAX_PEAK_MIB: u64 = 600;

/// What one request cost, as the client and the operator see it.
struct Cost {
    status: u16,
    elapsed: Duration,
    body: Vec<u8>,
}

/// GET `path`, giving up after 20 s (a hang guard, not a speed claim).
async fn timed(server: &Server, path: &str) -> Cost {
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(20), server.get(path)).await.expect("answered");
    Cost { status: r.status, elapsed: started.elapsed(), body: r.body }
}

fn peak_mib(server: &Server) -> u64 {
    server.peak_rss_kib() / 1024
}

/// A server with the shipped render limits and test origins allowed.
/// A render deadline no machine reaches, for tests that measure memory, not time.
const SLOW_MACHINE: &str = "  render:\n    deadline_ms: 60000\n";

async fn server_with(extra: &str) -> Server {
    Server::start_with(Settings::with_sources("", extra)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn png_colour_profile_bomb_is_not_inflated() {
    let origin = Origin::start().await;
    // 600 MiB of profile in ~600 KiB: thumbora used to inflate it twice, before any check.
    origin.put("/icc-bomb.png", hostile::png_icc_bomb(600 << 20));
    origin.put("/text-bomb.png", hostile::png_text_bomb(8, 64 << 20));
    let server = server_with("").await;
    for file in ["icc-bomb.png", "text-bomb.png"] {
        let cost = timed(&server, &format!("/unsafe/4x4/{}/{file}", origin.host())).await;
        assert_eq!(cost.status, 200, "{file}: the pixels are fine, the oversized metadata is dropped");
    }
    assert!(peak_mib(&server) < 100, "peak RSS {} MiB", peak_mib(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_bit_png_is_budgeted_at_its_real_cost() {
    let origin = Origin::start().await;
    // 64 MP at 16 bits per sample, RGBA: 512 MiB of samples in a ~0.5 MiB file.
    origin.put("/deep.png", hostile::png(8000, 8000, 16, 6, &[]));
    // What is measured is memory: no deadline may cut the render on a slow or busy machine.
    let server = server_with(SLOW_MACHINE).await;
    let cost = timed(&server, &format!("/unsafe/100x100/{}/deep.png", origin.host())).await;
    assert!(matches!(cost.status, 200 | 400), "{}", cost.status);
    assert!(peak_mib(&server) < MAX_PEAK_MIB, "peak RSS {} MiB", peak_mib(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_render_gives_its_memory_back() {
    let origin = Origin::start().await;
    // 36 MP RGBA: the resampler's alpha scratch has the source's size (137 MiB); each render
    // thread used to keep it for the life of the process.
    origin.put("/large.png", hostile::png(6000, 6000, 8, 6, &[]));
    // What is measured is memory: no deadline may cut the render on a slow or busy machine.
    let server = server_with(SLOW_MACHINE).await;
    assert_eq!(timed(&server, &format!("/unsafe/100x100/{}/large.png", origin.host())).await.status, 200);
    assert!(peak_mib(&server) > 150, "the render did hold its memory ({} MiB)", peak_mib(&server));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = server.rss_kib() / 1024;
    assert!(idle < 100, "idle RSS after the render: {idle} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_progressive_jpegs_declaring_75_megapixels_are_budgeted() {
    let origin = Origin::start().await;
    // A few hundred bytes declaring 8660x8660, 4:4:4: libjpeg-turbo keeps every DCT
    // coefficient of a progressive image (6 bytes a pixel, ~430 MiB) whatever the output scale.
    let bomb = hostile::jpeg_declaring(&hostile::small_jpeg(16, 16, true), 8660, 8660);
    assert!(bomb.len() < 2000);
    origin.put("/a.jpg", bomb.clone());
    origin.put("/b.jpg", bomb);
    let server = Arc::new(server_with("").await);
    let host = origin.host();
    let both: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let (server, path) = (server.clone(), format!("/unsafe/100x100/{host}/{name}.jpg"));
            tokio::spawn(async move { timed(&server, &path).await.status })
        })
        .collect();
    for task in both {
        let status = task.await.unwrap();
        // Rendered one after the other within the memory budget, or refused when it is busy.
        assert!(matches!(status, 200 | 503), "{status}");
    }
    assert!(peak_mib(&server) < MAX_PEAK_MIB, "peak RSS {} MiB", peak_mib(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_jpegs_do_not_escape_the_budget_through_the_fallback_decoder() {
    let origin = Origin::start().await;
    // A baseline JPEG whose data stops after its first blocks, declaring 8000x8000: the estimate
    // assumes an 1/8 scale decode; the lenient decoder used to decode it at full size.
    let damaged = hostile::jpeg_declaring(&hostile::small_jpeg(16, 16, false), 8000, 8000);
    for i in 0..3 {
        origin.put(&format!("/d{i}.jpg"), damaged.clone());
    }
    let server = Arc::new(server_with("").await);
    let host = origin.host();
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (server, path) = (server.clone(), format!("/unsafe/200x200/{host}/d{i}.jpg"));
            tokio::spawn(async move { timed(&server, &path).await.status })
        })
        .collect();
    for task in tasks {
        let status = task.await.unwrap();
        assert!(matches!(status, 200 | 503), "{status}");
    }
    assert!(peak_mib(&server) < MAX_PEAK_MIB, "peak RSS {} MiB", peak_mib(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_images_are_counted_and_budgeted() {
    let origin = Origin::start().await;
    let host = origin.host();
    origin.put("/photo.png", photo(400, 300, image::ImageFormat::Png));
    // Dozens of distinct watermark URLs in one request: refused before anything is fetched.
    let marks: Vec<String> = (0..30).map(|i| format!("watermark({host}/m{i}.png,0,0,0)")).collect();
    let server = Arc::new(server_with("").await);
    let many = timed(&server, &format!("/unsafe/200x150/filters:{}/{host}/photo.png", marks.join(":"))).await;
    assert_eq!(many.status, 400, "{}", String::from_utf8_lossy(&many.body));
    assert_eq!(origin.total_hits(), 0, "nothing fetched for a refused request");

    // Two requests whose watermark is a 64 MP image (256 MiB decoded each): the marks are
    // decoded inside the render budget, not beside it.
    origin.put("/huge-mark.png", hostile::png(8000, 8000, 8, 6, &[]));
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let server = server.clone();
            let path =
                format!("/unsafe/{}x150/filters:watermark({host}/huge-mark.png,0,0,50)/{host}/photo.png", 200 + i);
            tokio::spawn(async move { timed(&server, &path).await.status })
        })
        .collect();
    for task in tasks {
        let status = task.await.unwrap();
        assert!(matches!(status, 200 | 400 | 503), "{status}");
    }
    assert!(peak_mib(&server) < MAX_PEAK_MIB, "peak RSS {} MiB", peak_mib(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jpeg_scan_floods_are_refused_from_the_header() {
    let origin = Origin::start().await;
    // 1 000 scans, each walking every block of 2048x2048: seconds of CPU from a few KiB.
    origin.put("/scans.jpg", hostile::jpeg_scan_flood(2048, 2048, 1000));
    let server = server_with("").await;
    let cost = timed(&server, &format!("/unsafe/100x100/{}/scans.jpg", origin.host())).await;
    assert_eq!(cost.status, 400, "{}", String::from_utf8_lossy(&cost.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gif_frames_larger_than_their_screen_are_refused() {
    let origin = Origin::start().await;
    // 200 frames of 2000x2000 on a 1x1 screen: each frame decoded in full, then clipped to 1 pixel.
    origin.put("/frames.gif", hostile::gif_frames_beyond_screen(1, 200, 2000));
    let server = server_with("").await;
    let cost = timed(&server, &format!("/unsafe/10x10/{}/frames.gif", origin.host())).await;
    assert_eq!(cost.status, 400, "{}", String::from_utf8_lossy(&cost.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_cost_and_count_are_capped() {
    let origin = Origin::start().await;
    let host = origin.host();
    origin.put("/photo.jpg", photo(800, 600, image::ImageFormat::Jpeg));
    let server = server_with("").await;
    // blur(150) costs ~1 s of CPU per megapixel: on a 4 MP output, refused from the plan.
    let blur = timed(&server, &format!("/unsafe/2000x2000/filters:blur(150)/{host}/photo.jpg")).await;
    assert_eq!(blur.status, 400, "{}", String::from_utf8_lossy(&blur.body));
    // A large convolution kernel, likewise.
    let kernel = vec!["1"; 41 * 41].join(";");
    let conv =
        timed(&server, &format!("/unsafe/2000x2000/filters:convolution({kernel},41,false)/{host}/photo.jpg")).await;
    assert_eq!(conv.status, 400, "{}", String::from_utf8_lossy(&conv.body));
    // The same filters at a cost that fits are rendered.
    assert_eq!(timed(&server, &format!("/unsafe/200x150/filters:blur(150)/{host}/photo.jpg")).await.status, 200);
    // Hundreds of filters in one URL: refused before anything is fetched.
    let many = vec!["brightness(1)"; 500].join(":");
    let hits = origin.total_hits();
    assert_eq!(timed(&server, &format!("/unsafe/200x150/filters:{many}/{host}/photo.jpg")).await.status, 400);
    assert_eq!(origin.total_hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_past_the_deadline_are_stopped() {
    let origin = Origin::start().await;
    let host = origin.host();
    origin.put("/photo.jpg", photo(800, 600, image::ImageFormat::Jpeg));
    // A deadline short enough that an expensive but allowed render runs into it.
    let server = server_with("  render:\n    deadline_ms: 100\n").await;
    let cost = timed(&server, &format!("/unsafe/1500x1000/filters:blur(40):blur(40):blur(40)/{host}/photo.jpg")).await;
    assert_eq!(cost.status, 503, "{}", String::from_utf8_lossy(&cost.body));
    assert!(String::from_utf8_lossy(&cost.body).contains("too long"));
    // Nothing stays busy: the next render is served.
    assert_eq!(timed(&server, &format!("/unsafe/100x75/{host}/photo.jpg")).await.status, 200);
}

/// Send a request and drop the connection after `after`.
async fn abandon(port: u16, path: &str, after: Duration) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(after).await;
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_of_clients_that_left_stop() {
    let origin = Origin::start().await;
    let host = origin.host();
    origin.put("/photo.jpg", photo(1600, 1200, image::ImageFormat::Jpeg));
    // No deadline to stop them: only the clients' departure can.
    let server = server_with("  render:\n    deadline_ms: 60000\n").await;
    assert_eq!(server.get(&format!("/unsafe/10x10/{host}/photo.jpg")).await.status, 200, "source cached");
    for i in 0..4 {
        let path = format!("/unsafe/{}x1200/filters:blur(60):blur(60):blur(60)/{host}/photo.jpg", 1600 - i);
        abandon(server.port, &path, Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burned = server.cpu_seconds() - before;
    assert!(burned < 1.0, "renders went on after their clients left: {burned:.1} s of CPU in 2 s");
    let started = Instant::now();
    assert_eq!(server.get(&format!("/unsafe/100x75/{host}/photo.jpg")).await.status, 200);
    assert!(started.elapsed() < Duration::from_secs(3), "an unrelated request waited {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_on_a_silent_origin_do_not_hold_render_places() {
    let origin = Origin::start().await;
    let host = origin.host();
    let server = Arc::new(server_with("  render:\n    threads: 1\n    queue: 3\n").await);
    // Clients that give up on a silent origin...
    for i in 0..12 {
        abandon(server.port, &format!("/unsafe/100x100/{host}/silent/{i}.jpg"), Duration::from_millis(80)).await;
    }
    // ... and clients that keep waiting on it.
    let waiting: Vec<_> = (0..6)
        .map(|i| {
            let (server, path) = (server.clone(), format!("/unsafe/100x100/{host}/silent/w{i}.jpg"));
            tokio::spawn(async move { timed(&server, &path).await.status })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile a render from a live source is served: fetching holds no render place.
    let cost = timed(&server, &format!("/unsafe/100x75/{host}/landscape.jpg")).await;
    assert_eq!(cost.status, 200, "{}", String::from_utf8_lossy(&cost.body));
    for task in waiting {
        assert!(matches!(task.await.unwrap(), 503 | 504));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_origin_cannot_take_every_fetch() {
    let origin = Origin::start().await;
    let live = Origin::start().await;
    let server = Arc::new(Server::start_with(Settings::with_sources("    max_fetches_per_host: 4\n", "")).await);
    let (host, live_host) = (origin.host(), live.host());
    let waiting: Vec<_> = (0..8)
        .map(|i| {
            let (server, path) = (server.clone(), format!("/unsafe/100x100/{host}/silent/{i}.jpg"));
            tokio::spawn(async move { timed(&server, &path).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(timed(&server, &format!("/unsafe/100x75/{live_host}/landscape.jpg")).await.status, 200);
    let mut refused = 0;
    for task in waiting {
        let cost = task.await.unwrap();
        if cost.status == 503 {
            refused += 1;
            assert!(cost.elapsed < Duration::from_secs(1), "over the per-origin cap: refused at once");
        } else {
            assert_eq!(cost.status, 504);
        }
    }
    assert_eq!(refused, 4, "four fetches in flight to the dead origin, the rest refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_cut_at_the_deadline() {
    let metrics_port = free_port();
    let settings = format!("  request_head_timeout_ms: 1000\n  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n");
    let server = Server::start_with(Settings { thumbora: settings, ..Default::default() }).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream.write_all(b"GET /healthcheck HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    // One header line every 300 ms: each read is quick, the head never ends.
    let mut closed_after = None;
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stream.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the server closed the connection");
    assert!(closed_after < Duration::from_secs(3), "closed after {closed_after:?}");
    // A request whose head arrives in time is served.
    assert_eq!(server.get("/healthcheck").await.status, 200);
    // And a connection that sends nothing is closed too (on the fast path's first read).
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
    assert!(read.is_ok() && rest.is_empty(), "a silent connection is closed, unanswered: {read:?} {rest:?}");
    let scrape = super::metrics::scrape(&server, metrics_port).await;
    let series = "thumbora_client_connections_closed_total{reason=\"head_timeout\"}";
    assert_eq!(scrape.get(series), Some(&2.0), "both closures counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_capped() {
    let metrics_port = free_port();
    let settings = format!("  max_connections: 16\n  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n");
    let server = Server::start_with(Settings { thumbora: settings, ..Default::default() }).await;
    let counted = |n| super::metrics::series_reaches(&server, metrics_port, "thumbora_client_connections", n);
    // The start-up probe's connection has closed, so the 16 below are all there is.
    assert_eq!(counted(0.0).await, Some(0.0), "no connection left from the start-up probe");
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap());
    }
    assert_eq!(counted(16.0).await, Some(16.0), "the 16 idle connections are counted");
    // Over the cap: answered 503 and closed.
    let mut extra = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await.expect("closed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 503"), "{}", String::from_utf8_lossy(&answer));
    // Below it again once some leave.
    idle.truncate(8);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.get("/healthcheck").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_sources_with_a_port_allow_that_port_only() {
    let origin = Origin::start().await;
    let other = Origin::start().await;
    let settings = format!(
        "  sources:\n    loader: http\n    allowed: [\"{}\"]\n    connect_timeout_ms: 1000\n    request_timeout_ms: 2000\n",
        origin.host()
    );
    let server = Server::start_with(Settings { thumbora: settings, ..Default::default() }).await;
    assert_eq!(server.get(&format!("/unsafe/100x75/{}/landscape.jpg", origin.host())).await.status, 200);
    assert_eq!(server.get(&format!("/unsafe/100x75/{}/landscape.jpg", other.host())).await.status, 400);
    assert_eq!(other.total_hits(), 0);
    // Thumbora's own port on the same address is another port, refused like any other.
    let own = format!("/unsafe/100x75/127.0.0.1:{}/healthcheck", server.port);
    assert_eq!(server.get(&own).await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbora_never_fetches_from_itself() {
    let origin = Origin::start().await;
    let server = server_with("").await;
    let inner = format!("unsafe/100x75/{}/landscape.jpg", origin.host());
    // Its own listen address, spelled directly...
    let direct = timed(&server, &format!("/unsafe/50x50/127.0.0.1:{}/{inner}", server.port)).await;
    assert_eq!(direct.status, 400, "{}", String::from_utf8_lossy(&direct.body));
    // ... through a redirect ...
    let back = format!("http://localhost:{}/{inner}", server.port);
    let encoded: String = percent_encoding::utf8_percent_encode(&back, percent_encoding::NON_ALPHANUMERIC).to_string();
    let redirected = timed(&server, &format!("/unsafe/50x50/{}/redirect-to/{encoded}", origin.host())).await;
    assert!(matches!(redirected.status, 400 | 502), "{}", redirected.status);
    // ... and a watermark that leads back here, through a redirect, to the same request.
    let looping =
        format!("unsafe/60x60/filters:watermark({}/loop,0,0,0)/{}/landscape.jpg", origin.host(), origin.host());
    origin.put_redirect("/loop", &format!("http://127.0.0.1:{}/{looping}", server.port));
    let looped = timed(&server, &format!("/{looping}")).await;
    assert!(looped.status >= 400, "{}", looped.status);
    assert!(looped.elapsed < Duration::from_secs(5), "loop cut at once, not at the timeouts: {:?}", looped.elapsed);
    assert_eq!(origin.hits("/landscape.jpg"), 1, "the inner image is never fetched through a loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_sources_are_not_kept_in_the_originals_cache() {
    let origin = Origin::start().await;
    let server = server_with("").await;
    let host = origin.host();
    // No length, closed half-way: the framing cannot tell; the decoder can.
    let first = timed(&server, &format!("/unsafe/100x75/{host}/close-delimited-half/landscape.jpg")).await;
    assert_eq!(first.status, 200, "rendered from what arrived, as thumbor does");
    let second = timed(&server, &format!("/unsafe/120x90/{host}/close-delimited-half/landscape.jpg")).await;
    assert_eq!(second.status, 200);
    assert_eq!(origin.hits("/close-delimited-half/landscape.jpg"), 2, "the truncated source was fetched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_literal_origins_are_fetched_or_refused() {
    let origin = Origin::start_v6().await;
    let server = server_with("").await;
    let path = format!("/unsafe/100x75/{}/landscape.jpg", origin.host());
    let r = server.get(&path).await;
    assert_eq!((r.status, r.dims()), (200, (100, 75)), "{}", r.text());
    // Without private networks allowed, the loopback literal is refused (400), never looked up.
    let strict =
        Server::start_with(Settings { thumbora: "  sources:\n    loader: http\n".into(), ..Default::default() }).await;
    assert_eq!(strict.get(&path).await.status, 400);
    assert_eq!(origin.total_hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_on_a_miss_renders_once_and_fills_the_cache() {
    let origin = Origin::start().await;
    // Without the originals cache, every render is one origin request.
    let server = Server::start_with(Settings::with_sources("    cache_bytes: 0\n", "")).await;
    let path = format!("/unsafe/120x80/{}/landscape.jpg", origin.host());
    let head = server.request(reqwest::Method::HEAD, &path, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let get = server.get(&path).await;
    assert_eq!(get.status, 200);
    assert_eq!(head.header("content-length"), Some(get.body.len().to_string()));
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(origin.hits("/landscape.jpg"), 1, "the GET after the HEAD is a cache hit");
}

/// Pingora percent-encodes a raw space or control byte in the request line before any hook runs
/// (as a browser would have sent it), so such a target is read as its encoded form: documented in
/// the README, where it used to say 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_spaces_in_the_target_are_read_as_percent_encoded() {
    let origin = Origin::start().await;
    origin.put("/a b.jpg", photo(80, 60, image::ImageFormat::Jpeg));
    let server = server_with("").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let head = format!("GET /unsafe/40x30/{}/a b.jpg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", origin.host());
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string();
    assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
    assert_eq!(origin.hits("/a%20b.jpg"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_are_cut_at_the_deadline() {
    let app = super::app::App::start("one").await;
    let settings = Settings {
        thumbora: format!(
            "  request_body_timeout_ms: 1000\n  site:\n    upstreams: [\"{}\"]\n    image_prefix: /img\n",
            app.upstream()
        ),
        ..Settings::default()
    };
    let server = Server::start_with(settings).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    stream.write_all(b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n").await.unwrap();
    let started = Instant::now();
    // One byte every 200 ms: every read is quick, the body would take 20 s.
    let mut cut_after = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"x").await.is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                cut_after = Some(started.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let cut_after = cut_after.expect("the server ended the request");
    assert!(cut_after < Duration::from_secs(4), "cut after {cut_after:?}");
    // A request sent at a normal pace goes through.
    let posted = server.client.post(server.url("/form")).body("name=thumbora").send().await.unwrap();
    assert_eq!(posted.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encodes_that_cannot_be_stopped_are_capped() {
    let origin = Origin::start().await;
    let host = origin.host();
    origin.put("/photo.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let server = server_with("").await;
    // A 16 MP AVIF would take ~5 s of rav1e in one call, from a 400x300 source: refused at once.
    let avif =
        timed(&server, &format!("/unsafe/fit-in/4800x4800/filters:upscale():format(avif)/{host}/photo.jpg")).await;
    assert_eq!(avif.status, 400, "{}", String::from_utf8_lossy(&avif.body));
    let webp =
        timed(&server, &format!("/unsafe/fit-in/6000x6000/filters:upscale():format(webp)/{host}/photo.jpg")).await;
    assert_eq!(webp.status, 400);
    // The same size as JPEG is cheap, and served.
    let jpeg = timed(&server, &format!("/unsafe/fit-in/4800x4800/filters:upscale()/{host}/photo.jpg")).await;
    assert_eq!(jpeg.status, 200);
}

/// Send `request` on a connection whose receive buffer is small, read nothing for 4 s, then read
/// whatever comes: the bytes received, and whether the server ended the connection by then.
async fn stalled_reader(port: u16, request: &[u8]) -> (usize, bool) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    stream.write_all(request).await.unwrap();
    // Past the 1 s send timeout, with room for a loaded machine.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..100_000 {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received += n,
            Err(_) => return (received, false),
        }
    }
    (received, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_a_site_answer_are_dropped_after_the_send_timeout() {
    // An app answering every request with 32 MiB, as fast as the proxy takes it.
    const BODY: usize = 32 << 20;
    let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app.local_addr().unwrap();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut_seen = cut.clone();
    let task = tokio::spawn(async move {
        let Ok(Ok((mut conn, _))) = tokio::time::timeout(Duration::from_secs(30), app.accept()).await else { return };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
            match conn.read(&mut buf).await {
                Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n");
        conn.write_all(answer.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..BODY / chunk.len() {
            match tokio::time::timeout(Duration::from_secs(20), conn.write_all(&chunk)).await {
                Ok(Ok(())) => {}
                _ => {
                    cut_seen.store(true, std::sync::atomic::Ordering::SeqCst);
                    return;
                }
            }
        }
    });
    let settings = Settings {
        thumbora: format!(
            "  send_timeout_seconds: 1\n  site:\n    upstreams: [\"{app_addr}\"]\n    image_prefix: /img\n    health_check_seconds: 0\n"
        ),
        ..Settings::default()
    };
    let server = Server::start_with(settings).await;
    let (received, closed) = stalled_reader(server.port, b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(closed && received < BODY, "received {received} of {BODY} bytes, closed: {closed}");
    // The app's connection went with it (its write failed rather than waiting for ever).
    tokio::time::timeout(Duration::from_secs(25), task).await.expect("the app finished").unwrap();
    assert!(cut.load(std::sync::atomic::Ordering::SeqCst), "the app's connection was closed");
    // The server serves the next client.
    assert_eq!(server.get("/healthcheck").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_a_hit_are_dropped_after_the_send_timeout() {
    let origin = super::origin::Origin::start().await;
    // A result of about 6 MB, larger than what the sockets buffer.
    origin.put("/noise.png", noise_png(1400, 1400));
    // Both ways a hit is answered: at the connection (fast_hits) and through Pingora's session.
    for fast in [true, false] {
        let metrics_port = free_port();
        let metrics = format!("  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n");
        let server = server_with(&format!("  send_timeout_seconds: 1\n  fast_hits: {fast}\n{metrics}")).await;
        let path = format!("/unsafe/filters:format(png)/{}/noise.png", origin.host());
        let first = server.get(&path).await;
        assert_eq!(first.status, 200);
        let size = first.body.len();
        assert!(size > 4 << 20, "{size}");
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        let (received, closed) = stalled_reader(server.port, request.as_bytes()).await;
        assert!(closed && received < size, "fast_hits {fast}: received {received} of {size} bytes, closed: {closed}");
        // A client that reads gets the whole hit.
        assert_eq!(server.get(&path).await.body.len(), size);
        let scrape = super::metrics::scrape(&server, metrics_port).await;
        let series = "thumbora_client_connections_closed_total{reason=\"send_timeout\"}";
        assert_eq!(scrape.get(series), Some(&1.0), "fast_hits {fast}");
    }
}

/// A full render pool sheds load at once (T13): with one render thread and one queued place,
/// a burst of eight renders of one source gets 200 for those admitted and `503` with
/// `Retry-After: 1` for the rest, counted as `overloaded` refusals, never another answer or a
/// wait; the server renders normally once the burst is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_render_queue_answers_503_at_once() {
    let origin = Origin::start().await;
    // A large PNG result of noise: each render takes long enough for the burst to pile up.
    origin.put("/noise.png", noise_png(1400, 1400));
    let metrics_port = free_port();
    let extra = format!(
        "  render:\n    threads: 1\n    queue: 1\n  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n  access_log:\n    enabled: false\n"
    );
    let server = Arc::new(server_with(&extra).await);
    let h = origin.host();
    // The burst starts once the source is cached: every request is admitted as it arrives.
    assert_eq!(server.get(&format!("/unsafe/10x10/{h}/noise.png")).await.status, 200);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (server, path) = (server.clone(), format!("/unsafe/{}x0/filters:format(png)/{h}/noise.png", 1300 + i));
            tokio::spawn(async move { server.get(&path).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == 503 {
            assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        }
        statuses.push(r.status);
    }
    statuses.sort_unstable();
    let (ok, shed) = (statuses.iter().filter(|s| **s == 200).count(), statuses.iter().filter(|s| **s == 503).count());
    assert!(ok >= 2 && shed >= 1 && ok + shed == 8, "statuses: {statuses:?}");
    let m = super::metrics::scrape(&server, metrics_port).await;
    assert_eq!(m.get(r#"thumbora_refusals_total{reason="overloaded"}"#), Some(&(shed as f64)));
    assert_eq!(server.get(&format!("/unsafe/20x20/{h}/noise.png")).await.status, 200, "served after the burst");
}

/// A panic inside one request's handling fails that request alone (reliability plan, T15). A fail
/// point (built only with the `failpoints` feature, which scripts/test turns on) panics right
/// after a request took one of the render pool's two places, while it holds the result's cache
/// lock: first with a second request for the same result waiting on that lock, then once more
/// on another result. Each panicking request gets an error; the one that waited is answered with
/// the image; the two places are given back (were both kept, the next render would get 503); and
/// the process lives on.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_request_fails_only_that_request() {
    let origin = Origin::start().await;
    origin.put("/p.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let settings = Settings {
        // The fail point's 1st and 3rd evaluations panic; the 2nd and any later do nothing.
        failpoints: "render-admitted=1*panic->1*off->1*panic".into(),
        ..Settings::with_sources("", "  render:\n    threads: 1\n    queue: 1\n")
    };
    let mut server = Server::start_with(settings).await;
    let h = origin.host();
    // The first request holds the cache lock while its source takes 800 ms; the second arrives
    // meanwhile and waits on the lock.
    let url = format!("/unsafe/200x150/{h}/delay/800/p.jpg");
    let first = tokio::spawn({
        let (client, url) = (server.client.clone(), server.url(&url));
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = server.get(&url).await;
    let first = first.await.unwrap();
    assert!(first.as_ref().map_or(true, |s| *s >= 500), "the request that panicked: {first:?}");
    assert_eq!(waiting.status, 200, "the request waiting on its lock");
    assert_eq!(waiting.dims(), (200, 150));
    // The third evaluation panics on another result; then a render needs one of the two places.
    let other = server.get(&format!("/unsafe/100x75/{h}/p.jpg")).await;
    assert!(other.status >= 500, "the second panic: {}", other.status);
    let after = server.get(&format!("/unsafe/120x90/{h}/p.jpg")).await;
    assert_eq!(after.status, 200, "both render places given back: {}", after.text());
    assert_eq!(server.get("/healthcheck").await.status, 200);
    assert!(server.is_running(), "the process lives");
}

/// A flood of one event writes a few log lines a second, not one per event: 300 connections
/// refused past `max_connections` (each one a warning) leave at most 10 lines a second of it in
/// the log, the first after a pause saying how many were dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_connections_does_not_flood_the_log() {
    let log = tempfile::NamedTempFile::new().unwrap();
    // The held connection stays open (and holds the cap) for the whole flood.
    let limits = "  max_connections: 1\n  request_head_timeout_ms: 120000\n";
    let settings = Settings { thumbora: limits.into(), ..Default::default() };
    let server = Server::start_logging(settings, Some(log.reopen().unwrap())).await;
    // One connection holds the only place: admitted when the server sends it nothing (one the
    // start-up probe's connection, not yet closed, pushed over the cap gets a 503 instead).
    let mut held = None;
    for _ in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let mut byte = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await.is_err() {
            held = Some(stream);
            break;
        }
    }
    let _held = held.expect("a connection is admitted");
    let started = Instant::now();
    let mut refused = 0;
    for _ in 0..300 {
        let mut extra = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut answer)).await;
        refused += usize::from(answer.starts_with(b"HTTP/1.1 503"));
        assert!(started.elapsed() < Duration::from_secs(60), "the flood takes too long: {refused} refused");
    }
    let seconds = started.elapsed().as_secs() + 1;
    assert_eq!(refused, 300, "every connection past the cap is answered 503");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(server);
    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines = text.lines().filter(|l| l.contains("connection refused")).count();
    assert!(lines >= 10, "the first lines are written: {lines}\n{text}");
    assert!(lines as u64 <= 10 * (seconds + 2), "{lines} lines in {seconds} s:\n{text}");
}
