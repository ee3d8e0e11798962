//! Replays the corpus recorded from a real thumbor 7.8.0 (tests/fixtures/compat/expected.json,
//! made by scripts/compat/record.py) against Thumbora in thumbor-compatible settings, and checks
//! status, content type, dimensions, frame count, Cache-Control, Vary and `meta/` JSON.
//! Lines that differ on purpose are listed in `KNOWN_DIFFERENCES` with the reason.

use serde_json::Value;

use super::harness::*;

/// Lines of scripts/compat/urls.txt where Thumbora answers differently from thumbor 7.8, and why.
const KNOWN_DIFFERENCES: &[(u32, &str)] = &[
    // Deliberate: cover() gives the first frame; thumbor 7.8 crashes (500).
    (432, "cover() implemented; thumbor answers 500"),
    // Deliberate (README, "Where Thumbora deliberately differs"):
    (612, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop (top 24, not 25)"),
    (763, "a raw '#' ends the request target (a fragment): the image URL is cut there"),
    (770, "a raw '#' ends the request target (a fragment): the image URL is cut there"),
    (816, "an animated WebP stays animated: format(gif) gives an animated GIF (thumbor: 1 frame)"),
    (959, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (960, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (963, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (968, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (979, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (982, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (998, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (1001, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (1030, "output cap: 30x0:31x50 full-fit-in 1000x1 asks for a result over image.max_output_side"),
    (1263, "output cap: 30x0:31x50 full-fit-in 1000x1 asks for a result over image.max_output_side"),
    (1193, "an animated GIF 1 px high keeps its frames; thumbor gives one black frame"),
    (1399, "an animated GIF 1 px high keeps its frames; thumbor gives one black frame"),
    (1412, "dot segments are resolved before the fetch; thumbor fetches the host '.'"),
    (1413, "dot segments are resolved before the fetch; thumbor fetches the host '.'"),
    (1421, "a JSONP callback must be an identifier: '<x>' gets plain JSON"),
    (1422, "a number past 32 bits is refused (400); thumbor crashes (500)"),
    (1426, "a number past 32 bits is clamped; thumbor crashes (500)"),
    (1523, "Range requests get 206 from the result cache; thumbor ignores Range"),
];

/// Thumbora configured like the recorded thumbor: EXIF ignored, no smart detection, BMP and TIFF
/// decoded, loopback origin, thumbor's statuses for origin failures, 1 s / 2 s loader timeouts:
/// every deliberate difference switched back, so what remains differs only where thumbor crashes.
fn compat_settings() -> Settings {
    Settings {
        thumbora: "  image:\n    respect_orientation: false\n    smart_detection: false\n    legacy_formats: true\n  sources:\n    loader: http\n    allow_private_networks: true\n    connect_timeout_ms: 1000\n    request_timeout_ms: 2000\n    thumbor_error_statuses: true\n".into(),
        ..Default::default()
    }
}

/// The request path for a corpus template: placeholders filled, signatures computed and
/// mangled as the recorder did.
fn render_path(template: &str, origin: &str, closed: &str) -> String {
    let path = template.replace("{origin}", origin).replace("{closed}", closed);
    let Some(start) = path.find("{sign") else { return path.replace("{salt}", "0") };
    let end = start + path[start..].find("}/").expect("closed sign placeholder") + 2;
    let modifier = path[start + 5..end - 2].strip_prefix(':').map(str::to_string);
    let (before, after) = (&path[..start], &path[end..]);
    let (rest, query) = after.split_once('?').unwrap_or((after, ""));
    let sign = |payload: &str, key: &str| thumbora::security::signature::sign(key.as_bytes(), payload);
    let mut payload = rest.replace("{salt}", "0");
    let mut sig = sign(&payload, KEY);
    if modifier.as_deref() == Some("std") && rest.contains("{salt}") {
        for n in 0..10_000 {
            payload = rest.replace("{salt}", &n.to_string());
            sig = sign(&payload, KEY);
            if sig.contains('-') || sig.contains('_') {
                break;
            }
        }
    }
    let sig = match modifier.as_deref() {
        None => sig,
        Some("flip") => {
            let mut chars: Vec<char> = sig.chars().collect();
            chars[5] = if chars[5] == 'A' { 'B' } else { 'A' };
            chars.into_iter().collect()
        }
        Some("wrongkey") => sign(&payload, "not-my-security-key"),
        Some("nopad") => sig.trim_end_matches('=').to_string(),
        Some("std") => sig.replace('-', "+").replace('_', "/"),
        Some("pct") => sig.replace('=', "%3D"),
        Some("withquery") => {
            sign(&format!("{payload}{}", if query.is_empty() { String::new() } else { format!("?{query}") }), KEY)
        }
        Some("lower") => sig.to_lowercase(),
        Some(other) => panic!("unknown signature modifier {other}"),
    };
    let mut out = format!("{before}{sig}/{payload}");
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// JSON equality where 300 == 300.0.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Compare one answer with the recording; the mismatching fields, described.
async fn check(server: &Server, entry: &Value, origin: &str, closed: &str) -> Vec<String> {
    let template = entry["path"].as_str().unwrap();
    let path = render_path(template, origin, closed);
    let method = reqwest::Method::from_bytes(entry["method"].as_str().unwrap().as_bytes()).unwrap();
    let headers: Vec<(String, String)> = entry["request_headers"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let resp = server.request(method, &path, &header_refs).await;
    let mut diffs = Vec::new();
    let expected_status = entry["status"].as_u64().unwrap() as u16;
    if resp.status != expected_status {
        diffs.push(format!("status {expected_status} != {}", resp.status));
        return diffs;
    }
    if expected_status < 400 {
        let ct = opt_str(&entry["content_type"]).unwrap_or_default();
        if !ct.is_empty() && resp.content_type() != ct {
            diffs.push(format!("content-type {ct} != {}", resp.content_type()));
        }
    }
    for (field, header) in [("cache_control", "cache-control"), ("vary", "vary")] {
        let expected = opt_str(&entry["headers"][field]);
        if expected != resp.header(header) {
            diffs.push(format!("{header} {expected:?} != {:?}", resp.header(header)));
        }
    }
    // ETag and Expires: present or not, as thumbor sent them (their values depend on bytes and time).
    for (field, header) in [("etag", "etag"), ("expires", "expires")] {
        if let Some(expected) = entry["headers"][field].as_bool() {
            if expected != resp.header(header).is_some() {
                diffs.push(format!("{header} present {expected} != {}", !expected));
            }
        }
    }
    if let (Some(w), Some(h)) = (entry["width"].as_u64(), entry["height"].as_u64()) {
        // AVIF sizes come from the container header (the image crate cannot decode AVIF here).
        let size = if resp.content_type() == "image/avif" {
            thumbora::codec::avif::dimensions(&resp.body).map_err(|e| e.to_string())
        } else {
            image::load_from_memory(&resp.body).map(|i| (i.width(), i.height())).map_err(|e| e.to_string())
        };
        match size {
            Ok((gw, gh)) if (u64::from(gw), u64::from(gh)) == (w, h) => {}
            Ok((gw, gh)) => diffs.push(format!("size {w}x{h} != {gw}x{gh}")),
            Err(e) => diffs.push(format!("size {w}x{h} != undecodable ({e})")),
        }
    }
    if let Some(frames) = entry["frames"].as_u64() {
        if entry["image_format"].as_str() == Some("GIF") && resp.gif_frames() as u64 != frames {
            diffs.push(format!("frames {frames} != {}", resp.gif_frames()));
        }
    }
    if !entry["meta_json"].is_null() {
        let text = resp.text();
        let json_text = match text.find('(') {
            Some(i) if text.ends_with(");") => text[i + 1..text.len() - 2].to_string(),
            _ => text.clone(),
        };
        let ours = json_text.replace(&origin.replace(':', "%3A"), "{origin}");
        match serde_json::from_str::<Value>(&ours) {
            Ok(v) if json_eq(&v, &entry["meta_json"]) => {}
            Ok(v) => diffs.push(format!("meta {} != {v}", entry["meta_json"])),
            Err(e) => diffs.push(format!("meta not JSON ({e}): {text}")),
        }
    }
    diffs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbor_7_8_recorded_corpus() {
    replay("../expected.json", compat_settings(), KNOWN_DIFFERENCES).await;
}

/// Lines of scripts/compat/urls_auto_webp.txt where Thumbora answers differently from thumbor 7.8
/// with AUTO_WEBP on, and why.
const KNOWN_AUTO_WEBP_DIFFERENCES: &[(u32, &str)] = &[
    // Deliberate (README, "Where Thumbora deliberately differs"):
    (82, "an animated WebP stays animated: format(gif) gives an animated GIF (thumbor: 1 frame)"),
    (89, "quality(101) is clamped for a WebP result; thumbor crashes (500)"),
    (103, "cover() implemented; thumbor answers 500"),
    (106, "output cap: a 16400-pixel side is over image.max_output_side (400)"),
    (107, "output cap: a 16400-pixel side is over image.max_output_side (400)"),
    (127, "Accept: q=0 means not accepted (thumbor looks for the text image/webp)"),
    (128, "Accept: q=0 means not accepted (thumbor looks for the text image/webp)"),
    (131, "Accept: media types in any case (thumbor matches the text image/webp exactly)"),
    (135, "Accept: image/webpx is not image/webp (thumbor finds the text image/webp in it)"),
    (137, "Accept: q=0 means not accepted (thumbor looks for the text image/webp)"),
];

/// The same with thumbor's AUTO_WEBP on (`image.auto_webp: true`): the format each `Accept`
/// gets, `Vary`, and 304s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbor_7_8_recorded_corpus_with_auto_webp() {
    let mut settings = compat_settings();
    settings.thumbora = settings.thumbora.replace("  image:\n", "  image:\n    auto_webp: true\n");
    assert!(settings.thumbora.contains("auto_webp: true"));
    replay("../expected_auto_webp.json", settings, KNOWN_AUTO_WEBP_DIFFERENCES).await;
}

/// Lines of scripts/compat/urls_max_size.txt where Thumbora answers differently from thumbor 7.8
/// with MAX_WIDTH = 500 and MAX_HEIGHT = 400, and why.
const KNOWN_MAX_SIZE_DIFFERENCES: &[(u32, &str)] = &[
    (36, "output cap: thumbor makes the 2000x50 image 16667x400 (over image.max_output_side)"),
    (38, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (143, "a zero-sized auto-crop keeps one pixel, and meta/ shows that crop"),
    (188, "output cap: thumbor makes the 2000x50 image 16667x400 (over image.max_output_side)"),
];

/// The same with thumbor's MAX_WIDTH and MAX_HEIGHT set (`image.max_width: 500`,
/// `image.max_height: 400`): requests clamped, larger sources shrunk on load, crops translated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbor_7_8_recorded_corpus_with_max_width_and_height() {
    let mut settings = compat_settings();
    settings.thumbora = settings.thumbora.replace("  image:\n", "  image:\n    max_width: 500\n    max_height: 400\n");
    assert!(settings.thumbora.contains("max_width: 500"));
    replay("../expected_max_size.json", settings, KNOWN_MAX_SIZE_DIFFERENCES).await;
}

/// Replay the recorded `expected` (relative to the fixture images) against a server started with
/// `settings`; every line must match but the `known` ones, which must still differ.
async fn replay(expected: &str, settings: Settings, known: &[(u32, &str)]) {
    let corpus: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(fixture(expected)).unwrap()).unwrap();
    let origin = Origin::start().await;
    let server = Server::start_with(settings).await;
    let closed = format!("127.0.0.1:{}", free_port());
    let mut failures = Vec::new();
    let mut unexpectedly_matching = Vec::new();
    let mut matched = 0;
    for entry in &corpus {
        let line = entry["line"].as_u64().unwrap() as u32;
        let diffs = check(&server, entry, &origin.host(), &closed).await;
        let listed = known.iter().find(|(l, _)| *l == line);
        match (diffs.is_empty(), listed) {
            (true, None) => matched += 1,
            (true, Some(_)) => unexpectedly_matching.push(line),
            (false, Some(_)) => {}
            (false, None) => failures.push(format!("line {line} {}: {}", entry["path"], diffs.join("; "))),
        }
    }
    eprintln!(
        "{expected}: {matched}/{} match; {} known differences; now matching although listed: {unexpectedly_matching:?}",
        corpus.len(),
        known.len()
    );
    assert!(failures.is_empty(), "{} lines differ from thumbor 7.8:\n{}", failures.len(), failures.join("\n"));
}
