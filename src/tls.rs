//! TLS listeners (`thumbora.tls[]`): the certificate chain and key loaded and checked together
//! (rustls, pure Rust), and the Pingora listener settings built on them (ALPN h2 and http/1.1).
//!
//! The files are read once per process, when the server is built: a renewed certificate is picked
//! up by the graceful upgrade (`-u`, `systemctl reload`), whose new process reads them again. They
//! are loaded here rather than by Pingora's `TlsSettings::build`, which panics on a bad file in
//! the listener's thread after the fork; here a bad file is a configuration error that names the
//! key and the path, found by `-t` and before `-d` forks.

use std::path::Path;
use std::sync::Arc;

use pingora_core::listeners::tls::TlsSettings;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};

use crate::config::{ConfigError, TlsListener};

/// The certificate chain and key of `listener` (whose key in the YAML is `key`, e.g.
/// `thumbora.tls[0]`), parsed, and the key checked to match the leaf certificate.
pub fn certified_key(key: &str, listener: &TlsListener) -> Result<Arc<CertifiedKey>, ConfigError> {
    let chain = certificate_chain(&format!("{key}.cert_file"), &listener.cert_file)?;
    let private = private_key(&format!("{key}.key_file"), &listener.key_file)?;
    let provider =
        CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    CertifiedKey::from_der(chain, private, &provider).map(Arc::new).map_err(|e| {
        let what = format!("does not go with the certificate in {} ({e})", listener.cert_file.display());
        problem(&format!("{key}.key_file"), &listener.key_file, what)
    })
}

/// Pingora's settings for `listener`: its certificate (loaded by [`certified_key`]) and, unless
/// `http2: false`, ALPN offering h2 before http/1.1.
pub fn listener_settings(key: &str, listener: &TlsListener) -> Result<TlsSettings, ConfigError> {
    let certified = certified_key(key, listener)?;
    // The paths are only for Pingora's messages: with a resolver set, `build` does not read them.
    let mut settings =
        TlsSettings::intermediate(&listener.cert_file.to_string_lossy(), &listener.key_file.to_string_lossy())
            .map_err(|e| ConfigError::new(key.to_string(), format!("TLS settings: {e}")))?;
    settings.set_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    if listener.http2 {
        settings.enable_h2();
    }
    Ok(settings)
}

fn problem(key: &str, path: &Path, what: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(key.to_string(), format!("{}: {what}", path.display()))
}

/// Every certificate of a PEM file (at least one).
pub fn certificate_chain(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| problem(key, path, format!("cannot be read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(key, path, format!("not a PEM certificate file: {e:?}")))?;
    if chain.is_empty() {
        return Err(problem(key, path, "holds no PEM certificate"));
    }
    Ok(chain)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| problem(key, path, format!("cannot be read: {e}")))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| problem(key, path, format!("holds no PEM private key ({e:?})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(dir: &Path, cert: &str, key: &str) -> TlsListener {
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        TlsListener {
            listen: "127.0.0.1:0".into(),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            http2: true,
        }
    }

    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn loads_a_matching_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let loaded = certified_key("thumbora.tls[0]", &listener(dir.path(), &cert, &key)).unwrap();
        assert_eq!(loaded.cert.len(), 1);
        assert!(listener_settings("thumbora.tls[0]", &listener(dir.path(), &cert, &key)).is_ok());
    }

    #[test]
    fn each_bad_file_names_its_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let (_, other_key) = self_signed();
        let cases = [
            ("not pem", key.as_str(), "thumbora.tls[0].cert_file", "no PEM certificate"),
            (cert.as_str(), "not pem", "thumbora.tls[0].key_file", "no PEM private key"),
            (cert.as_str(), other_key.as_str(), "thumbora.tls[0].key_file", "does not go with"),
        ];
        for (cert_pem, key_pem, want_key, want) in cases {
            let err = certified_key("thumbora.tls[0]", &listener(dir.path(), cert_pem, key_pem)).unwrap_err();
            assert_eq!(err.key, want_key, "{err}");
            assert!(err.message.contains(want), "{err}");
            assert!(err.message.contains(dir.path().to_str().unwrap()), "{err}");
        }
        let mut missing = listener(dir.path(), &cert, &key);
        missing.cert_file = dir.path().join("nope.pem");
        let err = certified_key("thumbora.tls[0]", &missing).unwrap_err();
        assert!(err.key.ends_with("cert_file") && err.message.contains("nope.pem"), "{err}");
    }
}
