//! Revalidation: an expired result is checked against the origin's validators (a conditional
//! fetch of its source) and, when the source has not changed, served again with a fresh max-age
//! and no render; when it has, rendered again.

use std::time::Duration;

use super::harness::*;
use super::metrics::scrape;

/// Renders the server has decoded, from its metrics.
async fn decodes(server: &Server, metrics_port: u16) -> f64 {
    let series = r#"thumbora_render_stage_duration_seconds_count{stage="decode"}"#;
    scrape(server, metrics_port).await.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_result_whose_source_did_not_change_is_revalidated_not_rendered() {
    let origin = Origin::start().await;
    origin.put("/gen/reval.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let metrics_port = free_port();
    let rest = format!("  response:\n    max_age: 1\n  metrics:\n    listen: \"127.0.0.1:{metrics_port}\"\n");
    let server = Server::start_with(Settings::with_sources("    cache_bytes: 0\n", &rest)).await;
    let path = format!("/unsafe/200x150/{}/gen/reval.jpg", origin.host());

    let first = server.get(&path).await;
    assert_eq!((first.status, first.dims()), (200, (200, 150)));
    assert_eq!(first.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(decodes(&server, metrics_port).await, 1.0);
    for internal in ["x-thumbora-source-etag", "x-thumbora-source-last-modified"] {
        assert_eq!(first.header(internal), None, "{internal} never reaches the client");
    }

    // Expired: the origin is asked whether the source changed (it did not: 304).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = server.get(&path).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-cache").as_deref(), Some("REVALIDATED"));
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(second.header("cache-control").as_deref(), Some("max-age=1,public"));
    assert_eq!(second.header("x-thumbora-source-etag"), None);
    assert_eq!((origin.hits("/gen/reval.jpg"), origin.not_modified()), (2, 1), "one fetch, one conditional fetch");
    assert_eq!(decodes(&server, metrics_port).await, 1.0, "no second render");

    // The refreshed result is fresh again: a hit, and a client's If-None-Match gets a 304.
    let hit = server.get(&path).await;
    assert_eq!((hit.status, hit.header("x-cache").as_deref()), (200, Some("HIT memory")));
    assert_eq!(hit.body, first.body);
    let etag = first.header("etag").expect("etag");
    let conditional = server.request(reqwest::Method::GET, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(conditional.status, 304);
    assert!(conditional.body.is_empty());
    assert_eq!(conditional.header("x-thumbora-source-etag"), None);
    let head = server.request(reqwest::Method::HEAD, &path, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(first.body.len().to_string()));
    assert_eq!(origin.hits("/gen/reval.jpg"), 2);

    // A client's If-None-Match on an expired result: revalidated, and answered 304.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let conditional = server.request(reqwest::Method::GET, &path, &[("If-None-Match", &etag)]).await;
    assert_eq!(conditional.status, 304);
    assert_eq!(conditional.header("x-cache").as_deref(), Some("REVALIDATED"));
    assert_eq!(conditional.header("x-thumbora-source-etag"), None);
    assert_eq!((origin.hits("/gen/reval.jpg"), origin.not_modified()), (3, 2));
    assert_eq!(decodes(&server, metrics_port).await, 1.0);

    // The source changes at the origin: the expired result is rendered again from the new bytes.
    origin.put("/gen/reval.jpg", photo(300, 400, image::ImageFormat::Jpeg));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let changed = server.get(&path).await;
    assert_eq!((changed.status, changed.dims()), (200, (200, 150)));
    assert_eq!(changed.header("x-cache").as_deref(), Some("EXPIRED"));
    assert_ne!(changed.body, first.body);
    assert_ne!(changed.header("etag"), first.header("etag"));
    assert_eq!((origin.hits("/gen/reval.jpg"), origin.not_modified()), (4, 2));
    assert_eq!(decodes(&server, metrics_port).await, 2.0);

    // And the new result is the one kept: a hit with the new body.
    let hit = server.get(&path).await;
    assert_eq!((hit.header("x-cache").as_deref(), &hit.body), (Some("HIT memory"), &changed.body));
    let lookups = scrape(&server, metrics_port).await;
    assert_eq!(lookups.get(r#"thumbora_cache_lookups_total{outcome="revalidated"}"#), Some(&2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_send_the_internal_revalidation_headers() {
    let origin = Origin::start().await;
    origin.put("/gen/forged.jpg", photo(400, 300, image::ImageFormat::Jpeg));
    let settings = Settings::with_sources("    cache_bytes: 0\n", "  response:\n    max_age: 60\n");
    let server = Server::start_with(settings).await;
    let o = origin.host();
    // Learn the origin's ETag as the origin gives it.
    let url = format!("http://{o}/gen/forged.jpg");
    let origin_etag = server.client.get(&url).send().await.unwrap().headers()["etag"].to_str().unwrap().to_string();
    let path = format!("/unsafe/200x150/{o}/gen/forged.jpg");
    let r = server.request(reqwest::Method::GET, &path, &[("x-thumbora-if-none-match", &origin_etag)]).await;
    assert_eq!((r.status, r.dims()), (200, (200, 150)), "a miss renders, whatever the client sends");
    assert_eq!(origin.not_modified(), 0);
}
