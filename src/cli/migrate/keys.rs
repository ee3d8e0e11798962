//! The settings `thumbora migrate` knows: thumbor 7.8's (thumbor/config.py), thumbor-aws's and
//! tc_aws's. [`MAPPED`] are read by the rules in `migrate`; [`UNMAPPED`] have no Thumbora
//! setting, each with thumbor's default (a Python literal) and what Thumbora does instead.

/// One setting without a Thumbora equivalent.
pub struct Unmapped {
    pub name: &'static str,
    /// thumbor's default, as Python writes it.
    pub default: &'static str,
    /// What Thumbora does instead (no setting).
    pub reason: &'static str,
}

/// The settings the rules map (or read to decide a mapping).
pub const MAPPED: &[&str] = &[
    "SECURITY_KEY",
    "ALLOW_UNSAFE_URL",
    "ALLOWED_SOURCES",
    "LOADER",
    "FILE_LOADER_ROOT_PATH",
    "HTTP_LOADER_CONNECT_TIMEOUT",
    "HTTP_LOADER_REQUEST_TIMEOUT",
    "HTTP_LOADER_FOLLOW_REDIRECTS",
    "HTTP_LOADER_MAX_REDIRECTS",
    "HTTP_LOADER_DEFAULT_USER_AGENT",
    "HTTP_LOADER_CA_CERTS",
    "HTTP_LOADER_VALIDATE_CERTS",
    "MAX_AGE",
    "QUALITY",
    "WEBP_QUALITY",
    "AVIF_QUALITY",
    "AVIF_SPEED",
    "PROGRESSIVE_JPEG",
    "AUTO_WEBP",
    "AUTO_AVIF",
    "AUTO_PNG_TO_JPG",
    "RESPECT_ORIENTATION",
    "ALLOW_ANIMATED_GIFS",
    "PRESERVE_EXIF_INFO",
    "MAX_WIDTH",
    "MAX_HEIGHT",
    "MAX_PIXELS",
    "DETECTORS",
    "FILTERS",
    "ENABLE_ETAGS",
    "ACCESS_CONTROL_ALLOW_ORIGIN_HEADER",
    "META_CALLBACK_NAME",
    "SEND_IF_MODIFIED_LAST_MODIFIED_HEADERS",
    "HEALTHCHECK_ROUTE",
    "STORAGE",
    "FILE_STORAGE_ROOT_PATH",
    "STORAGE_EXPIRATION_SECONDS",
    "RESULT_STORAGE",
    "RESULT_STORAGE_FILE_STORAGE_ROOT_PATH",
    "RESULT_STORAGE_EXPIRATION_SECONDS",
    "RESULT_STORAGE_STORES_UNSAFE",
    // thumbor-aws
    "THUMBOR_AWS_RUN_IN_COMPATIBILITY_MODE",
    "AWS_LOADER_REGION_NAME",
    "AWS_LOADER_BUCKET_NAME",
    "AWS_LOADER_S3_ACCESS_KEY_ID",
    "AWS_LOADER_S3_SECRET_ACCESS_KEY",
    "AWS_LOADER_S3_ENDPOINT_URL",
    "AWS_LOADER_ROOT_PATH",
    "AWS_RESULT_STORAGE_REGION_NAME",
    "AWS_RESULT_STORAGE_BUCKET_NAME",
    "AWS_RESULT_STORAGE_S3_ACCESS_KEY_ID",
    "AWS_RESULT_STORAGE_S3_SECRET_ACCESS_KEY",
    "AWS_RESULT_STORAGE_S3_ENDPOINT_URL",
    "AWS_RESULT_STORAGE_ROOT_PATH",
    // tc_aws (and thumbor-aws's compatibility mode)
    "TC_AWS_REGION",
    "TC_AWS_ENDPOINT",
    "TC_AWS_LOADER_BUCKET",
    "TC_AWS_LOADER_ROOT_PATH",
    "TC_AWS_RESULT_STORAGE_BUCKET",
    "TC_AWS_RESULT_STORAGE_ROOT_PATH",
    "TC_AWS_ENABLE_HTTP_LOADER",
    // botocore's environment variables, when a thumbor.conf sets them
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The originals' bucket settings (thumbor-aws's and tc_aws's STORAGE): Thumbora keeps
/// originals in memory and on local disk, never in a bucket.
pub const ORIGINALS_BUCKET: &[&str] = &[
    "AWS_STORAGE_REGION_NAME",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_STORAGE_S3_SECRET_ACCESS_KEY",
    "AWS_STORAGE_S3_ACCESS_KEY_ID",
    "AWS_STORAGE_S3_ENDPOINT_URL",
    "AWS_STORAGE_ROOT_PATH",
    "AWS_STORAGE_S3_ACL",
    "TC_AWS_STORAGE_BUCKET",
    "TC_AWS_STORAGE_ROOT_PATH",
    "TC_AWS_STORAGE_SSE",
    "TC_AWS_STORAGE_RRS",
];

const LOGGING: &str = "Thumbora logs to standard error (RUST_LOG sets the level) and writes an access log (access_log)";
const PILLOW: &str = "a Pillow setting: Thumbora encodes with its own codecs (image.quality, image.progressive_jpeg)";
const HEIF: &str = "Thumbora does not write HEIF";
const AVIF: &str = "Thumbora encodes AVIF with rav1e (image.avif_speed)";
const AUTO_OTHER: &str = "Thumbora chooses WebP and AVIF from Accept only (image.auto_webp, image.auto_avif)";
const TEMP_IMAGES: &str = "Thumbora's smart detection does not fail, so it makes no temporary images";
const EXIF: &str = "Thumbora copies all of a source's EXIF into results (image.preserve_exif) or none \
                    of it, and never IPTC";
const ENGINE: &str = "Thumbora decodes, resizes and encodes itself (no engine modules)";
const STATSD: &str = "Thumbora has no statsd client: it serves Prometheus metrics (metrics.listen)";
const FORWARD: &str = "Thumbora forwards no client header to origins";
const PROXY: &str = "Thumbora fetches origins directly (no outgoing HTTP proxy)";
const CLIENT_CERT: &str = "Thumbora presents no client certificate to origins";
const CURL: &str = "Thumbora's HTTP client is its own (no curl); sources.request_timeout_ms bounds a whole fetch";
const UPLOAD: &str = "Thumbora has no upload endpoint";
const MIXED: &str = "used by STORAGE = mixed_storage, which Thumbora does not have";
const CASCADE: &str = "smart/ uses Thumbora's own detector (image.smart_detection), no OpenCV cascade";
const QUEUED: &str = "queued detectors: Thumbora detects while it renders (image.smart_detection)";
const OPTIMIZER: &str = "Thumbora runs no external optimizer";
const ERRORS: &str = "Thumbora reports errors in its log and metrics; it loads no error handler (no Sentry)";
const SHUTDOWN: &str = "Thumbora stops gracefully by itself: on SIGTERM it finishes the requests in flight, for up \
                        to grace_period_seconds (30)";
const LEGACY: &str = "Thumbora has no compatibility layer for legacy modules";

/// Every setting that has no Thumbora equivalent, with thumbor's default.
pub const UNMAPPED: &[Unmapped] = &[
    u("THUMBOR_LOG_CONFIG", "None", LOGGING),
    u("THUMBOR_LOG_FORMAT", "'%(asctime)s %(name)s:%(levelname)s %(message)s'", LOGGING),
    u("THUMBOR_LOG_DATE_FORMAT", "'%Y-%m-%d %H:%M:%S'", LOGGING),
    u("MIN_WIDTH", "1", "Thumbora makes a side that computes to 0 one pixel, as thumbor's default does"),
    u("MIN_HEIGHT", "1", "Thumbora makes a side that computes to 0 one pixel, as thumbor's default does"),
    u("PILLOW_JPEG_SUBSAMPLING", "None", PILLOW),
    u("PILLOW_JPEG_QTABLES", "None", PILLOW),
    u("PILLOW_RESAMPLING_FILTER", "'LANCZOS'", "Thumbora always resizes with Lanczos3 (thumbor's default)"),
    u("PILLOW_PRESERVE_INDEXED_MODE", "True", PILLOW),
    u("AVIF_CODEC", "'auto'", AVIF),
    u("AVIF_CODEC_FALLBACK", "'auto'", AVIF),
    u("HEIF_QUALITY", "None", HEIF),
    u("AUTO_HEIF", "False", HEIF),
    u("AUTO_JPG", "False", AUTO_OTHER),
    u("AUTO_PNG", "False", AUTO_OTHER),
    u("SRGB_PROFILE", "None", "Thumbora converts to sRGB with its built-in profile (image.icc)"),
    u("PNG_COMPRESSION_LEVEL", "6", "Thumbora chooses its PNG compression itself"),
    u("SVG_DPI", "150", "Thumbora does not read SVG sources"),
    u("MAX_AGE_TEMP_IMAGE", "0", TEMP_IMAGES),
    u("IGNORE_SMART_ERRORS", "False", TEMP_IMAGES),
    u("PRESERVE_EXIF_COPYRIGHT_INFO", "False", EXIF),
    u("PRESERVE_IPTC_INFO", "False", EXIF),
    u(
        "USE_GIFSICLE_ENGINE",
        "False",
        "Thumbora resizes GIFs itself; it skips filters on GIFs as thumbor does without gifsicle \
         (image.gif_filters: false)",
    ),
    u("USE_BLACKLIST", "False", "Thumbora has no blacklist"),
    u("ENGINE_THREADPOOL_SIZE", "0", "Thumbora renders on a pool of its own (render.threads: one per core)"),
    u("METRICS", "'thumbor.metrics.logger_metrics'", "Thumbora serves Prometheus metrics (metrics.listen)"),
    u("ENGINE", "'thumbor.engines.pil'", ENGINE),
    u("GIF_ENGINE", "'thumbor.engines.gif'", ENGINE),
    u(
        "URL_SIGNER",
        "'libthumbor.url_signers.base64_hmac_sha1'",
        "Thumbora verifies thumbor's HMAC-SHA1 signatures only",
    ),
    u("MAX_ID_LENGTH", "32", "Thumbora's storage keys are hashes"),
    u("GC_INTERVAL", "None", "a Python garbage-collector setting"),
    u("STATSD_HOST", "None", STATSD),
    u("STATSD_PORT", "8125", STATSD),
    u("STATSD_PREFIX", "None", STATSD),
    u(
        "HTTP_LOADER_MAX_CLIENTS",
        "10",
        "Thumbora does not queue fetches behind one global count: it caps fetches per origin \
         (sources.max_fetches_per_host) and their memory (sources.fetch_memory_bytes)",
    ),
    u("HTTP_LOADER_FORWARD_USER_AGENT", "False", FORWARD),
    u("HTTP_LOADER_FORWARD_ALL_HEADERS", "False", FORWARD),
    u("HTTP_LOADER_FORWARD_HEADERS_WHITELIST", "[]", FORWARD),
    u("HTTP_LOADER_PROXY_HOST", "None", PROXY),
    u("HTTP_LOADER_PROXY_PORT", "None", PROXY),
    u("HTTP_LOADER_PROXY_USERNAME", "None", PROXY),
    u("HTTP_LOADER_PROXY_PASSWORD", "None", PROXY),
    u("HTTP_LOADER_CLIENT_KEY", "None", CLIENT_CERT),
    u("HTTP_LOADER_CLIENT_CERT", "None", CLIENT_CERT),
    u("HTTP_LOADER_CURL_ASYNC_HTTP_CLIENT", "False", CURL),
    u("HTTP_LOADER_CURL_LOW_SPEED_TIME", "0", CURL),
    u("HTTP_LOADER_CURL_LOW_SPEED_LIMIT", "0", CURL),
    u("NON_BLOCKING_SOCKETS", "False", "Thumbora opens its own listeners (listen)"),
    u("APP_CLASS", "'thumbor.app.ThumborServiceApp'", "Thumbora loads no application class"),
    u(
        "STORES_CRYPTO_KEY_FOR_EACH_IMAGE",
        "False",
        "Thumbora stores no keys: to keep URLs signed with an old key working, list that key in \
         security.keys too",
    ),
    u("UPLOAD_MAX_SIZE", "0", UPLOAD),
    u("UPLOAD_ENABLED", "False", UPLOAD),
    u("UPLOAD_PHOTO_STORAGE", "'thumbor.storages.file_storage'", UPLOAD),
    u("UPLOAD_DELETE_ALLOWED", "False", UPLOAD),
    u("UPLOAD_PUT_ALLOWED", "False", UPLOAD),
    u("UPLOAD_DEFAULT_FILENAME", "'image'", UPLOAD),
    u("MAX_SIZE", "0", UPLOAD),
    u("ENABLE_ORIGINAL_PHOTO_UPLOAD", "False", UPLOAD),
    u("ORIGINAL_PHOTO_STORAGE", "'thumbor.storages.file_storage'", UPLOAD),
    u("ALLOW_ORIGINAL_PHOTO_DELETION", "False", UPLOAD),
    u("ALLOW_ORIGINAL_PHOTO_PUTTING", "False", UPLOAD),
    u("MIXED_STORAGE_FILE_STORAGE", "'thumbor.storages.no_storage'", MIXED),
    u("MIXED_STORAGE_CRYPTO_STORAGE", "'thumbor.storages.no_storage'", MIXED),
    u("MIXED_STORAGE_DETECTOR_STORAGE", "'thumbor.storages.no_storage'", MIXED),
    u("FACE_DETECTOR_CASCADE_FILE", "'haarcascade_frontalface_alt.xml'", CASCADE),
    u("GLASSES_DETECTOR_CASCADE_FILE", "'haarcascade_eye_tree_eyeglasses.xml'", CASCADE),
    u("PROFILE_DETECTOR_CASCADE_FILE", "'haarcascade_profileface.xml'", CASCADE),
    u("OPTIMIZERS", "[]", OPTIMIZER),
    u("JPEGTRAN_PATH", "'/usr/bin/jpegtran'", OPTIMIZER),
    u("JPEGTRAN_SCANS_FILE", "''", OPTIMIZER),
    u("FFMPEG_PATH", "'/usr/local/bin/ffmpeg'", OPTIMIZER),
    u("REDIS_QUEUE_SERVER_HOST", "'localhost'", QUEUED),
    u("REDIS_QUEUE_SERVER_PORT", "6379", QUEUED),
    u("REDIS_QUEUE_SERVER_DB", "0", QUEUED),
    u("REDIS_QUEUE_SERVER_PASSWORD", "None", QUEUED),
    u("REDIS_QUEUE_MODE", "'single_node'", QUEUED),
    u("REDIS_QUEUE_SENTINEL_INSTANCES", "'localhost:26379'", QUEUED),
    u("REDIS_QUEUE_SENTINEL_PASSWORD", "None", QUEUED),
    u("REDIS_QUEUE_SENTINEL_MASTER_INSTANCE", "'master'", QUEUED),
    u("REDIS_QUEUE_SENTINEL_MASTER_PASSWORD", "None", QUEUED),
    u("REDIS_QUEUE_SENTINEL_MASTER_DB", "0", QUEUED),
    u("REDIS_QUEUE_SENTINEL_SOCKET_TIMEOUT", "10.0", QUEUED),
    u("SQS_QUEUE_KEY_ID", "None", QUEUED),
    u("SQS_QUEUE_KEY_SECRET", "None", QUEUED),
    u("SQS_QUEUE_REGION", "'us-east-1'", QUEUED),
    u("USE_CUSTOM_ERROR_HANDLING", "False", ERRORS),
    u("ERROR_HANDLER_MODULE", "'thumbor.error_handlers.sentry'", ERRORS),
    u("ERROR_FILE_LOGGER", "None", ERRORS),
    u("ERROR_FILE_NAME_USE_CONTEXT", "False", ERRORS),
    u("SENTRY_DSN_URL", "''", ERRORS),
    u("SENTRY_ENVIRONMENT", "None", ERRORS),
    u("MAX_WAIT_SECONDS_BEFORE_SERVER_SHUTDOWN", "0", SHUTDOWN),
    u("MAX_WAIT_SECONDS_BEFORE_IO_SHUTDOWN", "0", SHUTDOWN),
    u(
        "HANDLER_LISTS",
        "['thumbor.handler_lists.healthcheck', 'thumbor.handler_lists.upload', 'thumbor.handler_lists.blacklist']",
        "Thumbora's routes are fixed: images and healthcheck_path (no upload or blacklist handlers)",
    ),
    u("COMPATIBILITY_LEGACY_LOADER", "None", LEGACY),
    u("COMPATIBILITY_LEGACY_STORAGE", "None", LEGACY),
    u("COMPATIBILITY_LEGACY_RESULT_STORAGE", "None", LEGACY),
    // thumbor-aws
    u(
        "AWS_DEFAULT_LOCATION",
        "'https://{bucket_name}.s3.amazonaws.com'",
        "the URL thumbor-aws reports for stored objects; Thumbora serves its results itself",
    ),
    u(
        "AWS_RESULT_STORAGE_S3_ACL",
        "None",
        "Thumbora writes results with the bucket's default ACL (clients get them from Thumbora, not the bucket)",
    ),
    // tc_aws
    u(
        "TC_AWS_MAX_RETRY",
        "0",
        "Thumbora's S3 client does not retry: a failed read is an error for the loader and a miss for the cache",
    ),
    u("TC_AWS_ALLOWED_BUCKETS", "False", "Thumbora's s3 loader reads one bucket (sources.s3.bucket)"),
    u("TC_AWS_STORE_METADATA", "False", "Thumbora stores what it needs beside each result"),
    u("TC_AWS_RANDOMIZE_KEYS", "False", "Thumbora names its result objects by hash"),
    u("TC_AWS_ROOT_IMAGE_NAME", "''", "Thumbora has no key for URLs that end in a slash"),
];

const fn u(name: &'static str, default: &'static str, reason: &'static str) -> Unmapped {
    Unmapped { name, default, reason }
}

/// thumbor 7.8's `BUILTIN_FILTERS` (thumbor/filters/__init__.py), the default of `FILTERS`;
/// Thumbora has every one of them.
pub const BUILTIN_FILTERS: &[&str] = &[
    "brightness",
    "colorize",
    "contrast",
    "rgb",
    "round_corner",
    "quality",
    "noise",
    "watermark",
    "equalize",
    "fill",
    "sharpen",
    "strip_exif",
    "strip_icc",
    "frame",
    "grayscale",
    "rotate",
    "format",
    "max_bytes",
    "convolution",
    "blur",
    "extract_focal",
    "focal",
    "no_upscale",
    "saturation",
    "max_age",
    "curve",
    "background_color",
    "upscale",
    "proportion",
    "stretch",
];
