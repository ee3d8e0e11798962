//! Hostile and broken sources through the renderer itself (no server needed): every prefix
//! truncation of valid files, decompression bombs, and the frame-count bomb. Each must end as an
//! image or a typed 4xx error, quickly, and never panic.

use std::time::{Duration, Instant};

use thumbora::config::ImageConfig;
use thumbora::error::ErrorKind;
use thumbora::filters::Assets;
use thumbora::pipeline::{self, Accepts, RenderJob, RenderSettings};

use super::harness::fixture;

fn job(path: &str) -> RenderJob {
    let request = thumbora::url::parse(path).unwrap();
    let filters = thumbora::filters::parse_all(&request.filters, false).unwrap();
    RenderJob { request, filters, accepts: Accepts::default(), meta_callback: None }
}

fn render(source: &[u8]) -> Result<(), ErrorKind> {
    let settings = RenderSettings { image: ImageConfig::default(), max_age: 60 };
    let job = job("/unsafe/64x64/h/i");
    pipeline::estimate_memory(source, &job, &settings).map_err(|e| e.kind())?;
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
