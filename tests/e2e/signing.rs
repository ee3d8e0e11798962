//! Signed URLs as thumbor and libthumbor sign them, key rotation, and the unsafe switch.

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_and_tampered_urls() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let payload = format!("300x200/{}/landscape.jpg", origin.host());
    let good = signed(&payload);
    let r = server.get(&good).await;
    assert_eq!((r.status, r.dims()), (200, (300, 200)));

    let sig = thumbora::security::signature::sign(KEY.as_bytes(), &payload);
    let mut bad = vec![
        format!("/{}/{payload}", sig.trim_end_matches('=')),
        format!("/{}/{payload}", thumbora::security::signature::sign(b"wrong-key", &payload)),
        format!("/{payload}"),
        format!("/unsafe/{sig}/{payload}"),
        format!("/{sig}/{}", payload.replace("300x200", "300x201")),
    ];
    let standard_alphabet = sig.replace('-', "+").replace('_', "/");
    if standard_alphabet != sig {
        bad.push(format!("/{standard_alphabet}/{payload}"));
    }
    for i in 0..sig.len() - 1 {
        let mut chars: Vec<char> = sig.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        bad.push(format!("/{}/{payload}", chars.into_iter().collect::<String>()));
    }
    let before = origin.total_hits();
    for path in &bad {
        let r = server.get(path).await;
        assert!(matches!(r.status, 400 | 504), "{path}: {}", r.status);
    }
    // `/unsafe/<sig>/...` makes the signature part of the image host (thumbor 504); the other
    // refusals never reach the origin.
    assert_eq!(origin.total_hits(), before, "refused requests never reach the origin");
    assert_eq!(server.get(&good.replacen('=', "%3D", 1)).await.status, 200, "encoded padding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_and_unsafe_switch() {
    let origin = Origin::start().await;
    let settings = Settings {
        thumbora: "  security:\n    keys: [\"new-key\", \"my-security-key\"]\n    allow_unsafe: false\n".into(),
        ..Default::default()
    };
    let server = Server::start_with(settings).await;
    let payload = format!("100x100/{}/landscape.jpg", origin.host());
    assert_eq!(server.get(&signed(&payload)).await.status, 200, "old key still verifies");
    let new = format!("/{}/{payload}", thumbora::security::signature::sign(b"new-key", &payload));
    assert_eq!(server.get(&new).await.status, 200, "new key verifies");
    assert_eq!(server.get(&format!("/unsafe/{payload}")).await.status, 400, "unsafe disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_vector_payload_is_the_raw_path() {
    // The signature covers the path exactly as sent, percent-encoding included.
    let origin = Origin::start().await;
    let server = Server::start().await;
    let payload = format!("100x100/http%3A%2F%2F{}%2Flandscape.jpg", origin.host().replace(':', "%3A"));
    assert_eq!(server.get(&signed(&payload)).await.status, 200);
    let decoded_sig =
        thumbora::security::signature::sign(KEY.as_bytes(), &format!("100x100/http://{}/landscape.jpg", origin.host()));
    assert_eq!(server.get(&format!("/{decoded_sig}/{payload}")).await.status, 400);
}
