//! The slow stage (`cargo test --test e2e -- --ignored`, run by .ci/run with a hard timeout):
//! memory under a burst of large misses, slow clients and silent origins, and a graceful upgrade
//! under load. Every loop is bounded; all traffic stays on 127.0.0.1.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::harness::*;

/// A 12 MP photo-like JPEG (gradients and noise, like a camera file: ~3 MB at q90).
fn twelve_megapixels() -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let mut state = 0x2545_F491u32;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 24) as i32 - 12;
        let c = |v: u32| (v as i32 + n).clamp(0, 255) as u8;
        image::Rgb([c(60 + 160 * x / w), c(90 + 120 * y / h), c(200 - 120 * x / w * y / h)])
    });
    let bitmap = thumbora::codec::Bitmap {
        width: w,
        height: h,
        channels: thumbora::codec::Channels::Rgb,
        pixels: img.into_raw(),
    };
    let options = thumbora::codec::encode::EncodeOptions::new(thumbora::codec::Format::Jpeg, 90);
    thumbora::codec::encode::encode(&[thumbora::codec::Frame { bitmap, delay_ms: 0 }], &options).unwrap()
}

/// T13: 64 concurrent distinct 12 MP misses: no errors, peak RSS within 512 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "slow stage"]
async fn sixty_four_concurrent_twelve_megapixel_misses() {
    let origin = Origin::start().await;
    origin.put("/big.jpg", twelve_megapixels());
    let server = Arc::new(Server::start().await);
    let host = origin.host();
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let server = server.clone();
            let path = format!("/unsafe/300x200/{host}/big.jpg%3Fv%3D{i}");
            tokio::spawn(async move { server.get(&path).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == 200 {
            assert_eq!(r.dims(), (300, 200));
        }
        statuses.push(r.status);
    }
    let peak_mib = server.peak_rss_kib() / 1024;
    eprintln!("64 x 12 MP: {:.1} s, peak RSS {peak_mib} MiB", started.elapsed().as_secs_f64());
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
    assert_eq!(origin.total_hits(), 64);
    assert!(peak_mib <= 512, "peak RSS {peak_mib} MiB");
}

/// T8: hundreds of slowloris connections and requests to a silent origin: every request is
/// answered within the timeouts, normal clients keep being served, descriptors come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "slow stage"]
async fn slow_clients_and_silent_origins() {
    let origin = Origin::start().await;
    let server = Arc::new(Server::start().await);
    let baseline_fds = server.open_fds();
    let host = origin.host();
    let stop = Arc::new(AtomicBool::new(false));

    // 300 clients that send a request head one byte every 500 ms and never finish it.
    let mut slowloris = Vec::new();
    for _ in 0..300 {
        let stop = stop.clone();
        let port = server.port;
        slowloris.push(tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return };
            let head = b"GET /unsafe/10x10/x.jpg HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            for byte in head.iter().cycle().take(40) {
                if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }

    // 100 renders whose origin never answers: each must end with 504 near the 2 s timeout.
    let silent: Vec<_> = (0..100)
        .map(|i| {
            let server = server.clone();
            let path = format!("/unsafe/100x100/{host}/silent/{i}.jpg");
            tokio::spawn(async move {
                let started = Instant::now();
                (server.get(&path).await.status, started.elapsed())
            })
        })
        .collect();

    // Meanwhile, normal requests keep working.
    for _ in 0..20 {
        let started = Instant::now();
        let r = server.get(&format!("/unsafe/100x75/{host}/landscape.jpg")).await;
        assert_eq!(r.status, 200);
        assert!(started.elapsed() < Duration::from_secs(2), "a normal request waited behind slow clients");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in silent {
        let (status, took) = task.await.unwrap();
        assert_eq!(status, 504);
        assert!(took < Duration::from_secs(6), "answered within the timeouts ({took:?})");
    }
    stop.store(true, Ordering::Relaxed);
    for task in slowloris {
        let _ = task.await;
    }
    // Closed connections give their descriptors back.
    let mut fds = server.open_fds();
    for _ in 0..50 {
        if fds <= baseline_fds + 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds = server.open_fds();
    }
    assert!(fds <= baseline_fds + 20, "descriptors: {baseline_fds} before, {fds} after");
    assert!(server.peak_rss_kib() / 1024 < 300, "RSS stayed small");
}

/// T14: a graceful upgrade under load drops no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "slow stage"]
async fn graceful_upgrade_under_load() {
    let origin = Origin::start().await;
    let settings = Settings {
        server: "grace_period_seconds: 2\ngraceful_shutdown_timeout_seconds: 2\n".into(),
        ..Default::default()
    };
    let mut old = Server::start_with(settings).await;
    let host = origin.host();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = format!("http://127.0.0.1:{}", old.port);
        let host = host.clone();
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 5_000 {
                i += 1;
                // Alternate cached hits and fresh renders.
                let path = if i % 2 == 0 {
                    format!("/unsafe/100x75/{host}/landscape.jpg")
                } else {
                    format!("/unsafe/{}x75/{host}/landscape.jpg", 100 + worker * 1000 + i)
                };
                let served = match client.get(format!("{url}{path}")).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(e) => {
                        eprintln!("request failed during the upgrade: {e:?}");
                        false
                    }
                };
                let counter = if served { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let new = old.start_upgrade();
    tokio::time::sleep(Duration::from_millis(800)).await;
    old.signal(libc::SIGQUIT);
    assert!(old.wait_exit(Duration::from_secs(15)), "the old process drained and exited");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("upgrade under load: {ok} ok, {failed} failed");
    assert!(ok > 50, "the load ran ({ok} requests)");
    assert_eq!(failed, 0);
    assert_eq!(new.get("/healthcheck").await.status, 200, "the new process serves");
}
