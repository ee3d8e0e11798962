//! Prometheus metrics on their own listener, and the access log written to a file: what an
//! operator scrapes and reads after a known mix of requests.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::harness::*;

/// A scrape of `GET /metrics`: every sample by its series (`name{labels}`).
pub async fn scrape(server: &Server, port: u16) -> HashMap<String, f64> {
    let r = server.client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("scrape");
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = r.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(series, value)| (series.to_string(), value.parse::<f64>().expect(series)))
        .collect()
}

/// Requests counted in a scrape, all series together.
pub fn requests(scrape: &HashMap<String, f64>) -> f64 {
    scrape.iter().filter(|(s, _)| s.starts_with("thumbora_requests_total{")).map(|(_, v)| v).sum()
}

/// A scrape once at least `at_least` requests are counted and the count holds still for 100 ms:
/// a request is counted when Pingora ends it, just after its client has the response. Bounded.
pub async fn settled_scrape(server: &Server, port: u16, at_least: f64) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = scrape(server, port).await;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = scrape(server, port).await;
        if (requests(&now) >= at_least && requests(&now) == requests(&last)) || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// The value of `series` once a scrape reads `value`, polled for at most 5 s (the last value read
/// otherwise): a gauge the server moves a moment after the client acts.
pub async fn series_reaches(server: &Server, port: u16, series: &str, value: f64) -> Option<f64> {
    let mut read = None;
    for _ in 0..100 {
        read = scrape(server, port).await.get(series).copied();
        if read == Some(value) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    read
}

/// How much each series moved between two scrapes (series absent before count from 0).
fn moved(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_exactly_the_requests_sent() {
    let origin = Origin::start().await;
    let sources: Vec<Vec<u8>> = (0..3).map(|i| photo(160 + 16 * i, 120, image::ImageFormat::Jpeg)).collect();
    for (i, bytes) in sources.iter().enumerate() {
        origin.put(&format!("/m{i}.jpg"), bytes.clone());
    }
    let metrics_port = free_port();
    let settings = Settings::with_sources(
        "    allowed: [\"127.0.0.1\"]\n",
        &format!("  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n  access_log:\n    enabled: false\n"),
    );
    let server = Server::start_with(settings).await;
    let o = origin.host();

    // The listener serves /metrics only.
    let other = server.client.get(format!("http://127.0.0.1:{metrics_port}/")).send().await.unwrap();
    assert_eq!(other.status(), 404);

    // The harness' readiness probes are counted too: start once they all are.
    let before = settled_scrape(&server, metrics_port, 1.0).await;
    // 3 misses, then 2 hits.
    for i in 0..3 {
        assert_eq!(server.get(&format!("/unsafe/80x60/{o}/m{i}.jpg")).await.status, 200);
    }
    for i in 0..2 {
        assert_eq!(server.get(&format!("/unsafe/80x60/{o}/m{i}.jpg")).await.status, 200);
    }
    // 1 bad signature, 1 source outside `sources.allowed` (refused before any connection).
    let bad_signature = format!("/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/80x60/{o}/m0.jpg");
    assert_eq!(server.get(&bad_signature).await.status, 400);
    assert_eq!(server.get("/unsafe/80x60/127.0.0.2:9/m0.jpg").await.status, 400);
    // 1 health check.
    assert_eq!(server.get("/healthcheck").await.status, 200);
    let after = settled_scrape(&server, metrics_port, requests(&before) + 8.0).await;

    let expect = |series: &str, by: f64| {
        assert_eq!(moved(&before, &after, series), by, "{series}");
    };
    expect(r#"thumbora_requests_total{route="image",status="200"}"#, 5.0);
    expect(r#"thumbora_requests_total{route="refused",status="400"}"#, 2.0);
    expect(r#"thumbora_requests_total{route="healthcheck",status="200"}"#, 1.0);
    assert_eq!(requests(&after) - requests(&before), 8.0, "no other request was counted");
    expect(r#"thumbora_request_duration_seconds_count{route="image"}"#, 5.0);
    expect(r#"thumbora_request_duration_seconds_count{route="refused"}"#, 2.0);
    expect(r#"thumbora_request_duration_seconds_count{route="healthcheck"}"#, 1.0);
    expect(r#"thumbora_cache_lookups_total{outcome="miss"}"#, 3.0);
    expect(r#"thumbora_cache_lookups_total{outcome="hit"}"#, 2.0);
    expect(r#"thumbora_cache_lookups_total{outcome="expired"}"#, 0.0);
    expect(r#"thumbora_image_request_duration_seconds_count{cache="miss"}"#, 3.0);
    expect(r#"thumbora_image_request_duration_seconds_count{cache="hit"}"#, 2.0);
    // Both outcomes were timed, and each of the 3 renders waited once for its thread.
    let miss_sum = moved(&before, &after, r#"thumbora_image_request_duration_seconds_sum{cache="miss"}"#);
    let hit_sum = moved(&before, &after, r#"thumbora_image_request_duration_seconds_sum{cache="hit"}"#);
    assert!(miss_sum > 0.0 && hit_sum > 0.0, "miss {miss_sum} s, hit {hit_sum} s");
    expect("thumbora_render_wait_seconds_count", 3.0);
    expect("thumbora_origin_fetches_total", 3.0);
    expect("thumbora_origin_fetch_duration_seconds_count", 3.0);
    expect("thumbora_origin_fetch_bytes_total", sources.iter().map(|s| s.len() as f64).sum());
    let failures: Vec<&String> =
        after.keys().filter(|s| s.starts_with("thumbora_origin_fetch_failures_total")).collect();
    assert!(failures.is_empty(), "{failures:?}");
    for stage in ["decode", "transform", "filters", "encode"] {
        expect(&format!("thumbora_render_stage_duration_seconds_count{{stage=\"{stage}\"}}"), 3.0);
    }
    expect(r#"thumbora_refusals_total{reason="bad_signature"}"#, 1.0);
    expect(r#"thumbora_refusals_total{reason="source_not_allowed"}"#, 1.0);
    let refusals: f64 =
        after.keys().filter(|s| s.starts_with("thumbora_refusals_total{")).map(|s| moved(&before, &after, s)).sum();
    assert_eq!(refusals, 2.0);
    assert_eq!(after["thumbora_render_queue_depth"], 0.0);
    assert_eq!(after["thumbora_render_in_flight"], 0.0);
    assert_eq!(after["thumbora_access_log_dropped_lines_total"], 0.0);
}

/// The gauges of how full the bounded parts are: results and originals held in memory, and the
/// fetch memory a download holds while it lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn levels_show_what_the_caches_and_budgets_hold() {
    let origin = Origin::start().await;
    let sources: Vec<Vec<u8>> = (0..3).map(|i| photo(160 + 16 * i, 120, image::ImageFormat::Jpeg)).collect();
    for (i, bytes) in sources.iter().enumerate() {
        origin.put(&format!("/l{i}.jpg"), bytes.clone());
    }
    let metrics_port = free_port();
    let settings = Settings::with_sources("", &format!("  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n"));
    let server = Server::start_with(settings).await;
    let o = origin.host();
    let levels = [
        "thumbora_cache_memory_entries",
        "thumbora_cache_memory_bytes",
        "thumbora_originals_cache_entries",
        "thumbora_originals_cache_bytes",
        "thumbora_render_memory_in_use_bytes",
        "thumbora_fetch_memory_in_use_bytes",
    ];
    let idle = scrape(&server, metrics_port).await;
    for level in levels {
        assert_eq!(idle.get(level), Some(&0.0), "{level}");
    }

    let mut results = 0;
    for i in 0..3 {
        let r = server.get(&format!("/unsafe/80x60/{o}/l{i}.jpg")).await;
        assert_eq!(r.status, 200);
        results += r.body.len();
    }
    assert_eq!(series_reaches(&server, metrics_port, "thumbora_cache_memory_entries", 3.0).await, Some(3.0));
    let full = scrape(&server, metrics_port).await;
    // A result weighs its body and its stored headers (a few hundred bytes).
    let weight = full["thumbora_cache_memory_bytes"] - results as f64;
    assert!((3.0 * 100.0..3.0 * 2000.0).contains(&weight), "headers of 3 results: {weight} bytes");
    assert_eq!(full["thumbora_originals_cache_entries"], 3.0);
    // An original weighs its bytes and its key (the image URL).
    let keys: usize = (0..3).map(|i| format!("{o}/l{i}.jpg").len()).sum();
    let originals: usize = sources.iter().map(Vec::len).sum();
    assert_eq!(full["thumbora_originals_cache_bytes"], (originals + keys) as f64);
    assert_eq!(full["thumbora_render_memory_in_use_bytes"], 0.0, "held only while rendering");
    assert_eq!(full["thumbora_fetch_memory_in_use_bytes"], 0.0, "cached originals are not fetch memory");

    // A download holds fetch memory for its announced length (in whole 64 KiB units) until it
    // ends: this one trickles until the fetch timeout (2 s) cuts it.
    let trickle = tokio::spawn({
        let client = server.client.clone();
        let url = server.url(&format!("/unsafe/80x60/{o}/trickle/l0.jpg"));
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    let announced = sources[0].len().div_ceil(64 * 1024) * 64 * 1024;
    let held = series_reaches(&server, metrics_port, "thumbora_fetch_memory_in_use_bytes", announced as f64).await;
    assert_eq!(held, Some(announced as f64), "a download in progress");
    assert_eq!(trickle.await.unwrap().unwrap(), 504);
    let freed = series_reaches(&server, metrics_port, "thumbora_fetch_memory_in_use_bytes", 0.0).await;
    assert_eq!(freed, Some(0.0), "released when the fetch failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_is_off_by_default() {
    let server = Server::start().await;
    assert_eq!(server.listening_ports(), [server.port], "no listener but thumbora.listen");
    let metrics_port = free_port();
    let settings =
        Settings { thumbora: format!("  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n"), ..Default::default() };
    let server = Server::start_with(settings).await;
    let mut expected = [server.port, metrics_port];
    expected.sort_unstable();
    assert_eq!(server.listening_ports(), expected);
}

/// The access-log lines of `path` (cut into fields) that `wanted` selects, once there are `count`
/// of them (bounded wait). Lines are written when requests end, so not always in the order the
/// requests were sent, and the harness' readiness probes are there too.
async fn lines(path: &Path, count: usize, wanted: impl Fn(&[String]) -> bool) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Vec<String>> = text.lines().map(fields).filter(|l| wanted(l)).collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One line cut into its fields: client, time, request, status, bytes, referer, agent, request
/// time, cache, render time, route.
fn fields(line: &str) -> Vec<String> {
    let re = regex::Regex::new(
        r#"^(\S+) - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\d+\.\d{3}) (HIT|MISS|EXPIRED|-) (\d+\.\d{3}|-) (\S+)$"#,
    )
    .unwrap();
    let caps = re.captures(line).unwrap_or_else(|| panic!("not an access-log line: {line}"));
    (1..caps.len()).map(|i| caps[i].to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_in_a_file() {
    let origin = Origin::start().await;
    origin.put("/log.jpg", photo(160, 120, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let trusted_log = dir.path().join("trusted.log");
    let settings = Settings::with_sources(
        "",
        &format!(
            "  access_log:\n    file: {}\n    trusted_proxies: [\"127.0.0.1\", \"10.0.0.0/8\"]\n",
            trusted_log.display()
        ),
    );
    let server = Server::start_with(settings).await;
    let path = format!("/unsafe/80x60/{}/log.jpg", origin.host());
    let miss = server
        .request(reqwest::Method::GET, &path, &[("X-Forwarded-For", "203.0.113.7, 10.1.2.3"), ("User-Agent", "e2e/1")])
        .await;
    let hit = server.request(reqwest::Method::GET, &path, &[("Referer", "http://site.example/a \"b\"")]).await;
    let refused = server.get("/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/80x60/127.0.0.1/log.jpg").await;
    assert_eq!((miss.status, hit.status, refused.status), (200, 200, 400));

    let logged = lines(&trusted_log, 3, |l| l[10] != "healthcheck").await;
    assert_eq!(logged.len(), 3, "{logged:?}");
    let line = |cache: &str, route: &str| -> &Vec<String> {
        let found: Vec<&Vec<String>> = logged.iter().filter(|l| l[8] == cache && l[10] == route).collect();
        assert_eq!(found.len(), 1, "one {cache} {route} line in {logged:?}");
        found[0]
    };
    let request = format!("GET {path} HTTP/1.1");
    let miss_bytes = miss.body.len().to_string();
    // The miss: the client from X-Forwarded-For (the peer 127.0.0.1 and 10.1.2.3 are trusted).
    let l = line("MISS", "image");
    assert_eq!(
        [&l[0], &l[2], &l[3], &l[4], &l[5], &l[6], &l[8], &l[10]],
        ["203.0.113.7", &request, "200", &miss_bytes, "-", "e2e/1", "MISS", "image"]
    );
    assert_ne!(l[9], "-", "a miss has a render time");
    // The hit: no X-Forwarded-For, so the peer; no render; the referer escaped.
    let l = line("HIT", "image");
    assert_eq!(
        [&l[0], &l[2], &l[3], &l[4], &l[5], &l[6], &l[8], &l[9], &l[10]],
        ["127.0.0.1", &request, "200", &miss_bytes, "http://site.example/a \\x22b\\x22", "-", "HIT", "-", "image"]
    );
    let l = line("-", "refused:BadSignature");
    assert_eq!(
        [&l[0], &l[3], &l[4], &l[8], &l[9], &l[10]],
        ["127.0.0.1", "400", &refused.body.len().to_string(), "-", "-", "refused:BadSignature"]
    );
    drop(server);

    // Without trusted proxies, X-Forwarded-For is never believed.
    let untrusted_log = dir.path().join("untrusted.log");
    let settings = Settings::with_sources("", &format!("  access_log:\n    file: {}\n", untrusted_log.display()));
    let server = Server::start_with(settings).await;
    let r = server
        .request(reqwest::Method::GET, "/healthcheck", &[("X-Forwarded-For", "203.0.113.7"), ("User-Agent", "e2e/2")])
        .await;
    assert_eq!(r.status, 200);
    let logged = lines(&untrusted_log, 1, |l| l[6] == "e2e/2").await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    let l = &logged[0];
    assert_eq!(
        [&l[0], &l[2], &l[3], &l[4], &l[8], &l[9], &l[10]],
        ["127.0.0.1", "GET /healthcheck HTTP/1.1", "200", "7", "-", "-", "healthcheck"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_passes_to_the_new_process_on_upgrade() {
    let metrics_port = free_port();
    let settings = Settings {
        thumbora: format!("  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n  access_log:\n    enabled: false\n"),
        ..Default::default()
    };
    let mut old = Server::start_with(settings).await;
    assert_eq!(scrape(&old, metrics_port).await.get("thumbora_render_in_flight"), Some(&0.0));
    let new = old.start_upgrade();
    tokio::time::sleep(Duration::from_millis(800)).await;
    old.signal(libc::SIGQUIT);
    assert!(old.wait_exit(Duration::from_secs(15)), "the old process handed over and exited");
    // The new process answers on both sockets it took over.
    let deadline = Instant::now() + Duration::from_secs(10);
    while new.client.get(new.url("/healthcheck")).send().await.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(new.get("/healthcheck").await.status, 200);
    let scraped = settled_scrape(&new, metrics_port, 1.0).await;
    assert!(scraped[r#"thumbora_requests_total{route="healthcheck",status="200"}"#] >= 1.0);
    let mut expected = [new.port, metrics_port];
    expected.sort_unstable();
    assert_eq!(new.listening_ports(), expected);
}
