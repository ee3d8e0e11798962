//! The process' log, limited per call site: a flood of one event (connections refused past
//! `max_connections`, TLS handshakes cut at the deadline, Pingora's "Downstream handshake error"
//! for each of them) writes a few lines a second, not one line per event, so a hostile client
//! cannot turn the log into the bottleneck or fill the disk. Debug and trace lines, asked for
//! with `RUST_LOG`, are never limited.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use log::{Level, Log, Metadata, Record};

/// Lines one call site may write per second (info, warn and error lines).
pub const LINES_PER_SECOND: u32 = 10;

/// Install the process' logger: `env_logger` (`RUST_LOG`, default `info`) behind the limit.
pub fn init() {
    let logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max_level = logger.filter();
    if log::set_boxed_logger(Box::new(Limited::new(logger, LINES_PER_SECOND))).is_ok() {
        log::set_max_level(max_level);
    }
}

/// A logger that passes at most `per_second` lines a second from each call site to `inner`; the
/// next line a site writes after a pause says how many of its lines were dropped.
pub struct Limited<L> {
    inner: L,
    per_second: u32,
    started: Instant,
    /// By call site (a hash of file and line, or target and line): bounded by the code's
    /// logging statements.
    sites: Mutex<HashMap<u64, Window>>,
}

/// One call site's current second.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    second: u64,
    written: u32,
    dropped: u64,
}

impl Window {
    /// Whether a line at `second` may be written: `Some(dropped)` with the lines dropped since the
    /// last one written (to report), or `None` when this one is dropped too.
    pub fn admit(&mut self, second: u64, per_second: u32) -> Option<u64> {
        if second != self.second {
            self.second = second;
            self.written = 0;
        }
        if self.written >= per_second {
            self.dropped += 1;
            return None;
        }
        self.written += 1;
        Some(std::mem::take(&mut self.dropped))
    }
}

impl<L: Log> Limited<L> {
    pub fn new(inner: L, per_second: u32) -> Self {
        Limited { inner, per_second, started: Instant::now(), sites: Mutex::new(HashMap::new()) }
    }

    fn site(record: &Record<'_>) -> u64 {
        let mut hasher = DefaultHasher::new();
        record.file().unwrap_or(record.target()).hash(&mut hasher);
        record.line().hash(&mut hasher);
        hasher.finish()
    }
}

impl<L: Log> Log for Limited<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        if record.level() >= Level::Debug {
            return self.inner.log(record);
        }
        let second = self.started.elapsed().as_secs();
        let admitted = {
            let mut sites = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
            sites.entry(Self::site(record)).or_default().admit(second, self.per_second)
        };
        match admitted {
            None => {}
            Some(0) => self.inner.log(record),
            Some(dropped) => {
                let mut line = record.args().to_string();
                let _ = write!(line, " ({dropped} more lines like this one dropped: log limit)");
                self.inner.log(
                    &Record::builder()
                        .args(format_args!("{line}"))
                        .metadata(record.metadata().clone())
                        .module_path(record.module_path())
                        .file(record.file())
                        .line(record.line())
                        .build(),
                );
            }
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_window_passes_its_lines_then_reports_what_it_dropped() {
        let mut window = Window::default();
        let admitted: Vec<Option<u64>> = (0..5).map(|_| window.admit(0, 3)).collect();
        assert_eq!(admitted, [Some(0), Some(0), Some(0), None, None]);
        // The next second: the first line carries the count, the rest start from zero.
        assert_eq!(window.admit(1, 3), Some(2));
        assert_eq!(window.admit(1, 3), Some(0));
        // A site quiet for a while starts afresh.
        assert_eq!(window.admit(9, 3), Some(0));
    }

    /// Collects what reaches it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<(Level, String)>>>);

    impl Log for Sink {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &Record<'_>) {
            self.0.lock().unwrap().push((record.level(), record.args().to_string()));
        }
        fn flush(&self) {}
    }

    fn record(level: Level, line: u32, text: &str, f: impl FnOnce(&Record<'_>)) {
        f(&Record::builder().args(format_args!("{text}")).level(level).file(Some("x.rs")).line(Some(line)).build());
    }

    #[test]
    fn each_call_site_is_limited_on_its_own_and_debug_never() {
        let sink = Sink::default();
        let limited = Limited::new(sink.clone(), 2);
        for _ in 0..100 {
            record(Level::Error, 1, "refused", |r| limited.log(r));
            record(Level::Warn, 2, "other", |r| limited.log(r));
            record(Level::Debug, 3, "detail", |r| limited.log(r));
        }
        let lines = sink.0.lock().unwrap().clone();
        let count = |text: &str| lines.iter().filter(|(_, l)| l == text).count();
        // Within one second (the test runs in well under one; should the clock turn, a site
        // passes at most 2 more, with the dropped count).
        assert!((2..=4).contains(&count("refused")), "{lines:?}");
        assert!((2..=4).contains(&count("other")), "{lines:?}");
        assert_eq!(count("detail"), 100);
    }
}
