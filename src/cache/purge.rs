//! Purging: dropping one URL's results from every local tier, and banning results created
//! before a purge (of one URL, or of every variant of one source image) that cannot be found by
//! key: JSONP callbacks, results on other nodes, copies in the shared tier written late.
//!
//! A ban is `(what, time)`: a cached result whose canonical URL or source matches and which was
//! created at or before `time` is treated as a miss (and overwritten by the new render). Bans
//! are saved beside the disk tier so they hold after a restart, and are forgotten after
//! [`BAN_RETENTION`], by when no result they cover is still served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pingora_cache::eviction::CacheEntryKeyRef;
use pingora_cache::storage::{PurgeTarget, PurgeType, Storage};
use pingora_cache::trace::Span;
use serde::{Deserialize, Serialize};

use super::ResultCache;
use crate::job::RenderJob;

/// How long a ban is kept: longer than any result lives (a year of max-age is thumbor's
/// largest common setting; results past their max-age are rendered again anyway).
pub const BAN_RETENTION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Bans kept at most; the oldest go first.
const MAX_BANS: usize = 100_000;
const BANS_FILE: &str = "bans.json";

/// What a purge drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One thumbor URL (its canonical form), every `Accept` and callback variant.
    Url(String),
    /// Every result of one source image.
    Source(String),
}

impl Scope {
    /// The source image URL whose results the scope names (a URL's own source).
    pub fn source(&self) -> Option<String> {
        match self {
            Scope::Url(url) => crate::url::parse(&format!("/unsafe/{url}")).ok().map(|request| request.image),
            Scope::Source(image) => Some(image.clone()),
        }
    }

    /// The metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Scope::Url(_) => "url",
            Scope::Source(_) => "source",
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct BanMap {
    /// Canonical URL → unix milliseconds of the purge.
    urls: HashMap<String, u64>,
    /// Source image URL → unix milliseconds of the purge.
    sources: HashMap<String, u64>,
}

/// Results purged by URL or source, until they are rendered again.
pub struct Bans {
    map: RwLock<BanMap>,
    /// Fast path: no ban at all (every hit checks this).
    any: AtomicBool,
    file: Option<PathBuf>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Bans {
    /// Bans saved in `dir` (the disk tier's directory), or kept in memory only.
    pub fn load(dir: Option<&Path>) -> Bans {
        let file = dir.map(|d| d.join(BANS_FILE));
        let mut map: BanMap = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|data| serde_json::from_slice(&data).ok())
            .unwrap_or_default();
        let oldest = unix_ms(SystemTime::now().checked_sub(BAN_RETENTION).unwrap_or(UNIX_EPOCH));
        map.urls.retain(|_, t| *t >= oldest);
        map.sources.retain(|_, t| *t >= oldest);
        let any = !map.urls.is_empty() || !map.sources.is_empty();
        Bans { map: RwLock::new(map), any: AtomicBool::new(any), file }
    }

    /// Ban what `scope` names, as of `at`.
    pub fn ban(&self, scope: &Scope, at: SystemTime) {
        let at = unix_ms(at);
        let mut guard = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let map = &mut *guard;
        let (table, key) = match scope {
            Scope::Url(url) => (&mut map.urls, url),
            Scope::Source(source) => (&mut map.sources, source),
        };
        let entry = table.entry(key.clone()).or_insert(at);
        *entry = (*entry).max(at);
        for table in [&mut map.urls, &mut map.sources] {
            if table.len() > MAX_BANS {
                let mut times: Vec<u64> = table.values().copied().collect();
                times.sort_unstable();
                let cut = times[table.len() - MAX_BANS];
                table.retain(|_, t| *t >= cut);
            }
        }
        self.any.store(true, Ordering::Release);
        if let Some(file) = &self.file {
            let saved = serde_json::to_vec(&*guard).map_err(std::io::Error::other).and_then(|data| {
                let tmp = file.with_extension("json.tmp");
                std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, file))
            });
            if let Err(e) = saved {
                log::warn!("{}: saving the purge bans: {e}", file.display());
            }
        }
    }

    /// Whether a result of `job` created at `created` was purged since.
    pub fn covers(&self, job: &RenderJob, created: SystemTime) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let created = unix_ms(created);
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let banned = |t: Option<&u64>| t.is_some_and(|t| created <= *t);
        banned(map.sources.get(&job.request.image))
            || (!map.urls.is_empty() && banned(map.urls.get(&crate::url::compose_unsigned(&job.request))))
    }
}

impl ResultCache {
    /// Drop what `scope` names from this node's tiers and the shared bucket (other nodes learn
    /// of it from the bucket's journal), and ban what cannot be found by key. `job`
    /// is the purged URL (for a source purge, any URL of that source); its results are removed at
    /// once under every `Accept` variant. Returns how many entries were removed.
    pub async fn purge(&self, job: &RenderJob, scope: &Scope) -> usize {
        let (bans, banned, now) = (self.bans.clone(), scope.clone(), SystemTime::now());
        // The ban is saved to disk: off the async threads.
        let _ = tokio::task::spawn_blocking(move || bans.ban(&banned, now)).await;
        let mut removed = 0;
        for variant in super::variants(job) {
            let compact = super::key_for(&variant).to_compact();
            let span = Span::inactive().handle();
            let purged = self.storage.purge(PurgeTarget::Active(&compact), PurgeType::Invalidation, &span).await;
            if matches!(purged, Ok(pingora_cache::storage::PurgeOutcome::Purged(_))) {
                removed += 1;
            }
            pingora_cache::eviction::EvictionManager::remove(self.eviction, CacheEntryKeyRef::KeyOnly(&compact));
        }
        if let Some(shared) = &self.shared {
            shared.purge(job, scope).await;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Accepts;
    use crate::url::parse;

    fn job(path: &str) -> RenderJob {
        RenderJob { request: parse(path).unwrap(), filters: vec![], accepts: Accepts::default(), meta_callback: None }
    }

    #[test]
    fn bans_cover_what_was_created_before() {
        let dir = tempfile::tempdir().unwrap();
        let bans = Bans::load(Some(dir.path()));
        let a = job("/unsafe/300x200/h/a.jpg");
        let a_other_size = job("/unsafe/100x100/h/a.jpg");
        let b = job("/unsafe/300x200/h/b.jpg");
        let before = SystemTime::now() - Duration::from_secs(5);
        assert!(!bans.covers(&a, before));
        bans.ban(&Scope::Url(crate::url::compose_unsigned(&a.request)), SystemTime::now());
        assert!(bans.covers(&a, before));
        assert!(!bans.covers(&a_other_size, before), "one URL");
        assert!(!bans.covers(&a, SystemTime::now() + Duration::from_secs(1)), "rendered after the purge");
        bans.ban(&Scope::Source("h/a.jpg".into()), SystemTime::now());
        assert!(bans.covers(&a_other_size, before), "every variant of the source");
        assert!(!bans.covers(&b, before));
        // Saved: a restart keeps them.
        let reloaded = Bans::load(Some(dir.path()));
        assert!(reloaded.covers(&a_other_size, before));
    }
}
