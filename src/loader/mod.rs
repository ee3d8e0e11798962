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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{LoaderKind, SourcesConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::security::SourcePolicy;

/// Fetch memory is counted in 64 KiB units.
const MEMORY_UNIT: u64 = 64 * 1024;

/// A fetched source. Clones share the bytes, and the share of `sources.fetch_memory_bytes` they
/// hold until the last clone is dropped (a source served from the originals cache holds none:
/// the cache has its own bound).
#[derive(Clone)]
pub struct Source {
    bytes: Bytes,
    _memory: Option<Arc<OwnedSemaphorePermit>>,
}

impl Source {
    /// Bytes that hold no fetch memory (the originals cache, tests).
    pub fn unbudgeted(bytes: Bytes) -> Source {
        Source { bytes, _memory: None }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl std::ops::Deref for Source {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({} bytes)", self.bytes.len())
    }
}

/// The memory budget for fetched bytes.
#[derive(Clone)]
pub struct FetchMemory {
    pool: Arc<Semaphore>,
}

impl FetchMemory {
    pub fn new(bytes: u64) -> Self {
        FetchMemory { pool: Arc::new(Semaphore::new(bytes.div_ceil(MEMORY_UNIT).max(1) as usize)) }
    }

    /// An empty reservation, grown as a body arrives.
    pub fn reservation(&self) -> Reservation {
        Reservation { pool: self.pool.clone(), held: None, bytes: 0 }
    }

    /// Bytes free now.
    pub fn available(&self) -> u64 {
        self.pool.available_permits() as u64 * MEMORY_UNIT
    }
}

/// Part of the fetch memory, held by one fetch and then by the source it produced.
pub struct Reservation {
    pool: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    bytes: u64,
}

impl Reservation {
    /// Hold at least `bytes` in all, taking more at once or failing with 503: a fetch never
    /// waits for memory (the requests holding it may be waiting for their renders).
    pub fn grow_to(&mut self, bytes: u64) -> Result<()> {
        if bytes <= self.bytes {
            return Ok(());
        }
        let needed = bytes.div_ceil(MEMORY_UNIT) - self.bytes / MEMORY_UNIT;
        let units = u32::try_from(needed).unwrap_or(u32::MAX);
        let more = self.pool.clone().try_acquire_many_owned(units).map_err(|_| {
            Error::new(ErrorKind::Overloaded, "sources.fetch_memory_bytes is taken by fetches in flight")
        })?;
        match &mut self.held {
            Some(held) => held.merge(more),
            None => self.held = Some(more),
        }
        self.bytes = (self.bytes / MEMORY_UNIT + u64::from(units)) * MEMORY_UNIT;
        Ok(())
    }

    /// The source these bytes make, holding this reservation.
    pub fn into_source(self, bytes: Bytes) -> Source {
        Source { bytes, _memory: self.held.map(Arc::new) }
    }
}

type Fetch = Shared<BoxFuture<'static, std::result::Result<Source, Arc<Error>>>>;

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
    in_flight: Mutex<HashMap<String, WeakShared<BoxFuture<'static, std::result::Result<Source, Arc<Error>>>>>>,
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
            let result = inner.fetch(&url).await;
            if let (Ok(source), Some(cache)) = (&result, &inner.originals) {
                cache.insert(url.clone(), source.bytes.clone()).await;
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

    #[test]
    fn fetch_memory_is_held_until_the_last_source_is_dropped() {
        let memory = FetchMemory::new(4 * MEMORY_UNIT);
        let mut first = memory.reservation();
        first.grow_to(100).unwrap();
        first.grow_to(MEMORY_UNIT + 1).unwrap();
        assert_eq!(memory.available(), 2 * MEMORY_UNIT);
        let source = first.into_source(Bytes::from_static(b"x"));
        let copy = source.clone();
        let mut second = memory.reservation();
        assert_eq!(second.grow_to(3 * MEMORY_UNIT).unwrap_err().kind(), ErrorKind::Overloaded);
        drop(source);
        assert_eq!(memory.available(), 2 * MEMORY_UNIT, "a clone still holds it");
        drop(copy);
        assert_eq!(memory.available(), 4 * MEMORY_UNIT);
        second.grow_to(3 * MEMORY_UNIT).unwrap();
    }
}
