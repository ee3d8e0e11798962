//! A real SeaweedFS server for the S3 tests: `weed server` (master, volume, filer, S3 gateway) on
//! free loopback ports in a temporary directory, with one SigV4 identity, so signatures are checked.
//!
//! `weed` comes from `THUMBORA_WEED`, else `.tools/venv/bin/weed` (both set up by
//! `source scripts/test-deps.sh`), else the PATH. It runs under a small `sh` that kills it when its
//! stdin closes: when the test process exits, even from a `static` that is never dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thumbora::s3::{S3Client, S3Config};

use super::harness::free_port;

/// How long a start may take before the test fails (about 3 to 10 s is usual).
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long `stop` waits for the server to be gone.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Runs `weed "$@"` in the background, then waits on its stdin and kills it: on the line `keep`
/// (from `stop`, before a restart) it keeps `$DIR`; on end of file (the test process gone,
/// even from a `static` that is never dropped) it removes it. Either way it removes the gRPC
/// sockets weed leaves in /tmp (`$SOCKETS`). The pid goes to `$DIR/weed.pid`, the output to
/// `$DIR/weed.log`.
const SUPERVISOR: &str = r#"weed="$1"; shift
"$weed" "$@" </dev/null >>"$DIR/weed.log" 2>&1 &
pid=$!
echo "$pid" >"$DIR/weed.pid"
line=""
read -r line
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -f $SOCKETS
[ "$line" = keep ] || rm -rf "$DIR"
exit 0
"#;

/// A running SeaweedFS; killed when dropped.
pub struct Seaweed {
    pub s3_port: u16,
    pub access_key: String,
    pub secret_key: String,
    /// master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC.
    ports: [u16; 8],
    dir: tempfile::TempDir,
    /// The supervising `sh`; None once stopped.
    child: Option<Child>,
}

impl Seaweed {
    /// Start a server and wait (at most 60 s) until an object can be written and read back.
    pub fn start() -> Seaweed {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut seaweed = Seaweed {
            s3_port: 0,
            access_key: "thumbora-test".into(),
            secret_key: "thumbora-test-secret".into(),
            ports: distinct_free_ports(),
            dir,
            child: None,
        };
        seaweed.s3_port = seaweed.ports[6];
        let identities = serde_json::json!({"identities": [{
            "name": "thumbora",
            "credentials": [{"accessKey": seaweed.access_key, "secretKey": seaweed.secret_key}],
            "actions": ["Admin", "Read", "Write", "List"],
        }]});
        std::fs::write(seaweed.dir.path().join("s3.json"), identities.to_string()).expect("write s3.json");
        seaweed.spawn();
        seaweed
    }

    /// `http://127.0.0.1:{s3_port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The YAML of an `S3Config` for `bucket` on this server (unindented lines).
    pub fn config_yaml(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "endpoint: \"{}\"\nregion: us-east-1\nbucket: \"{bucket}\"\nprefix: \"{prefix}\"\npath_style: true\n\
             access_key: \"{}\"\nsecret_key: \"{}\"\n",
            self.endpoint(),
            self.access_key,
            self.secret_key
        )
    }

    /// [`config_yaml`](Self::config_yaml), parsed, with timeouts for a busy test machine (the
    /// other tests render images on the same cores): 2 s to connect, 10 s a request.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        let cfg: S3Config =
            serde_norway::from_str(&self.config_yaml(bucket, prefix)).expect("S3Config from config_yaml");
        S3Config { connect_timeout_ms: 2000, timeout_ms: 10_000, ..cfg }
    }

    /// A client for `bucket` (created if missing).
    pub async fn bucket(&self, bucket: &str) -> S3Client {
        self.create_bucket(bucket).await;
        S3Client::new(&self.config(bucket, "")).expect("S3 client")
    }

    /// Create `bucket` (a name of at least 3 characters; existing is fine) and wait until it
    /// takes writes: its first write grows volumes for it, which may take a few seconds (bounded).
    pub async fn create_bucket(&self, name: &str) {
        let client = S3Client::new(&self.config(name, "")).expect("S3 client");
        client.create_bucket().await.unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.put("thumbora-warm-up", bytes::Bytes::new(), "text/plain").await {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("bucket {name} not writable yet: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("bucket {name} not writable: {e}\n{}", self.log_tail()),
            }
        }
        client.delete("thumbora-warm-up").await.unwrap_or_else(|e| panic!("warm-up delete in {name}: {e}"));
    }

    /// Kill the server and wait until it is gone (its data stays, for [`restart`](Self::restart)).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // The supervisor kills weed and waits for it, keeping the directory.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"keep\n");
        }
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            self.signal(libc::SIGKILL);
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Stop, then start again on the same directory and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Freeze the server (SIGSTOP): connections are still accepted, nothing is answered. Returns
    /// once every thread of it has stopped: kill(2) returns before they have (a request sent at
    /// once could still be answered).
    pub fn pause(&self) {
        let pid = self.weed_pid().expect("weed's pid file");
        self.signal(libc::SIGSTOP);
        let deadline = Instant::now() + STOP_LIMIT;
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "weed (pid {pid}) not stopped {STOP_LIMIT:?} after SIGSTOP");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Undo [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// The last lines of the server's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn weed_pid(&self) -> Option<i32> {
        // Written by the supervisor, so absent for a moment after a (re)start.
        std::fs::read_to_string(self.dir.path().join("weed.pid")).ok()?.trim().parse().ok()
    }

    fn signal(&self, signal: i32) {
        if let Some(pid) = self.weed_pid() {
            // SAFETY: kill(2) on the weed process this harness started.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let _ = std::fs::remove_file(dir.join("weed.pid"));
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = self.ports;
        let path = |name: &str| dir.join(name).display().to_string();
        let args = [
            // glog's files, otherwise in /tmp.
            format!("-logdir={}", dir.display()),
            "server".to_string(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={}", dir.display()),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            "-master.volumeSizeLimitMB=64".into(),
            // A restarted master waits this long for an election (default 10 s) before it leads.
            "-master.electionTimeout=1s".into(),
            "-master.telemetry=false".into(),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            // Each bucket is a collection with volumes of its own: the default 8 runs out.
            "-volume.max=200".into(),
            "-volume.preStopSeconds=0".into(),
            "-filer".into(),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!("-filer.localSocket={}", path("filer.sock")),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            format!("-s3.config={}", path("s3.json")),
            format!("-s3.localSocket={}", path("s3.sock")),
            // Fixed default ports (8181, 9101) otherwise: two servers would collide.
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
        ];
        // weed's gRPC servers also listen on unix sockets in /tmp named after their ports.
        let sockets: Vec<String> =
            [("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc), ("s3", s3_grpc)]
                .iter()
                .map(|(role, port)| format!("/tmp/seaweedfs-{role}-grpc-{port}.sock"))
                .collect();
        let started = Instant::now();
        let child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(weed_binary())
            .args(&args)
            .env("DIR", dir)
            .env("SOCKETS", sockets.join(" "))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh for weed");
        self.child = Some(child);
        let waits = self.wait_ready(started);
        if std::env::var("THUMBORA_TEST_LOG").is_ok() {
            let mut err = std::io::stderr();
            let _ = writeln!(
                err,
                "seaweedfs on {} ready in {:?} ({}); waited on: {waits:#?}",
                self.endpoint(),
                started.elapsed(),
                path("weed.log")
            );
        }
    }

    /// Poll until a probe object is written and read back: the S3 gateway up, the filer
    /// connected and a volume writable. Returns the failures seen meanwhile (each distinct one,
    /// with when it was first seen). Panics with the server's log after [`START_LIMIT`].
    fn wait_ready(&self, started: Instant) -> Vec<String> {
        let cfg = S3Config { timeout_ms: 5000, ..self.config("thumbora-ready", "") };
        let probe = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let client = S3Client::new(&cfg).expect("S3 client");
                let mut seen: Vec<String> = Vec::new();
                let mut last = String::new();
                while started.elapsed() < START_LIMIT {
                    let attempt = async {
                        client.create_bucket().await?;
                        client.put("probe", bytes::Bytes::from_static(b"ok"), "text/plain").await?;
                        client.get("probe").await
                    };
                    match attempt.await {
                        Ok(Some(body)) if &body[..] == b"ok" => return Ok(seen),
                        Ok(other) => last = format!("probe read back as {other:?}"),
                        Err(e) => last = e.to_string(),
                    }
                    if !seen.iter().any(|s| s.ends_with(&last)) {
                        seen.push(format!("{:?}: {last}", started.elapsed()));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(last)
            })
        });
        while !probe.is_finished() {
            if self.weed_pid().is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                panic!("weed exited during start-up; its log:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        match probe.join().expect("readiness probe") {
            Ok(seen) => seen,
            Err(last) => panic!("SeaweedFS not ready after {START_LIMIT:?} ({last}); its log:\n{}", self.log_tail()),
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `weed` binary: `THUMBORA_WEED`, else `.tools/venv/bin/weed`, else `weed` on the PATH.
pub fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("THUMBORA_WEED").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/weed");
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("weed"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no SeaweedFS `weed` binary: run `source scripts/test-deps.sh` (sets THUMBORA_WEED)"))
}

/// Eight different free loopback ports.
fn distinct_free_ports() -> [u16; 8] {
    let mut ports = Vec::new();
    for _ in 0..100 {
        let port = free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
        if ports.len() == 8 {
            return ports.try_into().expect("eight ports");
        }
    }
    panic!("no eight distinct free ports");
}

/// Every thread of `pid` is stopped (state `T`, or `t` under a tracer), as /proc shows it.
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses and may hold spaces.
        let state = stat.rfind(')').and_then(|end| stat[end + 1..].split_whitespace().next());
        matches!(state, Some("T" | "t"))
    })
}
