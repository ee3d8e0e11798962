//! Render one source file N times on one thread and print the CPU time per image, for
//! comparisons with other tools on the same file (see scripts/bench/load.sh).
//!
//! `cargo run --release --example render -- FILE [THUMBOR_PATH | decode:SHRINK] [N]`
//! e.g. `cargo run --release --example render -- photo.jpg /unsafe/300x200/x.jpg 20`, or
//! `... photo.jpg decode:4 20` for the bare JPEG decode at 1/4 scale. `SHRINK_MARGIN=1` renders
//! with `image.jpeg_shrink_margin: 1`.

use std::time::Instant;

use thumbora::config::ImageConfig;
use thumbora::filters::Assets;
use thumbora::job::{Accepts, RenderJob};
use thumbora::pipeline::{self, RenderSettings};

// The server's allocator, so that CPU per image is the server's.
#[global_allocator]
static ALLOCATOR: thumbora::allocator::SplitAllocator = thumbora::allocator::SplitAllocator;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass; no other memory is touched.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().expect("usage: render FILE [PATH] [N]");
    let path = args.next().unwrap_or_else(|| "/unsafe/300x200/x.jpg".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let source = std::fs::read(&file).expect("read source");
    if let Some(shrink) = path.strip_prefix("decode:").and_then(|s| s.parse::<u32>().ok()) {
        // The bare decode at 1/shrink, for the "within 1.15x of the scaled decode" comparison.
        let header = thumbora::codec::probe::probe(&source, 1000).expect("probe");
        let options = thumbora::codec::decode::DecodeOptions { shrink, ..Default::default() };
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        for _ in 0..n {
            std::hint::black_box(thumbora::codec::decode::decode(&source, &header, options).expect("decode"));
        }
        let cpu = (cpu_seconds() - cpu0) / n as f64 * 1000.0;
        let wall = wall0.elapsed().as_secs_f64() / n as f64 * 1000.0;
        println!("{file} decode 1/{shrink}: {cpu:.1} ms CPU, {wall:.1} ms wall per image");
        return;
    }
    let request = thumbora::url::parse(&path).expect("thumbor path");
    let filters = thumbora::filters::parse_all(&request.filters, false).expect("filters");
    let job = RenderJob { request, filters, accepts: Accepts::default(), meta_callback: None };
    let mut image = ImageConfig::default();
    if let Some(margin) = std::env::var("SHRINK_MARGIN").ok().and_then(|m| m.parse().ok()) {
        image.jpeg_shrink_margin = margin; // compare `image.jpeg_shrink_margin` settings
    }
    let settings = RenderSettings { image, max_age: 86_400 };
    let assets = Assets::default();
    let out = pipeline::render(&job, &source, &assets, &settings).expect("render");
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    for _ in 0..n {
        std::hint::black_box(pipeline::render(&job, &source, &assets, &settings).expect("render"));
    }
    let cpu = (cpu_seconds() - cpu0) / n as f64 * 1000.0;
    let wall = wall0.elapsed().as_secs_f64() / n as f64 * 1000.0;
    println!("{file} {path}: {cpu:.1} ms CPU, {wall:.1} ms wall per image ({} bytes out)", out.body.len());
}
