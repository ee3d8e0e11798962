//! The rest of the site: requests that are not image requests are reverse-proxied to app servers
//! (in-process HTTP/1.1 apps that echo what they received), round robin, past dead ones.

use std::time::Duration;

use super::app::App;
use super::harness::*;

fn site_settings(upstreams: &[String], routing: &str) -> Settings {
    let list = upstreams.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ");
    Settings {
        thumbora: format!("  site:\n    upstreams: [{list}]\n{routing}    health_check_seconds: 1\n"),
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_prefix_separates_images_from_the_app() {
    let origin = Origin::start().await;
    let app = App::start("one").await;
    let server = Server::start_with(site_settings(&[app.upstream()], "    image_prefix: /img\n")).await;

    // Images under the prefix, unsafe and signed (the signature covers the path after /img).
    let image = format!("/img/unsafe/120x80/{}/landscape.jpg", origin.host());
    let r = server.get(&image).await;
    assert_eq!((r.status, r.content_type().as_str(), r.dims()), (200, "image/jpeg", (120, 80)));
    let r = server.get(&format!("/img{}", signed(&format!("60x40/{}/landscape.jpg", origin.host())))).await;
    assert_eq!((r.status, r.dims()), (200, (60, 40)));
    assert_eq!(app.hits(), 0, "image requests never reach the app");

    // Everything else goes to the app: method, target, Host and body unchanged, forwarding added.
    let r = server.request(reqwest::Method::GET, "/about?x=1&y=%20", &[("Host", "www.example.test")]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.starts_with("app one\nGET /about?x=1&y=%20 HTTP/1.1\n"), "{text}");
    assert!(text.contains("host=www.example.test\n"), "{text}");
    assert!(text.contains("xff=127.0.0.1\nreal-ip=127.0.0.1\nproto=http\n"), "{text}");
    assert_eq!(r.header("x-app").as_deref(), Some("one"));
    assert_eq!(r.header("cache-control"), None, "the app's headers, not thumbor's");

    let posted = server.client.post(server.url("/form")).body("name=thumbora").send().await.unwrap();
    assert_eq!(posted.status(), 200);
    let text = posted.text().await.unwrap();
    assert!(text.contains("POST /form HTTP/1.1") && text.contains("body=name=thumbora"), "{text}");

    // The app's statuses pass through; a thumbor URL without the prefix is the app's path.
    assert_eq!(server.get("/missing").await.status, 404);
    let before = app.hits();
    let r = server.get(&format!("/unsafe/120x80/{}/landscape.jpg", origin.host())).await;
    assert!(r.text().starts_with("app one\n"));
    assert_eq!(app.hits(), before + 1);

    // The healthcheck stays Thumbora's.
    let r = server.get("/healthcheck").await;
    assert_eq!((r.status, r.text().as_str()), (200, "WORKING"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_hosts_route_by_host_name() {
    let origin = Origin::start().await;
    let app = App::start("one").await;
    let server =
        Server::start_with(site_settings(&[app.upstream()], "    image_hosts: [\"img.example.test\"]\n")).await;
    let path = format!("/unsafe/50x50/{}/landscape.jpg", origin.host());
    let r = server.request(reqwest::Method::GET, &path, &[("Host", "img.example.test:8888")]).await;
    assert_eq!((r.status, r.dims()), (200, (50, 50)));
    let r = server.request(reqwest::Method::GET, &path, &[("Host", "www.example.test")]).await;
    assert!(r.text().starts_with("app one\n"), "{}", r.text());
    assert_eq!(app.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_servers_take_turns_and_a_dead_one_is_skipped() {
    let one = App::start("one").await;
    let two = App::start("two").await;
    // A port nothing listens on.
    let dead = format!("127.0.0.1:{}", free_port());
    let server =
        Server::start_with(site_settings(&[one.upstream(), two.upstream(), dead], "    image_prefix: /img\n")).await;
    for i in 0..12 {
        let r = server.get(&format!("/page/{i}")).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    assert_eq!(one.hits() + two.hits(), 12);
    assert!(one.hits() >= 3 && two.hits() >= 3, "round robin: {} and {}", one.hits(), two.hits());

    // With every app server gone: 502, quickly, and images still work.
    drop(one);
    drop(two);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = server.get("/page").await;
    assert_eq!(r.status, 502);
    assert_eq!(server.get("/healthcheck").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_app_servers_paths_outside_the_prefix_are_404() {
    let origin = Origin::start().await;
    let server =
        Server::start_with(Settings { thumbora: "  site:\n    image_prefix: /img\n".into(), ..Settings::default() })
            .await;
    assert_eq!(server.get(&format!("/unsafe/50x50/{}/landscape.jpg", origin.host())).await.status, 404);
    let r = server.get(&format!("/img/unsafe/50x50/{}/landscape.jpg", origin.host())).await;
    assert_eq!((r.status, r.dims()), (200, (50, 50)));
}
