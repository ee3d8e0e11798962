//! HTTPS origins: a TLS origin started in the test with a certificate from a private CA made in
//! the test. Trusted through `sources.ca_file`, its images render; without it, or with a
//! certificate for another name, the fetch fails (502) and nothing is served.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

use super::harness::*;

/// A private CA (PEM) and a TLS origin on 127.0.0.1 serving `landscape.jpg` with a certificate
/// it signed for `names`. The task stops when the test's runtime does.
async fn tls_origin(names: &[&str]) -> (String, u16) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Thumbora test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let image = std::fs::read(fixture("landscape.jpg")).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, image) = (acceptor.clone(), image.clone());
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), acceptor.accept(stream)).await
                else {
                    return;
                };
                let mut request = vec![0u8; 4096];
                let _ = tls.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    image.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(&image).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (ca.pem(), port)
}

fn settings(ca_file: Option<&std::path::Path>) -> Settings {
    let ca = ca_file.map(|p| format!("    ca_file: {}\n", p.display())).unwrap_or_default();
    Settings::with_sources(&ca, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_origins_trusted_through_ca_file() {
    let (ca_pem, port) = tls_origin(&["127.0.0.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let trusting = Server::start_with(settings(Some(&ca_file))).await;
    for path in [
        format!("/unsafe/120x80/https://127.0.0.1:{port}/landscape.jpg"),
        format!("/unsafe/120x80/https%3A%2F%2F127.0.0.1%3A{port}%2Flandscape.jpg"),
    ] {
        let r = trusting.get(&path).await;
        assert_eq!((r.status, r.dims()), (200, (120, 80)), "{path}");
    }

    // The system's roots alone do not know the private CA.
    let plain = Server::start_with(settings(None)).await;
    let r = plain.get(&format!("/unsafe/120x80/https://127.0.0.1:{port}/landscape.jpg")).await;
    assert_eq!(r.status, 502, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let (ca_pem, port) = tls_origin(&["images.example.test"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let server = Server::start_with(settings(Some(&ca_file))).await;
    let r = server.get(&format!("/unsafe/120x80/https://127.0.0.1:{port}/landscape.jpg")).await;
    assert_eq!(r.status, 502, "{}", r.text());
}
