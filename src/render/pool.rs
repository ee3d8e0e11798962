//! The render pool: a fixed set of OS threads (one per core by default, lowered in priority so
//! the proxy threads serving cache hits get the CPU first), a bounded queue, and a memory budget.
//! Past the queue a render is refused at once (503) instead of waiting without bound. Each job
//! runs under a [`Budget`]: a deadline, and a cancellation flag raised when the request that
//! waits for it goes away (its client left), so a queued job is skipped and a running one stops
//! at its next checkpoint.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

use crate::budget::{self, Budget, MEMORY_UNIT as UNIT};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{self, RenderSlot};

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct RenderPool {
    sender: crossbeam_channel::Sender<Job>,
    /// Renders admitted and not finished (running or waiting).
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    threads: usize,
    memory: Arc<Semaphore>,
    memory_units: u32,
    memory_wait: Duration,
    /// How long one job may run once it has a thread; `None`: no limit.
    deadline: Option<Duration>,
    workers: Workers,
}

/// The render threads, started on the first admission rather than when the pool is built: the
/// pool is built before Pingora daemonizes (`-d` forks, and a fork keeps only the calling
/// thread), so threads started then would be gone in the daemon.
struct Workers {
    receiver: crossbeam_channel::Receiver<Job>,
    threads: usize,
    nice: i32,
    started: Once,
}

impl Workers {
    fn ensure_started(&self) {
        self.started.call_once(|| {
            for i in 0..self.threads {
                let receiver = self.receiver.clone();
                let nice = self.nice;
                let spawned = std::thread::Builder::new().name(format!("thumbora-render-{i}")).spawn(move || {
                    lower_priority(nice);
                    for job in receiver {
                        job();
                    }
                });
                if let Err(e) = spawned {
                    log::error!("cannot start render thread {i}: {e}");
                }
            }
        });
    }
}

/// What the pool is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub admitted: usize,
    pub capacity: usize,
    pub memory_free_mib: usize,
}

impl RenderPool {
    /// `threads` render threads, `queue` renders waiting beyond them, `memory_budget` bytes shared
    /// by the renders in flight, `nice` added to the threads' niceness.
    pub fn new(threads: usize, queue: usize, memory_budget: u64, nice: i32) -> Self {
        Self::with_deadline(threads, queue, memory_budget, nice, None)
    }

    /// [`RenderPool::new`], with each job stopped at its first checkpoint past `deadline`.
    pub fn with_deadline(
        threads: usize,
        queue: usize,
        memory_budget: u64,
        nice: i32,
        deadline: Option<Duration>,
    ) -> Self {
        let threads = threads.max(1);
        let capacity = threads + queue;
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(capacity);
        let workers = Workers { receiver, threads, nice, started: Once::new() };
        let memory_units = (memory_budget / UNIT).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        RenderPool {
            sender,
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity,
            threads,
            memory: Arc::new(Semaphore::new(memory_units as usize)),
            memory_units,
            memory_wait: Duration::from_secs(30),
            deadline,
            workers,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            admitted: self.admitted.load(Ordering::Relaxed),
            capacity: self.capacity,
            memory_free_mib: self.memory.available_permits(),
        }
    }

    /// Bytes of the memory budget held by renders now (whole units).
    pub fn memory_in_use_bytes(&self) -> u64 {
        let free = self.memory.available_permits() as u64;
        u64::from(self.memory_units).saturating_sub(free) * UNIT
    }

    /// Take a place in the queue, or fail at once with [`ErrorKind::Overloaded`] when it is full.
    /// Taken before the source is fetched, so the sources held in memory are bounded too.
    pub fn admit(&self) -> Result<Admission> {
        self.workers.ensure_started();
        Admission::try_new(&self.admitted, self.capacity)
            .ok_or_else(|| Error::new(ErrorKind::Overloaded, "render queue full"))
    }

    /// Admit and run: [`RenderPool::admit`] then [`RenderPool::run_admitted`].
    pub async fn run<T, F>(&self, cost: u64, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let admission = self.admit()?;
        self.run_admitted(admission, cost, work).await
    }

    /// Run `work` on a render thread once `cost` bytes of the memory budget are free.
    /// Refused with [`ErrorKind::MemoryBudget`] when the budget stays taken too long, and with
    /// [`ErrorKind::TooLarge`] when `cost` exceeds the whole budget.
    pub async fn run_admitted<T, F>(&self, mut admission: Admission, cost: u64, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let asked = Instant::now();
        let units = cost.div_ceil(UNIT).max(1);
        if units > u64::from(self.memory_units) {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("render needs {} MiB, above render.memory_budget_bytes", units),
            ));
        }
        let permit = tokio::time::timeout(self.memory_wait, self.memory.clone().acquire_many_owned(units as u32))
            .await
            .map_err(|_| Error::new(ErrorKind::MemoryBudget, "render memory budget busy"))?
            .map_err(|_| Error::new(ErrorKind::Internal, "render pool closed"))?;
        let (tx, rx) = oneshot::channel();
        // Raised when this future is dropped before the job reports back: the request went away.
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let (memory, deadline) = (self.memory.clone(), self.deadline);
        let job: Job = Box::new(move || {
            let result = if cancelled.load(Ordering::Relaxed) {
                Err(Error::new(ErrorKind::Cancelled, "the client left while the render was queued"))
            } else {
                metrics::render_waited(asked.elapsed());
                admission.slot.start();
                let budget = Budget::new(deadline.map(|d| Instant::now() + d), cancelled).with_memory(memory, permit);
                catch_unwind(AssertUnwindSafe(|| budget::within(budget, work))).unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    log::error!("render panicked: {what}");
                    Err(Error::new(ErrorKind::Internal, format!("render panicked: {what}")))
                })
            };
            drop(admission);
            let _ = tx.send(result);
        });
        self.sender.try_send(job).map_err(|_| Error::new(ErrorKind::Overloaded, "render queue full"))?;
        rx.await.map_err(|_| Error::new(ErrorKind::Internal, "render thread gone"))?
    }
}

/// Raises a job's cancellation flag when the future waiting for the job is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A place in the pool (running or waiting), released on drop.
pub struct Admission {
    counter: Arc<AtomicUsize>,
    /// The render as the queue-depth and in-flight metrics count it.
    slot: RenderSlot,
}

impl Admission {
    fn try_new(counter: &Arc<AtomicUsize>, capacity: usize) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < capacity).then_some(n + 1))
            .ok()
            .map(|_| Admission { counter: counter.clone(), slot: RenderSlot::queued() })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Raise this thread's niceness (Linux applies `setpriority` per thread id).
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id; no memory is shared.
        #[allow(unsafe_code)]
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, current + nice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_returns_results() {
        let pool = RenderPool::new(2, 2, 64 * UNIT, 0);
        let v = pool.run(UNIT, || Ok(21 * 2)).await.unwrap();
        assert_eq!(v, 42);
        assert_eq!(pool.stats().admitted, 0);
    }

    #[tokio::test]
    async fn a_panic_fails_only_its_request() {
        let pool = RenderPool::new(1, 1, 64 * UNIT, 0);
        let err = pool.run(UNIT, || -> Result<()> { panic!("boom") }).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(pool.run(UNIT, || Ok(1)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn overflow_is_refused_at_once() {
        let pool = Arc::new(RenderPool::new(1, 1, 64 * UNIT, 0));
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let mut running = Vec::new();
        for _ in 0..2 {
            let pool = pool.clone();
            let rx = release_rx.clone();
            running.push(tokio::spawn(async move {
                pool.run(UNIT, move || {
                    let _ = rx.recv_timeout(Duration::from_secs(10));
                    Ok(())
                })
                .await
            }));
        }
        // Wait until both are admitted (bounded).
        for _ in 0..200 {
            if pool.stats().admitted == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let err = pool.run(UNIT, || Ok(())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        drop(release_tx);
        for r in running {
            r.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_render_holds_its_memory_until_it_ends() {
        let pool = Arc::new(RenderPool::new(1, 1, 64 * UNIT, 0));
        assert_eq!(pool.memory_in_use_bytes(), 0);
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(0);
        let running = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(3 * UNIT - 1, move || {
                    let _ = release_rx.recv_timeout(Duration::from_secs(10));
                    Ok(())
                })
                .await
            }
        });
        for _ in 0..200 {
            if pool.memory_in_use_bytes() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.memory_in_use_bytes(), 3 * UNIT, "whole units");
        drop(release_tx);
        running.await.unwrap().unwrap();
        assert_eq!(pool.memory_in_use_bytes(), 0);
    }

    #[tokio::test]
    async fn a_dropped_request_skips_or_stops_its_job() {
        let pool = Arc::new(RenderPool::new(1, 4, 64 * UNIT, 0));
        let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(1);
        let (stopped_tx, stopped_rx) = crossbeam_channel::bounded::<ErrorKind>(1);
        // A running job that loops on checkpoints until it is told to stop.
        let running = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(UNIT, move || {
                    let _ = started_tx.send(());
                    for _ in 0..10_000 {
                        if let Err(e) = budget::checkpoint() {
                            let _ = stopped_tx.send(e.kind());
                            return Err(e);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Ok(())
                })
                .await
            }
        });
        // Wait (bounded, yielding to the runtime) until the job runs.
        for _ in 0..500 {
            if started_rx.try_recv().is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A queued job behind it, whose request goes away before it starts.
        let ran = Arc::new(AtomicBool::new(false));
        let queued = tokio::spawn({
            let (pool, ran) = (pool.clone(), ran.clone());
            async move {
                pool.run(UNIT, move || {
                    ran.store(true, Ordering::Relaxed);
                    Ok(())
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queued.abort();
        running.abort();
        // Let the runtime drop the aborted tasks, then wait (bounded) for the job to notice.
        let mut stopped = None;
        for _ in 0..500 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Ok(kind) = stopped_rx.try_recv() {
                stopped = Some(kind);
                break;
            }
        }
        assert_eq!(stopped, Some(ErrorKind::Cancelled));
        for _ in 0..200 {
            if pool.stats().admitted == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.stats().admitted, 0);
        assert!(!ran.load(Ordering::Relaxed), "the queued job never ran");
    }

    #[tokio::test]
    async fn the_deadline_stops_a_job_at_its_next_checkpoint() {
        let pool = RenderPool::with_deadline(1, 1, 64 * UNIT, 0, Some(Duration::from_millis(20)));
        let err = pool
            .run(UNIT, || -> crate::error::Result<()> {
                loop {
                    budget::checkpoint()?;
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RenderTimeout);
    }

    #[tokio::test]
    async fn cost_above_budget_is_too_large() {
        let pool = RenderPool::new(1, 1, 16 * UNIT, 0);
        assert_eq!(pool.run(17 * UNIT, || Ok(())).await.unwrap_err().kind(), ErrorKind::TooLarge);
    }
}
