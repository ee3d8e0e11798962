//! Prometheus metrics: every metric Thumbora exports is defined here, in one registry, with
//! bounded label values only (routes, statuses, cache outcomes, stages, error kinds; never a URL
//! or a path). The hot path touches pre-resolved handles: an atomic add per counter, a few per
//! histogram, no allocation and no label lookup. [`MetricsApp`] serves the text exposition on
//! its own listener (`thumbora.metrics.listen`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `thumbora_requests_total` | counter | `route`, `status` |
//! | `thumbora_request_duration_seconds` | histogram | `route` |
//! | `thumbora_cache_lookups_total` | counter | `outcome` (hit, miss, expired, stale, revalidated) |
//! | `thumbora_image_request_duration_seconds` | histogram | `cache` (the same outcomes) |
//! | `thumbora_origin_fetches_total` | counter | |
//! | `thumbora_origin_fetch_failures_total` | counter | `reason` (the error kind) |
//! | `thumbora_origin_fetch_bytes_total` | counter | |
//! | `thumbora_origin_fetch_duration_seconds` | histogram | |
//! | `thumbora_render_stage_duration_seconds` | histogram | `stage` (decode, transform, filters, encode) |
//! | `thumbora_render_wait_seconds` | histogram | |
//! | `thumbora_render_queue_depth` | gauge | |
//! | `thumbora_render_in_flight` | gauge | |
//! | `thumbora_refusals_total` | counter | `reason` |
//! | `thumbora_access_log_dropped_lines_total` | counter | |
//! | `thumbora_fast_hits_total` | counter | |
//! | `thumbora_client_connections` | gauge | |
//! | `thumbora_cache_memory_entries`, `thumbora_cache_memory_bytes` | gauge | |
//! | `thumbora_originals_cache_entries`, `thumbora_originals_cache_bytes` | gauge | |
//! | `thumbora_render_memory_in_use_bytes`, `thumbora_fetch_memory_in_use_bytes` | gauge | |
//! | `thumbora_client_connections_closed_total` | counter | `reason` (max_connections, tls_handshake_timeout, head_timeout, send_timeout) |

use std::sync::{LazyLock, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::error::ErrorKind;

/// Latency buckets, in seconds: a cache hit takes well under a millisecond, a large render or a
/// slow origin seconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// What a request turned out to be (the `route` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A thumbor image request that went on to the cache and the renderer.
    Image,
    /// Proxied to the site's app servers.
    Site,
    /// The health check.
    Healthcheck,
    /// Refused before any I/O (bad URL or signature, source not allowed, limits, loop...).
    Refused,
    /// Ended before Thumbora classified it (Pingora refused the request head).
    Unclassified,
    /// A `PURGE` request (allowed or not).
    Purge,
}

impl Route {
    const ALL: [Route; 6] =
        [Route::Image, Route::Site, Route::Healthcheck, Route::Refused, Route::Unclassified, Route::Purge];

    pub fn label(self) -> &'static str {
        match self {
            Route::Image => "image",
            Route::Site => "site",
            Route::Healthcheck => "healthcheck",
            Route::Refused => "refused",
            Route::Unclassified => "unclassified",
            Route::Purge => "purge",
        }
    }
}

/// The outcome of a result-cache lookup (the `outcome` label, and for hits the `tier` of
/// `thumbora_cache_hits_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A fresh result was served from memory.
    Hit,
    /// A fresh result was served from the disk tier (and promoted to memory).
    HitDisk,
    /// Not cached on this node; a fresh result was found in the shared (S3) tier.
    HitShared,
    /// A result past its max-age was served (stale-while-revalidate or stale-if-error).
    Stale,
    /// Nothing cached: rendered.
    Miss,
    /// A result was cached but past its max-age: rendered again.
    Expired,
    /// A result was cached but past its max-age, and its source had not changed (the origin
    /// answered a conditional fetch with 304): served again with a fresh max-age, not rendered.
    Revalidated,
}

impl CacheOutcome {
    const OUTCOMES: [&'static str; 5] = ["hit", "miss", "expired", "stale", "revalidated"];
    const TIERS: [&'static str; 3] = ["memory", "disk", "shared"];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            CacheOutcome::Hit | CacheOutcome::HitDisk | CacheOutcome::HitShared => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Expired => "expired",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Revalidated => "revalidated",
        }
    }

    /// The tier a hit came from.
    pub fn tier(self) -> Option<&'static str> {
        match self {
            CacheOutcome::Hit => Some("memory"),
            CacheOutcome::HitDisk => Some("disk"),
            CacheOutcome::HitShared => Some("shared"),
            _ => None,
        }
    }

    /// The `X-Cache` response header.
    pub fn x_cache(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "HIT memory",
            CacheOutcome::HitDisk => "HIT disk",
            CacheOutcome::HitShared => "HIT shared",
            CacheOutcome::Stale => "STALE",
            CacheOutcome::Miss => "MISS",
            CacheOutcome::Expired => "EXPIRED",
            CacheOutcome::Revalidated => "REVALIDATED",
        }
    }
}

/// The stages of a render on its thread (the `stage` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decoding the source, and its EXIF orientation.
    Decode,
    /// Trim, smart detection, crops, resize and flips.
    Transform,
    /// Post-transform filters.
    Filters,
    /// Encoding the output.
    Encode,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Decode, Stage::Transform, Stage::Filters, Stage::Encode];

    pub fn label(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Transform => "transform",
            Stage::Filters => "filters",
            Stage::Encode => "encode",
        }
    }
}

/// Why Thumbora refused a request (the `reason` label of `thumbora_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The render queue or an origin's fetch slots were full.
    Overloaded,
    /// The render memory budget or the fetch memory was taken.
    MemoryBudget,
    /// The source or the output is over a size cap.
    TooLarge,
    /// More work than the caps allow (filters, their cost, the encoder's).
    TooComplex,
    /// The image URL's origin is not allowed (allow-list, private addresses: the SSRF guard).
    SourceNotAllowed,
    /// A missing or wrong signature, or unsafe URLs disabled.
    BadSignature,
    /// The request head is over `max_request_header_bytes`.
    HeadersTooLarge,
    /// The request came back to this server through its own fetch.
    LoopDetected,
    /// The render ran past `render.deadline_ms`.
    RenderTimeout,
    /// A `PURGE` without an accepted token or address.
    Forbidden,
}

impl Refusal {
    const ALL: [Refusal; 10] = [
        Refusal::Overloaded,
        Refusal::MemoryBudget,
        Refusal::TooLarge,
        Refusal::TooComplex,
        Refusal::SourceNotAllowed,
        Refusal::BadSignature,
        Refusal::HeadersTooLarge,
        Refusal::LoopDetected,
        Refusal::RenderTimeout,
        Refusal::Forbidden,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Overloaded => "overloaded",
            Refusal::MemoryBudget => "memory_budget",
            Refusal::TooLarge => "too_large",
            Refusal::TooComplex => "too_complex",
            Refusal::SourceNotAllowed => "source_not_allowed",
            Refusal::BadSignature => "bad_signature",
            Refusal::HeadersTooLarge => "headers_too_large",
            Refusal::LoopDetected => "loop_detected",
            Refusal::RenderTimeout => "render_timeout",
            Refusal::Forbidden => "forbidden",
        }
    }

    /// The one place an error kind is classed as a refusal: Thumbora's own decision (a policy,
    /// a limit, its load), as opposed to a bad request or a failure of the origin or the image.
    pub fn of(kind: ErrorKind) -> Option<Refusal> {
        use ErrorKind::*;
        match kind {
            Overloaded => Some(Refusal::Overloaded),
            MemoryBudget => Some(Refusal::MemoryBudget),
            TooLarge => Some(Refusal::TooLarge),
            TooComplex => Some(Refusal::TooComplex),
            SourceNotAllowed => Some(Refusal::SourceNotAllowed),
            BadSignature => Some(Refusal::BadSignature),
            HeadersTooLarge => Some(Refusal::HeadersTooLarge),
            LoopDetected => Some(Refusal::LoopDetected),
            Forbidden => Some(Refusal::Forbidden),
            RenderTimeout => Some(Refusal::RenderTimeout),
            NoRoute | BadUrl | SourceNotFound | OriginError | UpstreamFailed | UpstreamUnreachable | EmptySource
            | UpstreamTimeout | SourceUnresolved | UndecodableImage | BadFilter | WatermarkNotLoaded | ThumborFails
            | MethodNotAllowed | Cancelled | Internal => None,
        }
    }
}

/// Why Thumbora closed a client connection on its own (the `reason` label of
/// `thumbora_client_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// `max_connections` were open: a 503 (HTTP), or closed before the handshake (TLS).
    MaxConnections,
    /// The TLS handshake had not ended within `request_head_timeout_ms`.
    TlsHandshakeTimeout,
    /// A request head (an HTTP/2 preface) had not arrived within `request_head_timeout_ms`.
    HeadTimeout,
    /// The client took none of its answer for `send_timeout_seconds`.
    SendTimeout,
}

impl Closed {
    const ALL: [Closed; 4] =
        [Closed::MaxConnections, Closed::TlsHandshakeTimeout, Closed::HeadTimeout, Closed::SendTimeout];

    pub fn label(self) -> &'static str {
        match self {
            Closed::MaxConnections => "max_connections",
            Closed::TlsHandshakeTimeout => "tls_handshake_timeout",
            Closed::HeadTimeout => "head_timeout",
            Closed::SendTimeout => "send_timeout",
        }
    }
}

/// Statuses `thumbora_requests_total` has a slot for; anything else (which no HTTP response
/// carries) is counted as 599.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;
const STATUS_SLOTS: usize = 500;
/// A level read from the running parts at each scrape (see [`watch`]), rather than moved as
/// events happen: how full the bounded parts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Client connections open now, TLS ones in their handshake included.
    ClientConnections,
    /// Results in the memory tier of the result cache.
    MemoryTierEntries,
    /// What the memory tier's results weigh (bodies and headers), against `cache.max_bytes`.
    MemoryTierBytes,
    /// Originals in the memory cache of fetched sources.
    OriginalsEntries,
    /// What those originals weigh, against `sources.cache_bytes`.
    OriginalsBytes,
    /// Render memory held by the renders admitted now, against `render.memory_budget_bytes`.
    RenderMemoryInUse,
    /// Fetch memory held by fetches and the sources they produced, against
    /// `sources.fetch_memory_bytes`.
    FetchMemoryInUse,
}

impl Level {
    const ALL: [Level; 7] = [
        Level::ClientConnections,
        Level::MemoryTierEntries,
        Level::MemoryTierBytes,
        Level::OriginalsEntries,
        Level::OriginalsBytes,
        Level::RenderMemoryInUse,
        Level::FetchMemoryInUse,
    ];

    fn name(self) -> &'static str {
        match self {
            Level::ClientConnections => "thumbora_client_connections",
            Level::MemoryTierEntries => "thumbora_cache_memory_entries",
            Level::MemoryTierBytes => "thumbora_cache_memory_bytes",
            Level::OriginalsEntries => "thumbora_originals_cache_entries",
            Level::OriginalsBytes => "thumbora_originals_cache_bytes",
            Level::RenderMemoryInUse => "thumbora_render_memory_in_use_bytes",
            Level::FetchMemoryInUse => "thumbora_fetch_memory_in_use_bytes",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Level::ClientConnections => {
                "Client connections open now, TLS ones in their handshake included (at most max_connections)."
            }
            Level::MemoryTierEntries => "Results in the result cache's memory tier.",
            Level::MemoryTierBytes => {
                "What the memory tier's results weigh, bodies and headers (bounded by cache.max_bytes)."
            }
            Level::OriginalsEntries => "Fetched originals in the memory cache of sources.",
            Level::OriginalsBytes => "What the cached originals weigh (bounded by sources.cache_bytes).",
            Level::RenderMemoryInUse => {
                "Render memory held by the renders admitted now (bounded by render.memory_budget_bytes)."
            }
            Level::FetchMemoryInUse => {
                "Memory held by source downloads and the sources they produced (bounded by sources.fetch_memory_bytes)."
            }
        }
    }
}

/// Reads a [`Level`] at scrape time.
type LevelReader = Box<dyn Fn() -> u64 + Send + Sync>;

/// The reader of each level, in [`Level::ALL`]'s order; a level nobody watches reads 0.
static LEVEL_READERS: [Mutex<Option<LevelReader>>; Level::ALL.len()] = [const { Mutex::new(None) }; Level::ALL.len()];

/// Room for every `ErrorKind` (a fieldless enum: `kind as usize` is its index).
const ERROR_KINDS: usize = 64;

/// Every metric, registered once in [`REGISTRY`].
struct Metrics {
    requests: IntCounterVec,
    /// `[route][status - 100]`, each resolved on first use (only statuses seen become series).
    request_counters: [[OnceLock<IntCounter>; STATUS_SLOTS]; Route::ALL.len()],
    request_duration: [Histogram; Route::ALL.len()],
    cache_lookups: [IntCounter; CacheOutcome::OUTCOMES.len()],
    image_duration: [Histogram; CacheOutcome::OUTCOMES.len()],
    cache_hits: [IntCounter; CacheOutcome::TIERS.len()],
    disk_entries: IntGauge,
    disk_bytes: IntGauge,
    disk_writes_dropped: IntCounter,
    shared_errors: IntCounterVec,
    purges: IntCounterVec,
    origin_fetches: IntCounter,
    origin_failures: IntCounterVec,
    origin_failure_counters: [OnceLock<IntCounter>; ERROR_KINDS],
    origin_bytes: IntCounter,
    origin_duration: Histogram,
    stage_duration: [Histogram; Stage::ALL.len()],
    render_wait: Histogram,
    queue_depth: IntGauge,
    in_flight: IntGauge,
    refusals: [IntCounter; Refusal::ALL.len()],
    access_log_dropped: IntCounter,
    fast_hits: IntCounter,
    levels: [IntGauge; Level::ALL.len()],
    connections_closed: [IntCounter; Closed::ALL.len()],
}

/// Thumbora's registry: what the metrics listener serves.
static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::register);

/// Register a collector; the names are constants checked by the unit tests, so a failure here
/// is a programming error caught there.
fn registered<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    REGISTRY.register(Box::new(collector.clone())).expect("metric names are unique and valid");
    collector
}

fn counter(name: &str, help: &str) -> IntCounter {
    registered(IntCounter::new(name, help).expect("valid counter"))
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"))
}

fn histogram_vec(name: &str, help: &str, label: &str) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    registered(HistogramVec::new(opts, &[label]).expect("valid histogram"))
}

fn histogram(name: &str, help: &str) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    registered(Histogram::with_opts(opts).expect("valid histogram"))
}

fn gauge(name: &str, help: &str) -> IntGauge {
    registered(IntGauge::new(name, help).expect("valid gauge"))
}

impl Metrics {
    fn register() -> Metrics {
        let requests = counter_vec(
            "thumbora_requests_total",
            "Requests answered, by route and HTTP status (499: the client left first).",
            &["route", "status"],
        );
        let durations = histogram_vec(
            "thumbora_request_duration_seconds",
            "Time from the request head to the end of the response, by route.",
            "route",
        );
        let lookups = counter_vec(
            "thumbora_cache_lookups_total",
            "Result-cache lookups of image requests, by outcome.",
            &["outcome"],
        );
        let hits = counter_vec(
            "thumbora_cache_hits_total",
            "Results served from a cache tier without rendering, by tier.",
            &["tier"],
        );
        let origin_failures = counter_vec(
            "thumbora_origin_fetch_failures_total",
            "Origin fetches that failed, by error kind (cancelled: every request waiting for it left).",
            &["reason"],
        );
        let origin_duration = histogram(
            "thumbora_origin_fetch_duration_seconds",
            "Time of a completed origin fetch (HTTP or file), successful or not.",
        );
        let image_durations = histogram_vec(
            "thumbora_image_request_duration_seconds",
            "Time from the request head to the end of the response of image requests that looked up the result cache, by outcome.",
            "cache",
        );
        let stages = histogram_vec(
            "thumbora_render_stage_duration_seconds",
            "Time a render spends in each stage on its render thread.",
            "stage",
        );
        let refusals = counter_vec(
            "thumbora_refusals_total",
            "Requests Thumbora refused by policy, limit or load, by reason.",
            &["reason"],
        );
        Metrics {
            request_counters: [const { [const { OnceLock::new() }; STATUS_SLOTS] }; Route::ALL.len()],
            request_duration: Route::ALL.map(|r| durations.with_label_values(&[r.label()])),
            requests,
            cache_lookups: CacheOutcome::OUTCOMES.map(|o| lookups.with_label_values(&[o])),
            image_duration: CacheOutcome::OUTCOMES.map(|o| image_durations.with_label_values(&[o])),
            cache_hits: CacheOutcome::TIERS.map(|t| hits.with_label_values(&[t])),
            disk_entries: gauge("thumbora_cache_disk_entries", "Results in the disk tier."),
            disk_bytes: gauge("thumbora_cache_disk_bytes", "Disk the disk tier's results take (whole 4 KiB blocks)."),
            disk_writes_dropped: counter(
                "thumbora_cache_disk_writes_dropped_total",
                "Results not written to the disk tier: its write queue was full, or the write failed.",
            ),
            shared_errors: counter_vec(
                "thumbora_cache_shared_errors_total",
                "Shared-tier (S3) operations that failed or timed out, by operation; the request went on without it.",
                &["op"],
            ),
            purges: counter_vec("thumbora_purges_total", "PURGE requests, by what they dropped.", &["scope"]),
            origin_fetches: counter(
                "thumbora_origin_fetches_total",
                "Origin fetches (HTTP or file) that ended: successful, failed or abandoned.",
            ),
            origin_failures,
            origin_failure_counters: [const { OnceLock::new() }; ERROR_KINDS],
            origin_bytes: counter("thumbora_origin_fetch_bytes_total", "Bytes of the sources fetched successfully."),
            origin_duration,
            stage_duration: Stage::ALL.map(|s| stages.with_label_values(&[s.label()])),
            render_wait: histogram(
                "thumbora_render_wait_seconds",
                "Time a render with its source in hand waited for render memory and a render thread.",
            ),
            queue_depth: gauge(
                "thumbora_render_queue_depth",
                "Renders admitted and waiting for memory or a render thread.",
            ),
            in_flight: gauge("thumbora_render_in_flight", "Renders running on a render thread."),
            refusals: Refusal::ALL.map(|r| refusals.with_label_values(&[r.label()])),
            access_log_dropped: counter(
                "thumbora_access_log_dropped_lines_total",
                "Access-log lines dropped because the writer fell behind (its queue was full) or could not write.",
            ),
            fast_hits: counter(
                "thumbora_fast_hits_total",
                "Memory hits answered at the connection, before Pingora's session (also counted as cache lookups with outcome hit).",
            ),
            levels: Level::ALL.map(|l| gauge(l.name(), l.help())),
            connections_closed: {
                let closed = counter_vec(
                    "thumbora_client_connections_closed_total",
                    "Client connections Thumbora closed on its own, by reason.",
                    &["reason"],
                );
                Closed::ALL.map(|c| closed.with_label_values(&[c.label()]))
            },
        }
    }
}

/// Register every metric now, so that the first scrape lists them all (counters at zero).
pub fn init() {
    LazyLock::force(&METRICS);
}

/// A request ended: `status` is what the client got (499 when it left before any response).
pub fn request_done(route: Route, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    let route_index = route as usize;
    let status = if STATUSES.contains(&status) { status } else { 599 };
    let counter = m.request_counters[route_index][usize::from(status - 100)]
        .get_or_init(|| m.requests.with_label_values(&[route.label(), status.to_string().as_str()]));
    counter.inc();
    m.request_duration[route_index].observe(elapsed.as_secs_f64());
}

/// A result-cache lookup ended with `outcome`, and its request took `elapsed` in all.
pub fn cache_lookup(outcome: CacheOutcome, elapsed: Duration) {
    let m = &*METRICS;
    let label = outcome.label();
    if let Some(i) = CacheOutcome::OUTCOMES.iter().position(|o| *o == label) {
        m.cache_lookups[i].inc();
        m.image_duration[i].observe(elapsed.as_secs_f64());
    }
    if let Some(i) = outcome.tier().and_then(|tier| CacheOutcome::TIERS.iter().position(|t| *t == tier)) {
        m.cache_hits[i].inc();
    }
}

/// The disk tier now holds `entries` results taking `bytes`.
pub fn disk_tier(entries: usize, bytes: u64) {
    METRICS.disk_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
    METRICS.disk_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// A result was not written to the disk tier.
pub fn disk_write_dropped() {
    METRICS.disk_writes_dropped.inc();
}

/// A shared-tier operation (`get`, `put`, `delete`, `list`) failed or timed out.
pub fn shared_error(op: &str) {
    METRICS.shared_errors.with_label_values(&[op]).inc();
}

/// A purge request dropped `scope` (`url` or `source`).
pub fn purged(scope: &str) {
    METRICS.purges.with_label_values(&[scope]).inc();
}

/// A request was answered with an error of `kind`: counted when that is a refusal.
pub fn answered_with_error(kind: ErrorKind) {
    if let Some(refusal) = Refusal::of(kind) {
        METRICS.refusals[refusal as usize].inc();
    }
}

/// A memory hit was answered at the connection (`fast_hit`).
pub fn fast_hit() {
    METRICS.fast_hits.inc();
}

/// An access-log line was dropped.
pub fn access_log_dropped() {
    METRICS.access_log_dropped.inc();
}

/// Times one origin fetch from [`OriginFetch::start`] to [`OriginFetch::finish`]; dropped
/// without finishing (every request waiting for it left), it counts as a `cancelled` failure.
pub struct OriginFetch {
    started: Instant,
    finished: bool,
}

impl OriginFetch {
    pub fn start() -> Self {
        OriginFetch { started: Instant::now(), finished: false }
    }

    /// The fetch ended: the bytes fetched, or the kind of its failure.
    pub fn finish(mut self, outcome: Result<usize, ErrorKind>) {
        self.finished = true;
        let m = &*METRICS;
        m.origin_fetches.inc();
        m.origin_duration.observe(self.started.elapsed().as_secs_f64());
        match outcome {
            Ok(bytes) => m.origin_bytes.inc_by(bytes as u64),
            Err(kind) => origin_failure(kind),
        }
    }
}

impl Drop for OriginFetch {
    fn drop(&mut self) {
        if !self.finished {
            METRICS.origin_fetches.inc();
            origin_failure(ErrorKind::Cancelled);
        }
    }
}

fn origin_failure(kind: ErrorKind) {
    let m = &*METRICS;
    let slot = (kind as usize).min(ERROR_KINDS - 1);
    m.origin_failure_counters[slot]
        .get_or_init(|| m.origin_failures.with_label_values(&[snake_case(kind).as_str()]))
        .inc();
}

/// `SourceNotAllowed` -> `source_not_allowed`: an error kind as a label value.
fn snake_case(kind: ErrorKind) -> String {
    let mut out = String::new();
    for (i, c) in format!("{kind:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Times the stages of one render: each [`StageClock::lap`] records the time since the
/// previous one (or the start) under its stage.
pub struct StageClock(Instant);

impl StageClock {
    pub fn start() -> Self {
        StageClock(Instant::now())
    }

    pub fn lap(&mut self, stage: Stage) {
        let now = Instant::now();
        METRICS.stage_duration[stage as usize].observe(now.duration_since(self.0).as_secs_f64());
        self.0 = now;
    }
}

/// A render got its thread `waited` after it asked for one (memory budget included).
pub fn render_waited(waited: Duration) {
    METRICS.render_wait.observe(waited.as_secs_f64());
}

/// A render's place in the render pool, as the queue-depth and in-flight gauges see it: queued
/// from [`RenderSlot::queued`], running from [`RenderSlot::start`], gone when dropped.
pub struct RenderSlot {
    running: bool,
}

impl RenderSlot {
    pub fn queued() -> Self {
        METRICS.queue_depth.inc();
        RenderSlot { running: false }
    }

    /// The render got its thread.
    pub fn start(&mut self) {
        if !self.running {
            self.running = true;
            METRICS.queue_depth.dec();
            METRICS.in_flight.inc();
        }
    }
}

impl Drop for RenderSlot {
    fn drop(&mut self) {
        if self.running {
            METRICS.in_flight.dec();
        } else {
            METRICS.queue_depth.dec();
        }
    }
}

/// Read `level` with `read` at each scrape from now on (replacing its earlier reader).
pub fn watch(level: Level, read: impl Fn() -> u64 + Send + Sync + 'static) {
    *LEVEL_READERS[level as usize].lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(read));
}

/// Thumbora closed a client connection on its own.
pub fn connection_closed(why: Closed) {
    METRICS.connections_closed[why as usize].inc();
}

/// Every metric in Prometheus' text format (version 0.0.4).
pub fn exposition() -> String {
    init();
    for (reader, gauge) in LEVEL_READERS.iter().zip(&METRICS.levels) {
        if let Some(read) = &*reader.lock().unwrap_or_else(PoisonError::into_inner) {
            gauge.set(i64::try_from(read()).unwrap_or(i64::MAX));
        }
    }
    let mut text = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&REGISTRY.gather(), &mut text) {
        log::error!("encoding the metrics: {e}");
    }
    text
}

/// The metrics listener's HTTP app: `GET /metrics` answers the text exposition; any other path
/// is 404. Bind it to a private address: it has no authentication.
pub struct MetricsApp;

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        let (status, content_type, body) = if path != "/metrics" {
            (404, "text/plain; charset=utf-8", b"not found: metrics are at /metrics\n".to_vec())
        } else if !matches!(req.method, http::Method::GET | http::Method::HEAD) {
            (405, "text/plain; charset=utf-8", b"method not allowed\n".to_vec())
        } else {
            (200, "text/plain; version=0.0.4; charset=utf-8", exposition().into_bytes())
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(body)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family of the exposition, by name, with its type.
    fn families() -> Vec<(String, String)> {
        exposition()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' ').map(|(n, t)| (n.to_string(), t.to_string())))
            .collect()
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        // The families whose series appear on first use.
        request_done(Route::Healthcheck, 200, Duration::ZERO);
        origin_failure(ErrorKind::UpstreamTimeout);
        shared_error("get");
        purged("url");
        let families = families();
        let names: Vec<&str> = families.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "thumbora_access_log_dropped_lines_total",
                "thumbora_cache_disk_bytes",
                "thumbora_cache_disk_entries",
                "thumbora_cache_disk_writes_dropped_total",
                "thumbora_cache_hits_total",
                "thumbora_cache_lookups_total",
                "thumbora_cache_memory_bytes",
                "thumbora_cache_memory_entries",
                "thumbora_cache_shared_errors_total",
                "thumbora_client_connections",
                "thumbora_client_connections_closed_total",
                "thumbora_fast_hits_total",
                "thumbora_fetch_memory_in_use_bytes",
                "thumbora_image_request_duration_seconds",
                "thumbora_origin_fetch_bytes_total",
                "thumbora_origin_fetch_duration_seconds",
                "thumbora_origin_fetch_failures_total",
                "thumbora_origin_fetches_total",
                "thumbora_originals_cache_bytes",
                "thumbora_originals_cache_entries",
                "thumbora_purges_total",
                "thumbora_refusals_total",
                "thumbora_render_in_flight",
                "thumbora_render_memory_in_use_bytes",
                "thumbora_render_queue_depth",
                "thumbora_render_stage_duration_seconds",
                "thumbora_render_wait_seconds",
                "thumbora_request_duration_seconds",
                "thumbora_requests_total",
            ]
        );
        for (name, kind) in &families {
            assert!(name.starts_with("thumbora_"), "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}");
            match kind.as_str() {
                "counter" => assert!(name.ends_with("_total"), "a counter ends in _total: {name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "histograms here are durations: {name}"),
                "gauge" => assert!(!name.ends_with("_total"), "{name}"),
                other => panic!("{name}: unexpected type {other}"),
            }
            // Units are base units, named once, last (before _total).
            assert!(!name.contains("_ms") && !name.contains("milli"), "{name}");
        }
        for (name, _) in families.iter().filter(|(n, _)| n.contains("bytes")) {
            assert!(name.ends_with("_bytes") || name.ends_with("_bytes_total"), "bytes is the last unit: {name}");
        }
    }

    #[test]
    fn label_values_are_bounded_and_snake_case() {
        let all: Vec<&str> = Route::ALL
            .iter()
            .map(|r| r.label())
            .chain(CacheOutcome::OUTCOMES)
            .chain(CacheOutcome::TIERS)
            .chain(Stage::ALL.iter().map(|s| s.label()))
            .chain(Refusal::ALL.iter().map(|r| r.label()))
            .chain(Closed::ALL.iter().map(|c| c.label()))
            .collect();
        for label in all {
            assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{label}");
        }
        assert_eq!(snake_case(ErrorKind::SourceNotAllowed), "source_not_allowed");
        assert_eq!(snake_case(ErrorKind::Internal), "internal");
        // Every refusal reason is the snake_case of the error kind it comes from.
        for kind in [ErrorKind::Overloaded, ErrorKind::BadSignature, ErrorKind::MemoryBudget, ErrorKind::TooLarge] {
            assert_eq!(Refusal::of(kind).map(Refusal::label), Some(snake_case(kind).as_str()));
        }
        assert_eq!(Refusal::of(ErrorKind::SourceNotFound), None);
        assert_eq!(Refusal::of(ErrorKind::BadUrl), None);
    }

    #[test]
    fn counters_move_and_series_carry_their_labels() {
        let line = |prefix: &str| {
            let text = exposition();
            text.lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.rsplit_once(' '))
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let series = r#"thumbora_requests_total{route="healthcheck",status="204"}"#;
        let before = line(series);
        request_done(Route::Healthcheck, 204, Duration::from_millis(1));
        request_done(Route::Healthcheck, 204, Duration::from_millis(1));
        assert_eq!(line(series) - before, 2.0);
        // Out-of-range statuses share one series instead of making new ones.
        request_done(Route::Unclassified, 1000, Duration::ZERO);
        assert!(line(r#"thumbora_requests_total{route="unclassified",status="599"}"#) >= 1.0);

        let refusal = r#"thumbora_refusals_total{reason="source_not_allowed"}"#;
        let before = line(refusal);
        answered_with_error(ErrorKind::SourceNotAllowed);
        answered_with_error(ErrorKind::SourceNotFound);
        assert_eq!(line(refusal) - before, 1.0);

        let failures = r#"thumbora_origin_fetch_failures_total{reason="cancelled"}"#;
        let before = line(failures);
        drop(OriginFetch::start());
        assert_eq!(line(failures) - before, 1.0);
    }

    /// The cost of one scrape's encoding at about 1,000 series (every route with 200 statuses,
    /// plus the fixed families): `cargo test --release --lib scrape_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn scrape_cost() {
        for route in Route::ALL {
            for status in 200..400 {
                request_done(route, status, Duration::from_millis(3));
            }
        }
        let text = exposition();
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        let runs = 200;
        let started = Instant::now();
        let mut bytes = 0;
        for _ in 0..runs {
            bytes = exposition().len();
        }
        let each = started.elapsed() / runs;
        println!("{series} series, {bytes} bytes: {each:?} per scrape (gather + encode)");
        assert!(series >= 1000);
    }

    #[test]
    fn render_slots_move_the_gauges() {
        // Other tests run render pools concurrently: compare against this test's own slots only
        // through a lower bound.
        let mut slot = RenderSlot::queued();
        assert!(METRICS.queue_depth.get() >= 1);
        slot.start();
        assert!(METRICS.in_flight.get() >= 1);
        drop(slot);
        assert!(METRICS.in_flight.get() >= 0 && METRICS.queue_depth.get() >= 0);
    }
}
