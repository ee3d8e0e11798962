//! Request security, checked in a fixed order before any I/O: unsafe/signature policy, then the
//! source allow-list; the address policy (SSRF) is enforced again at connect time by the loader.

pub mod signature;
pub mod ssrf;

use crate::config::{SecurityConfig, SourcesConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::url::ImageRequest;
use ssrf::{AddressPolicy, IpNet};

/// The unsafe/signature rules (thumbor's `check_image`).
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    keys: Vec<Vec<u8>>,
    allow_unsafe: bool,
}

impl UrlPolicy {
    pub fn new(cfg: &SecurityConfig) -> Self {
        UrlPolicy { keys: cfg.keys.iter().map(|k| k.as_bytes().to_vec()).collect(), allow_unsafe: cfg.allow_unsafe }
    }

    /// Accept or refuse `req`, parsed from `raw_path` (the path exactly as received).
    pub fn check(&self, req: &ImageRequest, raw_path: &str) -> Result<()> {
        let bad = |why: &str| Err(Error::new(ErrorKind::BadSignature, why.to_string()));
        match (&req.signature, req.unsafe_) {
            (None, false) | (Some(_), true) => bad("URL must have either unsafe/ or a signature"),
            (None, true) if !self.allow_unsafe => bad("unsafe URLs are disabled"),
            (None, true) => Ok(()),
            (Some(sig), false) => {
                let Some((raw_sig, payload)) = signature::split_signed_path(raw_path) else {
                    return bad("nothing after the signature");
                };
                if signature::sent_as_thumbor_finds_it(raw_sig, sig) && signature::verify(&self.keys, sig, payload) {
                    Ok(())
                } else {
                    bad("signature does not match")
                }
            }
        }
    }
}

/// Which origins may be fetched: thumbor's `ALLOWED_SOURCES` by host, plus the address policy.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    hosts: Vec<HostPattern>,
    addresses: AddressPolicy,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: the domain and every subdomain.
    Suffix(String),
    Net(IpNet),
}

impl SourcePolicy {
    pub fn new(cfg: &SourcesConfig) -> Self {
        let mut nets = Vec::new();
        let hosts = cfg
            .allowed
            .iter()
            .map(|p| {
                let p = p.trim().to_ascii_lowercase();
                let as_ip = p.parse::<std::net::SocketAddr>().map(|s| s.ip().to_string()).unwrap_or(p.clone());
                if let Ok(net) = as_ip.parse::<IpNet>() {
                    nets.push(net);
                    HostPattern::Net(net)
                } else if let Some(domain) = p.strip_prefix("*.") {
                    HostPattern::Suffix(domain.to_string())
                } else {
                    HostPattern::Exact(p)
                }
            })
            .collect();
        SourcePolicy { hosts, addresses: AddressPolicy::new(cfg.allow_private_networks, nets) }
    }

    /// A policy that allows everything (tests, and `allow_private_networks` with no list).
    pub fn addresses(&self) -> &AddressPolicy {
        &self.addresses
    }

    /// Whether `host` (as in the URL, without port) is on the allow-list; an empty list allows all.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = ssrf::parse_host_ip(host);
        self.hosts.iter().any(|p| match p {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(d) => host == d || host.ends_with(&format!(".{d}")),
            HostPattern::Net(net) => ip.is_some_and(|ip| net.contains(ip)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::parse;

    fn policy(keys: &[&str], allow_unsafe: bool) -> UrlPolicy {
        UrlPolicy::new(&SecurityConfig { keys: keys.iter().map(|k| k.to_string()).collect(), allow_unsafe })
    }

    fn check(p: &UrlPolicy, path: &str) -> Result<()> {
        p.check(&parse(path).unwrap(), path)
    }

    #[test]
    fn signature_rules() {
        let p = policy(&["my-security-key"], true);
        assert!(check(&p, "/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x200/my.server.com/some/path/to/image.jpg").is_ok());
        assert!(check(&p, "/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x201/my.server.com/some/path/to/image.jpg").is_err());
        assert!(check(&p, "/unsafe/300x200/my.server.com/some/path/to/image.jpg").is_ok());
        assert!(check(&p, "/300x200/my.server.com/some/path/to/image.jpg").is_err());
        let strict = policy(&["my-security-key"], false);
        assert_eq!(check(&strict, "/unsafe/300x200/h/i.jpg").unwrap_err().kind(), ErrorKind::BadSignature);
    }

    #[test]
    fn signature_cannot_be_replayed_for_another_host() {
        // The signature of one URL placed in front of a path that repeats it elsewhere.
        let p = policy(&["my-security-key"], true);
        let sig = signature::sign(b"my-security-key", "300x200/a.com/i.jpg");
        let evil = format!("/{sig}/300x200/{sig}/evil.com/i.jpg");
        assert!(check(&p, &evil).is_err());
    }

    #[test]
    fn allow_list() {
        let cfg = SourcesConfig {
            allowed: vec!["img.example.com".into(), "*.cdn.net".into(), "127.0.0.1".into(), "10.1.0.0/16".into()],
            ..SourcesConfig::default()
        };
        let s = SourcePolicy::new(&cfg);
        assert!(s.host_allowed("img.example.com"));
        assert!(s.host_allowed("IMG.example.com."));
        assert!(!s.host_allowed("evil.example.com"));
        assert!(s.host_allowed("a.b.cdn.net"));
        assert!(s.host_allowed("cdn.net"));
        assert!(!s.host_allowed("notcdn.net"));
        assert!(s.host_allowed("127.0.0.1"));
        assert!(s.host_allowed("10.1.2.3"));
        assert!(!s.host_allowed("10.2.0.1"));
        // Listed addresses are exempt from the private-network refusal.
        assert!(s.addresses().check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(s.addresses().check("127.0.0.2".parse().unwrap()).is_err());
        assert!(SourcePolicy::new(&SourcesConfig::default()).host_allowed("anything.com"));
    }
}
