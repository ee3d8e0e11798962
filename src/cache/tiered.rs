//! The result cache's storage as pingora-cache sees it: the memory tier, and below it the
//! optional disk tier. A lookup tries memory, then disk (a disk hit is promoted to memory);
//! a finished miss is published to memory at once and queued for disk, written by one thread
//! so the response never waits for the disk. Memory evictions leave the disk copy; purges
//! (invalidations) remove both.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use pingora_cache::eviction::{CacheEntryKey, EvictionManager};
use pingora_cache::key::{CacheHashKey, HashBinary};
use pingora_cache::storage::{
    HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{CacheKey, CacheMeta};
use pingora_error::Result;

use super::storage::{HitTier, MemoryHit, MemoryStorage};
use super::Eviction;
use crate::disk::{DiskRecord, DiskStore};
use crate::metrics;

/// How often the disk index is saved while it changes.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// Scans of the disk directory after the one at start: soon (files another process wrote during
/// a graceful upgrade), then hourly.
const RESCANS: [Duration; 2] = [Duration::from_secs(30), Duration::from_secs(3600)];

/// Memory, then disk.
pub struct TieredStorage {
    memory: &'static MemoryStorage,
    eviction: &'static Eviction,
    disk: Option<DiskTier>,
}

/// The disk store and the queue of results waiting to be written to it.
struct DiskTier {
    store: Arc<DiskStore>,
    writes: Sender<(HashBinary, DiskRecord)>,
    queued_bytes: Arc<AtomicUsize>,
    max_queued_bytes: usize,
    /// The writer and scan threads, started on first use: the storage is built before `-d` forks,
    /// and a fork keeps only the calling thread.
    threads: Once,
    receiver: Receiver<(HashBinary, DiskRecord)>,
}

impl TieredStorage {
    pub fn new(memory: &'static MemoryStorage, eviction: &'static Eviction, disk: Option<(DiskStore, usize)>) -> Self {
        let disk = disk.map(|(store, max_queued_bytes)| DiskTier::new(store, max_queued_bytes));
        TieredStorage { memory, eviction, disk }
    }

    pub fn memory(&self) -> &'static MemoryStorage {
        self.memory
    }

    pub fn disk(&self) -> Option<&DiskStore> {
        self.disk.as_ref().map(|d| &*d.store)
    }

    /// Put an entry read from disk into memory, admitted to the memory's eviction manager (whose
    /// victims leave memory only), and answer it as a disk hit.
    fn promote(&self, key: &CacheKey, record: DiskRecord) -> Option<(CacheMeta, HitHandler)> {
        let meta = CacheMeta::deserialize(&record.meta_internal, &record.meta_header).ok()?;
        let body = record.body;
        let weight =
            match self.memory.insert_serialized(key, &meta, (record.meta_internal, record.meta_header), body.clone()) {
                Ok(weight) => {
                    let victims =
                        self.eviction.admit(CacheEntryKey::key_only(key.to_compact()), weight, meta.fresh_until());
                    for victim in victims {
                        self.memory.remove(&victim.into_key());
                    }
                    weight
                }
                // No room in memory: serve from the disk copy anyway.
                Err(_) => body.len(),
            };
        Some((meta, Box::new(MemoryHit::new(body, weight, HitTier::Disk))))
    }

    /// Queue the memory entry under `key` for the disk.
    fn write_behind(&self, key: &CacheKey) {
        let (Some(disk), Some((meta_internal, meta_header, body))) = (&self.disk, self.memory.raw(key)) else {
            return;
        };
        let record = DiskRecord { key: Bytes::from(key_bytes(key)), meta_internal, meta_header, body };
        disk.enqueue(key.combined_bin(), record);
    }
}

/// What the disk checks a file against: the key's primary string.
fn key_bytes(key: &CacheKey) -> Vec<u8> {
    key.primary_key_str().map(|s| s.as_bytes().to_vec()).unwrap_or_else(|| key.primary_bin().to_vec())
}

impl DiskTier {
    fn new(store: DiskStore, max_queued_bytes: usize) -> DiskTier {
        // Room for many small results; the byte bound is the real limit.
        let (writes, receiver) = crossbeam_channel::bounded(4096);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        DiskTier { store: Arc::new(store), writes, queued_bytes, max_queued_bytes, threads: Once::new(), receiver }
    }

    /// Start the writer and the scan threads, once.
    fn ensure_started(&self) {
        self.threads.call_once(|| {
            let (store, receiver, queued) = (self.store.clone(), self.receiver.clone(), self.queued_bytes.clone());
            thread::Builder::new()
                .name("cache-disk-writer".into())
                .spawn(move || write_loop(&store, &receiver, &queued))
                .expect("spawning the disk writer thread");
            let store = self.store.clone();
            thread::Builder::new()
                .name("cache-disk-scan".into())
                .spawn(move || scan_loop(&store))
                .expect("spawning the disk scan thread");
        });
    }

    fn enqueue(&self, key: HashBinary, record: DiskRecord) {
        self.ensure_started();
        let size = record.body.len() + record.meta_internal.len() + record.meta_header.len();
        let queued = self.queued_bytes.fetch_add(size, Ordering::AcqRel);
        if queued + size > self.max_queued_bytes {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            metrics::disk_write_dropped();
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.writes.try_send((key, record)) {
            self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            metrics::disk_write_dropped();
        }
    }
}

/// The disk writer: one write at a time, and the index saved every few seconds while it changes.
fn write_loop(store: &DiskStore, writes: &Receiver<(HashBinary, DiskRecord)>, queued: &AtomicUsize) {
    let mut last_save = Instant::now();
    loop {
        match writes.recv_timeout(SAVE_EVERY) {
            Ok((key, record)) => {
                let size = record.body.len() + record.meta_internal.len() + record.meta_header.len();
                if let Err(e) = store.put(&key, &record) {
                    log::warn!("cache disk tier: writing to {}: {e}", store.dir().display());
                    metrics::disk_write_dropped();
                }
                queued.fetch_sub(size, Ordering::AcqRel);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_save.elapsed() >= SAVE_EVERY {
            if let Err(e) = store.save_index() {
                log::warn!("cache disk tier: saving its index in {}: {e}", store.dir().display());
            }
            last_save = Instant::now();
        }
        report(store);
    }
}

/// Scan the directory at start, then from time to time.
fn scan_loop(store: &DiskStore) {
    let mut wait = Duration::ZERO;
    for next in RESCANS.into_iter().chain(std::iter::repeat(RESCANS[1])) {
        thread::sleep(wait);
        let started = Instant::now();
        match store.reconcile() {
            Ok(files) => log::info!(
                "cache disk tier: {files} files in {} scanned in {} ms",
                store.dir().display(),
                started.elapsed().as_millis()
            ),
            Err(e) => log::warn!("cache disk tier: scanning {}: {e}", store.dir().display()),
        }
        report(store);
        wait = next;
    }
}

fn report(store: &DiskStore) {
    let stats = store.stats();
    metrics::disk_tier(stats.entries, stats.bytes);
}

#[async_trait]
impl Storage for TieredStorage {
    /// Memory first; on a miss there, the disk (when it may hold the key), promoting what it finds.
    async fn lookup(&'static self, key: &CacheKey, trace: &SpanHandle) -> Result<Option<(CacheMeta, HitHandler)>> {
        if let Some(hit) = self.memory.lookup(key, trace).await? {
            return Ok(Some(hit));
        }
        let Some(disk) = &self.disk else { return Ok(None) };
        disk.ensure_started();
        let hash = key.combined_bin();
        if !disk.store.may_contain(&hash) {
            return Ok(None);
        }
        let store = disk.store.clone();
        let expected = key_bytes(key);
        let record = tokio::task::spawn_blocking(move || store.get(&hash, &expected)).await.ok().flatten();
        Ok(record.and_then(|record| self.promote(key, record)))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let inner = self.memory.get_miss_handler(key, meta, trace).await?;
        Ok(Box::new(TieredMiss { inner, key: key.clone(), storage: self }))
    }

    /// Evictions (memory's manager making room) leave the disk copy; invalidations remove both.
    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = match &target {
            PurgeTarget::Active(key) => Some(key.combined_bin()),
            PurgeTarget::Exact(CacheEntryKey::KeyOnly(key)) => Some(key.combined_bin()),
            PurgeTarget::Exact(_) => None,
        };
        let outcome = self.memory.purge(target, purge_type, trace).await?;
        if !matches!(purge_type, PurgeType::Invalidation) {
            return Ok(outcome);
        }
        let (Some(disk), Some(hash)) = (&self.disk, hash) else { return Ok(outcome) };
        let store = disk.store.clone();
        let on_disk = tokio::task::spawn_blocking(move || store.remove(&hash)).await.unwrap_or(false);
        Ok(match outcome {
            PurgeOutcome::NotFound if on_disk => PurgeOutcome::Purged(None),
            other => other,
        })
    }

    /// Mark stale in memory; the disk copy goes (it would come back fresh after a restart).
    async fn expire(&'static self, target: PurgeTarget<'_>, trace: &SpanHandle) -> Result<PurgeOutcome> {
        if let (Some(disk), PurgeTarget::Active(key)) = (&self.disk, &target) {
            let (store, hash) = (disk.store.clone(), key.combined_bin());
            let _ = tokio::task::spawn_blocking(move || store.remove(&hash)).await;
        }
        self.memory.expire(target, trace).await
    }

    /// A revalidated meta: in memory, and rewritten to disk.
    async fn update_meta(&'static self, key: &CacheKey, meta: &CacheMeta, trace: &SpanHandle) -> Result<bool> {
        let updated = self.memory.update_meta(key, meta, trace).await?;
        if updated {
            self.write_behind(key);
        }
        Ok(updated)
    }

    fn support_streaming_partial_write(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A miss: the memory tier's handler, and a disk write once it is published.
struct TieredMiss {
    inner: MissHandler,
    key: CacheKey,
    storage: &'static TieredStorage,
}

#[async_trait]
impl HandleMiss for TieredMiss {
    async fn write_body(&mut self, data: Bytes, eof: bool) -> Result<()> {
        self.inner.write_body(data, eof).await
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let this = *self;
        let finished = this.inner.finish().await?;
        this.storage.write_behind(&this.key);
        Ok(finished)
    }
}
