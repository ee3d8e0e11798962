//! The process's life after start: a background service that follows Pingora's execution phases,
//! tells the proxy when to stop keeping connections alive (upgrade or shutdown), and ends the
//! grace period as soon as the last client connection has closed.
//!
//! Pingora sleeps the whole `grace_period_seconds` after SIGTERM or an upgrade, whether or not a
//! request is still in flight. Thumbora's default grace is long enough for the slowest request
//! (fetch timeout plus render deadline), so that sleep would hold every stop and reload for half
//! a minute; instead the process exits once nothing is in flight, and at the latest when the
//! grace ends. Runs as a Pingora background service, so it starts after `-d` forks.
//!
//! SIGINT (the fast stop) is taken on a thread of its own, which flushes the log and exits. Pingora
//! would stop its runtimes with no timeout instead; with one runtime per thread
//! (`work_stealing: false`, Thumbora's default) an accept loop whose listener belongs to a runtime
//! that has already stopped gets an error from every `accept()`, and Pingora 0.9.1 retries at
//! once without yielding: that thread spins and logs forever and the process never exits (seen in
//! about one stop in eight under load, at 140 MB of log a second).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::{ExecutionPhase, ShutdownWatch};
use pingora_core::services::background::BackgroundService;
use tokio::sync::broadcast;

/// The pid of the process that ran `thumbora -d`, set by [`catch_early_ready_signal`].
static STARTING_PID: AtomicI32 = AtomicI32::new(0);

/// Make `-d`'s readiness signal safe to arrive early.
///
/// With `daemon_wait_for_ready`, Pingora 0.9.1's parent forks and only then registers its
/// `SIGUSR1` listener; a daemon that is ready within that window (a small configuration on an idle
/// machine) signals a parent that still has the default action, and the parent dies of it: exit
/// status 138, and systemd fails the start or the reload although the daemon serves. Called before
/// the fork, this installs a handler that makes the starting process exit 0 on `SIGUSR1` (which is
/// what Pingora's listener does once it is registered: the two agree). The daemon inherits the
/// handler; there it restores the default action and re-raises, so `SIGUSR1` means what it meant.
pub(crate) fn catch_early_ready_signal() {
    extern "C" fn on_ready(signal: libc::c_int) {
        // SAFETY: getpid, _exit, signal and raise are async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            if libc::getpid() == STARTING_PID.load(Ordering::Relaxed) {
                libc::_exit(0);
            }
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    STARTING_PID.store(std::process::id() as i32, Ordering::Relaxed);
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGUSR1, on_ready as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

/// The write end of the pipe to the process that ran `thumbora -d` ([`wait_until_serving`]),
/// inherited by the daemon, and the addresses it must accept connections on: -1 and none when
/// no process waits.
static READY_PIPE: AtomicI32 = AtomicI32::new(-1);
static READY_ADDRESSES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How long the daemon tries its listeners before it gives up on telling the starting process.
const SERVING_WITHIN: Duration = Duration::from_secs(120);

/// Make `thumbora -d` (without `-u`) return only once the daemon accepts connections on every
/// address in `listen`.
///
/// Pingora 0.9.1 releases the waiting parent from its bootstrap, before the daemon binds its
/// listeners (an upgrade's parent must exit before the old process hands its sockets over), so
/// the command, and `systemctl start` with it, returned while a first request could still be
/// refused. Here the process forks once more before Pingora does: it waits on a pipe and exits 0
/// when the daemon writes to it ([`report_serving`], once it listens on each address), 1 when
/// every copy of the pipe closes first (the daemon died). The child goes on to
/// run Pingora. An upgrade (`-u`) keeps Pingora's own readiness.
pub(crate) fn wait_until_serving(listen: &[String]) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) and fork(2) before any thread exists (`server::build_server` starts none);
    // the waiting process only reads, writes to stderr and exits.
    #[allow(unsafe_code)]
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            log::warn!("no readiness pipe ({}): -d returns when Pingora's bootstrap does", io::Error::last_os_error());
            return;
        }
        match libc::fork() {
            -1 => {
                log::warn!(
                    "no readiness fork ({}): -d returns when Pingora's bootstrap does",
                    io::Error::last_os_error()
                );
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            0 => {
                libc::close(fds[0]);
                READY_PIPE.store(fds[1], Ordering::Relaxed);
                *READY_ADDRESSES.lock().unwrap_or_else(|p| p.into_inner()) = listen.to_vec();
            }
            _ => {
                libc::close(fds[1]);
                let mut byte = 0u8;
                let read = loop {
                    let n = libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
                    if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        break n;
                    }
                };
                if read == 1 {
                    libc::_exit(0);
                }
                eprintln!("thumbora: the daemon stopped before it served (see its log)");
                libc::_exit(1);
            }
        }
    }
}

/// In the daemon: once it listens on each listen address, tell the process waiting in
/// [`wait_until_serving`] (nothing to do when none waits). From a thread of its own, trying every
/// 10 ms for [`SERVING_WITHIN`]; the pipe is closed either way.
fn report_serving() {
    let fd = READY_PIPE.swap(-1, Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let addresses = std::mem::take(&mut *READY_ADDRESSES.lock().unwrap_or_else(|p| p.into_inner()));
    let spawned = std::thread::Builder::new().name("thumbora-ready".into()).spawn(move || {
        let started = std::time::Instant::now();
        let serving = loop {
            if addresses.iter().all(|a| accepts(a)) {
                break true;
            }
            if started.elapsed() > SERVING_WITHIN {
                log::error!("not accepting on {addresses:?} after {SERVING_WITHIN:?}: -d reports a failed start");
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // SAFETY: the pipe's write end, owned by this thread alone.
        #[allow(unsafe_code)]
        unsafe {
            if serving {
                libc::write(fd, b"1".as_ptr().cast(), 1);
            }
            libc::close(fd);
        }
    });
    if let Err(e) = spawned {
        log::error!("cannot start the readiness thread ({e}): -d reports a failed start");
    }
}

/// Whether this process listens on `address` (`host:port`, resolved; any of its addresses): a
/// socket among its descriptors accepts connections and is bound there. Looked up rather than
/// connected to, so that another process on the same port does not pass for this one.
fn accepts(address: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(wanted) = address.to_socket_addrs() else { return false };
    let listening = own_listeners();
    wanted.into_iter().any(|a| listening.contains(&a))
}

/// The addresses this process's listening sockets are bound to.
fn own_listeners() -> Vec<std::net::SocketAddr> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(listening_address)
        .collect()
}

/// The address `fd` listens on, when it is a listening IPv4 or IPv6 socket.
fn listening_address(fd: i32) -> Option<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt and getsockname write at most `len` bytes into the buffers given; on a
    // descriptor that is not a socket (or closed since the listing) they fail and nothing is read.
    #[allow(unsafe_code)]
    unsafe {
        let option = (&mut accepting as *mut libc::c_int).cast();
        if libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN, option, &mut len) != 0 || accepting == 0 {
            return None;
        }
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, (&mut storage as *mut libc::sockaddr_storage).cast(), &mut len) != 0 {
            return None;
        }
        match i32::from(storage.ss_family) {
            libc::AF_INET => {
                let v4 = &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                Some(SocketAddr::new(ip.into(), u16::from_be(v4.sin_port)))
            }
            libc::AF_INET6 => {
                let v6 = &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
                Some(SocketAddr::new(ip.into(), u16::from_be(v6.sin6_port)))
            }
            _ => None,
        }
    }
}

/// Exit the process at once on SIGINT, from a thread of its own (see the module comment). Called
/// after `-d` forks: the thread is the daemon's. Public for the bare-Pingora benchmark anchor,
/// which runs on the same runtime flavour and so needs the same way out.
pub fn exit_on_sigint() {
    let mut signals = match signal_hook::iterator::Signals::new([libc::SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            log::error!("cannot watch SIGINT ({e}): it stops the server through Pingora");
            return;
        }
    };
    let spawned = std::thread::Builder::new().name("thumbora-sigint".into()).spawn(move || {
        if signals.forever().next().is_some() {
            log::info!("SIGINT received, exiting");
            log::logger().flush();
            std::process::exit(0);
        }
    });
    if let Err(e) = spawned {
        log::error!("cannot start the SIGINT thread ({e}): SIGINT stops the server through Pingora");
    }
}

/// Follows the server's phases (see the module comment).
pub struct PhaseWatcher {
    phases: Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    draining: Arc<AtomicBool>,
    open_connections: Arc<AtomicUsize>,
    /// How often the drain is checked during the grace period.
    poll: Duration,
}

impl PhaseWatcher {
    /// Watch `phases` (from `Server::watch_execution_phase`, taken before the server runs), raise
    /// `draining` when the server starts handing over or shutting down, and exit the process
    /// during the grace period once `open_connections` is zero.
    pub fn new(
        phases: broadcast::Receiver<ExecutionPhase>,
        draining: Arc<AtomicBool>,
        open_connections: Arc<AtomicUsize>,
    ) -> Self {
        PhaseWatcher { phases: Mutex::new(Some(phases)), draining, open_connections, poll: Duration::from_millis(50) }
    }

    /// Wait until no client connection is open, then exit: the grace period has nothing left
    /// to wait for.
    async fn exit_when_drained(&self) {
        let started = std::time::Instant::now();
        while self.open_connections.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(self.poll).await;
        }
        log::info!("drained in {:.1}s: exiting before the grace period ends", started.elapsed().as_secs_f64());
        log::logger().flush();
        std::process::exit(0);
    }
}

/// Whether the server is leaving: handing its listeners over or shutting down.
fn leaving(phase: &ExecutionPhase) -> bool {
    matches!(
        phase,
        ExecutionPhase::GracefulUpgradeTransferringFds
            | ExecutionPhase::GracefulUpgradeCloseTimeout
            | ExecutionPhase::GracefulTerminate
            | ExecutionPhase::ShutdownStarted
            | ExecutionPhase::ShutdownGracePeriod
    )
}

#[async_trait]
impl BackgroundService for PhaseWatcher {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let Some(mut phases) = self.phases.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        exit_on_sigint();
        report_serving();
        loop {
            let phase = match phases.recv().await {
                Ok(phase) => phase,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if leaving(&phase) {
                self.draining.store(true, Ordering::Relaxed);
            }
            match phase {
                ExecutionPhase::ShutdownGracePeriod => self.exit_when_drained().await,
                ExecutionPhase::ShutdownRuntimes | ExecutionPhase::Terminated => return,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_phases() {
        assert!(leaving(&ExecutionPhase::GracefulTerminate));
        assert!(leaving(&ExecutionPhase::GracefulUpgradeTransferringFds));
        assert!(!leaving(&ExecutionPhase::Running));
        assert!(!leaving(&ExecutionPhase::BootstrapComplete));
    }

    #[tokio::test]
    async fn the_flag_rises_when_the_server_leaves() {
        let (tx, rx) = broadcast::channel(8);
        let draining = Arc::new(AtomicBool::new(false));
        let watcher = Arc::new(PhaseWatcher::new(rx, draining.clone(), Arc::new(AtomicUsize::new(0))));
        let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let task = tokio::spawn({
            let watcher = watcher.clone();
            async move { watcher.start(shutdown).await }
        });
        tx.send(ExecutionPhase::Running).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!draining.load(Ordering::Relaxed));
        tx.send(ExecutionPhase::GracefulTerminate).unwrap();
        tx.send(ExecutionPhase::Terminated).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(draining.load(Ordering::Relaxed));
    }
}
