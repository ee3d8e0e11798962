//! `thumbora migrate`: thumbor.conf files in, a configuration `thumbora -t` accepts out, each
//! migrated value where `thumbora config` shows it, a warning for each setting left behind (and
//! never a secret on standard error), and a migrated server that signs and refuses as thumbor.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

use super::harness::*;

fn thumbora(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_thumbora"));
    command.args(args).env_remove("THUMBORA_SECURITY_KEY").env_remove("RUNTIME_DIRECTORY");
    command
}

fn migrate_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrate").join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `thumbora migrate CONF -o DIR/out.yaml`, which must succeed; (the YAML, standard error).
fn migrate(conf: &Path, dir: &Path) -> (String, String) {
    let out_file = dir.join("out.yaml");
    let out = thumbora(&["migrate", "-o", out_file.to_str().unwrap(), conf.to_str().unwrap()]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "migrate {}: {stderr}", conf.display());
    assert!(out.stdout.is_empty(), "with -o nothing goes to standard output");
    (std::fs::read_to_string(out_file).unwrap(), stderr)
}

/// `thumbora -t -c FILE` in `dir` must accept it.
fn check_accepted(file: &Path, dir: &Path) {
    let out = thumbora(&["-t", "-c", file.to_str().unwrap()]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "thumbora -t rejects {}: {}", file.display(), text(&out.stderr));
}

/// The effective configuration `thumbora config -c FILE` prints (run in `dir`), parsed.
fn effective(file: &Path, dir: &Path) -> Value {
    let out = thumbora(&["config", "-c", file.to_str().unwrap()]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "thumbora config: {}", text(&out.stderr));
    serde_norway::from_slice(&out.stdout).unwrap()
}

fn at<'v>(v: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(v, |v, key| &v[key])
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("thumbora migrate: warning: ")).collect()
}

#[test]
fn thumbors_own_default_conf_migrates_to_thumbora_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let (yaml, stderr) = migrate(&migrate_fixture("thumbor-default.conf"), dir.path());
    // thumbor-config comments every setting out: nothing is set. (Comments are wrapped: read
    // them unwrapped.)
    let prose = yaml.replace("\n# ", " ").replace("\n  # ", " ").replace("\n    # ", " ");
    assert!(prose.contains("sets nothing (every line is a comment or blank)"), "{yaml}");
    assert!(stderr.contains("0 settings migrated"), "{stderr}");
    // The one warning: thumbor's default key does not come along.
    let warned = warnings(&stderr);
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(warned[0].contains("SECURITY_KEY"), "{stderr}");
    // Defaults that differ are said in the file.
    for note in ["RESPECT_ORIENTATION not set", "DETECTORS not set", "STORAGE not set", "RESULT_STORAGE not set"] {
        assert!(prose.contains(note), "no note `{note}`:\n{yaml}");
    }
    let file = dir.path().join("out.yaml");
    check_accepted(&file, dir.path());
    let conf = effective(&file, dir.path());
    for (path, want) in [
        ("thumbora.sources.loader", "http"),
        ("thumbora.listen", "[\"0.0.0.0:8888\"]"),
        ("thumbora.healthcheck_path", "/healthcheck"),
    ] {
        let got = at(&conf, path);
        let got = got.as_str().map(str::to_string).unwrap_or_else(|| serde_json::to_string(got).unwrap());
        assert_eq!(got, want, "{path}");
    }
    assert_eq!(at(&conf, "thumbora.security.keys").as_sequence().map(Vec::len), Some(0));
    assert_eq!(at(&conf, "thumbora.security.allow_unsafe").as_bool(), Some(true));
    assert!(at(&conf, "thumbora.sources.file_root").is_null(), "the embedded samples are not carried over");
    assert!(at(&conf, "thumbora.sources.disk").is_null() && at(&conf, "thumbora.cache.shared").is_null());
    assert_eq!(at(&conf, "thumbora.sources.allowed").as_sequence().map(Vec::len), Some(0));
    assert_eq!(at(&conf, "threads").as_u64(), Some(2), "Pingora's settings as in the embedded default");
}

/// The directory `every-key.conf`'s relative paths need, with a CA file `-t` loads.
fn every_key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::create_dir_all(dir.path().join("cache")).unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_string()]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    dir
}

const SECRETS: &[&str] = &[
    "key: with # hash",
    "loader-secret-NOT-ON-STDERR",
    "result-secret-NOT-ON-STDERR",
    "proxy-secret-NOT-ON-STDERR",
    "AKIA-",
];

#[test]
fn every_mapped_setting_lands_where_it_should() {
    let dir = every_key_dir();
    let conf = migrate_fixture("every-key.conf");
    let (yaml, stderr) = migrate(&conf, dir.path());
    let file = dir.path().join("out.yaml");
    check_accepted(&file, dir.path());

    // The key, with `:`, `#` and both quotes, reads back exactly (`thumbora config` masks it).
    let loaded = thumbora::config::FileConfig::from_yaml(&yaml).expect("the output loads");
    assert_eq!(loaded.thumbora.security.keys, [r#"key: with # hash, 'single' and "double" quotes"#]);
    assert_eq!(
        loaded.thumbora.cache.shared.as_ref().unwrap().s3.secret_key.as_deref(),
        Some("result-secret-NOT-ON-STDERR")
    );

    let c = effective(&file, dir.path());
    let root = dir.path().canonicalize().unwrap();
    let s = |v: &str| Value::String(v.to_string());
    let list = |items: &[&str]| Value::Sequence(items.iter().map(|i| s(i)).collect());
    let expected: Vec<(&str, Value)> = vec![
        ("security.keys", list(&["***"])),
        ("security.allow_unsafe", Value::Bool(false)),
        ("sources.allowed", list(&["images.example.com", "*.cdn.example.net", "static.example.org"])),
        ("sources.loader", s("file_then_http")),
        ("sources.file_root", s(root.join("images").to_str().unwrap())),
        ("sources.connect_timeout_ms", 2500.into()),
        ("sources.request_timeout_ms", 30000.into()),
        ("sources.follow_redirects", Value::Bool(false)),
        ("sources.max_redirects", 3.into()),
        ("sources.user_agent", s(r#"Migrated/1.0 (+https://example.com/bot; "quoted")"#)),
        ("sources.ca_file", s(root.join("ca.pem").to_str().unwrap())),
        ("sources.allow_private_networks", Value::Bool(false)),
        ("sources.disk.dir", s("cache/originals")),
        ("sources.cache_ttl_seconds", 86400.into()),
        ("healthcheck_path", s("/status")),
        ("image.quality", 85.into()),
        ("image.webp_quality", 70.into()),
        ("image.avif_quality", 50.into()),
        ("image.avif_speed", 8.into()),
        ("image.progressive_jpeg", Value::Bool(false)),
        ("image.auto_webp", Value::Bool(true)),
        ("image.auto_avif", Value::Bool(true)),
        ("image.auto_png_to_jpg", Value::Bool(true)),
        ("image.respect_orientation", Value::Bool(false)),
        ("image.animated_gifs", Value::Bool(false)),
        ("image.preserve_exif", Value::Bool(true)),
        ("image.max_width", 4000.into()),
        ("image.max_height", 3000.into()),
        ("image.max_source_pixels", 50_000_000.into()),
        ("image.smart_detection", Value::Bool(true)),
        ("image.autojpg_filter", Value::Bool(true)),
        ("response.max_age", 7200.into()),
        ("response.etags", Value::Bool(false)),
        ("response.cors_allow_origin", s("*")),
        ("response.meta_callback_name", s("thumbor.meta")),
        ("response.last_modified", Value::Bool(true)),
        ("cache.shared.s3.bucket", s("thumbs")),
        ("cache.shared.s3.region", s("eu-central-1")),
        ("cache.shared.s3.endpoint", s("http://127.0.0.1:9000")),
        ("cache.shared.s3.prefix", s("results")),
        ("cache.shared.s3.path_style", Value::Bool(true)),
        ("cache.shared.s3.access_key", s("***")),
        ("cache.shared.s3.secret_key", s("***")),
        ("cache.shared.store_unsafe", Value::Bool(true)),
    ];
    for (path, want) in &expected {
        assert_eq!(at(&c, &format!("thumbora.{path}")), want, "thumbora.{path}");
    }
    // Each migrated value names where it came from.
    for from in ["# SECURITY_KEY, line 7", "# QUALITY, line 29", "# AWS_RESULT_STORAGE_BUCKET_NAME, line 81"] {
        assert!(yaml.contains(from), "no `{from}`:\n{yaml}");
    }

    let warned = warnings(&stderr);
    for (what, why) in [
        ("line 4", "import"),
        ("ALLOWED_SOURCES", "cdn[0-9]+"),
        ("DETECTORS", "own detector"),
        ("FILTERS", "leaves out noise"),
        ("FILTERS", "redeye"),
        ("lines 55-56", "block"),
        ("PRESERVE_EXIF_COPYRIGHT_INFO", "EXIF"),
        ("MAX_AGE_TEMP_IMAGE", "not a literal"),
        ("RESULT_STORAGE_EXPIRATION_SECONDS", "max-age"),
        ("PILLOW_JPEG_QTABLES", "Pillow"),
        ("UPLOAD_ENABLED", "upload"),
        ("USE_BLACKLIST", "blacklist"),
        ("HTTP_LOADER_PROXY_PASSWORD", "proxy"),
        ("SENTRY_DSN_URL", "f-string"),
        ("SOME_PLUGIN_SETTING", "not a setting of thumbor"),
    ] {
        assert!(warned.iter().any(|w| w.contains(what) && w.contains(why)), "no warning {what}/{why}:\n{stderr}");
        // ... and the file lists it too.
        assert!(yaml.contains(what), "{what} not in the file");
    }
    assert_eq!(warned.len(), 15, "one warning each, FILTERS twice:\n{stderr}");
    assert!(!stderr.contains("ENGINE"), "thumbor's default ENGINE needs no warning:\n{stderr}");
    assert!(yaml.contains("ENGINE: thumbor's default"), "{yaml}");
    for secret in SECRETS {
        assert!(!stderr.contains(secret), "a secret on standard error:\n{stderr}");
    }

    // The plugin loaders and storages, each a few lines added (the last assignment wins, as in
    // Python).
    let base = std::fs::read_to_string(&conf).unwrap();
    let variants: &[(&str, &[(&str, &str)])] = &[
        (
            "LOADER = 'thumbor_aws.loader'",
            &[
                ("sources.loader", "s3"),
                ("sources.s3.bucket", "originals"),
                ("sources.s3.region", "eu-central-1"),
                ("sources.s3.endpoint", "http://127.0.0.1:9000"),
                ("sources.s3.prefix", "photos"),
                ("sources.s3.secret_key", "***"),
            ],
        ),
        (
            "THUMBOR_AWS_RUN_IN_COMPATIBILITY_MODE = True\nLOADER = 'thumbor_aws.loader'",
            &[
                ("sources.s3.bucket", "tc-originals"),
                ("sources.s3.region", "us-west-2"),
                ("sources.s3.endpoint", "http://127.0.0.1:9001"),
                ("sources.s3.prefix", "tc"),
                ("sources.s3.secret_key", "***"),
                ("cache.shared.s3.bucket", "tc-results"),
                ("cache.shared.s3.prefix", "tc-rs"),
            ],
        ),
        (
            "LOADER = 'tc_aws.loaders.s3_loader'\nRESULT_STORAGE = 'tc_aws.result_storages.s3_storage'",
            &[
                ("sources.loader", "s3"),
                ("sources.s3.bucket", "tc-originals"),
                ("sources.s3.region", "us-west-2"),
                ("cache.shared.s3.bucket", "tc-results"),
                ("cache.shared.s3.endpoint", "http://127.0.0.1:9001"),
            ],
        ),
        (
            "RESULT_STORAGE = 'thumbor.result_storages.file_storage'\nLOADER = 'thumbor.loaders.file_loader'",
            &[("cache.disk.dir", "cache/results"), ("sources.loader", "file")],
        ),
    ];
    for (lines, want) in variants {
        let variant = dir.path().join("variant.conf");
        std::fs::write(&variant, format!("{base}\n{lines}\n")).unwrap();
        let (_, stderr) = migrate(&variant, dir.path());
        check_accepted(&file, dir.path());
        let c = effective(&file, dir.path());
        for (path, value) in *want {
            assert_eq!(at(&c, &format!("thumbora.{path}")).as_str(), Some(*value), "{lines}: thumbora.{path}");
        }
        for secret in SECRETS {
            assert!(!stderr.contains(secret), "{lines}: a secret on standard error:\n{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_server_signs_and_refuses_as_thumbor() {
    let dir = tempfile::tempdir().unwrap();
    let key = "migrated: key # with 'quotes'";
    let images = super::origin::fixture_dir();
    let conf = dir.path().join("thumbor.conf");
    std::fs::write(
        &conf,
        format!(
            "SECURITY_KEY = {key:?}\nALLOW_UNSAFE_URL = False\nLOADER = 'thumbor.loaders.file_loader'\n\
             FILE_LOADER_ROOT_PATH = '{}'\n",
            images.display()
        ),
    )
    .unwrap();
    let (yaml, _) = migrate(&conf, dir.path());
    let port = free_port();
    let yaml = yaml.replace("listen: [\"0.0.0.0:8888\"]", &format!("listen: [\"127.0.0.1:{port}\"]"));
    assert!(yaml.contains(&format!("127.0.0.1:{port}")));
    let server = Server::start_file(&yaml, port).await;

    let out = thumbora(&["sign", "-k", key, "-w", "120", "-e", "90", "landscape.jpg"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let signed = text(&out.stdout).trim().to_string();
    let r = server.get(&signed).await;
    assert_eq!(r.status, 200, "{signed}");
    assert_eq!(r.dims(), (120, 90));
    // As thumbor with ALLOW_UNSAFE_URL = False: unsafe URLs and bad signatures are refused.
    assert_eq!(server.get("/unsafe/120x90/landscape.jpg").await.status, 400);
    let tampered = signed.replace("120x90", "121x90");
    assert_eq!(server.get(&tampered).await.status, 400);
}

#[test]
fn syntax_errors_and_non_literals() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, conf: &[u8]| -> Output {
        let path = dir.path().join(name);
        std::fs::write(&path, conf).unwrap();
        thumbora(&["migrate", path.to_str().unwrap()]).output().unwrap()
    };
    for (name, conf, says) in [
        ("unterminated.conf", &b"QUALITY = 80\nSECURITY_KEY = 'abc\nMAX_AGE = 1\n"[..], "line 2: unterminated string"),
        ("brackets.conf", b"ALLOWED_SOURCES = [\n  'a',\n  'b'\n", "line 1: `[` is never closed"),
        ("latin1.conf", b"QUALITY = 80\nSECURITY_KEY = 'caf\xe9'\n", "line 2: not UTF-8"),
        ("missing.conf", b"", "cannot read"),
    ] {
        let out = if name == "missing.conf" {
            thumbora(&["migrate", dir.path().join("nope.conf").to_str().unwrap()]).output().unwrap()
        } else {
            run(name, conf)
        };
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(!stderr.contains("panicked") && out.stdout.is_empty(), "{name}: {stderr}");
        assert!(!stderr.contains("abc"), "{name}: the text of the line is not printed");
    }
    let huge = vec![b'#'; 1024 * 1024 + 1];
    let out = run("huge.conf", &huge);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("larger than"), "{}", text(&out.stderr));

    // Expressions are skipped, each named with its line; the rest is migrated.
    let out = run(
        "expressions.conf",
        b"import os\nSECURITY_KEY = os.environ['THUMBOR_KEY']\nMAX_AGE = 24 * 60 * 60\nQUALITY = 90\n\
          LOADER = 'thumbor.loaders.' + 'http_loader'\n",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for warning in [
        "line 1: an import: not executed",
        "line 2: SECURITY_KEY: not a literal (it uses the name `os`): not executed",
        "line 3: MAX_AGE: not a literal (an expression): not executed",
        "line 5: LOADER: not a literal (an expression): not executed",
    ] {
        assert!(stderr.contains(warning), "no `{warning}`:\n{stderr}");
    }
    let yaml = text(&out.stdout);
    let loaded = thumbora::config::FileConfig::from_yaml(&yaml).expect("the output loads");
    assert_eq!(loaded.thumbora.image.quality, 90);
    assert_eq!(loaded.thumbora.response.max_age, 86_400, "Thumbora's default, as the expression was not run");
}
