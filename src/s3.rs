//! An S3-compatible object store client for Thumbora's shared storage tiers: its configuration,
//! its credentials (YAML, environment, EC2 instance role) and the few calls the tiers make.
//!
//! Requests are built and presigned (SigV4, in the query string) by the sans-IO `rusty-s3` crate
//! and sent with reqwest; every request is bounded by `connect_timeout_ms` and `timeout_ms`, so no
//! call hangs on a dead server. Keys are used exactly as the caller gives them: [`S3Client::key`]
//! prepends the configured prefix. Keys that a URL cannot carry (empty, `.` or `..` segments) are
//! refused, since rusty-s3 would resolve them into another object or the bucket itself.

use std::fmt;
use std::sync::{Arc, Once, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use rusty_s3::actions::{
    CreateBucket, DeleteObject, DeleteObjects, DeleteObjectsResponse, GetObject, ListObjectsV2, ObjectIdentifier,
    PutObject,
};
use rusty_s3::credentials::Ec2SecurityCredentialsMetadataResponse;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};

/// How long a presigned URL stays valid. It is sent at once; the margin covers a clock behind
/// the server's.
const SIGN_TTL: Duration = Duration::from_secs(15 * 60);
/// S3's limit on the keys of one `DeleteObjects` request (and on one `ListObjectsV2` page).
const BATCH: usize = 1000;
/// S3's limit on the length of a key, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// How much of an error response is read to find its `<Code>`.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// Bodies larger than this are not preallocated from their `Content-Length`.
const MAX_PREALLOCATION: u64 = 16 * 1024 * 1024;

/// The instance metadata service (IMDSv2) of EC2.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// Lifetime asked for the IMDSv2 session token, in seconds.
const IMDS_TOKEN_TTL: &str = "21600";
/// Role credentials are refreshed this long before they expire (or halfway, if they live less).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// After IMDS failed and no role credentials were ever obtained (not on EC2?): the next try.
const IMDS_RETRY_NEVER_OK: Duration = Duration::from_secs(5 * 60);
/// After a refresh failed while the previous credentials are still valid: the next try.
const IMDS_RETRY_REFRESH: Duration = Duration::from_secs(10);

/// Where and how to reach the bucket (YAML). Credentials come from here, else from the
/// environment, else from the EC2 instance role; without any, requests go unsigned.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Base URL of an S3-compatible server, like `http://127.0.0.1:8333` (a path is kept as a
    /// prefix of every URL). None: AWS, `https://s3.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The region requests are signed for (default `us-east-1`, which most other servers accept).
    pub region: String,
    /// The bucket (required).
    pub bucket: String,
    /// Prepended to every relative key by [`S3Client::key`], with one `/` between (default none).
    pub prefix: String,
    /// Path-style URLs, `{endpoint}/{bucket}/{key}` (default), or virtual-hosted ones,
    /// `{bucket}.{endpoint host}/{key}` (false; not with an IP address as the host).
    pub path_style: bool,
    /// Access key id; with `secret_key`. Unset: `AWS_ACCESS_KEY_ID` and the rest from the
    /// environment, else the EC2 instance role, else unsigned requests.
    pub access_key: Option<String>,
    /// Secret access key; with `access_key`.
    pub secret_key: Option<String>,
    /// Session token of temporary credentials; with `access_key` and `secret_key`.
    pub session_token: Option<String>,
    /// Time allowed to establish a connection, in milliseconds (default 500).
    pub connect_timeout_ms: u64,
    /// Time allowed for one whole request, connection and body included, in milliseconds
    /// (default 2000).
    pub timeout_ms: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            path_style: true,
            access_key: None,
            secret_key: None,
            session_token: None,
            connect_timeout_ms: 500,
            timeout_ms: 2000,
        }
    }
}

/// Secrets are masked: the configuration may be logged.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &masked(&self.secret_key))
            .field("session_token", &masked(&self.session_token))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl S3Config {
    /// Check the values; `at` is the YAML path of this section (like `thumbora.cache.shared.s3`),
    /// which the message names along with the key at fault.
    pub fn validate(&self, at: &str) -> Result<(), String> {
        let bucket = &self.bucket;
        if bucket.is_empty() {
            return Err(format!("{at}.bucket: required"));
        }
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !(3..=63).contains(&bucket.len()) || !bucket.chars().all(valid_char) {
            return Err(format!(
                "{at}.bucket: {bucket:?} is not a bucket name (3 to 63 letters, digits, '.', '-', '_')"
            ));
        }
        if self.region.trim().is_empty() {
            return Err(format!("{at}.region: must not be empty"));
        }
        if let Some(endpoint) = &self.endpoint {
            let url =
                url::Url::parse(endpoint).map_err(|e| format!("{at}.endpoint: {endpoint:?} is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!("{at}.endpoint: {endpoint:?} is not an http:// or https:// URL with a host"));
            }
            if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
                return Err(format!("{at}.endpoint: {endpoint:?} must not have a query, fragment or user"));
            }
        }
        if let Err(e) = self.bucket_handle() {
            let what = if self.path_style { "" } else { " (virtual-hosted style: set path_style: true?)" };
            return Err(format!("{at}.endpoint: no URL for bucket {bucket:?}{what}: {e}"));
        }
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        for (name, value) in
            [("access_key", &self.access_key), ("secret_key", &self.secret_key), ("session_token", &self.session_token)]
        {
            if value.as_deref() == Some("") {
                return Err(format!("{at}.{name}: must not be empty (leave it out instead)"));
            }
        }
        match (set(&self.access_key), set(&self.secret_key)) {
            (true, false) => return Err(format!("{at}.secret_key: required with {at}.access_key")),
            (false, true) => return Err(format!("{at}.access_key: required with {at}.secret_key")),
            (false, false) if set(&self.session_token) => {
                return Err(format!("{at}.session_token: needs {at}.access_key and {at}.secret_key"));
            }
            _ => {}
        }
        if self.connect_timeout_ms == 0 {
            return Err(format!("{at}.connect_timeout_ms: must be at least 1"));
        }
        if self.timeout_ms == 0 {
            return Err(format!("{at}.timeout_ms: must be at least 1"));
        }
        if self.connect_timeout_ms > self.timeout_ms {
            return Err(format!(
                "{at}.connect_timeout_ms: {} is more than {at}.timeout_ms ({}), which bounds the whole request",
                self.connect_timeout_ms, self.timeout_ms
            ));
        }
        Ok(())
    }

    /// The endpoint URL: the configured one, else AWS's for the region.
    fn endpoint_url(&self) -> Result<url::Url, String> {
        let endpoint = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        };
        url::Url::parse(&endpoint).map_err(|e| e.to_string())
    }

    fn bucket_handle(&self) -> Result<Bucket, String> {
        let style = if self.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        Bucket::new(self.endpoint_url()?, style, self.bucket.clone(), self.region.clone()).map_err(|e| e.to_string())
    }
}

/// A failed S3 call. The message names the operation and the key (or prefix).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The configuration is invalid; the message names the key at fault.
    #[error("{0}")]
    Config(String),
    /// A key a URL cannot carry: empty, longer than 1024 bytes, or with a `.` or `..` segment.
    #[error("s3: refused key {0:?} (empty, too long, or with a '.' or '..' segment)")]
    BadKey(String),
    /// No complete answer within `timeout_ms` (or no connection within `connect_timeout_ms`).
    #[error("s3 {op} {key}: no answer within {ms} ms")]
    Timeout { op: &'static str, key: String, ms: u64 },
    /// The request failed without an answer: connection refused or reset, TLS, a broken body.
    /// `detail` is the innermost cause; `source` (without its URL, which is presigned) the chain.
    #[error("s3 {op} {key}: {detail}")]
    Transport {
        op: &'static str,
        key: String,
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status; `code` is S3's error code, like `AccessDenied`
    /// or `SignatureDoesNotMatch` (empty when the body has none).
    #[error("s3 {op} {key}: HTTP {status} {code}: {message}")]
    Status { op: &'static str, key: String, status: u16, code: String, message: String },
    /// The object is larger than the caller's cap (seen from `Content-Length` or while reading).
    #[error("s3 GET {key}: object larger than {max} bytes")]
    TooLarge { key: String, max: u64 },
    /// A successful answer whose body could not be parsed.
    #[error("s3 {op} {key}: unreadable answer: {detail}")]
    BadResponse { op: &'static str, key: String, detail: String },
    /// `DeleteObjects` answered but did not delete some keys; `deleted` were.
    #[error("s3 DeleteObjects: {failed} keys not deleted ({deleted} were); first {key}: {code}")]
    DeleteFailed { deleted: usize, failed: usize, key: String, code: String },
    /// The instance role's credentials expired and the metadata service does not give new ones.
    #[error("s3 credentials: {0}")]
    Credentials(String),
}

impl S3Error {
    /// Whether the server did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, S3Error::Timeout { .. })
    }

    /// The HTTP status the server answered with, for [`S3Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            S3Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An object read by [`S3Client::get_object`].
#[derive(Debug, Clone)]
pub struct S3Object {
    /// The stored bytes.
    pub body: Bytes,
    /// The `Content-Type` it was stored with.
    pub content_type: Option<String>,
    /// Its user metadata (`x-amz-meta-*`), names lowercase and without the prefix.
    pub metadata: Vec<(String, String)>,
}

impl S3Object {
    /// The value of user metadata `name` (lowercase, without `x-amz-meta-`).
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A client for one bucket; cheap to clone (shared inside).
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Bucket,
    prefix: String,
    http: reqwest::Client,
    credentials: CredentialSource,
    timeout_ms: u64,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("bucket", &self.inner.bucket.base_url().as_str())
            .field("prefix", &self.inner.prefix)
            .field("credentials", &self.inner.credentials.describe())
            .finish()
    }
}

static CRYPTO: Once = Once::new();

/// reqwest is built without a TLS crypto provider: install ring's before building a client.
fn install_crypto() {
    CRYPTO.call_once(|| {
        // Another part of the process may have installed one already: either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl S3Client {
    /// A client for `cfg` (validated here; messages name keys under `s3`). Reads the credentials
    /// from `cfg` or the environment; the instance role is only asked on the first request that
    /// needs it.
    pub fn new(cfg: &S3Config) -> Result<S3Client, S3Error> {
        Self::with_env(cfg, |name| std::env::var(name).ok())
    }

    fn with_env(cfg: &S3Config, env: impl Fn(&str) -> Option<String>) -> Result<S3Client, S3Error> {
        cfg.validate("s3").map_err(S3Error::Config)?;
        install_crypto();
        let bucket = cfg.bucket_handle().map_err(S3Error::Config)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            // Objects are stored bytes: never decoded on the way.
            .no_gzip()
            // Below the ~20 s after which S3 closes idle connections.
            .pool_idle_timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("thumbora/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| S3Error::Config(format!("s3: building the HTTP client: {e}")))?;
        Ok(S3Client {
            inner: Arc::new(Inner {
                bucket,
                prefix: cfg.prefix.clone(),
                http,
                credentials: CredentialSource::resolve(cfg, env)?,
                timeout_ms: cfg.timeout_ms,
            }),
        })
    }

    /// The full key of `rel`: the configured prefix, one `/`, then `rel` (its leading slashes
    /// dropped). Without a prefix, `rel` unchanged.
    pub fn key(&self, rel: &str) -> String {
        join_key(&self.inner.prefix, rel)
    }

    /// The object's bytes, or None when there is no such key.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, S3Error> {
        Ok(self.get_object(key, u64::MAX).await?.map(|o| o.body))
    }

    /// As [`get`](Self::get), refusing ([`S3Error::TooLarge`]) an object larger than
    /// `max_bytes`, before reading it when its size is announced, else as soon as it exceeds it.
    pub async fn get_max(&self, key: &str, max_bytes: u64) -> Result<Option<Bytes>, S3Error> {
        Ok(self.get_object(key, max_bytes).await?.map(|o| o.body))
    }

    /// The object with its content type and user metadata, or None when there is no such key
    /// (a missing bucket is an error). Bodies over `max_bytes` are refused as in
    /// [`get_max`](Self::get_max).
    pub async fn get_object(&self, key: &str, max_bytes: u64) -> Result<Option<S3Object>, S3Error> {
        const OP: &str = "GET";
        check_key(key)?;
        let creds = self.credentials().await?;
        let url = GetObject::new(&self.inner.bucket, creds.as_deref(), key).sign(SIGN_TTL);
        let resp = self.send(OP, key, self.inner.http.get(url)).await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            let err = self.status_error(OP, key, resp).await;
            return match &err {
                S3Error::Status { code, .. } if code == "NoSuchBucket" => Err(err),
                _ => Ok(None),
            };
        }
        if !resp.status().is_success() {
            return Err(self.status_error(OP, key, resp).await);
        }
        let headers = resp.headers();
        let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
        let metadata = headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let body = self.read_body(key, resp, max_bytes).await?;
        Ok(Some(S3Object { body, content_type, metadata }))
    }

    /// Store `body` under `key` with its `Content-Type`, replacing any object there.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), S3Error> {
        self.put_with_metadata(key, body, content_type, &[]).await
    }

    /// As [`put`](Self::put), with user metadata: each `(name, value)` is sent as
    /// `x-amz-meta-{name}` (names lowercase ASCII; values ASCII, as S3 returns them).
    pub async fn put_with_metadata(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), S3Error> {
        const OP: &str = "PUT";
        check_key(key)?;
        let creds = self.credentials().await?;
        let mut action = PutObject::new(&self.inner.bucket, creds.as_deref(), key);
        let names: Vec<String> =
            metadata.iter().map(|(name, _)| format!("x-amz-meta-{}", name.to_lowercase())).collect();
        // rusty-s3: every x-amz-* header sent must be signed, with its name in lowercase.
        for (name, (_, value)) in names.iter().zip(metadata) {
            action.headers_mut().insert(name.as_str(), *value);
        }
        let url = action.sign(SIGN_TTL);
        let mut request = self
            .inner
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            // rusty-s3: reqwest leaves Content-Length out for an empty body, which AWS refuses.
            .header(reqwest::header::CONTENT_LENGTH, body.len());
        for (name, (_, value)) in names.iter().zip(metadata) {
            request = request.header(name.as_str(), *value);
        }
        let resp = self.send(OP, key, request.body(body)).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(OP, key, resp).await);
        }
        Ok(())
    }

    /// Delete `key`; a missing key is not an error (a missing bucket is).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        const OP: &str = "DELETE";
        check_key(key)?;
        let creds = self.credentials().await?;
        let url = DeleteObject::new(&self.inner.bucket, creds.as_deref(), key).sign(SIGN_TTL);
        let resp = self.send(OP, key, self.inner.http.delete(url)).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        match self.status_error(OP, key, resp).await {
            S3Error::Status { status: 404, code, .. } if code != "NoSuchBucket" => Ok(()),
            err => Err(err),
        }
    }

    /// Up to `max` keys starting with `prefix` (a full key prefix; empty: the whole bucket), in
    /// S3's order (UTF-8 binary), after `start_after` if given. Follows continuation tokens,
    /// 1000 keys a request.
    pub async fn list(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Vec<String>, S3Error> {
        const OP: &str = "LIST";
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        while keys.len() < max {
            let creds = self.credentials().await?;
            let mut action = ListObjectsV2::new(&self.inner.bucket, creds.as_deref());
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            match (&token, start_after) {
                (Some(token), _) => action.with_continuation_token(token.as_str()),
                (None, Some(after)) => action.with_start_after(after),
                (None, None) => {}
            }
            action.with_max_keys((max - keys.len()).min(BATCH));
            let url = action.sign(SIGN_TTL);
            let resp = self.send(OP, prefix, self.inner.http.get(url)).await?;
            let text = self.read_text(OP, prefix, resp).await?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| S3Error::BadResponse {
                op: OP,
                key: prefix.to_string(),
                detail: e.to_string(),
            })?;
            keys.extend(page.contents.into_iter().map(|c| c.key));
            match page.next_continuation_token {
                Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                _ => break,
            }
        }
        keys.truncate(max);
        Ok(keys)
    }

    /// Delete every object whose key starts with `prefix` (not empty: this never empties a
    /// whole bucket): list, then `DeleteObjects` by batches of 1000. Returns how many were
    /// deleted. Objects written meanwhile may survive.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, S3Error> {
        if prefix.is_empty() {
            return Err(S3Error::BadKey(String::new()));
        }
        let mut deleted = 0;
        let mut after: Option<String> = None;
        loop {
            let keys = self.list(prefix, after.as_deref(), BATCH).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            deleted += self.delete_batch(&keys).await.map_err(|e| match e {
                S3Error::DeleteFailed { deleted: in_batch, failed, key, code } => {
                    S3Error::DeleteFailed { deleted: deleted + in_batch, failed, key, code }
                }
                e => e,
            })?;
            if keys.len() < BATCH {
                return Ok(deleted);
            }
            // Listing after the last key (not from the start again) ends even if some keys stay.
            after = keys.last().cloned();
        }
    }

    /// One `DeleteObjects` request (at most 1000 keys, quiet: only failures are reported).
    async fn delete_batch(&self, keys: &[String]) -> Result<usize, S3Error> {
        const OP: &str = "DeleteObjects";
        let first = keys.first().map(String::as_str).unwrap_or_default();
        let objects: Vec<ObjectIdentifier> = keys.iter().map(|k| ObjectIdentifier::new(k.clone())).collect();
        let creds = self.credentials().await?;
        let mut action = DeleteObjects::new(&self.inner.bucket, creds.as_deref(), objects.iter());
        action.set_quiet(true);
        let url = action.sign(SIGN_TTL);
        // rusty-s3: the body goes with its MD5 in Content-MD5, which S3 requires here.
        let (body, md5) = action.body_with_md5();
        let request = self.inner.http.post(url).header("content-md5", md5).body(body);
        let resp = self.send(OP, first, request).await?;
        let text = self.read_text(OP, first, resp).await?;
        let answer = DeleteObjectsResponse::parse(&text).map_err(|e| S3Error::BadResponse {
            op: OP,
            key: first.to_string(),
            detail: e.to_string(),
        })?;
        let done = keys.len().saturating_sub(answer.errors.len());
        match answer.errors.into_iter().next() {
            None => Ok(done),
            Some(e) => {
                Err(S3Error::DeleteFailed { deleted: done, failed: keys.len() - done, key: e.key, code: e.code })
            }
        }
    }

    /// Create the bucket; one that already exists is fine.
    pub async fn create_bucket(&self) -> Result<(), S3Error> {
        const OP: &str = "CreateBucket";
        let name = self.inner.bucket.name().to_string();
        let creds = self.credentials().await?;
        // rusty-s3 signs CreateBucket only with credentials: unsigned, it is a plain PUT.
        let unsigned = Credentials::new("", "");
        let action = CreateBucket::new(&self.inner.bucket, creds.as_deref().unwrap_or(&unsigned));
        let body = action.body();
        let url = match creds {
            Some(_) => action.sign(SIGN_TTL),
            None => self.inner.bucket.base_url().clone(),
        };
        let request = self.inner.http.put(url).header(reqwest::header::CONTENT_LENGTH, body.len()).body(body);
        let resp = self.send(OP, &name, request).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        match self.status_error(OP, &name, resp).await {
            S3Error::Status { code, .. } if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" => {
                Ok(())
            }
            err => Err(err),
        }
    }

    async fn credentials(&self) -> Result<Option<Arc<Credentials>>, S3Error> {
        self.inner.credentials.get().await
    }

    /// Send, turning a failure without an answer into [`S3Error::Timeout`] or
    /// [`S3Error::Transport`].
    async fn send(
        &self,
        op: &'static str,
        key: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, S3Error> {
        request.send().await.map_err(|e| self.transport_error(op, key, e))
    }

    fn transport_error(&self, op: &'static str, key: &str, e: reqwest::Error) -> S3Error {
        // The URL is presigned: a credential until it expires, so it stays out of messages.
        let e = e.without_url();
        if e.is_timeout() {
            S3Error::Timeout { op, key: key.to_string(), ms: self.inner.timeout_ms }
        } else {
            S3Error::Transport { op, key: key.to_string(), detail: root_cause(&e), source: e }
        }
    }

    /// The body, refusing more than `max` bytes.
    async fn read_body(&self, key: &str, mut resp: reqwest::Response, max: u64) -> Result<Bytes, S3Error> {
        let too_large = || S3Error::TooLarge { key: key.to_string(), max };
        let announced = resp.content_length();
        if announced.is_some_and(|len| len > max) {
            return Err(too_large());
        }
        let capacity = announced.unwrap_or(0).min(MAX_PREALLOCATION);
        let mut body = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error("GET", key, e))? {
            if (body.len() + chunk.len()) as u64 > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// The body of a successful answer as text (an XML document); an unsuccessful one is its error.
    async fn read_text(&self, op: &'static str, key: &str, resp: reqwest::Response) -> Result<String, S3Error> {
        if !resp.status().is_success() {
            return Err(self.status_error(op, key, resp).await);
        }
        resp.text().await.map_err(|e| self.transport_error(op, key, e))
    }

    /// The error an unsuccessful answer stands for, with S3's `<Code>` and `<Message>` (from at
    /// most 16 KiB of its body; an unreadable body leaves them empty).
    async fn status_error(&self, op: &'static str, key: &str, mut resp: reqwest::Response) -> S3Error {
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&body);
        let code = xml_element(&text, "Code").unwrap_or_default().to_string();
        let message = xml_element(&text, "Message").unwrap_or_default().to_string();
        S3Error::Status { op, key: key.to_string(), status, code, message }
    }
}

/// The innermost error of a chain ("Connection refused" rather than "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// `prefix` + `/` + `rel` without doubled or leading slashes at the join; `rel` alone without a
/// prefix.
fn join_key(prefix: &str, rel: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return rel.to_string();
    }
    format!("{prefix}/{}", rel.trim_start_matches('/'))
}

/// Refuse keys whose URL would name something else: rusty-s3 resolves `.`/`..` segments like a
/// file path, and an empty key is the bucket itself (DeleteObject would become DeleteBucket).
fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(S3Error::BadKey(key.to_string()));
    }
    Ok(())
}

/// The text of the first `<name>…</name>` in an S3 XML answer (error bodies are flat).
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim())
}

/// Where request credentials come from, decided once at construction.
enum CredentialSource {
    /// From the YAML or the environment.
    Static(Arc<Credentials>),
    /// None anywhere and IMDS disabled (`AWS_EC2_METADATA_DISABLED=true`): unsigned requests.
    Anonymous,
    /// None in the YAML or environment: the EC2 instance role, asked lazily; unsigned requests
    /// while the metadata service has never answered.
    InstanceRole(InstanceRole),
}

impl CredentialSource {
    /// YAML keys, else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else the
    /// instance role (`AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides where IMDS is).
    fn resolve(cfg: &S3Config, env: impl Fn(&str) -> Option<String>) -> Result<CredentialSource, S3Error> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let pair = match (&cfg.access_key, &cfg.secret_key) {
            (Some(key), Some(secret)) => Some((key.clone(), secret.clone(), cfg.session_token.clone())),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(key), Some(secret)) => Some((key, secret, env("AWS_SESSION_TOKEN"))),
                _ => None,
            },
        };
        if let Some((key, secret, token)) = pair {
            let creds = match token {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            };
            return Ok(CredentialSource::Static(Arc::new(creds)));
        }
        if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(CredentialSource::Anonymous);
        }
        let endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS_ENDPOINT.to_string());
        Ok(CredentialSource::InstanceRole(InstanceRole::new(endpoint.trim_end_matches('/'))?))
    }

    async fn get(&self) -> Result<Option<Arc<Credentials>>, S3Error> {
        match self {
            CredentialSource::Static(creds) => Ok(Some(creds.clone())),
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::InstanceRole(role) => role.get().await,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            CredentialSource::Static(_) => "static",
            CredentialSource::Anonymous => "anonymous",
            CredentialSource::InstanceRole(_) => "instance role",
        }
    }
}

/// The EC2 instance role's temporary credentials from IMDSv2: fetched on first use, cached, and
/// refreshed a few minutes before they expire, by one task at a time.
struct InstanceRole {
    http: reqwest::Client,
    endpoint: String,
    state: RwLock<RoleState>,
    /// Held by the task refreshing.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct RoleState {
    creds: Option<Arc<Credentials>>,
    /// When to fetch new ones.
    refresh_at: Option<SystemTime>,
    /// When they stop working.
    expires_at: Option<SystemTime>,
    /// After a failure: no new try before this.
    retry_at: Option<Instant>,
}

impl RoleState {
    fn fresh(&self, now: SystemTime) -> Option<Arc<Credentials>> {
        self.creds.clone().filter(|_| self.refresh_at.is_some_and(|at| now < at))
    }

    fn usable(&self, now: SystemTime) -> Option<Arc<Credentials>> {
        self.creds.clone().filter(|_| self.expires_at.is_some_and(|at| now < at))
    }

    /// What to sign with when no new credentials can be had now: the current ones while they
    /// work, none (unsigned) if IMDS never gave any, else an error.
    fn fallback(&self, now: SystemTime, why: &str) -> Result<Option<Arc<Credentials>>, S3Error> {
        match (self.usable(now), &self.creds) {
            (Some(creds), _) => Ok(Some(creds)),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(S3Error::Credentials(format!("the instance role's credentials expired: {why}"))),
        }
    }
}

impl InstanceRole {
    fn new(endpoint: &str) -> Result<InstanceRole, S3Error> {
        install_crypto();
        let http = reqwest::Client::builder()
            .connect_timeout(IMDS_CONNECT_TIMEOUT)
            .timeout(IMDS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| S3Error::Config(format!("s3: building the metadata client: {e}")))?;
        Ok(InstanceRole {
            http,
            endpoint: endpoint.to_string(),
            state: RwLock::default(),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RoleState> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn get(&self) -> Result<Option<Arc<Credentials>>, S3Error> {
        if let Some(creds) = self.read().fresh(SystemTime::now()) {
            return Ok(Some(creds));
        }
        let _refreshing = match self.refreshing.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another task is refreshing: sign with the current credentials while they work.
                if let Some(creds) = self.read().usable(SystemTime::now()) {
                    return Ok(Some(creds));
                }
                self.refreshing.lock().await
            }
        };
        {
            let state = self.read();
            let now = SystemTime::now();
            if let Some(creds) = state.fresh(now) {
                return Ok(Some(creds));
            }
            if state.retry_at.is_some_and(|at| Instant::now() < at) {
                return state.fallback(now, "the metadata service failed recently");
            }
        }
        match self.fetch().await {
            Ok(answer) => {
                let now = SystemTime::now();
                let expires_at = SystemTime::from(answer.expiration());
                let life = expires_at.duration_since(now).unwrap_or_default();
                let creds = Arc::new(answer.into_credentials());
                let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                *state = RoleState {
                    creds: Some(creds.clone()),
                    refresh_at: Some(expires_at - REFRESH_BEFORE_EXPIRY.min(life / 2)),
                    expires_at: Some(expires_at),
                    retry_at: None,
                };
                Ok(Some(creds))
            }
            Err(why) => {
                let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                let wait = if state.creds.is_some() { IMDS_RETRY_REFRESH } else { IMDS_RETRY_NEVER_OK };
                state.retry_at = Some(Instant::now() + wait);
                if state.creds.is_none() {
                    log::info!("s3: no credentials configured and no instance role ({why}): requests go unsigned");
                } else {
                    log::warn!("s3: refreshing the instance role's credentials failed: {why}");
                }
                state.fallback(SystemTime::now(), &why)
            }
        }
    }

    /// IMDSv2: a session token, the role's name, then its credentials.
    async fn fetch(&self) -> Result<Ec2SecurityCredentialsMetadataResponse, String> {
        let base = &self.endpoint;
        let token = self
            .call(
                self.http
                    .put(format!("{base}/latest/api/token"))
                    .header("x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL),
            )
            .await?;
        let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
        let roles = self.call(self.http.get(&roles_url).header("x-aws-ec2-metadata-token", token.trim())).await?;
        let role = roles.lines().map(str::trim).find(|l| !l.is_empty()).ok_or("no instance role attached")?;
        let json = self
            .call(self.http.get(format!("{roles_url}{role}")).header("x-aws-ec2-metadata-token", token.trim()))
            .await?;
        Ec2SecurityCredentialsMetadataResponse::deserialize(&json)
            .map_err(|e| format!("the credentials of role {role} are unreadable: {e}"))
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<String, String> {
        let resp = request.send().await.map_err(|e| format!("metadata service: {}", root_cause(&e)))?;
        let url = resp.url().path().to_string();
        if !resp.status().is_success() {
            return Err(format!("metadata service: HTTP {} on {url}", resp.status().as_u16()));
        }
        resp.text().await.map_err(|e| format!("metadata service: {}", root_cause(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn good() -> S3Config {
        S3Config {
            endpoint: Some("http://127.0.0.1:8333".into()),
            bucket: "thumbs".into(),
            access_key: Some("AKIDEXAMPLE".into()),
            secret_key: Some("wJalrXUtnFEMI/K7MDENG".into()),
            ..S3Config::default()
        }
    }

    fn invalid(change: impl FnOnce(&mut S3Config)) -> String {
        let mut cfg = good();
        change(&mut cfg);
        cfg.validate("cache.s3").expect_err("should be refused")
    }

    #[test]
    fn defaults_and_yaml() {
        let cfg: S3Config = serde_norway::from_str("bucket: thumbs\nprefix: p/\n").unwrap();
        assert_eq!(cfg.region, "us-east-1");
        assert!(cfg.path_style);
        assert_eq!((cfg.connect_timeout_ms, cfg.timeout_ms), (500, 2000));
        assert_eq!(cfg.prefix, "p/");
        cfg.validate("s3").unwrap();
        let err = serde_norway::from_str::<S3Config>("bucket: thumbs\nsecret: x\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `secret`"), "{err}");
    }

    #[test]
    fn validate_names_the_key_at_fault() {
        good().validate("cache.s3").unwrap();
        type Change = fn(&mut S3Config);
        let table: Vec<(Change, &str)> = vec![
            (|c| c.bucket.clear(), "cache.s3.bucket: required"),
            (|c| c.bucket = "b1".into(), "cache.s3.bucket:"),
            (|c| c.bucket = "a/b/c".into(), "cache.s3.bucket:"),
            (|c| c.region.clear(), "cache.s3.region:"),
            (|c| c.endpoint = Some("not a url".into()), "cache.s3.endpoint:"),
            (|c| c.endpoint = Some("ftp://example.com".into()), "cache.s3.endpoint:"),
            (|c| c.endpoint = Some("http://example.com/?x=1".into()), "cache.s3.endpoint:"),
            (|c| c.path_style = false, "cache.s3.endpoint: no URL for bucket"),
            (|c| c.secret_key = None, "cache.s3.secret_key: required with cache.s3.access_key"),
            (|c| c.access_key = None, "cache.s3.access_key: required with cache.s3.secret_key"),
            (|c| c.access_key = Some(String::new()), "cache.s3.access_key: must not be empty"),
            (
                |c| (c.access_key, c.secret_key, c.session_token) = (None, None, Some("t".into())),
                "cache.s3.session_token:",
            ),
            (|c| c.timeout_ms = 0, "cache.s3.timeout_ms:"),
            (|c| c.connect_timeout_ms = 0, "cache.s3.connect_timeout_ms:"),
            (|c| c.connect_timeout_ms = 5000, "cache.s3.connect_timeout_ms:"),
        ];
        for (change, expected) in table {
            let err = invalid(change);
            assert!(err.starts_with(expected), "{err:?} should start with {expected:?}");
        }
        // Virtual-hosted style works with a host name, and AWS is the default endpoint.
        let aws = S3Config { endpoint: None, path_style: false, ..good() };
        aws.validate("s3").unwrap();
        assert_eq!(aws.bucket_handle().unwrap().base_url().as_str(), "https://thumbs.s3.us-east-1.amazonaws.com/");
    }

    #[test]
    fn key_joins_prefix_and_relative_key() {
        assert_eq!(join_key("", "r/ab/abcd"), "r/ab/abcd");
        assert_eq!(join_key("thumbora", "r/ab/abcd"), "thumbora/r/ab/abcd");
        assert_eq!(join_key("thumbora/", "r/ab"), "thumbora/r/ab");
        assert_eq!(join_key("thumbora//", "//r/ab"), "thumbora/r/ab");
        assert_eq!(join_key("/st", "x.jpg"), "/st/x.jpg");
        let client = S3Client::with_env(&S3Config { prefix: "p/".into(), ..good() }, |_| None).unwrap();
        assert_eq!(client.key("/s/ab/abcd"), "p/s/ab/abcd");
    }

    #[test]
    fn keys_a_url_cannot_carry_are_refused() {
        for key in ["", ".", "..", "a/../b", "./a", "a/.", &"k".repeat(1025)] {
            assert!(matches!(check_key(key), Err(S3Error::BadKey(_))), "{key:?}");
        }
        for key in ["a", "a/b.c", "/a", "a//b", "a/.b/..c", "é/ü"] {
            check_key(key).unwrap();
        }
    }

    #[test]
    fn debug_masks_secrets() {
        let cfg = S3Config { session_token: Some("TOKEN-VALUE".into()), ..good() };
        let text = format!("{cfg:?}");
        assert!(!text.contains("wJalrXUtnFEMI") && !text.contains("TOKEN-VALUE"), "{text}");
        assert!(text.contains("secret_key: Some(\"***\")") && text.contains("AKIDEXAMPLE"), "{text}");
        let client = S3Client::with_env(&cfg, |_| None).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("wJalrXUtnFEMI") && !text.contains("TOKEN-VALUE"), "{text}");
    }

    #[test]
    fn error_code_and_message_from_xml() {
        let xml = "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not \
                   exist.</Message><Key>x</Key></Error>";
        assert_eq!(xml_element(xml, "Code"), Some("NoSuchKey"));
        assert_eq!(xml_element(xml, "Message"), Some("The specified key does not exist."));
        assert_eq!(xml_element("<html>", "Code"), None);
    }

    #[tokio::test]
    async fn credentials_yaml_then_environment_then_instance_role() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("ENVKEY".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
            "AWS_SESSION_TOKEN" => Some("envtoken".to_string()),
            _ => None,
        };
        let yaml = CredentialSource::resolve(&good(), env).unwrap().get().await.unwrap().unwrap();
        assert_eq!((yaml.key(), yaml.token()), ("AKIDEXAMPLE", None));
        let no_keys = S3Config { access_key: None, secret_key: None, ..good() };
        let from_env = CredentialSource::resolve(&no_keys, env).unwrap().get().await.unwrap().unwrap();
        assert_eq!((from_env.key(), from_env.secret(), from_env.token()), ("ENVKEY", "envsecret", Some("envtoken")));
        let none = CredentialSource::resolve(&no_keys, |_| None).unwrap();
        assert!(matches!(none, CredentialSource::InstanceRole(ref role) if role.endpoint == IMDS_ENDPOINT));
        let disabled = |name: &str| (name == "AWS_EC2_METADATA_DISABLED").then(|| "true".to_string());
        assert!(matches!(CredentialSource::resolve(&no_keys, disabled).unwrap(), CredentialSource::Anonymous));
    }

    /// A fake IMDSv2 on a loopback port: counts requests, checks the session token.
    async fn fake_imds(expiration: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let line = head.lines().next().unwrap_or_default().to_string();
                let token_ok = head.contains("x-aws-ec2-metadata-token: tok");
                let (status, body) = if line.starts_with("put /latest/api/token ") {
                    ("200 OK", "tok".to_string())
                } else if !token_ok {
                    ("401 Unauthorized", String::new())
                } else if line.starts_with("get /latest/meta-data/iam/security-credentials/ ") {
                    ("200 OK", "thumbs-role\n".to_string())
                } else if line.starts_with("get /latest/meta-data/iam/security-credentials/thumbs-role ") {
                    let json = format!(
                        "{{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAROLE\",\
                         \"SecretAccessKey\":\"rolesecret\",\"Token\":\"roletoken\",\"Expiration\":\"{expiration}\"}}"
                    );
                    ("200 OK", json)
                } else {
                    ("404 Not Found", String::new())
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        (endpoint, hits)
    }

    #[tokio::test]
    async fn instance_role_credentials_are_fetched_once_and_cached() {
        let (endpoint, hits) = fake_imds("2999-01-01T00:00:00Z").await;
        let role = InstanceRole::new(&endpoint).unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing is fetched before the first use");
        // Concurrent first calls share one fetch: token, role name, credentials.
        let first = futures::future::join_all((0..8).map(|_| role.get())).await;
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        for creds in first {
            let creds = creds.unwrap().unwrap();
            assert_eq!((creds.key(), creds.secret(), creds.token()), ("ASIAROLE", "rolesecret", Some("roletoken")));
        }
        role.get().await.unwrap().unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3, "cached");
    }

    #[tokio::test]
    async fn credentials_near_expiry_are_refreshed_once_while_the_old_ones_serve() {
        let (endpoint, hits) = fake_imds("2999-01-01T00:00:00Z").await;
        let role = InstanceRole::new(&endpoint).unwrap();
        role.get().await.unwrap().unwrap();
        // Past the refresh time (a few minutes before expiry): one task refreshes, the others
        // sign with the current credentials without waiting.
        role.state.write().unwrap().refresh_at = Some(SystemTime::now() - Duration::from_secs(1));
        let results = futures::future::join_all((0..8).map(|_| role.get())).await;
        assert!(results.iter().all(|r| matches!(r, Ok(Some(_)))), "{results:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 6, "one refresh for eight calls");
        assert!(role.read().fresh(SystemTime::now()).is_some());
    }

    #[tokio::test]
    async fn expired_credentials_are_not_used_when_the_refresh_fails() {
        let (endpoint, _hits) = fake_imds("2999-01-01T00:00:00Z").await;
        let role = InstanceRole::new(&endpoint).unwrap();
        role.get().await.unwrap().unwrap();
        {
            let mut state = role.state.write().unwrap();
            state.refresh_at = Some(SystemTime::now() - Duration::from_secs(2));
            state.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
            state.retry_at = Some(Instant::now() + Duration::from_secs(60));
        }
        assert!(matches!(role.get().await, Err(S3Error::Credentials(_))));
    }

    #[tokio::test]
    async fn without_instance_role_requests_go_unsigned_and_imds_is_not_asked_again_soon() {
        // A closed loopback port: connection refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let role = InstanceRole::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let started = Instant::now();
        assert!(role.get().await.unwrap().is_none());
        assert!(role.read().retry_at.is_some());
        assert!(role.get().await.unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }
}
