//! The result cache: hits never touch the origin or the renderer; keys separate what differs.

use std::sync::Arc;

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_requests_are_served_from_the_cache() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    let path = format!("/unsafe/300x200/{o}/landscape.jpg");
    let first = server.get(&path).await;
    for _ in 0..5 {
        let again = server.get(&path).await;
        assert_eq!((again.status, &again.body), (200, &first.body));
        assert_eq!(again.header("etag"), first.header("etag"));
    }
    assert_eq!(origin.hits("/landscape.jpg"), 1, "one origin request for six responses");
    // The same image signed, or written with default segments, is the same cache entry.
    let signed_path = signed(&format!("300x200/center/middle/{o}/landscape.jpg"));
    assert_eq!(server.get(&signed_path).await.body, first.body);
    assert_eq!(origin.hits("/landscape.jpg"), 1);
    // A different output is a different entry (rendered from the cached original).
    assert_eq!(server.get(&format!("/unsafe/301x200/{o}/landscape.jpg")).await.dims(), (301, 200));
    assert_eq!(origin.hits("/landscape.jpg"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_render_once() {
    let origin = Origin::start().await;
    let server = Arc::new(Server::start().await);
    let path = format!("/unsafe/200x100/{}/delay/500/landscape.jpg", origin.host());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let server = server.clone();
            let path = path.clone();
            tokio::spawn(async move { server.get(&path).await })
        })
        .collect();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!((r.status, r.dims()), (200, (200, 100)));
    }
    assert_eq!(origin.hits("/delay/500/landscape.jpg"), 1, "the cache lock coalesced the misses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiated_formats_do_not_share_entries() {
    let origin = Origin::start().await;
    let settings = Settings { thumbora: "  image:\n    auto_webp: true\n".into(), ..Default::default() };
    let server = Server::start_with(settings).await;
    let path = format!("/unsafe/300x200/{}/landscape.jpg", origin.host());
    let webp = server.request(reqwest::Method::GET, &path, &[("Accept", "image/webp")]).await;
    let jpeg = server.request(reqwest::Method::GET, &path, &[("Accept", "image/jpeg")]).await;
    assert_eq!(webp.content_type(), "image/webp");
    assert_eq!(jpeg.content_type(), "image/jpeg");
    let webp2 = server.request(reqwest::Method::GET, &path, &[("Accept", "image/webp")]).await;
    assert_eq!(webp2.body, webp.body);
    assert_eq!(origin.hits("/landscape.jpg"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_size_of_one_image_is_fetched_once() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    for size in ["100x100", "200x100", "fit-in/50x50", "0x0", "10x10:200x200/50x0"] {
        assert_eq!(server.get(&format!("/unsafe/{size}/{o}/landscape.jpg")).await.status, 200, "{size}");
    }
    assert_eq!(origin.hits("/landscape.jpg"), 1, "the originals cache served every size");
    // Failed fetches are not cached.
    for _ in 0..2 {
        assert_eq!(server.get(&format!("/unsafe/100x100/{o}/status/500/a.jpg")).await.status, 502);
    }
    assert_eq!(origin.hits("/status/500/a.jpg"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_dies_after_warm_up() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    let warm = format!("/unsafe/100x100/{o}/landscape.jpg");
    let first = server.get(&warm).await;
    assert_eq!(first.status, 200);
    drop(origin);
    // Cached results keep serving, byte for byte; a new size of a fetched original renders from
    // the originals cache; only an image never fetched fails, with 502.
    let again = server.get(&warm).await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    let r = server.get(&format!("/unsafe/60x40/{o}/landscape.jpg")).await;
    assert_eq!((r.status, r.dims()), (200, (60, 40)));
    let r = server.get(&format!("/unsafe/60x40/{o}/portrait.jpg")).await;
    assert_eq!(r.status, 502, "{}", r.text());
}

/// A fresh hit in memory is answered before pingora-cache's lookup (the proxy's fast path); it
/// must say what the cache path says: the miss's headers, `Age`, `Accept-Ranges`, 304 for a
/// matching `If-None-Match`, no body for HEAD, and ranges (served by the cache path) still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_answers_what_the_cache_path_answers() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let path = format!("/unsafe/300x200/{}/landscape.jpg", origin.host());
    let miss = server.get(&path).await;
    assert_eq!((miss.status, miss.header("x-cache").as_deref()), (200, Some("MISS")));
    let hit = server.get(&path).await;
    assert_eq!((hit.status, hit.header("x-cache").as_deref()), (200, Some("HIT memory")));
    assert_eq!(hit.body, miss.body);
    for name in ["content-type", "cache-control", "expires", "etag", "accept-ranges", "vary"] {
        assert_eq!(hit.header(name), miss.header(name), "{name}");
    }
    assert_eq!(hit.header("content-length"), Some(miss.body.len().to_string()));
    assert_eq!(hit.header("age").as_deref(), Some("0"));
    assert!(hit.headers.keys().all(|name| !name.as_str().starts_with("x-thumbora-")), "{:?}", hit.headers);
    assert_eq!(hit.header("connection").as_deref(), Some("keep-alive"));

    let head = server.request(reqwest::Method::HEAD, &path, &[]).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), Some(miss.body.len().to_string()));
    assert_eq!(head.header("x-cache").as_deref(), Some("HIT memory"));

    let etag = miss.header("etag").expect("an ETag");
    let not_modified = server.request(reqwest::Method::GET, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    assert_eq!(not_modified.header("etag"), Some(etag.clone()));
    let other = server.request(reqwest::Method::GET, &path, &[("If-None-Match", "\"other\"")]).await;
    assert_eq!((other.status, &other.body), (200, &miss.body));

    let range = server.request(reqwest::Method::GET, &path, &[("Range", "bytes=0-99")]).await;
    assert_eq!((range.status, &range.body[..]), (206, &miss.body[..100]));
    assert_eq!(range.header("content-range"), Some(format!("bytes 0-99/{}", miss.body.len())));
    assert_eq!(origin.hits("/landscape.jpg"), 1, "every answer after the first from the cache");
}

/// thumbor's SEND_IF_MODIFIED_LAST_MODIFIED_HEADERS (`response.last_modified`): a result carries
/// when it was rendered, and a cached one is answered 304 to an `If-Modified-Since` not before
/// it (an older date gets the image). Off by default, as in thumbor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_modified_answers_if_modified_since_from_the_cache() {
    let origin = Origin::start().await;
    let o = origin.host();
    let path = format!("/unsafe/300x200/{o}/landscape.jpg");
    let plain = Server::start().await;
    let first = plain.get(&path).await;
    assert_eq!(first.header("last-modified"), None);
    let since = [("If-Modified-Since", "Wed, 01 Jan 2031 00:00:00 GMT")];
    assert_eq!(plain.request(reqwest::Method::GET, &path, &since).await.status, 200);

    let settings = Settings::with_sources("", "  response:\n    last_modified: true\n");
    let server = Server::start_with(settings).await;
    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let miss = server.get(&path).await;
    let modified = miss.header("last-modified").expect("Last-Modified");
    let at = httpdate::parse_http_date(&modified).unwrap();
    assert!(at >= before && at <= std::time::SystemTime::now(), "{modified}");
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let same = server.request(method.clone(), &path, &[("If-Modified-Since", &modified)]).await;
        assert_eq!((same.status, same.body.len()), (304, 0), "{method}");
        assert_eq!(same.header("last-modified").as_deref(), Some(modified.as_str()));
    }
    assert_eq!(server.request(reqwest::Method::GET, &path, &since).await.status, 304);
    let older = httpdate::fmt_http_date(at - std::time::Duration::from_secs(3600));
    let changed = server.request(reqwest::Method::GET, &path, &[("If-Modified-Since", &older)]).await;
    assert_eq!((changed.status, changed.body), (200, miss.body));
}
