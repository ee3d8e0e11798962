//! The test harness: the real `thumbora` binary on an ephemeral loopback port with a generated
//! configuration, an HTTP client, signing, image inspection and a perceptual hash.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::origin::Origin;

pub const KEY: &str = "my-security-key";

/// A free loopback port (bound then released), never one this test process was given before: a
/// test that stops a server and expects its port to refuse connections must not find another
/// test's server there.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no loopback port not given before in 1000 tries");
}

/// Settings a test wants; `to_yaml` writes the configuration file.
#[derive(Clone, Default)]
pub struct Settings {
    /// Extra YAML lines under `thumbora:` (two-space indented keys like `  image:`).
    pub thumbora: String,
    /// Extra top-level YAML lines (Pingora keys).
    pub server: String,
    /// Fail points to arm in the server (`FAILPOINTS`, fail-rs' syntax: `name=action;...`); they
    /// exist only in a build with the `failpoints` feature.
    pub failpoints: String,
}

/// The `sources:` section every test server gets: loopback origins allowed, short timeouts.
const BASE_SOURCES: &str =
    "  sources:\n    loader: http\n    allow_private_networks: true\n    connect_timeout_ms: 1000\n    request_timeout_ms: 2000\n";

/// The other default section: the signing key.
const BASE_SECURITY: &str = "  security:\n    keys: [\"my-security-key\"]\n";

impl Settings {
    /// The base `sources:` section plus `extra` keys (four-space indented lines), and `rest`
    /// (other `thumbora:` sections).
    pub fn with_sources(extra: &str, rest: &str) -> Settings {
        Settings { thumbora: format!("{BASE_SOURCES}{extra}{rest}"), ..Settings::default() }
    }
}

/// A running Thumbora; killed when dropped.
pub struct Server {
    pub port: u16,
    child: Child,
    /// Holds the configuration file (shared with an upgrade's successor).
    dir: std::sync::Arc<tempfile::TempDir>,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Settings::default()).await
    }

    /// Start with `thumbora:` sections merged over the base (a later section of the same name
    /// replaces the base one, so tests may restate `sources:` completely).
    pub async fn start_with(settings: Settings) -> Server {
        Self::start_logging(settings, None).await
    }

    /// [`Server::start_with`], its log (standard error, `RUST_LOG=warn`) written to `log` when
    /// given.
    pub async fn start_logging(settings: Settings, log: Option<std::fs::File>) -> Server {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = format!(
            "threads: 2\npid_file: {pid}\nupgrade_sock: {sock}\n{server}thumbora:\n  listen: [\"127.0.0.1:{port}\"]\n",
            pid = dir.path().join("pid").display(),
            sock = dir.path().join("upgrade.sock").display(),
            server = settings.server,
        );
        yaml.push_str(&merge_sections(&format!("{BASE_SECURITY}{BASE_SOURCES}"), &settings.thumbora));
        let conf = dir.path().join("thumbora.yaml");
        std::fs::File::create(&conf).unwrap().write_all(yaml.as_bytes()).unwrap();
        let dir = std::sync::Arc::new(dir);
        let child = match log {
            Some(log) => spawn_logging(&conf, &[], log.into(), "warn", &settings.failpoints),
            None if !settings.failpoints.is_empty() => {
                spawn_logging(&conf, &[], Stdio::null(), "warn", &settings.failpoints)
            }
            None => spawn(&conf, &[]),
        };
        let client = test_client();
        let server = Server { port, child, dir, client };
        server.wait_ready().await;
        server
    }

    /// Start on a whole configuration file's text as given (`thumbora migrate`'s output, say),
    /// with `port` the one its `listen` names; only the runtime files (pid file, upgrade socket)
    /// are put in the server's own directory.
    pub async fn start_file(yaml: &str, port: u16) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "pid_file: {pid}\nupgrade_sock: {sock}\n{yaml}",
            pid = dir.path().join("pid").display(),
            sock = dir.path().join("upgrade.sock").display(),
        );
        let conf = dir.path().join("thumbora.yaml");
        std::fs::write(&conf, yaml).unwrap();
        let child = spawn(&conf, &[]);
        let server = Server { port, child, dir: std::sync::Arc::new(dir), client: test_client() };
        server.wait_ready().await;
        server
    }

    /// Start a second process with `-u` on the same configuration: it waits on the upgrade
    /// socket for this one's listeners (send SIGQUIT to this one to hand them over).
    pub fn start_upgrade(&self) -> Server {
        let conf = self.dir.path().join("thumbora.yaml");
        let child = spawn(&conf, &["-u"]);
        Server { port: self.port, child, dir: self.dir.clone(), client: test_client() }
    }

    /// Stop the process with `signal` (`libc::SIGTERM`: a graceful stop; `libc::SIGKILL`: a crash),
    /// then start it again on the same configuration and port.
    pub async fn restart(&mut self, signal: i32) {
        self.signal(signal);
        assert!(self.wait_exit(Duration::from_secs(20)), "thumbora did not stop on signal {signal}");
        self.child = spawn(&self.dir.path().join("thumbora.yaml"), &[]);
        self.wait_ready().await;
    }

    /// Send a signal (`libc::SIGQUIT` for a graceful upgrade, `SIGINT` for a fast stop).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Wait for the process to exit, up to `limit`; true when it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map(|d| d.count()).unwrap_or(0)
    }

    /// The TCP ports the server process listens on (from /proc: its socket fds in LISTEN state),
    /// sorted.
    pub fn listening_ports(&self) -> Vec<u16> {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter_map(|link| {
                        let link = link.to_string_lossy().to_string();
                        Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut ports: Vec<u16> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .flat_map(|table| {
                std::fs::read_to_string(table)
                    .unwrap_or_default()
                    .lines()
                    .skip(1)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter_map(|row| {
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                let cols: Vec<&str> = row.split_whitespace().collect();
                let listening = cols.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == cols.get(9));
                let port = cols.get(1)?.rsplit(':').next()?;
                listening.then(|| u16::from_str_radix(port, 16).ok()).flatten()
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// CPU time the server process has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may contain spaces) start at state (field 3):
        // utime and stime are fields 14 and 15, in clock ticks.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // SAFETY: sysconf reads a constant of the running system.
        #[allow(unsafe_code)]
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        (ticks(11) + ticks(12)) as f64 / per_second
    }
}

/// The thumbora binary on `conf`, quiet unless THUMBORA_TEST_LOG is set.
fn spawn(conf: &std::path::Path, extra: &[&str]) -> Child {
    let level = std::env::var("THUMBORA_TEST_LOG").ok();
    let stderr = if level.is_some() { Stdio::inherit() } else { Stdio::null() };
    spawn_logging(conf, extra, stderr, level.as_deref().unwrap_or("warn"), "")
}

/// The thumbora binary on `conf`, logging at `level` to `stderr`, with `failpoints` armed.
fn spawn_logging(conf: &std::path::Path, extra: &[&str], stderr: Stdio, level: &str, failpoints: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_thumbora"))
        .arg("-c")
        .arg(conf)
        .args(extra)
        .env("RUST_LOG", level)
        .env("FAILPOINTS", failpoints)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start thumbora")
}

/// A client for the servers under test: loopback without proxy, no redirects, a new connection
/// per request, 30 s timeout.
pub fn test_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

impl Server {
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.client.get(self.url("/healthcheck")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("thumbora did not become ready on port {}", self.port);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(reqwest::Method::GET, path, &[]).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("request {path}: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Resp { status, headers, body }
    }

    /// Resident memory of the server process now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Resident memory high-water mark of the server process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `kB` line of the server's `/proc/PID/status`.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Merge `extra` YAML sections into `base`: a top-level key (two-space indent) present in
/// `extra` replaces the same key of `base`.
fn merge_sections(base: &str, extra: &str) -> String {
    fn sections(text: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.starts_with("  ") && !line.starts_with("   ") {
                let key = line.trim().split(':').next().unwrap_or_default().to_string();
                out.push((key, format!("{line}\n")));
            } else if let Some(last) = out.last_mut() {
                last.1.push_str(line);
                last.1.push('\n');
            }
        }
        out
    }
    let extra_sections = sections(extra);
    let mut out = String::new();
    for (key, text) in sections(base) {
        if !extra_sections.iter().any(|(k, _)| *k == key) {
            out.push_str(&text);
        }
    }
    for (_, text) in extra_sections {
        out.push_str(&text);
    }
    out
}

/// A response.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    /// Decoded size of the body (panics with the body text when it is not an image).
    pub fn dims(&self) -> (u32, u32) {
        let img = image::load_from_memory(&self.body).unwrap_or_else(|e| {
            panic!("not an image ({e}), status {}: {}", self.status, String::from_utf8_lossy(&self.body))
        });
        (img.width(), img.height())
    }

    pub fn image(&self) -> image::DynamicImage {
        image::load_from_memory(&self.body).expect("image body")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Frames of a GIF body.
    pub fn gif_frames(&self) -> u32 {
        thumbora::codec::probe::count_gif_frames(&self.body, 10_000)
    }
}

/// `/<signature>/<payload>` with the test key.
pub fn signed(payload: &str) -> String {
    format!("/{}/{payload}", thumbora::security::signature::sign(KEY.as_bytes(), payload))
}

/// 64-bit difference hash: grayscale 9x8, one bit per horizontal gradient.
pub fn dhash(img: &image::DynamicImage) -> u64 {
    let small = img.grayscale().resize_exact(9, 8, image::imageops::FilterType::Triangle).to_luma8();
    let mut hash = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            hash <<= 1;
            if small.get_pixel(x, y)[0] < small.get_pixel(x + 1, y)[0] {
                hash |= 1;
            }
        }
    }
    hash
}

/// Hamming distance between two hashes.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// A PNG of random RGB noise (deterministic): it does not compress, about 3 bytes a pixel.
pub fn noise_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut png = Vec::new();
    noise.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    png
}

/// A photo-like test image (smooth gradients and discs), encoded as `format`.
pub fn photo(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let fx = x as f32 / width as f32;
        let fy = y as f32 / height as f32;
        let disc = ((fx - 0.3).powi(2) + (fy - 0.4).powi(2)).sqrt() < 0.2;
        if disc {
            image::Rgb([230, 60, 40])
        } else {
            image::Rgb([(255.0 * fx) as u8, (200.0 * fy) as u8, (120.0 + 100.0 * fx * fy) as u8])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// The path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    super::origin::fixture_dir().join(name)
}
