//! Admitted image requests remembered by their raw target: a repeat request for a URL already
//! admitted skips the URL grammar, the source and signature checks, the filter parsing and the
//! cache-key hash, which are most of what a cache hit costs beyond Pingora itself.
//!
//! Admission is a pure function of the target, the client's `Accept` class and the config (which
//! a process never changes: a reload is a new process), so a remembered answer is the answer.
//! Only admitted requests are remembered; refusals are worked out (and logged) every time. The
//! memo is bounded by bytes and evicts the coldest entries (quick_cache's CLOCK-Pro), so a client
//! inventing URLs costs it nothing but the entries it pushes out.

use std::sync::Arc;

use pingora_cache::key::{CacheHashKey, CacheKey};
use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use crate::error::Result;
use crate::job::RenderJob;

/// Bytes the memo may hold (as estimated by [`Weight`]): some ten thousand typical URLs.
pub const MEMO_BYTES: u64 = 8 * 1024 * 1024;

/// A request admitted as a render job, with its cache key (whose hash is computed once).
pub struct Admitted {
    pub job: Arc<RenderJob>,
    pub key: CacheKey,
}

impl Admitted {
    pub fn new(job: RenderJob) -> Self {
        let mut key = crate::cache::key_for(&job);
        // The key's blake2 hash, once: every later lookup with this key reads it.
        key.set_primary_bin_override(key.primary_bin());
        Admitted { job: Arc::new(job), key }
    }
}

/// The `Accept` class a memo entry is for: 0 when no job can negotiate its format (no
/// `auto_webp`/`auto_avif`), else the WebP and AVIF bits of [`crate::negotiate::accepts`].
pub type AcceptClass = u8;

type Key = (Box<str>, AcceptClass);

/// A lookup without allocating: hashes and compares as the stored `(Box<str>, u8)` does.
#[derive(Hash)]
struct Lookup<'a>(&'a str, AcceptClass);

impl Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self.0 == *key.0 && self.1 == key.1
    }
}

/// An entry's weight: the target (stored in the key, and about again in the job and the cache
/// key) and a fixed share for the job's other fields and the map.
#[derive(Clone)]
struct Weight;

impl Weighter<Key, Arc<Admitted>> for Weight {
    fn weight(&self, key: &Key, _: &Arc<Admitted>) -> u64 {
        3 * key.0.len() as u64 + 512
    }
}

/// The `Accept` class of a request with this `Accept` field under `image`'s negotiation.
pub fn accept_class(image: &crate::config::ImageConfig, accept: Option<&str>) -> AcceptClass {
    if !image.auto_formats() {
        return 0;
    }
    let accepts = crate::negotiate::accepts(accept.unwrap_or_default());
    u8::from(accepts.webp) | u8::from(accepts.avif) << 1
}

/// The memo: raw target and `Accept` class to the admitted job.
pub struct AdmissionMemo {
    entries: Cache<Key, Arc<Admitted>, Weight>,
}

impl AdmissionMemo {
    pub fn new(bytes: u64) -> Self {
        AdmissionMemo { entries: Cache::with_weighter((bytes / 1024) as usize, bytes, Weight) }
    }

    /// The admitted job for `target`, from the memo or from `admit` (remembered when it admits).
    pub fn admit(
        &self,
        target: &str,
        class: AcceptClass,
        admit: impl FnOnce() -> Result<RenderJob>,
    ) -> Result<Arc<Admitted>> {
        if let Some(admitted) = self.entries.get(&Lookup(target, class)) {
            return Ok(admitted);
        }
        let admitted = Arc::new(Admitted::new(admit()?));
        self.entries.insert((target.into(), class), admitted.clone());
        Ok(admitted)
    }

    /// The admitted job for `target`, if it is remembered (nothing is admitted here).
    pub fn get(&self, target: &str, class: AcceptClass) -> Option<Arc<Admitted>> {
        self.entries.get(&Lookup(target, class))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::job::Accepts;

    fn job(path: &str) -> Result<RenderJob> {
        let request = crate::url::parse(path)?;
        Ok(RenderJob { request, filters: vec![], accepts: Accepts::default(), meta_callback: None })
    }

    #[test]
    fn a_target_is_admitted_once_then_remembered_per_accept_class() {
        let memo = AdmissionMemo::new(MEMO_BYTES);
        let mut calls = 0;
        let a = memo
            .admit("/unsafe/300x200/a.jpg", 0, || {
                calls += 1;
                job("/unsafe/300x200/a.jpg")
            })
            .unwrap();
        let b = memo
            .admit("/unsafe/300x200/a.jpg", 0, || {
                calls += 1;
                job("/unsafe/300x200/a.jpg")
            })
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(calls, 1);
        let webp = memo
            .admit("/unsafe/300x200/a.jpg", 1, || {
                calls += 1;
                job("/unsafe/300x200/a.jpg")
            })
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &webp));
        assert_eq!(calls, 2);
        // The remembered key is the key: same hash as computing it afresh.
        assert_eq!(a.key.combined_bin(), crate::cache::key_for(&a.job).combined_bin());
    }

    #[test]
    fn refusals_are_not_remembered() {
        let memo = AdmissionMemo::new(MEMO_BYTES);
        for _ in 0..2 {
            let err = memo.admit("/bad", 0, || Err(Error::new(ErrorKind::BadUrl, "no"))).err().unwrap();
            assert_eq!(err.kind(), ErrorKind::BadUrl);
        }
        assert_eq!(memo.len(), 0);
    }

    #[test]
    fn the_memo_stays_within_its_bytes() {
        let memo = AdmissionMemo::new(64 * 1024);
        for i in 0..10_000 {
            let path = format!("/unsafe/{i}x200/a.jpg");
            memo.admit(&path, 0, || job(&path)).unwrap();
        }
        // 64 KiB at >= 512 bytes an entry: at most 128 entries.
        assert!(memo.len() <= 128, "{} entries", memo.len());
    }
}
