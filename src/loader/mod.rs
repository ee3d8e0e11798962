//! Loaders fetch a source image by its URL: HTTP(S) origins behind the source policy, files
//! under a root that cannot be escaped, and objects in an S3 bucket. `Loaders` picks one as
//! thumbor's `LOADER` setting would, keeps fetched originals in bounded caches (memory, and
//! optionally disk: thumbor's STORAGE), shares one fetch among the requests that want the same
//! URL (and stops it when the last of them goes away), and holds every fetched byte to
//! `sources.fetch_memory_bytes` until no request uses it.

pub mod file;
pub mod http;
pub mod s3;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};

use crate::config::{LoaderKind, SourcesConfig};
use crate::disk::{DiskRecord, DiskStore};
use crate::error::{Error, ErrorKind, Result};
pub use crate::fetched::{FetchMemory, Reservation, Source, Validators};
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
    s3: Option<s3::S3Loader>,
    /// Originals by image URL; `None` when `sources.cache_bytes` is 0.
    originals: Option<moka::future::Cache<String, Original>>,
    /// Originals on disk below the memory cache (`sources.disk`), for `cache_ttl_seconds`.
    disk: Option<OriginalsDisk>,
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
                .weigher(|key: &String, value: &Original| {
                    u32::try_from(key.len() + value.bytes.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(Duration::from_secs(cfg.cache_ttl_seconds.max(1)))
                .build()
        });
        let s3 = match (&cfg.s3, cfg.loader) {
            (Some(s3), LoaderKind::S3) => Some(s3::S3Loader::new(s3, cfg.max_bytes)?),
            _ => None,
        };
        let disk = match &cfg.disk {
            Some(d) => Some(OriginalsDisk::open(&d.dir, d.max_bytes, cfg.cache_ttl_seconds).map_err(|e| {
                Error::new(ErrorKind::Internal, format!("thumbora.sources.disk.dir: {}: {e}", d.dir.display()))
            })?),
            None => None,
        };
        let inner = Inner {
            kind: cfg.loader,
            disk,
            http: http::HttpLoader::new(cfg, policy, own)?,
            file,
            s3,
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
            if let Some(original) = cache.get(image).await {
                return Ok(original.into_source());
            }
        }
        if let Some(disk) = &self.inner.disk {
            if let Some((bytes, fetched)) = disk.get(image).await {
                if let Some(cache) = &self.inner.originals {
                    let original = Original { bytes: bytes.clone(), validators: Validators::default(), fetched };
                    cache.insert(image.to_string(), original).await;
                }
                return Ok(Source::unbudgeted(bytes).fetched_at(fetched));
            }
        }
        self.shared_fetch(image).await.map_err(|e| Error::new(e.kind(), e.context().to_string()))
    }

    /// Load `image` unless it is still the version `known` names: `None` when it is (an expired
    /// result made from it is then still good). An HTTP origin is asked with a conditional
    /// request (`If-None-Match`, `If-Modified-Since`; its 304 means unchanged); other loaders
    /// load and compare. The originals cache, within its TTL, answers as the origin would.
    /// Without validators this is [`Self::load`]. Not shared with other requests' fetches.
    pub async fn load_if_changed(&self, image: &str, known: &Validators) -> Result<Option<Source>> {
        if known.is_empty() {
            return self.load(image).await.map(Some);
        }
        if let Some(cache) = &self.inner.originals {
            if let Some(original) = cache.get(image).await {
                return Ok((original.validators != *known).then(|| original.into_source()));
            }
        }
        let timer = OriginFetch::start();
        let result = self.inner.fetch_if_changed(image, known).await;
        let outcome = result.as_ref().map(|changed| changed.as_ref().map_or(0, |source| source.bytes().len()));
        timer.finish(outcome.map_err(Error::kind));
        if let Ok(Some(source)) = &result {
            self.inner.keep(image, source).await;
        }
        result
    }

    /// Drop `image` from the originals cache (a source found truncated when decoded, or purged).
    pub async fn forget(&self, image: &str) {
        if let Some(cache) = &self.inner.originals {
            cache.invalidate(image).await;
        }
        if let Some(disk) = &self.inner.disk {
            disk.remove(image).await;
        }
    }

    /// Bytes of fetch memory free now.
    pub fn fetch_memory_available(&self) -> u64 {
        self.inner.memory.available()
    }

    /// Bytes of fetch memory held now by downloads and the sources they produced.
    pub fn fetch_memory_in_use(&self) -> u64 {
        self.inner.memory.in_use()
    }

    /// The originals in the memory cache, and what they weigh (as its weigher counts). Counted
    /// by walking the cache: Moka's own totals wait for its next maintenance, which only a later
    /// cache operation runs.
    pub fn originals_cached(&self) -> (u64, u64) {
        let Some(cache) = &self.inner.originals else { return (0, 0) };
        cache.iter().fold((0, 0), |(entries, bytes), (key, original)| {
            (entries + 1, bytes + (key.len() + original.bytes.len()) as u64)
        })
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
            if let Ok(source) = &result {
                inner.keep(&url, source).await;
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
            LoaderKind::File | LoaderKind::S3 => Ok(()),
            // A file may exist under that name: only explicit URLs can be judged up front.
            LoaderKind::FileThenHttp if !has_http_scheme(image) => Ok(()),
            _ => self.inner.http.precheck(image).map(drop),
        }
    }
}

/// An original in the memory cache: its bytes, the origin's validators for them, and when they
/// were fetched.
#[derive(Clone)]
struct Original {
    bytes: Bytes,
    validators: Validators,
    fetched: SystemTime,
}

impl Original {
    fn into_source(self) -> Source {
        Source::unbudgeted(self.bytes).with_validators(self.validators).fetched_at(self.fetched)
    }
}

impl Inner {
    /// Keep a fetched source in the originals caches (memory, and disk when configured).
    async fn keep(&self, image: &str, source: &Source) {
        if let Some(cache) = &self.originals {
            let original = Original {
                bytes: source.bytes().clone(),
                validators: source.validators().clone(),
                fetched: source.fetched(),
            };
            cache.insert(image.to_string(), original).await;
        }
        if let Some(disk) = &self.disk {
            disk.put_later(image, source.bytes().clone());
        }
    }

    /// [`Loaders::load_if_changed`] without the cache: a conditional request to an HTTP origin;
    /// any other loader loads the source and compares its validators.
    async fn fetch_if_changed(&self, image: &str, known: &Validators) -> Result<Option<Source>> {
        let http = match (self.kind, &self.file) {
            (LoaderKind::S3, _) | (LoaderKind::File, Some(_)) => false,
            (LoaderKind::FileThenHttp, Some(_)) => has_http_scheme(image),
            _ => true,
        };
        if http {
            return self.http.load_if_changed(image, self.memory.reservation(), known).await;
        }
        let source = self.fetch(image).await?;
        Ok((source.validators() != known).then_some(source))
    }

    /// Load without the cache.
    async fn fetch(&self, image: &str) -> Result<Source> {
        let explicit_http = has_http_scheme(image);
        let memory = self.memory.reservation();
        if let (LoaderKind::S3, Some(s3)) = (self.kind, &self.s3) {
            return s3.load(image, memory).await;
        }
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

/// Fetched originals on disk ([`DiskStore`]): a record per image URL (its key, when it was
/// fetched, its bytes), used for `ttl` after the fetch. Reads and writes run on blocking threads;
/// a write never delays the request that fetched.
struct OriginalsDisk {
    store: Arc<DiskStore>,
    ttl: Duration,
    /// The first use scans the directory (files the saved index lacks), once.
    scanned: std::sync::Once,
    last_save: Arc<Mutex<std::time::Instant>>,
}

impl OriginalsDisk {
    fn open(dir: &std::path::Path, max_bytes: u64, ttl_seconds: u64) -> std::io::Result<OriginalsDisk> {
        Ok(OriginalsDisk {
            store: Arc::new(DiskStore::open(dir, max_bytes)?),
            ttl: Duration::from_secs(ttl_seconds.max(1)),
            scanned: std::sync::Once::new(),
            last_save: Arc::new(Mutex::new(std::time::Instant::now())),
        })
    }

    fn hash(image: &str) -> [u8; 16] {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(image.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    fn start(&self) {
        self.scanned.call_once(|| {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.reconcile());
        });
    }

    /// The original's bytes and when they were fetched, within the TTL.
    async fn get(&self, image: &str) -> Option<(Bytes, SystemTime)> {
        self.start();
        let hash = Self::hash(image);
        if !self.store.may_contain(&hash) {
            return None;
        }
        let (store, key) = (self.store.clone(), image.as_bytes().to_vec());
        let record = tokio::task::spawn_blocking(move || store.get(&hash, &key)).await.ok().flatten()?;
        let fetched = u64::from_le_bytes(record.meta_internal.get(..8)?.try_into().ok()?);
        let age = unix_now().saturating_sub(fetched);
        (age < self.ttl.as_secs()).then(|| (record.body, UNIX_EPOCH + Duration::from_secs(fetched)))
    }

    fn put_later(&self, image: &str, bytes: Bytes) {
        self.start();
        let record = DiskRecord {
            key: Bytes::from(image.as_bytes().to_vec()),
            meta_internal: Bytes::copy_from_slice(&unix_now().to_le_bytes()),
            meta_header: Bytes::new(),
            body: bytes,
        };
        let (store, hash, last_save) = (self.store.clone(), Self::hash(image), self.last_save.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.put(&hash, &record) {
                log::warn!("originals disk tier: writing to {}: {e}", store.dir().display());
            }
            let mut last = last_save.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= Duration::from_secs(5) {
                *last = std::time::Instant::now();
                drop(last);
                let _ = store.save_index();
            }
        });
    }

    async fn remove(&self, image: &str) {
        let (store, hash) = (self.store.clone(), Self::hash(image));
        let _ = tokio::task::spawn_blocking(move || store.remove(&hash)).await;
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
