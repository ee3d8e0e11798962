//! HTTP behaviour: thumbor's headers, HEAD, ETag and 304, automatic WebP with Vary.

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_head_and_conditional_requests() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let path = format!("/unsafe/300x200/{}/landscape.jpg", origin.host());
    let get = server.get(&path).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.header("cache-control").as_deref(), Some("max-age=86400,public"));
    assert!(get.header("expires").unwrap().ends_with("GMT"));
    assert_eq!(get.header("content-length").unwrap(), get.body.len().to_string());
    let etag = get.header("etag").expect("etag");

    let head = server.request(reqwest::Method::HEAD, &path, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("etag").as_deref(), Some(etag.as_str()));

    for inm in [etag.as_str(), "*"] {
        let r = server.request(reqwest::Method::GET, &path, &[("If-None-Match", inm)]).await;
        assert_eq!(r.status, 304, "If-None-Match: {inm}");
        assert!(r.body.is_empty());
    }
    let r = server.request(reqwest::Method::GET, &path, &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(r.status, 200);

    // A 304 also on a first (uncached) request.
    let fresh = format!("/unsafe/301x200/{}/landscape.jpg", origin.host());
    let etag2 = server.request(reqwest::Method::HEAD, &fresh, &[]).await.header("etag").unwrap();
    let other = Server::start().await;
    let r = other.request(reqwest::Method::GET, &fresh, &[("If-None-Match", &etag2)]).await;
    assert_eq!(r.status, 304);

    let health = server.get("/healthcheck").await;
    assert_eq!((health.status, health.text().as_str()), (200, "WORKING"));
    // As tornado answers it for thumbor: 304 to its own ETag (HEAD's is that of its empty body),
    // without a type or a body.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let etag = server.request(method.clone(), "/healthcheck", &[]).await.header("etag").unwrap();
        let again = server.request(method.clone(), "/healthcheck", &[("If-None-Match", &etag)]).await;
        assert_eq!((again.status, again.header("content-type"), again.body.len()), (304, None, 0), "{method}");
        assert_eq!(again.header("etag").as_deref(), Some(etag.as_str()));
        assert_eq!(again.header("content-length"), None);
    }
    let other = server.request(reqwest::Method::GET, "/healthcheck", &[("If-None-Match", "\"other\"")]).await;
    assert_eq!(other.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_webp_by_accept() {
    let origin = Origin::start().await;
    let settings = Settings { thumbora: "  image:\n    auto_webp: true\n".into(), ..Default::default() };
    let server = Server::start_with(settings).await;
    let path = format!("/unsafe/300x200/{}/landscape.jpg", origin.host());
    let chrome = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";
    let webp = server.request(reqwest::Method::GET, &path, &[("Accept", chrome)]).await;
    assert_eq!((webp.content_type().as_str(), webp.header("vary").as_deref()), ("image/webp", Some("Accept")));
    assert_eq!(webp.dims(), (300, 200));
    let old = server.request(reqwest::Method::GET, &path, &[("Accept", "image/jpeg,*/*")]).await;
    assert_eq!((old.content_type().as_str(), old.header("vary").as_deref()), ("image/jpeg", Some("Accept")));
    let refused = server.request(reqwest::Method::GET, &path, &[("Accept", "image/webp;q=0,*/*")]).await;
    assert_eq!(refused.content_type(), "image/jpeg");
    let forced = server.get(&format!("/unsafe/300x200/filters:format(png)/{}/landscape.jpg", origin.host())).await;
    assert_eq!((forced.content_type().as_str(), forced.header("vary")), ("image/png", None));
    let gif = server
        .request(reqwest::Method::GET, &format!("/unsafe/60x40/{}/animated.gif", origin.host()), &[("Accept", chrome)])
        .await;
    assert_eq!((gif.content_type().as_str(), gif.header("vary")), ("image/gif", None), "animations stay GIF");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_beyond_the_year_9999_fails_as_in_thumbor() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let o = origin.host();
    let r = server.get(&format!("/unsafe/30x20/filters:max_age(1000000000)/{o}/landscape.jpg")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=1000000000,public"));
    // 1e9 s after now: about 31.7 years on (thumbor writes the exact date, not a capped one).
    let expected = 1970
        + (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1_000_000_000)
            / 31_556_952;
    let expires = r.header("expires").unwrap();
    let year: u64 = expires.split_whitespace().nth(3).and_then(|y| y.parse().ok()).unwrap();
    assert!(year.abs_diff(expected) <= 1, "{expires}");
    for age in ["300000000000", "9223372036854775807", "99999999999999999999999"] {
        let r = server.get(&format!("/unsafe/30x20/filters:max_age({age})/{o}/landscape.jpg")).await;
        assert_eq!(r.status, 500, "max_age({age})");
    }
    assert_eq!(server.get("/healthcheck").await.status, 200, "the server lives");
}
