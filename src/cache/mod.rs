//! The result cache: pingora-cache over tiered storage (`tiered`): a byte-bounded memory tier
//! (`storage`) evicted by pingora's sharded LRU manager, an optional disk tier (`crate::disk`) below
//! it, with a cache lock so concurrent misses for one key render once.
//! Keys ([`key_for`]) are the canonical request (never the raw path or the signature) plus what
//! changes the output: the negotiated formats, the JSONP callback.

pub mod purge;
pub mod shared;
pub mod storage;
pub mod tiered;

use std::time::Duration;

use pingora_cache::eviction::{lru, EvictionManager};
use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::CacheKey;

use crate::config::CacheConfig;
use crate::disk::DiskStore;
use crate::job::RenderJob;
use storage::MemoryStorage;
use tiered::TieredStorage;

/// Pingora's sharded LRU: a hit locks one of `SHARDS` lists, not one list for every request.
pub type Eviction = lru::Manager<SHARDS>;
const SHARDS: usize = 16;
/// For preallocating the LRU's nodes (a 300x200 JPEG is 10-30 KB).
const TYPICAL_RESULT_BYTES: usize = 16 * 1024;

/// The pieces `HttpCache::enable` takes, alive for the whole process.
#[derive(Clone)]
pub struct ResultCache {
    pub storage: &'static TieredStorage,
    pub eviction: &'static Eviction,
    pub lock: &'static CacheKeyLockImpl,
    pub max_object_bytes: usize,
    /// Results purged by URL or source, until rendered again.
    pub bans: std::sync::Arc<purge::Bans>,
    /// The bucket shared by every node, when configured (the render path reads and writes it).
    pub shared: Option<std::sync::Arc<shared::SharedTier>>,
}

impl ResultCache {
    /// Build the cache once at start-up (its parts are leaked: pingora wants `&'static`). Fails
    /// when the disk tier's directory cannot be created or written.
    pub fn new(cfg: &CacheConfig) -> std::io::Result<Self> {
        // Storage holds slightly more than the manager's limit while evictions are purged
        // asynchronously; the hard cap bounds that slack.
        let hard_cap = cfg.max_bytes.saturating_add(cfg.max_object_bytes.saturating_mul(4));
        let memory = Box::leak(Box::new(MemoryStorage::with_hard_cap(cfg.max_object_bytes, hard_cap)));
        let per_shard = (cfg.max_bytes / TYPICAL_RESULT_BYTES / SHARDS).max(16);
        let eviction: &'static Eviction = Box::leak(Box::new(Eviction::with_capacity(cfg.max_bytes, per_shard)));
        let disk = match &cfg.disk {
            Some(disk) => Some((DiskStore::open(&disk.dir, disk.max_bytes)?, disk.write_queue_bytes)),
            None => None,
        };
        let storage = Box::leak(Box::new(TieredStorage::new(memory, eviction, disk)));
        let lock: &'static CacheKeyLockImpl =
            Box::leak(CacheLock::new_boxed(Duration::from_millis(cfg.lock_timeout_ms)));
        let bans = std::sync::Arc::new(purge::Bans::load(cfg.disk.as_ref().map(|d| d.dir.as_path())));
        let shared = match &cfg.shared {
            Some(shared) => Some(std::sync::Arc::new(
                shared::SharedTier::new(shared, cfg.max_object_bytes, bans.clone()).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        Ok(ResultCache { storage, eviction, lock, max_object_bytes: cfg.max_object_bytes, bans, shared })
    }
}

impl ResultCache {
    /// A fresh result in the memory tier that no purge covers, counted as an access by the
    /// eviction manager (as pingora-cache counts a hit): what `proxy` answers a hit with
    /// directly. `None` sends the request down pingora-cache's full path (disk, stale, miss).
    pub fn fresh_in_memory(&self, key: &CacheKey, job: &RenderJob) -> Option<storage::FreshHit> {
        let hit = self.storage.memory().fresh(key, std::time::SystemTime::now())?;
        if self.bans.covers(job, hit.created) {
            return None;
        }
        let entry = pingora_cache::eviction::CacheEntryKey::from_entry_id(key.to_compact(), None);
        self.eviction.access(&entry, hit.weight, hit.fresh_until);
        Some(hit)
    }
}

/// The cache key of a render: the canonical request path (signature and defaults removed), the
/// negotiated formats and the JSONP callback. GET and HEAD share it (a HEAD miss renders the body
/// too, see `proxy`).
pub fn key_for(job: &RenderJob) -> CacheKey {
    let mut primary = crate::url::compose_unsigned(&job.request);
    primary.push_str(if job.accepts.webp { "|webp" } else { "|-" });
    primary.push_str(if job.accepts.avif { "|avif" } else { "|-" });
    if let Some(cb) = &job.meta_callback {
        primary.push_str("|cb=");
        primary.push_str(cb);
    }
    CacheKey::new(primary, "")
}

/// The job under each `Accept` class its key can carry (no JSONP callback): every cached
/// variant of one URL that can be named.
pub fn variants(job: &RenderJob) -> [RenderJob; 4] {
    [(false, false), (true, false), (false, true), (true, true)].map(|(webp, avif)| RenderJob {
        accepts: crate::job::Accepts { webp, avif },
        meta_callback: None,
        ..job.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Accepts;
    use crate::url::parse;

    fn job(path: &str, webp: bool) -> RenderJob {
        RenderJob {
            request: parse(path).unwrap(),
            filters: vec![],
            accepts: Accepts { webp, avif: false },
            meta_callback: None,
        }
    }

    fn primary(j: &RenderJob) -> String {
        key_for(j).primary_key_str().unwrap_or_default().to_string()
    }

    #[test]
    fn same_output_same_key() {
        let signed = job("/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x200/h/i.jpg", false);
        let unsafe_ = job("/unsafe/300x200/center/middle/h/i.jpg", false);
        assert_eq!(primary(&signed), primary(&unsafe_));
    }

    #[test]
    fn different_output_different_key() {
        let a = job("/unsafe/300x200/h/i.jpg", false);
        for other in ["/unsafe/300x201/h/i.jpg", "/unsafe/300x200/h/j.jpg", "/unsafe/300x200/smart/h/i.jpg"] {
            assert_ne!(primary(&a), primary(&job(other, false)), "{other}");
        }
        assert_ne!(primary(&a), primary(&job("/unsafe/300x200/h/i.jpg", true)));
    }
}
