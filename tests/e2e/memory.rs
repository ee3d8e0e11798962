//! The memory estimate a render is admitted with covers what it really holds, on every decode
//! path: each case renders in a child process (this same test binary) that measures its own
//! resident peak (`/proc/self/status` VmHWM, reset through `/proc/self/clear_refs`, after the
//! input was generated and the allocator trimmed) and prints it beside the estimate.

use std::process::Command;

use thumbora::config::ImageConfig;
use thumbora::filters::Assets;
use thumbora::job::{Accepts, RenderJob};
use thumbora::loader::Source;
use thumbora::pipeline::{self, RenderSettings};

use super::hostile_inputs as hostile;

const CASE_VAR: &str = "THUMBORA_MEMORY_CASE";

/// (name, image path the render is asked for)
const CASES: &[(&str, &str)] = &[
    ("jpeg-baseline-shrunk", "/unsafe/300x200/x.jpg"),
    ("jpeg-baseline-full", "/unsafe/fit-in/4000x4000/x.jpg"),
    ("jpeg-progressive-444-shrunk", "/unsafe/300x200/x.jpg"),
    ("jpeg-progressive-444-blur", "/unsafe/1200x900/filters:blur(10)/x.jpg"),
    ("jpeg-declared-75mp", "/unsafe/100x100/x.jpg"),
    ("png-rgba16", "/unsafe/300x200/x.png"),
    ("png-rgba8-fill", "/unsafe/fit-in/3600x3600/filters:upscale():fill(blue)/x.png"),
    ("png-gray", "/unsafe/300x200/x.png"),
    ("gif-animated", "/unsafe/200x200/x.gif"),
    ("webp-lossy", "/unsafe/300x200/x.webp"),
    ("avif", "/unsafe/300x200/x.avif"),
    ("avif-output", "/unsafe/fit-in/1600x1200/filters:format(avif)/x.jpg"),
    ("webp-output", "/unsafe/fit-in/3000x2000/filters:format(webp)/x.jpg"),
    ("png-output-fill-blur", "/unsafe/fit-in/1600x1600/filters:format(png):fill(blur)/x.jpg"),
    ("watermark", "/unsafe/800x600/filters:watermark(h/mark.png,0,0,50)/x.png"),
];

fn source(case: &str) -> Vec<u8> {
    let jpeg = |w: usize, h: usize, progressive: bool, subsamp: turbojpeg::Subsamp| {
        let rgb = hostile::photo_rgb(w, h);
        let image = turbojpeg::Image {
            pixels: rgb.as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_subsamp(subsamp).unwrap();
        c.set_progressive(progressive).unwrap();
        c.compress_to_vec(image).unwrap()
    };
    let encode = |img: image::DynamicImage, format: image::ImageFormat| {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    match case {
        "jpeg-baseline-shrunk" | "jpeg-baseline-full" => jpeg(4000, 3000, false, turbojpeg::Subsamp::Sub2x2),
        "avif-output" => jpeg(1600, 1200, false, turbojpeg::Subsamp::Sub2x2),
        "webp-output" | "png-output-fill-blur" => jpeg(3000, 2000, false, turbojpeg::Subsamp::Sub2x2),
        "jpeg-progressive-444-shrunk" | "jpeg-progressive-444-blur" => jpeg(4000, 3000, true, turbojpeg::Subsamp::None),
        "jpeg-declared-75mp" => hostile::jpeg_declaring(&hostile::small_jpeg(16, 16, true), 8660, 8660),
        "png-rgba16" => hostile::png(3000, 2000, 16, 6, &[]),
        "png-rgba8-fill" | "watermark" => hostile::png(2000, 1500, 8, 6, &[]),
        "png-gray" => hostile::png(4000, 3000, 8, 0, &[]),
        "gif-animated" => {
            let mut out = Vec::new();
            {
                let mut e = gif::Encoder::new(&mut out, 400, 400, &[0, 0, 0, 255, 255, 255]).unwrap();
                for i in 0..40u8 {
                    let buffer = (0..400 * 400)
                        .map(|p: u32| u8::from((p / 400 + u32::from(i)).is_multiple_of(7)))
                        .collect::<Vec<u8>>();
                    let frame =
                        gif::Frame { width: 400, height: 400, buffer: buffer.into(), delay: 5, ..Default::default() };
                    e.write_frame(&frame).unwrap();
                }
            }
            out
        }
        "webp-lossy" => {
            let rgb = hostile::photo_rgb(3000, 2000);
            webp::Encoder::from_rgb(&rgb, 3000, 2000).encode(80.0).to_vec()
        }
        "avif" => {
            let rgb = image::RgbImage::from_raw(1200, 900, hostile::photo_rgb(1200, 900)).unwrap();
            let png = encode(image::DynamicImage::ImageRgb8(rgb), image::ImageFormat::Png);
            let job = job("/unsafe/filters:format(avif)/x.png");
            let settings = RenderSettings { image: ImageConfig::default(), max_age: 60 };
            pipeline::render(&job, &png, &Assets::default(), &settings).unwrap().body
        }
        other => panic!("no case {other}"),
    }
}

fn job(path: &str) -> RenderJob {
    let request = thumbora::url::parse(path).unwrap();
    let filters = thumbora::filters::parse_all(&request.filters, false).unwrap();
    RenderJob { request, filters, accepts: Accepts::default(), meta_callback: None }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// In the child: render one case and print its peak beside its estimate.
fn measure(case: &str) {
    let path = CASES.iter().find(|(name, _)| *name == case).map(|(_, path)| *path).unwrap();
    let bytes = source(case);
    let mut assets = Assets::default();
    if case == "watermark" {
        let mark = bytes::Bytes::from(hostile::png(2000, 2000, 8, 6, &[]));
        assets.insert("h/mark.png".into(), Ok(Source::unbudgeted(mark)));
    }
    let job = job(path);
    let settings = RenderSettings { image: ImageConfig::default(), max_age: 60 };
    let prepared = pipeline::prepare(&job, &bytes, &settings).unwrap();
    let estimate = prepared.memory_estimate(&job, &assets, &settings.image).unwrap();
    // SAFETY: malloc_trim only returns free heap memory to the system.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kib("VmRSS:");
    let rendered = pipeline::render_prepared(prepared, &job, &bytes, &assets, &settings);
    let peak = status_kib("VmHWM:").saturating_sub(before) * 1024;
    assert!(rendered.is_ok(), "{case}: {:?}", rendered.err());
    println!("MEMORY {case} peak={peak} estimate={estimate}");
}

#[test]
fn render_memory_stays_within_its_estimate() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        return measure(&case);
    }
    let exe = std::env::current_exe().unwrap();
    for (case, _) in CASES {
        let out = Command::new(&exe)
            .args(["--exact", "memory::render_memory_stays_within_its_estimate", "--nocapture", "--test-threads", "1"])
            .env(CASE_VAR, case)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The harness prints the test's name on the same line, before it.
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("MEMORY ").map(|(_, m)| m))
            .unwrap_or_else(|| panic!("{case}: no measurement\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        let value = |key: &str| -> u64 {
            line.split_whitespace().find_map(|w| w.strip_prefix(key)).and_then(|v| v.parse().ok()).unwrap()
        };
        let (peak, estimate) = (value("peak="), value("estimate="));
        eprintln!("{case}: peak {} MiB, estimate {} MiB", peak >> 20, estimate >> 20);
        // A few MiB of slack: thread stacks and allocator pages the estimate does not model.
        assert!(
            peak <= estimate + (4 << 20),
            "{case}: the render held {} MiB, its estimate was {} MiB",
            peak >> 20,
            estimate >> 20
        );
    }
}
