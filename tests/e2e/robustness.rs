//! Hostile and broken sources through the renderer itself (no server needed): every prefix
//! truncation of valid files, decompression bombs, and the frame-count bomb. Each must end as an
//! image or a typed 4xx error, quickly, and never panic.

use std::time::{Duration, Instant};

use thumbora::config::ImageConfig;
use thumbora::error::ErrorKind;
use thumbora::filters::Assets;
use thumbora::job::{Accepts, RenderJob};
use thumbora::pipeline::{self, RenderSettings};

use super::harness::fixture;

fn job(path: &str) -> RenderJob {
    let request = thumbora::url::parse(path).unwrap();
    let filters = thumbora::filters::parse_all(&request.filters, false).unwrap();
    RenderJob { request, filters, accepts: Accepts::default(), meta_callback: None }
}

fn render(source: &[u8]) -> Result<(), ErrorKind> {
    let settings = RenderSettings { image: ImageConfig::default(), max_age: 60 };
    let job = job("/unsafe/64x64/h/i");
    pipeline::estimate_memory(source, &job, &Assets::default(), &settings).map_err(|e| e.kind())?;
    pipeline::render(&job, source, &Assets::default(), &settings).map(drop).map_err(|e| e.kind())
}

/// T1b: every truncation of every format's fixtures decodes or fails cleanly, each in < 1 s.
#[test]
fn every_prefix_truncation_fails_cleanly() {
    let files = [
        "landscape.jpg",
        "progressive.jpg",
        "cmyk.jpg",
        "orient6.jpg",
        "rgba.png",
        "palette.png",
        "png16.png",
        "animated.gif",
        "single.gif",
        "lossy.webp",
        "lossless_alpha.webp",
        "animated.webp",
    ];
    let mut outcomes = 0;
    for name in files {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(|| render(&bytes[..cut]));
            let outcome = outcome.unwrap_or_else(|_| panic!("{name} cut at {cut} panicked"));
            if let Err(kind) = outcome {
                assert!(
                    matches!(kind, ErrorKind::UndecodableImage | ErrorKind::TooLarge),
                    "{name} cut at {cut}: {kind:?}"
                );
            }
            assert!(started.elapsed() < Duration::from_secs(1), "{name} cut at {cut} took {:?}", started.elapsed());
            outcomes += 1;
        }
        // The whole file renders.
        assert_eq!(render(&bytes), Ok(()), "{name}");
    }
    assert!(outcomes > 3000);
}

/// T2: bombs are refused from their headers, before any large allocation.
#[test]
fn decompression_bombs_are_refused_from_the_header() {
    // A PNG claiming 50000x50000.
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&50_000u32.to_be_bytes());
    png.extend_from_slice(&50_000u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    // A "lottapixel" JPEG: a baseline header claiming 64250x64250.
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    jpeg.extend_from_slice(&64_250u16.to_be_bytes());
    jpeg.extend_from_slice(&64_250u16.to_be_bytes());
    jpeg.extend_from_slice(&[0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    // A GIF with 40 000 one-pixel frames.
    let mut gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
    for _ in 0..40_000 {
        gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0]);
    }
    gif.push(0x3B);
    for (name, bytes) in [("png", &png), ("jpeg", &jpeg), ("gif", &gif)] {
        let started = Instant::now();
        let outcome = render(bytes);
        assert!(matches!(outcome, Err(ErrorKind::TooLarge | ErrorKind::UndecodableImage)), "{name}: {outcome:?}");
        assert!(started.elapsed() < Duration::from_millis(200), "{name} took {:?}", started.elapsed());
    }
}

/// How many inputs the fuzz tests try: `scale` times `THUMBORA_FUZZ_SCALE` (default 1; raise it
/// for a longer opt-in run, e.g. `THUMBORA_FUZZ_SCALE=100 cargo test --test e2e robustness`).
fn iterations(scale: usize) -> usize {
    scale * std::env::var("THUMBORA_FUZZ_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// A small deterministic generator (SplitMix64), so that every run tries the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// T1 on the stable toolchain: bounded, deterministic mutation fuzzing of probe + decode + render.
/// Each mutant flips, overwrites, inserts or deletes bytes (mostly in the first 512, where the
/// headers are); it must render or fail with a typed 4xx, never panic.
#[test]
fn mutated_sources_fail_cleanly() {
    let files =
        ["small.jpg", "progressive.jpg", "rgba.png", "palette.png", "animated.gif", "lossy.webp", "animated.webp"];
    let mut rng = Rng(0x7468_756d_626f_7261);
    let mut tried = 0;
    for name in files {
        let original = std::fs::read(fixture(name)).unwrap();
        for _ in 0..iterations(150) {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(4) {
                let span = if rng.below(4) == 0 { bytes.len() } else { bytes.len().min(512) };
                let at = rng.below(span.max(1));
                match rng.below(4) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes[at] = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)],
                    2 => bytes.insert(at, rng.next() as u8),
                    _ if bytes.len() > 1 => drop(bytes.remove(at)),
                    _ => {}
                }
            }
            let outcome = std::panic::catch_unwind(|| render(&bytes))
                .unwrap_or_else(|_| panic!("{name}: a mutant panicked: {:?}", &bytes[..bytes.len().min(64)]));
            if let Err(kind) = outcome {
                assert!(matches!(kind, ErrorKind::UndecodableImage | ErrorKind::TooLarge), "{name}: {kind:?}");
            }
            tried += 1;
        }
    }
    assert_eq!(tried, iterations(150) * files.len());
}

/// T1 for the URL grammar: random paths built from the grammar's own tokens (and stray bytes)
/// never panic the parser, the filter parser or the composer, and whatever parses composes back
/// to a path that parses to the same request (up to the `unsafe/` the composer always writes).
#[test]
fn random_paths_parse_or_fail_cleanly() {
    const TOKENS: &[&str] = &[
        "/",
        "/",
        "/",
        "unsafe",
        "meta",
        "debug",
        "trim",
        "trim:top-left:10",
        "fit-in",
        "adaptive-",
        "full-",
        "10x20",
        "-300x-0",
        "orig",
        "0x0",
        "x",
        ":",
        "10x10:90x90",
        "left",
        "center",
        "right",
        "top",
        "middle",
        "bottom",
        "smart",
        "filters:",
        "quality(",
        "blur(",
        "fill(",
        "watermark(",
        "round_corner(",
        ")",
        "(",
        ",",
        "1",
        "-",
        "%",
        "%2F",
        "%25",
        "%FF",
        "%C3%A9",
        "http://",
        "https://",
        "host.test",
        "127.0.0.1:80",
        ".jpg",
        "?",
        "#",
        "&",
        " ",
        "é",
        "\u{0}",
        "..",
        "//",
        "a",
        "ZmFrZXNpZ25hdHVyZS1fPQ==",
    ];
    let mut rng = Rng(0x6772_616d_6d61_7221);
    let mut parsed = 0;
    for _ in 0..iterations(20_000) {
        let mut path = String::from("/");
        for _ in 0..rng.below(14) {
            path.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
        if thumbora::url::parse(&path).is_err() {
            continue;
        }
        parsed += 1;
        // The fuzz target's property: filters parse, and what parses composes back to itself.
        thumbora::fuzzing::url(path.as_bytes());
    }
    assert!(parsed > iterations(5_000), "the generator mostly made unparseable paths ({parsed})");
}
