//! Criterion benches per pipeline stage (decode, resize, encode, whole render), grouped by
//! source: 1080p JPEG, 12 MP JPEG, PNG with alpha, animated GIF. Sources are generated
//! deterministically (photo-like: gradients, discs, fine noise) so the entropy decoder does real
//! work. Run: `cargo bench --bench pipeline` (one core per measurement).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use thumbora::codec::decode::{self, DecodeOptions};
use thumbora::codec::encode::{self, EncodeOptions};
use thumbora::codec::{probe, Bitmap, Channels, Format, Frame};
use thumbora::config::ImageConfig;
use thumbora::filters::Assets;
use thumbora::geometry::Size;
use thumbora::imaging::resize::{self, RectF};
use thumbora::job::{Accepts, RenderJob};
use thumbora::pipeline::{self, RenderSettings};

#[path = "support/photo.rs"]
mod support;

fn photo(width: u32, height: u32, channels: Channels) -> Bitmap {
    support::photo(width, height, channels, 0)
}

fn encoded(bitmap: Bitmap, format: Format, quality: u8) -> Vec<u8> {
    support::encoded(bitmap, format, quality)
}

fn animated_gif(width: u32, height: u32, frames: usize) -> Vec<u8> {
    let frames: Vec<Frame> =
        (0..frames).map(|i| Frame { bitmap: photo(width + i as u32, height, Channels::Rgb), delay_ms: 80 }).collect();
    let frames: Vec<Frame> = frames
        .into_iter()
        .map(|f| Frame { bitmap: f.bitmap.crop(0, 0, width, height), delay_ms: f.delay_ms })
        .collect();
    let options = EncodeOptions { progressive_jpeg: false, ..EncodeOptions::new(Format::Gif, 80) };
    encode::encode(&frames, &options).expect("gif fixture")
}

fn job(path: &str) -> RenderJob {
    let request = thumbora::url::parse(path).expect("bench URL");
    let filters = thumbora::filters::parse_all(&request.filters, false).expect("filters");
    RenderJob { request, filters, accepts: Accepts::default(), meta_callback: None }
}

fn settings() -> RenderSettings {
    RenderSettings { image: ImageConfig::default(), max_age: 86_400 }
}

struct Source {
    name: &'static str,
    bytes: Vec<u8>,
    /// Thumbor URLs rendered from this source.
    urls: &'static [&'static str],
}

fn sources() -> Vec<Source> {
    vec![
        Source {
            name: "jpeg_1080p",
            bytes: encoded(photo(1920, 1080, Channels::Rgb), Format::Jpeg, 90),
            urls: &["/unsafe/300x200/h/s.jpg", "/unsafe/fit-in/512x512/h/s.jpg"],
        },
        Source {
            name: "jpeg_12mp",
            bytes: encoded(photo(4000, 3000, Channels::Rgb), Format::Jpeg, 90),
            urls: &["/unsafe/300x200/h/s.jpg", "/unsafe/fit-in/512x512/h/s.jpg", "/unsafe/2000x1500/h/s.jpg"],
        },
        Source {
            name: "png_alpha_1000",
            bytes: encoded(photo(1000, 1000, Channels::Rgba), Format::Png, 80),
            urls: &["/unsafe/300x300/h/s.png"],
        },
        Source { name: "gif_anim_10f", bytes: animated_gif(400, 300, 10), urls: &["/unsafe/200x150/h/s.gif"] },
    ]
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for source in sources() {
        let header = probe::probe(&source.bytes, 1000).expect("probe");
        let shrinks: &[u32] = if header.format == Format::Jpeg { &[1, 4, 8] } else { &[1] };
        for &shrink in shrinks {
            let options = DecodeOptions { shrink, ..Default::default() };
            group.bench_function(BenchmarkId::new(source.name, format!("1/{shrink}")), |b| {
                b.iter(|| decode::decode(&source.bytes, &header, options).expect("decode"))
            });
        }
    }
    group.finish();
}

fn bench_resize(c: &mut Criterion) {
    let mut group = c.benchmark_group("resize");
    for (name, src) in [
        ("12mp_to_300x200", photo(4000, 3000, Channels::Rgb)),
        ("1000x750_to_300x200", photo(1000, 750, Channels::Rgb)),
        ("rgba_1000_to_300", photo(1000, 1000, Channels::Rgba)),
    ] {
        let out = if name.starts_with("rgba") { Size::new(300, 300) } else { Size::new(300, 200) };
        let rect = RectF { left: 0.0, top: 0.0, width: src.width as f64, height: src.width as f64 * 2.0 / 3.0 };
        let rect = if name.starts_with("rgba") { RectF::full(src.size()) } else { rect };
        group.bench_function(name, |b| b.iter(|| resize::resize(&src, rect, out).expect("resize")));
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_300x200");
    let thumb = photo(300, 200, Channels::Rgb);
    for format in [Format::Jpeg, Format::Png, Format::Webp, Format::Gif] {
        let options = EncodeOptions::new(format, 80);
        let frame = [Frame { bitmap: thumb.clone(), delay_ms: 0 }];
        group.bench_function(format.name(), |b| b.iter(|| encode::encode(&frame, &options).expect("encode")));
    }
    group.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    let settings = settings();
    let assets = Assets::default();
    for source in sources() {
        for url in source.urls {
            let job = job(url);
            let id = BenchmarkId::new(source.name, url.trim_start_matches("/unsafe/").trim_end_matches("/h/s.jpg"));
            group.bench_function(id, |b| {
                b.iter(|| pipeline::render(&job, &source.bytes, &assets, &settings).expect("render"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_decode, bench_resize, bench_encode, bench_pipeline);
criterion_main!(benches);
