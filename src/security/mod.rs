//! Request security, checked in a fixed order before any I/O: unsafe/signature policy, then the
//! source allow-list; the address policy (SSRF) is enforced again at connect time by the loader.

pub mod signature;
pub mod ssrf;

use crate::config::{SecurityConfig, SourcesConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::url::ImageRequest;
use ipnet::IpNet;
use ssrf::AddressPolicy;

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

/// One `sources.allowed` entry: which hosts, and which port (any when none is written).
#[derive(Debug, Clone)]
struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Debug, Clone)]
enum HostMatch {
    Exact(String),
    /// `*.example.com`: the domain and every subdomain.
    Suffix(String),
    Net(IpNet),
}

/// Split `host:port` (`[v6]:port` for IPv6) into the host and its port; an entry without a port,
/// a bare IPv6 address or a CIDR range gives `None`.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(v6) = entry.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

impl SourcePolicy {
    pub fn new(cfg: &SourcesConfig) -> Self {
        let mut nets = Vec::new();
        let hosts = cfg
            .allowed
            .iter()
            .map(|p| {
                let p = p.trim().to_ascii_lowercase();
                let (host, port) = split_port(&p);
                let host = if let Ok(net) = ssrf::parse_net(host) {
                    nets.push(net);
                    HostMatch::Net(net)
                } else if let Some(domain) = host.strip_prefix("*.") {
                    HostMatch::Suffix(domain.to_string())
                } else {
                    HostMatch::Exact(host.to_string())
                };
                HostPattern { host, port }
            })
            .collect();
        SourcePolicy { hosts, addresses: AddressPolicy::new(cfg.allow_private_networks, nets) }
    }

    /// A policy that allows everything (tests, and `allow_private_networks` with no list).
    pub fn addresses(&self) -> &AddressPolicy {
        &self.addresses
    }

    /// Whether `host` (as in the URL, without port) on `port` (the URL's, or its scheme's
    /// default) is on the allow-list; an empty list allows all. An entry with a port allows that
    /// port only; `None` (a URL no client can reach anyway) is not checked against ports.
    pub fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = ssrf::parse_host_ip(host);
        self.hosts.iter().any(|p| {
            let host_matches = match &p.host {
                HostMatch::Exact(h) => h == host,
                HostMatch::Suffix(d) => host == d || host.ends_with(&format!(".{d}")),
                HostMatch::Net(net) => ip.is_some_and(|ip| net.contains(&ip)),
            };
            host_matches && (p.port.is_none() || port.is_none() || p.port == port)
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
        let allowed = |host: &str| s.host_allowed(host, Some(80));
        assert!(allowed("img.example.com"));
        assert!(allowed("IMG.example.com."));
        assert!(!allowed("evil.example.com"));
        assert!(allowed("a.b.cdn.net"));
        assert!(allowed("cdn.net"));
        assert!(!allowed("notcdn.net"));
        assert!(allowed("127.0.0.1"));
        assert!(allowed("10.1.2.3"));
        assert!(!allowed("10.2.0.1"));
        // Listed addresses are exempt from the private-network refusal.
        assert!(s.addresses().check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(s.addresses().check("127.0.0.2".parse().unwrap()).is_err());
        assert!(SourcePolicy::new(&SourcesConfig::default()).host_allowed("anything.com", Some(80)));
    }

    #[test]
    fn allow_list_entries_with_a_port_allow_that_port_only() {
        let cfg = SourcesConfig {
            allowed: vec!["127.0.0.1:8901".into(), "img.example.com:8080".into(), "[::1]:9000".into(), "::2".into()],
            ..SourcesConfig::default()
        };
        let s = SourcePolicy::new(&cfg);
        assert!(s.host_allowed("127.0.0.1", Some(8901)));
        assert!(!s.host_allowed("127.0.0.1", Some(8888)));
        assert!(s.host_allowed("img.example.com", Some(8080)));
        assert!(!s.host_allowed("img.example.com", Some(80)));
        assert!(s.host_allowed("[::1]", Some(9000)));
        assert!(!s.host_allowed("::1", Some(9001)));
        assert!(s.host_allowed("::2", Some(1)), "a bare IPv6 address has no port");
        // The listed address is exempt from the private-network refusal (the port is checked
        // by the allow-list).
        assert!(s.addresses().check("127.0.0.1".parse().unwrap()).is_ok());
    }
}
