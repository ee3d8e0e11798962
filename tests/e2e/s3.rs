//! The S3 client against a real SeaweedFS with SigV4 checked: round trips, missing keys, listing,
//! batch deletes, refused signatures, size caps, and bounded failures when the server is frozen
//! or stopped. One server is shared (each test has its own bucket); the stop test has its own.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use thumbora::s3::{S3Client, S3Config, S3Error};

use super::seaweed::Seaweed;

static SHARED: OnceLock<Seaweed> = OnceLock::new();

/// The shared server, started by the first test that needs it.
fn shared() -> &'static Seaweed {
    SHARED.get_or_init(Seaweed::start)
}

/// Bytes 0 to 255 and a pseudo-random tail: nothing survives a text conversion by accident.
fn binary(len: usize) -> Bytes {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if i < 256 {
                i as u8
            } else {
                state as u8
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_returns_the_same_bytes_type_and_metadata() {
    let s3 = shared().bucket("roundtrip").await;
    let body = binary(300_000);
    s3.put("r/ab/abcdef/variant", body.clone(), "image/webp").await.unwrap();
    assert_eq!(s3.get("r/ab/abcdef/variant").await.unwrap().as_ref(), Some(&body));

    let meta = [("tb-v", "1"), ("tb-created", "1700000000"), ("tb-src", "https://example.com/a.jpg")];
    s3.put_with_metadata("with-meta", Bytes::from_static(b"\xff\xd8\xff"), "image/jpeg", &meta).await.unwrap();
    let object = s3.get_object("with-meta", 1 << 20).await.unwrap().expect("stored");
    assert_eq!(&object.body[..], b"\xff\xd8\xff");
    assert_eq!(object.content_type.as_deref(), Some("image/jpeg"));
    for (name, value) in meta {
        assert_eq!(object.meta(name), Some(value), "x-amz-meta-{name} in {:?}", object.metadata);
    }

    // An empty object, an overwrite, and keys needing percent-encoding.
    s3.put("empty", Bytes::new(), "application/octet-stream").await.unwrap();
    assert_eq!(s3.get("empty").await.unwrap(), Some(Bytes::new()));
    s3.put("empty", Bytes::from_static(b"now full"), "text/plain").await.unwrap();
    assert_eq!(s3.get("empty").await.unwrap(), Some(Bytes::from_static(b"now full")));
    let odd = "s/ü é/a+b%20c&d=e?f#g~h";
    s3.put(odd, Bytes::from_static(b"odd"), "text/plain").await.unwrap();
    assert_eq!(s3.get(odd).await.unwrap(), Some(Bytes::from_static(b"odd")));
    assert_eq!(s3.list("s/", None, 10).await.unwrap(), vec![odd.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_keys_are_none_and_deletes_are_idempotent() {
    let s3 = shared().bucket("missing").await;
    assert_eq!(s3.get("never/written").await.unwrap(), None);
    assert_eq!(s3.get_max("never/written", 10).await.unwrap(), None);
    s3.delete("never/written").await.unwrap();

    s3.put("doomed", Bytes::from_static(b"x"), "text/plain").await.unwrap();
    s3.delete("doomed").await.unwrap();
    assert_eq!(s3.get("doomed").await.unwrap(), None);
    s3.delete("doomed").await.unwrap();

    // A missing bucket is a misconfiguration, not a miss.
    let nowhere = S3Client::new(&shared().config("no-such-bucket", "")).unwrap();
    let err = nowhere.get("k").await.unwrap_err();
    assert!(matches!(&err, S3Error::Status { status: 404, code, .. } if code == "NoSuchBucket"), "{err}");
    // Keys a URL cannot carry never reach the server (`..` would name another object).
    assert!(matches!(s3.get("a/../doomed").await, Err(S3Error::BadKey(_))));
    assert!(matches!(s3.delete("").await, Err(S3Error::BadKey(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_by_prefix_after_a_key_up_to_a_maximum() {
    let seaweed = shared();
    seaweed.create_bucket("listing").await;
    let s3 = S3Client::new(&seaweed.config("listing", "tenant/")).unwrap();
    for rel in ["a/3", "a/1", "a/5", "a/2", "a/4", "ab/1", "b/1"] {
        s3.put(&s3.key(rel), Bytes::from(rel.as_bytes().to_vec()), "text/plain").await.unwrap();
    }
    let a = s3.key("a/");
    assert_eq!(a, "tenant/a/");
    let all: Vec<String> = (1..=5).map(|i| format!("tenant/a/{i}")).collect();
    assert_eq!(s3.list(&a, None, 100).await.unwrap(), all);
    assert_eq!(s3.list(&a, Some("tenant/a/2"), 100).await.unwrap(), all[2..]);
    assert_eq!(s3.list(&a, None, 2).await.unwrap(), all[..2]);
    assert_eq!(s3.list(&a, Some("tenant/a/5"), 100).await.unwrap(), Vec::<String>::new());
    assert_eq!(s3.list("tenant/", None, 100).await.unwrap().len(), 7);
    assert_eq!(s3.list("nothing/", None, 100).await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_prefix_removes_more_than_one_batch() {
    let s3 = shared().bucket("batches").await;
    let keys: Vec<String> = (0..1200).map(|i| format!("r/ab/src/{i:05}")).collect();
    futures::stream::iter(keys.iter().map(|key| s3.put(key, Bytes::from_static(b"v"), "image/jpeg")))
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    s3.put("r/ab/other/keep", Bytes::from_static(b"keep"), "image/jpeg").await.unwrap();
    // Listing follows the continuation token past the first 1000.
    assert_eq!(s3.list("r/ab/src/", None, 5000).await.unwrap(), keys);

    assert_eq!(s3.delete_prefix("r/ab/src/").await.unwrap(), 1200);
    assert_eq!(s3.list("r/ab/src/", None, 5000).await.unwrap(), Vec::<String>::new());
    assert_eq!(s3.get(&keys[1100]).await.unwrap(), None);
    assert_eq!(s3.get("r/ab/other/keep").await.unwrap(), Some(Bytes::from_static(b"keep")));
    assert_eq!(s3.delete_prefix("r/ab/src/").await.unwrap(), 0);
    assert!(matches!(s3.delete_prefix("").await, Err(S3Error::BadKey(_))), "never the whole bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused() {
    let seaweed = shared();
    let s3 = seaweed.bucket("signatures").await;
    s3.put("k", Bytes::from_static(b"v"), "text/plain").await.unwrap();

    let wrong_secret = S3Config { secret_key: Some("not-the-secret".into()), ..seaweed.config("signatures", "") };
    let client = S3Client::new(&wrong_secret).unwrap();
    let err = client.put("k", Bytes::from_static(b"w"), "text/plain").await.unwrap_err();
    assert!(matches!(&err, S3Error::Status { status: 403, code, .. } if code == "SignatureDoesNotMatch"), "{err}");
    // A refused read is an error, never a miss.
    assert!(matches!(client.get("k").await, Err(S3Error::Status { status: 403, .. })));
    assert!(client.list("", None, 10).await.is_err());
    assert!(client.delete("k").await.is_err());

    let unknown_key = S3Config { access_key: Some("nobody".into()), ..seaweed.config("signatures", "") };
    let err = S3Client::new(&unknown_key).unwrap().get("k").await.unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(s3.get("k").await.unwrap(), Some(Bytes::from_static(b"v")), "nothing was overwritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_max_refuses_objects_above_the_cap() {
    let s3 = shared().bucket("capped").await;
    let body = binary(10_000);
    s3.put("big", body.clone(), "image/png").await.unwrap();
    let err = s3.get_max("big", 9_999).await.unwrap_err();
    assert!(matches!(err, S3Error::TooLarge { max: 9_999, .. }), "{err}");
    assert_eq!(s3.get_max("big", 10_000).await.unwrap(), Some(body));
}

/// Every call of `s3` (on keys other than `k`), each checked to fail within `limit`; returns
/// the errors.
async fn every_call_fails_within(s3: &S3Client, limit: Duration) -> Vec<S3Error> {
    let mut errors = Vec::new();
    macro_rules! bounded {
        ($call:expr) => {{
            let started = Instant::now();
            let result = tokio::time::timeout(limit * 3, $call).await.expect("the call hung");
            let took = started.elapsed();
            let err = match result {
                Ok(answer) => panic!("{} succeeded: {answer:?}", stringify!($call)),
                Err(err) => err,
            };
            assert!(took < limit, "{} took {took:?}: {err}", stringify!($call));
            // Presigned URLs are credentials: never in messages.
            assert!(!format!("{err} {err:?}").contains("X-Amz-Signature"), "{err:?}");
            errors.push(err);
        }};
    }
    // Requests a frozen server took in may still run when it resumes: they touch other keys.
    bounded!(s3.get("other"));
    bounded!(s3.get_max("other", 10));
    bounded!(s3.put("other", Bytes::from_static(b"new"), "text/plain"));
    bounded!(s3.delete("other"));
    bounded!(s3.list("", None, 10));
    bounded!(s3.delete_prefix("other"));
    bounded!(s3.create_bucket());
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_or_stopped_server_errors_are_bounded_and_data_survives_a_restart() {
    let mut seaweed = Seaweed::start();
    seaweed.create_bucket("stopping").await;
    let cfg = S3Config { connect_timeout_ms: 500, timeout_ms: 1000, ..seaweed.config("stopping", "") };
    let s3 = S3Client::new(&cfg).unwrap();
    s3.put("k", Bytes::from_static(b"kept"), "text/plain").await.unwrap();

    // Frozen: connections are accepted and never answered; each call ends at timeout_ms.
    seaweed.pause();
    let errors = every_call_fails_within(&s3, Duration::from_secs(5)).await;
    seaweed.resume();
    assert!(errors.iter().all(S3Error::is_timeout), "{errors:?}");
    // Works again, once the server's parts have heard from each other (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let read = loop {
        match s3.get("k").await {
            Err(e) if Instant::now() < deadline => {
                eprintln!("after resume: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => break other,
        }
    };
    assert_eq!(read.unwrap(), Some(Bytes::from_static(b"kept")));

    // Stopped: connections are refused, or time out: the test holds the port meanwhile (without
    // accepting), since another test's server given the freed port would answer, and its 404
    // reads as a missing key.
    seaweed.stop();
    let hold = std::net::TcpListener::bind(("127.0.0.1", seaweed.s3_port)).ok();
    let errors = every_call_fails_within(&s3, Duration::from_secs(5)).await;
    assert!(errors.iter().all(|e| matches!(e, S3Error::Transport { .. } | S3Error::Timeout { .. })), "{errors:?}");
    drop(hold);

    seaweed.restart();
    assert_eq!(s3.get("k").await.unwrap(), Some(Bytes::from_static(b"kept")), "{}", seaweed.log_tail());
}
