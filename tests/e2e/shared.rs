//! The shared tier on a real SeaweedFS (SigV4 on): two nodes behind one bucket render each URL
//! once and see each other's purges; a bucket that is stopped or frozen never fails a request the
//! origin can serve. Renders and origin fetches are counted through each node's metrics.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::harness::*;
use super::metrics::{requests, scrape, settled_scrape};
use super::seaweed::Seaweed;

const TOKEN: &str = "purge-token-0123456789";

/// A node on `bucket`, with its metrics on `metrics_port`, its journal read every 200 ms, and
/// `s3_extra` S3 keys (timeouts). Its originals cache is off: every render is an origin fetch.
async fn node(weed: &Seaweed, bucket: &str, metrics_port: u16, s3_extra: &str) -> Server {
    node_with(weed, bucket, metrics_port, s3_extra, "    cache_bytes: 0\n", 200).await
}

/// [`node`] with `sources` keys, reading the journal every `poll_ms`.
async fn node_with(
    weed: &Seaweed,
    bucket: &str,
    metrics_port: u16,
    s3_extra: &str,
    sources: &str,
    poll_ms: u64,
) -> Server {
    let s3: String = format!("{}{s3_extra}", weed.config_yaml(bucket, "thumbora"))
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    let yaml = format!(
        "  cache:\n    shared:\n      journal_poll_ms: {poll_ms}\n      down_seconds: 1\n      s3:\n{s3}    purge:\n      tokens: [\"{TOKEN}\"]\n\
         \x20 metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n  access_log:\n    enabled: false\n"
    );
    Server::start_with(Settings::with_sources(sources, &yaml)).await
}

fn renders(m: &HashMap<String, f64>) -> f64 {
    m.get(r#"thumbora_render_stage_duration_seconds_count{stage="decode"}"#).copied().unwrap_or(0.0)
}

fn fetches(m: &HashMap<String, f64>) -> f64 {
    m.get("thumbora_origin_fetches_total").copied().unwrap_or(0.0)
}

fn x_cache(r: &Resp) -> String {
    r.header("x-cache").unwrap_or_default()
}

/// `PURGE path` on `node` with the token: 200.
async fn purge(node: &Server, path: &str) {
    let method = reqwest::Method::from_bytes(b"PURGE").unwrap();
    let r = node.request(method, path, &[("authorization", &format!("Bearer {TOKEN}"))]).await;
    assert_eq!(r.status, 200, "PURGE {path}: {}", r.text());
}

/// Wait (bounded) until the bucket holds a result object.
async fn wait_for_objects(weed: &Seaweed, bucket: &str, at_least: usize) {
    let client = thumbora::s3::S3Client::new(&weed.config(bucket, "thumbora")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while client.list(&client.key("r/"), None, 100).await.map_or(0, |keys| keys.len()) < at_least {
        assert!(Instant::now() < deadline, "no result reached the bucket");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_render_once_and_purges_reach_both() {
    let weed = Seaweed::start();
    weed.create_bucket("shared").await;
    let origin = Origin::start().await;
    origin.put("/n/a.jpg", photo(800, 600, image::ImageFormat::Jpeg));
    let (ma, mb) = (free_port(), free_port());
    let a = node(&weed, "shared", ma, "").await;
    let b = node(&weed, "shared", mb, "").await;
    // Signed: unsafe URLs are not stored in the bucket by default (thumbor's
    // RESULT_STORAGE_STORES_UNSAFE).
    let url = signed(&format!("300x200/smart/{}/n/a.jpg", origin.host()));

    let first = a.get(&url).await;
    assert_eq!((first.status, x_cache(&first).as_str()), (200, "MISS"));
    wait_for_objects(&weed, "shared", 1).await;

    let before = settled_scrape(&b, mb, 0.0).await;
    let on_b = b.get(&url).await;
    assert_eq!((on_b.status, x_cache(&on_b).as_str()), (200, "HIT shared"));
    assert_eq!(on_b.body, first.body);
    assert_eq!(on_b.header("etag"), first.header("etag"));
    assert_eq!(on_b.header("cache-control"), first.header("cache-control"));
    assert_eq!(x_cache(&b.get(&url).await), "HIT memory", "kept locally after the shared hit");
    // Counted when Pingora ends each request, just after its client has the response.
    let after = settled_scrape(&b, mb, requests(&before) + 2.0).await;
    assert_eq!(renders(&after) - renders(&before), 0.0, "node B rendered nothing");
    assert_eq!(fetches(&after) - fetches(&before), 0.0, "node B fetched nothing");
    assert_eq!(origin.hits("/n/a.jpg"), 1, "one origin fetch for the fleet");
    assert_eq!(after.get(r#"thumbora_cache_hits_total{tier="shared"}"#), Some(&1.0));

    // A result rendered from a source that arrived cut (no length, closed half-way) is served
    // but never stored in the bucket, where the whole fleet would take it for good.
    let cut = signed(&format!("300x200/{}/close-delimited-half/n/a.jpg", origin.host()));
    assert_eq!(a.get(&cut).await.status, 200, "rendered from what arrived, as thumbor does");
    // A whole one after it, whose object shows that A's writes have reached the bucket.
    let whole = signed(&format!("301x200/{}/n/a.jpg", origin.host()));
    assert_eq!(a.get(&whole).await.status, 200);
    wait_for_objects(&weed, "shared", 2).await;
    let on_b = b.get(&cut).await;
    assert_eq!((on_b.status, x_cache(&on_b).as_str()), (200, "MISS"), "node B renders the cut source itself");
    assert_eq!(origin.hits("/close-delimited-half/n/a.jpg"), 2);
    let client = thumbora::s3::S3Client::new(&weed.config("shared", "thumbora")).unwrap();
    let objects = client.list(&client.key("r/"), None, 100).await.unwrap();
    assert_eq!(objects.len(), 2, "only the two whole results are in the bucket: {objects:?}");

    // The image changes at the origin; a purge on A drops it from both nodes and the bucket.
    origin.put("/n/a.jpg", photo(801, 600, image::ImageFormat::Png));
    purge(&a, &url).await;
    // B reads the journal within a few polls; until then it may still answer from memory.
    let deadline = Instant::now() + Duration::from_secs(10);
    let on_b = loop {
        let r = b.get(&url).await;
        if x_cache(&r) != "HIT memory" {
            break r;
        }
        assert!(Instant::now() < deadline, "node B never learnt of the purge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((on_b.status, x_cache(&on_b).as_str()), (200, "MISS"), "node B rendered again");
    assert_ne!(on_b.body, first.body);
    let on_a = a.get(&url).await;
    assert!(matches!(x_cache(&on_a).as_str(), "MISS" | "HIT shared"), "node A: {}", x_cache(&on_a));
    assert_eq!(on_a.body, on_b.body, "both nodes serve the new image");
}

/// With the originals cache on (the default), a source purge on one node drops the original on
/// the others too (they read it in the journal): the next render anywhere fetches the changed
/// picture, instead of making the old one from cached bytes and storing it in the bucket after
/// the ban, where it would spread to the whole fleet again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_purge_drops_the_original_on_every_node() {
    let weed = Seaweed::start();
    weed.create_bucket("fleet").await;
    let origin = Origin::start().await;
    origin.put("/f/a.jpg", photo(600, 400, image::ImageFormat::Jpeg));
    let a = node_with(&weed, "fleet", free_port(), "", "", 200).await;
    let b = node_with(&weed, "fleet", free_port(), "", "", 200).await;
    let h = origin.host();
    let (big, small) = (signed(&format!("fit-in/300x300/{h}/f/a.jpg")), signed(&format!("fit-in/150x150/{h}/f/a.jpg")));
    assert_eq!(a.get(&big).await.dims(), (300, 200));
    // B makes another size: its own fetch, kept in its originals cache.
    assert_eq!(b.get(&small).await.dims(), (150, 100));
    assert_eq!(origin.hits("/f/a.jpg"), 2);

    origin.put("/f/a.jpg", photo(400, 600, image::ImageFormat::Jpeg));
    purge(&a, &format!("/unsafe/{h}/f/a.jpg?source")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let on_b = loop {
        let r = b.get(&small).await;
        if x_cache(&r) != "HIT memory" {
            break r;
        }
        assert!(Instant::now() < deadline, "node B never learnt of the purge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((x_cache(&on_b).as_str(), on_b.dims()), ("MISS", (100, 150)), "node B fetched the new picture");
    assert_eq!(a.get(&big).await.dims(), (200, 300));
    assert_eq!(b.get(&big).await.dims(), (200, 300), "the old result is gone from the bucket too");
}

/// Between a purge on one node and another node reading it in the journal, the other node may
/// still render from its cached original: the old picture. That result never spreads through
/// the bucket (it is as old as the bytes it was made from, which the purge covers), and the node
/// drops it itself once it reads the purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_from_old_bytes_before_the_journal_is_read_does_not_spread() {
    let weed = Seaweed::start();
    weed.create_bucket("window").await;
    let origin = Origin::start().await;
    origin.put("/w/a.jpg", photo(600, 400, image::ImageFormat::Jpeg));
    let a = node_with(&weed, "window", free_port(), "", "", 200).await;
    // B reads the journal at its start, then every 8 s: what follows happens in between.
    let b = node_with(&weed, "window", free_port(), "", "", 8000).await;
    let h = origin.host();
    let (small, medium) =
        (signed(&format!("fit-in/150x150/{h}/w/a.jpg")), signed(&format!("fit-in/200x200/{h}/w/a.jpg")));
    assert_eq!(b.get(&small).await.dims(), (150, 100));
    wait_for_objects(&weed, "window", 1).await;

    origin.put("/w/a.jpg", photo(400, 600, image::ImageFormat::Jpeg));
    purge(&a, &format!("/unsafe/{h}/w/a.jpg?source")).await;
    // B renders another size from its old bytes, having not read the journal yet; more than a
    // second after the purge (the bucket keeps times in seconds).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = b.get(&medium).await;
    assert_eq!(early.dims(), (200, 133), "the window this test is about");
    wait_for_objects(&weed, "window", 1).await;
    let on_a = a.get(&medium).await;
    assert_eq!((x_cache(&on_a).as_str(), on_a.dims()), ("MISS", (133, 200)), "A never takes B's old result");
    // Once B reads the journal, its own copy goes too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = b.get(&medium).await;
        if r.dims() == (133, 200) {
            break;
        }
        assert!(Instant::now() < deadline, "B still serves the old picture: {}", x_cache(&r));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_frozen_bucket_never_fails_a_request() {
    let mut weed = Seaweed::start();
    weed.create_bucket("down").await;
    let origin = Origin::start().await;
    origin.put("/d/a.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let m = free_port();
    let server = node(&weed, "down", m, "connect_timeout_ms: 300\ntimeout_ms: 1000\n").await;
    let h = origin.host();
    let url = |w: u32| signed(&format!("{w}x100/{h}/d/a.jpg"));
    assert_eq!(server.get(&url(100)).await.status, 200);

    // Stopped mid-test: requests render from the origin at once.
    weed.stop();
    for w in 101..104 {
        let started = Instant::now();
        let r = server.get(&url(w)).await;
        assert_eq!((r.status, x_cache(&r).as_str()), (200, "MISS"), "bucket stopped");
        assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    }
    // Frozen (accepts connections, answers nothing): bounded by the S3 timeout.
    weed.restart();
    weed.create_bucket("down").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // past down_seconds
    weed.pause();
    for w in 104..106 {
        let started = Instant::now();
        let r = server.get(&url(w)).await;
        assert_eq!((r.status, x_cache(&r).as_str()), (200, "MISS"), "bucket frozen");
        assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    }
    weed.resume();
    let errors: f64 = scrape(&server, m)
        .await
        .iter()
        .filter(|(k, _)| k.starts_with("thumbora_cache_shared_errors_total"))
        .map(|(_, v)| v)
        .sum();
    assert!(errors >= 2.0, "failures counted: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_loader_reads_originals_from_a_bucket() {
    let mut weed = Seaweed::start();
    let bucket = weed.bucket("photos").await;
    bucket.put("originals/albums/a.jpg", photo(640, 480, image::ImageFormat::Jpeg).into(), "image/jpeg").await.unwrap();
    bucket.put("originals/albums/b.jpg", photo(64, 48, image::ImageFormat::Jpeg).into(), "image/jpeg").await.unwrap();
    bucket.put("secret.jpg", photo(64, 48, image::ImageFormat::Jpeg).into(), "image/jpeg").await.unwrap();
    let s3: String = format!("{}connect_timeout_ms: 300\ntimeout_ms: 1000\n", weed.config_yaml("photos", "originals"))
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    let server = Server::start_with(Settings {
        thumbora: format!("  sources:\n    loader: s3\n    s3:\n{s3}"),
        ..Settings::default()
    })
    .await;
    let r = server.get("/unsafe/300x200/albums/a.jpg").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.dims(), (300, 200));
    // The image URL is a key under the prefix: a missing key, and one climbing out of the
    // prefix, are not found.
    assert_eq!(server.get("/unsafe/300x200/albums/missing.jpg").await.status, 404);
    assert_eq!(server.get("/unsafe/300x200/albums/..%2F..%2Fsecret.jpg").await.status, 404);
    // The bucket down: an error at once, as for an unreachable origin (b.jpg was never fetched,
    // so no originals cache has it).
    weed.stop();
    // Held (never accepting) so that no other test's server, given the freed port, answers.
    let _hold = std::net::TcpListener::bind(("127.0.0.1", weed.s3_port)).ok();
    let started = Instant::now();
    let r = server.get("/unsafe/100x100/albums/b.jpg").await;
    assert!(matches!(r.status, 502 | 504), "{} {}", r.status, r.text());
    assert!(started.elapsed() < Duration::from_secs(5));
}
