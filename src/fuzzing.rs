//! Entry points for the coverage-guided fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) and for
//! the replay of the inputs they found (`tests/e2e/fuzz_regressions.rs`): each takes arbitrary
//! bytes, drives one parser or decoder the way a request would, and panics only on a property
//! violation (a panic inside is the finding).

use crate::codec::{decode, probe};
use crate::config::ImageConfig;

/// The limits the decode target runs under: the shipped ones, with sources capped lower so that a
/// valid but large image does not spend the fuzzer's memory (the render budget's job in the
/// server, checked by the memory tests).
fn limits() -> ImageConfig {
    ImageConfig { max_source_pixels: 16_000_000, max_frames: 64, legacy_formats: true, ..ImageConfig::default() }
}

/// The thumbor URL parser: whatever parses (and can be signed) composes back to the same request.
pub fn url(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else { return };
    let Ok(request) = crate::url::parse(path) else { return };
    let _ = crate::filters::parse_all(&request.filters, false);
    let signable = request
        .signature
        .as_deref()
        .is_none_or(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)));
    if signable {
        let composed = crate::url::compose(&request);
        let mut again = crate::url::parse(&composed).expect("a composed path parses");
        again.unsafe_ = request.unsafe_;
        assert_eq!(format!("{again:?}"), format!("{request:?}"), "{path} -> {composed}");
    }
}

/// The filter segment: split and parse, lenient and strict.
pub fn filters(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let calls = crate::url::split_filters(raw);
    let _ = crate::filters::parse_all(&calls, false);
    let _ = crate::filters::parse_all(&calls, true);
}

/// Header probing of any bytes.
pub fn probe(data: &[u8]) {
    let _ = probe::probe_with(data, 64, true);
}

/// Magic bytes written before the input, chosen by its first byte, so that every decoder gets
/// inputs past its signature check.
const PREFIXES: &[&[u8]] =
    &[b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"\x00\x00\x00\x1cftypavif", b""];

/// Probe, limits, memory estimate and decode, as a render does them.
pub fn decode(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let prefix = PREFIXES[usize::from(selector) % PREFIXES.len()];
    let bytes = [prefix, rest].concat();
    let cfg = limits();
    let Ok(probe) = probe::probe_with(&bytes, cfg.max_frames, cfg.legacy_formats) else { return };
    if crate::limits::check_source(&probe, &cfg).is_err() {
        return;
    }
    let options =
        decode::DecodeOptions { shrink: 1 << (selector >> 6), max_scans: cfg.max_jpeg_scans, ..Default::default() };
    // What the render budget would refuse is not decoded.
    if decode::peak_bytes(&probe, options) > 512 << 20 {
        return;
    }
    if let Ok(decoded) = decode::decode(&bytes, &probe, options) {
        for frame in &decoded.canvas.frames {
            let b = &frame.bitmap;
            assert_eq!(b.pixels.len(), b.width as usize * b.height as usize * b.channels.count(), "frame size");
        }
    }
}
