//! SSRF and file-loader traversal, end to end: refused requests never reach the target.

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_origins_are_refused_by_default() {
    let origin = Origin::start().await;
    let strict = Settings { thumbora: "  sources:\n    loader: http\n".into(), ..Default::default() };
    let server = Server::start_with(strict).await;
    let o = origin.host();
    let port = origin.addr.port();
    for path in [
        format!("/unsafe/100x100/{o}/landscape.jpg"),
        format!("/unsafe/100x100/http://localhost:{port}/landscape.jpg"),
        format!("/unsafe/100x100/http://2130706433:{port}/landscape.jpg"),
        format!("/unsafe/100x100/http://0x7f.1:{port}/landscape.jpg"),
        format!("/unsafe/100x100/http://[::ffff:127.0.0.1]:{port}/landscape.jpg"),
        "/unsafe/100x100/169.254.169.254/latest/meta-data/x.jpg".to_string(),
        format!("/unsafe/100x100/0.0.0.0:{port}/landscape.jpg"),
    ] {
        // thumbor's URL quoting escapes `[` and `]`, so a bracketed IPv6 host never parses:
        // that one fails as unresolvable (504); the others are refused outright (400).
        let status = server.get(&path).await.status;
        assert!(status == 400 || (status == 504 && path.contains('[')), "{path}: {status}");
    }
    assert_eq!(origin.total_hits(), 0, "the private origin saw no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_into_private_ranges_are_refused() {
    let origin = Origin::start().await;
    // A second origin on another loopback address stands for the internal target.
    let target = tokio::net::TcpListener::bind("127.0.0.2:0").await;
    let Ok(target) = target else { return }; // 127.0.0.2 unavailable: nothing to test here
    let target_addr = target.local_addr().unwrap();
    let settings = Settings {
        thumbora: "  sources:\n    loader: http\n    allowed: [\"127.0.0.1\"]\n".into(),
        ..Default::default()
    };
    let server = Server::start_with(settings).await;
    let o = origin.host();
    let to = format!("http://{target_addr}/secret.jpg").replace(':', "%253A").replace('/', "%252F");
    let r = server.get(&format!("/unsafe/100x100/{o}/redirect-to/{to}")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(origin.hits(&format!("/redirect-to/{}", to.replace("%25", "%"))), 1);
    // Nothing connected to the internal target.
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(200), target.accept()).await;
    assert!(accepted.is_err(), "the internal target saw a connection");
    // The listed origin itself is allowed.
    assert_eq!(server.get(&format!("/unsafe/100x100/{o}/landscape.jpg")).await.status, 200);
    assert_eq!(server.get("/unsafe/100x100/example.com/landscape.jpg").await.status, 400, "not listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_loader_stays_in_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(fixture("landscape.jpg"), root.join("a.jpg")).unwrap();
    std::fs::copy(fixture("landscape.jpg"), dir.path().join("secret.jpg")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.jpg"), root.join("link.jpg")).unwrap();
    let settings = Settings {
        thumbora: format!("  sources:\n    loader: file\n    file_root: {}\n", root.display()),
        ..Default::default()
    };
    let server = Server::start_with(settings).await;
    assert_eq!(server.get("/unsafe/100x100/a.jpg").await.status, 200);
    for evil in [
        "../secret.jpg",
        "%2e%2e/secret.jpg",
        "%2e%2e%2fsecret.jpg",
        "%252e%252e/secret.jpg",
        "link.jpg",
        "/etc/passwd",
        "a.jpg%00.png",
        "..%2f..%2fetc%2fpasswd",
    ] {
        let r = server.get(&format!("/unsafe/100x100/{evil}")).await;
        assert_eq!(r.status, 404, "{evil}");
    }
}
