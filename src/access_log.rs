//! The access log: one line per request, in nginx's "combined" format followed by the request
//! time, the cache status, the render time and the route:
//!
//! ```text
//! $remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $cache_status $render_time $route
//! 203.0.113.7 - - [05/Mar/2025:14:03:09 +0000] "GET /unsafe/300x200/a.jpg HTTP/1.1" 200 10463 "-" "curl/8.5.0" 0.012 MISS 0.009 image
//! ```
//!
//! - `$time_local` is in UTC (`+0000`).
//! - `$status` is 499 when the client left before any response (as nginx logs it).
//! - `$request_time` and `$render_time` are seconds with millisecond resolution; `$render_time`
//!   is the render's time on its render thread, `-` when nothing was rendered.
//! - `$cache_status` is `HIT` (from any tier: memory, disk, shared), `STALE` (served past its
//!   max-age: stale-while-revalidate or stale-if-error), `MISS`, `EXPIRED` (cached but stale: rendered again), `REVALIDATED`
//!   (cached but stale, its source unchanged at the origin: served again, not rendered), or `-` when
//!   the result cache was not consulted.
//! - `$route` is `image`, `site`, `healthcheck`, `refused` or `-` (refused by Pingora), followed
//!   by `:Kind` when Thumbora answered with an error (`refused:BadSignature`, `image:Overloaded`).
//! - In the quoted fields, `"`, `\` and bytes outside printable ASCII are written `\xHH`, as nginx
//!   does; an absent header is `-`.
//! - The client address is the TCP peer's, unless the peer is one of `trusted_proxies`: then it
//!   is the last `X-Forwarded-For` address that is not one of them.
//!
//! Lines leave the request through a bounded queue to a writer thread of their own (started with
//! the first line, so after Pingora's daemon fork); when the queue is full the line is dropped and
//! counted (`thumbora_access_log_dropped_lines_total`) rather than making the request wait.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use http::HeaderValue;
use ipnet::IpNet;

use crate::config::AccessLogConfig;
use crate::error::ErrorKind;
use crate::metrics::{self, CacheOutcome, Route};

/// Lines waiting for the writer; past this, lines are dropped.
const QUEUE_LINES: usize = 16 * 1024;
/// Lines are written in whole-line chunks of at most this many bytes (`PIPE_BUF`), so that a line
/// is never split by another writer of standard error (the process' own log).
const CHUNK_BYTES: usize = 4096;
/// While lines keep coming, the writer takes them this often (they reach the log this late).
const BATCH_INTERVAL: Duration = Duration::from_millis(20);

/// What one line says about a request.
#[derive(Debug)]
pub struct Entry {
    /// When the request ended.
    pub time: SystemTime,
    pub client: Option<IpAddr>,
    pub method: http::Method,
    /// The request target as the client sent it.
    pub target: Vec<u8>,
    pub version: http::Version,
    pub status: u16,
    pub body_bytes: usize,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub request_time: Duration,
    pub cache: Option<CacheOutcome>,
    pub render_time: Option<Duration>,
    pub route: Route,
    /// The error Thumbora answered with, if any.
    pub error: Option<ErrorKind>,
}

impl Entry {
    /// The line, without its newline, appended to `out`.
    pub fn write_line(&self, out: &mut String) {
        // Written with itoa and pushes rather than `write!`: the writer thread formats a line per
        // request, and `fmt` was most of its cost.
        match self.client {
            Some(IpAddr::V4(ip)) => {
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(itoa::Buffer::new().format(octet));
                }
            }
            Some(ip) => {
                let _ = write!(out, "{ip}");
            }
            None => out.push('-'),
        }
        out.push_str(" - - [");
        write_time(out, self.time);
        out.push_str("] \"");
        out.push_str(self.method.as_str());
        out.push(' ');
        push_escaped(out, &self.target);
        out.push(' ');
        match self.version {
            http::Version::HTTP_09 => out.push_str("HTTP/0.9"),
            http::Version::HTTP_10 => out.push_str("HTTP/1.0"),
            http::Version::HTTP_11 => out.push_str("HTTP/1.1"),
            http::Version::HTTP_2 => out.push_str("HTTP/2.0"),
            version => {
                let _ = write!(out, "{version:?}");
            }
        }
        out.push_str("\" ");
        out.push_str(itoa::Buffer::new().format(self.status));
        out.push(' ');
        out.push_str(itoa::Buffer::new().format(self.body_bytes));
        out.push_str(" \"");
        push_header(out, self.referer.as_ref());
        out.push_str("\" \"");
        push_header(out, self.user_agent.as_ref());
        out.push_str("\" ");
        push_seconds(out, Some(self.request_time));
        out.push(' ');
        out.push_str(match self.cache {
            Some(CacheOutcome::Hit | CacheOutcome::HitDisk | CacheOutcome::HitShared) => "HIT",
            Some(CacheOutcome::Stale) => "STALE",
            Some(CacheOutcome::Miss) => "MISS",
            Some(CacheOutcome::Expired) => "EXPIRED",
            Some(CacheOutcome::Revalidated) => "REVALIDATED",
            None => "-",
        });
        out.push(' ');
        push_seconds(out, self.render_time);
        out.push(' ');
        out.push_str(match self.route {
            Route::Unclassified => "-",
            route => route.label(),
        });
        if let Some(kind) = self.error {
            let _ = write!(out, ":{kind:?}");
        }
    }
}

/// `[05/Mar/2025:14:03:09 +0000]`'s inside, in UTC. The text of the last second written is kept
/// (per thread): lines come many to a second.
fn write_time(out: &mut String, time: SystemTime) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    thread_local! {
        static LAST: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    LAST.with_borrow_mut(|(last, text)| {
        if *last != secs {
            let (year, month, day) = civil_from_days((secs / 86_400) as i64);
            let of_day = secs % 86_400;
            text.clear();
            let _ = write!(
                text,
                "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
                MONTHS[(month - 1) as usize],
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60
            );
            *last = secs;
        }
        out.push_str(text);
    });
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds with millisecond resolution (`0.012`), or `-`.
fn push_seconds(out: &mut String, duration: Option<Duration>) {
    match duration {
        Some(d) => {
            let millis = d.as_millis();
            out.push_str(itoa::Buffer::new().format(millis / 1000));
            let frac = (millis % 1000) as u16;
            out.push('.');
            for digit in [frac / 100, frac / 10 % 10, frac % 10] {
                out.push(char::from(b'0' + digit as u8));
            }
        }
        None => out.push('-'),
    }
}

fn push_header(out: &mut String, value: Option<&HeaderValue>) {
    match value {
        Some(v) if !v.is_empty() => push_escaped(out, v.as_bytes()),
        _ => out.push('-'),
    }
}

/// nginx's escaping of logged strings: `"`, `\` and bytes outside printable ASCII as `\xHH`.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let plain = |b: u8| b != b'"' && b != b'\\' && (0x20..0x7f).contains(&b);
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len());
        // Printable ASCII: valid UTF-8 as it is.
        out.push_str(std::str::from_utf8(&rest[..run]).unwrap_or_default());
        if let Some(&b) = rest.get(run) {
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
            rest = &rest[run + 1..];
        } else {
            rest = &[];
        }
    }
}

/// The client of a request from `peer`: the peer itself, unless it is one of `trusted` (a load
/// balancer); then, reading `X-Forwarded-For` (its `values` in header order) from the right, the
/// first address that is not trusted, or the leftmost when all are. An entry that is not an
/// address ends the walk at the last address read.
pub fn client_address<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(|ip| ip.to_canonical());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    let mut client = peer?;
    if !is_trusted(client) {
        return Some(client);
    }
    for value in forwarded_for.rev() {
        let Ok(value) = std::str::from_utf8(value) else { return Some(client) };
        for item in value.rsplit(',') {
            let Some(ip) = parse_forwarded_address(item.trim()) else { return Some(client) };
            client = ip;
            if !is_trusted(ip) {
                return Some(client);
            }
        }
    }
    Some(client)
}

/// `203.0.113.7`, `2001:db8::1`, and the forms with a port some balancers write
/// (`203.0.113.7:5123`, `[2001:db8::1]:5123`, `[2001:db8::1]`).
fn parse_forwarded_address(item: &str) -> Option<IpAddr> {
    let ip = item
        .parse::<IpAddr>()
        .or_else(|_| item.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| item.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>())
        .ok()?;
    Some(ip.to_canonical())
}

/// The writer's end: the queue and where lines go.
struct Writer {
    receiver: Receiver<Entry>,
    out: Box<dyn Write + Send>,
}

/// The access log of one server: [`AccessLog::log`] queues a line for the writer thread.
pub struct AccessLog {
    sender: Sender<Entry>,
    /// Taken by the writer thread when it starts.
    writer: Mutex<Option<Writer>>,
    started: Once,
    trusted: Vec<IpNet>,
}

impl AccessLog {
    /// The access log `cfg` asks for (`None` when it is off). A file is opened now, before Pingora
    /// daemonizes, so a relative path is relative to the directory Thumbora was started in.
    pub fn new(cfg: &AccessLogConfig) -> io::Result<Option<AccessLog>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let out: Box<dyn Write + Send> = match &cfg.file {
            Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
            None => Box::new(io::stderr()),
        };
        Ok(Some(Self::to_writer(out, cfg.trusted_networks())))
    }

    fn to_writer(out: Box<dyn Write + Send>, trusted: Vec<IpNet>) -> AccessLog {
        let (sender, receiver) = crossbeam_channel::bounded(QUEUE_LINES);
        AccessLog { sender, writer: Mutex::new(Some(Writer { receiver, out })), started: Once::new(), trusted }
    }

    /// The load balancers whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted
    }

    /// Queue `entry`'s line, or drop and count it when the writer is behind. Never blocks.
    pub fn log(&self, entry: Entry) {
        self.started.call_once(|| self.start_writer());
        if self.sender.try_send(entry).is_err() {
            metrics::access_log_dropped();
        }
    }

    fn start_writer(&self) {
        let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        // When the thread cannot start, the receiver is dropped with the closure: every line is
        // then refused at once and counted as dropped.
        let spawned = std::thread::Builder::new()
            .name("thumbora-access-log".into())
            .spawn(move || write_lines(writer.receiver, writer.out));
        if let Err(e) = spawned {
            log::error!("cannot start the access-log writer: {e}");
        }
    }
}

/// The writer thread. It parks until a line comes, then, while lines keep coming, sleeps
/// [`BATCH_INTERVAL`] and takes all that queued meanwhile: under load, requests queue lines
/// without waking it (a wake-up is a syscall on the request's thread). Lines go out in
/// whole-line chunks of at most [`CHUNK_BYTES`]. Runs until every sender is gone.
fn write_lines(receiver: Receiver<Entry>, out: Box<dyn Write + Send>) {
    let mut chunks =
        Chunks { out, chunk: Vec::with_capacity(CHUNK_BYTES), lines: 0, line: String::new(), warned: false };
    while let Ok(first) = receiver.recv() {
        chunks.push(&first);
        loop {
            chunks.write();
            std::thread::sleep(BATCH_INTERVAL);
            let mut taken = 0;
            for entry in receiver.try_iter().take(QUEUE_LINES) {
                chunks.push(&entry);
                taken += 1;
            }
            if taken == 0 {
                break;
            }
        }
    }
}

/// Lines gathered into whole-line chunks for the writer.
struct Chunks {
    out: Box<dyn Write + Send>,
    chunk: Vec<u8>,
    /// Lines in `chunk`.
    lines: u64,
    line: String,
    warned: bool,
}

impl Chunks {
    fn push(&mut self, entry: &Entry) {
        self.line.clear();
        entry.write_line(&mut self.line);
        self.line.push('\n');
        if self.chunk.len() + self.line.len() > CHUNK_BYTES {
            self.write();
        }
        self.chunk.extend_from_slice(self.line.as_bytes());
        self.lines += 1;
    }

    /// Write out the chunk; lines that cannot be written are dropped and counted.
    fn write(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        if let Err(e) = self.out.write_all(&self.chunk).and_then(|()| self.out.flush()) {
            for _ in 0..self.lines {
                metrics::access_log_dropped();
            }
            if !self.warned {
                log::warn!("access log: cannot write ({e}); lines are dropped");
                self.warned = true;
            }
        }
        self.chunk.clear();
        self.lines = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry() -> Entry {
        Entry {
            // 2025-03-05T14:03:09.250Z
            time: UNIX_EPOCH + Duration::from_millis(1_741_183_389_250),
            client: Some("203.0.113.7".parse().unwrap()),
            method: http::Method::GET,
            target: b"/unsafe/300x200/a.jpg".to_vec(),
            version: http::Version::HTTP_11,
            status: 200,
            body_bytes: 10_463,
            referer: None,
            user_agent: Some(HeaderValue::from_static("curl/8.5.0")),
            request_time: Duration::from_micros(12_345),
            cache: Some(CacheOutcome::Miss),
            render_time: Some(Duration::from_micros(9_001)),
            route: Route::Image,
            error: None,
        }
    }

    fn line(e: &Entry) -> String {
        let mut out = String::new();
        e.write_line(&mut out);
        out
    }

    #[test]
    fn combined_format_plus_times_cache_and_route() {
        assert_eq!(
            line(&entry()),
            "203.0.113.7 - - [05/Mar/2025:14:03:09 +0000] \"GET /unsafe/300x200/a.jpg HTTP/1.1\" 200 10463 \"-\" \
             \"curl/8.5.0\" 0.012 MISS 0.009 image"
        );
        let refused = Entry {
            client: None,
            method: http::Method::HEAD,
            target: b"/bad/300x200/a.jpg".to_vec(),
            version: http::Version::HTTP_2,
            status: 400,
            body_bytes: 0,
            referer: Some(HeaderValue::from_static("https://example.com/page")),
            user_agent: None,
            request_time: Duration::from_micros(300),
            cache: None,
            render_time: None,
            route: Route::Refused,
            error: Some(ErrorKind::BadSignature),
            ..entry()
        };
        assert_eq!(
            line(&refused),
            "- - - [05/Mar/2025:14:03:09 +0000] \"HEAD /bad/300x200/a.jpg HTTP/2.0\" 400 0 \
             \"https://example.com/page\" \"-\" 0.000 - - refused:BadSignature"
        );
        let pingora = Entry { route: Route::Unclassified, status: 499, cache: Some(CacheOutcome::Hit), ..entry() };
        assert!(line(&pingora).ends_with(" 499 10463 \"-\" \"curl/8.5.0\" 0.012 HIT 0.009 -"), "{}", line(&pingora));
    }

    #[test]
    fn quoted_fields_are_escaped_as_nginx_does() {
        let e = Entry {
            target: b"/a\"b\\c\x01\xff d".to_vec(),
            user_agent: Some(HeaderValue::from_bytes(b"ua \"quoted\"").unwrap()),
            ..entry()
        };
        let l = line(&e);
        assert!(l.contains("\"GET /a\\x22b\\x5Cc\\x01\\xFF d HTTP/1.1\""), "{l}");
        assert!(l.contains("\"ua \\x22quoted\\x22\""), "{l}");
        // One line, whatever the request carried.
        assert!(!l.contains('\n'));
    }

    #[test]
    fn dates_in_utc() {
        let at = |secs: u64| {
            let mut s = String::new();
            write_time(&mut s, UNIX_EPOCH + Duration::from_secs(secs));
            s
        };
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(951_825_600), "29/Feb/2000:12:00:00 +0000");
        assert_eq!(at(1_735_689_599), "31/Dec/2024:23:59:59 +0000");
        assert_eq!(at(4_107_542_400), "01/Mar/2100:00:00:00 +0000");
        // The same second twice, then the next one (the last second's text is kept).
        assert_eq!(at(4_107_542_400), "01/Mar/2100:00:00:00 +0000");
        assert_eq!(at(4_107_542_401), "01/Mar/2100:00:00:01 +0000");
    }

    #[test]
    fn ipv6_clients_and_long_times() {
        let e = Entry {
            client: Some("2001:db8::7".parse().unwrap()),
            request_time: Duration::from_millis(123_456),
            render_time: Some(Duration::from_millis(7)),
            version: http::Version::HTTP_10,
            ..entry()
        };
        let l = line(&e);
        assert!(l.starts_with("2001:db8::7 - - ["), "{l}");
        assert!(l.contains(" HTTP/1.0\" 200 10463 "), "{l}");
        assert!(l.ends_with(" 123.456 MISS 0.007 image"), "{l}");
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let nets: Vec<IpNet> = ["10.0.0.0/8", "127.0.0.1/32"].iter().map(|n| n.parse().unwrap()).collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let client = |peer: &str, xff: &[&str]| {
            client_address(Some(ip(peer)), xff.iter().map(|v| v.as_bytes()), &nets).map(|ip| ip.to_string())
        };
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(client("198.51.100.1", &["203.0.113.7"]).unwrap(), "198.51.100.1");
        // A trusted peer: the last untrusted address, skipping trusted proxies on the way.
        assert_eq!(client("127.0.0.1", &["203.0.113.7"]).unwrap(), "203.0.113.7");
        assert_eq!(client("127.0.0.1", &["1.2.3.4, 203.0.113.7, 10.1.1.1"]).unwrap(), "203.0.113.7");
        assert_eq!(client("127.0.0.1", &["1.2.3.4", "203.0.113.7", "10.1.1.1"]).unwrap(), "203.0.113.7");
        assert_eq!(client("127.0.0.1", &["10.2.2.2, 10.1.1.1"]).unwrap(), "10.2.2.2");
        assert_eq!(client("127.0.0.1", &["203.0.113.7:5123"]).unwrap(), "203.0.113.7");
        assert_eq!(client("127.0.0.1", &["[2001:db8::1]:5123"]).unwrap(), "2001:db8::1");
        // Garbage stops the walk at the last address read.
        assert_eq!(client("127.0.0.1", &["203.0.113.7, unknown"]).unwrap(), "127.0.0.1");
        assert_eq!(client("127.0.0.1", &["unknown, 203.0.113.7"]).unwrap(), "203.0.113.7");
        assert_eq!(client("127.0.0.1", &[]).unwrap(), "127.0.0.1");
        // An IPv4 peer on a dual-stack listener.
        assert_eq!(client("::ffff:127.0.0.1", &["203.0.113.7"]).unwrap(), "203.0.113.7");
        // No trusted proxies: never read.
        assert_eq!(
            client_address(Some(ip("127.0.0.1")), [b"1.2.3.4".as_slice()].into_iter(), &[]),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(client_address(None, std::iter::empty(), &nets), None);
    }

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_writer_in_order() {
        let out = Shared::default();
        let log = AccessLog::to_writer(Box::new(out.clone()), vec![]);
        for status in [200, 304, 404] {
            log.log(Entry { status, ..entry() });
        }
        let mut text = String::new();
        for _ in 0..500 {
            text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            if text.lines().count() == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let statuses: Vec<&str> = text.lines().map(|l| l.split(' ').nth(8).unwrap_or_default()).collect();
        assert_eq!(statuses, ["200", "304", "404"], "{text}");
    }
}
