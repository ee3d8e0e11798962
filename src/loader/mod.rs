//! Loaders fetch a source image by its URL: HTTP(S) origins behind the source policy, and files
//! under a root that cannot be escaped. `Loaders` picks one as thumbor's `LOADER` setting would.

pub mod file;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{LoaderKind, SourcesConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::security::SourcePolicy;

/// The configured loaders, behind a bounded cache of originals.
pub struct Loaders {
    kind: LoaderKind,
    http: http::HttpLoader,
    file: Option<file::FileLoader>,
    /// Originals by image URL; `None` when `sources.cache_bytes` is 0.
    originals: Option<moka::future::Cache<String, Bytes>>,
}

impl Loaders {
    pub fn new(cfg: &SourcesConfig, policy: SourcePolicy) -> Result<Self> {
        let file = match (&cfg.file_root, cfg.loader) {
            (Some(root), LoaderKind::File | LoaderKind::FileThenHttp) => {
                Some(file::FileLoader::new(root.clone(), cfg.max_bytes))
            }
            _ => None,
        };
        let originals = (cfg.cache_bytes > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(cfg.cache_bytes)
                .weigher(|key: &String, value: &Bytes| u32::try_from(key.len() + value.len()).unwrap_or(u32::MAX))
                .time_to_live(Duration::from_secs(cfg.cache_ttl_seconds.max(1)))
                .build()
        });
        Ok(Loaders { kind: cfg.loader, http: http::HttpLoader::new(cfg, policy)?, file, originals })
    }

    /// Load the image URL of a request (percent-decoded once, as the URL parser gives it),
    /// from the originals cache when it is there. Concurrent loads of one URL share one fetch;
    /// failures are not cached.
    pub async fn load(&self, image: &str) -> Result<Bytes> {
        let Some(cache) = &self.originals else { return self.fetch(image).await };
        cache
            .try_get_with(image.to_string(), self.fetch(image))
            .await
            .map_err(|e: Arc<Error>| Error::new(e.kind(), e.context().to_string()))
    }

    /// Load without the cache.
    async fn fetch(&self, image: &str) -> Result<Bytes> {
        let explicit_http = has_http_scheme(image);
        match (self.kind, &self.file) {
            (LoaderKind::File, Some(file)) => file.load(image).await,
            (LoaderKind::FileThenHttp, Some(file)) if !explicit_http => match file.load(image).await {
                Err(e) if e.kind() == ErrorKind::SourceNotFound => self.http.load(image).await,
                other => other,
            },
            _ => self.http.load(image).await,
        }
    }

    /// Check an image URL against the source policy without fetching (for early refusal).
    pub fn precheck(&self, image: &str) -> Result<()> {
        match self.kind {
            LoaderKind::File => Ok(()),
            // A file may exist under that name: only explicit URLs can be judged up front.
            LoaderKind::FileThenHttp if !has_http_scheme(image) => Ok(()),
            _ => self.http.precheck(image).map(drop),
        }
    }
}

/// Whether thumbor treats the image URL as carrying its scheme: it tests `startswith("http")`,
/// case-sensitively (so `HTTP://h/i` becomes `http://HTTP://h/i`, and `httpbin.org/i` is left
/// without one and refused); Thumbora keeps that rule so the same URLs reach the same origins.
pub fn has_http_scheme(image: &str) -> bool {
    image.starts_with("http")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert!(has_http_scheme("http://a/b"));
        assert!(!has_http_scheme("HTTPS://a/b"));
        assert!(has_http_scheme("httpbin.org/b"));
        assert!(!has_http_scheme("a"));
    }
}
