//! In-memory cache storage for pingora-cache: owns the cached objects (serialized meta and body)
//! and their exact byte accounting, bounded per object and optionally by a hard total cap.
//!
//! # How it fits with pingora
//!
//! [`MemoryStorage`] implements [`Storage`] and replaces pingora's test-only `MemCache`. The total
//! cache size is meant to be governed by pingora's eviction manager, e.g.
//! `pingora_cache::eviction::lru::Manager::with_capacity(limit_bytes, ..)`, passed to
//! `HttpCache::enable` next to this storage. Pingora wires the two together like this
//! (pingora-cache 0.9.1, `src/lib.rs`):
//!
//! * `finish_miss_handler` calls [`HandleMiss::finish`], then
//!   `eviction.admit(CacheEntryKey::from_entry_id(key.to_compact(), miss.entry_id()), size, ..)`
//!   with the `size` from [`MissFinishType::Created`], and spawns a task that calls
//!   [`Storage::purge`] with [`PurgeTarget::Exact`] and [`PurgeType::Eviction`] for every key the
//!   manager returned. The manager has already deducted those sizes.
//! * On a hit, `eviction.access(key, hit.get_eviction_weight(), ..)` starts tracking an entry the
//!   manager does not know yet with that weight (it does not resize tracked entries).
//! * An explicit purge (`HttpCache::purge`) calls [`Storage::purge`] with [`PurgeTarget::Active`]
//!   and, on [`PurgeOutcome::Purged`], `eviction.remove(..)`.
//!
//! This storage therefore reports the *same* weight everywhere: `body.len()` plus the serialized
//! meta length, both from `finish` (`MissFinishType::Created(weight)`) and from
//! [`HandleHit::get_eviction_weight`]. It assigns no [`CacheEntryId`]s (entries are identified
//! by their key alone), so an overwrite of a key is re-admitted under the same eviction key and
//! the manager replaces the old size instead of double counting it. With that, the manager's
//! `total_size()` equals [`MemoryStorage::stats`]`().bytes` whenever no operation is in flight,
//! except for these races and drifts, none of which pingora lets storage report back:
//!
//! * `update_meta` and `expire` change the serialized meta size of a stored entry, but the
//!   manager keeps the weight it admitted (drift of a few bytes per revalidated entry).
//! * Eviction purges run in a spawned task and are key-only, so a fresh write of the same key
//!   that lands between `admit` and that task is removed too; the manager then tracks bytes that
//!   are gone until the key is written again (over-counting, which only evicts earlier).
//! * Two concurrent writers of one key can `admit` in the opposite order to their `finish`,
//!   leaving the manager with the other body's weight (pingora's cache lock normally serializes
//!   writers of a key).
//!
//! The optional hard cap below bounds memory regardless of these.
//!
//! # Keys
//!
//! Entries are keyed by `(combined_bin(), user_tag)`. [`CacheHashKey::combined_bin`] is computed
//! identically for a [`CacheKey`] and its
//! [`CompactCacheKey`](pingora_cache::key::CompactCacheKey) (primary hash, mixed with the variance
//! hash when there is one), so lookups by `CacheKey` and purges by `CompactCacheKey` hit the same
//! entry. The user tag is part of the identity because pingora's eviction manager
//! tracks `CompactCacheKey`s, which include it; keying on the hash alone would let two eviction
//! entries share one stored object and break the accounting.
//!
//! # Hard cap
//!
//! [`MemoryStorage::with_hard_cap`] adds a safety net that holds even without an eviction
//! manager: the total is reserved atomically before an entry becomes visible and never exceeds
//! the cap. When an insert does not fit, the oldest-inserted entries of the target shard are
//! evicted first, then (without holding that shard's lock) one oldest entry per other shard in
//! turn, and if space still cannot be found after a few rounds the insert is refused with an
//! error. Entries evicted this way are unknown to the eviction manager, which keeps tracking them
//! until its own LRU drops them (its purge then finds nothing); that over-counting only makes the
//! manager evict earlier, never later. Set the cap somewhat above the manager's limit (e.g. the
//! limit plus a few `max_object_bytes`): the manager purges asynchronously, so storage briefly
//! holds the entries admitted since the last purges completed on top of the limit. In normal
//! operation the cap then never triggers, and [`MemoryStorage::hard_cap_evictions`] staying at 0
//! confirms it. Weights count payload bytes only, not the per-entry bookkeeping (key, map slots,
//! roughly 100-150 bytes per entry).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use pingora_cache::eviction::{CacheEntryId, CacheEntryKey};
use pingora_cache::key::{CacheHashKey, HashBinary};
use pingora_cache::max_file_size::ERR_RESPONSE_TOO_LARGE;
use pingora_cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{CacheKey, CacheMeta};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::ResponseHeader;

/// Number of independently locked shards. A power of two so the shard index is a cheap mask.
const SHARDS: usize = 16;

/// How many times an insert retries after evicting from other shards before it gives up.
const MAX_INSERT_ATTEMPTS: usize = 4;

/// Byte and entry totals of a [`MemoryStorage`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StorageStats {
    /// Number of complete entries visible to lookups.
    pub entries: usize,
    /// Sum of entry weights: body length plus serialized meta length of every entry.
    pub bytes: usize,
}

/// Identity of a stored entry, derivable from both a [`CacheKey`] and a
/// [`CompactCacheKey`](pingora_cache::key::CompactCacheKey).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StoreKey {
    /// `combined_bin()`: the primary hash, mixed with the variance hash if any.
    hash: HashBinary,
    /// The key's user tag; empty in the common case, which does not allocate.
    user_tag: Box<str>,
}

impl StoreKey {
    fn new(key: &impl CacheHashKey) -> Self {
        StoreKey { hash: key.combined_bin(), user_tag: key.user_tag().into() }
    }

    /// The shard owning this key. The hash is a blake2 digest, so any byte is uniform.
    fn shard(&self) -> usize {
        usize::from(self.hash[0]) & (SHARDS - 1)
    }
}

/// A stored meta kept as values, so that a hit rebuilds its [`CacheMeta`] with
/// [`CacheMeta::new`] instead of decompressing and parsing the serialized header. Only for
/// metas `CacheMeta::new` reproduces exactly: never revalidated, no variance, no epoch override.
struct PlainMeta {
    fresh_until: SystemTime,
    created: SystemTime,
    stale_while_revalidate_sec: u32,
    stale_if_error_sec: u32,
    header: ResponseHeader,
    /// What a fresh hit from memory sends ([`crate::response::fresh_hit_header`]), built once.
    hit_header: ResponseHeader,
}

impl PlainMeta {
    fn of(meta: &CacheMeta) -> Option<Arc<PlainMeta>> {
        let plain = meta.variance().is_none()
            && meta.epoch_override().is_none()
            && meta.updated() == meta.created()
            && meta.provenance() == meta.created();
        plain.then(|| {
            Arc::new(PlainMeta {
                fresh_until: meta.fresh_until(),
                created: meta.created(),
                stale_while_revalidate_sec: meta.stale_while_revalidate_sec(),
                stale_if_error_sec: meta.stale_if_error_sec(),
                header: meta.response_header_copy(),
                hit_header: crate::response::fresh_hit_header(meta.response_header()),
            })
        })
    }

    fn to_meta(&self) -> CacheMeta {
        CacheMeta::new(
            self.fresh_until,
            self.created,
            self.stale_while_revalidate_sec,
            self.stale_if_error_sec,
            self.header.clone(),
        )
    }
}

/// One complete cached object.
struct Entry {
    /// The meta as values, while it is one `CacheMeta::new` can rebuild (see [`PlainMeta`]).
    plain_meta: Option<Arc<PlainMeta>>,
    /// Serialized internal meta (first half of [`CacheMeta::serialize`]).
    meta_internal: Bytes,
    /// Serialized response header (second half of [`CacheMeta::serialize`]).
    meta_header: Bytes,
    /// The whole body in one contiguous, exactly sized buffer.
    body: Bytes,
    /// `body.len() + meta_internal.len() + meta_header.len()`.
    weight: usize,
    /// Insertion sequence number, the key of this entry in [`Shard::order`].
    seq: u64,
}

fn weight_of(body: usize, meta_internal: usize, meta_header: usize) -> usize {
    body.saturating_add(meta_internal).saturating_add(meta_header)
}

/// A shard: the entries plus their insertion order, used to pick hard-cap victims.
#[derive(Default)]
struct Shard {
    map: HashMap<StoreKey, Entry>,
    order: BTreeMap<u64, StoreKey>,
}

impl Shard {
    fn remove(&mut self, key: &StoreKey) -> Option<Entry> {
        let entry = self.map.remove(key)?;
        self.order.remove(&entry.seq);
        Some(entry)
    }

    /// Remove the oldest-inserted entry whose key is not `keep`.
    fn pop_oldest_except(&mut self, keep: Option<&StoreKey>) -> Option<Entry> {
        let seq = self.order.iter().find(|(_, key)| Some(*key) != keep).map(|(seq, _)| *seq)?;
        let key = self.order.remove(&seq)?;
        self.map.remove(&key)
    }
}

/// Production in-memory [`Storage`] for pingora-cache.
///
/// * Sharded: 16 shards, each a `RwLock<HashMap>`, so concurrent hits on different keys
///   (and on the same key, which only take read locks) do not contend on one lock.
/// * Hits are zero-copy: the body is a [`Bytes`] that is reference-count cloned into the hit
///   handler and sliced for ranges. The meta is stored serialized (for its weight and for
///   revalidation) and, while [`CacheMeta::new`] can rebuild it, also as values, so that a hit
///   does not decompress and parse the response header.
/// * Only complete entries are visible: a miss buffers its body privately and publishes it in
///   [`HandleMiss::finish`]; dropping the miss handler without `finish` stores nothing.
///   Streaming partial writes are not supported.
/// * Bounded by bytes: bodies larger than `max_object_bytes` are refused while being written,
///   the total is bounded by pingora's eviction manager and optionally by a hard cap (see the
///   module docs).
///
/// Pingora wants `&'static` storage: create it once, e.g. in a `static LazyLock`/`OnceLock` or
/// with `Box::leak`.
pub struct MemoryStorage {
    shards: Box<[RwLock<Shard>]>,
    max_object_bytes: usize,
    hard_cap_bytes: Option<usize>,
    /// Sum of all entry weights; updated only while holding the lock of the shard concerned.
    bytes: AtomicUsize,
    /// Number of entries; updated only while holding the lock of the shard concerned.
    entries: AtomicUsize,
    next_seq: AtomicU64,
    hard_cap_evictions: AtomicU64,
}

impl MemoryStorage {
    /// Storage that refuses bodies larger than `max_object_bytes` and leaves the total size to
    /// pingora's eviction manager (no hard cap: without a manager it grows without bound).
    pub fn new(max_object_bytes: usize) -> Self {
        Self::build(max_object_bytes, None)
    }

    /// Like [`MemoryStorage::new`], and additionally never lets the total weight exceed
    /// `hard_cap_bytes`, evicting oldest-inserted entries or refusing the insert when needed.
    pub fn with_hard_cap(max_object_bytes: usize, hard_cap_bytes: usize) -> Self {
        Self::build(max_object_bytes, Some(hard_cap_bytes))
    }

    fn build(max_object_bytes: usize, hard_cap_bytes: Option<usize>) -> Self {
        MemoryStorage {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            max_object_bytes,
            hard_cap_bytes,
            bytes: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            hard_cap_evictions: AtomicU64::new(0),
        }
    }

    /// Current number of entries and their total weight (body + serialized meta bytes).
    pub fn stats(&self) -> StorageStats {
        StorageStats { entries: self.entries.load(Ordering::Acquire), bytes: self.bytes.load(Ordering::Acquire) }
    }

    /// The largest body, in bytes, a miss may write.
    pub fn max_object_bytes(&self) -> usize {
        self.max_object_bytes
    }

    /// The hard cap on the total weight, if one was set.
    pub fn hard_cap_bytes(&self) -> Option<usize> {
        self.hard_cap_bytes
    }

    /// How many entries the hard cap has evicted so far. Non-zero means the eviction manager
    /// is absent, lagging, or configured with a limit too close to (or above) the hard cap.
    pub fn hard_cap_evictions(&self) -> u64 {
        self.hard_cap_evictions.load(Ordering::Relaxed)
    }

    fn read_shard(&self, index: usize) -> RwLockReadGuard<'_, Shard> {
        // Critical sections never leave a shard half-updated, so a poisoned lock is still valid.
        self.shards[index].read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_shard(&self, index: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[index].write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Account for an entry that was just removed from a shard. Call with that shard locked.
    fn account_removed(&self, entry: &Entry) {
        self.bytes.fetch_sub(entry.weight, Ordering::AcqRel);
        self.entries.fetch_sub(1, Ordering::AcqRel);
    }

    /// Atomically change the total from `old + rest` to `new + rest`, unless that would exceed
    /// the hard cap. Call with the shard holding the `old`-weighted entry locked, so that `old`
    /// is part of the total.
    fn try_reserve(&self, old: usize, new: usize) -> bool {
        let cap = self.hard_cap_bytes.unwrap_or(usize::MAX);
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                current.saturating_sub(old).checked_add(new).filter(|next| *next <= cap)
            })
            .is_ok()
    }

    /// Reserve room for `key` to weigh `weight`, evicting other entries of this (locked) shard,
    /// oldest first, while it does not fit. On failure returns how many bytes are still missing.
    fn make_room_locked(
        &self,
        shard: &mut Shard,
        key: &StoreKey,
        weight: usize,
        evicted: &mut Vec<Entry>,
    ) -> std::result::Result<(), usize> {
        let old = shard.map.get(key).map_or(0, |entry| entry.weight);
        loop {
            if self.try_reserve(old, weight) {
                return Ok(());
            }
            match shard.pop_oldest_except(Some(key)) {
                Some(victim) => {
                    self.account_removed(&victim);
                    self.hard_cap_evictions.fetch_add(1, Ordering::Relaxed);
                    evicted.push(victim);
                }
                None => {
                    let cap = self.hard_cap_bytes.unwrap_or(usize::MAX);
                    let total = self.bytes.load(Ordering::Acquire);
                    let wanted = total.saturating_sub(old).saturating_add(weight);
                    return Err(wanted.saturating_sub(cap).max(1));
                }
            }
        }
    }

    /// Evict oldest entries from shards other than `except`, one per shard per round, until
    /// `needed` bytes were freed or nothing is left. Takes one shard lock at a time.
    /// Returns whether anything was evicted.
    fn evict_elsewhere(&self, except: usize, needed: usize) -> bool {
        let mut freed = 0usize;
        let mut any = false;
        loop {
            let mut progress = false;
            for step in 1..SHARDS {
                let index = (except + step) & (SHARDS - 1);
                let victim = {
                    let mut shard = self.write_shard(index);
                    let victim = shard.pop_oldest_except(None);
                    if let Some(victim) = &victim {
                        self.account_removed(victim);
                    }
                    victim
                };
                // The victim's body is freed here, outside the lock.
                if let Some(victim) = victim {
                    self.hard_cap_evictions.fetch_add(1, Ordering::Relaxed);
                    freed = freed.saturating_add(victim.weight);
                    progress = true;
                    any = true;
                    if freed >= needed {
                        return true;
                    }
                }
            }
            if !progress {
                return any;
            }
        }
    }

    /// Publish a complete entry, replacing any entry with the same key. Returns its weight.
    fn insert(&self, key: StoreKey, mut entry: Entry) -> Result<usize> {
        let weight = entry.weight;
        if let Some(cap) = self.hard_cap_bytes {
            if weight > cap {
                return Error::e_explain(
                    ERR_RESPONSE_TOO_LARGE,
                    format!("cache entry of {weight} bytes exceeds the hard cap of {cap} bytes"),
                );
            }
        }
        let index = key.shard();
        let mut evicted = Vec::new();
        for _ in 0..MAX_INSERT_ATTEMPTS {
            let needed = {
                let mut shard = self.write_shard(index);
                match self.make_room_locked(&mut shard, &key, weight, &mut evicted) {
                    Ok(()) => {
                        entry.seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                        shard.order.insert(entry.seq, key.clone());
                        match shard.map.insert(key, entry) {
                            // Already accounted for by `try_reserve`, which swapped its weight.
                            Some(old) => {
                                shard.order.remove(&old.seq);
                                evicted.push(old);
                            }
                            None => {
                                self.entries.fetch_add(1, Ordering::AcqRel);
                            }
                        }
                        drop(shard);
                        // `evicted` (and the replaced entry) are freed here, outside the lock.
                        return Ok(weight);
                    }
                    Err(needed) => needed,
                }
            };
            if !self.evict_elsewhere(index, needed) {
                break;
            }
        }
        Error::e_explain(
            ErrorType::InternalError,
            format!(
                "no room for a {weight} byte cache entry under the hard cap of {} bytes",
                self.hard_cap_bytes.unwrap_or(usize::MAX)
            ),
        )
    }

    /// Replace the serialized meta of an existing entry in a locked shard, adjusting the byte
    /// accounting. Returns `Ok(false)` if there is no such entry and an error if the new weight
    /// cannot fit under the hard cap (the old meta is then kept).
    fn replace_meta_locked(
        &self,
        shard: &mut Shard,
        key: &StoreKey,
        (internal, header): (Vec<u8>, Vec<u8>),
        evicted: &mut Vec<Entry>,
    ) -> Result<bool> {
        let Some(body_len) = shard.map.get(key).map(|entry| entry.body.len()) else {
            return Ok(false);
        };
        let weight = weight_of(body_len, internal.len(), header.len());
        if self.make_room_locked(shard, key, weight, evicted).is_err() {
            return Error::e_explain(ErrorType::InternalError, "no room under the hard cap to grow the cache meta");
        }
        let entry = shard.map.get_mut(key).expect("entry is still present: its shard stayed locked");
        entry.meta_internal = Bytes::from(internal);
        entry.meta_header = Bytes::from(header);
        entry.plain_meta = None;
        entry.weight = weight;
        Ok(true)
    }

    /// The entry under `key` when it is fresh at `now` and its meta is kept as values: what a
    /// hit sends, without pingora-cache's lookup (see `proxy`'s fast path). `None` for anything
    /// else (absent, expired, or a meta only its serialized form describes), which takes the
    /// full cache path.
    pub fn fresh(&self, key: &CacheKey, now: SystemTime) -> Option<FreshHit> {
        let key = StoreKey::new(key);
        let (plain, body, weight) = {
            let shard = self.read_shard(key.shard());
            let entry = shard.map.get(&key)?;
            (entry.plain_meta.clone()?, entry.body.clone(), entry.weight)
        };
        (now < plain.fresh_until).then(|| FreshHit {
            header: plain.hit_header.clone(),
            body,
            created: plain.created,
            fresh_until: plain.fresh_until,
            weight,
        })
    }

    /// The serialized meta halves and body stored under `key` (for writing it to a lower tier).
    pub fn raw(&self, key: &impl CacheHashKey) -> Option<(Bytes, Bytes, Bytes)> {
        let key = StoreKey::new(key);
        let shard = self.read_shard(key.shard());
        shard.map.get(&key).map(|e| (e.meta_internal.clone(), e.meta_header.clone(), e.body.clone()))
    }

    /// Publish an entry read from a lower tier (`meta` is the deserialized `internal`/`header`).
    /// Returns its weight, as `finish` would.
    pub fn insert_serialized(
        &self,
        key: &impl CacheHashKey,
        meta: &CacheMeta,
        (internal, header): (Bytes, Bytes),
        body: Bytes,
    ) -> Result<usize> {
        if body.len() > self.max_object_bytes {
            return Error::e_explain(ERR_RESPONSE_TOO_LARGE, "entry from a lower tier exceeds max_object_bytes");
        }
        let weight = weight_of(body.len(), internal.len(), header.len());
        let entry = Entry {
            plain_meta: PlainMeta::of(meta),
            meta_internal: internal,
            meta_header: header,
            body,
            weight,
            seq: 0,
        };
        self.insert(StoreKey::new(key), entry)
    }

    /// Drop the entry under `key`; whether there was one.
    pub fn remove(&self, key: &impl CacheHashKey) -> bool {
        let key = StoreKey::new(key);
        let mut shard = self.write_shard(key.shard());
        let removed = shard.remove(&key);
        if let Some(entry) = &removed {
            self.account_removed(entry);
        }
        drop(shard);
        removed.is_some()
    }

    /// The key a purge or expire target refers to, or `None` when it cannot be one of ours.
    fn target_key(target: PurgeTarget<'_>) -> Option<StoreKey> {
        match target {
            // This storage assigns no entry IDs, so identified entries are never ours.
            PurgeTarget::Exact(CacheEntryKey::Identified { .. }) => None,
            PurgeTarget::Active(key) | PurgeTarget::Exact(CacheEntryKey::KeyOnly(key)) => Some(StoreKey::new(key)),
        }
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    /// Return the complete entry for `key`, if any. Never returns an in-progress write.
    async fn lookup(&'static self, key: &CacheKey, _trace: &SpanHandle) -> Result<Option<(CacheMeta, HitHandler)>> {
        let key = StoreKey::new(key);
        let found = {
            let shard = self.read_shard(key.shard());
            shard.map.get(&key).map(|entry| match &entry.plain_meta {
                Some(plain) => (Ok(plain.clone()), entry.body.clone(), entry.weight),
                None => {
                    (Err((entry.meta_internal.clone(), entry.meta_header.clone())), entry.body.clone(), entry.weight)
                }
            })
        };
        let Some((stored_meta, body, weight)) = found else {
            return Ok(None);
        };
        // Outside the lock: rebuild from values, or deserialize (the header is zstd-compressed).
        let meta = match stored_meta {
            Ok(plain) => plain.to_meta(),
            Err((internal, header)) => CacheMeta::deserialize(&internal, &header)?,
        };
        Ok(Some((meta, Box::new(MemoryHit::new(body, weight, HitTier::Memory)))))
    }

    /// Start buffering a new entry for `key` with `meta`; it is published on `finish`.
    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let (internal, header) = meta.serialize()?;
        Ok(Box::new(MemoryMiss {
            storage: self,
            key: StoreKey::new(key),
            plain_meta: PlainMeta::of(meta),
            meta_internal: Bytes::from(internal),
            meta_header: Bytes::from(header),
            chunks: Vec::new(),
            body_len: 0,
            failed: false,
        }))
    }

    /// Remove the entry for the target's key. [`PurgeTarget::Exact`] targets carrying an entry
    /// ID never match, since this storage assigns none. The purge type does not matter.
    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let Some(key) = Self::target_key(target) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let removed = {
            let mut shard = self.write_shard(key.shard());
            let removed = shard.remove(&key);
            if let Some(entry) = &removed {
                self.account_removed(entry);
            }
            removed
        };
        Ok(match removed {
            // Key-only identity: the eviction manager removes `KeyOnly(key)`.
            Some(_) => PurgeOutcome::Purged(None),
            None => PurgeOutcome::NotFound,
        })
    }

    /// Mark the entry stale (its meta's freshness ends now), keeping the body for
    /// revalidation. The read-modify-write happens under the shard lock. If the rewritten meta
    /// does not fit under the hard cap, the entry is deleted instead.
    async fn expire(&'static self, target: PurgeTarget<'_>, _trace: &SpanHandle) -> Result<PurgeOutcome> {
        let Some(key) = Self::target_key(target) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let mut evicted = Vec::new();
        let mut shard = self.write_shard(key.shard());
        let Some(entry) = shard.map.get(&key) else {
            return Ok(PurgeOutcome::NotFound);
        };
        let expired = CacheMeta::deserialize(&entry.meta_internal, &entry.meta_header)
            .and_then(|mut meta| {
                meta.expire_at(SystemTime::now());
                meta.serialize()
            })
            .and_then(|serialized| self.replace_meta_locked(&mut shard, &key, serialized, &mut evicted));
        if expired.is_ok() {
            return Ok(PurgeOutcome::Expired);
        }
        // Could not rewrite the meta: delete, so the entry is never served as fresh again.
        if let Some(entry) = shard.remove(&key) {
            self.account_removed(&entry);
            evicted.push(entry);
        }
        drop(shard);
        Ok(PurgeOutcome::Purged(None))
    }

    /// Replace the stored meta of an existing entry (after a 304 revalidation), adjusting the
    /// byte accounting. Returns `Ok(false)` when the entry is gone.
    ///
    /// Pingora does not tell the eviction manager about this call, so the manager keeps the
    /// weight from admission: its total drifts from [`MemoryStorage::stats`] by the change in
    /// serialized meta size (usually a few bytes) until the entry is rewritten or removed.
    async fn update_meta(&'static self, key: &CacheKey, meta: &CacheMeta, _trace: &SpanHandle) -> Result<bool> {
        let serialized = meta.serialize()?;
        let key = StoreKey::new(key);
        let mut evicted = Vec::new();
        let mut shard = self.write_shard(key.shard());
        let updated = self.replace_meta_locked(&mut shard, &key, serialized, &mut evicted);
        drop(shard);
        updated
    }

    fn support_streaming_partial_write(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A fresh entry as [`MemoryStorage::fresh`] returns it.
pub struct FreshHit {
    /// The header to answer with ([`crate::response::fresh_hit_header`]; `Age` still to add).
    pub header: ResponseHeader,
    pub body: Bytes,
    pub created: SystemTime,
    pub fresh_until: SystemTime,
    /// The weight the eviction manager tracks the entry with.
    pub weight: usize,
}

/// Which tier a hit came from: memory, or a lower tier (disk) that promoted it to memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitTier {
    Memory,
    Disk,
}

/// Hit handler: serves a stored body without copying, optionally narrowed to a byte range.
pub struct MemoryHit {
    body: Bytes,
    weight: usize,
    range_start: usize,
    range_end: usize,
    done: bool,
    tier: HitTier,
}

impl MemoryHit {
    pub(crate) fn new(body: Bytes, weight: usize, tier: HitTier) -> Self {
        let range_end = body.len();
        MemoryHit { body, weight, range_start: 0, range_end, done: false, tier }
    }

    /// The tier this hit was found in.
    pub fn tier(&self) -> HitTier {
        self.tier
    }
}

#[async_trait]
impl HandleHit for MemoryHit {
    /// Return the whole (or sought) body as one chunk, then `None`. An empty body or range
    /// yields `None` straight away.
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        if self.range_start >= self.range_end {
            return Ok(None);
        }
        Ok(Some(self.body.slice(self.range_start..self.range_end)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    /// Restrict the next read to `start..end` (`end` exclusive, clamped to the body length;
    /// `None` reads to the end). Resets the read so one handler can serve several ranges.
    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.body.len();
        if start >= len {
            return Error::e_explain(ErrorType::InternalError, format!("seek start out of range {start} >= {len}"));
        }
        let end = end.map_or(len, |end| end.min(len));
        if end < start {
            return Error::e_explain(ErrorType::InternalError, format!("seek end {end} before start {start}"));
        }
        self.range_start = start;
        self.range_end = end;
        self.done = false;
        Ok(())
    }

    /// The same weight `finish` reported to the eviction manager at admission.
    fn get_eviction_weight(&self) -> usize {
        self.weight
    }

    fn entry_id(&self) -> Option<CacheEntryId> {
        None
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// Miss handler: buffers the body privately until `finish` publishes the entry.
struct MemoryMiss {
    storage: &'static MemoryStorage,
    key: StoreKey,
    plain_meta: Option<Arc<PlainMeta>>,
    meta_internal: Bytes,
    meta_header: Bytes,
    chunks: Vec<Bytes>,
    body_len: usize,
    /// Set once the body exceeded `max_object_bytes`; the write can no longer succeed.
    failed: bool,
}

#[async_trait]
impl HandleMiss for MemoryMiss {
    /// Buffer a body chunk. Fails (and discards what was buffered) once the body would exceed
    /// the storage's `max_object_bytes`; every later call and `finish` then fail too.
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        let max = self.storage.max_object_bytes;
        if self.failed {
            return Error::e_explain(
                ERR_RESPONSE_TOO_LARGE,
                format!("cache write already failed: body exceeds {max} bytes"),
            );
        }
        let body_len = self.body_len.saturating_add(data.len());
        if body_len > max {
            self.failed = true;
            self.chunks = Vec::new();
            return Error::e_explain(
                ERR_RESPONSE_TOO_LARGE,
                format!("cache body of at least {body_len} bytes exceeds the limit of {max} bytes"),
            );
        }
        self.body_len = body_len;
        if !data.is_empty() {
            self.chunks.push(data);
        }
        Ok(())
    }

    /// Publish the entry and report its weight (body + serialized meta) as
    /// [`MissFinishType::Created`], which pingora passes to the eviction manager's `admit`.
    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let this = *self;
        if this.failed {
            return Error::e_explain(
                ERR_RESPONSE_TOO_LARGE,
                format!("cache body exceeds the limit of {} bytes", this.storage.max_object_bytes),
            );
        }
        // Copy once into an exactly sized buffer: the chunks may be slices of larger buffers
        // that would otherwise stay alive uncounted, and ranges need a contiguous body.
        let mut body = Vec::with_capacity(this.body_len);
        for chunk in &this.chunks {
            body.extend_from_slice(chunk);
        }
        let body = Bytes::from(body);
        let weight = weight_of(body.len(), this.meta_internal.len(), this.meta_header.len());
        let entry = Entry {
            plain_meta: this.plain_meta,
            meta_internal: this.meta_internal,
            meta_header: this.meta_header,
            body,
            weight,
            seq: 0, // assigned by `insert`
        };
        let weight = this.storage.insert(this.key, entry)?;
        Ok(MissFinishType::Created(weight))
    }

    fn entry_id(&self) -> Option<CacheEntryId> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_cache::eviction::simple_lru::Manager;
    use pingora_cache::eviction::EvictionManager;
    use pingora_cache::trace::Span;
    use pingora_http::ResponseHeader;
    use std::time::{Duration, UNIX_EPOCH};

    fn leak(storage: MemoryStorage) -> &'static MemoryStorage {
        Box::leak(Box::new(storage))
    }

    fn span() -> SpanHandle {
        Span::inactive().handle()
    }

    /// Whole-second times, so they survive meta serialization unchanged.
    fn meta_with(tag: &str, fresh_secs: u64) -> CacheMeta {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let created = UNIX_EPOCH + Duration::from_secs(now);
        let mut header = ResponseHeader::build(200, None).unwrap();
        header.append_header("content-type", "image/jpeg").unwrap();
        header.append_header("x-test", tag).unwrap();
        CacheMeta::new(created + Duration::from_secs(fresh_secs), created, 10, 20, header)
    }

    fn meta() -> CacheMeta {
        meta_with("v1", 3600)
    }

    fn meta_len(meta: &CacheMeta) -> usize {
        let (internal, header) = meta.serialize().unwrap();
        internal.len() + header.len()
    }

    async fn put(storage: &'static MemoryStorage, key: &CacheKey, meta: &CacheMeta, body: &[u8]) -> Result<usize> {
        let mut miss = storage.get_miss_handler(key, meta, &span()).await?;
        miss.write_body(Bytes::copy_from_slice(body), true).await?;
        match miss.finish().await? {
            MissFinishType::Created(weight) => Ok(weight),
            MissFinishType::Appended(..) => panic!("storage only creates entries"),
        }
    }

    async fn get(storage: &'static MemoryStorage, key: &CacheKey) -> Option<(CacheMeta, Bytes)> {
        let (meta, mut hit) = storage.lookup(key, &span()).await.unwrap()?;
        let mut body = Vec::new();
        while let Some(chunk) = hit.read_body().await.unwrap() {
            body.extend_from_slice(&chunk);
        }
        Some((meta, Bytes::from(body)))
    }

    /// Address of the first body chunk a hit returns, to check that hits do not copy.
    async fn get_chunk_ptr(storage: &'static MemoryStorage, key: &CacheKey) -> usize {
        let (_, mut hit) = storage.lookup(key, &span()).await.unwrap().unwrap();
        hit.read_body().await.unwrap().unwrap().as_ptr() as usize
    }

    /// Recompute the totals from the shards, to check the atomics against them.
    fn recount(storage: &MemoryStorage) -> StorageStats {
        let mut stats = StorageStats::default();
        for index in 0..SHARDS {
            let shard = storage.read_shard(index);
            assert_eq!(shard.map.len(), shard.order.len());
            stats.entries += shard.map.len();
            stats.bytes += shard.map.values().map(|entry| entry.weight).sum::<usize>();
        }
        stats
    }

    #[tokio::test]
    async fn miss_finish_then_hit_returns_same_body_and_meta() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("/unsafe/300x200/a.jpg", "");
        let meta = meta();
        assert!(storage.lookup(&key, &span()).await.unwrap().is_none());

        let mut miss = storage.get_miss_handler(&key, &meta, &span()).await.unwrap();
        miss.write_body(Bytes::from_static(b"hello "), false).await.unwrap();
        // Not visible before finish.
        assert!(storage.lookup(&key, &span()).await.unwrap().is_none());
        miss.write_body(Bytes::from_static(b"world"), true).await.unwrap();
        let MissFinishType::Created(weight) = miss.finish().await.unwrap() else {
            panic!("expected Created");
        };
        assert_eq!(weight, 11 + meta_len(&meta));
        assert_eq!(storage.stats(), StorageStats { entries: 1, bytes: weight });

        let (meta2, mut hit) = storage.lookup(&key, &span()).await.unwrap().unwrap();
        assert_eq!(hit.get_eviction_weight(), weight);
        assert_eq!(meta2.fresh_until(), meta.fresh_until());
        assert_eq!(meta2.created(), meta.created());
        assert_eq!(meta2.stale_while_revalidate_sec(), 10);
        assert_eq!(meta2.stale_if_error_sec(), 20);
        assert_eq!(meta2.serialize().unwrap(), meta.serialize().unwrap());
        assert_eq!(meta2.headers().get("x-test").unwrap(), "v1");
        let body = hit.read_body().await.unwrap().unwrap();
        assert_eq!(&body[..], b"hello world");
        assert!(hit.read_body().await.unwrap().is_none());

        // A hit shares the stored buffer rather than copying it.
        let (_, mut hit2) = storage.lookup(&key, &span()).await.unwrap().unwrap();
        let body2 = hit2.read_body().await.unwrap().unwrap();
        assert_eq!(body.as_ptr(), body2.as_ptr());
    }

    #[tokio::test]
    async fn dropped_miss_handler_stores_nothing() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("dropped", "");
        let mut miss = storage.get_miss_handler(&key, &meta(), &span()).await.unwrap();
        miss.write_body(Bytes::from_static(b"partial"), false).await.unwrap();
        drop(miss);
        assert!(storage.lookup(&key, &span()).await.unwrap().is_none());
        assert_eq!(storage.stats(), StorageStats::default());
        assert_eq!(recount(storage), StorageStats::default());
    }

    #[tokio::test]
    async fn oversize_body_is_refused() {
        let storage = leak(MemoryStorage::new(10));
        let key = CacheKey::new("big", "");
        let mut miss = storage.get_miss_handler(&key, &meta(), &span()).await.unwrap();
        miss.write_body(Bytes::from_static(b"123456"), false).await.unwrap();
        let err = miss.write_body(Bytes::from_static(b"78901"), false).await.unwrap_err();
        assert_eq!(err.etype(), &ERR_RESPONSE_TOO_LARGE);
        assert!(miss.write_body(Bytes::new(), true).await.is_err());
        assert!(miss.finish().await.is_err());
        assert!(storage.lookup(&key, &span()).await.unwrap().is_none());
        assert_eq!(storage.stats(), StorageStats::default());

        // Exactly at the limit is fine.
        put(storage, &key, &meta(), b"1234567890").await.unwrap();
        assert_eq!(&get(storage, &key).await.unwrap().1[..], b"1234567890");
    }

    #[tokio::test]
    async fn overwrite_replaces_without_double_counting() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("same", "");
        let first = put(storage, &key, &meta(), &[1u8; 100]).await.unwrap();
        assert_eq!(storage.stats().bytes, first);

        let meta2 = meta_with("second-version", 60);
        let second = put(storage, &key, &meta2, &[2u8; 50]).await.unwrap();
        assert_eq!(second, 50 + meta_len(&meta2));
        assert_eq!(storage.stats(), StorageStats { entries: 1, bytes: second });
        assert_eq!(recount(storage), storage.stats());
        let (meta, body) = get(storage, &key).await.unwrap();
        assert_eq!(&body[..], &[2u8; 50]);
        assert_eq!(meta.headers().get("x-test").unwrap(), "second-version");
    }

    #[tokio::test]
    async fn purge_active_compact_key_removes_entry() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("purge-me", "");
        let other = CacheKey::new("keep-me", "");
        put(storage, &key, &meta(), b"body").await.unwrap();
        let kept = put(storage, &other, &meta(), b"other").await.unwrap();

        let compact = key.to_compact();
        let outcome = storage.purge(PurgeTarget::Active(&compact), PurgeType::Invalidation, &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::Purged(None));
        assert!(storage.lookup(&key, &span()).await.unwrap().is_none());
        assert_eq!(storage.stats(), StorageStats { entries: 1, bytes: kept });

        let outcome = storage.purge(PurgeTarget::Active(&compact), PurgeType::Invalidation, &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::NotFound);

        let other_compact = other.to_compact();
        storage.purge(PurgeTarget::Active(&other_compact), PurgeType::Invalidation, &span()).await.unwrap();
        assert_eq!(storage.stats(), StorageStats::default());
        assert_eq!(recount(storage), StorageStats::default());
    }

    #[tokio::test]
    async fn exact_purge_matches_key_only_but_not_identified_entries() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("exact", "");
        put(storage, &key, &meta(), b"body").await.unwrap();

        let identified = CacheEntryKey::identified(key.to_compact(), CacheEntryId::new(1));
        let outcome = storage.purge(PurgeTarget::Exact(&identified), PurgeType::Eviction, &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::NotFound);
        assert_eq!(storage.stats().entries, 1);

        let key_only = CacheEntryKey::key_only(key.to_compact());
        let outcome = storage.purge(PurgeTarget::Exact(&key_only), PurgeType::Eviction, &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::Purged(None));
        assert_eq!(storage.stats(), StorageStats::default());
    }

    #[tokio::test]
    async fn variance_and_user_tag_are_part_of_the_identity() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let plain = CacheKey::new("img", "");
        let mut varied = CacheKey::new("img", "");
        varied.set_variance_key([7u8; 16]);
        let tagged = CacheKey::new("img", "tenant");

        put(storage, &plain, &meta(), b"plain").await.unwrap();
        put(storage, &varied, &meta(), b"varied").await.unwrap();
        put(storage, &tagged, &meta(), b"tagged").await.unwrap();
        assert_eq!(storage.stats().entries, 3);
        assert_eq!(&get(storage, &plain).await.unwrap().1[..], b"plain");
        assert_eq!(&get(storage, &varied).await.unwrap().1[..], b"varied");
        assert_eq!(&get(storage, &tagged).await.unwrap().1[..], b"tagged");

        // The compact form of a varied key purges exactly that variant.
        let compact = varied.to_compact();
        let outcome = storage.purge(PurgeTarget::Active(&compact), PurgeType::Invalidation, &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::Purged(None));
        assert!(get(storage, &varied).await.is_none());
        assert!(get(storage, &plain).await.is_some());
        assert!(get(storage, &tagged).await.is_some());
        assert_eq!(storage.stats().entries, 2);
    }

    #[tokio::test]
    async fn hard_cap_is_never_exceeded() {
        const CAP: usize = 20_000;
        let storage = leak(MemoryStorage::with_hard_cap(4_000, CAP));
        for i in 0..500usize {
            let key = CacheKey::new(format!("entry-{i}"), "");
            let size = 100 + (i * 37) % 3_000;
            let weight = put(storage, &key, &meta(), &vec![i as u8; size]).await.unwrap();
            let stats = storage.stats();
            assert!(stats.bytes <= CAP, "{} > {CAP}", stats.bytes);
            assert_eq!(recount(storage), stats);
            // The entry just written is always kept.
            let (_, body) = get(storage, &key).await.unwrap();
            assert_eq!(body.len(), size);
            assert_eq!(storage.lookup(&key, &span()).await.unwrap().unwrap().1.get_eviction_weight(), weight);
        }
        assert!(storage.hard_cap_evictions() > 0);
        assert!(storage.stats().entries > 1);

        // A single entry larger than the cap is refused outright.
        let huge = CacheKey::new("huge", "");
        let tiny_cap = leak(MemoryStorage::with_hard_cap(1 << 20, 100));
        assert!(put(tiny_cap, &huge, &meta(), &[0u8; 200]).await.is_err());
        assert_eq!(tiny_cap.stats(), StorageStats::default());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hard_cap_holds_under_concurrent_inserts() {
        const CAP: usize = 50_000;
        let storage = leak(MemoryStorage::with_hard_cap(8_000, CAP));
        let tasks: Vec<_> = (0..8usize)
            .map(|t| {
                tokio::spawn(async move {
                    for i in 0..200usize {
                        let key = CacheKey::new(format!("t{t}-{}", i % 50), "");
                        let size = 500 + (i * 131 + t * 17) % 6_000;
                        // Under heavy contention an insert may be refused (the cache then simply
                        // does not store it); what must never happen is exceeding the cap.
                        let _ = put(storage, &key, &meta(), &vec![t as u8; size]).await;
                        assert!(storage.stats().bytes <= CAP);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = storage.stats();
        assert!(stats.bytes <= CAP);
        assert_eq!(recount(storage), stats);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hits_share_one_body() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("hot", "");
        let body: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        put(storage, &key, &meta(), &body).await.unwrap();
        let body = Bytes::from(body);
        let stored = get_chunk_ptr(storage, &key).await;

        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let body = body.clone();
                tokio::spawn(async move {
                    let key = CacheKey::new("hot", "");
                    for _ in 0..200 {
                        let (meta, mut hit) = storage.lookup(&key, &span()).await.unwrap().unwrap();
                        assert_eq!(meta.headers().get("x-test").unwrap(), "v1");
                        let chunk = hit.read_body().await.unwrap().unwrap();
                        assert_eq!(chunk, body);
                        assert_eq!(chunk.as_ptr() as usize, stored);
                        assert!(hit.read_body().await.unwrap().is_none());
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(storage.stats().entries, 1);
    }

    #[tokio::test]
    async fn seek_serves_ranges() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("range", "");
        put(storage, &key, &meta(), b"test1test2").await.unwrap();
        let (_, mut hit) = storage.lookup(&key, &span()).await.unwrap().unwrap();
        assert!(hit.can_seek());
        assert!(hit.seek(10_000, None).is_err());

        hit.seek(5, None).unwrap();
        assert_eq!(&hit.read_body().await.unwrap().unwrap()[..], b"test2");
        assert!(hit.read_body().await.unwrap().is_none());

        hit.seek(4, Some(5)).unwrap();
        assert_eq!(&hit.read_body().await.unwrap().unwrap()[..], b"1");
        assert!(hit.read_body().await.unwrap().is_none());

        // `None` after a bounded seek reads to the end again; ends past the body are clamped.
        hit.seek(8, None).unwrap();
        assert_eq!(&hit.read_body().await.unwrap().unwrap()[..], b"t2");
        hit.seek(0, Some(100)).unwrap();
        assert_eq!(&hit.read_body().await.unwrap().unwrap()[..], b"test1test2");
        assert!(hit.seek(5, Some(3)).is_err());
    }

    #[tokio::test]
    async fn update_meta_replaces_meta_and_adjusts_bytes() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("revalidated", "");
        put(storage, &key, &meta(), b"body").await.unwrap();

        let longer = meta_with(&"x".repeat(300), 7200);
        assert!(storage.update_meta(&key, &longer, &span()).await.unwrap());
        let (meta, body) = get(storage, &key).await.unwrap();
        assert_eq!(&body[..], b"body");
        assert_eq!(meta.fresh_until(), longer.fresh_until());
        assert_eq!(meta.headers().get("x-test").unwrap(), &"x".repeat(300));
        let expected = 4 + meta_len(&longer);
        assert_eq!(storage.stats(), StorageStats { entries: 1, bytes: expected });
        assert_eq!(recount(storage), storage.stats());

        let missing = CacheKey::new("missing", "");
        assert!(!storage.update_meta(&missing, &longer, &span()).await.unwrap());
        assert_eq!(storage.stats().entries, 1);
    }

    #[tokio::test]
    async fn metas_plain_values_cannot_rebuild_go_through_serialization() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let plain = CacheKey::new("plain", "");
        let stored = meta();
        put(storage, &plain, &stored, b"a").await.unwrap();
        let (rebuilt, _) = get(storage, &plain).await.unwrap();
        let (expected, got) = (stored.serialize().unwrap(), rebuilt.serialize().unwrap());
        assert_eq!(got, expected, "a hit rebuilt from values is the meta that was stored");

        let varied = CacheKey::new("varied", "");
        let mut with_variance = meta();
        with_variance.set_variance([7u8; 16]);
        put(storage, &varied, &with_variance, b"b").await.unwrap();
        let (back, _) = get(storage, &varied).await.unwrap();
        assert_eq!(back.variance(), Some([7u8; 16]));
    }

    #[tokio::test]
    async fn expire_keeps_body_but_makes_entry_stale() {
        let storage = leak(MemoryStorage::new(1 << 20));
        let key = CacheKey::new("expire", "");
        put(storage, &key, &meta(), b"body").await.unwrap();
        let compact = key.to_compact();
        let outcome = storage.expire(PurgeTarget::Active(&compact), &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::Expired);
        let (meta, body) = get(storage, &key).await.unwrap();
        assert!(!meta.is_fresh(SystemTime::now() + Duration::from_secs(1)));
        assert_eq!(&body[..], b"body");
        assert_eq!(recount(storage), storage.stats());

        let absent = CacheKey::new("absent", "").to_compact();
        let outcome = storage.expire(PurgeTarget::Active(&absent), &span()).await.unwrap();
        assert_eq!(outcome, PurgeOutcome::NotFound);
    }

    /// Replays pingora's wiring (`finish_miss_handler` + spawned eviction purges) against the
    /// real `simple_lru::Manager` and checks that both sides agree on bytes and entries.
    #[tokio::test]
    async fn eviction_manager_total_matches_storage_bytes() {
        const LIMIT: usize = 30_000;
        let storage = leak(MemoryStorage::new(10_000));
        let manager = Manager::new(LIMIT);
        for i in 0..300usize {
            let key = CacheKey::new(format!("lru-{}", i % 120), "");
            let meta = meta();
            let size = 200 + (i * 53) % 2_000;
            let weight = put(storage, &key, &meta, &vec![0u8; size]).await.unwrap();
            let evicted =
                manager.admit(CacheEntryKey::from_entry_id(key.to_compact(), None), weight, meta.fresh_until());
            for item in evicted {
                let outcome = storage.purge(PurgeTarget::Exact(&item), PurgeType::Eviction, &span()).await.unwrap();
                assert!(matches!(outcome, PurgeOutcome::Purged(None)));
            }
            // Hits report the admitted weight, so `access` agrees too.
            if let Some((meta, hit)) = storage.lookup(&key, &span()).await.unwrap() {
                let entry = CacheEntryKey::from_entry_id(key.to_compact(), hit.entry_id());
                assert!(manager.access(&entry, hit.get_eviction_weight(), meta.fresh_until()));
            }
            assert_eq!(manager.total_size(), storage.stats().bytes);
            assert_eq!(manager.total_items(), storage.stats().entries);
            assert!(storage.stats().bytes <= LIMIT);
        }
        assert!(manager.evicted_items() > 0);
        assert_eq!(recount(storage), storage.stats());
    }
}
