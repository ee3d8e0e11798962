//! Loaders fetch a source image by its URL: HTTP(S) origins behind the source policy, and files
//! under a root that cannot be escaped. `Loaders` picks one as thumbor's `LOADER` setting would,
//! keeps fetched originals in a bounded cache, shares one fetch among the requests that want the
//! same URL (and stops it when the last of them goes away), and holds every fetched byte to
//! `sources.fetch_memory_bytes` until no request uses it.

pub mod file;
pub mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};

use crate::config::{LoaderKind, SourcesConfig};
use crate::error::{Error, ErrorKind, Result};
pub use crate::fetched::{FetchMemory, Reservation, Source};
use crate::metrics::OriginFetch;
use crate::security::SourcePolicy;

type FetchFuture = BoxFuture<'static, std::result::Result<Source, Arc<Error>>>;
type Fetch = Shared<FetchFuture>;

/// The configured loaders, behind a bounded cache of originals.
#[derive(Clone)]
pub struct Loaders {
    inner: Arc<Inner>,
}

struct Inner {
    kind: LoaderKind,
    http: http::HttpLoader,
    file: Option<file::FileLoader>,
    /// Originals by image URL; `None` when `sources.cache_bytes` is 0.
    originals: Option<moka::future::Cache<String, Bytes>>,
    /// Fetches in flight by image URL. Weak: a fetch whose requests are all gone is dropped (and
    /// its connection with it); the next request for that URL starts a new one.
    in_flight: Mutex<HashMap<String, WeakShared<FetchFuture>>>,
    memory: FetchMemory,
}

impl Loaders {
    pub fn new(cfg: &SourcesConfig, policy: SourcePolicy) -> Result<Self> {
        Self::with_own_addresses(cfg, policy, http::OwnAddresses::default())
    }

    /// Loaders that refuse to fetch from `own` (this server's listen addresses).
    pub fn with_own_addresses(cfg: &SourcesConfig, policy: SourcePolicy, own: http::OwnAddresses) -> Result<Self> {
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
        let inner = Inner {
            kind: cfg.loader,
            http: http::HttpLoader::new(cfg, policy, own)?,
            file,
            originals,
            in_flight: Mutex::new(HashMap::new()),
            memory: FetchMemory::new(cfg.fetch_memory_bytes),
        };
        Ok(Loaders { inner: Arc::new(inner) })
    }

    /// Load the image URL of a request (percent-decoded once, as the URL parser gives it),
    /// from the originals cache when it is there. Concurrent loads of one URL share one fetch,
    /// which stops when every request waiting for it has gone; failures are not cached.
    pub async fn load(&self, image: &str) -> Result<Source> {
        if let Some(cache) = &self.inner.originals {
            if let Some(bytes) = cache.get(image).await {
                return Ok(Source::unbudgeted(bytes));
            }
        }
        self.shared_fetch(image).await.map_err(|e| Error::new(e.kind(), e.context().to_string()))
    }

    /// Drop `image` from the originals cache (a source found truncated when decoded).
    pub async fn forget(&self, image: &str) {
        if let Some(cache) = &self.inner.originals {
            cache.invalidate(image).await;
        }
    }

    /// Bytes of fetch memory free now.
    pub fn fetch_memory_available(&self) -> u64 {
        self.inner.memory.available()
    }

    /// The fetch in flight for `image`, or a new one.
    fn shared_fetch(&self, image: &str) -> Fetch {
        let mut in_flight = self.inner.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fetch) = in_flight.get(image).and_then(WeakShared::upgrade) {
            return fetch;
        }
        let inner = self.inner.clone();
        let url = image.to_string();
        let fetch = async move {
            // Dropped unfinished when every request waiting for the fetch leaves: counted then.
            let timer = OriginFetch::start();
            let result = inner.fetch(&url).await;
            timer.finish(result.as_ref().map(|source| source.bytes().len()).map_err(Error::kind));
            if let (Ok(source), Some(cache)) = (&result, &inner.originals) {
                cache.insert(url.clone(), source.bytes().clone()).await;
            }
            inner.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&url);
            result.map_err(Arc::new)
        }
        .boxed()
        .shared();
        // Dead entries (fetches nobody waits for any more) go as new ones come in.
        in_flight.retain(|_, weak| weak.upgrade().is_some());
        if let Some(weak) = fetch.downgrade() {
            in_flight.insert(image.to_string(), weak);
        }
        fetch
    }

    /// Check an image URL against the source policy without fetching (for early refusal).
    pub fn precheck(&self, image: &str) -> Result<()> {
        match self.inner.kind {
            LoaderKind::File => Ok(()),
            // A file may exist under that name: only explicit URLs can be judged up front.
            LoaderKind::FileThenHttp if !has_http_scheme(image) => Ok(()),
            _ => self.inner.http.precheck(image).map(drop),
        }
    }
}

impl Inner {
    /// Load without the cache.
    async fn fetch(&self, image: &str) -> Result<Source> {
        let explicit_http = has_http_scheme(image);
        let memory = self.memory.reservation();
        match (self.kind, &self.file) {
            (LoaderKind::File, Some(file)) => file.load(image, memory).await,
            (LoaderKind::FileThenHttp, Some(file)) if !explicit_http => match file.load(image, memory).await {
                Err(e) if e.kind() == ErrorKind::SourceNotFound => {
                    self.http.load(image, self.memory.reservation()).await
                }
                other => other,
            },
            _ => self.http.load(image, memory).await,
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
