//! The shared tier: results in an S3-compatible bucket that every node of a fleet reads and
//! writes, so several nodes behind one load balancer render each URL once.
//!
//! On a local miss the render task asks the bucket first ([`SharedTier::get`]); a fresh object is
//! answered as the render's reply (freshness counted from when it was first rendered), and
//! pingora-cache stores it locally like any render. Otherwise the node renders and stores the
//! result in the bucket in a spawned task ([`SharedTier::put_later`]): the response never waits.
//! The bucket being slow or down never fails a request: every call is bounded by the S3
//! timeouts, a failure is logged and counted (`thumbora_cache_shared_errors_total`), and after one
//! the bucket is skipped for `down_seconds` (a dead bucket costs no latency per request).
//!
//! # Keys
//! `r/{s[..2]}/{s}/{v}`: `s` = hex SHA-256 of the source image URL, `v` = hex SHA-256 of the
//! result's cache key, so every result of one source shares a prefix that a purge deletes in
//! one listing. An object is a [`disk`](crate::disk) record: the cache key (checked on read),
//! the creation and expiry times, the response headers and the body.
//!
//! # Purges across nodes
//! A purge deletes the objects and appends an entry to the journal, `purge/{unix ms}-{node}`;
//! every node lists the journal every `journal_poll_ms` and bans what each new entry names
//! ([`Bans`]), so copies in other nodes' memory and disk are not served again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::purge::{Bans, Scope};
use crate::config::SharedTierConfig;
use crate::disk::{self, DiskRecord};
use crate::job::RenderJob;
use crate::loader::Loaders;
use crate::metrics;
use crate::response::{Reply, FROM_SHARED, NO_STORE, SOURCE_ETAG, SOURCE_LAST_MODIFIED};
use crate::s3::{S3Client, S3Error};

/// The response headers a stored result keeps (the names a render's reply has): thumbor's, and
/// the source validators (so that a result from the bucket can be revalidated once expired, like
/// one rendered here).
const KEPT_HEADERS: [&str; 8] = [
    "Content-Type",
    "Cache-Control",
    "Expires",
    "ETag",
    "Vary",
    "Access-Control-Allow-Origin",
    SOURCE_ETAG,
    SOURCE_LAST_MODIFIED,
];
const JOURNAL: &str = "purge/";
/// How far back a node starting up reads the journal.
const JOURNAL_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Results in a bucket, shared by every node.
pub struct SharedTier {
    client: S3Client,
    cfg: SharedTierConfig,
    max_object_bytes: usize,
    /// PUTs in flight; past the limit a result is not stored (it is still served and cached).
    writes: Arc<Semaphore>,
    bans: Arc<Bans>,
    /// Unix milliseconds until which the bucket is skipped after a failure.
    down_until: AtomicU64,
    /// This node's name in journal entries.
    node: String,
    /// The last journal key applied.
    cursor: Mutex<String>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

impl SharedTier {
    pub fn new(cfg: &SharedTierConfig, max_object_bytes: usize, bans: Arc<Bans>) -> Result<SharedTier, S3Error> {
        let client = S3Client::new(&cfg.s3)?;
        let started = now_ms();
        let node = format!("{:x}{:05x}", started, std::process::id() & 0xfffff);
        let cursor =
            format!("{}{:013}", client.key(JOURNAL), started.saturating_sub(JOURNAL_LOOKBACK.as_millis() as u64));
        Ok(SharedTier {
            client,
            cfg: cfg.clone(),
            max_object_bytes,
            writes: Arc::new(Semaphore::new(cfg.max_concurrent_writes.max(1))),
            bans,
            down_until: AtomicU64::new(0),
            node,
            cursor: Mutex::new(cursor),
        })
    }

    /// Whether this job's results go to the bucket (`store_unsafe`: thumbor's
    /// RESULT_STORAGE_STORES_UNSAFE).
    pub fn stores(&self, job: &RenderJob) -> bool {
        self.cfg.store_unsafe || !job.request.unsafe_
    }

    fn source_prefix(&self, source: &str) -> String {
        let s = hex_sha256(source.as_bytes());
        self.client.key(&format!("r/{}/{s}/", &s[..2]))
    }

    fn object_key(&self, job: &RenderJob) -> (String, Vec<u8>) {
        let key = super::key_for(job);
        let primary = key.primary_key_str().unwrap_or_default().as_bytes().to_vec();
        (format!("{}{}", self.source_prefix(&job.request.image), hex_sha256(&primary)), primary)
    }

    fn available(&self) -> bool {
        now_ms() >= self.down_until.load(Ordering::Relaxed)
    }

    fn failed(&self, op: &str, key: &str, e: &S3Error) {
        metrics::shared_error(op);
        let down = self.cfg.down_seconds;
        log::warn!("shared tier: {op} {key}: {e}; skipping the bucket for {down} s, rendering from the origin");
        self.down_until.store(now_ms() + down * 1000, Ordering::Relaxed);
    }

    /// The result of `job` from the bucket, when there is a fresh one not purged since, as the
    /// reply a render would give (marked [`FROM_SHARED`] with its creation time). `None` on a
    /// miss, and when the bucket is slow, down or skipped.
    pub async fn get(&self, job: &RenderJob) -> Option<Reply> {
        if !self.stores(job) || !self.available() {
            return None;
        }
        let (key, primary) = self.object_key(job);
        let object = match self.client.get_max(&key, self.max_object_bytes as u64 + 64 * 1024).await {
            Ok(object) => object?,
            Err(e) => {
                self.failed("get", &key, &e);
                return None;
            }
        };
        let record = disk::decode(object)?;
        if record.key != primary.as_slice() {
            return None;
        }
        let (created, expires, made_from) = times(&record.meta_internal)?;
        let now = now_ms() / 1000;
        if expires <= now || self.bans.covers(job, UNIX_EPOCH + Duration::from_secs(made_from)) {
            return None;
        }
        let mut headers: Vec<(&'static str, String)> = Vec::new();
        for line in String::from_utf8_lossy(&record.meta_header).lines() {
            let Some((name, value)) = line.split_once(": ") else { continue };
            if let Some(name) = KEPT_HEADERS.iter().find(|kept| kept.eq_ignore_ascii_case(name)) {
                headers.push((name, value.to_string()));
            }
        }
        headers.push((FROM_SHARED, created.to_string()));
        Some(Reply { status: 200, headers, body: record.body })
    }

    /// Store a rendered 200 in the bucket, in a task of its own (the response does not wait),
    /// with when its source was fetched (`made_from`): purges are checked against that, since a
    /// result is as old as its bytes, so that a purge made after they were fetched covers it on
    /// every node, even when this node rendered it from a cached original before it read the
    /// purge in the journal. (Its HTTP age and expiry count from now, its render.) Skipped when
    /// too many writes are in flight, the bucket is down, or the reply is not cacheable (no
    /// max-age, or marked [`NO_STORE`]: rendered from a source that arrived cut).
    pub fn put_later(self: &Arc<Self>, job: &RenderJob, reply: &Reply, made_from: SystemTime) {
        if reply.status != 200 || reply.header(NO_STORE).is_some() {
            return;
        }
        if !self.stores(job) || !self.available() || reply.body.len() > self.max_object_bytes {
            return;
        }
        let Some(max_age) = reply.header("Cache-Control").and_then(crate::response::max_age).filter(|age| *age > 0)
        else {
            return;
        };
        let Ok(permit) = self.writes.clone().try_acquire_owned() else {
            // Too many writes in flight: this result is not stored (it is served and kept locally).
            metrics::shared_error("put_skipped");
            return;
        };
        let created = now_ms() / 1000;
        let made_from = made_from.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut times = Vec::with_capacity(24);
        times.extend_from_slice(&created.to_le_bytes());
        times.extend_from_slice(&created.saturating_add(max_age).to_le_bytes());
        times.extend_from_slice(&made_from.to_le_bytes());
        let header: String = reply
            .headers
            .iter()
            .filter(|(name, _)| KEPT_HEADERS.contains(name))
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect();
        let (key, primary) = self.object_key(job);
        let record = DiskRecord {
            key: Bytes::from(primary),
            meta_internal: Bytes::from(times),
            meta_header: Bytes::from(header),
            body: reply.body.clone(),
        };
        let this = self.clone();
        tokio::spawn(async move {
            let body = Bytes::from(disk::encode(&record));
            if let Err(e) = this.client.put(&key, body, "application/octet-stream").await {
                this.failed("put", &key, &e);
            }
            drop(permit);
        });
    }

    /// Delete what `scope` names from the bucket (`job`: the purged URL, or any URL of the
    /// purged source), and tell the other nodes through the journal.
    pub async fn purge(&self, job: &RenderJob, scope: &Scope) {
        let deleted = match scope {
            Scope::Source(source) => self.client.delete_prefix(&self.source_prefix(source)).await.map(drop),
            Scope::Url(_) => {
                let mut result = Ok(());
                for variant in super::variants(job) {
                    if let Err(e) = self.client.delete(&self.object_key(&variant).0).await {
                        result = Err(e);
                    }
                }
                result
            }
        };
        if let Err(e) = deleted {
            self.failed("delete", &job.request.image, &e);
        }
        let entry = self.client.key(&format!("{JOURNAL}{:013}-{}", now_ms(), self.node));
        let body = serde_json::to_vec(scope).unwrap_or_default();
        if let Err(e) = self.client.put(&entry, Bytes::from(body), "application/json").await {
            self.failed("put", &entry, &e);
        }
    }

    /// Apply the journal entries written since the last poll: drop the original each names from
    /// `loaders` (memory and disk), then ban what it names as of now (or of when it was written,
    /// if that is later by the clocks). The original goes first, so that a render after the ban
    /// fetches the source again instead of making (and storing in the bucket, past the ban) the
    /// old picture from the old bytes; the ban covers what this node made from those bytes
    /// between the purge and this poll.
    async fn poll_journal(&self, loaders: &Loaders) -> Result<usize, S3Error> {
        let after = self.cursor.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let keys = self.client.list(&self.client.key(JOURNAL), Some(&after), 1000).await?;
        let mut applied = 0;
        for key in &keys {
            let name = key.rsplit('/').next().unwrap_or_default();
            let (at, node) = name.split_once('-').unwrap_or((name, ""));
            let at = at.parse::<u64>().unwrap_or(0);
            if node != self.node {
                if let Some(scope) = self.client.get(key).await?.and_then(|b| serde_json::from_slice::<Scope>(&b).ok())
                {
                    if let Some(source) = scope.source() {
                        loaders.forget(&source).await;
                    }
                    // As of now, not only of when the purge was written: until the original was
                    // forgotten just above, this node could still render from its old bytes.
                    let as_of = SystemTime::now().max(UNIX_EPOCH + Duration::from_millis(at));
                    // Bans are saved to disk: off the async threads.
                    let bans = self.bans.clone();
                    let _ = tokio::task::spawn_blocking(move || bans.ban(&scope, as_of)).await;
                    applied += 1;
                }
            }
            *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = key.clone();
        }
        Ok(applied)
    }
}

/// `(created, expires, made_from)` unix seconds from a stored record's times: when the result
/// was rendered, when it expires, and when its source was fetched (records written before that
/// was kept: their creation).
fn times(data: &[u8]) -> Option<(u64, u64, u64)> {
    let (created, rest) = data.split_first_chunk::<8>()?;
    let (expires, rest) = rest.split_first_chunk::<8>()?;
    let created = u64::from_le_bytes(*created);
    let made_from = rest.split_first_chunk::<8>().map_or(created, |(made_from, _)| u64::from_le_bytes(*made_from));
    Some((created, u64::from_le_bytes(*expires), made_from))
}

/// The journal poller, as a Pingora background service (it runs after `-d` forks): the shared
/// tier, and the loaders whose originals a purge drops.
pub struct JournalPoller(pub Arc<SharedTier>, pub Loaders);

#[async_trait]
impl BackgroundService for JournalPoller {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let every = Duration::from_millis(self.0.cfg.journal_poll_ms.max(50));
        loop {
            match self.0.poll_journal(&self.1).await {
                Ok(0) => {}
                Ok(n) => log::info!("shared tier: applied {n} purges from other nodes"),
                Err(e) => {
                    metrics::shared_error("list");
                    log::warn!("shared tier: reading the purge journal: {e}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
