//! Configuration: one YAML file holding Pingora's server keys at the top level and Thumbora's
//! under `thumbora:`. Every struct has serde defaults equal to the documented defaults
//! (`conf/thumbora.yaml`, which is also the embedded default) and a `validate()` that names the
//! offending key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use pingora_core::server::configuration::ServerConf;
use serde::{Deserialize, Serialize};

/// The default configuration, compiled in and used when no `-c FILE` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../conf/thumbora.yaml");

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), message: message.into() }
    }
}

/// Thumbora's own settings (the `thumbora:` section).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Addresses to listen on, `host:port` (plain HTTP/1.1).
    pub listen: Vec<String>,
    /// TLS listeners: an address with its certificate chain and key (HTTPS, ALPN h2 and
    /// http/1.1).
    pub tls: Vec<TlsListener>,
    /// Path answering `200 WORKING` (thumbor's `HEALTHCHECK_ROUTE`).
    pub healthcheck_path: String,
    /// Idle client connections are closed after this many seconds (Pingora keeps HTTP/1.1
    /// connections open forever otherwise).
    pub keepalive_seconds: u64,
    /// Largest request header block accepted (request line and headers); larger gets 431.
    pub max_request_header_bytes: usize,
    /// Requests one HTTP/2 connection may have under way at once (its
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`); a client opening more gets those streams refused.
    pub http2_max_streams: u32,
    /// Client connections open at once; a connection over the cap is answered 503 and closed.
    pub max_connections: usize,
    /// A request head (request line and header fields) must arrive whole within this long of
    /// its first byte (of the connection, for the first request); slower clients are dropped.
    pub request_head_timeout_ms: u64,
    /// A request body (site requests) must arrive whole within this long, however it trickles.
    pub request_body_timeout_ms: u64,
    /// A client that takes none of an answer's bytes for this long is dropped (nginx's
    /// `send_timeout`): a client that stops reading cannot hold its connection for ever.
    pub send_timeout_seconds: u64,
    /// Each client connection's write buffer: a response whose header and body fit is sent in
    /// one write (one system call, one packet train) instead of a header write then a body write.
    pub write_buffer_bytes: usize,
    /// Answer fresh results in memory at the connection, before Pingora builds a session for
    /// the request (`fast_hit`); off: every request goes through Pingora's HTTP/1 session.
    pub fast_hits: bool,
    pub security: SecurityConfig,
    pub sources: SourcesConfig,
    pub image: ImageConfig,
    pub response: ResponseConfig,
    pub cache: CacheConfig,
    pub render: RenderConfig,
    pub site: SiteConfig,
    pub metrics: MetricsConfig,
    pub playground: PlaygroundConfig,
    pub access_log: AccessLogConfig,
}

impl Config {
    /// Whether a request target (path and query, as received) is `healthcheck_path`, with or
    /// without a trailing slash.
    pub fn is_healthcheck(&self, target: &[u8]) -> bool {
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        let health = self.healthcheck_path.as_bytes();
        path == health || path.strip_suffix(b"/") == Some(health)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec!["0.0.0.0:8888".into()],
            tls: vec![],
            healthcheck_path: "/healthcheck".into(),
            keepalive_seconds: 60,
            max_request_header_bytes: 64 * 1024,
            http2_max_streams: 100,
            max_connections: 10_000,
            request_head_timeout_ms: 10_000,
            request_body_timeout_ms: 60_000,
            send_timeout_seconds: 60,
            write_buffer_bytes: 32 * 1024,
            fast_hits: true,
            security: SecurityConfig::default(),
            sources: SourcesConfig::default(),
            image: ImageConfig::default(),
            response: ResponseConfig::default(),
            cache: CacheConfig::default(),
            render: RenderConfig::default(),
            site: SiteConfig::default(),
            metrics: MetricsConfig::default(),
            playground: PlaygroundConfig::default(),
            access_log: AccessLogConfig::default(),
        }
    }
}

/// URL signing (thumbor's `SECURITY_KEY`, `ALLOW_UNSAFE_URL`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Keys accepted for signed URLs; several allow rotation. Empty: signed URLs are refused.
    pub keys: Vec<String>,
    /// Accept `/unsafe/` URLs.
    pub allow_unsafe: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig { keys: vec![], allow_unsafe: true }
    }
}

/// Which loader fetches an image URL (thumbor's `LOADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoaderKind {
    /// `http_loader`: every image URL is fetched over HTTP(S).
    Http,
    /// `file_loader`: every image URL is a path under `file_root`.
    File,
    /// A file under `file_root` when one exists at that path, HTTP otherwise; an explicit
    /// `http://`/`https://` always goes to HTTP.
    FileThenHttp,
    /// thumbor-aws's S3 loader: every image URL is an object key in `sources.s3`'s bucket, under
    /// its prefix.
    S3,
}

/// Where originals come from and how they are fetched.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    pub loader: LoaderKind,
    /// Root directory of the file loader (`FILE_LOADER_ROOT_PATH`).
    pub file_root: Option<PathBuf>,
    /// Allowed origin hosts (`ALLOWED_SOURCES`): exact host names, `*.example.com` wildcards,
    /// IP addresses or CIDR ranges. Empty: any public host.
    pub allowed: Vec<String>,
    /// Allow origins on private, loopback, link-local and CGNAT addresses (thumbor's behaviour).
    pub allow_private_networks: bool,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub follow_redirects: bool,
    pub max_redirects: usize,
    /// Largest source accepted, in bytes.
    pub max_bytes: u64,
    pub user_agent: String,
    /// Answer origin failures as thumbor does (every HTTP error 404, refused connection 500)
    /// instead of 502/504.
    pub thumbor_error_statuses: bool,
    /// Memory for fetched originals, in bytes (thumbor's STORAGE): every size of one image is
    /// rendered from one origin fetch, and concurrent fetches of one URL are coalesced. 0: off.
    pub cache_bytes: u64,
    /// How long a fetched original is reused, in seconds.
    pub cache_ttl_seconds: u64,
    /// PEM file of certificate authorities trusted for HTTPS origins besides the system's (a
    /// private CA in front of internal origins).
    pub ca_file: Option<PathBuf>,
    /// Fetches in flight to one origin (`host:port`) at once; more are refused with 503 at once,
    /// so one slow or dead origin cannot hold every fetch. 0: no cap.
    pub max_fetches_per_host: usize,
    /// Memory for source bytes being fetched or held by requests, in bytes (the originals cache
    /// has its own, `cache_bytes`); a fetch that does not fit is refused with 503.
    pub fetch_memory_bytes: u64,
    /// The bucket of the `s3` loader (thumbor-aws's loader): image URLs are keys under its prefix.
    pub s3: Option<crate::s3::S3Config>,
    /// Fetched originals on local disk below `cache_bytes` of memory, for `cache_ttl_seconds`:
    /// every size of one image costs one origin fetch, also across restarts. `null`: memory only.
    pub disk: Option<OriginalsDiskConfig>,
}

/// The originals' disk tier (thumbor's file STORAGE).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginalsDiskConfig {
    /// A directory only Thumbora writes to, not the result cache's.
    pub dir: PathBuf,
    /// Disk the originals may take, in bytes (whole 4 KiB blocks).
    pub max_bytes: u64,
}

impl Default for OriginalsDiskConfig {
    fn default() -> Self {
        OriginalsDiskConfig { dir: PathBuf::new(), max_bytes: 4 * 1024 * 1024 * 1024 }
    }
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            loader: LoaderKind::Http,
            file_root: None,
            allowed: vec![],
            allow_private_networks: false,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 20_000,
            follow_redirects: true,
            max_redirects: 5,
            max_bytes: 64 * 1024 * 1024,
            user_agent: format!("Thumbora/{}", env!("CARGO_PKG_VERSION")),
            thumbor_error_statuses: false,
            cache_bytes: 64 * 1024 * 1024,
            cache_ttl_seconds: 3_600,
            ca_file: None,
            max_fetches_per_host: 128,
            fetch_memory_bytes: 256 * 1024 * 1024,
            s3: None,
            disk: None,
        }
    }
}

/// Decoding, processing and encoding.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageConfig {
    /// Default encoder quality (thumbor's `QUALITY`).
    pub quality: u8,
    /// WebP quality when no `quality()` filter is given; unset: `quality`.
    pub webp_quality: Option<u8>,
    /// AVIF quality when no `quality()` filter is given; unset: `quality`.
    pub avif_quality: Option<u8>,
    pub progressive_jpeg: bool,
    /// Rotate by the EXIF orientation tag (thumbor's default, `RESPECT_ORIENTATION`, is off).
    pub respect_orientation: bool,
    /// Serve WebP to clients whose `Accept` allows it (`AUTO_WEBP`).
    pub auto_webp: bool,
    /// Serve AVIF to clients whose `Accept` allows it (`AUTO_AVIF`).
    pub auto_avif: bool,
    /// rav1e speed of the AVIF encoder, 1 (slowest, smallest) to 10 (`AVIF_SPEED`).
    pub avif_speed: u8,
    /// Serve opaque PNG results as JPEG (`AUTO_PNG_TO_JPG`).
    pub auto_png_to_jpg: bool,
    /// Honour the `autojpg()` filter. thumbor 7.8 does not load it by default (it is not in
    /// `BUILTIN_FILTERS`), so by default it is ignored as thumbor ignores it.
    pub autojpg_filter: bool,
    /// Keep animations of animated WebP sources, and write an animated GIF as animated WebP under
    /// `format(webp)`. thumbor flattens animated WebP to its first frame and keeps GIFs as GIF.
    pub animated_webp: bool,
    /// thumbor's `ALLOW_ANIMATED_GIFS`: `false` renders an animated GIF as its first frame, as a
    /// one-frame GIF would be (then `auto_webp` may serve it as WebP).
    pub animated_gifs: bool,
    /// thumbor's `PRESERVE_EXIF_INFO`: the source's EXIF is copied into JPEG, PNG and WebP
    /// results (its orientation set to 1 when the pixels were turned upright); `strip_exif()`
    /// drops it for one URL.
    pub preserve_exif: bool,
    /// What happens to an embedded ICC profile.
    pub icc: IccMode,
    /// thumbor's `MAX_WIDTH`/`MAX_HEIGHT`: larger sources are reduced on load (0 = off).
    pub max_width: u32,
    pub max_height: u32,
    /// Largest source, in pixels (thumbor's `MAX_PIXELS`); refused with 400 above it.
    pub max_source_pixels: u64,
    /// Largest output, in pixels, and per side; refused with 400 above them (0 = off).
    pub max_output_pixels: u64,
    pub max_output_side: u32,
    /// Most frames decoded from an animation; longer ones are refused with 400.
    pub max_frames: u32,
    /// Answer 400 to unknown filters and bad filter arguments instead of ignoring them.
    pub strict_filters: bool,
    /// `smart/` looks for the subject (saliency: edges, saturated colours, skin tones). thumbor
    /// does so only with DETECTORS configured; without, `smart/` is a centre crop. false: as
    /// thumbor's default.
    pub smart_detection: bool,
    /// Apply post-transform filters (format, quality, max_age, pixel filters) to GIF sources.
    /// thumbor 7.8 skips them all for GIFs (its USE_GIFSICLE_ENGINE=False path): false matches it.
    pub gif_filters: bool,
    /// Decode BMP and TIFF sources (pure-Rust decoders, same header limits), written as thumbor
    /// writes them: BMP as JPEG, TIFF as PNG. Off: they are refused with 400.
    pub legacy_formats: bool,
    /// JPEG shrink-on-load leaves the resampler at least this factor to reduce: 1 decodes as
    /// small as the output allows (Pillow's draft mode, as thumbor does for fit-in; the DCT
    /// reduction averages whole blocks, so nothing aliases), 2 leaves the resampler more pixels
    /// (closer to a full decode for crops, ~20% more CPU on large JPEGs).
    pub jpeg_shrink_margin: f64,
    /// Most scans a JPEG may have; more is refused with 400. Each scan of a progressive JPEG
    /// walks the whole image, so a flood of tiny scans costs seconds (libjpeg-turbo writes 10).
    pub max_jpeg_scans: u32,
    /// Most items in a `filters:` segment; more is refused with 400 before anything is fetched.
    pub max_filters: usize,
    /// Most distinct images `watermark()` and `frame()` may load in one request.
    pub max_filter_images: usize,
    /// Most work one filter may do, in kernel taps (pixels x taps per pixel, all frames):
    /// `blur(150)` on 1.6 megapixels; more is refused with 400 before decoding.
    pub max_filter_cost: u64,
    /// Most encoding work for one frame, in output pixels weighted by format: JPEG and PNG 1,
    /// WebP 6, GIF 12, AVIF 15 at speed 10 (x1.6 per step slower). An encoder cannot be stopped
    /// inside a frame; costlier outputs are refused with 400 before decoding.
    pub max_encode_cost: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            quality: 80,
            webp_quality: None,
            avif_quality: None,
            progressive_jpeg: true,
            respect_orientation: true,
            auto_webp: false,
            auto_avif: false,
            avif_speed: 10,
            auto_png_to_jpg: false,
            autojpg_filter: false,
            animated_webp: true,
            animated_gifs: true,
            preserve_exif: false,
            icc: IccMode::Keep,
            max_width: 0,
            max_height: 0,
            max_source_pixels: 75_000_000,
            max_output_pixels: 50_000_000,
            max_output_side: 16_383,
            max_frames: 500,
            strict_filters: false,
            smart_detection: true,
            gif_filters: false,
            legacy_formats: false,
            jpeg_shrink_margin: 1.0,
            max_jpeg_scans: 64,
            max_filters: 20,
            max_filter_images: 4,
            max_filter_cost: 1_000_000_000,
            max_encode_cost: 100_000_000,
        }
    }
}

/// What happens to a source's embedded ICC profile (`image.icc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IccMode {
    /// Embed it in JPEG, PNG and WebP results (thumbor's behaviour); formats that cannot carry
    /// it (AVIF, GIF here) get their pixels converted to sRGB instead. `strip_icc()` drops it.
    Keep,
    /// Convert the pixels to sRGB and drop the profile.
    Srgb,
}

/// Response headers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseConfig {
    /// `Cache-Control: max-age=N,public` and `Expires` (thumbor's `MAX_AGE`); 0 omits them.
    pub max_age: u64,
    /// Send `ETag` and answer `If-None-Match` with 304 (`ENABLE_ETAGS`).
    pub etags: bool,
    /// `Access-Control-Allow-Origin` value, if any.
    pub cors_allow_origin: Option<String>,
    /// thumbor's `META_CALLBACK_NAME`: every `meta/` answer is JSONP calling this function,
    /// whatever `?callback=` says.
    pub meta_callback_name: Option<String>,
    /// thumbor's `SEND_IF_MODIFIED_LAST_MODIFIED_HEADERS`: results carry `Last-Modified` (when
    /// they were rendered), and a cached one is answered 304 to an `If-Modified-Since` not
    /// before it.
    pub last_modified: bool,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            max_age: 86_400,
            etags: true,
            cors_allow_origin: None,
            meta_callback_name: None,
            last_modified: false,
        }
    }
}

impl ResponseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.meta_callback_name {
            // The rule `?callback=` values follow (`pipeline::meta::safe_callback`).
            let identifier = !name.is_empty()
                && name.len() <= 128
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$');
            if !identifier {
                return Err(ConfigError::new(
                    "thumbora.response.meta_callback_name",
                    "must be a JavaScript name: letters, digits, `_`, `.` and `$`, at most 128",
                ));
            }
        }
        Ok(())
    }
}

/// The result cache (rendered images, keyed by the canonical request).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Memory for cached results, in bytes.
    pub max_bytes: usize,
    /// Largest single cached result, in bytes.
    pub max_object_bytes: usize,
    /// How long concurrent requests for one uncached result wait for the first to finish.
    pub lock_timeout_ms: u64,
    /// After a result's max-age, serve it this long more while one request renders it again in
    /// the background (RFC 5861 stale-while-revalidate). 0: render before answering.
    pub stale_while_revalidate_seconds: u32,
    /// After a result's max-age, serve it this long more when rendering it again fails with a
    /// 5xx (the origin down or failing; RFC 5861 stale-if-error). 0: answer the error.
    pub stale_if_error_seconds: u32,
    /// Results on local disk below the memory tier; `null`: memory only.
    pub disk: Option<DiskTierConfig>,
    /// Results in an S3-compatible bucket shared by every node; `null`: none.
    pub shared: Option<SharedTierConfig>,
    /// Who may purge cached results (`PURGE` requests).
    pub purge: PurgeConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_bytes: 256 * 1024 * 1024,
            max_object_bytes: 16 * 1024 * 1024,
            lock_timeout_ms: 30_000,
            stale_while_revalidate_seconds: 0,
            stale_if_error_seconds: 0,
            disk: None,
            shared: None,
            purge: PurgeConfig::default(),
        }
    }
}

impl CacheConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled && self.max_bytes == 0 {
            return Err(ConfigError::new("thumbora.cache.max_bytes", "must be > 0 when the cache is enabled"));
        }
        if self.max_object_bytes == 0 {
            return Err(ConfigError::new("thumbora.cache.max_object_bytes", "must be > 0"));
        }
        if let Some(disk) = &self.disk {
            if disk.dir.as_os_str().is_empty() {
                return Err(ConfigError::new("thumbora.cache.disk.dir", "must be a directory path"));
            }
            if disk.max_bytes < 1024 * 1024 {
                return Err(ConfigError::new("thumbora.cache.disk.max_bytes", "must be at least 1 MiB"));
            }
            if disk.write_queue_bytes == 0 {
                return Err(ConfigError::new("thumbora.cache.disk.write_queue_bytes", "must be > 0"));
            }
        }
        if let Some(shared) = &self.shared {
            shared
                .s3
                .validate("thumbora.cache.shared.s3")
                .map_err(|m| ConfigError::new("thumbora.cache.shared.s3", m))?;
            if shared.journal_poll_ms == 0 {
                return Err(ConfigError::new("thumbora.cache.shared.journal_poll_ms", "must be > 0"));
            }
        }
        for (i, token) in self.purge.tokens.iter().enumerate() {
            if token.len() < 16 {
                return Err(ConfigError::new(
                    format!("thumbora.cache.purge.tokens[{i}]"),
                    "must be at least 16 characters (a secret that cannot be guessed)",
                ));
            }
        }
        for (i, net) in self.purge.allowed_addresses.iter().enumerate() {
            if parse_network(net).is_none() {
                return Err(ConfigError::new(
                    format!("thumbora.cache.purge.allowed_addresses[{i}]"),
                    format!("`{net}` is not an address or a CIDR range"),
                ));
            }
        }
        Ok(())
    }
}

/// The disk tier of the result cache.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskTierConfig {
    /// A directory only Thumbora writes to (created if missing; the systemd unit's
    /// CacheDirectory is /var/cache/thumbora).
    pub dir: PathBuf,
    /// Disk the entries may take, in bytes (counted in 4 KiB blocks, as the filesystem does).
    pub max_bytes: u64,
    /// Results waiting to be written, in bytes; past it a result is not written (it is still
    /// served and kept in memory).
    pub write_queue_bytes: usize,
}

impl Default for DiskTierConfig {
    fn default() -> Self {
        DiskTierConfig { dir: PathBuf::new(), max_bytes: 1024 * 1024 * 1024, write_queue_bytes: 64 * 1024 * 1024 }
    }
}

/// The shared tier of the result cache: an S3-compatible bucket every node reads and writes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedTierConfig {
    /// The bucket (endpoint, region, bucket, prefix, path style, credentials, timeouts).
    pub s3: crate::s3::S3Config,
    /// Store results of `unsafe/` URLs too (thumbor's RESULT_STORAGE_STORES_UNSAFE, default off:
    /// anyone can make up unsafe URLs, and each would become an object in the bucket).
    pub store_unsafe: bool,
    /// How often each node reads the purge journal other nodes write, in milliseconds.
    pub journal_poll_ms: u64,
    /// PUTs in flight at once; past it a result is not stored in the bucket (still served).
    pub max_concurrent_writes: usize,
    /// After a failed or timed-out call, the bucket is skipped this long (requests render from the
    /// origin without waiting for it).
    pub down_seconds: u64,
}

impl Default for SharedTierConfig {
    fn default() -> Self {
        SharedTierConfig {
            s3: crate::s3::S3Config::default(),
            store_unsafe: false,
            journal_poll_ms: 2000,
            max_concurrent_writes: 16,
            down_seconds: 5,
        }
    }
}

/// Purging cached results: a `PURGE` request is honoured when it carries one of `tokens`
/// (`Authorization: Bearer <token>`) or comes from one of `allowed_addresses`; anyone else gets 403.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurgeConfig {
    /// Secrets accepted in `Authorization: Bearer <token>`.
    pub tokens: Vec<String>,
    /// Client addresses or CIDR ranges allowed without a token (e.g. `127.0.0.1/32`).
    pub allowed_addresses: Vec<String>,
}

/// The CPU pool that decodes, transforms and encodes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderConfig {
    /// Render threads; 0 = the number of cores.
    pub threads: usize,
    /// Renders admitted beyond the running ones (waiting for their source or a thread) before
    /// requests get 503; 0 = 64 per thread. Fetched sources held in memory are bounded by it.
    pub queue: usize,
    /// Memory the renders in flight may hold together, in bytes (estimated from image sizes).
    pub memory_budget_bytes: u64,
    /// Niceness of render threads, so cache hits on the proxy threads are served first.
    pub nice: i32,
    /// A render (decode to encode, once it has a thread) stops at its next checkpoint past this
    /// many milliseconds and is answered 503. 0: no deadline.
    pub deadline_ms: u64,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig { threads: 0, queue: 0, memory_budget_bytes: 512 * 1024 * 1024, nice: 15, deadline_ms: 2_500 }
    }
}

impl RenderConfig {
    /// Threads actually started.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }

    /// Queue length actually used.
    pub fn effective_queue(&self) -> usize {
        if self.queue > 0 {
            self.queue
        } else {
            64 * self.effective_threads()
        }
    }
}

/// The rest of the site: requests that are not image requests are reverse-proxied to app
/// servers over plain HTTP/1.1, as nginx's `location / { proxy_pass http://app; }` beside
/// thumbor's location.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// App servers (`host:port`), chosen round robin among those passing the health check.
    /// Empty: no site; every request is an image request (as in thumbor).
    pub upstreams: Vec<String>,
    /// Image requests are those under this path prefix (`/img`: `/img/unsafe/300x200/a.jpg`),
    /// which is removed before the thumbor URL is parsed and signatures are checked. "": none.
    pub image_prefix: String,
    /// Every request whose `Host` (without port) is one of these is an image request.
    pub image_hosts: Vec<String>,
    pub connect_timeout_ms: u64,
    /// Longest wait for the app server's response or any read of its body.
    pub read_timeout_ms: u64,
    /// Seconds between TCP health checks of each app server; 0: no health check.
    pub health_check_seconds: u64,
    /// Idle connections to the app servers kept open for reuse, per proxy thread (nginx's
    /// upstream `keepalive`). Pingora's shared pool (`upstream_keepalive_pool_size`, for requests
    /// with a body or an upgrade) holds this times `threads`.
    pub keepalive: usize,
    /// An idle kept-alive connection to an app server is closed after this long (nginx's
    /// upstream `keepalive_timeout`).
    pub keepalive_timeout_seconds: u64,
    /// Plain GETs and HEADs (no body, nothing hop-by-hop) are forwarded straight from the
    /// client's connection, both heads parsed and written by Thumbora (`site::direct`); off:
    /// through Pingora's HTTP/1 session, as every other site request.
    pub fast_forward: bool,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            upstreams: vec![],
            image_prefix: String::new(),
            image_hosts: vec![],
            connect_timeout_ms: 5_000,
            read_timeout_ms: 60_000,
            health_check_seconds: 5,
            keepalive: 128,
            keepalive_timeout_seconds: 60,
            fast_forward: true,
        }
    }
}

impl SiteConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (i, upstream) in self.upstreams.iter().enumerate() {
            let port_ok =
                upstream.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok || upstream.contains('/') {
                return Err(ConfigError::new(
                    format!("thumbora.site.upstreams[{i}]"),
                    format!("`{upstream}` is not host:port"),
                ));
            }
        }
        if self.keepalive > 65_536 {
            return Err(ConfigError::new("thumbora.site.keepalive", "at most 65536 idle connections per thread"));
        }
        if self.keepalive_timeout_seconds == 0 {
            return Err(ConfigError::new(
                "thumbora.site.keepalive_timeout_seconds",
                "must be at least 1 (no reuse: `keepalive: 0`)",
            ));
        }
        let prefix = &self.image_prefix;
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains(['?', '#'])) {
            return Err(ConfigError::new(
                "thumbora.site.image_prefix",
                "must be empty or a path like `/img` (leading slash, no trailing slash)",
            ));
        }
        if !self.upstreams.is_empty() && prefix.is_empty() && self.image_hosts.is_empty() {
            return Err(ConfigError::new(
                "thumbora.site.upstreams",
                "need `image_prefix` or `image_hosts` to tell image requests from the site's (any path is a thumbor URL)",
            ));
        }
        for (i, host) in self.image_hosts.iter().enumerate() {
            // A single colon is a port; IPv6 literals (`::1`) have more.
            if host.trim().is_empty() || host.contains(['/', '[', ']']) || host.matches(':').count() == 1 {
                return Err(ConfigError::new(
                    format!("thumbora.site.image_hosts[{i}]"),
                    "must be a host name without port",
                ));
            }
        }
        if self.connect_timeout_ms == 0 || self.read_timeout_ms == 0 {
            return Err(ConfigError::new("thumbora.site.read_timeout_ms", "timeouts must be > 0"));
        }
        Ok(())
    }
}

/// `addr` as a socket address, or an error naming `key`.
fn parse_listen(key: &str, addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.parse::<SocketAddr>()
        .map_err(|e| ConfigError::new(key.to_string(), format!("`{addr}` is not host:port ({e})")))
}

/// One TLS listener (`thumbora.tls[]`). The files are read when the process starts, so a
/// renewed certificate is picked up by the graceful upgrade (`systemctl reload`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsListener {
    /// `host:port` to accept TLS connections on.
    pub listen: String,
    /// PEM certificate chain, leaf first (e.g. Let's Encrypt's `fullchain.pem`).
    pub cert_file: PathBuf,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Offer HTTP/2 by ALPN (h2, then http/1.1); off: HTTP/1.1 only.
    pub http2: bool,
}

impl Default for TlsListener {
    fn default() -> Self {
        TlsListener { listen: String::new(), cert_file: PathBuf::new(), key_file: PathBuf::new(), http2: true }
    }
}

impl TlsListener {
    fn validate(&self, key: &str) -> Result<SocketAddr, ConfigError> {
        let addr = parse_listen(&format!("{key}.listen"), &self.listen)?;
        if self.cert_file.as_os_str().is_empty() {
            return Err(ConfigError::new(format!("{key}.cert_file"), "a certificate chain file is needed"));
        }
        if self.key_file.as_os_str().is_empty() {
            return Err(ConfigError::new(format!("{key}.key_file"), "a private key file is needed"));
        }
        Ok(addr)
    }
}

/// The Prometheus metrics listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` answering `GET /metrics` in Prometheus' text format, on a listener (and a
    /// thread) of its own. No authentication: a loopback or private address. Empty: off.
    pub listen: String,
}

impl MetricsConfig {
    fn validate(&self, listen: &[SocketAddr]) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            return Ok(());
        }
        let addr = self.listen.parse::<SocketAddr>().map_err(|e| {
            ConfigError::new("thumbora.metrics.listen", format!("`{}` is not host:port ({e})", self.listen))
        })?;
        if listen.contains(&addr) {
            return Err(ConfigError::new(
                "thumbora.metrics.listen",
                "must differ from every thumbora.listen and thumbora.tls address",
            ));
        }
        Ok(())
    }
}

/// The URL playground: a page on the admin listener (`metrics.listen`) that composes and signs
/// thumbor URLs in the browser and shows their results.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaygroundConfig {
    /// Serve the page at `GET /playground` on the admin listener (`thumbora.metrics.listen`).
    pub enabled: bool,
    /// Largest result the page's renders (forwarded to the first `thumbora.listen` address on
    /// loopback) may have; a larger one is answered 502.
    pub max_result_bytes: usize,
    /// Longest wait for one render through the page, connection included; past it: 504.
    pub timeout_ms: u64,
}

impl Default for PlaygroundConfig {
    fn default() -> Self {
        PlaygroundConfig { enabled: false, max_result_bytes: 32 * 1024 * 1024, timeout_ms: 30_000 }
    }
}

impl PlaygroundConfig {
    fn validate(&self, metrics_listen: &str, listen: &[String]) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if metrics_listen.is_empty() {
            return Err(ConfigError::new(
                "thumbora.playground.enabled",
                "needs thumbora.metrics.listen (the admin listener the page is served on)",
            ));
        }
        if listen.is_empty() {
            return Err(ConfigError::new(
                "thumbora.playground.enabled",
                "needs a plain thumbora.listen address (the page's renders are fetched from it on loopback)",
            ));
        }
        if self.max_result_bytes < 1024 {
            return Err(ConfigError::new("thumbora.playground.max_result_bytes", "must be at least 1024"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("thumbora.playground.timeout_ms", "must be > 0"));
        }
        Ok(())
    }
}

/// The access log: one line per request, written by a thread of its own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Write the access log.
    pub enabled: bool,
    /// File the lines are appended to (created when missing); `None`: standard error.
    pub file: Option<PathBuf>,
    /// Load balancers in front of Thumbora (IP addresses or CIDR ranges): for a request whose
    /// TCP peer is one of them, the client address is taken from `X-Forwarded-For`.
    pub trusted_proxies: Vec<String>,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig { enabled: true, file: None, trusted_proxies: vec![] }
    }
}

impl AccessLogConfig {
    /// `trusted_proxies` as networks (an address is a network of one); entries `validate`
    /// refuses are left out.
    pub fn trusted_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies.iter().filter_map(|p| parse_network(p)).collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            return Err(ConfigError::new("thumbora.access_log.file", "must be a path, or null for standard error"));
        }
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            if parse_network(proxy).is_none() {
                return Err(ConfigError::new(
                    format!("thumbora.access_log.trusted_proxies[{i}]"),
                    format!("`{proxy}` is neither an IP address nor a CIDR range"),
                ));
            }
        }
        Ok(())
    }
}

/// An IP address (a network of one) or a CIDR range as [`is_cidr`] accepts them.
pub(crate) fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    match s.parse::<IpAddr>() {
        Ok(ip) => Some(ipnet::IpNet::from(ip)),
        Err(_) if is_cidr(s) => s.parse().ok(),
        Err(_) => None,
    }
}

impl Config {
    /// Checks values serde cannot: each error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() && self.tls.is_empty() {
            return Err(ConfigError::new(
                "thumbora.listen",
                "at least one address (here or in thumbora.tls) is needed",
            ));
        }
        let mut seen = Vec::new();
        for (i, addr) in self.listen.iter().enumerate() {
            let key = format!("thumbora.listen[{i}]");
            seen.push((key.clone(), parse_listen(&key, addr)?));
        }
        for (i, tls) in self.tls.iter().enumerate() {
            let key = format!("thumbora.tls[{i}]");
            seen.push((format!("{key}.listen"), tls.validate(&key)?));
        }
        for (i, (key, addr)) in seen.iter().enumerate() {
            if let Some((first, _)) = seen[..i].iter().find(|(_, a)| a == addr) {
                return Err(ConfigError::new(key.clone(), format!("{addr} is already {first}")));
            }
        }
        if self.send_timeout_seconds == 0 {
            return Err(ConfigError::new("thumbora.send_timeout_seconds", "must be > 0"));
        }
        if self.keepalive_seconds == 0 {
            return Err(ConfigError::new("thumbora.keepalive_seconds", "must be > 0"));
        }
        if !(1460..=1 << 20).contains(&self.write_buffer_bytes) {
            return Err(ConfigError::new("thumbora.write_buffer_bytes", "must be between 1460 and 1048576"));
        }
        if self.max_request_header_bytes < 1024 {
            return Err(ConfigError::new("thumbora.max_request_header_bytes", "must be at least 1024"));
        }
        if self.http2_max_streams == 0 {
            return Err(ConfigError::new("thumbora.http2_max_streams", "must be > 0"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("thumbora.max_connections", "must be > 0"));
        }
        if self.request_head_timeout_ms == 0 || self.request_body_timeout_ms == 0 {
            return Err(ConfigError::new("thumbora.request_head_timeout_ms", "timeouts must be > 0"));
        }
        if !self.healthcheck_path.starts_with('/') {
            return Err(ConfigError::new("thumbora.healthcheck_path", "must start with `/`"));
        }
        for (i, key) in self.security.keys.iter().enumerate() {
            if key.is_empty() {
                return Err(ConfigError::new(format!("thumbora.security.keys[{i}]"), "must not be empty"));
            }
        }
        self.sources.validate()?;
        self.image.validate()?;
        self.response.validate()?;
        self.site.validate()?;
        let addrs: Vec<SocketAddr> = seen.iter().map(|(_, addr)| *addr).collect();
        self.metrics.validate(&addrs)?;
        self.playground.validate(&self.metrics.listen, &self.listen)?;
        self.access_log.validate()?;
        self.cache.validate()?;
        if !(-20..=19).contains(&self.render.nice) {
            return Err(ConfigError::new("thumbora.render.nice", "must be between -20 and 19"));
        }
        if self.render.memory_budget_bytes < 16 * 1024 * 1024 {
            return Err(ConfigError::new("thumbora.render.memory_budget_bytes", "must be at least 16 MiB"));
        }
        Ok(())
    }
}

/// Whether `s` is a CIDR range (`10.0.0.0/8`, `fd00::/8`) by the rules of
/// `security::ssrf::parse_net`, which builds the policy from it: a canonical address, a
/// prefix length in plain digits, no host bits set past the prefix (`10.0.0.1/8` is a typo,
/// not a range). Written out here so that config does not depend on `security`.
fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.trim().split_once('/') else { return false };
    let Ok(addr) = addr.parse::<IpAddr>() else { return false };
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let net = prefix.parse().ok().and_then(|prefix| ipnet::IpNet::new(addr, prefix).ok());
    net.is_some_and(|net| net.trunc() == net)
}

impl SourcesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if matches!(self.loader, LoaderKind::File | LoaderKind::FileThenHttp) && self.file_root.is_none() {
            return Err(ConfigError::new(
                "thumbora.sources.file_root",
                "is required by the `file` and `file_then_http` loaders",
            ));
        }
        match (&self.s3, self.loader) {
            (None, LoaderKind::S3) => {
                return Err(ConfigError::new("thumbora.sources.s3", "is required by the `s3` loader"));
            }
            (Some(s3), _) => {
                s3.validate("thumbora.sources.s3").map_err(|m| ConfigError::new("thumbora.sources.s3", m))?
            }
            (None, _) => {}
        }
        if let Some(disk) = &self.disk {
            if disk.dir.as_os_str().is_empty() {
                return Err(ConfigError::new("thumbora.sources.disk.dir", "must be a directory path"));
            }
            if disk.max_bytes < 1024 * 1024 {
                return Err(ConfigError::new("thumbora.sources.disk.max_bytes", "must be at least 1 MiB"));
            }
        }
        for (i, pattern) in self.allowed.iter().enumerate() {
            if pattern.trim().is_empty() {
                return Err(ConfigError::new(format!("thumbora.sources.allowed[{i}]"), "must not be empty"));
            }
            if pattern.contains('/') && !is_cidr(pattern) {
                return Err(ConfigError::new(
                    format!("thumbora.sources.allowed[{i}]"),
                    format!("`{pattern}` is neither a host pattern nor a CIDR range"),
                ));
            }
            // `host:port` (or `[v6]:port`): the port must be one.
            let port = match pattern.strip_prefix('[') {
                Some(v6) => v6.split_once("]:").map(|(_, port)| port),
                None => pattern
                    .split_once(':')
                    .filter(|(host, _)| !host.contains(':') && pattern.matches(':').count() == 1)
                    .map(|(_, port)| port),
            };
            if port.is_some_and(|p| p.parse::<u16>().is_err()) {
                return Err(ConfigError::new(
                    format!("thumbora.sources.allowed[{i}]"),
                    format!("`{pattern}`: the port after `:` must be a number up to 65535"),
                ));
            }
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return Err(ConfigError::new(
                "thumbora.sources.request_timeout_ms",
                "timeouts must be > 0 (an origin must never hang a request)",
            ));
        }
        if self.max_bytes == 0 {
            return Err(ConfigError::new("thumbora.sources.max_bytes", "must be > 0"));
        }
        if self.fetch_memory_bytes < self.max_bytes.min(16 * 1024 * 1024) {
            return Err(ConfigError::new(
                "thumbora.sources.fetch_memory_bytes",
                "must hold at least one source (max_bytes, or 16 MiB)",
            ));
        }
        Ok(())
    }
}

impl ImageConfig {
    /// Whether a client's `Accept` can choose the output format (`auto_webp` or `auto_avif`).
    pub fn auto_formats(&self) -> bool {
        self.auto_webp || self.auto_avif
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let quality = |key: &str, q: u8| {
            if (1..=100).contains(&q) {
                Ok(())
            } else {
                Err(ConfigError::new(format!("thumbora.image.{key}"), "must be between 1 and 100"))
            }
        };
        quality("quality", self.quality)?;
        if let Some(q) = self.webp_quality {
            quality("webp_quality", q)?;
        }
        if let Some(q) = self.avif_quality {
            quality("avif_quality", q)?;
        }
        if !(1..=10).contains(&self.avif_speed) {
            return Err(ConfigError::new("thumbora.image.avif_speed", "must be between 1 and 10"));
        }
        if self.max_source_pixels == 0 {
            return Err(ConfigError::new("thumbora.image.max_source_pixels", "must be > 0"));
        }
        if !(1.0..=8.0).contains(&self.jpeg_shrink_margin) {
            return Err(ConfigError::new("thumbora.image.jpeg_shrink_margin", "must be between 1 and 8"));
        }
        if self.max_frames == 0 {
            return Err(ConfigError::new("thumbora.image.max_frames", "must be > 0"));
        }
        for (key, value) in [
            ("max_jpeg_scans", u64::from(self.max_jpeg_scans)),
            ("max_filters", self.max_filters as u64),
            ("max_filter_cost", self.max_filter_cost),
            ("max_encode_cost", self.max_encode_cost),
        ] {
            if value == 0 {
                return Err(ConfigError::new(format!("thumbora.image.{key}"), "must be > 0"));
            }
        }
        Ok(())
    }
}

/// A whole configuration file: Pingora's server settings and Thumbora's.
#[derive(Debug)]
pub struct FileConfig {
    pub server: ServerConf,
    pub thumbora: Config,
}

impl FileConfig {
    /// Parse and validate a YAML document, outside systemd (see [`FileConfig::from_yaml_in`]).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_in(text, None)
    }

    /// Parse and validate a YAML document. Pingora keys the document leaves out take
    /// Thumbora's defaults ([`ServerDefaults`]), with the runtime files in `runtime_dir` when
    /// systemd gives one (`$RUNTIME_DIRECTORY`).
    pub fn from_yaml_in(text: &str, runtime_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let doc: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| ConfigError::new("(file)", format!("not valid YAML: {e}")))?;
        let mut mapping = match doc {
            serde_norway::Value::Mapping(m) => m,
            serde_norway::Value::Null => serde_norway::Mapping::new(),
            _ => return Err(ConfigError::new("(file)", "the top level must be a mapping")),
        };
        let thumbora_value = mapping.remove("thumbora").unwrap_or(serde_norway::Value::Null);
        let thumbora: Config = if thumbora_value.is_null() {
            Config::default()
        } else {
            serde_path_to_error::deserialize(thumbora_value).map_err(|e| {
                let path = e.path().to_string();
                let key = if path == "." { "thumbora".to_string() } else { format!("thumbora.{path}") };
                ConfigError::new(key, e.into_inner().to_string())
            })?
        };

        let known = server_keys();
        for key in mapping.keys() {
            let name = key.as_str().unwrap_or_default();
            if !known.iter().any(|k| k == name) {
                return Err(ConfigError::new(
                    name,
                    "unknown key (top-level keys are Pingora's server settings; Thumbora's go under `thumbora:`)",
                ));
            }
        }
        let given = |key: &str| mapping.contains_key(key);
        let defaults = ServerDefaults::new(runtime_dir);
        let (pid, sock, grace, timeout, wait, stealing) = (
            given("pid_file"),
            given("upgrade_sock"),
            given("grace_period_seconds"),
            given("graceful_shutdown_timeout_seconds"),
            given("daemon_wait_for_ready"),
            given("work_stealing"),
        );
        let mut server: ServerConf = serde_path_to_error::deserialize(serde_norway::Value::Mapping(mapping))
            .map_err(|e| ConfigError::new(e.path().to_string(), e.into_inner().to_string()))?;
        if !pid {
            server.pid_file = defaults.pid_file;
        }
        if !sock {
            server.upgrade_sock = defaults.upgrade_sock;
        }
        if !grace {
            server.grace_period_seconds = Some(defaults.grace_period_seconds);
        }
        if !timeout {
            server.graceful_shutdown_timeout_seconds = Some(defaults.graceful_shutdown_timeout_seconds);
        }
        if !wait {
            server.daemon_wait_for_ready = true;
        }
        if !stealing {
            server.work_stealing = false;
        }
        let server = server.validate().map_err(|e| ConfigError::new("(server)", e.to_string()))?;
        thumbora.validate()?;
        Ok(FileConfig { server, thumbora })
    }

    /// Read a file, or the embedded default when `path` is `None`; runtime files go under
    /// systemd's `$RUNTIME_DIRECTORY` when it is set, and relative paths are resolved against
    /// the working directory now, before `-d` changes it to `/`.
    pub fn load(path: Option<&str>) -> Result<Self, ConfigError> {
        let runtime_dir = std::env::var_os("RUNTIME_DIRECTORY").map(PathBuf::from);
        // systemd may list several directories, separated by colons: the first is ours.
        let runtime_dir = runtime_dir.and_then(|d| d.to_str().and_then(|d| d.split(':').next()).map(PathBuf::from));
        let mut file = match path {
            None => Self::from_yaml_in(EMBEDDED_DEFAULT, runtime_dir.as_deref())?,
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::new("(file)", format!("cannot read {p}: {e}")))?;
                Self::from_yaml_in(&text, runtime_dir.as_deref())?
            }
        };
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError::new("(file)", format!("no working directory to resolve paths against: {e}")))?;
        file.resolve_paths(&cwd);
        Ok(file)
    }

    /// Make every relative path in the configuration absolute, against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let absolute = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let absolute_str =
            |p: &str| if p.is_empty() { String::new() } else { absolute(Path::new(p)).display().to_string() };
        self.server.pid_file = absolute_str(&self.server.pid_file);
        self.server.upgrade_sock = absolute_str(&self.server.upgrade_sock);
        self.server.error_log = self.server.error_log.as_deref().map(absolute_str);
        let sources = &mut self.thumbora.sources;
        sources.file_root = sources.file_root.as_deref().map(absolute);
        sources.ca_file = sources.ca_file.as_deref().map(absolute);
        let access_log = &mut self.thumbora.access_log;
        access_log.file = access_log.file.as_deref().map(absolute);
        for tls in &mut self.thumbora.tls {
            tls.cert_file = absolute(&tls.cert_file);
            tls.key_file = absolute(&tls.key_file);
        }
    }
}

/// Thumbora's values for Pingora keys a configuration leaves out, where Pingora's own defaults
/// do not fit a service: a grace period as long as the slowest request (fetch timeout plus
/// render deadline; the process leaves as soon as nothing is in flight, see `lifecycle`) instead
/// of 300 s, runtime files where systemd puts them, a daemon parent that exits only once the
/// child serves (so `systemctl start` and reload wait for a process that works), and one
/// single-threaded runtime per proxy thread (`work_stealing: false`): a connection stays on the
/// thread it was given when accepted, as in nginx's workers, which serves hits 6-22% faster than
/// Pingora's work-stealing runtime (no CPU work runs on those threads: renders have their own
/// pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDefaults {
    pub pid_file: String,
    pub upgrade_sock: String,
    pub grace_period_seconds: u64,
    pub graceful_shutdown_timeout_seconds: u64,
}

impl ServerDefaults {
    /// The defaults, with runtime files in `runtime_dir` (systemd's `RuntimeDirectory=`) or /tmp.
    pub fn new(runtime_dir: Option<&Path>) -> Self {
        let dir = runtime_dir.unwrap_or(Path::new("/tmp"));
        let (pid, sock) = if runtime_dir.is_some() {
            ("thumbora.pid", "upgrade.sock")
        } else {
            ("thumbora.pid", "thumbora_upgrade.sock")
        };
        ServerDefaults {
            pid_file: dir.join(pid).display().to_string(),
            upgrade_sock: dir.join(sock).display().to_string(),
            grace_period_seconds: 30,
            graceful_shutdown_timeout_seconds: 5,
        }
    }
}

/// The top-level keys Pingora's `ServerConf` understands.
fn server_keys() -> Vec<String> {
    match serde_norway::to_value(ServerConf::default()) {
        Ok(serde_norway::Value::Mapping(m)) => m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_and_documented_defaults_hold() {
        let conf = FileConfig::from_yaml(EMBEDDED_DEFAULT).expect("embedded default parses");
        assert_eq!(conf.thumbora.listen, vec!["0.0.0.0:8888".to_string()]);
        assert!(!conf.thumbora.sources.allow_private_networks, "private networks refused by default");
        assert_eq!(conf.thumbora.image.quality, 80);
        assert_eq!(conf.thumbora.response.max_age, 86_400);
        let image = &conf.thumbora.image;
        let defaults = ImageConfig::default();
        assert_eq!(image.icc, IccMode::Keep);
        assert_eq!(image.avif_speed, defaults.avif_speed);
        assert!(image.animated_webp && !image.auto_png_to_jpg && !image.autojpg_filter);
    }

    #[test]
    fn embedded_default_documents_the_code_defaults() {
        // Every value conf/thumbora.yaml shows is the struct default, except the sample file root
        // the out-of-the-box server serves.
        let mut embedded = FileConfig::from_yaml(EMBEDDED_DEFAULT).unwrap().thumbora;
        assert_eq!(embedded.sources.loader, LoaderKind::FileThenHttp);
        assert_eq!(embedded.sources.file_root.as_deref(), Some(std::path::Path::new("samples")));
        embedded.sources.loader = LoaderKind::Http;
        embedded.sources.file_root = None;
        assert_eq!(format!("{embedded:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let conf = FileConfig::from_yaml("").unwrap();
        assert_eq!(conf.thumbora.image.quality, ImageConfig::default().quality);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = FileConfig::from_yaml("thumbora:\n  image:\n    qualty: 3\n").unwrap_err();
        assert!(err.key.starts_with("thumbora.image"), "{err}");
        assert!(err.message.contains("qualty"), "{err}");
        let err = FileConfig::from_yaml("thredas: 3\n").unwrap_err();
        assert_eq!(err.key, "thredas");
    }

    #[test]
    fn wrong_types_are_named() {
        let err = FileConfig::from_yaml("thumbora:\n  cache:\n    max_bytes: lots\n").unwrap_err();
        assert_eq!(err.key, "thumbora.cache.max_bytes", "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let err = FileConfig::from_yaml("thumbora:\n  image:\n    quality: 0\n").unwrap_err();
        assert_eq!(err.key, "thumbora.image.quality");
        let err = FileConfig::from_yaml("thumbora:\n  listen: [\"nope\"]\n").unwrap_err();
        assert_eq!(err.key, "thumbora.listen[0]");
        let err = FileConfig::from_yaml("thumbora:\n  write_buffer_bytes: 100\n").unwrap_err();
        assert_eq!(err.key, "thumbora.write_buffer_bytes");
        let err = FileConfig::from_yaml("thumbora:\n  response:\n    meta_callback_name: \"x(1)\"\n").unwrap_err();
        assert_eq!(err.key, "thumbora.response.meta_callback_name");
        let err = FileConfig::from_yaml("thumbora:\n  send_timeout_seconds: 0\n").unwrap_err();
        assert_eq!(err.key, "thumbora.send_timeout_seconds");
        let err = FileConfig::from_yaml("thumbora:\n  image:\n    avif_speed: 11\n").unwrap_err();
        assert_eq!(err.key, "thumbora.image.avif_speed");
        let err = FileConfig::from_yaml("thumbora:\n  image:\n    icc: cmyk\n").unwrap_err();
        assert!(err.key.starts_with("thumbora.image.icc"), "{err}");
        let err = FileConfig::from_yaml("thumbora:\n  sources:\n    loader: file\n").unwrap_err();
        assert_eq!(err.key, "thumbora.sources.file_root");
        let site = |body: &str| FileConfig::from_yaml(&format!("thumbora:\n  site:\n{body}")).map(|_| ());
        assert_eq!(site("    upstreams: [\"127.0.0.1:8000\"]\n").unwrap_err().key, "thumbora.site.upstreams");
        let err = site("    upstreams: [\"app\"]\n    image_prefix: /img\n").unwrap_err();
        assert_eq!(err.key, "thumbora.site.upstreams[0]");
        assert_eq!(site("    image_prefix: img/\n").unwrap_err().key, "thumbora.site.image_prefix");
        assert_eq!(site("    image_hosts: [\"a:80\"]\n").unwrap_err().key, "thumbora.site.image_hosts[0]");
        let sources = |body: &str| FileConfig::from_yaml(&format!("thumbora:\n  sources:\n{body}")).map(|_| ());
        assert_eq!(sources("    allowed: [\"h:http\"]\n").unwrap_err().key, "thumbora.sources.allowed[0]");
        assert_eq!(sources("    allowed: [\"[::1]:99999\"]\n").unwrap_err().key, "thumbora.sources.allowed[0]");
        sources("    allowed: [\"h:8080\", \"[::1]:80\", \"::1\", \"10.0.0.0/8\", \"*.example.com:443\"]\n").unwrap();
        for bad in ["10.0.0.1/8", "127.1/8", "10.0.0.0/+8", "10.0.0.0/33", "::1/129", "10.0.0.0/8/8"] {
            let err = sources(&format!("    allowed: [\"{bad}\"]\n")).unwrap_err();
            assert_eq!(err.key, "thumbora.sources.allowed[0]", "{bad}");
        }
        sources("    allowed: [\"fd00::/8\", \"0.0.0.0/0\", \" 192.168.0.0/16 \"]\n").unwrap();
        site("    upstreams: [\"app.internal:8000\", \"[::1]:8001\"]\n    image_hosts: [img.example.com, \"::1\"]\n")
            .unwrap();
    }

    #[test]
    fn thumbora_defaults_for_pingora_keys() {
        let conf = FileConfig::from_yaml("").unwrap().server;
        assert_eq!(conf.grace_period_seconds, Some(30), "not Pingora's 300 s");
        assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(5));
        assert!(conf.daemon_wait_for_ready);
        assert!(!conf.work_stealing, "one runtime per thread");
        assert_eq!(conf.pid_file, "/tmp/thumbora.pid");
        assert_eq!(conf.upgrade_sock, "/tmp/thumbora_upgrade.sock");
        let conf = FileConfig::from_yaml_in("", Some(Path::new("/run/thumbora"))).unwrap().server;
        assert_eq!(conf.pid_file, "/run/thumbora/thumbora.pid");
        assert_eq!(conf.upgrade_sock, "/run/thumbora/upgrade.sock");
        // What the file says wins.
        let yaml =
            "pid_file: /var/run/t.pid\ngrace_period_seconds: 2\ndaemon_wait_for_ready: false\nwork_stealing: true\n";
        let conf = FileConfig::from_yaml_in(yaml, Some(Path::new("/run/thumbora"))).unwrap().server;
        assert_eq!(conf.pid_file, "/var/run/t.pid");
        assert_eq!(conf.upgrade_sock, "/run/thumbora/upgrade.sock");
        assert_eq!(conf.grace_period_seconds, Some(2));
        assert!(!conf.daemon_wait_for_ready);
        assert!(conf.work_stealing);
    }

    #[test]
    fn relative_paths_resolve_against_the_start_directory() {
        let yaml = "pid_file: run/t.pid\nthumbora:\n  sources:\n    file_root: samples\n    ca_file: /etc/ca.pem\n";
        let mut conf = FileConfig::from_yaml(yaml).unwrap();
        conf.resolve_paths(Path::new("/srv/app"));
        assert_eq!(conf.server.pid_file, "/srv/app/run/t.pid");
        assert_eq!(conf.thumbora.sources.file_root.as_deref(), Some(Path::new("/srv/app/samples")));
        assert_eq!(conf.thumbora.sources.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(conf.server.upgrade_sock, "/tmp/thumbora_upgrade.sock");
        let yaml = "thumbora:\n  access_log:\n    file: log/access.log\n";
        let mut conf = FileConfig::from_yaml(yaml).unwrap();
        conf.resolve_paths(Path::new("/srv/app"));
        assert_eq!(conf.thumbora.access_log.file.as_deref(), Some(Path::new("/srv/app/log/access.log")));
    }

    #[test]
    fn metrics_and_access_log_keys() {
        let conf = FileConfig::from_yaml(
            "thumbora:\n  metrics:\n    listen: \"127.0.0.1:9100\"\n  access_log:\n    file: /var/log/a.log\n    \
             trusted_proxies: [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\"]\n",
        )
        .unwrap()
        .thumbora;
        assert_eq!(conf.metrics.listen, "127.0.0.1:9100");
        assert!(conf.access_log.enabled);
        let nets = conf.access_log.trusted_networks();
        assert_eq!(nets.len(), 3);
        assert!(nets[1].contains(&"192.168.1.7".parse::<IpAddr>().unwrap()));
        assert!(!nets[1].contains(&"192.168.1.8".parse::<IpAddr>().unwrap()));
        let err = |yaml: &str| FileConfig::from_yaml(yaml).unwrap_err().key;
        assert_eq!(err("thumbora:\n  metrics:\n    listen: \"9100\"\n"), "thumbora.metrics.listen");
        assert_eq!(
            err("thumbora:\n  listen: [\"127.0.0.1:9100\"]\n  metrics:\n    listen: \"127.0.0.1:9100\"\n"),
            "thumbora.metrics.listen"
        );
        assert_eq!(err("thumbora:\n  access_log:\n    file: \"\"\n"), "thumbora.access_log.file");
        for bad in ["lb.internal", "10.0.0.1/8", "10.0.0.0/33"] {
            let yaml = format!("thumbora:\n  access_log:\n    trusted_proxies: [\"127.0.0.1\", \"{bad}\"]\n");
            assert_eq!(err(&yaml), "thumbora.access_log.trusted_proxies[1]", "{bad}");
        }
        assert!(err("thumbora:\n  metrics:\n    port: 9100\n").starts_with("thumbora.metrics"));
    }

    #[test]
    fn playground_keys() {
        let conf = FileConfig::from_yaml("").unwrap().thumbora;
        assert!(!conf.playground.enabled, "off by default");
        let on = "thumbora:\n  metrics:\n    listen: \"127.0.0.1:9100\"\n  playground:\n    enabled: true\n";
        assert!(FileConfig::from_yaml(on).unwrap().thumbora.playground.enabled);
        let err = |yaml: &str| FileConfig::from_yaml(yaml).unwrap_err();
        let alone = err("thumbora:\n  playground:\n    enabled: true\n");
        assert_eq!(alone.key, "thumbora.playground.enabled");
        assert!(alone.to_string().contains("thumbora.metrics.listen"), "{alone}");
        let tls_only = format!(
            "{on}  listen: []\n  tls:\n    - listen: \"127.0.0.1:8443\"\n      cert_file: c.pem\n      key_file: k.pem\n"
        );
        assert!(err(&tls_only).to_string().contains("plain thumbora.listen"));
        assert_eq!(err(&format!("{on}    max_result_bytes: 10\n")).key, "thumbora.playground.max_result_bytes");
        assert_eq!(err(&format!("{on}    timeout_ms: 0\n")).key, "thumbora.playground.timeout_ms");
        assert!(err("thumbora:\n  playground:\n    open: true\n").key.starts_with("thumbora.playground"));
    }

    #[test]
    fn pingora_keys_pass_through() {
        let conf = FileConfig::from_yaml("threads: 3\ngrace_period_seconds: 7\n").unwrap();
        assert_eq!(conf.server.threads, 3);
        assert_eq!(conf.server.grace_period_seconds, Some(7));
    }
}
