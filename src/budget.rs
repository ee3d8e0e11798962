//! What one render may spend: a deadline, its client's continued presence, and memory beyond its
//! estimate. The render pool installs a [`Budget`] on the render thread for the length of a job;
//! decoders, transforms and filters call [`checkpoint`] between rows, scans, frames and filters,
//! and [`reserve`] before an allocation the estimate did not foresee. Outside a render (unit
//! tests, the examples) there is no budget: checkpoints pass and reservations are free.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind, Result};

/// Memory is counted in MiB so that semaphore permits stay few.
pub const MEMORY_UNIT: u64 = 1024 * 1024;

/// The limits one render runs under.
pub struct Budget {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
    memory: Option<Memory>,
}

/// Memory units taken from the shared budget, and the budget itself (to take more).
struct Memory {
    pool: Arc<Semaphore>,
    held: OwnedSemaphorePermit,
}

impl Budget {
    /// A render that must end by `deadline` (if any) and stops when `cancelled` is raised.
    pub fn new(deadline: Option<Instant>, cancelled: Arc<AtomicBool>) -> Self {
        Budget { deadline, cancelled, memory: None }
    }

    /// The memory this render holds, and the shared budget it may take more from.
    pub fn with_memory(mut self, pool: Arc<Semaphore>, held: OwnedSemaphorePermit) -> Self {
        self.memory = Some(Memory { pool, held });
        self
    }

    fn check(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Error::new(ErrorKind::Cancelled, "the client left"));
        }
        match self.deadline {
            Some(deadline) if Instant::now() > deadline => {
                Err(Error::new(ErrorKind::RenderTimeout, "render passed render.deadline_ms"))
            }
            _ => Ok(()),
        }
    }

    fn reserve(&mut self, bytes: u64) -> Result<()> {
        let Some(memory) = &mut self.memory else { return Ok(()) };
        let units = u32::try_from(bytes.div_ceil(MEMORY_UNIT)).unwrap_or(u32::MAX);
        let more = memory.pool.clone().try_acquire_many_owned(units).map_err(|_| {
            Error::new(ErrorKind::MemoryBudget, format!("render needs {units} MiB more than its estimate; budget busy"))
        })?;
        memory.held.merge(more);
        Ok(())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Run `work` under `budget` on this thread; the budget (and the memory it holds) is released
/// when `work` returns or unwinds.
pub fn within<T>(budget: Budget, work: impl FnOnce() -> T) -> T {
    struct Uninstall;
    impl Drop for Uninstall {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(budget));
    let _uninstall = Uninstall;
    work()
}

/// Stop here if the render ran past its deadline or its client left.
pub fn checkpoint() -> Result<()> {
    CURRENT.with(|c| c.borrow().as_ref().map_or(Ok(()), Budget::check))
}

/// Take `bytes` more from the memory budget for the rest of the render, or fail at once
/// ([`ErrorKind::MemoryBudget`]) when the budget has no room now.
pub fn reserve(bytes: u64) -> Result<()> {
    CURRENT.with(|c| c.borrow_mut().as_mut().map_or(Ok(()), |b| b.reserve(bytes)))
}

/// [`checkpoint`] every `every` iterations of a loop (for loops whose steps are very cheap).
pub fn checkpoint_every(i: usize, every: usize) -> Result<()> {
    if i.is_multiple_of(every.max(1)) {
        checkpoint()
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn no_budget_no_limits() {
        assert!(checkpoint().is_ok());
        assert!(reserve(u64::MAX).is_ok());
    }

    #[test]
    fn deadline_and_cancellation_stop_at_the_next_checkpoint() {
        let cancelled = Arc::new(AtomicBool::new(false));
        let past = Budget::new(Some(Instant::now() - Duration::from_millis(1)), cancelled.clone());
        assert_eq!(within(past, checkpoint).unwrap_err().kind(), ErrorKind::RenderTimeout);
        let future = Budget::new(Some(Instant::now() + Duration::from_secs(60)), cancelled.clone());
        within(future, || {
            assert!(checkpoint().is_ok());
            cancelled.store(true, Ordering::Relaxed);
            assert_eq!(checkpoint().unwrap_err().kind(), ErrorKind::Cancelled);
        });
        assert!(checkpoint().is_ok(), "uninstalled after the work");
    }

    #[test]
    fn reservations_come_from_the_shared_budget_and_return_to_it() {
        let pool = Arc::new(Semaphore::new(10));
        let held = pool.clone().try_acquire_many_owned(4).unwrap();
        let budget = Budget::new(None, Arc::new(AtomicBool::new(false))).with_memory(pool.clone(), held);
        within(budget, || {
            assert!(reserve(5 * MEMORY_UNIT).is_ok());
            assert_eq!(pool.available_permits(), 1);
            assert_eq!(reserve(2 * MEMORY_UNIT).unwrap_err().kind(), ErrorKind::MemoryBudget);
        });
        assert_eq!(pool.available_permits(), 10, "everything back when the render ends");
    }
}
