//! `thumbora sign` against libthumbor itself, and `thumbora config [-c FILE]`.
//!
//! libthumbor comes from PyPI into the test venv (`source scripts/test-deps.sh` sets
//! `THUMBORA_PYTHON`); each row of the table runs the binary and libthumbor's
//! `CryptoURL(key).generate(...)` with the options thumbor-url would pass, and the two outputs
//! must be byte-identical.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use super::harness::*;

/// A Python with libthumbor: `THUMBORA_PYTHON`, else `.tools/venv/bin/python`.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("THUMBORA_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    assert!(venv.is_file(), "no Python with libthumbor: run `source scripts/test-deps.sh` (sets THUMBORA_PYTHON)");
    venv
}

/// libthumbor's output for each case (`{"key", "options", "quote"}`), one line each. `quote` is
/// what thumbor-url does to the image URL before calling libthumbor.
const LIBTHUMBOR: &str = r#"
import json, sys
from urllib.parse import quote
from libthumbor import CryptoURL
for case in json.load(sys.stdin):
    options = case["options"]
    if case["quote"]:
        options["image_url"] = quote(options["image_url"])
    if "crop" in options:
        options["crop"] = tuple(tuple(point) for point in options["crop"])
    key = case["key"].encode("utf-8") if case.get("key_as_utf8") else case["key"]
    sys.stdout.write(CryptoURL(key=key).generate(**options) + "\n")
"#;

fn libthumbor(cases: &[Value]) -> Vec<String> {
    let mut child = Command::new(python())
        .args(["-c", LIBTHUMBOR])
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    serde_json::to_writer(child.stdin.take().unwrap(), &cases).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "libthumbor: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn thumbora(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thumbora"));
    command.args(args).env_remove("THUMBORA_SECURITY_KEY").env_remove("RUNTIME_DIRECTORY");
    command
}

fn stdout_of(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn sign(args: &[&str]) -> String {
    let mut all = vec!["sign"];
    all.extend_from_slice(args);
    stdout_of(&thumbora(&all).output().unwrap()).trim_end_matches('\n').to_string()
}

const IMG: &str = "my.server.com/some/path/to/image.jpg";

/// thumbor-url arguments (image URL last) and the options thumbor-url hands libthumbor (with
/// libthumbor's own names for the flips and the crop, which thumbor-url 7.8 misspells and so
/// drops, see the README).
fn table() -> Vec<(Vec<&'static str>, Value)> {
    vec![
        (vec![IMG], json!({})),
        (vec!["-w", "300", "-e", "200", IMG], json!({"width": 300, "height": 200})),
        (vec!["-w", "300", IMG], json!({"width": 300})),
        (vec!["-e", "200", IMG], json!({"height": 200})),
        (vec!["-w", "0", "-e", "0", IMG], json!({"width": 0, "height": 0})),
        (vec!["-w", "0", "-e", "150", IMG], json!({"width": 0, "height": 150})),
        (vec!["-w", "-300", "-e", "200", IMG], json!({"width": -300, "height": 200})),
        (vec!["-w", "300", "-e", "-200", IMG], json!({"width": 300, "height": -200})),
        (vec!["-w", "-300", "-e", "-200", IMG], json!({"width": -300, "height": -200})),
        (vec!["-f", IMG], json!({"flip": true})),
        (vec!["-v", IMG], json!({"flop": true})),
        (vec!["-f", "-v", IMG], json!({"flip": true, "flop": true})),
        (vec!["-fv", "-w", "300", "-e", "200", IMG], json!({"flip": true, "flop": true, "width": 300, "height": 200})),
        (vec!["-f", "-w", "-300", IMG], json!({"flip": true, "width": -300})),
        (vec!["-f", "-e", "100", IMG], json!({"flip": true, "height": 100})),
        (vec!["-v", "-w", "100", IMG], json!({"flop": true, "width": 100})),
        (vec!["-n", "-w", "300", "-e", "200", IMG], json!({"fit_in": true, "width": 300, "height": 200})),
        (vec!["--fitin", "--adaptive", "-w", "300", IMG], json!({"adaptive_fit_in": true, "width": 300})),
        (vec!["-n", "--full", "-e", "200", IMG], json!({"full_fit_in": true, "height": 200})),
        (
            vec!["-n", "--full", "--adaptive", "-w", "300", "-e", "200", IMG],
            json!({"adaptive_full_fit_in": true, "width": 300, "height": 200}),
        ),
        (vec!["-s", "-w", "300", "-e", "200", IMG], json!({"smart": true, "width": 300, "height": 200})),
        (vec!["--smart", IMG], json!({"smart": true})),
        (vec!["-t", IMG], json!({"trim": true})),
        (vec!["-t", "-w", "100", "-s", IMG], json!({"trim": true, "width": 100, "smart": true})),
        (vec!["-a", "left", IMG], json!({"halign": "left"})),
        (vec!["-a", "center", IMG], json!({"halign": "center"})),
        (vec!["--halign=right", "-w", "10", IMG], json!({"halign": "right", "width": 10})),
        (vec!["-i", "top", IMG], json!({"valign": "top"})),
        (vec!["-i", "middle", IMG], json!({"valign": "middle"})),
        (vec!["--valign", "bottom", "-a", "left", IMG], json!({"valign": "bottom", "halign": "left"})),
        (
            vec!["-c", "10x10:200x200", "-w", "300", "-e", "200", IMG],
            json!({"crop": [[10, 10], [200, 200]], "width": 300, "height": 200}),
        ),
        (vec!["--crop", "0x0:0x0", IMG], json!({"crop": [[0, 0], [0, 0]]})),
        (vec!["-c", "0x5:100x0", IMG], json!({"crop": [[0, 5], [100, 0]]})),
        (vec!["--filters", "quality(80)", IMG], json!({"filters": ["quality(80)"]})),
        (
            vec![
                "--filters",
                "brightness(20)",
                "--filters",
                "contrast(10)",
                "-c",
                "10x10:200x200",
                "-w",
                "300",
                "-e",
                "200",
                IMG,
            ],
            json!({"filters": ["brightness(20)", "contrast(10)"], "crop": [[10, 10], [200, 200]], "width": 300, "height": 200}),
        ),
        (
            vec!["--filters", "watermark(http://w.example/m.png,-10,10p,50)", "--filters", "fill(ff0000,1)", IMG],
            json!({"filters": ["watermark(http://w.example/m.png,-10,10p,50)", "fill(ff0000,1)"]}),
        ),
        (
            vec!["--filters", "round_corner(20|10,255,0,0):format(webp)", IMG],
            json!({"filters": ["round_corner(20|10,255,0,0):format(webp)"]}),
        ),
        (vec!["-m", IMG], json!({"meta": true})),
        (
            vec!["--meta", "-w", "300", "-e", "200", "-s", IMG],
            json!({"meta": true, "width": 300, "height": 200, "smart": true}),
        ),
        (
            vec![
                "-m",
                "-t",
                "-c",
                "1x2:3x4",
                "-n",
                "--adaptive",
                "-w",
                "300",
                "-e",
                "-200",
                "-a",
                "right",
                "-i",
                "bottom",
                "-s",
                "--filters",
                "grayscale()",
                IMG,
            ],
            json!({"meta": true, "trim": true, "crop": [[1, 2], [3, 4]], "adaptive_fit_in": true, "width": 300, "height": -200,
                   "halign": "right", "valign": "bottom", "smart": true, "filters": ["grayscale()"]}),
        ),
        (
            vec!["-w", "300", "http://example.com/img.jpg"],
            json!({"width": 300, "image_url": "http://example.com/img.jpg"}),
        ),
        (
            vec!["https://example.com:8443/a/b.png?v=2&w=3"],
            json!({"image_url": "https://example.com:8443/a/b.png?v=2&w=3"}),
        ),
        (
            vec!["-w", "50", "example.com/a file (1).jpg"],
            json!({"width": 50, "image_url": "example.com/a file (1).jpg"}),
        ),
        (vec!["example.com/café/日本.png"], json!({"image_url": "example.com/café/日本.png"})),
        (vec!["example.com/100%25/x+y=z;a,b.jpg"], json!({"image_url": "example.com/100%25/x+y=z;a,b.jpg"})),
        (vec!["-s", "smart/300x200/x.jpg"], json!({"smart": true, "image_url": "smart/300x200/x.jpg"})),
    ]
}

#[test]
fn sign_prints_what_libthumbor_generates() {
    let key = "a-key with spaces & symbols %2F=";
    let table = table();
    assert!(table.len() >= 30);
    let mut cases: Vec<Value> = table
        .iter()
        .map(|(args, options)| {
            let mut options = options.clone();
            let image = args.last().unwrap();
            options.as_object_mut().unwrap().entry("image_url").or_insert(json!(image));
            json!({"key": key, "options": options, "quote": true})
        })
        .collect();
    // `--no-quote`: the image URL as given, as a template calling libthumbor directly passes it.
    let raw = ["http%3A%2F%2Fexample.com%2Fa%20b.jpg", "example.com/a b?c=d", "example.com/ü.png"];
    for image in raw {
        cases.push(json!({"key": key, "options": {"width": 20, "image_url": image}, "quote": false}));
    }
    let expected = libthumbor(&cases);
    assert_eq!(expected.len(), cases.len());
    let mut all_args: Vec<Vec<&str>> = table.iter().map(|(args, _)| args.clone()).collect();
    for image in raw {
        all_args.push(vec!["--no-quote", "-w", "20", image]);
    }
    for (args, want) in all_args.iter().zip(&expected) {
        let mut with_key = vec!["-k", key];
        with_key.extend_from_slice(args);
        assert_eq!(&sign(&with_key), want, "thumbora sign {args:?}");
    }
}

#[test]
fn a_non_ascii_key_is_utf8_as_thumbor_verifies_it() {
    // libthumbor's CryptoURL encodes a str key as Latin-1 (six.b), thumbor's server verifies with
    // the key's UTF-8 (and so does Thumbora): `sign` follows the server, and equals libthumbor
    // given the key's UTF-8 bytes.
    let key = "clé-ünïcode";
    let options = json!({"width": 10, "image_url": IMG});
    let want = libthumbor(&[
        json!({"key": key, "options": options, "quote": true, "key_as_utf8": true}),
        json!({"key": key, "options": options, "quote": true}),
    ]);
    assert_eq!(sign(&["-k", key, "-w", "10", IMG]), want[0]);
    assert_ne!(want[0], want[1], "libthumbor's Latin-1 key signs differently");
}

#[test]
fn sign_takes_the_key_from_the_flag_a_file_or_the_environment() {
    let args = ["-w", "300", "-e", "200", IMG];
    let want =
        libthumbor(&[json!({"key": KEY, "options": {"width": 300, "height": 200, "image_url": IMG}, "quote": true})]);
    let want = want[0].as_str();
    assert_eq!(want, "/8ammJH8D-7tXy6kU3lTvoXlhu4o=/300x200/my.server.com/some/path/to/image.jpg");

    let mut flag = vec!["-k", KEY];
    flag.extend_from_slice(&args);
    assert_eq!(sign(&flag), want, "-k");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    let file = file.display().to_string();
    for spelling in ["-l", "--key-file", "--key_file"] {
        let mut from_file = vec![spelling, file.as_str()];
        from_file.extend_from_slice(&args);
        assert_eq!(sign(&from_file), want, "{spelling}");
    }

    let mut all = vec!["sign"];
    all.extend_from_slice(&args);
    let out = thumbora(&all).env("THUMBORA_SECURITY_KEY", KEY).output().unwrap();
    assert_eq!(stdout_of(&out).trim_end(), want, "THUMBORA_SECURITY_KEY");
    // -k wins over the environment.
    let mut both = vec!["sign", "-k", KEY];
    both.extend_from_slice(&args);
    let out = thumbora(&both).env("THUMBORA_SECURITY_KEY", "other").output().unwrap();
    assert_eq!(stdout_of(&out).trim_end(), want);

    let out = thumbora(&all).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    for way in ["-k KEY", "--key-file FILE", "THUMBORA_SECURITY_KEY"] {
        assert!(err.contains(way), "the error names {way}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_thumbora_sign_prints_is_served() {
    let origin = Origin::start().await;
    let server = Server::start().await;
    let host_image = format!("{}/landscape.jpg", origin.host());
    let http_image = format!("http://{host_image}");
    for (args, dims) in [
        (vec!["-w", "300", "-e", "200", host_image.as_str()], (300, 200)),
        (
            vec!["-n", "-w", "100", "-e", "100", "--filters", "quality(50)", "--filters", "grayscale()", &http_image],
            (100, 75),
        ),
        (vec!["-f", "-w", "120", "-e", "90", "-a", "left", "-s", &http_image], (120, 90)),
    ] {
        let mut with_key = vec!["-k", KEY];
        with_key.extend_from_slice(&args);
        let path = sign(&with_key);
        let r = server.get(&path).await;
        assert_eq!(r.status, 200, "{path}");
        let (w, h) = r.dims();
        assert_eq!(w, dims.0, "{path}");
        assert!(h.abs_diff(dims.1) <= 1, "{path}: {w}x{h}");
    }
}

#[test]
fn config_prints_the_documented_default() {
    let out = stdout_of(&thumbora(&["config"]).output().unwrap());
    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/thumbora.yaml")).unwrap();
    assert_eq!(out, shipped);
}

#[test]
fn config_c_fills_in_defaults_masks_secrets_and_loads_again() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("small.yaml");
    std::fs::write(
        &conf,
        "threads: 3\nthumbora:\n  security:\n    keys: [\"key-one-SECRET\", \"key-two-SECRET\"]\n  sources:\n    \
         loader: file\n    file_root: samples\n    s3:\n      bucket: originals\n      access_key: AKIA-SECRET\n      \
         secret_key: SK-SECRET\n  image:\n    quality: 90\n  cache:\n    purge:\n      tokens: \
         [\"purge-token-0123456789-SECRET\"]\n    shared:\n      s3:\n        bucket: thumbs\n        \
         access_key: AK2-SECRET\n        secret_key: SK2-SECRET\n        session_token: ST-SECRET\n",
    )
    .unwrap();
    let conf = conf.display().to_string();
    let out = stdout_of(&thumbora(&["config", "-c", &conf]).current_dir(dir.path()).output().unwrap());
    assert!(!out.contains("SECRET"), "a secret is printed:\n{out}");
    assert_eq!(out.matches("'***'").count(), 8, "two keys, a token, five S3 credentials:\n{out}");
    for given_or_default in [
        "threads: 3",
        "  quality: 90",
        "  max_age: 86400",
        "  healthcheck_path: /healthcheck",
        "    allow_unsafe: true",
        "    bucket: originals",
        "      session_token: null", // the originals bucket's, not set
        "  loader: file",
        "grace_period_seconds: 30",
    ] {
        assert!(out.contains(given_or_default), "missing `{given_or_default}`:\n{out}");
    }
    let root = dir.path().canonicalize().unwrap().join("samples");
    assert!(out.contains(&format!("file_root: {}", root.display())), "relative paths resolved:\n{out}");

    // Parse it back with the same loader (masked secrets replaced by values that validate): the
    // same configuration prints the same.
    let reloaded = out.replace("'***'", "'a-replaced-secret-0123456789'");
    let file = thumbora::config::FileConfig::from_yaml(&reloaded).expect("the output loads again");
    assert_eq!(file.thumbora.image.quality, 90);
    assert_eq!(file.thumbora.security.keys.len(), 2);
    let again = thumbora::cli::config::effective_yaml(&file).unwrap();
    let body = out.split_once('\n').unwrap().1;
    assert_eq!(again, body);

    // `-t` accepts a file written from it.
    let written = dir.path().join("written.yaml");
    std::fs::write(&written, &reloaded).unwrap();
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    let out = thumbora(&["-t", "-c", &written.display().to_string()]).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "thumbora -t: {}", String::from_utf8_lossy(&out.stderr));

    let out = thumbora(&["config", "-c", "/nonexistent/thumbora.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
