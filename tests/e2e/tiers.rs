//! Cache tiers, as a client and the origin see them: the disk tier across a restart, an upgrade
//! and a crash, its budget under churn; purges (one URL, every variant of a source) and who may
//! send them; stale-if-error and stale-while-revalidate. The origin counts its requests; the
//! `X-Cache` header names the outcome and tier.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::*;

const TOKEN: &str = "purge-token-0123456789";

/// Noise, so JPEG results do not compress to nothing (the churn test needs real sizes).
fn noisy_jpeg(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let b = state.to_le_bytes();
        image::Rgb([b[1], b[2], b[3]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A server with a disk tier in `dir` of `max_bytes`, and `extra` `thumbora:` sections. The
/// originals cache is off, so every render is an origin request the test can count.
async fn server(dir: &Path, max_bytes: u64, extra: &str) -> Server {
    let cache = format!(
        "  cache:\n    max_bytes: 67108864\n    disk:\n      dir: {}\n      max_bytes: {max_bytes}\n    purge:\n      tokens: [\"{TOKEN}\"]\n",
        dir.display()
    );
    Server::start_with(Settings::with_sources("    cache_bytes: 0\n", &format!("{cache}{extra}"))).await
}

/// Cache files under `dir` (the `ab/` shards), and the bytes they take in whole 4 KiB blocks.
fn disk_usage(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for shard in std::fs::read_dir(dir).unwrap().flatten() {
        if shard.file_name().len() != 2 {
            continue;
        }
        for file in std::fs::read_dir(shard.path()).unwrap().flatten() {
            files += 1;
            bytes += file.metadata().unwrap().len().div_ceil(4096) * 4096;
        }
    }
    (files, bytes)
}

/// Wait (bounded) until `dir` holds at least `files` cache files and stops changing.
async fn wait_for_disk(dir: &Path, files: usize) -> (usize, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (usize::MAX, 0);
    loop {
        let now = disk_usage(dir);
        if now.0 >= files && now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "disk tier holds {now:?}, waited for {files} files");
        last = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn x_cache(r: &Resp) -> String {
    r.header("x-cache").unwrap_or_default()
}

#[tokio::test]
async fn disk_tier_survives_restart_and_upgrade() {
    let origin = Origin::start().await;
    origin.put("/t/a.jpg", photo(800, 600, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), 64 << 20, "").await;
    let url = format!("/unsafe/300x200/{}/t/a.jpg", origin.host());
    let first = server.get(&url).await;
    assert_eq!((first.status, x_cache(&first).as_str()), (200, "MISS"));
    assert_eq!(x_cache(&server.get(&url).await), "HIT memory");
    wait_for_disk(dir.path(), 1).await;
    assert_eq!(origin.hits("/t/a.jpg"), 1);

    // A graceful stop and a new process: served from disk, then from memory.
    server.restart(libc::SIGTERM).await;
    let after = server.get(&url).await;
    assert_eq!((after.status, x_cache(&after).as_str()), (200, "HIT disk"));
    assert_eq!(after.body, first.body);
    assert_eq!(after.header("etag"), first.header("etag"));
    assert_eq!(x_cache(&server.get(&url).await), "HIT memory", "promoted to memory");
    assert_eq!(origin.hits("/t/a.jpg"), 1, "the origin saw no new request");

    // A graceful upgrade (-u, then SIGQUIT to the old process): the new one reads the same disk.
    let mut upgraded = server.start_upgrade();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal(libc::SIGQUIT);
    assert!(server.wait_exit(Duration::from_secs(20)), "old process exits");
    upgraded.wait_ready().await;
    let after = upgraded.get(&url).await;
    assert_eq!((after.status, x_cache(&after).as_str()), (200, "HIT disk"));
    assert_eq!(after.body, first.body);
    assert_eq!(origin.hits("/t/a.jpg"), 1, "the origin saw no new request after the upgrade");
    assert!(upgraded.is_running());
}

#[tokio::test]
async fn disk_budget_holds_under_churn() {
    let origin = Arc::new(Origin::start().await);
    origin.put("/t/noise.jpg", noisy_jpeg(640, 480, 1));
    let dir = tempfile::tempdir().unwrap();
    let budget: u64 = 1 << 20;
    let server = Arc::new(server(dir.path(), budget, "").await);
    // Distinct sizes: each a new result of ~40-90 KB; 3x the budget in all.
    let mut written = 0u64;
    let mut width = 200;
    while written < 3 * budget {
        let mut batch = Vec::new();
        for _ in 0..4 {
            width += 1;
            let (server, url) =
                (server.clone(), format!("/unsafe/{width}x{}/{}/t/noise.jpg", width * 3 / 4, origin.host()));
            batch.push(tokio::spawn(async move { server.get(&url).await }));
        }
        for r in batch {
            let r = r.await.unwrap();
            assert_eq!(r.status, 200);
            written += r.body.len() as u64;
        }
        assert!(width < 1000, "bounded");
    }
    let (files, bytes) = wait_for_disk(dir.path(), 1).await;
    assert!(files > 3, "{files} files");
    assert!(bytes <= budget + budget / 10, "{bytes} bytes on disk for a budget of {budget} (wrote {written})");
}

#[tokio::test]
async fn crash_during_writes_leaves_only_whole_entries() {
    let origin = Arc::new(Origin::start().await);
    origin.put("/t/c.jpg", noisy_jpeg(400, 300, 2));
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), 256 << 20, "").await;
    let urls: Vec<String> =
        (0..120).map(|i| format!("/unsafe/{}x{}/{}/t/c.jpg", 100 + i, 80 + i, origin.host())).collect();
    // Renders in flight, 8 at a time, and a kill -9 while results are being written.
    let shared = Arc::new(std::mem::replace(&mut server.client, test_client()));
    let port = server.port;
    let mut tasks = Vec::new();
    for chunk in urls.chunks(15) {
        let (client, chunk) = (shared.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for url in chunk {
                let _ = client.get(format!("http://127.0.0.1:{port}{url}")).send().await;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while disk_usage(dir.path()).0 < 40 {
        assert!(Instant::now() < deadline, "writes never reached the disk");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)));
    for task in tasks {
        let _ = task.await;
    }
    // What a power cut can add: a renamed file whose tail never reached the disk.
    let shard = std::fs::read_dir(dir.path()).unwrap().flatten().find(|e| e.file_name().len() == 2).unwrap();
    let victim = std::fs::read_dir(shard.path()).unwrap().flatten().next().unwrap().path();
    let data = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &data[..data.len() / 2]).unwrap();

    server.restart(libc::SIGKILL).await;
    let mut from_disk = 0;
    for (i, url) in urls.iter().enumerate() {
        let r = server.get(url).await;
        assert_eq!(r.status, 200, "{url}");
        let img = image::load_from_memory(&r.body).unwrap_or_else(|e| panic!("{url}: not a whole image: {e}"));
        assert_eq!((img.width(), img.height()), (100 + i as u32, 80 + i as u32), "{url}");
        match x_cache(&r).as_str() {
            "HIT disk" => from_disk += 1,
            "MISS" => {}
            other => panic!("{url}: X-Cache {other}"),
        }
    }
    assert!(from_disk >= 30, "only {from_disk} entries came back from disk");
    assert!(
        !victim.exists() || std::fs::read(&victim).unwrap().len() != data.len() / 2,
        "the damaged file was dropped"
    );
}

#[tokio::test]
async fn purge_one_url_or_every_variant_of_a_source() {
    let origin = Origin::start().await;
    origin.put("/t/p.jpg", photo(600, 400, image::ImageFormat::Jpeg));
    origin.put("/t/q.jpg", photo(600, 400, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), 64 << 20, "").await;
    let h = origin.host();
    let (a, a_small, b) = (
        format!("/unsafe/300x200/{h}/t/p.jpg"),
        format!("/unsafe/100x100/smart/{h}/t/p.jpg"),
        format!("/unsafe/300x200/{h}/t/q.jpg"),
    );
    for url in [&a, &a_small, &b] {
        assert_eq!(x_cache(&server.get(url).await), "MISS");
    }
    wait_for_disk(dir.path(), 3).await;
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    let bearer = format!("Bearer {TOKEN}");

    // Anyone else: 403, and nothing dropped.
    for headers in [vec![], vec![("authorization", "Bearer not-the-token-at-all")]] {
        let r = server.request(purge.clone(), &a, &headers).await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    assert_eq!(x_cache(&server.get(&a).await), "HIT memory");

    // One URL: gone from memory and disk (a restart does not bring it back); its siblings stay.
    let signed_a = signed(&format!("300x200/{h}/t/p.jpg"));
    let r = server.request(purge.clone(), &signed_a, &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    server.restart(libc::SIGTERM).await;
    assert_eq!(x_cache(&server.get(&a).await), "MISS");
    assert_eq!(x_cache(&server.get(&a_small).await), "HIT disk");
    assert_eq!(origin.hits("/t/p.jpg"), 3);

    // Every variant of the source: both sizes miss, the other source still hits.
    let r = server.request(purge.clone(), &format!("/unsafe/{h}/t/p.jpg?source"), &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(x_cache(&server.get(&a).await), "MISS");
    assert_eq!(x_cache(&server.get(&a_small).await), "MISS");
    assert_eq!(x_cache(&server.get(&b).await), "HIT disk", "another source: kept");
    assert_eq!(x_cache(&server.get(&a_small).await), "HIT memory", "rendered again after the purge");
    assert_eq!(origin.hits("/t/p.jpg"), 5);
}

#[tokio::test]
async fn purge_allowed_by_source_address() {
    let origin = Origin::start().await;
    origin.put("/t/s.jpg", photo(300, 200, image::ImageFormat::Jpeg));
    let server = Server::start_with(Settings::with_sources(
        "    cache_bytes: 0\n",
        "  cache:\n    purge:\n      allowed_addresses: [\"127.0.0.0/8\"]\n",
    ))
    .await;
    let url = format!("/unsafe/100x100/{}/t/s.jpg", origin.host());
    server.get(&url).await;
    assert_eq!(x_cache(&server.get(&url).await), "HIT memory");
    let r = server.request(reqwest::Method::from_bytes(b"PURGE").unwrap(), &url, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(x_cache(&server.get(&url).await), "MISS");
}

#[tokio::test]
async fn stale_if_error_serves_the_old_result_when_the_origin_is_down_until_the_window_ends() {
    let origin = Origin::start().await;
    origin.put("/t/e.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let cache = format!(
        "  cache:\n    stale_if_error_seconds: 3\n    disk:\n      dir: {}\n      max_bytes: 67108864\n  response:\n    max_age: 1\n",
        dir.path().display()
    );
    let server = Server::start_with(Settings::with_sources("    cache_bytes: 0\n", &cache)).await;
    let url = format!("/unsafe/200x150/{}/t/e.jpg", origin.host());
    let first = server.get(&url).await;
    assert_eq!((first.status, x_cache(&first).as_str()), (200, "MISS"));
    drop(origin);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stale = server.get(&url).await;
    assert_eq!((stale.status, x_cache(&stale).as_str()), (200, "STALE"));
    assert_eq!(stale.body, first.body);
    // Past max-age + stale_if_error_seconds (1 + 3 s): the error itself, not the old result; a
    // result was cached, so the lookup was `EXPIRED`, not a miss.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let late = server.get(&url).await;
    assert_eq!((late.status, x_cache(&late).as_str()), (502, "EXPIRED"), "{}", late.text());
}

#[tokio::test]
async fn stale_while_revalidate_renders_once_in_the_background() {
    let origin = Arc::new(Origin::start_with_slow(Duration::from_millis(1500)).await);
    origin.put("/w.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let server = Arc::new(
        Server::start_with(Settings::with_sources(
            "    cache_bytes: 0\n",
            "  cache:\n    stale_while_revalidate_seconds: 60\n  response:\n    max_age: 1\n",
        ))
        .await,
    );
    let url = format!("/unsafe/200x150/{}/slow/w.jpg", origin.host());
    let first = server.get(&url).await;
    assert_eq!((first.status, x_cache(&first).as_str()), (200, "MISS"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Five clients at once after the max-age: all answered from the stale copy, none waits for
    // the slow origin (1.5 s), and the origin sees one background fetch.
    let mut clients = Vec::new();
    for _ in 0..5 {
        let (server, url) = (server.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = server.get(&url).await;
            (r, started.elapsed())
        }));
    }
    for client in clients {
        let (r, took) = client.await.unwrap();
        assert_eq!((r.status, x_cache(&r).as_str()), (200, "STALE"));
        assert_eq!(r.body, first.body);
        assert!(took < Duration::from_millis(1000), "a stale answer waited {took:?} for the origin");
    }
    // Until the background render lands, clients keep getting the stale copy; then a fresh one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = server.get(&url).await;
        match x_cache(&r).as_str() {
            "HIT memory" => break,
            "STALE" => assert!(Instant::now() < deadline, "the background render never landed"),
            other => panic!("X-Cache {other} while revalidating"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(origin.hits("/slow/w.jpg"), 2, "one background fetch for all the stale answers");
}

#[tokio::test]
async fn originals_on_disk_cost_one_origin_fetch_across_restarts() {
    let origin = Origin::start().await;
    origin.put("/t/o.jpg", photo(800, 600, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let sources =
        format!("    cache_bytes: 0\n    disk:\n      dir: {}\n      max_bytes: 67108864\n", dir.path().display());
    let mut server = Server::start_with(Settings::with_sources(&sources, "")).await;
    let h = origin.host();
    assert_eq!(server.get(&format!("/unsafe/300x200/{h}/t/o.jpg")).await.status, 200);
    wait_for_disk(dir.path(), 1).await;
    server.restart(libc::SIGTERM).await;
    // Another size after a restart (the result cache is memory only here): the original is read
    // from disk, not fetched.
    let r = server.get(&format!("/unsafe/120x90/{h}/t/o.jpg")).await;
    assert_eq!((r.status, r.dims()), (200, (120, 90)));
    assert_eq!(origin.hits("/t/o.jpg"), 1, "one origin fetch for every size, across a restart");
}

/// A purge drops the original the results were made from too (the originals cache in memory and
/// on disk, on by default): once the image has changed at its origin, the purged URL shows the
/// new one at once, not after `sources.cache_ttl_seconds`. A URL purge drops that URL's result
/// only; a source purge every result.
#[tokio::test]
async fn a_purge_after_the_image_changed_shows_the_new_one_with_originals_cached() {
    let origin = Origin::start().await;
    origin.put("/t/c.jpg", photo(600, 400, image::ImageFormat::Jpeg));
    let dir = tempfile::tempdir().unwrap();
    let sources =
        format!("    disk:\n      dir: {}\n      max_bytes: 67108864\n", dir.path().join("originals").display());
    let cache = format!("  cache:\n    purge:\n      tokens: [\"{TOKEN}\"]\n");
    let server = Server::start_with(Settings::with_sources(&sources, &cache)).await;
    let h = origin.host();
    let (big, small) = (format!("/unsafe/fit-in/300x300/{h}/t/c.jpg"), format!("/unsafe/fit-in/150x150/{h}/t/c.jpg"));
    assert_eq!(server.get(&big).await.dims(), (300, 200));
    assert_eq!(server.get(&small).await.dims(), (150, 100));
    assert_eq!(origin.hits("/t/c.jpg"), 1, "the second size was made from the cached original");

    // The picture changes at the origin (portrait now).
    origin.put("/t/c.jpg", photo(400, 600, image::ImageFormat::Jpeg));
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let r = server.request(purge.clone(), &big, &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.get(&big).await;
    assert_eq!((x_cache(&r).as_str(), r.dims()), ("MISS", (200, 300)), "the purged URL shows the new picture");
    assert_eq!(origin.hits("/t/c.jpg"), 2);
    let r = server.get(&small).await;
    assert_eq!((x_cache(&r).as_str(), r.dims()), ("HIT memory", (150, 100)), "a URL purge leaves other sizes");

    origin.put("/t/c.jpg", photo(300, 300, image::ImageFormat::Jpeg));
    let r = server.request(purge.clone(), &format!("/unsafe/{h}/t/c.jpg?source"), &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.get(&small).await.dims(), (150, 150));
    assert_eq!(server.get(&big).await.dims(), (300, 300));
    assert_eq!(origin.hits("/t/c.jpg"), 3, "one fetch of the new picture for both sizes");

    // `?source=` may name the URL's own image again, never another one.
    let auth = [("authorization", bearer.as_str())];
    let other = server.request(purge.clone(), &format!("/unsafe/{h}/t/c.jpg?source=example.com/x.jpg"), &auth).await;
    assert_eq!(other.status, 400, "{}", other.text());
    assert_eq!(x_cache(&server.get(&small).await), "HIT memory", "nothing dropped");
    let named =
        format!("/unsafe/{h}/t/c.jpg?source={}", format!("{h}/t/c.jpg").replace(':', "%3A").replace('/', "%2F"));
    assert_eq!(server.request(purge, &named, &auth).await.status, 200);
    assert_eq!(x_cache(&server.get(&small).await), "MISS");
}

/// With the result cache off, the originals cache still works, and a purge still drops the
/// original: the next render shows the picture as it is now at the origin.
#[tokio::test]
async fn a_purge_with_the_result_cache_off_drops_the_original() {
    let origin = Origin::start().await;
    origin.put("/t/off.jpg", photo(600, 400, image::ImageFormat::Jpeg));
    let cache = format!("  cache:\n    enabled: false\n    purge:\n      tokens: [\"{TOKEN}\"]\n");
    let server = Server::start_with(Settings::with_sources("", &cache)).await;
    let url = format!("/unsafe/fit-in/300x300/{}/t/off.jpg", origin.host());
    for _ in 0..2 {
        assert_eq!(server.get(&url).await.dims(), (300, 200));
    }
    assert_eq!(origin.hits("/t/off.jpg"), 1, "rendered twice from the cached original");
    origin.put("/t/off.jpg", photo(400, 600, image::ImageFormat::Jpeg));
    let purge = reqwest::Method::from_bytes(b"PURGE").unwrap();
    let r = server.request(purge, &url, &[("authorization", &format!("Bearer {TOKEN}"))]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.get(&url).await.dims(), (200, 300));
    assert_eq!(origin.hits("/t/off.jpg"), 2);
}
