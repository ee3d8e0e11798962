//! The URL playground (`thumbora.playground`) on the admin listener, driven in a real headless
//! Chromium over WebDriver: the URL the page builds is byte for byte what `thumbora sign` prints,
//! the result it shows is the one the main listener serves, and the key never leaves the
//! browser. Without a browser: off by default, never on the main listener, its renders bounded,
//! and a config error without the admin listener.
//!
//! Chromium and chromedriver come from Debian's packages (`source scripts/test-deps.sh` installs
//! them and sets THUMBORA_CHROMIUM and THUMBORA_CHROMEDRIVER), else the PATH.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::*;

/// The key typed into the page: it must appear in no request the browser makes.
const PAGE_KEY: &str = "pg-key-7Vq2!é";

/// What Chromium sends for an image, which the page sends for results too.
const IMAGE_ACCEPT: &str = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";

/// `THUMBORA_<VAR>`, else `name` on the PATH.
fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no `{name}`: run `source scripts/test-deps.sh` (sets {var})"))
}

/// A headless Chromium behind chromedriver, in a process group of its own; the session is
/// ended and the whole group killed when dropped (a failed assertion included).
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new(tool("THUMBORA_CHROMEDRIVER", "chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser { driver, port, session: String::new(), client: test_client(), _profile: profile };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = browser.client.get(browser.url("/status")).send().await;
            if let Ok(r) = ready {
                let status: Value = serde_json::from_slice(&r.bytes().await.unwrap_or_default()).unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let chromium = tool("THUMBORA_CHROMIUM", "chromium");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--no-first-run", "--window-size=1280,1000",
                         format!("--user-data-dir={}", browser._profile.path().display())],
            },
            // Every request the page makes, to check that the key is in none of them.
            "goog:loggingPrefs": {"performance": "ALL"},
        }}});
        let session = browser.command(reqwest::Method::POST, "/session", Some(capabilities)).await;
        browser.session = session["sessionId"].as_str().expect("a session id").to_string();
        browser
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A WebDriver command; its `value`, or a panic with WebDriver's error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let reply: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        assert!(status.is_success(), "webdriver {path}: {status} {}", reply["value"]);
        reply["value"].clone()
    }

    async fn session_command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.command(method, &format!("/session/{}{path}", self.session), body).await
    }

    async fn goto(&self, url: &str) {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .session_command(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .await;
        found.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("an element id").to_string()
    }

    /// Clear the field `css` and type `text` into it.
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.session_command(reqwest::Method::POST, &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.session_command(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text})))
            .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.session_command(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    async fn script(&self, body: &str) -> Value {
        self.session_command(reqwest::Method::POST, "/execute/sync", Some(json!({"script": body, "args": []}))).await
    }

    /// Poll `condition` (a script body returning a boolean) until true; bounded.
    async fn wait_for(&self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.script(condition).await != true {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every performance-log message since the last call (network events among them).
    async fn performance_log(&self) -> Vec<String> {
        let log = self.session_command(reqwest::Method::POST, "/se/log", Some(json!({"type": "performance"}))).await;
        log.as_array().unwrap().iter().filter_map(|e| e["message"].as_str().map(str::to_string)).collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (Chromium quits), with a plain blocking request: Drop cannot await.
        if !self.session.is_empty() {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.session, self.port
                );
                let _ = stream.write_all(request.as_bytes());
                // Until the reply's JSON is in (chromedriver may keep the connection open).
                let (mut reply, mut buf) = (Vec::new(), [0u8; 1024]);
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    reply.extend_from_slice(&buf[..n]);
                    if reply.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
        // Then chromedriver and whatever is left of the browser: the whole process group.
        // SAFETY: kill(2) on the process group of our own child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

/// One way through the form, and what `thumbora sign` is given for the same options.
struct Case {
    name: &'static str,
    image: String,
    /// (field, text) typed, the image URL and the key aside.
    typed: Vec<(&'static str, &'static str)>,
    /// Checkboxes ticked.
    ticked: Vec<&'static str>,
    /// (select, option) chosen.
    chosen: Vec<(&'static str, &'static str)>,
    /// `None`: no key, an `unsafe/` URL.
    key: Option<&'static str>,
    /// `thumbora sign` options for the same (without the key and the image URL).
    sign: Vec<&'static str>,
    /// Expected result: the size and Content-Type of an image, or `None` for meta's JSON.
    image_result: Option<((u32, u32), &'static str)>,
}

/// What `thumbora sign` prints (with `-k key`); without a key, the same path with `unsafe`
/// in place of the signature.
fn thumbora_sign(case: &Case) -> String {
    let key = case.key.unwrap_or("any-key");
    let out = Command::new(env!("CARGO_BIN_EXE_thumbora"))
        .arg("sign")
        .args(["-k", key])
        .args(&case.sign)
        .arg("--")
        .arg(&case.image)
        .env_remove("THUMBORA_SECURITY_KEY")
        .output()
        .expect("run thumbora sign");
    assert!(out.status.success(), "thumbora sign: {}", String::from_utf8_lossy(&out.stderr));
    let signed = String::from_utf8(out.stdout).unwrap().trim_end_matches('\n').to_string();
    match case.key {
        Some(_) => signed,
        None => format!("/unsafe/{}", signed.splitn(3, '/').nth(2).unwrap()),
    }
}

/// The page's state, as the user sees it.
const READ_PAGE: &str = r#"
const text = (id) => document.getElementById(id).textContent;
const img = (id) => document.getElementById(id);
return {
  path: text("path"), urlError: text("url-error"),
  original: document.getElementById("original").dataset.state, originalSize: text("original-size"),
  originalNatural: [img("original-img").naturalWidth, img("original-img").naturalHeight],
  result: document.getElementById("result").dataset.state, status: text("result-status"),
  size: text("result-size"), bytes: text("result-bytes"), format: text("result-format"),
  time: text("result-time"), json: text("result-text"),
  natural: [img("result-img").naturalWidth, img("result-img").naturalHeight],
};"#;

async fn admin_ready(server: &Server, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = server.client.get(format!("http://127.0.0.1:{port}/metrics")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the admin listener did not answer");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn playground_settings(admin: u16, extra: &str) -> Settings {
    Settings::with_sources(
        "",
        &format!(
            "  metrics:\n    listen: \"127.0.0.1:{admin}\"\n  playground:\n    enabled: true\n{extra}  access_log:\n    enabled: false\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_builds_what_thumbora_sign_prints_and_shows_the_result() {
    let origin = Origin::start().await;
    origin.put("/pg.jpg", photo(320, 240, image::ImageFormat::Jpeg));
    origin.put("/pg.png", photo(320, 240, image::ImageFormat::Png));
    let o = origin.host();
    let admin = free_port();
    // The server verifies with the key typed into the page.
    let mut settings = playground_settings(admin, "");
    settings.thumbora.push_str(&format!("  security:\n    keys: [\"{PAGE_KEY}\"]\n"));
    let server = Server::start_with(settings).await;
    admin_ready(&server, admin).await;
    let browser = Browser::start().await;

    let cases = vec![
        Case {
            name: "signed: fit-in, both flips, alignment, filters, a quoted query",
            image: format!("http://{o}/qs/pg.jpg?ok=1&n=café ü"),
            typed: vec![("#width", "120"), ("#height", "80"), ("#filters", "quality(80):grayscale()")],
            ticked: vec!["#flip-h", "#flip-v"],
            chosen: vec![("#fit", "fit-in"), ("#halign", "left"), ("#valign", "top")],
            key: Some(PAGE_KEY),
            sign: vec![
                "-n",
                "-w",
                "120",
                "-e",
                "80",
                "-f",
                "-v",
                "-a",
                "left",
                "-i",
                "top",
                "--filters",
                "quality(80):grayscale()",
            ],
            image_result: Some(((107, 80), "image/jpeg")),
        },
        Case {
            name: "signed: manual crop, width only, smart, format(webp)",
            image: format!("{o}/pg.jpg"),
            typed: vec![
                ("#width", "120"),
                ("#height", "0"),
                ("#crop-left", "20"),
                ("#crop-top", "10"),
                ("#crop-right", "260"),
                ("#crop-bottom", "190"),
                ("#filters", "format(webp)"),
            ],
            ticked: vec!["#smart"],
            chosen: vec![],
            key: Some(PAGE_KEY),
            sign: vec!["-c", "20x10:260x190", "-w", "120", "-s", "--filters", "format(webp)"],
            image_result: Some(((120, 90), "image/webp")),
        },
        Case {
            name: "unsafe: no key",
            image: format!("http://{o}/pg.png"),
            typed: vec![("#width", "64"), ("#height", "48")],
            ticked: vec![],
            chosen: vec![("#halign", "right")],
            key: None,
            sign: vec!["-w", "64", "-e", "48", "-a", "right"],
            image_result: Some(((64, 48), "image/png")),
        },
        Case {
            name: "signed meta: trim, adaptive-full-fit-in, smart",
            image: format!("{o}/pg.jpg"),
            typed: vec![("#width", "100"), ("#height", "100")],
            ticked: vec!["#meta", "#trim", "#smart"],
            chosen: vec![("#fit", "adaptive-full-fit-in")],
            key: Some(PAGE_KEY),
            sign: vec!["-m", "-t", "-n", "--adaptive", "--full", "-w", "100", "-e", "100", "-s"],
            image_result: None,
        },
    ];

    let page = format!("http://127.0.0.1:{admin}/playground");
    for case in &cases {
        let name = case.name;
        browser.goto(&page).await;
        let title = browser.script("return document.title").await;
        assert_eq!(title, "Thumbora playground", "{name}");
        browser.type_into("#image", &case.image).await;
        for (field, text) in &case.typed {
            browser.type_into(field, text).await;
        }
        for checkbox in &case.ticked {
            browser.click(checkbox).await;
        }
        for (select, option) in &case.chosen {
            browser.click(&format!("{select} option[value=\"{option}\"]")).await;
        }
        if let Some(key) = case.key {
            browser.type_into("#key", key).await;
        }
        browser.click("#render").await;
        browser
            .wait_for(
                r#"return ["done", "error"].includes(document.getElementById("result").dataset.state)
                    && ["done", "error"].includes(document.getElementById("original").dataset.state)"#,
                name,
            )
            .await;
        let seen = browser.script(READ_PAGE).await;
        let expected = thumbora_sign(case);
        assert_eq!(seen["path"], expected.as_str(), "{name}: {seen}");
        assert_eq!(seen["urlError"], "", "{name}");
        // The original, loaded from its own URL, with its size.
        assert_eq!(seen["original"], "done", "{name}: {seen}");
        assert_eq!(seen["originalNatural"], json!([320, 240]), "{name}");
        assert_eq!(seen["originalSize"], "320 × 240 px", "{name}");
        // The result is the one the main listener serves for that path.
        let direct = server.request(reqwest::Method::GET, &expected, &[("accept", IMAGE_ACCEPT)]).await;
        assert_eq!(direct.status, 200, "{name}: {}", direct.text());
        assert_eq!(seen["result"], "done", "{name}: {seen}");
        assert_eq!(seen["status"], "200 OK", "{name}");
        assert!(seen["time"].as_str().unwrap().ends_with(" ms"), "{name}: {seen}");
        let bytes = seen["bytes"].as_str().unwrap();
        assert!(bytes.starts_with(&format!("{} B", direct.body.len())), "{name}: {bytes} vs {}", direct.body.len());
        match case.image_result {
            Some(((width, height), content_type)) => {
                assert_eq!(direct.content_type(), content_type, "{name}");
                assert_eq!(direct.dims(), (width, height), "{name}");
                assert_eq!(seen["natural"], json!([width, height]), "{name}: {seen}");
                assert_eq!(seen["size"], format!("{width} × {height} px"), "{name}");
                assert_eq!(seen["format"], content_type, "{name}");
            }
            None => {
                assert!(seen["format"].as_str().unwrap().starts_with("application/json"), "{name}: {seen}");
                let json: Value = serde_json::from_str(seen["json"].as_str().unwrap()).expect("meta's JSON shown");
                // full-fit-in fills the 100x100 box: 320x240 becomes 133x100.
                assert_eq!(json["thumbor"]["target"], json!({"width": 133, "height": 100.0}), "{name}: {json}");
                assert_eq!(seen["json"].as_str().unwrap().as_bytes(), direct.body.as_slice(), "{name}");
            }
        }
    }

    // The key was typed four times and signed three URLs: it is in none of the browser's
    // requests (its URLs, headers and form posts), which did reach the render path.
    let log = browser.performance_log().await;
    assert!(log.iter().any(|m| m.contains("/playground/render/")), "the log holds the page's requests");
    for message in &log {
        assert!(!message.contains("pg-key-7Vq2"), "the key left the browser: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_is_off_by_default_admin_only_and_its_renders_bounded() {
    let origin = Origin::start().await;
    origin.put("/pg.jpg", photo(320, 240, image::ImageFormat::Jpeg));
    origin.put("/pg.png", photo(320, 240, image::ImageFormat::Png));
    let o = origin.host();
    let small = format!("/unsafe/32x24/{o}/pg.jpg");

    // Off by default: the admin listener serves /metrics only.
    let admin = free_port();
    let settings = Settings::with_sources("", &format!("  metrics:\n    listen: \"127.0.0.1:{admin}\"\n"));
    let off = Server::start_with(settings).await;
    admin_ready(&off, admin).await;
    for path in ["/playground", "/playground/sign.js", &format!("/playground/render{small}")] {
        let r = off.client.get(format!("http://127.0.0.1:{admin}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    drop(off);

    // On, with a small bound on results.
    let admin = free_port();
    let on = Server::start_with(playground_settings(admin, "    max_result_bytes: 4096\n")).await;
    admin_ready(&on, admin).await;
    let get = |path: String| on.client.get(format!("http://127.0.0.1:{admin}{path}")).send();
    let page = get("/playground".into()).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("<title>Thumbora playground</title>"));
    for (asset, content_type) in
        [("/playground/sign.js", "text/javascript"), ("/playground/playground.css", "text/css")]
    {
        let r = get(asset.into()).await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(content_type), "{asset}");
    }
    assert_eq!(get("/metrics".into()).await.unwrap().status(), 200, "/metrics as before");

    // The main listener serves none of it.
    for path in ["/playground", "/playground/sign.js", &format!("/playground/render{small}")] {
        let r = on.get(path).await;
        assert_ne!(r.status, 200, "{path} on the main listener");
        assert!(!r.text().contains("Thumbora playground") && !r.text().contains("ThumborSign"), "{path}");
    }

    // A render is what the main listener answers for the path, status and type included,
    // whatever Host the request names.
    let render = on
        .client
        .get(format!("http://127.0.0.1:{admin}/playground/render{small}"))
        .header("host", "attacker.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(render.status(), 200);
    assert_eq!(render.headers()["content-type"], "image/jpeg");
    assert_eq!(render.headers()["cache-control"], "no-store");
    let body = render.bytes().await.unwrap();
    assert_eq!(body.as_ref(), on.get(&small).await.body.as_slice());
    let refused = get(format!("/playground/render/AAAAAAAAAAAAAAAAAAAAAAAAAAA=/32x24/{o}/pg.jpg")).await.unwrap();
    assert_eq!(refused.status(), 400, "a bad signature is the main listener's 400");
    // Larger than max_result_bytes: 502, saying which key.
    let large = get(format!("/playground/render/unsafe/{o}/pg.png")).await.unwrap();
    assert_eq!(large.status(), 502);
    assert!(large.text().await.unwrap().contains("thumbora.playground.max_result_bytes"));
    assert_eq!(get("/playground/nothing".into()).await.unwrap().status(), 404);
    let post = on.client.post(format!("http://127.0.0.1:{admin}/playground")).send().await.unwrap();
    assert_eq!(post.status(), 405);
}

#[test]
fn the_playground_without_the_admin_listener_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("thumbora.yaml");
    std::fs::write(
        &conf,
        format!(
            "pid_file: {}\nthumbora:\n  listen: [\"127.0.0.1:{}\"]\n  playground:\n    enabled: true\n",
            dir.path().join("pid").display(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_thumbora")).arg("-t").arg("-c").arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("thumbora.playground.enabled") && stderr.contains("thumbora.metrics.listen"), "{stderr}");
}
