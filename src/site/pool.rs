//! The short paths' idle connections to the app servers (`direct`'s and `forward`'s): a stack
//! for each proxy thread, so that a request takes a connection its own thread's runtime drives,
//! most recently used first. Unlike Pingora's pool, no task watches an idle connection and
//! nothing crosses threads on the way in or out: a connection is checked for a close (or stray
//! bytes) when it is taken, and one idle past `keepalive_timeout_seconds` is closed by a sweep
//! that runs while any connection is idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use pingora_core::protocols::Stream;
use thread_local::ThreadLocal;
use tokio::io::AsyncReadExt;

/// How often the sweep looks for connections idle past the timeout: they close at most this
/// much later than `keepalive_timeout_seconds`.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Idle connections to the app servers, at most `per_thread` kept by each thread.
pub struct AppPool {
    idle: ThreadLocal<Mutex<Vec<Idle>>>,
    per_thread: usize,
    idle_timeout: Duration,
    /// A sweep task is running (or about to).
    sweeping: AtomicBool,
}

/// A connection waiting for its next request.
struct Idle {
    /// Which app server it goes to (the peer's `reuse_hash`).
    key: u64,
    stream: Stream,
    since: Instant,
}

impl AppPool {
    /// `per_thread`: idle connections each thread keeps (0: none, each request closes its own);
    /// `idle_timeout`: how long one may wait for its next request.
    pub fn new(per_thread: usize, idle_timeout: Duration) -> Arc<Self> {
        Arc::new(AppPool { idle: ThreadLocal::new(), per_thread, idle_timeout, sweeping: AtomicBool::new(false) })
    }

    /// An idle connection to app server `key` kept by this thread, the most recent first, that
    /// has not timed out and that the app has neither closed nor written to since its last answer.
    pub fn take(&self, key: u64) -> Option<Stream> {
        let stack = self.idle.get()?;
        loop {
            let idle = {
                let mut stack = stack.lock().unwrap_or_else(PoisonError::into_inner);
                let at = stack.iter().rposition(|i| i.key == key)?;
                stack.remove(at)
            };
            let Idle { mut stream, since, .. } = idle;
            if since.elapsed() < self.idle_timeout && still_open(&mut stream) {
                return Some(stream);
            }
            // Closed (dropped here), and the next one is tried.
        }
    }

    /// Keep `stream`, its last answer read to the end, for the next request to app server `key`;
    /// when this thread already keeps `per_thread`, the one idle longest is closed.
    pub fn put(self: &Arc<Self>, key: u64, stream: Stream) {
        if self.per_thread == 0 {
            return;
        }
        let stack = self.idle.get_or(|| Mutex::new(Vec::with_capacity(self.per_thread.min(64))));
        let oldest = {
            let mut stack = stack.lock().unwrap_or_else(PoisonError::into_inner);
            let oldest = (stack.len() >= self.per_thread).then(|| stack.remove(0));
            stack.push(Idle { key, stream, since: Instant::now() });
            oldest
        };
        drop(oldest);
        self.sweep_while_idle();
    }

    /// Close the connections idle past the timeout, in every thread's stack; how many remain.
    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut left = 0;
        for stack in self.idle.iter() {
            let expired: Vec<Idle> = {
                let mut stack = stack.lock().unwrap_or_else(PoisonError::into_inner);
                // Pushed in time order: the expired ones lead.
                let n = stack.iter().take_while(|i| now.duration_since(i.since) >= self.idle_timeout).count();
                left += stack.len() - n;
                stack.drain(..n).collect()
            };
            drop(expired);
        }
        left
    }

    /// Start the sweep unless it runs: it wakes every [`SWEEP_EVERY`] while a connection is idle,
    /// and ends when none is (or the pool is gone).
    fn sweep_while_idle(self: &Arc<Self>) {
        // Read first: while the sweep runs (under load, always), a request writes nothing shared.
        if self.sweeping.load(Ordering::Acquire) || self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        let pool: Weak<AppPool> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(pool) = pool.upgrade() else { return };
                if pool.sweep() > 0 {
                    continue;
                }
                pool.sweeping.store(false, Ordering::Release);
                // A connection put between the sweep and the store found the flag still set: it
                // is swept by this task, which carries on, unless another has started since.
                if pool.sweep() == 0 || pool.sweeping.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    }

    /// Connections idle in all threads' stacks.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.idle.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

/// Whether an idle connection can take a request: a read now finds nothing (Pingora's test for
/// its pooled connections). End of stream, an error, or bytes the app sent unasked all say no.
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    // `unconstrained`: tokio's budget must not make a ready read look pending.
    tokio::task::unconstrained(stream.read(&mut byte)).now_or_never().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::protocols::l4::stream::Stream as L4Stream;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connection to a local listener, and the listener's end of it.
    async fn pair(listener: &TcpListener) -> (Stream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Box::new(L4Stream::from(client)), server)
    }

    #[tokio::test]
    async fn connections_come_back_most_recent_first_and_per_app() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = AppPool::new(4, Duration::from_secs(60));
        let (a, _a) = pair(&listener).await;
        let (b, _b) = pair(&listener).await;
        let (c, _c) = pair(&listener).await;
        let (a_id, b_id) = (a.id(), b.id());
        pool.put(1, a);
        pool.put(1, b);
        pool.put(2, c);
        assert_eq!(pool.take(1).map(|s| s.id()), Some(b_id));
        assert_eq!(pool.take(1).map(|s| s.id()), Some(a_id));
        assert!(pool.take(1).is_none());
        assert!(pool.take(2).is_some());
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_or_wrote_to_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = AppPool::new(4, Duration::from_secs(60));
        let (closed, closed_far) = pair(&listener).await;
        let (chatty, mut chatty_far) = pair(&listener).await;
        let (good, _good_far) = pair(&listener).await;
        let good_id = good.id();
        pool.put(7, good);
        pool.put(7, closed);
        pool.put(7, chatty);
        drop(closed_far);
        chatty_far.write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n").await.unwrap();
        // Let the reactor see both.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.take(7).map(|s| s.id()), Some(good_id), "the two bad ones are passed over");
        assert_eq!(pool.len(), 0, "and closed");
    }

    #[tokio::test]
    async fn each_thread_keeps_at_most_its_share_and_none_with_zero() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = AppPool::new(2, Duration::from_secs(60));
        let mut far = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (s, f) = pair(&listener).await;
            ids.push(s.id());
            far.push(f);
            pool.put(1, s);
        }
        assert_eq!(pool.len(), 2);
        // The first one, idle longest, was closed to make room.
        let mut buf = [0u8; 1];
        assert_eq!(far[0].read(&mut buf).await.unwrap(), 0);
        assert_eq!(pool.take(1).map(|s| s.id()), Some(ids[2]));

        let none = AppPool::new(0, Duration::from_secs(60));
        let (s, mut f) = pair(&listener).await;
        none.put(1, s);
        assert_eq!(none.len(), 0);
        assert_eq!(f.read(&mut buf).await.unwrap(), 0, "closed at once");
    }

    #[tokio::test]
    async fn idle_connections_past_the_timeout_are_closed_by_the_sweep() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = AppPool::new(4, Duration::from_millis(300));
        let (s, mut far) = pair(&listener).await;
        pool.put(1, s);
        assert_eq!(pool.len(), 1);
        // Closed by the sweep within the timeout and one sweep period, with no request to notice.
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), far.read(&mut buf)).await;
        assert_eq!(read.expect("closed by the sweep").unwrap(), 0);
        assert_eq!(pool.len(), 0);
        // The sweep ended with nothing idle; the next connection kept starts another.
        for _ in 0..100 {
            if !pool.sweeping.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!pool.sweeping.load(Ordering::Acquire));
        let (s, mut far) = pair(&listener).await;
        pool.put(1, s);
        let read = tokio::time::timeout(Duration::from_secs(5), far.read(&mut buf)).await;
        assert_eq!(read.expect("closed by a new sweep").unwrap(), 0);
    }

    #[tokio::test]
    async fn a_connection_past_the_timeout_is_not_taken_before_the_sweep() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = AppPool::new(4, Duration::from_millis(50));
        let (s, _far) = pair(&listener).await;
        pool.put(1, s);
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(pool.take(1).is_none());
    }
}
