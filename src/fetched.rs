//! Fetched bytes and the memory they hold: the `sources.fetch_memory_bytes` pool, the
//! reservation one fetch grows as a body arrives, and the [`Source`] that keeps that share until
//! the last request using the bytes is gone. Below the loaders (which fill it) and the filters
//! (whose watermark and frame images are sources too).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind, Result};

/// Fetch memory is counted in 64 KiB units.
const MEMORY_UNIT: u64 = 64 * 1024;

/// A fetched source. Clones share the bytes, and the share of `sources.fetch_memory_bytes` they
/// hold until the last clone is dropped (a source served from the originals cache holds none:
/// the cache has its own bound).
#[derive(Clone)]
pub struct Source {
    bytes: Bytes,
    validators: Validators,
    /// When these bytes came from the origin (now, for a fresh fetch; earlier, from a cache).
    fetched: SystemTime,
    _memory: Option<Arc<OwnedSemaphorePermit>>,
}

impl Source {
    /// Bytes that hold no fetch memory (the originals cache, tests).
    pub fn unbudgeted(bytes: Bytes) -> Source {
        Source { bytes, validators: Validators::default(), fetched: SystemTime::now(), _memory: None }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The origin's validators for these bytes (none when it sent none).
    pub fn validators(&self) -> &Validators {
        &self.validators
    }

    /// The same source, with the origin's validators.
    pub fn with_validators(mut self, validators: Validators) -> Source {
        self.validators = validators;
        self
    }

    /// When these bytes came from the origin: what a result made from them is as old as.
    pub fn fetched(&self) -> SystemTime {
        self.fetched
    }

    /// The same source, fetched at `at` (kept in a cache since).
    pub fn fetched_at(mut self, at: SystemTime) -> Source {
        self.fetched = at;
        self
    }
}

/// What the origin said identifies a version of a source (its `ETag` and `Last-Modified`), kept
/// with the results made from it so that an expired result can be revalidated against the
/// origin (a conditional fetch) instead of rendered again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is nothing to revalidate with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
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
    units: u64,
}

impl FetchMemory {
    pub fn new(bytes: u64) -> Self {
        let units = bytes.div_ceil(MEMORY_UNIT).max(1);
        FetchMemory { pool: Arc::new(Semaphore::new(units as usize)), units }
    }

    /// An empty reservation, grown as a body arrives.
    pub fn reservation(&self) -> Reservation {
        Reservation { pool: self.pool.clone(), held: None, bytes: 0 }
    }

    /// Bytes free now.
    pub fn available(&self) -> u64 {
        self.pool.available_permits() as u64 * MEMORY_UNIT
    }

    /// Bytes held now (whole units).
    pub fn in_use(&self) -> u64 {
        self.units.saturating_sub(self.pool.available_permits() as u64) * MEMORY_UNIT
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
            Error::new(ErrorKind::MemoryBudget, "sources.fetch_memory_bytes is taken by fetches in flight")
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
        Source {
            bytes,
            validators: Validators::default(),
            fetched: SystemTime::now(),
            _memory: self.held.map(Arc::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_memory_is_held_until_the_last_source_is_dropped() {
        let memory = FetchMemory::new(4 * MEMORY_UNIT);
        let mut first = memory.reservation();
        first.grow_to(100).unwrap();
        first.grow_to(MEMORY_UNIT + 1).unwrap();
        assert_eq!(memory.available(), 2 * MEMORY_UNIT);
        assert_eq!(memory.in_use(), 2 * MEMORY_UNIT);
        let source = first.into_source(Bytes::from_static(b"x"));
        let copy = source.clone();
        let mut second = memory.reservation();
        assert_eq!(second.grow_to(3 * MEMORY_UNIT).unwrap_err().kind(), ErrorKind::MemoryBudget);
        drop(source);
        assert_eq!(memory.available(), 2 * MEMORY_UNIT, "a clone still holds it");
        drop(copy);
        assert_eq!(memory.available(), 4 * MEMORY_UNIT);
        assert_eq!(memory.in_use(), 0);
        second.grow_to(3 * MEMORY_UNIT).unwrap();
    }
}
